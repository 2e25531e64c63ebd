//! Persistent domain configs on disk, and the few small runtime notes the domain layer keeps
//! beside the process layer's files. Every path built from a domain name is built here, and
//! only after [`validate_name`] accepted the name.
//!
//! Layout:
//! - `CONFIG/NAME.xml`: the persistent definition (mode 0600; the dir is created 0700);
//! - `CONFIG/.domains.lock`: serialises define and undefine (see [`ConfigLock`]);
//! - `RUN/NAME.shutoff`: why a persistent domain last stopped (`destroyed`, `shutdown`):
//!   libvirtd keeps that in memory, we have no daemon, so it lives in the run dir, which is
//!   emptied on host reboot just as libvirtd's memory would be;
//! - `RUN/.lastvmid`: the last domain id handed out, so ids grow like libvirtd's.
//!
//! Names starting with '.' are refused, so none of these hidden files can be mistaken for a
//! domain, and temp files (`.define-*`) never show up in listings.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use super::DriverError;

/// Longest name accepted. libvirt writes `NAME.xml.new` first, so a name longer than
/// NAME_MAX - 8 fails there with ENAMETOOLONG; we refuse the same names up front.
pub const MAX_NAME: usize = 255 - ".xml.new".len();

/// Largest config file read back: libvirt's virsh reads at most 10 MiB of XML.
const MAX_CONFIG: u64 = 10 << 20;

/// How long define/undefine wait for another process holding the config lock (libvirt waits
/// 30 s for a job).
const LOCK_WAIT: Duration = Duration::from_secs(30);

/// An I/O error as libvirt words it (strerror, without Rust's " (os error N)").
pub fn strerror(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        // The C library's words, as libvirt's g_strerror gives them (nix's own table words
        // some differently: "Bad file number" for EBADF). std renders strerror_r's text
        // followed by " (os error N)".
        Some(n) => {
            let s = std::io::Error::from_raw_os_error(n).to_string();
            match s.rfind(" (os error ") {
                Some(i) => s[..i].to_string(),
                None => s,
            }
        }
        None => e.to_string(),
    }
}

fn system(msg: String, source: std::io::Error) -> DriverError {
    DriverError::System { msg, err: source }
}

/// Refuse names that cannot safely become file names, before any path is built from them.
/// The messages follow libvirt's (`name %s cannot contain '/'` is what libvirt's parsers say for
/// pools and networks; the '\n' check is the QEMU driver's `virXMLCheckIllegalChars`).
pub fn validate_name(name: &str) -> Result<(), DriverError> {
    let bad = |m: String| Err(DriverError::InvalidName(m));
    if name.is_empty() {
        return bad("XML error: missing domain name information".into());
    }
    if name.contains('/') {
        return bad(format!("XML error: name {name} cannot contain '/'"));
    }
    if name.contains('\n') {
        return bad("invalid char in name: \\n".into());
    }
    if name.contains('\0') {
        return bad("invalid char in name: \\0".into());
    }
    if name.starts_with('.') {
        // Covers "." and "..": both would name a directory rather than a file elsewhere in
        // the run dir, and hidden names are ours (locks, temp files).
        return bad(format!("XML error: name {name} cannot start with '.'"));
    }
    if name.len() > MAX_NAME {
        return bad(format!(
            "XML error: name is {} bytes long, longer than the {MAX_NAME} a file name allows",
            name.len()
        ));
    }
    Ok(())
}

/// `CONFIG/NAME.xml`; the name must have passed [`validate_name`].
pub fn config_path(config_dir: &Path, name: &str) -> Result<PathBuf, DriverError> {
    validate_name(name)?;
    Ok(config_dir.join(format!("{name}.xml")))
}

/// `RUN/NAME.shutoff`.
fn shutoff_path(run_dir: &Path, name: &str) -> Result<PathBuf, DriverError> {
    validate_name(name)?;
    Ok(run_dir.join(format!("{name}.shutoff")))
}

