//! `cpu-compare`, `hypervisor-cpu-compare`, the baselines vsh refuses, and the SEV verbs
//! (`nodesevinfo`, `domlaunchsecinfo`, `domsetlaunchsecstate`) on a host without SEV,
//! through `vsh` with virsh's sentences and libvirt's messages.

#[path = "common/vshrun.rs"]
mod vshrun;

use std::path::{Path, PathBuf};

use vshrun::Vsh;

fn vsh(dir: &tempfile::TempDir) -> Vsh {
    let mut v = Vsh::new(dir.path().join("r"));
    v.env.push(("VSH_EMULATOR_PATH".into(), "/usr/bin".into()));
    v
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// The host CPU's vendor, as the capabilities name it.
fn host_vendor(caps: &str) -> String {
    let cpu = &caps[caps.find("<cpu>").unwrap()..];
    let v = cpu.split_once("<vendor>").unwrap().1;
    v.split_once("</vendor>").unwrap().0.to_string()
}

#[test]
fn cpu_compare_with_the_host() {
    let dir = tempfile::tempdir().unwrap();
    let v = vsh(&dir);
    let d = dir.path();
    let help = v.ok(&["cpu-compare", "--help"]);
    assert!(
        help.contains("compare host CPU with a CPU described by an XML file"),
        "{help}"
    );

    // The host's own CPU, from the capabilities document: identical.
    let caps = v.ok(&["capabilities"]);
    let caps_file = write(d, "caps.xml", &caps);
    let caps_file = caps_file.to_str().unwrap();
    assert_eq!(
        v.ok(&["-q", "cpu-compare", caps_file]),
        format!("CPU described in {caps_file} is identical to host CPU\n")
    );
    // The oldest model: the host has more.
    let old = write(d, "old.xml", "<cpu match='exact'><model>486</model></cpu>");
    let old = old.to_str().unwrap();
    assert_eq!(
        v.ok(&["-q", "cpu-compare", old]),
        format!("Host CPU is a superset of CPU described in {old}\n")
    );
    let j: serde_json::Value =
        serde_json::from_str(&v.ok(&["cpu-compare", old, "--json"])).unwrap();
    assert_eq!(j["result"], "superset");
    // Another vendor's CPU: incompatible, exit status 1; with --error, libvirt's reason.
    let other = if host_vendor(&caps) == "AMD" {
        "Intel"
    } else {
        "AMD"
    };
    let foreign = write(
        d,
        "foreign.xml",
        &format!("<domain><cpu><model>486</model><vendor>{other}</vendor></cpu></domain>"),
    );
    let foreign = foreign.to_str().unwrap();
    let (ok, out, err) = v.run(&["-q", "cpu-compare", foreign]);
    assert!(!ok);
    assert_eq!(
        out,
        format!("CPU described in {foreign} is incompatible with host CPU\n")
    );
    assert_eq!(err, "");
    assert_eq!(
        v.fails(&["cpu-compare", foreign, "--error"]),
        format!(
            "error: Failed to compare host CPU with {foreign}\nerror: the CPU is incompatible with host CPU: host CPU vendor does not match required CPU vendor {other}\n"
        )
    );
    // libvirt's errors for what its CPU map lacks, and virsh's for a file without a CPU.
    let bad = write(
        d,
        "bad.xml",
        "<cpu><model>486</model><feature name='no-such'/></cpu>",
    );
    assert_eq!(
        v.fails(&["cpu-compare", bad.to_str().unwrap()]),
        format!(
            "error: Failed to compare host CPU with {}\nerror: internal error: Unknown CPU feature no-such\n",
            bad.display()
        )
    );
    let none = write(d, "none.xml", "<domain/>");
    assert_eq!(
        v.fails(&["cpu-compare", none.to_str().unwrap()]),
        format!(
            "error: File '{}' does not contain any <cpu> element or valid domain XML, host capabilities XML, or domain capabilities XML\n",
            none.display()
        )
    );
    assert_eq!(
        v.fails(&["cpu-compare", "/nonexistent.xml"]),
        "error: Failed to open file '/nonexistent.xml': No such file or directory\n"
    );
    assert_eq!(
        v.fails(&["cpu-compare"]),
        "error: command 'cpu-compare' requires <file> option\n"
    );

    // The hypervisor's host-model CPU, from domain capabilities: identical to itself.
    let dc = write(d, "domcaps.xml", &v.ok(&["domcapabilities"]));
    let dc = dc.to_str().unwrap();
    assert_eq!(
        v.ok(&["-q", "hypervisor-cpu-compare", dc]),
        format!(
            "CPU described in {dc} is identical to the CPU provided by hypervisor on the host\n"
        )
    );
    let fpu = write(
        d,
        "fpu.xml",
        "<cpu><feature policy='require' name='fpu'/></cpu>",
    );
    let fpu = fpu.to_str().unwrap();
    assert_eq!(
        v.ok(&["-q", "hypervisor-cpu-compare", fpu, "--virttype", "qemu"]),
        format!(
            "The CPU provided by hypervisor on the host is a superset of CPU described in {fpu}\n"
        )
    );
    let err = v.fails(&["hypervisor-cpu-compare", old, "--arch", "pdp11"]);
    assert_eq!(
        err,
        format!(
            "error: Failed to compare hypervisor CPU with {old}\nerror: invalid argument: unknown architecture: pdp11\n"
        )
    );
}

#[test]
fn baselines_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let v = vsh(&dir);
    let cpu = write(dir.path(), "c.xml", "<cpu><model>486</model></cpu>");
    let cpu = cpu.to_str().unwrap();
    assert!(v.ok(&["cpu-baseline", "--help"]).contains("--migratable"));
    assert_eq!(
        v.fails(&["cpu-baseline", cpu]),
        "error: this function is not supported by the connection driver: virConnectBaselineCPU\n"
    );
    assert_eq!(
        v.fails(&["hypervisor-cpu-baseline", "--model", "486"]),
        "error: this function is not supported by the connection driver: virConnectBaselineHypervisorCPU\n"
    );
    assert_eq!(
        v.fails(&["hypervisor-cpu-baseline"]),
        "error: Either --file or --model must be provided\n"
    );
    assert_eq!(
        v.fails(&["hypervisor-cpu-baseline", cpu, "--model", "486"]),
        "error: Options --file and --model are mutually exclusive\n"
    );
}

