//! Running guests with real QEMU: start, reattach from another process, QMP operations,
//! crash detection, start failures, the per-guest lock, and a KVM smoke test.
//!
//! Only local UNIX sockets and files: every QEMU gets `-nodefaults -nic none`. Guests that
//! need no kernel use `-machine none` (no vCPU, nothing to emulate) to spare the shared
//! cores; two tests boot the Linux boot kit under TCG. Every QEMU a test starts is killed by
//! pid from a drop guard, also when the test fails.

#[path = "common/bootkit.rs"]
mod bootkit;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use domdriver::driver::Dirs;
use domdriver::driver::process::{Attach, DomainState, Guest, GuestError, LaunchSpec, State};
use domdriver::driver::status::{GuestStatus, is_same_live_process, proc_stat};
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, waitpid};
use nix::unistd::Pid;

const QEMU: &str = "/usr/bin/qemu-system-x86_64";
/// Env var that turns `helper_start_and_exit` into the starter process of another test.
const HELPER_ENV: &str = "DOMDRIVER_TEST_HELPER_ROOT";

/// Kills a QEMU by pid on drop (if it is still the same process) and reaps it if it is ours.
struct Reap {
    pid: i32,
    start_time: u64,
}

impl Reap {
    fn new(pid: i32) -> Reap {
        let start_time = proc_stat(pid).ok().flatten().map_or(0, |s| s.start_time);
        Reap { pid, start_time }
    }
}

impl Drop for Reap {
    fn drop(&mut self) {
        if is_same_live_process(self.pid, self.start_time) {
            let _ = kill(Pid::from_raw(self.pid), Signal::SIGKILL);
        }
        // Reap it if it is our child (or an orphan we adopted as subreaper); a Guest's own
        // waiter thread may beat us to it, which is fine.
        let until = Instant::now() + Duration::from_secs(5);
        while Instant::now() < until {
            match waitpid(Pid::from_raw(self.pid), Some(WaitPidFlag::WNOHANG)) {
                Ok(nix::sys::wait::WaitStatus::StillAlive) => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => break,
            }
        }
    }
}

/// A private embed-style root: run, log, ... under a temp dir.
fn root() -> (tempfile::TempDir, Dirs) {
    // Short path: the monitor socket path must fit in sun_path.
    let t = tempfile::Builder::new()
        .prefix("ddg")
        .tempdir_in("/tmp")
        .expect("temp dir");
    let dirs = Dirs::under(t.path());
    (t, dirs)
}

