//! A guest's helper processes: swtpm for an emulated TPM, virtiofsd per virtiofs share, passt
//! per passt interface (libvirt: qemuExtDevicesStart and friends).
//!
//! The driver plans them at start ([`plan`]: command lines, state dirs, which binary), the
//! guest's monitor runs them ([`start_all`]) before QEMU and stops them ([`stop_all`]) after
//! QEMU is gone, on every path: a failed start, the end of the guest, and a later caller
//! cleaning up after a monitor that was killed. Each running helper has a record in the
//! guest's run dir (pid and start time), so that whoever cleans up kills exactly the process
//! that was started, never a recycled pid.
//!
//! None outlives its guest: each also ends by itself once QEMU goes (swtpm `--terminate`,
//! passt `--one-off`, virtiofsd when its only client hangs up), so a QEMU killed while its
//! monitor is gone leaves no helper either. They are not tied to the monitor's life
//! (no PDEATHSIG): a killed monitor leaves the guest running, with its TPM, shares and
//! network, for the next monitor to adopt.

pub mod fds;
pub mod passt;
pub mod swtpm;
pub mod virtiofsd;

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use super::DriverError;
use super::status::{ProcStat, is_same_live_process, proc_stat};
use crate::domain::DomainDef;

/// Which helper.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HelperKind {
    Swtpm,
    Virtiofsd,
    Passt,
}

impl HelperKind {
    pub fn name(self) -> &'static str {
        match self {
            HelperKind::Swtpm => "swtpm",
            HelperKind::Virtiofsd => "virtiofsd",
            HelperKind::Passt => "passt",
        }
    }
}

/// One helper to run before QEMU.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HelperSpec {
    pub kind: HelperKind,
    /// The device it serves (its alias): one helper per device.
    pub device: String,
    pub argv: Vec<String>,
    /// Run to completion first, in order (swtpm_setup manufacturing a new TPM state, then
    /// reconfiguring its PCR banks).
    #[serde(default)]
    pub setup: Vec<Vec<String>>,
    /// The socket the helper creates and QEMU connects to; the helper is ready once it is
    /// there. Made 0600 then.
    pub socket: PathBuf,
    /// Its stdout and stderr (in the domain's log dir).
    pub log: PathBuf,
    /// Files it leaves behind (its own pid file), removed when it stops.
    #[serde(default)]
    pub files: Vec<PathBuf>,
    /// Descriptors the helper gets (a listening socket, a secret's pipe).
    #[serde(default)]
    pub pass_fds: Vec<fds::PassFd>,
    /// Descriptors the setup command gets.
    #[serde(default)]
    pub setup_fds: Vec<fds::PassFd>,
}

/// What a start needs for its helpers: their specs, and the TPM socket for the command line.
#[derive(Debug, Default)]
pub struct Plan {
    pub specs: Vec<HelperSpec>,
    pub tpm_socket: Option<String>,
}

/// Where a connection's helpers live, as the planners need it.
pub struct Where<'a> {
    pub lib: &'a Path,
    pub run: &'a Path,
    pub log: &'a Path,
    /// The start's private dir (`LIB/domain-ID-NAME`).
    pub private: &'a Path,
    /// The connection's secrets store (an encrypted TPM state's passphrase).
    pub secrets: &'a Path,
    pub short_name: String,
}

/// Plan the helpers of `def` (prepared, aliases assigned) for a start. Fails with libvirt's
/// error when a helper's binary is missing, before anything runs.
pub fn plan(def: &DomainDef, at: &Where) -> Result<Plan, DriverError> {
    let mut p = Plan::default();
    if let Some((spec, socket)) = swtpm::plan(def, at)? {
        p.specs.push(spec);
        p.tpm_socket = Some(socket);
    }
    p.specs.extend(virtiofsd::plan(def, at)?);
    p.specs.extend(passt::plan(def, at)?);
    Ok(p)
}

/// The environment variable that replaces `PATH` when looking for helper binaries; tests
/// point it at an empty dir to see the missing-binary errors.
pub const HELPER_PATH_ENV: &str = "DOMDRIVER_HELPER_PATH";

/// `name` on `$DOMDRIVER_HELPER_PATH`, else on `$PATH` (libvirt: virFindFileInPath).
pub fn find_binary(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os(HELPER_PATH_ENV)
        .or_else(|| std::env::var_os("PATH"))
        .unwrap_or_else(|| "/usr/sbin:/usr/bin:/sbin:/bin".into());
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|c| is_executable(c))
}

