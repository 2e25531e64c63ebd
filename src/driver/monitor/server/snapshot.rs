//! Internal snapshots of a running guest through QEMU's jobs (`snapshot-save`,
//! `snapshot-load`, `snapshot-delete`; libvirt: qemuSnapshotCreateActiveInternal,
//! qemuSnapshotRevertActive). As libvirt, the monitor stops the vCPUs itself around the job:
//! QEMU's job would otherwise stop and restart them behind the status file's back.

use std::time::Duration;

use serde_json::{Value, json};

use super::{ErrorCode, Lifecycle, Reply, Server};
use crate::driver::monitor::proto::SnapshotJob;

/// How often the job's status is asked for.
const POLL: Duration = Duration::from_millis(20);

fn err(desc: String) -> Reply {
    Reply::Refused {
        code: ErrorCode::OperationFailed,
        desc,
    }
}

impl Server {
    /// Run `job` and answer once it has ended.
    pub(super) async fn snapshot_job(&mut self, job: SnapshotJob) -> Reply {
        let was_running = !self.status.paused;
        let (command, args, run_after, reason) = match &job {
            SnapshotJob::Save {
                tag,
                vmstate,
                devices,
            } => (
                "snapshot-save",
                json!({ "tag": tag, "vmstate": vmstate, "devices": devices }),
                was_running,
                "unpaused",
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
            ),
            SnapshotJob::Delete { tag, devices } => (
                "snapshot-delete",
                json!({ "tag": tag, "devices": devices }),
                was_running,
                "unpaused",
            ),
        };
        let stops = was_running && !matches!(job, SnapshotJob::Delete { .. });
        if stops {
            self.own_stop = true;
            if let Err(e) = self.exec("stop", None).await {
                self.own_stop = false;
                return self.failure(e);
            }
            self.set_state("", true, "snapshot");
            self.broadcast_lifecycle(Lifecycle::SuspendedPaused);
        }
        let res = self.run_job(command, args).await;
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
            Err(desc) => err(desc),
        }
    }

    /// Start job `command` and wait for it to conclude (polling `query-jobs`; QEMU's
    /// JOB_STATUS_CHANGE events tell the same), then dismiss it.
    async fn run_job(&mut self, command: &str, mut args: Value) -> Result<(), String> {
        let id = format!("snapshot-{}-{}", std::process::id(), super::now_ms());
        args["job-id"] = json!(id);
        self.exec(command, Some(args))
            .await
            .map_err(|e| format!("cannot start {command}: {e}"))?;
        loop {
            let jobs: Value = self
                .exec("query-jobs", None)
                .await
                .map_err(|e| format!("cannot query the {command} job: {e}"))?;
            let job = jobs
                .as_array()
                .and_then(|a| a.iter().find(|j| j["id"].as_str() == Some(id.as_str())))
                .cloned();
            let Some(job) = job else {
                return Err(format!("the {command} job disappeared"));
            };
            if job["status"].as_str() == Some("concluded") {
                // Best effort: a job left behind only holds its id.
                let _ = self.exec("job-dismiss", Some(json!({ "id": id }))).await;
                return match job["error"].as_str() {
                    Some(e) => Err(format!("job '{command}' failed: {e}")),
                    None => Ok(()),
                };
            }
            tokio::time::sleep(POLL).await;
        }
    }
}
