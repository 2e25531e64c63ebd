//! Link states, disk throttles and thresholds, disk errors, the control interface and vCPU
//! and emulator pinning, through `vsh` on one TCG guest (no OS needed: QEMU's side is what
//! these verbs change), checked against QMP, /proc and the live and persistent XML; the
//! inactive domain's cases and every refusal first.

#[path = "common/guests.rs"]
mod guests;
#[path = "common/vshrun.rs"]
mod vshrun;

use guests::{QEMU, have_qemu};
use serde_json::Value;
use vshrun::{Reaper, Vsh};

const MAC: &str = "52:54:00:aa:bb:01";

fn xml(disk: &str) -> String {
    format!(
        "<domain type='qemu'><name>tune</name><memory unit='MiB'>64</memory><vcpu>2</vcpu><iothreads>2</iothreads>\
         <os><type arch='x86_64' machine='pc'>hvm</type></os>\
         <devices><emulator>{QEMU}</emulator>\
         <disk type='file' device='disk'><driver name='qemu' type='qcow2'/>\
         <source file='{disk}'/><target dev='vda' bus='virtio'/></disk>\
         <interface type='user'><mac address='{MAC}'/><model type='virtio'/></interface>\
         <memballoon model='none'/></devices></domain>"
    )
}

fn qmp(v: &Vsh, cmd: &str) -> Value {
    let out = v.ok(&[
        "qemu-monitor-command",
        "tune",
        &format!("{{\"execute\":\"{cmd}\"}}"),
    ]);
    serde_json::from_str::<Value>(&out).unwrap()["return"].clone()
}

const NOT_RUNNING: &str = "error: Requested operation is not valid: domain is not running\n";