pub(crate) fn is_executable(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// A private dir (0700), created when missing.
pub(crate) fn private_dir(dir: &Path) -> Result<(), DriverError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .and_then(|()| std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)))
        .map_err(|err| DriverError::System {
            msg: format!("cannot create directory '{}'", dir.display()),
            err,
        })
}

/// What the monitor keeps of a running helper, in the guest's run dir.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    kind: HelperKind,
    device: String,
    pid: i32,
    start_time: u64,
    socket: PathBuf,
    files: Vec<PathBuf>,
    /// The monitor that started it (pid, start time). A guest's next run may start before
    /// the monitor of the last one is done: that one must leave the new run's helpers alone.
    owner: (i32, u64),
}

impl Record {
    /// Whether the calling process may stop this helper: its own, or one whose monitor is
    /// gone (a killed monitor's, cleaned up by whoever comes next).
    fn ours_to_stop(&self) -> bool {
        self.owner == own_id() || !is_same_live_process(self.owner.0, self.owner.1)
    }
}

/// This process as a record's owner.
fn own_id() -> (i32, u64) {
    let pid = std::process::id() as i32;
    (
        pid,
        proc_stat(pid).ok().flatten().map_or(0, |s| s.start_time),
    )
}

fn record_path(dir: &Path, kind: HelperKind, device: &str) -> PathBuf {
    dir.join(format!("{device}-{}.helper", kind.name()))
}

fn records(dir: &Path) -> Vec<(PathBuf, Record)> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    rd.flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "helper"))
        .filter_map(|p| {
            let r = serde_json::from_slice(&std::fs::read(&p).ok()?).ok()?;
            Some((p, r))
        })
        .collect()
}

/// A line in the domain log, as the monitor writes its own.
fn log_line(log: &Path, text: &str) {
    if let Ok(mut f) = OpenOptions::new()
        .append(true)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(log)
    {
        let _ = writeln!(f, "{}: {text}", super::process::timestamp());
    }
}

/// Write a file only we can read (0600), never through a symlink.
fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(path)?
        .write_all(data)
}

fn open_log(path: &Path) -> std::io::Result<std::fs::File> {
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(path)
}

fn command(argv: &[String], log: &Path) -> std::io::Result<Command> {
    let out = open_log(log)?;
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .env_clear()
        .env(
            "PATH",
            std::env::var_os("PATH").unwrap_or_else(|| "/usr/sbin:/usr/bin:/sbin:/bin".into()),
        )
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out);
    // SAFETY: runs in the forked child before exec; marking fds close-on-exec is
    // async-signal-safe (close_range or fcntl on integers), nothing is allocated.
    unsafe {
        cmd.pre_exec(|| {
            super::monitor::launch::cloexec_fds_from(3);
            Ok(())
        });
    }
    Ok(cmd)
}

/// How long a helper given its listening socket must run before it counts as started: a
/// daemon that refuses its options ends within this.
const PREBOUND_SETTLE: Duration = Duration::from_millis(200);

/// Start every helper of `specs` in order, each ready (its socket there) before the next;
/// `dir` is the guest's run dir (records), `domain_log` gets the command lines. On failure
/// the ones started are stopped and the error names the helper and the end of its log.
pub fn start_all(
    dir: &Path,
    domain_log: &Path,
    specs: &[HelperSpec],
    timeout: Duration,
) -> Result<(), String> {
    if specs.is_empty() {
        return Ok(());
    }
    private_dir(dir).map_err(|e| e.to_string())?;
    for s in specs {
        if let Err(e) = start_one(dir, domain_log, s, timeout) {
            stop_all(dir);
            return Err(e);
        }
    }
    Ok(())
}

/// Start `specs` for a guest that already runs (a hotplugged share or interface): on
/// failure only these are stopped, never the guest's other helpers.
pub fn start_more(
    dir: &Path,
    domain_log: &Path,
    specs: &[HelperSpec],
    timeout: Duration,
) -> Result<(), String> {
    if specs.is_empty() {
        return Ok(());
    }
    private_dir(dir).map_err(|e| e.to_string())?;
    for (k, s) in specs.iter().enumerate() {
        if let Err(e) = start_one(dir, domain_log, s, timeout) {
            stop_specs(dir, &specs[..k]);
            return Err(e);
        }
    }
    Ok(())
}

/// Stop the helpers `specs` started (a hotplug that failed after them).
pub fn stop_specs(dir: &Path, specs: &[HelperSpec]) {
    for s in specs {
        stop_device(dir, &s.device);
    }
}

