//! Faults at the driver level: `Domain` operations against a guest whose monitor misbehaves.
//!
//! Real QEMU cannot send garbage or half a reply on demand, so these guests are a harmless
//! live process (`sleep`, started here and killed by pid) standing in for QEMU's pid, and a
//! scripted QMP peer on the UNIX socket its status file names. Each fault must give a clear
//! error, never a hang or a panic, and leave the domain in a consistent state: still running
//! while the process lives, `shut off (crashed)` once it is gone. The last tests use real QEMU:
//! a start that fails, a status file whose pid is not our QEMU, and two starts at once.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use domdriver::Connect;
use domdriver::driver::Dirs;
use domdriver::driver::process::{Attach, Guest};
use domdriver::driver::status::{GuestStatus, proc_stat};
use serde_json::{Value, json};

const UUID: &str = "7d1d5c4f-3f5a-4b4e-9a55-1b2c3d4e5f60";
const QEMU: &str = "/usr/bin/qemu-system-x86_64";

/// Run `f` on a thread and fail the test if it takes longer than `secs`: a hang is a bug.
fn bounded<T: Send + 'static>(secs: u64, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(secs))
        .unwrap_or_else(|_| panic!("operation hung for more than {secs} s"))
}

/// One end of the fake monitor.
struct Peer {
    r: BufReader<UnixStream>,
    w: UnixStream,
}

impl Peer {
    fn new(s: UnixStream) -> Peer {
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        Peer {
            r: BufReader::new(s.try_clone().unwrap()),
            w: s,
        }
    }

    fn raw(&mut self, bytes: &[u8]) {
        // The client may have given up and closed: that is its right.
        let _ = self.w.write_all(bytes);
    }

    fn send(&mut self, v: Value) {
        self.raw(format!("{v}\r\n").as_bytes());
    }

    /// Read the next command, check its name, return its id.
    fn expect(&mut self, command: &str) -> Value {
        let mut line = String::new();
        self.r.read_line(&mut line).unwrap();
        let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
        assert_eq!(v["execute"], command, "{v}");
        v["id"].clone()
    }

    fn answer(&mut self, command: &str, ret: Value) {
        let id = self.expect(command);
        self.send(json!({"return": ret, "id": id}));
    }

    /// Greeting and capability negotiation, as QEMU does them.
    fn handshake(&mut self) {
        self.send(
            json!({"QMP": {"version": {"qemu": {"major": 7, "minor": 2, "micro": 0},
            "package": ""}, "capabilities": ["oob"]}}),
        );
        self.answer("qmp_capabilities", json!({}));
    }

    /// What an adopting monitor asks first: the handshake, then `query-status` (to catch up
    /// with what happened while nobody watched), answered `running`.
    fn adopted(&mut self) {
        self.handshake();
        self.answer(
            "query-status",
            json!({"status": "running", "running": true}),
        );
    }

    fn event(&mut self, name: &str) {
        self.send(json!({"event": name, "data": {},
            "timestamp": {"seconds": 1, "microseconds": 2}}));
    }

    /// Wait until the client closes (bounded by the read timeout).
    fn until_eof(&mut self) {
        let mut buf = String::new();
        while matches!(self.r.read_line(&mut buf), Ok(n) if n > 0) {
            buf.clear();
        }
    }
}

/// One fake at a time: each adopts its stand-in with a guest monitor of its own, and a script
/// on a loaded machine must not lose the race against another test's monitors.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A domain whose "QEMU" is a `sleep` and whose monitor is a script.
struct Fake {
    tmp: tempfile::TempDir,
    conn: Connect,
    sleep: Child,
    peer: Option<JoinHandle<()>>,
    _serial: std::sync::MutexGuard<'static, ()>,
}

impl Drop for Fake {
    fn drop(&mut self) {
        // Our child, so its pid cannot have been reused before we reap it here.
        let _ = self.sleep.kill();
        let _ = self.sleep.wait();
    }
}

const NAME: &str = "fake";

