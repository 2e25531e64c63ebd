//! The host as libvirt's node API shows it: `virNodeGetInfo`, memory and CPU counters,
//! hostname and SMBIOS sysinfo, all read from the connection's `/proc` and `/sys`.

use std::collections::BTreeSet;
use std::path::Path;

use serde::Serialize;

use super::{Connect, DriverError};

/// `virNodeInfo`. Memory in KiB, frequency in MHz; sockets are per NUMA node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeInfo {
    pub model: String,
    pub memory: u64,
    pub cpus: u32,
    pub mhz: u32,
    pub nodes: u32,
    pub sockets: u32,
    pub cores: u32,
    pub threads: u32,
}

/// One `virNodeMemoryStats` / `virNodeCPUStats` field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeStat {
    pub field: String,
    pub value: u64,
}

fn read(p: &Path) -> Result<String, DriverError> {
    std::fs::read_to_string(p).map_err(|e| DriverError::System {
        msg: format!("cannot read '{}'", p.display()),
        err: e,
    })
}

/// The value of `key:` in a `/proc/meminfo`-style text, in KiB.
fn meminfo_kib(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let rest = l
            .split_once(':')
            .filter(|(k, _)| k.trim().ends_with(key))?
            .1;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// A `/sys` CPU list (`0-3,8`).
fn cpu_list(s: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for part in s.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<u32>(), b.parse::<u32>()) {
                    out.extend(a..=b);
                }
            }
            None => out.extend(part.parse::<u32>().ok()),
        }
    }
    out
}

/// `virNodeGetInfo` from `proc` and `sys` directories. Topology as libvirt derives it:
/// sockets per node, cores per socket, threads per core; when the counts do not multiply
/// up to the online CPUs, libvirt's fallback (1 node, 1 socket, every CPU a core).
// libvirt: virHostCPUGetInfoPopulateLinux
pub fn node_info_from(
    proc_dir: &Path,
    sys_dir: &Path,
    arch: &str,
) -> Result<NodeInfo, DriverError> {
    let meminfo = read(&proc_dir.join("meminfo"))?;
    let memory = meminfo_kib(&meminfo, "MemTotal").unwrap_or(0);
    let cpuinfo = std::fs::read_to_string(proc_dir.join("cpuinfo")).unwrap_or_default();
    let mhz = cpuinfo
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == "cpu MHz" || k.trim() == "clock")
                .then(|| v.trim().trim_end_matches("MHz").trim().to_string())
        })
        .and_then(|v| v.split('.').next()?.parse().ok())
        .unwrap_or(0);
    let cpu_dir = sys_dir.join("devices/system/cpu");
    let online = cpu_list(&std::fs::read_to_string(cpu_dir.join("online")).unwrap_or_default());
    let cpus = online.len().max(1) as u32;
    let node_dir = sys_dir.join("devices/system/node");
    let nodes = std::fs::read_dir(&node_dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| {
                    let n = e.file_name();
                    let n = n.to_string_lossy();
                    n.strip_prefix("node")
                        .is_some_and(|r| !r.is_empty() && r.bytes().all(|b| b.is_ascii_digit()))
                })
                .count() as u32
        })
        .unwrap_or(0)
        .max(1);
    let topo = |cpu: u32, f: &str| -> Option<u32> {
        std::fs::read_to_string(cpu_dir.join(format!("cpu{cpu}/topology/{f}")))
            .ok()?
            .trim()
            .parse()
            .ok()
    };
    let mut sockets = BTreeSet::new();
    let mut cores = BTreeSet::new();
    for &c in &online {
        let pkg = topo(c, "physical_package_id").unwrap_or(0);
        sockets.insert(pkg);
        cores.insert((pkg, topo(c, "core_id").unwrap_or(c)));
    }
    let nsockets = (sockets.len() as u32).max(1);
    let ncores = (cores.len() as u32).max(1);
    let mut info = NodeInfo {
        model: arch.to_string(),
        memory,
        cpus,
        mhz,
        nodes,
        sockets: (nsockets / nodes).max(1),
        cores: (ncores / nsockets).max(1),
        threads: (cpus / ncores).max(1),
    };
    if info.nodes * info.sockets * info.cores * info.threads != cpus {
        info.nodes = 1;
        info.sockets = 1;
        info.cores = cpus;
        info.threads = 1;
    }
    Ok(info)
}

/// `virNodeGetMemoryStats` from a meminfo text: total, free, buffers, cached (KiB); a NUMA
/// cell's meminfo has only total and free.
// libvirt: virHostMemGetStats
pub fn memory_stats_from(meminfo: &str, cell: bool) -> Vec<NodeStat> {
    let fields: &[(&str, &str)] = if cell {
        &[("total", "MemTotal"), ("free", "MemFree")]
    } else {
        &[
            ("total", "MemTotal"),
            ("free", "MemFree"),
            ("buffers", "Buffers"),
            ("cached", "Cached"),
        ]
    };
    fields
        .iter()
        .map(|(f, k)| NodeStat {
            field: f.to_string(),
            value: meminfo_kib(meminfo, k).unwrap_or(0),
        })
        .collect()
}

