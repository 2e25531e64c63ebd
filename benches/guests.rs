//! Real guests: start latency against bare QEMU, 50 guests at once, and 200-cycle soaks.
//! Small guests: 64 MiB, no disk, qemu-system-x86_64 under TCG, in an embed root in a tempdir.
//!
//! Run with `cargo bench --bench guests [-- latency|fifty|soak ...]` (all sections by default;
//! `GUESTS_RUNS`, `GUESTS_COUNT` and `GUESTS_CYCLES` change the sizes).
//!
//! - latency: `Domain::create` until QMP `cont` is answered, against QEMU started by hand with
//!   the argv xml2argv produced for the same domain, its monitor on a socket we bind, up to
//!   the same point (greeting, `qmp_capabilities`, `cont` answered); runs alternate so that
//!   load from elsewhere hits both alike.
//! - events: `vsh event`'s delay after QEMU's QMP event (lifecycle events of suspend/resume).
//! - fifty: 50 paused guests started from 50 threads of one process; `vsh list --all` on them;
//!   RSS of this process per running guest; then all destroyed and checked gone by pid.
//! - soak: start/destroy cycles through the library and through `vsh` processes.
//! - pvh: a fresh boot of the test kernel (256 MiB, TCG) to its first userspace command
//!   (`rdinit=/bin/busybox -- echo ...`), from the bzImage and through the cached
//!   uncompressed kernel (`GuestBuilder::pvh_boot`), alternating, medians of `GUESTS_RUNS`.
//! - clones: the test guest (256 MiB, TCG) counting on its console; one boot of it is saved
//!   as a `fleet::Template`. A clone restored from it to its next console line against a
//!   fresh boot (direct kernel boot of the bzImage) to its first, alternating, medians of
//!   `GUESTS_RUNS`; then `GUESTS_CLONES` (10) clones started at once from one template, until
//!   each has written its next console line, against one.

#[path = "../tests/common/bootkit.rs"]
mod bootkit;
#[path = "../tests/common/guests.rs"]
mod guests;

use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use domdriver::Connect;
use domdriver::driver::domain::ListFlags;
use domdriver::driver::process::{Guest, LaunchSpec};
use domdriver::xml2argv::QemuCommand;

