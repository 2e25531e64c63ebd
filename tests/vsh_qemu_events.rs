//! `vsh qemu-monitor-event`: QEMU's raw QMP events as virsh prints them, relayed by the
//! guest's monitor, on one small TCG guest (64 MiB, no disk) in a temp embed root. Every QEMU
//! and every `vsh` started here is killed by pid on drop.

#[path = "common/guests.rs"]
mod guests;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use domdriver::Connect;
use guests::{KillOnDrop, guest_pid, have_qemu, small_xml, uri};

const T: Duration = Duration::from_secs(60);

fn vsh_cmd(root: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_vsh"));
    c.env_remove("VSH_DEFAULT_URI")
        .env_remove("LIBVIRT_DEFAULT_URI")
        .arg("-c")
        .arg(uri(root))
        .args(args);
    c
}

fn vsh(root: &Path, args: &[&str]) -> (bool, String, String) {
    let o = vsh_cmd(root, args).output().expect("vsh runs");
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn must(root: &Path, args: &[&str]) -> String {
    let (ok, out, err) = vsh(root, args);
    assert!(ok, "{args:?}: {err}");
    out
}

/// A `vsh` in the background whose stdout lines come through a channel; killed on drop.
struct Bg {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Bg {
    fn spawn(root: &Path, args: &[&str]) -> Bg {
        let mut child = vsh_cmd(root, args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines() {
                let Ok(l) = l else { break };
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        Bg { child, lines }
    }

    /// Wait until it subscribed: its watcher's inotify descriptor exists only after the
    /// first scan of the monitors.
    fn subscribed(&self) {
        let fd_dir = format!("/proc/{}/fd", self.child.id());
        let end = Instant::now() + T;
        while Instant::now() < end {
            if std::fs::read_dir(&fd_dir).is_ok_and(|rd| {
                rd.flatten().any(|e| {
                    std::fs::read_link(e.path())
                        .is_ok_and(|l| l.to_string_lossy().contains("inotify"))
                })
            }) {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("vsh {} did not subscribe", self.child.id());
    }

    /// Lines until `pred` matches one (included).
    fn until(&self, pred: impl Fn(&str) -> bool) -> Vec<String> {
        let end = Instant::now() + T;
        let mut got = Vec::new();
        while let Ok(l) = self
            .lines
            .recv_timeout(end.saturating_duration_since(Instant::now()))
        {
            let done = pred(&l);
            got.push(l);
            if done {
                return got;
            }
        }
        panic!("no matching line; got {got:?}");
    }

    /// Wait for the exit; its status and every remaining line.
    fn finish(mut self) -> (bool, Vec<String>) {
        let end = Instant::now() + T;
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                let mut rest = Vec::new();
                while let Ok(l) = self.lines.recv_timeout(Duration::from_millis(500)) {
                    rest.push(l);
                }
                return (st.success(), rest);
            }
            assert!(Instant::now() < end, "vsh did not end");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Bg {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `event NAME at SECS.USECS for domain 'D': DATA` split into its parts.
fn parse_line(l: &str) -> (String, String, String) {
    let rest = l.strip_prefix("event ").unwrap_or_else(|| panic!("{l}"));
    let (name, rest) = rest.split_once(" at ").unwrap();
    let (time, rest) = rest.split_once(" for domain '").unwrap();
    let (secs, usecs) = time.split_once('.').unwrap();
    assert!(secs.parse::<u64>().is_ok() && usecs.len() == 6, "{l}");
    let (dom, data) = rest.split_once("': ").unwrap();
    (name.to_string(), dom.to_string(), data.to_string())
}

#[test]
fn refusals_help_and_timeout() {
    let r = tempfile::tempdir().unwrap();
    let p = r.path();
    let help = must(p, &["qemu-monitor-event", "--help"]);
    assert!(help.contains("QEMU Monitor Events"), "{help}");
    assert!(help.contains("--no-case"), "{help}");
    for (args, msg) in [
        (
            &["qemu-monitor-event", "nosuch"][..],
            "error: failed to get domain 'nosuch'\n",
        ),
        (
            &["qemu-monitor-event", "--timeout", "0"],
            "error: Numeric value '0' for <timeout> option is malformed or out of range\n",
        ),
        (
            &["qemu-monitor-event", "--event", "\\(STOP", "--regex"],
            "error: invalid argument: failed to compile regex '\\(STOP': ",
        ),
    ] {
        let (ok, _, err) = vsh(p, args);
        assert!(!ok, "{args:?}");
        assert!(err.starts_with(msg), "{args:?}: {err}");
    }
    // Nothing in time: virsh's two lines, exit status 1, no error line.
    let (ok, out, err) = vsh(p, &["qemu-monitor-event", "--timeout", "1"]);
    assert!(!ok);
    assert_eq!(out, "event loop timed out\nevents received: 0\n\n");
    assert_eq!(err, "");
    let (ok, out, _) = vsh(p, &["qemu-monitor-event", "--timeout", "1", "--json"]);
    assert!(!ok);
    assert_eq!(out, "{\"ended\":\"timed-out\",\"events_received\":0}\n");
}

#[test]
fn qmp_events_of_a_guest() {
    if !have_qemu() {
        return;
    }
    let r = tempfile::Builder::new()
        .prefix("qme")
        .tempdir_in("/tmp")
        .unwrap();
    let p = r.path();
    let f = p.join("q1.xml");
    std::fs::write(&f, small_xml("q1", None)).unwrap();
    must(p, &["define", f.to_str().unwrap()]);
    let mut kill_list = KillOnDrop::default();
    must(p, &["start", "q1"]);
    let dirs = Connect::open(Some(&uri(p))).unwrap().dirs().clone();
    kill_list.0.extend(guest_pid(&dirs, "q1"));

    let one_shot = Bg::spawn(p, &["qemu-monitor-event", "q1", "--event", "STOP"]);
    let looping = Bg::spawn(
        p,
        &[
            "qemu-monitor-event",
            "--event",
            "^res",
            "--regex",
            "--no-case",
            "--loop",
            "--pretty",
        ],
    );
    let json = Bg::spawn(p, &["qemu-monitor-event", "--loop", "--json"]);
    let stamped = Bg::spawn(p, &["qemu-monitor-event", "--timestamp", "--event", "STOP"]);
    for b in [&one_shot, &looping, &json, &stamped] {
        b.subscribed();
    }
    must(p, &["suspend", "q1"]);
    must(p, &["resume", "q1"]);

    // The one-shot: QEMU's STOP, which has no data, then virsh's count.
    let (ok, rest) = one_shot.finish();
    assert!(ok);
    assert_eq!(rest.len(), 3, "{rest:?}");
    assert_eq!(
        parse_line(&rest[0]),
        ("STOP".into(), "q1".into(), "<null>".into())
    );
    assert_eq!(&rest[1..], ["events received: 1", ""]);
    // The time of printing instead of QEMU's.
    let (ok, rest) = stamped.finish();
    assert!(ok);
    assert!(
        rest[0].ends_with("+0000: event STOP for domain 'q1': <null>"),
        "{rest:?}"
    );
    // The regex, case-insensitive: RESUME only.
    let got = looping.until(|l| l.starts_with("event "));
    assert_eq!(parse_line(got.last().unwrap()).0, "RESUME");
    // JSON: one object per event, STOP then RESUME.
    let got = json.until(|l| l.contains("\"RESUME\""));
    let evs: Vec<serde_json::Value> = got
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let names: Vec<&str> = evs.iter().filter_map(|e| e["event"].as_str()).collect();
    let stop = names.iter().position(|n| *n == "STOP").expect("STOP");
    assert_eq!(names.last(), Some(&"RESUME"), "{names:?}");
    assert_eq!(evs[stop]["domain"], "q1");
    assert_eq!(evs[stop]["data"], serde_json::Value::Null);
    assert!(evs[stop]["seconds"].as_i64().unwrap() > 1_600_000_000);

    // Data, pretty-printed: the RESET a reset makes QEMU send, which the regex takes too.
    must(p, &["reset", "q1"]);
    let got = looping.until(|l| l == "}");
    let at = got
        .iter()
        .position(|l| l.starts_with("event RESET at "))
        .unwrap_or_else(|| panic!("{got:?}"));
    assert!(got[at].ends_with(" for domain 'q1': {"), "{got:?}");
    assert!(
        got[at + 1..].contains(&"  \"guest\": false,".to_string()),
        "{got:?}"
    );
    must(p, &["destroy", "q1"]);
}
