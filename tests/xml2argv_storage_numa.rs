//! Rules ported for the corpus (issue 12), each checked on inputs of our own: unindexed PCI
//! controllers on q35, egl-headless defaults, the HMAT's command line and its refusals, NVMe
//! and sliced disks, and what a real (not pretend) start refuses.

mod common;

use domdriver::capabilities::qemu::{QemuCaps, probe_replies};
use domdriver::conformance::harness::{harness_context, prepare_options, run_case};
use domdriver::domain::prepare::assign_aliases;
use domdriver::xml2argv::build;
use domdriver::xml2argv::props::{Plug, disk_props};

fn x86() -> QemuCaps {
    let path = common::testdata()
        .join("tests/qemucapabilitiesdata")
        .join("caps_8.0.0.x86_64.replies");
    domdriver::runtime::block_on(probe_replies(&path, "/usr/bin/qemu-system-x86_64"))
        .expect("replay caps")
}

fn domain(machine: &str, cpu: &str, devices: &str) -> String {
    format!(
        "<domain type='qemu'><name>t</name><uuid>c7a5fdbd-edaf-9455-926a-d65c16db1809</uuid>\
         <memory>2097152</memory><vcpu>4</vcpu>\
         <os><type arch='x86_64' machine='{machine}'>hvm</type></os>{cpu}\
         <devices><emulator>/usr/bin/qemu-system-x86_64</emulator>{devices}\
         <memballoon model='none'/></devices></domain>"
    )
}

/// The harness's command line (or one-line error) for `xml`.
fn run(xml: &str, caps: &QemuCaps) -> (&'static str, String) {
    run_case("t", "x86_64", xml, caps)
}

fn error(xml: &str, caps: &QemuCaps) -> String {
    let (ext, body) = run(xml, caps);
    assert_eq!(ext, "err", "{body}");
    body.trim_end().to_string()
}

fn args(xml: &str, caps: &QemuCaps) -> String {
    let (ext, body) = run(xml, caps);
    assert_eq!(ext, "args", "{body}");
    body
}

/// Build `xml` as a real start would (not libvirt's pretend one).
fn real_start(xml: &str, caps: &QemuCaps) -> Result<Vec<String>, String> {
    let def = domdriver::domain::parse(xml).map_err(|e| e.to_string())?;
    let mut def = domdriver::domain::prepare(def, caps, &prepare_options("t", "x86_64"))
        .map_err(|e| e.to_string())?;
    assign_aliases(&mut def);
    let mut ctx = harness_context(&def);
    ctx.pretend = false;
    build(&def, caps, &ctx)
        .map(|c| c.argv())
        .map_err(|e| e.to_string())
}

#[test]
fn a_lone_unindexed_root_port_on_q35_takes_index_0_and_is_refused() {
    let caps = x86();
    let e = error(
        &domain("q35", "", "<controller type='pci' model='pcie-root-port'/>"),
        &caps,
    );
    assert_eq!(
        e,
        "XML error: The PCI controller with index='0' must be model='pcie-root' for this machine type, but model='pcie-root-port' was found instead"
    );
    // The same on i440fx with its own root model.
    let e = error(
        &domain("pc", "", "<controller type='pci' model='pci-bridge'/>"),
        &caps,
    );
    assert!(e.contains("must be model='pci-root'"), "{e}");
}

#[test]
fn unindexed_root_ports_take_the_lowest_free_indexes() {
    let caps = x86();
    let body = args(
        &domain(
            "q35",
            "",
            "<controller type='pci' index='0' model='pcie-root'/>\
             <controller type='pci' index='2' model='pcie-root-port'/>\
             <controller type='pci' model='pcie-root-port'/>\
             <controller type='pci' model='pcie-root-port'/>",
        ),
        &caps,
    );
    // Index 1 is the free one below 2, then 3 after it.
    for id in ["\"id\":\"pci.1\"", "\"id\":\"pci.2\"", "\"id\":\"pci.3\""] {
        assert!(body.contains(id), "{id} in {body}");
    }
    assert!(!body.contains("\"id\":\"pci.4\""), "{body}");
}

