//! Persistent reservations of SCSI disks: QEMU forwards PR commands to a `qemu-pr-helper`,
//! libvirt's own one for the domain (`managed='yes'`) or one the user runs on a socket of
//! theirs (libvirt: qemuBuildManagedPRCommandLine, qemuBuildPRManagerInfoProps).

use super::*;
use crate::domain::devices::DiskSource;

/// The alias of the domain's managed helper (libvirt: qemuDomainGetManagedPRAlias).
const MANAGED_ALIAS: &str = "pr-helper0";

/// How a disk source reaches its PR helper.
pub(super) enum PrManager {
    /// The domain's managed helper, one object for every disk.
    Managed,
    /// A helper of the user's at this socket path.
    User(String),
}

/// The PR helper `<reservations>` of `src` asks for, if any.
pub(super) fn pr_manager(src: Option<&DiskSource>) -> Option<PrManager> {
    let r = src?.reservations.as_ref()?;
    if r.attr("managed") == Some("yes") {
        return Some(PrManager::Managed);
    }
    let path = r.child("source").and_then(|s| s.attr("path"))?;
    Some(PrManager::User(path.to_string()))
}

fn helper_object(id: &str, path: &str) -> JsonOpts {
    let mut j = JsonOpts::new();
    j.s("qom-type", "pr-manager-helper")
        .s("id", id)
        .s("path", path);
    j
}

impl Builder<'_> {
    /// The managed helper's object, once, before the machine (libvirt:
    /// qemuBuildManagedPRCommandLine). libvirt starts the helper itself; a real start here
    /// does not, so it refuses such a domain rather than give QEMU a socket nobody serves.
    pub(super) fn managed_pr(&mut self) -> R {
        let managed = self
            .def
            .devices
            .disks
            .iter()
            .any(|d| matches!(pr_manager(d.source.as_ref()), Some(PrManager::Managed)));
        if !managed {
            return Ok(());
        }
        if !self.ctx.pretend {
            return Err(unsupported(
                "managed persistent reservations need a qemu-pr-helper started for the domain, which is not supported yet",
            ));
        }
        let path = format!("{}/{MANAGED_ALIAS}.sock", self.ctx.lib_dir);
        let j = helper_object(MANAGED_ALIAS, &path);
        self.object(&j);
        Ok(())
    }
}

/// The `pr-manager` alias of storage node `storage`, and the object of a user's helper that
/// goes before the node (libvirt: qemuDomainPrepareStorageSourcePR).
pub(super) fn pr_props(pr: &PrManager, storage: &str) -> (String, Option<JsonOpts>) {
    match pr {
        PrManager::Managed => (MANAGED_ALIAS.to_string(), None),
        PrManager::User(path) => {
            let id = format!("pr-helper-{storage}");
            let obj = helper_object(&id, path);
            (id, Some(obj))
        }
    }
}
