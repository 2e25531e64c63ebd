//! `vsh`, virsh's command line over domdriver: one command table, one parser, one output
//! writer (libvirt: tools/vsh.c, tools/virsh.c).
//!
//! # Adding a verb
//!
//! 1. Pick the file of its group under `verbs/` (`domain.rs` Domain Management, `monitor.rs`
//!    Domain Monitoring, `host.rs` Host and Hypervisor, `secret.rs`, `tools.rs` our own), or
//!    for a batch of new verbs add a new file `verbs/NAME.rs` exporting `pub const CMDS:
//!    &[CmdDef]` and list it in [`verbs::TABLES`] (one line; keeps merges apart).
//! 2. Add a [`table::CmdDef`]: `name`, `group`, `info` (one line, help's list), `desc` (help's
//!    DESCRIPTION; continuation lines start with four spaces), `opts`, `handler`, `access`
//!    ([`table::Access::Write`]`("virDomainFoo")` for a verb that changes anything, so
//!    `-r/--readonly` refuses it), `json` (true when it prints data; it then takes `--json`),
//!    `alias_of: None`. `CmdDef::new(group, name, info, desc, opts, handler)` makes the usual
//!    row (read-only, no JSON, no alias); `.with_access(..)` and `.with_json(true)` adjust it.
//! 3. Options are [`table::OptDef`]s in virsh's order and names, built with
//!    `OptDef::domain(help, DomainFilter::All)` (the usual `<domain>`), `OptDef::data(name, help)`
//!    (a required positional argument), `OptDef::flag`, `OptDef::string` / `OptDef::int`
//!    (named only; `.positional()` to also take the next free argument, `.required()`),
//!    `OptDef::argv` (all remaining words; last), `OptDef::alias(name, "target[=value]")`.
//!    `.complete(Completer::…)` says what tab completion offers for the value.
//! 4. The handler is `fn(&mut CmdCtx, &ParsedArgs) -> anyhow::Result<()>`:
//!    - arguments: `args.required("domain")?`, `args.string("xpath")`, `args.flag("all")`,
//!      `args.int::<u32>("count")?` (virsh's message for a bad number), `args.all("name")`
//!      (repeated or argv values); naming an option the verb lacks panics in debug builds;
//!    - the connection: `ctx.conn()?` (opened on first use); a domain:
//!      `verbs::util::lookup_domain(ctx.conn()?, args.required("domain")?)?`;
//!    - output only through `ctx`: `ctx.print`, `ctx.println`, `ctx.println_extra` (virsh's
//!      vshPrintExtra: silenced by `-q`), tables with `verbs::util::render_table`. Never
//!      `println!`: the writer ends quietly when stdout is closed (`vsh VERB | head -1`);
//!    - data verbs build a `#[derive(Serialize)]` value and call
//!      `ctx.emit(&value, |v| text)`: JSON under `--json`, else the text the closure renders
//!      (byte-identical to virsh's). Document the JSON fields in the README;
//!    - errors: return them (`bail!`, `.context(...)`); each layer prints as one `error:`
//!      line, as virsh does. The empty line virsh prints after every command is the
//!      dispatcher's, not the handler's.
//! 5. Tests: the table tests (`cli::tests`) check every verb is unique, reachable and has
//!    help; add the verb's own test through the binary in `tests/vsh_*.rs` (output, `--help`,
//!    an error, closed stdout), and regenerate the README's verb list
//!    (`vsh help --markdown`).

pub mod complete;
pub mod console_expect;
pub mod ctx;
pub mod globals;
pub mod help;
pub mod interrupt;
pub mod parse;
pub mod shell;
pub mod table;
pub mod verbs;

#[cfg(test)]
mod tests;

use std::io::Write;
use std::time::Instant;

use ctx::{CmdCtx, Out};
use globals::Action;
use parse::ParsedArgs;
use table::Access;

/// Print each line of an error as virsh's `error:` lines; never fails.
pub fn print_error(lines: impl IntoIterator<Item = impl std::fmt::Display>) {
    let mut e = std::io::stderr().lock();
    for l in lines {
        let _ = writeln!(e, "error: {l}");
    }
}

