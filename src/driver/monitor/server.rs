//! The monitor process of one guest: QEMU's parent, the only client of its QMP socket, and
//! the server of the control socket every other operation goes through.
//!
//! It runs one single-threaded tokio runtime in a process of its own (started fresh by
//! exec, so no lock of the caller's threads is held across a fork). One loop owns the QMP
//! connection and the guest's state; connection tasks hand it requests over a channel, so
//! two callers at once are serialised here. Nothing polls: the loop sleeps until QMP,
//! a client, SIGCHLD or QEMU's pidfd wakes it.

use std::io::Write;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot, watch};

use super::events::{DomainEvent, EventKind, Lifecycle, now_ms};
use super::hub::{ConsoleRefusal, Hub, Kick};

mod backup;
mod blockjob;
mod console_relay;
mod dump;
mod hotplug;
mod jobs;
mod migrate;
mod pm;
mod resident;
mod snapshot;
use super::proto::{
    ErrorCode, Failure, Line, MAX_LINE, PowerModes, Push, QmpEvent, Reply, Request, StartResult,
    VERSION,
};
use crate::driver::Dirs;
use crate::driver::agent::{self, Agent, AgentError, ShutdownMode};
use crate::driver::process::{
    GuestPaths, LaunchSpec, connect_monitor, log_tail, make_dir, remove_leftovers, spawn_qemu,
    timestamp,
};
use crate::driver::status::{GuestStatus, is_same_live_process, proc_stat};
use crate::qmp::{Event, Monitor, QmpError};

/// How long a new QMP connection may take after the old one failed.
const RECONNECT: Duration = Duration::from_secs(10);

/// How long a monitor whose QEMU is gone waits for a start of the same guest to be done
/// before it cleans up (a start waits as long for its QEMU's monitor).
const LOCK_WAIT: Duration = Duration::from_secs(30);

/// How long QEMU may take to be gone once it hung up its monitor.
const EXIT_AFTER_HANGUP: Duration = Duration::from_secs(2);
/// How long `destroy` and `on_poweroff=destroy` let QEMU handle SIGTERM (libvirt: 10 s).
const KILL_GRACE: Duration = Duration::from_secs(10);

/// What the starter sends on the monitor's stdin.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MonitorConfig {
    pub name: String,
    pub dirs: DirsWire,
    pub mode: Mode,
}

/// [`Dirs`] on the wire.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DirsWire {
    pub config: PathBuf,
    pub lib: PathBuf,
    pub run: PathBuf,
    pub cache: PathBuf,
    pub log: PathBuf,
}

impl From<&Dirs> for DirsWire {
    fn from(d: &Dirs) -> Self {
        DirsWire {
            config: d.config.clone(),
            lib: d.lib.clone(),
            run: d.run.clone(),
            cache: d.cache.clone(),
            log: d.log.clone(),
        }
    }
}

impl DirsWire {
    fn dirs(&self) -> Dirs {
        Dirs {
            config: self.config.clone(),
            lib: self.lib.clone(),
            run: self.run.clone(),
            cache: self.cache.clone(),
            log: self.log.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Start QEMU as our child.
    Start(Box<LaunchSpec>),
    /// Take over a running QEMU whose monitor died (crash-only: nothing is lost but the
    /// exit status, which only its parent could read).
    Adopt,
}

/// libvirt's lifecycle actions (`virDomainLifecycleAction`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Destroy,
    Restart,
    Preserve,
    RenameRestart,
    CoredumpDestroy,
    CoredumpRestart,
}

impl Action {
    fn parse(s: Option<&str>, default: Action) -> Action {
        match s {
            Some("destroy") => Action::Destroy,
            Some("restart") => Action::Restart,
            Some("preserve") => Action::Preserve,
            Some("rename-restart") => Action::RenameRestart,
            Some("coredump-destroy") => Action::CoredumpDestroy,
            Some("coredump-restart") => Action::CoredumpRestart,
            _ => default,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Actions {
    poweroff: Action,
    reboot: Action,
    crash: Action,
    /// `<watchdog action='dump'/>`: QEMU pauses, we dump and resume.
    watchdog_dump: bool,
}

impl Actions {
    /// From the live XML; libvirt's defaults (destroy, restart, destroy) when absent.
    fn from_xml(xml: &str) -> Actions {
        let def = crate::domain::parse(xml).ok();
        let get = |f: fn(&crate::domain::DomainDef) -> Option<&String>, d| {
            Action::parse(def.as_ref().and_then(f).map(String::as_str), d)
        };
        Actions {
            poweroff: get(|d| d.on_poweroff.as_ref(), Action::Destroy),
            reboot: get(|d| d.on_reboot.as_ref(), Action::Restart),
            crash: get(|d| d.on_crash.as_ref(), Action::Destroy),
            watchdog_dump: def.as_ref().is_some_and(|d| {
                d.devices
                    .watchdogs
                    .iter()
                    .any(|w| w.action.as_deref() == Some("dump"))
            }),
        }
    }
}

/// Entry point of the monitor binary. Returns the exit code.
pub fn main() -> i32 {
    use std::io::Read;
    let mut data = Vec::new();
    let read = std::io::stdin()
        .take(super::proto::MAX_LINE as u64)
        .read_to_end(&mut data);
    let cfg: MonitorConfig = match read
        .map_err(|e| e.to_string())
        .and_then(|_| serde_json::from_slice(&data).map_err(|e| e.to_string()))
    {
        Ok(c) => c,
        Err(e) => {
            report(&StartResult::Failed {
                msg: format!("guest monitor: bad configuration on stdin: {e}"),
                log_tail: String::new(),
            });
            return 1;
        }
    };
    // Second fork: the starter reaps our first half at once and never waits for the guest;
    // this half is no session leader (the starter ran setsid for us), so it can never gain
    // a controlling terminal.
    // SAFETY: no other thread exists yet (no runtime was built), so the child may run
    // anything.
    match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Parent { .. }) => return 0,
        Ok(nix::unistd::ForkResult::Child) => {}
        Err(e) => {
            report(&StartResult::Failed {
                msg: format!("guest monitor: fork: {e}"),
                log_tail: String::new(),
            });
            return 1;
        }
    }
    // Orphans QEMU leaves (helpers it forks) come to us to be reaped, not to PID 1.
    let _ = nix::sys::prctl::set_child_subreaper(true);
    if let Ok(null) = std::fs::File::open("/dev/null") {
        use std::os::fd::AsRawFd;
        // SAFETY: dup2 on two fds we own; stdin is read to the end already.
        unsafe { nix::libc::dup2(null.as_raw_fd(), 0) };
    }
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            report(&StartResult::Failed {
                msg: format!("guest monitor: cannot start a tokio runtime: {e}"),
                log_tail: String::new(),
            });
            return 1;
        }
    };
    rt.block_on(run(cfg))
}

/// Write the start result on stdout, then point stdout at /dev/null so the starter sees EOF,
/// and close the lock fd the starter lent us (fd 3).
fn report(r: &StartResult) {
    let mut out = std::io::stdout().lock();
    // The starter may be gone (^C): the guest lives on, tracked, either way.
    let _ = serde_json::to_writer(&mut out, r);
    let _ = out.write_all(b"\n");
    let _ = out.flush();
    if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
        use std::os::fd::AsRawFd;
        // SAFETY: dup2 onto stdout, which we own; the old pipe end is closed by it.
        unsafe { nix::libc::dup2(null.as_raw_fd(), 1) };
    }
    // SAFETY: fd 3 is the lock lent by the starter, or nothing (EBADF, harmless); nothing
    // else of ours is at fd 3 at this point, as the starter closed every fd above 3.
    unsafe { nix::libc::close(LOCK_FD) };
}

/// Where the starter puts the guest's lock fd for us.
pub(crate) const LOCK_FD: RawFd = 3;

