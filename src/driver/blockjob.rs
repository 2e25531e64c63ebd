//! Block jobs on a running guest's disks: pull, commit, and their control (libvirt:
//! qemuDomainBlockPull/qemuDomainBlockRebase, qemuDomainBlockCommit,
//! qemuDomainGetBlockJobInfo, qemuDomainBlockJobAbort, qemuDomainBlockJobSetSpeed).
//!
//! QEMU runs the jobs (`block-stream`, `block-commit`); this side names each job after its
//! disk, starts it with `auto-dismiss` off so that its end can be read back, and, once it
//! has concluded, dismisses it and writes the disk's chain as QEMU now has it into the live
//! XML (libvirt: qemuBlockJobProcessEventCompleted*).

use serde_json::{Value, json};

use super::DriverError;
use super::blockjob_chain::{chain_of, lookup};
use super::domain::Domain;
use super::hotplug::{check_flags, qmp};
use super::process::Guest;

/// `VIR_DOMAIN_BLOCK_COMMIT_SHALLOW`.
pub const BLOCK_COMMIT_SHALLOW: u32 = 1;
/// `VIR_DOMAIN_BLOCK_COMMIT_ACTIVE`.
pub const BLOCK_COMMIT_ACTIVE: u32 = 4;
/// `VIR_DOMAIN_BLOCK_COMMIT_BANDWIDTH_BYTES`.
pub const BLOCK_COMMIT_BANDWIDTH_BYTES: u32 = 64;
/// `VIR_DOMAIN_BLOCK_PULL_BANDWIDTH_BYTES`.
pub const BLOCK_PULL_BANDWIDTH_BYTES: u32 = 64;
/// `VIR_DOMAIN_BLOCK_JOB_ABORT_ASYNC`.
pub const BLOCK_JOB_ABORT_ASYNC: u32 = 1;
/// `VIR_DOMAIN_BLOCK_JOB_ABORT_PIVOT`.
pub const BLOCK_JOB_ABORT_PIVOT: u32 = 2;
/// `VIR_DOMAIN_BLOCK_JOB_INFO_BANDWIDTH_BYTES`.
pub const BLOCK_JOB_INFO_BANDWIDTH_BYTES: u32 = 1;
/// `VIR_DOMAIN_BLOCK_JOB_SPEED_BANDWIDTH_BYTES`.
pub const BLOCK_JOB_SPEED_BANDWIDTH_BYTES: u32 = 1;

/// libvirt's block job types (virDomainBlockJobType).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockJobType {
    Pull,
    Copy,
    Commit,
    ActiveCommit,
}

impl BlockJobType {
    /// The prefix of the QEMU job id of a job of this type.
    fn id_prefix(self) -> &'static str {
        match self {
            BlockJobType::Pull => "pull",
            BlockJobType::Copy => "copy",
            BlockJobType::Commit => "commit",
            BlockJobType::ActiveCommit => "active-commit",
        }
    }

    /// virsh's words for the type (virshDomainBlockJob).
    pub fn label(self) -> &'static str {
        match self {
            BlockJobType::Pull => "Block Pull",
            BlockJobType::Copy => "Block Copy",
            BlockJobType::Commit => "Block Commit",
            BlockJobType::ActiveCommit => "Active Block Commit",
        }
    }

    const ALL: [BlockJobType; 4] = [
        BlockJobType::Pull,
        BlockJobType::Copy,
        BlockJobType::Commit,
        BlockJobType::ActiveCommit,
    ];

    /// The job type and disk of a QEMU job id this module gave.
    fn from_id(id: &str) -> Option<(BlockJobType, &str)> {
        // Longest prefix first: "active-commit" before "commit".
        let mut all = Self::ALL;
        all.sort_by_key(|t| std::cmp::Reverse(t.id_prefix().len()));
        all.into_iter().find_map(|t| {
            id.strip_prefix(t.id_prefix())
                .and_then(|r| r.strip_prefix('-'))
                .map(|dst| (t, dst))
        })
    }
}

