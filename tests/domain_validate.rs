//! Refusals with libvirt's messages, at parse/define time: closed vocabularies, numbers and
//! required attributes (libvirt's parser), the checks against the emulator's capabilities
//! (qemuValidateDomainDef), and a few through `vsh define` as a user meets them.

mod common;

use std::process::Command;

use domdriver::capabilities::qemu::{QemuCaps, probe_replies};
use domdriver::domain::validate::validate_with_caps;

fn x86() -> QemuCaps {
    let path = common::testdata().join("tests/qemucapabilitiesdata/caps_8.0.0.x86_64.replies");
    domdriver::runtime::block_on(probe_replies(&path, "/usr/bin/qemu-system-x86_64"))
        .expect("replay caps")
}

/// A small valid domain with `inner` added inside `<domain>` (after `<os>`) and `devices`
/// inside `<devices>`.
fn dom(virt: &str, os: &str, inner: &str, devices: &str) -> String {
    format!(
        "<domain type='{virt}'><name>t</name><memory>219136</memory><vcpu>2</vcpu>\
         <os>{os}</os>{inner}<devices>{devices}</devices></domain>"
    )
}

fn hvm(machine: &str) -> String {
    format!("<type arch='x86_64' machine='{machine}'>hvm</type>")
}

/// The error parsing `xml` gives.
fn parse_err(xml: &str) -> String {
    domdriver::domain::parse(xml)
        .expect_err("parse must refuse")
        .to_string()
}

fn prop_err(attr: &str, elem: &str, val: &str) -> String {
    format!("XML error: Invalid value for attribute '{attr}' in element '{elem}': '{val}'.")
}

#[test]
fn domain_and_os_vocabulary() {
    let e = parse_err(&dom("bogus", &hvm("pc"), "", ""));
    assert_eq!(e, "unsupported configuration: invalid domain type bogus");
    let e = parse_err(&dom("kvm", "<boot dev='hd'/>", "", ""));
    assert_eq!(e, "XML error: an os <type> must be specified");
    let e = parse_err(&dom("kvm", "<type>hvx</type>", "", ""));
    assert_eq!(e, "unsupported configuration: unknown OS type 'hvx'");
    let e = parse_err(&dom("kvm", "<type arch='x86_65'>hvm</type>", "", ""));
    assert_eq!(e, "unsupported configuration: Unknown architecture x86_65");
    let e = parse_err(&dom(
        "kvm",
        &format!("{}<boot dev='disk'/>", hvm("pc")),
        "",
        "",
    ));
    assert_eq!(e, prop_err("dev", "boot", "disk"));
    let e = parse_err(&dom("kvm", &format!("{}<boot/>", hvm("pc")), "", ""));
    assert_eq!(
        e,
        "XML error: Missing required attribute 'dev' in element 'boot'"
    );
    let e = parse_err(&dom("kvm", &hvm("pc"), "<on_crash>explode</on_crash>", ""));
    assert_eq!(
        e,
        "unsupported configuration: unknown on_crash action: explode"
    );
}

#[test]
fn rename_restart_is_a_xen_action() {
    for el in ["on_poweroff", "on_reboot", "on_crash"] {
        let e = parse_err(&dom(
            "kvm",
            &hvm("pc"),
            &format!("<{el}>rename-restart</{el}>"),
            "",
        ));
        assert_eq!(
            e,
            "unsupported configuration: qemu driver doesn't support the 'rename-restart' action \
             for 'on_reboot'/'on_poweroff'/'on_crash'"
        );
    }
}

#[test]
fn preserve_after_poweroff_or_reboot_and_restart_on_poweroff_with_destroy_on_reboot() {
    for el in ["on_poweroff", "on_reboot"] {
        let e = parse_err(&dom(
            "kvm",
            &hvm("pc"),
            &format!("<{el}>preserve</{el}>"),
            "",
        ));
        assert_eq!(
            e,
            "unsupported configuration: qemu driver doesn't support the 'preserve' action for \
             'on_reboot'/'on_poweroff'"
        );
    }
    // A crash may be preserved.
    let ok = dom("kvm", &hvm("pc"), "<on_crash>preserve</on_crash>", "");
    domdriver::domain::parse(&ok).unwrap();
    let e = parse_err(&dom(
        "kvm",
        &hvm("pc"),
        "<on_poweroff>restart</on_poweroff><on_reboot>destroy</on_reboot>",
        "",
    ));
    assert_eq!(
        e,
        "unsupported configuration: qemu driver doesn't support 'onReboot' set to 'destroy and \
         'onPoweroff' set to 'reboot'"
    );
}

