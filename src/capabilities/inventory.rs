//! Every installed emulator, probed in parallel or taken from the probe cache.
//!
//! A bad emulator never spoils the rest: it is left out with a warning naming it and why, and
//! no probe runs past its timeout.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Serialize, de::DeserializeOwned};

use super::cache::{ProbeCache, Stamp};

/// What made the inventory: the probed emulators and what went wrong on the way.
#[derive(Debug, Clone)]
pub struct Inventory<T> {
    /// Probe results in the order the emulators were found.
    pub emulators: Vec<(PathBuf, T)>,
    /// One line per emulator left out, or per cache problem, naming the file.
    pub warnings: Vec<String>,
    /// How many results came from the cache.
    pub cache_hits: usize,
}

/// What a probe error says about probing again.
pub trait ProbeFailure: std::fmt::Display {
    /// The same unchanged binary would fail the same way: remember the failure.
    fn is_permanent(&self) -> bool {
        false
    }
}

impl ProbeFailure for super::CapsError {
    fn is_permanent(&self) -> bool {
        super::CapsError::is_permanent(self)
    }
}

impl ProbeFailure for String {}

/// A cache entry: the caps, or why this binary is of no use (permanent failures only).
type Cached<T> = Result<T, String>;

/// The facts every cache stamp needs besides the binary itself.
#[derive(Debug, Clone)]
pub struct StampContext {
    pub kvm_usable: bool,
    pub hvf_usable: bool,
    pub self_stamp: String,
}

/// Probe `paths` with `probe`, all at once, each bounded by `timeout`, reusing and refreshing
/// `cache` (which may be absent, e.g. when its directory cannot be created). A permanent
/// failure is warned about when it happens and then remembered: later calls leave that binary
/// out silently until it changes.
pub async fn probe_all<T, E, F, Fut>(
    paths: &[PathBuf],
    cache: Option<&ProbeCache>,
    ctx: &StampContext,
    timeout: Duration,
    probe: F,
) -> Inventory<T>
where
    T: Serialize + DeserializeOwned + Send + 'static,
    E: ProbeFailure + Send + 'static,
    F: Fn(PathBuf) -> Fut,
    Fut: Future<Output = Result<T, E>> + Send + 'static,
{
    let mut slots: Vec<Option<T>> = Vec::with_capacity(paths.len());
    let mut warnings = Vec::new();
    let mut cache_hits = 0;
    let mut set = tokio::task::JoinSet::new();
    let mut stamps = Vec::with_capacity(paths.len());
    for (i, path) in paths.iter().enumerate() {
        let stamp = match Stamp::of(path, ctx.kvm_usable, ctx.hvf_usable, &ctx.self_stamp) {
            Ok(s) => s,
            Err(e) => {
                warnings.push(format!("{}: left out: cannot stat: {e}", path.display()));
                slots.push(None);
                stamps.push(None);
                continue;
            }
        };
        if let Some(hit) = cache.and_then(|c| c.load::<Cached<T>>(&stamp)) {
            cache_hits += 1;
            slots.push(hit.ok());
            stamps.push(None);
            continue;
        }
        slots.push(None);
        stamps.push(Some(stamp));
        let fut = probe(path.clone());
        set.spawn(async move { (i, tokio::time::timeout(timeout, fut).await) });
    }
    while let Some(joined) = set.join_next().await {
        let (i, outcome) = match joined {
            Ok(v) => v,
            Err(e) => {
                // A panicking probe is a bug, but it must not take capabilities down.
                warnings.push(format!("an emulator probe failed unexpectedly: {e}"));
                continue;
            }
        };
        let path = &paths[i];
        let store = |value: &Cached<T>, warnings: &mut Vec<String>| {
            if let (Some(c), Some(stamp)) = (cache, &stamps[i])
                && let Err(e) = c.store(stamp, value)
            {
                warnings.push(format!(
                    "{}: cannot cache probe result in {}: {e}",
                    path.display(),
                    c.dir().display()
                ));
            }
        };
        match outcome {
            Ok(Ok(value)) => {
                let value = Ok(value);
                store(&value, &mut warnings);
                slots[i] = value.ok();
            }
            Ok(Err(e)) => {
                let msg = e.to_string();
                let prefix = format!("{}: ", path.display());
                let why = msg.strip_prefix(&prefix).unwrap_or(&msg);
                warnings.push(format!("{prefix}left out: {why}"));
                if e.is_permanent() {
                    store(&Err(e.to_string()), &mut warnings);
                }
            }
            Err(_) => warnings.push(format!(
                "{}: left out: probe did not finish within {timeout:?}",
                path.display()
            )),
        }
    }
    let emulators = paths
        .iter()
        .cloned()
        .zip(slots)
        .filter_map(|(p, s)| s.map(|s| (p, s)))
        .collect();
    Inventory {
        emulators,
        warnings,
        cache_hits,
    }
}

