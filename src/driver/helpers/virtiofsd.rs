//! virtiofsd per `<filesystem><driver type='virtiofs'/>` (libvirt: qemu_virtiofs.c).
//!
//! The daemon serves the share on a vhost-user socket in the start's private dir (the path
//! xml2argv names, see `xml2argv::helper_sockets`); QEMU connects to it. It is the binary of
//! `<binary path=>`, else the one QEMU's vhost-user descriptors name (libvirt:
//! qemuVhostUserFillDomainFS), else Debian's `/usr/lib/qemu/virtiofsd`.

use std::path::{Path, PathBuf};

use super::fds::{FdSource, PassFd};
use super::{HelperKind, HelperSpec, Where, is_executable};
use crate::domain::DomainDef;
use crate::domain::devices::Filesystem;
use crate::driver::DriverError;

/// Where Debian's QEMU installs its virtiofsd.
pub const DEFAULT_VIRTIOFSD: &str = "/usr/lib/qemu/virtiofsd";

/// Where QEMU's vhost-user descriptors are, in libvirt's order of precedence.
const DESCRIPTOR_DIRS: &[&str] = &["/etc/qemu/vhost-user", "/usr/share/qemu/vhost-user"];

/// The first `fs` daemon of the vhost-user descriptors that exists.
fn described_binary() -> Option<PathBuf> {
    for d in DESCRIPTOR_DIRS {
        let Ok(rd) = std::fs::read_dir(d) else {
            continue;
        };
        let mut files: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
        files.sort();
        for f in files {
            let Some(v) = std::fs::read(&f)
                .ok()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            else {
                continue;
            };
            if v["type"] == "fs"
                && let Some(b) = v["binary"].as_str()
                && is_executable(Path::new(b))
            {
                return Some(PathBuf::from(b));
            }
        }
    }
    None
}

fn is_virtiofs(f: &Filesystem) -> bool {
    f.driver.as_ref().and_then(|d| d.dtype.as_deref()) == Some("virtiofs")
}

/// Whether the share's daemon is the user's, serving `<source socket=>`: nobody here
/// starts or stops it (libvirt: qemuVirtioFSStart and qemuVirtioFSStop skip it).
fn is_external(f: &Filesystem) -> bool {
    f.source.as_ref().is_some_and(|s| s.socket.is_some())
}

/// One virtiofsd per virtiofs share of `def` whose daemon is not started outside.
pub(super) fn plan(def: &DomainDef, at: &Where) -> Result<Vec<HelperSpec>, DriverError> {
    let mut out = Vec::new();
    let ours = |f: &&Filesystem| is_virtiofs(f) && !is_external(f);
    for fs in def.devices.filesystems.iter().filter(ours) {
        let alias = fs.info.alias.clone().unwrap_or_else(|| "fs0".into());
        let bin = match fs.binary.as_ref().and_then(|b| b.path.as_deref()) {
            Some(p) => PathBuf::from(p),
            None => described_binary()
                .or_else(|| Some(PathBuf::from(DEFAULT_VIRTIOFSD)))
                .filter(|p| is_executable(p))
                .ok_or_else(|| {
                    // libvirt: qemuVhostUserFillDomainFS.
                    DriverError::Unsupported("Unable to find a satisfying virtiofsd".into())
                })?,
        };
        if !is_executable(&bin) {
            // libvirt: virExec's report when the daemon cannot be run.
            return Err(DriverError::System {
                msg: format!("cannot execute binary {}", bin.display()),
                err: std::io::Error::from_raw_os_error(nix::libc::ENOENT),
            });
        }
        let socket = crate::xml2argv::helper_sockets::virtiofs_socket(
            &at.private.display().to_string(),
            &alias,
        );
        out.push(HelperSpec {
            kind: HelperKind::Virtiofsd,
            device: alias.clone(),
            argv: command_line(&bin, fs),
            setup: vec![],
            socket: socket.into(),
            log: at.log.join(format!("{}-{alias}-virtiofsd.log", def.name)),
            files: Vec::new(),
            pass_fds: vec![PassFd {
                fd: SOCKET_FD,
                source: FdSource::Listener,
            }],
            setup_fds: Vec::new(),
        });
    }
    Ok(out)
}

/// The descriptor of the listening vhost-user socket the monitor binds for virtiofsd.
const SOCKET_FD: i32 = 3;

/// libvirt: qemuVirtioFSBuildCommandLine: the socket is bound by us and passed as `--fd`,
/// so it exists, private, before the daemon runs.
fn command_line(bin: &Path, fs: &Filesystem) -> Vec<String> {
    let mut o = format!(
        "source={}",
        fs.source
            .as_ref()
            .and_then(|s| s.dir.as_deref())
            .unwrap_or_default()
            .replace(',', ",,")
    );
    let b = fs.binary.as_ref();
    match b.and_then(|b| b.xattr.as_deref()) {
        Some("on") => o.push_str(",xattr"),
        Some("off") => o.push_str(",no_xattr"),
        _ => {}
    }
    if let Some(c) = b.and_then(|b| b.cache_mode.as_deref()) {
        o.push_str(&format!(",cache={c}"));
    }
    if let Some(s) = b.and_then(|b| b.sandbox_mode.as_deref()) {
        o.push_str(&format!(",sandbox={s}"));
    }
    match b.and_then(|b| b.lock_posix.as_deref()) {
        Some("on") => o.push_str(",posix_lock"),
        Some("off") => o.push_str(",no_posix_lock"),
        _ => {}
    }
    match b.and_then(|b| b.lock_flock.as_deref()) {
        Some("on") => o.push_str(",flock"),
        Some("off") => o.push_str(",no_flock"),
        _ => {}
    }
    let mut argv = vec![
        bin.display().to_string(),
        format!("--fd={SOCKET_FD}"),
        "-o".into(),
        o,
    ];
    if let Some(n) = b.and_then(|b| b.thread_pool_size) {
        argv.push(format!("--thread-pool-size={n}"));
    }
    argv
}