#[test]
fn os_type_is_checked_before_memory() {
    // libvirt reads the domain type and OS before anything else.
    let xml = "<domain type='kvm'><name>t</name><os><boot dev='hd'/></os></domain>";
    assert_eq!(parse_err(xml), "XML error: an os <type> must be specified");
}

#[test]
fn cpu_vocabulary_and_numbers() {
    let os = hvm("pc");
    let cpu = |c: &str| parse_err(&dom("kvm", &os, c, ""));
    assert_eq!(
        cpu("<cpu mode='host-pass'/>"),
        "unsupported configuration: Invalid mode attribute 'host-pass'"
    );
    assert_eq!(
        cpu("<cpu match='loose'><model>qemu64</model></cpu>"),
        prop_err("match", "cpu", "loose")
    );
    assert_eq!(cpu("<cpu check='some'/>"), prop_err("check", "cpu", "some"));
    assert_eq!(
        cpu("<cpu><model fallback='maybe'>qemu64</model></cpu>"),
        "unsupported configuration: Invalid fallback attribute"
    );
    assert_eq!(
        cpu("<cpu><model>qemu64</model><feature name='vmx' policy='required'/></cpu>"),
        "unsupported configuration: Invalid CPU feature policy"
    );
    assert_eq!(
        cpu("<cpu><model>qemu64</model><feature policy='require'/></cpu>"),
        "XML error: Invalid CPU feature name"
    );
    assert_eq!(
        cpu("<cpu><model>qemu64</model><feature name='a'/><feature name='a'/></cpu>"),
        "XML error: CPU feature 'a' specified more than once"
    );
    assert_eq!(
        cpu("<cpu><topology sockets='0' cores='1' threads='1'/></cpu>"),
        "XML error: Invalid value for attribute 'sockets' in element 'topology': Zero is not permitted"
    );
    assert_eq!(
        cpu("<cpu><topology sockets='x' cores='1' threads='1'/></cpu>"),
        "XML error: Invalid value for attribute 'sockets' in element 'topology': 'x'. Expected non-negative integer value"
    );
    assert_eq!(
        cpu("<cpu><topology sockets='1' threads='1'/></cpu>"),
        "XML error: Missing required attribute 'cores' in element 'topology'"
    );
}

#[test]
fn features_hyperv_kvm_and_timers() {
    let os = hvm("pc");
    let inner = |i: &str| parse_err(&dom("kvm", &os, i, ""));
    assert_eq!(
        inner("<features><warp/></features>"),
        "unsupported configuration: unexpected feature 'warp'"
    );
    assert_eq!(
        inner("<features><hyperv><xmm_input state='on'/></hyperv></features>"),
        "unsupported configuration: unsupported HyperV Enlightenment feature: xmm_input"
    );
    assert_eq!(
        inner("<features><hyperv><relaxed state='yes'/></hyperv></features>"),
        prop_err("state", "relaxed", "yes")
    );
    assert_eq!(
        inner("<features><hyperv><spinlocks state='on' retries='100'/></hyperv></features>"),
        "XML error: HyperV spinlock retry count must be at least 4095"
    );
    assert_eq!(
        inner("<features><kvm><fast state='on'/></kvm></features>"),
        "unsupported configuration: unsupported KVM feature: fast"
    );
    assert_eq!(
        inner("<features><pmu state='maybe'/></features>"),
        prop_err("state", "pmu", "maybe")
    );
    assert_eq!(
        inner("<clock offset='utc'><timer name='t2'/></clock>"),
        prop_err("name", "timer", "t2")
    );
    assert_eq!(
        inner("<clock offset='utc'><timer name='rtc' tickpolicy='none'/></clock>"),
        prop_err("tickpolicy", "timer", "none")
    );
    assert_eq!(
        inner("<clock offset='utc'><timer name='rtc' present='on'/></clock>"),
        prop_err("present", "timer", "on")
    );
    assert_eq!(
        inner("<clock offset='gmt'/>"),
        "unsupported configuration: unknown clock offset 'gmt'"
    );
}

