//! NUMA topology: cells with their memory, pages, distances, memory-side caches and CPUs,
//! plus HMAT interconnects, from `<system>/node` and `<system>/cpu`.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::HostRoot;
use super::sysfs::{
    err, join, list_dir_opt, numbered_entries, read, read_cpuset, read_cpuset_opt, read_num,
    read_num_opt,
};
use crate::capabilities::CapsError;
use crate::capabilities::cpuset::CpuSet;

/// Number of pages of one size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageCount {
    pub size_kib: u64,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Distance {
    pub node: u32,
    pub value: u32,
}

/// Where a CPU sits. Absent for CPUs known only by id (libvirt then prints `<cpu id='N'/>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuPlacement {
    pub socket_id: u32,
    pub die_id: u32,
    pub core_id: u32,
    pub siblings: CpuSet,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CellCpu {
    pub id: u32,
    pub placement: Option<CpuPlacement>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CacheAssociativity {
    None,
    Direct,
    Full,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CachePolicy {
    None,
    Writeback,
    Writethrough,
}

/// A memory-side cache in front of a NUMA node's memory (HMAT).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemorySideCache {
    pub level: u32,
    pub size_kib: u64,
    pub line_bytes: u32,
    pub associativity: CacheAssociativity,
    pub policy: CachePolicy,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NumaCell {
    pub id: u32,
    /// KiB; 0 means unknown and is not printed.
    pub memory_kib: u64,
    pub pages: Vec<PageCount>,
    pub distances: Vec<Distance>,
    pub caches: Vec<MemorySideCache>,
    pub cpus: Vec<CellCpu>,
}

/// Declaration order is libvirt's sort order (latencies before bandwidths).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InterconnectKind {
    Latency,
    Bandwidth,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccessType {
    Read,
    Write,
}

/// One HMAT performance figure between an initiator node and a target node. Latency is in
/// nanoseconds, bandwidth in KiB/s.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Interconnect {
    pub kind: InterconnectKind,
    pub initiator: u32,
    pub target: u32,
    /// Memory-side cache level the figure applies to; 0 = the memory itself.
    pub cache: u32,
    pub access: AccessType,
    pub value: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NumaTopology {
    pub cells: Vec<NumaCell>,
    pub interconnects: Vec<Interconnect>,
}

/// Where per-node memory, page and distance figures come from.
///
/// The default reads sysfs; libvirt's own test suite replaces exactly these three figures
/// with computed values (its NUMA mock), so tests reproducing its expected output supply an
/// implementation of their own instead of the library faking anything.
pub trait NumaMemorySource {
    /// Total memory of `node` in KiB.
    fn node_memory_kib(&self, root: &HostRoot, node: u32) -> Result<u64, CapsError>;
    /// Page sizes with counts, smallest size first.
    fn node_pages(
        &self,
        root: &HostRoot,
        node: u32,
        memory_kib: u64,
    ) -> Result<Vec<PageCount>, CapsError>;
    /// Distances from `node` to each node in `online`.
    fn node_distances(
        &self,
        root: &HostRoot,
        node: u32,
        online: &CpuSet,
    ) -> Result<Vec<Distance>, CapsError>;
}

/// Figures from `nodeN/meminfo`, `nodeN/hugepages` and `nodeN/distance`.
#[derive(Debug, Clone, Copy, Default)]
pub struct SysfsNumaMemory;

fn node_dir(root: &HostRoot, node: u32) -> std::path::PathBuf {
    join(&root.system_dir, &["node", &format!("node{node}")])
}

/// Hugepage sizes (KiB) and their `nr_hugepages` from a `hugepages/` directory (per node or
/// the global `/sys/kernel/mm/hugepages`); empty when the directory does not exist.
pub(crate) fn hugepages_in(
    dir: &std::path::Path,
    with_counts: bool,
) -> Result<Vec<PageCount>, CapsError> {
    let Some(names) = list_dir_opt(dir)? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for name in names {
        let Some(size) = name.strip_prefix("hugepages-") else {
            continue;
        };
        let size_kib: u64 = size
            .strip_suffix("kB")
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| err(&dir.join(&name), "unexpected hugepage directory name"))?;
        let count = if with_counts {
            read_num(&join(dir, &[&name, "nr_hugepages"]))?
        } else {
            0
        };
        out.push(PageCount { size_kib, count });
    }
    out.sort_by_key(|p| p.size_kib);
    Ok(out)
}

/// The system page size in KiB, from the auxiliary vector the kernel gave this process
/// (AT_PAGESZ); 4 when that is unavailable, as on every fake root.
pub fn system_page_kib(root: &HostRoot) -> u64 {
    const AT_PAGESZ: u64 = 6;
    let Ok(bytes) = std::fs::read(root.proc_dir.join("self/auxv")) else {
        return 4;
    };
    for pair in bytes.chunks_exact(16) {
        let (k, v) = pair.split_at(8);
        let k = u64::from_ne_bytes(k.try_into().unwrap_or([0; 8]));
        let v = u64::from_ne_bytes(v.try_into().unwrap_or([0; 8]));
        if k == AT_PAGESZ && v >= 1024 {
            return v / 1024;
        }
    }
    4
}

/// A `KEY: N kB` value from a meminfo-style file (also matches `Node 0 KEY:` lines).
pub(crate) fn meminfo_kib(path: &std::path::Path, key: &str) -> Result<u64, CapsError> {
    let text = read(path)?;
    for line in text.lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        if k.trim() == key || k.trim().ends_with(&format!(" {key}")) {
            let num = v.trim().trim_end_matches("kB").trim();
            return num
                .parse()
                .map_err(|e| err(path, format!("invalid {key} value '{num}': {e}")));
        }
    }
    Err(err(path, format!("no {key} line")))
}