/// The cache directory for probe results under a connection's cache dir.
pub fn cache_dir(conn_cache: &Path) -> PathBuf {
    conn_cache.join("capabilities")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn exe(dir: &Path, name: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    #[tokio::test]
    async fn bad_emulators_are_left_out_and_good_ones_cached() {
        let d = tempfile::tempdir().unwrap();
        let good = exe(d.path(), "qemu-system-good");
        let bad = exe(d.path(), "qemu-system-bad");
        let hang = exe(d.path(), "qemu-system-hang");
        let gone = d.path().join("qemu-system-gone");
        let paths = vec![good.clone(), bad, hang, gone];
        let cache = ProbeCache::new(d.path().join("cache"));
        let ctx = StampContext {
            kvm_usable: false,
            hvf_usable: false,
            self_stamp: "t".into(),
        };
        let calls = Arc::new(AtomicUsize::new(0));
        let probe = |p: PathBuf| {
            let calls = calls.clone();
            async move {
                calls.fetch_add(1, Ordering::SeqCst);
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                match name.as_str() {
                    "qemu-system-good" => Ok(name),
                    "qemu-system-hang" => {
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                        Ok(name)
                    }
                    _ => Err("garbage greeting".to_string()),
                }
            }
        };
        let start = std::time::Instant::now();
        let inv = probe_all(
            &paths,
            Some(&cache),
            &ctx,
            Duration::from_millis(300),
            &probe,
        )
        .await;
        assert!(start.elapsed() < Duration::from_secs(5));
        assert_eq!(
            inv.emulators,
            vec![(good.clone(), "qemu-system-good".to_string())]
        );
        assert_eq!(inv.warnings.len(), 3, "{:?}", inv.warnings);
        assert!(
            inv.warnings
                .iter()
                .any(|w| w.contains("qemu-system-bad: left out: garbage"))
        );
        assert!(
            inv.warnings
                .iter()
                .any(|w| w.contains("qemu-system-hang") && w.contains("within"))
        );
        assert!(
            inv.warnings
                .iter()
                .any(|w| w.contains("qemu-system-gone") && w.contains("cannot stat"))
        );
        assert_eq!(calls.load(Ordering::SeqCst), 3);

        let inv = probe_all(
            &paths[..1],
            Some(&cache),
            &ctx,
            Duration::from_secs(1),
            &probe,
        )
        .await;
        assert_eq!(inv.cache_hits, 1);
        assert_eq!(calls.load(Ordering::SeqCst), 3, "cached result reused");
    }

    #[derive(Debug)]
    struct Permanent;
    impl std::fmt::Display for Permanent {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("not an arch we know")
        }
    }
    impl ProbeFailure for Permanent {
        fn is_permanent(&self) -> bool {
            true
        }
    }

    #[tokio::test]
    async fn permanent_failures_are_remembered() {
        let d = tempfile::tempdir().unwrap();
        let odd = exe(d.path(), "qemu-system-odd");
        let cache = ProbeCache::new(d.path().join("cache"));
        let ctx = StampContext {
            kvm_usable: false,
            hvf_usable: false,
            self_stamp: "t".into(),
        };
        let calls = AtomicUsize::new(0);
        let probe = |_p: PathBuf| {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Err::<u8, _>(Permanent) }
        };
        let paths = std::slice::from_ref(&odd);
        let inv = probe_all(paths, Some(&cache), &ctx, Duration::from_secs(1), &probe).await;
        assert!(inv.emulators.is_empty());
        assert_eq!(
            inv.warnings,
            vec![format!("{}: left out: not an arch we know", odd.display())]
        );
        let inv = probe_all(paths, Some(&cache), &ctx, Duration::from_secs(1), &probe).await;
        assert!(inv.emulators.is_empty() && inv.warnings.is_empty());
        assert_eq!(calls.load(Ordering::SeqCst), 1, "not probed again");
    }

    #[tokio::test]
    async fn unwritable_cache_is_a_warning() {
        let d = tempfile::tempdir().unwrap();
        let good = exe(d.path(), "qemu-system-good");
        // A file where the cache directory should be: creating it fails, as on a read-only fs.
        std::fs::write(d.path().join("cache"), "").unwrap();
        let cache = ProbeCache::new(d.path().join("cache"));
        let ctx = StampContext {
            kvm_usable: false,
            hvf_usable: false,
            self_stamp: "t".into(),
        };
        let inv = probe_all(
            std::slice::from_ref(&good),
            Some(&cache),
            &ctx,
            Duration::from_secs(1),
            |_p| async { Ok::<_, String>(1u8) },
        )
        .await;
        assert_eq!(inv.emulators.len(), 1);
        assert!(
            inv.warnings[0].contains("cannot cache"),
            "{:?}",
            inv.warnings
        );
    }
}
