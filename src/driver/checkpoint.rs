//! Domain checkpoints (libvirt: src/qemu/qemu_checkpoint.c, the virDomainCheckpoint API):
//! a persistent dirty bitmap per qcow2 disk, added by QEMU in one transaction while the
//! guest runs, so a later backup copies only what changed since.
//!
//! As libvirt 9.0 does, every checkpoint's bitmap stays active: the bitmap of checkpoint C
//! holds every write since C, so an incremental backup from C reads it alone, and deleting
//! a checkpoint removes its bitmaps without merging them anywhere.
//!
//! Metadata: one `NAME.xml` per checkpoint in `LIB/checkpoint/DOMAIN/`, 0600, the current one
//! marked `<active>1</active>` (libvirt: qemuCheckpointWriteMetadata). The files are the only
//! record, read afresh by every call, so checkpoints outlive `vsh` and the guest's monitor.

use serde_json::{Value, json};

use super::DriverError;
use super::domain::Domain;
use super::hotplug::qmp;
use super::process::Guest;
use super::snapshot::check_flags;
use super::tree_store::{TreeNode, TreeStore};
use crate::domain::checkpoint::{CheckpointDef, CheckpointFormat, ParseFlags, parse};
use crate::domain::{DomainDef, FormatFlags};

// virDomainCheckpointCreateFlags
pub const CREATE_REDEFINE: u32 = 1 << 0;
pub const CREATE_QUIESCE: u32 = 1 << 1;
pub const CREATE_REDEFINE_VALIDATE: u32 = 1 << 2;

// virDomainCheckpointXMLFlags
pub const XML_SECURE: u32 = 1 << 0;
pub const XML_NO_DOMAIN: u32 = 1 << 1;
pub const XML_SIZE: u32 = 1 << 2;

// virDomainCheckpointListFlags
pub const LIST_ROOTS: u32 = 1 << 0;
/// With `list_all_children`: all descendants, not only direct children.
pub const LIST_DESCENDANTS: u32 = 1 << 0;
pub const LIST_TOPOLOGICAL: u32 = 1 << 1;
pub const LIST_LEAVES: u32 = 1 << 2;
pub const LIST_NO_LEAVES: u32 = 1 << 3;

// virDomainCheckpointDeleteFlags
pub const DELETE_CHILDREN: u32 = 1 << 0;
pub const DELETE_METADATA_ONLY: u32 = 1 << 1;
pub const DELETE_CHILDREN_ONLY: u32 = 1 << 2;

/// virUndefineFlags' VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA.
pub const UNDEFINE_CHECKPOINTS_METADATA: u32 = 1 << 4;

/// The temporary bitmap `--size` merges into (libvirt's name).
const SIZE_BITMAP: &str = "libvirt-tmp-size-xml";

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn no_checkpoint(name: &str) -> DriverError {
    DriverError::NoCheckpoint(format!("no domain checkpoint with matching name '{name}'"))
}

impl TreeNode for CheckpointDef {
    const KIND: &'static str = "checkpoint";

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
        CheckpointDef {
            current,
            ..self.clone()
        }
    }
    fn with_parent(&self, parent: Option<String>) -> Self {
        CheckpointDef {
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
        self.to_xml(CheckpointFormat {
            secure: true,
            internal: true,
            ..Default::default()
        })
    }
    fn not_found(name: &str) -> DriverError {
        no_checkpoint(name)
    }
}

/// The checkpoints of one domain as their files hold them (`LIB/checkpoint/DOMAIN/`).
pub(crate) type Store = TreeStore<CheckpointDef>;

/// One dirty bitmap of a block node (`query-named-block-nodes`).
#[derive(Debug, Clone)]
pub(crate) struct Bitmap {
    pub node: String,
    pub name: String,
    /// Dirty bytes.
    pub count: u64,
    pub persistent: bool,
    pub inconsistent: bool,
    pub recording: bool,
    pub granularity: u64,
}

