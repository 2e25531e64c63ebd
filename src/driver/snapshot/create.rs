//! `virDomainSnapshotCreateXML` (libvirt: qemuSnapshotCreateXML, qemuSnapshotCreate).

use serde_json::json;

use super::disks::{self, format_of};
use super::live::{self, Moved};
use super::store::Store;
use super::*;
use crate::domain::devices::{BackingStore, Disk, DiskSource, Driver};
use crate::domain::snapshot::{ParseFlags, parse};
use crate::domain::xml::parse_document;
use crate::driver::domain::guest_err;
use crate::driver::monitor::proto::SnapshotJob;

const FUNC: &str = "qemuDomainSnapshotCreateXML";

impl<'c> Domain<'c> {
    /// Take a snapshot as `xml` describes it (`virsh snapshot-create`): of a running guest
    /// its memory and disks (internal), of a shut-off one its disks (internal), with
    /// [`CREATE_DISK_ONLY`] new overlays for the disks (external). [`CREATE_REDEFINE`]
    /// records the metadata of an existing snapshot.
    pub fn snapshot_create_xml(
        &self,
        xml: &str,
        flags: u32,
    ) -> Result<DomainSnapshot<'c>, DriverError> {
        check_flags(
            flags,
            CREATE_REDEFINE
                | CREATE_CURRENT
                | CREATE_NO_METADATA
                | CREATE_HALT
                | CREATE_DISK_ONLY
                | CREATE_ATOMIC
                | CREATE_LIVE,
            FUNC,
        )?;
        let redefine = flags & CREATE_REDEFINE != 0;
        let mut def = parse(
            xml,
            ParseFlags {
                redefine,
                internal: false,
                now: now(),
            },
        )?;
        let mut store = self.snapshots()?;
        if redefine {
            return self.redefine(store, def, flags);
        }
        if flags & CREATE_CURRENT != 0 {
            return Err(DriverError::InvalidArg(
                "current flag requires redefine flag".into(),
            ));
        }
        if store.exists(&def.name) {
            return Err(DriverError::OperationFailed(format!(
                "domain moment {} already exists",
                def.name
            )));
        }
        let active = self.is_active()?;
        let (dom_xml, dom_def) = self.current_def()?;
        let disk_only = flags & CREATE_DISK_ONLY != 0;
        let default = if disk_only {
            if def.memory.is_some_and(|m| m != Location::No) {
                return Err(DriverError::Unsupported(
                    "disk-only snapshot can't have memory".into(),
                ));
            }
            def.memory = Some(Location::No);
            // libvirt: qemuSnapshotCreateAlignDisks; a shut-off guest's disks are clean.
            def.state = Some(if active {
                SnapshotState::DiskSnapshot
            } else {
                SnapshotState::Shutoff
            });
            Location::External
        } else if active {
            let memory = *def.memory.get_or_insert(Location::Internal);
            let paused = self.state()?.state == crate::driver::process::State::Paused;
            def.state = Some(if memory == Location::No {
                SnapshotState::DiskSnapshot
            } else if paused {
                SnapshotState::Paused
            } else {
                SnapshotState::Running
            });
            // libvirt: qemuSnapshotCreateAlignDisks; memory in a file takes the disks
            // onto overlays.
            if memory == Location::External {
                Location::External
            } else {
                Location::Internal
            }
        } else {
            if def.memory.is_some_and(|m| m != Location::No) {
                return Err(DriverError::Unsupported(
                    "memory state cannot be saved with offline or disk-only snapshot".into(),
                ));
            }
            def.memory = Some(Location::No);
            def.state = Some(SnapshotState::Shutoff);
            Location::Internal
        };
        disks::align(&mut def, &dom_def, default, active)?;
        if def.state == Some(SnapshotState::DiskSnapshot) && active && !disk_only {
            // A running guest's snapshot without memory is an external one.
            return Err(DriverError::Unsupported(
                "active qemu domains require external disk snapshots".into(),
            ));
        }
        def.domain = Some(parse_document(&dom_xml)?);
        if active && self.is_persistent()? {
            // What a revert makes the config again: the live definition carries runtime
            // parts (console logs, aliases) the config must not gain.
            let config = self.xml_desc(FormatFlags {
                inactive: true,
                secure: true,
            })?;
            let mut node = parse_document(&config)?;
            node.name = "inactiveDomain".into();
            def.inactive_domain = Some(node);
        }
        def.parent = store.current().map(|s| s.name.clone());
        let external = has_disks(&def, Location::External);
        let memory_file = def.memory == Some(Location::External);
        match (external, active) {
            _ if memory_file && active => self.external_with_memory(&def)?,
            (true, true) => self.external_live(&def)?,
            (true, false) => self.external_offline(&def, &dom_def)?,
            (false, true) => self.internal_live(&def, &dom_def)?,
            (false, false) => disks::offline("-c", &def, &dom_def)?,
        }
        if flags & CREATE_NO_METADATA == 0 {
            def.current = true;
            store.clear_revert_disks()?;
            store.write(&def)?;
            store.set_current(Some(&def.name))?;
        }
        if flags & CREATE_HALT != 0 && active {
            // libvirt stops it VIR_DOMAIN_SHUTOFF_FROM_SNAPSHOT (qemu_snapshot.c).
            self.stop(crate::driver::monitor::proto::StopReason::FromSnapshot)?;
        }
        Ok(self.snapshot_handle(&def.name))
    }

    /// `--redefine`: record an existing snapshot (libvirt: virDomainSnapshotRedefinePrep).
    fn redefine(
        &self,
        mut store: Store,
        mut def: SnapshotDef,
        flags: u32,
    ) -> Result<DomainSnapshot<'c>, DriverError> {
        if flags & CREATE_NO_METADATA != 0 {
            return Err(DriverError::InvalidArg(
                "cannot redefine a snapshot without metadata".into(),
            ));
        }
        if let Some(p) = &def.parent {
            if !store.exists(p) {
                return Err(DriverError::InvalidArg(format!(
                    "parent {p} for snapshot {} not found",
                    def.name
                )));
            }
            if *p == def.name || store.descendants(&def.name).iter().any(|d| d.name == *p) {
                return Err(DriverError::InvalidArg(format!(
                    "parent {p} would create cycle to {}",
                    def.name
                )));
            }
        }
        if let Some(uuid) = def
            .domain
            .as_ref()
            .and_then(|d| d.child("uuid"))
            .map(|u| u.text.trim().to_string())
            && uuid != self.uuid_string()
        {
            return Err(DriverError::InvalidArg(format!(
                "definition for snapshot {} must use uuid {}",
                def.name,
                self.uuid_string()
            )));
        }
        if def.domain.is_none() {
            def.domain = Some(parse_document(&self.current_def()?.0)?);
        }
        let was_current = store.get(&def.name).is_ok_and(|s| s.current);
        def.current = was_current || flags & CREATE_CURRENT != 0;
        if def.current {
            store.clear_revert_disks()?;
        }
        store.write(&def)?;
        if def.current {
            store.set_current(Some(&def.name))?;
        }
        Ok(self.snapshot_handle(&def.name))
    }

    /// Memory and every qcow2 disk through QEMU's `snapshot-save`.
    fn internal_live(&self, def: &SnapshotDef, dom: &DomainDef) -> Result<(), DriverError> {
        let (mut g, _) = self.guest()?;
        let nodes = live::nodes(&mut g)?;
        let devices = internal_nodes(def, dom, &nodes)?;
        let vmstate = devices.first().cloned().ok_or_else(|| {
            DriverError::Unsupported("internal snapshot requires a qcow2 disk".into())
        })?;
        live::job(
            &mut g,
            SnapshotJob::Save {
                tag: def.name.clone(),
                vmstate,
                devices,
            },
        )
    }

    /// New qcow2 overlays on top of each external disk of a running guest, and the live
    /// XML and the config pointed at them (libvirt: qemuSnapshotCreateActiveExternal).
    pub(super) fn external_live(&self, def: &SnapshotDef) -> Result<(), DriverError> {
        self.move_to_overlays(def)?;
        self.definitions_on_overlays(def)
    }

    /// QEMU's side of [`Domain::external_live`]: the overlays created with `qemu-img`,
    /// added with `blockdev-add` and put on top in one `transaction` of
    /// `blockdev-snapshot`s. The definitions are left as they were. A failure removes what
    /// was added and created.
    pub(super) fn move_to_overlays(&self, def: &SnapshotDef) -> Result<Vec<Moved>, DriverError> {
        let (mut g, _) = self.guest()?;
        let live_def = crate::domain::parse_unprepared(&g.status().xml)?;
        let nodes = live::nodes(&mut g)?;
        let stamp = super::now();
        let mut created: Vec<String> = Vec::new();
        let mut added: Vec<String> = Vec::new();
        let mut moved: Vec<Moved> = Vec::new();
        let mut actions = Vec::new();
        let bitmaps = crate::driver::checkpoint::bitmaps(&mut g)?;
        let res = (|| -> Result<(), DriverError> {
            for (i, sd) in def.disks.iter().enumerate() {
                if sd.snapshot != Some(Location::External) {
                    continue;
                }
                let disk = disk_by_target(&live_def, &sd.name)?;
                let base = disk_file(disk)?;
                let node = live::node_for(&nodes, &base)?;
                let overlay = sd.source_file().unwrap_or_default().to_string();
                let size = node.virtual_size.to_string();
                let dom = &live_def;
                disks::run_qemu_img(
                    dom,
                    &[
                        "create",
                        "-f",
                        "qcow2",
                        "-F",
                        &node.format,
                        "-b",
                        &base,
                        "-u",
                        &overlay,
                        &size,
                    ],
                )?;
                created.push(overlay.clone());
                let storage = format!("snap-{stamp}-{i}-storage");
                let format = format!("snap-{stamp}-{i}-format");
                g.qmp(
                    "blockdev-add",
                    Some(json!({"driver": "file", "filename": overlay, "node-name": storage})),
                )
                .map_err(guest_err)?;
                added.push(storage.clone());
                g.qmp(
                    "blockdev-add",
                    Some(
                        json!({"driver": "qcow2", "node-name": format, "file": storage,
                                "backing": null}),
                    ),
                )
                .map_err(guest_err)?;
                added.push(format.clone());
                // The checkpoints' bitmaps go on recording in the overlay, the image
                // below turning read-only (libvirt: qemuSnapshotDiskBitmapsPropagate).
                for b in bitmaps.iter().filter(|b| {
                    b.node == node.node && b.persistent && b.recording && !b.inconsistent
                }) {
                    actions.push(json!({"type": "block-dirty-bitmap-add",
                        "data": {"node": format, "name": b.name, "persistent": true,
                                 "disabled": false, "granularity": b.granularity}}));
                }
                actions.push(json!({"type": "blockdev-snapshot",
                                    "data": {"node": node.node, "overlay": format}}));
                moved.push(Moved {
                    dst: sd.name.clone(),
                    base_node: node.node.clone(),
                    format,
                    storage,
                    file: overlay,
                });
            }
            g.qmp("transaction", Some(json!({ "actions": actions })))
                .map_err(guest_err)?;
            Ok(())
        })();
        if let Err(e) = res {
            // Best effort: the failure is the news; the guest still runs on its old images.
            for n in added.iter().rev() {
                let _ = g.qmp("blockdev-del", Some(json!({ "node-name": n })));
            }
            for f in &created {
                let _ = std::fs::remove_file(f);
            }
            return Err(e);
        }
        Ok(moved)
    }

    /// The live XML and the config with the external disks of `def` on their overlays.
    pub(super) fn definitions_on_overlays(&self, def: &SnapshotDef) -> Result<(), DriverError> {
        let (mut g, persistent) = self.guest()?;
        let mut live_def = crate::domain::parse_unprepared(&g.status().xml)?;
        point_to_overlays(&mut live_def, def);
        g.set_live_xml(live_def.to_xml(FormatFlags::default()))
            .map_err(guest_err)?;
        drop(g);
        if persistent {
            self.update_config(def)?;
        }
        Ok(())
    }

    /// Overlays for a shut-off guest with `qemu-img create -b` and the config pointed at
    /// them (libvirt: qemuSnapshotCreateInactiveExternal).
    fn external_offline(&self, def: &SnapshotDef, dom: &DomainDef) -> Result<(), DriverError> {
        let mut created: Vec<String> = Vec::new();
        let res = (|| -> Result<(), DriverError> {
            for sd in &def.disks {
                if sd.snapshot != Some(Location::External) {
                    continue;
                }
                let disk = disk_by_target(dom, &sd.name)?;
                let base = disk_file(disk)?;
                let overlay = sd.source_file().unwrap_or_default().to_string();
                let opts = format!(
                    "backing_fmt={},backing_file={}",
                    format_of(disk),
                    base.replace(',', ",,")
                );
                disks::run_qemu_img(dom, &["create", "-f", "qcow2", "-o", &opts, &overlay])?;
                created.push(overlay);
            }
            self.update_config(def)
        })();
        if res.is_err() {
            for f in &created {
                let _ = std::fs::remove_file(f);
            }
        }
        res
    }

    /// The persistent definition with the external disks on their overlays.
    fn update_config(&self, def: &SnapshotDef) -> Result<(), DriverError> {
        let xml = self.xml_desc(FormatFlags {
            inactive: true,
            secure: true,
        })?;
        let mut config = crate::domain::parse_unprepared(&xml)?;
        point_to_overlays(&mut config, def);
        self.connect()
            .define_domain_xml(&config.to_xml(FormatFlags {
                inactive: true,
                secure: true,
            }))?;
        Ok(())
    }
}

