//! The udev backend's view of a fake sysfs tree: names, parents, XML.

use std::os::unix::fs::symlink;
use std::path::Path;

use super::*;
use crate::capabilities::host::HostRoot;
use crate::driver::ConnectOptions;

fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

fn link(root: &Path, rel: &str, target: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    symlink(target, p).unwrap();
}

/// A small host: a SATA controller with one disk, a USB controller with its root hub, a
/// NIC, the loopback interface, a GPU's render node and a loop device (which libvirt
/// cannot classify and leaves out).
fn fake_host(root: &Path) {
    let pci = "sys/devices/pci0000:00";
    // SATA controller, its SCSI host, target, device and disk.
    let sata = format!("{pci}/0000:00:1f.2");
    write(
        root,
        &format!("{sata}/uevent"),
        "DRIVER=ahci\nPCI_CLASS=10601\n",
    );
    write(root, &format!("{sata}/vendor"), "0x8086\n");
    write(root, &format!("{sata}/device"), "0x2922\n");
    write(root, &format!("{sata}/numa_node"), "-1\n");
    link(
        root,
        &format!("{sata}/iommu_group"),
        "../../../kernel/iommu_groups/7",
    );
    std::fs::create_dir_all(root.join("sys/kernel/iommu_groups/7/devices/0000:00:1f.2")).unwrap();
    std::fs::create_dir_all(root.join("sys/kernel/iommu_groups/7/devices/0000:00:1f.3")).unwrap();
    link(
        root,
        "sys/bus/pci/devices/0000:00:1f.2",
        "../../../devices/pci0000:00/0000:00:1f.2",
    );
    let host = format!("{sata}/ata1/host0");
    write(root, &format!("{host}/uevent"), "DEVTYPE=scsi_host\n");
    write(root, "sys/class/scsi_host/host0/unique_id", "1\n");
    let target = format!("{host}/target0:0:0");
    write(root, &format!("{target}/uevent"), "DEVTYPE=scsi_target\n");
    let sdev = format!("{target}/0:0:0:0");
    write(
        root,
        &format!("{sdev}/uevent"),
        "DEVTYPE=scsi_device\nDRIVER=sd\n",
    );
    write(root, &format!("{sdev}/type"), "0\n");
    write(root, &format!("{sdev}/vendor"), "ATA     \n");
    write(root, &format!("{sdev}/model"), "WDC WD10 \n");
    for (n, t) in [
        (
            "host0",
            "../../../devices/pci0000:00/0000:00:1f.2/ata1/host0",
        ),
        (
            "target0:0:0",
            "../../../devices/pci0000:00/0000:00:1f.2/ata1/host0/target0:0:0",
        ),
        (
            "0:0:0:0",
            "../../../devices/pci0000:00/0000:00:1f.2/ata1/host0/target0:0:0/0:0:0:0",
        ),
    ] {
        link(root, &format!("sys/bus/scsi/devices/{n}"), t);
    }
    let sda = format!("{sdev}/block/sda");
    write(
        root,
        &format!("{sda}/uevent"),
        "MAJOR=8\nMINOR=0\nDEVNAME=sda\nDEVTYPE=disk\n",
    );
    write(root, &format!("{sda}/size"), "2048\n");
    write(root, &format!("{sda}/queue/logical_block_size"), "512\n");
    link(root, &format!("{sda}/device"), "../../../0:0:0:0");
    let sda1 = format!("{sda}/sda1");
    write(
        root,
        &format!("{sda1}/uevent"),
        "MAJOR=8\nMINOR=1\nDEVNAME=sda1\nDEVTYPE=partition\n",
    );
    link(root, "sys/class/block/sda", &format!("../../{}", &sda[4..]));
    link(
        root,
        "sys/class/block/sda1",
        &format!("../../{}", &sda1[4..]),
    );
    write(
        root,
        "run/udev/data/b8:0",
        "S:disk/by-id/ata-WDC_WD10_123\nE:ID_TYPE=disk\nE:ID_BUS=ata\nE:ID_SERIAL=WDC_WD10_123\n",
    );
    // A loop device: no ID_TYPE, and not a name libvirt can guess a kind from.
    write(
        root,
        "sys/devices/virtual/block/loop0/uevent",
        "MAJOR=7\nMINOR=0\nDEVNAME=loop0\nDEVTYPE=disk\n",
    );
    write(root, "sys/devices/virtual/block/loop0/size", "0\n");
    link(
        root,
        "sys/class/block/loop0",
        "../../devices/virtual/block/loop0",
    );

    // USB controller and its root hub with one interface.
    let uhci = format!("{pci}/0000:00:1d.0");
    write(
        root,
        &format!("{uhci}/uevent"),
        "DRIVER=uhci_hcd\nPCI_CLASS=C0300\n",
    );
    write(root, &format!("{uhci}/vendor"), "0x8086\n");
    write(root, &format!("{uhci}/device"), "0x2934\n");
    link(
        root,
        "sys/bus/pci/devices/0000:00:1d.0",
        "../../../devices/pci0000:00/0000:00:1d.0",
    );
    let hub = format!("{uhci}/usb1");
    write(
        root,
        &format!("{hub}/uevent"),
        "DEVTYPE=usb_device\nDRIVER=usb\nBUSNUM=001\nDEVNUM=001\nDEVNAME=bus/usb/001/001\n",
    );
    write(root, &format!("{hub}/idVendor"), "1d6b\n");
    write(root, &format!("{hub}/idProduct"), "0001\n");
    write(root, &format!("{hub}/manufacturer"), "Linux Foundation\n");
    write(root, &format!("{hub}/product"), "1.1 root hub\n");
    let intf = format!("{hub}/1-0:1.0");
    write(
        root,
        &format!("{intf}/uevent"),
        "DEVTYPE=usb_interface\nDRIVER=hub\n",
    );
    for (a, v) in [
        ("bInterfaceNumber", "00"),
        ("bInterfaceClass", "09"),
        ("bInterfaceSubClass", "00"),
        ("bInterfaceProtocol", "00"),
    ] {
        write(root, &format!("{intf}/{a}"), &format!("{v}\n"));
    }
    link(
        root,
        "sys/bus/usb/devices/usb1",
        "../../../devices/pci0000:00/0000:00:1d.0/usb1",
    );
    link(
        root,
        "sys/bus/usb/devices/1-0:1.0",
        "../../../devices/pci0000:00/0000:00:1d.0/usb1/1-0:1.0",
    );

    // A NIC (its netdev under a virtio bus device that is not itself listed) and lo.
    let nic = format!("{pci}/0000:00:03.0");
    write(
        root,
        &format!("{nic}/uevent"),
        "DRIVER=virtio-pci\nPCI_CLASS=20000\n",
    );
    write(root, &format!("{nic}/vendor"), "0x1af4\n");
    write(root, &format!("{nic}/device"), "0x1041\n");
    link(
        root,
        "sys/bus/pci/devices/0000:00:03.0",
        "../../../devices/pci0000:00/0000:00:03.0",
    );
    let eth = format!("{nic}/virtio0/net/eth0");
    write(
        root,
        &format!("{eth}/uevent"),
        "INTERFACE=eth0\nIFINDEX=2\n",
    );
    write(root, &format!("{eth}/address"), "52:54:00:12:34:56\n");
    write(root, &format!("{eth}/operstate"), "up\n");
    write(root, &format!("{eth}/speed"), "1000\n");
    link(
        root,
        "sys/class/net/eth0",
        "../../devices/pci0000:00/0000:00:03.0/virtio0/net/eth0",
    );
    write(
        root,
        "sys/devices/virtual/net/lo/uevent",
        "INTERFACE=lo\nIFINDEX=1\n",
    );
    write(
        root,
        "sys/devices/virtual/net/lo/address",
        "00:00:00:00:00:00\n",
    );
    write(root, "sys/devices/virtual/net/lo/operstate", "unknown\n");
    link(root, "sys/class/net/lo", "../../devices/virtual/net/lo");

    // A render node of a GPU that is not on the PCI bus list: its parent is the root.
    write(
        root,
        "sys/devices/platform/gpu/drm/renderD128/uevent",
        "MAJOR=226\nMINOR=128\nDEVNAME=dri/renderD128\nDEVTYPE=drm_minor\n",
    );
    link(
        root,
        "sys/class/drm/renderD128",
        "../../devices/platform/gpu/drm/renderD128",
    );

    write(root, "sys/devices/virtual/dmi/id/sys_vendor", "ACME\n");
    write(root, "sys/devices/virtual/dmi/id/product_name", "Box 1\n");
    write(root, "sys/devices/virtual/dmi/id/bios_vendor", "SeaBIOS\n");
    write(root, "etc/machine-id", "0123456789abcdef0123456789abcdef\n");
}

