//! Block jobs as the monitor sees them end (libvirt: qemuBlockJobEventProcess and
//! qemuBlockJobEventProcessConcluded): QEMU's JOB_STATUS_CHANGE of a job the block verbs
//! started (`pull-vda`, `copy-vda`, ...) becomes libvirt's block job events, and a concluded
//! job is dismissed here and its outcome written into the live XML (the disk's new chain,
//! the `<mirror>` gone) and, for an active commit or a copy that pivoted, into the
//! persistent config (libvirt: qemuBlockJobRewriteConfigDiskSource). Doing it here, where
//! QEMU's events arrive, makes it happen whether or not a client waits for the job.

use std::collections::{HashMap, HashSet};

use serde_json::{Value, json};

use super::{Server, log_line};
use crate::domain::devices::{BackingStore, Disk};
use crate::domain::{FormatFlags, XmlNode};
use crate::driver::blockjob::BlockJobType;
use crate::driver::blockjob_chain::{Layer, device_of, layers_from, write_chain};
use crate::driver::monitor::events::{BlockJobStatus, EventKind};

const LIVE_XML: FormatFlags = FormatFlags {
    inactive: false,
    secure: true,
};
const CONFIG_XML: FormatFlags = FormatFlags {
    inactive: true,
    secure: true,
};

/// How a client asked a job to end (libvirt's QEMU_BLOCKJOB_STATE_ABORTING and _PIVOTING).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    Aborting,
    Pivoting,
}

/// What the monitor remembers of the block jobs running.
#[derive(Debug, Default)]
pub(super) struct BlockJobs {
    ending: HashMap<String, Ending>,
    /// Jobs whose READY was reported: QEMU may leave and re-enter the state, libvirt
    /// reports it once.
    ready: HashSet<String>,
}

impl Server {
    /// A QMP command a client passed through succeeded: a block job's cancel or completion
    /// decides how its end is reported (libvirt: qemuDomainBlockJobAbort).
    pub(super) fn note_block_request(&mut self, command: &str, args: Option<&Value>) {
        let ending = match command {
            "block-job-cancel" => Ending::Aborting,
            "block-job-complete" => Ending::Pivoting,
            _ => return,
        };
        let Some(id) = args.and_then(|a| a["device"].as_str()) else {
            return;
        };
        let Some((t, dst)) = BlockJobType::from_id(id) else {
            return;
        };
        self.block_jobs.ending.insert(id.to_string(), ending);
        if t == BlockJobType::Copy && ending == Ending::Aborting {
            // libvirt: mirrorState ABORT, shown as ready='abort'.
            let dst = dst.to_string();
            self.edit_mirror(&dst, |m| set_attr(m, "ready", "abort"));
        }
    }

    /// QEMU's JOB_STATUS_CHANGE.
    pub(super) async fn on_job_status(&mut self, data: &Value) {
        let (Some(id), Some(status)) = (data["id"].as_str(), data["status"].as_str()) else {
            return;
        };
        let Some((t, dst)) = BlockJobType::from_id(id) else {
            return;
        };
        let (id, dst) = (id.to_string(), dst.to_string());
        match status {
            // libvirt handles READY only for a job not being ended, and once.
            "ready" if !self.block_jobs.ending.contains_key(&id) => {
                if !self.block_jobs.ready.insert(id) {
                    return;
                }
                if t == BlockJobType::Copy {
                    self.edit_mirror(&dst, |m| set_attr(m, "ready", "yes"));
                }
                self.block_job_events(&dst, None, t, BlockJobStatus::Ready);
            }
            "concluded" => self.block_job_concluded(&id, t, &dst).await,
            _ => {}
        }
    }

