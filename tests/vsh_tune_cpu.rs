//! `setvcpu` and `schedinfo` through `vsh` on one TCG guest with no OS: the config's
//! `<vcpus>` list and `<cputune>`, the running guest's vCPUs checked against QMP, and every
//! refusal of libvirt's.

#[path = "common/guests.rs"]
mod guests;
#[path = "common/vshrun.rs"]
mod vshrun;

use guests::{QEMU, have_qemu};
use serde_json::Value;
use vshrun::{Reaper, Vsh};

const NAME: &str = "tcpu";

fn xml() -> String {
    format!(
        "<domain type='qemu'><name>{NAME}</name><memory unit='MiB'>64</memory>\
         <vcpu current='1'>3</vcpu>\
         <os><type arch='x86_64' machine='q35'>hvm</type></os><features><acpi/></features>\
         <devices><emulator>{QEMU}</emulator><memballoon model='none'/></devices></domain>"
    )
}

/// The vCPUs QEMU has online.
fn online(v: &Vsh) -> usize {
    let out = v.ok(&[
        "qemu-monitor-command",
        NAME,
        "{\"execute\":\"query-cpus-fast\"}",
    ]);
    let j: Value = serde_json::from_str(&out).unwrap();
    j["return"].as_array().unwrap().len()
}

const SCHED_DEFAULT: &str = "Scheduler      : posix\ncpu_shares     : 0\nvcpu_period    : 0\n\
vcpu_quota     : 0\nemulator_period: 0\nemulator_quota : 0\nglobal_period  : 0\nglobal_quota   : 0\n\
iothread_period: 0\niothread_quota : 0\n";

