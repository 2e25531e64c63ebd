//! Runtime statistics of running domains, as libvirt's QEMU driver gathers them: block
//! devices from QMP `query-blockstats`, network interfaces from the host's `/proc/net/dev`,
//! memory from the balloon and `/proc/PID/statm`, vCPUs from `query-cpus-fast` and the vCPU
//! threads' `/proc` entries.

use serde::Serialize;
use serde_json::{Value, json};

use super::DriverError;
use super::domain::Domain;
use crate::domain::DomainDef;

/// `virDomainBlockStatsFlags`' fields for one disk (or the sum over all disks). Times are in
/// nanoseconds. libvirt leaves out `errs` for QEMU, as it has no such counter.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BlockStats {
    pub rd_req: i64,
    pub rd_bytes: i64,
    pub wr_req: i64,
    pub wr_bytes: i64,
    pub flush_req: i64,
    pub rd_total_times: i64,
    pub wr_total_times: i64,
    pub flush_total_times: i64,
    /// Highest offset written (`wr_highest_offset`), the allocation `domstats` reports.
    #[serde(skip)]
    pub wr_highest_offset: Option<u64>,
}

impl BlockStats {
    fn add(&mut self, o: &BlockStats) {
        self.rd_req += o.rd_req;
        self.rd_bytes += o.rd_bytes;
        self.wr_req += o.wr_req;
        self.wr_bytes += o.wr_bytes;
        self.flush_req += o.flush_req;
        self.rd_total_times += o.rd_total_times;
        self.wr_total_times += o.wr_total_times;
        self.flush_total_times += o.flush_total_times;
    }

    fn from_qmp(s: &Value) -> BlockStats {
        let n = |k: &str| s[k].as_i64().unwrap_or(0);
        BlockStats {
            rd_req: n("rd_operations"),
            rd_bytes: n("rd_bytes"),
            wr_req: n("wr_operations"),
            wr_bytes: n("wr_bytes"),
            flush_req: n("flush_operations"),
            rd_total_times: n("rd_total_time_ns"),
            wr_total_times: n("wr_total_time_ns"),
            flush_total_times: n("flush_total_time_ns"),
            wr_highest_offset: s["wr_highest_offset"].as_u64(),
        }
    }
}

/// `virDomainInterfaceStats`: counters as the guest sees them (the host's rx is its tx).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct InterfaceStats {
    pub rx_bytes: i64,
    pub rx_packets: i64,
    pub rx_errs: i64,
    pub rx_drop: i64,
    pub tx_bytes: i64,
    pub tx_packets: i64,
    pub tx_errs: i64,
    pub tx_drop: i64,
}

/// `virDomainMemoryStatTags`, with virsh's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MemoryStatTag {
    SwapIn,
    SwapOut,
    MajorFault,
    MinorFault,
    Unused,
    Available,
    Actual,
    Rss,
    Usable,
    LastUpdate,
    DiskCaches,
    HugetlbPgalloc,
    HugetlbPgfail,
}

impl MemoryStatTag {
    /// The name `virsh dommemstat` prints.
    pub fn dommemstat_name(self) -> &'static str {
        match self {
            MemoryStatTag::SwapIn => "swap_in",
            MemoryStatTag::SwapOut => "swap_out",
            MemoryStatTag::MajorFault => "major_fault",
            MemoryStatTag::MinorFault => "minor_fault",
            MemoryStatTag::Unused => "unused",
            MemoryStatTag::Available => "available",
            MemoryStatTag::Actual => "actual",
            MemoryStatTag::Rss => "rss",
            MemoryStatTag::Usable => "usable",
            MemoryStatTag::LastUpdate => "last_update",
            MemoryStatTag::DiskCaches => "disk_caches",
            MemoryStatTag::HugetlbPgalloc => "hugetlb_pgalloc",
            MemoryStatTag::HugetlbPgfail => "hugetlb_pgfail",
        }
    }

    /// The name in `domstats`' balloon group (`balloon.NAME`); `None` for `actual`, which
    /// that group reports as `balloon.current`.
    // libvirt: qemuDomainGetStatsBalloon
    pub fn domstats_name(self) -> Option<&'static str> {
        match self {
            MemoryStatTag::Actual => None,
            MemoryStatTag::LastUpdate => Some("last-update"),
            t => Some(t.dommemstat_name()),
        }
    }
}

