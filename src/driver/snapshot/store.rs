//! Snapshot metadata: one `NAME.xml` per snapshot in `LIB/snapshot/DOMAIN/` (the shared
//! [`TreeStore`]), with what only snapshots keep (libvirt: qemuDomainSnapshotWriteMetadata,
//! qemuDomainSnapshotLoad).

use crate::domain::snapshot::{ParseFlags, SnapshotDef, parse};
use crate::driver::DriverError;
pub(crate) use crate::driver::tree_store::{TreeNode, TreeStore};

/// The snapshots of one domain as their files hold them.
pub(crate) type Store = TreeStore<SnapshotDef>;

impl TreeNode for SnapshotDef {
    const KIND: &'static str = "snapshot";

    fn node_name(&self) -> &str {
        &self.name
    }
    fn parent_name(&self) -> Option<&str> {
        self.parent.as_deref()
    }
    fn is_current(&self) -> bool {
        self.current
    }
    fn with_current(&self, current: bool) -> Self {
        SnapshotDef {
            current,
            ..self.clone()
        }
    }
    fn with_parent(&self, parent: Option<String>) -> Self {
        SnapshotDef {
            parent,
            ..self.clone()
        }
    }
    fn parse_file(xml: &str) -> Option<Self> {
        let flags = ParseFlags {
            redefine: true,
            internal: true,
            now: 0,
        };
        parse(xml, flags).ok()
    }
    fn file_xml(&self) -> String {
        self.to_xml(true)
    }
    fn not_found(name: &str) -> DriverError {
        DriverError::NoSnapshot(format!("no domain snapshot with matching name '{name}'"))
    }
}

impl Store {
    /// Forget the current snapshot's revert overlays: a new current snapshot is built on
    /// them, they are its disks now (libvirt: qemuSnapshotClearRevertdisks).
    pub(crate) fn clear_revert_disks(&mut self) -> Result<(), DriverError> {
        if let Some(cur) = self.current().filter(|c| !c.revert_disks.is_empty()) {
            let cur = SnapshotDef {
                revert_disks: Vec::new(),
                ..cur.clone()
            };
            self.write(&cur)?;
        }
        Ok(())
    }
}