impl NumaMemorySource for SysfsNumaMemory {
    fn node_memory_kib(&self, root: &HostRoot, node: u32) -> Result<u64, CapsError> {
        meminfo_kib(&node_dir(root, node).join("meminfo"), "MemTotal")
    }

    fn node_pages(
        &self,
        root: &HostRoot,
        node: u32,
        memory_kib: u64,
    ) -> Result<Vec<PageCount>, CapsError> {
        let huge = hugepages_in(&node_dir(root, node).join("hugepages"), true)?;
        let sys = system_page_kib(root);
        // Ordinary pages are whatever memory hugepages have not reserved, as libvirt counts.
        let reserved: u64 = huge
            .iter()
            .map(|p| p.size_kib.saturating_mul(p.count))
            .sum();
        let mut pages = vec![PageCount {
            size_kib: sys,
            count: memory_kib.saturating_sub(reserved) / sys.max(1),
        }];
        pages.extend(huge);
        pages.sort_by_key(|p| p.size_kib);
        Ok(pages)
    }

    fn node_distances(
        &self,
        root: &HostRoot,
        node: u32,
        online: &CpuSet,
    ) -> Result<Vec<Distance>, CapsError> {
        let path = node_dir(root, node).join("distance");
        let Some(text) = super::sysfs::read_opt(&path)? else {
            return Ok(Vec::new());
        };
        // The kernel prints one value per online node, in node order.
        let mut out = Vec::new();
        for (target, tok) in online.iter().zip(text.split_whitespace()) {
            let value = tok
                .parse()
                .map_err(|e| err(&path, format!("invalid distance '{tok}': {e}")))?;
            out.push(Distance {
                node: target,
                value,
            });
        }
        Ok(out)
    }
}