async fn run(cfg: MonitorConfig) -> i32 {
    let dirs = cfg.dirs.dirs();
    let paths = match GuestPaths::new(&dirs, &cfg.name) {
        Ok(p) => p,
        Err(e) => {
            report(&StartResult::Failed {
                msg: e.to_string(),
                log_tail: String::new(),
            });
            return 1;
        }
    };
    // Registered before QEMU exists, so that its exit is never missed.
    let sigchld = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::child()) {
        Ok(s) => s,
        Err(e) => {
            report(&StartResult::Failed {
                msg: format!("guest monitor: SIGCHLD: {e}"),
                log_tail: String::new(),
            });
            return 1;
        }
    };
    let adopting = matches!(cfg.mode, Mode::Adopt);
    let setup = match cfg.mode {
        Mode::Start(spec) => start(&paths, *spec).await,
        Mode::Adopt => adopt(&paths).await,
    };
    let (mut srv, listener) = match setup {
        Ok(x) => x,
        Err(r) => {
            report(&r);
            return 1;
        }
    };
    srv.config_dir = dirs.config.clone();
    srv.lib_dir = dirs.lib.clone();
    srv.find_agent().await;
    if adopting {
        srv.catch_up().await;
        if let Some(reason) = srv.end_reason {
            // What happened unmonitored ends the guest (on_poweroff or on_crash destroy):
            // see it through before answering, so that the caller learns the guest's
            // state as it is, not as it was when the last monitor died.
            srv.holds_lock = true;
            srv.serve(listener, sigchld).await;
            report(&StartResult::Ended {
                state: "shut off".into(),
                reason: reason.into(),
            });
            return 0;
        }
    }
    if let Some(st) = &srv.starting {
        // A restore runs: the start is reported as it ends, from the loop.
        let log_from = st.log_from;
        srv.serve(listener, sigchld).await;
        if srv.starting.is_none() {
            return 0;
        }
        report(&match srv.start_failure.take() {
            Some(StartFailure::Aborted(desc)) => StartResult::Aborted { desc },
            Some(StartFailure::Failed(msg)) => StartResult::Failed {
                msg,
                log_tail: log_tail(&paths.log, log_from),
            },
            None => StartResult::Failed {
                msg: "the guest ended while its state was loading".into(),
                log_tail: log_tail(&paths.log, log_from),
            },
        });
        return 1;
    }
    report(&StartResult::Ready {
        monitor_pid: std::process::id() as i32,
        qemu_pid: srv.status.pid,
    });
    resident::drop_startup_code();
    srv.serve(listener, sigchld).await;
    0
}

/// The live XML `xml` with the names of the taps made for it (as libvirt shows them).
fn live_xml_with_taps(xml: &str, taps: &[(usize, String)]) -> String {
    if taps.is_empty() {
        return xml.to_string();
    }
    let Ok(mut def) = crate::domain::parse(xml) else {
        return xml.to_string();
    };
    crate::driver::tap::note_ifnames(&mut def, taps);
    def.to_xml(crate::domain::FormatFlags {
        inactive: false,
        secure: true,
    })
}

/// The descriptors the starter passed for QEMU at `numbers` (see `LaunchSpec::passed_fds`),
/// owned and close-on-exec. A number not open is left out: QEMU then reports the `-add-fd`
/// that names it.
fn take_passed(numbers: &[RawFd]) -> Vec<OwnedFd> {
    numbers
        .iter()
        .filter(|&&n| {
            // SAFETY: fcntl on an integer; EBADF for a number not open.
            unsafe { nix::libc::fcntl(n, nix::libc::F_SETFD, nix::libc::FD_CLOEXEC) == 0 }
        })
        // SAFETY: inherited from the starter for us alone; nothing else here owns them.
        .map(|&n| unsafe { OwnedFd::from_raw_fd(n) })
        .collect()
}

/// Start QEMU, connect QMP, run the init commands and `cont`.
async fn start(
    paths: &GuestPaths,
    spec: LaunchSpec,
) -> Result<(Server, UnixListener), StartResult> {
    let failed = |msg: String, tail: String| StartResult::Failed {
        msg,
        log_tail: tail,
    };
    // Ours until QEMU is spawned (closed with this function): close-on-exec from here, so no
    // helper inherits them; QEMU gets them at these same numbers.
    let passed = take_passed(&spec.passed_fds);
    // Helpers first: QEMU connects to their sockets as it starts.
    let helpers = crate::driver::helpers::start_all(
        &paths.guest_run_dir,
        &paths.log,
        &spec.helpers,
        spec.timeout,
    );
    if let Err(e) = helpers {
        let _ = remove_leftovers(paths);
        return Err(failed(e, String::new()));
    }
    // Taps last before QEMU: they exist only while a descriptor holds them, and QEMU's copies
    // are the ones that stay (ours close below, once it is spawned).
    let taps = match crate::driver::tap::create_all(&spec.taps) {
        Ok(t) => t,
        Err(msg) => {
            // The helpers started above go with the run dir's leftovers.
            let _ = remove_leftovers(paths);
            return Err(StartResult::Refused { msg });
        }
    };
    let pairs: Vec<(RawFd, RawFd)> = passed
        .iter()
        .map(|f| {
            (
                std::os::fd::AsRawFd::as_raw_fd(f),
                std::os::fd::AsRawFd::as_raw_fd(f),
            )
        })
        .collect();
    let (child, log_from) = match spawn_qemu(paths, &spec, &taps, &pairs) {
        Ok(x) => x,
        Err(e) => {
            let _ = remove_leftovers(paths);
            return Err(failed(e.to_string(), String::new()));
        }
    };
    let tap_names: Vec<(usize, String)> =
        taps.iter().map(|t| (t.index, t.ifname.clone())).collect();
    drop(taps);
    drop(passed);
    let pid = child.id() as i32;
    // Reaped by waitpid in our loop, never through `child`.
    drop(child);
    let start_time = proc_stat(pid).ok().flatten().map_or(0, |s| s.start_time);
    let status = GuestStatus {
        name: paths.name.clone(),
        uuid: spec.uuid.clone(),
        pid,
        start_time,
        monitor: paths.monitor.clone(),
        reason: "user".into(),
        paused: true,
        xml: live_xml_with_taps(&spec.xml, &tap_names),
        emulator: spec.argv[0].clone(),
        monitor_pid: std::process::id() as i32,
        monitor_start_time: own_start_time(),
        state: String::new(),
    };
    let kill_reap = |why: String| {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        let _ = waitpid(Pid::from_raw(pid), None);
        let _ = remove_leftovers(paths);
        failed(why, log_tail(&paths.log, log_from))
    };
    let deadline = std::time::Instant::now() + spec.timeout;
    let mut exit: Option<WaitStatus> = None;
    let conn = {
        let exit = &mut exit;
        let alive = move || match waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => true,
            Ok(st) => {
                *exit = Some(st);
                false
            }
            Err(_) => false,
        };
        connect_monitor(&paths.monitor, deadline, alive).await
    };
    let qmp = match conn {
        Ok(m) => m,
        Err(e) => {
            if exit.is_none() {
                // Give a dying QEMU a moment to finish writing its last words and exit.
                for _ in 0..100 {
                    match waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)) {
                        Ok(WaitStatus::StillAlive) => {
                            tokio::time::sleep(Duration::from_millis(20)).await
                        }
                        Ok(st) => {
                            exit = Some(st);
                            break;
                        }
                        Err(_) => break,
                    }
                }
            }
            let msg = match exit {
                Some(st) => format!(
                    "process exited while connecting to monitor ({})",
                    describe_exit(&st)
                ),
                None => format!("QEMU did not answer on its monitor: {e}"),
            };
            let _ = remove_leftovers(paths);
            return Err(match exit {
                Some(_) => failed(msg, log_tail(&paths.log, log_from)),
                None => kill_reap(msg),
            });
        }
    };
    // Written before anything runs, so that from here on the guest is found and tracked.
    if let Err(e) = status.write(&paths.status) {
        return Err(kill_reap(e.to_string()));
    }
    let listener = match bind_control(paths) {
        Ok(l) => l,
        Err(e) => return Err(kill_reap(e)),
    };
    let actions = Actions::from_xml(&spec.xml);
    let mut srv = Server::new(paths.clone(), status, qmp, true, actions);
    srv.set_actions().await;
    for c in &spec.init {
        if let Err(e) = srv.exec(&c.command, Some(c.args.clone())).await {
            // The command's arguments may hold secrets: name the command only.
            let msg = match e {
                QmpError::Command { class, desc, .. } => {
                    format!("QMP command '{}' failed: {class}: {desc}", c.command)
                }
                e => format!("QMP command '{}' failed: {e}", c.command),
            };
            return Err(kill_reap(msg));
        }
    }
    if let Some(inc) = &spec.incoming {
        // The load runs as the monitor's job, served beside `domjobinfo`/`domjobabort`;
        // the start is reported when it ends. Until then the lent lock is ours.
        if let Err(e) = srv.begin_restore(inc).await {
            return Err(kill_reap(e));
        }
        srv.starting = Some(Starting {
            paused: spec.paused,
            log_from,
            migrated: inc.listen,
        });
        srv.holds_lock = true;
        return Ok((srv, listener));
    }
    if let Err(e) = srv.finish_start(spec.paused, false, false).await {
        return Err(kill_reap(e));
    }
    Ok((srv, listener))
}

/// A start whose restore runs as the monitor's job: what to do once it ended.
struct Starting {
    paused: bool,
    /// Where QEMU's output began in the guest's log, for a failure's log tail.
    log_from: u64,
    /// The stream is a live migration's (`virsh migrate` to this connection).
    migrated: bool,
}

/// Why a start reported late (after a restore) failed.
enum StartFailure {
    Failed(String),
    Aborted(String),
}

