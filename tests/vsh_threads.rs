//! `cpu-stats`, `iothreadpin`, `iothreadset`, `guest-agent-timeout` and `memtune` through
//! `vsh` on one
//! TCG guest with no OS (QEMU's threads are what these verbs read and change), checked
//! against QMP, the threads' affinity and the live and persistent XML; the inactive
//! domain's cases and every refusal first.

#[path = "common/guests.rs"]
mod guests;
#[path = "common/vshrun.rs"]
mod vshrun;

use guests::{QEMU, have_qemu};
use serde_json::Value;
use vshrun::{Reaper, Vsh};

const NAME: &str = "thr";

fn xml() -> String {
    format!(
        "<domain type='qemu'><name>{NAME}</name><memory unit='MiB'>64</memory><vcpu>2</vcpu>\
         <iothreads>2</iothreads>\
         <os><type arch='x86_64' machine='pc'>hvm</type></os>\
         <devices><emulator>{QEMU}</emulator><memballoon model='none'/></devices></domain>"
    )
}

fn qmp(v: &Vsh, cmd: &str, args: &str) -> Value {
    let out = v.ok(&[
        "qemu-monitor-command",
        NAME,
        &format!("{{\"execute\":\"{cmd}\",\"arguments\":{args}}}"),
    ]);
    serde_json::from_str::<Value>(&out).unwrap()["return"].clone()
}

fn qom(v: &Vsh, id: u32, prop: &str) -> Value {
    qmp(
        v,
        "qom-get",
        &format!("{{\"path\":\"/objects/iothread{id}\",\"property\":\"{prop}\"}}"),
    )
}

const NOT_RUNNING: &str = "Requested operation is not valid: domain is not running";

/// The seconds of a `\tNAME   S.NNNNNNNNN seconds` line.
fn seconds(line: &str) -> f64 {
    let t: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(t.len(), 3, "{line:?}");
    assert_eq!(t[2], "seconds");
    let (_, ns) = t[1].split_once('.').unwrap();
    assert_eq!(ns.len(), 9, "{line:?}");
    t[1].parse::<f64>().unwrap()
}

