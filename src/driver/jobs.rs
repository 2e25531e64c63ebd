//! A running guest's long job (save, snapshot) as libvirt reports it: `virDomainGetJobInfo`,
//! `virDomainGetJobStats`, `virDomainAbortJob` (libvirt: qemuDomainGetJobInfo,
//! qemuDomainGetJobStats, qemuDomainAbortJobFlags). The guest's monitor runs the job beside
//! its request loop and answers these while it runs.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::DriverError;
use super::domain::{Domain, guest_err};
use super::domstats::TypedValue;
use crate::driver::monitor::proto::{Reply, Request};

/// `virDomainGetJobStats` flag: the statistics of the last completed job.
pub const JOB_STATS_COMPLETED: u32 = 1 << 0;
/// `virDomainGetJobStats` flag: keep them for the next call (else they are dropped).
pub const JOB_STATS_KEEP_COMPLETED: u32 = 1 << 1;

/// libvirt's virDomainJobType.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobType {
    None,
    Bounded,
    Unbounded,
    Completed,
    Failed,
    Cancelled,
}

impl JobType {
    fn from_name(s: &str) -> JobType {
        match s {
            "bounded" => JobType::Bounded,
            "unbounded" => JobType::Unbounded,
            "completed" => JobType::Completed,
            "failed" => JobType::Failed,
            "cancelled" => JobType::Cancelled,
            _ => JobType::None,
        }
    }
}

/// `virDomainGetJobStats`: the job's type and its typed statistics, libvirt's names
/// (`operation`, `time_elapsed`, `data_total`, `memory_processed`, ...) in libvirt's order.
#[derive(Debug, Clone, PartialEq)]
pub struct JobStats {
    pub kind: JobType,
    pub params: Vec<(String, TypedValue)>,
}

impl JobStats {
    /// An unsigned statistic.
    pub fn ullong(&self, name: &str) -> Option<u64> {
        self.params.iter().find_map(|(n, v)| match v {
            TypedValue::ULLong(x) if n == name => Some(*x),
            _ => None,
        })
    }

    /// libvirt's VIR_DOMAIN_JOB_OPERATION number, when known.
    pub fn operation(&self) -> Option<i32> {
        self.params.iter().find_map(|(n, v)| match v {
            TypedValue::Int(x) if n == "operation" => Some(*x),
            _ => None,
        })
    }

    fn none() -> JobStats {
        JobStats {
            kind: JobType::None,
            params: Vec::new(),
        }
    }

    /// From the monitor's `{"type", "params": [[name, value], ...]}`.
    fn from_wire(v: &Value) -> JobStats {
        let kind = JobType::from_name(v["type"].as_str().unwrap_or(""));
        let params = v["params"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| {
                let name = p[0].as_str()?.to_string();
                let value = match (&p[1], name.as_str()) {
                    (Value::Number(n), "operation") => TypedValue::Int(n.as_i64()? as i32),
                    (Value::Number(n), _) => TypedValue::ULLong(n.as_u64()?),
                    (Value::String(s), _) => TypedValue::Str(s.clone()),
                    _ => return None,
                };
                Some((name, value))
            })
            .collect();
        JobStats { kind, params }
    }
}

/// `virDomainGetJobInfo`'s fixed fields (libvirt: virDomainJobInfo).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobInfo {
    pub kind: JobType,
    pub time_elapsed: u64,
    pub time_remaining: u64,
    pub data_total: u64,
    pub data_processed: u64,
    pub data_remaining: u64,
    pub mem_total: u64,
    pub mem_processed: u64,
    pub mem_remaining: u64,
    pub file_total: u64,
    pub file_processed: u64,
    pub file_remaining: u64,
}

impl From<&JobStats> for JobInfo {
    // libvirt: virDomainJobDataToInfo
    fn from(s: &JobStats) -> JobInfo {
        let u = |n: &str| s.ullong(n).unwrap_or(0);
        JobInfo {
            kind: s.kind,
            time_elapsed: u("time_elapsed"),
            time_remaining: u("time_remaining"),
            data_total: u("data_total"),
            data_processed: u("data_processed"),
            data_remaining: u("data_remaining"),
            mem_total: u("memory_total"),
            mem_processed: u("memory_processed"),
            mem_remaining: u("memory_remaining"),
            file_total: u("disk_total"),
            file_processed: u("disk_processed"),
            file_remaining: u("disk_remaining"),
        }
    }
}

