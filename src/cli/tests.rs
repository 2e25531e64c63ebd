//! The table checked as a whole, and the parser driven from it.

use super::ctx::{CmdCtx, Out};
use super::globals::Globals;
use super::parse::{lookup, parse, split_line};
use super::table::{Group, OptKind};
use super::{help, verbs};

fn words(s: &str) -> Vec<String> {
    s.split_whitespace().map(String::from).collect()
}

fn parse_err(s: &str) -> Vec<String> {
    parse(&words(s)).unwrap_err().0
}

#[test]
fn every_verb_is_unique_reachable_and_has_help() {
    let mut names: Vec<&str> = verbs::all().map(|c| c.name).collect();
    let n = names.len();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), n, "a verb is in the table twice");
    for c in verbs::all() {
        let found = lookup(c.name).expect(c.name);
        match c.alias_of {
            Some(real) => assert_eq!(found.name, real),
            None => {
                assert_eq!(found.name, c.name);
                assert!(!c.info.is_empty(), "{} has no info", c.name);
                assert!(help::grouped().contains(&format!("    {:<30} {}\n", c.name, c.info)));
                assert!(help::group(c.group).contains(c.name));
                let h = help::command(c);
                assert!(h.starts_with(&format!("  NAME\n    {} - ", c.name)), "{h}");
                assert!(h.contains("\n  SYNOPSIS\n"));
            }
        }
        // Options: unique names, help for each, required before optional positional ones
        // (virsh's rule), argv last among positional ones, aliases pointing at an option.
        let mut opt_names: Vec<&str> = c.opts.iter().map(|o| o.name).collect();
        opt_names.sort();
        opt_names.dedup();
        assert_eq!(
            opt_names.len(),
            c.opts.len(),
            "{}: duplicate option",
            c.name
        );
        let mut optional_seen = false;
        for (i, o) in c.opts.iter().enumerate() {
            assert!(
                !matches!(o.name, "help" | "json"),
                "{}: reserved option",
                c.name
            );
            match o.kind {
                OptKind::Alias(t) => {
                    let t = t.split('=').next().unwrap();
                    assert!(
                        c.opt(t).is_some(),
                        "{}: alias --{} to nothing",
                        c.name,
                        o.name
                    );
                    continue;
                }
                OptKind::Bool => assert!(!o.required, "{}: required flag", c.name),
                OptKind::Argv if o.positional => assert!(
                    c.opts[i + 1..]
                        .iter()
                        .all(|p| !p.positional || p.kind == OptKind::Bool),
                    "{}: argv --{} is not last",
                    c.name,
                    o.name
                ),
                _ => {}
            }
            assert!(!o.help.is_empty(), "{}: --{} has no help", c.name, o.name);
            if o.positional && o.kind != OptKind::Bool {
                if o.required {
                    assert!(
                        !optional_seen,
                        "{}: required --{} after optional",
                        c.name, o.name
                    );
                } else {
                    optional_seen = true;
                }
            }
        }
    }
    for g in Group::ALL {
        assert!(verbs::all().any(|c| c.group == *g), "empty group {g:?}");
        assert_eq!(help::find_group(g.keyword()), Some(*g));
        assert_eq!(help::find_group(g.name()), Some(*g));
    }
}

#[test]
fn positional_named_and_equals_forms() {
    let p = parse(&words("dumpxml d1 --inactive")).unwrap();
    assert_eq!(p.string("domain"), Some("d1"));
    assert!(p.flag("inactive"));
    let p = parse(&words("dumpxml --domain=d2")).unwrap();
    assert_eq!(p.string("domain"), Some("d2"));
    let p = parse(&words("dumpxml --domain d3")).unwrap();
    assert_eq!(p.string("domain"), Some("d3"));
    // `--` ends options: what follows is data even when it looks like one.
    let p = parse(&words("dumpxml -- --weird")).unwrap();
    assert_eq!(p.string("domain"), Some("--weird"));
    // Positional options fill in declared order, skipping those given by name.
    let p = parse(&words("domxml-to-native --format qemu-argv f.xml")).unwrap();
    assert_eq!(p.string("xml"), Some("f.xml"));
    let p = parse(&words("console d --expect a --send b --expect c")).unwrap();
    let order: Vec<_> = p.given.iter().map(|(n, _)| *n).collect();
    assert_eq!(order, ["domain", "expect", "send", "expect"]);
    assert_eq!(p.all("expect"), ["a", "c"]);
    let p = parse(&words("replies-check a b c")).unwrap();
    assert_eq!(p.all("file"), ["a", "b", "c"]);
    let p = parse(&words("list --help --bogus-ignored-not")).unwrap_err();
    assert_eq!(
        p.0,
        ["command 'list' doesn't support option --bogus-ignored-not"]
    );
    let p = parse(&words("start --help")).unwrap();
    assert!(p.help, "--help needs no required option");
    let p = parse(&words("list --json")).unwrap();
    assert!(p.json);
}