#[test]
fn setvcpu_and_schedinfo_on_a_guest() {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::Builder::new()
        .prefix("vtc")
        .tempdir_in("/tmp")
        .unwrap();
    let root = dir.path().join("r");
    let file = dir.path().join("d.xml");
    std::fs::write(&file, xml()).unwrap();
    let v = Vsh::new(root.clone());
    let _reap = Reaper(root.clone(), vec![NAME]);
    v.ok(&["define", file.to_str().unwrap()]);

    // ---- setvcpu, the inactive domain ----
    assert_eq!(
        v.fails(&["setvcpu", NAME, "1"]),
        "error: one of --enable, --disable is required\n"
    );
    assert_eq!(
        v.fails(&["setvcpu", NAME, "1", "--enable", "--disable"]),
        "error: Options --enable and --disable are mutually exclusive\n"
    );
    assert_eq!(
        v.fails(&["setvcpu", NAME, "1", "--enable", "--live"]),
        "error: Requested operation is not valid: domain is not running\n"
    );
    assert_eq!(
        v.fails(&["setvcpu", NAME, "x", "--enable"]),
        "error: invalid argument: Failed to parse bitmap 'x'\n"
    );
    assert_eq!(
        v.fails(&["setvcpu", NAME, "3", "--enable"]),
        "error: invalid argument: vcpu 3 is not present in persistent config\n"
    );
    assert_eq!(
        v.fails(&["setvcpu", NAME, "0", "--disable"]),
        "error: invalid argument: vCPU '0' can't be modified\n"
    );
    v.ok(&["setvcpu", NAME, "2", "--enable", "--config"]);
    let inactive = v.ok(&["dumpxml", NAME, "--inactive"]);
    assert!(
        inactive.contains("<vcpu placement='static' current='2'>3</vcpu>\n  <vcpus>\n    <vcpu id='0' enabled='yes' hotpluggable='no'/>\n    <vcpu id='1' enabled='no' hotpluggable='yes'/>\n    <vcpu id='2' enabled='yes' hotpluggable='yes'/>\n  </vcpus>"),
        "{inactive}"
    );
    v.ok(&["setvcpu", NAME, "2", "--disable"]);
    assert!(
        v.ok(&["dumpxml", NAME, "--inactive"])
            .contains("<vcpu placement='static' current='1'>3</vcpu>")
    );

    // ---- schedinfo, the inactive domain ----
    assert_eq!(v.ok(&["-q", "schedinfo", NAME]), SCHED_DEFAULT);
    v.ok(&[
        "schedinfo",
        NAME,
        "--set",
        "cpu_shares=2048",
        "--set",
        "emulator_quota=5000",
        "vcpu_period=20000",
    ]);
    let out = v.ok(&["-q", "schedinfo", NAME, "--config"]);
    assert!(
        out.contains("cpu_shares     : 2048\nvcpu_period    : 20000\n"),
        "{out}"
    );
    assert!(out.contains("emulator_quota : 5000\n"), "{out}");
    assert!(
        v.ok(&["dumpxml", NAME, "--inactive"]).contains(
            "<cputune>\n    <shares>2048</shares>\n    <period>20000</period>\n    <emulator_quota>5000</emulator_quota>\n  </cputune>"
        )
    );
    assert_eq!(
        v.fails(&["schedinfo", NAME, "--set", "vcpu_quota=10"]),
        "error: invalid argument: value of 'vcpu_quota' is out of range [1000, 17592186044415]\n"
    );
    assert_eq!(
        v.fails(&["schedinfo", NAME, "--set", "cpu_shares"]),
        "error: Invalid syntax for --set, expecting name=value\n"
    );
    assert_eq!(
        v.fails(&["schedinfo", NAME, "--set", "bogus=1"]),
        "error: invalid scheduler option: bogus\n"
    );
    assert_eq!(
        v.fails(&["schedinfo", NAME, "--weight", "10"]),
        "error: invalid scheduler option: weight\n"
    );
    assert_eq!(
        v.fails(&["schedinfo", NAME, "--set", "cpu_shares=-4"]),
        "error: invalid argument: Invalid value for field 'cpu_shares': expected unsigned long long\n"
    );
    assert_eq!(
        v.fails(&["schedinfo", NAME, "--live", "--config"]),
        "error: cannot query both live and config at once\n"
    );
    v.ok(&[
        "schedinfo",
        NAME,
        "cpu_shares=0",
        "emulator_quota=0",
        "vcpu_period=0",
    ]);
    // Zero periods and quotas go; shares once given stay, as libvirt keeps them.
    assert!(
        v.ok(&["dumpxml", NAME, "--inactive"])
            .contains("<cputune>\n    <shares>0</shares>\n  </cputune>")
    );

    // ---- the running guest ----
    v.ok(&["start", NAME]);
    // No CPU cgroup of ours: libvirt's answer on a host without that controller.
    let (ok, out, err) = v.run(&["-q", "schedinfo", NAME, "--config"]);
    assert!(!ok);
    assert_eq!(out, "Scheduler      : Unknown\n");
    assert_eq!(
        err,
        "error: Requested operation is not valid: cgroup CPU controller is not mounted\n"
    );
    assert_eq!(online(&v), 1);
    assert_eq!(
        v.fails(&["setvcpu", NAME, "0", "--disable", "--live"]),
        "error: invalid argument: vcpu '0' can't be hotunplugged\n"
    );
    assert_eq!(
        v.fails(&["setvcpu", NAME, "0", "--enable"]),
        "error: invalid argument: vcpu '0' is already in requested state\n"
    );
    assert_eq!(
        v.fails(&["setvcpu", NAME, "1-2", "--enable"]),
        "error: invalid argument: only one hotpluggable entity can be selected\n"
    );
    assert_eq!(
        v.fails(&["setvcpu", NAME, "5", "--enable", "--live"]),
        "error: invalid argument: vcpu 5 is not present in live config\n"
    );
    v.ok(&["setvcpu", NAME, "2", "--enable", "--live"]);
    assert_eq!(online(&v), 2);
    assert!(
        v.ok(&["dumpxml", NAME])
            .contains("<vcpu placement='static' current='2'>3</vcpu>")
    );
    // The config is untouched by a live change.
    assert!(
        v.ok(&["dumpxml", NAME, "--inactive"])
            .contains("<vcpu placement='static' current='1'>3</vcpu>")
    );
    // With no OS the guest never switched QEMU's CPU hotplug out of its legacy mode,
    // which cannot unplug: QEMU's refusal comes back as libvirt passes it on.
    assert_eq!(
        v.fails(&["setvcpu", NAME, "2", "--disable"]),
        "error: internal error: unable to execute QEMU command 'device_del': acpi: device unplug request for not supported device type: qemu64-x86_64-cpu\n"
    );
    assert_eq!(online(&v), 2);
    // QEMU 7.2 has been seen to die some seconds after an x86 vCPU unplug (issue 15):
    // the guest may be gone already.
    let _ = v.run(&["destroy", NAME]);
    v.ok(&["undefine", NAME]);
}
