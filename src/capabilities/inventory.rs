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

/// The facts every cache stamp needs besides the binary itself.
#[derive(Debug, Clone)]
pub struct StampContext {
    pub kvm_usable: bool,
    pub hvf_usable: bool,
    pub self_stamp: String,
}

/// Probe `paths` with `probe`, all at once, each bounded by `timeout`, reusing and refreshing
/// `cache` (which may be absent, e.g. when its directory cannot be created).
pub async fn probe_all<T, E, F, Fut>(
    paths: &[PathBuf],
    cache: Option<&ProbeCache>,
    ctx: &StampContext,
    timeout: Duration,
    probe: F,
) -> Inventory<T>
where
    T: Serialize + DeserializeOwned + Send + 'static,
    E: std::fmt::Display + Send + 'static,
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
        if let Some(hit) = cache.and_then(|c| c.load::<T>(&stamp)) {
            cache_hits += 1;
            slots.push(Some(hit));
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
        match outcome {
            Ok(Ok(value)) => {
                if let (Some(c), Some(stamp)) = (cache, &stamps[i])
                    && let Err(e) = c.store(stamp, &value)
                {
                    warnings.push(format!(
                        "{}: cannot cache probe result in {}: {e}",
                        path.display(),
                        c.dir().display()
                    ));
                }
                slots[i] = Some(value);
            }
            Ok(Err(e)) => warnings.push(format!("{}: left out: {e}", path.display())),
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
