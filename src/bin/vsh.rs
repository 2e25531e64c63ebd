//! `vsh`: virsh-compatible verbs over domdriver, with no daemon.

use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use domdriver::Connect;

const USAGE: &str = "\
usage: vsh [-c URI] COMMAND [ARGS]

commands:
  capabilities                      host and guest capabilities (XML)
  uri                               the connection URI
  version                           library and hypervisor versions
  qemu-caps --emulator PATH         probe one emulator and print its caps document
  qemu-caps --replies FILE          the same, from a recorded .replies conversation
  qemu-caps --emulator PATH --record FILE
                                    probe and record the conversation as .replies
  replies-check FILE...             check .replies files (format and id numbering)
  replies-renumber FILE...          renumber ids in .replies files in place

options:
  -c, --connect URI                 qemu:///session, qemu:///system or qemu:///embed?root=DIR
                                    (default: VSH_DEFAULT_URI, else system for root, session
                                    otherwise)
";

struct Args {
    uri: Option<String>,
    verb: String,
    rest: Vec<String>,
}

fn parse_args() -> Result<Option<Args>> {
    let mut it = std::env::args().skip(1);
    let mut uri = None;
    while let Some(a) = it.next() {
        match a.as_str() {
            "-c" | "--connect" => {
                uri = Some(it.next().context("option '-c' needs a URI")?);
            }
            s if s.starts_with("--connect=") => uri = Some(s["--connect=".len()..].to_string()),
            "-h" | "--help" | "help" => return Ok(None),
            "-v" | "--version" => {
                println!("{}", env!("CARGO_PKG_VERSION"));
                std::process::exit(0);
            }
            s if s.starts_with('-') => bail!("unsupported option '{s}'. See --help."),
            _ => {
                return Ok(Some(Args {
                    uri,
                    verb: a,
                    rest: it.collect(),
                }));
            }
        }
    }
    Ok(None)
}

/// Take `--name VALUE` (or `--name=VALUE`) out of `rest`.
fn take_opt(rest: &mut Vec<String>, name: &str) -> Result<Option<String>> {
    let flag = format!("--{name}");
    let prefix = format!("--{name}=");
    if let Some(i) = rest.iter().position(|a| *a == flag) {
        if i + 1 >= rest.len() {
            bail!("option '{flag}' needs a value");
        }
        let v = rest.remove(i + 1);
        rest.remove(i);
        return Ok(Some(v));
    }
    if let Some(i) = rest.iter().position(|a| a.starts_with(&prefix)) {
        let v = rest.remove(i)[prefix.len()..].to_string();
        return Ok(Some(v));
    }
    Ok(None)
}

fn no_more(verb: &str, rest: &[String]) -> Result<()> {
    if let Some(a) = rest.first() {
        bail!("command '{verb}' doesn't support option '{a}'");
    }
    Ok(())
}

fn run(args: Args) -> Result<()> {
    let Args {
        uri,
        verb,
        mut rest,
    } = args;
    let open = || Connect::open(uri.as_deref()).context("failed to connect to the hypervisor");
    match verb.as_str() {
        "uri" => {
            no_more(&verb, &rest)?;
            println!("{}", open()?.uri());
        }
        "replies-check" => {
            if rest.is_empty() {
                bail!("command 'replies-check' needs at least one FILE");
            }
            let mut bad = 0;
            for f in &rest {
                let report = domdriver::qmp::check_replies_file(std::path::Path::new(f))?;
                if report.is_ok() {
                    println!("{report}");
                } else {
                    eprint!("{report}");
                    if !report.to_string().ends_with('\n') {
                        eprintln!();
                    }
                    bad += 1;
                }
            }
            if bad > 0 {
                bail!("{bad} file(s) need fixing (vsh replies-renumber rewrites ids and layout)");
            }
        }
        "replies-renumber" => {
            if rest.is_empty() {
                bail!("command 'replies-renumber' needs at least one FILE");
            }
            for f in &rest {
                let n = domdriver::qmp::renumber_replies_file(std::path::Path::new(f))?;
                println!("{f}: {n} ids changed");
            }
        }
        other => {
            bail!("unknown command: '{other}'. See --help.");
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(Some(a)) => a,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // virsh prints each layer of an error on its own `error:` line.
            for cause in e.chain() {
                eprintln!("error: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}
