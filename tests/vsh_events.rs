//! Domain events as a user sees them: `vsh event` and `vsh await` through the real binary,
//! and `Connect::events()` (iterator and async stream), on small TCG guests (64 MiB, no
//! disk) in temp embed roots. Lines are compared with virsh's strings. Every QEMU and every
//! `vsh` started here is killed by pid on drop.

#[path = "common/guests.rs"]
mod guests;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use domdriver::Connect;
use domdriver::driver::monitor::{DomainEvent, EventKind, Lifecycle};
use guests::{KillOnDrop, alive, guest_pid, have_qemu, small_xml, uri};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

fn root() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("ev")
        .tempdir_in("/tmp")
        .unwrap()
}

fn vsh_cmd(root: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_vsh"));
    c.env_remove("VSH_DEFAULT_URI")
        .env_remove("LIBVIRT_DEFAULT_URI")
        .arg("-c")
        .arg(uri(root))
        .args(args);
    c
}

/// Run vsh; (exit ok, stdout, stderr).
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

/// A `vsh` running in the background whose stdout lines come through a channel; killed by
/// pid on drop.
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

    /// The next line, up to `t`.
    fn line(&self, t: Duration) -> Option<String> {
        self.lines.recv_timeout(t).ok()
    }

    /// Lines until `pred` matches one (included), up to `t`.
    fn until(&self, t: Duration, pred: impl Fn(&str) -> bool) -> Vec<String> {
        let end = Instant::now() + t;
        let mut got = Vec::new();
        while let Some(l) = self.line(end.saturating_duration_since(Instant::now())) {
            let done = pred(&l);
            got.push(l);
            if done {
                return got;
            }
        }
        panic!("no matching line in {t:?}; got {got:?}");
    }

    /// Wait for the exit, up to `t`; its status and the remaining lines.
    fn finish(mut self, t: Duration) -> (bool, Vec<String>) {
        let end = Instant::now() + t;
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                let mut rest = Vec::new();
                while let Some(l) = self.line(Duration::from_millis(500)) {
                    rest.push(l);
                }
                return (st.success(), rest);
            }
            assert!(Instant::now() < end, "vsh did not end in {t:?}");
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

const T: Duration = Duration::from_secs(30);

fn lifecycle(name: &str, what: &str) -> String {
    format!("event 'lifecycle' for domain '{name}': {what}")
}

/// A defined guest `name` in `root`.
fn define(root: &Path, name: &str) {
    let f = root.join(format!("{name}.xml"));
    std::fs::write(&f, small_xml(name, None)).unwrap();
    must(root, &["define", f.to_str().unwrap()]);
}

