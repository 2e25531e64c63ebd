//! Core dumps of a running guest (`virsh dump`; libvirt: virDomainCoreDumpWithFormat,
//! qemuDomainCoreDumpWithFormat, doCoreDump, qemuDumpToFd).
//!
//! A memory-only dump is QEMU's `dump-guest-memory`, run by the guest's monitor as its
//! job; the full form is QEMU's migration stream written to the file, as libvirt writes
//! it (no save-image header). The file is created 0600 before QEMU writes it and removed
//! when the dump fails.

use std::path::Path;

use serde_json::Value;

use super::DriverError;
use super::domain::{Domain, guest_err};
use super::hotplug::{check_flags, qmp};
use super::monitor::proto::{Reply, Request, SnapshotJob};

/// `VIR_DUMP_CRASH`: the guest ends after the dump.
pub const DUMP_CRASH: u32 = 1;
/// `VIR_DUMP_LIVE`: the vCPUs keep running while the memory is read.
pub const DUMP_LIVE: u32 = 2;
/// `VIR_DUMP_BYPASS_CACHE`.
pub const DUMP_BYPASS_CACHE: u32 = 4;
/// `VIR_DUMP_RESET`: the guest is reset after the dump.
pub const DUMP_RESET: u32 = 16;
/// `VIR_DUMP_MEMORY_ONLY`.
pub const DUMP_MEMORY_ONLY: u32 = 32;

/// libvirt's dump formats (virDomainCoreDumpFormat).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DumpFormat {
    /// ELF for a memory-only dump, else QEMU's migration stream.
    Raw,
    KdumpZlib,
    KdumpLzo,
    KdumpSnappy,
    WinDmp,
}

impl DumpFormat {
    /// QEMU's name of the format (`dump-guest-memory`'s `format`).
    fn qemu_name(self) -> &'static str {
        match self {
            DumpFormat::Raw => "elf",
            DumpFormat::KdumpZlib => "kdump-zlib",
            DumpFormat::KdumpLzo => "kdump-lzo",
            DumpFormat::KdumpSnappy => "kdump-snappy",
            DumpFormat::WinDmp => "win-dmp",
        }
    }
}

/// libvirt: virDomainCoreDumpWithFormat's flag checks.
fn check_exclusive(flags: u32) -> Result<(), DriverError> {
    let pairs = [
        (DUMP_CRASH, DUMP_LIVE, "crash and live"),
        (DUMP_CRASH, DUMP_RESET, "crash and reset"),
        (DUMP_LIVE, DUMP_RESET, "live and reset"),
    ];
    for (a, b, what) in pairs {
        if flags & a != 0 && flags & b != 0 {
            return Err(DriverError::InvalidArg(format!(
                "{what} flags are mutually exclusive"
            )));
        }
    }
    Ok(())
}

/// Create (or truncate) `to` with mode 0600 (libvirt: qemuDomainOpenFile).
fn create_file(to: &Path) -> Result<(), DriverError> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(to)
        .map(drop)
        .map_err(|err| DriverError::System {
            msg: format!("Failed to create file '{}'", to.display()),
            err,
        })
}

impl Domain<'_> {
    /// `virDomainCoreDumpWithFormat`: dump the running guest to `to`.
    pub fn core_dump_with_format(
        &self,
        to: &Path,
        format: DumpFormat,
        flags: u32,
    ) -> Result<(), DriverError> {
        check_exclusive(flags)?;
        check_flags(
            flags,
            DUMP_CRASH | DUMP_LIVE | DUMP_BYPASS_CACHE | DUMP_RESET | DUMP_MEMORY_ONLY,
            "qemuDomainCoreDumpWithFormat",
        )?;
        if !self.is_active()? {
            return Err(DriverError::OperationInvalid(
                "domain is not running".into(),
            ));
        }
        let memory_only = flags & DUMP_MEMORY_ONLY != 0;
        if !memory_only && format != DumpFormat::Raw {
            return Err(DriverError::OperationUnsupported(
                "kdump-compressed format is only supported with memory-only dump".into(),
            ));
        }
        let (mut g, _) = self.guest()?;
        if memory_only && format != DumpFormat::Raw {
            // libvirt: qemuDumpToFd's capability check.
            let caps = qmp(&mut g, "query-dump-guest-memory-capability", None)?;
            let known = caps["formats"]
                .as_array()
                .is_some_and(|f| f.iter().any(|x| x == &Value::from(format.qemu_name())));
            if !known {
                return Err(DriverError::OperationUnsupported(format!(
                    "unsupported dumpformat '{}' for this QEMU binary",
                    format.qemu_name()
                )));
            }
        }
        create_file(to)?;
        let path = to.display().to_string();
        let res = if memory_only {
            let req = Request::Dump {
                path,
                format: format.qemu_name().into(),
                live: flags & DUMP_LIVE != 0,
            };
            match g.call(&req).map_err(guest_err) {
                Ok(Reply::Ok { .. }) => Ok(()),
                Ok(other) => Err(DriverError::Internal(format!(
                    "unexpected reply from the guest's monitor: {other:?}"
                ))),
                Err(e) => Err(e),
            }
        } else {
            self.full_dump(&mut g, path)
        };
        if let Err(e) = res {
            let _ = std::fs::remove_file(to);
            return Err(e);
        }
        if flags & DUMP_CRASH != 0 {
            // libvirt ends the guest as crashed: `shut off (crashed)`, `Stopped Crashed`.
            return self.stop(crate::driver::monitor::proto::StopReason::Crashed);
        }
        if flags & DUMP_RESET != 0 {
            g.reset().map_err(guest_err)?;
        }
        Ok(())
    }

    /// The migration stream onto the file, the vCPUs stopped; they run again after if
    /// they ran before (libvirt: doCoreDump's qemuMigrationSrcToFile).
    fn full_dump(
        &self,
        g: &mut crate::driver::process::Guest,
        path: String,
    ) -> Result<(), DriverError> {
        let was_running = self.state()?.state == super::process::State::Running;
        let req = Request::Snapshot {
            job: SnapshotJob::SaveMemory { path },
        };
        let res = match g.call(&req).map_err(guest_err) {
            Ok(Reply::Ok { .. }) => Ok(()),
            Ok(other) => Err(DriverError::Internal(format!(
                "unexpected reply from the guest's monitor: {other:?}"
            ))),
            Err(e) => Err(e),
        };
        if was_running && self.is_active().unwrap_or(false) {
            let resumed = self.resume();
            res?;
            return resumed;
        }
        res
    }
}