/// One `virDomainMemoryStats` entry; sizes in KiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MemoryStat {
    pub tag: MemoryStatTag,
    pub val: u64,
}

/// libvirt's vCPU states (`virVcpuState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum VcpuState {
    Offline,
    Running,
    Blocked,
}

impl VcpuState {
    /// As virsh prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            VcpuState::Offline => "offline",
            VcpuState::Running => "running",
            VcpuState::Blocked => "blocked",
        }
    }

    /// The number `domstats` reports.
    pub fn number(self) -> i32 {
        match self {
            VcpuState::Offline => 0,
            VcpuState::Running => 1,
            VcpuState::Blocked => 2,
        }
    }
}

/// `virDomainGetVcpus`' answer for one vCPU, plus its host affinity. Inactive domains have
/// no host CPU and no state (`None`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VcpuInfo {
    pub number: u32,
    pub state: Option<VcpuState>,
    /// CPU time in nanoseconds.
    pub cpu_time: u64,
    /// The host CPU it last ran on.
    pub cpu: Option<i32>,
    /// Host CPUs it may run on, one flag per host CPU.
    pub affinity: Vec<bool>,
    /// Time spent runnable but waiting for a host CPU (ns), from `schedstat`.
    #[serde(skip)]
    pub delay: Option<u64>,
}

/// Host CPUs present (`/sys/devices/system/cpu/present`), as libvirt sizes affinity maps.
pub(crate) fn host_cpu_count() -> usize {
    std::fs::read_to_string("/sys/devices/system/cpu/present")
        .ok()
        .and_then(|s| {
            s.trim()
                .split(',')
                .filter_map(|r| r.rsplit('-').next()?.parse::<usize>().ok())
                .max()
        })
        .map(|m| m + 1)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// The affinity of thread `tid` of `pid` over `ncpus` host CPUs (`Cpus_allowed_list`).
fn affinity_of(pid: i32, tid: i32, ncpus: usize) -> Vec<bool> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/status"))
        .ok()
        .and_then(|s| {
            let list = s
                .lines()
                .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))?;
            parse_cpuset(list.trim(), ncpus)
        })
        .unwrap_or_else(|| vec![true; ncpus])
}

/// (utime+stime in ns, last CPU) of thread `tid` of `pid`.
pub(crate) fn thread_stat(pid: i32, tid: i32) -> Option<(u64, i32)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // f[0] is field 3: utime 14, stime 15, processor 39.
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    let cpu: i32 = f.get(36)?.parse().ok()?;
    Some(((utime + stime).saturating_mul(ns_per_tick()), cpu))
}

fn ns_per_tick() -> u64 {
    // SAFETY: sysconf takes an integer and reads no memory of ours.
    let hz = unsafe { nix::libc::sysconf(nix::libc::_SC_CLK_TCK) };
    u64::try_from(hz)
        .ok()
        .filter(|h| *h > 0)
        .map_or(10_000_000, |h| 1_000_000_000 / h)
}

/// The wait time (ns) in `/proc/PID/task/TID/schedstat`'s second field.
fn thread_delay(pid: i32, tid: i32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/schedstat")).ok()?;
    s.split_whitespace().nth(1)?.parse().ok()
}

/// user and system CPU time of process `pid` in ns.
pub(crate) fn process_cpu_times(pid: i32) -> Option<(u64, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    let t = ns_per_tick();
    Some((utime * t, stime * t))
}

/// Resident set of `pid` in KiB (`/proc/PID/statm`'s second field, in pages).
fn rss_kib(pid: i32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    let pages: u64 = s.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf takes an integer and reads no memory of ours.
    let page = unsafe { nix::libc::sysconf(nix::libc::_SC_PAGESIZE) };
    Some(pages * u64::try_from(page).unwrap_or(4096) / 1024)
}

