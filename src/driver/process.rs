//! Running guests: starting QEMU, finding it again from another process, and acting on it.
//!
//! There is no daemon, so a guest's QEMU must outlive the `vsh` process that started it. Each
//! running guest has a monitor process of its own ([`super::monitor`]), QEMU's parent and the
//! only client of its QMP socket; a [`Guest`] is a connection to that monitor. Everything
//! needed to find a guest again is in its status file (see [`super::status`]), which the
//! monitor keeps current.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::lock::GuestLock;
use super::monitor::MonitorClient;
use super::monitor::events::{EventKind, Lifecycle};
use super::monitor::launch;
use super::monitor::proto::{ErrorCode, PowerModes, Push, Reply, Request, StartResult, StopReason};
use super::monitor::server::{Mode, MonitorConfig};
use super::status::{GuestStatus, is_guest_process, is_same_live_process};
use super::{Dirs, config};
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
    /// The host refused what the start needs (a tap, a bridge), in libvirt's words.
    #[error("{msg}")]
    HostRefused { guest: String, msg: String },
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
    /// The monitor refused with libvirt's code and message (see [`ErrorCode::message`]).
    #[error("{}", code.message(desc))]
    Refused {
        guest: String,
        code: ErrorCode,
        desc: String,
    },
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
    /// `RUN/domain-NAME/monitor.sock`: QEMU's QMP socket, which only the monitor uses.
    pub monitor: PathBuf,
    /// `RUN/domain-NAME/control.sock`: the guest monitor's socket.
    pub control: PathBuf,
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
            control: guest_run_dir.join("control.sock"),
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
#[derive(Clone, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Serialize, Deserialize)]
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
    /// Load the guest's state from a save image before the vCPUs run (`virsh restore`); the
    /// argv then holds `-incoming defer`.
    #[serde(default)]
    pub incoming: Option<Incoming>,
    /// Started, in order, before QEMU; stopped after it (see [`super::helpers`]).
    #[serde(default)]
    pub helpers: Vec<super::helpers::HelperSpec>,
    /// Made right before QEMU and handed to it at their fd numbers (see [`super::tap`]).
    #[serde(default)]
    pub taps: Vec<super::tap::TapSpec>,
    /// Descriptors the starter opened (vDPA devices, fd groups, see [`super::fdpass`]): the
    /// monitor inherits each at the number QEMU gets it at.
    #[serde(default)]
    pub passed_fds: Vec<RawFd>,
}

/// Where a restored guest's migration stream is: in the file `path`, from byte `offset`.
/// `ignore_shared`: the stream was saved with QEMU's `x-ignore-shared` capability, so it
/// leaves out the RAM the guest had in a shared file; the restored guest maps that file
/// itself (a fleet clone) and loads device state only.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Incoming {
    pub path: PathBuf,
    pub offset: u64,
    #[serde(default)]
    pub ignore_shared: bool,
    /// Bytes per second the stream goes to QEMU at, through a pipe; none (the file itself)
    /// unless [`RESTORE_BANDWIDTH_ENV`] asks, for tests that look at a restore midway.
    #[serde(default)]
    pub bandwidth: Option<u64>,
    /// `path` is a unix socket to listen on for a live migration's stream (`virsh
    /// migrate` to this connection) rather than a save image; the guest then starts as
    /// `migrated`.
    #[serde(default)]
    pub listen: bool,
    /// The incoming migration may switch to post-copy (QEMU's `postcopy-ram`, which both
    /// sides must set).
    #[serde(default)]
    pub postcopy: bool,
}

/// The environment variable that slows a restore's stream down to that many bytes per
/// second (QEMU has no speed limit on the incoming side); for tests only.
pub const RESTORE_BANDWIDTH_ENV: &str = "DOMDRIVER_RESTORE_BANDWIDTH";