impl Fake {
    /// Define a persistent domain, start its stand-in process and serve `script` on its
    /// monitor; `script` gets each connection in turn (one `Domain` operation = one
    /// connection) with the stand-in's pid.
    fn new<F>(script: F) -> Fake
    where
        F: FnOnce(&mut dyn FnMut() -> Peer, i32) + Send + 'static,
    {
        let serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
        let tmp = tempfile::Builder::new()
            .prefix("df")
            .tempdir_in("/tmp")
            .unwrap();
        let uri = format!("qemu:///embed?root={}", tmp.path().display());
        let conn = Connect::open(Some(&uri)).unwrap();
        conn.define_domain_xml(&domain_xml(NAME)).unwrap();
        let dirs = Dirs::under(tmp.path());
        let guest_dir = dirs.run.join(format!("domain-{NAME}"));
        std::fs::create_dir_all(&guest_dir).unwrap();
        let monitor = guest_dir.join("monitor.sock");
        let listener = UnixListener::bind(&monitor).unwrap();
        let sleep = common::spawn_execd(Command::new("sleep").arg("300"));
        let pid = sleep.id() as i32;
        GuestStatus {
            name: NAME.into(),
            uuid: UUID.into(),
            pid,
            start_time: proc_stat(pid).unwrap().unwrap().start_time,
            monitor,
            reason: "booted".into(),
            paused: false,
            xml: domain_xml(NAME),
            emulator: "sleep".into(),
            ..Default::default()
        }
        .write(&dirs.run.join(format!("{NAME}.json")))
        .unwrap();
        let peer = std::thread::spawn(move || {
            listener.set_nonblocking(true).unwrap();
            let mut accept = move || {
                let until = Instant::now() + Duration::from_secs(30);
                loop {
                    match listener.accept() {
                        Ok((s, _)) => {
                            s.set_nonblocking(false).unwrap();
                            return Peer::new(s);
                        }
                        Err(_) if Instant::now() < until => {
                            std::thread::sleep(Duration::from_millis(10))
                        }
                        Err(e) => panic!("nobody connected to the fake monitor: {e}"),
                    }
                }
            };
            script(&mut accept, pid);
        });
        Fake {
            tmp,
            conn,
            sleep,
            peer: Some(peer),
            _serial: serial,
        }
    }

    fn dom(&self) -> domdriver::driver::domain::Domain<'_> {
        self.conn.lookup_domain_by_name(NAME).unwrap()
    }

    fn state(&self) -> String {
        self.dom().state().unwrap().to_string()
    }

    /// Run one operation with a bound on its time; its error message, if any.
    fn op(
        &self,
        f: fn(&domdriver::driver::domain::Domain<'_>) -> Result<(), String>,
    ) -> Result<(), String> {
        let root = self.tmp.path().to_path_buf();
        bounded(40, move || {
            let uri = format!("qemu:///embed?root={}", root.display());
            let conn = Connect::open(Some(&uri)).unwrap();
            let dom = conn.lookup_domain_by_name(NAME).unwrap();
            f(&dom)
        })
    }

    /// The script must have run to its end without panicking.
    fn finish(mut self) {
        self.peer
            .take()
            .unwrap()
            .join()
            .expect("the fake monitor's script failed");
    }

    fn status_path(&self) -> PathBuf {
        Dirs::under(self.tmp.path())
            .run
            .join(format!("{NAME}.json"))
    }
}

fn domain_xml(name: &str) -> String {
    format!(
        "<domain type='qemu'><name>{name}</name><uuid>{UUID}</uuid><memory unit='MiB'>64</memory>\
         <os><type arch='x86_64' machine='pc'>hvm</type></os></domain>"
    )
}

fn suspend(d: &domdriver::driver::domain::Domain<'_>) -> Result<(), String> {
    d.suspend().map_err(|e| e.to_string())
}

fn resume(d: &domdriver::driver::domain::Domain<'_>) -> Result<(), String> {
    d.resume().map_err(|e| e.to_string())
}

fn shutdown(d: &domdriver::driver::domain::Domain<'_>) -> Result<(), String> {
    d.shutdown().map_err(|e| e.to_string())
}

