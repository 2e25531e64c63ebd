//! The guest's one long job at a time (libvirt's async jobs: `save`, snapshots with memory),
//! run beside the request loop: the loop starts the job, then polls QEMU for it on a timer
//! while it keeps serving requests, so `domjobinfo`, `domjobabort`, `domstate` and the like
//! answer while a save streams (libvirt: virDomainObjBeginAsyncJob, qemuDomainGetJobStats,
//! qemuDomainAbortJobFlags).
//!
//! A request that needs the job lock itself (libvirt: anything but the async job's mask,
//! which for save and snapshot is VIR_JOB_DEFAULT_MASK: query, destroy, abort) waits for the
//! job to end, for up to [`job_wait`] as libvirt's QEMU_JOB_WAIT_TIME, then gets libvirt's
//! "cannot acquire state change lock" refusal.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::oneshot;

use super::{Cmd, ErrorCode, Reply, Request, Server, log_line};
use crate::driver::monitor::proto::SnapshotJob;

/// How often a running job's status is asked for when no event came: QEMU's `MIGRATION`
/// and `JOB_STATUS_CHANGE` events wake the job at once (as libvirt waits for them), this
/// only bounds a missed one and keeps `domjobinfo`'s figures fresh.
const POLL: Duration = Duration::from_millis(250);

/// The first and the longest pause between polls of a restore (see [`Running::new`]).
const RESTORE_POLL_FIRST: Duration = Duration::from_millis(1);
const RESTORE_POLL: Duration = Duration::from_millis(20);

/// How long a request waits for the running job (libvirt: QEMU_JOB_WAIT_TIME, 30 s).
/// `DOMDRIVER_JOB_WAIT_MS` shortens it for tests of the refusal.
fn job_wait() -> Duration {
    std::env::var("DOMDRIVER_JOB_WAIT_MS")
        .ok()
        .and_then(|s| s.parse().ok())
        .map(Duration::from_millis)
        .unwrap_or(Duration::from_secs(30))
}

/// What the job does (libvirt's virDomainJobOperation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Operation {
    Save,
    Snapshot,
    SnapshotRevert,
    Dump,
    Backup,
    MigrationOut,
    /// Loading a save image into a new QEMU (`restore`, a start from a managed save image,
    /// a fleet clone).
    Restore,
    /// The destination's side of a live migration: a start that loads the stream of
    /// another QEMU.
    MigrationIn,
}

impl Operation {
    /// virDomainJobOperation's number (the `operation` job statistic).
    pub(super) fn number(self) -> u64 {
        match self {
            Operation::Backup => 9,
            Operation::MigrationOut => 5,
            Operation::Save => 2,
            Operation::Restore => 3,
            Operation::MigrationIn => 4,
            Operation::Snapshot => 6,
            Operation::SnapshotRevert => 7,
            Operation::Dump => 8,
        }
    }

    /// The API holding the job, as libvirt names it in its lock refusal.
    fn owner_api(self) -> &'static str {
        match self {
            Operation::Save => "remoteDispatchDomainSave",
            Operation::Snapshot => "remoteDispatchDomainSnapshotCreateXML",
            Operation::SnapshotRevert => "remoteDispatchDomainRevertToSnapshot",
            Operation::Dump => "remoteDispatchDomainCoreDumpWithFormat",
            Operation::Backup => "remoteDispatchDomainBackupBegin",
            Operation::MigrationOut => "remoteDispatchDomainMigratePerform3Params",
            Operation::Restore => "remoteDispatchDomainRestoreFlags",
            Operation::MigrationIn => "remoteDispatchDomainMigratePrepare3Params",
        }
    }

    /// Whether the job loads a guest's state into a QEMU that starts (the start waits for
    /// it, and ends with it when it fails).
    pub(super) fn loads(self) -> bool {
        matches!(self, Operation::Restore | Operation::MigrationIn)
    }
}