/// Stop the helpers serving device `alias` (it left the guest; libvirt:
/// qemuDomainRemoveFSDevice's qemuVirtioFSStop, qemuDomainRemoveNetDevice's qemuPasstStop).
pub fn stop_device(dir: &Path, alias: &str) {
    for (path, rec) in records(dir) {
        if rec.device == alias && rec.ours_to_stop() {
            stop(&path, &rec);
        }
    }
}

/// Waits for a setup command, at most `timeout`: swtpm_setup 0.7 waits forever on a swtpm
/// that could not open its state (a wrong passphrase), where libvirt would hang with it.
/// Past the deadline its whole process group is killed.
fn wait_setup(
    mut child: std::process::Child,
    timeout: Duration,
) -> Result<std::process::ExitStatus, String> {
    let until = std::time::Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(st)) => return Ok(st),
            Ok(None) if std::time::Instant::now() < until => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Ok(None) => {
                let pgid = nix::unistd::Pid::from_raw(child.id() as i32);
                let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
                let _ = child.wait();
                return Err(format!("no result within {} s", timeout.as_secs()));
            }
            Err(e) => return Err(e.to_string()),
        }
    }
}

fn start_one(
    dir: &Path,
    domain_log: &Path,
    s: &HelperSpec,
    timeout: Duration,
) -> Result<(), String> {
    let name = s.kind.name();
    for setup in &s.setup {
        log_line(domain_log, &format!("running {}", setup.join(" ")));
        let opened = fds::open(&s.setup_fds, &s.socket)?;
        let child = command(setup, &s.log)
            .and_then(|mut c| {
                fds::install(&mut c, &opened);
                // A group of its own: a setup that hangs is killed with what it started.
                c.process_group(0);
                c.spawn()
            })
            .map_err(|e| format!("cannot execute binary {}: {e}", setup[0]))?;
        // libvirt: qemuTPMEmulatorRunSetup, qemuTPMEmulatorReconfigure.
        let what = if setup.iter().any(|a| a == "--reconfigure") {
            format!("{} --reconfigure", setup[0])
        } else {
            setup[0].clone()
        };
        let st = wait_setup(child, timeout).map_err(|e| {
            format!(
                "Could not run '{what}': {e}; Check error log '{}' for details.",
                s.log.display()
            )
        })?;
        if !st.success() {
            return Err(format!(
                "Could not run '{what}'. exitstatus: {}; Check error log '{}' for details.",
                st.code().unwrap_or(-1),
                s.log.display()
            ));
        }
    }
    let _ = std::fs::remove_file(&s.socket);
    log_line(
        domain_log,
        &format!("starting {name} for {}: {}", s.device, s.argv.join(" ")),
    );
    let from = std::fs::metadata(&s.log).map_or(0, |m| m.len());
    let opened = fds::open(&s.pass_fds, &s.socket)?;
    let child = command(&s.argv, &s.log)
        .and_then(|mut c| {
            fds::install(&mut c, &opened);
            c.spawn()
        })
        // libvirt: virExec's message when the binary cannot run.
        .map_err(|e| {
            let _ = std::fs::remove_file(&s.socket);
            format!("cannot execute binary {}: {e}", s.argv[0])
        })?;
    let pid = child.id() as i32;
    // Reaped by pid (here, or by the monitor's SIGCHLD loop), never through `child`.
    drop(child);
    // The child has its copies; ours would keep a listener open after the helper ended.
    drop(opened);
    let prebound = fds::has_listener(&s.pass_fds);
    let rec = Record {
        kind: s.kind,
        device: s.device.clone(),
        pid,
        start_time: proc_stat(pid).ok().flatten().map_or(0, |st| st.start_time),
        socket: s.socket.clone(),
        files: s.files.clone(),
        owner: own_id(),
    };
    let rpath = record_path(dir, s.kind, &s.device);
    let written = serde_json::to_vec(&rec)
        .map_err(|e| e.to_string())
        .and_then(|d| write_private(&rpath, &d).map_err(|e| e.to_string()));
    if let Err(e) = written {
        stop(&rpath, &rec);
        return Err(format!("cannot record {name}: {e}"));
    }
    let deadline = Instant::now() + timeout;
    // A socket bound here exists at once: the helper is taken as ready once it has run
    // for a moment without failing (libvirt checks only that it is alive).
    let settled = Instant::now() + PREBOUND_SETTLE;
    loop {
        let ready = if prebound {
            Instant::now() >= settled
        } else {
            std::fs::symlink_metadata(&s.socket).is_ok()
        };
        if ready {
            let _ = std::fs::set_permissions(&s.socket, std::fs::Permissions::from_mode(0o600));
            return Ok(());
        }
        let ended = match waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => None,
            Ok(st) => Some(crate::driver::monitor::server::describe_exit(&st)),
            Err(e) => Some(e.to_string()),
        };
        if let Some(how) = ended {
            let _ = std::fs::remove_file(&rpath);
            return Err(format!(
                "{name} for {} failed to start ({how}): {}",
                s.device,
                super::process::log_tail(&s.log, from).trim()
            ));
        }
        if Instant::now() >= deadline {
            stop(&rpath, &rec);
            return Err(format!(
                "{name} for {} did not create its socket {} within {timeout:?}",
                s.device,
                s.socket.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Stop every helper recorded in the guest's run dir `dir` (SIGTERM, SIGKILL after a
/// grace) and remove its record, socket and files. Helpers that already ended are only
/// cleaned up after. Helpers of another live monitor (the guest's next run) are left alone.
pub fn stop_all(dir: &Path) {
    for (path, rec) in records(dir) {
        if rec.ours_to_stop() {
            stop(&path, &rec);
        }
    }
}

/// How long a helper has to end after SIGTERM before it gets SIGKILL.
const TERM_GRACE: Duration = Duration::from_secs(1);
/// How long a SIGKILLed helper may take to be gone (it cannot refuse; a loaded machine
/// may be slow to run its exit).
const KILL_GRACE: Duration = Duration::from_secs(5);

fn stop(path: &Path, rec: &Record) {
    if rec.pid > 0 {
        // Its own children too: virtiofsd's sandbox runs the daemon in a forked worker and
        // its parent, on SIGTERM, exits without waiting for it; the worker only gets its
        // parent's death signal. Found before the parent goes: then they are orphans.
        let mut procs = vec![(rec.pid, rec.start_time)];
        procs.extend(descendants(rec.pid));
        for (pid, start_time) in procs {
            end_process(pid, start_time);
        }
    }
    remove_files(path, rec);
}

/// End process `pid` (if it is still the one started at `start_time`): SIGTERM, SIGKILL
/// after [`TERM_GRACE`], and wait (bounded) until it is gone, reaping it when it is our
/// child (the helper itself, or an orphan of it: the monitor is a subreaper).
fn end_process(pid: i32, start_time: u64) {
    let p = Pid::from_raw(pid);
    let gone = || {
        // Harmless (ECHILD) when it is not our child.
        let _ = waitpid(p, Some(WaitPidFlag::WNOHANG));
        !is_same_live_process(pid, start_time)
    };
    let wait = |grace: Duration| {
        let deadline = Instant::now() + grace;
        while !gone() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    if gone() {
        return;
    }
    let _ = kill(p, Signal::SIGTERM);
    wait(TERM_GRACE);
    if !gone() {
        let _ = kill(p, Signal::SIGKILL);
        wait(KILL_GRACE);
    }
}

/// End every process still a child of this one (the guest's monitor, a subreaper, once its
/// QEMU is reaped and its helpers stopped): whatever a helper forked and left behind, or a
/// helper whose record was not there to stop. Without this the monitor would exit first
/// and leave them to PID 1, alive after the guest is reported ended. Returns what was
/// ended, as `comm (pid N)`, for the domain log.
pub fn end_children() -> Vec<String> {
    let own = std::process::id() as i32;
    let mut ended = Vec::new();
    for (pid, start_time) in children_of(own) {
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        end_process(pid, start_time);
        ended.push(format!("{} (pid {pid})", comm.trim()));
    }
    ended
}

fn live_processes() -> Vec<(i32, ProcStat)> {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|p| Some((p, proc_stat(p).ok().flatten()?)))
        .filter(|(_, st)| st.state != 'Z')
        .collect()
}

fn children_of(pid: i32) -> Vec<(i32, u64)> {
    live_processes()
        .into_iter()
        .filter(|(_, st)| st.ppid == pid)
        .map(|(p, st)| (p, st.start_time))
        .collect()
}

/// Every live descendant of `pid`, as (pid, start time), from `/proc`.
fn descendants(pid: i32) -> Vec<(i32, u64)> {
    let all = live_processes();
    let mut out: Vec<(i32, u64)> = Vec::new();
    let mut parents = vec![pid];
    while let Some(parent) = parents.pop() {
        for (p, st) in &all {
            if st.ppid == parent && !out.iter().any(|(q, _)| q == p) {
                out.push((*p, st.start_time));
                parents.push(*p);
            }
        }
    }
    out
}

fn remove_files(path: &Path, rec: &Record) {
    for f in std::iter::once(&rec.socket).chain(&rec.files) {
        let _ = std::fs::remove_file(f);
    }
    let _ = std::fs::remove_file(path);
}

/// The helper of the guest run dir `dir` whose process `pid` just ended, as `swtpm for
/// tpm0`; its record is removed (the helper is gone, its socket stays for the stop).
pub fn note_exit(dir: &Path, pid: i32) -> Option<String> {
    let (path, rec) = records(dir).into_iter().find(|(_, r)| r.pid == pid)?;
    let rec = Record {
        pid: 0,
        start_time: 0,
        ..rec
    };
    if let Ok(d) = serde_json::to_vec(&rec) {
        let _ = write_private(&path, &d);
    }
    Some(format!("{} for {}", rec.kind.name(), rec.device))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_binary_is_none() {
        assert!(find_binary("no-such-helper-binary-xyz").is_none());
        assert!(is_executable(Path::new("/bin/sh")));
    }

    #[test]
    fn a_helper_that_never_makes_its_socket_is_stopped() {
        let d = tempfile::tempdir().unwrap();
        let spec = HelperSpec {
            kind: HelperKind::Passt,
            device: "net0".into(),
            argv: vec!["/bin/sleep".into(), "30".into()],
            setup: vec![],
            socket: d.path().join("never.sock"),
            log: d.path().join("h.log"),
            files: vec![],
            pass_fds: vec![],
            setup_fds: vec![],
        };
        let t0 = Instant::now();
        let e = start_all(
            d.path(),
            &d.path().join("dom.log"),
            &[spec],
            Duration::from_millis(200),
        )
        .unwrap_err();
        assert!(e.contains("did not create its socket"), "{e}");
        assert!(t0.elapsed() < Duration::from_secs(3));
        assert!(records(d.path()).is_empty());
    }

    #[test]
    fn a_helpers_child_that_ignores_sigterm_is_killed_with_it() {
        // As virtiofsd's sandbox: the helper forks its worker, and on SIGTERM it ends
        // without it; this worker does not heed SIGTERM either.
        let d = tempfile::tempdir().unwrap();
        let sock = d.path().join("w.sock");
        let spec = HelperSpec {
            kind: HelperKind::Virtiofsd,
            device: "fs0".into(),
            argv: vec![
                "/bin/sh".into(),
                "-c".into(),
                format!(
                    "(trap '' TERM; exec sleep 30) & touch {}; wait",
                    sock.display()
                ),
            ],
            setup: vec![],
            socket: sock,
            log: d.path().join("h.log"),
            files: vec![],
            pass_fds: vec![],
            setup_fds: vec![],
        };
        start_all(
            d.path(),
            &d.path().join("dom.log"),
            &[spec],
            Duration::from_secs(10),
        )
        .unwrap();
        let (_, rec) = records(d.path()).pop().unwrap();
        let until = Instant::now() + Duration::from_secs(10);
        let worker = loop {
            if let Some(w) = descendants(rec.pid).pop() {
                break w;
            }
            assert!(Instant::now() < until, "the helper never forked");
            std::thread::sleep(Duration::from_millis(10));
        };
        let t0 = Instant::now();
        stop_all(d.path());
        assert!(!is_same_live_process(rec.pid, rec.start_time));
        assert!(
            !is_same_live_process(worker.0, worker.1),
            "the worker {} outlived its helper",
            worker.0
        );
        assert!(t0.elapsed() < TERM_GRACE * 2 + KILL_GRACE * 2);
        assert!(records(d.path()).is_empty());
    }

    #[test]
    fn a_helper_that_fails_reports_its_log() {
        let d = tempfile::tempdir().unwrap();
        let spec = HelperSpec {
            kind: HelperKind::Virtiofsd,
            device: "fs0".into(),
            argv: vec![
                "/bin/sh".into(),
                "-c".into(),
                "echo broken >&2; exit 3".into(),
            ],
            setup: vec![],
            socket: d.path().join("s.sock"),
            log: d.path().join("h.log"),
            files: vec![],
            pass_fds: vec![],
            setup_fds: vec![],
        };
        let e = start_all(
            d.path(),
            &d.path().join("dom.log"),
            &[spec],
            Duration::from_secs(5),
        )
        .unwrap_err();
        assert!(
            e.contains("virtiofsd for fs0 failed to start (exit status 3): broken"),
            "{e}"
        );
    }
}