impl Incoming {
    /// Load the stream at `offset` of `path`.
    pub fn new(path: PathBuf, offset: u64, ignore_shared: bool) -> Incoming {
        let bandwidth = std::env::var(RESTORE_BANDWIDTH_ENV)
            .ok()
            .and_then(|s| s.parse().ok())
            .filter(|b| *b > 0);
        Incoming {
            path,
            offset,
            ignore_shared,
            bandwidth,
            listen: false,
            postcopy: false,
        }
    }
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
            incoming: None,
            helpers: Vec::new(),
            taps: Vec::new(),
            passed_fds: Vec::new(),
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
/// it failed is at the end).
pub(crate) fn log_tail(path: &Path, from: u64) -> String {
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
pub(crate) fn timestamp() -> String {
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
pub(crate) fn make_dir(guest: &str, dir: &Path) -> Result<(), GuestError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| GuestError::io(guest, dir, e))
}

/// Remove what a running guest leaves in the run dir. The lock file stays: removing a file
/// others may be about to flock would let two processes lock different inodes.
pub(crate) fn remove_leftovers(paths: &GuestPaths) -> Result<(), GuestError> {
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
        // Helpers go first: their records and sockets are in the guest's dir.
        super::helpers::stop_all(&paths.guest_run_dir);
        rm(&paths.monitor)?;
        rm(&paths.control)?;
        // The unplugs the monitor kept in flight (see `monitor::server::hotplug`).
        rm(&paths.guest_run_dir.join("unplugs.json"))?;
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
/// while `alive()` says QEMU is still there; stops early when it is not.
pub(crate) async fn connect_monitor(
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

/// Bind the monitor socket, write the log header and spawn QEMU. Returns the child and the
/// log offset where QEMU's own output starts.
pub(crate) fn spawn_qemu(
    paths: &GuestPaths,
    spec: &LaunchSpec,
    taps: &[super::tap::Tap],
    passed: &[(RawFd, RawFd)],
) -> Result<(Child, u64), GuestError> {
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
    // async-signal-safe calls are allowed: it calls setsid, dup2, fcntl and close_range
    // (all async-signal-safe syscalls), allocates nothing, takes no locks, and only reads
    // two integers copied into it. `listen_fd` is open in the child because fork copies
    // our fd table and `listener` is alive until after spawn returns.
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
            // Only the monitor socket reaches QEMU: whatever else is open without
            // close-on-exec (the lock lent to the monitor, fds its caller leaked) goes.
            for fd in 3..target_fd {
                // SAFETY: plain syscall; EBADF for an fd that is not open is harmless.
                nix::libc::fcntl(fd, nix::libc::F_SETFD, nix::libc::FD_CLOEXEC);
            }
            launch::cloexec_fds_from(target_fd + 1);
            Ok(())
        });
    }
    // After the sweep above: the taps and vhost-net fds, and the descriptors the starter
    // passed, at the numbers the argv names.
    let mut pairs = super::tap::child_fds(taps);
    pairs.extend_from_slice(passed);
    super::helpers::fds::install_pairs(&mut cmd, &pairs);
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

/// What [`Guest::attach`] finds.
#[derive(Debug)]
pub enum Attach {
    Running(Box<Guest>),
    /// Not running; `reason` is `crashed` when a status file was left by a QEMU that is gone
    /// (its leftovers are removed) and `unknown` when there was none.
    Inactive(DomainState),
}

/// A handle on a running guest: a connection to its monitor process (see
/// [`super::monitor`]), which owns QEMU, its QMP socket and its status file. Handles are
/// cheap; any number may exist at once, the monitor serialises their requests.
pub struct Guest {
    paths: GuestPaths,
    status: GuestStatus,
    client: Option<MonitorClient>,
    /// QMP events received so far, oldest first.
    events: Vec<Event>,
    /// Set once the guest is gone: every later call reports this.
    ended: Option<DomainState>,
}

impl fmt::Debug for Guest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Guest")
            .field("name", &self.paths.name)
            .field("pid", &self.status.pid)
            .field("monitor_pid", &self.status.monitor_pid)
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

/// How long a start waits for another start or adoption of the same guest (libvirt waits
/// 30 s for a job).
const JOB_WAIT: Duration = Duration::from_secs(30);

fn monitor_failed(guest: &str, msg: String) -> GuestError {
    GuestError::Process {
        guest: guest.to_string(),
        msg,
    }
}

fn state_from_names(state: &str, reason: &str) -> DomainState {
    let st = match state {
        "running" => State::Running,
        "paused" => State::Paused,
        "crashed" => State::Crashed,
        "shut off" => State::Shutoff,
        "pmsuspended" => State::PmSuspended,
        _ => State::NoState,
    };
    DomainState::new(st, reason)
}

/// The state a status file records (what the monitor last wrote).
pub(crate) fn state_of_status(st: &GuestStatus) -> DomainState {
    if st.state == "crashed" {
        DomainState::new(State::Crashed, &st.reason)
    } else if st.state == "pmsuspended" {
        DomainState::new(State::PmSuspended, &st.reason)
    } else if st.paused {
        DomainState::new(State::Paused, &st.reason)
    } else {
        DomainState::new(State::Running, &st.reason)
    }
}

/// Whether the monitor the status file names is alive.
pub(crate) fn monitor_alive(st: &GuestStatus) -> bool {
    st.monitor_pid > 0 && is_same_live_process(st.monitor_pid, st.monitor_start_time)
}

impl Guest {
    /// Start QEMU for `spec` under a new monitor process: the monitor spawns it paused with
    /// `-S`, its QMP socket bound by the monitor (0600, in the guest's run dir) and handed
    /// over as an inherited fd, output appended to the guest's log after the command line;
    /// then connects QMP, writes the status file, runs the init commands and `cont` unless
    /// `spec.paused`. Returns once the guest runs, or with QEMU's error.
    pub fn start(dirs: &Dirs, spec: LaunchSpec) -> Result<Guest, GuestError> {
        Self::start_passing(dirs, spec, &[])
    }