/// The counters of host interface `ifname` in `/proc/net/dev` text, swapped to the guest's
/// view when `swap` (a tap's rx is what the guest sent).
// libvirt: virNetDevTapInterfaceStats
pub fn parse_proc_net_dev(text: &str, ifname: &str, swap: bool) -> Option<InterfaceStats> {
    for line in text.lines().skip(2) {
        let (name, rest) = line.split_once(':')?;
        if name.trim() != ifname {
            continue;
        }
        let v: Vec<i64> = rest
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        if v.len() < 12 {
            return None;
        }
        let (rx, tx) = ((v[0], v[1], v[2], v[3]), (v[8], v[9], v[10], v[11]));
        let (a, b) = if swap { (tx, rx) } else { (rx, tx) };
        return Some(InterfaceStats {
            rx_bytes: a.0,
            rx_packets: a.1,
            rx_errs: a.2,
            rx_drop: a.3,
            tx_bytes: b.0,
            tx_packets: b.1,
            tx_errs: b.2,
            tx_drop: b.3,
        });
    }
    None
}

/// The index in `def` of the interface named `device`: its host device name or its MAC.
// libvirt: virDomainNetFind
pub(crate) fn find_interface(def: &DomainDef, device: &str) -> Result<usize, DriverError> {
    let is_mac = device.len() == 17 && device.bytes().filter(|b| *b == b':').count() == 5;
    let found: Vec<usize> = def
        .devices
        .interfaces
        .iter()
        .enumerate()
        .filter(|(_, n)| {
            if is_mac {
                n.mac
                    .as_deref()
                    .is_some_and(|m| m.eq_ignore_ascii_case(device))
            } else {
                n.target_dev.as_deref() == Some(device)
            }
        })
        .map(|(i, _)| i)
        .collect();
    match found.as_slice() {
        [i] => Ok(*i),
        [] => Err(DriverError::InvalidArg(format!(
            "'{device}' is not a known interface"
        ))),
        _ => Err(DriverError::InvalidArg(format!(
            "MAC address '{device}' matches multiple devices in domain"
        ))),
    }
}

/// Interface types whose host device sees the guest's traffic the other way round.
fn shares_host_view(itype: &str) -> bool {
    matches!(itype, "direct" | "ethernet")
}

pub(crate) fn interface_stats_for(
    def: &DomainDef,
    idx: usize,
) -> Result<InterfaceStats, DriverError> {
    let net = &def.devices.interfaces[idx];
    let not_found = || DriverError::Internal("/proc/net/dev: Interface not found".into());
    let ifname = net.target_dev.as_deref().ok_or_else(not_found)?;
    let text = std::fs::read_to_string("/proc/net/dev").map_err(|e| DriverError::System {
        msg: "Could not open /proc/net/dev".into(),
        err: e,
    })?;
    parse_proc_net_dev(&text, ifname, !shares_host_view(&net.itype)).ok_or_else(not_found)
}

/// Whether a `query-blockstats` entry is the one of the disk with alias `alias`.
pub(crate) fn is_disk_entry(e: &Value, alias: &str) -> bool {
    let qdev = e["qdev"].as_str().unwrap_or("");
    let device = e["device"].as_str().unwrap_or("");
    qdev == alias
        || qdev.ends_with(&format!("/{alias}"))
        || qdev.contains(&format!("/{alias}/"))
        || device == format!("drive-{alias}")
}