impl Server {
    /// The guest's state is in place: resume it unless `paused`, record it and tell the
    /// subscribers it started (`restored` from a save image).
    async fn finish_start(
        &mut self,
        paused: bool,
        restored: bool,
        migrated: bool,
    ) -> Result<(), String> {
        self.note_ptys().await;
        if !paused {
            self.own_resume = true;
            if let Err(e) = self.exec("cont", None).await {
                return Err(format!("cannot resume the vCPUs: {e}"));
            }
            self.status.paused = false;
            self.status.reason = match (restored, migrated) {
                (_, true) => "migrated",
                (true, false) => "restored",
                (false, false) => "booted",
            }
            .into();
        }
        self.status
            .write(&self.paths.status)
            .map_err(|e| e.to_string())?;
        if migrated {
            // libvirt: the destination's domain starts at Prepare, then resumes at Finish
            // (qemuMigrationDstFinishFresh).
            self.broadcast_lifecycle(Lifecycle::StartedMigrated);
            self.broadcast_lifecycle(if paused {
                Lifecycle::SuspendedPaused
            } else {
                Lifecycle::ResumedMigrated
            });
            return Ok(());
        }
        self.broadcast_lifecycle(match (paused, restored) {
            (true, _) => Lifecycle::SuspendedPaused,
            (false, true) => Lifecycle::StartedRestored,
            (false, false) => Lifecycle::StartedBooted,
        });
        Ok(())
    }

    /// The restore of a start ended: the guest runs (or waits paused) and the start is
    /// reported ready, or QEMU goes and the start fails with `res`'s error.
    async fn restore_ended(&mut self, res: Result<(), (ErrorCode, String)>) {
        let Some(st) = self.starting.as_ref() else {
            return;
        };
        let (paused, migrated) = (st.paused, st.migrated);
        if let Err((code, desc)) = res {
            self.fail_start(code, desc);
            return;
        }
        if let Err(e) = self.finish_start(paused, true, migrated).await {
            self.fail_start(ErrorCode::OperationFailed, e);
            return;
        }
        self.starting = None;
        self.holds_lock = false;
        report(&StartResult::Ready {
            monitor_pid: std::process::id() as i32,
            qemu_pid: self.status.pid,
        });
        resident::drop_startup_code();
    }

    /// The start being restored fails: QEMU goes at once, and once it is reaped the start
    /// reports the first failure recorded.
    fn fail_start(&mut self, code: ErrorCode, desc: String) {
        if self.starting.is_none() {
            return;
        }
        if self.start_failure.is_none() {
            self.start_failure = Some(match code {
                ErrorCode::OperationAborted => StartFailure::Aborted(desc),
                _ => StartFailure::Failed(desc),
            });
        }
        if self.end_reason.is_none() {
            self.end_reason = Some("failed");
        }
        self.signal(Signal::SIGKILL);
    }
}

/// Take over the running QEMU of `paths` (its monitor died).
async fn adopt(paths: &GuestPaths) -> Result<(Server, UnixListener), StartResult> {
    let failed = |msg: String| StartResult::Failed {
        msg,
        log_tail: String::new(),
    };
    let mut status = match GuestStatus::read(&paths.name, &paths.status) {
        Ok(Some(s)) => s,
        Ok(None) => return Err(failed("the guest is not running".into())),
        Err(e) => return Err(failed(e.to_string())),
    };
    let (pid, start) = (status.pid, status.start_time);
    let alive = move || is_same_live_process(pid, start);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let qmp = connect_monitor(&status.monitor, deadline, alive)
        .await
        .map_err(|e| failed(format!("cannot connect to QEMU's monitor: {e}")))?;
    status.monitor_pid = std::process::id() as i32;
    status.monitor_start_time = own_start_time();
    status
        .write(&paths.status)
        .map_err(|e| failed(e.to_string()))?;
    let listener = bind_control(paths).map_err(failed)?;
    let actions = Actions::from_xml(&status.xml);
    let mut srv = Server::new(paths.clone(), status, qmp, false, actions);
    srv.pidfd = open_pidfd(pid)
        .map_err(|e| failed(format!("cannot watch QEMU (pid {pid}): {e}")))
        .map(Some)?;
    srv.unplugs = hotplug::Unplugs::load(&paths.guest_run_dir);
    srv.finish_missed_unplugs().await;
    srv.resume_backup();
    log_line(
        paths,
        &format!(
            "guest monitor {} adopted QEMU pid {pid}",
            std::process::id()
        ),
    );
    Ok((srv, listener))
}

fn own_start_time() -> u64 {
    proc_stat(std::process::id() as i32)
        .ok()
        .flatten()
        .map_or(0, |s| s.start_time)
}

fn open_pidfd(pid: i32) -> std::io::Result<tokio::io::unix::AsyncFd<OwnedFd>> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { nix::libc::syscall(nix::libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the fd was just returned to us and is owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
    // SAFETY: the OwnedFd is moved into the AsyncFd, which keeps it open (and the same fd)
    // until the AsyncFd is dropped.
    unsafe { tokio::io::unix::AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) }
        .map_err(std::io::Error::from)
}

/// Bind the control socket (0600) in the guest's run dir, which is 0700 already.
fn bind_control(paths: &GuestPaths) -> Result<UnixListener, String> {
    use std::os::unix::fs::PermissionsExt;
    make_dir(&paths.name, &paths.guest_run_dir).map_err(|e| e.to_string())?;
    let _ = std::fs::remove_file(&paths.control);
    let l = UnixListener::bind(&paths.control)
        .map_err(|e| format!("{}: {e}", paths.control.display()))?;
    std::fs::set_permissions(&paths.control, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("{}: {e}", paths.control.display()))?;
    Ok(l)
}

/// A line in the guest's log, stamped as libvirt stamps its own.
fn log_line(paths: &GuestPaths, text: &str) {
    use std::os::unix::fs::OpenOptionsExt;
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .append(true)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(&paths.log)
    {
        let _ = writeln!(f, "{}: {text}", timestamp());
    }
}

pub(crate) fn describe_exit(st: &WaitStatus) -> String {
    match st {
        WaitStatus::Exited(_, code) => format!("exit status {code}"),
        WaitStatus::Signaled(_, sig, core) => format!(
            "killed by signal {} ({sig}){}",
            *sig as i32,
            if *core { ", core dumped" } else { "" }
        ),
        other => format!("{other:?}"),
    }
}

/// A request from a connection task, with where its reply goes.
struct Cmd {
    req: Request,
    reply: oneshot::Sender<Reply>,
    push: Option<mpsc::UnboundedSender<Push>>,
    /// Closes the requesting connection (for a console session's holder).
    kick: Kick,
}

struct Server {
    paths: GuestPaths,
    status: GuestStatus,
    /// `None` once QEMU closed it (it is exiting).
    qmp: Option<Monitor>,
    /// Whether QEMU is our child (else adopted, watched by pidfd).
    child: bool,
    pidfd: Option<tokio::io::unix::AsyncFd<OwnedFd>>,
    actions: Actions,
    config_dir: PathBuf,
    /// The connection's lib dir, holding each start's private dir.
    lib_dir: PathBuf,
    hub: Hub,
    saw_shutdown: bool,
    /// How the guest ends when QEMU goes, once decided by us.
    end_reason: Option<&'static str>,
    /// `virsh reboot` asked: reset and resume at the next SHUTDOWN instead of `on_poweroff`.
    fake_reboot: bool,
    destroy_waiters: Vec<oneshot::Sender<Reply>>,
    kill_at: Option<tokio::time::Instant>,
    /// Why the next STOP happens, when an event said so first.
    pause_reason: Option<&'static str>,
    /// STOP/RESUME events our own requests caused, already accounted for.
    own_stop: bool,
    own_resume: bool,
    /// The STOP that follows GUEST_PANICKED belongs to the panic, not to a pause.
    panic_stop: bool,
    /// The guest agent's channel, when the domain has one.
    agent: Option<AgentPort>,
    /// Whether we still hold the guest's lock the starter lent us (fd [`LOCK_FD`]): an
    /// adopted guest ended before we reported.
    holds_lock: bool,
    exit: Option<Option<WaitStatus>>,
    unplugs: hotplug::Unplugs,
    /// The save or snapshot running beside the request loop, and who waits for it.
    jobs: jobs::Jobs,
    /// A start not reported yet, its guest's state loading (a restore).
    starting: Option<Starting>,
    start_failure: Option<StartFailure>,
    block_jobs: blockjob::BlockJobs,
}

/// The guest agent's virtio-serial port.
struct AgentPort {
    /// QEMU's end of it, a UNIX socket.
    path: PathBuf,
    /// The virtserialport's id, as VSERPORT_CHANGE names it.
    alias: String,
    /// Whether the guest has the port open (libvirt connects its agent client only then).
    open: bool,
}

impl Server {
    fn new(
        paths: GuestPaths,
        status: GuestStatus,
        qmp: Monitor,
        child: bool,
        actions: Actions,
    ) -> Server {
        Server {
            paths,
            status,
            qmp: Some(qmp),
            child,
            pidfd: None,
            actions,
            config_dir: PathBuf::new(),
            lib_dir: PathBuf::new(),
            hub: Hub::default(),
            saw_shutdown: false,
            end_reason: None,
            fake_reboot: false,
            destroy_waiters: Vec::new(),
            kill_at: None,
            pause_reason: None,
            own_stop: false,
            own_resume: false,
            panic_stop: false,
            agent: None,
            holds_lock: false,
            exit: None,
            unplugs: Default::default(),
            jobs: Default::default(),
            starting: None,
            start_failure: None,
            block_jobs: Default::default(),
        }
    }

