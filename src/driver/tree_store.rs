//! The metadata of snapshots and checkpoints: one `NAME.xml` per item in
//! `LIB/KIND/DOMAIN/`, 0600, the current one marked `<active>1</active>`, each naming its
//! parent (libvirt: qemuDomainSnapshotWriteMetadata, qemuCheckpointWriteMetadata, and their
//! loaders). The files are the only record: every call reads them afresh, so the trees
//! outlive `vsh` and the guest's monitor. Both kinds keep their tree the same way, so one
//! store serves them.

use std::path::PathBuf;

use super::config;
use super::{Connect, DriverError};

/// An item of a tree of snapshots or checkpoints as the store keeps it.
pub(crate) trait TreeNode: Clone {
    /// The directory under the connection's lib dir (`snapshot`, `checkpoint`).
    const KIND: &'static str;

    fn node_name(&self) -> &str;
    fn parent_name(&self) -> Option<&str>;
    fn is_current(&self) -> bool;
    /// This item with its current marker set to `current`.
    fn with_current(&self, current: bool) -> Self;
    /// This item moved under `parent`.
    fn with_parent(&self, parent: Option<String>) -> Self;
    /// Parse a metadata file; `None` when it does not parse.
    fn parse_file(xml: &str) -> Option<Self>;
    /// The metadata file's text (with what only the file holds).
    fn file_xml(&self) -> String;
    /// libvirt's error for a name no item has.
    fn not_found(name: &str) -> DriverError;
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

/// The items of one domain as their files hold them.
pub(crate) struct TreeStore<T> {
    dir: PathBuf,
    /// In name order.
    pub(crate) items: Vec<T>,
}

impl<T: TreeNode> TreeStore<T> {
    /// Where domain `dom`'s files live.
    pub(crate) fn dir_of(conn: &Connect, dom: &str) -> PathBuf {
        conn.dirs().lib.join(T::KIND).join(dom)
    }

    /// Read every file of `dom`. A file that does not parse, or whose name is not its
    /// item's, is left alone and ignored, as libvirt does on load.
    pub(crate) fn load(conn: &Connect, dom: &str) -> Result<Self, DriverError> {
        let dir = Self::dir_of(conn, dom);
        let mut items = Vec::new();
        for p in config::xml_files(&dir)? {
            if let Some(d) = config::read_small(&p)?.and_then(|x| T::parse_file(&x))
                && p.file_stem().is_some_and(|s| *s == *d.node_name())
            {
                items.push(d);
            }
        }
        Ok(TreeStore { dir, items })
    }

    pub(crate) fn get(&self, name: &str) -> Result<&T, DriverError> {
        self.items
            .iter()
            .find(|s| s.node_name() == name)
            .ok_or_else(|| T::not_found(name))
    }

    pub(crate) fn exists(&self, name: &str) -> bool {
        self.items.iter().any(|s| s.node_name() == name)
    }

    pub(crate) fn current(&self) -> Option<&T> {
        self.items.iter().find(|s| s.is_current())
    }

    /// The direct children of `name` (`None`: the roots).
    pub(crate) fn children(&self, name: Option<&str>) -> Vec<&T> {
        children(&self.items, name)
    }

    /// Every descendant of `name`, each after its parent.
    pub(crate) fn descendants(&self, name: &str) -> Vec<&T> {
        descendants(&self.items, name)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.xml"))
    }

    /// Write `def`'s file (0600, atomically) and keep it in the store.
    pub(crate) fn write(&mut self, def: &T) -> Result<(), DriverError> {
        config::make_dir(&self.dir)?;
        config::write_atomic(&self.path(def.node_name()), def.file_xml().as_bytes())?;
        match self
            .items
            .iter_mut()
            .find(|s| s.node_name() == def.node_name())
        {
            Some(s) => *s = def.clone(),
            None => self.items.push(def.clone()),
        }
        Ok(())
    }

    /// Make `name` the current item (or none), rewriting the files whose marker changes
    /// (libvirt: qemuSnapshotSetCurrent, qemuCheckpointSetCurrent).
    pub(crate) fn set_current(&mut self, name: Option<&str>) -> Result<(), DriverError> {
        let changed: Vec<T> = self
            .items
            .iter()
            .filter(|s| s.is_current() != (Some(s.node_name()) == name))
            .map(|s| s.with_current(!s.is_current()))
            .collect();
        for s in &changed {
            self.write(s)?;
        }
        Ok(())
    }

    /// Drop `name`'s file; its children move to its parent, and if it was current its
    /// parent becomes current (libvirt: qemuDomainSnapshotDiscard, qemuCheckpointDiscard).
    pub(crate) fn remove(&mut self, name: &str) -> Result<(), DriverError> {
        let def = self.get(name)?.clone();
        let parent = def.parent_name().map(str::to_string);
        let moved: Vec<T> = self
            .children(Some(name))
            .into_iter()
            .map(|c| c.with_parent(parent.clone()))
            .collect();
        for c in &moved {
            self.write(c)?;
        }
        if def.is_current() {
            let parent = parent.as_deref().filter(|p| self.exists(p));
            self.set_current(parent)?;
        }
        config::remove(&self.path(name))?;
        self.items.retain(|s| s.node_name() != name);
        Ok(())
    }

    /// Remove every file (`undefine --snapshots-metadata`, `--checkpoints-metadata`).
    pub(crate) fn remove_all(conn: &Connect, dom: &str) -> Result<(), DriverError> {
        let dir = Self::dir_of(conn, dom);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(DriverError::System {
                msg: format!("Failed to remove {} metadata '{}'", T::KIND, dir.display()),
                err: e,
            }),
        }
    }
}