impl Domain<'_> {
    /// The live definition and QEMU's pid; libvirt's error when not running.
    fn running_def(&self) -> Result<(DomainDef, i32), DriverError> {
        let live = self.live_process()?;
        Ok((live.def, live.pid))
    }

    /// Per-disk stats: (target, stats), in the definition's order, from one query.
    pub(crate) fn block_stats_all(
        &self,
        def: &DomainDef,
    ) -> Result<Vec<(String, BlockStats)>, DriverError> {
        let reply = self.qmp_call("query-blockstats", None)?;
        let entries = reply.as_array().cloned().unwrap_or_default();
        Ok(def
            .devices
            .disks
            .iter()
            .filter_map(|d| {
                let alias = d.info.alias.as_deref()?;
                let e = entries.iter().find(|e| is_disk_entry(e, alias))?;
                Some((d.target.dev.clone(), BlockStats::from_qmp(&e["stats"])))
            })
            .collect())
    }

    /// `virDomainBlockStatsFlags`: the stats of disk `device` (its target or source path),
    /// or the sum over all disks when `device` is empty.
    // libvirt: qemuDomainBlockStatsFlags
    pub fn block_stats(&self, device: &str) -> Result<BlockStats, DriverError> {
        let (def, _) = self.running_def()?;
        let all = self.block_stats_all(&def)?;
        if device.is_empty() {
            let mut sum = BlockStats::default();
            for (_, s) in &all {
                sum.add(s);
            }
            return Ok(sum);
        }
        let disk = find_disk(&def, device)?;
        all.into_iter()
            .find(|(t, _)| *t == def.devices.disks[disk].target.dev)
            .map(|(_, s)| s)
            .ok_or_else(|| {
                DriverError::Internal(format!("cannot find statistics for device '{device}'"))
            })
    }

    /// `virDomainInterfaceStats` for interface `device` (host device name or MAC).
    // libvirt: qemuDomainInterfaceStats
    pub fn interface_stats(&self, device: &str) -> Result<InterfaceStats, DriverError> {
        let (def, _) = self.running_def()?;
        let idx = find_interface(&def, device)?;
        interface_stats_for(&def, idx)
    }

    /// `virDomainMemoryStats`: the balloon's view when the domain has a balloon, else the
    /// current memory as `actual`; then QEMU's resident set as `rss`.
    // libvirt: qemuDomainMemoryStatsInternal, qemuMonitorJSONGetMemoryStats
    pub fn memory_stats(&self) -> Result<Vec<MemoryStat>, DriverError> {
        let (def, pid) = self.running_def()?;
        let mut out = Vec::new();
        let balloon = def
            .devices
            .memballoon
            .as_ref()
            .filter(|b| b.model != Some(crate::domain::devices::MemballoonModel::None))
            .and_then(|b| b.info.alias.clone());
        match balloon {
            Some(alias) => {
                let b = self.qmp_call("query-balloon", None)?;
                if let Some(actual) = b["actual"].as_u64() {
                    out.push(MemoryStat {
                        tag: MemoryStatTag::Actual,
                        val: actual / 1024,
                    });
                }
                let path = format!("/machine/peripheral/{alias}");
                let args = json!({"path": path, "property": "guest-stats"});
                if let Ok(gs) = self.qmp_call("qom-get", Some(args)) {
                    out.extend(balloon_stats(&gs));
                }
            }
            None => out.push(MemoryStat {
                tag: MemoryStatTag::Actual,
                val: def.current_memory.unwrap_or(def.memory.kib),
            }),
        }
        if let Some(rss) = rss_kib(pid) {
            out.push(MemoryStat {
                tag: MemoryStatTag::Rss,
                val: rss,
            });
        }
        Ok(out)
    }

    /// `virDomainGetVcpus` for a running domain; for an inactive one, the vCPUs of its
    /// definition with no state, as virsh shows them.
    pub fn vcpus(&self) -> Result<Vec<VcpuInfo>, DriverError> {
        let ncpus = host_cpu_count();
        if !self.is_active()? {
            let def = crate::domain::parse(&self.xml_desc(crate::domain::FormatFlags {
                inactive: true,
                secure: true,
            })?)?;
            let count = def.vcpu.current.unwrap_or(def.vcpu.count);
            let allowed = def
                .vcpu
                .cpuset
                .as_deref()
                .and_then(|s| parse_cpuset(s, ncpus))
                .unwrap_or_else(|| vec![true; ncpus]);
            return Ok((0..count)
                .map(|n| VcpuInfo {
                    number: n,
                    state: None,
                    cpu_time: 0,
                    cpu: None,
                    affinity: allowed.clone(),
                    delay: None,
                })
                .collect());
        }
        let (_, pid) = self.running_def()?;
        let cpus = self.qmp_call("query-cpus-fast", None)?;
        let mut out = Vec::new();
        for c in cpus.as_array().map(|a| a.as_slice()).unwrap_or_default() {
            let number = c["cpu-index"].as_u64().unwrap_or(out.len() as u64) as u32;
            let tid = c["thread-id"].as_i64().unwrap_or(0) as i32;
            let (cpu_time, cpu) = thread_stat(pid, tid).map_or((0, None), |(t, c)| (t, Some(c)));
            out.push(VcpuInfo {
                number,
                state: Some(VcpuState::Running),
                cpu_time,
                cpu,
                affinity: affinity_of(pid, tid, ncpus),
                delay: thread_delay(pid, tid),
            });
        }
        out.sort_by_key(|v| v.number);
        Ok(out)
    }
}