/// Create `dir` and missing parents, private to us (0700).
pub fn make_dir(dir: &Path) -> Result<(), DriverError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| system(format!("cannot create directory '{}'", dir.display()), e))
}

fn sync_dir(dir: &Path) -> Result<(), DriverError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| system(format!("cannot sync directory '{}'", dir.display()), e))
}

/// A temp file that is removed on drop unless it was renamed into place.
struct TempFile {
    path: PathBuf,
    file: File,
    keep: bool,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.keep {
            // Best effort: the error that made us give up matters more.
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Create a new 0600 file in `dir` under a name nobody else uses. Our own rather than the
/// tempfile crate's, whose errors carry their path in a way that hides errno, which libvirt's
/// messages show.
fn temp_in(dir: &Path, prefix: &str) -> Result<TempFile, DriverError> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos();
    for _ in 0..100 {
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!(".{prefix}-{}-{seq}-{nanos}", std::process::id()));
        // O_EXCL (create_new) and O_NOFOLLOW: never write through a planted file or link.
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(&path)
        {
            Ok(file) => {
                return Ok(TempFile {
                    path,
                    file,
                    keep: false,
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(system(
                    format!("cannot create file in '{}'", dir.display()),
                    e,
                ));
            }
        }
    }
    Err(DriverError::Internal(format!(
        "cannot find an unused temp file name in '{}'",
        dir.display()
    )))
}

/// Write `data` to `path` so that a reader sees the old file or the new one, never a part:
/// a temp file in the same directory (0600, O_EXCL), fsync, rename over `path`, fsync of the
/// directory. On any failure the temp file is removed and `path` is untouched.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<(), DriverError> {
    replace(path, data, true, DEFINE)
}

/// The temp file prefix of a write that (re)defines an object, and of one that only changes
/// part of an existing definition (`net-update --config`, `net-metadata --config`): the
/// rename's source name tells event watchers which it was (see
/// [`super::object_events`]), as libvirt sends a `Defined` event for the first only.
const DEFINE: &str = "define";
pub const CHANGE: &str = "change";

/// [`write_atomic`] of a definition changed in part, not redefined (see [`CHANGE`]).
pub fn write_atomic_change(path: &Path, data: &[u8]) -> Result<(), DriverError> {
    replace(path, data, true, CHANGE)
}

/// [`write_atomic`] without the fsyncs, for runtime notes in the run dir: readers still see
/// the old file or the new one, but the run dir does not outlive the host (libvirt keeps it
/// on tmpfs), so making it durable would only cost each start and stop a few disk flushes.
fn replace_runtime(path: &Path, data: &[u8]) -> Result<(), DriverError> {
    replace(path, data, false, DEFINE)
}

fn replace(path: &Path, data: &[u8], durable: bool, prefix: &str) -> Result<(), DriverError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = temp_in(dir, prefix)?;
    let werr = |e| system(format!("cannot write file '{}'", path.display()), e);
    tmp.file.write_all(data).map_err(werr)?;
    if durable {
        tmp.file.sync_all().map_err(werr)?;
    }
    std::fs::rename(&tmp.path, path)
        .map_err(|e| system(format!("cannot rename file to '{}'", path.display()), e))?;
    tmp.keep = true;
    if durable { sync_dir(dir) } else { Ok(()) }
}

/// The `*.xml` files of a metadata dir (snapshots, checkpoints), sorted by name; none when
/// the dir does not exist.
pub fn xml_files(dir: &Path) -> Result<Vec<PathBuf>, DriverError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(system(format!("Failed to open dir '{}'", dir.display()), e)),
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "xml"))
        .collect();
    paths.sort();
    Ok(paths)
}

