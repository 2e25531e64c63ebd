//! `virDomainSnapshotDelete` (libvirt: qemuSnapshotDelete, qemuDomainSnapshotDiscard).

use super::create::internal_nodes;
use super::disks;
use super::live;
use super::*;
use crate::driver::monitor::proto::SnapshotJob;

const FUNC: &str = "qemuDomainSnapshotDelete";

impl DomainSnapshot<'_> {
    /// Delete this snapshot (its children move to its parent), with [`DELETE_CHILDREN`] its
    /// descendants too, with [`DELETE_CHILDREN_ONLY`] only them; [`DELETE_METADATA_ONLY`]
    /// leaves the images alone.
    pub fn delete(&self, flags: u32) -> Result<(), DriverError> {
        check_flags(
            flags,
            DELETE_CHILDREN | DELETE_METADATA_ONLY | DELETE_CHILDREN_ONLY,
            FUNC,
        )?;
        if flags & DELETE_CHILDREN != 0 && flags & DELETE_CHILDREN_ONLY != 0 {
            return Err(DriverError::InvalidArg(
                "Flags 'VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN' and 'VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN_ONLY' are mutually exclusive".into(),
            ));
        }
        let mut store = self.store()?;
        let snap = store.get(&self.name)?.clone();
        // Children after their parents; deleted deepest first.
        let mut targets: Vec<SnapshotDef> = Vec::new();
        if flags & DELETE_CHILDREN_ONLY == 0 {
            targets.push(snap.clone());
        }
        if flags & (DELETE_CHILDREN | DELETE_CHILDREN_ONLY) != 0 {
            targets.extend(store.descendants(&self.name).into_iter().cloned());
        }
        let metadata_only = flags & DELETE_METADATA_ONLY != 0;
        if !metadata_only {
            let external = targets.iter().filter(|t| t.is_external()).count();
            if external > 0 {
                return Err(DriverError::Unsupported(format!(
                    "deletion of {external} external disk snapshots not supported yet"
                )));
            }
        }
        for t in targets.iter().rev() {
            if !metadata_only {
                self.discard_images(t)?;
            }
            store.remove(&t.name)?;
        }
        Ok(())
    }

    /// Remove the snapshot's tag from its images: through the running guest's QEMU, or
    /// with `qemu-img`.
    fn discard_images(&self, snap: &SnapshotDef) -> Result<(), DriverError> {
        let (_, def) = self.dom.current_def()?;
        if !self.dom.is_active()? {
            return disks::offline("-d", snap, &def);
        }
        let (mut g, _) = self.dom.guest()?;
        let nodes = live::nodes(&mut g)?;
        // A disk moved onto an overlay since keeps the tag in its backing image, which
        // QEMU's job does not reach; the tag then stays there, as with libvirt.
        let devices: Vec<String> = internal_nodes(snap, &def, &nodes).unwrap_or_else(|_| {
            nodes
                .iter()
                .filter(|n| n.format == "qcow2")
                .map(|n| n.node.clone())
                .collect()
        });
        if devices.is_empty() {
            return Ok(());
        }
        live::job(
            &mut g,
            SnapshotJob::Delete {
                tag: snap.name.clone(),
                devices,
            },
        )
    }
}