    async fn exec(&mut self, command: &str, args: Option<Value>) -> Result<Value, QmpError> {
        if self.qmp.is_none() && self.end_reason.is_none() && self.qemu_alive() {
            // The connection failed (a garbled reply, a timeout) but QEMU lives: QEMU's
            // monitor takes a new client once the old one is gone.
            let (pid, start) = (self.status.pid, self.status.start_time);
            let alive = move || is_same_live_process(pid, start);
            let deadline = std::time::Instant::now() + RECONNECT;
            self.qmp = Some(connect_monitor(&self.status.monitor, deadline, alive).await?);
        }
        let Some(m) = self.qmp.as_mut() else {
            return Err(QmpError::Poisoned);
        };
        let r = m.execute(command, args).await;
        if let Err(e) = &r
            && !matches!(e, QmpError::Command { .. })
        {
            // Close it, so that QEMU takes a new client; events it queued are lost with
            // it, but a failed transport has lost the stream's order anyway.
            self.qmp = None;
        }
        r
    }

    /// [`Server::exec`] passing `fd` along (`getfd`).
    pub(super) async fn exec_with_fd(
        &mut self,
        command: &str,
        args: Option<Value>,
        fd: std::os::fd::BorrowedFd<'_>,
    ) -> Result<Value, QmpError> {
        let Some(m) = self.qmp.as_mut() else {
            return Err(QmpError::Poisoned);
        };
        m.execute_with_fd(command, args, fd).await
    }

    /// Whether QEMU is still there (a zombie is not).
    fn qemu_alive(&self) -> bool {
        self.exit.is_none() && is_same_live_process(self.status.pid, self.status.start_time)
    }

