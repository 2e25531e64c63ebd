//! Running guests: starting QEMU, finding it again from another process, and acting on it
//! over QMP.
//!
//! There is no daemon, so a guest's QEMU must outlive the `vsh` process that started it: it
//! runs in a session of its own, and everything needed to find it again is in its status file
//! (see [`super::status`]). Whoever holds a [`Guest`] holds the guest's state change lock
//! ([`super::lock`]) and its one QMP connection (QEMU's monitor serves one client at a time),
//! so a handle should live only as long as one operation.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::future::Future;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;

use super::Dirs;
use super::lock::GuestLock;
use super::status::{GuestStatus, is_guest_process, is_same_live_process, proc_stat};
use crate::qmp::{Event, Monitor, MonitorOptions, QmpError};

/// Errors about one guest; each names the guest, and the path when a file is involved.
#[derive(Debug, thiserror::Error)]
pub enum GuestError {
    #[error("guest '{guest}': {path}: {source}")]
    Io {
        guest: String,
        path: PathBuf,
        source: std::io::Error,
    },
    /// libvirt's wording for a job that could not get the domain's lock.
    #[error(
        "Timed out during operation: cannot acquire state change lock: domain '{guest}' is locked by another operation{}",
        if holder.is_empty() { String::new() } else { format!(" ({holder})") }
    )]
    Locked { guest: String, holder: String },
    #[error("guest '{guest}': status file {path}: {msg}")]
    Status {
        guest: String,
        path: PathBuf,
        msg: String,
    },
    #[error("invalid guest name '{guest}': {msg}")]
    InvalidName { guest: String, msg: String },
    #[error("invalid launch of guest '{guest}': {msg}")]
    InvalidLaunch { guest: String, msg: String },
    #[error("Requested operation is not valid: domain '{guest}' is already running (pid {pid})")]
    AlreadyRunning { guest: String, pid: i32 },
    #[error("Requested operation is not valid: domain '{guest}' is not running")]
    NotRunning { guest: String },
    /// QEMU failed while starting; `log_tail` is what it printed (from the guest's log).
    #[error("internal error: guest '{guest}': {msg}: {log_tail}")]
    Start {
        guest: String,
        msg: String,
        log_tail: String,
    },
    #[error("guest '{guest}': {source}")]
    Monitor { guest: String, source: QmpError },
    #[error("Timed out during operation: guest '{guest}': {what}")]
    Timeout { guest: String, what: String },
    #[error("guest '{guest}': {msg}")]
    Process { guest: String, msg: String },
}

impl GuestError {
    pub(crate) fn io(guest: &str, path: &Path, source: std::io::Error) -> Self {
        GuestError::Io {
            guest: guest.to_string(),
            path: path.to_path_buf(),
            source,
        }
    }
}

/// libvirt's domain states (`virDomainState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    NoState,
    Running,
    Paused,
    /// Being shut down.
    Shutdown,
    Shutoff,
    Crashed,
    PmSuspended,
}

impl fmt::Display for State {
    /// As `virsh domstate` prints them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::NoState => "no state",
            State::Running => "running",
            State::Paused => "paused",
            State::Shutdown => "in shutdown",
            State::Shutoff => "shut off",
            State::Crashed => "crashed",
            State::PmSuspended => "pmsuspended",
        })
    }
}

/// A state with its reason, e.g. `shut off (crashed)` (`virsh domstate --reason`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainState {
    pub state: State,
    /// libvirt's name of the reason: `booted`, `unpaused`, `user`, `shutdown`, `destroyed`,
    /// `crashed`, `unknown`, ...
    pub reason: String,
}

impl DomainState {
    pub fn new(state: State, reason: &str) -> Self {
        DomainState {
            state,
            reason: reason.to_string(),
        }
    }
}

impl fmt::Display for DomainState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.state, self.reason)
    }
}

/// Map QMP `query-status`'s `status` to libvirt's state and reason, as libvirt's
/// `qemuMonitorJSONGetStatus` does. `running_reason` is the reason we recorded for running.
fn state_from_qmp(status: &str, running_reason: &str) -> DomainState {
    let paused = |r| DomainState::new(State::Paused, r);
    match status {
        "running" => DomainState::new(State::Running, running_reason),
        "paused" | "prelaunch" => paused("user"),
        "debug" => paused("debug"),
        "inmigrate" | "postmigrate" | "finish-migrate" => paused("migration"),
        "io-error" => paused("ioerror"),
        "save-vm" => paused("save"),
        "restore-vm" => paused("restore"),
        "watchdog" => paused("watchdog"),
        "shutdown" => paused("shutdown"),
        "internal-error" => paused("unknown"),
        "guest-panicked" => DomainState::new(State::Crashed, "panicked"),
        "suspended" => DomainState::new(State::PmSuspended, "unknown"),
        _ => paused("unknown"),
    }
}

/// Where one guest's runtime files live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestPaths {
    pub name: String,
    /// The run dir shared by all guests of the connection.
    pub run_dir: PathBuf,
    /// `RUN/NAME.json`
    pub status: PathBuf,
    /// `RUN/NAME.lock`
    pub lock: PathBuf,
    /// `RUN/domain-NAME/`, mode 0700: the guest's own run dir, holding its sockets.
    pub guest_run_dir: PathBuf,
    /// `RUN/domain-NAME/monitor.sock`
    pub monitor: PathBuf,
    /// `LOG/NAME.log`
    pub log: PathBuf,
}