/// Balloon statistics from `qom-get guest-stats`, in libvirt's order; QEMU's -1 (never
/// reported by the guest) is left out. Sizes become KiB.
// libvirt: qemuMonitorJSONGetMemoryStats
fn balloon_stats(gs: &Value) -> Vec<MemoryStat> {
    let stats = &gs["stats"];
    let mut out = Vec::new();
    let mut put = |v: &Value, key: &str, tag: MemoryStatTag, div: u64| {
        if let Some(n) = v[key].as_u64() {
            out.push(MemoryStat { tag, val: n / div });
        }
    };
    use MemoryStatTag as T;
    put(stats, "stat-swap-in", T::SwapIn, 1024);
    put(stats, "stat-swap-out", T::SwapOut, 1024);
    put(stats, "stat-major-faults", T::MajorFault, 1);
    put(stats, "stat-minor-faults", T::MinorFault, 1);
    put(stats, "stat-free-memory", T::Unused, 1024);
    put(stats, "stat-total-memory", T::Available, 1024);
    put(stats, "stat-available-memory", T::Usable, 1024);
    put(gs, "last-update", T::LastUpdate, 1);
    put(stats, "stat-disk-caches", T::DiskCaches, 1024);
    put(stats, "stat-htlb-pgalloc", T::HugetlbPgalloc, 1);
    put(stats, "stat-htlb-pgfail", T::HugetlbPgfail, 1);
    out
}

/// A cpuset (`0-3,^2,8`) as flags over `ncpus` host CPUs.
pub(crate) fn parse_cpuset(s: &str, ncpus: usize) -> Option<Vec<bool>> {
    let mut map = vec![false; ncpus];
    for part in s.split(',').map(str::trim) {
        let (neg, part) = match part.strip_prefix('^') {
            Some(p) => (true, p),
            None => (false, part),
        };
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (a.parse::<usize>().ok()?, b.parse::<usize>().ok()?),
            None => {
                let n = part.parse::<usize>().ok()?;
                (n, n)
            }
        };
        for slot in map.iter_mut().take(b.saturating_add(1)).skip(a) {
            *slot = !neg;
        }
    }
    Some(map)
}

