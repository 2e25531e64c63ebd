//! Interfaces on taps, as libvirt makes them: `<interface type='bridge'>` gets a `vnetN` tap
//! in the bridge (the guest's MAC with a 0xFE first byte, the bridge's MTU, up), and
//! `<interface type='ethernet'>` a tap of its own; QEMU gets them as fds and they are gone
//! with it. Everything runs in a network namespace of the test's own (a bridge there with an
//! address, the guest pings it), so no traffic leaves the namespace.

#[path = "common/bootkit.rs"]
mod bootkit;
mod common;
#[path = "common/netns.rs"]
mod netns;
#[path = "common/vshrun.rs"]
mod vshrun;

use std::time::{Duration, Instant};

use netns::{Netns, domain};
use vshrun::wait_for;

const MAC: &str = "52:54:00:aa:bb:01";

/// The guest: an address on the bridged NIC, then ping the bridge until it answers.
const GUEST: &str = "ip link set eth0 up; ip addr add 10.213.7.2/24 dev eth0; \
for i in $(seq 1 60); do ping -c 1 -W 2 10.213.7.1 >/dev/null 2>&1 && { echo TAP-PING-OK; break; }; done";

#[test]
fn bridge_and_ethernet_interfaces_get_taps_that_go_with_the_guest() {
    if netns::skip("taps need", &["ip"]) {
        return;
    }
    let ns = Netns::new(
        "vshtap",
        &[
            "ip link add br0 type bridge",
            "ip addr add 10.213.7.1/24 dev br0",
            "ip link set br0 up",
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("r");
    let _reap = vshrun::Reaper(root.clone(), vec!["tap", "nobr", "net", "unmanaged"]);
    let mut vsh = vshrun::Vsh::new(root);
    vsh.wrapper = ns.wrapper();
    let file = |name: &str, body: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, body).unwrap();
        p.display().to_string()
    };
    let serial = dir.path().join("serial.log");

    // Refusals first, in libvirt's words; none leaves a tap or a QEMU behind.
    let refusals = [
        (
            "nobr",
            "<interface type='bridge'><source bridge='nobr0'/><model type='virtio'/></interface>",
            "error: Unable to add bridge nobr0 port vnet0: No such device\n",
        ),
        (
            "net",
            "<interface type='network'><source network='default'/></interface>",
            "error: Network not found: no network with matching name 'default'\n",
        ),
        (
            "unmanaged",
            "<interface type='ethernet'><target dev='nosuch0' managed='no'/></interface>",
            "error: internal error: target managed='no' but specified dev doesn't exist\n",
        ),
    ];
    for (name, nic, msg) in refusals {
        let x = file(
            &format!("{name}.xml"),
            &domain(name, None, GUEST, &serial, nic),
        );
        vsh.ok(&["define", &x]);
        let e = vsh.fails(&["start", name]);
        assert_eq!(
            e,
            format!("error: Failed to start domain '{name}'\n{msg}"),
            "{name}"
        );
        assert_eq!(vsh.ok(&["domstate", name]), "shut off\n\n");
        let (_, links) = ns.exec("ip", &["-o", "link"]);
        assert!(!links.contains("vnet"), "a tap was left: {links}");
    }

    let Some(kit) = bootkit::linux() else {
        return;
    };
    let nics = format!(
        "<interface type='bridge'><mac address='{MAC}'/><source bridge='br0'/>
           <model type='virtio'/></interface>
         <interface type='ethernet'><target dev='vshtap0'/><model type='e1000'/></interface>"
    );
    let x = file("tap.xml", &domain("tap", Some(&kit), GUEST, &serial, &nics));
    vsh.ok(&["define", &x]);
    vsh.ok(&["start", "tap"]);

    // The live XML names the taps; the bridge port has the host-side MAC and is up.
    let live = vsh.ok(&["dumpxml", "tap"]);
    assert!(live.contains("<target dev='vnet0'/>"), "{live}");
    assert!(live.contains("<target dev='vshtap0'/>"), "{live}");
    let (ok, vnet0) = ns.exec("ip", &["-o", "link", "show", "vnet0"]);
    assert!(ok, "{vnet0}");
    assert!(vnet0.contains("master br0"), "{vnet0}");
    assert!(vnet0.contains("link/ether fe:54:00:aa:bb:01"), "{vnet0}");
    assert!(vnet0.contains(",UP"), "{vnet0}");
    let (ok, eth) = ns.exec("ip", &["-o", "link", "show", "vshtap0"]);
    assert!(ok && !eth.contains("master"), "{eth}");
    assert_eq!(
        vsh.ok(&["domiflist", "tap"])
            .lines()
            .filter(|l| l.contains("vnet0") || l.contains("vshtap0"))
            .count(),
        2
    );

    // Traffic crosses the bridge (inside the namespace only).
    assert!(
        wait_for(&serial, "TAP-PING-OK", 120),
        "the guest never reached the bridge: {}",
        std::fs::read_to_string(&serial).unwrap_or_default()
    );

    // Hotplug: a tap made and passed to QEMU by name, in the bridge, gone after detach; a
    // missing bridge refused before QEMU sees anything.
    let e = vsh.fails(&[
        "attach-interface",
        "tap",
        "--type",
        "bridge",
        "--source",
        "nobr0",
        "--live",
    ]);
    assert_eq!(
        e,
        "error: Failed to attach interface\nerror: Unable to add bridge nobr0 port vnet1: No such device\n"
    );
    let (_, links) = ns.exec("ip", &["-o", "link"]);
    assert!(!links.contains("vnet1"), "{links}");
    vsh.ok(&[
        "attach-interface",
        "tap",
        "--type",
        "bridge",
        "--source",
        "br0",
        "--model",
        "virtio",
        "--mac",
        "52:54:00:aa:bb:02",
        "--live",
    ]);
    assert!(
        vsh.ok(&["dumpxml", "tap"])
            .contains("<target dev='vnet1'/>")
    );
    let (ok, vnet1) = ns.exec("ip", &["-o", "link", "show", "vnet1"]);
    assert!(ok && vnet1.contains("master br0"), "{vnet1}");
    assert!(vnet1.contains("link/ether fe:54:00:aa:bb:02"), "{vnet1}");
    vsh.ok(&[
        "detach-interface",
        "tap",
        "--type",
        "bridge",
        "--mac",
        "52:54:00:aa:bb:02",
        "--live",
    ]);
    let until = Instant::now() + Duration::from_secs(30 * vshrun::multiplier());
    while ns.exec("ip", &["link", "show", "vnet1"]).0 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        !ns.exec("ip", &["link", "show", "vnet1"]).0,
        "vnet1 outlived its detach"
    );
    assert!(!vsh.ok(&["dumpxml", "tap"]).contains("vnet1"));

    // Gone with the guest; the definition never kept their names.
    vsh.ok(&["destroy", "tap"]);
    let (_, links) = ns.exec("ip", &["-o", "link"]);
    assert!(
        !links.contains("vnet0") && !links.contains("vshtap0"),
        "{links}"
    );
    let inactive = vsh.ok(&["dumpxml", "tap", "--inactive"]);
    assert!(!inactive.contains("vnet0"), "{inactive}");
}
