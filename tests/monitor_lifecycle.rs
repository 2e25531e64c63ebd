//! The guest monitor (one process per running guest, `domdriver-monitor`): crash-only
//! behaviour, fds, signals to `vsh start`, zombies in a PID namespace, and lifecycle actions
//! and events on a real Linux guest under TCG.
//!
//! Every QEMU a test starts is found by its root dir (in its command line) and killed by pid
//! at the end, also when the test fails.

#[path = "common/bootkit.rs"]
mod bootkit;
#[path = "common/guests.rs"]
mod guests;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use domdriver::Connect;
use domdriver::driver::Dirs;
use domdriver::driver::lock::GuestLock;
use domdriver::driver::monitor::proto::Push;
use domdriver::driver::monitor::{DomainEvent, EventKind, Lifecycle};
use domdriver::driver::process::{Attach, DomainState, Guest, LaunchSpec, State};
use domdriver::driver::status::{GuestStatus, is_same_live_process, proc_stat};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const QEMU: &str = "/usr/bin/qemu-system-x86_64";
const NAME: &str = "mon";
const UUID: &str = "3e1f3b9c-8a7d-4c1e-9b2a-5d6e7f8a9b0c";

fn tmp() -> tempfile::TempDir {
    // Short path: socket paths must fit in sun_path.
    tempfile::Builder::new()
        .prefix("dm")
        .tempdir_in("/tmp")
        .unwrap()
}

/// Kills every QEMU and monitor under the root at the end.
struct Cleanup(PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for what in ["domdriver-monitor", "qemu-system"] {
            for pid in guests::pids_under(&self.0, what) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
    }
}

fn idle_xml(extra: &str) -> String {
    format!(
        "<domain type='qemu'><name>{NAME}</name><uuid>{UUID}</uuid><memory unit='MiB'>64</memory>\
         <vcpu>1</vcpu><os><type arch='x86_64' machine='pc'>hvm</type></os>{extra}\
         <devices><memballoon model='none'/></devices></domain>"
    )
}

/// A connection on `root` knowing only the emulator needed, and its URI and emulator dir.
fn conn(root: &Path) -> (Connect, String, PathBuf) {
    let uri = format!("qemu:///embed?root={}", root.display());
    let emu_dir = root.join("emulators");
    std::fs::create_dir_all(&emu_dir).unwrap();
    let _ = std::os::unix::fs::symlink(QEMU, emu_dir.join("qemu-system-x86_64"));
    let opts = domdriver::driver::ConnectOptions {
        emulator_dirs: vec![emu_dir.clone()],
        probe_timeout: Duration::from_secs(120),
        ..Default::default()
    };
    (Connect::open_with(Some(&uri), opts).unwrap(), uri, emu_dir)
}

fn status(root: &Path) -> Option<GuestStatus> {
    GuestStatus::read(NAME, &Dirs::under(root).run.join(format!("{NAME}.json")))
        .ok()
        .flatten()
}

fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let until = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < until, "not within {timeout:?}: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn vsh(emu_dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_vsh"));
    c.env("VSH_EMULATOR_PATH", emu_dir)
        .env("VSH_PROBE_TIMEOUT", "120");
    c
}

#[test]
fn kill9_of_the_monitor_leaves_qemu_and_the_next_call_adopts_it() {
    let t = tmp();
    let _c = Cleanup(t.path().to_path_buf());
    let (c, _, _) = conn(t.path());
    let d = c.define_domain_xml(&idle_xml("")).unwrap();
    let t0 = Instant::now();
    d.create().unwrap();
    eprintln!("FIGURE: Domain::create (warm caps) took {:?}", t0.elapsed());
    let st = status(t.path()).unwrap();
    let rss = std::fs::read_to_string(format!("/proc/{}/status", st.monitor_pid)).unwrap();
    let rss = rss
        .lines()
        .find(|l| l.starts_with("VmRSS"))
        .unwrap_or_default();
    eprintln!("FIGURE: monitor {rss}");
    // QEMU's parent is its monitor, which leads no session (it cannot take a terminal).
    assert_eq!(proc_stat(st.pid).unwrap().unwrap().ppid, st.monitor_pid);
    kill(Pid::from_raw(st.monitor_pid), Signal::SIGKILL).unwrap();
    wait_until("monitor gone", Duration::from_secs(5), || {
        !is_same_live_process(st.monitor_pid, st.monitor_start_time)
    });
    assert!(is_same_live_process(st.pid, st.start_time), "QEMU died");
    // The next call, a read of the state among them, adopts the guest with a new monitor.
    assert_eq!(d.state().unwrap().to_string(), "running (booted)");
    let st2 = status(t.path()).unwrap();
    assert_eq!(st2.pid, st.pid);
    assert_ne!(st2.monitor_pid, st.monitor_pid);
    assert!(is_same_live_process(
        st2.monitor_pid,
        st2.monitor_start_time
    ));
    // A read while the monitor lives adopts nothing.
    assert_eq!(d.state().unwrap().to_string(), "running (booted)");
    assert_eq!(status(t.path()).unwrap().monitor_pid, st2.monitor_pid);
    d.suspend().unwrap();
    assert_eq!(d.state().unwrap().to_string(), "paused (user)");
    d.resume().unwrap();
    assert_eq!(d.state().unwrap().to_string(), "running (unpaused)");
    // An adopted QEMU is not the new monitor's child: its end is seen through a pidfd.
    d.destroy().unwrap();
    assert_eq!(d.state().unwrap().to_string(), "shut off (destroyed)");
    assert!(!is_same_live_process(st.pid, st.start_time));
    wait_until("monitor exits", Duration::from_secs(5), || {
        !is_same_live_process(st2.monitor_pid, st2.monitor_start_time)
    });
}

#[test]
fn kill9_of_qemu_is_crashed_with_the_signal_in_the_log() {
    let t = tmp();
    let _c = Cleanup(t.path().to_path_buf());
    let (c, _, _) = conn(t.path());
    let d = c.define_domain_xml(&idle_xml("")).unwrap();
    d.create().unwrap();
    let st = status(t.path()).unwrap();
    kill(Pid::from_raw(st.pid), Signal::SIGKILL).unwrap();
    let t0 = Instant::now();
    wait_until("shut off (crashed)", Duration::from_secs(5), || {
        d.state().unwrap().to_string() == "shut off (crashed)" && !d.is_active().unwrap()
    });
    eprintln!("crash recorded after {:?}", t0.elapsed());
    // Reaped by its monitor: no zombie, and the monitor is gone too.
    wait_until("QEMU reaped", Duration::from_secs(5), || {
        proc_stat(st.pid).unwrap().is_none()
    });
    wait_until("monitor exits", Duration::from_secs(5), || {
        !is_same_live_process(st.monitor_pid, st.monitor_start_time)
    });
    let log =
        std::fs::read_to_string(Dirs::under(t.path()).log.join(format!("{NAME}.log"))).unwrap();
    assert!(
        log.contains(&format!(
            "QEMU (pid {}) killed by signal 9 (SIGKILL)",
            st.pid
        )),
        "{log}"
    );
    assert!(
        log.trim_end().ends_with("shutting down, reason=crashed"),
        "{log}"
    );
    let run = Dirs::under(t.path()).run;
    assert!(!run.join(format!("domain-{NAME}")).exists());
}