#[test]
fn egl_headless_alone_gets_a_video_device_and_no_audio() {
    let caps = x86();
    let body = args(&domain("pc", "", "<graphics type='egl-headless'/>"), &caps);
    assert!(
        body.contains("-display egl-headless,rendernode=/dev/dri/foo"),
        "{body}"
    );
    assert!(body.contains("\"driver\":\"cirrus-vga\""), "{body}");
    assert!(!body.contains("-audiodev"), "{body}");
    // With VNC beside it, VNC decides: no host audio, so the 'none' backend.
    let body = args(
        &domain(
            "pc",
            "",
            "<graphics type='vnc'/><graphics type='egl-headless'/>",
        ),
        &caps,
    );
    assert!(
        body.contains("-audiodev '{\"id\":\"audio1\",\"driver\":\"none\"}'"),
        "{body}"
    );
}

const HMAT_CELLS: &str = "<cpu><numa>\
    <cell id='0' cpus='0-1' memory='1048576'>\
      <cache level='1' associativity='full' policy='writethrough'>\
        <size value='2' unit='MiB'/><line value='64' unit='B'/></cache></cell>\
    <cell id='1' cpus='2-3' memory='524288'/>\
    <cell id='2' memory='524288'/>\
    <interconnects>\
      <latency initiator='1' target='2' type='read' value='7'/>\
      <bandwidth initiator='0' target='2' cache='1' type='write' value='1' unit='MiB'/>\
    </interconnects></numa></cpu>";

#[test]
fn hmat_gives_initiators_latencies_and_caches() {
    let caps = x86();
    let body = args(&domain("pc", HMAT_CELLS, ""), &caps);
    assert!(body.contains("dump-guest-core=off,hmat=on"), "{body}");
    assert!(
        body.contains("node,nodeid=0,cpus=0-1,initiator=0,memdev=ram-node0"),
        "{body}"
    );
    assert!(
        body.contains("node,nodeid=1,cpus=2-3,initiator=1,memdev=ram-node1"),
        "{body}"
    );
    // The CPU-less cell is initiated by the one with the lowest latency to it.
    assert!(
        body.contains("node,nodeid=2,initiator=1,memdev=ram-node2"),
        "{body}"
    );
    let lb = body
        .find("hmat-lb,initiator=1,target=2,hierarchy=memory,data-type=read-latency,latency=7")
        .expect("latency");
    let bw = body
        .find("hmat-lb,initiator=0,target=2,hierarchy=first-level,data-type=write-bandwidth,bandwidth=1024K")
        .expect("bandwidth");
    let cache = body
        .find("hmat-cache,node-id=0,size=2048K,level=1,associativity=complex,policy=write-through,line=64")
        .expect("cache");
    // QEMU takes the caches only after every hmat-lb.
    assert!(lb < bw && bw < cache, "{body}");
}

#[test]
fn numa_cells_without_cpus_give_cell_0_every_vcpu() {
    let caps = x86();
    let body = args(
        &domain(
            "pc",
            "<cpu><numa><cell id='0' memory='1048576'/><cell id='1' memory='1048576'/></numa></cpu>",
            "",
        ),
        &caps,
    );
    // libvirt fills the vCPUs no cell names into node 0 (qemuDomainDefNumaCPUsRectify).
    assert!(
        body.contains("-numa node,nodeid=0,cpus=0-3,memdev=ram-node0"),
        "{body}"
    );
    assert!(
        body.contains("-numa node,nodeid=1,memdev=ram-node1"),
        "{body}"
    );
}

#[test]
fn bad_hmat_values_are_refused_at_define() {
    let caps = x86();
    let e = error(
        &domain(
            "pc",
            "<cpu><numa><cell id='0' cpus='0-3' memory='1048576'/><interconnects>\
             <latency initiator='0' target='0' type='sideways' value='5'/></interconnects>\
             </numa></cpu>",
            "",
        ),
        &caps,
    );
    assert_eq!(
        e,
        "XML error: Invalid value for attribute 'type' in element 'latency': 'sideways'."
    );
}

const NVME: &str = "<disk type='nvme' device='disk'><driver name='qemu' type='qcow2'/>\
    <source type='pci' managed='yes' namespace='3'>\
    <address domain='0x0001' bus='0x0a' slot='0x00' function='0x1'/>\
    <slices><slice type='storage' offset='512' size='4096'/></slices></source>\
    <target dev='vda' bus='virtio'/></disk>";