fn env_usize(k: &str, d: usize) -> usize {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn p90(v: &mut [Duration]) -> Duration {
    v.sort();
    v[(v.len() * 9 / 10).min(v.len() - 1)]
}

/// Read QMP lines until one answers a command (or fails it).
fn qmp_reply(r: &mut BufReader<UnixStream>) -> String {
    loop {
        let mut line = String::new();
        assert!(
            r.read_line(&mut line).unwrap() > 0,
            "QEMU closed its monitor"
        );
        if line.contains("\"return\"") || line.contains("\"error\"") {
            return line;
        }
    }
}

/// Start QEMU as `cmd` says, its monitor on a socket bound at `sock` and handed over as the
/// fd the argv names (3), as the driver does, and run it: greeting, `qmp_capabilities`,
/// `cont` answered. The time it took.
fn bare_start(cmd: &QemuCommand, sock: &Path, log: &Path) -> (Child, Duration) {
    let t = Instant::now();
    let _ = std::fs::remove_file(sock);
    let listener = UnixListener::bind(sock).unwrap();
    let fd = listener.as_raw_fd();
    let out = std::fs::File::create(log).unwrap();
    let mut c = Command::new(&cmd.binary);
    c.args(&cmd.args)
        .env_clear()
        .envs(cmd.env.iter().map(|(k, v)| (k, v)))
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out);
    // SAFETY: the closure only makes async-signal-safe syscalls (setsid, dup2, fcntl) on
    // integers copied into it, and `listener` is open until spawn returns.
    unsafe {
        c.pre_exec(move || {
            nix::libc::setsid();
            let r = if fd == 3 {
                nix::libc::fcntl(fd, nix::libc::F_SETFD, 0)
            } else {
                nix::libc::dup2(fd, 3)
            };
            if r < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = c.spawn().unwrap();
    drop(listener);
    let s = UnixStream::connect(sock).unwrap();
    let mut w = s.try_clone().unwrap();
    let mut r = BufReader::new(s);
    let mut greeting = String::new();
    r.read_line(&mut greeting).unwrap();
    assert!(greeting.contains("QMP"), "{greeting}");
    w.write_all(b"{\"execute\":\"qmp_capabilities\"}\n")
        .unwrap();
    let rep = qmp_reply(&mut r);
    assert!(rep.contains("return"), "{rep}");
    w.write_all(b"{\"execute\":\"cont\"}\n").unwrap();
    let rep = qmp_reply(&mut r);
    assert!(rep.contains("return"), "{rep}");
    (child, t.elapsed())
}

fn stop_child(mut c: Child) {
    let _ = c.kill();
    let _ = c.wait();
}

fn latency() {
    let runs = env_usize("GUESTS_RUNS", 30);
    let d = tempfile::tempdir().unwrap();
    let conn = Connect::open(Some(&guests::uri(d.path()))).unwrap();
    let xml = guests::small_xml("lat", None);
    let dom = conn.define_domain_xml(&xml).unwrap();
    // Warm-up: the probe of the emulator fills the connection's cache.
    let t = Instant::now();
    dom.create().unwrap();
    let cold = t.elapsed();
    dom.destroy().unwrap();

    let cmd = conn.domain_xml_to_native(&xml).unwrap();
    let lib = conn.lib_dir_for("lat", -1);
    std::fs::create_dir_all(&lib).unwrap();
    std::fs::write(lib.join("master-key.aes"), [7u8; 32]).unwrap();
    let sock = d.path().join("bare.sock");
    let log = d.path().join("bare.log");

    let mut drv = Vec::new();
    let mut bare = Vec::new();
    let mut proc_layer = Vec::new();
    let dirs = domdriver::driver::Dirs::under(&d.path().join("plain"));
    for i in 0..runs {
        // Alternate which goes first, so that neither always follows a teardown.
        let one = |first_driver: bool| {
            let (mut a, mut b) = (Duration::ZERO, Duration::ZERO);
            for k in 0..2 {
                if (k == 0) == first_driver {
                    let t = Instant::now();
                    dom.create().unwrap();
                    a = t.elapsed();
                    dom.destroy().unwrap();
                } else {
                    let (c, took) = bare_start(&cmd, &sock, &log);
                    b = took;
                    stop_child(c);
                }
            }
            (a, b)
        };
        let (a, b) = one(i % 2 == 0);
        // The process layer alone: the same argv through Guest::start, no domain layer.
        let mut spec = LaunchSpec::new("plain", &dom.uuid_string(), cmd.argv());
        spec.env = cmd.env.clone();
        spec.monitor_fd = Some(3);
        let t = Instant::now();
        let mut g = Guest::start(&dirs, spec).unwrap();
        proc_layer.push(t.elapsed());
        g.destroy(Duration::from_secs(5)).unwrap();
        drv.push(a);
        bare.push(b);
    }
    // The parts of the start path before QEMU runs, timed alone (warm cache).
    let def = domdriver::domain::parse(&xml).unwrap();
    let mut caps_t = Vec::new();
    let mut native_t = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        std::hint::black_box(conn.emulator_caps_for(&def).unwrap());
        caps_t.push(t.elapsed());
        let t = Instant::now();
        std::hint::black_box(conn.domain_xml_to_native(&xml).unwrap());
        native_t.push(t.elapsed());
    }
    let signed: Vec<f64> = drv
        .iter()
        .zip(&bare)
        .map(|(a, b)| ms(*a) - ms(*b))
        .collect();
    let mut sorted = signed.clone();
    sorted.sort_by(f64::total_cmp);
    println!(
        "start latency ({runs} runs, 64 MiB TCG guest, until `cont` answered): driver median {:.1} ms (p90 {:.1}), bare QEMU median {:.1} ms (p90 {:.1}); overhead median {:.1} ms (per-pair median {:.1} ms); first start with probe {:.0} ms",
        ms(median(&mut drv)),
        ms(p90(&mut drv)),
        ms(median(&mut bare)),
        ms(p90(&mut bare)),
        ms(median(&mut drv)) - ms(median(&mut bare)),
        sorted[sorted.len() / 2],
        ms(cold)
    );
    println!(
        "  the process layer alone (Guest::start, same argv): median {:.1} ms",
        ms(median(&mut proc_layer))
    );
    println!(
        "  of which, alone: emulator caps from the cache {:.2} ms, parse+prepare+xml2argv with caps lookup {:.2} ms (medians)",
        ms(median(&mut caps_t)),
        ms(median(&mut native_t))
    );
}

/// `vsh event` against QEMU's own clock: for each suspend and resume, the time from the
/// QMP event's timestamp (QEMU's wall clock when it emitted STOP/RESUME) to the moment the
/// matching line of a `vsh event --loop` child is read here.
fn events(vsh: &Path) {
    use domdriver::driver::monitor::MonitorClient;
    use domdriver::driver::monitor::proto::{Push, Request};
    use std::time::{SystemTime, UNIX_EPOCH};
    let runs = env_usize("GUESTS_RUNS", 30);
    let d = tempfile::tempdir().unwrap();
    let uri = guests::uri(d.path());
    let conn = Connect::open(Some(&uri)).unwrap();
    let dom = conn
        .define_domain_xml(&guests::small_xml("evl", None))
        .unwrap();
    dom.create().unwrap();
    let mut child = Command::new(vsh)
        .args(["-c", &uri, "event", "evl", "--event", "lifecycle", "--loop"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Subscribed once its watcher's inotify descriptor exists.
    let fd_dir = format!("/proc/{}/fd", child.id());
    while !std::fs::read_dir(&fd_dir).is_ok_and(|rd| {
        rd.flatten().any(|e| {
            std::fs::read_link(e.path()).is_ok_and(|l| l.to_string_lossy().contains("inotify"))
        })
    }) {
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut lines = BufReader::new(child.stdout.take().unwrap());
    let control = d.path().join("run/qemu/domain-evl/control.sock");
    let mut qmp = MonitorClient::connect(&control).unwrap();
    qmp.call(&Request::Subscribe { since_ms: None }).unwrap();
    let mut lags = Vec::new();
    for i in 0..runs * 2 {
        let (want_qmp, want_line) = if i % 2 == 0 {
            dom.suspend().unwrap();
            ("STOP", "Suspended Paused")
        } else {
            dom.resume().unwrap();
            ("RESUME", "Resumed Unpaused")
        };
        let mut line = String::new();
        lines.read_line(&mut line).unwrap();
        let seen = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        assert!(line.trim_end().ends_with(want_line), "{line}");
        let ts = loop {
            match qmp.next_push(Some(Duration::from_secs(10))).unwrap() {
                Some(Push::Qmp(e)) if e.name == want_qmp => break e.timestamp.unwrap(),
                Some(_) => {}
                None => panic!("no {want_qmp} event"),
            }
        };
        let at = Duration::new(ts.0 as u64, (ts.1 as u32) * 1000);
        lags.push(seen.saturating_sub(at));
    }
    let _ = child.kill();
    let _ = child.wait();
    dom.destroy().unwrap();
    println!(
        "event latency ({} lifecycle events, QMP timestamp to `vsh event`'s line read): median {:.1} ms, p90 {:.1} ms, max {:.1} ms",
        lags.len(),
        ms(median(&mut lags)),
        ms(p90(&mut lags)),
        ms(*lags.iter().max().unwrap())
    );
}

fn fifty(vsh: &Path) {
    let n = env_usize("GUESTS_COUNT", 50);
    let d = tempfile::tempdir().unwrap();
    let root = d.path();
    let uri = guests::uri(root);
    let conn = Connect::open(Some(&uri)).unwrap();
    let names: Vec<String> = (0..n).map(|i| format!("g{i:02}")).collect();
    let doms: Vec<_> = names
        .iter()
        .map(|nm| {
            conn.define_domain_xml(&guests::small_xml(nm, None))
                .unwrap()
        })
        .collect();
    // Warm-up: probe once, and let this process's one-time allocations happen.
    doms[0].create_with_flags(true).unwrap();
    doms[0].destroy().unwrap();
    let rss0 = guests::rss_kib();
    let fds0 = guests::fd_count();
    let files0 = guests::state_files(root, conn.dirs()).len();
    let mut guard = guests::KillOnDrop::default();

    let t = Instant::now();
    std::thread::scope(|s| {
        for dom in &doms {
            s.spawn(move || dom.create_with_flags(true).unwrap());
        }
    });
    let all_started = t.elapsed();
    let pids: Vec<i32> = names
        .iter()
        .map(|nm| guests::guest_pid(conn.dirs(), nm).unwrap())
        .collect();
    guard.0.extend(&pids);
    let rss1 = guests::rss_kib();
    let fds1 = guests::fd_count();
    let files1 = guests::state_files(root, conn.dirs());
    let qemu_rss: u64 = pids
        .iter()
        .filter_map(|p| {
            let s = std::fs::read_to_string(format!("/proc/{p}/status")).ok()?;
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))?
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .sum();
    let per_guest: Vec<String> = files1
        .iter()
        .filter(|p| p.to_string_lossy().contains("g00"))
        .map(|p| p.display().to_string())
        .collect();

    let mut list_t = Vec::new();
    for _ in 0..15 {
        let t = Instant::now();
        let out = Command::new(vsh)
            .args(["-c", &uri, "list", "--all"])
            .output()
            .unwrap();
        list_t.push(t.elapsed());
        assert!(out.status.success(), "{out:?}");
        let rows = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.contains(" paused"))
            .count();
        assert_eq!(rows, n);
    }
    let mut lib_t = Vec::new();
    for _ in 0..15 {
        let t = Instant::now();
        std::hint::black_box(conn.list_all_domains_with_state(ListFlags::ALL).unwrap());
        lib_t.push(t.elapsed());
    }

    let t = Instant::now();
    std::thread::scope(|s| {
        for dom in &doms {
            s.spawn(move || dom.destroy().unwrap());
        }
    });
    let all_destroyed = t.elapsed();
    let left: Vec<i32> = pids.iter().copied().filter(|p| guests::alive(*p)).collect();
    let stray = guests::processes_mentioning(&root.display().to_string());
    let zombies = guests::zombies_after(Duration::from_secs(2));
    let files2 = guests::state_files(root, conn.dirs()).len();

    println!(
        "{n} paused guests from {n} threads: all started in {:.0} ms, all destroyed in {:.0} ms",
        ms(all_started),
        ms(all_destroyed)
    );
    println!(
        "  `vsh list --all` with {n} guests: median {:.1} ms (p90 {:.1}); list_all_domains_with_state in-process: median {:.1} ms",
        ms(median(&mut list_t)),
        ms(p90(&mut list_t)),
        ms(median(&mut lib_t))
    );
    println!(
        "  driver RSS {rss0} -> {rss1} KiB: {:.0} KiB per running guest; fds {fds0} -> {fds1}; QEMU RSS {:.1} MiB per guest",
        (rss1.saturating_sub(rss0)) as f64 / n as f64,
        qemu_rss as f64 / 1024.0 / n as f64
    );
    println!(
        "  state files {files0} -> {} -> {files2} after destroy; per running guest: {}",
        files1.len(),
        per_guest.join(", ")
    );
    println!(
        "  after destroy: {} of {n} QEMUs alive, {} processes with the root in their cmdline, {} zombies",
        left.len(),
        stray.len(),
        zombies.len()
    );
    assert!(left.is_empty() && stray.is_empty() && zombies.is_empty());
}

fn soak(vsh: &Path) {
    let cycles = env_usize("GUESTS_CYCLES", 200);
    let d = tempfile::tempdir().unwrap();
    let rep = guests::soak_library(&d.path().join("lib"), cycles);
    println!("soak, library (one process): {rep}");
    guests::assert_no_growth(&rep, 4096);
    let rep = guests::soak_vsh(vsh, &d.path().join("vsh"), cycles);
    println!("soak, vsh start --paused / vsh destroy processes: {rep}");
    guests::assert_no_growth(&rep, 4096);
}

fn pvh() {
    let Some(kit) = bootkit::linux() else {
        return;
    };
    let runs = env_usize("GUESTS_RUNS", 5);
    let d = tempfile::tempdir().unwrap();
    let conn = Connect::open(Some(&guests::uri(d.path()))).unwrap();
    // Extracted once, as a fleet's first boot does; not part of what is measured.
    let t = Instant::now();
    domdriver::fleet::pvh::pvh_kernel(&kit.kernel, &conn.dirs().cache.join("kernels")).unwrap();
    println!("pvh: extracting the kernel once: {:.0} ms", ms(t.elapsed()));
    let marker = "FIRST-USERSPACE";
    let boot = |pvh: bool, i: usize| {
        let t = Instant::now();
        let mut g = domdriver::fleet::GuestBuilder::new(format!("pvh{}-{i}", pvh as u8))
            .kernel(&kit.kernel)
            .initrd(&kit.initrd)
            .cmdline(format!(
                "console=ttyS0 panic=0 quiet rdinit=/bin/busybox -- echo {marker}"
            ))
            .pvh_boot(pvh)
            .start(&conn)
            .unwrap();
        g.expect(marker, Duration::from_secs(120)).unwrap();
        let took = t.elapsed();
        g.destroy().unwrap();
        took
    };
    let (mut bz, mut fast) = (Vec::new(), Vec::new());
    for i in 0..runs {
        bz.push(boot(false, i));
        fast.push(boot(true, i));
    }
    let (b, f) = (median(&mut bz), median(&mut fast));
    println!(
        "pvh: boot to the first userspace command, median of {runs}: bzImage {:.0} ms, \
         uncompressed through PVH {:.0} ms ({:.2}x faster)",
        ms(b),
        ms(f),
        b.as_secs_f64() / f.as_secs_f64()
    );
}

/// The guest of the `clones` section: counts on its console twenty times a second. It waits
/// with the shell's own `read -t` on a FIFO nobody writes, not with `sleep`: a process forked
/// per count would cost each TCG guest more CPU than anything measured here.
fn counting_guest(kit: &bootkit::LinuxKit, name: &str) -> domdriver::fleet::GuestBuilder {
    let script = "id=$(cat /proc/sys/kernel/random/uuid); mkfifo /tick; exec 3<>/tick; i=0; \
                  while true; do i=$((i+1)); echo tick-$i-$id; read -t 0.05 -u 3 x; done";
    domdriver::fleet::GuestBuilder::new(name)
        .kernel(&kit.kernel)
        .initrd(&kit.initrd)
        .cmdline(format!(
            "{} {}",
            kit.cmdline(),
            bootkit::run_cmdline(script)
        ))
        .memory_mib(256)
}

/// User and system CPU time process `pid` used so far.
fn qemu_cpu(pid: i32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command name in parentheses: state is field 3, utime 14, stime 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf only reads a configuration value.
    let hz = unsafe { nix::libc::sysconf(nix::libc::_SC_CLK_TCK) }.max(1) as u64;
    Some(Duration::from_millis(ticks * 1000 / hz))
}

/// The parent of process `pid` (a QEMU's: its guest monitor).
fn parent_pid(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 2..].split(' ').nth(1)?.parse().ok()
}

fn clones() {
    let Some(kit) = bootkit::linux() else {
        return;
    };
    let runs = env_usize("GUESTS_RUNS", 3);
    let fleet = env_usize("GUESTS_CLONES", 10);
    let d = tempfile::tempdir().unwrap();
    let conn = Connect::open(Some(&guests::uri(d.path()))).unwrap();
    let wait = Duration::from_secs(240);
    let mut g = counting_guest(&kit, "tmpl").start(&conn).unwrap();
    g.expect("tick-5-", wait).unwrap();
    let t = Instant::now();
    let tmpl = g.save_template(d.path().join("template")).unwrap();
    println!(
        "clones: saving the booted guest as a template: {:.0} ms ({} MiB image)",
        ms(t.elapsed()),
        std::fs::metadata(tmpl.image()).unwrap().len() >> 20
    );
    let boot = |i: usize| {
        let t = Instant::now();
        let mut g = counting_guest(&kit, &format!("boot{i}"))
            .start(&conn)
            .unwrap();
        g.expect("tick-", wait).unwrap();
        let took = t.elapsed();
        g.destroy().unwrap();
        took
    };
    let restore = |name: &str| {
        let t = Instant::now();
        let mut c = tmpl.clone_guest(&conn, name).unwrap();
        let up = (t.elapsed(), c.pid().and_then(qemu_cpu).unwrap_or_default());
        c.expect("tick-", wait).unwrap();
        (t.elapsed(), c, up)
    };
    let (mut booted, mut restored) = (Vec::new(), Vec::new());
    for i in 0..runs {
        booted.push(boot(i));
        let (took, c, up) = restore(&format!("one{i}"));
        println!(
            "clones: one restore: running after {:.0} ms ({:.0} ms of QEMU CPU), at the marker \
             after {:.0} ms ({:.0} ms of QEMU CPU)",
            ms(up.0),
            ms(up.1),
            ms(took),
            ms(c.pid().and_then(qemu_cpu).unwrap_or_default())
        );
        restored.push(took);
        c.destroy().unwrap();
    }
    let (b, r) = (median(&mut booted), median(&mut restored));
    println!(
        "clones: to the console marker, median of {runs}: boot {:.0} ms, restore from the \
         template {:.0} ms ({:.1}x faster)",
        ms(b),
        ms(r),
        b.as_secs_f64() / r.as_secs_f64()
    );
    let ours = || qemu_cpu(std::process::id() as i32).unwrap_or_default();
    let ours_before = ours();
    let t = Instant::now();
    let all: Vec<_> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..fleet)
            .map(|i| {
                let restore = &restore;
                s.spawn(move || restore(&format!("fleet{i}")))
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let together = t.elapsed();
    let slowest = all.iter().map(|(d, _, _)| *d).max().unwrap();
    // Where the time goes on a small machine: the CPU each clone's QEMU used by then.
    let mut cpu: Vec<Duration> = all
        .iter()
        .filter_map(|(_, c, _)| qemu_cpu(c.pid()?))
        .collect();
    let monitors: Duration = all
        .iter()
        .filter_map(|(_, c, _)| qemu_cpu(parent_pid(c.pid()?)?))
        .sum();
    let ours_used = ours().saturating_sub(ours_before);
    let all_up: Vec<Duration> = all.iter().map(|(_, _, u)| u.1).collect();
    drop(all);
    println!(
        "clones: {fleet} clones started at once, all at their marker: {:.0} ms (slowest {:.0} \
         ms), {:.2}x one restore",
        ms(together),
        ms(slowest),
        together.as_secs_f64() / r.as_secs_f64()
    );
    if !cpu.is_empty() {
        println!(
            "clones: CPU time one clone's QEMU used until all were at their marker, median: \
             {:.0} ms",
            ms(median(&mut cpu))
        );
        let mut up: Vec<Duration> = all_up.clone();
        println!(
            "clones: of which until its clone_guest returned (QEMU started, state loaded, vCPUs \
             running), median: {:.0} ms",
            ms(median(&mut up))
        );
        println!(
            "clones: CPU time of the {fleet} clones' QEMUs {:.0} ms, of their monitors {:.0} \
             ms, of this process (the clones' start path) {:.0} ms",
            ms(cpu.iter().sum()),
            ms(monitors),
            ms(ours_used)
        );
    }
}

fn main() {
    if !guests::have_qemu() {
        return;
    }
    let vsh = Path::new(env!("CARGO_BIN_EXE_vsh"));
    let picked: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let want = |s: &str| picked.is_empty() || picked.iter().any(|p| p == s);
    if want("latency") {
        latency();
    }
    if want("events") {
        events(vsh);
    }
    if want("fifty") {
        fifty(vsh);
    }
    if want("pvh") {
        pvh();
    }
    if want("clones") {
        clones();
    }
    // Last: it makes this process a subreaper.
    if want("soak") {
        soak(vsh);
    }
}
