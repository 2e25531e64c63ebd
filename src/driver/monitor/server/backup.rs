//! A backup as the guest's monitor follows it (libvirt: qemuBackupNotifyBlockjobEnd,
//! qemuBackupJobTerminate, qemuBackupJobCancelBlockjobs, qemuBackupGetJobInfoStats): the
//! monitor's job while QEMU's `backup-*` jobs run. Each concluded job is dismissed; once
//! none runs, a pull backup's NBD server stops, the targets' nodes and temporary bitmaps go,
//! the files a failed push or any pull made are removed, the statistics are kept for
//! `domjobinfo --completed`, and `job-completed` is sent.

use serde_json::{Value, json};

use super::jobs::{Operation, Running, Then, Wait};
use super::{ErrorCode, Reply, Server, log_line};
use crate::domain::backup::BackupMode;
use crate::driver::backup::BackupJob;
use crate::driver::monitor::events::EventKind;

/// Where the running backup is kept for a monitor that adopts the guest (libvirt keeps it in
/// the domain's status XML).
const KEPT_BACKUP: &str = "backup.json";

/// How one disk's job ended (libvirt: virDomainBackupDiskState).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DiskState {
    Running,
    Cancelling,
    Complete,
    Failed,
    Cancelled,
}

/// The running backup.
pub(super) struct BackupRun {
    pub(super) job: BackupJob,
    states: Vec<DiskState>,
    /// Progress of the running jobs, summed at the last poll: (current, total).
    progress: (u64, u64),
    /// Progress of the jobs that ended (libvirt: push_transferred/_total, pull_tmp_*).
    ended: (u64, u64),
    errmsg: Option<String>,
}

impl BackupRun {
    fn running(&self) -> bool {
        self.states
            .iter()
            .any(|s| matches!(s, DiskState::Running | DiskState::Cancelling))
    }

    /// libvirt's job statistics for a backup (qemuDomainBackupJobDataToParams).
    pub(super) fn params(&self, elapsed_ms: u64) -> Vec<(String, Value)> {
        let mut p: Vec<(String, Value)> = vec![
            ("operation".into(), json!(Operation::Backup.number())),
            ("time_elapsed".into(), json!(elapsed_ms)),
        ];
        let (cur, total) = (
            self.ended.0 + self.progress.0,
            self.ended.1 + self.progress.1,
        );
        match self.job.mode {
            BackupMode::Push if cur > 0 || total > 0 => {
                p.push(("disk_total".into(), json!(total)));
                p.push(("disk_processed".into(), json!(cur)));
                p.push(("disk_remaining".into(), json!(total.saturating_sub(cur))));
            }
            BackupMode::Pull if cur > 0 || total > 0 => {
                p.push(("disk_temp_used".into(), json!(cur)));
                p.push(("disk_temp_total".into(), json!(total)));
            }
            _ => {}
        }
        p
    }
}

impl Server {
    /// `Request::BackupBegun`: make the backup the monitor's job.
    pub(super) fn backup_begun(&mut self, job: BackupJob) -> Reply {
        if self.jobs.busy() {
            return Reply::Refused {
                code: ErrorCode::OperationInvalid,
                desc: "another backup job is already running".into(),
            };
        }
        let path = self.paths.guest_run_dir.join(KEPT_BACKUP);
        let kept = serde_json::to_vec(&job)
            .map_err(|e| e.to_string())
            .and_then(|b| {
                crate::driver::config::write_atomic(&path, &b).map_err(|e| e.to_string())
            });
        if let Err(e) = kept {
            log_line(&self.paths, &format!("cannot keep the backup: {e}"));
        }
        self.follow_backup(job);
        Reply::Ok { value: Value::Null }
    }

    /// After adopting QEMU: the backup the last monitor followed, if any, is followed on;
    /// jobs that ended meanwhile are found concluded (they are never dismissed by QEMU).
    pub(super) fn resume_backup(&mut self) {
        let path = self.paths.guest_run_dir.join(KEPT_BACKUP);
        let job: Option<BackupJob> = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        if let Some(job) = job {
            log_line(&self.paths, "following the backup the last monitor started");
            self.follow_backup(job);
        }
    }