/// Socket, die, core and thread siblings of one CPU. Missing files take the values libvirt
/// assumes (0, and the CPU as its own only sibling): offline CPUs and some architectures
/// have no topology directory; `-1` means "not applicable" and also becomes 0.
pub fn cpu_placement(root: &HostRoot, cpu: u32) -> Result<CpuPlacement, CapsError> {
    let dir = join(&root.system_dir, &["cpu", &format!("cpu{cpu}"), "topology"]);
    let id = |name: &str| -> Result<u32, CapsError> {
        let v: Option<i64> = read_num_opt(&dir.join(name))?;
        Ok(v.filter(|v| *v >= 0).map_or(0, |v| v as u32))
    };
    let siblings = match read_cpuset_opt(&dir.join("thread_siblings_list"))? {
        Some(s) => s,
        None => std::iter::once(cpu).collect(),
    };
    Ok(CpuPlacement {
        socket_id: id("physical_package_id")?,
        die_id: id("die_id")?,
        core_id: id("core_id")?,
        siblings,
    })
}

fn memory_side_caches(root: &HostRoot, node: u32) -> Result<Vec<MemorySideCache>, CapsError> {
    let dir = node_dir(root, node).join("memory_side_cache");
    let Some(names) = list_dir_opt(&dir)? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for (level, name) in numbered_entries(&names, "index") {
        let sub = dir.join(&name);
        let size: u64 = read_num(&sub.join("size"))?;
        let line_bytes = read_num(&sub.join("line_size"))?;
        let indexing: u32 = read_num(&sub.join("indexing"))?;
        let policy: u32 = read_num(&sub.join("write_policy"))?;
        out.push(MemorySideCache {
            level,
            size_kib: size >> 10,
            line_bytes,
            associativity: match indexing {
                0 => CacheAssociativity::Direct,
                1 => CacheAssociativity::Full,
                _ => CacheAssociativity::None,
            },
            policy: match policy {
                0 => CachePolicy::Writeback,
                1 => CachePolicy::Writethrough,
                _ => CachePolicy::None,
            },
        });
    }
    Ok(out)
}

fn interconnects(root: &HostRoot, online: &CpuSet) -> Result<Vec<Interconnect>, CapsError> {
    let mut out = Vec::new();
    for target in online.iter() {
        // access0 would include non-CPU initiators, but the kernel only describes access1
        // in this layout, which is what libvirt reports too.
        let dir = join(&node_dir(root, target), &["access1", "initiators"]);
        let Some(names) = list_dir_opt(&dir)? else {
            continue;
        };
        let rd_bw: u64 = read_num(&dir.join("read_bandwidth"))?;
        let wr_bw: u64 = read_num(&dir.join("write_bandwidth"))?;
        let rd_lat: u64 = read_num(&dir.join("read_latency"))?;
        let wr_lat: u64 = read_num(&dir.join("write_latency"))?;
        for (initiator, _) in numbered_entries(&names, "node") {
            let mut push = |kind, access, value| {
                out.push(Interconnect {
                    kind,
                    initiator,
                    target,
                    cache: 0,
                    access,
                    value,
                })
            };
            // sysfs reports MiB/s; capabilities use KiB/s.
            push(InterconnectKind::Bandwidth, AccessType::Read, rd_bw * 1024);
            push(InterconnectKind::Bandwidth, AccessType::Write, wr_bw * 1024);
            push(InterconnectKind::Latency, AccessType::Read, rd_lat);
            push(InterconnectKind::Latency, AccessType::Write, wr_lat);
        }
    }
    out.sort();
    Ok(out)
}

/// Whether sysfs describes NUMA at all (`<system>/node` exists).
pub fn has_numa(root: &HostRoot) -> bool {
    root.system_dir.join("node").is_dir()
}