/// `virNodeGetCPUStats` from a `/proc/stat` text for `cpu` (`None`: all CPUs): kernel,
/// user, idle, iowait in nanoseconds.
// libvirt: virHostCPUGetStatsLinux
pub fn cpu_stats_from(
    stat: &str,
    cpu: Option<u32>,
    ns_per_tick: u64,
) -> Result<Vec<NodeStat>, DriverError> {
    let want = match cpu {
        None => "cpu".to_string(),
        Some(n) => format!("cpu{n}"),
    };
    let line = stat
        .lines()
        .find(|l| l.split_whitespace().next() == Some(want.as_str()))
        .ok_or_else(|| {
            DriverError::InvalidArg("Invalid cpuNum in virHostCPUGetStatsLinux".into())
        })?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let g = |i: usize| v.get(i).copied().unwrap_or(0);
    let (user, nice, system, idle, iowait, irq, softirq) =
        (g(0), g(1), g(2), g(3), g(4), g(5), g(6));
    let s = |f: &str, t: u64| NodeStat {
        field: f.into(),
        value: t * ns_per_tick,
    };
    Ok(vec![
        s("kernel", system + irq + softirq),
        s("user", user + nice),
        s("idle", idle),
        s("iowait", iowait),
    ])
}

impl Connect {
    pub(crate) fn host_dirs(&self) -> (&Path, &Path) {
        (&self.opts.host_root.proc_dir, &self.opts.host_root.sys_dir)
    }

    /// `virNodeGetInfo`.
    pub fn node_info(&self) -> Result<NodeInfo, DriverError> {
        let (p, s) = self.host_dirs();
        node_info_from(p, s, crate::capabilities::qemu::host_arch())
    }

    /// `virNodeGetMemoryStats` for the host, or NUMA cell `cell`.
    pub fn node_memory_stats(&self, cell: Option<i32>) -> Result<Vec<NodeStat>, DriverError> {
        let (p, s) = self.host_dirs();
        match cell {
            None | Some(-1) => Ok(memory_stats_from(&read(&p.join("meminfo"))?, false)),
            Some(c) => {
                let path = s.join(format!("devices/system/node/node{c}/meminfo"));
                if c < 0 || !path.exists() {
                    return Err(DriverError::InvalidArg(format!(
                        "cell number {c} is not valid"
                    )));
                }
                Ok(memory_stats_from(&read(&path)?, true))
            }
        }
    }

    /// `virNodeGetCPUStats` for every CPU (`None` or -1) or CPU `cpu`.
    pub fn node_cpu_stats(&self, cpu: Option<i32>) -> Result<Vec<NodeStat>, DriverError> {
        let (p, _) = self.host_dirs();
        let cpu = match cpu {
            None | Some(-1) => None,
            Some(c) if c < 0 => {
                return Err(DriverError::InvalidArg(
                    "Invalid cpuNum in virHostCPUGetStatsLinux".into(),
                ));
            }
            Some(c) => Some(c as u32),
        };
        // SAFETY: sysconf takes an integer and reads no memory of ours.
        let hz = unsafe { nix::libc::sysconf(nix::libc::_SC_CLK_TCK) };
        let tick = u64::try_from(hz)
            .ok()
            .filter(|h| *h > 0)
            .map_or(10_000_000, |h| 1_000_000_000 / h);
        cpu_stats_from(&read(&p.join("stat"))?, cpu, tick)
    }

    /// `virConnectGetHostname`: the host's name (`uname -n`), from the connection's `/proc`.
    pub fn hostname(&self) -> Result<String, DriverError> {
        let p = self.opts.host_root.proc_dir.join("sys/kernel/hostname");
        Ok(read(&p)?.trim().to_string())
    }

    /// `virConnectGetSysinfo`: the host's SMBIOS facts as libvirt's `<sysinfo>` XML, from
    /// `/sys/class/dmi/id` (readable without root, unlike dmidecode; fields only root may
    /// read, such as the serial number, are left out).
    pub fn sysinfo(&self) -> Result<String, DriverError> {
        let (_, s) = self.host_dirs();
        let dmi = s.join("class/dmi/id");
        // libvirt reads the host's SMBIOS once; without it the QEMU driver refuses so.
        // libvirt: qemuConnectGetSysinfo
        if !dmi.is_dir() {
            return Err(DriverError::Unsupported(
                "Host SMBIOS information is not available".into(),
            ));
        }
        Ok(sysinfo_xml(&|f: &str| {
            std::fs::read_to_string(dmi.join(f))
                .ok()
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        }))
    }
}

