//! The typed model holds what xml2argv needs: values parsed from domain XML land in typed
//! fields, not only in verbatim leftovers.

mod common;

use domdriver::domain::devices::HostAddress;
use domdriver::domain::{Address, DomainDef, FormatFlags, parse};

const FLAGS: FormatFlags = FormatFlags {
    inactive: true,
    secure: true,
};

fn domain(devices: &str) -> String {
    format!(
        "<domain type='kvm'><name>t</name><uuid>c7a5fdbd-edaf-9455-926a-d65c16db1809</uuid>\
         <memory unit='MiB'>512</memory><os><type arch='x86_64' machine='pc'>hvm</type></os>\
         <devices>{devices}</devices></domain>"
    )
}

fn libvirt(name: &str) -> DomainDef {
    let p = common::testdata().join("tests").join(name);
    parse(&std::fs::read_to_string(&p).expect("read")).expect("parse")
}

#[test]
fn top_level_values() {
    let d = libvirt("qemuxml2xmloutdata/qemu-ns.x86_64-latest.xml");
    assert_eq!(d.virt_type, domdriver::domain::VirtType::Qemu);
    assert_eq!(d.name, "QEMUGuest1");
    assert_eq!(d.memory.kib, 219136);
    assert_eq!(d.vcpu.count, 1);
    assert_eq!(d.os.os_type.machine.as_deref(), Some("pc"));
    assert_eq!(d.os.boot_devs, vec!["hd"]);
    let cl = d.qemu_commandline.as_ref().expect("commandline");
    assert_eq!(cl.args, vec!["-unknown", "parameter"]);
    assert_eq!(cl.env[0].name, "NS");
    assert_eq!(cl.env[1].value, None);
    assert_eq!(
        d.qemu_capabilities.as_ref().map(|c| c.add.clone()),
        Some(vec!["vnc-colon".to_string()])
    );
    assert_eq!(d.qemu_deprecation.as_deref(), Some("crash"));
    let ov = d.qemu_override.as_ref().expect("override");
    assert_eq!(ov[0].alias, "ua-disk");
    let props = ov[0].frontend.as_ref().expect("frontend");
    assert_eq!(props.len(), 7);
    assert_eq!(props[1].ptype, "signed");
    assert_eq!(props[1].value.as_deref(), Some("-321"));
    assert_eq!(props[6].value, None);
    let disk = &d.devices.disks[0];
    assert_eq!(disk.info.alias.as_deref(), Some("ua-disk"));
    assert_eq!(
        disk.info.address,
        Some(Address::Drive {
            controller: 0,
            bus: 0,
            target: 0,
            unit: 0
        })
    );
}

#[test]
fn memory_units_are_kib() {
    let x = domain("").replace(
        "<memory unit='MiB'>512</memory>",
        "<memory unit='G'>2</memory><currentMemory unit='bytes'>1025</currentMemory>\
         <maxMemory slots='16' unit='GB'>1</maxMemory>",
    );
    let d = parse(&x).expect("parse");
    assert_eq!(d.memory.kib, 2 << 20);
    assert_eq!(d.current_memory, Some(2), "bytes round up to whole KiB");
    assert_eq!(d.max_memory.as_ref().map(|m| m.kib), Some(976563));
    assert_eq!(d.max_memory.as_ref().and_then(|m| m.slots), Some(16));
}

#[test]
fn network_disk_source() {
    let d = parse(&domain(
        "<disk type='network' device='disk'>\
           <driver name='qemu' type='raw' cache='none' iothread='1'/>\
           <source protocol='rbd' name='pool/image'>\
             <host name='mon1.example.org' port='6321'/><host name='mon2.example.org'/>\
             <auth username='admin'><secret type='ceph' usage='mycluster'/></auth>\
           </source>\
           <target dev='vdb' bus='virtio'/><serial>abc</serial><boot order='2'/>\
         </disk>",
    ))
    .expect("parse");
    let disk = &d.devices.disks[0];
    let src = disk.source.as_ref().expect("source");
    assert_eq!(src.protocol.as_deref(), Some("rbd"));
    assert_eq!(src.hosts.len(), 2);
    assert_eq!(src.hosts[0].port.as_deref(), Some("6321"));
    let auth = src.auth.clone().expect("auth");
    assert_eq!(auth.username.as_deref(), Some("admin"));
    assert_eq!(
        auth.secret.and_then(|s| s.usage),
        Some("mycluster".to_string())
    );
    let drv = disk.driver.as_ref().expect("driver");
    assert_eq!(drv.cache.as_deref(), Some("none"));
    assert_eq!(drv.iothread, Some(1));
    assert_eq!(disk.serial.as_deref(), Some("abc"));
    assert_eq!(disk.info.boot.as_ref().map(|b| b.order), Some(2));
}