/// What QEMU is asked about while the job runs.
pub(super) enum Wait {
    /// `query-migrate` (save).
    Migration,
    /// `query-jobs` for job `id`, started by `command` (snapshot-save/-load/-delete).
    QemuJob { id: String, command: &'static str },
    /// `query-dump` (a memory-only dump).
    Dump,
    /// `query-jobs` for a backup's jobs.
    Backup(Box<super::backup::BackupRun>),
    /// `query-migrate` on the incoming side, which reports no figures: the progress is
    /// how far QEMU has read the stream.
    Incoming(Box<super::migrate::Stream>),
}

/// What happens once QEMU's part is over.
pub(super) enum Then {
    Save {
        was_running: bool,
        reply: oneshot::Sender<Reply>,
    },
    Snapshot {
        job: SnapshotJob,
        was_running: bool,
        stops: bool,
        run_after: bool,
        reason: &'static str,
        reply: oneshot::Sender<Reply>,
    },
    Dump {
        stops: bool,
        reply: oneshot::Sender<Reply>,
    },
    /// `backup-begin` returned when the job started: nobody waits for its end.
    Backup,
    /// An outgoing live migration; `postcopy`: it may switch to post-copy.
    Migrate {
        was_running: bool,
        postcopy: bool,
        reply: oneshot::Sender<Reply>,
    },
    /// The guest's start waits for it: the monitor reports the start once it ended.
    Restore,
}

pub(super) struct Running {
    pub(super) op: Operation,
    pub(super) wait: Wait,
    pub(super) then: Then,
    started: Instant,
    next_poll: tokio::time::Instant,
    /// The pause before the next poll when no event came.
    pause: Duration,
    /// The last `query-migrate` answer, for `domjobinfo`.
    last: Value,
}

impl Running {
    pub(super) fn new(op: Operation, wait: Wait, then: Then) -> Running {
        Running {
            op,
            wait,
            then,
            started: Instant::now(),
            next_poll: tokio::time::Instant::now(),
            // A restore of device state only (a fleet clone's) loads in a few milliseconds,
            // which a 250 ms poll would multiply: it starts at 1 ms, then doubles.
            pause: if op.loads() { RESTORE_POLL_FIRST } else { POLL },
            last: Value::Null,
        }
    }
}

#[derive(Default)]
pub(super) struct Jobs {
    current: Option<Running>,
    /// Requests waiting for the job to end, with when they give up.
    waiting: VecDeque<(Cmd, tokio::time::Instant)>,
}

impl Server {
    /// Stop the vCPUs for a job, the state paused for `reason`; the refusal to send when
    /// QEMU would not.
    pub(super) async fn stop_for_job(&mut self, reason: &str) -> Result<(), Reply> {
        self.own_stop = true;
        if let Err(e) = self.exec("stop", None).await {
            self.own_stop = false;
            return Err(self.failure(e));
        }
        self.set_state("", true, reason);
        self.broadcast_lifecycle(super::Lifecycle::SuspendedPaused);
        Ok(())
    }
}

impl Jobs {
    pub(super) fn busy(&self) -> bool {
        self.current.is_some()
    }

    /// Whether `req` must wait for the running job: a backup lets everything run beside
    /// it but another job (libvirt's backup job mask adds suspend and modify to the default).
    pub(super) fn blocks(&self, req: &Request) -> bool {
        match self.current.as_ref().map(|j| j.op) {
            None => false,
            Some(Operation::Backup) => matches!(
                req,
                Request::Save { .. }
                    | Request::Snapshot { .. }
                    | Request::Dump { .. }
                    | Request::BackupBegun { .. }
            ),
            // libvirt's migration job mask adds suspend (`migrate --timeout`'s default
            // action) to the default one.
            Some(Operation::MigrationOut) => needs_job(req) && !matches!(req, Request::Suspend),
            Some(_) => needs_job(req),
        }
    }