    /// [`Guest::start`] handing QEMU descriptors open here: each `(descriptor, number)` of
    /// `passed` is QEMU's at that number (the spec's `passed_fds` lists the numbers).
    pub fn start_passing(
        dirs: &Dirs,
        spec: LaunchSpec,
        passed: &[(RawFd, RawFd)],
    ) -> Result<Guest, GuestError> {
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
        // A second start of the same guest waits here for the first, then finds it running
        // and gets libvirt's error.
        let lock = GuestLock::acquire(&dirs.run, &name, "start", JOB_WAIT)?;
        if let Some(old) = GuestStatus::read(&name, &paths.status)?
            && is_guest_process(&old)
        {
            return Err(GuestError::AlreadyRunning {
                guest: name,
                pid: old.pid,
            });
        }
        // A status file whose QEMU is gone, or sockets from an interrupted start.
        remove_leftovers(&paths)?;
        let cfg = MonitorConfig {
            name: name.clone(),
            dirs: dirs.into(),
            mode: Mode::Start(Box::new(spec)),
        };
        // The lock is held until the monitor reported (it holds a copy meanwhile, so a
        // starter killed midway cannot let a second start in before the guest is tracked).
        match Self::run_monitor(&paths, &cfg, lock, passed)? {
            Attach::Running(g) => Ok(*g),
            // Only an adopting monitor reports an end.
            Attach::Inactive(s) => Err(GuestError::Start {
                guest: name,
                msg: format!("the guest ended right after it started: {s}"),
                log_tail: log_tail(&paths.log, 0),
            }),
        }
    }

    /// Spawn a monitor for `cfg` and connect to it once it reported ready; an adopting
    /// monitor may report instead that the guest's lifecycle action ended it.
    fn run_monitor(
        paths: &GuestPaths,
        cfg: &MonitorConfig,
        lock: GuestLock,
        passed: &[(RawFd, RawFd)],
    ) -> Result<Attach, GuestError> {
        let name = &paths.name;
        let res = launch::spawn(cfg, lock.raw_fd(), passed, &paths.log)
            .map_err(|msg| monitor_failed(name, msg))?;
        match res {
            StartResult::Ready { .. } => {}
            StartResult::Ended { state, reason } => {
                return Ok(Attach::Inactive(state_from_names(&state, &reason)));
            }
            StartResult::Aborted { desc } => {
                return Err(GuestError::Refused {
                    guest: name.clone(),
                    code: ErrorCode::OperationAborted,
                    desc,
                });
            }
            StartResult::Refused { msg } => {
                return Err(GuestError::HostRefused {
                    guest: name.clone(),
                    msg,
                });
            }
            StartResult::Failed { msg, log_tail } => {
                return Err(GuestError::Start {
                    guest: name.clone(),
                    msg,
                    log_tail: if log_tail.is_empty() {
                        "(see the guest log)".into()
                    } else {
                        log_tail
                    },
                });
            }
        }
        let status = GuestStatus::read(name, &paths.status)?.ok_or_else(|| GuestError::Start {
            guest: name.clone(),
            msg: "the guest ended right after it started".into(),
            log_tail: log_tail(&paths.log, 0),
        })?;
        let client = MonitorClient::connect(&paths.control)
            .map_err(|e| monitor_failed(name, format!("{}: {e}", paths.control.display())))?;
        let mut g = Guest {
            paths: paths.clone(),
            status,
            client: Some(client),
            events: Vec::new(),
            ended: None,
        };
        drop(lock);
        g.subscribe()?;
        Ok(Attach::Running(Box::new(g)))
    }