/// `vsh ARGS...` (without the program name); returns the exit status.
pub fn main(args: &[String]) -> u8 {
    let (globals, words) = match globals::parse(args) {
        Ok(Action::Run(g, w)) => (g, w),
        Ok(Action::Usage) => {
            let out = Out::stdout();
            out.write_bytes(help::usage().as_bytes());
            return 0;
        }
        Ok(Action::Version { long }) => {
            let out = Out::stdout();
            out.write_bytes(version_text(long).as_bytes());
            return 0;
        }
        Err(msg) => {
            print_error([msg]);
            return 1;
        }
    };
    let mut ctx = CmdCtx::new(globals, Out::stdout());
    if words.is_empty() {
        return shell::run(&mut ctx);
    }
    // virsh reads a single argument as a command string (`vsh 'list --all; uri'`).
    let cmds = if words.len() == 1 {
        match parse::split_line(&words[0]) {
            Ok(c) => c,
            Err(e) => {
                print_error(e.0);
                return 1;
            }
        }
    } else {
        vec![words]
    };
    let ok = run_commands(&mut ctx, &cmds);
    if let Some(e) = ctx.out().take_error() {
        print_error([format!("failed to write output: {e}")]);
        return 1;
    }
    if ok { 0 } else { 1 }
}

/// Parse every command, then run them in turn (libvirt: vshCommandParse, vshCommandRun):
/// nothing runs when one does not parse. True when the last one succeeded.
pub fn run_commands(ctx: &mut CmdCtx, cmds: &[Vec<String>]) -> bool {
    let mut parsed = Vec::new();
    for words in cmds {
        match parse::parse(words) {
            Ok(p) => parsed.push(p),
            Err(e) => {
                print_error(e.0);
                return false;
            }
        }
    }
    let mut ok = true;
    for p in &parsed {
        if ctx.globals.debug <= 1 {
            for (name, value) in &p.given {
                let (kind, v) = match value {
                    Some(v) => ("optdata", v.as_str()),
                    None => ("bool", "(none)"),
                };
                let _ = writeln!(std::io::stderr(), "{}: {name}({kind}): {v}", p.cmd.name);
            }
        }
        ok = run_one(ctx, p);
        if ctx.quit_requested() {
            break;
        }
    }
    ok
}

/// Run one parsed command and print virsh's trailer: an empty line (unless `-q`), or the
/// time it took (`-t`).
pub fn run_one(ctx: &mut CmdCtx, p: &ParsedArgs) -> bool {
    let start = Instant::now();
    let res = if p.help {
        ctx.print(help::command(p.cmd));
        Ok(())
    } else if let (true, Access::Write(api)) = (ctx.globals.readonly, p.cmd.access) {
        Err(anyhow::anyhow!(
            "operation forbidden: read only access prevents {api}"
        ))
    } else {
        ctx.set_json(p.cmd.json && (ctx.globals.json || p.json));
        let r = (p.cmd.handler)(ctx, p);
        ctx.flush_warnings();
        r
    };
    let ok = res.is_ok();
    if let Err(e) = res
        && !e.is::<ctx::QuietFailure>()
    {
        print_error(e.chain());
    }
    if !p.help && matches!(p.cmd.name, "quit" | "exit") {
        return ok;
    }
    if ctx.globals.timing {
        let ms = start.elapsed().as_secs_f64() * 1000.0;
        ctx.print(format!("\n(Time: {ms:.3} ms)\n\n"));
    } else if !ctx.json() {
        ctx.println_extra("");
    }
    ctx.set_json(false);
    ok
}

/// `vsh -v` and `vsh -V` (libvirt: virshShowVersion).
pub fn version_text(long: bool) -> String {
    let v = env!("CARGO_PKG_VERSION");
    if !long {
        return format!("{v}\n");
    }
    format!(
        "vsh command line tool of domdriver {v}\n\n\
         Compiled with support for:\n \
         Hypervisors: QEMU/KVM\n \
         Miscellaneous: Secrets Readline\n"
    )
}
