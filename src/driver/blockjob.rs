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
use crate::driver::monitor::EventKind;
use crate::driver::monitor::events::BlockJobStatus;

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
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
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
    pub(crate) fn from_id(id: &str) -> Option<(BlockJobType, &str)> {
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

/// Where a disk's job is. Its end is told by the block job events
/// ([`crate::driver::monitor::EventKind::BlockJob2`]): the guest's monitor dismisses a
/// concluded job and applies its outcome before it reports it, so that a job is listed
/// until its outcome is in the definitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlockJobState {
    /// No job on the disk.
    None,
    Running(BlockJobInfo),
    /// A two-phase job (active commit, copy) in its synchronised phase.
    Ready(BlockJobInfo),
}

/// The QEMU job on disk `dst`, if any.
pub(super) fn job_of(
    g: &mut Guest,
    dst: &str,
) -> Result<Option<(BlockJobType, Value)>, DriverError> {
    let jobs = qmp(g, "query-block-jobs", None)?;
    Ok(jobs.as_array().into_iter().flatten().find_map(|j| {
        let (t, d) = BlockJobType::from_id(j["device"].as_str()?)?;
        (d == dst).then(|| (t, j.clone()))
    }))
}

pub(super) fn job_id(t: BlockJobType, dst: &str) -> String {
    format!("{}-{dst}", t.id_prefix())
}

/// The bandwidth a caller gave, in bytes/s (libvirt: the MiB/s form unless `bytes`).
pub(super) fn speed_bytes(bandwidth: u64, bytes: bool) -> Result<u64, DriverError> {
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
    pub(super) fn block_disk_only(
        &self,
        disk: &str,
    ) -> Result<(Guest, String, String), DriverError> {
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
    pub(super) fn no_job(&self, g: &mut Guest, dst: &str) -> Result<(), DriverError> {
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

    /// The disk's job as it is now; one that has concluded but whose end the monitor has
    /// not yet applied is still running (libvirt: qemuBlockJobInfoTranslate).
    pub(crate) fn job_state(&self, g: &mut Guest, dst: &str) -> Result<BlockJobState, DriverError> {
        let Some((t, j)) = job_of(g, dst)? else {
            return Ok(BlockJobState::None);
        };
        let end = j["len"].as_u64().unwrap_or(0);
        let ended = is_ending(&j);
        let info = BlockJobInfo {
            job_type: t,
            bandwidth: j["speed"].as_u64().unwrap_or(0),
            cur: if ended {
                end
            } else {
                j["offset"].as_u64().unwrap_or(0)
            },
            end,
            ready: j["ready"].as_bool().unwrap_or(false),
        };
        Ok(if info.ready && !ended {
            BlockJobState::Ready(info)
        } else {
            BlockJobState::Running(info)
        })
    }

    /// The disk's job as it is now.
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
            BlockJobState::None => None,
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
        let Some((t, j)) = job_of(&mut g, &dst)? else {
            return Err(no_active_job(&dst));
        };
        let id = job_id(t, &dst);
        // libvirt: a job already being ended (QEMU_BLOCKJOB_STATE_ABORTING, _PIVOTING).
        if is_ending(&j) {
            return Err(DriverError::OperationInvalid(format!(
                "block job on disk '{dst}' is still being ended"
            )));
        }
        let pivot = flags & BLOCK_JOB_ABORT_PIVOT != 0;
        if pivot {
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
            if !j["ready"].as_bool().unwrap_or(false) {
                return Err(DriverError::BlockCopyActive(format!(
                    "block job '{id}' not ready for pivot yet"
                )));
            }
        }
        // Subscribed before the request, so that the job's end is not missed.
        let mut events = if flags & BLOCK_JOB_ABORT_ASYNC == 0 {
            Some(self.connect().domain_events(self.name())?)
        } else {
            None
        };
        if pivot {
            qmp(&mut g, "block-job-complete", Some(json!({ "device": id })))?;
        } else {
            qmp(&mut g, "block-job-cancel", Some(json!({ "device": id })))?;
        }
        let Some(events) = events.as_mut() else {
            return Ok(());
        };
        // libvirt waits for the job's end (qemuDomainBlockJobAbort, synchronous form).
        let status = wait_end(self, &mut g, events, &dst)?;
        if pivot && status == Some(BlockJobStatus::Failed) {
            return Err(DriverError::OperationFailed(format!(
                "block job '{id}' failed while pivoting"
            )));
        }
        Ok(())
    }
}

/// Whether QEMU is ending the job (its states after running or ready).
fn is_ending(j: &Value) -> bool {
    matches!(
        j["status"].as_str().unwrap_or(""),
        "waiting" | "pending" | "aborting" | "concluded" | "null"
    )
}

/// Wait until the monitor has applied the end of the job on disk `dst` and reported it;
/// the status it reported, `None` when the job went without a word (an older monitor).
pub(crate) fn wait_end(
    dom: &Domain<'_>,
    g: &mut Guest,
    events: &mut crate::driver::events::Events,
    dst: &str,
) -> Result<Option<BlockJobStatus>, DriverError> {
    use std::time::{Duration, Instant};
    let deadline =
        Instant::now() + Duration::from_secs_f64(60.0 * super::console::timeout_multiplier());
    let mut gone_at: Option<Instant> = None;
    loop {
        while let Some(e) = events.next_timeout(Duration::from_millis(100)) {
            if let Some(s) = end_of(&e, dom.name(), dst) {
                return Ok(Some(s));
            }
        }
        let now = Instant::now();
        if job_of(g, dst)?.is_none() {
            // Its event may still be on its way.
            let since = *gone_at.get_or_insert(now);
            if now - since > Duration::from_secs(2) {
                return Ok(None);
            }
        }
        if now > deadline {
            return Err(DriverError::Timeout(format!(
                "block job on disk '{dst}' did not end"
            )));
        }
    }
}

/// The end a `block-job-2` event reports for disk `dst` of domain `name`.
pub(crate) fn end_of(
    e: &crate::driver::monitor::DomainEvent,
    name: &str,
    dst: &str,
) -> Option<BlockJobStatus> {
    match &e.kind {
        EventKind::BlockJob2 { disk, status, .. }
            if e.domain == name && disk == dst && *status != BlockJobStatus::Ready =>
        {
            Some(*status)
        }
        _ => None,
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
