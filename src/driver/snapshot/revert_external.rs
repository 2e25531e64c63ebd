//! Revert to an external snapshot without memory, as libvirt 9.9+ does it (libvirt:
//! qemuSnapshotRevertExternalPrepare, qemuSnapshotRevertExternalInactive,
//! qemuSnapshotRevertExternalFinish; disk-only snapshots of a running guest as 10.10 does,
//! through the inactive path). The snapshot's overlays hold what came after it, so the
//! disks it was taken on stay untouched: each gets a new qcow2 overlay, the domain's
//! config reads those, and the overlays the domain ran on until now are removed (that
//! state is not kept, as with internal snapshots).
//!
//! Unlike libvirt, the new overlays are made (`qemu-img create -u` with the size read
//! through `-U`) before the running guest is stopped, so a revert that cannot make them
//! leaves the guest running as it was.

use std::path::Path;

use serde_json::Value;

use super::create::point_to_overlays;
use super::disks;
use super::*;

impl DomainSnapshot<'_> {
    /// Revert to external snapshot `snap` (its state is not running or paused).
    pub(super) fn revert_external(
        &self,
        store: &mut Store,
        snap: &SnapshotDef,
        flags: u32,
    ) -> Result<(), DriverError> {
        let dom = &self.dom;
        self.rollback_domain(snap)?;
        let Some(mut config) = snapshot_config(snap)? else {
            return Err(DriverError::Internal("snapshot has no domain".into()));
        };
        config.name = dom.name().to_string();
        let persistent = dom.is_persistent()?;
        let start = flags & (REVERT_RUNNING | REVERT_PAUSED) != 0;
        if !persistent && !start {
            return Err(DriverError::OperationInvalid(
                "transient domain needs to request run or pause to revert to inactive snapshot"
                    .into(),
            ));
        }
        let tmp = overlays_for(&config)?;
        let created = create_overlays(&tmp, &config)?;
        let res = (|| -> Result<(), DriverError> {
            if dom.is_active()? {
                // libvirt stops it VIR_DOMAIN_SHUTOFF_FROM_SNAPSHOT (qemu_snapshot.c).
                dom.stop(crate::driver::monitor::proto::StopReason::FromSnapshot)?;
            }
            point_to_overlays(&mut config, &tmp);
            let xml = config.to_xml(FormatFlags {
                inactive: true,
                secure: true,
            });
            if persistent {
                dom.connect().define_domain_xml(&xml)?;
            }
            Ok(())
        })();
        if let Err(e) = res {
            for f in &created {
                let _ = std::fs::remove_file(f);
            }
            return Err(e);
        }
        finish(store, &snap.name, tmp)?;
        if start {
            let paused = flags & REVERT_PAUSED != 0;
            if persistent {
                dom.create_with_flags(paused)?;
            } else {
                let xml = config.to_xml(FormatFlags {
                    inactive: true,
                    secure: true,
                });
                dom.connect().create_domain_xml(&xml, paused.into())?;
            }
        }
        Ok(())
    }
}

impl DomainSnapshot<'_> {
    /// The definition `snap` was taken of, under this domain's name; libvirt's refusal
    /// when it has none (libvirt: qemuSnapshotRevertValidate).
    pub(super) fn rollback_domain(&self, snap: &SnapshotDef) -> Result<DomainDef, DriverError> {
        match snapshot_domain(snap)? {
            Some(mut def) => {
                def.name = self.dom.name().to_string();
                Ok(def)
            }
            None => Err(DriverError::OperationInvalid(format!(
                "snapshot '{}' lacks domain '{}' rollback info",
                snap.name,
                self.dom.name()
            ))),
        }
    }
}

/// A temporary snapshot of every disk of `config` onto a new overlay named after the
/// creation time (libvirt: virDomainSnapshotAlignDisks with the default location forced
/// to external). A name already taken (two reverts within a second) moves on to the next
/// second rather than failing as libvirt would.
pub(super) fn overlays_for(config: &DomainDef) -> Result<SnapshotDef, DriverError> {
    let mut stamp = now();
    let taken = |stamp: i64| {
        config.devices.disks.iter().any(|d| {
            d.source
                .as_ref()
                .and_then(|s| s.file.as_deref())
                .is_some_and(|f| Path::new(&disks::overlay_name(f, &stamp.to_string())).exists())
        })
    };
    for _ in 0..1000 {
        if !taken(stamp) {
            break;
        }
        stamp += 1;
    }
    let mut tmp = SnapshotDef {
        name: stamp.to_string(),
        creation_time: Some(stamp),
        state: Some(SnapshotState::Shutoff),
        memory: Some(Location::No),
        ..Default::default()
    };
    disks::align(&mut tmp, config, Location::External, false)?;
    Ok(tmp)
}