    /// Whether QEMU is ending, once a command failed with `e`: it is gone or being ended,
    /// or it hung up on us, which QEMU does as it exits, and is gone within
    /// [`EXIT_AFTER_HANGUP`]. Without the wait, a guest that shuts down races our check.
    fn qemu_gone_after(&self, e: &QmpError) -> bool {
        if self.end_reason.is_some() || !self.qemu_alive() {
            return true;
        }
        if !matches!(e, QmpError::Eof(_) | QmpError::Io(_)) {
            return false;
        }
        let deadline = std::time::Instant::now() + EXIT_AFTER_HANGUP;
        while std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
            if !self.qemu_alive() {
                return true;
            }
        }
        false
    }

    /// libvirt's qemuProcessSetupLifecycleActions: a reboot the domain must not survive is
    /// turned into a shutdown by QEMU, and a panic pauses, so that we apply `on_crash`.
    async fn set_actions(&mut self) {
        let mut args = json!({ "panic": "pause" });
        if matches!(self.actions.reboot, Action::Destroy | Action::Preserve) {
            args["reboot"] = json!("shutdown");
        }
        // QEMU before 6.0 lacks set-action: the defaults then stand.
        let _ = self.exec("set-action", Some(args)).await;
    }

    /// The live XML changed (`virsh set-lifecycle-action --live` among others): its
    /// lifecycle actions apply from now on, and QEMU learns a new reboot action (libvirt:
    /// qemuDomainModifyLifecycleActionLive).
    async fn update_actions(&mut self) {
        let old = self.actions.reboot;
        self.actions = Actions::from_xml(&self.status.xml);
        // libvirt leaves QEMU's reboot action alone for the other actions.
        let reboot = match self.actions.reboot {
            _ if self.actions.reboot == old => return,
            Action::Restart => "reset",
            Action::Destroy => "shutdown",
            _ => return,
        };
        let _ = self
            .exec("set-action", Some(json!({ "reboot": reboot })))
            .await;
    }

    /// Put the ptys QEMU allocated into the live XML, as libvirt shows them.
    async fn note_ptys(&mut self) {
        let Ok(chardevs) = self.exec("query-chardev", None).await else {
            return;
        };
        let Ok(mut def) = crate::domain::parse(&self.status.xml) else {
            return;
        };
        crate::driver::console::note_ptys(&mut def, &chardevs);
        self.status.xml = def.to_xml(crate::domain::FormatFlags {
            inactive: false,
            secure: true,
        });
    }

    fn write_status(&self) {
        // Best effort: a failed write leaves the previous state, which a reader still gets
        // whole (writes are atomic); the log says why.
        if let Err(e) = self.status.write(&self.paths.status) {
            log_line(&self.paths, &format!("cannot write the status file: {e}"));
        }
    }

    fn set_state(&mut self, state: &str, paused: bool, reason: &str) {
        self.status.state = state.to_string();
        self.status.paused = paused;
        self.status.reason = reason.to_string();
        self.write_status();
    }

    fn broadcast(&mut self, p: Push) {
        self.hub.push(p);
    }

    fn broadcast_lifecycle(&mut self, event: Lifecycle) {
        self.broadcast_kind(EventKind::Lifecycle { event });
    }

    fn broadcast_kind(&mut self, kind: EventKind) {
        let ev = DomainEvent {
            domain: self.paths.name.clone(),
            time_ms: now_ms(),
            kind,
        };
        self.broadcast(Push::Domain(ev));
    }

    fn signal(&self, sig: Signal) {
        if self.exit.is_some() {
            return;
        }
        // Our child's pid cannot be reused before we reap it; an adopted QEMU is pinned by
        // its pidfd.
        if let Some(fd) = &self.pidfd {
            use std::os::fd::AsRawFd;
            // SAFETY: pidfd_send_signal(fd, sig, NULL, 0) on a pidfd we own.
            unsafe {
                nix::libc::syscall(
                    nix::libc::SYS_pidfd_send_signal,
                    fd.get_ref().as_raw_fd(),
                    sig as nix::libc::c_int,
                    std::ptr::null::<nix::libc::siginfo_t>(),
                    0,
                )
            };
        } else {
            let _ = kill(Pid::from_raw(self.status.pid), sig);
        }
    }

    /// End QEMU: SIGTERM now, SIGKILL after the grace.
    fn terminate(&mut self, reason: &'static str, grace: Duration) {
        if self.end_reason.is_none() {
            self.end_reason = Some(reason);
        }
        self.signal(Signal::SIGTERM);
        let at = tokio::time::Instant::now() + grace;
        self.kill_at = Some(self.kill_at.map_or(at, |k| k.min(at)));
    }

    /// Reset and resume (libvirt's qemuProcessFakeReboot): `running (crashed)` after a
    /// panic, `running (booted)` otherwise.
    async fn fake_reboot(&mut self) {
        let reason = if self.status.state == "crashed" {
            "crashed"
        } else {
            "booted"
        };
        let _ = self.exec("system_reset", None).await;
        self.own_resume = true;
        if self.exec("cont", None).await.is_ok() {
            // saw_shutdown stays until the RESUME event: the STOP that followed SHUTDOWN
            // may still be queued behind our commands.
            self.set_state("", false, reason);
            self.broadcast_lifecycle(Lifecycle::ResumedUnpaused);
        }
    }

    async fn apply_poweroff(&mut self) {
        let reboot = std::mem::take(&mut self.fake_reboot);
        if reboot {
            self.fake_reboot().await;
            return;
        }
        match self.actions.poweroff {
            Action::Restart | Action::CoredumpRestart => self.fake_reboot().await,
            Action::Preserve => self.set_state("", true, "shutdown"),
            _ => self.terminate("shutdown", KILL_GRACE),
        }
    }

    /// A guest panic, as libvirt's processGuestPanicEvent handles it: `crashed
    /// (panicked)` and the Crashed Panicked event, then `on_crash`. A dump that fails leaves
    /// the guest crashed, as libvirt does.
    async fn apply_crash(&mut self) {
        self.set_state("crashed", true, "panicked");
        self.broadcast_lifecycle(Lifecycle::CrashedPanicked);
        let action = self.actions.crash;
        if matches!(action, Action::CoredumpDestroy | Action::CoredumpRestart) {
            // libvirt: doCoreDumpToAutoDumpPath names it NAME-YYYY-MM-DD-HH:MM:SS.
            let stamp = timestamp().get(..19).unwrap_or_default().replace(' ', "-");
            if !self.auto_dump(&stamp).await {
                return;
            }
        }
        match action {
            // libvirt does nothing for rename-restart on a panic.
            Action::Preserve | Action::RenameRestart => {}
            Action::Restart | Action::CoredumpRestart => self.fake_reboot().await,
            Action::Destroy | Action::CoredumpDestroy => self.terminate("crashed", KILL_GRACE),
        }
    }

    /// Dump the guest's memory (ELF, no paging) into the auto-dump dir as
    /// `NAME-{suffix}`; whether it worked (the log says why not).
    // libvirt: doCoreDumpToAutoDumpPath, doCoreDump with VIR_DUMP_MEMORY_ONLY
    async fn auto_dump(&mut self, suffix: &str) -> bool {
        let dir = self.lib_dir.join("dump");
        let path = dir.join(format!("{}-{suffix}", self.paths.name));
        if let Err(e) = make_dir(&self.paths.name, &dir) {
            log_line(&self.paths, &format!("cannot create the dump dir: {e}"));
            return false;
        }
        let args = json!({ "paging": false, "protocol": format!("file:{}", path.display()) });
        match self.exec("dump-guest-memory", Some(args)).await {
            Ok(_) => {
                log_line(&self.paths, &format!("memory dumped to {}", path.display()));
                true
            }
            Err(e) => {
                log_line(&self.paths, &format!("Dump failed: {e}"));
                false
            }
        }
    }

    /// `<watchdog action='dump'/>`: QEMU paused the guest; dump it and let it run on.
    // libvirt: processWatchdogEvent
    async fn watchdog_dump(&mut self) {
        let secs = now_ms() / 1000;
        self.auto_dump(&secs.to_string()).await;
        self.own_resume = true;
        match self.exec("cont", None).await {
            Ok(_) => {
                self.set_state("", false, "unpaused");
                self.broadcast_lifecycle(Lifecycle::ResumedUnpaused);
            }
            Err(e) => {
                self.own_resume = false;
                log_line(&self.paths, &format!("Resuming after dump failed: {e}"));
            }
        }
    }

    /// What happened while no monitor watched (an adopted QEMU): a guest that powered
    /// off (QEMU runs with -no-shutdown) or panicked gets its lifecycle action now.
    // libvirt: qemuProcessUpdateState, qemuProcessReconnect's shutdown sequence
    async fn catch_up(&mut self) {
        let Ok(v) = self.exec("query-status", None).await else {
            return;
        };
        match v["status"].as_str() {
            Some("shutdown") if !self.saw_shutdown => {
                log_line(&self.paths, "the guest powered off while unmonitored");
                self.saw_shutdown = true;
                self.apply_poweroff().await;
            }
            Some("guest-panicked") if self.status.state != "crashed" => {
                log_line(&self.paths, "the guest panicked while unmonitored");
                self.apply_crash().await;
            }
            Some("suspended") if self.status.state != "pmsuspended" => {
                self.set_state("pmsuspended", false, "unknown");
            }
            Some("watchdog") if self.status.reason != "watchdog" => {
                self.set_state("", true, "watchdog");
            }
            _ => {}
        }
    }

    /// Whether the status file names another QEMU than ours: a new run of the guest.
    fn superseded(&self) -> bool {
        matches!(
            GuestStatus::read(&self.paths.name, &self.paths.status),
            Ok(Some(st)) if (st.pid, st.start_time) != (self.status.pid, self.status.start_time)
        )
    }

    /// Find the guest agent's channel in the live XML, and whether the guest has it open.
    // libvirt: qemuFindAgentConfig, qemuConnectAgent (deferred until the port is open)
    async fn find_agent(&mut self) {
        // Most guests have none: spare the start a second parse of the XML.
        if !self.status.xml.contains(agent::CHANNEL) {
            return;
        }
        let Ok(def) = crate::domain::parse(&self.status.xml) else {
            return;
        };
        let Some((i, chan)) = agent::channel(&def) else {
            return;
        };
        let auto_dir = def
            .id
            .map(|id| crate::driver::launch::channel_dir_of(&self.lib_dir, &self.paths.name, id));
        let Some(path) = agent::socket_path(chan, auto_dir) else {
            return;
        };
        let alias = agent::device_alias(i, chan);
        let label = format!("char{alias}");
        let open = match self.exec("query-chardev", None).await {
            Ok(Value::Array(devs)) => devs.iter().any(|d| {
                d["label"].as_str() == Some(label.as_str())
                    && d["frontend-open"].as_bool() == Some(true)
            }),
            _ => false,
        };
        self.agent = Some(AgentPort { path, alias, open });
    }

    /// libvirt's qemuDomainAgentAvailable: the agent's socket, or libvirt's error.
    fn agent_available(&self) -> Result<PathBuf, Reply> {
        let refuse = |code, desc: &str| Reply::Refused {
            code,
            desc: desc.to_string(),
        };
        if !self.status.state.is_empty() || self.status.paused {
            // Crashed or pmsuspended: libvirt asks for the running state.
            return Err(refuse(ErrorCode::OperationInvalid, "domain is not running"));
        }
        match &self.agent {
            None => Err(refuse(
                ErrorCode::ArgumentUnsupported,
                &AgentError::NotConfigured.to_string(),
            )),
            Some(a) if !a.open => Err(refuse(
                ErrorCode::AgentUnresponsive,
                &AgentError::NotConnected.to_string(),
            )),
            Some(a) => Ok(a.path.clone()),
        }
    }

    /// `shutdown`/`reboot` as libvirt's qemuDomainShutdownFlags and qemuDomainReboot pick
    /// the way: the agent when asked, or by default when one is connected; the power button
    /// when asked, by default, or after a failed agent unless only the agent was asked.
    /// Returns the reply, or `None` when `reply` was kept to be answered at QEMU's event.
    async fn power(
        &mut self,
        reboot: bool,
        modes: PowerModes,
        reply: oneshot::Sender<Reply>,
    ) -> Option<(Reply, oneshot::Sender<Reply>)> {
        let none = !modes.acpi && !modes.agent;
        let agent_open = self.agent.as_ref().is_some_and(|a| a.open);
        let use_agent = modes.agent || (none && agent_open);
        let agent_forced = modes.agent && !modes.acpi;
        // A reboot the domain must not survive is a shutdown, and a shutdown the domain
        // restarts after is a reboot, for the agent (the power button's way gets there by
        // on_poweroff).
        let agent_reboot = if reboot {
            !matches!(self.actions.reboot, Action::Destroy | Action::Preserve)
        } else {
            matches!(
                self.actions.poweroff,
                Action::Restart | Action::RenameRestart
            )
        };
        if use_agent {
            let tried = match self.agent_available() {
                Ok(path) => self.agent_shutdown(&path, agent_reboot).await,
                Err(r) => Err(r),
            };
            match tried {
                Ok(()) => {
                    self.fake_reboot = false;
                    self.await_power_event(agent_reboot, reply);
                    return None;
                }
                Err(r) if agent_forced => return Some((r, reply)),
                // Not only the agent was asked: the power button then, silently.
                Err(_) => {}
            }
        }
        let r = match self.exec("system_powerdown", None).await {
            Ok(_) => {
                if reboot {
                    self.fake_reboot = true;
                }
                Reply::Ok { value: Value::Null }
            }
            Err(e) => self.failure(e),
        };
        Some((r, reply))
    }

    /// `guest-shutdown` over the agent (sync first).
    // libvirt: qemuAgentShutdown
    async fn agent_shutdown(&mut self, path: &std::path::Path, reboot: bool) -> Result<(), Reply> {
        let mode = if reboot {
            ShutdownMode::Reboot
        } else {
            ShutdownMode::Powerdown
        };
        let r = async {
            let mut a = Agent::connect(path).await?;
            a.shutdown(mode).await
        }
        .await;
        r.map_err(agent_refusal)
    }

    /// Answer `reply` once QEMU reports the guest went down (SHUTDOWN) or reset (RESET),
    /// as libvirt's agent waits for them after `guest-shutdown`; libvirt's timeout error
    /// when neither comes in time.
    fn await_power_event(&mut self, reboot: bool, reply: oneshot::Sender<Reply>) {
        let want = if reboot { "RESET" } else { "SHUTDOWN" };
        let (tx, mut rx) = mpsc::unbounded_channel::<Push>();
        self.hub.subscribe(tx, None);
        tokio::spawn(async move {
            let wait = async {
                while let Some(p) = rx.recv().await {
                    if let Push::Qmp(e) = p
                        && (e.name == want || e.name == "SHUTDOWN")
                    {
                        return;
                    }
                }
                // The monitor ends: the guest is gone, which is what was asked.
            };
            let r = match tokio::time::timeout(agent::SHUTDOWN_WAIT, wait).await {
                Ok(()) => Reply::Ok { value: Value::Null },
                Err(_) => agent_refusal(AgentError::Timeout),
            };
            let _ = reply.send(r);
        });
    }

    async fn on_event(&mut self, ev: Event) {
        self.broadcast(Push::Qmp(QmpEvent::from(&ev)));
        match ev.name.as_str() {
            // libvirt ignores a repeated SHUTDOWN (QEMU's answer to the SIGTERM that ends a
            // powered-off guest), and sees none when it ends a crashed guest: qemuProcessStop
            // closes the monitor first.
            "SHUTDOWN" if self.saw_shutdown || self.end_reason == Some("crashed") => {}
            "SHUTDOWN" => {
                self.saw_shutdown = true;
                // QEMU ending because we end it: after a save libvirt holds the domain
                // while it stops QEMU and drops the event; a destroy relays it. Neither
                // applies on_poweroff.
                match self.end_reason {
                    Some("saved" | "migrated") => return,
                    Some(_) => {
                        self.broadcast_lifecycle(Lifecycle::ShutdownHost);
                        return;
                    }
                    None => {}
                }
                let guest = ev.data["guest"].as_bool().unwrap_or(false);
                self.broadcast_lifecycle(if guest {
                    Lifecycle::ShutdownGuest
                } else {
                    Lifecycle::ShutdownHost
                });
                if ev.data["reason"].as_str() == Some("guest-reset") {
                    // A reboot that set-action turned into a shutdown: on_reboot=destroy.
                    match self.actions.reboot {
                        Action::Preserve => self.set_state("", true, "shutdown"),
                        _ => self.terminate("shutdown", KILL_GRACE),
                    }
                } else {
                    self.apply_poweroff().await;
                }
            }
            "STOP" => {
                if std::mem::take(&mut self.own_stop)
                    || std::mem::take(&mut self.panic_stop)
                    || self.saw_shutdown
                {
                    return;
                }
                let reason = self.pause_reason.take().unwrap_or("user");
                self.set_state("", true, reason);
                self.broadcast_lifecycle(match reason {
                    "ioerror" => Lifecycle::SuspendedIoError,
                    "watchdog" => Lifecycle::SuspendedWatchdog,
                    "migration" => Lifecycle::SuspendedMigrated,
                    _ => Lifecycle::SuspendedPaused,
                });
            }
            "RESUME" => {
                self.saw_shutdown = false;
                if std::mem::take(&mut self.own_resume) {
                    return;
                }
                self.set_state("", false, "unpaused");
                self.broadcast_lifecycle(Lifecycle::ResumedUnpaused);
            }
            "RESET" => self.broadcast_kind(EventKind::Reboot),
            "SUSPEND" | "SUSPEND_DISK" | "WAKEUP" => self.on_pm_event(&ev.name),
            // pvpanic with a crash kernel loaded: the guest's kdump handles the crash and
            // QEMU lets it run, so libvirt only relays it, without on_crash (libvirt:
            // processGuestCrashloadedEvent).
            "GUEST_CRASHLOADED" => self.broadcast_lifecycle(Lifecycle::CrashedCrashloaded),
            "GUEST_PANICKED" => {
                // QEMU paused the guest (set-action panic=pause) and sends STOP next.
                self.panic_stop = ev.data["action"].as_str() == Some("pause");
                self.apply_crash().await
            }
            // libvirt: qemuProcessHandleWatchdog
            "WATCHDOG" => {
                let action = ev.data["action"].as_str().unwrap_or("none").to_string();
                let pause = action == "pause";
                if pause {
                    self.pause_reason = Some("watchdog");
                }
                self.broadcast_kind(EventKind::Watchdog { action });
                if pause && self.actions.watchdog_dump {
                    // QEMU's STOP is queued behind this event: account for it first.
                    self.own_stop = true;
                    self.pause_reason = None;
                    self.set_state("", true, "watchdog");
                    self.broadcast_lifecycle(Lifecycle::SuspendedWatchdog);
                    self.watchdog_dump().await;
                }
            }
            // The guest opened or closed a virtio-serial port: the agent's tells whether an
            // agent listens (libvirt: processSerialChangedEvent).
            "VSERPORT_CHANGE" => {
                if let Some(a) = self.agent.as_mut()
                    && ev.data["id"].as_str() == Some(a.alias.as_str())
                {
                    a.open = ev.data["open"].as_bool().unwrap_or(false);
                    let state = if a.open { "connected" } else { "disconnected" };
                    // libvirt: qemuDomainEventAgentLifecycleNewFromObj, reason CHANNEL.
                    self.broadcast_kind(EventKind::AgentLifecycle {
                        state: state.into(),
                        reason: "channel event".into(),
                    });
                }
            }
            "MIGRATION" => self.jobs.wake_now(),
            "JOB_STATUS_CHANGE" => {
                self.jobs.wake_now();
                self.on_job_status(&ev.data).await;
            }
            // libvirt: qemuMonitorJSONHandleIOError, qemuProcessHandleIOError
            "BLOCK_IO_ERROR" => {
                let action = match ev.data["action"].as_str() {
                    Some("stop") => "pause",
                    Some("report") => "report",
                    _ => "none",
                };
                if action == "pause" {
                    self.pause_reason = Some("ioerror");
                }
                let s = |k: &str| ev.data[k].as_str().unwrap_or("").to_string();
                let (path, alias) = self.disk_of(&s("device"), &s("node-name")).await;
                let reason = if ev.data["nospace"].as_bool() == Some(true) {
                    "enospc"
                } else {
                    ""
                };
                self.broadcast_kind(EventKind::IoError {
                    path: path.clone(),
                    alias: alias.clone(),
                    action: action.into(),
                });
                self.broadcast_kind(EventKind::IoErrorReason {
                    path,
                    alias,
                    action: action.into(),
                    reason: reason.into(),
                });
            }
            "DEVICE_DELETED" => {
                let alias = match ev.data["device"].as_str() {
                    Some(a) => Some(a.to_string()),
                    None => self.pending_vcpu_of(ev.data["path"].as_str().unwrap_or("")),
                };
                if let Some(alias) = alias {
                    self.device_deleted(&alias).await;
                    self.broadcast_kind(EventKind::DeviceRemoved { alias });
                }
            }
            "DEVICE_UNPLUG_GUEST_ERROR" => self.unplug_rejected(&ev.data),
            _ => {}
        }
    }

    /// The source path and alias of the disk QEMU names in an I/O error, by its block
    /// backend (`device`, empty with -blockdev) or the node at its root (`node`); empty
    /// strings when none of ours matches, as libvirt sends then.
    // libvirt: qemuProcessFindDomainDiskByAliasOrQOM, qemuDomainDiskLookupByNodename
    async fn disk_of(&mut self, device: &str, node: &str) -> (String, String) {
        let Ok(def) = crate::domain::parse_unprepared(&self.status.xml) else {
            return Default::default();
        };
        let blocks = self.exec("query-block", None).await.unwrap_or_default();
        let entry = blocks.as_array().into_iter().flatten().find(|e| {
            (!device.is_empty() && e["device"].as_str() == Some(device))
                || (!node.is_empty() && e["inserted"]["node-name"].as_str() == Some(node))
        });
        let Some(entry) = entry else {
            return Default::default();
        };
        def.devices
            .disks
            .iter()
            .find_map(|d| {
                let alias = d.info.alias.as_deref()?;
                // libvirt: virDomainDiskGetSource (a network disk's is its name).
                let src = d.source.as_ref();
                let path = src.and_then(|s| s.path().or(s.name.as_deref()));
                crate::driver::stats::is_disk_entry(entry, alias)
                    .then(|| (path.unwrap_or_default().to_string(), alias.to_string()))
            })
            .unwrap_or_default()
    }

    fn failure(&self, e: QmpError) -> Reply {
        match e {
            QmpError::Command { class, desc, .. } => Reply::Err(Failure {
                class: Some(class),
                desc,
                not_running: false,
            }),
            e => Reply::Err(Failure {
                class: None,
                not_running: self.qemu_gone_after(&e),
                desc: e.to_string(),
            }),
        }
    }

    fn state_reply(&self) -> Reply {
        let state = match (self.status.state.as_str(), self.status.paused) {
            ("crashed", _) => "crashed",
            ("pmsuspended", _) => "pmsuspended",
            (_, true) => "paused",
            (_, false) => "running",
        };
        Reply::State {
            state: state.into(),
            reason: self.status.reason.clone(),
        }
    }

    async fn on_cmd(&mut self, cmd: Cmd) {
        let Cmd {
            req,
            reply,
            push,
            kick,
        } = cmd;
        // A subscriber may still come for the Stopped event (a caller that adopted a guest
        // whose lifecycle action ends it).
        if self.end_reason.is_some()
            && !matches!(
                req,
                Request::Hello { .. }
                    | Request::Destroy { .. }
                    | Request::State
                    | Request::Subscribe { .. }
            )
        {
            let _ = reply.send(Reply::Err(Failure {
                class: None,
                desc: "the guest is shutting down".into(),
                not_running: true,
            }));
            return;
        }
        if self.jobs.blocks(&req) {
            let cmd = Cmd {
                req,
                reply,
                push,
                kick,
            };
            self.queue_for_job(cmd);
            return;
        }
        let ok = |v: Value| Reply::Ok { value: v };
        let r = match req {
            Request::Hello { .. } => Reply::Hello {
                version: VERSION,
                monitor_pid: std::process::id() as i32,
            },
            Request::Qmp { command, args } => match self.exec(&command, args.clone()).await {
                Ok(v) => {
                    self.note_block_request(&command, args.as_ref());
                    ok(v)
                }
                Err(e) => self.failure(e),
            },
            Request::State => match self.exec("query-status", None).await {
                Ok(v) => {
                    let st = v["status"].as_str().unwrap_or("");
                    let (state, reason) = state_from_qmp(st, &self.status);
                    Reply::State {
                        state: state.into(),
                        reason,
                    }
                }
                Err(QmpError::Command { .. }) => self.state_reply(),
                Err(e) => self.failure(e),
            },
            Request::Suspend => {
                self.own_stop = true;
                match self.exec("stop", None).await {
                    Ok(_) => {
                        self.set_state("", true, "user");
                        self.broadcast_lifecycle(Lifecycle::SuspendedPaused);
                        ok(Value::Null)
                    }
                    Err(e) => {
                        self.own_stop = false;
                        self.failure(e)
                    }
                }
            }
            Request::Resume => {
                self.own_resume = true;
                match self.exec("cont", None).await {
                    Ok(_) => {
                        self.set_state("", false, "unpaused");
                        self.broadcast_lifecycle(Lifecycle::ResumedUnpaused);
                        ok(Value::Null)
                    }
                    Err(e) => {
                        self.own_resume = false;
                        self.failure(e)
                    }
                }
            }
            Request::Shutdown { modes } | Request::Reboot { modes } => {
                let reboot = matches!(req, Request::Reboot { .. });
                if let Some((r, reply)) = self.power(reboot, modes, reply).await {
                    let _ = reply.send(r);
                }
                return;
            }
            Request::Agent {
                command,
                args,
                timeout_ms,
            } => {
                match self.agent_available() {
                    Ok(path) => {
                        // Off the loop: an agent may take its time, QMP events may not.
                        let timeout = Duration::from_millis(timeout_ms);
                        tokio::spawn(async move {
                            let r = async {
                                let mut a = Agent::connect(&path).await?;
                                a.command(&command, args, timeout).await
                            }
                            .await;
                            let _ = reply.send(match r {
                                Ok(v) => Reply::Ok { value: v },
                                Err(e) => agent_refusal(e),
                            });
                        });
                    }
                    Err(r) => {
                        let _ = reply.send(r);
                    }
                }
                return;
            }
            Request::PmSuspend { command } => {
                self.pm_suspend(command, reply);
                return;
            }
            Request::Reset => match self.exec("system_reset", None).await {
                Ok(_) => ok(Value::Null),
                Err(e) => self.failure(e),
            },
            Request::SetXml { xml } => {
                self.status.xml = xml;
                self.write_status();
                self.update_actions().await;
                ok(Value::Null)
            }
            Request::Save {
                path,
                ignore_shared,
            } => {
                // Answered once QEMU is reaped, or when the save fails.
                self.save(&path, ignore_shared, reply).await;
                return;
            }
            Request::Snapshot { job } => {
                // Answered when QEMU's job has ended.
                self.snapshot_job(job, reply).await;
                return;
            }
            Request::Dump { path, format, live } => {
                // Answered when QEMU's dump has ended.
                self.dump(path, format, live, reply).await;
                return;
            }
            Request::Migrate { socket, params } => {
                // Answered when the stream has ended.
                self.migrate_out(&socket, params, reply).await;
                return;
            }
            Request::MigratePostcopy => self.start_postcopy().await,
            Request::JobInfo => self.job_info(),
            Request::JobAbort => self.abort_job().await,
            Request::BackupBegun { backup } => self.backup_begun(backup),
            Request::BackupXml => self.backup_xml(),
            Request::Destroy { grace_ms, reason } => {
                self.end_reason = Some(reason.as_str());
                self.terminate(reason.as_str(), Duration::from_millis(grace_ms));
                // Answered once QEMU is reaped.
                self.destroy_waiters.push(reply);
                return;
            }
            Request::Subscribe { since_ms } => {
                if let Some(p) = push {
                    self.hub.subscribe(p, since_ms);
                }
                ok(Value::Null)
            }
            Request::Hotplug {
                steps,
                xml,
                helpers,
                taps,
            } => self.hotplug(steps, xml, helpers, taps).await,
            Request::Unplug {
                alias,
                cleanup,
                wait_ms,
                strict,
            } => {
                let wait = Duration::from_millis(wait_ms);
                self.unplug(alias, cleanup, wait, strict, reply).await;
                return;
            }
            Request::Console {
                alias,
                force,
                stream,
            } => {
                // A stream needs the pty QEMU allocated for the device.
                let pty = if stream {
                    match crate::driver::console::pty_of(&self.status.xml, &alias) {
                        Ok(p) => Some(p),
                        Err(desc) => {
                            let _ = reply.send(Reply::Err(Failure {
                                class: None,
                                desc,
                                not_running: false,
                            }));
                            return;
                        }
                    }
                } else {
                    None
                };
                match self.hub.claim_console(&alias, kick, force) {
                    Ok(()) => ok(pty.map_or(Value::Null, |p| json!({ "pty": p }))),
                    // libvirt: virChrdevOpen's refusal without VIR_DOMAIN_CONSOLE_FORCE.
                    Err(ConsoleRefusal::Busy) => Reply::Err(Failure {
                        class: None,
                        desc: "Active console session exists for this domain".into(),
                        not_running: false,
                    }),
                }
            }
        };
        let _ = reply.send(r);
    }

    /// Reap every child that exited; notes QEMU's status when it is among them.
    fn reap(&mut self) {
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(_) => return,
                Ok(st) => {
                    if st.pid() == Some(Pid::from_raw(self.status.pid)) {
                        self.exit = Some(Some(st));
                    } else if let Some(pid) = st.pid()
                        && let Some(what) = crate::driver::helpers::note_exit(
                            &self.paths.guest_run_dir,
                            pid.as_raw(),
                        )
                        && self.end_reason.is_none()
                        && {
                            // A helper ends as QEMU hangs up on it: give a QEMU that is
                            // going a moment to be gone before calling it an error.
                            std::thread::sleep(Duration::from_millis(50));
                            self.qemu_alive()
                        }
                    {
                        // The guest runs on without it (libvirt lets QEMU see the hang-up).
                        log_line(
                            &self.paths,
                            &format!(
                                "error: {what} (pid {pid}) ended while the guest runs: {}",
                                describe_exit(&st)
                            ),
                        );
                    }
                }
            }
        }
    }

    async fn serve(&mut self, listener: UnixListener, mut sigchld: tokio::signal::unix::Signal) {
        let (cmd_tx, mut cmd_rx) = mpsc::channel::<Cmd>(64);
        let (end_tx, end_rx) = watch::channel(false);
        let mut tasks = tokio::task::JoinSet::new();
        // A SIGCHLD may have come before the loop: look once.
        if self.child {
            self.reap();
        }
        while self.exit.is_none() {
            tokio::select! {
                ev = next_event(&mut self.qmp) => match ev {
                    Some(e) => self.on_event(e).await,
                    None => self.qmp = None,
                },
                Some(cmd) = cmd_rx.recv() => self.on_cmd(cmd).await,
                acc = listener.accept() => {
                    if let Ok((s, _)) = acc {
                        tasks.spawn(client(s, cmd_tx.clone(), end_rx.clone()));
                    }
                }
                _ = sigchld.recv() => self.reap(),
                _ = pidfd_exit(&self.pidfd) => self.exit = Some(None),
                _ = sleep_until(self.kill_at) => {
                    self.kill_at = None;
                    self.signal(Signal::SIGKILL);
                }
                _ = sleep_until(self.jobs.wake_at()) => {
                    for cmd in self.job_tick().await {
                        self.on_cmd(cmd).await;
                    }
                }
            }
        }
        self.fail_jobs_on_exit();
        self.finish().await;
        drop(listener);
        let _ = end_tx.send(true);
        drop(cmd_tx);
        // Let connection tasks write what is queued for them, then go.
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
    }

    /// QEMU is gone: record how it ended, tell everyone, remove what the run left behind.
    async fn finish(&mut self) {
        // Events QEMU sent just before it went (SHUTDOWN among them) are still queued.
        let mut last = Vec::new();
        if let Some(m) = self.qmp.as_mut() {
            while let Ok(Some(ev)) = m.next_event(Duration::ZERO).await {
                last.push(ev);
            }
        }
        for ev in last {
            if ev.name == "SHUTDOWN" {
                self.saw_shutdown = true;
            }
            self.broadcast(Push::Qmp(QmpEvent::from(&ev)));
        }
        let exit = self.exit.flatten();
        let reason = match self.end_reason {
            Some(r) => r,
            None if self.saw_shutdown => "shutdown",
            None => "crashed",
        };
        match &exit {
            Some(st @ WaitStatus::Signaled(..)) => log_line(
                &self.paths,
                &format!("QEMU (pid {}) {}", self.status.pid, describe_exit(st)),
            ),
            Some(st) if reason == "crashed" => log_line(
                &self.paths,
                &format!(
                    "QEMU (pid {}) ended: {}",
                    self.status.pid,
                    describe_exit(st)
                ),
            ),
            _ => {}
        }
        log_line(&self.paths, &format!("shutting down, reason={reason}"));
        // Once QEMU is gone a new start may run the guest again before this monitor is done:
        // then the run dir's files (status, sockets, helpers) and the shut-off note are the
        // new run's, and stay. A start holds the guest's lock until its guest is tracked, so
        // with the lock held the look and the removals see one run, not a start halfway.
        // Without the lock (a start stuck for longer than a job waits) the look stays best
        // effort, as before.
        let _lock = if self.holds_lock {
            None
        } else {
            crate::driver::lock::GuestLock::acquire(
                &self.paths.run_dir,
                &self.paths.name,
                "stop",
                LOCK_WAIT,
            )
            .inspect_err(|e| log_line(&self.paths, &format!("{e}")))
            .ok()
        };
        let superseded = self.superseded();
        let persistent = crate::driver::config::config_path(&self.config_dir, &self.paths.name)
            .is_ok_and(|p| p.exists());
        // A start that failed leaves the domain as it was before it (libvirt emits no event
        // for a restore that failed either).
        let started = self.starting.is_none();
        if persistent && !superseded && started {
            let _ = crate::driver::config::write_shutoff_reason(
                &self.paths.run_dir,
                &self.paths.name,
                reason,
            );
        }
        if let Ok(def) = crate::domain::parse(&self.status.xml)
            && let Some(id) = def.id
        {
            // libvirt's qemuProcessStop removes the start's private dir (its master key).
            let _ = std::fs::remove_dir_all(crate::driver::lib_dir_of(
                &self.lib_dir,
                &self.paths.name,
                id,
            ));
            let _ = std::fs::remove_dir_all(crate::driver::launch::channel_dir_of(
                &self.lib_dir,
                &self.paths.name,
                id,
            ));
            // QEMU leaves a named RAM file behind (libvirt removes it at stop too).
            let _ = std::fs::remove_dir_all(crate::driver::launch::ram_dir_of(
                &self.lib_dir,
                &self.paths.name,
                id,
            ));
        }
        if superseded {
            log_line(&self.paths, "a new run of the guest owns its files now");
        } else {
            let _ = std::fs::remove_file(&self.paths.control);
            let _ = remove_leftovers(&self.paths);
        }
        // QEMU is reaped: any child left is a helper's (or its orphan); none outlives the
        // guest's end (libvirt: qemuExtDevicesStop before the stop is reported).
        for what in crate::driver::helpers::end_children() {
            log_line(
                &self.paths,
                &format!("stopped {what}, left after the guest ended"),
            );
        }
        if started {
            self.broadcast_lifecycle(match reason {
                "shutdown" => Lifecycle::StoppedShutdown,
                "destroyed" => Lifecycle::StoppedDestroyed,
                "saved" => Lifecycle::StoppedSaved,
                "migrated" => Lifecycle::StoppedMigrated,
                "from snapshot" => Lifecycle::StoppedFromSnapshot,
                // on_crash=destroy ended it (libvirt: processGuestPanicEvent), or `dump --crash`
                // (a Destroy with StopReason::Crashed; libvirt: qemuDomainCoreDumpWithFormat).
                _ if self.end_reason == Some("crashed") => Lifecycle::StoppedCrashed,
                // QEMU went without a SHUTDOWN (killed, or exited by itself as a watchdog's
                // poweroff makes it): libvirt's processMonitorEOFEvent says Failed, and the
                // state is `shut off (crashed)`.
                _ => Lifecycle::StoppedFailed,
            });
        }
        let r = Reply::State {
            state: "shut off".into(),
            reason: reason.into(),
        };
        for w in self.destroy_waiters.drain(..) {
            let _ = w.send(r.clone());
        }
        self.hub.clear();
    }
}