/// The index of the disk named `device`: its target (`vda`) or its source path.
// libvirt: virDomainDiskByName
pub(crate) fn find_disk(def: &DomainDef, device: &str) -> Result<usize, DriverError> {
    def.devices
        .disks
        .iter()
        .position(|d| d.target.dev == device)
        .or_else(|| {
            def.devices.disks.iter().position(|d| {
                d.source.as_ref().is_some_and(|s| {
                    s.file.as_deref() == Some(device) || s.dev.as_deref() == Some(device)
                })
            })
        })
        .ok_or_else(|| DriverError::InvalidArg(format!("invalid path: {device}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NET_DEV: &str = "Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:    1000      10    0    0    0     0          0         0     1000      10    0    0    0     0       0          0
 vnet0:     500       5    1    2    0     0          0         0      700       7    3    4    0     0       0          0
";

    #[test]
    fn tap_counters_are_swapped_to_the_guest_view() {
        let s = parse_proc_net_dev(NET_DEV, "vnet0", true).unwrap();
        assert_eq!(
            (s.rx_bytes, s.rx_packets, s.rx_errs, s.rx_drop),
            (700, 7, 3, 4)
        );
        assert_eq!(
            (s.tx_bytes, s.tx_packets, s.tx_errs, s.tx_drop),
            (500, 5, 1, 2)
        );
        let s = parse_proc_net_dev(NET_DEV, "vnet0", false).unwrap();
        assert_eq!(s.rx_bytes, 500);
        assert!(parse_proc_net_dev(NET_DEV, "vnet1", true).is_none());
    }

    #[test]
    fn cpusets() {
        assert_eq!(
            parse_cpuset("0-2,^1", 4),
            Some(vec![true, false, true, false])
        );
        assert_eq!(parse_cpuset("3", 4), Some(vec![false, false, false, true]));
        assert_eq!(parse_cpuset("x", 4), None);
    }

    #[test]
    fn balloon_stats_skip_unreported_values() {
        let gs = json!({"stats": {"stat-swap-in": -1, "stat-free-memory": 2048,
            "stat-total-memory": -1}, "last-update": 0});
        let s = balloon_stats(&gs);
        assert_eq!(
            s,
            vec![
                MemoryStat {
                    tag: MemoryStatTag::Unused,
                    val: 2
                },
                MemoryStat {
                    tag: MemoryStatTag::LastUpdate,
                    val: 0
                },
            ]
        );
    }
}

/// `virDomainGetBlockInfo`: sizes in bytes. All zero for a disk with no local source (an
/// empty drive, network storage), which virsh shows as `-`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct BlockInfo {
    /// The size the guest sees.
    pub capacity: u64,
    /// Host storage in use.
    pub allocation: u64,
    /// The size of the host file or device.
    pub physical: u64,
}

/// The virtual size a qcow2 header declares (bytes 24..32, big endian).
fn qcow2_capacity(head: &[u8]) -> Option<u64> {
    if head.len() < 32 || &head[..4] != b"QFI\xfb" {
        return None;
    }
    Some(u64::from_be_bytes(head[24..32].try_into().ok()?))
}

/// The sizes of the local image `path`, from the file and, for qcow2, its header.
// libvirt: qemuStorageLimitsRefresh
pub fn image_info(path: &std::path::Path) -> Result<BlockInfo, DriverError> {
    use std::io::Read;
    use std::os::unix::fs::MetadataExt;
    let sys = |e| DriverError::System {
        msg: format!("cannot stat file '{}'", path.display()),
        err: e,
    };
    let meta = std::fs::metadata(path).map_err(sys)?;
    let mut f = std::fs::File::open(path).map_err(|e| DriverError::System {
        msg: format!("cannot open file '{}'", path.display()),
        err: e,
    })?;
    let physical = if meta.file_type().is_file() {
        meta.len()
    } else {
        use std::io::Seek;
        f.seek(std::io::SeekFrom::End(0)).unwrap_or(0)
    };
    let mut head = [0u8; 32];
    let n = {
        use std::io::Seek;
        f.seek(std::io::SeekFrom::Start(0)).ok();
        f.read(&mut head).unwrap_or(0)
    };
    let allocation = if meta.file_type().is_file() {
        meta.blocks() * 512
    } else {
        physical
    };
    Ok(BlockInfo {
        capacity: qcow2_capacity(&head[..n]).unwrap_or(physical),
        allocation,
        physical,
    })
}

impl Domain<'_> {
    /// `virDomainGetBlockInfo` for disk `device` (target or source path), from its image.
    pub fn block_info(&self, device: &str) -> Result<BlockInfo, DriverError> {
        let def = crate::domain::parse(&self.xml_desc(crate::domain::FormatFlags {
            inactive: false,
            secure: true,
        })?)?;
        let idx = find_disk(&def, device).map_err(|_| {
            DriverError::InvalidArg(format!("invalid path {device} not assigned to domain"))
        })?;
        let disk = &def.devices.disks[idx];
        let local = disk
            .source
            .as_ref()
            .filter(|s| s.protocol.is_none())
            .and_then(|s| s.file.clone().or(s.dev.clone()));
        match local {
            Some(p) => image_info(std::path::Path::new(&p)),
            None => Ok(BlockInfo::default()),
        }
    }
}

#[cfg(test)]
mod image_tests {
    use super::*;

    #[test]
    fn raw_and_qcow2_sizes() {
        let d = tempfile::tempdir().unwrap();
        let raw = d.path().join("a.raw");
        std::fs::write(&raw, vec![1u8; 4096]).unwrap();
        let i = image_info(&raw).unwrap();
        assert_eq!((i.capacity, i.physical), (4096, 4096));
        let q = d.path().join("a.qcow2");
        let mut h = b"QFI\xfb".to_vec();
        h.extend([0u8; 20]);
        h.extend(1_073_741_824u64.to_be_bytes());
        std::fs::write(&q, &h).unwrap();
        let i = image_info(&q).unwrap();
        assert_eq!((i.capacity, i.physical), (1_073_741_824, 32));
        assert!(image_info(&d.path().join("none")).is_err());
    }
}
