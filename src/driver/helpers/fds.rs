//! Descriptors a helper gets at start instead of paths, as libvirt hands them over: a
//! secret's value through a pipe (swtpm's state key, libvirt: qemuTPMSetupEncryption) and a
//! UNIX socket the monitor bound and listens on (virtiofsd's `--fd`, libvirt:
//! qemuVirtioFSOpenChardev). A secret so never lands in a file of the run dir or in an argv,
//! and a socket exists, private, before the helper runs.

use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};

/// What a passed descriptor is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FdSource {
    /// The read end of a pipe holding the value of the secret `uuid` of the secrets store
    /// `dir` (read when the helper starts, so the value is never in the spec).
    SecretValue { dir: PathBuf, uuid: String },
    /// A UNIX socket bound at the helper's socket path and listening.
    Listener,
}

/// One descriptor for a helper: `source` becomes the child's `fd`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PassFd {
    pub fd: RawFd,
    pub source: FdSource,
}

/// At most this many descriptors per helper (the child moves them without allocating).
const MAX: usize = 4;

/// The descriptors of one child, open in this process until it has been spawned.
pub(super) struct Opened(Vec<(OwnedFd, RawFd)>);

/// Whether `list` has the helper's socket bound here.
pub(super) fn has_listener(list: &[PassFd]) -> bool {
    list.iter().any(|p| p.source == FdSource::Listener)
}

/// Open the descriptors `list` asks for; `socket` is where a listener binds (0600).
pub(super) fn open(list: &[PassFd], socket: &Path) -> Result<Opened, String> {
    if list.len() > MAX {
        return Err(format!(
            "at most {MAX} descriptors can be passed to a helper"
        ));
    }
    let mut out = Vec::new();
    for p in list {
        let fd = match &p.source {
            FdSource::SecretValue { dir, uuid } => secret_pipe(dir, uuid)?,
            FdSource::Listener => listener(socket)?,
        };
        out.push((fd, p.fd));
    }
    Ok(Opened(out))
}

fn secret_pipe(dir: &Path, uuid: &str) -> Result<OwnedFd, String> {
    let value = crate::driver::secret::read_value(dir, uuid)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("Secret not found: secret '{uuid}' does not have a value"))?;
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| format!("cannot create pipe: {e}"))?;
    // A passphrase is far below a pipe's buffer: the write cannot block.
    std::fs::File::from(w)
        .write_all(&value)
        .map_err(|e| format!("cannot write secret to pipe: {e}"))?;
    Ok(r)
}

fn listener(socket: &Path) -> Result<OwnedFd, String> {
    let _ = std::fs::remove_file(socket);
    // Bound under a private umask-independent mode: the dir is ours (0700), the socket
    // 0600 right after, before any client can be told about it.
    let l = std::os::unix::net::UnixListener::bind(socket)
        .map_err(|e| format!("Failed to bind socket to '{}': {e}", socket.display()))?;
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("cannot set mode of '{}': {e}", socket.display()))?;
    Ok(OwnedFd::from(l))
}

/// Give the child of `cmd` each descriptor of `opened` under its number. Runs after
/// `command`'s close-on-exec sweep, so only these stay open across exec.
pub(super) fn install(cmd: &mut Command, opened: &Opened) {
    let mut pairs = [(-1 as RawFd, -1 as RawFd); MAX];
    for (slot, (fd, to)) in pairs.iter_mut().zip(&opened.0) {
        *slot = (fd.as_raw_fd(), *to);
    }
    let n = opened.0.len();
    // SAFETY: runs in the forked child before exec; fcntl and dup2 on integers are
    // async-signal-safe and nothing is allocated (the pairs are a copied array).
    unsafe {
        cmd.pre_exec(move || {
            // First out of the way of every target (a source may sit on another's number),
            // then onto the targets; dup2 clears close-on-exec on the new descriptor.
            let mut moved = [-1 as RawFd; MAX];
            for (m, (from, _)) in moved.iter_mut().zip(&pairs).take(n) {
                *m = nix::libc::fcntl(*from, nix::libc::F_DUPFD_CLOEXEC, 64);
                if *m < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            for (m, (_, to)) in moved.iter().zip(&pairs).take(n) {
                if nix::libc::dup2(*m, *to) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
}
