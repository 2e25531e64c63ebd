//! CPU cache banks (L3 and up) from `<system>/cpu/cpuN/cache`, with what resctrl can allocate
//! and monitor in them, and resctrl's memory bandwidth allocation.

use serde::{Deserialize, Serialize};

use super::HostRoot;
use super::numa::online_cpus;
use super::sysfs::{
    err, join, list_dir_opt, numbered_entries, read, read_cpuset, read_num, read_num_opt, read_opt,
    read_scaled_bytes,
};
use crate::capabilities::CapsError;
use crate::capabilities::cpuset::CpuSet;

/// Lower levels are private per core and not allocatable, so libvirt does not list them.
const MIN_CACHE_LEVEL: u32 = 3;

/// Declaration order is the order libvirt lists controls in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CacheType {
    Both,
    Code,
    Data,
}

impl CacheType {
    pub fn as_str(self) -> &'static str {
        match self {
            CacheType::Both => "both",
            CacheType::Code => "code",
            CacheType::Data => "data",
        }
    }
}

/// What resctrl lets one allocate in a bank, per cache type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheControl {
    pub granularity_bytes: u64,
    /// Smallest allocation; 0 when it equals the granularity (not printed then).
    pub min_bytes: u64,
    pub kind: CacheType,
    pub max_allocs: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheBank {
    pub id: u32,
    pub level: u32,
    pub kind: CacheType,
    pub size_bytes: u64,
    pub cpus: CpuSet,
    pub controls: Vec<CacheControl>,
}