impl GuestPaths {
    pub fn new(dirs: &Dirs, name: &str) -> Result<Self, GuestError> {
        validate_name(name)?;
        let guest_run_dir = dirs.run.join(format!("domain-{name}"));
        let monitor = guest_run_dir.join("monitor.sock");
        // sun_path holds 108 bytes including the NUL.
        if monitor.as_os_str().len() >= 108 {
            return Err(GuestError::InvalidLaunch {
                guest: name.to_string(),
                msg: format!(
                    "monitor socket path {} is too long for a UNIX socket",
                    monitor.display()
                ),
            });
        }
        Ok(GuestPaths {
            name: name.to_string(),
            run_dir: dirs.run.clone(),
            status: dirs.run.join(format!("{name}.json")),
            lock: GuestLock::path(&dirs.run, name),
            guest_run_dir,
            monitor,
            log: dirs.log.join(format!("{name}.log")),
        })
    }
}

/// Names become file names: refuse anything that could leave the run dir or hide a file.
fn validate_name(name: &str) -> Result<(), GuestError> {
    let bad = |msg: &str| {
        Err(GuestError::InvalidName {
            guest: name.to_string(),
            msg: msg.to_string(),
        })
    };
    if name.is_empty() {
        return bad("empty");
    }
    if name.contains('/') || name.contains('\0') {
        return bad("must not contain '/' or NUL");
    }
    if name.starts_with('.') {
        return bad("must not start with '.'");
    }
    if name.len() > 200 {
        return bad("longer than 200 bytes");
    }
    Ok(())
}

/// A QMP command run while QEMU is still paused at start, before `cont`, e.g. libvirt's
/// `set_password` for VNC and SPICE. Its arguments may hold secrets: `Debug` shows the command
/// name only, and a failure names the command, never its arguments.
#[derive(Clone)]
pub struct InitCommand {
    pub command: String,
    pub args: Value,
}

impl fmt::Debug for InitCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InitCommand({}, ..)", self.command)
    }
}

/// What to start.
#[derive(Debug, Clone)]
pub struct LaunchSpec {
    pub name: String,
    pub uuid: String,
    /// `argv[0]` is the emulator. `-S` is added when missing. Without `monitor_fd` the
    /// monitor's `-chardev`/`-mon` arguments are appended here, naming the fd QEMU inherits.
    pub argv: Vec<String>,
    /// QEMU's whole environment (ours is not inherited), e.g. `LC_ALL=C`, `PATH`, `HOME`.
    pub env: Vec<(String, String)>,
    /// When the argv already holds the monitor arguments with a fixed `fd=N` (as xml2argv
    /// renders them), the listening socket is moved to that fd number in QEMU.
    pub monitor_fd: Option<RawFd>,
    /// The live XML kept in the status file.
    pub xml: String,
    /// Leave the guest paused (`virsh start --paused`).
    pub paused: bool,
    /// How long QEMU may take to answer on its monitor.
    pub timeout: Duration,
    /// Run in order once the monitor answers, before the vCPUs run; any failure fails the
    /// start.
    pub init: Vec<InitCommand>,
}

impl LaunchSpec {
    pub fn new(name: &str, uuid: &str, argv: Vec<String>) -> Self {
        LaunchSpec {
            name: name.to_string(),
            uuid: uuid.to_string(),
            argv,
            env: vec![
                ("LC_ALL".into(), "C".into()),
                (
                    "PATH".into(),
                    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
                ),
            ],
            monitor_fd: None,
            xml: String::new(),
            paused: false,
            timeout: Duration::from_secs(30),
            init: Vec::new(),
        }
    }
}

/// The QEMU arguments for a QMP monitor on inherited listening socket `fd`.
pub fn monitor_args(fd: RawFd) -> [String; 4] {
    [
        "-chardev".into(),
        format!("socket,id=charmonitor,fd={fd},server=on,wait=off"),
        "-mon".into(),
        "chardev=charmonitor,id=monitor,mode=control".into(),
    ]
}

/// What [`Guest::attach`] finds.
#[derive(Debug)]
pub enum Attach {
    Running(Box<Guest>),
    /// Not running; `reason` is `crashed` when a status file was left by a QEMU that is gone
    /// (its leftovers are removed) and `unknown` when there was none.
    Inactive(DomainState),
}

/// A running guest and the operations on it. Holds the guest's lock and monitor connection.
pub struct Guest {
    paths: GuestPaths,
    status: GuestStatus,
    /// Set when this process spawned QEMU: then we must reap it.
    child: Option<Child>,
    /// `None` after the connection failed (QEMU went away).
    monitor: Option<Monitor>,
    rt: tokio::runtime::Runtime,
    events: Vec<Event>,
    /// Set once QEMU is gone: every later call reports this.
    ended: Option<DomainState>,
    /// Whether a SHUTDOWN event was seen: tells a shutdown from a crash when QEMU exits.
    saw_shutdown: bool,
    _lock: GuestLock,
}

impl fmt::Debug for Guest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Guest")
            .field("name", &self.paths.name)
            .field("pid", &self.status.pid)
            .field("child", &self.child.is_some())
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