/// Read a file we wrote, refusing symlinks (O_NOFOLLOW) and absurd sizes. `Ok(None)` when
/// it does not exist.
pub fn read_small(path: &Path) -> Result<Option<String>, DriverError> {
    let f = OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(path);
    let f = match f {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(system(
                format!("Failed to open file '{}'", path.display()),
                e,
            ));
        }
    };
    let mut data = Vec::new();
    f.take(MAX_CONFIG + 1)
        .read_to_end(&mut data)
        .map_err(|e| system(format!("Failed to read file '{}'", path.display()), e))?;
    if data.len() as u64 > MAX_CONFIG {
        return Err(DriverError::Internal(format!(
            "file '{}' is larger than {MAX_CONFIG} bytes",
            path.display()
        )));
    }
    String::from_utf8(data)
        .map(Some)
        .map_err(|_| DriverError::Internal(format!("file '{}' is not UTF-8", path.display())))
}

/// Remove `path`, then make the removal durable. Whether there was a file.
pub fn remove(path: &Path) -> Result<bool, DriverError> {
    let removed = remove_runtime(path)?;
    if removed {
        sync_dir(path.parent().unwrap_or(Path::new(".")))?;
    }
    Ok(removed)
}

/// [`remove`] without making the removal durable (see [`replace_runtime`]).
fn remove_runtime(path: &Path) -> Result<bool, DriverError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(system(
            format!("cannot remove config {}", path.display()),
            e,
        )),
    }
}

/// The names of the configs in `config_dir`: `NAME.xml` regular files whose NAME is valid.
/// A missing dir has none.
pub fn config_names(config_dir: &Path) -> Result<Vec<String>, DriverError> {
    let rd = match std::fs::read_dir(config_dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(system(
                format!("Failed to open dir '{}'", config_dir.display()),
                e,
            ));
        }
    };
    let mut names = Vec::new();
    for ent in rd {
        let ent =
            ent.map_err(|e| system(format!("Failed to read dir '{}'", config_dir.display()), e))?;
        let Some(file) = ent.file_name().to_str().map(str::to_string) else {
            continue;
        };
        let Some(name) = file.strip_suffix(".xml") else {
            continue;
        };
        // Symlinks and directories are not ours: skipping them keeps a planted link from
        // making us read some other file.
        if !ent.file_type().is_ok_and(|t| t.is_file()) || validate_name(name).is_err() {
            continue;
        }
        names.push(name.to_string());
    }
    Ok(names)
}

/// The names that have a status file (`NAME.json`) in the run dir: the candidates for
/// running domains, transient ones included.
pub fn status_names(run_dir: &Path) -> Result<Vec<String>, DriverError> {
    let rd = match std::fs::read_dir(run_dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(system(
                format!("Failed to open dir '{}'", run_dir.display()),
                e,
            ));
        }
    };
    let mut names = Vec::new();
    for ent in rd.flatten() {
        if let Some(name) = ent
            .file_name()
            .to_str()
            .and_then(|f| f.strip_suffix(".json"))
            .filter(|n| validate_name(n).is_ok())
        {
            names.push(name.to_string());
        }
    }
    Ok(names)
}

/// An exclusive `flock` on a file, waiting up to `wait`. Released when dropped, and by the
/// kernel if the holder dies, so a crashed process never leaves it held.
fn flock_file(path: &Path, wait: Duration) -> Result<Flock<File>, DriverError> {
    // O_NOFOLLOW: a planted symlink must not make us create or lock another file. The file
    // is never removed: removing a file others may be about to flock would let two processes
    // lock different inodes.
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| system(format!("cannot open lock file '{}'", path.display()), e))?;
    let deadline = Instant::now() + wait;
    loop {
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(l) => return Ok(l),
            Err((f, Errno::EWOULDBLOCK)) if Instant::now() < deadline => {
                file = f;
                std::thread::sleep(Duration::from_millis(20));
            }
            Err((_, Errno::EWOULDBLOCK)) => {
                return Err(DriverError::Timeout(format!(
                    "cannot acquire lock '{}' within {wait:?}",
                    path.display()
                )));
            }
            Err((_, e)) => {
                return Err(system(
                    format!("cannot lock '{}'", path.display()),
                    e.into(),
                ));
            }
        }
    }
}

