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
    let pairs: Vec<(RawFd, RawFd)> = opened
        .0
        .iter()
        .map(|(f, to)| (f.as_raw_fd(), *to))
        .collect();
    install_pairs(cmd, &pairs);
}

/// The most descriptors [`install_pairs`] hands down to one child.
pub(crate) const MAX_PAIRS: usize = 64;

/// Give the child of `cmd` each `(descriptor, number)` of `pairs` under its number (at most
/// [`MAX_PAIRS`]; the rest are ignored). The descriptors are moved out of the way first,
/// above every target number. Must be registered after any close-on-exec sweep of
/// the child's pre-exec hooks: dup2 leaves the new descriptors open across exec. The
/// descriptors must stay open in the parent until the child is spawned.
pub(crate) fn install_pairs(cmd: &mut Command, given: &[(RawFd, RawFd)]) {
    let mut pairs = [(-1 as RawFd, -1 as RawFd); MAX_PAIRS];
    for (slot, p) in pairs.iter_mut().zip(given) {
        *slot = *p;
    }
    let n = given.len().min(MAX_PAIRS);
    // Where the moved copies go: above every target, so that no dup2 below lands on one.
    let floor = pairs[..n].iter().map(|p| p.1 + 1).fold(64, RawFd::max);
    // SAFETY: runs in the forked child before exec; fcntl and dup2 on integers are
    // async-signal-safe and nothing is allocated (the pairs are a copied array).
    unsafe {
        cmd.pre_exec(move || {
            // First out of the way of every target (a source may sit on another's number),
            // then onto the targets; dup2 clears close-on-exec on the new descriptor.
            let mut moved = [-1 as RawFd; MAX_PAIRS];
            for (m, (from, _)) in moved.iter_mut().zip(&pairs).take(n) {
                *m = nix::libc::fcntl(*from, nix::libc::F_DUPFD_CLOEXEC, floor);
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

#[cfg(test)]
mod tests {
    use super::super::{HelperKind, HelperSpec, start_all, stop_all};
    use super::*;
    use std::time::{Duration, Instant};

    const UUID: &str = "3c2b1a09-8d7e-4f6a-9b5c-4d3e2f1a0b9c";

    fn spec(dir: &Path, script: &str, pass_fds: Vec<PassFd>) -> HelperSpec {
        HelperSpec {
            kind: HelperKind::Swtpm,
            device: "tpm0".into(),
            argv: vec!["/bin/sh".into(), "-c".into(), script.into()],
            setup: vec![],
            socket: dir.join("h.sock"),
            log: dir.join("h.log"),
            files: vec![],
            pass_fds,
            setup_fds: vec![],
        }
    }

    fn secret(dir: &Path) -> PassFd {
        PassFd {
            fd: 3,
            source: FdSource::SecretValue {
                dir: dir.to_path_buf(),
                uuid: UUID.into(),
            },
        }
    }

    fn wait_file(p: &Path) -> String {
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            let s = std::fs::read_to_string(p).unwrap_or_default();
            if s.ends_with('\n') || Instant::now() > until {
                return s;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn a_secret_reaches_the_helper_through_a_pipe_only() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        std::fs::write(p.join(format!("{UUID}.base64")), "c2VjcmV0IHZhbHVl").unwrap();
        let out = p.join("out");
        let script = format!(
            "cat <&3 > {o}.tmp; echo >> {o}.tmp; mv {o}.tmp {o}; : > {s}; exec sleep 30",
            o = out.display(),
            s = p.join("h.sock").display()
        );
        let s = spec(p, &script, vec![secret(p)]);
        assert!(!s.argv.join(" ").contains("secret value"));
        start_all(p, &p.join("dom.log"), &[s], Duration::from_secs(10)).unwrap();
        assert_eq!(wait_file(&out), "secret value\n");
        stop_all(p);
    }

    #[test]
    fn a_secret_without_value_fails_the_start() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        let s = spec(p, "exec sleep 30", vec![secret(p)]);
        let e = start_all(p, &p.join("dom.log"), &[s], Duration::from_secs(5)).unwrap_err();
        assert_eq!(
            e,
            format!("Secret not found: secret '{UUID}' does not have a value")
        );
    }

    #[test]
    fn a_listener_is_bound_private_before_the_helper_runs() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        let out = p.join("out");
        let script = format!(
            "readlink /proc/self/fd/3 > {o}.tmp; mv {o}.tmp {o}; exec sleep 30",
            o = out.display()
        );
        let listener = PassFd {
            fd: 3,
            source: FdSource::Listener,
        };
        let s = spec(p, &script, vec![listener]);
        let t0 = Instant::now();
        start_all(p, &p.join("dom.log"), &[s], Duration::from_secs(10)).unwrap();
        // Ready after the settle time, not after a socket appeared.
        assert!(t0.elapsed() >= Duration::from_millis(150));
        let sock = p.join("h.sock");
        let mode = std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(wait_file(&out).starts_with("socket:"));
        // The helper holds it: a client connects.
        std::os::unix::net::UnixStream::connect(&sock).unwrap();
        stop_all(p);
        assert!(!sock.exists());
    }

    #[test]
    fn a_helper_ending_at_once_on_its_listener_fails_the_start() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        let listener = PassFd {
            fd: 3,
            source: FdSource::Listener,
        };
        let s = spec(p, "echo no way >&2; exit 2", vec![listener]);
        let e = start_all(p, &p.join("dom.log"), &[s], Duration::from_secs(5)).unwrap_err();
        assert!(
            e.contains("swtpm for tpm0 failed to start (exit status 2): no way"),
            "{e}"
        );
    }

    #[test]
    fn unusable_descriptors_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        let e = open(&vec![secret(p); 5], &p.join("s")).err().unwrap();
        assert_eq!(e, "at most 4 descriptors can be passed to a helper");
        let nowhere = p.join("no/such/dir/s.sock");
        let e = open(
            &[PassFd {
                fd: 3,
                source: FdSource::Listener,
            }],
            &nowhere,
        )
        .err()
        .unwrap();
        assert!(
            e.starts_with(&format!("Failed to bind socket to '{}'", nowhere.display())),
            "{e}"
        );
    }
}
