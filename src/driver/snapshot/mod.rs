//! Domain snapshots (libvirt: src/qemu/qemu_snapshot.c, the virDomainSnapshot API):
//! internal snapshots of qcow2 disks, with the guest's memory through QEMU's snapshot jobs
//! while it runs and with `qemu-img snapshot` while it is shut off; external disk-only
//! snapshots onto new qcow2 overlays (`blockdev-snapshot` live, `qemu-img create -b`
//! offline). Metadata lives in [`store`]; live QMP goes through the guest's monitor.

mod create;
mod delete;
pub(crate) mod disks;
mod live;
mod memory;
mod revert;
mod revert_external;
pub(crate) mod store;

use std::time::{SystemTime, UNIX_EPOCH};

use crate::domain::snapshot::{Location, SnapshotDef, SnapshotState};
use crate::domain::{DomainDef, FormatFlags};
use crate::driver::DriverError;
use crate::driver::domain::Domain;
use store::Store;

pub(crate) use live::nodes as live_nodes;

// virDomainSnapshotCreateFlags
pub const CREATE_REDEFINE: u32 = 1 << 0;
pub const CREATE_CURRENT: u32 = 1 << 1;
pub const CREATE_NO_METADATA: u32 = 1 << 2;
pub const CREATE_HALT: u32 = 1 << 3;
pub const CREATE_DISK_ONLY: u32 = 1 << 4;
pub const CREATE_REUSE_EXT: u32 = 1 << 5;
pub const CREATE_QUIESCE: u32 = 1 << 6;
pub const CREATE_ATOMIC: u32 = 1 << 7;
pub const CREATE_LIVE: u32 = 1 << 8;
pub const CREATE_VALIDATE: u32 = 1 << 9;

// virDomainSnapshotRevertFlags
pub const REVERT_RUNNING: u32 = 1 << 0;
pub const REVERT_PAUSED: u32 = 1 << 1;
pub const REVERT_FORCE: u32 = 1 << 2;

// virDomainSnapshotDeleteFlags
pub const DELETE_CHILDREN: u32 = 1 << 0;
pub const DELETE_METADATA_ONLY: u32 = 1 << 1;
pub const DELETE_CHILDREN_ONLY: u32 = 1 << 2;

// virDomainSnapshotListFlags
pub const LIST_ROOTS: u32 = 1 << 0;
/// With `list_all_children`/`num_children`: all descendants, not only direct children.
pub const LIST_DESCENDANTS: u32 = 1 << 0;
pub const LIST_METADATA: u32 = 1 << 1;
pub const LIST_LEAVES: u32 = 1 << 2;
pub const LIST_NO_LEAVES: u32 = 1 << 3;
pub const LIST_NO_METADATA: u32 = 1 << 4;
pub const LIST_INACTIVE: u32 = 1 << 5;
pub const LIST_ACTIVE: u32 = 1 << 6;
pub const LIST_DISK_ONLY: u32 = 1 << 7;
pub const LIST_INTERNAL: u32 = 1 << 8;
pub const LIST_EXTERNAL: u32 = 1 << 9;
pub const LIST_TOPOLOGICAL: u32 = 1 << 10;

/// virUndefineFlags' VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA.
pub const UNDEFINE_SNAPSHOTS_METADATA: u32 = 1 << 1;

/// libvirt's virCheckFlags refusal.
pub(crate) fn check_flags(flags: u32, allowed: u32, func: &str) -> Result<(), DriverError> {
    let bad = flags & !allowed;
    if bad != 0 {
        return Err(DriverError::InvalidArg(format!(
            "unsupported flags (0x{bad:x}) in function {func}"
        )));
    }
    Ok(())
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// A snapshot of a domain (`virDomainSnapshotPtr`).
#[derive(Debug, Clone)]
pub struct DomainSnapshot<'c> {
    dom: Domain<'c>,
    name: String,
}