#[test]
fn interface_types() {
    let d = parse(&domain(
        "<interface type='user'><mac address='52:54:00:00:00:01'/><model type='virtio'/></interface>\
         <interface type='network'><source network='default'/></interface>\
         <interface type='bridge'><source bridge='br0'/><target dev='vnet0'/></interface>\
         <interface type='ethernet'><target dev='tap0' managed='no'/><script path='/bin/true'/></interface>\
         <interface type='mcast'><source address='230.0.0.1' port='5558'/></interface>\
         <interface type='server'><source address='192.168.0.1' port='5558'/></interface>\
         <interface type='client'><source address='192.168.0.1' port='5558'/></interface>\
         <interface type='udp'><source address='192.168.0.1' port='5558'>\
           <local address='192.168.0.2' port='5559'/></source></interface>",
    ))
    .expect("parse");
    let ifs = &d.devices.interfaces;
    assert_eq!(ifs.len(), 8);
    assert_eq!(ifs[0].mac.as_deref(), Some("52:54:00:00:00:01"));
    assert_eq!(ifs[0].model.as_deref(), Some("virtio"));
    let src = |i: usize| ifs[i].source.as_ref().expect("source");
    assert_eq!(src(1).network.as_deref(), Some("default"));
    assert_eq!(src(2).bridge.as_deref(), Some("br0"));
    assert_eq!(ifs[2].target_dev.as_deref(), Some("vnet0"));
    assert_eq!(ifs[3].script.as_deref(), Some("/bin/true"));
    assert_eq!(src(4).address.as_deref(), Some("230.0.0.1"));
    assert_eq!(src(6).port.as_deref(), Some("5558"));
    assert_eq!(src(7).local_port.as_deref(), Some("5559"));
    // Formatting keeps everything and is stable.
    let out = d.to_xml(FLAGS);
    assert_eq!(parse(&out).expect("reparse"), d);
}

#[test]
fn chardev_sources() {
    let d = parse(&domain(
        "<serial type='tcp'><source mode='bind' host='127.0.0.1' service='9999'/>\
           <protocol type='telnet'/><target port='0'/></serial>\
         <serial type='file'><source path='/tmp/log' append='on'/><target port='1'/></serial>\
         <parallel type='pty'><target port='0'/></parallel>\
         <console type='stdio'><target type='serial' port='0'/></console>\
         <channel type='unix'><source mode='bind' path='/tmp/ga'/>\
           <target type='virtio' name='org.qemu.guest_agent.0'/>\
           <address type='virtio-serial' controller='0' bus='0' port='1'/></channel>\
         <channel type='spicevmc'><target type='virtio' name='com.redhat.spice.0'/></channel>\
         <serial type='udp'><source mode='bind' host='0.0.0.0' service='2222'/>\
           <source mode='connect' host='1.2.3.4' service='3333'/><target port='2'/></serial>",
    ))
    .expect("parse");
    let dv = &d.devices;
    assert_eq!(dv.serials[0].stype.as_deref(), Some("tcp"));
    assert_eq!(dv.serials[0].sources[0].service.as_deref(), Some("9999"));
    assert_eq!(dv.serials[0].protocol.as_deref(), Some("telnet"));
    assert_eq!(dv.serials[1].sources[0].append.as_deref(), Some("on"));
    assert_eq!(dv.serials[2].sources.len(), 2);
    assert_eq!(dv.parallels[0].stype.as_deref(), Some("pty"));
    assert_eq!(
        dv.consoles[0].target.as_ref().and_then(|t| t.ttype.clone()),
        Some("serial".to_string())
    );
    assert_eq!(
        dv.channels[0].info.address,
        Some(Address::VirtioSerial {
            controller: 0,
            bus: 0,
            port: Some(1)
        })
    );
    assert_eq!(
        dv.channels[1].target.as_ref().and_then(|t| t.name.clone()),
        Some("com.redhat.spice.0".to_string())
    );
}

