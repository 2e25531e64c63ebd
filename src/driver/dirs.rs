//! Where a connection keeps its files. Named after libvirt's layout, under `domdriver` so that
//! we never write into a real libvirtd's directories.

use std::path::{Path, PathBuf};

use super::DriverError;
use super::uri::ConnectUri;

/// The directories one connection uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dirs {
    /// Persistent domain definitions.
    pub config: PathBuf,
    /// Per-domain state that outlives a guest (nvram, ...).
    pub lib: PathBuf,
    /// Runtime state of running guests: status files, monitor sockets, pid files.
    pub run: PathBuf,
    /// The probe cache and other derived data.
    pub cache: PathBuf,
    /// Guest logs.
    pub log: PathBuf,
}

impl Dirs {
    /// Directories for `uri`, with the session dirs taken from the XDG variables and `HOME`.
    pub fn for_uri(uri: &ConnectUri) -> Result<Self, DriverError> {
        match uri {
            ConnectUri::System => Ok(Dirs {
                config: "/etc/domdriver/qemu".into(),
                lib: "/var/lib/domdriver/qemu".into(),
                run: "/run/domdriver/qemu".into(),
                cache: "/var/cache/domdriver/qemu".into(),
                log: "/var/log/domdriver/qemu".into(),
            }),
            ConnectUri::Embed { root } => Ok(Self::under(root)),
            ConnectUri::Session => {
                let env = |k: &str| {
                    std::env::var_os(k)
                        .filter(|v| !v.is_empty())
                        .map(PathBuf::from)
                };
                let home = env("HOME").ok_or_else(|| {
                    DriverError::Uri("qemu:///session needs HOME to be set".into())
                })?;
                let config = env("XDG_CONFIG_HOME").unwrap_or_else(|| home.join(".config"));
                let cache = env("XDG_CACHE_HOME").unwrap_or_else(|| home.join(".cache"));
                let data = env("XDG_DATA_HOME").unwrap_or_else(|| home.join(".local/share"));
                // Without XDG_RUNTIME_DIR (cron, ssh without logind) keep runtime files under
                // the cache dir, as libvirt's session daemon does.
                let run = env("XDG_RUNTIME_DIR")
                    .map(|r| r.join("domdriver/qemu/run"))
                    .unwrap_or_else(|| cache.join("domdriver/qemu/run"));
                Ok(Dirs {
                    config: config.join("domdriver/qemu"),
                    lib: data.join("domdriver/qemu"),
                    run,
                    cache: cache.join("domdriver/qemu"),
                    log: cache.join("domdriver/qemu/log"),
                })
            }
        }
    }

    /// libvirt's embedded layout: ROOT/{etc,lib,run,cache,log}/qemu.
    pub fn under(root: &Path) -> Self {
        Dirs {
            config: root.join("etc/qemu"),
            lib: root.join("lib/qemu"),
            run: root.join("run/qemu"),
            cache: root.join("cache/qemu"),
            log: root.join("log/qemu"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embed_puts_everything_under_root() {
        let d = Dirs::for_uri(&ConnectUri::Embed { root: "/r".into() }).unwrap();
        for p in [&d.config, &d.lib, &d.run, &d.cache, &d.log] {
            assert!(p.starts_with("/r"), "{}", p.display());
        }
        assert_eq!(d.cache, PathBuf::from("/r/cache/qemu"));
    }
}