    /// Dismiss a concluded job, apply its outcome to the definitions, report it.
    async fn block_job_concluded(&mut self, id: &str, t: BlockJobType, dst: &str) {
        // The event does not carry the error; query-jobs does until the job is dismissed.
        let error = self
            .exec("query-jobs", None)
            .await
            .ok()
            .and_then(|jobs| {
                jobs.as_array()?
                    .iter()
                    .find(|j| j["id"].as_str() == Some(id))
                    .map(|j| j["error"].as_str().map(str::to_string))
            })
            .flatten();
        let _ = self.exec("job-dismiss", Some(json!({ "id": id }))).await;
        let ending = self.block_jobs.ending.remove(id);
        self.block_jobs.ready.remove(id);
        let status = match (ending, &error) {
            (Some(Ending::Aborting), _) => BlockJobStatus::Canceled,
            (_, Some(_)) => BlockJobStatus::Failed,
            _ => BlockJobStatus::Completed,
        };
        if let Some(e) = &error {
            log_line(&self.paths, &format!("block job '{id}' ended: {e}"));
        }
        let Ok(mut def) = crate::domain::parse_unprepared(&self.status.xml) else {
            return;
        };
        let Some(disk) = def.devices.disks.iter_mut().find(|d| d.target.dev == dst) else {
            return;
        };
        let old_top = disk.source.as_ref().and_then(|s| s.file.clone());
        let old_files = chain_files(disk);
        let mirror_file = disk
            .mirror
            .as_ref()
            .and_then(|m| m.child("source"))
            .and_then(|s| s.attr("file").or(s.attr("dev")))
            .map(str::to_string);
        // A copy changes the disk only when it pivoted; the other jobs when they completed
        // (an active commit completes only by a pivot).
        let changed = status == BlockJobStatus::Completed
            && (t != BlockJobType::Copy || ending == Some(Ending::Pivoting));
        // The chain as QEMU has it now, whatever the outcome: libvirt's live XML shows the
        // whole chain, and a job that did not change it leaves it as it was.
        let mut new_chain: Vec<Layer> = Vec::new();
        {
            let devs = self.exec("query-block", None).await.unwrap_or_default();
            let named = self
                .exec("query-named-block-nodes", Some(json!({"flat": true})))
                .await
                .unwrap_or_default();
            if let Some(d) = device_of(&devs, disk) {
                new_chain = layers_from(d, &named);
                write_chain(disk, &new_chain);
            }
        }
        if t == BlockJobType::Copy {
            disk.mirror = None;
        }
        let new_disk = disk.clone();
        self.status.xml = def.to_xml(LIVE_XML);
        self.write_status();
        // The images the disk no longer reads leave QEMU (libvirt:
        // qemuBlockJobEventProcessConcludedRemoveChain): the old chain after a copy's
        // pivot, the copy's target after its abort.
        if t == BlockJobType::Copy {
            let gone: Vec<String> = if changed {
                old_files
                    .into_iter()
                    .filter(|f| !new_chain.iter().any(|l| &l.file == f))
                    .collect()
            } else {
                mirror_file.into_iter().collect()
            };
            self.remove_images(&gone).await;
        }
        let new_top = new_disk.source.as_ref().and_then(|s| s.file.clone());
        if changed
            && matches!(t, BlockJobType::Copy | BlockJobType::ActiveCommit)
            && new_top != old_top
            && let Some(old) = old_top
        {
            self.rewrite_config(&new_disk, &old, new_chain.len());
        }
        self.block_job_events(dst, new_top, t, status);
    }

    /// libvirt's two block job events: the first names the disk by its source path and is
    /// sent only for local disks (libvirt: qemuBlockJobEmitEvents).
    fn block_job_events(
        &mut self,
        dst: &str,
        path: Option<String>,
        job: BlockJobType,
        status: BlockJobStatus,
    ) {
        let path = path.or_else(|| {
            let def = crate::domain::parse_unprepared(&self.status.xml).ok()?;
            let d = def.devices.disks.iter().find(|d| d.target.dev == dst)?;
            d.source.as_ref()?.file.clone()
        });
        if let Some(disk) = path {
            self.broadcast_kind(EventKind::BlockJob { disk, job, status });
        }
        self.broadcast_kind(EventKind::BlockJob2 {
            disk: dst.to_string(),
            job,
            status,
        });
    }