/// The part of a log written since `from`, at most its last 4 KiB (what QEMU said about why
/// it failed is at the end).
fn log_tail(path: &Path, from: u64) -> String {
    const MAX: u64 = 4096;
    let read = || -> std::io::Result<String> {
        let mut f = File::open(path)?;
        let len = f.metadata()?.len();
        let start = from.max(len.saturating_sub(MAX));
        f.seek(SeekFrom::Start(start))?;
        let mut buf = Vec::new();
        f.take(MAX).read_to_end(&mut buf)?;
        Ok(String::from_utf8_lossy(&buf).trim().to_string())
    };
    match read() {
        Ok(t) if t.is_empty() => format!("(QEMU wrote nothing to {})", path.display()),
        Ok(t) => t,
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}

/// `2026-11-21 23:07:08.123+0000`, as libvirt stamps its guest logs.
fn timestamp() -> String {
    let d = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = ((secs / 86400) as i64, secs % 86400);
    // Days to civil date (Howard Hinnant's algorithm), to avoid a date crate for one line.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}.{:03}+0000",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

/// Quote for a POSIX shell only where needed, so the logged command line can be pasted.
fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b",._+:@%/=-".contains(&b));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Create `dir` and its parents; the ones we create are private to us.
fn make_dir(guest: &str, dir: &Path) -> Result<(), GuestError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| GuestError::io(guest, dir, e))
}

/// Remove what a running guest leaves in the run dir. The lock file stays: removing a file
/// others may be about to flock would let two processes lock different inodes.
fn remove_leftovers(paths: &GuestPaths) -> Result<(), GuestError> {
    let rm = |p: &Path| match std::fs::remove_file(p) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(GuestError::io(&paths.name, p, e))
        }
        _ => Ok(()),
    };
    // Through a planted symlink in place of the guest's dir, the socket path would name a
    // file elsewhere: leave that alone (starting refuses the link).
    let dir_is_link =
        std::fs::symlink_metadata(&paths.guest_run_dir).is_ok_and(|m| m.file_type().is_symlink());
    if !dir_is_link {
        rm(&paths.monitor)?;
    }
    rm(&paths.status)?;
    if dir_is_link {
        return Ok(());
    }
    match std::fs::remove_dir(&paths.guest_run_dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(GuestError::io(&paths.name, &paths.guest_run_dir, e))
        }
        _ => Ok(()),
    }
}

/// Run `fut` on the guest's runtime. Inside another tokio runtime `block_on` would panic, so
/// there the work moves to a scoped thread (as [`crate::runtime::block_on`] does).
fn run_on<F>(rt: &tokio::runtime::Runtime, fut: F) -> F::Output
where
    F: Future + Send,
    F::Output: Send,
{
    if tokio::runtime::Handle::try_current().is_ok() {
        std::thread::scope(|s| s.spawn(|| rt.block_on(fut)).join())
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
    } else {
        rt.block_on(fut)
    }
}

fn new_runtime(guest: &str) -> Result<tokio::runtime::Runtime, GuestError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| GuestError::Process {
            guest: guest.to_string(),
            msg: format!("cannot start a tokio runtime: {e}"),
        })
}