fn shutdown_wait(d: &domdriver::driver::domain::Domain<'_>) -> Result<(), String> {
    d.shutdown_and_wait(Duration::from_secs(2))
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// After a fault the guest's monitor closes the failed connection and opens a new one for
/// the next operation (a reconnection, not an adoption: no catching up): the guest was not
/// lost.
fn then_suspend_works(accept: &mut dyn FnMut() -> Peer) {
    let mut p = accept();
    p.handshake();
    p.answer("stop", json!({}));
}

fn assert_recovers(f: &Fake) {
    assert_eq!(f.state(), "running (booted)");
    f.op(suspend).expect("suspend after the fault");
    assert_eq!(f.state(), "paused (user)");
}

#[test]
fn garbage_json_reply() {
    let f = Fake::new(|accept, _| {
        let mut p = accept();
        p.adopted();
        p.expect("stop");
        p.raw(b"{\"return\": {}, \"id\": nonsense\r\n");
        p.until_eof();
        then_suspend_works(accept);
    });
    let e = f.op(suspend).unwrap_err();
    assert!(e.starts_with("guest 'fake': malformed QMP message"), "{e}");
    assert_recovers(&f);
    f.finish();
}

#[test]
fn reply_larger_than_the_read_bound() {
    let f = Fake::new(|accept, _| {
        let mut p = accept();
        p.adopted();
        p.expect("stop");
        // One line beyond the 64 MiB bound, written until the client stops reading.
        let chunk = vec![b'a'; 1 << 20];
        p.raw(b"{\"return\": \"");
        for _ in 0..65 {
            if p.w.write_all(&chunk).is_err() {
                break;
            }
        }
        p.until_eof();
        then_suspend_works(accept);
    });
    let e = f.op(suspend).unwrap_err();
    assert_eq!(e, "guest 'fake': QMP message larger than 67108864 bytes");
    assert_recovers(&f);
    f.finish();
}

#[test]
fn reply_slower_than_the_command_timeout() {
    let f = Fake::new(|accept, _| {
        let mut p = accept();
        p.adopted();
        p.expect("stop");
        // Never answer; the client gives up and hangs up.
        p.until_eof();
        then_suspend_works(accept);
    });
    let t0 = Instant::now();
    let e = f.op(suspend).unwrap_err();
    assert!(
        e.starts_with("guest 'fake': QMP command 'stop' timed out after"),
        "{e}"
    );
    eprintln!("timed out after {:?}", t0.elapsed());
    assert_recovers(&f);
    f.finish();
}

#[test]
fn reply_with_an_unexpected_id() {
    let f = Fake::new(|accept, _| {
        let mut p = accept();
        p.adopted();
        p.expect("stop");
        p.send(json!({"return": {}, "id": "libvirt-999"}));
        p.until_eof();
        then_suspend_works(accept);
    });
    let e = f.op(suspend).unwrap_err();
    assert!(
        e.contains("reply with unknown id 'libvirt-999'") && e.contains("'stop'"),
        "{e}"
    );
    assert_recovers(&f);
    f.finish();
}

#[test]
fn events_interleaved_with_replies() {
    let f = Fake::new(|accept, _| {
        let mut p = accept();
        p.adopted();
        let id = p.expect("stop");
        p.event("STOP");
        p.event("SOMETHING_NEW");
        p.send(json!({"return": {}, "id": id}));
        // resume, on the same connection (the guest's monitor keeps it): query-status, then
        // cont, each with events before the reply.
        let id = p.expect("query-status");
        p.event("RTC_CHANGE");
        p.send(json!({"return": {"status": "paused", "running": false}, "id": id}));
        let id = p.expect("cont");
        p.event("RESUME");
        p.send(json!({"return": {}, "id": id}));
    });
    f.op(suspend).unwrap();
    assert_eq!(f.state(), "paused (user)");
    if let Err(e) = f.op(resume) {
        panic!(
            "{e}: {}",
            std::fs::read_to_string(f.tmp.path().join("log/qemu/fake.log")).unwrap_or_default()
        );
    }
    assert_eq!(f.state(), "running (unpaused)");
    f.finish();
}

#[test]
fn eof_in_the_middle_of_a_reply() {
    let f = Fake::new(|accept, _| {
        let mut p = accept();
        p.adopted();
        p.expect("stop");
        p.raw(b"{\"return\": {");
        drop(p);
        then_suspend_works(accept);
    });
    let e = f.op(suspend).unwrap_err();
    assert!(
        e.starts_with("guest 'fake': QMP peer closed the connection"),
        "{e}"
    );
    assert_recovers(&f);
    f.finish();
}

#[test]
fn socket_closed_mid_command() {
    let f = Fake::new(|accept, _| {
        let mut p = accept();
        p.adopted();
        p.expect("query-status");
        drop(p);
        then_suspend_works(accept);
    });
    let e = f.op(resume).unwrap_err();
    assert!(
        e.starts_with("guest 'fake': QMP peer closed the connection"),
        "{e}"
    );
    assert_recovers(&f);
    f.finish();
}

#[test]
fn process_gone_mid_command_is_crashed() {
    let f = Fake::new(|accept, pid| {
        let mut p = accept();
        p.adopted();
        p.expect("stop");
        // QEMU dies: the process goes, then its socket closes.
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        drop(p);
    });
    // The stand-in stays a zombie until the test reaps it on drop: the driver counts a
    // zombie as gone, as it must for a QEMU whose parent has not reaped it yet.
    let e = f.op(suspend).unwrap_err();
    assert_eq!(e, "Requested operation is not valid: domain is not running");
    assert_eq!(f.state(), "shut off (crashed)");
    assert!(!f.status_path().exists(), "status file left behind");
    let e = f.op(suspend).unwrap_err();
    assert_eq!(e, "Requested operation is not valid: domain is not running");
    f.finish();
}

/// QEMU hangs up its monitor as it exits, a moment before its process is gone: a command
/// caught between the two is "not running", as if it came after, not a broken connection.
#[test]
fn hang_up_then_exit_is_not_running() {
    let f = Fake::new(|accept, pid| {
        let mut p = accept();
        p.adopted();
        p.expect("stop");
        drop(p);
        std::thread::sleep(Duration::from_millis(300));
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL).unwrap();
    });
    let e = f.op(suspend).unwrap_err();
    assert_eq!(e, "Requested operation is not valid: domain is not running");
    assert_eq!(f.state(), "shut off (crashed)");
    f.finish();
}

