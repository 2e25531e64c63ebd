//! Graphics passwords stay secret: a real QEMU with VNC and SPICE on UNIX sockets gets them
//! over QMP while paused, so they are in neither its command line (`/proc/PID/cmdline`, `ps`)
//! nor the guest's log, and yet the displays ask for them.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use domdriver::Connect;
use domdriver::driver::Dirs;
use domdriver::driver::process::{Attach, Guest};
use domdriver::driver::status::{GuestStatus, is_same_live_process};

const QEMU: &str = "/usr/bin/qemu-system-x86_64";
const VNC_SECRET: &str = "Vnc-s3cret-9f2e";
const SPICE_SECRET: &str = "Spice-s3cret-41ab";

/// Kills the guest's QEMU on drop, by the pid in its status file.
struct Reap(PathBuf, &'static str);

impl Drop for Reap {
    fn drop(&mut self) {
        if let Ok(Some(st)) = GuestStatus::read(self.1, &self.0)
            && is_same_live_process(st.pid, st.start_time)
        {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(st.pid),
                nix::sys::signal::SIGKILL,
            );
        }
    }
}

fn conn(root: &Path) -> Connect {
    let emu_dir = root.join("emulators");
    std::fs::create_dir(&emu_dir).unwrap();
    std::os::unix::fs::symlink(QEMU, emu_dir.join("qemu-system-x86_64")).unwrap();
    let opts = domdriver::driver::ConnectOptions {
        emulator_dirs: vec![emu_dir],
        probe_timeout: Duration::from_secs(120),
        ..Default::default()
    };
    let uri = format!("qemu:///embed?root={}", root.display());
    Connect::open_with(Some(&uri), opts).unwrap()
}

fn domain(name: &str, graphics: &str) -> String {
    format!(
        "<domain type='qemu'><name>{name}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>\
         <os><type arch='x86_64' machine='pc'>hvm</type></os>\
         <devices>{graphics}<memballoon model='none'/></devices></domain>"
    )
}

/// The RFB security types a VNC server offers (RFB 3.8 handshake).
fn vnc_security_types(sock: &Path) -> Vec<u8> {
    let mut s = UnixStream::connect(sock).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut version = [0u8; 12];
    s.read_exact(&mut version).unwrap();
    assert_eq!(&version, b"RFB 003.008\n");
    s.write_all(b"RFB 003.008\n").unwrap();
    let mut n = [0u8; 1];
    s.read_exact(&mut n).unwrap();
    let mut types = vec![0u8; n[0] as usize];
    s.read_exact(&mut types).unwrap();
    types
}

#[test]
fn vnc_and_spice_passwords_never_reach_the_command_line_or_log() {
    if !Path::new(QEMU).exists() {
        eprintln!("\n*** SKIPPED: {QEMU} is not installed ***\n");
        return;
    }
    let tmp = tempfile::Builder::new()
        .prefix("gs")
        .tempdir_in("/tmp")
        .unwrap();
    let name = "secret";
    let dirs = Dirs::under(tmp.path());
    let _reap = Reap(dirs.run.join(format!("{name}.json")), "secret");
    let vnc = tmp.path().join("vnc.sock");
    let spice = tmp.path().join("spice.sock");
    let c = conn(tmp.path());
    let dom = c
        .define_domain_xml(&domain(
            name,
            &format!(
                "<graphics type='vnc' passwd='{VNC_SECRET}'><listen type='socket' socket='{}'/></graphics>\
                 <graphics type='spice' passwd='{SPICE_SECRET}'><listen type='socket' socket='{}'/></graphics>",
                vnc.display(),
                spice.display()
            ),
        ))
        .unwrap();
    dom.create().unwrap();
    let st = GuestStatus::read(name, &dirs.run.join(format!("{name}.json")))
        .unwrap()
        .unwrap();

    let cmdline =
        String::from_utf8_lossy(&std::fs::read(format!("/proc/{}/cmdline", st.pid)).unwrap())
            .replace('\0', " ");
    assert!(cmdline.contains("password=on"), "{cmdline}");
    let ps = std::process::Command::new("ps")
        .args(["-ww", "-o", "args=", "-p", &st.pid.to_string()])
        .output()
        .unwrap();
    let ps = String::from_utf8_lossy(&ps.stdout).to_string();
    assert!(ps.contains("-vnc"), "{ps}");
    let log = std::fs::read_to_string(dirs.log.join(format!("{name}.log"))).unwrap();
    assert!(log.contains("password=on"), "{log}");
    for secret in [VNC_SECRET, SPICE_SECRET] {
        assert!(
            !cmdline.contains(secret),
            "{secret} in /proc/PID/cmdline: {cmdline}"
        );
        assert!(!ps.contains(secret), "{secret} in ps: {ps}");
        assert!(!log.contains(secret), "{secret} in the log: {log}");
    }
    // Nor in what `dumpxml` shows without --security-info.
    let xml = dom
        .xml_desc(domdriver::domain::FormatFlags {
            inactive: false,
            secure: false,
        })
        .unwrap();
    assert!(
        !xml.contains(VNC_SECRET) && !xml.contains(SPICE_SECRET),
        "{xml}"
    );

    // The displays do ask for a password: QMP says so, and the VNC server offers only
    // VNC authentication (type 2), not None (type 1).
    match Guest::attach(&dirs, name).unwrap() {
        Attach::Running(mut g) => {
            let v = g.qmp("query-vnc", None).unwrap();
            assert_eq!(v["auth"], "vnc", "{v}");
            let s = g.qmp("query-spice", None).unwrap();
            assert_eq!(s["auth"], "spice", "{s}");
            let run = g.qmp("query-status", None).unwrap();
            assert_eq!(run["status"], "running", "{run}");
        }
        Attach::Inactive(s) => panic!("guest not running: {s}"),
    }
    assert_eq!(vnc_security_types(&vnc), vec![2]);
    dom.destroy().unwrap();
}

/// A command line that forgot `password=on` must not run a display without the password the
/// definition asks for: the start fails, naming the QMP command, never the password.
#[test]
fn vnc_password_without_password_on_fails_the_start() {
    if !Path::new(QEMU).exists() {
        return;
    }
    let tmp = tempfile::Builder::new()
        .prefix("gs")
        .tempdir_in("/tmp")
        .unwrap();
    let name = "nopw";
    let dirs = Dirs::under(tmp.path());
    let _reap = Reap(dirs.run.join(format!("{name}.json")), "nopw");
    let vnc = tmp.path().join("vnc.sock");
    let c = conn(tmp.path());
    let dom = c
        .define_domain_xml(&domain(
            name,
            &format!("<graphics type='vnc' passwd='{VNC_SECRET}'/>"),
        ))
        .unwrap();
    let args: Vec<String> = [
        "-machine",
        "none",
        "-nodefaults",
        "-display",
        "none",
        "-vnc",
        &format!("unix:{}", vnc.display()),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let e = dom
        .start_with_command(QEMU, args, Vec::new())
        .unwrap_err()
        .to_string();
    assert!(e.contains("set_password"), "{e}");
    assert!(!e.contains(VNC_SECRET), "{e}");
    assert!(!dom.is_active().unwrap());
}