#[test]
fn memnode_needs_numa_cells() {
    let inner = "<numatune><memnode cellid='0' mode='strict' nodeset='0'/></numatune>";
    assert_eq!(
        parse_err(&dom("kvm", &hvm("pc"), inner, "")),
        "XML error: Element 'memnode' is invalid without any guest NUMA cells"
    );
}

#[test]
fn device_vocabularies() {
    let os = hvm("pc");
    let dev = |d: &str| parse_err(&dom("kvm", &os, "", d));
    let disk = |attrs: &str, inner: &str| {
        dev(&format!(
            "<disk type='file' {attrs}><source file='/tmp/a'/>{inner}</disk>"
        ))
    };
    assert_eq!(
        disk("device='tape'", "<target dev='vda'/>"),
        prop_err("device", "disk", "tape")
    );
    assert_eq!(
        disk("", "<target dev='vda' bus='nvme'/>"),
        prop_err("bus", "target", "nvme")
    );
    assert_eq!(
        disk("", "<target dev='vda' bus='none'/>"),
        prop_err("bus", "target", "none")
    );
    assert_eq!(
        disk("", "<driver cache='fast'/><target dev='vda'/>"),
        prop_err("cache", "driver", "fast")
    );
    assert_eq!(
        disk("", "<driver io='default'/><target dev='vda'/>"),
        prop_err("io", "driver", "default")
    );
    assert_eq!(
        disk("", "<driver discard='trim'/><target dev='vda'/>"),
        prop_err("discard", "driver", "trim")
    );
    assert_eq!(
        dev("<controller type='scsi' model='megasas'/>"),
        "unsupported configuration: Unknown model type 'megasas'"
    );
    assert_eq!(
        dev("<controller type='nvme'/>"),
        prop_err("type", "controller", "nvme")
    );
    assert_eq!(
        dev("<interface type='wifi'/>"),
        prop_err("type", "interface", "wifi")
    );
    assert_eq!(
        dev("<interface type='user'><model type='e1000 x'/></interface>"),
        "invalid argument: Model name contains invalid characters"
    );
    assert_eq!(
        dev("<graphics type='x11'/>"),
        prop_err("type", "graphics", "x11")
    );
    assert_eq!(
        dev("<graphics type='vnc' port='59x'/>"),
        "internal error: cannot parse vnc port 59x"
    );
    assert_eq!(
        dev("<video><model type='matrox'/></video>"),
        prop_err("type", "model", "matrox")
    );
    assert_eq!(
        dev("<input type='joystick'/>"),
        "unsupported configuration: unknown input device type 'joystick'"
    );
    assert_eq!(
        dev("<input type='mouse' bus='serial'/>"),
        "unsupported configuration: unknown input bus type 'serial'"
    );
    assert_eq!(
        dev("<memballoon model='balloon'/>"),
        prop_err("model", "memballoon", "balloon")
    );
    assert_eq!(
        dev("<memballoon/>"),
        "XML error: Missing required attribute 'model' in element 'memballoon'"
    );
    assert_eq!(
        dev("<serial type='socket'/>"),
        "unsupported configuration: unknown type presented to host for character device: socket"
    );
    assert_eq!(
        dev("<serial type='pty'><target type='isa'/></serial>"),
        "unsupported configuration: unknown target type 'isa' specified for character device"
    );
    assert_eq!(
        dev("<sound model='sb32'/>"),
        prop_err("model", "sound", "sb32")
    );
    assert_eq!(
        dev("<watchdog model='itco'/>"),
        prop_err("model", "watchdog", "itco")
    );
    assert_eq!(
        dev("<panic model='pvpanic'/>"),
        "unsupported configuration: unknown panic model 'pvpanic'"
    );
}

