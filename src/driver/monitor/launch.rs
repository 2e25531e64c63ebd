//! Starting a guest's monitor process.
//!
//! How the monitor runs: as a small binary of its own, `domdriver-monitor`, exec'd fresh.
//! Forking the caller without exec would be simplest for library users, but the caller may
//! run threads (a tokio runtime, the test harness): after fork only async-signal-safe calls
//! are allowed until exec, and a monitor is a long-lived tokio program. Re-exec of the
//! caller's own binary works for `vsh` but not for a library user's program. So the monitor
//! is found, in order: `$DOMDRIVER_MONITOR`; next to the current executable (`vsh`'s
//! directory, or for tests and examples the target dir above `deps/`); on `PATH`.
//!
//! The starter spawns it with `setsid` and only the fds it needs (stdin: its configuration,
//! stdout: the start result, stderr: the guest log, fd 3: the guest's lock), every other fd
//! closed, so nothing the caller holds open (a pipe, a terminal) reaches the monitor or
//! QEMU. The monitor forks once more and its first half exits at once, so the starter reaps
//! it and never becomes the guest's parent.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::proto::StartResult;
use super::server::{LOCK_FD, MonitorConfig};

/// The monitor binary's file name.
pub const MONITOR_BIN: &str = "domdriver-monitor";

/// The environment variable naming the monitor binary explicitly.
pub const MONITOR_ENV: &str = "DOMDRIVER_MONITOR";

/// Where the monitor binary is, or a message saying where it was looked for.
pub fn monitor_binary() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os(MONITOR_ENV).filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    let mut looked = Vec::new();
    if let Ok(exe) = std::env::current_exe() {
        let dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut cands = vec![dir.join(MONITOR_BIN)];
        if dir.file_name().is_some_and(|n| n == "deps") {
            cands.extend(dir.parent().map(|p| p.join(MONITOR_BIN)));
        }
        for c in cands {
            if c.is_file() {
                return Ok(c);
            }
            looked.push(c.display().to_string());
        }
    }
    if let Some(path) = std::env::var_os("PATH") {
        for d in std::env::split_paths(&path) {
            let c = d.join(MONITOR_BIN);
            if c.is_file() {
                return Ok(c);
            }
        }
        looked.push("PATH".into());
    }
    Err(format!(
        "cannot find the guest monitor '{MONITOR_BIN}' (looked in {}; set {MONITOR_ENV})",
        looked.join(", ")
    ))
}

/// Spawn the monitor for `cfg`, lend it `lock` (held until the monitor reported), and wait
/// for its start result. `log` receives the monitor's stderr. Each `(descriptor, number)` of
/// `passed` is the monitor's at that number, for QEMU.
pub fn spawn(
    cfg: &MonitorConfig,
    lock: RawFd,
    passed: &[(RawFd, RawFd)],
    log: &Path,
) -> Result<StartResult, String> {
    let bin = monitor_binary()?;
    let data = serde_json::to_vec(cfg).map_err(|e| e.to_string())?;
    let stderr: Stdio = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(log)
        .map(Stdio::from)
        .unwrap_or_else(|_| Stdio::null());
    let mut cmd = Command::new(&bin);
    // Read by nobody: they only tell a reader of `ps` which guest a monitor serves.
    cmd.arg(&cfg.name)
        .arg(&cfg.dirs.run)
        .env_clear()
        .current_dir("/")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(stderr);
    // PATH for the helpers it runs; the job wait for tests of a busy guest's refusals.
    for var in ["PATH", "DOMDRIVER_JOB_WAIT_MS"] {
        if let Some(v) = std::env::var_os(var) {
            cmd.env(var, v);
        }
    }
    // SAFETY: the closure runs in the forked child before exec and only makes
    // async-signal-safe syscalls (setsid, dup2, fcntl, close_range) on integers copied
    // into it; it allocates nothing and takes no lock.
    unsafe {
        cmd.pre_exec(move || {
            // A session of its own: a ^C or SIGHUP aimed at the caller's terminal never
            // reaches the monitor or QEMU.
            if nix::libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            if lock == LOCK_FD {
                if nix::libc::fcntl(lock, nix::libc::F_SETFD, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            } else if nix::libc::dup2(lock, LOCK_FD) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            cloexec_from(LOCK_FD + 1);
            Ok(())
        });
    }
    // After the sweep: only these stay open across exec, besides the lock.
    crate::driver::helpers::fds::install_pairs(&mut cmd, passed);
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot execute {}: {e}", bin.display()))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A monitor that died at once is reported below from its exit.
        let _ = stdin.write_all(&data);
    }
    let mut out = Vec::new();
    if let Some(mut stdout) = child.stdout.take() {
        let _ = stdout.read_to_end(&mut out);
    }
    // The first half exits right after forking; reaping it leaves no zombie of ours.
    let exit = child.wait().map_err(|e| e.to_string())?;
    let line = out.split(|b| *b == b'\n').next().unwrap_or_default();
    serde_json::from_slice::<StartResult>(line).map_err(|_| {
        format!(
            "the guest monitor {} ended without a start result ({exit})",
            bin.display()
        )
    })
}

/// Mark every fd from `first` up close-on-exec, in a forked child (async-signal-safe).
/// Marked rather than closed: std's pipe that reports a failed exec to the parent is among
/// them and must stay open until exec.
fn cloexec_from(first: RawFd) {
    const CLOSE_RANGE_CLOEXEC: nix::libc::c_uint = 1 << 2;
    // SAFETY: close_range takes integers only; before Linux 5.11 it fails and the loop
    // below does the same fd by fd.
    let r = unsafe {
        nix::libc::syscall(
            nix::libc::SYS_close_range,
            first as nix::libc::c_uint,
            nix::libc::c_uint::MAX,
            CLOSE_RANGE_CLOEXEC,
        )
    };
    if r < 0 {
        for fd in first..4096 {
            // SAFETY: fcntl on an fd number that may not be open is harmless (EBADF).
            unsafe { nix::libc::fcntl(fd, nix::libc::F_SETFD, nix::libc::FD_CLOEXEC) };
        }
    }
}

/// Used by QEMU's spawn too: QEMU gets only the fds it needs.
pub(crate) fn cloexec_fds_from(first: RawFd) {
    cloexec_from(first)
}

impl AsRawFd for super::super::lock::GuestLock {
    fn as_raw_fd(&self) -> RawFd {
        self.raw_fd()
    }
}