#[test]
fn nvme_disks_and_slices_are_built_in_a_pretend_start() {
    let caps = x86();
    let body = args(&domain("pc", "", NVME), &caps);
    assert!(
        body.contains("{\"driver\":\"nvme\",\"device\":\"0001:0a:00.1\",\"namespace\":3,\"node-name\":\"libvirt-1-storage\""),
        "{body}"
    );
    // qcow2 reads its image through a raw slice node.
    assert!(
        body.contains("{\"driver\":\"raw\",\"node-name\":\"libvirt-1-slice-sto\",\"offset\":512,\"size\":4096,\"file\":\"libvirt-1-storage\""),
        "{body}"
    );
    assert!(
        body.contains("\"driver\":\"qcow2\",\"file\":\"libvirt-1-slice-sto\""),
        "{body}"
    );
    // A raw image takes the slice itself.
    let raw = NVME.replace("type='qcow2'", "type='raw'");
    let body = args(&domain("pc", "", &raw), &caps);
    assert!(
        body.contains(
            "\"driver\":\"raw\",\"offset\":512,\"size\":4096,\"file\":\"libvirt-1-storage\""
        ),
        "{body}"
    );
    assert!(!body.contains("slice-sto"), "{body}");
}

#[test]
fn a_real_start_refuses_nvme_and_volume_disks() {
    let caps = x86();
    let e = real_start(&domain("pc", "", NVME), &caps).unwrap_err();
    assert_eq!(
        e,
        "unsupported configuration: disk 'vda' of type 'nvme' needs its controller detached to vfio, which is not supported yet"
    );
    let vol = "<disk type='volume' device='disk'><source pool='pool-disk' volume='dir+v'/>\
               <target dev='vda' bus='virtio'/></disk>";
    let e = real_start(&domain("pc", "", vol), &caps).unwrap_err();
    assert_eq!(
        e,
        "unsupported configuration: disk type 'volume' not supported yet"
    );
}

#[test]
fn the_harness_storage_driver_resolves_volumes() {
    let caps = x86();
    let vol = |pool: &str, volume: &str, mode: &str| {
        domain(
            "pc",
            "",
            &format!(
                "<disk type='volume' device='disk'><driver name='qemu' type='raw'/>\
                 <source pool='{pool}' volume='{volume}'{mode}/><target dev='vda' bus='virtio'/></disk>"
            ),
        )
    };
    let body = args(&vol("pool-dir", "file+img", ""), &caps);
    assert!(
        body.contains("\"driver\":\"file\",\"filename\":\"/some/file/device/img\""),
        "{body}"
    );
    let body = args(&vol("pool-iscsi", "unit:0:0:7", " mode='direct'"), &caps);
    assert!(
        body.contains("\"driver\":\"iscsi\",\"portal\":\"iscsi.example.com:3260\",\"target\":\"demo-target\",\"lun\":7"),
        "{body}"
    );
    assert_eq!(
        error(&vol("pool-no-such", "v", ""), &caps),
        "Storage pool not found: no storage pool with matching name 'pool-no-such'"
    );
    assert_eq!(
        error(&vol("pool-rbd", "v", ""), &caps),
        "unsupported configuration: using 'rbd' pools for backing 'volume' disks isn't yet supported"
    );
    assert_eq!(
        error(&vol("pool-dir", "v", " mode='host'"), &caps),
        "XML error: disk source mode is only valid when storage pool is of iscsi type"
    );
}

#[test]
fn a_sliced_qcow2_disk_is_not_hotplugged() {
    let caps = x86();
    let def = domdriver::domain::parse(&domain("pc", "", NVME)).unwrap();
    let mut def = domdriver::domain::prepare(def, &caps, &prepare_options("t", "x86_64")).unwrap();
    assign_aliases(&mut def);
    let ctx = harness_context(&def);
    let e = disk_props(&def, &caps, &ctx, 0, &[1], Plug::Hot).unwrap_err();
    assert_eq!(
        e.to_string(),
        "unsupported configuration: hotplug of disk 'vda' with a storage slice on a non-raw image is not supported yet"
    );
}

const RESERVATIONS: &str = "<disk type='block' device='lun'><driver name='qemu' type='raw'/>\
    <source dev='/dev/sdq'><reservations managed='yes'/></source>\
    <target dev='sda' bus='scsi'/></disk>\
    <disk type='block' device='lun'><driver name='qemu' type='raw'/>\
    <source dev='/dev/sdr'><reservations managed='no'>\
    <source type='unix' path='/run/my-pr.sock' mode='client'/></reservations></source>\
    <target dev='sdb' bus='scsi'/></disk>\
    <controller type='scsi' model='virtio-scsi'/>";

