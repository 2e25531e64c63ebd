//! Names the emulator does not offer: an unknown machine type or CPU model is an error that
//! names the value and lists what the emulator has, on one line; an emulator that does not
//! exist gets libvirt's message. A launch's RAM file is refused for memory the XML places.

mod common;

use domdriver::capabilities::qemu::{QemuCaps, probe_replies};
use domdriver::conformance::harness::run_case;

fn caps(file: &str, emulator: &str) -> QemuCaps {
    let path = common::testdata()
        .join("tests/qemucapabilitiesdata")
        .join(file);
    domdriver::runtime::block_on(probe_replies(&path, emulator)).expect("replay caps")
}

fn x86() -> QemuCaps {
    caps("caps_8.0.0.x86_64.replies", "/usr/bin/qemu-system-x86_64")
}

fn domain(virt: &str, machine: &str, cpu: &str) -> String {
    format!(
        "<domain type='{virt}'><name>t</name><memory>219136</memory><vcpu>1</vcpu>\
         <os><type arch='x86_64' machine='{machine}'>hvm</type></os>{cpu}\
         <devices><emulator>/usr/bin/qemu-system-x86_64</emulator></devices></domain>"
    )
}

/// The one-line error of building `xml`.
fn error(xml: &str, caps: &QemuCaps) -> String {
    let (ext, body) = run_case("t", "x86_64", xml, caps);
    assert_eq!(ext, "err", "{body}");
    assert_eq!(body.lines().count(), 1, "one line: {body}");
    body.trim_end().to_string()
}

#[test]
fn unknown_machine_lists_the_machines() {
    let caps = x86();
    let e = error(&domain("qemu", "pc-i440fx-0.0", ""), &caps);
    // libvirt's sentence first, as its tests and users know it.
    let libvirt = "unsupported configuration: Emulator '/usr/bin/qemu-system-x86_64' does not support machine type 'pc-i440fx-0.0'";
    assert!(e.starts_with(libvirt), "{e}");
    let list = e
        .strip_prefix(&format!("{libvirt}; supported machine types: "))
        .unwrap_or_else(|| panic!("{e}"));
    // The aliased machines first, then the newest; a long list cut.
    assert!(
        list.starts_with("pc-i440fx-8.0 (pc), pc-q35-8.0 (q35), "),
        "{list}"
    );
    assert!(list.contains(", pc-q35-7.2, "), "{list}");
    let total = caps.primary_machines().len();
    assert!(total > 12);
    assert!(
        list.ends_with(&format!(" and {} more", total - 12)),
        "{list}"
    );
    assert!(e.len() < 400, "{e}");
}

#[test]
fn unknown_cpu_model_lists_the_usable_models() {
    let caps = x86();
    let cpu = "<cpu mode='custom' match='exact'><model fallback='forbid'>Bogus-CPU</model></cpu>";
    let e = error(&domain("qemu", "pc", cpu), &caps);
    let head = "unsupported configuration: CPU model 'Bogus-CPU' is not known to emulator '/usr/bin/qemu-system-x86_64' for virt type 'qemu'; usable models: ";
    let list = e.strip_prefix(head).unwrap_or_else(|| panic!("{e}"));
    let usable = caps
        .usable_cpu_models(domdriver::capabilities::qemu::Accel::Tcg)
        .expect("TCG lists CPU models");
    assert!(list.starts_with(&usable[..3].join(", ")), "{list}");
    assert!(list.ends_with(" more"), "{list}");
    assert!(e.len() < 400, "{e}");

    // A model the emulator knows builds, whether or not TCG can run it as is.
    let known = "<cpu mode='custom' match='exact'><model fallback='forbid'>Haswell</model></cpu>";
    let (ext, body) = run_case("t", "x86_64", &domain("qemu", "pc", known), &caps);
    assert_eq!(ext, "args", "{body}");
    assert!(body.contains("-cpu Haswell"), "{body}");
    // A model name with option syntax in it never reaches -cpu.
    let sneaky = "<cpu mode='custom'><model>qemu64,vmx=on</model></cpu>";
    let e = error(&domain("qemu", "pc", sneaky), &caps);
    assert!(e.contains("CPU model 'qemu64,vmx=on' is not known"), "{e}");
}