fn conn(root: &Path) -> Connect {
    let opts = ConnectOptions {
        host_root: HostRoot::fake(root),
        ..ConnectOptions::default()
    };
    let dir = root.join("state");
    Connect::open_with(Some(&format!("qemu:///embed?root={}", dir.display())), opts).unwrap()
}

fn names_parents(c: &Connect, flags: u32) -> Vec<(String, String)> {
    c.list_all_node_devices(flags)
        .unwrap()
        .iter()
        .map(|d| (d.name().to_string(), d.parent().unwrap_or("-").to_string()))
        .collect()
}

#[test]
fn devices_are_named_and_parented_as_the_udev_backend_does() {
    let t = tempfile::tempdir().unwrap();
    fake_host(t.path());
    let c = conn(t.path());
    let got = names_parents(&c, 0);
    let want: Vec<(String, String)> = [
        ("block_sda_WDC_WD10_123", "scsi_0_0_0_0"),
        ("computer", "-"),
        ("drm_renderD128", "computer"),
        ("net_eth0_52_54_00_12_34_56", "pci_0000_00_03_0"),
        ("net_lo_00_00_00_00_00_00", "computer"),
        ("pci_0000_00_03_0", "computer"),
        ("pci_0000_00_1d_0", "computer"),
        ("pci_0000_00_1f_2", "computer"),
        ("scsi_0_0_0_0", "scsi_target0_0_0"),
        ("scsi_host0", "pci_0000_00_1f_2"),
        ("scsi_target0_0_0", "scsi_host0"),
        ("usb_1_0_1_0", "usb_usb1"),
        ("usb_usb1", "pci_0000_00_1d_0"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(got, want);
}

#[test]
fn capability_and_state_filters() {
    let t = tempfile::tempdir().unwrap();
    fake_host(t.path());
    let c = conn(t.path());
    let names = |f| {
        names_parents(&c, f)
            .into_iter()
            .map(|(n, _)| n)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(list_flags::CAP_NET),
        ["net_eth0_52_54_00_12_34_56", "net_lo_00_00_00_00_00_00"]
    );
    assert_eq!(
        names(list_flags::CAP_USB_DEV | list_flags::CAP_STORAGE),
        ["block_sda_WDC_WD10_123", "usb_usb1"]
    );
    assert!(names(list_flags::INACTIVE).is_empty());
    assert_eq!(names(list_flags::INACTIVE | list_flags::ACTIVE).len(), 13);
    assert!(c.list_all_node_devices(1 << 29).is_err());
}

#[test]
fn xml_of_each_kind() {
    let t = tempfile::tempdir().unwrap();
    fake_host(t.path());
    let c = conn(t.path());
    let x = |n: &str| {
        c.node_device_lookup_by_name(n)
            .unwrap()
            .xml_desc(0)
            .unwrap()
    };
    assert_eq!(
        x("pci_0000_00_1f_2"),
        "<device>
  <name>pci_0000_00_1f_2</name>
  <path>/sys/devices/pci0000:00/0000:00:1f.2</path>
  <parent>computer</parent>
  <driver>
    <name>ahci</name>
  </driver>
  <capability type='pci'>
    <class>0x010601</class>
    <domain>0</domain>
    <bus>0</bus>
    <slot>31</slot>
    <function>2</function>
    <product id='0x2922'/>
    <vendor id='0x8086'/>
    <iommuGroup number='7'>
      <address domain='0x0000' bus='0x00' slot='0x1f' function='0x2'/>
      <address domain='0x0000' bus='0x00' slot='0x1f' function='0x3'/>
    </iommuGroup>
  </capability>
</device>
"
    );
    assert_eq!(
        x("block_sda_WDC_WD10_123"),
        "<device>
  <name>block_sda_WDC_WD10_123</name>
  <path>/sys/devices/pci0000:00/0000:00:1f.2/ata1/host0/target0:0:0/0:0:0:0/block/sda</path>
  <devnode type='dev'>/dev/sda</devnode>
  <devnode type='link'>/dev/disk/by-id/ata-WDC_WD10_123</devnode>
  <parent>scsi_0_0_0_0</parent>
  <capability type='storage'>
    <block>/dev/sda</block>
    <bus>ata</bus>
    <drive_type>disk</drive_type>
    <model>WDC WD10</model>
    <vendor>ATA</vendor>
    <serial>WDC_WD10_123</serial>
    <size>1048576</size>
    <logical_block_size>512</logical_block_size>
    <num_blocks>2048</num_blocks>
  </capability>
</device>
"
    );
    let eth = x("net_eth0_52_54_00_12_34_56");
    assert!(eth.contains("<interface>eth0</interface>\n    <address>52:54:00:12:34:56</address>\n    <link speed='1000' state='up'/>\n    <capability type='80203'/>"), "{eth}");
    let usb = x("usb_usb1");
    assert!(
        usb.contains("<devnode type='dev'>/dev/bus/usb/001/001</devnode>"),
        "{usb}"
    );
    assert!(usb.contains("<product id='0x0001'>1.1 root hub</product>\n    <vendor id='0x1d6b'>Linux Foundation</vendor>"), "{usb}");
    assert!(x("scsi_0_0_0_0").contains("<lun>0</lun>\n    <type>disk</type>"));
    assert!(x("scsi_host0").contains("<host>0</host>\n    <unique_id>1</unique_id>"));
    assert!(x("drm_renderD128").contains("<type>render</type>"));
    let comp = x("computer");
    assert!(comp.starts_with("<device>\n  <name>computer</name>\n  <capability type='system'>\n    <product>Box 1</product>\n    <hardware>\n      <vendor>ACME</vendor>\n      <uuid>01234567-89ab-cdef-0123-456789abcdef</uuid>"), "{comp}");
    // Every document the host yields reads back as the same device.
    for d in c.list_all_node_devices(0).unwrap() {
        let xml = d.xml_desc(0).unwrap();
        let back = crate::nodedev::parse(&xml).unwrap();
        // libvirt reads a disk's block figures from sysfs, never back from a document.
        let mut want = d.def().clone();
        for c in &mut want.caps {
            if let Cap::Storage(s) = c {
                s.logical_block_size = 0;
                s.num_blocks = 0;
            }
        }
        assert_eq!(back.format(true), want.format(true), "{}", d.name());
    }
}

#[test]
fn changes_are_refused_with_libvirts_errors() {
    let t = tempfile::tempdir().unwrap();
    fake_host(t.path());
    let c = conn(t.path());
    let e = |r: Result<(), DriverError>| r.unwrap_err().to_string();
    assert_eq!(
        c.node_device_lookup_by_name("nope")
            .unwrap_err()
            .to_string(),
        "Node device not found: no node device with matching name 'nope'"
    );
    let net = c
        .node_device_lookup_by_name("net_lo_00_00_00_00_00_00")
        .unwrap();
    let pci = c.node_device_lookup_by_name("pci_0000_00_03_0").unwrap();
    // No VFIO on the fake host: detaching is refused before anything else is looked at.
    assert_eq!(
        e(pci.detach_flags(None, 0)),
        "argument unsupported: VFIO device assignment is currently not supported on this system"
    );
    assert_eq!(
        e(pci.detach_flags(Some("kvm"), 0)),
        "argument unsupported: 'legacy KVM' device assignment is no longer supported on this system"
    );
    write(t.path(), "dev/vfio/vfio", "");
    assert_eq!(
        e(net.detach_flags(None, 0)),
        "invalid argument: device net_lo_00_00_00_00_00_00 is not a PCI device"
    );
    assert_eq!(
        e(net.reattach()),
        "invalid argument: device net_lo_00_00_00_00_00_00 is not a PCI device"
    );
    assert_eq!(
        e(net.reset()),
        "invalid argument: device net_lo_00_00_00_00_00_00 is not a PCI device"
    );
    // A PCI device is never rebound: refused, naming the device.
    for r in [
        pci.detach_flags(Some("vfio"), 0),
        pci.reattach(),
        pci.reset(),
    ] {
        assert!(e(r).contains("PCI device 0000:00:03.0"));
    }
    assert_eq!(
        e(pci.destroy()),
        "unsupported configuration: Unsupported device type"
    );
    assert_eq!(
        e(pci.undefine()),
        "Requested operation is not valid: Node device 'pci_0000_00_03_0' is not defined"
    );
    assert_eq!(
        e(pci.create(0)),
        "Requested operation is not valid: Device is already active"
    );
    assert_eq!(
        e(pci.set_autostart(true)),
        "Operation not supported: Unsupported device type"
    );
    let err = |x: &str| c.node_device_create_xml(x, 0).unwrap_err().to_string();
    let mdev = |parent: &str| {
        format!(
            "<device>{parent}<capability type='mdev'><type id='nvidia-35'/></capability></device>"
        )
    };
    assert_eq!(
        err(&mdev("")),
        "unsupported configuration: missing parent device"
    );
    assert_eq!(
        err(&mdev("<parent>pci_9</parent>")),
        "unsupported configuration: invalid parent device 'pci_9'"
    );
    assert_eq!(
        err(&mdev("<parent>net_lo_00_00_00_00_00_00</parent>")),
        "failed to parse configuration file Unable to find address for parent device 'net_lo_00_00_00_00_00_00'"
    );
    assert_eq!(
        err("<device><capability type='drm'><type>render</type></capability></device>"),
        "unsupported configuration: Unsupported device type"
    );
    assert_eq!(
        c.node_device_define_xml(
            "<device><capability type='drm'><type>render</type></capability></device>",
            0
        )
        .unwrap_err()
        .to_string(),
        "unsupported configuration: Unsupported device type"
    );
}

#[test]
fn events_report_devices_that_come_go_and_change() {
    let t = tempfile::tempdir().unwrap();
    fake_host(t.path());
    let c = conn(t.path());
    let mut ev = c.node_device_events();
    let wait = std::time::Duration::from_millis(10);
    assert_eq!(ev.next_timeout(wait), None);
    let tap = "sys/devices/virtual/net/tap0";
    write(
        t.path(),
        &format!("{tap}/uevent"),
        "INTERFACE=tap0\nIFINDEX=9\n",
    );
    write(t.path(), &format!("{tap}/address"), "fe:54:00:00:00:01\n");
    link(
        t.path(),
        "sys/class/net/tap0",
        "../../devices/virtual/net/tap0",
    );
    let name = "net_tap0_fe_54_00_00_00_01".to_string();
    let created = ev.next_timeout(wait).unwrap();
    assert_eq!(
        created,
        NodeDeviceEvent {
            device: name.clone(),
            kind: NodeDeviceEventKind::Created
        }
    );
    write(t.path(), &format!("{tap}/operstate"), "up\n");
    assert_eq!(
        ev.next_timeout(wait).unwrap().kind,
        NodeDeviceEventKind::Update
    );
    std::fs::remove_file(t.path().join("sys/class/net/tap0")).unwrap();
    assert_eq!(
        ev.next_timeout(wait).unwrap(),
        NodeDeviceEvent {
            device: name,
            kind: NodeDeviceEventKind::Deleted
        }
    );
    assert_eq!(ev.next_timeout(wait), None);
}