#[test]
fn thread_verbs_on_a_guest() {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::Builder::new()
        .prefix("vth")
        .tempdir_in("/tmp")
        .unwrap();
    let root = dir.path().join("r");
    let file = dir.path().join("thr.xml");
    std::fs::write(&file, xml()).unwrap();
    let v = Vsh::new(root.clone());
    let _reap = Reaper(root.clone(), vec![NAME]);
    v.ok(&["define", file.to_str().unwrap()]);
    let ncpus = domdriver_host_cpus();

    // ---- the inactive domain ----
    assert_eq!(
        v.fails(&["cpu-stats", NAME]),
        format!(
            "error: Failed to retrieve CPU statistics for domain '{NAME}'\nerror: {NOT_RUNNING}\n"
        )
    );
    assert_eq!(
        v.fails(&["cpu-stats", NAME, "--start", "-1"]),
        "error: Invalid value for start CPU\n"
    );
    assert_eq!(
        v.fails(&["cpu-stats", NAME, "0", "-2"]),
        "error: Invalid value for number of CPUs to show\n"
    );
    assert_eq!(
        v.fails(&["iothreadpin", NAME, "1", "0", "--live"]),
        format!("error: {NOT_RUNNING}\n")
    );
    assert_eq!(
        v.fails(&["iothreadpin", NAME, "7", "0"]),
        "error: invalid argument: iothreadid 7 not found\n"
    );
    assert_eq!(
        v.fails(&["iothreadpin", NAME, "1", "x"]),
        "error: Invalid cpulist 'x'\n"
    );
    v.ok(&["iothreadpin", NAME, "2", "0"]);
    let info = v.ok(&["iothreadinfo", NAME, "--config"]);
    assert!(info.contains(" 2             0\n"), "{info}");
    assert!(
        v.ok(&["dumpxml", NAME, "--inactive"])
            .contains("<iothreadpin iothread='2' cpuset='0'/>")
    );
    assert_eq!(
        v.fails(&["iothreadset", NAME, "1"]),
        "error: Not enough arguments passed, nothing to set\n"
    );
    assert_eq!(
        v.fails(&["iothreadset", NAME, "0", "--poll-max-ns", "1"]),
        "error: Invalid IOThread id value: '0'\n"
    );
    assert_eq!(
        v.fails(&["iothreadset", NAME, "1", "--thread-pool-min", "2"]),
        "error: Requested operation is not valid: thread_pool_min (2) can't be greater than thread_pool_max (-1)\n"
    );
    assert_eq!(
        v.fails(&["iothreadset", NAME, "1", "--thread-pool-max", "0"]),
        "error: unsupported configuration: thread_pool_max (0) must be a positive number or -1\n"
    );
    assert_eq!(
        v.fails(&["iothreadset", NAME, "9", "--thread-pool-max", "3"]),
        "error: invalid argument: cannot find IOThread '9' in iothreadids\n"
    );
    v.ok(&[
        "iothreadset",
        NAME,
        "1",
        "--thread-pool-max",
        "4",
        "--thread-pool-min",
        "1",
        "--config",
    ]);
    let inactive = v.ok(&["dumpxml", NAME, "--inactive"]);
    assert!(
        inactive.contains("<iothread id='1' thread_pool_min='1' thread_pool_max='4'/>"),
        "{inactive}"
    );
    v.ok(&["iothreadset", NAME, "1", "--thread-pool-min", "-1"]);
    assert!(
        v.ok(&["dumpxml", NAME, "--inactive"])
            .contains("<iothread id='1' thread_pool_max='4'/>")
    );
    assert_eq!(
        v.fails(&["guest-agent-timeout", NAME, "--timeout", "-3"]),
        "error: invalid argument: guest agent timeout '-3' is less than the minimum '-2'\n"
    );
    let stored = root.join("run/qemu").join(format!("{NAME}.agent-timeout"));
    v.ok(&["guest-agent-timeout", NAME, "--timeout", "10"]);
    assert_eq!(std::fs::read_to_string(&stored).unwrap(), "10\n");
    v.ok(&["guest-agent-timeout", NAME]);
    assert_eq!(std::fs::read_to_string(&stored).unwrap(), "-2\n");
    v.ok(&["guest-agent-timeout", NAME, "--timeout", "-1"]);
    assert!(!stored.exists());

    assert_eq!(
        v.ok(&["memtune", NAME]),
        "hard_limit     : unlimited\nsoft_limit     : unlimited\nswap_hard_limit: unlimited\n\n"
    );
    v.ok(&[
        "memtune",
        NAME,
        "--hard-limit",
        "1G",
        "--soft-limit",
        "1000",
    ]);
    assert_eq!(
        v.ok(&["-q", "memtune", NAME, "--config"]),
        "hard_limit     : 1048576\nsoft_limit     : 1000\nswap_hard_limit: unlimited\n"
    );
    assert!(
        v.ok(&["dumpxml", NAME, "--inactive"])
            .contains("<memtune>\n    <hard_limit unit='KiB'>1048576</hard_limit>\n    <soft_limit unit='KiB'>1000</soft_limit>\n  </memtune>")
    );
    assert_eq!(
        v.fails(&["memtune", NAME, "--swap-hard-limit", "1M"]),
        "error: Unable to change memory parameters\nerror: invalid argument: memory hard_limit tunable value must be lower than or equal to swap_hard_limit\n"
    );
    assert_eq!(
        v.fails(&["memtune", NAME, "--min-guarantee", "1M"]),
        "error: Unable to change memory parameters\nerror: argument unsupported: parameter 'min_guarantee' not supported\n"
    );
    assert_eq!(
        v.fails(&["memtune", NAME, "--hard-limit", "lots"]),
        "error: Unable to parse integer parameter hard-limit\n"
    );
    assert_eq!(
        v.fails(&["memtune", NAME, "--live"]),
        format!("error: Unable to get number of memory parameters\nerror: {NOT_RUNNING}\n")
    );
    v.ok(&["memtune", NAME, "--hard-limit", "-1", "--soft-limit", "-1"]);
    assert!(!v.ok(&["dumpxml", NAME, "--inactive"]).contains("<memtune>"));

    // ---- the running guest ----
    v.ok(&["start", NAME]);
    // No memory cgroup of ours: the running guest's limits are refused as libvirt does on
    // a host without that controller; the config's stay reachable.
    assert_eq!(
        v.fails(&["memtune", NAME]),
        "error: Unable to get number of memory parameters\nerror: Requested operation is not valid: cgroup memory controller is not mounted\n"
    );
    assert_eq!(
        v.fails(&["memtune", NAME, "--hard-limit", "2G", "--live", "--config"]),
        "error: Unable to change memory parameters\nerror: Requested operation is not valid: cgroup memory controller is not mounted\n"
    );
    v.ok(&["memtune", NAME, "--hard-limit", "2G", "--config"]);
    assert!(
        v.ok(&["memtune", NAME, "--config"])
            .starts_with("hard_limit     : 2097152\n")
    );
    let out = v.ok(&["cpu-stats", NAME]);
    let lines: Vec<&str> = out.lines().collect();
    // Per CPU a header and two figures, then the total's header and three figures.
    assert_eq!(lines.len(), ncpus * 3 + 4 + 1, "{out}");
    assert_eq!(lines[0], "CPU0:");
    assert!(lines[1].starts_with("\tcpu_time     "), "{out}");
    assert!(lines[2].starts_with("\tvcpu_time    "), "{out}");
    let total_at = ncpus * 3;
    assert_eq!(lines[total_at], "Total:");
    let cpu = seconds(lines[total_at + 1]);
    let user = seconds(lines[total_at + 2]);
    let system = seconds(lines[total_at + 3]);
    assert!(cpu > 0.0 && (cpu - user - system).abs() < 1e-6, "{out}");
    let per_cpu: f64 = (0..ncpus).map(|i| seconds(lines[i * 3 + 1])).sum();
    assert!(per_cpu <= cpu + 0.05, "{out}");
    let total = v.ok(&["cpu-stats", NAME, "--total"]);
    assert!(total.starts_with("Total:\n\tcpu_time "), "{total}");
    assert_eq!(total.lines().count(), 5, "{total}");
    let last = ncpus - 1;
    let one = v.ok(&["cpu-stats", NAME, &last.to_string(), "1"]);
    assert!(one.starts_with(&format!("CPU{last}:\n")), "{one}");
    // A start or a count alone asks for per-CPU figures only, as in virsh.
    assert_eq!(one.lines().count(), 3 + 1, "{one}");
    let over = v.ok(&["-q", "cpu-stats", NAME, "--start", "0", "--count", "999"]);
    assert!(
        over.starts_with(&format!("Only {ncpus} CPUs available to show\nCPU0:\n")),
        "{over}"
    );
    assert_eq!(
        v.fails(&["cpu-stats", NAME, "--start", &ncpus.to_string()]),
        format!(
            "error: Start CPU {ncpus} is out of range (min: 0, max: {})\n",
            ncpus - 1
        )
    );
    let j: Value = serde_json::from_str(&v.ok(&["cpu-stats", NAME, "--json"])).unwrap();
    assert!(j["total"]["cpu_time"].as_u64().unwrap() > 0, "{j}");
    assert_eq!(j["percpu"].as_array().unwrap().len(), ncpus, "{j}");

    // The config's pin of IOThread 2 reached QEMU's thread at start? (not libvirt's job
    // here: only what iothreadpin --live sets is checked).
    v.ok(&["iothreadpin", NAME, "1", "0"]);
    let info = v.ok(&["iothreadinfo", NAME]);
    assert!(info.contains(" 1             0\n"), "{info}");
    let live_xml = v.ok(&["dumpxml", NAME]);
    assert!(
        live_xml.contains("<iothreadpin iothread='1' cpuset='0'/>"),
        "{live_xml}"
    );
    assert_eq!(
        v.fails(&["iothreadpin", NAME, "5", "0", "--live"]),
        "error: invalid argument: iothread 5 not found\n"
    );
    assert_eq!(
        v.fails(&["iothreadpin", NAME, "1", "0", "--current", "--live"]),
        "error: Options --current and --live are mutually exclusive\n"
    );

    v.ok(&[
        "iothreadset",
        NAME,
        "2",
        "--poll-max-ns",
        "12345",
        "--poll-grow",
        "3",
        "--poll-shrink",
        "2",
    ]);
    assert_eq!(qom(&v, 2, "poll-max-ns"), 12345);
    assert_eq!(qom(&v, 2, "poll-grow"), 3);
    assert_eq!(qom(&v, 2, "poll-shrink"), 2);
    v.ok(&[
        "iothreadset",
        NAME,
        "2",
        "--thread-pool-min",
        "2",
        "--thread-pool-max",
        "8",
    ]);
    assert_eq!(qom(&v, 2, "thread-pool-min"), 2);
    assert_eq!(qom(&v, 2, "thread-pool-max"), 8);
    assert!(
        v.ok(&["dumpxml", NAME])
            .contains("<iothread id='2' thread_pool_min='2' thread_pool_max='8'/>")
    );
    assert_eq!(
        v.fails(&["iothreadset", NAME, "2", "--thread-pool-max", "-1"]),
        "error: Requested operation is not valid: thread_pool_max (-1) must be equal to or greater than 0 for live change\n"
    );
    assert_eq!(
        v.fails(&["iothreadset", NAME, "2", "--thread-pool-max", "1"]),
        "error: Requested operation is not valid: thread_pool_min (2) can't be greater than thread_pool_max (1)\n"
    );

    v.ok(&["guest-agent-timeout", NAME, "--timeout", "0"]);
    assert_eq!(std::fs::read_to_string(&stored).unwrap(), "0\n");
    // A guest without an agent channel answers as before, whatever the timeout.
    assert_eq!(
        v.fails(&["domtime", NAME]),
        "error: argument unsupported: QEMU guest agent is not configured\n"
    );

    v.ok(&["destroy", NAME]);
    v.ok(&["undefine", NAME]);
}

/// Host CPUs present, as the driver counts them.
fn domdriver_host_cpus() -> usize {
    let s = std::fs::read_to_string("/sys/devices/system/cpu/present").unwrap();
    s.trim()
        .split(',')
        .filter_map(|r| r.rsplit('-').next()?.parse::<usize>().ok())
        .max()
        .unwrap()
        + 1
}