/// A block job's progress (virDomainBlockJobInfo).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockJobInfo {
    pub job_type: BlockJobType,
    /// In bytes/s with [`BLOCK_JOB_INFO_BANDWIDTH_BYTES`], else MiB/s.
    pub bandwidth: u64,
    pub cur: u64,
    pub end: u64,
    /// A two-phase job (active commit, copy) has reached its synchronised phase.
    pub ready: bool,
}

/// Where a disk's job is, as a waiting client sees it (libvirt's block job events:
/// VIR_DOMAIN_BLOCK_JOB_COMPLETED, _FAILED, _CANCELED, _READY).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlockJobState {
    /// No job on the disk (any earlier one has been accounted for).
    None,
    Running(BlockJobInfo),
    Ready(BlockJobInfo),
    Completed(BlockJobType),
    Failed(BlockJobType, String),
    Canceled(BlockJobType),
}

/// The QEMU job on disk `dst`, if any.
fn job_of(g: &mut Guest, dst: &str) -> Result<Option<(BlockJobType, Value)>, DriverError> {
    let jobs = qmp(g, "query-block-jobs", None)?;
    Ok(jobs.as_array().into_iter().flatten().find_map(|j| {
        let (t, d) = BlockJobType::from_id(j["device"].as_str()?)?;
        (d == dst).then(|| (t, j.clone()))
    }))
}

fn job_id(t: BlockJobType, dst: &str) -> String {
    format!("{}-{dst}", t.id_prefix())
}

/// The bandwidth a caller gave, in bytes/s (libvirt: the MiB/s form unless `bytes`).
fn speed_bytes(bandwidth: u64, bytes: bool) -> Result<u64, DriverError> {
    if bytes {
        return Ok(bandwidth);
    }
    bandwidth.checked_mul(1 << 20).ok_or_else(|| {
        DriverError::Overflow(format!("bandwidth must be less than {}", u64::MAX >> 20))
    })
}