/// Where the monitor leaves a guest's last completed job's statistics (the monitor ends
/// with a save, libvirt's daemon would keep them in memory). Not `.json`: the run dir's
/// `*.json` files are the guests' status files, and listing read this one as a guest.
pub(crate) fn completed_path(run_dir: &Path, name: &str) -> PathBuf {
    run_dir.join(format!("{name}.jobstats"))
}

impl Domain<'_> {
    /// The running job's statistics, or with [`JOB_STATS_COMPLETED`] the last completed
    /// one's (dropped after reading unless [`JOB_STATS_KEEP_COMPLETED`]).
    pub fn job_stats(&self, flags: u32) -> Result<JobStats, DriverError> {
        let known = JOB_STATS_COMPLETED | JOB_STATS_KEEP_COMPLETED;
        if flags & !known != 0 {
            return Err(DriverError::InvalidArg(format!(
                "unsupported flags (0x{:x}) in function qemuDomainGetJobStats",
                flags & !known
            )));
        }
        if flags & JOB_STATS_COMPLETED == 0 {
            if flags & JOB_STATS_KEEP_COMPLETED != 0 {
                // libvirt: qemuDomainGetJobStats
                return Err(DriverError::InvalidArg(
                    "VIR_DOMAIN_JOB_STATS_KEEP_COMPLETED is not allowed if VIR_DOMAIN_JOB_STATS_COMPLETED is not set"
                        .into(),
                ));
            }
            let (mut g, _) = self.guest()?;
            return match g.call(&Request::JobInfo).map_err(guest_err)? {
                Reply::Ok { value } => Ok(JobStats::from_wire(&value)),
                other => Err(DriverError::Internal(format!(
                    "unexpected reply from the guest's monitor: {other:?}"
                ))),
            };
        }
        let path = completed_path(&self.conn.dirs().run, self.name());
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(JobStats::none()),
            Err(e) => {
                return Err(DriverError::System {
                    msg: format!("cannot read '{}'", path.display()),
                    err: e,
                });
            }
        };
        if flags & JOB_STATS_KEEP_COMPLETED == 0 {
            let _ = std::fs::remove_file(&path);
        }
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok(JobStats::from_wire(&v))
    }

    /// `virDomainGetJobInfo`: the running job's progress.
    pub fn job_info(&self) -> Result<JobInfo, DriverError> {
        Ok(JobInfo::from(&self.job_stats(0)?))
    }

    /// Cancel the running job (`virsh domjobabort`): a save stops and the guest runs on as
    /// before; libvirt's "no job is active on the domain" when there is none.
    pub fn abort_job(&self) -> Result<(), DriverError> {
        let (mut g, _) = self.guest()?;
        g.call(&Request::JobAbort).map_err(guest_err)?;
        Ok(())
    }

    /// Run `work` (a save of this domain) while another thread asks the guest's monitor for
    /// the job's progress every `every` and hands it to `progress` (virsh: virshWatchJob's
    /// `--verbose`). Progress that cannot be read is skipped; `work`'s result is returned.
    pub fn with_job_progress<T>(
        &self,
        every: std::time::Duration,
        progress: impl FnMut(&JobInfo) + Send,
        work: impl FnOnce() -> T,
    ) -> T {
        self.conn
            .with_job_progress(self.name(), every, progress, work)
    }
}

impl super::Connect {
    /// [`Domain::with_job_progress`] for the guest named `name`, which `work` may start
    /// (a restore): its monitor is looked for until it answers.
    pub fn with_job_progress<T>(
        &self,
        name: &str,
        every: std::time::Duration,
        mut progress: impl FnMut(&JobInfo) + Send,
        work: impl FnOnce() -> T,
    ) -> T {
        use std::sync::atomic::{AtomicBool, Ordering};
        let Ok(paths) = super::process::GuestPaths::new(self.dirs(), name) else {
            return work();
        };
        let done = AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                let mut client = None;
                while !done.load(Ordering::Relaxed) {
                    if client.is_none() {
                        client =
                            super::monitor::client::MonitorClient::connect(&paths.control).ok();
                    }
                    if let Some(c) = client.as_mut() {
                        match c.call(&Request::JobInfo) {
                            Ok(Reply::Ok { value }) => {
                                let stats = JobStats::from_wire(&value);
                                if stats.kind != JobType::None {
                                    progress(&JobInfo::from(&stats));
                                }
                            }
                            Ok(_) => {}
                            Err(_) => client = None,
                        }
                    }
                    let until = std::time::Instant::now() + every;
                    while !done.load(Ordering::Relaxed) && std::time::Instant::now() < until {
                        std::thread::sleep(std::time::Duration::from_millis(10));
                    }
                }
            });
            let r = work();
            done.store(true, Ordering::Relaxed);
            r
        })
    }
}
