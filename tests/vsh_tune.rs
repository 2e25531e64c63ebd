//! `blkiotune`, `numatune`, `domiftune` and `perf` through `vsh` on one TCG guest with no
//! OS (and a second domain that is only defined, for interface types the guest cannot
//! start with): the config's values as libvirt writes them, the live ones where this
//! driver reads them, and libvirt's refusals where it has no cgroup, tc or perf counters.

#[path = "common/guests.rs"]
mod guests;
#[path = "common/vshrun.rs"]
mod vshrun;

use guests::{QEMU, have_qemu};
use vshrun::{Reaper, Vsh};

const NAME: &str = "tune";
const MAC: &str = "52:54:00:11:22:33";

fn xml(name: &str, nic: &str) -> String {
    format!(
        "<domain type='qemu'><name>{name}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>\
         <os><type arch='x86_64' machine='pc'>hvm</type></os>\
         <devices><emulator>{QEMU}</emulator>{nic}<memballoon model='none'/></devices></domain>"
    )
}

const NOT_RUNNING: &str = "Requested operation is not valid: domain is not running";

fn inactive(v: &Vsh, name: &str) -> String {
    v.ok(&["dumpxml", name, "--inactive"])
}

#[test]
fn tuning_verbs_on_a_guest() {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::Builder::new()
        .prefix("vtu")
        .tempdir_in("/tmp")
        .unwrap();
    let root = dir.path().join("r");
    let v = Vsh::new(root.clone());
    let _reap = Reaper(root.clone(), vec![NAME]);
    let define = |name: &str, nic: &str| {
        let f = dir.path().join(format!("{name}.xml"));
        std::fs::write(&f, xml(name, nic)).unwrap();
        v.ok(&["define", f.to_str().unwrap()]);
    };
    define(
        NAME,
        &format!("<interface type='user'><mac address='{MAC}'/><model type='e1000'/></interface>"),
    );
    define(
        "eth",
        &format!(
            "<interface type='ethernet'><mac address='{MAC}'/><target dev='vt0'/></interface>"
        ),
    );

    // ---- blkiotune ----
    assert_eq!(
        v.ok(&["-q", "blkiotune", NAME]),
        "weight         : 0\ndevice_weight  : \ndevice_read_iops_sec: \ndevice_write_iops_sec: \ndevice_read_bytes_sec: \ndevice_write_bytes_sec: \n"
    );
    v.ok(&[
        "blkiotune",
        NAME,
        "--weight",
        "500",
        "--device-weights",
        "/dev/sda,300,/dev/sdb,200",
        "--device-read-bytes-sec",
        "/dev/sda,1048576",
    ]);
    let out = v.ok(&["-q", "blkiotune", NAME, "--config"]);
    assert!(
        out.starts_with("weight         : 500\ndevice_weight  : /dev/sda,300,/dev/sdb,200\ndevice_read_iops_sec: \ndevice_write_iops_sec: \ndevice_read_bytes_sec: /dev/sda,1048576\n"),
        "{out}"
    );
    let x = inactive(&v, NAME);
    assert!(x.contains("<blkiotune>\n    <weight>500</weight>\n    <device>\n      <path>/dev/sda</path>\n      <weight>300</weight>\n      <read_bytes_sec>1048576</read_bytes_sec>\n    </device>"), "{x}");
    v.ok(&["blkiotune", NAME, "--device-weights", "/dev/sdb,0"]);
    assert!(!inactive(&v, NAME).contains("/dev/sdb"));
    assert_eq!(
        v.fails(&["blkiotune", NAME, "--weight", "0"]),
        "error: Invalid value of 0 for I/O weight\n"
    );
    assert_eq!(
        v.fails(&["blkiotune", NAME, "--device-weights", "/dev/sda"]),
        "error: Unable to change blkio parameters\nerror: invalid argument: unable to parse blkio device '/dev/sda' 'device_weight'\n"
    );
    assert_eq!(
        v.fails(&[
            "blkiotune",
            NAME,
            "--device-write-iops-sec",
            "/dev/sda,lots"
        ]),
        "error: Unable to change blkio parameters\nerror: invalid argument: invalid value 'lots' for parameter 'device_write_iops_sec' of device '/dev/sda'\n"
    );
    assert_eq!(
        v.fails(&["blkiotune", NAME, "--live"]),
        format!("error: Unable to get number of blkio parameters\nerror: {NOT_RUNNING}\n")
    );

    // ---- numatune ----
    assert_eq!(
        v.ok(&["-q", "numatune", NAME]),
        "numa_mode      : strict\nnuma_nodeset   : \n"
    );
    v.ok(&["numatune", NAME, "--mode", "interleave", "--nodeset", "0"]);
    assert_eq!(
        v.ok(&["-q", "numatune", NAME, "--config"]),
        "numa_mode      : interleave\nnuma_nodeset   : 0\n"
    );
    assert!(
        inactive(&v, NAME)
            .contains("<numatune>\n    <memory mode='interleave' nodeset='0'/>\n  </numatune>")
    );
    v.ok(&["numatune", NAME, "--mode", "0"]);
    assert!(inactive(&v, NAME).contains("<memory mode='strict' nodeset='0'/>"));
    assert_eq!(
        v.fails(&["numatune", NAME, "--mode", "sideways"]),
        "error: Invalid mode: sideways\n"
    );
    assert_eq!(
        v.fails(&["numatune", NAME, "--nodeset", "x-"]),
        "error: Unable to change numa parameters\nerror: invalid argument: Failed to parse bitmap 'x-'\n"
    );

    // ---- domiftune ----
    let zero = "inbound.average: 0\ninbound.peak   : 0\ninbound.burst  : 0\ninbound.floor  : 0\noutbound.average: 0\noutbound.peak  : 0\noutbound.burst : 0\n";
    assert_eq!(v.ok(&["-q", "domiftune", NAME, MAC]), zero);
    assert_eq!(
        v.fails(&["domiftune", NAME, MAC, "--inbound", "100"]),
        "error: Unable to set interface parameters\nerror: Operation not supported: setting bandwidth on interfaces of type 'user' is not implemented yet\n"
    );
    assert_eq!(
        v.fails(&["domiftune", NAME, "vnet9"]),
        "error: Unable to get number of interface parameters\nerror: invalid argument: 'vnet9' is not a known interface\n"
    );
    v.ok(&[
        "domiftune",
        "eth",
        "vt0",
        "--inbound",
        "1000,2000,300",
        "--outbound",
        "500",
    ]);
    assert_eq!(
        v.ok(&["-q", "domiftune", "eth", MAC]),
        "inbound.average: 1000\ninbound.peak   : 2000\ninbound.burst  : 300\ninbound.floor  : 0\noutbound.average: 500\noutbound.peak  : 0\noutbound.burst : 0\n"
    );
    assert!(inactive(&v, "eth").contains(
        "<bandwidth>\n        <inbound average='1000' peak='2000' burst='300'/>\n        <outbound average='500'/>\n      </bandwidth>"
    ));
    v.ok(&[
        "domiftune",
        "eth",
        "vt0",
        "--inbound",
        "0",
        "--outbound",
        "0",
    ]);
    assert!(!inactive(&v, "eth").contains("<bandwidth>"));
    assert_eq!(
        v.fails(&["domiftune", "eth", "vt0", "--inbound", "1,2,3,4,5"]),
        "error: Rate string '1,2,3,4,5' has too many fields\n"
    );
    assert_eq!(
        v.fails(&["domiftune", "eth", "vt0", "--inbound", "x"]),
        "error: field 'x' is malformed\n"
    );
    assert_eq!(
        v.fails(&["domiftune", "eth", "vt0", "--outbound", "1,2,3,4"]),
        "error: outbound floor is unsupported yet\n"
    );
    assert_eq!(
        v.fails(&["domiftune", "eth", "vt0", "--inbound", "0,5"]),
        "error: either inbound average or floor is mandatory\n"
    );
    v.ok(&["undefine", "eth"]);

    // ---- perf ----
    let out = v.ok(&["-q", "perf", NAME]);
    assert_eq!(out.lines().count(), 22, "{out}");
    assert!(out.starts_with("cmt            : disabled\nmbmt           : disabled\n"));
    v.ok(&[
        "perf",
        NAME,
        "--enable",
        "cpu_cycles,instructions",
        "--disable",
        "cmt",
    ]);
    let out = v.ok(&["-q", "perf", NAME, "--config"]);
    assert!(
        out.contains("cpu_cycles     : enabled\ninstructions   : enabled\n"),
        "{out}"
    );
    assert!(inactive(&v, NAME).contains("<perf>\n    <event name='cmt' enabled='no'/>\n    <event name='cpu_cycles' enabled='yes'/>\n    <event name='instructions' enabled='yes'/>\n  </perf>"));
    assert_eq!(
        v.fails(&["perf", NAME, "--enable", "telepathy"]),
        "error: Unable to enable/disable perf events\nerror: argument unsupported: parameter 'telepathy' not supported\n"
    );

    // ---- the running guest ----
    v.ok(&["start", NAME]);
    assert_eq!(
        v.fails(&["blkiotune", NAME]),
        "error: Unable to get number of blkio parameters\nerror: Requested operation is not valid: blkio cgroup isn't mounted\n"
    );
    assert!(
        v.ok(&["blkiotune", NAME, "--config"])
            .starts_with("weight         : 500\n")
    );
    assert_eq!(
        v.fails(&["blkiotune", NAME, "--weight", "100", "--live"]),
        "error: Unable to change blkio parameters\nerror: Requested operation is not valid: blkio cgroup isn't mounted\n"
    );
    // The live definition's policy is read as libvirt reads it.
    assert_eq!(
        v.ok(&["-q", "numatune", NAME]),
        "numa_mode      : strict\nnuma_nodeset   : 0\n"
    );
    assert_eq!(
        v.fails(&["numatune", NAME, "--mode", "preferred"]),
        "error: Unable to change numa parameters\nerror: Requested operation is not valid: can't change numatune mode for running domain\n"
    );
    assert_eq!(
        v.fails(&["numatune", NAME, "--nodeset", "0"]),
        "error: Unable to change numa parameters\nerror: Requested operation is not valid: cgroup cpuset controller is not mounted\n"
    );
    assert_eq!(v.ok(&["-q", "domiftune", NAME, MAC, "--live"]), zero);
    assert_eq!(
        v.fails(&["domiftune", NAME, MAC, "--outbound", "10", "--live"]),
        "error: Unable to set interface parameters\nerror: Operation not supported: setting bandwidth on interfaces of type 'user' is not implemented yet\n"
    );
    // No counters are open for the running guest; enabling one is refused.
    assert!(
        v.ok(&["perf", NAME])
            .contains("cpu_cycles     : disabled\n")
    );
    assert_eq!(
        v.fails(&["perf", NAME, "--enable", "cpu_cycles"]),
        "error: Unable to enable/disable perf events\nerror: Perf not supported on this platform: No such device or address\n"
    );
    v.ok(&["perf", NAME, "--disable", "cpu_cycles", "--live"]);
    v.ok(&["perf", NAME, "--enable", "page_faults", "--config"]);
    assert!(inactive(&v, NAME).contains("<event name='page_faults' enabled='yes'/>"));
    v.ok(&["destroy", NAME]);
    v.ok(&["undefine", NAME]);
}
