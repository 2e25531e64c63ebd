//! `vsh console DOMAIN --expect RE --send LINE ...` on a real TCG guest: steps in the order
//! given, exit 0 when all matched, 1 with the console's tail otherwise; and `vsh start`,
//! `create`, `destroy` with stdout closed. Every QEMU is destroyed, and killed by pid on drop
//! should the test fail half-way.

#[path = "common/bootkit.rs"]
mod bootkit;

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use domdriver::driver::status::{GuestStatus, is_same_live_process};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const QEMU: &str = "/usr/bin/qemu-system-x86_64";

/// Kills, on drop, the QEMU of every guest named here that is still running.
struct Reaper {
    run: PathBuf,
    names: Vec<&'static str>,
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

/// A guest whose `/init`, once up, reads one line from the console and answers it.
fn guest_xml(name: &str, kit: &bootkit::LinuxKit) -> String {
    let script = bootkit::run_cmdline("read x; echo \"reply-$x-$((6*7))\"");
    format!(
        "<domain type='qemu'>
  <name>{name}</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>{}</kernel>
    <initrd>{}</initrd>
    <cmdline>{} {script}</cmdline>
  </os>
  <devices>
    <emulator>{QEMU}</emulator>
    <serial type='pty'><target port='0'/></serial>
    <memballoon model='none'/>
  </devices>
</domain>
",
        kit.kernel.display(),
        kit.initrd.display(),
        kit.cmdline(),
    )
}

/// A pipe whose reading end is already closed.
fn closed_pipe() -> OwnedFd {
    let (r, w) = nix::unistd::pipe().unwrap();
    drop(r);
    w
}

fn vsh(uri: &str, args: &[&str], closed: bool) -> (i32, String, String) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_vsh"));
    c.args(["-c", uri])
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::piped());
    if closed {
        c.stdout(Stdio::from(closed_pipe()));
    } else {
        c.stdout(Stdio::piped());
    }
    let o = c.output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(
        !err.contains("panicked") && !err.contains("Broken pipe"),
        "{err}"
    );
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        err,
    )
}

#[test]
fn console_expect_scripts_a_real_guest() {
    if !Path::new(QEMU).exists() {
        eprintln!("\n*** SKIPPED: {QEMU} is not installed ***\n");
        return;
    }
    let Some(kit) = bootkit::linux() else {
        return;
    };
    let d = tempfile::Builder::new()
        .prefix("vce")
        .tempdir_in("/tmp")
        .unwrap();
    let uri = format!("qemu:///embed?root={}", d.path().display());
    let _reap = Reaper {
        run: d.path().join("run/qemu"),
        names: vec!["con", "tr"],
    };
    let xml = d.path().join("con.xml");
    std::fs::write(&xml, guest_xml("con", &kit)).unwrap();
    let xml = xml.display().to_string();
    assert_eq!(vsh(&uri, &["define", &xml], true).0, 0);
    // start with stdout closed: the guest starts, the message is dropped quietly.
    let (code, _, err) = vsh(&uri, &["start", "con"], true);
    assert_eq!(code, 0, "{err}");

    // Steps run in the order given: the line is sent only once the script is running, and
    // its answer is awaited after.
    let (code, out, err) = vsh(
        &uri,
        &[
            "console",
            "con",
            "--expect",
            bootkit::RUN_BEGIN,
            "--send",
            "hello",
            "--expect",
            r"reply-(\w+)-42",
            "--timeout",
            "120",
        ],
        false,
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(bootkit::GUEST_MARKER), "{out}");
    assert!(out.contains("reply-hello-42"), "{out}");

    // A pattern that never comes: exit 1, what was awaited, and the console's last output.
    let t0 = Instant::now();
    let (code, out, err) = vsh(
        &uri,
        &[
            "console",
            "con",
            "--expect",
            "NEVER-PRINTED-42",
            "--timeout",
            "1",
        ],
        false,
    );
    assert_eq!(code, 1, "{out}");
    assert!(err.contains("NEVER-PRINTED-42"), "{err}");
    assert!(
        err.contains("last output:") && err.contains("reply-hello-42"),
        "{err}"
    );
    assert!(t0.elapsed() < Duration::from_secs(60));
    // Bad input: a bad pattern, a bad timeout, --timeout alone.
    let (code, _, err) = vsh(&uri, &["console", "con", "--expect", "("], false);
    assert_eq!(code, 1);
    assert!(err.contains("bad console pattern '('"), "{err}");
    let (code, _, err) = vsh(
        &uri,
        &["console", "con", "--expect", "x", "--timeout", "0"],
        false,
    );
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "error: Numeric value '0' for <timeout> option is malformed or out of range\n"
    );
    let (code, _, err) = vsh(&uri, &["console", "con", "--timeout", "3"], false);
    assert_eq!(code, 1);
    assert_eq!(err, "error: --timeout goes with --expect\n");

    // create and destroy with stdout closed.
    let tr = d.path().join("tr.xml");
    std::fs::write(&tr, guest_xml("tr", &kit)).unwrap();
    let (code, _, err) = vsh(&uri, &["create", &tr.display().to_string()], true);
    assert_eq!(code, 0, "{err}");
    for name in ["tr", "con"] {
        let (code, _, err) = vsh(&uri, &["destroy", name], true);
        assert_eq!(code, 0, "{err}");
    }
    let (code, out, err) = vsh(&uri, &["list"], false);
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains("running"), "{out}");
    // A domain that is not running has no console session to script.
    let (code, _, err) = vsh(&uri, &["console", "con", "--expect", "x"], false);
    assert_eq!(code, 1);
    assert_eq!(err, "error: The domain is not running\n");
}
