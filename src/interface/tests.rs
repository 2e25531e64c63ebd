use super::sysfs::{HostNet, SysfsError};
use super::*;
use std::path::{Path, PathBuf};

/// libvirt's `tests/interfaceschemadata`, when the reference tree has it.
fn schemadata() -> Option<PathBuf> {
    crate::test_data::libvirt_tests_dir("interfaceschemadata")
}

/// libvirt's interfacexml2xmltest: every document formats back to itself.
#[test]
fn libvirt_schemadata_round_trips() {
    let Some(dir) = schemadata() else { return };
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap().flatten() {
        let xml = std::fs::read_to_string(e.path()).unwrap();
        let def = IfaceDef::parse(&xml).unwrap_or_else(|err| panic!("{:?}: {err}", e.path()));
        assert_eq!(def.to_xml(), xml, "{:?}", e.path());
        n += 1;
    }
    assert!(n >= 19, "{n}");
}

#[test]
fn bad_documents_are_worded_like_libvirt() {
    for (xml, want) in [
        (
            "<interface name='x'/>",
            "XML error: Missing required attribute 'type' in element 'interface'",
        ),
        (
            "<interface type='tap' name='x'/>",
            "XML error: Invalid value for attribute 'type' in element 'interface': 'tap'.",
        ),
        (
            "<interface type='ethernet'/>",
            "XML error: interface has no name",
        ),
        (
            "<interface type='bridge' name='b'/>",
            "XML error: bridge interface misses the bridge element",
        ),
        (
            "<interface type='bond' name='b'><bond><interface type='vlan' name='v'/></bond></interface>",
            "XML error: interface has unsupported type 'vlan'",
        ),
        (
            "<interface type='vlan' name='v'><vlan tag='4'/></interface>",
            "XML error: vlan interface misses name attribute",
        ),
        (
            "<interface type='ethernet' name='e'><start mode='later'/></interface>",
            "XML error: unknown interface startmode later",
        ),
        (
            "<interface type='ethernet' name='e'><mtu size='100001'/></interface>",
            "XML error: value of the 'size' attribute of 'mtu' element must be at most 100000",
        ),
        (
            "<interface type='ethernet' name='e'><protocol family='ipx'/></interface>",
            "XML error: unsupported protocol family 'ipx'",
        ),
        (
            "<network/>",
            "XML error: expecting root element of 'interface', not 'network'",
        ),
    ] {
        assert_eq!(IfaceDef::parse(xml).unwrap_err().to_string(), want, "{xml}");
    }
}

/// A fake `/sys` + `/proc` with the files libvirt's udev backend reads.
struct Fake {
    _t: tempfile::TempDir,
    sys: PathBuf,
    proc: PathBuf,
}

impl Fake {
    fn new() -> Fake {
        let t = tempfile::tempdir().unwrap();
        let sys = t.path().join("sys");
        let proc = t.path().join("proc");
        std::fs::create_dir_all(sys.join("class/net")).unwrap();
        std::fs::create_dir_all(proc.join("net/vlan")).unwrap();
        Fake { _t: t, sys, proc }
    }

    fn dev(&self, name: &str, files: &[(&str, &str)]) -> PathBuf {
        let d = self.sys.join("class/net").join(name);
        for (f, v) in files {
            let p = d.join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, format!("{v}\n")).unwrap();
        }
        d
    }

    fn net(&self) -> HostNet {
        HostNet::under(&self.sys, &self.proc)
    }
}

fn eth(f: &Fake, name: &str, mac: &str, state: &str) -> PathBuf {
    f.dev(
        name,
        &[
            ("address", mac),
            ("operstate", state),
            ("mtu", "1500"),
            ("speed", "1000"),
            ("uevent", &format!("INTERFACE={name}\nIFINDEX=3")),
        ],
    )
}

fn touch(p: &Path) {
    std::fs::create_dir_all(p).unwrap();
}