/// The lock define and undefine hold while they check for clashes and write. One lock for
/// the whole config dir rather than one per name: uniqueness of UUIDs spans names, so two
/// defines of different names with one UUID must be serialised too.
#[derive(Debug)]
pub struct ConfigLock {
    _file: Flock<File>,
}

impl ConfigLock {
    /// Create the config dir if needed and take its lock.
    pub fn acquire(config_dir: &Path) -> Result<ConfigLock, DriverError> {
        Self::acquire_for(config_dir, LOCK_WAIT)
    }

    pub fn acquire_for(config_dir: &Path, wait: Duration) -> Result<ConfigLock, DriverError> {
        make_dir(config_dir)?;
        Ok(ConfigLock {
            _file: flock_file(&config_dir.join(".domains.lock"), wait)?,
        })
    }
}

/// Why a persistent domain last stopped, if recorded since the host booted.
pub fn read_shutoff_reason(run_dir: &Path, name: &str) -> Result<Option<String>, DriverError> {
    let p = shutoff_path(run_dir, name)?;
    Ok(read_small(&p)?
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty()))
}

pub fn write_shutoff_reason(run_dir: &Path, name: &str, reason: &str) -> Result<(), DriverError> {
    make_dir(run_dir)?;
    replace_runtime(&shutoff_path(run_dir, name)?, reason.as_bytes())
}

pub fn clear_shutoff_reason(run_dir: &Path, name: &str) -> Result<(), DriverError> {
    remove_runtime(&shutoff_path(run_dir, name)?).map(|_| ())
}