impl<'c> DomainSnapshot<'c> {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn domain(&self) -> &Domain<'c> {
        &self.dom
    }

    fn store(&self) -> Result<Store, DriverError> {
        Store::load(self.dom.connect(), self.dom.name())
    }

    /// The definition as its file holds it.
    pub fn def(&self) -> Result<SnapshotDef, DriverError> {
        Ok(self.store()?.get(&self.name)?.clone())
    }

    /// The snapshot's XML (`virsh snapshot-dumpxml`).
    pub fn xml_desc(&self, _flags: u32) -> Result<String, DriverError> {
        Ok(self.def()?.to_xml(false))
    }

    /// The parent snapshot; libvirt's error when there is none.
    pub fn parent(&self) -> Result<DomainSnapshot<'c>, DriverError> {
        match self.def()?.parent {
            Some(p) => Ok(self.dom.snapshot_handle(&p)),
            None => Err(DriverError::NoSnapshot(format!(
                "snapshot '{}' does not have a parent",
                self.name
            ))),
        }
    }

    pub fn is_current(&self, _flags: u32) -> Result<bool, DriverError> {
        Ok(self.def()?.current)
    }

    /// Every snapshot this driver knows has metadata.
    pub fn has_metadata(&self, _flags: u32) -> Result<bool, DriverError> {
        self.def().map(|_| true)
    }

    /// Children (all descendants with [`LIST_DESCENDANTS`]), filtered as
    /// [`Domain::list_all_snapshots`] filters.
    pub fn list_all_children(&self, flags: u32) -> Result<Vec<DomainSnapshot<'c>>, DriverError> {
        let store = self.store()?;
        store.get(&self.name)?;
        let found: Vec<&SnapshotDef> = if flags & LIST_DESCENDANTS != 0 {
            store.descendants(&self.name)
        } else {
            store.children(Some(&self.name))
        };
        Ok(filter(&store, found, flags & !LIST_DESCENDANTS)
            .into_iter()
            .map(|s| self.dom.snapshot_handle(&s.name))
            .collect())
    }

    pub fn num_children(&self, flags: u32) -> Result<usize, DriverError> {
        Ok(self.list_all_children(flags)?.len())
    }
}

/// libvirt's listing filters (virDomainSnapshotObjListGetNames' flag groups): each group
/// given keeps the snapshots matching any of its flags.
fn filter<'a>(store: &Store, snaps: Vec<&'a SnapshotDef>, flags: u32) -> Vec<&'a SnapshotDef> {
    snaps
        .into_iter()
        .filter(|s| {
            let leaf = store.children(Some(&s.name)).is_empty();
            let leaves = flags & (LIST_LEAVES | LIST_NO_LEAVES);
            let leaves_ok = leaves == 0
                || (flags & LIST_LEAVES != 0 && leaf)
                || (flags & LIST_NO_LEAVES != 0 && !leaf);
            let meta_ok =
                flags & (LIST_METADATA | LIST_NO_METADATA) == 0 || flags & LIST_METADATA != 0;
            let state = s.state.unwrap_or(SnapshotState::NoState);
            let kinds = flags & (LIST_INACTIVE | LIST_ACTIVE | LIST_DISK_ONLY);
            let kind_ok = kinds == 0
                || (flags & LIST_INACTIVE != 0 && state == SnapshotState::Shutoff)
                || (flags & LIST_ACTIVE != 0 && state.is_active())
                || (flags & LIST_DISK_ONLY != 0 && state == SnapshotState::DiskSnapshot);
            let loc = flags & (LIST_INTERNAL | LIST_EXTERNAL);
            let loc_ok = loc == 0
                || (flags & LIST_INTERNAL != 0 && !s.is_external())
                || (flags & LIST_EXTERNAL != 0 && s.is_external());
            leaves_ok && meta_ok && kind_ok && loc_ok
        })
        .collect()
}

/// `snaps` with every parent before its children, roots in name order.
fn topological(store: &Store) -> Vec<&SnapshotDef> {
    let mut out = Vec::new();
    let mut roots: Vec<&SnapshotDef> = store
        .items
        .iter()
        .filter(|s| s.parent.as_deref().is_none_or(|p| !store.exists(p)))
        .collect();
    roots.sort_by(|a, b| a.name.cmp(&b.name));
    for r in roots {
        out.push(r);
        out.extend(store.descendants(&r.name));
    }
    out
}