    fn follow_backup(&mut self, job: BackupJob) {
        let states = vec![DiskState::Running; job.disks.len()];
        let run = BackupRun {
            job,
            states,
            progress: (0, 0),
            ended: (0, 0),
            errmsg: None,
        };
        self.begin_job(Running::new(
            Operation::Backup,
            Wait::Backup(Box::new(run)),
            Then::Backup,
        ));
    }

    /// `Request::BackupXml`.
    pub(super) fn backup_xml(&self) -> Reply {
        let xml = self.jobs.backup().map(|b| b.job.xml.clone());
        Reply::Ok {
            value: xml.map_or(Value::Null, Value::String),
        }
    }

    /// Poll QEMU's backup jobs: `Some` once none runs (libvirt: qemuBackupNotifyBlockjobEnd).
    pub(super) async fn poll_backup(&mut self) -> Option<Result<(), (ErrorCode, String)>> {
        let jobs = match self.exec("query-jobs", None).await {
            Ok(v) => v,
            Err(e) => {
                return Some(Err((
                    ErrorCode::OperationFailed,
                    format!("cannot query the backup jobs: {e}"),
                )));
            }
        };
        let ids: Vec<(usize, String)> = self
            .jobs
            .backup()?
            .job
            .disks
            .iter()
            .enumerate()
            .map(|(i, d)| (i, d.job.clone()))
            .collect();
        let mut progress = (0, 0);
        let mut concluded = Vec::new();
        for (i, id) in ids {
            let found = jobs
                .as_array()
                .and_then(|a| a.iter().find(|j| j["id"].as_str() == Some(id.as_str())))
                .cloned();
            let cur = |j: &Value| {
                (
                    j["current-progress"].as_u64().unwrap_or(0),
                    j["total-progress"].as_u64().unwrap_or(0),
                )
            };
            match found {
                Some(j) if j["status"].as_str() == Some("concluded") => {
                    concluded.push((i, id, cur(&j), j["error"].as_str().map(str::to_string)));
                }
                Some(j) => {
                    let (c, t) = cur(&j);
                    progress = (progress.0 + c, progress.1 + t);
                }
                None => concluded.push((i, id, (0, 0), Some("the job disappeared".into()))),
            }
        }
        for (_, id, _, _) in &concluded {
            // Best effort: a job left behind only holds its id.
            let _ = self.exec("job-dismiss", Some(json!({ "id": id }))).await;
        }
        let mut cancel = Vec::new();
        {
            let run = self.jobs.backup_mut()?;
            run.progress = progress;
            for (i, _, (c, t), err) in concluded {
                if !matches!(run.states[i], DiskState::Running | DiskState::Cancelling) {
                    continue;
                }
                run.ended = (run.ended.0 + c, run.ended.1 + t);
                let cancelling = run.states[i] == DiskState::Cancelling;
                run.states[i] = match (&err, cancelling) {
                    // QEMU reports a cancelled job as concluded with "Operation canceled".
                    (_, true) => DiskState::Cancelled,
                    (Some(_), false) => DiskState::Failed,
                    (None, false) => DiskState::Complete,
                };
                if run.states[i] == DiskState::Failed && run.errmsg.is_none() {
                    run.errmsg = err;
                }
            }
            let broken = run
                .states
                .iter()
                .any(|s| matches!(s, DiskState::Failed | DiskState::Cancelled));
            if run.running() && broken {
                // One disk failed or was cancelled: the others stop too.
                for (i, s) in run.states.iter_mut().enumerate() {
                    if *s == DiskState::Running {
                        *s = DiskState::Cancelling;
                        cancel.push(run.job.disks[i].job.clone());
                    }
                }
            }
            if !run.running() && cancel.is_empty() {
                return Some(Ok(()));
            }
        }
        for id in cancel {
            let _ = self.exec("job-cancel", Some(json!({ "id": id }))).await;
        }
        None
    }

