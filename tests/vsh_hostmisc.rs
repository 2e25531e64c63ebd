//! `cpu-models` (from the probed emulator) and `nodesuspend` (always refused, politely)
//! through `vsh`, with virsh's and libvirt's messages for every bad argument.

#[path = "common/guests.rs"]
mod guests;
#[path = "common/vshrun.rs"]
mod vshrun;

use guests::have_qemu;
use vshrun::Vsh;

fn vsh(dir: &tempfile::TempDir) -> Vsh {
    let mut v = Vsh::new(dir.path().join("r"));
    v.env.push(("VSH_EMULATOR_PATH".into(), "/usr/bin".into()));
    v
}

#[test]
fn cpu_models_of_the_probed_emulator() {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let v = vsh(&dir);
    let out = v.ok(&["-q", "cpu-models", "x86_64"]);
    let names: Vec<&str> = out.lines().collect();
    for want in ["qemu64", "Skylake-Client", "Haswell-noTSX", "486"] {
        assert!(names.contains(&want), "{want} missing in {out}");
    }
    for unwanted in ["host", "max", "base", "Skylake-Client-v1"] {
        assert!(!names.contains(&unwanted), "{unwanted} listed in {out}");
    }
    let mut sorted = names.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, names);
    let j: Vec<String> = serde_json::from_str(&v.ok(&["cpu-models", "x86_64", "--json"])).unwrap();
    assert_eq!(j, names);
    assert_eq!(
        v.fails(&["cpu-models", "pdp11"]),
        "error: failed to get CPU model names\nerror: invalid argument: cannot find architecture pdp11\n"
    );
    assert_eq!(
        v.fails(&["cpu-models", "mips"]),
        "error: failed to get CPU model names\nerror: this function is not supported by the connection driver: 'mips' architecture is not supported by CPU driver\n"
    );
    assert_eq!(
        v.fails(&["cpu-models"]),
        "error: command 'cpu-models' requires --arch option\n"
    );
}

#[test]
fn nodesuspend_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let v = vsh(&dir);
    for (target, name) in [
        ("mem", "Suspend-to-RAM"),
        ("disk", "Suspend-to-Disk"),
        ("hybrid", "Hybrid-Suspend"),
    ] {
        assert_eq!(
            v.fails(&["nodesuspend", target, "60"]),
            format!("error: The host was not suspended\nerror: argument unsupported: {name}\n")
        );
    }
    assert_eq!(
        v.fails(&["nodesuspend", "sleep", "60"]),
        "error: Invalid target\n"
    );
    assert_eq!(
        v.fails(&["nodesuspend", "mem", "--duration", "-5"]),
        "error: Invalid duration\n"
    );
    assert_eq!(
        v.fails(&["nodesuspend", "mem", "x"]),
        "error: Numeric value 'x' for <duration> option is malformed or out of range\n"
    );
    let err = v.fails(&["-r", "nodesuspend", "mem", "60"]);
    assert!(err.contains("read only"), "{err}");
}

/// `domxml-from-native` and `qemu-attach`: libvirt's QEMU driver dropped both APIs in 5.5.0,
/// so virsh reads its input and then prints libvirt's "not supported"; so does vsh.
#[test]
fn retired_qemu_driver_apis_are_refused_as_virsh_does() {
    let dir = tempfile::tempdir().unwrap();
    let v = vsh(&dir);
    let help = v.ok(&["domxml-from-native", "--help"]);
    assert!(
        help.contains("domxml-from-native <format> <config>"),
        "{help}"
    );
    let args = dir.path().join("guest.args");
    std::fs::write(&args, "qemu-system-x86_64 -m 64\n").unwrap();
    let args = args.display().to_string();
    assert_eq!(
        v.fails(&["domxml-from-native", "qemu-argv", &args]),
        "error: this function is not supported by the connection driver: virConnectDomainXMLFromNative\n"
    );
    assert_eq!(
        v.fails(&["domxml-from-native", "qemu-argv", "/nowhere/guest.args"]),
        "error: Failed to open file '/nowhere/guest.args': No such file or directory\n"
    );
    assert_eq!(
        v.fails(&["domxml-from-native", "qemu-argv"]),
        "error: command 'domxml-from-native' requires <config> option\n"
    );

    assert!(
        v.ok(&["qemu-attach", "--help"])
            .contains("qemu-attach <pid>")
    );
    assert_eq!(
        v.fails(&["qemu-attach", "4242"]),
        "error: Failed to attach to pid 4242\nerror: this function is not supported by the connection driver: virDomainQemuAttach\n"
    );
    assert_eq!(
        v.fails(&["qemu-attach", "pid"]),
        "error: Numeric value 'pid' for <pid> option is malformed or out of range\n"
    );
    assert_eq!(
        v.fails(&["-r", "qemu-attach", "1"]),
        "error: operation forbidden: read only access prevents virDomainQemuAttach\n"
    );
}