    fn subscribe(&mut self) -> Result<(), GuestError> {
        self.call(&Request::Subscribe { since_ms: None })
            .map(|_| ())
    }

    /// Find the running guest `name` and connect to its monitor. A guest whose monitor died
    /// (killed) while QEMU runs on is adopted by a new monitor; it is `Inactive` when what
    /// it did meanwhile ended it (powered off with `on_poweroff` destroy, panicked with
    /// `on_crash` destroy): the new monitor sees that through first. A status file whose QEMU is
    /// gone with no monitor left means QEMU died behind our back: its leftovers are removed
    /// and the guest is `shut off (crashed)`.
    pub fn attach(dirs: &Dirs, name: &str) -> Result<Attach, GuestError> {
        let paths = GuestPaths::new(dirs, name)?;
        let inactive = |r: &str| Ok(Attach::Inactive(DomainState::new(State::Shutoff, r)));
        if !dirs.run.is_dir() {
            return inactive("unknown");
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let Some(status) = GuestStatus::read(name, &paths.status)? else {
                return inactive("unknown");
            };
            if !is_guest_process(&status) {
                if monitor_alive(&status) && Instant::now() < deadline {
                    // QEMU is gone and its monitor is recording how: let it finish.
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                }
                let _lock = GuestLock::acquire(&dirs.run, name, "attach", JOB_WAIT)?;
                if GuestStatus::read(name, &paths.status)?.as_ref() == Some(&status) {
                    remove_leftovers(&paths)?;
                    return inactive("crashed");
                }
                continue;
            }
            match MonitorClient::connect(&paths.control) {
                Ok(client) => {
                    let mut g = Guest {
                        paths,
                        status,
                        client: Some(client),
                        events: Vec::new(),
                        ended: None,
                    };
                    g.subscribe()?;
                    return Ok(Attach::Running(Box::new(g)));
                }
                Err(_) if monitor_alive(&status) && Instant::now() < deadline => {
                    // Starting, or about to accept.
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) if monitor_alive(&status) => {
                    return Err(monitor_failed(
                        name,
                        format!("{}: {e}", paths.control.display()),
                    ));
                }
                Err(_) => {
                    // Crash-only: the monitor died, QEMU runs on; a new monitor takes over.
                    let lock = GuestLock::acquire(&dirs.run, name, "adopt", JOB_WAIT)?;
                    let again = GuestStatus::read(name, &paths.status)?;
                    if again.as_ref() != Some(&status) {
                        continue;
                    }
                    let cfg = MonitorConfig {
                        name: name.to_string(),
                        dirs: dirs.into(),
                        mode: Mode::Adopt,
                    };
                    return Self::run_monitor(&paths, &cfg, lock, &[]);
                }
            }
        }
    }

    /// The state of guest `name` from its status file, which its monitor keeps current,
    /// without talking to anyone while the monitor lives (`virsh domstate`, `virsh list`).
    /// A guest whose monitor died is adopted first (see [`Guest::attach`]): the status
    /// file says what the guest did when someone last watched, the new monitor what it
    /// does now (a guest that powered off unwatched gets its `on_poweroff`).
    pub fn peek(dirs: &Dirs, name: &str) -> Result<DomainState, GuestError> {
        let paths = GuestPaths::new(dirs, name)?;
        Ok(match GuestStatus::read(name, &paths.status)? {
            None => DomainState::new(State::Shutoff, "unknown"),
            Some(st) if !is_guest_process(&st) => DomainState::new(State::Shutoff, "crashed"),
            Some(st) if !monitor_alive(&st) => match Self::attach(dirs, name)? {
                Attach::Running(g) => state_of_status(g.status()),
                Attach::Inactive(s) => s,
            },
            Some(st) => state_of_status(&st),
        })
    }

    pub fn name(&self) -> &str {
        &self.paths.name
    }

    /// QEMU's pid.
    pub fn pid(&self) -> i32 {
        self.status.pid
    }