#[test]
fn sev_refusals_on_a_host_without_sev() {
    let sev_host = std::fs::read_to_string("/sys/module/kvm_amd/parameters/sev")
        .is_ok_and(|s| matches!(s.trim(), "1" | "Y"));
    let dir = tempfile::tempdir().unwrap();
    let v = vsh(&dir);
    let d = dir.path();
    assert!(
        v.ok(&["nodesevinfo", "--help"])
            .contains("node SEV information")
    );
    if !sev_host {
        assert_eq!(
            v.fails(&["nodesevinfo"]),
            "error: Unable to get host SEV information\nerror: Operation not supported: QEMU does not support SEV guest\n"
        );
    }
    let plain = "<domain type='qemu'><name>NAME</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>\
                 <os><type arch='x86_64' machine='pc'>hvm</type></os>\
                 <devices><memballoon model='none'/></devices>LS</domain>";
    let f = write(
        d,
        "p.xml",
        &plain.replace("NAME", "plain").replace("LS", ""),
    );
    v.ok(&["define", f.to_str().unwrap()]);
    let f = write(
        d,
        "s.xml",
        &plain.replace("NAME", "sev").replace(
            "LS",
            "<launchSecurity type='sev'><cbitpos>47</cbitpos><reducedPhysBits>1</reducedPhysBits><policy>0x0003</policy></launchSecurity>",
        ),
    );
    v.ok(&["define", f.to_str().unwrap()]);
    // No launch security: no parameters, as libvirt.
    assert_eq!(v.ok(&["-q", "domlaunchsecinfo", "plain"]), "");
    assert_eq!(v.ok(&["domlaunchsecinfo", "plain", "--json"]), "{}\n");
    assert_eq!(
        v.fails(&["domlaunchsecinfo", "sev"]),
        "error: Unable to get launch security parameters\nerror: Requested operation is not valid: domain is not running\n"
    );
    assert_eq!(
        v.fails(&["domlaunchsecinfo", "nosuch"]),
        "error: failed to get domain 'nosuch'\nerror: Domain not found: no domain with matching name 'nosuch'\n"
    );
    let hdr = write(d, "hdr", "aGVhZGVy");
    let hdr = hdr.to_str().unwrap();
    assert_eq!(
        v.fails(&["domsetlaunchsecstate", "plain", "--secrethdr", hdr]),
        "error: Both secret and the secret header are required\n"
    );
    assert_eq!(
        v.fails(&[
            "domsetlaunchsecstate",
            "plain",
            "--secrethdr",
            hdr,
            "--secret",
            "/nonexistent"
        ]),
        "error: Failed to open file '/nonexistent': No such file or directory\n"
    );
    assert_eq!(
        v.fails(&[
            "domsetlaunchsecstate",
            "plain",
            "--secrethdr",
            hdr,
            "--secret",
            hdr
        ]),
        "error: Unable to set launch security state\nerror: Operation not supported: setting a launch secret is only supported in SEV-enabled domains\n"
    );
    assert_eq!(
        v.fails(&[
            "domsetlaunchsecstate",
            "sev",
            "--secrethdr",
            hdr,
            "--secret",
            hdr
        ]),
        "error: Unable to set launch security state\nerror: Requested operation is not valid: domain is not running\n"
    );
    let err = v.fails(&[
        "-r",
        "domsetlaunchsecstate",
        "sev",
        "--secrethdr",
        hdr,
        "--secret",
        hdr,
    ]);
    assert!(err.contains("read only"), "{err}");
}