/// Every dirty bitmap QEMU has.
pub(crate) fn bitmaps(g: &mut Guest) -> Result<Vec<Bitmap>, DriverError> {
    let named = qmp(g, "query-named-block-nodes", Some(json!({"flat": true})))?;
    let mut out = Vec::new();
    for n in named.as_array().into_iter().flatten() {
        let node = n["node-name"].as_str().unwrap_or("").to_string();
        for b in n["dirty-bitmaps"].as_array().into_iter().flatten() {
            out.push(Bitmap {
                node: node.clone(),
                name: b["name"].as_str().unwrap_or("").to_string(),
                count: b["count"].as_u64().unwrap_or(0),
                persistent: b["persistent"].as_bool().unwrap_or(false),
                inconsistent: b["inconsistent"].as_bool().unwrap_or(false),
                recording: b["recording"].as_bool().unwrap_or(false),
                granularity: b["granularity"].as_u64().unwrap_or(0),
            });
        }
    }
    Ok(out)
}

/// Whether bitmap `name` is usable on the disk whose chain has the format nodes `chain`,
/// active layer first (libvirt: qemuBlockBitmapChainIsValid): present from the top down
/// without gaps (an external snapshot carries it on into its overlay), each persistent,
/// recording and consistent.
pub(crate) fn bitmap_valid(all: &[Bitmap], chain: &[String], name: &str) -> bool {
    let mut found = false;
    let mut ended = false;
    for node in chain {
        match all.iter().find(|b| b.node == *node && b.name == name) {
            None if !found => return false,
            None => ended = true,
            Some(_) if ended => return false,
            Some(b) if b.inconsistent || !b.persistent || !b.recording => return false,
            Some(_) => found = true,
        }
    }
    found
}

/// The layers of `chain` holding bitmap `name`, as `block-dirty-bitmap-merge` sources
/// (libvirt: qemuBlockGetBitmapMergeActions).
pub(crate) fn merge_sources(all: &[Bitmap], chain: &[String], name: &str) -> Vec<Value> {
    chain
        .iter()
        .filter(|n| all.iter().any(|b| b.node == **n && b.name == name))
        .map(|n| json!({ "node": n, "name": name }))
        .collect()
}

/// The format nodes of disk `dst`'s chain, active layer first.
pub(crate) fn disk_chain(
    g: &mut Guest,
    def: &DomainDef,
    dst: &str,
) -> Result<Vec<String>, DriverError> {
    let d = def
        .devices
        .disks
        .iter()
        .find(|d| d.target.dev == dst)
        .ok_or_else(|| DriverError::InvalidArg(format!("no disk named '{dst}'")))?;
    let file = d
        .source
        .as_ref()
        .and_then(|s| s.file.clone())
        .unwrap_or_default();
    Ok(super::blockjob_chain::chain_of(g, &file)?
        .into_iter()
        .map(|l| l.node)
        .filter(|n| !n.is_empty())
        .collect())
}

/// The format node QEMU reads disk `dst` of `def` through, and the disk's format.
pub(crate) fn disk_node(
    g: &mut Guest,
    def: &DomainDef,
    dst: &str,
) -> Result<(String, String), DriverError> {
    let d = def
        .devices
        .disks
        .iter()
        .find(|d| d.target.dev == dst)
        .ok_or_else(|| DriverError::InvalidArg(format!("no disk named '{dst}'")))?;
    let file = d
        .source
        .as_ref()
        .and_then(|s| s.file.clone())
        .unwrap_or_default();
    let nodes = super::snapshot::live_nodes(g)?;
    let n = nodes.iter().find(|n| n.file == file).ok_or_else(|| {
        DriverError::Internal(format!("cannot find the block node of disk image '{file}'"))
    })?;
    Ok((n.node.clone(), n.format.clone()))
}