    /// The pid of the guest's monitor process.
    pub fn monitor_pid(&self) -> i32 {
        self.client
            .as_ref()
            .map_or(self.status.monitor_pid, |c| c.monitor_pid())
    }

    pub fn paths(&self) -> &GuestPaths {
        &self.paths
    }

    pub fn status(&self) -> &GuestStatus {
        &self.status
    }

    /// Replace the live XML in the status file (the monitor writes it).
    pub fn set_live_xml(&mut self, xml: String) -> Result<(), GuestError> {
        self.call(&Request::SetXml { xml: xml.clone() })?;
        self.status.xml = xml;
        Ok(())
    }

    /// Whether QEMU is still there.
    pub fn is_alive(&mut self) -> bool {
        self.ended.is_none() && is_same_live_process(self.status.pid, self.status.start_time)
    }

    fn ensure_active(&self) -> Result<(), GuestError> {
        if self.ended.is_some() {
            return Err(GuestError::NotRunning {
                guest: self.paths.name.clone(),
            });
        }
        Ok(())
    }

    /// The guest is gone: how it ended, as its monitor said or the files say.
    fn mark_ended(&mut self, state: Option<DomainState>) -> DomainState {
        let state = state.unwrap_or_else(|| {
            let note = config::read_shutoff_reason(&self.paths.run_dir, &self.paths.name)
                .ok()
                .flatten();
            DomainState::new(State::Shutoff, note.as_deref().unwrap_or("crashed"))
        });
        self.client = None;
        self.ended = Some(state.clone());
        state
    }

    /// Move pushes the client read into our lists; a Stopped event ends the guest.
    fn absorb(&mut self, p: Push) {
        match p {
            Push::Qmp(e) => self.events.push(e.into()),
            Push::Domain(ev) => {
                if ev.is_stop()
                    && let EventKind::Lifecycle { event } = ev.kind
                {
                    let reason = match event {
                        Lifecycle::StoppedShutdown => "shutdown",
                        Lifecycle::StoppedDestroyed => "destroyed",
                        Lifecycle::StoppedFailed => "failed",
                        _ => "crashed",
                    };
                    self.ended = Some(DomainState::new(State::Shutoff, reason));
                }
            }
        }
    }

    fn drain_client(&mut self) {
        let pushes = self
            .client
            .as_mut()
            .map(MonitorClient::take_pushes)
            .unwrap_or_default();
        for p in pushes {
            self.absorb(p);
        }
    }

    /// One request to the monitor. A monitor that went away with QEMU means the guest
    /// ended; one that went away alone is adopted again by the next [`Guest::attach`].
    pub(crate) fn call(&mut self, req: &Request) -> Result<Reply, GuestError> {
        self.ensure_active()?;
        let name = self.paths.name.clone();
        let Some(c) = self.client.as_mut() else {
            return Err(GuestError::NotRunning { guest: name });
        };
        let r = c.call(req);
        self.drain_client();
        match r {
            Ok(Reply::Err(f)) if f.not_running => {
                if self.ended.is_none() && !self.wait_gone(Duration::from_secs(2)) {
                    return Err(monitor_failed(&name, f.desc));
                }
                self.mark_ended(self.ended.clone());
                Err(GuestError::NotRunning { guest: name })
            }
            Ok(Reply::Refused { code, desc }) => Err(GuestError::Refused {
                guest: name,
                code,
                desc,
            }),
            Ok(Reply::Err(f)) if f.class.is_none() => Err(monitor_failed(&name, f.desc)),
            Ok(Reply::Err(f)) => Err(GuestError::Monitor {
                guest: name,
                source: QmpError::Command {
                    command: match req {
                        Request::Qmp { command, .. } => command.clone(),
                        other => format!("{other:?}"),
                    },
                    class: f.class.unwrap_or_else(|| "GenericError".into()),
                    desc: f.desc,
                },
            }),
            Ok(r) => Ok(r),
            Err(e) => {
                if self.wait_gone(Duration::from_secs(2)) {
                    self.mark_ended(self.ended.clone());
                    return Err(GuestError::NotRunning { guest: name });
                }
                self.client = None;
                Err(monitor_failed(
                    &name,
                    format!("lost the connection to the guest monitor: {e}"),
                ))
            }
        }
    }