/// `qemu-img create -u` of each overlay onto the disk it covers, sized as that disk
/// (read with `-U`: the running guest may hold it). A failure removes what was made.
pub(super) fn create_overlays(
    tmp: &SnapshotDef,
    config: &DomainDef,
) -> Result<Vec<String>, DriverError> {
    let mut created = Vec::new();
    let res = (|| -> Result<(), DriverError> {
        for sd in &tmp.disks {
            if sd.snapshot != Some(Location::External) {
                continue;
            }
            let Some(disk) = config
                .devices
                .disks
                .iter()
                .find(|d| d.target.dev == sd.name)
            else {
                continue;
            };
            let base = disk
                .source
                .as_ref()
                .and_then(|s| s.file.clone())
                .unwrap_or_default();
            let format = disks::format_of(disk);
            let size = virtual_size(config, &base, format)?;
            let overlay = sd.source_file().unwrap_or_default().to_string();
            disks::run_qemu_img(
                config,
                &[
                    "create", "-q", "-f", "qcow2", "-F", format, "-b", &base, "-u", &overlay, &size,
                ],
            )?;
            created.push(overlay);
        }
        Ok(())
    })();
    if let Err(e) = res {
        for f in &created {
            let _ = std::fs::remove_file(f);
        }
        return Err(e);
    }
    Ok(created)
}

/// The virtual size of image `path` of `format`, in bytes.
fn virtual_size(config: &DomainDef, path: &str, format: &str) -> Result<String, DriverError> {
    let out = disks::qemu_img_output(config, &["info", "-U", "--output=json", "-f", format, path])?;
    let v: Value = serde_json::from_str(&out).map_err(|e| {
        DriverError::Internal(format!("cannot parse 'qemu-img info' of '{path}': {e}"))
    })?;
    v["virtual-size"]
        .as_u64()
        .map(|s| s.to_string())
        .ok_or_else(|| DriverError::Internal(format!("no virtual size for '{path}'")))
}

/// The overlays the domain ran on until now go, and `name`'s metadata records the new
/// ones: as its disks when it has no children, else as its revert disks, so the images
/// its children are built on stay (libvirt: qemuSnapshotRevertExternalFinish).
pub(super) fn finish(store: &mut Store, name: &str, tmp: SnapshotDef) -> Result<(), DriverError> {
    if let Some(cur) = store.current().cloned() {
        let leaf = store.children(Some(&cur.name)).is_empty();
        let mut cur = cur;
        let old: Vec<String> = if !cur.revert_disks.is_empty() {
            std::mem::take(&mut cur.revert_disks)
                .iter()
                .filter(|d| d.snapshot == Some(Location::External))
                .filter_map(|d| d.source_file().map(str::to_string))
                .collect()
        } else if leaf {
            // Only a leaf's overlays: a snapshot with children has their state in its
            // overlays (libvirt removes them regardless).
            cur.disks
                .iter()
                .filter(|d| d.snapshot == Some(Location::External))
                .filter_map(|d| d.source_file().map(str::to_string))
                .collect()
        } else {
            Vec::new()
        };
        let new: Vec<&str> = tmp.disks.iter().filter_map(|d| d.source_file()).collect();
        for f in old.iter().filter(|f| !new.contains(&f.as_str())) {
            // Best effort, as in libvirt: a missing overlay is no reason to fail.
            let _ = std::fs::remove_file(f);
        }
        store.write(&cur)?;
    }
    let mut snap = store.get(name)?.clone();
    if store.children(Some(name)).is_empty() {
        snap.disks = tmp.disks;
        snap.revert_disks.clear();
    } else {
        snap.revert_disks = tmp.disks;
    }
    store.write(&snap)
}
