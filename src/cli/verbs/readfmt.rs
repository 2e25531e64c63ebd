//! virsh's text for the read verbs, as pure functions of the data (libvirt:
//! tools/virsh-domain-monitor.c, virsh-domain.c, virsh-host.c). Each returns exactly what
//! virsh prints for the command, without the empty line the dispatcher adds after every
//! command.

use crate::driver::domstats::StatsRecord;
use crate::driver::ifaddr::Interface;
use crate::driver::node::{NodeInfo, NodeStat};
use crate::driver::stats::{BlockInfo, BlockStats, InterfaceStats, MemoryStat, VcpuInfo};

/// `vshPrettyCapacity`: a byte count in the largest binary unit below it.
pub fn pretty_capacity(val: u64) -> (f64, &'static str) {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if val < 1024 {
        return (val as f64, "B");
    }
    let mut v = val as f64 / 1024.0;
    for u in UNITS.iter().take(UNITS.len() - 1) {
        if v < 1024.0 {
            return (v, u);
        }
        v /= 1024.0;
    }
    (v, "EiB")
}

/// The three cells of one `domblkinfo` row: `-` for a disk without sizes.
// libvirt: cmdDomblkinfoGet
pub fn blkinfo_cells(i: &BlockInfo, human: bool) -> [String; 3] {
    if i.capacity == 0 && i.allocation == 0 && i.physical == 0 {
        return ["-".into(), "-".into(), "-".into()];
    }
    let f = |v: u64| {
        if human {
            let (n, u) = pretty_capacity(v);
            format!("{n:.3} {u}")
        } else {
            v.to_string()
        }
    };
    [f(i.capacity), f(i.allocation), f(i.physical)]
}

/// `domblkinfo DOMAIN DEVICE`.
pub fn domblkinfo(i: &BlockInfo, human: bool) -> String {
    let [c, a, p] = blkinfo_cells(i, human);
    format!(
        "{:<15} {c}\n{:<15} {a}\n{:<15} {p}\n",
        "Capacity:", "Allocation:", "Physical:"
    )
}

/// `domblkstat`'s fields: (libvirt's typed-parameter name, virsh's legacy name, human label).
const BLKSTAT_FIELDS: [(&str, Option<&str>, &str); 8] = [
    (
        "rd_operations",
        Some("rd_req"),
        "number of read operations:",
    ),
    ("rd_bytes", Some("rd_bytes"), "number of bytes read:"),
    (
        "wr_operations",
        Some("wr_req"),
        "number of write operations:",
    ),
    ("wr_bytes", Some("wr_bytes"), "number of bytes written:"),
    ("flush_operations", None, "number of flush operations:"),
    ("rd_total_times", None, "total duration of reads (ns):"),
    ("wr_total_times", None, "total duration of writes (ns):"),
    ("flush_total_times", None, "total duration of flushes (ns):"),
];

/// `domblkstat DOMAIN [DEVICE] [--human]` (the sum over all disks when `device` is empty).
// libvirt: cmdDomblkstat
pub fn domblkstat(device: &str, s: &BlockStats, human: bool) -> String {
    let values = [
        s.rd_req,
        s.rd_bytes,
        s.wr_req,
        s.wr_bytes,
        s.flush_req,
        s.rd_total_times,
        s.wr_total_times,
        s.flush_total_times,
    ];
    let mut out = String::new();
    let dev = if human {
        out.push_str(&format!("Device: {device}\n"));
        ""
    } else {
        device
    };
    for ((field, legacy, label), v) in BLKSTAT_FIELDS.iter().zip(values) {
        if human {
            out.push_str(&format!("{dev} {label:<31} {v}\n"));
        } else {
            out.push_str(&format!("{dev} {} {v}\n", legacy.unwrap_or(field)));
        }
    }
    out
}

/// `domifstat DOMAIN INTERFACE`.
pub fn domifstat(device: &str, s: &InterfaceStats) -> String {
    [
        ("rx_bytes", s.rx_bytes),
        ("rx_packets", s.rx_packets),
        ("rx_errs", s.rx_errs),
        ("rx_drop", s.rx_drop),
        ("tx_bytes", s.tx_bytes),
        ("tx_packets", s.tx_packets),
        ("tx_errs", s.tx_errs),
        ("tx_drop", s.tx_drop),
    ]
    .iter()
    .filter(|(_, v)| *v >= 0)
    .map(|(k, v)| format!("{device} {k} {v}\n"))
    .collect()
}

/// `dommemstat DOMAIN`.
pub fn dommemstat(stats: &[MemoryStat]) -> String {
    stats
        .iter()
        .map(|s| format!("{} {}\n", s.tag.dommemstat_name(), s.val))
        .collect()
}

