//! Small paused guests for soak, concurrency and benchmark runs, and what /proc says about the
//! processes involved. Shared by tests/driver_soak.rs, tests/driver_concurrency.rs and
//! benches/guests.rs.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use domdriver::Connect;
use domdriver::driver::Dirs;

pub const QEMU: &str = "/usr/bin/qemu-system-x86_64";

/// Whether the emulator the guests run on is installed; says so loudly when it is not.
pub fn have_qemu() -> bool {
    let ok = Path::new(QEMU).exists();
    if !ok {
        eprintln!("\n*** SKIPPED: {QEMU} is not installed ***\n");
    }
    ok
}

/// A 64 MiB TCG guest with no disk. The emulator is named so that only it gets probed (the
/// connection's cache is per embed root).
pub fn small_xml(name: &str, uuid: Option<&str>) -> String {
    let uuid = uuid
        .map(|u| format!("<uuid>{u}</uuid>"))
        .unwrap_or_default();
    format!(
        "<domain type='qemu'><name>{name}</name>{uuid}<memory unit='MiB'>64</memory><vcpu>1</vcpu>\
         <os><type arch='x86_64' machine='pc'>hvm</type></os>\
         <devices><emulator>{QEMU}</emulator><memballoon model='none'/></devices></domain>"
    )
}

/// The embed URI of `root`.
pub fn uri(root: &Path) -> String {
    format!("qemu:///embed?root={}", root.display())
}

/// QEMU's pid for a running guest, from its status file.
pub fn guest_pid(dirs: &Dirs, name: &str) -> Option<i32> {
    let text = std::fs::read_to_string(dirs.run.join(format!("{name}.json"))).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v["pid"].as_i64().map(|p| p as i32)
}

/// Field 3 (state) and field 4 (ppid) of /proc/PID/stat.
pub fn state_and_ppid(pid: i32) -> Option<(char, i32)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 1..];
    let mut f = rest.split_whitespace();
    let state = f.next()?.chars().next()?;
    let ppid = f.next()?.parse().ok()?;
    Some((state, ppid))
}

/// Whether `pid` exists and is not a zombie.
pub fn alive(pid: i32) -> bool {
    matches!(state_and_ppid(pid), Some((s, _)) if s != 'Z')
}