/// Connect to QEMU's monitor and leave capability negotiation. Retries until `deadline`
/// while `alive()` says QEMU is still there; stops early when it is not.
async fn connect_monitor(
    path: &Path,
    deadline: Instant,
    mut alive: impl FnMut() -> bool + Send,
) -> Result<Monitor, QmpError> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let opts = MonitorOptions {
            command_timeout: left.max(Duration::from_millis(100)),
            ..MonitorOptions::default()
        };
        let err = match Monitor::connect_unix(path, opts).await {
            Ok(mut m) => match m.negotiate().await {
                Ok(()) => return Ok(m),
                Err(e) => e,
            },
            Err(e) => e,
        };
        if !alive() || Instant::now() >= deadline {
            return Err(err);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Send `sig` to `pid` only if it is still the process that started at `start_time`.
/// Checking the start time and then calling kill(2) would leave a window in which QEMU dies
/// and its pid is reused; a pidfd pins the process, so the check made after opening it
/// holds when the signal is sent. Falls back to kill(2) where pidfds are missing (< 5.3).
/// Whether the signal was sent.
fn signal_checked(pid: i32, start_time: u64, sig: Signal) -> std::io::Result<bool> {
    use std::os::fd::{FromRawFd, OwnedFd};
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1; no memory is
    // passed.
    let fd = unsafe { nix::libc::syscall(nix::libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        let e = std::io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(nix::libc::ESRCH) => Ok(false),
            Some(nix::libc::ENOSYS) => {
                if !is_same_live_process(pid, start_time) {
                    return Ok(false);
                }
                kill(Pid::from_raw(pid), sig).map_err(std::io::Error::from)?;
                Ok(true)
            }
            _ => Err(e),
        };
    }
    // SAFETY: the syscall just returned this fd, so it is open and owned by nobody else;
    // OwnedFd closes it.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
    if !is_same_live_process(pid, start_time) {
        return Ok(false);
    }
    // SAFETY: pidfd_send_signal(fd, sig, info = NULL, flags = 0): a NULL siginfo is allowed
    // and means "as kill(2) would"; `fd` is a valid pidfd for the call's duration.
    let r = unsafe {
        nix::libc::syscall(
            nix::libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
            sig as nix::libc::c_int,
            std::ptr::null::<nix::libc::siginfo_t>(),
            0,
        )
    };
    if r < 0 {
        let e = std::io::Error::last_os_error();
        // ESRCH: it exited after our check; that is what we wanted anyway.
        return if e.raw_os_error() == Some(nix::libc::ESRCH) {
            Ok(false)
        } else {
            Err(e)
        };
    }
    Ok(true)
}

/// Bind the monitor socket, write the log header and spawn QEMU. Returns the child and the
/// log offset where QEMU's own output starts.
fn spawn_qemu(paths: &GuestPaths, spec: &LaunchSpec) -> Result<(Child, u64), GuestError> {
    let name = &paths.name;
    make_dir(name, &paths.guest_run_dir)?;
    // A symlink planted there would make us chmod and bind in a directory of someone else's
    // choosing: refuse it rather than follow it.
    let real_dir = std::fs::symlink_metadata(&paths.guest_run_dir)
        .map_err(|e| GuestError::io(name, &paths.guest_run_dir, e))?
        .file_type()
        .is_dir();
    if !real_dir {
        return Err(GuestError::InvalidLaunch {
            guest: name.clone(),
            msg: format!(
                "{} is not a directory (a symbolic link is never followed): remove it",
                paths.guest_run_dir.display()
            ),
        });
    }
    // The dir may predate us with other permissions; it guards the socket between bind
    // and chmod below.
    std::fs::set_permissions(&paths.guest_run_dir, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| GuestError::io(name, &paths.guest_run_dir, e))?;
    let listener =
        UnixListener::bind(&paths.monitor).map_err(|e| GuestError::io(name, &paths.monitor, e))?;
    std::fs::set_permissions(&paths.monitor, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| GuestError::io(name, &paths.monitor, e))?;
    let listen_fd = listener.as_raw_fd();

    let mut argv = spec.argv.clone();
    if !argv.iter().any(|a| a == "-S") {
        argv.push("-S".into());
    }
    let target_fd = match spec.monitor_fd {
        Some(fd) => fd,
        None => {
            argv.extend(monitor_args(listen_fd));
            listen_fd
        }
    };

    let mut log = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(&paths.log)
        .map_err(|e| GuestError::io(name, &paths.log, e))?;
    let cmdline: Vec<String> = spec
        .env
        .iter()
        .map(|(k, v)| format!("{k}={}", shell_quote(v)))
        .chain(argv.iter().map(|a| shell_quote(a)))
        .collect();
    writeln!(
        log,
        "{}: starting up domdriver version: {}, guest: {name}\n{}",
        timestamp(),
        env!("CARGO_PKG_VERSION"),
        cmdline.join(" ")
    )
    .map_err(|e| GuestError::io(name, &paths.log, e))?;
    let log_from = log
        .metadata()
        .map_err(|e| GuestError::io(name, &paths.log, e))?
        .len();
    let out = log
        .try_clone()
        .map_err(|e| GuestError::io(name, &paths.log, e))?;

    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .env_clear()
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(log);
    // SAFETY: the closure runs in the forked child before exec, where only
    // async-signal-safe calls are allowed: it calls setsid, dup2 and fcntl (all
    // async-signal-safe syscalls), allocates nothing, takes no locks, and only reads two
    // integers copied into it. `listen_fd` is open in the child because fork copies our
    // fd table and `listener` is alive until after spawn returns.
    unsafe {
        cmd.pre_exec(move || {
            // A session of its own: QEMU is not in our process group, so a ^C or SIGHUP
            // aimed at vsh's terminal does not reach it, and it lives on after we exit.
            // SAFETY: plain syscall without memory arguments.
            if nix::libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            if target_fd != listen_fd {
                // dup2's new fd has FD_CLOEXEC clear, so QEMU inherits exactly this one.
                // SAFETY: plain syscall on integer fds.
                if nix::libc::dup2(listen_fd, target_fd) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            } else {
                // Every fd Rust opens is close-on-exec; clear that on the monitor only.
                // SAFETY: plain syscall on an integer fd.
                if nix::libc::fcntl(listen_fd, nix::libc::F_SETFD, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let child = cmd.spawn().map_err(|e| GuestError::Start {
        guest: name.clone(),
        msg: format!("cannot execute {}", argv[0]),
        log_tail: e.to_string(),
    })?;
    // QEMU has its own copy; ours must go, or connecting after QEMU died would reach
    // a listener nobody serves.
    drop(listener);
    Ok((child, log_from))
}

impl Guest {
    /// Start QEMU for `spec`: paused with `-S`, monitor on a socket we bind (0600, in the
    /// guest's run dir) and hand over as an inherited fd, output appended to the guest's log
    /// after the command line, in a session of its own so it outlives us; then connect QMP,
    /// write the status file, and `cont` unless `spec.paused`.
    pub fn start(dirs: &Dirs, spec: LaunchSpec) -> Result<Guest, GuestError> {
        let name = spec.name.clone();
        let paths = GuestPaths::new(dirs, &name)?;
        let invalid = |msg: String| GuestError::InvalidLaunch {
            guest: name.clone(),
            msg,
        };
        if spec.argv.is_empty() {
            return Err(invalid("empty argv".into()));
        }
        if let Some(fd) = spec.monitor_fd {
            let needle = format!("fd={fd},");
            if fd <= 2 || !spec.argv.iter().any(|a| a.contains(&needle)) {
                return Err(invalid(format!(
                    "monitor fd {fd} is not > 2 or not used by any argument"
                )));
            }
        } else if spec.argv.iter().any(|a| a.contains("id=charmonitor")) {
            return Err(invalid(
                "argv already has a monitor: set monitor_fd to the fd it names".into(),
            ));
        }
        make_dir(&name, &dirs.run)?;
        make_dir(&name, &dirs.log)?;
        let lock = GuestLock::try_acquire(&dirs.run, &name, "start")?;

        if let Some(old) = GuestStatus::read(&name, &paths.status)?
            && is_guest_process(&old)
        {
            return Err(GuestError::AlreadyRunning {
                guest: name,
                pid: old.pid,
            });
        }
        // A status file whose QEMU is gone, or a socket from an interrupted start.
        remove_leftovers(&paths)?;

        let rt = new_runtime(&name)?;
        let (child, log_from) = match spawn_qemu(&paths, &spec) {
            Ok(x) => x,
            Err(e) => {
                // Best effort: the error at hand matters more than a failed cleanup.
                let _ = remove_leftovers(&paths);
                return Err(e);
            }
        };

        let pid = child.id() as i32;
        let start_time = proc_stat(pid).ok().flatten().map(|s| s.start_time);
        let mut guest = Guest {
            status: GuestStatus {
                name: name.clone(),
                uuid: spec.uuid.clone(),
                pid,
                start_time: start_time.unwrap_or(0),
                monitor: paths.monitor.clone(),
                reason: if spec.paused { "user" } else { "booted" }.into(),
                paused: spec.paused,
                xml: spec.xml.clone(),
                emulator: spec.argv[0].clone(),
            },
            paths,
            child: Some(child),
            monitor: None,
            rt,
            events: Vec::new(),
            ended: None,
            saw_shutdown: false,
            _lock: lock,
        };
        match guest.finish_start(&spec, log_from, start_time.is_some()) {
            Ok(()) => Ok(guest),
            Err(e) => {
                guest.kill_and_wait(Duration::from_secs(3));
                let _ = remove_leftovers(&guest.paths);
                guest.ended = Some(DomainState::new(State::Shutoff, "failed"));
                Err(e)
            }
        }
    }

    fn finish_start(
        &mut self,
        spec: &LaunchSpec,
        log_from: u64,
        have_start_time: bool,
    ) -> Result<(), GuestError> {
        let name = self.paths.name.clone();
        let deadline = Instant::now() + spec.timeout;
        let mut child = self.child.as_mut();
        let mut exited = None;
        let res = {
            let exited = &mut exited;
            let alive = move || match &mut child {
                Some(c) => match c.try_wait() {
                    Ok(None) => true,
                    Ok(Some(st)) => {
                        *exited = Some(st);
                        false
                    }
                    Err(_) => false,
                },
                None => false,
            };
            run_on(
                &self.rt,
                connect_monitor(&self.paths.monitor, deadline, alive),
            )
        };
        let mon = match res {
            Ok(m) => m,
            Err(e) => {
                // Give a dying QEMU a moment to finish writing its last words and exit.
                let until = Instant::now() + Duration::from_secs(2);
                while exited.is_none() && Instant::now() < until {
                    if let Some(c) = self.child.as_mut() {
                        exited = c.try_wait().ok().flatten();
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                let msg = match exited {
                    Some(st) => format!("process exited while connecting to monitor ({st})"),
                    None => format!("QEMU did not answer on its monitor: {e}"),
                };
                return Err(GuestError::Start {
                    guest: name,
                    msg,
                    log_tail: log_tail(&self.paths.log, log_from),
                });
            }
        };
        self.monitor = Some(mon);
        if !have_start_time {
            // Reading /proc right after fork failed: only possible if QEMU already exited.
            let st =
                proc_stat(self.status.pid)
                    .ok()
                    .flatten()
                    .ok_or_else(|| GuestError::Start {
                        guest: name.clone(),
                        msg: "process vanished".into(),
                        log_tail: log_tail(&self.paths.log, log_from),
                    })?;
            self.status.start_time = st.start_time;
        }
        // Written before `cont`, so that a guest that dies from here on is found crashed.
        self.status.write(&self.paths.status)?;
        for c in &spec.init {
            self.qmp(&c.command, Some(c.args.clone()))?;
        }
        if !spec.paused {
            self.qmp("cont", None)?;
        }
        Ok(())
    }

    /// Find the running guest `name` from its status file and connect to its monitor. A status
    /// file whose pid is gone, or belongs to another process (start time differs), means QEMU
    /// died behind our back: its leftovers are removed and the guest is `shut off (crashed)`.
    pub fn attach(dirs: &Dirs, name: &str) -> Result<Attach, GuestError> {
        let paths = GuestPaths::new(dirs, name)?;
        if !dirs.run.is_dir() {
            return Ok(Attach::Inactive(DomainState::new(
                State::Shutoff,
                "unknown",
            )));
        }
        let lock = GuestLock::try_acquire(&dirs.run, name, "attach")?;
        let Some(status) = GuestStatus::read(name, &paths.status)? else {
            return Ok(Attach::Inactive(DomainState::new(
                State::Shutoff,
                "unknown",
            )));
        };
        let alive = move || is_same_live_process(status.pid, status.start_time);
        if !is_guest_process(&status) {
            remove_leftovers(&paths)?;
            return Ok(Attach::Inactive(DomainState::new(
                State::Shutoff,
                "crashed",
            )));
        }
        let rt = new_runtime(name)?;
        let deadline = Instant::now() + Duration::from_secs(10);
        let res = run_on(&rt, connect_monitor(&status.monitor, deadline, alive));
        let monitor = match res {
            Ok(m) => m,
            Err(_) if !alive() => {
                remove_leftovers(&paths)?;
                return Ok(Attach::Inactive(DomainState::new(
                    State::Shutoff,
                    "crashed",
                )));
            }
            Err(e) => {
                return Err(GuestError::Monitor {
                    guest: name.to_string(),
                    source: e,
                });
            }
        };
        Ok(Attach::Running(Box::new(Guest {
            paths,
            status,
            child: None,
            monitor: Some(monitor),
            rt,
            events: Vec::new(),
            ended: None,
            saw_shutdown: false,
            _lock: lock,
        })))
    }

    /// The state of guest `name` without taking its lock or monitor, so that it works while
    /// another process runs an operation on it (`virsh domstate`, `virsh list`): from the
    /// status file and whether its QEMU is still alive. Changes nothing: a dead QEMU's
    /// leftovers stay for [`Guest::attach`] or [`Guest::start`] to remove under the lock.
    /// A guest that QEMU paused by itself (I/O error, ...) shows as running here.
    pub fn peek(dirs: &Dirs, name: &str) -> Result<DomainState, GuestError> {
        let paths = GuestPaths::new(dirs, name)?;
        Ok(match GuestStatus::read(name, &paths.status)? {
            None => DomainState::new(State::Shutoff, "unknown"),
            Some(st) if !is_guest_process(&st) => DomainState::new(State::Shutoff, "crashed"),
            Some(st) if st.paused => DomainState::new(State::Paused, &st.reason),
            Some(st) => DomainState::new(State::Running, &st.reason),
        })
    }

    pub fn name(&self) -> &str {
        &self.paths.name
    }

    pub fn pid(&self) -> i32 {
        self.status.pid
    }

    pub fn paths(&self) -> &GuestPaths {
        &self.paths
    }

    pub fn status(&self) -> &GuestStatus {
        &self.status
    }

    /// Replace the live XML in the status file (e.g. once QEMU told which ptys it opened).
    pub fn set_live_xml(&mut self, xml: String) -> Result<(), GuestError> {
        self.status.xml = xml;
        self.status.write(&self.paths.status)
    }

    /// Whether this process spawned QEMU (and so reaps it).
    pub fn is_child(&self) -> bool {
        self.child.is_some()
    }

    /// Whether QEMU is still there. Reaps it when it is our child and has exited.
    pub fn is_alive(&mut self) -> bool {
        if self.ended.is_some() {
            return false;
        }
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => is_same_live_process(self.status.pid, self.status.start_time),
        }
    }

    fn ensure_active(&mut self) -> Result<(), GuestError> {
        if self.ended.is_some() {
            return Err(GuestError::NotRunning {
                guest: self.paths.name.clone(),
            });
        }
        Ok(())
    }

    /// Run a QMP command. When the connection fails because QEMU is gone, the guest is
    /// marked ended (crashed, unless a SHUTDOWN event was seen).
    pub fn qmp(&mut self, command: &str, args: Option<Value>) -> Result<Value, GuestError> {
        self.ensure_active()?;
        let name = self.paths.name.clone();
        let Some(mon) = self.monitor.as_mut() else {
            return Err(self.lost_monitor(QmpError::Poisoned));
        };
        let res = run_on(&self.rt, mon.execute(command, args));
        self.drain_queued();
        match res {
            Ok(v) => Ok(v),
            Err(e @ QmpError::Command { .. }) => Err(GuestError::Monitor {
                guest: name,
                source: e,
            }),
            Err(e) => Err(self.lost_monitor(e)),
        }
    }

    /// The monitor failed: if QEMU is gone, record how it ended and clean up.
    fn lost_monitor(&mut self, e: QmpError) -> GuestError {
        self.monitor = None;
        // QEMU closes the monitor while exiting: give it a moment to be gone.
        let until = Instant::now() + Duration::from_millis(500);
        while self.is_alive() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
        }
        if !self.is_alive() {
            let reason = if self.saw_shutdown {
                "shutdown"
            } else {
                "crashed"
            };
            self.finish(reason);
            return GuestError::NotRunning {
                guest: self.paths.name.clone(),
            };
        }
        GuestError::Monitor {
            guest: self.paths.name.clone(),
            source: e,
        }
    }

    /// Move events the monitor queued while waiting for replies into our list.
    fn drain_queued(&mut self) {
        let Some(mon) = self.monitor.as_mut() else {
            return;
        };
        // A zero timeout returns queued events without waiting on the socket.
        let mut got = Vec::new();
        while let Ok(Some(ev)) = run_on(&self.rt, mon.next_event(Duration::ZERO)) {
            got.push(ev);
        }
        for ev in got {
            self.note_event(ev);
        }
    }

    fn note_event(&mut self, ev: Event) {
        if ev.name == "SHUTDOWN" {
            self.saw_shutdown = true;
        }
        self.events.push(ev);
    }

    /// Wait up to `timeout` for events; returns whether the monitor is still usable.
    fn pump_events(&mut self, timeout: Duration) -> bool {
        let Some(mon) = self.monitor.as_mut() else {
            std::thread::sleep(timeout);
            return false;
        };
        match run_on(&self.rt, mon.next_event(timeout)) {
            Ok(Some(ev)) => {
                self.note_event(ev);
                self.drain_queued();
                true
            }
            Ok(None) => true,
            Err(_) => {
                // EOF: QEMU is exiting. Callers poll the process itself from here on.
                self.monitor = None;
                false
            }
        }
    }

    /// Events received so far (SHUTDOWN, STOP, RESUME, RESET, ...), oldest first; taking
    /// them empties the list.
    pub fn take_events(&mut self) -> Vec<Event> {
        if self.ended.is_none() {
            self.pump_events(Duration::from_millis(10));
        }
        std::mem::take(&mut self.events)
    }

    /// Wait up to `timeout` for an event named `name`; earlier events stay in the list.
    pub fn wait_event(&mut self, name: &str, timeout: Duration) -> Option<Event> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(i) = self.events.iter().position(|e| e.name == name) {
                return Some(self.events.remove(i));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || self.ended.is_some() || self.monitor.is_none() {
                return None;
            }
            self.pump_events(left.min(Duration::from_millis(200)));
        }
    }

    /// `virsh domstate --reason`: from `query-status`, or how QEMU ended.
    pub fn state(&mut self) -> Result<DomainState, GuestError> {
        if let Some(s) = &self.ended {
            return Ok(s.clone());
        }
        match self.qmp("query-status", None) {
            Ok(v) => {
                let status = v["status"].as_str().unwrap_or("");
                Ok(state_from_qmp(status, &self.status.reason))
            }
            Err(GuestError::NotRunning { .. }) => Ok(self
                .ended
                .clone()
                .unwrap_or_else(|| DomainState::new(State::Shutoff, "unknown"))),
            Err(e) => Err(e),
        }
    }

    fn set_reason(&mut self, paused: bool, reason: &str) -> Result<(), GuestError> {
        self.status.paused = paused;
        self.status.reason = reason.to_string();
        self.status.write(&self.paths.status)
    }

    /// Pause the vCPUs (`virsh suspend`).
    pub fn suspend(&mut self) -> Result<(), GuestError> {
        self.qmp("stop", None)?;
        self.set_reason(true, "user")
    }

    /// Resume the vCPUs (`virsh resume`).
    pub fn resume(&mut self) -> Result<(), GuestError> {
        self.qmp("cont", None)?;
        self.set_reason(false, "unpaused")
    }

    /// Hard reset (`virsh reset`; libvirt's `reboot --mode=...` other than acpi differ).
    pub fn reset(&mut self) -> Result<(), GuestError> {
        self.qmp("system_reset", None).map(|_| ())
    }

    /// Ask the guest to power off by ACPI and wait up to `timeout` for QEMU to exit
    /// (`virsh shutdown` then waiting for `shut off`). With `-no-shutdown` (libvirt always
    /// passes it) QEMU stays after the guest powered off, so once QEMU reported SHUTDOWN it is
    /// terminated, as libvirt does. On timeout the guest keeps running and the error says so.
    pub fn shutdown(&mut self, timeout: Duration) -> Result<DomainState, GuestError> {
        self.qmp("system_powerdown", None)?;
        let deadline = Instant::now() + timeout;
        let mut shutdown_seen_at: Option<Instant> = None;
        let mut terminated = false;
        loop {
            if !self.is_alive() {
                // Read what QEMU said before it went (SHUTDOWN among it): the socket keeps
                // it after the peer closed, up to EOF.
                for _ in 0..20 {
                    if !self.pump_events(Duration::from_millis(50)) {
                        break;
                    }
                }
                return Ok(self.finish("shutdown"));
            }
            if self.saw_shutdown && shutdown_seen_at.is_none() {
                shutdown_seen_at = Some(Instant::now());
            }
            if let Some(t) = shutdown_seen_at
                && !terminated
                // Without -no-shutdown QEMU is exiting already: give it a moment first.
                && t.elapsed() > Duration::from_millis(500)
            {
                self.signal(Signal::SIGTERM);
                terminated = true;
            }
            if Instant::now() >= deadline {
                return Err(GuestError::Timeout {
                    guest: self.paths.name.clone(),
                    what: format!("the guest did not shut down within {timeout:?}"),
                });
            }
            self.pump_events(Duration::from_millis(100));
        }
    }

    /// Kill QEMU (`virsh destroy`): SIGTERM, SIGKILL after `grace`, and wait for it to be
    /// gone (reaping it when it is our child).
    pub fn destroy(&mut self, grace: Duration) -> Result<DomainState, GuestError> {
        self.ensure_active()?;
        self.monitor = None;
        if self.kill_and_wait(grace) {
            Ok(self.finish("destroyed"))
        } else {
            Err(GuestError::Process {
                guest: self.paths.name.clone(),
                msg: format!(
                    "Failed to terminate process {} with SIGKILL: Device or resource busy",
                    self.status.pid
                ),
            })
        }
    }

    /// Send `sig` to QEMU if it is still the process we started.
    fn signal(&mut self, sig: Signal) {
        if self.child.is_some() {
            // Our child's pid cannot be reused until we reap it, which only we do.
            if self.is_alive() {
                let _ = kill(Pid::from_raw(self.status.pid), sig);
            }
        } else {
            let _ = signal_checked(self.status.pid, self.status.start_time, sig);
        }
    }

    /// SIGTERM, wait `grace`, SIGKILL, wait 5 s. Whether QEMU is gone.
    fn kill_and_wait(&mut self, grace: Duration) -> bool {
        let wait = |g: &mut Guest, d: Duration| {
            let until = Instant::now() + d;
            while g.is_alive() {
                if Instant::now() >= until {
                    return false;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            true
        };
        self.signal(Signal::SIGTERM);
        let gone = wait(self, grace) || {
            self.signal(Signal::SIGKILL);
            wait(self, Duration::from_secs(5))
        };
        if gone {
            self.await_reaping();
        }
        gone
    }

    /// QEMU spawned by this process through an earlier handle is reaped by that handle's
    /// waiter thread (see `Drop`), a moment after it died. Until then its pid is a zombie of
    /// ours that still shows in /proc: wait (briefly) for the thread, so that a destroyed
    /// guest's pid is really gone when destroy returns.
    fn await_reaping(&self) {
        let (pid, start) = (self.status.pid, self.status.start_time);
        let until = Instant::now() + Duration::from_secs(2);
        while Instant::now() < until {
            match proc_stat(pid) {
                Ok(Some(s))
                    if s.start_time == start
                        && s.state == 'Z'
                        && s.ppid == nix::unistd::getpid().as_raw() =>
                {
                    std::thread::sleep(Duration::from_millis(5));
                }
                _ => return,
            }
        }
    }

    /// QEMU is gone: record why, note it in the log, remove the runtime files.
    fn finish(&mut self, reason: &str) -> DomainState {
        self.monitor = None;
        let state = DomainState::new(State::Shutoff, reason);
        self.ended = Some(state.clone());
        if let Ok(mut log) = OpenOptions::new()
            .append(true)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(&self.paths.log)
        {
            let _ = writeln!(log, "{}: shutting down, reason={reason}", timestamp());
        }
        // Best effort: the guest is gone either way, and a later attach cleans up again.
        let _ = remove_leftovers(&self.paths);
        state
    }
}

impl Drop for Guest {
    fn drop(&mut self) {
        // QEMU is meant to outlive this handle, but while this process lives it is QEMU's
        // parent: a thread waits for it so that it does not linger as a zombie. The thread
        // does not keep the process from exiting.
        if let Some(mut c) = self.child.take()
            && matches!(c.try_wait(), Ok(None))
        {
            std::thread::spawn(move || {
                let _ = c.wait();
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_file_names() {
        let d = Dirs::under(Path::new("/r"));
        assert!(GuestPaths::new(&d, "../x").is_err());
        assert!(GuestPaths::new(&d, ".x").is_err());
        assert!(GuestPaths::new(&d, "").is_err());
        let p = GuestPaths::new(&d, "vm1").unwrap();
        assert_eq!(p.monitor, Path::new("/r/run/qemu/domain-vm1/monitor.sock"));
        assert_eq!(p.status, Path::new("/r/run/qemu/vm1.json"));
    }

    #[test]
    fn quoting_and_states() {
        assert_eq!(shell_quote("-name"), "-name");
        assert_eq!(shell_quote("a b'c"), r"'a b'\''c'");
        assert_eq!(
            state_from_qmp("paused", "booted").to_string(),
            "paused (user)"
        );
        assert_eq!(
            state_from_qmp("running", "booted").to_string(),
            "running (booted)"
        );
        let t = timestamp();
        assert_eq!(t.len(), "2026-11-21 23:07:08.123+0000".len(), "{t}");
    }

    #[test]
    fn signals_only_the_process_that_started_then() {
        let mut c = Command::new("sleep").arg("30").spawn().unwrap();
        let pid = c.id() as i32;
        let st = proc_stat(pid).unwrap().unwrap().start_time;
        assert!(!signal_checked(pid, st + 1, Signal::SIGKILL).unwrap());
        assert!(matches!(c.try_wait(), Ok(None)));
        assert!(signal_checked(pid, st, Signal::SIGKILL).unwrap());
        assert!(c.wait().is_ok());
        assert!(!signal_checked(pid, st, Signal::SIGKILL).unwrap());
    }

    #[test]
    fn lock_excludes_second_holder() {
        let d = tempfile::tempdir().unwrap();
        let a = GuestLock::try_acquire(d.path(), "g", "test").unwrap();
        let e = GuestLock::try_acquire(d.path(), "g", "other").unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("cannot acquire state change lock"), "{msg}");
        assert!(
            msg.contains("'g'") && msg.contains("operation=test"),
            "{msg}"
        );
        drop(a);
        GuestLock::try_acquire(d.path(), "g", "again").unwrap();
    }
}
