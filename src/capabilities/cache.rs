//! The probe cache: one file per emulator, reused while nothing that could change the answer
//! has changed (the binary's path, size, mtime and ctime; whether /dev/kvm is usable; our own
//! build). Anything unreadable, corrupt or stale is treated as a miss, never as an error.

use std::any::Any;
use std::collections::HashMap;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize, de::DeserializeOwned};

/// Everything a cached probe result depends on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    pub path: PathBuf,
    pub size: u64,
    pub mtime_ns: i128,
    pub ctime_ns: i128,
    pub kvm_usable: bool,
    pub hvf_usable: bool,
    /// Our version and the ctime of the running executable, so a rebuilt domdriver re-probes
    /// (its probe may ask different questions).
    pub self_stamp: String,
}

fn ns(secs: i64, nsecs: i64) -> i128 {
    secs as i128 * 1_000_000_000 + nsecs as i128
}

/// Identifies this build of domdriver.
pub fn self_stamp() -> String {
    let exe_ctime = std::env::current_exe()
        .and_then(std::fs::metadata)
        .map(|m| ns(m.ctime(), m.ctime_nsec()))
        .unwrap_or(0);
    format!("{}:{exe_ctime}", env!("CARGO_PKG_VERSION"))
}

impl Stamp {
    /// Stamp the binary at `path` as it is now.
    pub fn of(
        path: &Path,
        kvm_usable: bool,
        hvf_usable: bool,
        self_stamp: &str,
    ) -> std::io::Result<Stamp> {
        let m = std::fs::metadata(path)?;
        Ok(Stamp {
            path: path.to_path_buf(),
            size: m.size(),
            mtime_ns: ns(m.mtime(), m.mtime_nsec()),
            ctime_ns: ns(m.ctime(), m.ctime_nsec()),
            kvm_usable,
            hvf_usable,
            self_stamp: self_stamp.to_string(),
        })
    }
}

/// What tells a cache file from the one read before: renames replace the inode, writes
/// change size or mtime.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileId {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i128,
}

impl FileId {
    fn of(m: &std::fs::Metadata) -> FileId {
        FileId {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime_ns: ns(m.mtime(), m.mtime_nsec()),
        }
    }
}

/// A cache file this process has parsed, by its path.
struct Memo {
    id: FileId,
    stamp: Stamp,
    value: Arc<dyn Any + Send + Sync>,
}

impl Memo {
    fn get<T: Clone + 'static>(&self, id: &FileId, stamp: &Stamp) -> Option<T> {
        if self.id != *id || self.stamp != *stamp {
            return None;
        }
        self.value.downcast_ref::<T>().cloned()
    }
}

fn memo() -> &'static Mutex<HashMap<PathBuf, Memo>> {
    static MEMO: std::sync::OnceLock<Mutex<HashMap<PathBuf, Memo>>> = std::sync::OnceLock::new();
    MEMO.get_or_init(Default::default)
}

#[derive(Serialize, Deserialize)]
struct Entry<T> {
    stamp: Stamp,
    value: T,
}

/// A directory of cached probe results.
#[derive(Debug, Clone)]
pub struct ProbeCache {
    dir: PathBuf,
}

/// FNV-1a: stable across runs and builds, unlike std's hasher, so file names stay put.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in bytes {
        h ^= *b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

impl ProbeCache {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        ProbeCache { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The cache file of one `kind` of result for an emulator path: its name for humans, a
    /// hash for uniqueness.
    pub fn file_for(&self, emulator: &Path, kind: &str) -> PathBuf {
        use std::os::unix::ffi::OsStrExt;
        let base = emulator
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let h = fnv1a(emulator.as_os_str().as_bytes());
        self.dir.join(format!("{base}-{h:016x}.{kind}.json"))
    }

    /// The cached value for `stamp`, if present, intact and still valid.
    ///
    /// A file this process read before and that has not changed since (same inode, size and
    /// mtime) is not parsed again: a start needs the full caps of its emulator (hundreds of
    /// KiB of JSON), and a process that starts many guests (a fleet, `vsh` running a script)
    /// would parse the same file for each.
    pub fn load<T>(&self, stamp: &Stamp, kind: &str) -> Option<T>
    where
        T: DeserializeOwned + Clone + Send + Sync + 'static,
    {
        let path = self.file_for(&stamp.path, kind);
        let id = FileId::of(&std::fs::metadata(&path).ok()?);
        if let Some(v) = memo()
            .lock()
            .ok()?
            .get(&path)
            .and_then(|m| m.get::<T>(&id, stamp))
        {
            return Some(v);
        }
        let bytes = std::fs::read(&path).ok()?;
        let e: Entry<T> = serde_json::from_slice(&bytes).ok()?;
        if e.stamp != *stamp {
            return None;
        }
        // Only when the file read is the one stat'ed: a store may have renamed another in
        // between, and the memo must never outlive the file it came from.
        if std::fs::metadata(&path).ok().map(|m| FileId::of(&m)) == Some(id.clone())
            && let Ok(mut m) = memo().lock()
        {
            m.insert(
                path,
                Memo {
                    id,
                    stamp: e.stamp,
                    value: Arc::new(e.value.clone()),
                },
            );
        }
        Some(e.value)
    }