/// Cells from sysfs, or the single cell libvirt fabricates on hosts without NUMA.
pub fn probe_numa(
    root: &HostRoot,
    source: &dyn NumaMemorySource,
) -> Result<NumaTopology, CapsError> {
    if !has_numa(root) {
        return probe_fake_numa(root);
    }
    let online = read_cpuset(&join(&root.system_dir, &["node", "online"]))?;
    let mut cells = Vec::new();
    for node in online.iter() {
        let cpuset = read_cpuset(&node_dir(root, node).join("cpulist"))?;
        let cpus = cell_cpus(root, &cpuset)?;
        let memory_kib = source.node_memory_kib(root, node)?;
        cells.push(NumaCell {
            id: node,
            memory_kib,
            pages: source.node_pages(root, node, memory_kib)?,
            distances: source.node_distances(root, node, &online)?,
            caches: memory_side_caches(root, node)?,
            cpus,
        });
    }
    Ok(NumaTopology {
        cells,
        interconnects: interconnects(root, &online)?,
    })
}

/// Online CPUs: `cpu/online`, else `cpu/present` (some containers hide the former).
pub fn online_cpus(root: &HostRoot) -> Result<CpuSet, CapsError> {
    let online = join(&root.system_dir, &["cpu", "online"]);
    match read_cpuset_opt(&online)? {
        Some(s) => Ok(s),
        None => match read_cpuset_opt(&join(&root.system_dir, &["cpu", "present"]))? {
            Some(s) => Ok(s),
            None => Err(err(&online, "cannot read: no such file")),
        },
    }
}

fn cell_cpus(root: &HostRoot, cpus: &CpuSet) -> Result<Vec<CellCpu>, CapsError> {
    cpus.iter()
        .map(|id| {
            Ok(CellCpu {
                id,
                placement: Some(cpu_placement(root, id)?),
            })
        })
        .collect()
}

fn probe_fake_numa(root: &HostRoot) -> Result<NumaTopology, CapsError> {
    let memory_kib = meminfo_kib(&root.proc_dir.join("meminfo"), "MemTotal")?;
    let cpus = cell_cpus(root, &online_cpus(root)?)?;
    Ok(NumaTopology {
        cells: vec![NumaCell {
            id: 0,
            memory_kib,
            pages: Vec::new(),
            distances: Vec::new(),
            caches: Vec::new(),
            cpus,
        }],
        interconnects: Vec::new(),
    })
}

/// Sockets per NUMA node, dies per socket, cores per die and threads per core, as libvirt
/// summarizes them: the maxima over all cells. When the product does not account for every
/// online CPU (asymmetric topologies), libvirt reports one socket with one core per CPU.
pub fn summarize_topology(cells: &[NumaCell], online: &CpuSet) -> (u32, u32, u32, u32) {
    let (mut sockets, mut dies, mut cores, mut threads) = (0u32, 0u32, 0u32, 0u32);
    let mut nodes = 0u32;
    for cell in cells {
        let mut tree: BTreeMap<u32, BTreeMap<u32, BTreeMap<u32, u32>>> = BTreeMap::new();
        for cpu in &cell.cpus {
            if !online.is_empty() && !online.contains(cpu.id) {
                continue;
            }
            let Some(p) = &cpu.placement else { continue };
            *tree
                .entry(p.socket_id)
                .or_default()
                .entry(p.die_id)
                .or_default()
                .entry(p.core_id)
                .or_default() += 1;
        }
        if tree.is_empty() {
            continue;
        }
        nodes += 1;
        sockets = sockets.max(tree.len() as u32);
        for die_map in tree.values() {
            dies = dies.max(die_map.len() as u32);
            for core_map in die_map.values() {
                cores = cores.max(core_map.len() as u32);
                for n in core_map.values() {
                    threads = threads.max(*n);
                }
            }
        }
    }
    let counted: BTreeSet<u32> = cells
        .iter()
        .flat_map(|c| c.cpus.iter().map(|c| c.id))
        .filter(|id| online.is_empty() || online.contains(*id))
        .collect();
    let total = counted.len() as u64;
    let product = u64::from(nodes)
        * u64::from(sockets)
        * u64::from(dies)
        * u64::from(cores)
        * u64::from(threads);
    if product != total || total == 0 {
        return (1, 1, total.max(1) as u32, 1);
    }
    (sockets, dies, cores, threads)
}