#[test]
fn reservations_get_their_helpers() {
    let caps = x86();
    let body = args(&domain("pc", "", RESERVATIONS), &caps);
    assert!(
        body.contains("{\"qom-type\":\"pr-manager-helper\",\"id\":\"pr-helper0\",\"path\":\"/tmp/lib/domain--1-t/pr-helper0.sock\"}"),
        "{body}"
    );
    assert!(
        body.contains("{\"qom-type\":\"pr-manager-helper\",\"id\":\"pr-helper-libvirt-1-storage\",\"path\":\"/run/my-pr.sock\"}"),
        "{body}"
    );
    assert!(
        body.contains("\"filename\":\"/dev/sdq\",\"pr-manager\":\"pr-helper0\""),
        "{body}"
    );
    assert!(
        body.contains("\"filename\":\"/dev/sdr\",\"pr-manager\":\"pr-helper-libvirt-1-storage\""),
        "{body}"
    );
    // libvirt runs the managed helper itself; a real start here does not, so it refuses.
    let e = real_start(&domain("pc", "", RESERVATIONS), &caps).unwrap_err();
    assert_eq!(
        e,
        "unsupported configuration: managed persistent reservations need a qemu-pr-helper started for the domain, which is not supported yet"
    );
}

fn vhostuser(mode: &str) -> String {
    format!(
        "<interface type='vhostuser'><mac address='52:54:00:ee:96:6b'/>\
         <source type='unix' path='/tmp/vu.sock' mode='{mode}'/><model type='virtio'/>\
         <driver queues='2'/></interface>"
    )
}

#[test]
fn vhostuser_interfaces_get_a_socket_chardev() {
    let caps = x86();
    let body = args(&domain("pc", "", &vhostuser("client")), &caps);
    assert!(
        body.contains("-chardev socket,id=charnet0,path=/tmp/vu.sock \\"),
        "{body}"
    );
    assert!(
        body.contains(
            "{\"type\":\"vhost-user\",\"chardev\":\"charnet0\",\"queues\":2,\"id\":\"hostnet0\"}"
        ),
        "{body}"
    );
    assert!(body.contains("\"mq\":true,\"vectors\":6"), "{body}");
    let body = args(&domain("pc", "", &vhostuser("server")), &caps);
    assert!(body.contains("path=/tmp/vu.sock,server=on"), "{body}");
    // A client works on a real start; a server would make QEMU wait for its back-end.
    assert!(real_start(&domain("pc", "", &vhostuser("client")), &caps).is_ok());
    let e = real_start(&domain("pc", "", &vhostuser("server")), &caps).unwrap_err();
    assert_eq!(
        e,
        "unsupported configuration: vhost-user interface 'net0' in server mode is not supported yet: QEMU would wait for its back-end at startup"
    );
}

#[test]
fn a_vhostuser_interface_is_not_hotplugged() {
    let caps = x86();
    let def = domdriver::domain::parse(&domain("pc", "", &vhostuser("client"))).unwrap();
    let mut def = domdriver::domain::prepare(def, &caps, &prepare_options("t", "x86_64")).unwrap();
    assign_aliases(&mut def);
    let ctx = harness_context(&def);
    let e = domdriver::xml2argv::props::net_props(&def, &caps, &ctx, 0, Plug::Hot).unwrap_err();
    assert_eq!(
        e.to_string(),
        "unsupported configuration: hotplug of a vhostuser interface is not supported yet"
    );
}

#[test]
fn old_machines_take_plain_numa_sizes_when_no_cell_needs_a_backend() {
    let caps = x86();
    let numa = "<cpu><numa><cell id='0' cpus='0-3' memory='1048576'/></numa></cpu>";
    let body = args(&domain("pc-i440fx-5.0", numa, ""), &caps);
    assert!(
        body.contains("-numa node,nodeid=0,cpus=0-3,mem=1024"),
        "{body}"
    );
    assert!(!body.contains("ram-node0"), "{body}");
    // Newer machines only take backends.
    let body = args(&domain("pc-i440fx-6.0", numa, ""), &caps);
    assert!(body.contains("memdev=ram-node0"), "{body}");
    // A memory access mode needs a backend even on the old machine.
    let shared = numa.replace("memory='1048576'", "memory='1048576' memAccess='shared'");
    let body = args(&domain("pc-i440fx-5.0", &shared, ""), &caps);
    assert!(body.contains("memdev=ram-node0"), "{body}");
}