/// libvirt's `<sysinfo type='smbios'>` from DMI fields (`field` reads one, by sysfs name).
// libvirt: virSysinfoFormat
pub fn sysinfo_xml(field: &dyn Fn(&str) -> Option<String>) -> String {
    let groups: &[(&str, &[(&str, &str)])] = &[
        (
            "bios",
            &[
                ("vendor", "bios_vendor"),
                ("version", "bios_version"),
                ("date", "bios_date"),
                ("release", "bios_release"),
            ],
        ),
        (
            "system",
            &[
                ("manufacturer", "sys_vendor"),
                ("product", "product_name"),
                ("version", "product_version"),
                ("serial", "product_serial"),
                ("uuid", "product_uuid"),
                ("sku", "product_sku"),
                ("family", "product_family"),
            ],
        ),
        (
            "baseBoard",
            &[
                ("manufacturer", "board_vendor"),
                ("product", "board_name"),
                ("version", "board_version"),
                ("serial", "board_serial"),
                ("asset", "board_asset_tag"),
            ],
        ),
        (
            "chassis",
            &[
                ("manufacturer", "chassis_vendor"),
                ("version", "chassis_version"),
                ("serial", "chassis_serial"),
                ("asset", "chassis_asset_tag"),
            ],
        ),
    ];
    let mut out = String::from("<sysinfo type='smbios'>\n");
    for (elem, fields) in groups {
        let entries: Vec<(&str, String)> = fields
            .iter()
            .filter_map(|(name, f)| Some((*name, field(f)?)))
            .collect();
        if entries.is_empty() {
            continue;
        }
        out.push_str(&format!("  <{elem}>\n"));
        for (name, v) in entries {
            out.push_str(&format!(
                "    <entry name='{name}'>{}</entry>\n",
                crate::xmlfmt::escape_text(&v)
            ));
        }
        out.push_str(&format!("  </{elem}>\n"));
    }
    out.push_str("</sysinfo>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MEMINFO: &str = "MemTotal:        8000000 kB\nMemFree:         1000 kB\nMemAvailable:    5000 kB\nBuffers:           200 kB\nCached:           3000 kB\nSwapCached:          0 kB\n";

    #[test]
    fn memory_stats_pick_libvirts_fields() {
        let s = memory_stats_from(MEMINFO, false);
        let f: Vec<(&str, u64)> = s.iter().map(|s| (s.field.as_str(), s.value)).collect();
        assert_eq!(
            f,
            [
                ("total", 8000000),
                ("free", 1000),
                ("buffers", 200),
                ("cached", 3000)
            ]
        );
        let node = "Node 0 MemTotal:  100 kB\nNode 0 MemFree:  50 kB\n";
        let f: Vec<u64> = memory_stats_from(node, true)
            .iter()
            .map(|s| s.value)
            .collect();
        assert_eq!(f, [100, 50]);
    }

    #[test]
    fn cpu_stats_sum_as_libvirt() {
        let stat = "cpu  10 2 30 400 5 6 7 0 0 0\ncpu0 1 0 3 40 0 0 0 0 0 0\n";
        let s = cpu_stats_from(stat, None, 10).unwrap();
        let f: Vec<(&str, u64)> = s.iter().map(|s| (s.field.as_str(), s.value)).collect();
        assert_eq!(
            f,
            [
                ("kernel", 430),
                ("user", 120),
                ("idle", 4000),
                ("iowait", 50)
            ]
        );
        assert_eq!(cpu_stats_from(stat, Some(0), 10).unwrap()[1].value, 10);
        let e = cpu_stats_from(stat, Some(7), 10).unwrap_err().to_string();
        assert_eq!(
            e,
            "invalid argument: Invalid cpuNum in virHostCPUGetStatsLinux"
        );
    }

    #[test]
    fn sysinfo_leaves_out_unreadable_fields() {
        let xml = sysinfo_xml(&|f| match f {
            "bios_vendor" => Some("SeaBIOS".into()),
            "sys_vendor" => Some("QEMU & co".into()),
            _ => None,
        });
        assert_eq!(
            xml,
            "<sysinfo type='smbios'>\n  <bios>\n    <entry name='vendor'>SeaBIOS</entry>\n  </bios>\n  <system>\n    <entry name='manufacturer'>QEMU &amp; co</entry>\n  </system>\n</sysinfo>\n"
        );
    }

    #[test]
    fn node_info_of_a_fake_host() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("proc");
        let s = d.path().join("sys");
        std::fs::create_dir_all(&p).unwrap();
        std::fs::write(p.join("meminfo"), MEMINFO).unwrap();
        std::fs::write(p.join("cpuinfo"), "processor : 0\ncpu MHz\t\t: 2399.998\n").unwrap();
        let cpu = s.join("devices/system/cpu");
        for c in 0..4 {
            let t = cpu.join(format!("cpu{c}/topology"));
            std::fs::create_dir_all(&t).unwrap();
            std::fs::write(t.join("physical_package_id"), "0\n").unwrap();
            std::fs::write(t.join("core_id"), format!("{}\n", c / 2)).unwrap();
        }
        std::fs::write(cpu.join("online"), "0-3\n").unwrap();
        std::fs::create_dir_all(s.join("devices/system/node/node0")).unwrap();
        let i = node_info_from(&p, &s, "x86_64").unwrap();
        assert_eq!(
            i,
            NodeInfo {
                model: "x86_64".into(),
                memory: 8000000,
                cpus: 4,
                mhz: 2399,
                nodes: 1,
                sockets: 1,
                cores: 2,
                threads: 2
            }
        );
    }
}
