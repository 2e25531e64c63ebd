//! `vsh`: virsh-compatible verbs over domdriver, with no daemon.

use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use domdriver::Connect;

#[path = "vsh/secret.rs"]
mod secret;

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
  define FILE                       define a persistent domain from XML
  undefine DOMAIN                   remove a domain's persistent config
  list [--all] [--inactive]         list domains (running ones by default)
  dominfo DOMAIN                    domain information
  domstate DOMAIN [--reason]        domain state
  start DOMAIN [--paused]           start a defined domain
  create FILE [--paused]            create and start a transient domain from XML
  console DOMAIN [--devname ALIAS] [--force]
                                    attach to a domain's serial console (^] detaches)
  domxml-to-native qemu-argv FILE [--explain]
                                    the QEMU command line this host would run for FILE
                                    (--explain: each option beside the XML element it comes from)
  dumpxml DOMAIN [--inactive] [--security-info]
                                    domain XML
  destroy|suspend|resume|shutdown|reboot DOMAIN
                                    lifecycle of a running domain
{SECRET}
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

/// Take boolean `--name` out of `rest`.
fn take_flag(rest: &mut Vec<String>, name: &str) -> bool {
    let flag = format!("--{name}");
    match rest.iter().position(|a| *a == flag) {
        Some(i) => {
            rest.remove(i);
            true
        }
        None => false,
    }
}

/// The value of `--NAME VALUE`, or else the first positional argument (virsh accepts both).
fn take_arg(verb: &str, rest: &mut Vec<String>, name: &str) -> Result<String> {
    if let Some(v) = take_opt(rest, name)? {
        return Ok(v);
    }
    match rest.iter().position(|a| !a.starts_with("--")) {
        Some(i) => Ok(rest.remove(i)),
        None => bail!("command '{verb}' requires <{name}> option"),
    }
}

/// virsh's domain lookup: by id when the argument is a number, then by UUID, then by name.
fn lookup<'c>(conn: &'c Connect, arg: &str) -> Result<domdriver::driver::domain::Domain<'c>> {
    let mut found = Err(anyhow::anyhow!("no domain"));
    if let Ok(id) = arg.parse::<i32>()
        && id >= 0
    {
        found = conn.lookup_domain_by_id(id).map_err(anyhow::Error::from);
    }
    if found.is_err() && uuid::Uuid::parse_str(arg).is_ok() {
        found = conn.lookup_domain_by_uuid(arg).map_err(anyhow::Error::from);
    }
    if found.is_err() {
        found = conn.lookup_domain_by_name(arg).map_err(anyhow::Error::from);
    }
    found.with_context(|| format!("failed to get domain '{arg}'"))
}

/// `vsh define FILE`.
fn cmd_define(conn: &Connect, rest: &mut Vec<String>) -> Result<()> {
    let file = take_arg("define", rest, "file")?;
    no_more("define", rest)?;
    let xml = read_xml_file(&file)?;
    let dom = conn
        .define_domain_xml(&xml)
        .with_context(|| format!("Failed to define domain from {file}"))?;
    println!("Domain '{}' defined from {file}", dom.name());
    Ok(())
}

/// Read an XML file as virsh does: at most 10 MiB, libvirt's messages.
fn read_xml_file(file: &str) -> Result<String> {
    use std::io::Read;
    const MAX: u64 = 10 << 20;
    let f = std::fs::File::open(file).map_err(|e| {
        anyhow::anyhow!(
            "Failed to open file '{file}': {}",
            domdriver::driver::config::strerror(&e)
        )
    })?;
    let mut data = Vec::new();
    f.take(MAX + 1).read_to_end(&mut data).map_err(|e| {
        anyhow::anyhow!(
            "Failed to read file '{file}': {}",
            domdriver::driver::config::strerror(&e)
        )
    })?;
    if data.len() as u64 > MAX {
        bail!("File '{file}' is too large");
    }
    String::from_utf8(data).map_err(|_| anyhow::anyhow!("File '{file}' is not UTF-8"))
}

/// `vsh undefine NAME`.
fn cmd_undefine(conn: &Connect, rest: &mut Vec<String>) -> Result<()> {
    let arg = take_arg("undefine", rest, "domain")?;
    no_more("undefine", rest)?;
    let dom = lookup(conn, &arg)?;
    dom.undefine()
        .with_context(|| format!("Failed to undefine domain '{}'", dom.name()))?;
    println!("Domain '{}' has been undefined", dom.name());
    Ok(())
}

/// virsh's vshTable: each cell after one space, columns padded to the widest cell plus two,
/// and under the header a dashed line as wide as every column plus three.
fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let cells = |r: &[String]| r.iter().map(|c| table_cell(c)).collect::<Vec<_>>();
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    let all: Vec<Vec<String>> = std::iter::once(cells(&header))
        .chain(rows.iter().map(|r| cells(r)))
        .collect();
    let mut widths = vec![0; header.len()];
    for r in &all {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let mut out = String::new();
    for (n, r) in all.iter().enumerate() {
        for (i, c) in r.iter().enumerate() {
            out.push(' ');
            out.push_str(c);
            if i + 1 < r.len() {
                out.extend(std::iter::repeat_n(' ', widths[i] - c.chars().count() + 2));
            }
        }
        out.push('\n');
        if n == 0 {
            let dashes: usize = widths.iter().map(|w| w + 3).sum();
            out.extend(std::iter::repeat_n('-', dashes));
            out.push('\n');
        }
    }
    print!("{out}");
}