/// Wait until the `vsh` of `bg` subscribed: its watcher's inotify descriptor exists only
/// after the subscription's start time was taken and the first scan made.
fn subscribed(bg: &Bg) {
    let fd_dir = format!("/proc/{}/fd", bg.child.id());
    let end = Instant::now() + T;
    while Instant::now() < end {
        let has_inotify = std::fs::read_dir(&fd_dir).is_ok_and(|rd| {
            rd.flatten().any(|e| {
                std::fs::read_link(e.path()).is_ok_and(|l| l.to_string_lossy().contains("inotify"))
            })
        });
        if has_inotify {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("vsh {} did not subscribe in {T:?}", bg.child.id());
}

#[test]
fn event_refusals_and_list() {
    let r = root();
    let (ok, out, _) = vsh(r.path(), &["event", "--list"]);
    assert!(ok);
    let names: Vec<&str> = out.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(names.len(), 27, "{out}");
    assert_eq!(names[0], "lifecycle");
    assert_eq!(names[26], "memory-device-size-change");
    for (args, msg) in [
        (
            &["event"][..],
            "error: one of --list, --all, or --event <type> is required",
        ),
        (
            &["event", "--all", "--event", "reboot"],
            "error: Options --all and --event are mutually exclusive",
        ),
        (
            &["event", "--list", "--all"],
            "error: Options --list and --all are mutually exclusive",
        ),
        (
            &["event", "--event", "bogus"],
            "error: unknown event type bogus",
        ),
        (
            &["event", "--all", "--timeout", "0"],
            "error: Numeric value '0' for <timeout> option is malformed or out of range",
        ),
        (
            &["event", "nosuch", "--all"],
            "error: failed to get domain 'nosuch'",
        ),
        (
            &["await", "nosuch", "--condition", "domain-inactive"],
            "error: failed to get domain 'nosuch'",
        ),
    ] {
        let (ok, _, err) = vsh(r.path(), args);
        assert!(!ok, "{args:?}");
        assert!(err.starts_with(msg), "{args:?}: {err}");
    }
    // No event in time: virsh's two lines, exit status 1, no error line.
    let (ok, out, err) = vsh(r.path(), &["event", "--all", "--timeout", "1"]);
    assert!(!ok);
    assert_eq!(out, "event loop timed out\nevents received: 0\n\n");
    assert_eq!(err, "");
    // --help and a closed stdout.
    assert!(must(r.path(), &["event", "--help"]).contains("event [<domain>] [--event <string>]"));
    assert!(must(r.path(), &["await", "--help"]).contains("--condition <string>"));
    let o = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "'{}' -c '{}' event --list | head -1",
            env!("CARGO_BIN_EXE_vsh"),
            uri(r.path())
        ))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout), "lifecycle\n");
    assert!(
        o.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// One guest through its life under `vsh event --loop`, `vsh event` one-shot, `vsh await`,
/// JSON, Ctrl-C, and a guest whose monitor is killed and adopted.
#[test]
fn events_of_a_guest_life() {
    if !have_qemu() {
        return;
    }
    let r = root();
    let p = r.path();
    define(p, "e1");
    define(p, "e2");
    let mut kill_list = KillOnDrop::default();
    let all = Bg::spawn(p, &["event", "--all", "--loop", "--timestamp"]);
    let only_e1 = Bg::spawn(p, &["event", "e1", "--event", "lifecycle", "--loop"]);
    let one_shot = Bg::spawn(p, &["event", "--event", "lifecycle"]);
    let json = Bg::spawn(p, &["event", "--all", "--loop", "--json"]);
    for b in [&all, &only_e1, &one_shot, &json] {
        subscribed(b);
    }

    must(p, &["start", "e2"]);
    must(p, &["start", "e1"]);
    let dirs = Connect::open(Some(&uri(p))).unwrap().dirs().clone();
    kill_list.0.extend(guest_pid(&dirs, "e1"));
    kill_list.0.extend(guest_pid(&dirs, "e2"));
    // The one-shot ends after its first event.
    let (ok, rest) = one_shot.finish(T);
    assert!(ok);
    assert_eq!(
        rest,
        [
            lifecycle("e2", "Started Booted"),
            "events received: 1".into(),
            "".into()
        ]
    );

    must(p, &["suspend", "e1"]);
    must(p, &["resume", "e1"]);
    must(p, &["destroy", "e2"]);
    let got = all.until(T, |l| l.ends_with(&lifecycle("e2", "Stopped Destroyed")));
    // Timestamps are virsh's: `YYYY-MM-DD HH:MM:SS.mmm+0000: `.
    for l in &got {
        let (ts, _) = l.split_once(": ").unwrap();
        assert_eq!(ts.len(), 28, "{l}");
        assert!(ts.ends_with("+0000"), "{l}");
    }
    let lines: Vec<&str> = got.iter().map(|l| &l[30..]).collect();
    for want in [
        lifecycle("e2", "Started Booted"),
        lifecycle("e1", "Started Booted"),
        lifecycle("e1", "Suspended Paused"),
        lifecycle("e1", "Resumed Unpaused"),
        lifecycle("e2", "Stopped Destroyed"),
    ] {
        assert!(lines.contains(&want.as_str()), "{want} not in {lines:?}");
    }
    let e1: Vec<String> = only_e1
        .until(T, |l| l.ends_with("Resumed Unpaused"))
        .into_iter()
        .collect();
    assert_eq!(
        e1,
        [
            lifecycle("e1", "Started Booted"),
            lifecycle("e1", "Suspended Paused"),
            lifecycle("e1", "Resumed Unpaused"),
        ]
    );
    let first: DomainEvent = serde_json::from_str(&json.line(T).unwrap()).unwrap();
    assert_eq!(first.domain, "e2");
    assert_eq!(
        first.kind,
        EventKind::Lifecycle {
            event: Lifecycle::StartedBooted
        }
    );

    // Crash-only: the monitor is killed, a new one adopts the guest, events go on.
    let st = domdriver::driver::status::GuestStatus::read("e1", &dirs.run.join("e1.json"))
        .unwrap()
        .unwrap();
    kill(Pid::from_raw(st.monitor_pid), Signal::SIGKILL).unwrap();
    let end = Instant::now() + T;
    while alive(st.monitor_pid) && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
    // `domstate` only reads; `suspend` adopts.
    must(p, &["suspend", "e1"]);
    only_e1.until(T, |l| l == lifecycle("e1", "Suspended Paused"));

    // await: returns at once for an inactive domain, times out on a running one, and
    // returns when the guest stops.
    must(p, &["await", "e2", "--condition", "domain-inactive"]);
    let (ok, _, err) = vsh(
        p,
        &[
            "await",
            "e1",
            "--condition",
            "domain-inactive",
            "--timeout",
            "1",
        ],
    );
    assert!(!ok);
    assert_eq!(
        err,
        "error: timed out waiting for condition 'domain-inactive'\n"
    );
    let (ok, _, err) = vsh(p, &["await", "e1", "--condition", "bogus"]);
    assert!(!ok);
    assert_eq!(err, "error: unknown condition 'bogus'\n");
    let waiter = Bg::spawn(p, &["await", "e1", "--condition", "domain-inactive"]);
    subscribed(&waiter);
    must(p, &["destroy", "e1"]);
    let (ok, _) = waiter.finish(T);
    assert!(ok);
    only_e1.until(T, |l| l == lifecycle("e1", "Stopped Destroyed"));

    // Ctrl-C ends the loop with virsh's lines.
    kill(Pid::from_raw(all.child.id() as i32), Signal::SIGINT).unwrap();
    let (ok, rest) = all.finish(T);
    assert!(ok, "{rest:?}");
    let n = rest.len();
    assert!(n >= 3, "{rest:?}");
    assert_eq!(rest[n - 3], "event loop interrupted");
    assert!(rest[n - 2].starts_with("events received: "), "{rest:?}");
}

/// The library's subscription: a blocking iterator that sees a guest started after it, and
/// an async stream.
#[test]
fn connect_events_iterator_and_stream() {
    if !have_qemu() {
        return;
    }
    let r = root();
    let conn = Connect::open(Some(&uri(r.path()))).unwrap();
    let mut kill_list = KillOnDrop::default();
    let mut events = conn.events().unwrap();
    let stream = conn.domain_events("s1").unwrap().into_stream();
    let dom = conn.define_domain_xml(&small_xml("s1", None)).unwrap();
    dom.create().unwrap();
    kill_list.0.extend(guest_pid(conn.dirs(), "s1"));
    let e = events.next_timeout(T).expect("an event");
    assert_eq!(e.virsh_line(), lifecycle("s1", "Started Booted"));
    dom.destroy().unwrap();
    // QEMU reports SIGTERM as a host-requested SHUTDOWN first, as libvirt relays it.
    let e = events.next_timeout(T).expect("an event");
    assert_eq!(
        e.virsh_line(),
        lifecycle("s1", "Shutdown Finished after host request")
    );
    let e = events.next_timeout(T).expect("an event");
    assert_eq!(e.virsh_line(), lifecycle("s1", "Stopped Destroyed"));
    assert!(events.next_timeout(Duration::from_millis(300)).is_none());
    drop(events);

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let got: Vec<String> = rt.block_on(async move {
        let mut stream = stream;
        let mut got = Vec::new();
        while got.len() < 3 {
            let e = tokio::time::timeout(T, stream.next())
                .await
                .expect("in time")
                .expect("an event");
            got.push(e.virsh_line());
        }
        got
    });
    assert_eq!(
        got,
        [
            lifecycle("s1", "Started Booted"),
            lifecycle("s1", "Shutdown Finished after host request"),
            lifecycle("s1", "Stopped Destroyed")
        ]
    );
}