    /// Store `value` atomically (temp file, fsync, rename), so a reader never sees half a file.
    pub fn store<T: Serialize>(&self, stamp: &Stamp, kind: &str, value: &T) -> std::io::Result<()> {
        // Private (0700), as every directory of ours: the cache tells which emulators exist.
        std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700)
            .create(&self.dir)?;
        let path = self.file_for(&stamp.path, kind);
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir)?;
        serde_json::to_writer(
            &mut tmp,
            &Entry {
                stamp: stamp.clone(),
                value,
            },
        )
        .map_err(std::io::Error::other)?;
        tmp.flush()?;
        tmp.as_file().sync_all()?;
        tmp.persist(&path).map_err(|e| e.error)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hits_misses_and_survives_corruption() {
        let d = tempfile::tempdir().unwrap();
        let bin = d.path().join("qemu-system-x");
        std::fs::write(&bin, "1").unwrap();
        let cache = ProbeCache::new(d.path().join("cache"));
        let st = Stamp::of(&bin, false, false, "v1").unwrap();
        assert_eq!(cache.load::<Vec<u32>>(&st, "t"), None);
        cache.store(&st, "t", &vec![1u32, 2]).unwrap();
        assert_eq!(cache.load::<Vec<u32>>(&st, "t"), Some(vec![1, 2]));

        let mut kvm = st.clone();
        kvm.kvm_usable = true;
        assert_eq!(
            cache.load::<Vec<u32>>(&kvm, "t"),
            None,
            "kvm change invalidates"
        );
        assert_eq!(
            cache.load::<Vec<u32>>(&Stamp::of(&bin, false, false, "v2").unwrap(), "t"),
            None,
            "new build invalidates"
        );
        std::fs::write(&bin, "22").unwrap();
        assert_eq!(
            cache.load::<Vec<u32>>(&Stamp::of(&bin, false, false, "v1").unwrap(), "t"),
            None,
            "changed binary invalidates"
        );

        let f = cache.file_for(&bin, "t");
        let full = std::fs::read(&f).unwrap();
        std::fs::write(&f, &full[..full.len() / 2]).unwrap();
        assert_eq!(
            cache.load::<Vec<u32>>(&st, "t"),
            None,
            "truncated file is a miss"
        );
        std::fs::write(&f, b"\xff\x00garbage").unwrap();
        assert_eq!(cache.load::<Vec<u32>>(&st, "t"), None, "garbage is a miss");
    }

    #[test]
    fn a_file_read_before_is_not_parsed_again_until_it_changes() {
        let d = tempfile::tempdir().unwrap();
        let bin = d.path().join("qemu-system-y");
        std::fs::write(&bin, "1").unwrap();
        let cache = ProbeCache::new(d.path().join("cache"));
        let st = Stamp::of(&bin, false, false, "v1").unwrap();
        cache.store(&st, "t", &vec![1u32]).unwrap();
        assert_eq!(cache.load::<Vec<u32>>(&st, "t"), Some(vec![1]));
        assert!(
            memo()
                .lock()
                .unwrap()
                .contains_key(&cache.file_for(&bin, "t"))
        );
        // Served from memory, and still checked against the stamp asked for.
        assert_eq!(cache.load::<Vec<u32>>(&st, "t"), Some(vec![1]));
        let other = Stamp::of(&bin, true, false, "v1").unwrap();
        assert_eq!(cache.load::<Vec<u32>>(&other, "t"), None);
        // A new store (a new inode) is read, not the memory of the old one.
        cache.store(&st, "t", &vec![2u32]).unwrap();
        assert_eq!(cache.load::<Vec<u32>>(&st, "t"), Some(vec![2]));
        // So is a file changed in place, and one removed is a miss.
        let f = cache.file_for(&bin, "t");
        let text = std::fs::read_to_string(&f).unwrap().replace("[2]", "[3]");
        std::fs::write(&f, text).unwrap();
        assert_eq!(cache.load::<Vec<u32>>(&st, "t"), Some(vec![3]));
        std::fs::remove_file(&f).unwrap();
        assert_eq!(cache.load::<Vec<u32>>(&st, "t"), None);
    }
}
