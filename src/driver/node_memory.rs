//! The host's shared memory (KSM) tunables, read from and written to sysfs (libvirt:
//! virHostMemGetParameters, virHostMemSetParameters behind virNodeGetMemoryParameters).

use std::path::PathBuf;

use super::DriverError;
use crate::Connect;

/// One KSM parameter: the typed-parameter name libvirt gives it and its sysfs file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeMemoryParam {
    PagesToScan,
    SleepMillisecs,
    PagesShared,
    PagesSharing,
    PagesUnshared,
    PagesVolatile,
    FullScans,
    MergeAcrossNodes,
}

impl NodeMemoryParam {
    /// In libvirt's order (virHostMemGetParameters' switch).
    pub const ALL: [NodeMemoryParam; 8] = [
        Self::PagesToScan,
        Self::SleepMillisecs,
        Self::PagesShared,
        Self::PagesSharing,
        Self::PagesUnshared,
        Self::PagesVolatile,
        Self::FullScans,
        Self::MergeAcrossNodes,
    ];

    /// The sysfs file under `/sys/kernel/mm/ksm`.
    pub fn file(self) -> &'static str {
        match self {
            Self::PagesToScan => "pages_to_scan",
            Self::SleepMillisecs => "sleep_millisecs",
            Self::PagesShared => "pages_shared",
            Self::PagesSharing => "pages_sharing",
            Self::PagesUnshared => "pages_unshared",
            Self::PagesVolatile => "pages_volatile",
            Self::FullScans => "full_scans",
            Self::MergeAcrossNodes => "merge_across_nodes",
        }
    }

    /// The typed parameter's field (VIR_NODE_MEMORY_SHARED_*): `shm_` and the file name.
    pub fn field(self) -> String {
        format!("shm_{}", self.file())
    }

    /// Whether a caller may set it (libvirt validates only these three).
    pub fn settable(self) -> bool {
        matches!(
            self,
            Self::PagesToScan | Self::SleepMillisecs | Self::MergeAcrossNodes
        )
    }
}

impl Connect {
    fn ksm_dir(&self) -> PathBuf {
        self.opts.host_root.sys_dir.join("kernel/mm/ksm")
    }

    /// The KSM parameters this kernel has, in libvirt's order; a file the kernel lacks is
    /// left out, as libvirt leaves it unset (virNodeGetMemoryParameters).
    pub fn node_memory_parameters(&self) -> Result<Vec<(NodeMemoryParam, u64)>, DriverError> {
        let dir = self.ksm_dir();
        let mut out = Vec::new();
        for p in NodeMemoryParam::ALL {
            let path = dir.join(p.file());
            let text = match std::fs::read_to_string(&path) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    return Err(DriverError::System {
                        msg: format!("Failed to open file '{}'", path.display()),
                        err: e,
                    });
                }
            };
            // The three tunables are unsigned ints to libvirt, the counters unsigned longs.
            let value = match text.split('\n').next().unwrap_or("").parse::<u64>() {
                Ok(v) if !p.settable() || v <= u64::from(u32::MAX) => v,
                _ => {
                    return Err(DriverError::Internal(format!(
                        "failed to parse {}",
                        p.file()
                    )));
                }
            };
            out.push((p, value));
        }
        Ok(out)
    }

    /// Writes the given KSM tunables (virNodeSetMemoryParameters): only the three settable
    /// ones, each a file the kernel has, all checked before any is written.
    pub fn set_node_memory_parameters(
        &self,
        params: &[(NodeMemoryParam, u32)],
    ) -> Result<(), DriverError> {
        let dir = self.ksm_dir();
        for (p, _) in params {
            if !p.settable() {
                return Err(DriverError::InvalidArg(format!(
                    "parameter '{}' not supported",
                    p.field()
                )));
            }
            if !dir.join(p.file()).exists() {
                return Err(DriverError::OperationInvalid(format!(
                    "Parameter '{}' is not supported by this kernel",
                    p.field()
                )));
            }
        }
        for (p, v) in params {
            std::fs::write(dir.join(p.file()), v.to_string()).map_err(|e| DriverError::System {
                msg: format!("failed to set {}", p.field()),
                err: e,
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capabilities::host::HostRoot;
    use crate::driver::ConnectOptions;

    fn fake_host(root: &std::path::Path, files: &[(&str, &str)]) -> Connect {
        let ksm = root.join("sys/kernel/mm/ksm");
        std::fs::create_dir_all(&ksm).unwrap();
        for (f, v) in files {
            std::fs::write(ksm.join(f), v).unwrap();
        }
        let opts = ConnectOptions {
            host_root: HostRoot::fake(root),
            ..ConnectOptions::default()
        };
        let dir = root.join("state");
        Connect::open_with(Some(&format!("qemu:///embed?root={}", dir.display())), opts).unwrap()
    }

    #[test]
    fn reads_in_libvirts_order_and_skips_what_the_kernel_lacks() {
        let t = tempfile::tempdir().unwrap();
        let c = fake_host(
            t.path(),
            &[
                ("merge_across_nodes", "1\n"),
                ("pages_to_scan", "100\n"),
                ("full_scans", "12345678901\n"),
            ],
        );
        assert_eq!(
            c.node_memory_parameters().unwrap(),
            vec![
                (NodeMemoryParam::PagesToScan, 100),
                (NodeMemoryParam::FullScans, 12345678901),
                (NodeMemoryParam::MergeAcrossNodes, 1),
            ]
        );
    }

    #[test]
    fn garbage_is_libvirts_parse_error() {
        let t = tempfile::tempdir().unwrap();
        let c = fake_host(t.path(), &[("sleep_millisecs", "soon\n")]);
        let e = c.node_memory_parameters().unwrap_err().to_string();
        assert_eq!(e, "internal error: failed to parse sleep_millisecs");
    }

    #[test]
    fn sets_only_what_exists_and_checks_all_first() {
        let t = tempfile::tempdir().unwrap();
        let c = fake_host(t.path(), &[("pages_to_scan", "100\n")]);
        let e = c
            .set_node_memory_parameters(&[
                (NodeMemoryParam::PagesToScan, 5),
                (NodeMemoryParam::SleepMillisecs, 20),
            ])
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "Requested operation is not valid: Parameter 'shm_sleep_millisecs' is not supported by this kernel"
        );
        let ksm = t.path().join("sys/kernel/mm/ksm");
        assert_eq!(
            std::fs::read_to_string(ksm.join("pages_to_scan")).unwrap(),
            "100\n"
        );
        c.set_node_memory_parameters(&[(NodeMemoryParam::PagesToScan, 5)])
            .unwrap();
        assert_eq!(
            std::fs::read_to_string(ksm.join("pages_to_scan")).unwrap(),
            "5"
        );
    }
}
