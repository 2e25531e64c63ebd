//! Virsh itself: help, the shell's verbs, completion.

use anyhow::{Result, bail};

use crate::cli::ctx::CmdCtx;
use crate::cli::parse::{ParsedArgs, lookup};
use crate::cli::table::{CmdDef, Completer, Group, OptDef};
use crate::cli::{complete, help};

const fn verb(
    name: &'static str,
    info: &'static str,
    desc: &'static str,
    opts: &'static [OptDef],
    handler: crate::cli::table::Handler,
) -> CmdDef {
    CmdDef::new(Group::VirshItself, name, info, desc, opts, handler)
}

pub const CMDS: &[CmdDef] = &[
    verb(
        "complete",
        "internal command for autocompletion",
        "internal use only",
        &[OptDef::argv("string", "partial string to autocomplete")],
        cmd_complete,
    ),
    CmdDef {
        group: Group::Tools,
        ..verb(
            "completion",
            "print the shell completion script",
            "Print a completion script for the shell named (bash), which completes\n    \
             verbs, options and domain names through 'vsh complete'. Install it with\n    \
             vsh completion bash > /etc/bash_completion.d/vsh",
            &[OptDef::data("shell", "the shell: bash").complete(Completer::Words(&["bash"]))],
            cmd_completion,
        )
    },
    verb(
        "connect",
        "(re)connect to hypervisor",
        "Connect to local hypervisor. This is built-in command after shell start up.",
        &[
            OptDef::data("name", "hypervisor connection URI").optional(),
            OptDef::flag("readonly", "read-only connection"),
        ],
        cmd_connect,
    ),
    CmdDef {
        alias_of: Some("quit"),
        ..verb("exit", "quit this interactive terminal", "", &[], cmd_quit)
    },
    verb(
        "help",
        "print help",
        "Prints global help, command specific help, or help for a\n    \
         group of related commands",
        &[
            OptDef::string(
                "command",
                "Prints global help, command specific help, or help for a group of related commands",
            )
            .positional(),
            OptDef::flag("markdown", "print the verbs by group as Markdown (the README's list)"),
        ],
        cmd_help,
    ),
    verb("quit", "quit this interactive terminal", "", &[], cmd_quit),
];

/// `vsh help [COMMAND|GROUP]` (libvirt: cmdHelp).
fn cmd_help(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    if args.flag("markdown") {
        ctx.print(help::markdown());
        return Ok(());
    }
    let Some(name) = args.string("command").filter(|s| !s.is_empty()) else {
        ctx.print(help::grouped());
        return Ok(());
    };
    if let Some(def) = lookup(name) {
        ctx.print(help::command(def));
    } else if let Some(g) = help::find_group(name) {
        ctx.print(help::group(g));
    } else {
        bail!("command or command group '{name}' doesn't exist");
    }
    Ok(())
}

/// `quit`, `exit`: end the shell (libvirt: cmdQuit).
fn cmd_quit(ctx: &mut CmdCtx, _: &ParsedArgs) -> Result<()> {
    ctx.request_quit();
    Ok(())
}

/// `connect [URI] [--readonly]`: the next verb opens this URI (libvirt: cmdConnect).
fn cmd_connect(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    ctx.globals.uri = args
        .string("name")
        .map(str::to_string)
        .or_else(crate::cli::globals::default_uri);
    ctx.globals.readonly = args.flag("readonly");
    ctx.reset_conn();
    // virsh connects at once, so a bad URI shows here.
    ctx.conn()?;
    Ok(())
}

/// `vsh complete -- WORDS...`: what completes the last word (libvirt: cmdComplete).
fn cmd_complete(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let words: Vec<String> = args.all("string").into_iter().map(String::from).collect();
    for m in complete::complete(ctx, &words) {
        ctx.println(m);
    }
    Ok(())
}

/// `vsh completion bash`.
fn cmd_completion(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    match args.required("shell")? {
        "bash" => ctx.print(complete::BASH_SCRIPT),
        other => bail!("unsupported shell '{other}' (supported: bash)"),
    }
    Ok(())
}