#[test]
fn tuning_verbs_on_a_guest() {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::Builder::new()
        .prefix("vt")
        .tempdir_in("/tmp")
        .unwrap();
    let root = dir.path().join("r");
    let disk = dir.path().join("d.qcow2");
    assert!(
        std::process::Command::new("qemu-img")
            .args(["create", "-q", "-f", "qcow2"])
            .arg(&disk)
            .arg("16M")
            .status()
            .unwrap()
            .success()
    );
    let file = dir.path().join("tune.xml");
    std::fs::write(&file, xml(&disk.display().to_string())).unwrap();
    let v = Vsh::new(root.clone());
    let _reap = Reaper(root.clone(), vec!["tune"]);
    v.ok(&["define", file.to_str().unwrap()]);

    // ---- the inactive domain ----
    for verb in ["domblkerror", "domcontrol"] {
        assert_eq!(v.fails(&[verb, "tune"]), NOT_RUNNING, "{verb}");
    }
    assert_eq!(
        v.fails(&["domblkthreshold", "tune", "vda", "1M"]),
        NOT_RUNNING
    );
    // virsh prints the link state without a newline: the one after it is the blank line
    // virsh ends every command with (without -q).
    assert_eq!(v.ok(&["domif-getlink", "tune", MAC]), format!("{MAC} up\n"));
    assert_eq!(
        v.ok(&["-q", "domif-getlink", "tune", MAC]),
        format!("{MAC} up")
    );
    assert_eq!(
        v.ok(&["domif-getlink", "tune", "52:54:0:AA:BB:1"]),
        "52:54:0:AA:BB:1 up\n"
    );
    assert_eq!(
        v.fails(&["domif-getlink", "tune", "52:54:00:00:00:09"]),
        "error: Interface (mac: 52:54:00:00:00:09) not found.\n"
    );
    assert_eq!(
        v.fails(&["domif-getlink", "tune", "eth7"]),
        "error: Interface (dev: eth7) not found.\n"
    );
    assert_eq!(
        v.ok(&["domif-setlink", "tune", MAC, "down"]),
        "Device updated successfully\n\n"
    );
    assert_eq!(
        v.ok(&["domif-getlink", "tune", MAC, "--config"]),
        format!("{MAC} down\n")
    );
    assert!(
        v.ok(&["dumpxml", "tune", "--inactive"])
            .contains("<link state='down'/>")
    );
    v.ok(&["domif-setlink", "tune", MAC, "up", "--persistent"]);
    assert_eq!(
        v.fails(&["domif-setlink", "tune", MAC, "sideways"]),
        "error: invalid link state 'sideways'\n"
    );
    assert_eq!(
        v.fails(&["domif-setlink", "tune", "nope", "down"]),
        "error: interface 'nope' not found\n"
    );
    let printed = v.ok(&["-q", "domif-setlink", "tune", MAC, "down", "--print-xml"]);
    assert!(
        printed.starts_with("<interface type=\"user\">\n      <mac address="),
        "{printed}"
    );
    assert!(
        printed.ends_with("<link state=\"down\"/>\n    </interface>")
            || printed.ends_with("    </interface>"),
        "{printed}"
    );

    let conf = v.ok(&["blkdeviotune", "tune", "vda"]);
    assert_eq!(conf.lines().count(), 21, "{conf}");
    assert!(
        conf.starts_with("total_bytes_sec: 0\nread_bytes_sec : 0\n"),
        "{conf}"
    );
    v.ok(&[
        "blkdeviotune",
        "tune",
        "vda",
        "--total-bytes-sec",
        "1M",
        "--config",
    ]);
    assert!(
        v.ok(&["blkdeviotune", "tune", "vda", "--config"])
            .starts_with("total_bytes_sec: 1048576\n")
    );
    assert_eq!(
        v.fails(&["blkdeviotune", "tune", "vdz"]),
        "error: Unable to get block I/O throttle parameters\nerror: invalid argument: disk 'vdz' not found in domain\n"
    );
    assert_eq!(
        v.fails(&[
            "blkdeviotune",
            "tune",
            "vda",
            "--live",
            "--total-iops-sec",
            "5"
        ]),
        "error: Unable to change block I/O throttle\nerror: Requested operation is not valid: domain is not running\n"
    );
    assert_eq!(
        v.fails(&["blkdeviotune", "tune", "vda", "--read-iops-sec", "x"]),
        "error: Unable to parse integer parameter\nerror: Numeric value 'x' for <read-iops-sec> option is malformed or out of range\n"
    );

    let pins = v.ok(&["vcpupin", "tune"]);
    assert!(pins.starts_with(" VCPU   CPU Affinity\n"), "{pins}");
    assert_eq!(pins.lines().count(), 5, "{pins}");
    v.ok(&["vcpupin", "tune", "1", "0", "--config"]);
    assert!(
        v.ok(&["vcpupin", "tune", "--vcpu", "1"])
            .contains("\n 1      0\n")
    );
    assert!(
        v.ok(&["dumpxml", "tune", "--inactive"])
            .contains("<vcpupin vcpu='1' cpuset='0'/>")
    );
    assert_eq!(
        v.fails(&["vcpupin", "tune", "--vcpu", "5"]),
        "error: vcpu 5 is out of range of persistent cpu count 2\n"
    );
    assert_eq!(
        v.fails(&["vcpupin", "tune", "1", "zz", "--config"]),
        "error: Invalid cpulist 'zz'\n"
    );
    assert_eq!(
        v.fails(&["vcpupin", "tune", "--cpulist", "0"]),
        "error: vcpupin: Missing vCPU number in pin mode.\n"
    );
    assert!(
        v.fails(&["vcpupin", "tune", "0", "0-1000"])
            .contains("exceed the maxcpu")
    );
    assert_eq!(
        v.fails(&["vcpupin", "tune", "0", "0", "--live"]),
        NOT_RUNNING
    );
    v.ok(&["emulatorpin", "tune", "0", "--config"]);
    assert_eq!(
        v.ok(&["emulatorpin", "tune"]),
        "emulator: CPU Affinity\n----------------------------------\n       *: 0\n\n"
    );
    assert_eq!(v.ok(&["-q", "emulatorpin", "tune"]), "0\n");

    let io = v.ok(&["iothreadinfo", "tune"]);
    assert!(io.starts_with(" IOThread ID   CPU Affinity\n"), "{io}");
    assert!(io.contains("\n 1  ") && io.contains("\n 2  "), "{io}");
    v.ok(&["iothreadadd", "tune", "7", "--config"]);
    assert!(v.ok(&["iothreadinfo", "tune"]).contains("\n 7  "));
    assert_eq!(
        v.fails(&["iothreadadd", "tune", "7"]),
        "error: invalid argument: an IOThread is already using iothread_id '7'\n"
    );
    assert_eq!(
        v.fails(&["iothreadadd", "tune", "0"]),
        "error: Invalid IOThread id value: '0'\n"
    );
    v.ok(&["iothreaddel", "tune", "7"]);
    assert_eq!(
        v.fails(&["iothreaddel", "tune", "7"]),
        "error: invalid argument: cannot find IOThread '7' in iothreadids list\n"
    );
    assert_eq!(
        v.fails(&["iothreadadd", "tune", "8", "--live"]),
        NOT_RUNNING
    );
    let bare = dir.path().join("bare.xml");
    std::fs::write(&bare, guests::small_xml("bare", None)).unwrap();
    v.ok(&["define", bare.to_str().unwrap()]);
    assert_eq!(
        v.ok(&["iothreadinfo", "bare"]),
        "No IOThreads found for the domain\n"
    );
    assert_eq!(
        v.fails(&["iothreadinfo", "tune", "--live", "--config"]),
        "error: Unable to get domain IOThreads information\nerror: invalid argument: Flags 'VIR_DOMAIN_AFFECT_LIVE' and 'VIR_DOMAIN_AFFECT_CONFIG' are mutually exclusive\n"
    );

    // domrename: only a shut-off persistent domain, never onto a name in use.
    assert_eq!(
        v.fails(&["domrename", "bare", "tune"]),
        "error: Requested operation is not valid: domain with name 'tune' already exists\n"
    );
    assert_eq!(
        v.fails(&["domrename", "bare", "bare"]),
        "error: Requested operation is not valid: Can't rename domain to itself\n"
    );
    assert_eq!(
        v.ok(&["domrename", "bare", "bare2"]),
        "Domain successfully renamed\n\n"
    );
    assert!(
        v.fails(&["domstate", "bare"])
            .contains("failed to get domain 'bare'")
    );
    assert!(v.ok(&["dumpxml", "bare2"]).contains("<name>bare2</name>"));
    v.fails(&["domrename", "bare2", "a/b"]);
    assert!(v.ok(&["dumpxml", "bare2"]).contains("<name>bare2</name>"));

    // ---- the running guest ----
    v.ok(&["start", "tune"]);
    assert_eq!(v.ok(&["domcontrol", "tune"]), "ok\n\n");
    assert_eq!(v.ok(&["domblkerror", "tune"]), "No errors found\n\n");

    v.ok(&["domif-setlink", "tune", MAC, "down"]);
    assert_eq!(
        v.ok(&["domif-getlink", "tune", MAC]),
        format!("{MAC} down\n")
    );
    assert_eq!(
        v.ok(&["domif-getlink", "tune", MAC, "--config"]),
        format!("{MAC} up\n"),
        "a live change leaves the config"
    );
    assert!(v.ok(&["dumpxml", "tune"]).contains("<link state='down'/>"));
    v.ok(&["domif-setlink", "tune", MAC, "up"]);
    assert_eq!(v.ok(&["domif-getlink", "tune", MAC]), format!("{MAC} up\n"));

    // The config's throttle came with the start.
    let live = v.ok(&["blkdeviotune", "tune", "vda"]);
    assert!(live.starts_with("total_bytes_sec: 1048576\n"), "{live}");
    v.ok(&["blkdeviotune", "tune", "vda", "--total-iops-sec", "100"]);
    let blocks = qmp(&v, "query-block");
    let vda = blocks
        .as_array()
        .unwrap()
        .iter()
        .find(|b| {
            b["qdev"]
                .as_str()
                .is_some_and(|q| q.contains("virtio-disk0"))
        })
        .unwrap();
    assert_eq!(vda["inserted"]["iops"], 100, "{vda}");
    assert_eq!(vda["inserted"]["bps"], 1048576, "{vda}");
    assert!(
        v.ok(&["blkdeviotune", "tune", "vda"])
            .contains("\ntotal_iops_sec : 100\n")
    );
    assert_eq!(
        v.fails(&[
            "blkdeviotune",
            "tune",
            "vda",
            "--total-iops-sec",
            "1",
            "--read-iops-sec",
            "2"
        ]),
        "error: Unable to change block I/O throttle\nerror: invalid argument: total and read/write of iops_sec cannot be set at the same time\n"
    );
    assert_eq!(
        v.fails(&["blkdeviotune", "tune", "vda", "--read-bytes-sec-max", "10"]),
        "error: Unable to change block I/O throttle\nerror: unsupported configuration: value 'read_bytes_sec_max' cannot be set if 'read_bytes_sec' is not set\n"
    );

    v.ok(&["domblkthreshold", "tune", "vda", "1M"]);
    let nodes = qmp(&v, "query-named-block-nodes");
    assert!(
        nodes
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["write_threshold"] == 1048576),
        "{nodes}"
    );
    assert_eq!(
        v.fails(&["domblkthreshold", "tune", "vdq", "1M"]),
        "error: invalid argument: failed to find disk 'vdq'\n"
    );

    // vCPU 1 was pinned to CPU 0 in the config; the start does not pin threads, so the
    // live answer is what the threads say.
    v.ok(&["vcpupin", "tune", "0", "0"]);
    let cpus = qmp(&v, "query-cpus-fast");
    let tid = cpus[0]["thread-id"].as_i64().unwrap();
    let status: Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("run/qemu/tune.json")).unwrap())
            .unwrap();
    let pid = status["pid"].to_string();
    let status =
        std::fs::read_to_string(format!("/proc/{}/task/{tid}/status", pid.trim())).unwrap();
    assert!(
        status.contains("Cpus_allowed_list:\t0\n"),
        "{}",
        status
            .lines()
            .find(|l| l.starts_with("Cpus_allowed_list"))
            .unwrap_or("")
    );
    assert!(
        v.ok(&["vcpupin", "tune", "--vcpu", "0"])
            .contains("\n 0      0\n")
    );
    assert!(
        v.ok(&["dumpxml", "tune"])
            .contains("<vcpupin vcpu='0' cpuset='0'/>")
    );
    assert_eq!(
        v.fails(&["vcpupin", "tune", "--vcpu", "7", "--live"]),
        "error: vcpu 7 is out of range of live cpu count 2\n"
    );
    v.ok(&["emulatorpin", "tune", "0"]);
    assert!(
        v.ok(&["emulatorpin", "tune", "--live"])
            .ends_with("*: 0\n\n")
    );
    let status = std::fs::read_to_string(format!("/proc/{}/status", pid.trim())).unwrap();
    assert!(status.contains("Cpus_allowed_list:\t0\n"));

    let io = v.ok(&["iothreadinfo", "tune", "--live"]);
    assert_eq!(io.lines().count(), 5, "{io}");
    v.ok(&["iothreadadd", "tune", "3"]);
    let io = v.ok(&["iothreadinfo", "tune", "--live"]);
    assert!(io.contains("\n 3  "), "{io}");
    assert!(
        qmp(&v, "query-iothreads")
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["id"] == "iothread3")
    );
    assert!(
        !v.ok(&["iothreadinfo", "tune", "--config"])
            .contains("\n 3  ")
    );
    v.ok(&["iothreaddel", "tune", "3"]);
    assert_eq!(v.ok(&["iothreadinfo", "tune"]).lines().count(), 5);

    assert_eq!(
        v.fails(&["domrename", "tune", "other"]),
        "error: Requested operation is not valid: cannot rename active domain\n"
    );
    v.ok(&["destroy", "tune"]);
    assert_eq!(v.fails(&["domcontrol", "tune"]), NOT_RUNNING);
}

