//! `vsh`: virsh-compatible verbs over domdriver, with no daemon.

use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use domdriver::Connect;

const USAGE: &str = "\
usage: vsh [-c URI] COMMAND [ARGS]

commands:
  capabilities                      host and guest capabilities (XML)
  domcapabilities [--emulatorbin P] [--arch A] [--machine M] [--virttype T]
                                    domain capabilities (XML)
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

/// `vsh qemu-caps`: one emulator's caps document, probed live or replayed from `.replies`.
fn qemu_caps(rest: &mut Vec<String>) -> Result<()> {
    use domdriver::capabilities::{accel, qemu};
    use domdriver::runtime::block_on;
    let emulator = take_opt(rest, "emulator")?;
    let replies = take_opt(rest, "replies")?;
    let record = take_opt(rest, "record")?;
    no_more("qemu-caps", rest)?;
    let caps = match (emulator, replies) {
        (Some(e), None) => {
            let opts = qemu::ProbeOptions {
                kvm: accel::kvm_status(std::path::Path::new("/dev/kvm")).usable(),
                ..Default::default()
            };
            let path = std::path::PathBuf::from(&e);
            if let Some(out) = record {
                let (caps, text) = block_on(qemu::capture_replies(&path, &opts))?;
                write_atomic(std::path::Path::new(&out), text.as_bytes())?;
                caps
            } else {
                block_on(qemu::probe_binary(&path, &opts))?
            }
        }
        (None, Some(f)) => {
            if record.is_some() {
                bail!("--record goes with --emulator, not --replies");
            }
            let path = std::path::Path::new(&f);
            // libvirt's files name no binary; the conventional path keeps documents comparable.
            let emulator = format!(
                "/usr/bin/qemu-system-{}",
                replies_arch(path).unwrap_or("unknown")
            );
            block_on(qemu::probe_replies(path, &emulator))?
        }
        _ => bail!("qemu-caps needs exactly one of --emulator PATH or --replies FILE"),
    };
    print!("{}", caps.to_xml());
    Ok(())
}

/// `vsh domcapabilities`: what a guest of one emulator/arch/machine/virt type can have.
fn domcapabilities(uri: Option<&str>, rest: &mut Vec<String>) -> Result<()> {
    let emulatorbin = take_opt(rest, "emulatorbin")?;
    let arch = take_opt(rest, "arch")?;
    let machine = take_opt(rest, "machine")?;
    let virttype = take_opt(rest, "virttype")?;
    no_more("domcapabilities", rest)?;
    let conn = Connect::open(uri).context("failed to connect to the hypervisor")?;
    let xml = conn
        .domain_capabilities(
            emulatorbin.as_deref(),
            arch.as_deref(),
            machine.as_deref(),
            virttype.as_deref(),
        )
        .context("failed to get emulator capabilities")?;
    for w in conn.take_warnings() {
        eprintln!("warning: {w}");
    }
    // A closed stdout (`| head`) ends the output quietly rather than with a panic.
    use std::io::Write;
    let _ = writeln!(std::io::stdout(), "{xml}");
    Ok(())
}

/// The QEMU target named in a libvirt-style file name: `caps_7.2.0.x86_64.replies`,
/// `caps_7.2.0_aarch64+hvf.replies`.
fn replies_arch(path: &std::path::Path) -> Option<&str> {
    let stem = path.file_stem()?.to_str()?;
    let rest = stem.strip_prefix("caps_")?;
    let after_version = rest.find(|c: char| c == '_' || c.is_ascii_alphabetic())?;
    let arch = rest[after_version..].trim_start_matches(['_', '.']);
    let arch = arch.split('+').next()?;
    Some(match arch {
        "ppc64le" => "ppc64",
        a => a,
    })
}

fn write_atomic(path: &std::path::Path, data: &[u8]) -> Result<()> {
    use std::io::Write;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("cannot create a file in {}", dir.display()))?;
    tmp.write_all(data)?;
    // Recordings are meant to be shared (committed as test data): not the temp file's 0600.
    tmp.as_file()
        .set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))?;
    tmp.as_file().sync_all()?;
    tmp.persist(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
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
        "capabilities" => {
            no_more(&verb, &rest)?;
            let conn = open()?;
            let xml = conn.capabilities()?;
            for w in conn.take_warnings() {
                eprintln!("warning: {w}");
            }
            // virsh prints the document and then a newline of its own.
            println!("{xml}");
        }
        "version" => {
            no_more(&verb, &rest)?;
            let conn = open()?;
            let v = env!("CARGO_PKG_VERSION");
            println!("Compiled against library: domdriver {v}");
            println!("Using library: domdriver {v}");
            println!("Using API: QEMU {v}");
            let host = domdriver::capabilities::qemu::host_arch();
            let inv = conn.emulator_summaries();
            for w in conn.take_warnings() {
                eprintln!("warning: {w}");
            }
            match inv.emulators.iter().find(|(_, c)| c.arch == host) {
                Some((_, c)) => println!(
                    "Running hypervisor: QEMU {}.{}.{}",
                    c.version / 1_000_000,
                    c.version / 1000 % 1000,
                    c.version % 1000
                ),
                None => eprintln!("warning: no QEMU for the host architecture {host} is installed"),
            }
        }
        "qemu-caps" => qemu_caps(&mut rest)?,
        "domcapabilities" => domcapabilities(uri.as_deref(), &mut rest)?,
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