#[test]
fn every_address_type() {
    let d = parse(&domain(
        "<controller type='pci' index='0' model='pci-root'/>\
         <disk type='file' device='disk'><source file='/a'/><target dev='sda' bus='scsi'/>\
           <address type='drive' controller='0' bus='0' target='1' unit='2'/></disk>\
         <smartcard mode='host'><address type='ccid' controller='0' slot='0'/></smartcard>\
         <input type='tablet' bus='usb'><address type='usb' bus='0' port='1.2'/></input>\
         <serial type='pty'><target port='0'/><address type='spapr-vio' reg='0x30000000'/></serial>\
         <rng model='virtio'><backend model='random'>/dev/urandom</backend>\
           <address type='ccw' cssid='0xfe' ssid='0x0' devno='0x0007'/></rng>\
         <watchdog model='ib700' action='poweroff'><address type='isa' iobase='0x505'/></watchdog>\
         <memballoon model='virtio'><address type='pci' domain='0x0000' bus='0x00' slot='0x05' function='0x0'/></memballoon>\
         <memory model='dimm'><target><size unit='MiB'>128</size><node>0</node></target>\
           <address type='dimm' slot='0' base='0x100000000'/></memory>\
         <hostdev mode='subsystem' type='pci' managed='yes'><source>\
           <address domain='0x0000' bus='0x06' slot='0x12' function='0x5'/></source>\
           <address type='unassigned'/></hostdev>",
    ))
    .expect("parse");
    let dv = &d.devices;
    assert_eq!(
        dv.disks[0].info.address,
        Some(Address::Drive {
            controller: 0,
            bus: 0,
            target: 1,
            unit: 2
        })
    );
    assert!(matches!(
        dv.smartcards[0].info.address,
        Some(Address::Ccid { slot: 0, .. })
    ));
    assert!(
        matches!(&dv.inputs[0].info.address, Some(Address::Usb { port: Some(p), .. }) if p == "1.2")
    );
    assert!(matches!(
        dv.serials[0].info.address,
        Some(Address::SpaprVio { .. })
    ));
    assert!(matches!(
        &dv.rngs[0].info.address,
        Some(Address::Ccw { devno, .. }) if devno == "0x0007"
    ));
    assert_eq!(dv.rngs[0].backend_path.as_deref(), Some("/dev/urandom"));
    assert_eq!(dv.watchdogs[0].action.as_deref(), Some("poweroff"));
    assert!(matches!(
        dv.watchdogs[0].info.address,
        Some(Address::Isa { .. })
    ));
    assert!(matches!(
        dv.memballoon.as_ref().and_then(|m| m.info.address.clone()),
        Some(Address::Pci { slot: 5, .. })
    ));
    let mem = &dv.memories[0];
    assert_eq!(mem.target.as_ref().and_then(|t| t.size_kib), Some(131072));
    assert!(matches!(
        mem.info.address,
        Some(Address::Dimm { slot: Some(0), .. })
    ));
    let hd = &dv.hostdevs[0];
    assert_eq!(
        hd.source.as_ref().and_then(|s| s.address.clone()),
        Some(HostAddress::Pci {
            domain: 0,
            bus: 6,
            slot: 0x12,
            function: 5
        })
    );
    assert_eq!(hd.info.address, Some(Address::Unassigned));
    let out = d.to_xml(FLAGS);
    assert_eq!(parse(&out).expect("reparse"), d);
}

#[test]
fn invalid_address_value_is_an_error() {
    let e = parse(&domain(
        "<memballoon model='virtio'><address type='pci' domain='0' bus='0' slot='zz' function='0'/></memballoon>",
    ))
    .unwrap_err();
    assert!(e.to_string().contains("slot"), "{e}");
}

#[test]
fn qemu_namespace_under_another_prefix() {
    let x = "<domain type='kvm' xmlns:q='http://libvirt.org/schemas/domain/qemu/1.0'>\
             <name>t</name><memory>1024</memory><os><type>hvm</type></os>\
             <q:commandline><q:arg value='-foo'/><q:env name='A' value='b'/></q:commandline>\
             </domain>";
    let d = parse(x).expect("parse");
    let cl = d.qemu_commandline.as_ref().expect("commandline");
    assert_eq!(cl.args, vec!["-foo"]);
    assert_eq!(cl.env[0].value.as_deref(), Some("b"));
    assert!(d.to_xml(FLAGS).contains("<qemu:arg value='-foo'/>"));
}

#[test]
fn duplicate_drive_addresses() {
    let disk = |dev: &str, unit: u32| {
        format!(
            "<disk type='file' device='disk'><source file='/{dev}'/><target dev='{dev}' bus='scsi'/>\
             <address type='drive' controller='0' bus='0' target='0' unit='{unit}'/></disk>"
        )
    };
    let ok = domain(&format!("{}{}", disk("sda", 0), disk("sdb", 1)));
    assert!(parse(&ok).is_ok());
    let bad = domain(&format!(
        "{}{}{}",
        disk("sda", 0),
        disk("sdb", 1),
        disk("sdc", 0)
    ));
    assert_eq!(
        parse(&bad).unwrap_err().to_string(),
        "unsupported configuration: Found duplicate drive address for disk with target name 'sda' \
         controller='0' bus='0' target='0' unit='0'"
    );
}

#[test]
fn format_flags() {
    let x = "<domain type='kvm' id='7'><name>t</name><memory>1024</memory><os><type>hvm</type></os>\
             <devices><graphics type='vnc' port='5900' autoport='no' passwd='secret'/></devices></domain>";
    let d = parse(x).expect("parse");
    assert_eq!(d.id, Some(7));
    let live = d.to_xml(FormatFlags {
        inactive: false,
        secure: false,
    });
    assert!(live.starts_with("<domain type='kvm' id='7'>"), "{live}");
    assert!(!live.contains("secret"), "passwords need the secure flag");
    let inactive = d.to_xml(FLAGS);
    assert!(inactive.starts_with("<domain type='kvm'>"), "{inactive}");
    assert!(inactive.contains("passwd='secret'"));
}