/// QMP `query-status`'s `status` as libvirt's state and reason (libvirt:
/// qemuMonitorJSONGetStatus), with the reasons we recorded where QEMU cannot tell them.
fn state_from_qmp(status: &str, ours: &GuestStatus) -> (&'static str, String) {
    let paused = |r: &str| ("paused", r.to_string());
    match status {
        "running" => ("running", ours.reason.clone()),
        "paused" | "prelaunch" if ours.paused => paused(&ours.reason),
        "paused" | "prelaunch" => paused("user"),
        "guest-panicked" if ours.state == "crashed" => ("crashed", ours.reason.clone()),
        "guest-panicked" => ("crashed", "panicked".into()),
        "debug" => paused("debug"),
        "inmigrate" | "postmigrate" | "finish-migrate" => paused("migration"),
        "io-error" => paused("ioerror"),
        "save-vm" => paused("save"),
        "restore-vm" => paused("restore"),
        "watchdog" => paused("watchdog"),
        "shutdown" => paused("shutdown"),
        "suspended" => ("pmsuspended", "unknown".into()),
        _ => paused("unknown"),
    }
}

async fn next_event(qmp: &mut Option<Monitor>) -> Option<Event> {
    match qmp {
        Some(m) => loop {
            match m.next_event(Duration::from_secs(3600)).await {
                Ok(Some(e)) => return Some(e),
                Ok(None) => continue,
                Err(_) => return None,
            }
        },
        None => std::future::pending().await,
    }
}