/// fds the caller leaks (not close-on-exec) reach neither the monitor nor QEMU: a pipe
/// held by the guest would keep `(vsh start g 7>&1) | cat` from ever ending.
#[test]
fn leaked_fds_reach_neither_monitor_nor_qemu() {
    let t = tmp();
    let _c = Cleanup(t.path().to_path_buf());
    let (c, uri, emu_dir) = conn(t.path());
    let d = c.define_domain_xml(&idle_xml("")).unwrap();
    let t0 = Instant::now();
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "(\"$VSH\" -c '{uri}' start {NAME} 7>&1) | cat; echo piped-done"
        ))
        .env("VSH", env!("CARGO_BIN_EXE_vsh"))
        .env("VSH_EMULATOR_PATH", &emu_dir)
        .env("VSH_PROBE_TIMEOUT", "120")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(out.wait_with_output());
    });
    let out = rx
        .recv_timeout(Duration::from_secs(120))
        .expect("the pipeline never ended: the guest holds the pipe")
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("piped-done"),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains(&format!("Domain '{NAME}' started")), "{text}");
    eprintln!("pipeline ended after {:?}", t0.elapsed());
    // And what the monitor and QEMU hold open: nothing of ours but what they need.
    let st = status(t.path()).unwrap();
    for pid in [st.pid, st.monitor_pid] {
        for fd in std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .flatten()
        {
            let n: i32 = fd.file_name().to_str().unwrap().parse().unwrap();
            let target = std::fs::read_link(fd.path()).unwrap_or_default();
            let target = target.display().to_string();
            assert!(
                !(n <= 2 && target.starts_with("pipe:")),
                "pid {pid} fd {n} -> {target}"
            );
        }
    }
    d.destroy().unwrap();
}

/// A small deterministic generator for the SIGINT delays (no rand crate).
fn lcg(seed: &mut u64) -> u64 {
    *seed = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    *seed >> 33
}