    /// Change the `<mirror>` of disk `dst` in the live XML.
    fn edit_mirror(&mut self, dst: &str, f: impl FnOnce(&mut XmlNode)) {
        let Ok(mut def) = crate::domain::parse_unprepared(&self.status.xml) else {
            return;
        };
        let Some(m) = def
            .devices
            .disks
            .iter_mut()
            .find(|d| d.target.dev == dst)
            .and_then(|d| d.mirror.as_mut())
        else {
            return;
        };
        f(m);
        self.status.xml = def.to_xml(LIVE_XML);
        self.write_status();
    }

    /// Close the format and protocol nodes of the images `files` (best effort: a node still
    /// in use stays).
    async fn remove_images(&mut self, files: &[String]) {
        if files.is_empty() {
            return;
        }
        let named = self
            .exec("query-named-block-nodes", Some(json!({"flat": true})))
            .await
            .unwrap_or_default();
        let nodes = |want_file: bool| -> Vec<String> {
            named
                .as_array()
                .into_iter()
                .flatten()
                .filter(|n| {
                    n["file"]
                        .as_str()
                        .is_some_and(|f| files.iter().any(|x| x == f))
                        && matches!(n["drv"].as_str(), Some("file" | "host_device")) == want_file
                })
                .filter_map(|n| n["node-name"].as_str().map(str::to_string))
                .collect()
        };
        // Formats first (they hold their files), top first (it holds its backing).
        let mut order = nodes(false);
        order.extend(nodes(true));
        for n in order {
            let _ = self
                .exec("blockdev-del", Some(json!({ "node-name": n })))
                .await;
        }
    }

    /// Point the persistent config's disk at the live disk's new image when the config
    /// still named the old one (libvirt: qemuBlockJobRewriteConfigDiskSource; a chain
    /// detected below the new image is not written, a chain known to end is).
    fn rewrite_config(&self, live: &Disk, old_top: &str, chain_len: usize) {
        let Ok(path) = crate::driver::config::config_path(&self.config_dir, &self.paths.name)
        else {
            return;
        };
        let Ok(_lock) = crate::driver::config::ConfigLock::acquire(&self.config_dir) else {
            return;
        };
        // A transient domain has no config.
        let Ok(Some(xml)) = crate::driver::config::read_small(&path) else {
            return;
        };
        let Ok(mut def) = crate::domain::parse_unprepared(&xml) else {
            return;
        };
        let Some(cd) = def
            .devices
            .disks
            .iter_mut()
            .find(|d| d.target.dev == live.target.dev)
        else {
            return;
        };
        let Some(src) = cd.source.as_mut() else {
            return;
        };
        if src.file.as_deref() != Some(old_top) {
            return;
        }
        src.file = live.source.as_ref().and_then(|s| s.file.clone());
        if let (Some(d), Some(f)) = (
            cd.driver.as_mut(),
            live.driver.as_ref().and_then(|d| d.dtype.clone()),
        ) {
            d.dtype = Some(f);
        }
        cd.backing_store = (chain_len == 1).then(BackingStore::default);
        if let Err(e) =
            crate::driver::config::write_atomic(&path, def.to_xml(CONFIG_XML).as_bytes())
        {
            log_line(
                &self.paths,
                &format!("cannot update the config after a block job: {e}"),
            );
        }
    }
}

/// The image files of `disk`'s chain as its definition names them, top first.
fn chain_files(disk: &Disk) -> Vec<String> {
    let mut out: Vec<String> = disk
        .source
        .as_ref()
        .and_then(|s| s.file.clone())
        .into_iter()
        .collect();
    let mut b = disk.backing_store.as_ref();
    while let Some(s) = b {
        if let Some(f) = s.source.as_ref().and_then(|s| s.file.clone()) {
            out.push(f);
        }
        b = s.backing.as_deref();
    }
    out
}

fn set_attr(n: &mut XmlNode, name: &str, value: &str) {
    match n.attrs.iter_mut().find(|(k, _)| k == name) {
        Some((_, v)) => *v = value.to_string(),
        None => n.attrs.push((name.to_string(), value.to_string())),
    }
}