/// A checkpoint of a domain (`virDomainCheckpointPtr`).
#[derive(Debug, Clone)]
pub struct DomainCheckpoint<'c> {
    dom: Domain<'c>,
    name: String,
}

impl<'c> DomainCheckpoint<'c> {
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
    pub fn def(&self) -> Result<CheckpointDef, DriverError> {
        Ok(self.store()?.get(&self.name)?.clone())
    }

    /// The checkpoint's XML (`virsh checkpoint-dumpxml`); [`XML_SIZE`] asks the running
    /// QEMU how many bytes changed since (libvirt: qemuCheckpointGetXMLDesc).
    pub fn xml_desc(&self, flags: u32) -> Result<String, DriverError> {
        check_flags(
            flags,
            XML_SECURE | XML_NO_DOMAIN | XML_SIZE,
            "qemuCheckpointGetXMLDesc",
        )?;
        let mut def = self.def()?;
        if flags & XML_SIZE != 0 {
            self.update_size(&mut def)?;
        }
        Ok(def.to_xml(CheckpointFormat {
            secure: flags & XML_SECURE != 0,
            no_domain: flags & XML_NO_DOMAIN != 0,
            size: flags & XML_SIZE != 0,
            internal: false,
        }))
    }

    // libvirt: qemuCheckpointGetXMLDescUpdateSize: the bitmap merged into a temporary one
    // on the top image, whose dirty count is the size.
    fn update_size(&self, def: &mut CheckpointDef) -> Result<(), DriverError> {
        if !self.dom.is_active()? {
            return Err(DriverError::OperationInvalid(
                "domain is not running".into(),
            ));
        }
        let mut lg = self.dom.live_guest()?;
        let all = bitmaps(&mut lg.guest)?;
        let mut nodes = Vec::new();
        for d in &mut def.disks {
            d.size = None;
            if !d.is_bitmap() {
                continue;
            }
            let Ok(chain) = disk_chain(&mut lg.guest, &lg.def, &d.name) else {
                continue;
            };
            if !bitmap_valid(&all, &chain, &def.name) {
                continue;
            }
            let sources = merge_sources(&all, &chain, &def.name);
            nodes.push((d.name.clone(), chain[0].clone(), sources));
        }
        if nodes.is_empty() {
            return Ok(());
        }
        let mut recover = Vec::new();
        let mut merge = Vec::new();
        let mut cleanup = Vec::new();
        for (_, node, sources) in &nodes {
            let rm = json!({"type": "block-dirty-bitmap-remove",
                "data": {"node": node, "name": SIZE_BITMAP}});
            if all.iter().any(|b| b.node == *node && b.name == SIZE_BITMAP) {
                recover.push(rm.clone());
            }
            merge.push(json!({"type": "block-dirty-bitmap-add",
                "data": {"node": node, "name": SIZE_BITMAP, "persistent": false, "disabled": true}}));
            merge.push(json!({"type": "block-dirty-bitmap-merge",
                "data": {"node": node, "target": SIZE_BITMAP, "bitmaps": sources}}));
            cleanup.push(rm);
        }
        let g = &mut lg.guest;
        if !recover.is_empty() {
            qmp(g, "transaction", Some(json!({ "actions": recover })))?;
        }
        qmp(g, "transaction", Some(json!({ "actions": merge })))?;
        let stats = bitmaps(g);
        qmp(g, "transaction", Some(json!({ "actions": cleanup })))?;
        let stats = stats?;
        for (dst, node, _) in &nodes {
            if let Some(b) = stats
                .iter()
                .find(|b| b.node == *node && b.name == SIZE_BITMAP)
                && let Some(d) = def.disks.iter_mut().find(|d| d.name == *dst)
            {
                d.size = Some(b.count);
            }
        }
        Ok(())
    }

