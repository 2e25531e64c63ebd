//! `virDomainRevertToSnapshot` (libvirt: qemuSnapshotRevert, qemuSnapshotRevertActive,
//! qemuSnapshotRevertInactive) for internal snapshots; external ones in
//! [`super::revert_external`] and [`super::memory`]. One QEMU per domain throughout:
//! a running guest loads the snapshot in place; a shut-off one is started paused first.

use super::create::internal_nodes;
use super::disks;
use super::live;
use super::*;
use crate::driver::monitor::proto::SnapshotJob;

const FUNC: &str = "qemuDomainRevertToSnapshot";

impl DomainSnapshot<'_> {
    /// Bring the domain back to this snapshot: its memory (a running or paused guest,
    /// running unless [`REVERT_PAUSED`], or paused as taken unless [`REVERT_RUNNING`]) or
    /// its disks (a shut-off guest, started when a flag asks). A failed revert leaves the
    /// guest as it was.
    pub fn revert(&self, flags: u32) -> Result<(), DriverError> {
        check_flags(flags, REVERT_RUNNING | REVERT_PAUSED | REVERT_FORCE, FUNC)?;
        if flags & REVERT_RUNNING != 0 && flags & REVERT_PAUSED != 0 {
            return Err(DriverError::InvalidArg(
                "Flags 'VIR_DOMAIN_SNAPSHOT_REVERT_RUNNING' and 'VIR_DOMAIN_SNAPSHOT_REVERT_PAUSED' are mutually exclusive".into(),
            ));
        }
        let mut store = self.store()?;
        let snap = store.get(&self.name)?.clone();
        let state = snap.state.unwrap_or(SnapshotState::NoState);
        if snap.is_external() {
            if state.is_active() {
                self.revert_memory(&mut store, &snap, flags)?;
            } else {
                self.revert_external(&mut store, &snap, flags)?;
            }
            return store.set_current(Some(&self.name));
        }
        let dom = &self.dom;
        let active = dom.is_active()?;
        if state.is_active() {
            let run = flags & REVERT_RUNNING != 0
                || (flags & REVERT_PAUSED == 0 && state != SnapshotState::Paused);
            if active {
                self.load(&snap, run)?;
            } else {
                // Started from the snapshot's definition, which becomes the config
                // (libvirt: qemuSnapshotRevertActive); a failure puts the old one back.
                let old = dom.xml_desc(FormatFlags {
                    inactive: true,
                    secure: true,
                })?;
                let def = snapshot_config(&snap)?;
                let res = (|| {
                    if let Some(def) = &def {
                        dom.connect().define_domain_xml(&def.to_xml(FormatFlags {
                            inactive: true,
                            secure: true,
                        }))?;
                    }
                    dom.create_with_flags(true)?;
                    self.load(&snap, run)
                })();
                if let Err(e) = res {
                    // Back to shut off on the old config, as it was. Best effort: the
                    // revert's error is the news.
                    if dom.is_active().unwrap_or(false) {
                        let _ = dom.destroy();
                    }
                    let _ = dom.connect().define_domain_xml(&old);
                    return Err(e);
                }
            }
        } else {
            // The disks as they were when the snapshot was taken (libvirt:
            // qemuSnapshotRevertInactive), and that definition becomes the config again.
            let def = match snapshot_domain(&snap)? {
                Some(d) => d,
                None => dom.current_def()?.1,
            };
            if active {
                // libvirt: qemuSnapshotRevertInactive stops it VIR_DOMAIN_SHUTOFF_FROM_SNAPSHOT.
                dom.stop(crate::driver::monitor::proto::StopReason::FromSnapshot)?;
            }
            disks::offline("-a", &snap, &def)?;
            if let Some(config) = snapshot_config(&snap)?
                && dom.is_persistent()?
            {
                dom.connect()
                    .define_domain_xml(&config.to_xml(FormatFlags {
                        inactive: true,
                        secure: true,
                    }))?;
            }
            if flags & (REVERT_RUNNING | REVERT_PAUSED) != 0 {
                dom.create_with_flags(flags & REVERT_PAUSED != 0)?;
            }
        }
        store.set_current(Some(&self.name))
    }

    /// `snapshot-load` in the running guest.
    fn load(&self, snap: &SnapshotDef, run: bool) -> Result<(), DriverError> {
        let (_, def) = self.dom.current_def()?;
        let (mut g, _) = self.dom.guest()?;
        let nodes = live::nodes(&mut g)?;
        let devices = internal_nodes(snap, &def, &nodes)?;
        let vmstate = devices.first().cloned().unwrap_or_default();
        live::job(
            &mut g,
            SnapshotJob::Load {
                tag: snap.name.clone(),
                vmstate,
                devices,
                run,
            },
        )
    }
}