/// `domstats`: each record, records apart by an empty line.
// libvirt: virshDomainStatsPrintRecord
pub fn domstats(records: &[StatsRecord]) -> String {
    let mut out = Vec::new();
    for r in records {
        let mut s = format!("Domain: '{}'\n", r.name);
        for (k, v) in &r.params {
            s.push_str(&format!("  {k}={}\n", v.render()));
        }
        out.push(s);
    }
    out.join("\n")
}

/// `domifaddr DOMAIN [INTERFACE] [--full]`.
// libvirt: cmdDomIfAddr
pub fn domifaddr(ifaces: &[Interface], only: Option<&str>, full: bool) -> String {
    let mut out = format!(
        " {:<10} {:<20} {:<8}     {}\n{}{}\n",
        "Name",
        "MAC address",
        "Protocol",
        "Address",
        "-".repeat(49),
        "-".repeat(30)
    );
    for i in ifaces.iter().filter(|i| only.is_none_or(|o| o == i.name)) {
        if i.addrs.is_empty() {
            out.push_str(&format!(
                " {:<10} {:<17}    {:<12} {}\n",
                i.name,
                i.hwaddr.as_deref().unwrap_or("N/A"),
                "N/A",
                "N/A"
            ));
            continue;
        }
        for (j, a) in i.addrs.iter().enumerate() {
            let addr = format!("{:<12} {}/{}", a.family, a.addr, a.prefix);
            if full || j == 0 {
                out.push_str(&format!(
                    " {:<10} {:<17}    {addr}\n",
                    i.name,
                    i.hwaddr.as_deref().unwrap_or("")
                ));
            } else {
                out.push_str(&format!(" {:<10} {:<17}    {addr}\n", "-", "-"));
            }
        }
    }
    out
}

/// `vcpucount DOMAIN` without flags: the counts that exist, as rows.
// libvirt: cmdVcpucount
pub fn vcpucount_table(rows: &[(&str, &str, u32)]) -> String {
    rows.iter()
        .filter(|(_, _, n)| *n > 0)
        .map(|(which, state, n)| format!("{which:<12} {state:<12} {n:>3}\n"))
        .collect()
}

/// The affinity line of `vcpuinfo`: one `y`/`-` per host CPU, or with `pretty` a CPU list.
fn affinity_line(map: &[bool], pretty: bool) -> String {
    let v = if pretty {
        cpu_ranges(map)
    } else {
        map.iter().map(|b| if *b { 'y' } else { '-' }).collect()
    };
    format!("{:<15} {v}\n", "CPU Affinity:")
}

/// `0-3,6`: the set CPUs as libvirt's bitmap format writes them.
pub fn cpu_ranges(map: &[bool]) -> String {
    let mut parts = Vec::new();
    let mut i = 0;
    while i < map.len() {
        if !map[i] {
            i += 1;
            continue;
        }
        let start = i;
        while i + 1 < map.len() && map[i + 1] {
            i += 1;
        }
        parts.push(if start == i {
            start.to_string()
        } else {
            format!("{start}-{i}")
        });
        i += 1;
    }
    parts.join(",")
}

/// `vcpuinfo DOMAIN [--pretty]`; vCPUs without a state are an inactive domain's.
// libvirt: cmdVcpuinfo, virshVcpuinfoInactive
pub fn vcpuinfo(vcpus: &[VcpuInfo], pretty: bool) -> String {
    let mut blocks = Vec::new();
    for v in vcpus {
        let mut s = format!("{:<15} {}\n", "VCPU:", v.number);
        match v.state {
            Some(st) => {
                s.push_str(&format!("{:<15} {}\n", "CPU:", v.cpu.unwrap_or(0)));
                s.push_str(&format!("{:<15} {}\n", "State:", st.as_str()));
                if v.cpu_time != 0 {
                    s.push_str(&format!(
                        "{:<15} {:.1}s\n",
                        "CPU time:",
                        v.cpu_time as f64 / 1e9
                    ));
                }
            }
            None => {
                s.push_str(&format!("{:<15} N/A\n", "CPU:"));
                s.push_str(&format!("{:<15} N/A\n", "State:"));
                s.push_str(&format!("{:<15} N/A\n", "CPU time"));
            }
        }
        s.push_str(&affinity_line(&v.affinity, pretty));
        blocks.push(s);
    }
    blocks.join("\n")
}

/// `nodeinfo`.
pub fn nodeinfo(i: &NodeInfo) -> String {
    let mut s = String::new();
    let mut line = |k: &str, v: String| s.push_str(&format!("{k:<20} {v}\n"));
    line("CPU model:", i.model.clone());
    line("CPU(s):", i.cpus.to_string());
    line("CPU frequency:", format!("{} MHz", i.mhz));
    line("CPU socket(s):", i.sockets.to_string());
    line("Core(s) per socket:", i.cores.to_string());
    line("Thread(s) per core:", i.threads.to_string());
    line("NUMA cell(s):", i.nodes.to_string());
    line("Memory size:", format!("{} KiB", i.memory));
    s
}