/// vshTableSafeEncode: control characters as `\xNN`, so a name cannot break the table.
fn table_cell(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_control() {
            let mut b = [0; 4];
            for byte in c.encode_utf8(&mut b).bytes() {
                out.push_str(&format!("\\x{byte:02x}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// `vsh list [--all] [--inactive]`.
fn cmd_list(conn: &Connect, rest: &mut Vec<String>) -> Result<()> {
    use domdriver::driver::domain::ListFlags;
    let all = take_flag(rest, "all");
    let inactive = take_flag(rest, "inactive");
    no_more("list", rest)?;
    let flags = match (all, inactive) {
        (true, _) => ListFlags::ALL,
        (false, true) => ListFlags::INACTIVE,
        (false, false) => ListFlags::ACTIVE,
    };
    let doms = conn
        .list_all_domains_with_state(flags)
        .context("Failed to list domains")?;
    let rows: Vec<Vec<String>> = doms
        .iter()
        .map(|l| {
            let id = l.id.map_or("-".to_string(), |i| i.to_string());
            vec![id, l.domain.name().to_string(), l.state.state.to_string()]
        })
        .collect();
    print_table(&["Id", "Name", "State"], &rows);
    Ok(())
}

/// `vsh dominfo NAME`, in virsh's `%-15s %s` layout.
fn cmd_dominfo(conn: &Connect, rest: &mut Vec<String>) -> Result<()> {
    let arg = take_arg("dominfo", rest, "domain")?;
    no_more("dominfo", rest)?;
    let dom = lookup(conn, &arg)?;
    let info = dom.info()?;
    let line = |k: &str, v: &str| println!("{k:<15} {v}");
    line("Id:", &dom.id()?.map_or("-".to_string(), |i| i.to_string()));
    line("Name:", dom.name());
    line("UUID:", &dom.uuid_string());
    line("OS Type:", &dom.os_type()?);
    line("State:", &info.state.to_string());
    line("CPU(s):", &info.nr_virt_cpu.to_string());
    if info.cpu_time != 0 {
        line("CPU time:", &format!("{:.1}s", info.cpu_time as f64 / 1e9));
    }
    line("Max memory:", &format!("{} KiB", info.max_mem));
    line("Used memory:", &format!("{} KiB", info.memory));
    line(
        "Persistent:",
        if dom.is_persistent()? { "yes" } else { "no" },
    );
    // Neither autostart nor managed save exists here yet: virsh's answers for a domain
    // without them.
    line("Autostart:", "disable");
    line("Managed save:", "no");
    // The only security driver is 'none' (see the capabilities' <secmodel>), whose labels are
    // empty, so virsh prints no label line.
    line("Security model:", "none");
    line("Security DOI:", "0");
    Ok(())
}

/// `vsh domstate NAME [--reason]`.
fn cmd_domstate(conn: &Connect, rest: &mut Vec<String>) -> Result<()> {
    let reason = take_flag(rest, "reason");
    let arg = take_arg("domstate", rest, "domain")?;
    no_more("domstate", rest)?;
    let st = lookup(conn, &arg)?.state()?;
    if reason {
        println!("{st}");
    } else {
        println!("{}", st.state);
    }
    Ok(())
}

/// `vsh dumpxml NAME [--inactive] [--security-info]`.
fn cmd_dumpxml(conn: &Connect, rest: &mut Vec<String>) -> Result<()> {
    let inactive = take_flag(rest, "inactive");
    let secure = take_flag(rest, "security-info");
    let arg = take_arg("dumpxml", rest, "domain")?;
    no_more("dumpxml", rest)?;
    let xml = lookup(conn, &arg)?.xml_desc(domdriver::domain::FormatFlags { inactive, secure })?;
    print!("{xml}");
    if !xml.ends_with('\n') {
        println!();
    }
    Ok(())
}

/// `vsh start NAME [--paused]`, with virsh's messages.
fn cmd_start(conn: &Connect, rest: &mut Vec<String>) -> Result<()> {
    let paused = take_flag(rest, "paused");
    let arg = take_arg("start", rest, "domain")?;
    no_more("start", rest)?;
    let dom = lookup(conn, &arg)?;
    let name = dom.name().to_string();
    dom.create_with_flags(paused)
        .with_context(|| format!("Failed to start domain '{name}'"))?;
    println!("Domain '{name}' started");
    Ok(())
}

/// `vsh create FILE [--paused]`, with virsh's message.
fn cmd_create(conn: &Connect, rest: &mut Vec<String>) -> Result<()> {
    use domdriver::driver::domain::CreateFlags;
    let paused = take_flag(rest, "paused");
    let file = take_arg("create", rest, "file")?;
    no_more("create", rest)?;
    let xml = read_xml_file(&file)?;
    let flags = if paused {
        CreateFlags::PAUSED
    } else {
        CreateFlags::NONE
    };
    let dom = conn
        .create_domain_xml(&xml, flags)
        .with_context(|| format!("Failed to create domain from {file}"))?;
    println!("Domain '{}' created from {file}", dom.name());
    Ok(())
}

/// `vsh console NAME [--devname ALIAS] [--force]`: virsh's session, also usable with a pipe
/// on stdin (its end detaches once the guest is quiet).
fn cmd_console(conn: &Connect, rest: &mut Vec<String>) -> Result<()> {
    use domdriver::driver::console::attach_terminal;
    let devname = take_opt(rest, "devname")?;
    let force = take_flag(rest, "force");
    let arg = take_arg("console", rest, "domain")?;
    no_more("console", rest)?;
    let dom = lookup(conn, &arg)?;
    if !dom.is_active()? {
        bail!("The domain is not running");
    }
    let console = dom.console(devname.as_deref())?;
    let Some(pty) = console.pty_path().map(|p| p.to_path_buf()) else {
        bail!(
            "internal error: character device {} is not using a PTY",
            devname.as_deref().unwrap_or(console.device())
        );
    };
    let _session = dom.console_session(console.device(), force)?;
    println!("Connected to domain '{}'", dom.name());
    println!("Escape character is ^] (Ctrl + ])");
    attach_terminal(&pty, 0x1d, std::time::Duration::from_secs(1))?;
    Ok(())
}

/// `vsh destroy|suspend|resume|shutdown|reboot NAME`, with virsh's messages.
fn cmd_lifecycle(conn: &Connect, verb: &str, rest: &mut Vec<String>) -> Result<()> {
    let arg = take_arg(verb, rest, "domain")?;
    no_more(verb, rest)?;
    let dom = lookup(conn, &arg)?;
    let name = dom.name().to_string();
    let (res, done) = match verb {
        "destroy" => (dom.destroy(), "destroyed"),
        "suspend" => (dom.suspend(), "suspended"),
        "resume" => (dom.resume(), "resumed"),
        "shutdown" => (dom.shutdown(), "is being shutdown"),
        _ => (dom.reboot(), "is being rebooted"),
    };
    res.with_context(|| format!("Failed to {verb} domain '{name}'"))?;
    println!("Domain '{name}' {done}");
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
            println!("{}\n", open()?.uri());
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
            println!();
        }
        "qemu-caps" => qemu_caps(&mut rest)?,
        "domxml-to-native" => {
            let explain = take_flag(&mut rest, "explain");
            let (Some(format), Some(file)) = (rest.first().cloned(), rest.get(1).cloned()) else {
                bail!("usage: domxml-to-native qemu-argv FILE [--explain]");
            };
            no_more(&verb, &rest[2..])?;
            if format != "qemu-argv" {
                bail!("invalid argument: unsupported config type {format}");
            }
            let xml = std::fs::read_to_string(&file)
                .with_context(|| format!("Failed to open file '{file}'"))?;
            let conn = open()?;
            let (def, cmd) = conn.domain_xml_to_native_with_def(&xml)?;
            for w in conn.take_warnings() {
                eprintln!("warning: {w}");
            }
            if explain {
                let lines = domdriver::xml2argv::explain::explain(&def, &cmd);
                print!("{}", domdriver::xml2argv::explain::render(&lines));
            } else {
                println!("{}", cmd.to_shell_line());
            }
        }
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
        "define" | "undefine" | "list" | "dominfo" | "domstate" | "dumpxml" | "destroy"
        | "suspend" | "resume" | "shutdown" | "reboot" | "start" | "create" | "console"
        | "secret-define" | "secret-set-value" | "secret-list" | "secret-undefine" => {
            let conn = open()?;
            let res = match verb.as_str() {
                "define" => cmd_define(&conn, &mut rest),
                "undefine" => cmd_undefine(&conn, &mut rest),
                "list" => cmd_list(&conn, &mut rest),
                "dominfo" => cmd_dominfo(&conn, &mut rest),
                "domstate" => cmd_domstate(&conn, &mut rest),
                "dumpxml" => cmd_dumpxml(&conn, &mut rest),
                "start" => cmd_start(&conn, &mut rest),
                "create" => cmd_create(&conn, &mut rest),
                "console" => cmd_console(&conn, &mut rest),
                v if v.starts_with("secret-") => secret::run(&conn, v, &mut rest),
                _ => cmd_lifecycle(&conn, &verb, &mut rest),
            };
            // Files skipped on the way (corrupt configs, unreadable status files).
            for w in conn.take_warnings() {
                eprintln!("warning: {w}");
            }
            // virsh ends every command, failed or not, with an empty line on stdout.
            println!();
            res?
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
            print!("{}", USAGE.replace("{SECRET}", secret::USAGE));
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