/// The format nodes of the disks `def` snapshots internally; only qcow2 disks hold one.
pub(crate) fn internal_nodes(
    def: &SnapshotDef,
    dom: &DomainDef,
    nodes: &[live::Node],
) -> Result<Vec<String>, DriverError> {
    disks::internal_paths(def, dom)
        .into_iter()
        .map(|p| live::node_for(nodes, p).map(|n| n.node.clone()))
        .collect()
}

fn disk_by_target<'a>(dom: &'a DomainDef, target: &str) -> Result<&'a Disk, DriverError> {
    dom.devices
        .disks
        .iter()
        .find(|d| d.target.dev == target)
        .ok_or_else(|| DriverError::Unsupported(format!("no disk named '{target}'")))
}

fn disk_file(d: &Disk) -> Result<String, DriverError> {
    d.source
        .as_ref()
        .and_then(|s| s.file.clone())
        .ok_or_else(|| {
            DriverError::Unsupported(format!(
                "external snapshots are supported only for disks of type 'file' ({})",
                d.target.dev
            ))
        })
}

/// Each external disk of `snap` now reads its overlay, the old image as its backing store
/// (libvirt: qemuSnapshotDiskUpdateSource).
pub(super) fn point_to_overlays(dom: &mut DomainDef, snap: &SnapshotDef) {
    for sd in &snap.disks {
        if sd.snapshot != Some(Location::External) {
            continue;
        }
        let Some(overlay) = sd.source_file() else {
            continue;
        };
        let Some(disk) = dom
            .devices
            .disks
            .iter_mut()
            .find(|d| d.target.dev == sd.name)
        else {
            continue;
        };
        let old_format = format_of(disk).to_string();
        let backing = BackingStore {
            btype: Some("file".into()),
            format: Some(old_format),
            source: disk.source.take().map(|mut s| {
                s.index = None;
                s
            }),
            backing: disk.backing_store.take().map(Box::new),
            ..Default::default()
        };
        disk.backing_store = Some(backing);
        disk.source = Some(DiskSource {
            file: Some(overlay.to_string()),
            ..Default::default()
        });
        disk.dtype = Some("file".into());
        let driver = disk.driver.get_or_insert_with(|| Driver {
            name: Some("qemu".into()),
            ..Default::default()
        });
        driver.dtype = Some("qcow2".into());
    }
}