/// `nodememstats`.
pub fn nodememstats(stats: &[NodeStat]) -> String {
    stats
        .iter()
        .map(|s| format!("{:<7}: {:>20} KiB\n", s.field, s.value))
        .collect()
}

/// virsh's order and labels of `nodecpustats` and the driver's field names.
const CPU_FIELDS: [(&str, &str); 4] = [
    ("user", "user:"),
    ("kernel", "system:"),
    ("idle", "idle:"),
    ("iowait", "iowait:"),
];

/// `nodecpustats` (absolute nanoseconds).
// libvirt: cmdNodeCpuStats
pub fn nodecpustats(stats: &[NodeStat]) -> String {
    CPU_FIELDS
        .iter()
        .filter_map(|(f, label)| {
            let v = stats.iter().find(|s| s.field == *f)?.value;
            Some(format!("{label:<15} {v:>20}\n"))
        })
        .collect()
}

/// `nodecpustats --percent`: shares of the time between two samples.
pub fn nodecpustats_percent(first: &[NodeStat], second: &[NodeStat]) -> String {
    let delta = |f: &str| -> Option<f64> {
        let a = first.iter().find(|s| s.field == f)?.value;
        let b = second.iter().find(|s| s.field == f)?.value;
        Some(b.saturating_sub(a) as f64)
    };
    let total: f64 = CPU_FIELDS.iter().filter_map(|(f, _)| delta(f)).sum();
    let pct = |v: f64| if total > 0.0 { v / total * 100.0 } else { 0.0 };
    let usage = pct(delta("user").unwrap_or(0.0) + delta("kernel").unwrap_or(0.0));
    let mut s = format!("{:<15} {usage:>5.1}%\n", "usage:");
    for (f, label) in CPU_FIELDS {
        if let Some(v) = delta(f) {
            s.push_str(&format!("{label:<15} {:>5.1}%\n", pct(v)));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::domstats::TypedValue;
    use crate::driver::ifaddr::IpAddress;
    use crate::driver::stats::{MemoryStatTag, VcpuState};

    #[test]
    fn blkinfo() {
        let i = BlockInfo {
            capacity: 1_073_741_824,
            allocation: 200_704,
            physical: 1_073_741_824,
        };
        assert_eq!(
            domblkinfo(&i, false),
            "Capacity:       1073741824\nAllocation:     200704\nPhysical:       1073741824\n"
        );
        assert_eq!(
            domblkinfo(&i, true),
            "Capacity:       1.000 GiB\nAllocation:     196.000 KiB\nPhysical:       1.000 GiB\n"
        );
        assert_eq!(blkinfo_cells(&BlockInfo::default(), false), ["-", "-", "-"]);
        assert_eq!(pretty_capacity(512), (512.0, "B"));
    }

    #[test]
    fn blkstat_legacy_and_human() {
        let s = BlockStats {
            rd_req: 1,
            rd_bytes: 512,
            wr_req: 2,
            wr_bytes: 1024,
            flush_req: 3,
            rd_total_times: 4,
            wr_total_times: 5,
            flush_total_times: 6,
            wr_highest_offset: None,
        };
        assert_eq!(
            domblkstat("vda", &s, false),
            "vda rd_req 1\nvda rd_bytes 512\nvda wr_req 2\nvda wr_bytes 1024\n\
             vda flush_operations 3\nvda rd_total_times 4\nvda wr_total_times 5\n\
             vda flush_total_times 6\n"
        );
        let h = domblkstat("vda", &s, true);
        assert!(
            h.starts_with("Device: vda\n number of read operations:      1\n"),
            "{h}"
        );
        assert!(h.ends_with(" total duration of flushes (ns): 6\n"), "{h}");
        assert!(domblkstat("", &s, false).starts_with(" rd_req 1\n"));
    }

    #[test]
    fn ifstat_and_memstat() {
        let s = InterfaceStats {
            rx_bytes: 10,
            tx_drop: -1,
            ..Default::default()
        };
        let t = domifstat("vnet0", &s);
        assert!(t.starts_with("vnet0 rx_bytes 10\nvnet0 rx_packets 0\n"));
        assert!(!t.contains("tx_drop"));
        let m = [
            MemoryStat {
                tag: MemoryStatTag::Actual,
                val: 262144,
            },
            MemoryStat {
                tag: MemoryStatTag::LastUpdate,
                val: 0,
            },
            MemoryStat {
                tag: MemoryStatTag::Rss,
                val: 123,
            },
        ];
        assert_eq!(dommemstat(&m), "actual 262144\nlast_update 0\nrss 123\n");
    }

    #[test]
    fn stats_records() {
        let r = |n: &str| StatsRecord {
            name: n.into(),
            params: vec![
                ("state.state".into(), TypedValue::Int(1)),
                ("block.0.name".into(), TypedValue::Str("vda".into())),
            ],
        };
        assert_eq!(
            domstats(&[r("a"), r("b")]),
            "Domain: 'a'\n  state.state=1\n  block.0.name=vda\n\nDomain: 'b'\n  state.state=1\n  block.0.name=vda\n"
        );
        assert_eq!(domstats(&[]), "");
    }

    #[test]
    fn ifaddr_table() {
        let i = Interface {
            name: "vnet0".into(),
            hwaddr: Some("52:54:00:aa:bb:cc".into()),
            addrs: vec![
                IpAddress {
                    family: "ipv4".into(),
                    addr: "192.168.122.5".into(),
                    prefix: 24,
                },
                IpAddress {
                    family: "ipv6".into(),
                    addr: "fe80::1".into(),
                    prefix: 64,
                },
            ],
        };
        let bare = Interface {
            name: "lo".into(),
            hwaddr: None,
            addrs: vec![],
        };
        let head = " Name       MAC address          Protocol     Address\n\
            -------------------------------------------------------------------------------\n";
        assert_eq!(
            domifaddr(&[i.clone(), bare], None, false),
            format!(
                "{head} vnet0      52:54:00:aa:bb:cc    ipv4         192.168.122.5/24\n \
                 -          -                    ipv6         fe80::1/64\n \
                 lo         N/A                  N/A          N/A\n"
            )
        );
        assert!(
            domifaddr(std::slice::from_ref(&i), None, true)
                .contains(" vnet0      52:54:00:aa:bb:cc    ipv6")
        );
        assert_eq!(domifaddr(&[i], Some("eth9"), false), head);
    }

    #[test]
    fn vcpus() {
        assert_eq!(
            vcpucount_table(&[
                ("maximum", "config", 2),
                ("maximum", "live", 0),
                ("current", "config", 1)
            ]),
            "maximum      config         2\ncurrent      config         1\n"
        );
        let live = VcpuInfo {
            number: 0,
            state: Some(VcpuState::Running),
            cpu_time: 7_040_000_000,
            cpu: Some(1),
            affinity: vec![true, true, false, true],
            delay: None,
        };
        let off = VcpuInfo {
            number: 1,
            state: None,
            cpu_time: 0,
            cpu: None,
            affinity: vec![true; 4],
            delay: None,
        };
        assert_eq!(
            vcpuinfo(&[live.clone(), off], false),
            "VCPU:           0\nCPU:            1\nState:          running\nCPU time:       7.0s\n\
             CPU Affinity:   yy-y\n\nVCPU:           1\nCPU:            N/A\nState:          N/A\n\
             CPU time        N/A\nCPU Affinity:   yyyy\n"
        );
        assert!(vcpuinfo(&[live], true).ends_with("CPU Affinity:   0-1,3\n"));
    }

    #[test]
    fn node() {
        let i = NodeInfo {
            model: "x86_64".into(),
            memory: 16_000_000,
            cpus: 8,
            mhz: 2400,
            nodes: 1,
            sockets: 1,
            cores: 4,
            threads: 2,
        };
        assert_eq!(
            nodeinfo(&i),
            "CPU model:           x86_64\nCPU(s):              8\nCPU frequency:       2400 MHz\n\
             CPU socket(s):       1\nCore(s) per socket:  4\nThread(s) per core:  2\n\
             NUMA cell(s):        1\nMemory size:         16000000 KiB\n"
        );
        let st = |f: &str, v| NodeStat {
            field: f.into(),
            value: v,
        };
        assert_eq!(
            nodememstats(&[st("total", 100), st("free", 5)]),
            "total  :                  100 KiB\nfree   :                    5 KiB\n"
        );
        let a = [
            st("kernel", 10),
            st("user", 20),
            st("idle", 60),
            st("iowait", 10),
        ];
        assert_eq!(
            nodecpustats(&a),
            "user:                             20\nsystem:                           10\n\
             idle:                             60\niowait:                           10\n"
        );
        let b = [
            st("kernel", 20),
            st("user", 40),
            st("idle", 120),
            st("iowait", 20),
        ];
        assert_eq!(
            nodecpustats_percent(&a, &b),
            "usage:           30.0%\nuser:            20.0%\nsystem:          10.0%\n\
             idle:            60.0%\niowait:          10.0%\n"
        );
    }
}