/// pvpanic with a crash kernel loaded: QEMU lets the guest run its kdump and sends
/// GUEST_CRASHLOADED. libvirt relays it as the Crashed Crashloaded event and applies no
/// on_crash (here libvirt's default, destroy): the guest runs on.
#[test]
fn guest_crashloaded_is_relayed_and_the_guest_runs_on() {
    use domdriver::driver::monitor::MonitorClient;
    use domdriver::driver::monitor::proto::{Push, Request};
    let f = Fake::new(|accept, _| {
        let mut p = accept();
        p.adopted();
        p.send(
            json!({"event": "GUEST_CRASHLOADED", "data": {"action": "run"},
            "timestamp": {"seconds": 1, "microseconds": 2}}),
        );
    });
    // Reading the state adopts the stand-in: its status file names no live monitor.
    let log =
        || std::fs::read_to_string(f.tmp.path().join("log/qemu/fake.log")).unwrap_or_default();
    assert_eq!(f.state(), "running (booted)", "{}", log());
    let paths =
        domdriver::driver::process::GuestPaths::new(&Dirs::under(f.tmp.path()), NAME).unwrap();
    let mut c = MonitorClient::connect(&paths.control).unwrap();
    c.call(&Request::Subscribe { since_ms: Some(0) }).unwrap();
    let until = Instant::now() + Duration::from_secs(30);
    let line = loop {
        let left = until.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "no domain event");
        if let Some(Push::Domain(e)) = c.next_push(Some(left)).unwrap() {
            break e.virsh_line();
        }
    };
    assert_eq!(
        line,
        "event 'lifecycle' for domain 'fake': Crashed Crashloaded"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(f.state(), "running (booted)", "{}", log());
    f.finish();
}

#[test]
fn shutdown_with_garbage_reply_keeps_the_guest_running() {
    let f = Fake::new(|accept, _| {
        let mut p = accept();
        p.adopted();
        p.expect("system_powerdown");
        p.raw(b"\x00\xff garbage\n");
        p.until_eof();
        then_suspend_works(accept);
    });
    let e = f.op(shutdown).unwrap_err();
    assert!(e.starts_with("guest 'fake': "), "{e}");
    // No shutdown was requested after all: a later exit is not read as one.
    let run = Dirs::under(f.tmp.path()).run;
    assert!(!run.join(format!("{NAME}.shutoff")).exists());
    assert_recovers(&f);
    f.finish();
}