/// resctrl monitoring (CMT for caches, MBM for memory bandwidth).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResctrlMonitor {
    /// Set for cache monitors: the level monitored and the occupancy (bytes) under which a
    /// freed monitor id may be reused.
    pub cache: Option<(u32, u64)>,
    pub max_monitors: u32,
    pub features: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostCache {
    pub banks: Vec<CacheBank>,
    pub monitor: Option<ResctrlMonitor>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemBwControl {
    /// Percent steps.
    pub granularity: u32,
    /// Smallest percentage; 0 = not printed.
    pub min: u32,
    pub max_allocs: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemBwNode {
    pub id: u32,
    pub cpus: CpuSet,
    pub control: MemBwControl,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryBandwidth {
    pub nodes: Vec<MemBwNode>,
    pub monitor: Option<ResctrlMonitor>,
}

/// One `info/L<level>[CODE|DATA]` allocation resource.
#[derive(Debug, Clone)]
struct ResctrlCacheInfo {
    level: u32,
    kind: CacheType,
    cbm_bits: u32,
    min_cbm_bits: u32,
    num_closids: u32,
}

#[derive(Debug, Clone, Default)]
struct ResctrlInfo {
    caches: Vec<ResctrlCacheInfo>,
    membw: Option<MemBwControl>,
    num_rmids: u32,
    reuse_threshold: u64,
    mon_features: Vec<String>,
}

fn parse_resource_name(name: &str) -> Option<(u32, CacheType)> {
    let rest = name.strip_prefix('L')?;
    let split = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let level = rest[..split].parse().ok()?;
    let kind = match &rest[split..] {
        "" => CacheType::Both,
        "CODE" => CacheType::Code,
        "DATA" => CacheType::Data,
        _ => return None,
    };
    Some((level, kind))
}

/// `None` when resctrl is not mounted (no `info` directory).
fn load_resctrl(root: &HostRoot) -> Result<Option<ResctrlInfo>, CapsError> {
    let info_dir = root.resctrl_dir.join("info");
    let Some(names) = list_dir_opt(&info_dir)? else {
        return Ok(None);
    };
    let mut info = ResctrlInfo::default();
    for name in &names {
        let Some((level, kind)) = parse_resource_name(name) else {
            continue;
        };
        let dir = info_dir.join(name);
        // A resource without these files cannot be allocated: the kernel has it disabled.
        let Some(num_closids) = read_num_opt::<u32>(&dir.join("num_closids"))? else {
            continue;
        };
        let mask_path = dir.join("cbm_mask");
        let Some(mask) = read_opt(&mask_path)? else {
            continue;
        };
        let mask = u64::from_str_radix(mask.trim(), 16)
            .map_err(|e| err(&mask_path, format!("invalid mask '{}': {e}", mask.trim())))?;
        if mask == 0 {
            return Err(err(&mask_path, "empty cache bit mask"));
        }
        let min_cbm_bits = read_num_opt::<u32>(&dir.join("min_cbm_bits"))?.unwrap_or(1);
        info.caches.push(ResctrlCacheInfo {
            level,
            kind,
            cbm_bits: mask.count_ones(),
            min_cbm_bits,
            num_closids,
        });
    }
    let mb = info_dir.join("MB");
    if mb.is_dir() {
        info.membw = Some(MemBwControl {
            granularity: read_num(&mb.join("bandwidth_gran"))?,
            min: read_num(&mb.join("min_bandwidth"))?,
            max_allocs: read_num(&mb.join("num_closids"))?,
        });
    }
    let mon = info_dir.join("L3_MON");
    if mon.is_dir() {
        info.num_rmids = read_num(&mon.join("num_rmids"))?;
        info.reuse_threshold = read_num(&mon.join("max_threshold_occupancy"))?;
        info.mon_features = read(&mon.join("mon_features"))?
            .split_whitespace()
            .map(str::to_string)
            .collect();
    }
    Ok(Some(info))
}

fn cache_type(path: &std::path::Path, s: &str) -> Result<CacheType, CapsError> {
    match s.trim() {
        "Unified" => Ok(CacheType::Both),
        "Instruction" => Ok(CacheType::Code),
        "Data" => Ok(CacheType::Data),
        other => Err(err(path, format!("unknown cache type '{other}'"))),
    }
}

/// Distinct L3+ banks seen by online CPUs, sorted by level then id.
fn probe_banks(root: &HostRoot) -> Result<Vec<CacheBank>, CapsError> {
    let mut banks: Vec<CacheBank> = Vec::new();
    // Offline CPUs have no cache directory, so only online ones are looked at.
    for cpu in online_cpus(root)?.iter() {
        let dir = join(&root.system_dir, &["cpu", &format!("cpu{cpu}"), "cache"]);
        let Some(names) = list_dir_opt(&dir)? else {
            continue;
        };
        for (_, name) in numbered_entries(&names, "index") {
            let sub = dir.join(&name);
            let level: u32 = read_num(&sub.join("level"))?;
            if level < MIN_CACHE_LEVEL {
                continue;
            }
            let type_path = sub.join("type");
            let bank = CacheBank {
                id: read_num(&sub.join("id"))?,
                level,
                kind: cache_type(&type_path, &read(&type_path)?)?,
                size_bytes: read_scaled_bytes(&sub.join("size"))?,
                cpus: read_cpuset(&sub.join("shared_cpu_list"))?,
                controls: Vec::new(),
            };
            if !banks.contains(&bank) {
                banks.push(bank);
            }
        }
    }
    banks.sort_by_key(|b| (b.level, b.id));
    Ok(banks)
}

fn monitor(info: &ResctrlInfo, prefix: &str, cache: Option<(u32, u64)>) -> Option<ResctrlMonitor> {
    let features: Vec<String> = info
        .mon_features
        .iter()
        .filter(|f| f.starts_with(prefix))
        .cloned()
        .collect();
    (!features.is_empty()).then_some(ResctrlMonitor {
        cache,
        max_monitors: info.num_rmids,
        features,
    })
}

/// Cache banks and memory bandwidth facts. Both are `None` when sysfs lists no online CPUs
/// (a fake root without a `cpu` directory) or no L3+ cache.
pub fn probe_cache(
    root: &HostRoot,
) -> Result<(Option<HostCache>, Option<MemoryBandwidth>), CapsError> {
    if !root.system_dir.join("cpu").is_dir() {
        return Ok((None, None));
    }
    let mut banks = probe_banks(root)?;
    if banks.is_empty() {
        return Ok((None, None));
    }
    let Some(info) = load_resctrl(root)? else {
        return Ok((
            Some(HostCache {
                banks,
                monitor: None,
            }),
            None,
        ));
    };
    for bank in &mut banks {
        let mut res: Vec<&ResctrlCacheInfo> = info
            .caches
            .iter()
            .filter(|c| c.level == bank.level)
            .collect();
        res.sort_by_key(|c| c.kind);
        for c in res {
            let granularity = bank.size_bytes / u64::from(c.cbm_bits);
            bank.controls.push(CacheControl {
                granularity_bytes: granularity,
                min_bytes: if c.min_cbm_bits > 1 {
                    granularity * u64::from(c.min_cbm_bits)
                } else {
                    0
                },
                kind: c.kind,
                max_allocs: c.num_closids,
            });
        }
    }
    // Memory bandwidth is allocated per last-level cache domain.
    let membw = info.membw.as_ref().map(|control| {
        let last = banks.iter().map(|b| b.level).max().unwrap_or(0);
        MemoryBandwidth {
            nodes: banks
                .iter()
                .filter(|b| b.level == last)
                .map(|b| MemBwNode {
                    id: b.id,
                    cpus: b.cpus.clone(),
                    control: control.clone(),
                })
                .collect(),
            monitor: monitor(&info, "mbm_", None),
        }
    });
    let cache = HostCache {
        banks,
        monitor: monitor(&info, "llc_", Some((3, info.reuse_threshold))),
    };
    Ok((Some(cache), membw))
}