fn all_pids() -> Vec<i32> {
    std::fs::read_dir("/proc")
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Our children that are zombies.
pub fn zombie_children() -> Vec<i32> {
    let me = std::process::id() as i32;
    all_pids()
        .into_iter()
        .filter(|p| state_and_ppid(*p) == Some(('Z', me)))
        .collect()
}

/// Zombie children, after giving reaper threads up to `settle` to do their work: a guest's
/// reaper thread wakes when QEMU exits, a moment after destroy saw it go.
pub fn zombies_after(settle: Duration) -> Vec<i32> {
    let until = Instant::now() + settle;
    loop {
        let z = zombie_children();
        if z.is_empty() || Instant::now() >= until {
            return z;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// [`processes_mentioning`] after giving them up to `settle` to go: a guest's monitor answers
/// destroy once QEMU is reaped and its files are removed, then exits a moment later.
pub fn processes_mentioning_after(needle: &str, settle: Duration) -> Vec<i32> {
    let until = Instant::now() + settle;
    loop {
        let p = processes_mentioning(needle);
        if p.is_empty() || Instant::now() >= until {
            return p;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Live processes (not zombies) whose command line mentions `needle`: the QEMUs of one embed
/// root, whose paths are on their command lines.
pub fn processes_mentioning(needle: &str) -> Vec<i32> {
    let me = std::process::id() as i32;
    all_pids()
        .into_iter()
        .filter(|p| *p != me && alive(*p))
        .filter(|p| {
            std::fs::read(format!("/proc/{p}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(needle))
        })
        .collect()
}

/// Live processes (not zombies) whose command line mentions both the embed root `root` and
/// `what` (`qemu-system`, `domdriver-monitor`, a helper's name).
pub fn pids_under(root: &Path, what: &str) -> Vec<i32> {
    let needle = root.display().to_string();
    processes_mentioning(&needle)
        .into_iter()
        .filter(|p| {
            std::fs::read(format!("/proc/{p}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(what))
        })
        .collect()
}

/// Open descriptors of this process.
pub fn fd_count() -> usize {
    fd_count_of("self")
}

/// QEMU `pid`'s descriptors on files under `root`: its log (stdout and stderr) and nothing
/// else, unless we leak descriptors (locks, configs) into it. Its total varies with its own
/// state (a monitor client just gone, ...), this does not.
pub fn fds_into(pid: i32, root: &Path) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|rd| {
            rd.flatten()
                .filter(|e| std::fs::read_link(e.path()).is_ok_and(|t| t.starts_with(root)))
                .count()
        })
        .unwrap_or(0)
}

pub fn fd_count_of(pid: &str) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|rd| rd.count())
        .unwrap_or(0)
}

/// VmRSS of this process in KiB.
pub fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Every file and directory under the state, run and log dirs of `dirs` (the probe cache and
/// configs are left out: they are not per start), relative to `root`.
pub fn state_files(root: &Path, dirs: &Dirs) -> BTreeSet<PathBuf> {
    fn walk(d: &Path, root: &Path, out: &mut BTreeSet<PathBuf>) {
        let Ok(rd) = std::fs::read_dir(d) else { return };
        for e in rd.flatten() {
            let p = e.path();
            out.insert(p.strip_prefix(root).unwrap_or(&p).to_path_buf());
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                walk(&p, root, out);
            }
        }
    }
    let mut out = BTreeSet::new();
    for d in [&dirs.lib, &dirs.run, &dirs.log] {
        walk(d, root, &mut out);
    }
    out
}

/// Kills the listed QEMUs on drop (a failing test must not leave guests behind), by pid.
#[derive(Default)]
pub struct KillOnDrop(pub Vec<i32>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        for &p in &self.0 {
            if alive(p) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(p),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }
}

/// What one soak run saw: the first figure after one warm-up cycle, the last after all.
#[derive(Debug, Default)]
pub struct SoakReport {
    pub cycles: usize,
    pub fds: (usize, usize),
    pub zombies: (usize, usize),
    pub rss_kib: (u64, u64),
    /// Files in the state/run/log dirs; `new_files` lists those that appeared.
    pub files: (usize, usize),
    pub new_files: Vec<PathBuf>,
    /// QEMU's descriptors on files under the root ([`fds_into`]), first and last guest.
    pub qemu_fds: (usize, usize),
    /// Largest RSS of one `vsh` invocation (KiB), first and last cycle; vsh runs only.
    pub vsh_maxrss_kib: (u64, u64),
    pub elapsed: Duration,
}

impl SoakReport {
    /// Note cycle `i`'s figures: the first (after warm-up cycle 0) and the last are kept.
    fn record(
        &mut self,
        i: usize,
        qemu_fds: usize,
        vsh_rss: u64,
        zombies: usize,
        root: &Path,
        dirs: &Dirs,
    ) {
        let files = state_files(root, dirs);
        if i == 0 {
            self.fds.0 = fd_count();
            self.zombies.0 = zombies;
            self.rss_kib.0 = rss_kib();
            self.files.0 = files.len();
            self.qemu_fds.0 = qemu_fds;
            self.vsh_maxrss_kib.0 = vsh_rss;
            self.new_files = files.into_iter().collect();
        } else if i == self.cycles {
            self.fds.1 = fd_count();
            self.zombies.1 = zombies;
            self.rss_kib.1 = rss_kib();
            self.files.1 = files.len();
            self.qemu_fds.1 = qemu_fds;
            self.vsh_maxrss_kib.1 = vsh_rss;
            let before: BTreeSet<PathBuf> = self.new_files.drain(..).collect();
            self.new_files = files.difference(&before).cloned().collect();
        }
    }
}

impl std::fmt::Display for SoakReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} cycles in {:.1} s: fds {} -> {}, zombies {} -> {}, RSS {} -> {} KiB, \
             state files {} -> {}, QEMU fds on root files {} -> {}",
            self.cycles,
            self.elapsed.as_secs_f64(),
            self.fds.0,
            self.fds.1,
            self.zombies.0,
            self.zombies.1,
            self.rss_kib.0,
            self.rss_kib.1,
            self.files.0,
            self.files.1,
            self.qemu_fds.0,
            self.qemu_fds.1
        )?;
        if self.vsh_maxrss_kib != (0, 0) {
            write!(
                f,
                ", vsh max RSS {} -> {} KiB",
                self.vsh_maxrss_kib.0, self.vsh_maxrss_kib.1
            )?;
        }
        Ok(())
    }
}

/// Start/destroy guest `name` `cycles` times through the library, in this process.
pub fn soak_library(root: &Path, cycles: usize) -> SoakReport {
    let conn = Connect::open(Some(&uri(root))).expect("open");
    let dom = conn
        .define_domain_xml(&small_xml("soak", None))
        .expect("define");
    let dirs = conn.dirs().clone();
    let mut guard = KillOnDrop::default();
    let mut rep = SoakReport {
        cycles,
        ..SoakReport::default()
    };
    let t = Instant::now();
    // Cycle 0 warms up (probe cache, first files, the runtime's threads): measure from there.
    for i in 0..=cycles {
        dom.create_with_flags(true).expect("start");
        let pid = guest_pid(&dirs, "soak").expect("status file names QEMU's pid");
        guard.0.push(pid);
        let qfds = fds_into(pid, root);
        dom.destroy().expect("destroy");
        assert!(!alive(pid), "QEMU {pid} outlived destroy");
        let z = zombies_after(Duration::from_secs(2)).len();
        rep.record(i, qfds, 0, z, root, &dirs);
    }
    rep.elapsed = t.elapsed();
    rep
}

/// Run `vsh ARGS` with `uri`; its stdout and max RSS (KiB). Panics with its stderr on failure.
fn vsh(vsh: &Path, uri: &str, args: &[&str]) -> (String, u64) {
    let child = Command::new(vsh)
        .arg("-c")
        .arg(uri)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run vsh");
    let pid = child.id() as i32;
    {
        use std::io::Read;
        let mut child = child;
        let mut so = String::new();
        let mut se = String::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut so)
            .unwrap();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut se)
            .unwrap();
        // wait4 rather than Child::wait, for the child's own rusage.
        let mut status = 0;
        // SAFETY: rusage is plain old data, fully written by wait4 on success.
        let mut ru: nix::libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: `pid` is our unreaped child; both pointers are to live locals.
        let r = unsafe { nix::libc::wait4(pid, &mut status, 0, &mut ru) };
        assert_eq!(r, pid, "wait4 vsh");
        let ok = nix::libc::WIFEXITED(status) && nix::libc::WEXITSTATUS(status) == 0;
        assert!(ok, "vsh {args:?} failed ({status}): {so}{se}");
        (so, ru.ru_maxrss as u64)
    }
}

/// Reap every exited child (non-blocking), as init would for QEMUs whose `vsh` is gone.
pub fn reap_orphans() {
    use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
    while let Ok(st) = waitpid(None, Some(WaitPidFlag::WNOHANG)) {
        if st == WaitStatus::StillAlive {
            break;
        }
    }
}

/// Start/destroy a guest `cycles` times through separate `vsh start --paused` and
/// `vsh destroy` processes. This process becomes a subreaper and reaps the QEMUs orphaned by
/// `vsh` as init would (PID 1 may not reap here); `zombies` counts what is left after that.
pub fn soak_vsh(vsh_bin: &Path, root: &Path, cycles: usize) -> SoakReport {
    nix::sys::prctl::set_child_subreaper(true).expect("PR_SET_CHILD_SUBREAPER");
    let u = uri(root);
    let xml = root.join("soak.xml");
    std::fs::create_dir_all(root).unwrap();
    std::fs::write(&xml, small_xml("soakv", None)).unwrap();
    vsh(vsh_bin, &u, &["define", xml.to_str().unwrap()]);
    let dirs = Dirs::under(root);
    let mut guard = KillOnDrop::default();
    let mut rep = SoakReport {
        cycles,
        ..SoakReport::default()
    };
    let t = Instant::now();
    for i in 0..=cycles {
        let (_, rss_start) = vsh(vsh_bin, &u, &["start", "soakv", "--paused"]);
        let pid = guest_pid(&dirs, "soakv").expect("status file names QEMU's pid");
        guard.0.push(pid);
        let qfds = fds_into(pid, root);
        let (_, rss_destroy) = vsh(vsh_bin, &u, &["destroy", "soakv"]);
        assert!(!alive(pid), "QEMU {pid} outlived vsh destroy");
        // A killed QEMU shows as a zombie while its other threads are still exiting, and
        // cannot be reaped until they are gone: reap for up to 2 s, as init would later.
        let until = Instant::now() + Duration::from_secs(2);
        let z = loop {
            reap_orphans();
            let z = zombie_children().len();
            if z == 0 || Instant::now() >= until {
                break z;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        rep.record(i, qfds, rss_start.max(rss_destroy), z, root, &dirs);
    }
    rep.elapsed = t.elapsed();
    // The flag is process-wide: left on, the guest monitors that other tests of this binary
    // orphan later would become this process's zombies. The last monitor exits a moment after
    // it answered destroy: let it go and reap it before giving the flag up.
    let _ = processes_mentioning_after(&root.display().to_string(), Duration::from_secs(5));
    reap_orphans();
    nix::sys::prctl::set_child_subreaper(false).expect("PR_SET_CHILD_SUBREAPER");
    reap_orphans();
    rep
}

/// The growth a soak must not show. RSS may wander by `rss_slack_kib` (allocator caches).
pub fn assert_no_growth(rep: &SoakReport, rss_slack_kib: u64) {
    assert!(rep.fds.1 <= rep.fds.0, "descriptors grew: {rep}");
    assert_eq!(rep.zombies.1, 0, "zombies left: {rep}");
    assert!(
        rep.files.1 <= rep.files.0 && rep.new_files.is_empty(),
        "state files grew: {rep}; new: {:?}",
        rep.new_files
    );
    assert!(rep.qemu_fds.1 <= rep.qemu_fds.0, "QEMU fds grew: {rep}");
    assert!(
        rep.rss_kib.1 <= rep.rss_kib.0 + rss_slack_kib,
        "RSS grew by more than {rss_slack_kib} KiB: {rep}"
    );
}
