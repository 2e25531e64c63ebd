//! External snapshots with memory (`snapshot-create-as --memspec file=...`; libvirt:
//! qemuSnapshotCreateActiveExternal, and qemuSnapshotRevertActive with
//! qemuSnapshotRevertExternalPrepare). The memory goes through migration into a file laid
//! out as a save image ([`crate::driver::saveimage`]: the domain XML first), the disks onto
//! new overlays. Reverting starts QEMU from that file on new overlays over the disks the
//! snapshot was taken on.
//!
//! Unlike libvirt, the disks move first and the memory is written after, the vCPUs stopped
//! throughout: QEMU leaves its block nodes inactive once a migration completes, and a
//! `blockdev-snapshot` on them would fail. libvirt's qemuSnapshotCreateActiveExternal
//! writes the memory first, so a failed memory step leaves its disks untouched (it only
//! unlinks the file); here the disks are moved back off their empty overlays instead
//! ([`live::move_back`]), and the definitions, which only name the overlays once the memory
//! is in, never changed: a failed or aborted memory step leaves the guest as it was.

use std::path::Path;

use super::create::point_to_overlays;
use super::live;
use super::revert_external::{create_overlays, finish, overlays_for};
use super::store::Store;
use super::*;
use crate::driver::monitor::proto::SnapshotJob;
use crate::driver::save::RestoreState;
use crate::driver::saveimage;

impl Domain<'_> {
    /// Memory into `def`'s memory file, disks onto their overlays; a guest that ran runs
    /// on. A failure removes the file and leaves the disks on their images, the
    /// definitions as they were.
    pub(super) fn external_with_memory(&self, def: &SnapshotDef) -> Result<(), DriverError> {
        let Some(path) = def.memory_file.clone() else {
            return Err(DriverError::Unsupported(
                "memory snapshot file path must be provided".into(),
            ));
        };
        let was_running = def.state == Some(SnapshotState::Running);
        let (xml, _) = self.current_def()?;
        let live = crate::domain::parse_unprepared(&xml)?;
        let xml = live.to_xml(FormatFlags {
            inactive: true,
            secure: true,
        });
        if was_running {
            self.suspend()?;
        }
        let res = (|| -> Result<(), DriverError> {
            // The file first: a path that cannot be written fails before the disks move.
            saveimage::create(Path::new(&path), &xml, was_running)?;
            let moved = self.move_to_overlays(def)?;
            let memory = (|| -> Result<(), DriverError> {
                let (mut g, _) = self.guest()?;
                live::job(&mut g, SnapshotJob::SaveMemory { path: path.clone() })?;
                saveimage::mark_complete(Path::new(&path))
            })();
            if let Err(e) = memory {
                let back = self
                    .guest()
                    .and_then(|(mut g, _)| live::move_back(&mut g, &moved));
                if back.is_err() && self.is_active().unwrap_or(false) {
                    // Some disk is still on its overlay: the definitions must say so.
                    let _ = self.definitions_on_overlays(def);
                }
                return Err(e);
            }
            self.definitions_on_overlays(def)
        })();
        if res.is_err() {
            let _ = std::fs::remove_file(&path);
        }
        if was_running && self.is_active().unwrap_or(false) {
            // The snapshot's error, if any, is the news.
            let resumed = self.resume();
            res?;
            return resumed;
        }
        res
    }
}

impl DomainSnapshot<'_> {
    /// Revert to external snapshot `snap` with memory: its memory file is read first, the
    /// new overlays made while the guest still runs; then the guest's QEMU is replaced by
    /// one started from the file. If that start fails (QEMU refuses the stream), the guest
    /// is left shut off on the config it had, the new overlays removed, no QEMU running.
    pub(super) fn revert_memory(
        &self,
        store: &mut Store,
        snap: &SnapshotDef,
        flags: u32,
    ) -> Result<(), DriverError> {
        let dom = &self.dom;
        let Some(path) = snap.memory_file.clone() else {
            return Err(DriverError::Unsupported(
                "memory snapshot file path must be provided".into(),
            ));
        };
        let img = saveimage::read(Path::new(&path))?;
        let mut live = self.rollback_domain(snap)?;
        let config = snapshot_config(snap)?;
        let tmp = overlays_for(&live)?;
        let created = create_overlays(&tmp, &live)?;
        let state = if flags & REVERT_RUNNING != 0 {
            RestoreState::Running
        } else if flags & REVERT_PAUSED != 0 || snap.state == Some(SnapshotState::Paused) {
            RestoreState::Paused
        } else {
            RestoreState::Running
        };
        // What a failure puts back: the guest's memory is gone once its QEMU is stopped,
        // but its config must not be left naming overlays the failure removes.
        let old_config = if dom.is_persistent()? {
            Some(dom.xml_desc(FormatFlags {
                inactive: true,
                secure: true,
            })?)
        } else {
            None
        };
        let res = (|| -> Result<(), DriverError> {
            if dom.is_active()? {
                // libvirt stops it VIR_DOMAIN_SHUTOFF_FROM_SNAPSHOT (qemu_snapshot.c).
                dom.stop(crate::driver::monitor::proto::StopReason::FromSnapshot)?;
            }
            point_to_overlays(&mut live, &tmp);
            if let Some(mut config) = config.filter(|_| dom.is_persistent().unwrap_or(false)) {
                config.name = dom.name().to_string();
                point_to_overlays(&mut config, &tmp);
                dom.connect()
                    .define_domain_xml(&config.to_xml(FormatFlags {
                        inactive: true,
                        secure: true,
                    }))?;
            }
            dom.connect()
                .restore_def(Path::new(&path), &img, live, state, None)
                .map(|_| ())
        })();
        if let Err(e) = res {
            for f in &created {
                let _ = std::fs::remove_file(f);
            }
            if let Some(old) = old_config {
                let _ = dom.connect().define_domain_xml(&old);
            }
            return Err(e);
        }
        finish(store, &snap.name, tmp)
    }
}