#[test]
fn fake_tree_lists_dumps_and_looks_up() {
    let f = Fake::new();
    eth(&f, "lo", "00:00:00:00:00:00", "unknown");
    eth(&f, "eth0", "52:54:00:aa:bb:01", "up");
    eth(&f, "eth1", "52:54:00:aa:bb:02", "down");
    // A bridge with eth1 and a guest's tap as ports.
    let br = f.dev(
        "br0",
        &[
            ("address", "52:54:00:aa:bb:02"),
            ("operstate", "up"),
            ("mtu", "1500"),
            ("uevent", "DEVTYPE=bridge\nINTERFACE=br0"),
            ("bridge/forward_delay", "1500"),
            ("bridge/stp_state", "0"),
        ],
    );
    touch(&br.join("brif/eth1"));
    touch(&br.join("brif/vnet0"));
    touch(&f.sys.join("class/net/eth1/brport"));
    let tap = eth(&f, "vnet0", "fe:54:00:00:00:01", "up");
    std::fs::write(tap.join("tun_flags"), "0x1002\n").unwrap();
    touch(&tap.join("brport"));
    f.dev(
        "eth0.42",
        &[
            ("address", "52:54:00:aa:bb:01"),
            ("operstate", "lowerlayerdown"),
            ("mtu", "1500"),
            ("uevent", "DEVTYPE=vlan"),
        ],
    );
    std::fs::write(
        f.proc.join("net/vlan/eth0.42"),
        "eth0.42  VID: 42\t REORDER_HDR: 1  dev->priv_flags: 1\n         total frames received            0\nDevice: eth0\nINGRESS priority mappings: 0:0\n",
    )
    .unwrap();

    let net = f.net();
    let list: Vec<(String, bool)> = net
        .list()
        .unwrap()
        .into_iter()
        .map(|e| (e.name, e.active))
        .collect();
    // Bridge ports and taps are left out; lo's operstate is "unknown", so inactive.
    assert_eq!(
        list,
        [
            ("br0".to_string(), true),
            ("eth0".to_string(), true),
            ("eth0.42".to_string(), false),
            ("lo".to_string(), false),
        ]
    );
    assert_eq!(
        net.def("br0").unwrap().to_xml(),
        "<interface type='bridge' name='br0'>\n  <mtu size='1500'/>\n  <bridge stp='off' delay='1500'>\n    <interface type='ethernet' name='eth1'>\n      <link state='down'/>\n      <mac address='52:54:00:aa:bb:02'/>\n    </interface>\n  </bridge>\n</interface>\n"
    );
    assert_eq!(
        net.def("eth0").unwrap().to_xml(),
        "<interface type='ethernet' name='eth0'>\n  <mtu size='1500'/>\n  <link speed='1000' state='up'/>\n  <mac address='52:54:00:aa:bb:01'/>\n</interface>\n"
    );
    assert_eq!(
        net.def("eth0.42").unwrap().to_xml(),
        "<interface type='vlan' name='eth0.42'>\n  <mtu size='1500'/>\n  <link state='lowerlayerdown'/>\n  <vlan tag='42'>\n    <interface name='eth0'/>\n  </vlan>\n</interface>\n"
    );
    // What we format parses back to what formats the same (a bridge's link and its ports'
    // MTU are not formatted, as in libvirt).
    for n in ["br0", "eth0", "eth0.42", "lo"] {
        let xml = net.def(n).unwrap().to_xml();
        assert_eq!(IfaceDef::parse(&xml).unwrap().to_xml(), xml, "{n}");
    }
    assert_eq!(
        net.lookup_by_mac("52:54:00:aa:bb:01").unwrap_err(),
        SysfsError::Multiple(
            "the MAC address '52:54:00:aa:bb:01' matches multiple interfaces".into()
        )
    );
    assert_eq!(net.lookup_by_mac("00:00:00:00:00:00").unwrap().name, "lo");
    assert_eq!(
        net.lookup_by_mac("00:11:22:33:44:55").unwrap_err(),
        SysfsError::NotFound("couldn't find interface with MAC address '00:11:22:33:44:55'".into())
    );
    for bad in ["nosuch", "..", "../class", ""] {
        assert_eq!(
            net.lookup_by_name(bad).unwrap_err(),
            SysfsError::NotFound(format!("couldn't find interface named '{bad}'")),
        );
        assert!(net.def(bad).is_err());
    }
    // A port is found by name, though not listed.
    assert!(net.lookup_by_name("eth1").is_ok());
}

#[test]
fn fake_bond_and_broken_files() {
    let f = Fake::new();
    eth(&f, "eth2", "52:54:00:00:00:02", "up");
    eth(&f, "eth3", "52:54:00:00:00:03", "up");
    let b = f.dev(
        "bond0",
        &[
            ("address", "52:54:00:00:00:02"),
            ("operstate", "up"),
            ("mtu", "9000"),
            ("uevent", "DEVTYPE=bond"),
            ("bonding/downdelay", "0"),
            ("bonding/updelay", "10"),
            ("bonding/miimon", "100"),
            ("bonding/arp_interval", "0"),
            ("bonding/mode", "active-backup 1"),
            ("bonding/arp_validate", "none 0"),
            ("bonding/use_carrier", "1"),
            ("bonding/arp_ip_target", ""),
            ("slave_eth2/x", ""),
            ("slave_eth3/x", ""),
        ],
    );
    let net = f.net();
    assert_eq!(
        net.def("bond0").unwrap().to_xml(),
        "<interface type='bond' name='bond0'>\n  <mtu size='9000'/>\n  <link state='up'/>\n  <bond mode='active-backup'>\n    <miimon freq='100' updelay='10' carrier='netif'/>\n    <interface type='ethernet' name='eth2'>\n      <link speed='1000' state='up'/>\n      <mac address='52:54:00:00:00:02'/>\n    </interface>\n    <interface type='ethernet' name='eth3'>\n      <link speed='1000' state='up'/>\n      <mac address='52:54:00:00:00:03'/>\n    </interface>\n  </bond>\n</interface>\n"
    );
    std::fs::write(b.join("bonding/mode"), "weird\n").unwrap();
    assert_eq!(
        net.def("bond0").unwrap_err(),
        SysfsError::Internal("Invalid format for 'bonding/mode' for 'bond0'".into())
    );
    std::fs::write(f.sys.join("class/net/eth2/mtu"), "lots\n").unwrap();
    assert_eq!(
        net.def("eth2").unwrap_err(),
        SysfsError::Internal("Could not parse MTU value 'lots'".into())
    );
    std::fs::write(f.sys.join("class/net/eth3/speed"), "-1\n").unwrap();
    assert!(
        net.def("eth3")
            .unwrap()
            .to_xml()
            .contains("<link speed='4294967295' state='up'/>")
    );
    std::fs::write(f.sys.join("class/net/eth3/operstate"), "sideways\n").unwrap();
    assert_eq!(
        net.def("eth3").unwrap_err(),
        SysfsError::Internal("Unable to parse: sideways".into())
    );
}