#[test]
fn unknown_emulator_gets_libvirts_message() {
    let dir = tempfile::tempdir().unwrap();
    let uri = format!("qemu:///embed?root={}", dir.path().display());
    let conn = domdriver::Connect::open(Some(&uri)).expect("open embed");
    let xml = domain("qemu", "pc", "").replace(
        "/usr/bin/qemu-system-x86_64",
        "/nonexistent/qemu-system-x86_64",
    );
    let e = conn.domain_xml_to_native(&xml).unwrap_err().to_string();
    assert_eq!(
        e,
        "Cannot check QEMU binary /nonexistent/qemu-system-x86_64: No such file or directory"
    );
    // An emulator for another architecture than the domain's.
    let caps = caps("caps_7.0.0.aarch64.replies", "/usr/bin/qemu-system-aarch64");
    let e = error(&domain("qemu", "pc", ""), &caps);
    assert_eq!(
        e,
        "unsupported configuration: Emulator '/usr/bin/qemu-system-x86_64' does not support arch 'x86_64'"
    );
}

/// A virtio-serial port whose address names no virtio-serial controller cannot be placed
/// (prepare always adds the controller; a definition built without it must not panic).
#[test]
fn virtio_serial_port_without_its_controller() {
    let caps = x86();
    let xml = "<domain type='qemu'><name>t</name><memory>219136</memory>\
        <os><type arch='x86_64' machine='pc'>hvm</type></os><devices>\
        <channel type='pty'><target type='virtio' name='x.0'/>\
        <address type='virtio-serial' controller='3' bus='0' port='1'/></channel>\
        </devices></domain>";
    let mut def = domdriver::domain::parse(xml).expect("parse");
    domdriver::domain::prepare::assign_aliases(&mut def);
    let ctx = domdriver::conformance::harness::case_context("t", &def);
    let e = domdriver::xml2argv::build(&def, &caps, &ctx).unwrap_err();
    assert_eq!(
        e.to_string(),
        "internal error: no virtio-serial controller with index 3"
    );
}

fn with_memory_device(device: &str) -> String {
    format!(
        "<domain type='qemu'><name>t</name><maxMemory slots='16' unit='KiB'>1099511627776</maxMemory>\
         <memory unit='KiB'>1267712</memory><vcpu>2</vcpu>\
         <os><type arch='x86_64' machine='pc'>hvm</type></os>\
         <cpu><numa><cell id='0' cpus='0-1' memory='219136' unit='KiB'/></numa></cpu>\
         <devices>{device}</devices></domain>"
    )
}

/// A memory module model the builder has no device for is an error, never dropped.
#[test]
fn memory_module_model_not_built_is_refused() {
    let e = error(
        &with_memory_device(
            "<memory model='virtio-mem'><target><size unit='KiB'>1048576</size><node>0</node>\
             <block unit='KiB'>2048</block><requested unit='KiB'>524288</requested></target></memory>",
        ),
        &x86(),
    );
    assert_eq!(
        e,
        "unsupported configuration: memory device model 'virtio-mem' not supported yet"
    );
}

/// A DIMM base address that is not a number is named in the error.
#[test]
fn dimm_base_address_must_be_a_number() {
    let e = error(
        &with_memory_device(
            "<memory model='dimm'><target><size unit='KiB'>524288</size><node>0</node></target>\
             <address type='dimm' slot='0' base='0xzz'/></memory>",
        ),
        &x86(),
    );
    assert_eq!(e, "XML error: invalid DIMM base address '0xzz'");
}