    /// Whether an outgoing migration runs, and then whether it may switch to post-copy.
    pub(super) fn migration_postcopy(&self) -> Option<bool> {
        match self.current.as_ref().map(|j| &j.then) {
            Some(Then::Migrate { postcopy, .. }) => Some(*postcopy),
            _ => None,
        }
    }

    /// The running backup, if the job is one.
    pub(super) fn backup(&self) -> Option<&super::backup::BackupRun> {
        match self.current.as_ref().map(|j| &j.wait) {
            Some(Wait::Backup(b)) => Some(b),
            _ => None,
        }
    }

    pub(super) fn backup_mut(&mut self) -> Option<&mut super::backup::BackupRun> {
        match self.current.as_mut().map(|j| &mut j.wait) {
            Some(Wait::Backup(b)) => Some(b),
            _ => None,
        }
    }

    /// QEMU said the job moved on: look at it now (libvirt: qemuProcessHandleMigrationStatus,
    /// qemuProcessHandleJobStatusChange).
    pub(super) fn wake_now(&mut self) {
        if let Some(j) = self.current.as_mut() {
            j.next_poll = tokio::time::Instant::now();
        }
    }

    /// When the loop must look at the job or its waiters next.
    pub(super) fn wake_at(&self) -> Option<tokio::time::Instant> {
        let poll = self.current.as_ref().map(|j| j.next_poll);
        let wait = self.waiting.iter().map(|(_, at)| *at).min();
        match (poll, wait) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// Whether `req` takes the job lock, so it cannot run beside a save or snapshot.
pub(super) fn needs_job(req: &Request) -> bool {
    !matches!(
        req,
        Request::Hello { .. }
            | Request::Qmp { .. }
            | Request::State
            | Request::Agent { .. }
            | Request::SetXml { .. }
            | Request::Destroy { .. }
            | Request::Subscribe { .. }
            | Request::Console { .. }
            | Request::JobInfo
            | Request::JobAbort
            | Request::MigratePostcopy
    )
}

/// libvirt's virDomainJobType names, as the monitor reports them.
const UNBOUNDED: &str = "unbounded";

/// `query-migrate`'s figures as libvirt's job statistics (qemuDomainMigrationJobDataToParams),
/// in its order; `elapsed_ms` is the job's age.
pub(crate) fn migration_params(op: u64, elapsed_ms: u64, m: &Value) -> Vec<(String, Value)> {
    let mut p: Vec<(String, Value)> = vec![
        ("operation".into(), json!(op)),
        ("time_elapsed".into(), json!(elapsed_ms)),
    ];
    let ram = &m["ram"];
    if ram.is_object() {
        let u = |k: &str| ram[k].as_u64().unwrap_or(0);
        let (total, remaining) = (u("total"), u("remaining"));
        let processed = u("transferred");
        if let Some(d) = m["downtime"].as_u64() {
            p.push(("downtime".into(), json!(d)));
        }
        if let Some(s) = m["setup-time"].as_u64() {
            p.push(("setup_time".into(), json!(s)));
        }
        p.push(("data_total".into(), json!(total)));
        p.push(("data_processed".into(), json!(processed)));
        p.push(("data_remaining".into(), json!(remaining)));
        p.push(("memory_total".into(), json!(total)));
        p.push(("memory_processed".into(), json!(processed)));
        p.push(("memory_remaining".into(), json!(remaining)));
        // QEMU's `mbps` is megabits per second, a float.
        let bps = ram["mbps"].as_f64().unwrap_or(0.0) * 1_000_000.0 / 8.0;
        p.push(("memory_bps".into(), json!(bps as u64)));
        p.push(("memory_constant".into(), json!(u("duplicate"))));
        p.push(("memory_normal".into(), json!(u("normal"))));
        p.push(("memory_normal_bytes".into(), json!(u("normal-bytes"))));
        p.push(("memory_dirty_rate".into(), json!(u("dirty-pages-rate"))));
        p.push(("memory_page_size".into(), json!(u("page-size"))));
        p.push(("memory_iteration".into(), json!(u("dirty-sync-count"))));
        p.push((
            "memory_postcopy_requests".into(),
            json!(u("postcopy-requests")),
        ));
    }
    p
}

impl Server {
    /// Make `run` the job; the loop polls it from now on.
    pub(super) fn begin_job(&mut self, run: Running) {
        self.jobs.current = Some(run);
    }

    /// Hold `cmd` until the running job ends.
    pub(super) fn queue_for_job(&mut self, cmd: Cmd) {
        let at = tokio::time::Instant::now() + job_wait();
        self.jobs.waiting.push_back((cmd, at));
    }

    /// The job's timer fired: poll QEMU, refuse waiters whose time is up. Returns the
    /// requests to serve now (the job ended).
    pub(super) async fn job_tick(&mut self) -> Vec<Cmd> {
        let now = tokio::time::Instant::now();
        let blocker = self.jobs.current.as_ref().map(|j| j.op.owner_api());
        while let Some(i) = self.jobs.waiting.iter().position(|(_, at)| *at <= now) {
            let (cmd, _) = self.jobs.waiting.remove(i).expect("index from position");
            let desc = match blocker {
                Some(api) => format!("cannot acquire state change lock (held by monitor={api})"),
                None => "cannot acquire state change lock".into(),
            };
            let _ = cmd.reply.send(Reply::Refused {
                code: ErrorCode::OperationTimeout,
                desc,
            });
        }
        let due = self
            .jobs
            .current
            .as_ref()
            .is_some_and(|j| j.next_poll <= now);
        if due && let Some(end) = self.poll_job().await {
            let run = self.jobs.current.take().expect("a job was polled");
            self.end_job(run, end).await;
            return self.jobs.waiting.drain(..).map(|(c, _)| c).collect();
        }
        Vec::new()
    }

    /// Ask QEMU how the job goes: `Some` once it has ended (`Err` with libvirt's code and
    /// message when it failed).
    async fn poll_job(&mut self) -> Option<Result<(), (ErrorCode, String)>> {
        let job = self.jobs.current.as_ref()?;
        let op = job.op;
        let res = match &job.wait {
            Wait::Migration | Wait::Incoming(_) => self.poll_migration(op).await,
            Wait::QemuJob { id, command } => {
                let (id, command) = (id.clone(), *command);
                self.poll_qemu_job(&id, command).await
            }
            Wait::Dump => self.poll_dump().await,
            Wait::Backup(_) => self.poll_backup().await,
        };
        if res.is_none()
            && let Some(j) = self.jobs.current.as_mut()
        {
            j.next_poll = tokio::time::Instant::now() + j.pause;
            if j.op.loads() {
                j.pause = (j.pause * 2).min(RESTORE_POLL);
            }
        }
        res
    }

    // libvirt: qemuMigrationJobCheckStatus (9.0's wording: "%s: %s" of the job's name).
    async fn poll_migration(&mut self, op: Operation) -> Option<Result<(), (ErrorCode, String)>> {
        let name = match op {
            Operation::Save => "domain save job",
            Operation::Snapshot | Operation::SnapshotRevert => "snapshot job",
            Operation::Dump => "dump job",
            Operation::Backup => "backup job",
            Operation::MigrationOut => "migration out job",
            Operation::Restore => "start job",
            Operation::MigrationIn => "migration in job",
        };
        let v = match self.exec("query-migrate", None).await {
            Ok(v) => v,
            // QEMU exits when it cannot load a stream, or when `destroy` ends it: its exit,
            // once reaped, says so. It closes its monitor before it is gone, so a closed
            // connection is given a moment to turn into that exit.
            Err(e) if op.loads() && self.qemu_gone_after(&e) => return None,
            Err(e) => {
                return Some(Err((
                    ErrorCode::OperationFailed,
                    format!("{name}: cannot query the migration: {e}"),
                )));
            }
        };
        if let Some(j) = self.jobs.current.as_mut() {
            j.last = v.clone();
        }
        match v["status"].as_str().unwrap_or("") {
            "completed" => Some(Ok(())),
            "failed" if op.loads() => {
                let why = v["error-desc"].as_str().unwrap_or("migration failed");
                Some(Err((
                    ErrorCode::OperationFailed,
                    format!("operation failed: job 'migration' failed: {why}"),
                )))
            }
            "failed" => {
                let why = v["error-desc"].as_str().unwrap_or("unexpectedly failed");
                Some(Err((ErrorCode::OperationFailed, format!("{name}: {why}"))))
            }
            "cancelled" => Some(Err((
                ErrorCode::OperationAborted,
                format!("{name}: canceled by client"),
            ))),
            _ => None,
        }
    }

    async fn poll_qemu_job(
        &mut self,
        id: &str,
        command: &str,
    ) -> Option<Result<(), (ErrorCode, String)>> {
        let failed = |d: String| Some(Err((ErrorCode::OperationFailed, d)));
        let jobs = match self.exec("query-jobs", None).await {
            Ok(v) => v,
            Err(e) => return failed(format!("cannot query the {command} job: {e}")),
        };
        let job = jobs
            .as_array()
            .and_then(|a| a.iter().find(|j| j["id"].as_str() == Some(id)))
            .cloned();
        let Some(job) = job else {
            return failed(format!("the {command} job disappeared"));
        };
        if job["status"].as_str() != Some("concluded") {
            return None;
        }
        // Best effort: a job left behind only holds its id.
        let _ = self.exec("job-dismiss", Some(json!({ "id": id }))).await;
        match job["error"].as_str() {
            Some(e) => failed(format!("job '{command}' failed: {e}")),
            None => Some(Ok(())),
        }
    }

    /// QEMU's part is over: finish as the job's kind does and answer its caller.
    async fn end_job(&mut self, run: Running, res: Result<(), (ErrorCode, String)>) {
        if res.is_ok() && matches!(run.wait, Wait::Migration) {
            self.keep_completed(&run);
        }
        let elapsed = run.started.elapsed().as_millis() as u64;
        match run.then {
            Then::Backup => {
                if let Err((_, e)) = &res {
                    log_line(&self.paths, &format!("backup job: {e}"));
                }
                if let Wait::Backup(b) = run.wait {
                    self.backup_ended(*b, elapsed).await;
                }
            }
            Then::Save { was_running, reply } => self.save_ended(was_running, res, reply).await,
            Then::Migrate {
                was_running, reply, ..
            } => self.migrate_out_ended(was_running, res, reply).await,
            Then::Restore => self.restore_ended(res).await,
            Then::Dump { stops, reply } => {
                let r = self.dump_ended(stops, res).await;
                let _ = reply.send(r);
            }
            Then::Snapshot {
                job,
                was_running,
                stops,
                run_after,
                reason,
                reply,
            } => {
                let r = self
                    .snapshot_ended(&job, was_running, stops, run_after, reason, res)
                    .await;
                let _ = reply.send(r);
            }
        }
    }

    /// `domjobinfo`: the running job's statistics, libvirt's names and order.
    pub(super) fn job_info(&self) -> Reply {
        let Some(j) = self.jobs.current.as_ref() else {
            return Reply::Ok {
                value: json!({ "type": "none", "params": [] }),
            };
        };
        if j.op == Operation::MigrationIn {
            // libvirt: qemuDomainGetJobStatsInternal.
            return Reply::Refused {
                code: ErrorCode::OperationUnsupported,
                desc: "migration statistics are available only on the source host".into(),
            };
        }
        let elapsed = j.started.elapsed().as_millis() as u64;
        let params = match &j.wait {
            Wait::Migration => migration_params(j.op.number(), elapsed, &j.last),
            Wait::Backup(b) => b.params(elapsed),
            Wait::Incoming(s) => {
                let (read, total) = s.progress();
                vec![
                    ("operation".into(), json!(j.op.number())),
                    ("time_elapsed".into(), json!(elapsed)),
                    ("data_total".into(), json!(total)),
                    ("data_processed".into(), json!(read)),
                    ("data_remaining".into(), json!(total - read)),
                ]
            }
            Wait::QemuJob { .. } | Wait::Dump => vec![
                ("operation".into(), json!(j.op.number())),
                ("time_elapsed".into(), json!(elapsed)),
            ],
        };
        Reply::Ok {
            value: json!({ "type": UNBOUNDED, "params": params }),
        }
    }

    /// `domjobabort` (libvirt: qemuDomainAbortJobFlags, qemuDomainAbortJobMigration): a save
    /// is cancelled with `migrate_cancel`; as libvirt 9.0, the same command is all an
    /// internal snapshot gets (QEMU's snapshot jobs run to their end).
    pub(super) async fn abort_job(&mut self) -> Reply {
        if self.jobs.current.is_none() {
            return Reply::Refused {
                code: ErrorCode::OperationInvalid,
                desc: "no job is active on the domain".into(),
            };
        }
        if self.jobs.backup().is_some() {
            return self.abort_backup().await;
        }
        if self
            .jobs
            .current
            .as_ref()
            .is_some_and(|j| j.op == Operation::MigrationIn)
        {
            return Reply::Refused {
                code: ErrorCode::OperationInvalid,
                desc: "cannot abort incoming migration; use virDomainDestroy instead".into(),
            };
        }
        if self
            .jobs
            .current
            .as_ref()
            .is_some_and(|j| j.op == Operation::Restore)
        {
            // QEMU cannot cancel an incoming migration: the QEMU that loads goes, and the
            // start fails as an aborted job (libvirt: qemuMigrationJobCheckStatus's
            // "canceled by client" for the start job).
            self.fail_start(
                ErrorCode::OperationAborted,
                "start job: canceled by client".into(),
            );
            return Reply::Ok { value: Value::Null };
        }
        match self.exec("migrate_cancel", None).await {
            Ok(_) => Reply::Ok { value: Value::Null },
            Err(e) => self.failure(e),
        }
    }

    /// QEMU went while a job ran, or requests wait for it: answer them all.
    pub(super) fn fail_jobs_on_exit(&mut self) {
        let gone = || {
            Reply::Err(super::Failure {
                class: None,
                desc: "domain is not running".into(),
                not_running: true,
            })
        };
        if let Some(run) = self.jobs.current.take() {
            let elapsed = run.started.elapsed().as_millis() as u64;
            match run.then {
                Then::Save { reply, .. }
                | Then::Migrate { reply, .. }
                | Then::Snapshot { reply, .. }
                | Then::Dump { reply, .. } => {
                    let _ = reply.send(gone());
                }
                Then::Backup => {
                    if let Wait::Backup(b) = run.wait {
                        self.backup_gone(*b, elapsed);
                    }
                }
                Then::Restore => {
                    let why = match self.exit.flatten() {
                        Some(st) => format!(
                            "process exited while loading the guest's state ({})",
                            super::describe_exit(&st)
                        ),
                        None => "QEMU went while loading the guest's state".into(),
                    };
                    self.fail_start(ErrorCode::OperationFailed, why);
                }
            }
        }
        for (cmd, _) in self.jobs.waiting.drain(..) {
            let _ = cmd.reply.send(gone());
        }
    }

    /// Keep the finished job's statistics for `domjobinfo --completed` (libvirt keeps them
    /// in the domain object; the monitor ends with a save, so they go to a file beside the
    /// status file, 0600).
    fn keep_completed(&self, run: &Running) {
        let elapsed = run.started.elapsed().as_millis() as u64;
        let params = migration_params(run.op.number(), elapsed, &run.last);
        let v = json!({ "type": "completed", "params": params });
        let path = crate::driver::jobs::completed_path(&self.paths.run_dir, &self.paths.name);
        let _ = crate::driver::config::write_atomic(&path, v.to_string().as_bytes());
    }
}