/// `nodecpumap`, `freecell` and `maxvcpus` against what sysfs says.
#[test]
fn host_cpu_and_numa_verbs() {
    let dir = tempfile::tempdir().unwrap();
    let v = Vsh::new(dir.path().join("r"));
    let sys = |p: &str| std::fs::read_to_string(format!("/sys/devices/system/cpu/{p}")).unwrap();
    let last = |s: &str| -> u32 {
        s.trim()
            .split(',')
            .filter_map(|r| r.rsplit('-').next()?.parse().ok())
            .max()
            .unwrap()
    };
    let present = last(&sys("present")) + 1;
    let online = domdriver::capabilities::cpuset::CpuSet::parse(sys("online").trim()).unwrap();
    let map: String = (0..present)
        .map(|c| if online.contains(c) { 'y' } else { '-' })
        .collect();
    assert_eq!(
        v.ok(&["nodecpumap"]),
        format!(
            "CPUs present:   {present}\nCPUs online:    {}\nCPU map:        {map}\n\n",
            online.len()
        )
    );
    assert!(
        v.ok(&["nodecpumap", "--pretty"])
            .ends_with(&format!("CPU map:        {online}\n\n"))
    );

    let total = v.ok(&["-q", "freecell"]);
    assert!(
        total.starts_with("Total: ") && total.ends_with(" KiB\n"),
        "{total}"
    );
    let cell0 = v.ok(&["-q", "freecell", "0"]);
    assert!(
        cell0.starts_with("0: ") && cell0.ends_with(" KiB\n"),
        "{cell0}"
    );
    let all = v.ok(&["freecell", "--all"]);
    assert!(all.starts_with("    0: "), "{all}");
    assert!(all.contains("\n--------------------\nTotal: "), "{all}");
    assert!(!v.ok(&["-q", "freecell", "--all"]).contains("Total"));
    let err = v.fails(&["freecell", "999"]);
    assert!(
        err.starts_with("error: internal error: start cell 999 out of range (0-"),
        "{err}"
    );
    assert_eq!(
        v.fails(&["freecell", "--all", "--cellno", "0"]),
        "error: Options --all and --cellno are mutually exclusive\n"
    );

    if have_qemu() {
        let max: u32 = v
            .ok(&["maxvcpus", "--type", "qemu"])
            .trim()
            .parse()
            .unwrap();
        assert!(max >= 1);
        assert!(!v.fails(&["maxvcpus", "--type", "nosuch"]).is_empty());
    }
}