    /// `domjobabort` of a backup: every running job is cancelled (libvirt:
    /// qemuBackupJobCancelBlockjobs); a pull backup ends this way.
    pub(super) async fn abort_backup(&mut self) -> Reply {
        let ids: Vec<String> = match self.jobs.backup_mut() {
            Some(run) => run
                .states
                .iter_mut()
                .zip(&run.job.disks)
                .filter(|(s, _)| **s == DiskState::Running)
                .map(|(s, d)| {
                    *s = DiskState::Cancelling;
                    d.job.clone()
                })
                .collect(),
            None => Vec::new(),
        };
        for id in ids {
            if let Err(e) = self.exec("job-cancel", Some(json!({ "id": id }))).await {
                log_line(
                    &self.paths,
                    &format!("backup job '{id}': cancel failed: {e}"),
                );
            }
        }
        self.jobs.wake_now();
        Reply::Ok { value: Value::Null }
    }

    /// Every job has ended: clean up, keep the statistics, report (libvirt:
    /// qemuBackupJobTerminate and qemuBlockJobProcessEventConcludedBackup).
    pub(super) async fn backup_ended(&mut self, run: BackupRun, elapsed_ms: u64) {
        if run.job.mode == BackupMode::Pull {
            let _ = self.exec("nbd-server-stop", None).await;
        }
        for d in &run.job.disks {
            if let Some((node, name)) = &d.disk_bitmap {
                let _ = self
                    .exec(
                        "block-dirty-bitmap-remove",
                        Some(json!({ "node": node, "name": name })),
                    )
                    .await;
            }
            for n in &d.nodes {
                // The NBD export lets go of the scratch node a little after the server stops.
                for _ in 0..20 {
                    match self
                        .exec("blockdev-del", Some(json!({ "node-name": n })))
                        .await
                    {
                        Ok(_) => break,
                        Err(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
                    }
                }
            }
        }
        self.backup_terminate(run, elapsed_ms);
    }

    /// QEMU went with the backup running: it failed (libvirt: qemuProcessStop's
    /// qemuBackupJobTerminate with VIR_DOMAIN_JOB_STATUS_FAILED).
    pub(super) fn backup_gone(&mut self, mut run: BackupRun, elapsed_ms: u64) {
        for s in run.states.iter_mut() {
            if matches!(s, DiskState::Running | DiskState::Cancelling) {
                *s = DiskState::Failed;
            }
        }
        self.backup_terminate(run, elapsed_ms);
    }

    /// The files a failed push or any pull made go; the statistics are kept and
    /// `job-completed` sent.
    fn backup_terminate(&mut self, run: BackupRun, elapsed_ms: u64) {
        let _ = std::fs::remove_file(self.paths.guest_run_dir.join(KEPT_BACKUP));
        let pull = run.job.mode == BackupMode::Pull;
        let failed = run.states.contains(&DiskState::Failed);
        let cancelled = run.states.contains(&DiskState::Cancelled);
        let (kind, success) = if failed {
            ("failed", false)
        } else if cancelled && !pull {
            ("cancelled", false)
        } else {
            ("completed", true)
        };
        for d in &run.job.disks {
            if let Some(f) = &d.file
                && !run.job.reuse
                && (pull || !success)
                && let Err(e) = std::fs::remove_file(f)
            {
                log_line(&self.paths, &format!("failed to remove '{f}': {e}"));
            }
        }
        let mut params = run.params(elapsed_ms);
        params.push(("success".into(), json!(success)));
        if let Some(e) = &run.errmsg {
            params.push(("errmsg".into(), json!(e)));
        }
        let v = json!({ "type": kind, "params": params });
        let path = crate::driver::jobs::completed_path(&self.paths.run_dir, &self.paths.name);
        let _ = crate::driver::config::write_atomic(&path, v.to_string().as_bytes());
        // virsh prints typed parameters as virTypedParameterToString does.
        let shown = params
            .iter()
            .map(|(k, v)| {
                let s = match v {
                    Value::Bool(b) => if *b { "yes" } else { "no" }.to_string(),
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                (k.clone(), s)
            })
            .collect();
        self.broadcast_kind(EventKind::JobCompleted { params: shown });
    }
}