    /// The parent checkpoint; libvirt's error when there is none.
    pub fn parent(&self) -> Result<DomainCheckpoint<'c>, DriverError> {
        match self.def()?.parent {
            Some(p) => Ok(self.dom.checkpoint_handle(&p)),
            None => Err(DriverError::NoCheckpoint(format!(
                "checkpoint '{}' does not have a parent",
                self.name
            ))),
        }
    }

    /// Children (all descendants with [`LIST_DESCENDANTS`]), filtered by
    /// [`LIST_LEAVES`]/[`LIST_NO_LEAVES`].
    pub fn list_all_children(&self, flags: u32) -> Result<Vec<DomainCheckpoint<'c>>, DriverError> {
        check_flags(
            flags,
            LIST_DESCENDANTS | LIST_TOPOLOGICAL | LIST_LEAVES | LIST_NO_LEAVES,
            "qemuDomainCheckpointListAllChildren",
        )?;
        let store = self.store()?;
        store.get(&self.name)?;
        let found = if flags & LIST_DESCENDANTS != 0 {
            store.descendants(&self.name)
        } else {
            store.children(Some(&self.name))
        };
        Ok(filter(&store, found, flags)
            .into_iter()
            .map(|c| self.dom.checkpoint_handle(&c.name))
            .collect())
    }

    /// Delete this checkpoint and its bitmaps (its children move to its parent), with
    /// [`DELETE_CHILDREN`] its descendants too, with [`DELETE_CHILDREN_ONLY`] only them;
    /// [`DELETE_METADATA_ONLY`] leaves the bitmaps (libvirt: qemuCheckpointDelete).
    pub fn delete(&self, flags: u32) -> Result<(), DriverError> {
        check_flags(
            flags,
            DELETE_CHILDREN | DELETE_METADATA_ONLY | DELETE_CHILDREN_ONLY,
            "qemuCheckpointDelete",
        )?;
        let metadata_only = flags & DELETE_METADATA_ONLY != 0;
        if !metadata_only && !self.dom.is_active()? {
            return Err(DriverError::OperationUnsupported(
                "cannot delete checkpoint for inactive domain".into(),
            ));
        }
        let mut store = self.store()?;
        let chk = store.get(&self.name)?.clone();
        let mut targets: Vec<CheckpointDef> = Vec::new();
        if flags & DELETE_CHILDREN_ONLY == 0 {
            targets.push(chk.clone());
        }
        let with_children = flags & (DELETE_CHILDREN | DELETE_CHILDREN_ONLY) != 0;
        if with_children {
            targets.extend(store.descendants(&self.name).into_iter().cloned());
        }
        let current_gone = with_children && store.descendants(&self.name).iter().any(|c| c.current);
        // Deepest first, so each removal reparents nothing that goes too.
        for t in targets.iter().rev() {
            if !metadata_only {
                self.dom.discard_bitmaps(t)?;
            }
            store.remove(&t.name)?;
        }
        if current_gone && flags & DELETE_CHILDREN_ONLY != 0 {
            // libvirt: the checkpoint whose descendants went is current again.
            store.set_current(Some(&self.name))?;
        }
        Ok(())
    }
}

/// The leaves filter (libvirt: virDomainMomentObjListGetNames' leaf flags).
fn filter<'a>(store: &Store, chks: Vec<&'a CheckpointDef>, flags: u32) -> Vec<&'a CheckpointDef> {
    chks.into_iter()
        .filter(|c| {
            let leaf = store.children(Some(&c.name)).is_empty();
            let leaves = flags & (LIST_LEAVES | LIST_NO_LEAVES);
            leaves == 0
                || (flags & LIST_LEAVES != 0 && leaf)
                || (flags & LIST_NO_LEAVES != 0 && !leaf)
        })
        .collect()
}