fn base_argv(name: &str, uuid: &str) -> Vec<String> {
    [
        QEMU,
        "-name",
        &format!("guest={name},debug-threads=on"),
        "-uuid",
        uuid,
        "-no-user-config",
        "-nodefaults",
        "-nic",
        "none",
        "-display",
        "none",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// A QEMU with no machine at all: QMP works, nothing is emulated.
fn idle_spec(name: &str) -> LaunchSpec {
    let uuid = "c7a5fdbd-edaf-9455-926a-d65c16db1809";
    let mut argv = base_argv(name, uuid);
    argv.extend(["-machine", "none"].map(String::from));
    let mut s = LaunchSpec::new(name, uuid, argv);
    s.xml = format!("<domain type='qemu'><name>{name}</name></domain>");
    s
}

fn attach(dirs: &Dirs, name: &str) -> Attach {
    Guest::attach(dirs, name).unwrap_or_else(|e| panic!("attach {name}: {e}"))
}

fn leftovers(dirs: &Dirs, name: &str) -> Vec<PathBuf> {
    [
        dirs.run.join(format!("{name}.json")),
        dirs.run.join(format!("domain-{name}/monitor.sock")),
        dirs.run.join(format!("domain-{name}/control.sock")),
        dirs.run.join(format!("domain-{name}")),
    ]
    .into_iter()
    .filter(|p| p.symlink_metadata().is_ok())
    .collect()
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::symlink_metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o777
}

/// Wait until the serial log holds `marker` `count` times; the time it took.
fn wait_marker(serial: &Path, marker: &str, count: usize, timeout: Duration) -> Duration {
    let t0 = Instant::now();
    loop {
        let text = std::fs::read_to_string(serial).unwrap_or_default();
        if text.matches(marker).count() >= count {
            return t0.elapsed();
        }
        assert!(
            t0.elapsed() < timeout,
            "no {marker} (x{count}) on the serial console within {timeout:?}; it says:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The pid is gone and not a zombie of ours.
fn assert_reaped(pid: i32) {
    let until = Instant::now() + Duration::from_secs(5);
    while proc_stat(pid).ok().flatten().is_some() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    let st = proc_stat(pid).ok().flatten();
    assert!(st.is_none(), "QEMU {pid} still exists: {st:?}");
}

#[test]
fn linux_guest_lifecycle_suspend_resume_reset_acpi_shutdown() {
    let Some(kit) = bootkit::linux() else { return };
    let (tmp, dirs) = root();
    let name = "lin1";
    let serial = tmp.path().join("serial.log");
    let uuid = "5b7e8bb4-3c4f-4f2e-9d0a-7e0b6f0d1a01";
    let mut argv = base_argv(name, uuid);
    argv.extend(
        [
            "-machine",
            "pc",
            "-accel",
            "tcg",
            "-m",
            "256",
            // As libvirt runs QEMU: it stays after the guest powers off, and the driver
            // terminates it once it reported SHUTDOWN.
            "-no-shutdown",
            "-kernel",
            &kit.kernel.display().to_string(),
            "-initrd",
            &kit.initrd.display().to_string(),
            "-append",
            kit.cmdline(),
            "-chardev",
            &format!("file,id=charserial0,path={}", serial.display()),
            "-device",
            "isa-serial,chardev=charserial0,id=serial0",
        ]
        .map(String::from),
    );
    let spec = LaunchSpec::new(name, uuid, argv);
    let t0 = Instant::now();
    let mut g = Guest::start(&dirs, spec).unwrap_or_else(|e| panic!("start: {e}"));
    let _reap = Reap::new(g.pid());
    let started = t0.elapsed();
    // QEMU's parent is the guest's monitor, not us.
    assert_eq!(
        proc_stat(g.pid()).unwrap().unwrap().ppid,
        g.monitor_pid(),
        "QEMU's parent"
    );
    assert_eq!(
        g.state().unwrap(),
        DomainState::new(State::Running, "booted")
    );

    // The files a running guest has, private to us; the log starts with the command line.
    let status = dirs.run.join(format!("{name}.json"));
    assert_eq!(mode(&status), 0o600);
    assert_eq!(mode(&g.paths().monitor), 0o600);
    assert_eq!(mode(&g.paths().guest_run_dir), 0o700);
    let log = std::fs::read_to_string(&g.paths().log).unwrap();
    let mut lines = log.lines();
    assert!(lines.next().unwrap().contains(": starting up"), "{log}");
    let cmd = lines.next().unwrap();
    assert!(
        cmd.starts_with("LC_ALL=C PATH=") && cmd.contains(" /usr/bin/qemu-system-x86_64 -name "),
        "{cmd}"
    );
    assert!(
        cmd.contains("server=on,wait=off") && cmd.contains(" -S"),
        "{cmd}"
    );
    let st = GuestStatus::read(name, &status).unwrap().unwrap();
    assert_eq!((st.pid, st.uuid.as_str()), (g.pid(), uuid));

    let boot = wait_marker(&serial, bootkit::GUEST_MARKER, 1, Duration::from_secs(120));
    eprintln!("TIMING: Linux guest under TCG: QMP up after {started:?}, marker after {boot:?}");

    g.suspend().unwrap();
    assert_eq!(g.state().unwrap(), DomainState::new(State::Paused, "user"));
    // Another reader, without lock or monitor, sees it from the status file.
    assert_eq!(
        Guest::peek(&dirs, name).unwrap().to_string(),
        "paused (user)"
    );
    assert!(g.wait_event("STOP", Duration::from_secs(5)).is_some());
    g.resume().unwrap();
    assert_eq!(
        g.state().unwrap(),
        DomainState::new(State::Running, "unpaused")
    );
    assert!(g.wait_event("RESUME", Duration::from_secs(5)).is_some());
    // The reason survives in the status file for the next process.
    let st = GuestStatus::read(name, &status).unwrap().unwrap();
    assert_eq!(st.reason, "unpaused");

    let t1 = Instant::now();
    g.reset().unwrap();
    assert!(g.wait_event("RESET", Duration::from_secs(5)).is_some());
    let reboot = wait_marker(&serial, bootkit::GUEST_MARKER, 2, Duration::from_secs(120));
    eprintln!(
        "TIMING: reboot after system_reset took {:?}",
        reboot.max(t1.elapsed())
    );

    let pid = g.pid();
    let t2 = Instant::now();
    let end = g.shutdown(Duration::from_secs(60)).unwrap_or_else(|e| {
        panic!(
            "shutdown: {e}\nserial:\n{}",
            std::fs::read_to_string(&serial).unwrap_or_default()
        )
    });
    eprintln!("TIMING: ACPI shutdown took {:?}", t2.elapsed());
    assert_eq!(end, DomainState::new(State::Shutoff, "shutdown"));
    assert_eq!(g.state().unwrap().to_string(), "shut off (shutdown)");
    let events: Vec<String> = g.take_events().into_iter().map(|e| e.name).collect();
    assert!(events.iter().any(|e| e == "SHUTDOWN"), "events: {events:?}");
    assert!(matches!(g.suspend(), Err(GuestError::NotRunning { .. })));
    assert_reaped(pid);
    assert!(
        leftovers(&dirs, name).is_empty(),
        "{:?}",
        leftovers(&dirs, name)
    );
    let log = std::fs::read_to_string(&g.paths().log).unwrap();
    assert!(
        log.trim_end().ends_with("shutting down, reason=shutdown"),
        "{log}"
    );
    drop(g);
    assert!(matches!(
        attach(&dirs, name),
        Attach::Inactive(s) if s == DomainState::new(State::Shutoff, "unknown")
    ));
}

/// Not a test on its own: run by `qemu_outlives_its_starter_then_kill9_is_crashed` as a
/// separate process (the `vsh start` that exits).
#[test]
fn helper_start_and_exit() {
    let Some(root) = std::env::var_os(HELPER_ENV) else {
        return;
    };
    let dirs = Dirs::under(Path::new(&root));
    let g = Guest::start(&dirs, idle_spec("orphan")).unwrap_or_else(|e| panic!("start: {e}"));
    println!("HELPER-PID={}", g.pid());
    // Exit with the guest running, as `vsh start` does.
}

/// Run helper test `name` of this binary as a separate process over `root`: whether it
/// passed, and its stdout and stderr (callers first take what they must clean up).
fn run_helper(name: &str, root: &Path) -> (bool, String) {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(HELPER_ENV, root)
        .output()
        .expect("run the helper");
    let text = format!(
        "{}\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The value of `KEY=` in a helper's output (the harness may print on the same line).
fn helper_value(text: &str, key: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.split(key).nth(1))
        .map(|v| v.trim().to_string())
}

#[test]
fn qemu_outlives_its_starter_then_kill9_is_crashed() {
    // Adopt the orphaned QEMU so that the guard can reap it: PID 1 here may not reap.
    nix::sys::prctl::set_child_subreaper(true).expect("PR_SET_CHILD_SUBREAPER");
    let (tmp, dirs) = root();
    let name = "orphan";
    let (ok, text) = run_helper("helper_start_and_exit", tmp.path());
    let said: Option<i32> =
        helper_value(&text, "HELPER-PID=").and_then(|p| p.split_whitespace().next()?.parse().ok());
    // Whatever the helper printed, a QEMU it started is in the status file: kill it at the end.
    let status = GuestStatus::read(name, &dirs.run.join(format!("{name}.json")))
        .ok()
        .flatten();
    let _reap_any = status.as_ref().map(|s| Reap::new(s.pid));
    let pid = said.unwrap_or_else(|| panic!("helper failed: {text}"));
    let _reap = Reap::new(pid);
    assert!(ok, "{text}");
    assert_eq!(status.map(|s| s.pid), Some(pid));

    // The starter is gone; QEMU is not.
    let mut g = match attach(&dirs, name) {
        Attach::Running(g) => g,
        Attach::Inactive(s) => panic!("QEMU died with its starter: {s}"),
    };
    assert_eq!(g.pid(), pid);
    assert_eq!(
        g.state().unwrap(),
        DomainState::new(State::Running, "booted")
    );
    assert_eq!(
        g.status().xml,
        "<domain type='qemu'><name>orphan</name></domain>"
    );
    // QEMU leads a session of its own.
    assert_eq!(
        nix::unistd::getsid(Some(Pid::from_raw(pid)))
            .unwrap()
            .as_raw(),
        pid
    );
    drop(g);

    kill(Pid::from_raw(pid), Signal::SIGKILL).unwrap();
    // Its monitor reaps it, records the crash with the signal in the log, and cleans up.
    assert_reaped(pid);
    let until = Instant::now() + Duration::from_secs(5);
    while !leftovers(&dirs, name).is_empty() {
        assert!(Instant::now() < until, "{:?}", leftovers(&dirs, name));
        std::thread::sleep(Duration::from_millis(20));
    }
    let log = std::fs::read_to_string(dirs.log.join(format!("{name}.log"))).unwrap();
    assert!(
        log.contains(&format!("QEMU (pid {pid}) killed by signal 9 (SIGKILL)"))
            && log.trim_end().ends_with("shutting down, reason=crashed"),
        "{log}"
    );
    match attach(&dirs, name) {
        Attach::Inactive(s) => assert_eq!(s.state, State::Shutoff),
        Attach::Running(_) => panic!("a killed QEMU was attached"),
    }
}

#[test]
fn stale_status_with_a_foreign_pid_is_crashed_and_cleaned() {
    let (_tmp, dirs) = root();
    let name = "stale";
    std::fs::create_dir_all(dirs.run.join(format!("domain-{name}"))).unwrap();
    std::fs::write(dirs.run.join(format!("domain-{name}/monitor.sock")), "").unwrap();
    // Our own pid: alive, but not the process that started at this time.
    let me = std::process::id() as i32;
    let real = proc_stat(me).unwrap().unwrap().start_time;
    GuestStatus {
        name: name.into(),
        uuid: "u".into(),
        pid: me,
        start_time: real + 12345,
        monitor: dirs.run.join(format!("domain-{name}/monitor.sock")),
        reason: "booted".into(),
        paused: false,
        xml: String::new(),
        emulator: String::new(),
        ..Default::default()
    }
    .write(&dirs.run.join(format!("{name}.json")))
    .unwrap();
    assert_eq!(leftovers(&dirs, name).len(), 3);
    match attach(&dirs, name) {
        Attach::Inactive(s) => assert_eq!(s, DomainState::new(State::Shutoff, "crashed")),
        Attach::Running(_) => panic!("attached to ourselves"),
    }
    assert!(
        leftovers(&dirs, name).is_empty(),
        "{:?}",
        leftovers(&dirs, name)
    );
    // And we are still alive, of course: nothing signalled the foreign pid.
}

#[test]
fn qemu_failing_at_start_reports_the_log_tail() {
    let (tmp, dirs) = root();
    let name = "nodisk";
    let missing = tmp.path().join("missing-disk.qcow2");
    let mut spec = idle_spec(name);
    spec.argv.extend([
        "-blockdev".to_string(),
        format!(
            "{{\"driver\":\"file\",\"filename\":\"{}\",\"node-name\":\"libvirt-1-storage\"}}",
            missing.display()
        ),
    ]);
    let t0 = Instant::now();
    let err = Guest::start(&dirs, spec).expect_err("QEMU started without its disk");
    let msg = err.to_string();
    eprintln!("start failure after {:?}: {msg}", t0.elapsed());
    assert!(matches!(err, GuestError::Start { .. }), "{err:?}");
    assert!(msg.contains(&missing.display().to_string()), "{msg}");
    assert!(msg.contains("No such file or directory"), "{msg}");
    assert!(msg.contains("guest 'nodisk'"), "{msg}");
    assert!(
        leftovers(&dirs, name).is_empty(),
        "{:?}",
        leftovers(&dirs, name)
    );
}

#[test]
fn missing_emulator_is_an_error_without_leftovers() {
    let (tmp, dirs) = root();
    let name = "noqemu";
    let mut spec = idle_spec(name);
    let bogus = tmp.path().join("no-such-qemu");
    spec.argv[0] = bogus.display().to_string();
    let msg = Guest::start(&dirs, spec)
        .expect_err("started a missing binary")
        .to_string();
    assert!(
        msg.contains("guest 'noqemu'") && msg.contains("no-such-qemu"),
        "{msg}"
    );
    assert!(
        leftovers(&dirs, name).is_empty(),
        "{:?}",
        leftovers(&dirs, name)
    );
    assert_eq!(
        Guest::peek(&dirs, name).unwrap().to_string(),
        "shut off (unknown)"
    );
}

#[test]
fn two_handles_are_served_then_destroy_reaps() {
    let (_tmp, dirs) = root();
    let name = "twice";
    let mut g = Guest::start(&dirs, idle_spec(name)).unwrap_or_else(|e| panic!("start: {e}"));
    let pid = g.pid();
    let _reap = Reap::new(pid);
    // The monitor serialises handles: a second one works alongside the first.
    let Attach::Running(mut h) = attach(&dirs, name) else {
        panic!("not running")
    };
    assert_eq!(h.monitor_pid(), g.monitor_pid());
    assert_eq!(h.qmp("query-status", None).unwrap()["status"], "running");
    assert_eq!(
        Guest::peek(&dirs, name).unwrap().to_string(),
        "running (booted)"
    );
    // A second start finds it running rather than spawning another QEMU.
    assert!(matches!(
        Guest::start(&dirs, idle_spec(name)),
        Err(GuestError::AlreadyRunning { .. })
    ));
    let t0 = Instant::now();
    assert_eq!(
        g.destroy(Duration::from_secs(10)).unwrap(),
        DomainState::new(State::Shutoff, "destroyed")
    );
    eprintln!("destroy took {:?}", t0.elapsed());
    assert_reaped(pid);
    assert!(
        leftovers(&dirs, name).is_empty(),
        "{:?}",
        leftovers(&dirs, name)
    );
    // The other handle learns that the guest is gone.
    assert!(matches!(h.suspend(), Err(GuestError::NotRunning { .. })));
    assert!(matches!(attach(&dirs, name), Attach::Inactive(_)));
}

#[test]
fn paused_start_and_already_running() {
    let (_tmp, dirs) = root();
    let name = "paused";
    let mut spec = idle_spec(name);
    spec.paused = true;
    let mut g = Guest::start(&dirs, spec).unwrap_or_else(|e| panic!("start: {e}"));
    let _reap = Reap::new(g.pid());
    assert_eq!(g.state().unwrap().to_string(), "paused (user)");
    drop(g);
    // Starting again finds the guest running.
    assert!(matches!(
        Guest::start(&dirs, idle_spec(name)),
        Err(GuestError::AlreadyRunning { .. })
    ));
    let Attach::Running(mut g) = attach(&dirs, name) else {
        panic!("not running")
    };
    g.resume().unwrap();
    assert_eq!(g.state().unwrap().to_string(), "running (unpaused)");
    assert_eq!(
        g.destroy(Duration::from_secs(10)).unwrap().to_string(),
        "shut off (destroyed)"
    );
}

fn kvm_usable() -> Result<(), String> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .map(drop)
        .map_err(|e| format!("/dev/kvm: {e}"))
}

#[test]
fn kvm_boot_sector_smoke() {
    if let Err(e) = kvm_usable() {
        eprintln!("\n==== SKIPPED kvm_boot_sector_smoke: {e} ====\n");
        return;
    }
    let (tmp, dirs) = root();
    let name = "kvmboot";
    let img = tmp.path().join("boot.img");
    std::fs::write(&img, bootkit::boot_sector()).unwrap();
    let serial = tmp.path().join("serial.log");
    let uuid = "1d6d7c1a-5b0e-4d6b-8f7e-2a9b3c4d5e6f";
    let mut argv = base_argv(name, uuid);
    // The monitor at a fixed fd, as xml2argv will render it.
    argv.extend(["-machine", "pc", "-accel", "kvm", "-m", "16"].map(String::from));
    argv.extend([
        "-drive".into(),
        format!("file={},format=raw,if=ide", img.display()),
        "-chardev".into(),
        format!("file,id=charserial0,path={}", serial.display()),
        "-device".into(),
        "isa-serial,chardev=charserial0,id=serial0".into(),
        "-chardev".into(),
        "socket,id=charmonitor,fd=77,server=on,wait=off".into(),
        "-mon".into(),
        "chardev=charmonitor,id=monitor,mode=control".into(),
    ]);
    let mut spec = LaunchSpec::new(name, uuid, argv);
    spec.monitor_fd = Some(77);
    let t0 = Instant::now();
    let mut g = Guest::start(&dirs, spec).unwrap_or_else(|e| panic!("start: {e}"));
    let _reap = Reap::new(g.pid());
    let up = wait_marker(
        &serial,
        bootkit::BOOT_SECTOR_MARKER,
        1,
        Duration::from_secs(30),
    );
    eprintln!(
        "TIMING: KVM boot sector marker after {:?}",
        t0.elapsed().max(up)
    );
    let accel = g.qmp("query-kvm", None).unwrap();
    assert_eq!(accel["enabled"], true, "{accel}");
    assert_eq!(g.state().unwrap().state, State::Running);
    assert_eq!(
        g.destroy(Duration::from_secs(10)).unwrap().to_string(),
        "shut off (destroyed)"
    );
}
