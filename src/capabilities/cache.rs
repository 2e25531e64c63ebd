//! The probe cache: one file per emulator, reused while nothing that could change the answer
//! has changed (the binary's path, size, mtime and ctime; whether /dev/kvm is usable; our own
//! build). Anything unreadable, corrupt or stale is treated as a miss, never as an error.

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

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
    pub fn load<T: DeserializeOwned>(&self, stamp: &Stamp, kind: &str) -> Option<T> {
        let bytes = std::fs::read(self.file_for(&stamp.path, kind)).ok()?;
        let e: Entry<T> = serde_json::from_slice(&bytes).ok()?;
        (e.stamp == *stamp).then_some(e.value)
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
}