#[test]
fn hugepages_on_missing_numa_node() {
    let inner = "<memoryBacking><hugepages><page size='2048' unit='KiB' nodeset='1'/></hugepages></memoryBacking>";
    assert_eq!(
        parse_err(&dom("kvm", &hvm("pc"), inner, "")),
        "hugepages: node 1 not found"
    );
}

/// The error defining `xml` gives: the parse checks, then those against the emulator.
fn caps_err(xml: &str, caps: &QemuCaps) -> String {
    match domdriver::domain::parse(xml) {
        Ok(def) => validate_with_caps(&def, caps)
            .expect_err("caps validation must refuse")
            .to_string(),
        Err(e) => e.to_string(),
    }
}

#[test]
fn checks_against_the_emulator() {
    let caps = x86();
    let em = "<emulator>/usr/bin/qemu-system-x86_64</emulator>";
    for virt in ["xen", "vmware", "hvf"] {
        assert_eq!(
            caps_err(&dom(virt, &hvm("pc"), "", em), &caps),
            format!(
                "unsupported configuration: Emulator '/usr/bin/qemu-system-x86_64' does not support virt type '{virt}'"
            )
        );
    }
    assert_eq!(
        caps_err(&dom("qemu", &hvm("pc-1.0"), "", em), &caps),
        "unsupported configuration: Emulator '/usr/bin/qemu-system-x86_64' does not support machine type 'pc-1.0'"
    );
    assert_eq!(
        caps_err(
            &dom("qemu", "<type arch='aarch64'>hvm</type>", "", em),
            &caps
        ),
        "unsupported configuration: Emulator '/usr/bin/qemu-system-x86_64' does not support arch 'aarch64'"
    );
    let vcpus = |n: &str, cpu: &str| {
        format!(
            "<domain type='qemu'><name>t</name><memory>219136</memory><vcpu>{n}</vcpu>\
             <os>{}</os>{cpu}<devices>{em}</devices></domain>",
            hvm("pc")
        )
    };
    assert_eq!(
        caps_err(&vcpus("0", ""), &caps),
        "unsupported configuration: Domain requires at least 1 vCPU"
    );
    assert!(caps_err(&vcpus("4096", ""), &caps).starts_with(
        "unsupported configuration: Maximum CPUs greater than specified machine type limit "
    ));
    assert_eq!(
        caps_err(
            &vcpus(
                "4",
                "<cpu><topology sockets='1' cores='2' threads='1'/></cpu>"
            ),
            &caps
        ),
        "unsupported configuration: CPU topology doesn't match maximum vcpu count"
    );
    // UEFI on x86 needs ACPI.
    let efi = "<type arch='x86_64' machine='q35'>hvm</type><loader type='pflash'>/x</loader>";
    assert_eq!(
        caps_err(&dom("qemu", efi, "", em), &caps),
        "unsupported configuration: UEFI requires ACPI on this architecture"
    );
}

#[test]
fn ide_needs_a_machine_with_ide() {
    let caps = x86();
    let disk = "<emulator>/usr/bin/qemu-system-x86_64</emulator>\
                <disk type='file' device='cdrom'><source file='/tmp/a.iso'/><target dev='hda' bus='ide'/></disk>";
    assert_eq!(
        caps_err(&dom("qemu", &hvm("q35"), "", disk), &caps),
        "unsupported configuration: IDE controllers are unsupported for this QEMU binary or machine type"
    );
    let second =
        "<emulator>/usr/bin/qemu-system-x86_64</emulator><controller type='ide' index='1'/>";
    assert_eq!(
        caps_err(&dom("qemu", &hvm("pc"), "", second), &caps),
        "unsupported configuration: Only a single IDE controller is supported for this machine type"
    );
    let def = domdriver::domain::parse(&dom("qemu", &hvm("pc"), "", disk)).unwrap();
    validate_with_caps(&def, &caps).expect("i440fx has IDE");
}