    /// Wait up to `d` for QEMU to be gone; whether it is.
    fn wait_gone(&mut self, d: Duration) -> bool {
        let until = Instant::now() + d;
        while is_same_live_process(self.status.pid, self.status.start_time) {
            if Instant::now() >= until {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        true
    }

    /// Pass a QMP command through the monitor (`virsh qemu-monitor-command`).
    pub fn qmp(&mut self, command: &str, args: Option<Value>) -> Result<Value, GuestError> {
        let r = self.call(&Request::Qmp {
            command: command.to_string(),
            args,
        })?;
        match r {
            Reply::Ok { value } => Ok(value),
            other => Err(monitor_failed(
                &self.paths.name,
                format!("unexpected reply {other:?}"),
            )),
        }
    }

    /// Wait up to `timeout` for pushes; whether the connection is still usable.
    fn pump(&mut self, timeout: Duration) -> bool {
        let Some(c) = self.client.as_mut() else {
            std::thread::sleep(timeout);
            return false;
        };
        match c.next_push(Some(timeout)) {
            Ok(Some(p)) => {
                self.absorb(p);
                self.drain_client();
                true
            }
            Ok(None) => true,
            Err(_) => {
                self.client = None;
                false
            }
        }
    }

    /// QMP events received so far (SHUTDOWN, STOP, RESUME, RESET, ...), oldest first; taking
    /// them empties the list.
    pub fn take_events(&mut self) -> Vec<Event> {
        if self.ended.is_none() {
            self.pump(Duration::from_millis(10));
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
            if left.is_zero() || self.client.is_none() {
                return None;
            }
            self.pump(left.min(Duration::from_millis(200)));
        }
    }

    /// `virsh domstate --reason`, as the monitor knows it.
    pub fn state(&mut self) -> Result<DomainState, GuestError> {
        if let Some(s) = &self.ended {
            return Ok(s.clone());
        }
        match self.call(&Request::State) {
            Ok(Reply::State { state, reason }) => Ok(state_from_names(&state, &reason)),
            Ok(other) => Err(monitor_failed(
                &self.paths.name,
                format!("unexpected reply {other:?}"),
            )),
            Err(GuestError::NotRunning { .. }) => Ok(self
                .ended
                .clone()
                .unwrap_or_else(|| DomainState::new(State::Shutoff, "unknown"))),
            Err(e) => Err(e),
        }
    }

    /// Pause the vCPUs (`virsh suspend`).
    pub fn suspend(&mut self) -> Result<(), GuestError> {
        self.call(&Request::Suspend).map(|_| ())
    }

    /// Resume the vCPUs (`virsh resume`).
    pub fn resume(&mut self) -> Result<(), GuestError> {
        self.call(&Request::Resume).map(|_| ())
    }

    /// Hard reset (`virsh reset`).
    pub fn reset(&mut self) -> Result<(), GuestError> {
        self.call(&Request::Reset).map(|_| ())
    }

    /// Press the ACPI power button and return (`virsh shutdown`); the monitor applies
    /// `on_poweroff` once the guest is off.
    pub fn request_shutdown(&mut self) -> Result<(), GuestError> {
        self.request_shutdown_with(PowerModes {
            acpi: true,
            agent: false,
        })
    }

    /// `virsh shutdown --mode`: the power button, the guest agent, or (no mode) the agent
    /// when one is connected, else the button, as libvirt picks.
    pub fn request_shutdown_with(&mut self, modes: PowerModes) -> Result<(), GuestError> {
        self.call(&Request::Shutdown { modes }).map(|_| ())
    }

    /// libvirt's fake reboot (`virsh reboot`): power button now; the monitor resets and
    /// resumes the guest once it powered off. Returns at once.
    pub fn request_reboot(&mut self) -> Result<(), GuestError> {
        self.request_reboot_with(PowerModes {
            acpi: true,
            agent: false,
        })
    }

    /// `virsh reboot --mode`, as [`Guest::request_shutdown_with`] picks the way.
    pub fn request_reboot_with(&mut self, modes: PowerModes) -> Result<(), GuestError> {
        self.call(&Request::Reboot { modes }).map(|_| ())
    }

    /// One command to the QEMU guest agent through the monitor (sync first); its `return`.
    pub fn agent_command(
        &mut self,
        command: &str,
        args: Option<Value>,
        timeout: Duration,
    ) -> Result<Value, GuestError> {
        let r = self.call(&Request::Agent {
            command: command.to_string(),
            args,
            timeout_ms: timeout.as_millis() as u64,
        })?;
        match r {
            Reply::Ok { value } => Ok(value),
            other => Err(monitor_failed(
                &self.paths.name,
                format!("unexpected reply {other:?}"),
            )),
        }
    }

    /// Press the power button and wait up to `timeout` for the guest to be gone. On timeout
    /// the guest keeps running and the error says so.
    pub fn shutdown(&mut self, timeout: Duration) -> Result<DomainState, GuestError> {
        self.request_shutdown()?;
        self.wait_ended(timeout).ok_or_else(|| GuestError::Timeout {
            guest: self.paths.name.clone(),
            what: format!("the guest did not shut down within {timeout:?}"),
        })
    }

    /// Wait up to `timeout` for the guest to end; how it ended.
    pub fn wait_ended(&mut self, timeout: Duration) -> Option<DomainState> {
        let deadline = Instant::now() + timeout;
        while self.ended.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            if !self.pump(left.min(Duration::from_millis(200))) && self.ended.is_none() {
                // The monitor went without a word: it was killed, or the guest ended.
                if self.wait_gone(left.min(Duration::from_secs(2))) {
                    self.mark_ended(None);
                }
                return self.ended.clone();
            }
        }
        // The monitor removes the files right before it exits: see that through.
        if let Some(c) = self.client.as_mut() {
            c.wait_closed(Duration::from_secs(5));
        }
        self.client = None;
        self.ended.clone()
    }

    /// Stream the guest's state onto the end of the save image at `path` and end QEMU as
    /// `shut off (saved)` (`virsh save`); a failed save leaves the guest running as it was.
    pub fn save(&mut self, path: &Path) -> Result<DomainState, GuestError> {
        self.save_with(path, false)
    }

    /// [`Guest::save`]; with `ignore_shared`, the stream leaves out RAM the guest has in a
    /// shared file (QEMU's `x-ignore-shared`): that file then holds the guest's memory.
    pub fn save_with(
        &mut self,
        path: &Path,
        ignore_shared: bool,
    ) -> Result<DomainState, GuestError> {
        let name = self.paths.name.clone();
        self.ensure_active()?;
        let Some(c) = self.client.as_mut() else {
            return Err(GuestError::NotRunning { guest: name });
        };
        let r = c.call(&Request::Save {
            path: path.display().to_string(),
            ignore_shared,
        });
        self.drain_client();
        let state = match r {
            Ok(Reply::State { state, reason }) => state_from_names(&state, &reason),
            Ok(Reply::Err(f)) => {
                return Err(GuestError::Process {
                    guest: name,
                    msg: f.desc,
                });
            }
            Ok(Reply::Refused { code, desc }) => {
                return Err(GuestError::Refused {
                    guest: name,
                    code,
                    desc,
                });
            }
            Ok(other) => {
                return Err(monitor_failed(&name, format!("unexpected reply {other:?}")));
            }
            Err(e) => return Err(monitor_failed(&name, e.to_string())),
        };
        if let Some(c) = self.client.as_mut() {
            c.wait_closed(Duration::from_secs(5));
        }
        self.client = None;
        self.ended = Some(state.clone());
        Ok(state)
    }

    /// Kill QEMU (`virsh destroy`): SIGTERM, SIGKILL after `grace`. Returns once QEMU is
    /// reaped and the guest's files are gone.
    pub fn destroy(&mut self, grace: Duration) -> Result<DomainState, GuestError> {
        self.stop(grace, StopReason::Destroyed)
    }

    /// [`Guest::destroy`] for `reason`, which the shut-off state and event name.
    pub fn stop(&mut self, grace: Duration, reason: StopReason) -> Result<DomainState, GuestError> {
        let r = self.call(&Request::Destroy {
            grace_ms: grace.as_millis() as u64,
            reason,
        })?;
        let state = match r {
            Reply::State { state, reason } => state_from_names(&state, &reason),
            other => {
                return Err(monitor_failed(
                    &self.paths.name,
                    format!("unexpected reply {other:?}"),
                ));
            }
        };
        if let Some(c) = self.client.as_mut() {
            c.wait_closed(Duration::from_secs(5));
        }
        self.client = None;
        self.ended = Some(state.clone());
        Ok(state)
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
            state_from_names("paused", "user").to_string(),
            "paused (user)"
        );
        let t = timestamp();
        assert_eq!(t.len(), "2026-11-21 23:07:08.123+0000".len(), "{t}");
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
