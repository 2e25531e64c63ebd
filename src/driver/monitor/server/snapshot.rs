//! Internal snapshots of a running guest through QEMU's jobs (`snapshot-save`,
//! `snapshot-load`, `snapshot-delete`; libvirt: qemuSnapshotCreateActiveInternal,
//! qemuSnapshotRevertActive). As libvirt, the monitor stops the vCPUs itself around the job:
//! QEMU's job would otherwise stop and restart them behind the status file's back. The job
//! runs as the monitor's job ([`super::jobs`]): other requests are served meanwhile.

use serde_json::{Value, json};
use tokio::sync::oneshot;

use super::jobs::{Operation, Running, Then, Wait};
use super::{ErrorCode, Lifecycle, Reply, Server};
use crate::driver::monitor::proto::SnapshotJob;

fn failed(desc: String) -> (ErrorCode, String) {
    (ErrorCode::OperationFailed, desc)
}

impl Server {
    /// Start `job`; the reply comes once it has ended ([`Server::snapshot_ended`]).
    pub(super) async fn snapshot_job(&mut self, job: SnapshotJob, reply: oneshot::Sender<Reply>) {
        let was_running = !self.status.paused;
        if let SnapshotJob::SaveMemory { path } = &job {
            let path = path.clone();
            self.snapshot_memory(job, &path, was_running, reply).await;
            return;
        }
        let (command, args, run_after, reason, op) = match &job {
            SnapshotJob::Save {
                tag,
                vmstate,
                devices,
            } => (
                "snapshot-save",
                json!({ "tag": tag, "vmstate": vmstate, "devices": devices }),
                was_running,
                "unpaused",
                Operation::Snapshot,
            ),
            SnapshotJob::Load {
                tag,
                vmstate,
                devices,
                run,
            } => (
                "snapshot-load",
                json!({ "tag": tag, "vmstate": vmstate, "devices": devices }),
                *run,
                "from snapshot",
                Operation::SnapshotRevert,
            ),
            SnapshotJob::SaveMemory { .. } => return,
            SnapshotJob::Delete { tag, devices } => (
                "snapshot-delete",
                json!({ "tag": tag, "devices": devices }),
                was_running,
                "unpaused",
                Operation::Snapshot,
            ),
        };
        let stops = was_running && !matches!(job, SnapshotJob::Delete { .. });
        if stops && let Err(r) = self.stop_for_job("snapshot").await {
            let _ = reply.send(r);
            return;
        }
        let id = format!("snapshot-{}-{}", std::process::id(), super::now_ms());
        let mut args = args;
        args["job-id"] = json!(id);
        if let Err(e) = self.exec(command, Some(args)).await {
            let res = Err(failed(format!("cannot start {command}: {e}")));
            let r = self
                .snapshot_ended(&job, was_running, stops, run_after, reason, res)
                .await;
            let _ = reply.send(r);
            return;
        }
        let then = Then::Snapshot {
            job,
            was_running,
            stops,
            run_after,
            reason,
            reply,
        };
        self.begin_job(Running::new(op, Wait::QemuJob { id, command }, then));
    }

    /// Stream the memory onto `path` as the monitor's job (libvirt:
    /// qemuSnapshotCreateActiveExternal's qemuSaveImageCreate). The vCPUs stop for it and
    /// stay stopped after: the caller resumes once its disks are done.
    async fn snapshot_memory(
        &mut self,
        job: SnapshotJob,
        path: &str,
        was_running: bool,
        reply: oneshot::Sender<Reply>,
    ) {
        if was_running {
            if let Err(r) = self.stop_for_job("snapshot").await {
                let _ = reply.send(r);
                return;
            }
        } else {
            self.set_state("", true, "snapshot");
        }
        if let Err(desc) = self.migrate_to(path, false).await {
            let r = self
                .snapshot_ended(
                    &job,
                    was_running,
                    was_running,
                    was_running,
                    "unpaused",
                    Err(failed(desc)),
                )
                .await;
            let _ = reply.send(r);
            return;
        }
        let then = Then::Snapshot {
            job,
            was_running,
            stops: was_running,
            run_after: false,
            reason: "unpaused",
            reply,
        };
        self.begin_job(Running::new(Operation::Snapshot, Wait::Migration, then));
    }

    /// QEMU's job has ended with `res`: put the vCPUs where the job leaves them, and the
    /// reply to the caller.
    pub(super) async fn snapshot_ended(
        &mut self,
        job: &SnapshotJob,
        was_running: bool,
        stops: bool,
        run_after: bool,
        reason: &'static str,
        res: Result<(), (ErrorCode, String)>,
    ) -> Reply {
        // A failed load leaves the guest as it was: running again if it ran.
        let run = if res.is_ok() { run_after } else { was_running };
        let reason = if res.is_ok() { reason } else { "unpaused" };
        if run && (stops || self.status.paused) {
            self.own_resume = true;
            match self.exec("cont", None).await {
                Ok(_) => {
                    self.set_state("", false, reason);
                    self.broadcast_lifecycle(Lifecycle::ResumedUnpaused);
                }
                Err(e) => {
                    self.own_resume = false;
                    self.set_state("", true, "snapshot");
                    return self.failure(e);
                }
            }
        } else if !run && res.is_ok() && matches!(job, SnapshotJob::Load { .. }) {
            if !self.status.paused {
                self.own_stop = true;
                if let Err(e) = self.exec("stop", None).await {
                    self.own_stop = false;
                    return self.failure(e);
                }
                self.broadcast_lifecycle(Lifecycle::SuspendedPaused);
            }
            self.set_state("", true, reason);
        } else if stops {
            self.set_state("", true, "snapshot");
        }
        match res {
            Ok(()) => Reply::Ok { value: Value::Null },
            // A cancelled stream keeps its code: libvirt's "operation aborted".
            Err((code, desc)) => Reply::Refused { code, desc },
        }
    }
}