async fn pidfd_exit(fd: &Option<tokio::io::unix::AsyncFd<OwnedFd>>) {
    match fd {
        Some(fd) => {
            let _ = fd.readable().await;
        }
        None => std::future::pending().await,
    }
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// One connection: handshake, then requests in order, with pushes in between.
async fn client(stream: UnixStream, cmds: mpsc::Sender<Cmd>, mut end: watch::Receiver<bool>) {
    let (rd, mut wr) = stream.into_split();
    let mut rd = BufReader::new(rd);
    let mut buf = Vec::new();
    let (push_tx, mut push_rx) = mpsc::unbounded_channel::<Push>();
    let (kick_tx, mut kick_rx) = mpsc::unbounded_channel::<()>();
    let mut hello = false;
    let mut streams = false;
    loop {
        tokio::select! {
            biased;
            p = push_rx.recv() => {
                let Some(p) = p else { continue };
                if write_line(&mut wr, &Line::Push(p)).await.is_err() {
                    return;
                }
            }
            Some(()) = kick_rx.recv() => return,
            _ = end.changed() => {
                while let Ok(p) = push_rx.try_recv() {
                    if write_line(&mut wr, &Line::Push(p)).await.is_err() {
                        return;
                    }
                }
                return;
            }
            n = rd.read_until(b'\n', &mut buf) => {
                match n {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
                if buf.len() > MAX_LINE {
                    return;
                }
                let line = std::mem::take(&mut buf);
                let reply = match serde_json::from_slice::<Request>(&line) {
                    Err(e) => Reply::Err(Failure {
                        class: None,
                        desc: format!("bad request: {e}"),
                        not_running: false,
                    }),
                    Ok(Request::Hello { version }) if version != VERSION => Reply::Err(Failure {
                        class: None,
                        desc: format!(
                            "guest monitor speaks protocol version {VERSION}, client {version}"
                        ),
                        not_running: false,
                    }),
                    Ok(req) => {
                        if !hello && !matches!(req, Request::Hello { .. }) {
                            let r = Reply::Err(Failure {
                                class: None,
                                desc: "the first request must be hello".into(),
                                not_running: false,
                            });
                            let _ = write_line(&mut wr, &Line::Reply(r)).await;
                            return;
                        }
                        hello = true;
                        streams = matches!(req, Request::Console { stream: true, .. });
                        let push =
                            matches!(req, Request::Subscribe { .. }).then(|| push_tx.clone());
                        let (tx, rx) = oneshot::channel();
                        let cmd = Cmd {
                            req,
                            reply: tx,
                            push,
                            kick: kick_tx.clone(),
                        };
                        if cmds.send(cmd).await.is_err() {
                            return;
                        }
                        match rx.await {
                            Ok(r) => r,
                            Err(_) => Reply::Err(Failure {
                                class: None,
                                desc: "the guest is not running".into(),
                                not_running: true,
                            }),
                        }
                    }
                };
                // A console session taken as a stream: the connection is the console's now.
                let pty = match (&reply, streams) {
                    (Reply::Ok { value }, true) => value["pty"].as_str().map(PathBuf::from),
                    _ => None,
                };
                if write_line(&mut wr, &Line::Reply(reply)).await.is_err() {
                    return;
                }
                if let Some(pty) = pty {
                    console_relay::relay(&pty, rd, wr, &mut kick_rx, &mut end).await;
                    return;
                }
            }
        }
    }
}

/// An agent failure as libvirt reports it.
fn agent_refusal(e: AgentError) -> Reply {
    let code = match e {
        AgentError::NotConfigured => ErrorCode::ArgumentUnsupported,
        AgentError::NotConnected | AgentError::Timeout | AgentError::Disappeared => {
            ErrorCode::AgentUnresponsive
        }
        AgentError::Command { .. } | AgentError::Garbled(_) => ErrorCode::Internal,
    };
    Reply::Refused {
        code,
        desc: e.to_string(),
    }
}

async fn write_line(wr: &mut tokio::net::unix::OwnedWriteHalf, l: &Line) -> std::io::Result<()> {
    let mut data = serde_json::to_vec(l).map_err(std::io::Error::other)?;
    data.push(b'\n');
    wr.write_all(&data).await
}
