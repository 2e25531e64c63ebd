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

/// The file kind full probe results are cached under.
pub const FULL: &str = "caps";

/// Probe `paths` with `probe`, all at once, each bounded by `timeout`, reusing and refreshing
/// `cache` (which may be absent, e.g. when its directory cannot be created).
///
/// Callers that need only part of a result (the capabilities document needs a few facts of
/// each emulator, not its whole schema) name a `view`: its summaries are cached in files of
/// their own, so a warm call reads kilobytes instead of megabytes, and `T` is still cached in
/// full for those who need it. A warm call does no async work at all, so it starts no runtime.
///
/// A permanent failure is warned about when it happens and then remembered: later calls leave
/// that binary out silently until it changes.
pub fn collect<T, S, E, F, Fut>(
    paths: &[PathBuf],
    cache: Option<&ProbeCache>,
    ctx: &StampContext,
    timeout: Duration,
    probe: F,
    view: (&str, &dyn Fn(&T) -> S),
) -> Inventory<S>
where
    T: Serialize + DeserializeOwned + Send + 'static,
    S: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
    E: ProbeFailure + Send + 'static,
    F: Fn(PathBuf) -> Fut,
    Fut: Future<Output = Result<T, E>> + Send + 'static,
{
    let (kind, summarize) = view;
    let mut slots: Vec<Option<S>> = Vec::with_capacity(paths.len());
    let mut warnings = Vec::new();
    let mut cache_hits = 0;
    let mut misses = Vec::new();
    for (i, path) in paths.iter().enumerate() {
        slots.push(None);
        let stamp = match Stamp::of(path, ctx.kvm_usable, ctx.hvf_usable, &ctx.self_stamp) {
            Ok(s) => s,
            Err(e) => {
                warnings.push(format!("{}: left out: cannot stat: {e}", path.display()));
                continue;
            }
        };
        if let Some(hit) = cache.and_then(|c| c.load::<Cached<S>>(&stamp, kind)) {
            cache_hits += 1;
            slots[i] = hit.ok();
            continue;
        }
        misses.push((i, stamp));
    }
    if !misses.is_empty() {
        let futs: Vec<_> = misses
            .iter()
            .map(|(i, _)| (*i, probe(paths[*i].clone())))
            .collect();
        let outcomes = crate::runtime::block_on(async move {
            let mut set = tokio::task::JoinSet::new();
            for (i, fut) in futs {
                set.spawn(async move { (i, tokio::time::timeout(timeout, fut).await) });
            }
            let mut out = Vec::new();
            while let Some(joined) = set.join_next().await {
                out.push(joined);
            }
            out
        });
        for joined in outcomes {
            let (i, outcome) = match joined {
                Ok(v) => v,
                Err(e) => {
                    // A panicking probe is a bug, but it must not take capabilities down.
                    warnings.push(format!("an emulator probe failed unexpectedly: {e}"));
                    continue;
                }
            };
            let path = &paths[i];
            let stamp = &misses
                .iter()
                .find(|(j, _)| *j == i)
                .expect("spawned from misses")
                .1;
            match outcome {
                Ok(Ok(full)) => {
                    let summary: Cached<S> = Ok(summarize(&full));
                    // One warning per emulator is enough: when the first write fails, the
                    // second would fail the same way.
                    let _ = (kind == FULL
                        || store(cache, stamp, FULL, &Cached::<&T>::Ok(&full), &mut warnings))
                        && store(cache, stamp, kind, &summary, &mut warnings);
                    slots[i] = summary.ok();
                }
                Ok(Err(e)) => {
                    let msg = e.to_string();
                    let prefix = format!("{}: ", path.display());
                    let why = msg.strip_prefix(&prefix).unwrap_or(&msg).to_string();
                    warnings.push(format!("{prefix}left out: {why}"));
                    if e.is_permanent() {
                        let failed: Cached<()> = Err(msg);
                        let _ = store(cache, stamp, FULL, &failed, &mut warnings)
                            && kind != FULL
                            && store(cache, stamp, kind, &failed, &mut warnings);
                    }
                }
                Err(_) => warnings.push(format!(
                    "{}: left out: probe did not finish within {timeout:?}",
                    path.display()
                )),
            }
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

/// Cache one result, turning a failure into a warning: a cache that cannot be written costs
/// speed next time, never the answer now.
fn store<V: Serialize>(
    cache: Option<&ProbeCache>,
    stamp: &Stamp,
    kind: &str,
    value: &V,
    warnings: &mut Vec<String>,
) -> bool {
    match cache.map(|c| (c, c.store(stamp, kind, value))) {
        Some((c, Err(e))) => {
            warnings.push(format!(
                "{}: cannot cache probe result in {}: {e}",
                stamp.path.display(),
                c.dir().display()
            ));
            false
        }
        _ => true,
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

    const ID: (&str, &dyn Fn(&String) -> String) = (FULL, &|s: &String| s.clone());
    const ID8: (&str, &dyn Fn(&u8) -> u8) = ("small", &|v: &u8| *v);

    fn exe(dir: &Path, name: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    #[test]
    fn bad_emulators_are_left_out_and_good_ones_cached() {
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
        let inv = collect(
            &paths,
            Some(&cache),
            &ctx,
            Duration::from_millis(300),
            probe,
            ID,
        );
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

        let inv = collect(
            &paths[..1],
            Some(&cache),
            &ctx,
            Duration::from_secs(1),
            probe,
            ID,
        );
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

    #[test]
    fn permanent_failures_are_remembered() {
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
        let inv = collect(
            paths,
            Some(&cache),
            &ctx,
            Duration::from_secs(1),
            probe,
            ID8,
        );
        assert!(inv.emulators.is_empty());
        assert_eq!(
            inv.warnings,
            vec![format!("{}: left out: not an arch we know", odd.display())]
        );
        let inv = collect(
            paths,
            Some(&cache),
            &ctx,
            Duration::from_secs(1),
            probe,
            ID8,
        );
        assert!(inv.emulators.is_empty() && inv.warnings.is_empty());
        assert_eq!(calls.load(Ordering::SeqCst), 1, "not probed again");
    }

    #[test]
    fn unwritable_cache_is_a_warning() {
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
        let inv = collect(
            std::slice::from_ref(&good),
            Some(&cache),
            &ctx,
            Duration::from_secs(1),
            |_p| async { Ok::<_, String>(1u8) },
            ID8,
        );
        assert_eq!(inv.emulators.len(), 1);
        assert!(
            inv.warnings[0].contains("cannot cache"),
            "{:?}",
            inv.warnings
        );
    }
}