/// Parents before their children, roots in name order.
fn topological(store: &Store) -> Vec<&CheckpointDef> {
    let mut roots: Vec<&CheckpointDef> = store
        .items
        .iter()
        .filter(|c| c.parent.as_deref().is_none_or(|p| !store.exists(p)))
        .collect();
    roots.sort_by(|a, b| a.name.cmp(&b.name));
    let mut out = Vec::new();
    for r in roots {
        out.push(r);
        out.extend(store.descendants(&r.name));
    }
    out
}

/// The transaction actions adding checkpoint `def`'s bitmaps on the running guest, after
/// libvirt's checks of the disks (libvirt: qemuCheckpointPrepare, qemuCheckpointAddActions).
/// `def` gains the inactive domain and its aligned disks.
pub(crate) fn prepare_create(
    g: &mut Guest,
    live: &DomainDef,
    config_xml: &str,
    def: &mut CheckpointDef,
) -> Result<Vec<Value>, DriverError> {
    def.domain = Some(crate::domain::xml::parse_document(config_xml)?);
    def.align_disks(live)?;
    let mut actions = Vec::new();
    for (i, c) in def.disks.iter().enumerate() {
        if !c.is_bitmap() {
            continue;
        }
        if c.bitmap.as_deref() != Some(def.name.as_str()) {
            return Err(DriverError::Unsupported(format!(
                "bitmap for disk '{}' must match checkpoint name '{}'",
                c.name, def.name
            )));
        }
        let disk = &live.devices.disks[i];
        let format = disk
            .driver
            .as_ref()
            .and_then(|d| d.dtype.clone())
            .unwrap_or_else(|| "raw".into());
        if format != "qcow2" {
            return Err(DriverError::Unsupported(format!(
                "checkpoint for disk {} unsupported for storage type {format}",
                c.name
            )));
        }
        let (node, _) = disk_node(g, live, &c.name)?;
        actions.push(json!({"type": "block-dirty-bitmap-add",
            "data": {"node": node, "name": def.name, "persistent": true}}));
    }
    Ok(actions)
}