#[test]
fn virsh_messages() {
    assert_eq!(parse_err("frobnicate"), ["unknown command: 'frobnicate'"]);
    assert_eq!(
        parse_err("uri --bogus"),
        ["command 'uri' doesn't support option --bogus"]
    );
    assert_eq!(
        parse_err("start"),
        ["command 'start' requires <domain> option"]
    );
    assert_eq!(
        parse_err("dumpxml d --inactive --inactive"),
        ["option --inactive already seen"]
    );
    assert_eq!(parse_err("dumpxml d e"), ["unexpected data 'e'"]);
    assert_eq!(
        parse_err("console d --timeout"),
        ["expected syntax: --timeout <number>"]
    );
    assert_eq!(
        parse_err("console d --devname"),
        ["expected syntax: --devname <string>"]
    );
    assert_eq!(
        parse_err("list --all=yes"),
        ["invalid '=' after option --all"]
    );
    assert!(parse(&words("uri --json")).unwrap().json);
    assert_eq!(
        parse_err("start d --json"),
        ["command 'start' doesn't support option --json"]
    );
    let p = parse(&words("console d --timeout x")).unwrap();
    assert_eq!(
        p.int::<u32>("timeout").unwrap_err().to_string(),
        "Numeric value 'x' for <timeout> option is malformed or out of range"
    );
}

#[test]
fn command_strings() {
    assert_eq!(
        split_line("list --all; uri\ndominfo 'a b' \"c\\\"d\" e\\ f # comment").unwrap(),
        vec![
            words("list --all"),
            words("uri"),
            vec!["dominfo".into(), "a b".into(), "c\"d".into(), "e f".into()],
        ]
    );
    assert_eq!(split_line("echo \"open").unwrap_err().0, ["missing \""]);
    assert_eq!(split_line("echo \\").unwrap_err().0, ["dangling \\"]);
    assert!(split_line("  # only a comment").unwrap().is_empty());
}

#[test]
fn help_layout() {
    let h = help::command(lookup("dumpxml").unwrap());
    assert!(h.starts_with(
        "  NAME\n    dumpxml - domain information in XML\n\n  SYNOPSIS\n    dumpxml <domain> [--inactive] [--security-info] [--xpath <string>] [--wrap]\n"
    ), "{h}");
    assert!(h.contains("\n  OPTIONS\n    [--domain] <string>  domain name, id or uuid\n    --inactive       show inactive defined XML\n"), "{h}");
    let h = help::command(lookup("quit").unwrap());
    assert_eq!(
        h,
        "  NAME\n    quit - quit this interactive terminal\n\n  SYNOPSIS\n    quit\n\n"
    );
    assert!(
        help::grouped()
            .starts_with("Grouped commands:\n\n Domain Management (help keyword 'domain'):\n")
    );
}

#[test]
fn readonly_refuses_changing_verbs() {
    let g = Globals {
        readonly: true,
        uri: Some("qemu:///embed?root=/nonexistent/vsh-ro".into()),
        ..Globals::default()
    };
    let mut ctx = CmdCtx::new(g, Out::buffer());
    let p = parse(&words("start d")).unwrap();
    assert!(!super::run_one(&mut ctx, &p));
    let p = parse(&words("help start")).unwrap();
    assert!(super::run_one(&mut ctx, &p));
    assert!(ctx.out().contents().contains("start - start a"));
}

fn noop(_: &mut CmdCtx, _: &super::parse::ParsedArgs) -> anyhow::Result<()> {
    Ok(())
}

/// A verb with virsh's option kinds that no real verb combines yet: aliases (plain and with a
/// value, as virsh's `echo --hi`), a positional number, argv.
static SYNTHETIC: super::table::CmdDef = super::table::CmdDef {
    name: "synthetic",
    group: Group::VirshItself,
    info: "test verb",
    desc: "",
    opts: &[
        super::table::OptDef::alias("dom", "domain"),
        super::table::OptDef::alias("hi", "string=hello"),
        super::table::OptDef::domain("domain", super::table::DomainFilter::All),
        super::table::OptDef::int("count", "how many").positional(),
        super::table::OptDef::flag("live", "live"),
        super::table::OptDef::argv("string", "words"),
    ],
    handler: noop,
    access: super::table::Access::Read,
    json: false,
    alias_of: None,
};

#[test]
fn aliases_numbers_and_argv() {
    use super::parse::parse_for;
    let w = |s: &str| words(s);
    let p = parse_for(&SYNTHETIC, &w("--dom d1 7 a b")).unwrap();
    assert_eq!(p.string("domain"), Some("d1"));
    assert_eq!(p.int::<u32>("count").unwrap(), Some(7));
    assert_eq!(p.all("string"), ["a", "b"]);
    let p = parse_for(&SYNTHETIC, &w("d1 --hi --live")).unwrap();
    assert_eq!(p.all("string"), ["hello"]);
    assert!(p.flag("live"));
    assert_eq!(
        parse_for(&SYNTHETIC, &w("d1 --hi=x")).unwrap_err().0,
        ["invalid '=' after option --hi"]
    );
    assert_eq!(
        parse_for(&SYNTHETIC, &w("d1 --count=-x"))
            .unwrap()
            .int::<u32>("count")
            .unwrap_err()
            .to_string(),
        "Numeric value '-x' for <count> option is malformed or out of range"
    );
    let h = help::command(&SYNTHETIC);
    assert!(
        h.contains("    synthetic <domain> [--count <number>] [--live] [[--string] <string>]...\n"),
        "{h}"
    );
    assert!(!h.contains("--dom "), "aliases are not documented: {h}");
}
