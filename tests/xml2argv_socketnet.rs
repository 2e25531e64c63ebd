//! Socket networks with a QEMU that takes `-netdev` only as key=value (no netdev JSON, as
//! before QEMU 7.0): the same properties, in the same order, as `socket,KEY=VALUE,...`.

mod common;

use domdriver::capabilities::qemu::{QemuCaps, probe_replies};
use domdriver::conformance::harness::run_case;

fn caps(ver: &str) -> QemuCaps {
    let path = common::testdata().join(format!(
        "tests/qemucapabilitiesdata/caps_{ver}.x86_64.replies"
    ));
    domdriver::runtime::block_on(probe_replies(&path, "/usr/bin/qemu-system-x86_64"))
        .unwrap_or_else(|e| panic!("replay caps_{ver}.x86_64: {e}"))
}

fn netdev_with_qemu_6_2(case: &str) -> String {
    let caps = caps("6.2.0");
    assert!(!caps.has_flag("netdev.json"), "6.2.0 must lack netdev JSON");
    let xml = std::fs::read_to_string(common::data().join(format!("xml2argv/{case}.xml")))
        .expect("golden input");
    let (ext, body) = run_case(case, "x86_64", &xml, &caps);
    assert_eq!(ext, "args", "{body}");
    body.lines()
        .find_map(|l| l.strip_prefix("-netdev "))
        .map(|l| l.trim_end_matches(" \\").to_string())
        .unwrap_or_else(|| panic!("no -netdev in {body}"))
}

#[test]
fn socket_netdevs_as_key_value() {
    assert_eq!(
        netdev_with_qemu_6_2("net-server"),
        "socket,listen=127.0.0.1:5558,id=hostnet0"
    );
    assert_eq!(
        netdev_with_qemu_6_2("net-client"),
        "socket,connect=127.0.0.1:5558,id=hostnet0"
    );
    assert_eq!(
        netdev_with_qemu_6_2("net-mcast"),
        "socket,mcast=230.0.0.1:5558,id=hostnet0"
    );
    assert_eq!(
        netdev_with_qemu_6_2("net-udp"),
        "socket,udp=127.0.0.1:5560,localaddr=127.0.0.1:5559,id=hostnet0"
    );
}

/// A prepared socket interface keeps its endpoints and gets what every NIC gets: a MAC when
/// it has none, and a PCI address.
#[test]
fn prepared_socket_interfaces() {
    let caps = caps("8.0.0");
    let prepared = |case: &str| {
        let xml = std::fs::read_to_string(common::data().join(format!("xml2argv/{case}.xml")))
            .expect("golden input");
        let def = domdriver::domain::parse(&xml).expect("parse");
        let opts = domdriver::conformance::harness::prepare_options(case, "x86_64");
        let def = domdriver::domain::prepare(def, &caps, &opts).expect("prepare");
        domdriver::domain::format(
            &def,
            domdriver::domain::FormatFlags {
                inactive: true,
                secure: false,
            },
        )
    };
    let udp = prepared("net-udp");
    assert!(
        udp.contains(
            "<source address='127.0.0.1' port='5560'>\n        <local address='127.0.0.1' port='5559'/>\n      </source>"
        ),
        "{udp}"
    );
    assert!(udp.contains("<model type='virtio'/>"), "{udp}");
    let client = prepared("net-client");
    assert!(client.contains("<interface type='client'>"), "{client}");
    assert!(client.contains("<mac address='52:54:00:"), "{client}");
    assert!(
        client.contains(
            "<address type='pci' domain='0x0000' bus='0x00' slot='0x02' function='0x0'/>"
        ),
        "{client}"
    );
    // The MAC is stable: preparing the same definition again gives the same one.
    assert_eq!(client, prepared("net-client"));
}
