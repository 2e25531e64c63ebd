//! Snapshot metadata: one `NAME.xml` per snapshot in `LIB/snapshot/DOMAIN/`, 0600, the
//! current one marked with `<active>1</active>` (libvirt: qemuDomainSnapshotWriteMetadata,
//! qemuDomainSnapshotLoad). The files are the only record: every call reads them afresh,
//! so snapshots outlive `vsh` and the guest's monitor.

use std::path::{Path, PathBuf};

use crate::domain::snapshot::{ParseFlags, SnapshotDef, parse};
use crate::driver::config;
use crate::driver::{Connect, DriverError};

/// The snapshots of one domain as their files hold them.
pub(crate) struct Store {
    dir: PathBuf,
    /// Parsed snapshots, in name order.
    pub(crate) snaps: Vec<SnapshotDef>,
    /// Files that do not parse, left alone and ignored as libvirt does on load.
    pub(crate) corrupt: Vec<PathBuf>,
}

fn no_snapshot(name: &str) -> DriverError {
    DriverError::NoSnapshot(format!("no domain snapshot with matching name '{name}'"))
}

/// An item of a tree of snapshots or checkpoints: both name their parent, and both stores
/// walk their trees the same way.
pub(crate) trait TreeNode {
    fn node_name(&self) -> &str;
    fn parent_name(&self) -> Option<&str>;
}

impl TreeNode for SnapshotDef {
    fn node_name(&self) -> &str {
        &self.name
    }
    fn parent_name(&self) -> Option<&str> {
        self.parent.as_deref()
    }
}

/// The direct children of `name` among `all` (`None`: the roots), in `all`'s order.
pub(crate) fn children<'a, T: TreeNode>(all: &'a [T], name: Option<&str>) -> Vec<&'a T> {
    all.iter().filter(|s| s.parent_name() == name).collect()
}

/// Every descendant of `name` among `all`, each after its parent (libvirt's topological
/// order).
pub(crate) fn descendants<'a, T: TreeNode>(all: &'a [T], name: &str) -> Vec<&'a T> {
    let mut out = Vec::new();
    let mut todo = vec![name];
    while let Some(n) = todo.pop() {
        for c in children(all, Some(n)) {
            todo.push(c.node_name());
            out.push(c);
        }
    }
    out
}

impl Store {
    /// Where domain `dom`'s snapshot files live.
    pub(crate) fn dir_of(conn: &Connect, dom: &str) -> PathBuf {
        conn.dirs().lib.join("snapshot").join(dom)
    }

    /// Read every snapshot file of `dom`.
    pub(crate) fn load(conn: &Connect, dom: &str) -> Result<Store, DriverError> {
        let dir = Self::dir_of(conn, dom);
        let mut store = Store {
            dir: dir.clone(),
            snaps: Vec::new(),
            corrupt: Vec::new(),
        };
        let paths = config::xml_files(&dir)?;
        let flags = ParseFlags {
            redefine: true,
            internal: true,
            now: 0,
        };
        for p in paths {
            match config::read_small(&p)?.map(|x| parse(&x, flags)) {
                Some(Ok(d)) if p.file_stem().is_some_and(|s| *s == *d.name) => store.snaps.push(d),
                Some(_) => store.corrupt.push(p),
                None => {}
            }
        }
        Ok(store)
    }

    pub(crate) fn get(&self, name: &str) -> Result<&SnapshotDef, DriverError> {
        self.snaps
            .iter()
            .find(|s| s.name == name)
            .ok_or_else(|| no_snapshot(name))
    }

    pub(crate) fn exists(&self, name: &str) -> bool {
        self.snaps.iter().any(|s| s.name == name)
    }

    pub(crate) fn current(&self) -> Option<&SnapshotDef> {
        self.snaps.iter().find(|s| s.current)
    }

    /// The direct children of `name` (`None`: the roots).
    pub(crate) fn children(&self, name: Option<&str>) -> Vec<&SnapshotDef> {
        children(&self.snaps, name)
    }

    /// Every descendant of `name`, each after its parent (libvirt's topological order).
    pub(crate) fn descendants(&self, name: &str) -> Vec<&SnapshotDef> {
        descendants(&self.snaps, name)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.xml"))
    }

    /// Write `def`'s file (0600, atomically) and keep it in the store.
    pub(crate) fn write(&mut self, def: &SnapshotDef) -> Result<(), DriverError> {
        config::make_dir(&self.dir)?;
        config::write_atomic(&self.path(&def.name), def.to_xml(true).as_bytes())?;
        match self.snaps.iter_mut().find(|s| s.name == def.name) {
            Some(s) => *s = def.clone(),
            None => self.snaps.push(def.clone()),
        }
        Ok(())
    }

    /// Make `name` the current snapshot (or none), rewriting the files whose marker changes
    /// (libvirt: qemuSnapshotSetCurrent).
    pub(crate) fn set_current(&mut self, name: Option<&str>) -> Result<(), DriverError> {
        let changed: Vec<SnapshotDef> = self
            .snaps
            .iter()
            .filter(|s| s.current != (Some(s.name.as_str()) == name))
            .map(|s| SnapshotDef {
                current: !s.current,
                ..s.clone()
            })
            .collect();
        for s in &changed {
            self.write(s)?;
        }
        Ok(())
    }

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

    /// Drop `name`'s file; its children move to its parent, and if it was current its
    /// parent becomes current (libvirt: qemuDomainSnapshotDiscard).
    pub(crate) fn remove(&mut self, name: &str) -> Result<(), DriverError> {
        let def = self.get(name)?.clone();
        let moved: Vec<SnapshotDef> = self
            .children(Some(name))
            .into_iter()
            .map(|c| SnapshotDef {
                parent: def.parent.clone(),
                ..c.clone()
            })
            .collect();
        for c in &moved {
            self.write(c)?;
        }
        if def.current {
            self.set_current(def.parent.as_deref())?;
        }
        config::remove(&self.path(name))?;
        self.snaps.retain(|s| s.name != name);
        Ok(())
    }

    /// Remove every file (`undefine --snapshots-metadata`).
    pub(crate) fn remove_all(conn: &Connect, dom: &str) -> Result<(), DriverError> {
        let dir = Self::dir_of(conn, dom);
        remove_dir(&dir)
    }
}

fn remove_dir(dir: &Path) -> Result<(), DriverError> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(DriverError::System {
            msg: format!("Failed to remove snapshot metadata '{}'", dir.display()),
            err: e,
        }),
    }
}
