//! The QMP client against a real QEMU: `-machine none`, no devices, no network. The monitor
//! socket is created here and handed to QEMU as an inherited descriptor, the way the driver
//! will start domains.
//!
//! Skipped, loudly, when the emulator is not installed.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use domdriver::qmp::replay::Replayer;
use domdriver::qmp::{Conversation, Monitor, MonitorOptions, QmpError};
use serde_json::{Value, json};

const QEMU: &str = "/usr/bin/qemu-system-x86_64";

/// A running QEMU, killed (SIGKILL by pid) and reaped when dropped, whatever the test did.
struct Qemu {
    child: Child,
    sock: PathBuf,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Qemu {
    fn drop(&mut self) {
        // Errors mean the process already exited (kill) or was already reaped (wait).
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn qemu_missing(test: &str) -> bool {
    if Path::new(QEMU).exists() {
        return false;
    }
    eprintln!(
        "\n\n*** SKIPPING {test}: {QEMU} is not installed (apt-get install qemu-system-x86) ***\n"
    );
    true
}

impl Qemu {
    /// Start QEMU paused with a QMP monitor on a listening socket we created; `None` (after a
    /// loud message) when the binary is missing.
    fn start(test: &str) -> Option<Qemu> {
        if qemu_missing(test) {
            return None;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let sock = dir.path().join("monitor.sock");
        let listener = std::os::unix::net::UnixListener::bind(&sock).expect("bind monitor socket");
        let q = Self::spawn(dir, sock, listener.as_fd(), "server=on,wait=off");
        // Our copy must go: while we hold the listener, a connect after QEMU died would be
        // queued by the kernel and wait for a greeting that never comes.
        drop(listener);
        Some(q)
    }

    /// Start QEMU with one end of a socketpair as its (already connected) monitor; we keep
    /// the other end.
    fn start_socketpair(test: &str) -> Option<(Qemu, std::os::unix::net::UnixStream)> {
        if qemu_missing(test) {
            return None;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let (ours, theirs) = std::os::unix::net::UnixStream::pair().expect("socketpair");
        let q = Self::spawn(dir, PathBuf::new(), theirs.as_fd(), "server=off");
        // QEMU's end must be closed here, or QEMU dying would not give us EOF.
        drop(theirs);
        Some((q, ours))
    }

    /// Spawn QEMU with `fd` inherited as its monitor chardev. The caller keeps `fd` open
    /// until this returns.
    fn spawn(dir: tempfile::TempDir, sock: PathBuf, fd: BorrowedFd<'_>, mode: &str) -> Qemu {
        let log = dir.path().join("qemu.log");
        let fd = fd.as_raw_fd();
        let mut cmd = Command::new(QEMU);
        cmd.args(["-S", "-nodefaults", "-nographic", "-machine", "none"])
            .args(["-accel", "tcg"])
            .arg("-chardev")
            .arg(format!("socket,id=mon,fd={fd},{mode}"))
            .args(["-mon", "chardev=mon,mode=control"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"));
        // Runs in the forked child before exec: std opens sockets with CLOEXEC, and QEMU
        // must inherit this one.
        let inherit_fd = move || {
            // SAFETY: `fd` came from a BorrowedFd the caller keeps open until spawn()
            // returns, so it is open in the child, and the borrow ends with this call.
            let bfd = unsafe { BorrowedFd::borrow_raw(fd) };
            nix::fcntl::fcntl(
                bfd,
                nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
            )?;
            Ok(())
        };
        // SAFETY: the hook only calls fcntl(2), which is async-signal-safe, and neither
        // allocates nor takes locks, so it cannot deadlock on state copied from other threads
        // of the test process at fork time.
        unsafe {
            cmd.pre_exec(inherit_fd);
        }
        let child = cmd.spawn().expect("spawn qemu");
        Qemu {
            child,
            sock,
            log,
            _dir: dir,
        }
    }

    async fn connect(&self) -> Monitor {
        let opts = MonitorOptions {
            command_timeout: Duration::from_secs(20),
            ..MonitorOptions::default()
        };
        match Monitor::connect_unix(&self.sock, opts).await {
            Ok(m) => m,
            Err(e) => panic!("connecting to QEMU failed: {e}\nQEMU log:\n{}", self.log()),
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Wait for QEMU to exit on its own; its status.
    fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(st)) = self.child.try_wait() {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

async fn bounded<F: std::future::Future<Output = ()>>(f: F) {
    tokio::time::timeout(Duration::from_secs(60), f)
        .await
        .expect("test hung: no result within 60 s");
}

/// The next event other than those QEMU may send on its own schedule.
async fn event(m: &mut Monitor, name: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match m.next_event(left).await {
            Ok(Some(e)) if e.name == name => return e.data,
            Ok(Some(_)) => continue,
            Ok(None) => panic!("no {name} event within 10 s"),
            Err(e) => panic!("waiting for {name}: {e}"),
        }
    }
}

#[tokio::test]
async fn negotiate_query_stop_cont() {
    let Some(q) = Qemu::start("negotiate_query_stop_cont") else {
        return;
    };
    bounded(async {
        let mut m = q.connect().await;
        let g = m.greeting().clone();
        assert_eq!(g.version.map(|v| (v.0, v.1)), Some((7, 2)), "{g:?}");
        assert!(g.capabilities.iter().any(|c| c == "oob"), "{g:?}");

        // Before negotiation QEMU refuses everything else; the error is surfaced as is.
        let e = m.execute("query-status", None).await.unwrap_err();
        assert_eq!(e.class(), Some("CommandNotFound"), "{e}");
        assert!(e.to_string().contains("qmp_capabilities"), "{e}");

        m.negotiate().await.unwrap();
        let v = m.execute("query-version", None).await.unwrap();
        assert_eq!(
            Some((
                v["qemu"]["major"].as_u64().unwrap(),
                v["qemu"]["minor"].as_u64().unwrap(),
                v["qemu"]["micro"].as_u64().unwrap()
            )),
            g.version
        );
        let st = m.execute("query-status", None).await.unwrap();
        assert_eq!(
            (st["status"].as_str(), &st["running"]),
            (Some("prelaunch"), &json!(false))
        );

        m.execute("cont", None).await.unwrap();
        event(&mut m, "RESUME").await;
        let st = m.execute("query-status", None).await.unwrap();
        assert_eq!(st["status"], "running");

        m.execute("stop", None).await.unwrap();
        event(&mut m, "STOP").await;
        let st = m.execute("query-status", None).await.unwrap();
        assert_eq!(
            (st["status"].as_str(), &st["running"]),
            (Some("paused"), &json!(false))
        );

        let e = m.execute("no-such-command", None).await.unwrap_err();
        assert_eq!(e.class(), Some("CommandNotFound"), "{e}");
        let e = m
            .execute(
                "device-list-properties",
                Some(json!({"typename": "no-such-device"})),
            )
            .await
            .unwrap_err();
        assert!(matches!(e, QmpError::Command { .. }), "{e:?}");
        assert!(e.to_string().contains("no-such-device"), "{e}");
        // Error replies leave the connection usable.
        m.execute("query-status", None).await.unwrap();
        m.close().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn quit_gives_shutdown_then_eof() {
    let Some(mut q) = Qemu::start("quit_gives_shutdown_then_eof") else {
        return;
    };
    bounded(async {
        let mut m = q.connect().await;
        m.negotiate().await.unwrap();
        assert_eq!(m.execute("quit", None).await.unwrap(), json!({}));
        let data = event(&mut m, "SHUTDOWN").await;
        assert_eq!(data["reason"], "host-qmp-quit");
        let e = m.next_event(Duration::from_secs(10)).await.unwrap_err();
        assert!(matches!(e, QmpError::Eof(_)), "{e:?}");
        let e = m.execute("query-status", None).await.unwrap_err();
        assert!(matches!(e, QmpError::Poisoned), "{e:?}");
    })
    .await;
    let st = q
        .wait_exit(Duration::from_secs(10))
        .expect("QEMU exits after quit");
    assert!(st.success(), "QEMU exit status {st:?}\n{}", q.log());
}

/// The commands of one recorded session; replay must send exactly these again.
async fn session(m: &mut Monitor, last: bool) {
    m.negotiate().await.unwrap();
    m.execute("query-version", None).await.unwrap();
    m.execute("query-status", None).await.unwrap();
    m.execute("query-target", None).await.unwrap();
    m.execute(
        "qom-list-properties",
        Some(json!({"typename": "memory-backend-file"})),
    )
    .await
    .unwrap();
    let e = m
        .execute(
            "device-list-properties",
            Some(json!({"typename": "no-such-device"})),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, QmpError::Command { .. }), "{e:?}");
    if last {
        m.execute("quit", None).await.unwrap();
    }
}

#[tokio::test]
async fn record_format_parse_replay() {
    let Some(mut q) = Qemu::start("record_format_parse_replay") else {
        return;
    };
    let conv = Arc::new(Mutex::new(Conversation::default()));
    bounded(async {
        // Two sessions against the same QEMU: the chardev listens again after a disconnect.
        for last in [false, true] {
            let mut m = q.connect().await;
            m.record_into(conv.clone());
            session(&mut m, last).await;
            m.close().await.unwrap();
        }
    })
    .await;
    q.wait_exit(Duration::from_secs(10))
        .expect("QEMU exits after quit");

    let conv = conv.lock().unwrap().clone();
    assert_eq!(conv.exchanges.len(), 13);
    // Each connection counts from libvirt-1, which is what the format wants.
    conv.check_numbering().unwrap();
    assert_eq!(conv.exchanges[6].name(), "qmp_capabilities");
    assert_eq!(conv.exchanges[6].command["id"], "libvirt-1");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x86_64-recorded.replies");
    let text = conv.format();
    std::fs::write(&path, &text).unwrap();
    let back = Conversation::load(&path).unwrap();
    assert_eq!(back, conv);
    assert_eq!(back.format(), text);
    let mut renumbered = back.clone();
    assert_eq!(renumbered.renumber(), 0);
    let report = domdriver::qmp::check_replies_file(&path).unwrap();
    assert!(report.is_ok(), "{report}");
    assert_eq!(domdriver::qmp::renumber_replies_file(&path).unwrap(), 0);

    let r = Replayer::load(&path).unwrap();
    bounded(async {
        for last in [false, true] {
            let mut m = r.connect(MonitorOptions::default()).await.unwrap();
            assert_eq!(
                m.greeting().version.map(|v| (v.0, v.1)),
                Some((7, 2)),
                "the replayer's greeting comes from the recorded query-version"
            );
            session(&mut m, last).await;
            m.close().await.unwrap();
        }
    })
    .await;
    r.finish().unwrap();
}

#[tokio::test]
async fn socketpair_monitor_and_qemu_killed_mid_session() {
    let Some((mut q, ours)) =
        Qemu::start_socketpair("socketpair_monitor_and_qemu_killed_mid_session")
    else {
        return;
    };
    bounded(async {
        let opts = MonitorOptions {
            command_timeout: Duration::from_secs(20),
            ..MonitorOptions::default()
        };
        let mut m = Monitor::from_std_unix_stream(ours, opts).await.unwrap();
        m.negotiate().await.unwrap();
        assert_eq!(
            m.execute("query-status", None).await.unwrap()["status"],
            "prelaunch"
        );
        // QEMU dies without a word: the next command fails at once with EOF, not a timeout.
        q.child.kill().unwrap();
        q.child.wait().unwrap();
        let t0 = Instant::now();
        let e = m.execute("query-status", None).await.unwrap_err();
        assert!(matches!(e, QmpError::Eof(_)), "{e:?}");
        assert!(t0.elapsed() < Duration::from_secs(5));
        assert!(m.poison_reason().is_some());
    })
    .await;
}
