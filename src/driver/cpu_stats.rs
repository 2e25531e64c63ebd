//! A running guest's CPU time, in total and per host CPU (`virsh cpu-stats`; libvirt:
//! qemuDomainGetCPUStats, virCgroupGetDomainTotalCpuStats, virCgroupGetPercpuStats).
//!
//! libvirt reads the guest's cpuacct cgroup. There is no cgroup of ours here, so the times
//! come from /proc: the total from QEMU's `/proc/PID/stat` (user and system time of every
//! thread, gone ones included), and the per-CPU split from each live thread's time put on
//! the host CPU it last ran on (`/proc/PID/task/TID/stat`). The split is exact for threads
//! pinned to one CPU and an approximation otherwise; `vcpu_time` counts the vCPU threads
//! only, as libvirt's per-vCPU cgroups do.

use serde::Serialize;

use super::DriverError;
use super::domain::Domain;
use super::stats::{host_cpu_count, process_cpu_times, thread_stat};

/// Per-CPU figures of one host CPU (libvirt's `cpu_time` and `vcpu_time`, in ns).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct PerCpuTime {
    pub cpu_time: u64,
    pub vcpu_time: u64,
}

/// The guest's total (libvirt's `cpu_time`, `user_time`, `system_time`, in ns).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct TotalCpuTime {
    pub cpu_time: u64,
    pub user_time: u64,
    pub system_time: u64,
}

/// The threads of process `pid` (`/proc/PID/task`).
fn threads(pid: i32) -> Vec<i32> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Put each thread's time on the CPU it last ran on; `vcpus` are the vCPU threads.
fn split(pid: i32, tids: &[i32], vcpus: &[i32], ncpus: usize) -> Vec<PerCpuTime> {
    let mut out = vec![PerCpuTime::default(); ncpus];
    for &tid in tids {
        let Some((t, cpu)) = thread_stat(pid, tid) else {
            continue;
        };
        let Some(slot) = usize::try_from(cpu).ok().and_then(|c| out.get_mut(c)) else {
            continue;
        };
        slot.cpu_time += t;
        if vcpus.contains(&tid) {
            slot.vcpu_time += t;
        }
    }
    out
}

impl Domain<'_> {
    /// The number of host CPUs per-CPU stats cover (`virDomainGetCPUStats` with no
    /// parameters and `ncpus` 0).
    pub fn cpu_stats_cpus(&self) -> Result<u32, DriverError> {
        self.live_process()?;
        Ok(host_cpu_count() as u32)
    }

    /// `virDomainGetCPUStats` for `ncpus` host CPUs from `start_cpu`.
    pub fn cpu_stats_percpu(
        &self,
        start_cpu: u32,
        ncpus: u32,
    ) -> Result<Vec<PerCpuTime>, DriverError> {
        let live = self.live_process()?;
        let total = host_cpu_count();
        if start_cpu as usize >= total {
            return Err(DriverError::InvalidArg(format!(
                "start_cpu {start_cpu} larger than maximum of {}",
                total - 1
            )));
        }
        let vcpus: Vec<i32> = self
            .qmp_call("query-cpus-fast", None)?
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["thread-id"].as_i64().map(|t| t as i32))
            .collect();
        let all = split(live.pid, &threads(live.pid), &vcpus, total);
        Ok(all
            .into_iter()
            .skip(start_cpu as usize)
            .take(ncpus as usize)
            .collect())
    }

    /// `virDomainGetCPUStats` with `start_cpu` -1: the guest's whole CPU time.
    pub fn cpu_stats_total(&self) -> Result<TotalCpuTime, DriverError> {
        let live = self.live_process()?;
        let (user, system) = process_cpu_times(live.pid).ok_or_else(|| DriverError::System {
            msg: "unable to get cpu account".into(),
            err: std::io::Error::from_raw_os_error(nix::libc::ESRCH),
        })?;
        Ok(TotalCpuTime {
            cpu_time: user + system,
            user_time: user,
            system_time: system,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_threads_split_over_cpus() {
        let pid = std::process::id() as i32;
        let me = nix::unistd::gettid().as_raw();
        // Burn a little CPU so that the split has something to show.
        let until = std::time::Instant::now() + std::time::Duration::from_millis(30);
        let mut x = 0u64;
        while std::time::Instant::now() < until {
            x = x.wrapping_add(1);
        }
        assert!(x > 0);
        let n = host_cpu_count();
        let tids = threads(pid);
        assert!(tids.contains(&me));
        let all = split(pid, &tids, &[me], n);
        assert_eq!(all.len(), n);
        let cpu: u64 = all.iter().map(|c| c.cpu_time).sum();
        let vcpu: u64 = all.iter().map(|c| c.vcpu_time).sum();
        assert!(vcpu <= cpu);
        assert!(split(pid, &[], &[], n).iter().all(|c| c.cpu_time == 0));
    }
}
