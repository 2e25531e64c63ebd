//! The per-guest state change lock.
//!
//! libvirtd serialises jobs on a domain with an in-memory lock; without a daemon, two `vsh`
//! processes can act on one guest at once, so the lock is an `flock` on a file in the run dir.
//! `flock` is released by the kernel when the holder dies, so a crashed `vsh` never leaves a
//! guest locked. The holder writes its pid and operation into the file, only so that the loser
//! can say who holds it.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use super::process::GuestError;

/// A held state change lock; released on drop.
#[derive(Debug)]
pub struct GuestLock {
    name: String,
    path: PathBuf,
    _file: Flock<File>,
}

impl GuestLock {
    /// The lock file of guest `name` in `run_dir`.
    pub fn path(run_dir: &Path, name: &str) -> PathBuf {
        run_dir.join(format!("{name}.lock"))
    }

    /// Take the lock of guest `name` without waiting; `GuestError::Locked` when another
    /// process (or another handle in this one) holds it. `operation` is recorded for the
    /// error message a loser prints.
    pub fn try_acquire(run_dir: &Path, name: &str, operation: &str) -> Result<Self, GuestError> {
        Self::acquire(run_dir, name, operation, Duration::ZERO)
    }

    /// Take the lock, retrying for up to `wait` (libvirt waits 30 s for a job).
    pub fn acquire(
        run_dir: &Path,
        name: &str,
        operation: &str,
        wait: Duration,
    ) -> Result<Self, GuestError> {
        let path = Self::path(run_dir, name);
        let io = |e| GuestError::io(name, &path, e);
        // O_NOFOLLOW: never create or truncate a file through a planted symlink. Rust opens
        // with O_CLOEXEC, so QEMU, spawned while we hold this, does not inherit the lock.
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(&path)
            .map_err(io)?;
        let deadline = Instant::now() + wait;
        let mut locked = loop {
            match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(l) => break l,
                Err((f, Errno::EWOULDBLOCK)) => {
                    if Instant::now() >= deadline {
                        let mut holder = String::new();
                        let mut f = f;
                        // Best effort: the message is still clear without the holder.
                        let _ = f.read_to_string(&mut holder);
                        return Err(GuestError::Locked {
                            guest: name.to_string(),
                            holder: holder.trim().to_string(),
                        });
                    }
                    file = f;
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err((_, e)) => return Err(io(e.into())),
            }
        };
        let pid = std::process::id();
        locked.set_len(0).map_err(io)?;
        locked.rewind().map_err(io)?;
        write!(locked, "pid={pid} operation={operation}").map_err(io)?;
        Ok(GuestLock {
            name: name.to_string(),
            path,
            _file: locked,
        })
    }

    pub fn guest(&self) -> &str {
        &self.name
    }

    pub fn lock_path(&self) -> &Path {
        &self.path
    }

    /// The locked file's fd, lent to a guest's monitor while it starts.
    pub(crate) fn raw_fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        self._file.as_raw_fd()
    }
}

impl Drop for GuestLock {
    fn drop(&mut self) {
        // Clear the holder note before the lock goes (dropping the Flock unlocks), so that a
        // later loser does not name a process that is long done.
        let _ = self._file.set_len(0);
    }
}
