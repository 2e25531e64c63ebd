//! Descriptors the caller opens for QEMU rather than paths QEMU opens itself: file descriptor
//! groups associated with a domain for `fdgroup='NAME'` disk sources (libvirt:
//! virDomainFDAssociate, qemuDomainFDAssociate, qemuDomainPrepareStorageSourceFDs) and the
//! `/dev/vhost-vdpa-N` devices of vDPA interfaces (libvirt: qemuVDPAConnect).
//!
//! A group lives as long as the [`Connect`] that associated it, as in libvirt, where it lives
//! as long as the client's connection: the connection holds its own duplicates of the
//! caller's descriptors. A start from the same connection hands duplicates to the guest's
//! monitor, which hands them to QEMU at the numbers the command line's `-add-fd` names, as it
//! does with taps (see [`super::tap`], [`super::helpers::fds::install_pairs`]).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use super::{Connect, DriverError, domain::Domain};
use crate::domain::DomainDef;
use crate::xml2argv::{FdGroup, LaunchContext};

/// Flags of [`Domain::fd_associate`], with libvirt's values (`VIR_DOMAIN_FD_ASSOCIATE_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FdAssociateFlags(pub u32);

impl FdAssociateFlags {
    pub const NONE: FdAssociateFlags = FdAssociateFlags(0);
    /// Restore the files' security labels after use (`--seclabel-restore`). There are no
    /// security drivers here, so nothing is relabelled and nothing needs restoring.
    pub const SECLABEL_RESTORE: FdAssociateFlags = FdAssociateFlags(1 << 0);
    /// The files may be used for writing (`--seclabel-writable`): an image passed as a single
    /// descriptor is then opened read-write by QEMU (libvirt:
    /// qemuBlockStorageSourceGetBlockdevStorageProps).
    pub const SECLABEL_WRITABLE: FdAssociateFlags = FdAssociateFlags(1 << 1);

    pub fn contains(self, f: FdAssociateFlags) -> bool {
        self.0 & f.0 == f.0
    }
}

impl std::ops::BitOr for FdAssociateFlags {
    type Output = FdAssociateFlags;
    fn bitor(self, o: FdAssociateFlags) -> FdAssociateFlags {
        FdAssociateFlags(self.0 | o.0)
    }
}

/// One group associated through a connection.
#[derive(Debug)]
pub(crate) struct Associated {
    uuid: uuid::Uuid,
    name: String,
    fds: Vec<OwnedFd>,
    writable: bool,
}

/// The groups of one connection.
#[derive(Debug, Default)]
pub(crate) struct FdStore(std::sync::Mutex<Vec<Associated>>);

/// The first descriptor number QEMU gets passed descriptors at: after the monitor (3), the
/// taps (4-43) and their vhost-net descriptors (44-83). vDPA devices come first, then the
/// groups' descriptors (see [`super::launch`]).
pub(crate) const PASSED_FD_BASE: RawFd = 84;

/// `dup` with close-on-exec, as libvirt keeps its own copy of what the caller passed. Never
/// at 3, where the monitor's spawn puts the guest's lock before it moves these.
fn dup(fd: RawFd) -> std::io::Result<OwnedFd> {
    // SAFETY: fcntl on an integer; a descriptor that is not open gives EBADF.
    let n = unsafe { nix::libc::fcntl(fd, nix::libc::F_DUPFD_CLOEXEC, 4) };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `n` was just opened by us and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(n) })
}

impl Domain<'_> {
    /// Associate descriptors `fds` (open in this process) with the domain as group `name`
    /// (`virDomainFDAssociate`, `virsh dom-fd-associate`): a disk whose source has
    /// `fdgroup='NAME'` is then given to QEMU through them when this connection starts the
    /// domain. The connection keeps duplicates until it is dropped (the caller may close its
    /// own); associating a name again replaces the group.
    pub fn fd_associate(
        &self,
        name: &str,
        fds: &[RawFd],
        flags: FdAssociateFlags,
    ) -> Result<(), DriverError> {
        let known = FdAssociateFlags::SECLABEL_RESTORE | FdAssociateFlags::SECLABEL_WRITABLE;
        if fds.is_empty() {
            // libvirt: virDomainFDAssociate's virCheckNonZeroArgGoto.
            return Err(DriverError::InvalidArg(
                "nfds in virDomainFDAssociate must not be zero".into(),
            ));
        }
        if flags.0 & !known.0 != 0 {
            return Err(DriverError::InvalidArg(format!(
                "unsupported flags (0x{:x}) in function qemuDomainFDAssociate",
                flags.0 & !known.0
            )));
        }
        // Only a domain that exists gets a group (libvirt: qemuDomainObjFromDomain).
        self.is_active()?;
        let mut dups = Vec::with_capacity(fds.len());
        for fd in fds {
            // The words virsh shows: its client library duplicates each descriptor to send
            // it (libvirt: virNetClientProgramCall).
            let d = dup(*fd).map_err(|err| DriverError::System {
                msg: format!("Cannot duplicate FD {fd}"),
                err,
            })?;
            dups.push(d);
        }
        let uuid = self.uuid();
        let mut store = self.conn.fds.0.lock().unwrap_or_else(|e| e.into_inner());
        store.retain(|a| !(a.uuid == uuid && a.name == name));
        store.push(Associated {
            uuid,
            name: name.to_string(),
            fds: dups,
            writable: flags.contains(FdAssociateFlags::SECLABEL_WRITABLE),
        });
        Ok(())
    }
}