/// The next domain id: one more than the last handed out on this host since boot, never 0
/// (libvirt's ids start at 1, and -1 means inactive).
pub fn next_domain_id(run_dir: &Path) -> Result<i32, DriverError> {
    make_dir(run_dir)?;
    let path = run_dir.join(".lastvmid");
    let mut f = flock_file(&path, LOCK_WAIT)?;
    let io = |e| system(format!("cannot update '{}'", path.display()), e);
    let mut text = String::new();
    f.read_to_string(&mut text).map_err(io)?;
    let last: i32 = text.trim().parse().unwrap_or(0);
    // Wrap before overflowing; a negative or garbled counter starts again.
    let next = if (0..i32::MAX - 1).contains(&last) {
        last + 1
    } else {
        1
    };
    f.set_len(0).map_err(io)?;
    f.rewind().map_err(io)?;
    write!(f, "{next}").map_err(io)?;
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_names() {
        for n in ["", "a/b", "../x", ".", "..", ".hidden", "a\nb", "a\0b"] {
            assert!(validate_name(n).is_err(), "{n:?}");
        }
        assert!(validate_name(&"x".repeat(MAX_NAME)).is_ok());
        assert!(validate_name(&"x".repeat(MAX_NAME + 1)).is_err());
        for n in ["vm1", "a b", "foo=1,bar=2", "x.y", "é"] {
            assert!(validate_name(n).is_ok(), "{n:?}");
        }
        assert_eq!(
            validate_name("a/b").unwrap_err().to_string(),
            "XML error: name a/b cannot contain '/'"
        );
    }

    #[test]
    fn ids_grow() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(next_domain_id(d.path()).unwrap(), 1);
        assert_eq!(next_domain_id(d.path()).unwrap(), 2);
        std::fs::write(d.path().join(".lastvmid"), "garbage").unwrap();
        assert_eq!(next_domain_id(d.path()).unwrap(), 1);
    }

    #[test]
    fn lock_times_out_while_held() {
        let d = tempfile::tempdir().unwrap();
        let _a = ConfigLock::acquire(d.path()).unwrap();
        let e = ConfigLock::acquire_for(d.path(), Duration::from_millis(50)).unwrap_err();
        assert!(
            e.to_string().starts_with("Timed out during operation"),
            "{e}"
        );
    }

    #[test]
    fn file_errors_name_the_file_and_leave_nothing_behind() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        let e = write_atomic(&p.join("none/x.xml"), b"x").unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "cannot create file in '{}/none': No such file or directory",
                p.display()
            )
        );
        // Renaming over a non-empty directory fails; the temp file goes.
        std::fs::create_dir_all(p.join("dir.xml/sub")).unwrap();
        let e = write_atomic(&p.join("dir.xml"), b"x").unwrap_err();
        assert!(
            e.to_string()
                .starts_with(&format!("cannot rename file to '{}/dir.xml'", p.display())),
            "{e}"
        );
        let left: Vec<_> = std::fs::read_dir(p)
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(left, ["dir.xml"]);
        let e = remove(&p.join("dir.xml")).unwrap_err();
        assert!(e.to_string().starts_with("cannot remove config"), "{e}");
        assert!(!remove(&p.join("gone.xml")).unwrap());

        std::fs::write(p.join("bin.xml"), [0xff, 0xfe]).unwrap();
        let e = read_small(&p.join("bin.xml")).unwrap_err();
        assert!(e.to_string().ends_with("bin.xml' is not UTF-8"), "{e}");
        let big = std::fs::File::create(p.join("big.xml")).unwrap();
        big.set_len(MAX_CONFIG + 1).unwrap();
        let e = read_small(&p.join("big.xml")).unwrap_err();
        assert!(e.to_string().contains("is larger than"), "{e}");
        assert_eq!(read_small(&p.join("gone.xml")).unwrap(), None);

        // A file where a directory should be.
        std::fs::write(p.join("file"), "x").unwrap();
        let e = config_names(&p.join("file")).unwrap_err();
        assert!(e.to_string().starts_with("Failed to open dir"), "{e}");
        let e = status_names(&p.join("file")).unwrap_err();
        assert!(e.to_string().ends_with("Not a directory"), "{e}");
        let e = ConfigLock::acquire(&p.join("file")).unwrap_err();
        assert!(e.to_string().starts_with("cannot create directory"), "{e}");
        let e = next_domain_id(&p.join("file")).unwrap_err();
        assert!(e.to_string().starts_with("cannot create directory"), "{e}");
        std::fs::create_dir_all(p.join("run/.lastvmid")).unwrap();
        let e = next_domain_id(&p.join("run")).unwrap_err();
        assert!(e.to_string().starts_with("cannot open lock file"), "{e}");
        // The lock file is a directory: it cannot be opened for writing.
        std::fs::create_dir_all(p.join("locked/.domains.lock")).unwrap();
        let e = ConfigLock::acquire(&p.join("locked")).unwrap_err();
        assert!(e.to_string().starts_with("cannot open lock file"), "{e}");
        let e = read_shutoff_reason(p, "../x").unwrap_err();
        assert!(e.to_string().contains("cannot contain '/'"), "{e}");
    }

    #[test]
    fn shutoff_reasons_round_trip() {
        let d = tempfile::tempdir().unwrap();
        let run = d.path().join("run");
        assert_eq!(read_shutoff_reason(&run, "vm").unwrap(), None);
        write_shutoff_reason(&run, "vm", "destroyed").unwrap();
        assert_eq!(
            read_shutoff_reason(&run, "vm").unwrap().as_deref(),
            Some("destroyed")
        );
        clear_shutoff_reason(&run, "vm").unwrap();
        clear_shutoff_reason(&run, "vm").unwrap();
        assert_eq!(read_shutoff_reason(&run, "vm").unwrap(), None);
    }

    #[test]
    fn names_listing_skips_foreign_files() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("a.xml"), "x").unwrap();
        std::fs::write(d.path().join(".define-x.xml"), "x").unwrap();
        std::fs::write(d.path().join("b.txt"), "x").unwrap();
        std::fs::create_dir(d.path().join("c.xml")).unwrap();
        std::os::unix::fs::symlink(d.path().join("a.xml"), d.path().join("l.xml")).unwrap();
        assert_eq!(config_names(d.path()).unwrap(), vec!["a".to_string()]);
        assert!(config_names(&d.path().join("none")).unwrap().is_empty());
        assert!(read_small(&d.path().join("l.xml")).is_err());
    }
}
