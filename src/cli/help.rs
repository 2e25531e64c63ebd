//! Help texts from the table, in virsh's layouts (libvirt: cmdHelp, vshCmddefHelp,
//! vshCmdGrpHelp, virshUsage), and the README's verb list.

use std::fmt::Write;

use super::table::{CmdDef, Group, OptKind};
use super::verbs;

/// The verbs of `group` that help lists (aliases are not listed).
fn listed(group: Group) -> impl Iterator<Item = &'static CmdDef> {
    verbs::all().filter(move |c| c.group == group && c.alias_of.is_none())
}

/// One group's heading and verbs, as `help` lists them.
fn group_block(out: &mut String, g: Group, colon: bool) {
    let _ = writeln!(
        out,
        " {} (help keyword '{}'){}",
        g.name(),
        g.keyword(),
        if colon { ":" } else { "" }
    );
    for c in listed(g) {
        let _ = writeln!(out, "    {:<30} {}", c.name, c.info);
    }
}

/// `help` without arguments.
pub fn grouped() -> String {
    let mut out = String::from("Grouped commands:\n\n");
    for g in Group::ALL {
        group_block(&mut out, *g, true);
        out.push('\n');
    }
    out
}

/// `help GROUP`.
pub fn group(g: Group) -> String {
    let mut out = String::new();
    group_block(&mut out, g, true);
    out
}

/// The group whose name or keyword is `s`.
pub fn find_group(s: &str) -> Option<Group> {
    Group::ALL
        .iter()
        .copied()
        .find(|g| g.name() == s || g.keyword() == s)
}

/// `vsh --help`.
pub fn usage() -> String {
    let mut out = String::from(
        "\nvsh [options]... [<command_string>]\n\
         vsh [options]... <command> [args...]\n\n  \
         options:\n    \
         -c | --connect=URI      hypervisor connection URI\n    \
         -d | --debug=NUM        debug level [0-4]\n    \
         -e | --escape <char>    set escape sequence for console\n    \
         -h | --help             this help\n    \
         -k | --keepalive-interval=NUM\n                            \
         keepalive interval in seconds, 0 for disable\n    \
         -K | --keepalive-count=NUM\n                            \
         number of possible missed keepalive messages\n    \
         -l | --log=FILE         output logging to file\n    \
         -q | --quiet            quiet mode\n    \
         -r | --readonly         connect readonly\n    \
         -t | --timing           print timing information\n    \
         -v                      short version\n    \
         -V                      long version\n         \
         --version[=TYPE]   version, TYPE is short or long (default short)\n         \
         --json             print data as JSON (verbs that print data)\n  \
         commands (non interactive mode):\n\n",
    );
    for g in Group::ALL {
        group_block(&mut out, *g, false);
        out.push('\n');
    }
    out.push_str("\n  (specify help <group> for details about the commands in the group)\n");
    out.push_str("\n  (specify help <command> for details about the command)\n\n");
    out
}

/// `help VERB` and `VERB --help`: NAME, SYNOPSIS, DESCRIPTION, OPTIONS.
pub fn command(c: &CmdDef) -> String {
    let mut out = String::new();
    let _ = write!(out, "  NAME\n    {} - {}\n", c.name, c.info);
    let _ = write!(out, "\n  SYNOPSIS\n    {}", c.name);
    // An argv option shows its name as optional when earlier options take values by position.
    let mut shortopt = false;
    for o in c.opts {
        let s = match o.kind {
            OptKind::Bool => format!("[--{}]", o.name),
            OptKind::Int if o.required => format!("<{}>", o.name),
            OptKind::Int => format!("[--{} <number>]", o.name),
            OptKind::String if o.required => format!("--{} <string>", o.name),
            OptKind::String => format!("[--{} <string>]", o.name),
            OptKind::Data if o.required => format!("<{}>", o.name),
            OptKind::Data => format!("[<{}>]", o.name),
            // Repeatable named options (console's --expect) are ours, not virsh's.
            OptKind::Argv if !o.positional => format!("[--{} <string>]...", o.name),
            OptKind::Argv => match (shortopt, o.required) {
                (true, true) => format!("{{[--{}] <string>}}...", o.name),
                (true, false) => format!("[[--{}] <string>]...", o.name),
                (false, true) => format!("<{}>...", o.name),
                (false, false) => format!("[<{}>]...", o.name),
            },
            OptKind::Alias(_) => continue,
        };
        if o.positional && matches!(o.kind, OptKind::Int | OptKind::String | OptKind::Data) {
            shortopt = true;
        }
        let _ = write!(out, " {s}");
    }
    if c.json {
        out.push_str(" [--json]");
    }
    out.push('\n');
    if !c.desc.is_empty() {
        let _ = write!(out, "\n  DESCRIPTION\n    {}\n", c.desc);
    }
    if !c.opts.is_empty() || c.json {
        out.push_str("\n  OPTIONS\n");
        for o in c.opts {
            let left = match o.kind {
                OptKind::Bool => format!("--{}", o.name),
                OptKind::Int if o.required => format!("[--{}] <number>", o.name),
                OptKind::Int => format!("--{} <number>", o.name),
                OptKind::String => format!("--{} <string>", o.name),
                OptKind::Data => format!("[--{}] <string>", o.name),
                OptKind::Argv if !o.positional => format!("--{} <string>", o.name),
                OptKind::Argv if shortopt => format!("[--{}] <string>", o.name),
                OptKind::Argv => format!("<{}>", o.name),
                OptKind::Alias(_) => continue,
            };
            let _ = writeln!(out, "    {left:<15}  {}", o.help);
        }
        if c.json {
            let _ = writeln!(
                out,
                "    {:<15}  print the data as one JSON document",
                "--json"
            );
        }
    }
    out.push('\n');
    out
}

/// The README's list of verbs by group, in Markdown (`vsh help --markdown`).
pub fn markdown() -> String {
    let mut out = String::new();
    for g in Group::ALL {
        let _ = writeln!(out, "**{}** (`help {}`)\n", g.name(), g.keyword());
        for c in listed(*g) {
            let _ = writeln!(out, "- `{}`: {}", c.name, c.info);
        }
        out.push('\n');
    }
    out
}