/// SIGINT to `vsh start` at any moment leaves a running, tracked guest or no QEMU at all.
#[test]
fn sigint_or_sigterm_to_vsh_start_leaves_a_tracked_guest_or_none() {
    let runs: u32 = std::env::var("VSH_SIGINT_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(50);
    let t = tmp();
    let _c = Cleanup(t.path().to_path_buf());
    let (c, uri, emu_dir) = conn(t.path());
    let d = c.define_domain_xml(&idle_xml("")).unwrap();
    // Probe once (as vsh: its cache stamp is its own binary), so that most runs interrupt
    // starts rather than probing.
    let warm = vsh(&emu_dir)
        .args(["-c", &uri, "start", NAME])
        .output()
        .unwrap();
    assert!(warm.status.success(), "{warm:?}");
    d.destroy().unwrap();
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    eprintln!("seed {seed}");
    let (mut tracked, mut none) = (0, 0);
    for run in 0..runs {
        let delay = Duration::from_millis(lcg(&mut seed) % 120);
        let mut child = vsh(&emu_dir)
            .args(["-c", &uri, "start", NAME])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        // ^C from a terminal, or a service manager stopping vsh.
        let sig = [Signal::SIGINT, Signal::SIGTERM][run as usize % 2];
        let _ = kill(Pid::from_raw(child.id() as i32), sig);
        let _ = child.wait();
        // Let a monitor that got its configuration finish the start it began. The guest's
        // lock says when: vsh lends it to the monitor, which holds it until it reported (the
        // guest tracked, or its QEMU killed and reaped). Counting monitors alone is not
        // enough: one being exec'd or forking is not seen as one for a moment.
        wait_until(
            &format!("run {run}: monitors settle"),
            Duration::from_secs(30),
            || {
                GuestLock::try_acquire(&Dirs::under(t.path()).run, NAME, "test").is_ok()
                    && guests::pids_under(t.path(), "domdriver-monitor").len()
                        == usize::from(status(t.path()).is_some_and(|s| {
                            is_same_live_process(s.monitor_pid, s.monitor_start_time)
                        }))
            },
        );
        // A QEMU that is being killed (a probe QEMU whose vsh died gets SIGKILL from the
        // kernel, a failed start's QEMU from its monitor) still shows for a moment: an orphan
        // is one that stays.
        let settled = |want: &[i32]| {
            let until = std::time::Instant::now() + Duration::from_secs(5);
            loop {
                let qemus = guests::pids_under(t.path(), "qemu-system");
                if qemus == want || std::time::Instant::now() > until {
                    return qemus;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        };
        match status(t.path()) {
            Some(st) if is_same_live_process(st.pid, st.start_time) => {
                let qemus = settled(&[st.pid]);
                assert_eq!(qemus, vec![st.pid], "run {run}: untracked QEMU");
                assert!(
                    is_same_live_process(st.monitor_pid, st.monitor_start_time),
                    "run {run}: guest without monitor"
                );
                wait_until(
                    &format!("run {run}: running"),
                    Duration::from_secs(30),
                    || d.state().unwrap().state == State::Running,
                );
                d.destroy().unwrap();
                tracked += 1;
            }
            other => {
                let qemus = settled(&[]);
                assert!(
                    qemus.is_empty(),
                    "run {run}: orphan QEMU {qemus:?} ({other:?}); {}",
                    describe(t.path(), &qemus)
                );
                none += 1;
            }
        }
        let left = settled(&[]);
        assert!(
            left.is_empty(),
            "run {run}: QEMU left after the run: {left:?}; {}",
            describe(t.path(), &left)
        );
    }
    eprintln!("{runs} runs: {tracked} tracked guests, {none} without QEMU, 0 orphans");
}

/// A cold `vsh capabilities` probes every emulator with a QEMU of its own; ^C or SIGTERM at
/// any moment of it leaves none of them behind (they die with vsh, PR_SET_PDEATHSIG).
#[test]
fn sigint_or_sigterm_to_a_cold_vsh_capabilities_leaves_no_probe_qemu() {
    let t = tmp();
    let _c = Cleanup(t.path().to_path_buf());
    let uri = format!("qemu:///embed?root={}", t.path().display());
    let emu_dir = t.path().join("emulators");
    std::fs::create_dir_all(&emu_dir).unwrap();
    let mut linked = 0;
    for arch in ["x86_64", "i386", "aarch64", "riscv64", "ppc64", "s390x"] {
        let bin = format!("/usr/bin/qemu-system-{arch}");
        if Path::new(&bin).exists() {
            std::os::unix::fs::symlink(&bin, emu_dir.join(format!("qemu-system-{arch}"))).unwrap();
            linked += 1;
        }
    }
    assert!(linked > 0, "no QEMU in /usr/bin");
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    eprintln!("seed {seed}");
    let mut interrupted_probes = 0;
    for run in 0..8 {
        // Cold every time: no cached probe results.
        let _ = std::fs::remove_dir_all(t.path().join("cache"));
        let mut child = vsh(&emu_dir)
            .args(["-c", &uri, "capabilities"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(50 + lcg(&mut seed) % 700));
        if !guests::pids_under(t.path(), "qemu-system").is_empty() {
            interrupted_probes += 1;
        }
        let sig = [Signal::SIGINT, Signal::SIGTERM][run % 2];
        let _ = kill(Pid::from_raw(child.id() as i32), sig);
        let until = Instant::now() + Duration::from_secs(30);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > until {
                let _ = child.kill();
                let _ = child.wait();
                panic!("run {run}: vsh capabilities did not end on {sig}");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        // A SIGKILLed QEMU takes a moment to go (its threads first).
        let left = guests::processes_mentioning_after(
            &emu_dir.display().to_string(),
            Duration::from_secs(5),
        );
        assert!(
            left.is_empty(),
            "run {run}: probe QEMUs left after {sig}: {left:?}"
        );
    }
    // The runs must have interrupted probing, not a finished vsh.
    assert!(interrupted_probes > 0, "no run caught a probe QEMU alive");
    eprintln!("{interrupted_probes} of 8 runs interrupted live probe QEMUs");
}

/// What a failed assertion needs to tell where a QEMU came from: each one's parent, state
/// and arguments, the monitors and files under `root`, and the guest log's tail.
fn describe(root: &Path, qemus: &[i32]) -> String {
    let mut out = String::new();
    for pid in qemus {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let field = |k: &str| {
            status
                .lines()
                .find(|l| l.starts_with(k))
                .unwrap_or_default()
                .to_string()
        };
        let args = std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
            .unwrap_or_default();
        out += &format!(
            "\nQEMU {pid}: {} {} args: {args}",
            field("PPid:"),
            field("State:")
        );
    }
    out += &format!(
        "\nmonitors: {:?}",
        guests::pids_under(root, "domdriver-monitor")
    );
    let run = Dirs::under(root).run;
    let files: Vec<String> = walk(&run);
    out += &format!("\nfiles under {}: {files:?}", run.display());
    for log in walk(&Dirs::under(root).log) {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(15).collect();
        out += &format!(
            "\n{log}:\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    out
}

fn walk(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p.display().to_string());
        }
    }
    out
}

/// 30 starts and destroys in a PID namespace whose PID 1 (a shell) never reaps: no QEMU is
/// left a zombie (the exited monitors themselves may be, as with conmon).
#[test]
fn no_qemu_zombies_in_a_pid_namespace() {
    if Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc", "true"])
        .status()
        .map(|s| !s.success())
        .unwrap_or(true)
    {
        eprintln!("SKIP: no PID namespaces here");
        return;
    }
    let t = tmp();
    let _c = Cleanup(t.path().to_path_buf());
    let (c, uri, emu_dir) = conn(t.path());
    let d = c.define_domain_xml(&idle_xml("")).unwrap();
    d.create().unwrap();
    d.destroy().unwrap();
    let script = format!(
        "for i in $(seq 30); do \"$VSH\" -c '{uri}' start {NAME} >/dev/null || exit 1; \
         \"$VSH\" -c '{uri}' destroy {NAME} >/dev/null || exit 2; done; \
         z=0; for s in /proc/[0-9]*/stat; do \
           case \"$(cat $s 2>/dev/null)\" in *'(qemu-system-x86)'' Z '*) z=$((z+1));; esac; \
         done; echo qemu-zombies=$z"
    );
    let out = Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc", "sh", "-c", &script])
        .env("VSH", env!("CARGO_BIN_EXE_vsh"))
        .env("VSH_EMULATOR_PATH", &emu_dir)
        .env("VSH_PROBE_TIMEOUT", "120")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("qemu-zombies=0"), "{text}");
}

/// A Linux guest with `-no-shutdown`, as libvirt runs it, and lifecycle actions in its XML.
fn linux_spec(kit: &bootkit::LinuxKit, root: &Path, script: &str, actions: &str) -> LaunchSpec {
    let serial = root.join("serial.log");
    let mut argv: Vec<String> = [
        QEMU,
        "-name",
        &format!("guest={NAME}"),
        "-nodefaults",
        "-nic",
        "none",
        "-display",
        "none",
        "-machine",
        "pc",
        "-accel",
        "tcg",
        "-m",
        "256",
        "-no-shutdown",
        "-kernel",
        &kit.kernel.display().to_string(),
        "-initrd",
        &kit.initrd.display().to_string(),
        "-append",
        &format!("{} {}", kit.cmdline(), bootkit::run_cmdline(script)),
        "-chardev",
        &format!("file,id=charserial0,path={}", serial.display()),
        "-device",
        "isa-serial,chardev=charserial0,id=serial0",
    ]
    .map(String::from)
    .to_vec();
    argv.push("-uuid".into());
    argv.push(UUID.into());
    let mut s = LaunchSpec::new(NAME, UUID, argv);
    s.xml = format!(
        "<domain type='qemu'><name>{NAME}</name><uuid>{UUID}</uuid>\
         <memory unit='MiB'>256</memory><os><type arch='x86_64' machine='pc'>hvm</type></os>\
         {actions}</domain>"
    );
    s
}

fn lifecycle(events: &[DomainEvent]) -> Vec<String> {
    events.iter().map(DomainEvent::virsh_line).collect()
}

/// Read pushes until a Stopped lifecycle event; the domain events, and when QEMU's
/// SHUTDOWN came and when the Stopped event came.
fn until_stopped(g: &mut Guest, timeout: Duration) -> (Vec<DomainEvent>, Option<Instant>, Instant) {
    let mut client =
        domdriver::driver::monitor::MonitorClient::connect(&g.paths().control).unwrap();
    client
        .call(&domdriver::driver::monitor::proto::Request::Subscribe { since_ms: None })
        .unwrap();
    let until = Instant::now() + timeout;
    let (mut evs, mut shutdown_at) = (Vec::new(), None);
    loop {
        let left = until.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "no Stopped event: {:?}", lifecycle(&evs));
        match client.next_push(Some(left)) {
            Ok(Some(Push::Qmp(e))) if e.name == "SHUTDOWN" => shutdown_at = Some(Instant::now()),
            Ok(Some(Push::Domain(e))) => {
                let stop = e.is_stop();
                evs.push(e);
                if stop {
                    return (evs, shutdown_at, Instant::now());
                }
            }
            Ok(_) => {}
            Err(e) => panic!(
                "monitor went without a Stopped event: {e}; {:?}",
                lifecycle(&evs)
            ),
        }
    }
}

#[test]
fn linux_guest_poweroff_and_reboot_actions() {
    let Some(kit) = bootkit::linux() else { return };
    let t = tmp();
    let _c = Cleanup(t.path().to_path_buf());
    let dirs = Dirs::under(t.path());
    let boot = Duration::from_secs(300);

    // The guest powers itself off: on_poweroff=destroy (the default) ends it, and the
    // guest is shut off (shutdown) within a second of QEMU's SHUTDOWN.
    let mut g = Guest::start(&dirs, linux_spec(&kit, t.path(), "poweroff -f", "")).unwrap();
    let (evs, shutdown_at, stopped_at) = until_stopped(&mut g, boot);
    let lines = lifecycle(&evs);
    assert_eq!(
        lines.last().unwrap(),
        &format!("event 'lifecycle' for domain '{NAME}': Stopped Shutdown")
    );
    assert!(
        lines.contains(&format!(
            "event 'lifecycle' for domain '{NAME}': Shutdown Finished after guest request"
        )),
        "{lines:?}"
    );
    let lag = stopped_at - shutdown_at.expect("no SHUTDOWN event");
    eprintln!("FIGURE: SHUTDOWN to Stopped Shutdown: {lag:?}");
    assert!(lag < Duration::from_secs(1), "{lag:?}");
    assert_eq!(
        g.wait_ended(Duration::from_secs(10)),
        Some(DomainState::new(State::Shutoff, "shutdown"))
    );
    assert!(matches!(
        Guest::attach(&dirs, NAME).unwrap(),
        Attach::Inactive(_)
    ));

    // on_reboot=destroy: a guest reboot ends it (QEMU turns the reboot into a shutdown).
    std::fs::remove_file(t.path().join("serial.log")).unwrap();
    let mut g = Guest::start(
        &dirs,
        linux_spec(
            &kit,
            t.path(),
            "reboot -f",
            "<on_reboot>destroy</on_reboot>",
        ),
    )
    .unwrap();
    let (evs, _, _) = until_stopped(&mut g, boot);
    assert_eq!(
        lifecycle(&evs).last().unwrap(),
        &format!("event 'lifecycle' for domain '{NAME}': Stopped Shutdown")
    );
    assert!(
        !evs.iter().any(|e| e.kind == EventKind::Reboot),
        "{:?}",
        lifecycle(&evs)
    );

    // on_poweroff=restart: powering off boots it again; the second boot is destroyed.
    std::fs::remove_file(t.path().join("serial.log")).unwrap();
    let mut g = Guest::start(
        &dirs,
        linux_spec(
            &kit,
            t.path(),
            "poweroff -f",
            "<on_poweroff>restart</on_poweroff>",
        ),
    )
    .unwrap();
    let serial = t.path().join("serial.log");
    wait_until("second boot", boot, || {
        std::fs::read_to_string(&serial)
            .unwrap_or_default()
            .matches(bootkit::GUEST_MARKER)
            .count()
            >= 2
    });
    let st = g.state().unwrap();
    assert!(
        matches!(st.state, State::Running | State::Paused),
        "after restart: {st}"
    );
    g.destroy(Duration::from_secs(10)).unwrap();
    let _ = Lifecycle::StartedBooted;
}

/// A Linux guest defined through the XML, as a user writes it: direct kernel boot running
/// `script`, its console in `serial.log` under the root, `top` beside `<os>` (lifecycle
/// actions) and `devices` among its devices.
fn linux_xml(
    kit: &bootkit::LinuxKit,
    root: &Path,
    script: &str,
    top: &str,
    devices: &str,
) -> String {
    format!(
        "<domain type='qemu'><name>{NAME}</name><uuid>{UUID}</uuid>\
         <memory unit='MiB'>160</memory><vcpu>1</vcpu>\
         <os><type arch='x86_64' machine='pc'>hvm</type><kernel>{}</kernel>\
         <initrd>{}</initrd><cmdline>{} {}</cmdline></os><features><acpi/></features>{top}\
         <devices><serial type='file'><source path='{}'/></serial>\
         <controller type='usb' model='none'/>{devices}<memballoon model='none'/></devices>\
         </domain>",
        kit.kernel.display(),
        kit.initrd.display(),
        kit.cmdline(),
        bootkit::run_cmdline(script),
        root.join("serial.log").display()
    )
}

fn serial(root: &Path) -> String {
    std::fs::read_to_string(root.join("serial.log")).unwrap_or_default()
}

/// A subscriber to the guest's monitor: its domain events in virsh's words, and how long
/// after QEMU's timestamp of the QMP event before it each one came.
struct Watch {
    client: domdriver::driver::monitor::MonitorClient,
    lines: Vec<String>,
    last_qmp: Option<(String, std::time::SystemTime)>,
    lags: Vec<(String, Duration)>,
}

impl Watch {
    fn new(root: &Path) -> Watch {
        let paths = domdriver::driver::process::GuestPaths::new(&Dirs::under(root), NAME).unwrap();
        let mut client =
            domdriver::driver::monitor::MonitorClient::connect(&paths.control).unwrap();
        client
            .call(&domdriver::driver::monitor::proto::Request::Subscribe { since_ms: None })
            .unwrap();
        Watch {
            client,
            lines: Vec::new(),
            last_qmp: None,
            lags: Vec::new(),
        }
    }

    /// Read pushes until `done` holds for the lines seen so far.
    fn until(&mut self, timeout: Duration, done: impl Fn(&[String]) -> bool) {
        let until = Instant::now() + timeout;
        while !done(&self.lines) {
            let left = until.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "not within {timeout:?}: {:?}", self.lines);
            match self.client.next_push(Some(left)) {
                Ok(Some(Push::Qmp(e))) => {
                    let (s, us) = e.timestamp.unwrap_or_default();
                    let at = std::time::UNIX_EPOCH
                        + Duration::from_secs(s as u64)
                        + Duration::from_micros(us as u64);
                    self.last_qmp = Some((e.name, at));
                }
                Ok(Some(Push::Domain(e))) => {
                    let line = e.virsh_line();
                    if let Some((q, at)) = &self.last_qmp {
                        let lag = std::time::SystemTime::now()
                            .duration_since(*at)
                            .unwrap_or_default();
                        self.lags.push((format!("{q} -> {line}"), lag));
                    }
                    self.lines.push(line);
                }
                Ok(_) => {}
                Err(e) => panic!("monitor went: {e}; {:?}", self.lines),
            }
        }
    }

    fn has(lines: &[String], what: &str) -> bool {
        lines.iter().any(|l| l.ends_with(what))
    }
}

/// `echo c > /proc/sysrq-trigger` in a guest with `<panic model='isa'/>` and `on_crash`
/// `action`: libvirt's events and states, and how long after QEMU's GUEST_PANICKED the
/// Crashed event came.
fn panic_with(action: &str, root: &Path) -> (Vec<String>, Connect) {
    let kit = bootkit::linux().expect("no boot kit");
    let (c, _, _) = conn(root);
    let xml = linux_xml(
        &kit,
        root,
        "echo c > /proc/sysrq-trigger",
        &format!("<on_crash>{action}</on_crash>"),
        "<panic model='isa'/>",
    );
    let d = c.define_domain_xml(&xml).unwrap();
    d.create().unwrap();
    drop(d);
    let mut w = Watch::new(root);
    w.until(Duration::from_secs(300), |l| {
        Watch::has(l, "Crashed Panicked")
            && (action == "preserve"
                || Watch::has(l, "Resumed Unpaused")
                || Watch::has(l, "Stopped Crashed"))
    });
    for (what, lag) in &w.lags {
        eprintln!("FIGURE: on_crash={action}: {what}: {lag:?} after QEMU's event");
    }
    (w.lines, c)
}

#[test]
fn panic_on_crash_preserve_is_crashed_panicked() {
    if bootkit::linux().is_none() {
        return;
    }
    let t = tmp();
    let _c = Cleanup(t.path().to_path_buf());
    let (lines, c) = panic_with("preserve", t.path());
    assert_eq!(
        lines,
        vec![format!(
            "event 'lifecycle' for domain '{NAME}': Crashed Panicked"
        )]
    );
    let d = c.lookup_domain_by_name(NAME).unwrap();
    assert_eq!(d.state().unwrap().to_string(), "crashed (panicked)");
    // A crashed guest is no running guest for the agent, and destroy still ends it.
    d.destroy().unwrap();
    assert_eq!(d.state().unwrap().to_string(), "shut off (destroyed)");
}

#[test]
fn panic_on_crash_destroy_is_shut_off_crashed() {
    if bootkit::linux().is_none() {
        return;
    }
    let t = tmp();
    let _c = Cleanup(t.path().to_path_buf());
    let (lines, c) = panic_with("destroy", t.path());
    assert_eq!(
        lines,
        vec![
            format!("event 'lifecycle' for domain '{NAME}': Crashed Panicked"),
            format!("event 'lifecycle' for domain '{NAME}': Stopped Crashed"),
        ]
    );
    let d = c.lookup_domain_by_name(NAME).unwrap();
    wait_until("shut off (crashed)", Duration::from_secs(30), || {
        d.state().unwrap().to_string() == "shut off (crashed)"
    });
    assert!(guests::pids_under(t.path(), "qemu-system").is_empty());
}

#[test]
fn panic_on_crash_restart_runs_again_as_running_crashed() {
    if bootkit::linux().is_none() {
        return;
    }
    let t = tmp();
    let _c = Cleanup(t.path().to_path_buf());
    let (lines, c) = panic_with("restart", t.path());
    assert_eq!(
        lines,
        vec![
            format!("event 'lifecycle' for domain '{NAME}': Crashed Panicked"),
            format!("event 'lifecycle' for domain '{NAME}': Resumed Unpaused"),
        ]
    );
    let d = c.lookup_domain_by_name(NAME).unwrap();
    assert_eq!(d.state().unwrap().to_string(), "running (crashed)");
    d.destroy().unwrap();
}

#[test]
fn panic_on_crash_coredump_destroy_dumps_into_the_auto_dump_dir() {
    if bootkit::linux().is_none() {
        return;
    }
    let t = tmp();
    let _c = Cleanup(t.path().to_path_buf());
    let (lines, c) = panic_with("coredump-destroy", t.path());
    assert_eq!(
        lines.last().unwrap(),
        &format!("event 'lifecycle' for domain '{NAME}': Stopped Crashed")
    );
    let d = c.lookup_domain_by_name(NAME).unwrap();
    wait_until("shut off (crashed)", Duration::from_secs(30), || {
        d.state().unwrap().to_string() == "shut off (crashed)"
    });
    let dumps: Vec<_> = std::fs::read_dir(Dirs::under(t.path()).lib.join("dump"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(dumps.len(), 1, "{dumps:?}");
    let name = dumps[0].file_name().to_string_lossy().into_owned();
    // NAME-YYYY-MM-DD-HH:MM:SS, an ELF core of the guest's memory.
    assert!(
        name.starts_with(&format!("{NAME}-20")) && name.len() == NAME.len() + 20,
        "{name}"
    );
    let mut head = [0u8; 4];
    use std::io::Read;
    std::fs::File::open(dumps[0].path())
        .unwrap()
        .read_exact(&mut head)
        .unwrap();
    assert_eq!(&head, b"\x7fELF");
}

#[test]
fn panic_on_crash_coredump_restart_dumps_and_runs_again() {
    if bootkit::linux().is_none() {
        return;
    }
    let t = tmp();
    let _c = Cleanup(t.path().to_path_buf());
    let (lines, c) = panic_with("coredump-restart", t.path());
    assert_eq!(
        lines,
        vec![
            format!("event 'lifecycle' for domain '{NAME}': Crashed Panicked"),
            format!("event 'lifecycle' for domain '{NAME}': Resumed Unpaused"),
        ]
    );
    let d = c.lookup_domain_by_name(NAME).unwrap();
    assert_eq!(d.state().unwrap().to_string(), "running (crashed)");
    let dumps = std::fs::read_dir(Dirs::under(t.path()).lib.join("dump"))
        .unwrap()
        .count();
    assert_eq!(dumps, 1);
    d.destroy().unwrap();
}

/// A disk whose writes fail (an NBD disk whose server, qemu-nbd, is killed under it) with
/// `error_policy='stop'`: the guest's write pauses it, as libvirt reports: `io-error` and
/// `io-error-reason` events naming the disk's source and alias, `Suspended I/O Error`, and
/// `paused (I/O error)`.
#[test]
fn an_io_error_with_error_policy_stop_pauses_the_guest() {
    let Some(kit) = bootkit::linux() else { return };
    let t = tmp();
    let _c = Cleanup(t.path().to_path_buf());
    let (c, uri, emu) = conn(t.path());
    let image = t.path().join("disk.raw");
    std::fs::File::create(&image)
        .unwrap()
        .set_len(4 << 20)
        .unwrap();
    let sock = t.path().join("nbd.sock");
    let mut nbd = Command::new("qemu-nbd")
        .arg(format!("--socket={}", sock.display()))
        .args(["--format=raw", "--export-name=exp", "--persistent"])
        .arg(&image)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("qemu-nbd (package qemu-utils)");
    struct KillNbd(i32);
    impl Drop for KillNbd {
        fn drop(&mut self) {
            let _ = kill(Pid::from_raw(self.0), Signal::SIGKILL);
        }
    }
    let killer = KillNbd(nbd.id() as i32);
    wait_until("qemu-nbd listens", Duration::from_secs(30), || {
        sock.exists()
    });
    let xml = linux_xml(
        &kit,
        t.path(),
        "echo NBD-READY; sleep 20; dd if=/dev/zero of=/dev/vda bs=4096 count=64 conv=fsync; \
         echo WROTE",
        "",
        &format!(
            "<disk type='network' device='disk'>\
             <driver name='qemu' type='raw' error_policy='stop'/>\
             <source protocol='nbd' name='exp'><host transport='unix' socket='{}'/></source>\
             <target dev='vda' bus='virtio'/></disk>",
            sock.display()
        ),
    );
    let d = c.define_domain_xml(&xml).unwrap();
    d.create().unwrap();
    let mut w = Watch::new(t.path());
    wait_until("the guest is up", Duration::from_secs(300), || {
        serial(t.path()).contains("NBD-READY")
    });
    kill(Pid::from_raw(nbd.id() as i32), Signal::SIGKILL).unwrap();
    let _ = nbd.wait();
    // Reaped: its pid may be someone else's from now on.
    std::mem::forget(killer);
    w.until(Duration::from_secs(300), |l| {
        Watch::has(l, "Suspended I/O Error")
    });
    assert_eq!(
        w.lines,
        vec![
            format!("event 'io-error' for domain '{NAME}': exp (virtio-disk0) pause"),
            format!("event 'io-error' for domain '{NAME}': exp (virtio-disk0) pause due to "),
            format!("event 'lifecycle' for domain '{NAME}': Suspended I/O Error"),
        ],
        "{}",
        serial(t.path())
    );
    assert_eq!(d.state().unwrap().state, State::Paused);
    let (ok, out, err) = vsh_out(&emu, &uri, &["domstate", NAME, "--reason"]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "paused (I/O error)");
    assert!(!serial(t.path()).contains("WROTE"));
    d.destroy().unwrap();
}

/// The guest opens the i6300esb watchdog and never feeds it.
fn watchdog_with(action: &str, done: &str, root: &Path) -> (Watch, Connect) {
    let kit = bootkit::linux().expect("no boot kit");
    let (c, _, _) = conn(root);
    let xml = linux_xml(
        &kit,
        root,
        "insmod /lib/modules/watchdog.ko && insmod /lib/modules/i6300esb.ko heartbeat=2 && \
         exec 3>/dev/watchdog && \
         echo WATCHDOG-OPEN && sleep 3600",
        "",
        &format!("<watchdog model='i6300esb' action='{action}'/>"),
    );
    let d = c.define_domain_xml(&xml).unwrap();
    d.create().unwrap();
    drop(d);
    let mut w = Watch::new(root);
    w.until(Duration::from_secs(300), |l| Watch::has(l, done));
    for (what, lag) in &w.lags {
        eprintln!("FIGURE: watchdog {action}: {what}: {lag:?} after QEMU's event");
    }
    (w, c)
}

/// One guest through the watchdog's actions as libvirt reports them: busybox's `watchdog`
/// arms the i6300esb with a 2 s timeout and never feeds it; 8 s later it is stopped and
/// started again (QEMU resets the device, timeouts included, once it fired).
/// The XML's action (`none`, passed as `-watchdog-action`) comes first; the next ones are
/// set live with QEMU's `set-action`, as the monitor's handling depends only on the action
/// QEMU reports: inject-nmi (the guest kernel sees the NMI and runs on), pause (`paused
/// (watchdog)` until resumed), and shutdown (the power button: the guest powers off and
/// on_poweroff ends it).
#[test]
fn watchdog_actions_on_one_guest() {
    let Some(kit) = bootkit::linux() else { return };
    let t = tmp();
    let _c = Cleanup(t.path().to_path_buf());
    let (c, uri, emu) = conn(t.path());
    let xml = linux_xml(
        &kit,
        t.path(),
        "insmod /lib/modules/watchdog.ko && insmod /lib/modules/i6300esb.ko || exit 1
         n=0
         while :; do
             n=$((n + 1)); echo WATCHDOG-ARMED-$n
             watchdog -F -T 2 -t 1000 /dev/watchdog & w=$!
             sleep 8; kill $w; wait $w
         done",
        "",
        "<watchdog model='i6300esb' action='none'/>",
    );
    let d = c.define_domain_xml(&xml).unwrap();
    d.create().unwrap();
    let mut w = Watch::new(t.path());
    let wd = |a: &str| format!("event 'watchdog' for domain '{NAME}': {a}");
    let set = |a: &str| {
        let cmd = format!(r#"{{"execute":"set-action","arguments":{{"watchdog":"{a}"}}}}"#);
        let (ok, out, err) = vsh_out(&emu, &uri, &["qemu-monitor-command", NAME, &cmd]);
        assert!(ok && out.contains("return"), "{out} {err}");
    };
    let state = || {
        let (ok, out, err) = vsh_out(&emu, &uri, &["domstate", "--reason", NAME]);
        assert!(ok, "{err}");
        out.trim().to_string()
    };

    w.until(Duration::from_secs(300), |l| Watch::has(l, ": none"));
    assert_eq!(w.lines, vec![wd("none")]);
    assert_eq!(state(), "running (booted)");

    set("inject-nmi");
    w.until(Duration::from_secs(120), |l| Watch::has(l, ": inject-nmi"));
    wait_until("the guest sees the NMI", Duration::from_secs(60), || {
        serial(t.path()).contains("NMI received")
    });
    assert_eq!(state(), "running (booted)");

    set("pause");
    w.until(Duration::from_secs(120), |l| {
        Watch::has(l, "Suspended Watchdog")
    });
    assert_eq!(
        w.lines[2..],
        [
            wd("pause"),
            format!("event 'lifecycle' for domain '{NAME}': Suspended Watchdog"),
        ]
    );
    assert_eq!(state(), "paused (watchdog)");
    let (ok, _, err) = vsh_out(&emu, &uri, &["resume", NAME]);
    assert!(ok, "{err}");
    assert_eq!(state(), "running (unpaused)");

    set("shutdown");
    w.until(Duration::from_secs(120), |l| {
        Watch::has(l, "Stopped Shutdown")
    });
    let tail = &w.lines[5..];
    assert_eq!(tail[0], wd("shutdown"), "{tail:?}");
    assert!(
        tail.contains(&format!(
            "event 'lifecycle' for domain '{NAME}': Shutdown Finished after guest request"
        )),
        "{tail:?}"
    );
    for (what, lag) in &w.lags {
        eprintln!("FIGURE: watchdog: {what}: {lag:?} after QEMU's event");
    }
    wait_until("shut off (shutdown)", Duration::from_secs(30), || {
        state() == "shut off (shutdown)"
    });
    assert!(guests::pids_under(t.path(), "qemu-system").is_empty());
}

#[test]
fn watchdog_dump_dumps_and_resumes() {
    if bootkit::linux().is_none() {
        return;
    }
    let t = tmp();
    let _c = Cleanup(t.path().to_path_buf());
    let (w, c) = watchdog_with("dump", "Resumed Unpaused", t.path());
    assert_eq!(
        w.lines,
        vec![
            format!("event 'watchdog' for domain '{NAME}': pause"),
            format!("event 'lifecycle' for domain '{NAME}': Suspended Watchdog"),
            format!("event 'lifecycle' for domain '{NAME}': Resumed Unpaused"),
        ]
    );
    let d = c.lookup_domain_by_name(NAME).unwrap();
    let st = d.state().unwrap();
    assert!(
        matches!(st.state, State::Running) || st.to_string() == "paused (watchdog)",
        "{st}"
    );
    d.destroy().unwrap();
    let dumps: Vec<_> = std::fs::read_dir(Dirs::under(t.path()).lib.join("dump"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    // NAME-SECONDS, as libvirt names a watchdog's dump.
    assert!(
        !dumps.is_empty()
            && dumps.iter().all(|n| n
                .strip_prefix(&format!("{NAME}-"))
                .is_some_and(|s| s.parse::<u64>().is_ok())),
        "{dumps:?}"
    );
}

#[test]
fn watchdog_reset_reboots_the_guest() {
    if bootkit::linux().is_none() {
        return;
    }
    let t = tmp();
    let _c = Cleanup(t.path().to_path_buf());
    let reboot = format!("event 'reboot' for domain '{NAME}'");
    let (w, c) = watchdog_with("reset", &reboot, t.path());
    // QEMU resets the guest (which then boots and arms the watchdog again).
    assert_eq!(
        w.lines[..2],
        [
            format!("event 'watchdog' for domain '{NAME}': reset"),
            reboot
        ]
    );
    let d = c.lookup_domain_by_name(NAME).unwrap();
    assert!(matches!(d.state().unwrap().state, State::Running));
    d.destroy().unwrap();
}

#[test]
fn watchdog_poweroff_ends_the_guest() {
    if bootkit::linux().is_none() {
        return;
    }
    let t = tmp();
    let _c = Cleanup(t.path().to_path_buf());
    // QEMU exits at once for a watchdog's poweroff, without a SHUTDOWN event: libvirt
    // then reports a failed stop and `shut off (crashed)`.
    let (w, c) = watchdog_with("poweroff", "Stopped Failed", t.path());
    assert_eq!(
        w.lines,
        vec![
            format!("event 'watchdog' for domain '{NAME}': poweroff"),
            format!("event 'lifecycle' for domain '{NAME}': Stopped Failed"),
        ]
    );
    let d = c.lookup_domain_by_name(NAME).unwrap();
    wait_until("shut off (crashed)", Duration::from_secs(30), || {
        d.state().unwrap().to_string() == "shut off (crashed)"
    });
    assert!(guests::pids_under(t.path(), "qemu-system").is_empty());
}

/// The guest powers off while its monitor is dead: QEMU (-no-shutdown) waits in status
/// 'shutdown' while the status file still says running. A read of the state (`domstate`,
/// `list`) adopts it, the new monitor sees the power-off and applies on_poweroff (destroy)
/// before the read answers: `shut off (shutdown)`, QEMU gone.
#[test]
fn adopting_a_guest_that_powered_off_unwatched_applies_on_poweroff() {
    let Some(kit) = bootkit::linux() else { return };
    let t = tmp();
    let _c = Cleanup(t.path().to_path_buf());
    let (c, uri, emu) = conn(t.path());
    let xml = linux_xml(&kit, t.path(), "echo GOING-DOWN; poweroff -f", "", "");
    let d = c.define_domain_xml(&xml).unwrap();
    d.create().unwrap();
    let st = status(t.path()).unwrap();
    kill(Pid::from_raw(st.monitor_pid), Signal::SIGKILL).unwrap();
    wait_until("guest powered off", Duration::from_secs(300), || {
        serial(t.path()).contains("GOING-DOWN")
    });
    // poweroff -f takes the guest down at once; QEMU then sits in 'shutdown'.
    std::thread::sleep(Duration::from_secs(2));
    assert!(is_same_live_process(st.pid, st.start_time), "QEMU left");
    // Nobody watched: the status file still says what the guest did last seen.
    assert!(!status(t.path()).unwrap().paused);
    let t0 = Instant::now();
    let (ok, out, err) = vsh_out(&emu, &uri, &["domstate", "--reason", NAME]);
    eprintln!(
        "FIGURE: domstate adopting a guest that powered off unwatched: {:?}",
        t0.elapsed()
    );
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "shut off (shutdown)");
    // Seen through before domstate answered: QEMU is gone and so is its status file.
    assert!(!is_same_live_process(st.pid, st.start_time), "QEMU left");
    assert!(status(t.path()).is_none());
    let (ok, out, err) = vsh_out(&emu, &uri, &["list", "--all"]);
    assert!(ok, "{err}");
    assert!(
        out.lines()
            .any(|l| l.contains(NAME) && l.trim_end().ends_with("shut off")),
        "{out}"
    );
    assert_eq!(d.state().unwrap().to_string(), "shut off (shutdown)");
    let log =
        std::fs::read_to_string(Dirs::under(t.path()).log.join(format!("{NAME}.log"))).unwrap();
    assert!(
        log.contains("the guest powered off while unmonitored"),
        "{log}"
    );
    assert!(
        log.trim_end().ends_with("shutting down, reason=shutdown"),
        "{log}"
    );
    // No monitor is left either.
    wait_until("no monitor", Duration::from_secs(5), || {
        guests::pids_under(t.path(), "domdriver-monitor").is_empty()
    });
}

/// A busybox stand-in for qemu-ga on the agent's port: answers guest-sync with its id and
/// guest-network-get-interfaces with a loopback, powers off or reboots on guest-shutdown,
/// refuses anything else. A read on the port gives
/// EOF while no host end is connected, hence the outer loop.
const AGENT_RESPONDER: &str = r#"
for d in /sys/class/virtio-ports/*; do
    [ "$(cat $d/name)" = org.qemu.guest_agent.0 ] && p=/dev/${d##*/}
done
exec 3<>$p
echo AGENT-READY
while :; do
    while read -r line <&3; do
        case "$line" in
            *guest-sync*) id=${line##*\"id\":}; id=${id%%\}*}; echo "{\"return\": $id}" >&3 ;;
            *guest-network-get-interfaces*) echo '{"return": [{"name": "lo", "hardware-address": "00:00:00:00:00:00", "ip-addresses": [{"ip-address-type": "ipv4", "ip-address": "127.0.0.1", "prefix": 8}]}]}' >&3 ;;
            *\"reboot\"*) echo AGENT-REBOOT; reboot -f ;;
            *guest-shutdown*) echo AGENT-POWEROFF; poweroff -f ;;
            *) echo '{"error": {"class": "CommandNotFound", "desc": "not here"}}' >&3 ;;
        esac
    done
    sleep 0.1
done
"#;

fn vsh_out(emu_dir: &Path, uri: &str, args: &[&str]) -> (bool, String, String) {
    let out = vsh(emu_dir).args(["-c", uri]).args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn shutdown_and_reboot_modes_without_an_agent() {
    let t = tmp();
    let _c = Cleanup(t.path().to_path_buf());
    let (c, uri, emu) = conn(t.path());
    let d = c.define_domain_xml(&idle_xml("")).unwrap();
    d.create().unwrap();
    let fail = |args: &[&str], want: &[&str]| {
        let (ok, _, err) = vsh_out(&emu, &uri, args);
        assert!(!ok, "{args:?}");
        for w in want {
            assert!(err.contains(w), "{args:?}: {err}");
        }
    };
    fail(
        &["shutdown", NAME, "--mode", "agent"],
        &[
            &format!("error: Failed to shutdown domain '{NAME}'"),
            "error: argument unsupported: QEMU guest agent is not configured",
        ],
    );
    fail(
        &["reboot", NAME, "--mode", "agent"],
        &[
            &format!("error: Failed to reboot domain '{NAME}'"),
            "error: argument unsupported: QEMU guest agent is not configured",
        ],
    );
    fail(
        &["shutdown", NAME, "--mode", "acpi,bogus"],
        &[
            "error: Unknown mode acpi,bogus value, expecting 'acpi', 'agent', 'initctl', 'signal', or 'paravirt'",
        ],
    );
    fail(
        &["shutdown", NAME, "--mode", "initctl"],
        &["error: invalid argument: unsupported flags (0x4) in function qemuDomainShutdownFlags"],
    );
    fail(
        &["reboot", NAME, "--mode", "agent,signal"],
        &["error: invalid argument: unsupported flags (0x8) in function qemuDomainReboot"],
    );
    // Agent or ACPI: the missing agent is no error, the power button is pressed.
    let (ok, out, err) = vsh_out(&emu, &uri, &["shutdown", NAME, "--mode", "agent,acpi"]);
    assert!(ok, "{err}");
    assert!(
        out.contains(&format!("Domain '{NAME}' is being shutdown")),
        "{out}"
    );
    let (ok, out, err) = vsh_out(&emu, &uri, &["reboot", NAME, "--mode", "acpi"]);
    assert!(ok, "{err}");
    assert!(
        out.contains(&format!("Domain '{NAME}' is being rebooted")),
        "{out}"
    );
    // What domifaddr --source agent asks goes through the monitor, and is refused alike.
    match Guest::attach(&Dirs::under(t.path()), NAME).unwrap() {
        Attach::Running(mut g) => assert_eq!(
            g.agent_command("guest-network-get-interfaces", None, Duration::from_secs(5))
                .unwrap_err()
                .to_string(),
            "argument unsupported: QEMU guest agent is not configured"
        ),
        Attach::Inactive(s) => panic!("{s}"),
    }
    // Paused: the agent is refused before anything is asked of it.
    d.suspend().unwrap();
    let e = d
        .shutdown_flags(domdriver::driver::domain::SHUTDOWN_GUEST_AGENT)
        .unwrap_err()
        .to_string();
    assert_eq!(e, "Requested operation is not valid: domain is not running");
    d.destroy().unwrap();
}

#[test]
fn shutdown_and_reboot_through_the_guest_agent() {
    let Some(kit) = bootkit::linux() else { return };
    let t = tmp();
    let _c = Cleanup(t.path().to_path_buf());
    let (c, uri, emu) = conn(t.path());
    let xml = linux_xml(
        &kit,
        t.path(),
        AGENT_RESPONDER,
        "",
        "<channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>",
    );
    let d = c.define_domain_xml(&xml).unwrap();
    d.create().unwrap();
    // Nobody listens in the guest yet.
    let (ok, _, err) = vsh_out(&emu, &uri, &["shutdown", NAME, "--mode", "agent"]);
    assert!(!ok);
    assert!(
        err.contains("error: Guest agent is not responding: QEMU guest agent is not connected"),
        "{err}"
    );
    wait_until("agent up", Duration::from_secs(300), || {
        serial(t.path()).contains("AGENT-READY")
    });
    // A command the stand-in refuses, through the monitor (what domifaddr --source agent
    // uses): the port's opening reached the monitor as VSERPORT_CHANGE.
    let mut g = match Guest::attach(&Dirs::under(t.path()), NAME).unwrap() {
        Attach::Running(g) => g,
        Attach::Inactive(s) => panic!("{s}"),
    };
    wait_until("agent connected", Duration::from_secs(10), || {
        match g.agent_command("guest-info", None, Duration::from_secs(5)) {
            Err(e) => {
                let e = e.to_string();
                assert!(!e.contains("not configured"), "{e}");
                e == "internal error: unable to execute QEMU agent command 'guest-info': not here"
            }
            Ok(v) => panic!("{v}"),
        }
    });
    // `domifaddr --source agent` asks the agent through the monitor.
    let (ok, out, err) = vsh_out(&emu, &uri, &["domifaddr", NAME, "--source", "agent"]);
    assert!(ok, "{err}");
    assert!(
        out.lines().any(|l| l.split_whitespace().collect::<Vec<_>>()
            == ["lo", "00:00:00:00:00:00", "ipv4", "127.0.0.1/8"]),
        "{out}"
    );
    let mut w = Watch::new(t.path());
    let t0 = Instant::now();
    let (ok, out, err) = vsh_out(&emu, &uri, &["reboot", NAME, "--mode", "agent"]);
    assert!(ok, "{err}");
    assert!(
        out.contains(&format!("Domain '{NAME}' is being rebooted")),
        "{out}"
    );
    eprintln!(
        "FIGURE: reboot --mode agent returned after {:?}",
        t0.elapsed()
    );
    w.until(Duration::from_secs(30), |l| {
        Watch::has(l, &format!("'{NAME}'"))
    });
    assert_eq!(w.lines, vec![format!("event 'reboot' for domain '{NAME}'")]);
    assert!(serial(t.path()).contains("AGENT-REBOOT"));
    wait_until("agent up again", Duration::from_secs(300), || {
        serial(t.path()).matches("AGENT-READY").count() >= 2
    });
    std::thread::sleep(Duration::from_millis(500));
    let t0 = Instant::now();
    let (ok, out, err) = vsh_out(&emu, &uri, &["shutdown", NAME, "--mode", "agent"]);
    assert!(ok, "{err}");
    assert!(
        out.contains(&format!("Domain '{NAME}' is being shutdown")),
        "{out}"
    );
    eprintln!(
        "FIGURE: shutdown --mode agent returned after {:?}",
        t0.elapsed()
    );
    w.until(Duration::from_secs(30), |l| {
        Watch::has(l, "Stopped Shutdown")
    });
    assert!(
        Watch::has(&w.lines, "Shutdown Finished after guest request"),
        "{:?}",
        w.lines
    );
    assert!(serial(t.path()).contains("AGENT-POWEROFF"));
    wait_until("shut off (shutdown)", Duration::from_secs(10), || {
        d.state().unwrap().to_string() == "shut off (shutdown)"
    });
}