/// The descriptors a start passes through the monitor to QEMU: each is QEMU's at `target`.
#[derive(Debug, Default)]
pub(crate) struct Passed(pub Vec<(OwnedFd, RawFd)>);

impl Passed {
    /// `(descriptor here, number in QEMU)` pairs for [`super::helpers::fds::install_pairs`].
    pub fn pairs(&self) -> Vec<(RawFd, RawFd)> {
        self.0.iter().map(|(f, t)| (f.as_raw_fd(), *t)).collect()
    }

    /// The numbers QEMU gets them at.
    pub fn targets(&self) -> Vec<RawFd> {
        self.0.iter().map(|(_, t)| *t).collect()
    }
}

/// The names of the fd groups `def`'s disks use, their backing chains included.
fn used_groups(def: &DomainDef) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for d in &def.devices.disks {
        let mut names = vec![d.source.as_ref().and_then(|s| s.fdgroup.clone())];
        let mut b = d.backing_store.as_ref();
        while let Some(x) = b {
            names.push(x.source.as_ref().and_then(|s| s.fdgroup.clone()));
            b = x.backing.as_deref();
        }
        for n in names.into_iter().flatten() {
            if !out.contains(&n) {
                out.push(n);
            }
        }
    }
    out
}

/// libvirt's qemuVDPAConnect: the device opened read-write, or its message.
fn open_vdpa(dev: &str) -> Result<OwnedFd, DriverError> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(dev)
        .and_then(|f| dup(f.as_raw_fd()))
        .map_err(|err| DriverError::System {
            msg: format!("Unable to open '{dev}' for vdpa device"),
            err,
        })
}

impl Connect {
    /// Open what a start of `def` passes QEMU and put the numbers into `ctx`: each vDPA
    /// interface's device, then duplicates of the groups associated through this connection
    /// that `def`'s disks name (a group not associated is left out: the command line's build
    /// refuses the disk with libvirt's words). `domxml-to-native` opens them too, as libvirt
    /// prepares a native command line like a start, and closes them.
    pub(crate) fn open_passed_fds(
        &self,
        def: &DomainDef,
        ctx: &mut LaunchContext,
    ) -> Result<Passed, DriverError> {
        let mut out = Vec::new();
        let mut next = PASSED_FD_BASE;
        let vdpa: Vec<&str> = def
            .devices
            .interfaces
            .iter()
            .filter(|n| n.itype == "vdpa")
            .map(|n| {
                n.source
                    .as_ref()
                    .and_then(|s| s.dev.as_deref())
                    .unwrap_or("")
            })
            .collect();
        if !vdpa.is_empty() {
            ctx.vdpa_fds = Some(crate::xml2argv::VdpaFds::From(next));
        }
        for dev in vdpa {
            out.push((open_vdpa(dev)?, next));
            next += 1;
        }
        let used = used_groups(def);
        let store = self.fds.0.lock().unwrap_or_else(|e| e.into_inner());
        for a in store
            .iter()
            .filter(|a| a.uuid == def.uuid && used.contains(&a.name))
        {
            let mut numbers = Vec::new();
            for f in &a.fds {
                // libvirt: qemuDomainPrepareStorageSourceFDs.
                let d = dup(f.as_raw_fd()).map_err(|_| {
                    DriverError::Internal(format!(
                        "failed to duplicate file descriptor for fd group '{}'",
                        a.name
                    ))
                })?;
                out.push((d, next));
                numbers.push(next);
                next += 1;
            }
            ctx.fd_groups.push(FdGroup {
                name: a.name.clone(),
                fds: numbers,
                writable: a.writable,
            });
        }
        Ok(Passed(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_vdpa_device_is_refused_with_libvirts_words() {
        let e = open_vdpa("/nonexistent/vhost-vdpa-0").unwrap_err();
        assert_eq!(
            e.to_string(),
            "Unable to open '/nonexistent/vhost-vdpa-0' for vdpa device: No such file or directory"
        );
    }

    #[test]
    fn a_descriptor_not_open_cannot_be_duplicated() {
        let e = dup(999_999).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(nix::libc::EBADF));
    }
}