#[test]
fn memory_hotplug_needs_numa_and_slots() {
    let caps = x86();
    let mem = "<memory model='dimm'><target><size unit='KiB'>131072</size><node>0</node></target></memory>";
    let xml = |slots: u32, numa: &str, devs: usize| {
        format!(
            "<domain type='qemu'><name>t</name><maxMemory slots='{slots}' unit='KiB'>1048576</maxMemory>\
             <memory unit='KiB'>219136</memory><vcpu>1</vcpu><os>{}</os>{numa}\
             <devices><emulator>/usr/bin/qemu-system-x86_64</emulator>{}</devices></domain>",
            hvm("pc"),
            mem.repeat(devs)
        )
    };
    assert_eq!(
        caps_err(&xml(2, "", 0), &caps),
        "unsupported configuration: At least one numa node has to be configured when enabling memory hotplug"
    );
    let numa = "<cpu><numa><cell id='0' cpus='0' memory='219136' unit='KiB'/></numa></cpu>";
    assert_eq!(
        caps_err(&xml(1, numa, 2), &caps),
        "unsupported configuration: memory device count '2' exceeds slots count '1'"
    );
}

/// Run `vsh define FILE` on a fresh embedded root; (exit ok, stderr).
fn vsh_define(xml: &str) -> (bool, String) {
    let root = tempfile::Builder::new()
        .prefix("dval")
        .tempdir_in("/tmp")
        .unwrap();
    let file = root.path().join("d.xml");
    std::fs::write(&file, xml).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_vsh"))
        .env_remove("VSH_DEFAULT_URI")
        .arg("-c")
        .arg(format!("qemu:///embed?root={}", root.path().display()))
        .arg("define")
        .arg(&file)
        .output()
        .expect("vsh runs");
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn vsh_define_refuses_with_libvirts_message() {
    let em = "<emulator>/usr/bin/qemu-system-x86_64</emulator>";
    let cases = [
        (
            dom("kvm", &format!("{}<boot dev='disk'/>", hvm("pc")), "", em),
            "XML error: Invalid value for attribute 'dev' in element 'boot': 'disk'.",
        ),
        (
            dom(
                "kvm",
                &hvm("pc"),
                "<features><hyperv><xmm_input state='on'/></hyperv></features>",
                em,
            ),
            "unsupported configuration: unsupported HyperV Enlightenment feature: xmm_input",
        ),
        (
            dom(
                "kvm",
                &hvm("pc"),
                "<cpu><model>qemu64</model><feature name='x' policy='required'/></cpu>",
                em,
            ),
            "unsupported configuration: Invalid CPU feature policy",
        ),
        (
            dom("xen", &hvm("pc"), "", em),
            "unsupported configuration: Emulator '/usr/bin/qemu-system-x86_64' does not support virt type 'xen'",
        ),
        (
            dom(
                "qemu",
                &hvm("pc"),
                "<cpu><topology sockets='1' cores='4' threads='1'/></cpu>",
                em,
            ),
            "unsupported configuration: CPU topology doesn't match maximum vcpu count",
        ),
    ];
    for (xml, msg) in cases {
        let (ok, err) = vsh_define(&xml);
        assert!(!ok, "{xml}");
        assert!(err.contains(msg), "{err}\nwanted: {msg}");
    }
    // A valid domain still defines.
    let (ok, err) = vsh_define(&dom("qemu", &hvm("pc"), "", em));
    assert!(ok, "{err}");
}

#[test]
fn tpm_version_must_be_one_swtpm_offers() {
    use domdriver::domain::validate::validate_tpm_versions;
    let tpm = |model: &str, version: &str| {
        domdriver::domain::parse(&dom(
            "qemu",
            &hvm("pc"),
            "",
            &format!("<tpm model='{model}'><backend type='emulator' {version}/></tpm>"),
        ))
        .unwrap()
    };
    let none: Vec<String> = vec![];
    let both = vec!["1.2".to_string(), "2.0".to_string()];
    let e = validate_tpm_versions(&tpm("tpm-tis", "version='1.2'"), &none).unwrap_err();
    assert_eq!(
        e.to_string(),
        "unsupported configuration: TPM version '1.2' is not supported"
    );
    let e = validate_tpm_versions(&tpm("tpm-crb", ""), &none).unwrap_err();
    assert_eq!(
        e.to_string(),
        "unsupported configuration: TPM version '2.0' is not supported"
    );
    let e = validate_tpm_versions(&tpm("tpm-crb", "version='1.2'"), &both).unwrap_err();
    assert_eq!(
        e.to_string(),
        "unsupported configuration: TPM 1.2 is not supported for model 'tpm-crb'"
    );
    validate_tpm_versions(&tpm("tpm-tis", "version='2.0'"), &both).expect("swtpm runs 2.0");
}

#[test]
fn loader_without_path_needs_autoselection() {
    let os = format!("{}<loader type='rom'/>", hvm("pc"));
    assert_eq!(
        parse_err(&dom("kvm", &os, "", "")),
        "no loader path specified and firmware auto selection disabled"
    );
}

fn aarch64(version: &str) -> QemuCaps {
    let path = common::testdata().join(format!(
        "tests/qemucapabilitiesdata/caps_{version}.aarch64.replies"
    ));
    domdriver::runtime::block_on(probe_replies(&path, "/usr/bin/qemu-system-aarch64"))
        .expect("replay caps")
}

#[test]
fn armvtimer_needs_kvm_on_arm_virt_and_the_emulator_property() {
    let arm = "<type arch='aarch64' machine='virt'>hvm</type>";
    let timer =
        |attrs: &str| format!("<clock offset='utc'><timer name='armvtimer'{attrs}/></clock>");
    assert_eq!(
        parse_err(&dom("qemu", arm, &timer(""), "")),
        "unsupported configuration: Configuring the 'armvtimer' timer is not supported for \
         virtType=qemu arch=aarch64 machine=virt guests"
    );
    assert_eq!(
        parse_err(&dom("kvm", &hvm("pc"), &timer(""), "")),
        "unsupported configuration: Configuring the 'armvtimer' timer is not supported for \
         virtType=kvm arch=x86_64 machine=pc guests"
    );
    assert_eq!(
        parse_err(&dom("kvm", arm, &timer(" present='no'"), "")),
        "unsupported configuration: The 'armvtimer' timer can't be disabled"
    );
    assert_eq!(
        parse_err(&dom("kvm", arm, &timer(" tickpolicy='catchup'"), "")),
        "unsupported configuration: The 'armvtimer' timer does not support tickpolicy 'catchup'"
    );
    let em = "<emulator>/usr/bin/qemu-system-aarch64</emulator>";
    let ok = dom("kvm", arm, &timer(" tickpolicy='discard'"), em);
    let def = domdriver::domain::parse(&ok).expect("kvm on virt with discard parses");
    validate_with_caps(&def, &aarch64("7.0.0")).expect("QEMU 7.0 has kvm-no-adjvtime");
    assert_eq!(
        caps_err(&ok, &aarch64("4.2.0")),
        "unsupported configuration: Configuring the 'armvtimer' timer is not supported with \
         this QEMU binary"
    );
}

#[test]
fn vdpa_interface_needs_virtio_and_the_emulators_netdev() {
    let em = "<emulator>/usr/bin/qemu-system-x86_64</emulator>";
    let nic = |model: &str| {
        format!("{em}<interface type='vdpa'><source dev='/dev/vhost-vdpa-0'/>{model}</interface>")
    };
    let e1000 = dom("qemu", &hvm("pc"), "", &nic("<model type='e1000'/>"));
    assert_eq!(
        caps_err(&e1000, &x86()),
        "unsupported configuration: invalid model for interface of type 'vdpa': 'e1000' - must be 'virtio'"
    );
    let virtio = dom("qemu", &hvm("pc"), "", &nic("<model type='virtio'/>"));
    let def = domdriver::domain::parse(&virtio).expect("parse");
    validate_with_caps(&def, &x86()).expect("QEMU 8.0 has vhost-vdpa");
    let old = common::testdata().join("tests/qemucapabilitiesdata/caps_5.0.0.x86_64.replies");
    let old = domdriver::runtime::block_on(probe_replies(&old, "/usr/bin/qemu-system-x86_64"))
        .expect("replay caps");
    assert_eq!(
        caps_err(&virtio, &old),
        "unsupported configuration: vDPA devices are not supported with this QEMU binary"
    );
}
