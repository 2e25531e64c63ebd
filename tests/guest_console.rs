//! Serial consoles of real guests under TCG: the capture QEMU writes from the first byte, the
//! expect-style API over it, typing through the pty, the pty in the live XML, `vsh console`
//! in pipe mode, and transient domains (`create_domain_xml`, `vsh create`). Every QEMU is
//! destroyed, and killed by pid on drop should a test fail half-way.

#[path = "common/bootkit.rs"]
mod bootkit;

use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use domdriver::Connect;
use domdriver::domain::FormatFlags;
use domdriver::driver::domain::{CreateFlags, ListFlags};
use domdriver::driver::status::{GuestStatus, is_same_live_process};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const QEMU: &str = "/usr/bin/qemu-system-x86_64";
const LIVE: FormatFlags = FormatFlags {
    inactive: false,
    secure: true,
};

/// Kills, on drop, the QEMU of every guest named here that is still running.
struct Reaper {
    run: PathBuf,
    names: Vec<String>,
}

impl Drop for Reaper {
    fn drop(&mut self) {
        for n in &self.names {
            let Ok(Some(st)) = GuestStatus::read(n, &self.run.join(format!("{n}.json"))) else {
                continue;
            };
            if is_same_live_process(st.pid, st.start_time) {
                let _ = kill(Pid::from_raw(st.pid), Signal::SIGKILL);
                let until = Instant::now() + Duration::from_secs(5);
                while is_same_live_process(st.pid, st.start_time) && Instant::now() < until {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
    }
}

fn setup() -> Option<(tempfile::TempDir, String, bootkit::LinuxKit)> {
    if !Path::new(QEMU).exists() {
        eprintln!("\n*** SKIPPED: {QEMU} is not installed ***\n");
        return None;
    }
    let kit = bootkit::linux()?;
    let d = tempfile::Builder::new()
        .prefix("gc")
        .tempdir_in("/tmp")
        .unwrap();
    let uri = format!("qemu:///embed?root={}", d.path().display());
    Some((d, uri, kit))
}

fn reaper(root: &Path, names: &[&str]) -> Reaper {
    Reaper {
        run: root.join("run/qemu"),
        names: names.iter().map(|n| n.to_string()).collect(),
    }
}

fn guest_xml(name: &str, kit: &bootkit::LinuxKit, serial: &str) -> String {
    format!(
        "<domain type='qemu'>
  <name>{name}</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>{}</kernel>
    <initrd>{}</initrd>
    <cmdline>{}</cmdline>
  </os>
  <devices>
    <emulator>{QEMU}</emulator>
    {serial}
    <memballoon model='none'/>
  </devices>
</domain>
",
        kit.kernel.display(),
        kit.initrd.display(),
        kit.cmdline(),
    )
}

const PTY_SERIAL: &str = "<serial type='pty'><target port='0'/></serial>";

fn vsh(uri: &str, args: &[&str], stdin: &[u8]) -> (bool, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_vsh"))
        .arg("-c")
        .arg(uri)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin).unwrap();
    drop(input);
    // A session that never ends fails the test instead of hanging it: killed by pid.
    let pid = Pid::from_raw(child.id() as i32);
    let (done, wait) = std::sync::mpsc::channel::<()>();
    let guard = std::thread::spawn(move || {
        let hung = wait.recv_timeout(Duration::from_secs(120)).is_err();
        if hung {
            let _ = kill(pid, Signal::SIGKILL);
        }
        hung
    });
    let out = child.wait_with_output().unwrap();
    let _ = done.send(());
    assert!(
        !guard.join().unwrap(),
        "vsh {args:?} did not end within 120 s; printed {:?} {:?}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Read `master` until `needle` shows up; everything read so far.
fn read_until(master: &OwnedFd, needle: &str, limit: Duration) -> String {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let deadline = Instant::now() + limit;
    let mut seen = Vec::new();
    while !String::from_utf8_lossy(&seen).contains(needle) {
        assert!(
            Instant::now() < deadline,
            "no '{needle}' from the terminal; saw {:?}",
            String::from_utf8_lossy(&seen)
        );
        let mut fds = [PollFd::new(master.as_fd(), PollFlags::POLLIN)];
        if poll(&mut fds, PollTimeout::from(200u16)).unwrap_or(0) > 0 {
            let mut buf = [0u8; 1024];
            match nix::unistd::read(master, &mut buf) {
                Ok(n) if n > 0 => seen.extend_from_slice(&buf[..n]),
                _ => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }
    String::from_utf8_lossy(&seen).into_owned()
}

/// `vsh console` on a terminal: raw mode during the session, typing reaches the guest and
/// its echo comes back, a second session is refused, `--force` takes the console and the
/// first session ends with the terminal's settings restored.
fn tty_session(uri: &str) {
    use nix::sys::termios::{LocalFlags, tcgetattr};
    let pty = nix::pty::openpty(None, None).unwrap();
    let before = tcgetattr(&pty.slave).unwrap();
    assert!(before.local_flags.contains(LocalFlags::ICANON));
    let mut child = Command::new(env!("CARGO_BIN_EXE_vsh"))
        .args(["-c", uri, "console", "con"])
        .stdin(Stdio::from(pty.slave.try_clone().unwrap()))
        .stdout(Stdio::from(pty.slave.try_clone().unwrap()))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let banner = read_until(&pty.master, "(Ctrl + ])", Duration::from_secs(30));
    assert!(banner.contains("Connected to domain 'con'"), "{banner}");
    let until = Instant::now() + Duration::from_secs(10);
    while tcgetattr(&pty.slave)
        .unwrap()
        .local_flags
        .contains(LocalFlags::ICANON)
    {
        assert!(Instant::now() < until, "the terminal never went raw");
        std::thread::sleep(Duration::from_millis(50));
    }
    nix::unistd::write(&pty.master, b"tty-555\r").unwrap();
    read_until(&pty.master, "tty-555", Duration::from_secs(60));
    // One session per device, unless forced.
    let (ok, _, err) = vsh(uri, &["console", "con"], b"");
    assert!(!ok);
    assert_eq!(
        err,
        "error: operation failed: Active console session exists for this domain\n"
    );
    // --force takes the console: the earlier session ends by itself.
    let (ok, out, err) = vsh(uri, &["console", "con", "--force"], b"\x1d");
    assert!(ok, "{out}{err}");
    let until = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > until {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            let _ = child.wait();
            panic!("vsh console did not end when another session forced the console");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success());
    let after = tcgetattr(&pty.slave).unwrap();
    assert_eq!(after.local_flags, before.local_flags);
    assert_eq!(after.input_flags, before.input_flags);
    assert_eq!(after.output_flags, before.output_flags);
}

#[test]
fn pty_console_is_captured_from_the_first_byte_and_answers_expect() {
    let Some((d, uri, kit)) = setup() else {
        return;
    };
    let _reap = reaper(d.path(), &["con"]);
    let conn = Connect::open(Some(&uri)).unwrap();
    let dom = conn
        .define_domain_xml(&guest_xml("con", &kit, PTY_SERIAL))
        .unwrap();
    dom.create().unwrap();

    let mut con = dom.console(None).unwrap();
    assert_eq!(con.device(), "serial0");
    let boot = con
        .expect(bootkit::GUEST_MARKER, Duration::from_secs(120))
        .unwrap();
    assert!(boot.ends_with(bootkit::GUEST_MARKER), "{boot}");

    // The capture holds the boot from its first byte: exactly what the first expect read.
    let capture = con.capture_path().to_path_buf();
    assert_eq!(
        capture,
        d.path().join("log/qemu/console/con/serial0.log"),
        "capture in the guest's log dir"
    );
    let text = std::fs::read(&capture).unwrap();
    assert!(
        text.starts_with(boot.as_bytes()),
        "capture starts with the boot output"
    );

    // The live XML shows the pty QEMU allocated and the capture; the config does neither.
    let live = dom.xml_desc(LIVE).unwrap();
    let pty = con.pty_path().expect("a pty").display().to_string();
    assert!(pty.starts_with("/dev/pts/"), "{pty}");
    assert!(
        live.contains(&format!(
            "<serial type='pty'>\n      <source path='{pty}'/>"
        )),
        "{live}"
    );
    assert!(
        live.contains(&format!("<console type='pty' tty='{pty}'>")),
        "{live}"
    );
    assert!(
        live.contains(&format!("<log file='{}' append='off'/>", capture.display())),
        "{live}"
    );
    let config = dom
        .xml_desc(FormatFlags {
            inactive: true,
            secure: true,
        })
        .unwrap();
    assert!(!config.contains("<log "), "{config}");

    // Typing goes through the pty: the guest's tty echoes the line, and expect_regex
    // continues after the marker.
    con.send_line("typed-12345").unwrap();
    let m = con
        .expect_regex(r"typed-(\d+)", Duration::from_secs(60))
        .unwrap();
    assert_eq!(m.text, "typed-12345");
    assert_eq!(m.groups[1].as_deref(), Some("12345"));
    assert!(!m.before.contains(bootkit::GUEST_MARKER), "{m:?}");

    // A string that never comes: the error says what was awaited and what was seen.
    let t0 = Instant::now();
    let e = con
        .expect("NEVER-PRINTED-42", Duration::from_millis(500))
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("Timed out during operation: "), "{e}");
    assert!(e.contains("'NEVER-PRINTED-42'"), "{e}");
    assert!(t0.elapsed() < Duration::from_secs(30));
    let bad = con.expect_regex("(", Duration::from_secs(1)).unwrap_err();
    assert!(
        bad.to_string()
            .starts_with("invalid argument: bad console pattern '('")
    );

    // The command line of what runs, pasteable.
    let cmd = dom.cmdline_quoted().unwrap();
    assert!(cmd.starts_with(QEMU), "{cmd}");
    assert!(cmd.contains(" -name guest=con,debug-threads=on "), "{cmd}");
    let logfile = format!(
        " -chardev pty,id=charserial0,logfile={},logappend=off ",
        capture.display()
    );
    assert!(cmd.contains(&logfile), "{cmd}");

    // vsh console with a pipe on stdin: connects, types, detaches at the end of input.
    let (ok, out, err) = vsh(&uri, &["console", "con"], b"piped-777\n");
    assert!(ok, "{out}{err}");
    assert!(
        out.starts_with("Connected to domain 'con'\nEscape character is ^] (Ctrl + ])\n"),
        "{out}"
    );
    con.expect("piped-777", Duration::from_secs(60)).unwrap();
    // A console that typed keeps the pty open a moment, reading it: a new one has not.
    drop(con);
    let mut con = dom.console(None).unwrap();
    tty_session(&uri);
    con.expect("tty-555", Duration::from_secs(60)).unwrap();
    // The escape character detaches at once, whatever follows it.
    let (ok, out, err) = vsh(
        &uri,
        &["console", "con", "--devname", "serial0"],
        b"\x1dlost\n",
    );
    assert!(ok, "{out}{err}");
    let (ok, _, err) = vsh(&uri, &["console", "con", "--devname", "serial7"], b"");
    assert!(!ok);
    assert!(
        err.contains("error: internal error: cannot find character device serial7"),
        "{err}"
    );

    // A session whose input stays open ends when the guest goes: the monitor, which carries
    // the session's bytes, closes it.
    let mut session = Command::new(env!("CARGO_BIN_EXE_vsh"))
        .args(["-c", &uri, "console", "con"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let session_pid = Pid::from_raw(session.id() as i32);
    let mut banner = std::io::BufReader::new(session.stdout.take().unwrap());
    let (seen_tx, seen_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        let mut lines = String::new();
        while !lines.contains("Escape character") {
            if banner.read_line(&mut lines).unwrap_or(0) == 0 {
                break;
            }
        }
        let _ = seen_tx.send(lines);
    });
    let Ok(lines) = seen_rx.recv_timeout(Duration::from_secs(60)) else {
        let _ = kill(session_pid, Signal::SIGKILL);
        let _ = session.wait();
        panic!("vsh console never connected");
    };
    assert!(lines.contains("Connected to domain 'con'"), "{lines}");

    // A guest that goes away while expected fails the wait at once.
    dom.destroy().unwrap();
    let until = Instant::now() + Duration::from_secs(20);
    let ended = loop {
        if let Some(st) = session.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > until {
            let _ = kill(session_pid, Signal::SIGKILL);
            let _ = session.wait();
            panic!("vsh console did not end with the guest");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(ended.success());
    let t0 = Instant::now();
    let e = con
        .expect("NEVER-PRINTED-43", Duration::from_secs(120))
        .unwrap_err()
        .to_string();
    assert!(t0.elapsed() < Duration::from_secs(10), "{e}");
    assert!(
        e.contains("domain 'con' stopped while waiting for 'NEVER-PRINTED-43'"),
        "{e}"
    );
    // The capture survives the guest.
    assert!(
        std::fs::read_to_string(&capture)
            .unwrap()
            .contains(bootkit::GUEST_MARKER)
    );
    let e = dom.console(None).unwrap_err().to_string();
    assert_eq!(e, "Requested operation is not valid: domain is not running");
    let e = con.send_line("late").unwrap_err().to_string();
    assert_eq!(e, "Requested operation is not valid: domain is not running");
    let e = dom.cmdline_quoted().unwrap_err().to_string();
    assert_eq!(e, "Requested operation is not valid: domain is not running");
    let (ok, _, err) = vsh(&uri, &["console", "con"], b"");
    assert!(!ok);
    assert_eq!(err, "error: The domain is not running\n");
}

#[test]
fn transient_domains_start_at_once_and_vanish_when_stopped() {
    let Some((d, uri, kit)) = setup() else {
        return;
    };
    let _reap = reaper(d.path(), &["tr", "trv"]);
    let conn = Connect::open(Some(&uri)).unwrap();
    let serial = d.path().join("serial.txt");
    let file_serial = format!(
        "<serial type='file'><source path='{}'/><target port='0'/></serial>\
         <serial type='null'><target port='1'/></serial>",
        serial.display()
    );
    // Paused: nothing here needs the guest to run, and the machine has little CPU.
    let dom = conn
        .create_domain_xml(&guest_xml("tr", &kit, &file_serial), CreateFlags::PAUSED)
        .unwrap();
    assert_eq!(dom.state().unwrap().to_string(), "paused (user)");
    assert!(!dom.is_persistent().unwrap());
    assert!(!d.path().join("etc/qemu/tr.xml").exists());
    let listed: Vec<String> = conn
        .list_all_domains(ListFlags::ALL)
        .unwrap()
        .iter()
        .map(|d| d.name().to_string())
        .collect();
    assert_eq!(listed, ["tr"]);
    // A second create of a running name is refused.
    let e = conn
        .create_domain_xml(&guest_xml("tr", &kit, &file_serial), CreateFlags::NONE)
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "Requested operation is not valid: domain 'tr' is already active"
    );
    // A file serial port is its own capture, and has no pty to type into.
    let mut con = dom.console(None).unwrap();
    assert_eq!(con.capture_path(), serial);
    assert!(con.pty_path().is_none());
    let e = con.send_line("x").unwrap_err().to_string();
    assert_eq!(
        e,
        "internal error: character device serial0 is not using a PTY"
    );
    let e = dom.console(Some("serial1")).unwrap_err().to_string();
    assert_eq!(
        e,
        "internal error: character device serial1 is not using a PTY"
    );
    let (ok, out, err) = vsh(&uri, &["console", "tr"], b"");
    assert!(!ok);
    assert_eq!(out, "\n");
    assert_eq!(
        err,
        "error: internal error: character device serial0 is not using a PTY\n"
    );
    dom.destroy().unwrap();
    assert!(conn.list_all_domains(ListFlags::ALL).unwrap().is_empty());
    let e = conn.lookup_domain_by_name("tr").unwrap_err().to_string();
    assert_eq!(e, "Domain not found: no domain with matching name 'tr'");

    // vsh create, as virsh prints it.
    let file = d.path().join("trv.xml");
    std::fs::write(&file, guest_xml("trv", &kit, PTY_SERIAL)).unwrap();
    let f = file.display().to_string();
    let (ok, out, err) = vsh(&uri, &["create", &f, "--paused"], b"");
    assert!(ok, "{err}");
    assert_eq!(out, format!("Domain 'trv' created from {f}\n\n"));
    let (ok, out, _) = vsh(&uri, &["list", "--all"], b"");
    assert!(ok);
    let id = conn.lookup_domain_by_name("trv").unwrap().id().unwrap();
    assert_eq!(
        out,
        format!(
            " Id   Name   State\n---------------------\n {}    trv    paused\n\n",
            id.unwrap()
        )
    );
    let (ok, out, err) = vsh(&uri, &["domstate", "trv", "--reason"], b"");
    assert!(ok, "{err}");
    assert_eq!(out, "paused (user)\n\n");
    let (ok, out, _) = vsh(&uri, &["destroy", "trv"], b"");
    assert!(ok);
    assert_eq!(out, "Domain 'trv' destroyed\n\n");
    let (ok, out, _) = vsh(&uri, &["list", "--all"], b"");
    assert!(ok);
    assert_eq!(out, " Id   Name   State\n--------------------\n\n");
    // virsh's version lines, with our library's name and version and the host's QEMU.
    let (ok, out, err) = vsh(&uri, &["version"], b"");
    assert!(ok, "{err}");
    let v = env!("CARGO_PKG_VERSION");
    let qemu = Command::new(QEMU).arg("--version").output().unwrap();
    let qemu = String::from_utf8_lossy(&qemu.stdout).into_owned();
    let qemu_version = qemu
        .strip_prefix("QEMU emulator version ")
        .and_then(|r| r.split([' ', '\n']).next())
        .unwrap();
    assert_eq!(
        out,
        format!(
            "Compiled against library: domdriver {v}\nUsing library: domdriver {v}\n\
             Using API: QEMU {v}\nRunning hypervisor: QEMU {qemu_version}\n\n"
        )
    );
    let (ok, _, err) = vsh(&uri, &["create", "/nonexistent/x.xml"], b"");
    assert!(!ok);
    assert_eq!(
        err,
        "error: Failed to open file '/nonexistent/x.xml': No such file or directory\n"
    );
}

#[test]
fn tcg_cannot_pass_the_host_cpu_through() {
    let d = tempfile::tempdir().unwrap();
    let conn = Connect::open(Some(&format!("qemu:///embed?root={}", d.path().display()))).unwrap();
    let e = conn
        .define_domain_xml(
            "<domain type='qemu'><name>hp</name><memory>65536</memory>\
             <os><type arch='x86_64'>hvm</type></os><cpu mode='host-passthrough'/></domain>",
        )
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        format!(
            "unsupported configuration: CPU mode 'host-passthrough' for x86_64 qemu domain on {} host is not supported by hypervisor",
            domdriver::capabilities::qemu::host_arch()
        )
    );
}

#[test]
fn transient_create_refuses_clashes_and_unknown_flags() {
    let d = tempfile::tempdir().unwrap();
    let conn = Connect::open(Some(&format!("qemu:///embed?root={}", d.path().display()))).unwrap();
    let xml = |name: &str, uuid: &str| {
        format!(
            "<domain type='qemu'><name>{name}</name><uuid>{uuid}</uuid><memory>65536</memory>\
             <os><type arch='x86_64'>hvm</type></os></domain>"
        )
    };
    const A: &str = "11111111-2222-3333-4444-555555555555";
    const B: &str = "11111111-2222-3333-4444-666666666666";
    conn.define_domain_xml(&xml("p", A)).unwrap();
    let e = conn
        .create_domain_xml(&xml("p", B), CreateFlags::NONE)
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        format!("operation failed: domain 'p' already exists with uuid {A}")
    );
    let e = conn
        .create_domain_xml(&xml("q", A), CreateFlags::NONE)
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        format!("operation failed: domain 'p' is already defined with uuid {A}")
    );
    let e = conn
        .create_domain_xml(&xml("q", B), CreateFlags(2))
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "invalid argument: unsupported flags (0x2) in function create_domain_xml"
    );
    // Nothing was left behind by the refusals.
    let names: Vec<String> = conn
        .list_all_domains(ListFlags::ALL)
        .unwrap()
        .iter()
        .map(|d| d.name().to_string())
        .collect();
    assert_eq!(names, ["p"]);
}
