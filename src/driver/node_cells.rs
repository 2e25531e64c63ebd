//! The host's NUMA cells' free memory and its CPU map, from sysfs (libvirt:
//! virHostMemGetCellsFree, virHostMemGetFreeMemory, virHostCPUGetMap).

use std::path::Path;

use super::DriverError;
use crate::Connect;
use crate::capabilities::cpuset::CpuSet;

/// `virNodeGetCPUMap`'s answer: how many CPUs the host has (present ones, the highest id
/// plus one) and which of them are online.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CpuMap {
    pub present: u32,
    pub online: CpuSet,
}

fn sysfs_set(path: &Path) -> Result<CpuSet, DriverError> {
    let text = std::fs::read_to_string(path).map_err(|e| DriverError::System {
        msg: format!("unable to open {}", path.display()),
        err: e,
    })?;
    CpuSet::parse_sysfs(&text)
        .map_err(|_| DriverError::Internal(format!("cannot parse {}", path.display())))
}

/// `Node N MemFree: X kB` of a node's meminfo, in bytes.
fn node_free(text: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let rest = l.split_once("MemFree:")?.1;
        Some(rest.split_whitespace().next()?.parse::<u64>().ok()? * 1024)
    })
}

/// `MemFree` of `/proc/meminfo`, in bytes.
fn host_free(proc_dir: &Path) -> Result<u64, DriverError> {
    let p = proc_dir.join("meminfo");
    let text = std::fs::read_to_string(&p).map_err(|e| DriverError::System {
        msg: format!("cannot read '{}'", p.display()),
        err: e,
    })?;
    text.lines()
        .find_map(|l| l.strip_prefix("MemFree:"))
        .and_then(|r| r.split_whitespace().next()?.parse::<u64>().ok())
        .map(|k| k * 1024)
        .ok_or_else(|| DriverError::Internal("meminfo has no MemFree".into()))
}

impl Connect {
    /// The host's NUMA cells (`/sys/devices/system/node/nodeN`), in order; a host without
    /// them is one cell 0, as libvirt's capabilities say.
    pub fn numa_cells(&self) -> Vec<u32> {
        let (_, sys) = self.host_dirs();
        let mut ids: Vec<u32> = std::fs::read_dir(sys.join("devices/system/node"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.strip_prefix("node")?.parse().ok())
            .collect();
        ids.sort_unstable();
        if ids.is_empty() {
            ids.push(0);
        }
        ids
    }

    /// `virNodeGetCellsFreeMemory`: the free memory (bytes) of up to `max` cells from
    /// `start`.
    pub fn cells_free_memory(&self, start: i32, max: u32) -> Result<Vec<u64>, DriverError> {
        let (proc_dir, sys) = self.host_dirs();
        let node_dir = sys.join("devices/system/node");
        if !node_dir.join("node0").exists() {
            // libvirt: a host without NUMA has cell 0 only, holding all the memory.
            if start != 0 {
                return Err(DriverError::Internal(format!(
                    "start cell {start} out of range (0-0)"
                )));
            }
            return Ok(vec![host_free(proc_dir)?]);
        }
        let last = self.numa_cells().last().copied().unwrap_or(0) as i32;
        if start < 0 || start > last {
            return Err(DriverError::Internal(format!(
                "start cell {start} out of range (0-{last})"
            )));
        }
        let mut out = Vec::new();
        for n in start..=last.min(start + max as i32 - 1) {
            let text = std::fs::read_to_string(node_dir.join(format!("node{n}/meminfo")))
                .unwrap_or_default();
            out.push(node_free(&text).unwrap_or(0));
        }
        Ok(out)
    }

    /// `virNodeGetFreeMemory`: the free memory of every cell together, in bytes.
    pub fn free_memory(&self) -> Result<u64, DriverError> {
        let cells = self.numa_cells();
        let first = cells[0] as i32;
        Ok(self
            .cells_free_memory(first, cells.len() as u32)?
            .iter()
            .sum())
    }

    /// `virNodeGetCPUMap`.
    pub fn cpu_map(&self) -> Result<CpuMap, DriverError> {
        let (_, sys) = self.host_dirs();
        let cpu = sys.join("devices/system/cpu");
        let present = sysfs_set(&cpu.join("present"))?;
        let online = sysfs_set(&cpu.join("online"))?;
        Ok(CpuMap {
            present: present.last().map_or(0, |l| l + 1),
            online,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_meminfo() {
        assert_eq!(
            node_free("Node 0 MemTotal: 100 kB\nNode 0 MemFree:  7 kB\n"),
            Some(7 * 1024)
        );
        assert_eq!(node_free("nothing"), None);
    }
}
