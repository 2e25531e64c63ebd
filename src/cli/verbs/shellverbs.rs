//! Virsh itself, the shell's helpers: `echo`, `cd`, `pwd` (libvirt: tools/vsh.c cmdEcho,
//! cmdCd, cmdPwd).

use anyhow::{Result, bail};

use crate::cli::ctx::CmdCtx;
use crate::cli::parse::ParsedArgs;
use crate::cli::table::{CmdDef, Completer, Group, OptDef};

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
        "cd",
        "change the current directory",
        "Change the current directory.",
        &[
            OptDef::string("dir", "directory to switch to (default: home or else root)")
                .positional()
                .complete(Completer::File),
        ],
        cmd_cd,
    ),
    verb(
        "echo",
        "echo arguments. Used for internal testing.",
        "Echo back arguments, possibly with quoting. Used for internal testing.",
        &[
            OptDef::flag("shell", "escape for shell use"),
            OptDef::flag("xml", "escape for XML use"),
            OptDef::flag(
                "split",
                "split each argument on ','; ',,' is an escape sequence",
            ),
            OptDef::flag("err", "output to stderr"),
            OptDef::alias("str", "string"),
            OptDef::alias("hi", "string=hello"),
            OptDef::argv("string", "arguments to echo"),
        ],
        cmd_echo,
    ),
    verb(
        "pwd",
        "print the current directory",
        "Print the current directory.",
        &[],
        cmd_pwd,
    ),
];

/// `cd [DIR]`: only in the shell, where a later verb's relative paths start from it.
fn cmd_cd(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    if !ctx.globals.interactive {
        bail!("cd: command valid only in interactive mode");
    }
    let dir = match args.string("dir") {
        Some(d) => d.to_string(),
        None => std::env::var("HOME").unwrap_or_else(|_| "/".into()),
    };
    if let Err(e) = std::env::set_current_dir(&dir) {
        bail!("cd: {}: {dir}", strerror(&e));
    }
    Ok(())
}

/// The C library's text for an I/O error, without Rust's " (os error N)".
fn strerror(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

fn cmd_pwd(ctx: &mut CmdCtx, _: &ParsedArgs) -> Result<()> {
    let cwd = std::env::current_dir()?;
    ctx.print(format!("{}\n", cwd.display()));
    Ok(())
}

/// Which quoting `echo` applies.
#[derive(Clone, Copy, PartialEq)]
enum Quoting {
    Plain,
    Shell,
    Xml,
    Split,
}

fn cmd_echo(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let chosen: Vec<(&str, Quoting)> = [
        ("shell", Quoting::Shell),
        ("xml", Quoting::Xml),
        ("split", Quoting::Split),
    ]
    .into_iter()
    .filter(|(n, _)| args.flag(n))
    .collect();
    if let [(a, _), (b, _), ..] = chosen.as_slice() {
        bail!("Options --{a} and --{b} are mutually exclusive");
    }
    let quoting = chosen.first().map_or(Quoting::Plain, |(_, q)| *q);
    let text = echo_text(&args.all("string"), quoting);
    if text.is_empty() {
        return Ok(());
    }
    if args.flag("err") {
        crate::cli::print_error([text]);
    } else {
        ctx.print(text);
    }
    Ok(())
}

/// The words, each quoted, apart by a space (trailing spaces trimmed, as virsh's buffer is).
fn echo_text(words: &[&str], quoting: Quoting) -> String {
    let mut out = String::new();
    for w in words {
        match quoting {
            Quoting::Plain => out.push_str(w),
            Quoting::Shell => out.push_str(&escape_shell(w)),
            Quoting::Xml => out.push_str(&escape_xml(w)),
            Quoting::Split => {
                for part in split_commas(w) {
                    out.push_str(&part);
                    out.push('\n');
                }
            }
        }
        out.push(' ');
    }
    out.trim_end_matches(' ').to_string()
}

/// Quote for a POSIX shell only when needed (libvirt: virBufferEscapeShell).
fn escape_shell(s: &str) -> String {
    const SPECIAL: &str = "\r\t\n !\"#$&'()*;<>?[\\]^`{|}~";
    if s.is_empty() {
        return "''".into();
    }
    if !s.chars().any(|c| SPECIAL.contains(c)) {
        return s.into();
    }
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// Escape for XML text and attributes, dropping control characters XML cannot carry
/// (libvirt: virBufferEscapeString).
fn escape_xml(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {}
            c => out.push(c),
        }
    }
    out
}

/// Split on ',' where ",," stands for a literal comma (libvirt: vshStringToArray).
fn split_commas(s: &str) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != ',' {
            parts.last_mut().unwrap().push(c);
        } else if chars.peek() == Some(&',') {
            chars.next();
            parts.last_mut().unwrap().push(',');
        } else {
            parts.push(String::new());
        }
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_quotings() {
        assert_eq!(echo_text(&["a", "b c"], Quoting::Plain), "a b c");
        assert_eq!(echo_text(&["a", "b c", ""], Quoting::Shell), "a 'b c' ''");
        assert_eq!(echo_text(&["it's"], Quoting::Shell), "'it'\\''s'");
        assert_eq!(
            echo_text(&["<a & 'b'>"], Quoting::Xml),
            "&lt;a &amp; &apos;b&apos;&gt;"
        );
        assert_eq!(echo_text(&["a,b,,c", "d"], Quoting::Split), "a\nb,c\n d\n");
        assert_eq!(echo_text(&[], Quoting::Plain), "");
    }
}