impl<'c> Domain<'c> {
    pub(crate) fn checkpoint_handle(&self, name: &str) -> DomainCheckpoint<'c> {
        DomainCheckpoint {
            dom: self.clone(),
            name: name.to_string(),
        }
    }

    pub(crate) fn checkpoints(&self) -> Result<Store, DriverError> {
        self.is_active()?;
        Store::load(self.connect(), self.name())
    }

    /// `virDomainCheckpointCreateXML`: a bitmap on every (named) qcow2 disk of the running
    /// guest; [`CREATE_REDEFINE`] records an existing checkpoint's metadata, checking its
    /// bitmaps with [`CREATE_REDEFINE_VALIDATE`] (libvirt: qemuCheckpointCreateXML).
    pub fn checkpoint_create_xml(
        &self,
        xml: &str,
        flags: u32,
    ) -> Result<DomainCheckpoint<'c>, DriverError> {
        check_flags(
            flags,
            CREATE_REDEFINE | CREATE_REDEFINE_VALIDATE,
            "qemuCheckpointCreateXML",
        )?;
        let redefine = flags & CREATE_REDEFINE != 0;
        let active = self.is_active()?;
        if !redefine && !active {
            return Err(DriverError::OperationUnsupported(
                "cannot create checkpoint for inactive domain".into(),
            ));
        }
        let mut def = parse(
            xml,
            ParseFlags {
                redefine,
                internal: false,
                now: now(),
            },
        )?;
        let mut store = self.checkpoints()?;
        if redefine {
            return self.checkpoint_redefine(store, def, flags & CREATE_REDEFINE_VALIDATE != 0);
        }
        if store.exists(&def.name) {
            return Err(DriverError::OperationFailed(format!(
                "domain moment {} already exists",
                def.name
            )));
        }
        let config = self.xml_desc(FormatFlags {
            inactive: true,
            secure: true,
        })?;
        let mut lg = self.live_guest()?;
        let actions = prepare_create(&mut lg.guest, &lg.def, &config, &mut def)?;
        def.parent = store.current().map(|c| c.name.clone());
        if !actions.is_empty() {
            qmp(
                &mut lg.guest,
                "transaction",
                Some(json!({ "actions": actions })),
            )?;
        }
        self.checkpoint_finalize(&mut store, def)
    }

    /// Write a new checkpoint's file and make it current (libvirt:
    /// qemuCheckpointCreateFinalize).
    pub(crate) fn checkpoint_finalize(
        &self,
        store: &mut Store,
        mut def: CheckpointDef,
    ) -> Result<DomainCheckpoint<'c>, DriverError> {
        def.current = true;
        let name = def.name.clone();
        store.write(&def).map_err(|_| {
            DriverError::Internal(format!("unable to save metadata for checkpoint {name}"))
        })?;
        store.set_current(Some(&name))?;
        Ok(self.checkpoint_handle(&name))
    }

    // libvirt: qemuCheckpointRedefine, virDomainCheckpointRedefinePrep
    fn checkpoint_redefine(
        &self,
        mut store: Store,
        mut def: CheckpointDef,
        validate: bool,
    ) -> Result<DomainCheckpoint<'c>, DriverError> {
        if let Some(p) = &def.parent {
            if *p == def.name {
                return Err(DriverError::InvalidArg(format!(
                    "cannot set moment {} as its own parent",
                    def.name
                )));
            }
            let mut other = store.get(p).map_err(|_| {
                DriverError::InvalidArg(format!("parent {p} for moment {} not found", def.name))
            })?;
            while let Some(pp) = &other.parent {
                if *pp == def.name {
                    return Err(DriverError::InvalidArg(format!(
                        "parent {} would create cycle to {}",
                        other.name, def.name
                    )));
                }
                match store.get(pp) {
                    Ok(o) => other = o,
                    Err(_) => break,
                }
            }
        }
        if let Some(dom) = &def.domain {
            let uuid = dom.child("uuid").map(|u| u.text.trim().to_string());
            let mine = self.uuid_string();
            if uuid.as_deref() != Some(mine.as_str()) {
                return Err(DriverError::InvalidArg(format!(
                    "definition for checkpoint {} must use uuid {mine}",
                    def.name
                )));
            }
            let mut node = dom.clone();
            node.name = "domain".into();
            let mut w = crate::xmlfmt::XmlWriter::new();
            node.write(&mut w);
            let domdef = crate::domain::parse_unprepared(&w.finish())?;
            def.align_disks(&domdef)?;
        } else {
            def.assign_bitmap_names();
        }
        let current = store.current().map(|c| c.name.clone());
        let update_current = current.is_none() || (def.parent.is_some() && def.parent == current);
        if validate {
            if !self.is_active()? {
                return Err(DriverError::OperationInvalid(
                    "domain is not running".into(),
                ));
            }
            let mut lg = self.live_guest()?;
            let all = bitmaps(&mut lg.guest)?;
            for c in def.disks.iter().filter(|c| c.is_bitmap()) {
                // Disks gone since (detached) are tolerated, as libvirt does.
                let Ok(chain) = disk_chain(&mut lg.guest, &lg.def, &c.name) else {
                    continue;
                };
                if !bitmap_valid(&all, &chain, &def.name) {
                    return Err(DriverError::CheckpointInconsistent(format!(
                        "missing or broken bitmap '{}' for disk '{}'",
                        def.name, c.name
                    )));
                }
            }
        }
        // A redefinition of an existing checkpoint keeps its place as current.
        def.current = store.get(&def.name).is_ok_and(|o| o.current);
        let name = def.name.clone();
        if update_current {
            self.checkpoint_finalize(&mut store, def)?;
        } else {
            store.write(&def).map_err(|_| {
                DriverError::Internal(format!("unable to save metadata for checkpoint {name}"))
            })?;
        }
        Ok(self.checkpoint_handle(&name))
    }

    /// Checkpoints of this domain (`virDomainListAllCheckpoints`), in name order, or
    /// parents first with [`LIST_TOPOLOGICAL`]; [`LIST_ROOTS`] keeps those without parent.
    pub fn list_all_checkpoints(
        &self,
        flags: u32,
    ) -> Result<Vec<DomainCheckpoint<'c>>, DriverError> {
        check_flags(
            flags,
            LIST_ROOTS | LIST_TOPOLOGICAL | LIST_LEAVES | LIST_NO_LEAVES,
            "qemuDomainListAllCheckpoints",
        )?;
        let store = self.checkpoints()?;
        let all: Vec<&CheckpointDef> = if flags & LIST_TOPOLOGICAL != 0 {
            topological(&store)
        } else {
            store.items.iter().collect()
        };
        let all = if flags & LIST_ROOTS != 0 {
            all.into_iter().filter(|c| c.parent.is_none()).collect()
        } else {
            all
        };
        Ok(filter(&store, all, flags)
            .into_iter()
            .map(|c| self.checkpoint_handle(&c.name))
            .collect())
    }

    pub fn checkpoint_lookup_by_name(
        &self,
        name: &str,
        _flags: u32,
    ) -> Result<DomainCheckpoint<'c>, DriverError> {
        self.checkpoints()?.get(name)?;
        Ok(self.checkpoint_handle(name))
    }

    /// Remove checkpoint `chk`'s bitmaps from the running guest's disks (libvirt:
    /// qemuCheckpointDiscardBitmaps).
    fn discard_bitmaps(&self, chk: &CheckpointDef) -> Result<(), DriverError> {
        let mut lg = self.live_guest()?;
        let all = bitmaps(&mut lg.guest)?;
        let mut actions = Vec::new();
        for c in &chk.disks {
            // A disk unplugged since has taken its bitmap with it.
            if !c.is_bitmap() || !lg.def.devices.disks.iter().any(|d| d.target.dev == c.name) {
                continue;
            }
            let Some(bitmap) = &c.bitmap else {
                return Err(DriverError::InvalidArg(format!(
                    "missing bitmap name for disk '{}' of checkpoint '{}'",
                    c.name, chk.name
                )));
            };
            let chain = disk_chain(&mut lg.guest, &lg.def, &c.name)?;
            let holders: Vec<&String> = chain
                .iter()
                .filter(|n| all.iter().any(|b| b.node == **n && b.name == *bitmap))
                .collect();
            if holders.is_empty() {
                return Err(DriverError::Internal(format!(
                    "bitmap '{bitmap}' not found in backing chain of '{}'",
                    c.name
                )));
            }
            // Only the active layer: QEMU opens the backing images read-only, and libvirt
            // reopens them read-write for this (blockdev-reopen), which is not done here;
            // a bitmap left in a backing image is never read again.
            actions.push(json!({"type": "block-dirty-bitmap-remove",
                "data": {"node": holders[0], "name": bitmap}}));
        }
        if actions.is_empty() {
            return Ok(());
        }
        qmp(
            &mut lg.guest,
            "transaction",
            Some(json!({ "actions": actions })),
        )
        .map(drop)
    }

    /// `undefine` of a shut-off domain with checkpoints: refused, or with
    /// [`UNDEFINE_CHECKPOINTS_METADATA`] their metadata goes (libvirt: qemuDomainUndefineFlags).
    pub(crate) fn undefine_checkpoints(&self, active: bool, flags: u32) -> Result<(), DriverError> {
        if active {
            return Ok(());
        }
        let n = Store::load(self.connect(), self.name())?.items.len();
        if n == 0 {
            return Ok(());
        }
        if flags & UNDEFINE_CHECKPOINTS_METADATA == 0 {
            return Err(DriverError::OperationInvalid(format!(
                "cannot delete inactive domain with {n} checkpoints"
            )));
        }
        Store::remove_all(self.connect(), self.name())
    }
}