impl<'c> Domain<'c> {
    pub(crate) fn snapshot_handle(&self, name: &str) -> DomainSnapshot<'c> {
        DomainSnapshot {
            dom: self.clone(),
            name: name.to_string(),
        }
    }

    fn snapshots(&self) -> Result<Store, DriverError> {
        self.uuid_checked()?;
        Store::load(self.connect(), self.name())
    }

    /// The domain still exists under this handle's UUID.
    fn uuid_checked(&self) -> Result<(), DriverError> {
        self.is_active().map(|_| ())
    }

    /// The definition now in force: the live one while running, else the config.
    pub(crate) fn current_def(&self) -> Result<(String, DomainDef), DriverError> {
        let xml = self.xml_desc(FormatFlags {
            inactive: false,
            secure: true,
        })?;
        let def = crate::domain::parse_unprepared(&xml)?;
        Ok((xml, def))
    }

    /// Snapshots of this domain (`virDomainListAllSnapshots`), in name order, or parents
    /// before children with [`LIST_TOPOLOGICAL`]; [`LIST_ROOTS`] keeps those without parent.
    pub fn list_all_snapshots(&self, flags: u32) -> Result<Vec<DomainSnapshot<'c>>, DriverError> {
        let store = self.snapshots()?;
        let all: Vec<&SnapshotDef> = if flags & LIST_TOPOLOGICAL != 0 {
            topological(&store)
        } else {
            store.items.iter().collect()
        };
        let all = if flags & LIST_ROOTS != 0 {
            all.into_iter().filter(|s| s.parent.is_none()).collect()
        } else {
            all
        };
        Ok(
            filter(&store, all, flags & !(LIST_ROOTS | LIST_TOPOLOGICAL))
                .into_iter()
                .map(|s| self.snapshot_handle(&s.name))
                .collect(),
        )
    }

    /// `virDomainSnapshotNum`.
    pub fn snapshot_num(&self, flags: u32) -> Result<usize, DriverError> {
        Ok(self.list_all_snapshots(flags)?.len())
    }

    pub fn snapshot_lookup_by_name(
        &self,
        name: &str,
        _flags: u32,
    ) -> Result<DomainSnapshot<'c>, DriverError> {
        self.snapshots()?.get(name)?;
        Ok(self.snapshot_handle(name))
    }

    /// Whether the domain has a current snapshot.
    pub fn has_current_snapshot(&self, _flags: u32) -> Result<bool, DriverError> {
        Ok(self.snapshots()?.current().is_some())
    }

    /// The current snapshot (`virDomainSnapshotCurrent`); libvirt's error when none is.
    pub fn snapshot_current(&self, _flags: u32) -> Result<DomainSnapshot<'c>, DriverError> {
        match self.snapshots()?.current() {
            Some(s) => Ok(self.snapshot_handle(&s.name)),
            None => Err(DriverError::NoSnapshot(
                "the domain does not have a current snapshot".into(),
            )),
        }
    }

    /// `undefine` of a shut-off domain with snapshots: refused, or with
    /// [`UNDEFINE_SNAPSHOTS_METADATA`] their metadata goes (libvirt: qemuDomainUndefineFlags).
    pub(crate) fn undefine_snapshots(&self, active: bool, flags: u32) -> Result<(), DriverError> {
        if active {
            return Ok(());
        }
        let store = Store::load(self.connect(), self.name())?;
        let n = store.items.len();
        if n == 0 {
            return Ok(());
        }
        if flags & UNDEFINE_SNAPSHOTS_METADATA == 0 {
            return Err(DriverError::OperationInvalid(format!(
                "cannot delete inactive domain with {n} snapshots"
            )));
        }
        Store::remove_all(self.connect(), self.name())
    }
}

/// The domain definition a snapshot holds, if any.
pub(crate) fn snapshot_domain(snap: &SnapshotDef) -> Result<Option<DomainDef>, DriverError> {
    node_domain(snap.domain.as_ref())
}

/// The definition a revert makes the config: the inactive one kept with a snapshot of a
/// running persistent domain, else the snapshot's domain (libvirt: qemuSnapshotRevert's
/// `config`).
pub(crate) fn snapshot_config(snap: &SnapshotDef) -> Result<Option<DomainDef>, DriverError> {
    match &snap.inactive_domain {
        Some(_) => node_domain(snap.inactive_domain.as_ref()),
        None => snapshot_domain(snap),
    }
}

fn node_domain(node: Option<&crate::domain::XmlNode>) -> Result<Option<DomainDef>, DriverError> {
    let Some(node) = node else {
        return Ok(None);
    };
    let mut node = node.clone();
    node.name = "domain".into();
    let mut w = crate::xmlfmt::XmlWriter::new();
    node.write(&mut w);
    Ok(Some(crate::domain::parse_unprepared(&w.finish())?))
}

/// Whether any disk of `def` is snapshot as `loc`.
pub(crate) fn has_disks(def: &SnapshotDef, loc: Location) -> bool {
    def.disks.iter().any(|d| d.snapshot == Some(loc))
}