#[test]
fn shutdown_that_never_happens_times_out() {
    let f = Fake::new(|accept, _| {
        let mut p = accept();
        p.adopted();
        p.answer("system_powerdown", json!({}));
        // The guest ignores the button: no SHUTDOWN event, the process stays, and the next
        // operation comes on the same connection.
        p.answer("stop", json!({}));
    });
    let e = f.op(shutdown_wait).unwrap_err();
    assert_eq!(
        e,
        "Timed out during operation: guest 'fake': the guest did not shut down within 2s"
    );
    assert_recovers(&f);
    f.finish();
}

#[test]
fn shutdown_then_exit_is_shut_off_shutdown() {
    let f = Fake::new(|accept, pid| {
        let mut p = accept();
        p.adopted();
        p.answer("system_powerdown", json!({}));
        p.event("SHUTDOWN");
        // The driver ends a QEMU that stays after SHUTDOWN (-no-shutdown) with SIGTERM,
        // which ends the sleep standing in for it.
        let until = Instant::now() + Duration::from_secs(10);
        while domdriver::driver::status::proc_stat(pid)
            .ok()
            .flatten()
            .is_some_and(|s| s.state != 'Z')
            && Instant::now() < until
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        drop(p);
    });
    f.op(|d| {
        d.shutdown_and_wait(Duration::from_secs(10))
            .map(|s| assert_eq!(s.to_string(), "shut off (shutdown)"))
            .map_err(|e| e.to_string())
    })
    .unwrap();
    assert_eq!(f.state(), "shut off (shutdown)");
    f.finish();
}

/// A status file whose pid is alive and even has the recorded start time, but is not the
/// QEMU that was started (its argv[0] differs): not our guest. It is never signalled, and
/// its leftovers are cleaned up.
#[test]
fn stale_status_whose_pid_is_another_program() {
    for who in ["self", "sleep"] {
        let tmp = tempfile::Builder::new()
            .prefix("df")
            .tempdir_in("/tmp")
            .unwrap();
        let uri = format!("qemu:///embed?root={}", tmp.path().display());
        let conn = Connect::open(Some(&uri)).unwrap();
        conn.define_domain_xml(&domain_xml(NAME)).unwrap();
        let dirs = Dirs::under(tmp.path());
        let mut sleep = common::spawn_execd(Command::new("sleep").arg("300"));
        let pid = if who == "self" {
            std::process::id() as i32
        } else {
            sleep.id() as i32
        };
        let status = dirs.run.join(format!("{NAME}.json"));
        std::fs::create_dir_all(dirs.run.join(format!("domain-{NAME}"))).unwrap();
        GuestStatus {
            name: NAME.into(),
            uuid: UUID.into(),
            pid,
            start_time: proc_stat(pid).unwrap().unwrap().start_time,
            monitor: dirs.run.join(format!("domain-{NAME}/monitor.sock")),
            reason: "booted".into(),
            paused: false,
            xml: domain_xml(NAME),
            emulator: QEMU.into(),
            ..Default::default()
        }
        .write(&status)
        .unwrap();
        let dom = conn.lookup_domain_by_name(NAME).unwrap();
        assert_eq!(
            dom.state().unwrap().to_string(),
            "shut off (crashed)",
            "{who}"
        );
        assert!(!dom.is_active().unwrap());
        assert_eq!(
            dom.destroy().unwrap_err().to_string(),
            "Requested operation is not valid: domain is not running"
        );
        match Guest::attach(&dirs, NAME).unwrap() {
            Attach::Inactive(s) => assert_eq!(s.to_string(), "shut off (crashed)"),
            Attach::Running(_) => panic!("{who}: attached to a process that is not our QEMU"),
        }
        assert!(!status.exists(), "{who}: status file left behind");
        assert!(!dirs.run.join(format!("domain-{NAME}")).exists());
        // Nothing was signalled: the stand-in still runs.
        assert!(matches!(sleep.try_wait(), Ok(None)), "{who}");
        sleep.kill().unwrap();
        sleep.wait().unwrap();
    }
}

fn have_qemu() -> bool {
    if Path::new(QEMU).exists() {
        return true;
    }
    eprintln!("\n*** SKIPPED: {QEMU} is not installed ***\n");
    false
}

/// Kills a started domain's QEMU on drop, by the pid in its status file.
struct Reap(PathBuf);

impl Drop for Reap {
    fn drop(&mut self) {
        if let Ok(Some(st)) = GuestStatus::read(NAME, &self.0)
            && domdriver::driver::status::is_same_live_process(st.pid, st.start_time)
        {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(st.pid),
                nix::sys::signal::SIGKILL,
            );
        }
    }
}