impl Domain<'_> {
    /// The running guest, the live disk `disk` (a target name or a source path) by its
    /// target name, and its image. QEMU 7.2 crashes on
    /// `query-named-block-nodes` while a stream job runs, so a running job's control does
    /// not read the chain.
    fn block_disk_only(&self, disk: &str) -> Result<(Guest, String, String), DriverError> {
        if !self.is_active()? {
            return Err(DriverError::OperationInvalid(
                "domain is not running".into(),
            ));
        }
        let lg = self.live_guest()?;
        let g = lg.guest;
        // libvirt: qemuDomainDiskByName (a target or a source path).
        let d = lg
            .def
            .devices
            .disks
            .iter()
            .find(|d| {
                d.target.dev == disk
                    || d.source.as_ref().and_then(|s| s.file.as_deref()) == Some(disk)
            })
            .ok_or_else(|| DriverError::InvalidArg(format!("disk '{disk}' not found in domain")))?;
        let dst = d.target.dev.clone();
        let file = d
            .source
            .as_ref()
            .and_then(|s| s.file.clone())
            .ok_or_else(|| {
                DriverError::OperationUnsupported(format!(
                    "block jobs are supported only for disks of type 'file' ({dst})"
                ))
            })?;
        Ok((g, dst, file))
    }

    /// Refuse a second job on a disk (libvirt: qemuDomainDiskBlockJobIsActive).
    fn no_job(&self, g: &mut Guest, dst: &str) -> Result<(), DriverError> {
        match self.job_state(g, dst)? {
            BlockJobState::Running(_) | BlockJobState::Ready(_) => Err(
                DriverError::BlockCopyActive(format!("disk '{dst}' already in active block job")),
            ),
            _ => Ok(()),
        }
    }

    /// `virDomainBlockPull`: merge the whole backing chain into the disk's image.
    pub fn block_pull(&self, disk: &str, bandwidth: u64, flags: u32) -> Result<(), DriverError> {
        check_flags(flags, BLOCK_PULL_BANDWIDTH_BYTES, "qemuDomainBlockPull")?;
        self.block_rebase(disk, None, bandwidth, flags)
    }

    /// `virDomainBlockRebase` without copy: pull the chain above `base` into the image.
    pub fn block_rebase(
        &self,
        disk: &str,
        base: Option<&str>,
        bandwidth: u64,
        flags: u32,
    ) -> Result<(), DriverError> {
        check_flags(flags, BLOCK_PULL_BANDWIDTH_BYTES, "qemuDomainBlockRebase")?;
        let (mut g, dst, file) = self.block_disk_only(disk)?;
        self.no_job(&mut g, &dst)?;
        let chain = chain_of(&mut g, &file)?;
        let mut args = json!({
            "job-id": job_id(BlockJobType::Pull, &dst),
            "device": chain[0].node,
            "auto-dismiss": false,
        });
        if let Some(b) = base {
            let i = lookup(&chain, &dst, b, 0)?;
            args["base-node"] = json!(chain[i].node);
        }
        let speed = speed_bytes(bandwidth, flags & BLOCK_PULL_BANDWIDTH_BYTES != 0)?;
        if speed > 0 {
            args["speed"] = json!(speed);
        }
        qmp(&mut g, "block-stream", Some(args)).map(drop)
    }

    /// `virDomainBlockCommit`: merge `top` (default: the active layer) and what lies
    /// between it and `base` (default: the end of the chain) into `base`.
    pub fn block_commit(
        &self,
        disk: &str,
        base: Option<&str>,
        top: Option<&str>,
        bandwidth: u64,
        flags: u32,
    ) -> Result<(), DriverError> {
        check_flags(
            flags,
            BLOCK_COMMIT_SHALLOW | BLOCK_COMMIT_ACTIVE | BLOCK_COMMIT_BANDWIDTH_BYTES,
            "qemuDomainBlockCommit",
        )?;
        let (mut g, dst, file) = self.block_disk_only(disk)?;
        self.no_job(&mut g, &dst)?;
        let chain = chain_of(&mut g, &file)?;
        let ti = match top {
            Some(t) => lookup(&chain, &dst, t, 0)?,
            None => 0,
        };
        // libvirt: qemuBlockCommit's checks, in its order.
        let active = flags & BLOCK_COMMIT_ACTIVE != 0;
        if ti == 0 && !active {
            return Err(DriverError::InvalidArg(format!(
                "commit of '{dst}' active layer requires active flag"
            )));
        }
        if ti != 0 && active {
            return Err(DriverError::InvalidArg(format!(
                "active commit requested but '{}' is not active",
                chain[ti].file
            )));
        }
        if ti + 1 >= chain.len() {
            return Err(DriverError::InvalidArg(format!(
                "top '{}' in chain for '{}' has no backing file",
                chain[ti].file, chain[0].file
            )));
        }
        let bi = match base {
            Some(b) => lookup(&chain, &dst, b, ti + 1)?,
            None if flags & BLOCK_COMMIT_SHALLOW != 0 => ti + 1,
            None => chain.len() - 1,
        };
        if flags & BLOCK_COMMIT_SHALLOW != 0 && bi != ti + 1 {
            return Err(DriverError::InvalidArg(format!(
                "base '{}' is not immediately below '{}' in chain for '{}'",
                chain[bi].file, chain[ti].file, chain[0].file
            )));
        }
        let t = if active {
            BlockJobType::ActiveCommit
        } else {
            BlockJobType::Commit
        };
        let mut args = json!({
            "job-id": job_id(t, &dst),
            "device": chain[0].node,
            "top-node": chain[ti].node,
            "base-node": chain[bi].node,
            "auto-dismiss": false,
        });
        let speed = speed_bytes(bandwidth, flags & BLOCK_COMMIT_BANDWIDTH_BYTES != 0)?;
        if speed > 0 {
            args["speed"] = json!(speed);
        }
        qmp(&mut g, "block-commit", Some(args)).map(drop)
    }

    /// The disk's job as it is now; a concluded job is dismissed and its outcome written
    /// into the live XML before it is returned.
    fn job_state(&self, g: &mut Guest, dst: &str) -> Result<BlockJobState, DriverError> {
        let Some((t, j)) = job_of(g, dst)? else {
            return Ok(BlockJobState::None);
        };
        let info = BlockJobInfo {
            job_type: t,
            bandwidth: j["speed"].as_u64().unwrap_or(0),
            cur: j["offset"].as_u64().unwrap_or(0),
            end: j["len"].as_u64().unwrap_or(0),
            ready: j["ready"].as_bool().unwrap_or(false),
        };
        match j["status"].as_str().unwrap_or("") {
            "concluded" | "null" => {}
            _ if info.ready => return Ok(BlockJobState::Ready(info)),
            _ => return Ok(BlockJobState::Running(info)),
        }
        let id = job_id(t, dst);
        // query-jobs carries the error a concluded job ended with.
        let error = qmp(g, "query-jobs", None)?
            .as_array()
            .into_iter()
            .flatten()
            .find(|x| x["id"] == json!(id))
            .and_then(|x| x["error"].as_str().map(str::to_string));
        qmp(g, "job-dismiss", Some(json!({ "id": id })))?;
        self.sync_chain(g, dst)?;
        Ok(match error {
            Some(e) if e.contains("cancel") => BlockJobState::Canceled(t),
            Some(e) => BlockJobState::Failed(t, e),
            None => BlockJobState::Completed(t),
        })
    }

    /// Write the disk's chain as QEMU has it now into the live XML (libvirt:
    /// qemuBlockJobProcessEventCompletedPull, ...CompletedCommit, ...ActiveCommit).
    fn sync_chain(&self, g: &mut Guest, dst: &str) -> Result<(), DriverError> {
        let mut def = crate::domain::parse_unprepared(&g.status().xml)?;
        let Some(disk) = def.devices.disks.iter_mut().find(|d| d.target.dev == dst) else {
            return Ok(());
        };
        let Some(top) = super::blockjob_chain::top_of(g, disk)? else {
            return Ok(());
        };
        super::blockjob_chain::write_chain(disk, &top);
        g.set_live_xml(def.to_xml(super::hotplug::LIVE_XML))
            .map_err(super::domain::guest_err)
    }

    /// The disk's job as a waiting client sees it; a job that has ended is reported once.
    pub fn block_job_state(&self, disk: &str) -> Result<BlockJobState, DriverError> {
        let (mut g, dst, _) = self.block_disk_only(disk)?;
        self.job_state(&mut g, &dst)
    }

    /// `virDomainGetBlockJobInfo`: the disk's running job, `None` when there is none.
    pub fn block_job_info(
        &self,
        disk: &str,
        flags: u32,
    ) -> Result<Option<BlockJobInfo>, DriverError> {
        check_flags(
            flags,
            BLOCK_JOB_INFO_BANDWIDTH_BYTES,
            "qemuDomainGetBlockJobInfo",
        )?;
        Ok(match self.block_job_state(disk)? {
            BlockJobState::Running(mut i) | BlockJobState::Ready(mut i) => {
                if flags & BLOCK_JOB_INFO_BANDWIDTH_BYTES == 0 {
                    i.bandwidth >>= 20;
                }
                Some(i)
            }
            _ => None,
        })
    }

    /// `virDomainBlockJobSetSpeed`.
    pub fn block_job_set_speed(
        &self,
        disk: &str,
        bandwidth: u64,
        flags: u32,
    ) -> Result<(), DriverError> {
        check_flags(
            flags,
            BLOCK_JOB_SPEED_BANDWIDTH_BYTES,
            "qemuDomainBlockJobSetSpeed",
        )?;
        let (mut g, dst, _) = self.block_disk_only(disk)?;
        let Some((t, _)) = job_of(&mut g, &dst)? else {
            return Err(no_active_job(&dst));
        };
        let speed = speed_bytes(bandwidth, flags & BLOCK_JOB_SPEED_BANDWIDTH_BYTES != 0)?;
        let args = json!({ "device": job_id(t, &dst), "speed": speed });
        qmp(&mut g, "block-job-set-speed", Some(args)).map(drop)
    }

    /// `virDomainBlockJobAbort`: cancel the disk's job; a synchronised active commit ends
    /// with the overlay kept, or, with [`BLOCK_JOB_ABORT_PIVOT`], with the disk on the
    /// base. Waits for the end unless [`BLOCK_JOB_ABORT_ASYNC`].
    pub fn block_job_abort(&self, disk: &str, flags: u32) -> Result<(), DriverError> {
        check_flags(
            flags,
            BLOCK_JOB_ABORT_ASYNC | BLOCK_JOB_ABORT_PIVOT,
            "qemuDomainBlockJobAbort",
        )?;
        let (mut g, dst, _) = self.block_disk_only(disk)?;
        let (t, info) = match self.job_state(&mut g, &dst)? {
            BlockJobState::Running(i) | BlockJobState::Ready(i) => (i.job_type, i),
            _ => return Err(no_active_job(&dst)),
        };
        let id = job_id(t, &dst);
        if flags & BLOCK_JOB_ABORT_PIVOT != 0 {
            // libvirt: qemuBlockPivot.
            if !matches!(t, BlockJobType::ActiveCommit | BlockJobType::Copy) {
                return Err(DriverError::OperationInvalid(format!(
                    "job type '{}' does not support pivot",
                    match t {
                        BlockJobType::Pull => "pull",
                        _ => "commit",
                    }
                )));
            }
            if !info.ready {
                return Err(DriverError::BlockCopyActive(format!(
                    "block job '{id}' not ready for pivot yet"
                )));
            }
            qmp(&mut g, "block-job-complete", Some(json!({ "device": id })))?;
        } else {
            qmp(&mut g, "block-job-cancel", Some(json!({ "device": id })))?;
        }
        if flags & BLOCK_JOB_ABORT_ASYNC != 0 {
            return Ok(());
        }
        // libvirt waits for the job's end (qemuDomainBlockJobAbort, synchronous form).
        let deadline = std::time::Instant::now()
            + std::time::Duration::from_secs_f64(60.0 * super::console::timeout_multiplier());
        loop {
            match self.job_state(&mut g, &dst)? {
                BlockJobState::Running(_) | BlockJobState::Ready(_) => {}
                BlockJobState::Failed(_, e) => {
                    return Err(DriverError::OperationFailed(format!(
                        "block job for disk '{dst}' failed: {e}"
                    )));
                }
                _ => return Ok(()),
            }
            if std::time::Instant::now() > deadline {
                return Err(DriverError::Timeout(format!(
                    "block job on disk '{dst}' did not end"
                )));
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}

/// libvirt: qemuDomainBlockJobAbort's refusal of a disk with no job.
fn no_active_job(dst: &str) -> DriverError {
    DriverError::InvalidArg(format!("disk {dst} does not have an active block job"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_ids_name_type_and_disk() {
        for t in BlockJobType::ALL {
            let id = job_id(t, "vda");
            assert_eq!(BlockJobType::from_id(&id), Some((t, "vda")));
        }
        assert_eq!(BlockJobType::from_id("snapshot-vda"), None);
        assert!(speed_bytes(u64::MAX, false).is_err());
        assert_eq!(speed_bytes(2, false).unwrap(), 2 << 20);
    }
}