/// A vDPA interface needs a descriptor the caller opened: without one (a real start, whose
/// process layer passes none yet) it is refused by name, never handed to QEMU by path; a
/// hotplug, which has no fd set, is refused too.
#[test]
fn vdpa_interface_needs_an_opened_device() {
    use domdriver::xml2argv::props::{Plug, net_props};
    let caps = x86();
    let xml = "<domain type='qemu'><name>t</name><memory>219136</memory>\
        <os><type arch='x86_64' machine='pc'>hvm</type></os><devices>\
        <emulator>/usr/bin/qemu-system-x86_64</emulator>\
        <interface type='vdpa'><source dev='/dev/vhost-vdpa-0'/><model type='virtio'/></interface>\
        </devices></domain>";
    let opts = domdriver::conformance::harness::prepare_options("t", "x86_64");
    let mut def = domdriver::domain::parse(xml)
        .and_then(|d| domdriver::domain::prepare(d, &caps, &opts))
        .expect("prepare");
    domdriver::domain::prepare::assign_aliases(&mut def);
    let mut ctx = domdriver::conformance::harness::case_context("t", &def);
    let cmd = domdriver::xml2argv::build(&def, &caps, &ctx).expect("harness fd builds");
    let args = cmd.args.join(" ");
    assert!(
        args.contains("-add-fd set=0,fd=1732,opaque=net0-vdpa"),
        "{args}"
    );
    assert!(args.contains("\"vhostdev\":\"/dev/fdset/0\""), "{args}");
    assert_eq!(
        net_props(&def, &caps, &ctx, 0, Plug::Hot)
            .unwrap_err()
            .to_string(),
        "unsupported configuration: hotplug of a vdpa interface is not supported yet"
    );
    ctx.vdpa_fds = None;
    assert_eq!(
        domdriver::xml2argv::build(&def, &caps, &ctx)
            .unwrap_err()
            .to_string(),
        "internal error: no descriptor was opened for vdpa device '/dev/vhost-vdpa-0'"
    );
    // A start's numbering: the Nth vDPA interface's device at base + N.
    ctx.vdpa_fds = Some(domdriver::xml2argv::VdpaFds::From(84));
    let args = domdriver::xml2argv::build(&def, &caps, &ctx)
        .unwrap()
        .args
        .join(" ");
    assert!(
        args.contains("-add-fd set=0,fd=84,opaque=net0-vdpa"),
        "{args}"
    );
}

/// A launch's RAM file (`LaunchContext::ram_file`, fleet templates and their clones) backs
/// the machine's RAM under the machine's own RAM id, shared or private as asked; a guest
/// whose memory the XML places itself (NUMA cells, a memoryBacking source) is refused rather
/// than placed twice.
#[test]
fn ram_file_backs_plain_memory_only() {
    let caps = x86();
    let build = |xml: &str, shared: bool| {
        let opts = domdriver::conformance::harness::prepare_options("t", "x86_64");
        let mut def = domdriver::domain::parse(xml)
            .and_then(|d| domdriver::domain::prepare(d, &caps, &opts))
            .expect("prepare");
        domdriver::domain::prepare::assign_aliases(&mut def);
        let mut ctx = domdriver::conformance::harness::case_context("t", &def);
        ctx.ram_file = Some(domdriver::xml2argv::RamFile {
            path: "/tmp/tmpl/ram".into(),
            shared,
        });
        domdriver::xml2argv::build(&def, &caps, &ctx).map(|c| c.args.join(" "))
    };
    let plain = domain("qemu", "pc", "");
    for shared in [true, false] {
        let args = build(&plain, shared).expect("plain memory builds");
        assert!(
            args.contains(&format!(
                "-object {{\"qom-type\":\"memory-backend-file\",\"id\":\"pc.ram\",\
                 \"mem-path\":\"/tmp/tmpl/ram\",\"share\":{shared},\
                 \"x-use-canonical-path-for-ramblock-id\":false,\"size\":224395264}}"
            )),
            "{args}"
        );
        assert!(args.contains("memory-backend=pc.ram"), "{args}");
        assert_eq!(args.matches("qom-type\":\"memory-backend").count(), 1);
    }
    let refused = "unsupported configuration: guest RAM in a file needs plain memory (no NUMA \
         cells, hugepages, memory source or access mode) on a machine with a RAM backend";
    let memfd = plain.replace(
        "<vcpu>",
        "<memoryBacking><source type='memfd'/><access mode='shared'/></memoryBacking><vcpu>",
    );
    assert_eq!(build(&memfd, true).unwrap_err().to_string(), refused);
    let numa = domain(
        "qemu",
        "pc",
        "<cpu><numa><cell id='0' cpus='0' memory='219136' unit='KiB'/></numa></cpu>",
    );
    assert_eq!(build(&numa, false).unwrap_err().to_string(), refused);
}