fn idle_domain(extra: &str) -> String {
    format!(
        "<domain type='qemu'><name>{NAME}</name><uuid>{UUID}</uuid><memory unit='MiB'>64</memory>\
         <vcpu>1</vcpu><os><type arch='x86_64' machine='pc'>hvm</type></os>\
         <devices>{extra}<memballoon model='none'/></devices></domain>"
    )
}

/// A connection on `root` that knows only the emulator these guests need, probed with room
/// to spare on a loaded machine: what is under test is the start, not probing every
/// emulator installed. Also the URI and the emulator dir, for `vsh`.
fn qemu_conn(root: &Path) -> (Connect, String, PathBuf) {
    let uri = format!("qemu:///embed?root={}", root.display());
    let emu_dir = root.join("emulators");
    std::fs::create_dir(&emu_dir).unwrap();
    std::os::unix::fs::symlink(QEMU, emu_dir.join("qemu-system-x86_64")).unwrap();
    let opts = domdriver::driver::ConnectOptions {
        emulator_dirs: vec![emu_dir.clone()],
        probe_timeout: Duration::from_secs(120),
        ..Default::default()
    };
    (Connect::open_with(Some(&uri), opts).unwrap(), uri, emu_dir)
}

#[test]
fn qemu_failing_at_start_reports_the_log_tail() {
    if !have_qemu() {
        return;
    }
    let tmp = tempfile::Builder::new()
        .prefix("df")
        .tempdir_in("/tmp")
        .unwrap();
    let missing = tmp.path().join("missing-disk.qcow2");
    let (conn, _, _) = qemu_conn(tmp.path());
    let _reap = Reap(Dirs::under(tmp.path()).run.join(format!("{NAME}.json")));
    let dom = conn
        .define_domain_xml(&idle_domain(&format!(
            "<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>\
             <source file='{}'/><target dev='vda' bus='virtio'/></disk>",
            missing.display()
        )))
        .unwrap();
    let e = dom.create().unwrap_err().to_string();
    assert!(e.contains("guest 'fake'"), "{e}");
    // QEMU's own words, from the tail of the guest's log.
    assert!(
        e.contains(&format!("Could not open '{}'", missing.display()))
            && e.contains("No such file or directory"),
        "{e}"
    );
    assert_eq!(dom.state().unwrap().to_string(), "shut off (unknown)");
    assert!(!dom.is_active().unwrap());
}

/// `vsh start NAME` twice at once: exactly one starts the guest, the other says why not.
#[test]
fn two_starts_at_once_start_one_guest() {
    if !have_qemu() {
        return;
    }
    let tmp = tempfile::Builder::new()
        .prefix("df")
        .tempdir_in("/tmp")
        .unwrap();
    let (conn, uri, emu_dir) = qemu_conn(tmp.path());
    let status = Dirs::under(tmp.path()).run.join(format!("{NAME}.json"));
    let _reap = Reap(status.clone());
    let dom = conn.define_domain_xml(&idle_domain("")).unwrap();
    // Start once so that both racers find the emulator's capabilities cached and race on
    // the start itself rather than on probing.
    dom.create().unwrap();
    dom.destroy().unwrap();
    for round in 0..3 {
        let spawn = || {
            Command::new(env!("CARGO_BIN_EXE_vsh"))
                .env("VSH_EMULATOR_PATH", &emu_dir)
                .env("VSH_PROBE_TIMEOUT", "120")
                .args(["-c", &uri, "start", NAME])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        };
        let (a, b) = (spawn(), spawn());
        let outs = [a.wait_with_output().unwrap(), b.wait_with_output().unwrap()];
        let ok: Vec<_> = outs.iter().filter(|o| o.status.success()).collect();
        let failed: Vec<_> = outs.iter().filter(|o| !o.status.success()).collect();
        assert_eq!(ok.len(), 1, "round {round}: {outs:?}");
        let err = String::from_utf8_lossy(&failed[0].stderr).to_string();
        assert!(
            err.contains("is already running") || err.contains("cannot acquire state change lock"),
            "round {round}: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
        assert_eq!(dom.state().unwrap().to_string(), "running (booted)");
        dom.destroy().unwrap();
    }
}
