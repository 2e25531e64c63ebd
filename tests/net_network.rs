//! Virtual networks, as libvirt's bridge driver runs them: `net-start` of a `nat` network
//! makes its bridge, iptables rules and dnsmasq; a guest with `<interface type='network'>`
//! gets a tap in that bridge, a DHCP lease from that dnsmasq (`net-dhcp-leases` and
//! `domifaddr --source lease` show it) and reaches the bridge; `net-destroy` leaves nothing.
//! Everything runs in a network namespace of the test's own, so no traffic leaves it.

#[path = "common/bootkit.rs"]
mod bootkit;
mod common;
#[path = "common/netns.rs"]
mod netns;
#[path = "common/vshrun.rs"]
mod vshrun;

use std::path::Path;
use std::time::{Duration, Instant};

use netns::{Netns, domain};
use vshrun::wait_for;

const MAC: &str = "52:54:00:aa:bc:11";

/// Destroys the named networks on drop (a failed test must not leave a dnsmasq running:
/// it would outlive the namespace).
struct NetGuard<'a>(&'a vshrun::Vsh, Vec<&'static str>);

impl Drop for NetGuard<'_> {
    fn drop(&mut self) {
        for n in &self.1 {
            let _ = self.0.run(&["net-destroy", n]);
        }
    }
}

/// The guest: DHCP on its NIC (udhcpc, with a script that sets the address it is given),
/// then ping the bridge until it answers.
const GUEST: &str = "printf '#!/bin/sh\\n[ \"$1\" = bound ] && ip addr add $ip/$mask dev $interface\\nexit 0\\n' > /tmp/u.sh; \
chmod +x /tmp/u.sh; ip link set eth0 up; \
udhcpc -i eth0 -s /tmp/u.sh -x hostname:netguest -n -q -t 30 -T 2 && echo DHCP-OK; ip -o -4 addr show eth0; \
for i in $(seq 1 60); do ping -c 1 -W 2 10.213.9.1 >/dev/null 2>&1 && { echo NET-PING-OK; break; }; done";

const NAT: &str = "<network><name>testnet</name><forward mode='nat'/>
  <ip address='10.213.9.1' netmask='255.255.255.0'><dhcp>
    <range start='10.213.9.100' end='10.213.9.199'/>
    <host mac='52:54:00:aa:bc:11' name='netguest' ip='10.213.9.50'/>
  </dhcp></ip></network>";

#[test]
fn nat_network_gives_a_guest_a_lease_and_leaves_nothing_behind() {
    if netns::skip("bridges and taps need", &["ip", "iptables", "dnsmasq"]) {
        return;
    }
    let ns = Netns::new("vshnet", &[]);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("r");
    let _reap = vshrun::Reaper(root.clone(), vec!["netvm", "nonet", "offnet"]);
    let mut vsh = vshrun::Vsh::new(root.clone());
    vsh.wrapper = ns.wrapper();
    let file = |name: &str, body: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, body).unwrap();
        p.display().to_string()
    };
    let serial = dir.path().join("serial.log");
    let vsh = vsh;
    let _nets = NetGuard(&vsh, vec!["testnet", "hostbr"]);

    // --help, and refusals in libvirt's words.
    assert!(
        vsh.ok(&["net-start", "--help"])
            .contains("net-start <network>")
    );
    let bad = file(
        "bad.xml",
        "<network><name>bad</name><forward mode='bogus'/></network>",
    );
    assert_eq!(
        vsh.fails(&["net-define", &bad]),
        format!(
            "error: Failed to define network from {bad}\nerror: unsupported configuration: unknown forwarding type 'bogus'\n"
        )
    );
    assert_eq!(
        vsh.fails(&["net-start", "nosuch"]),
        "error: failed to get network 'nosuch'\nerror: Network not found: no network with matching name 'nosuch'\n"
    );

    let nat = file("nat.xml", NAT);
    assert_eq!(
        vsh.ok(&["net-define", &nat]),
        format!("Network testnet defined from {nat}\n\n")
    );
    // libvirt's defaults: the lowest free virbrN, a 52:54:00 MAC, masquerading ports.
    let inactive = vsh.ok(&["net-dumpxml", "testnet"]);
    assert!(
        inactive.contains("<bridge name='virbr0' stp='on' delay='0'/>"),
        "{inactive}"
    );
    assert!(inactive.contains("<mac address='52:54:00:"), "{inactive}");
    assert!(
        inactive.contains("<port start='1024' end='65535'/>"),
        "{inactive}"
    );
    assert_eq!(
        vsh.ok(&["net-list", "--all"]),
        " Name      State      Autostart   Persistent\n----------------------------------------------\n testnet   inactive   no          yes\n\n"
    );

    // A guest on an inactive or unknown network does not start.
    let nic = |net: &str| {
        format!(
            "<interface type='network'><mac address='{MAC}'/><source network='{net}'/><model type='virtio'/></interface>"
        )
    };
    for (name, net, msg) in [
        (
            "offnet",
            "testnet",
            "Requested operation is not valid: network 'testnet' is not active",
        ),
        (
            "nonet",
            "nosuch",
            "Network not found: no network with matching name 'nosuch'",
        ),
    ] {
        let x = file(
            &format!("{name}.xml"),
            &domain(name, None, GUEST, &serial, &nic(net)),
        );
        vsh.ok(&["define", &x]);
        assert_eq!(
            vsh.fails(&["start", name]),
            format!("error: Failed to start domain '{name}'\nerror: {msg}\n")
        );
    }

    assert_eq!(
        vsh.ok(&["net-start", "testnet"]),
        "Network testnet started\n\n"
    );
    assert_eq!(
        vsh.fails(&["net-start", "testnet"]),
        "error: Failed to start network testnet\nerror: Requested operation is not valid: network is already active\n"
    );
    let (ok, br) = ns.exec("ip", &["-o", "-4", "addr", "show", "virbr0"]);
    assert!(ok && br.contains("inet 10.213.9.1/24"), "{br}");
    let (_, rules) = ns.exec("iptables", &["-w", "-S"]);
    assert!(
        rules.contains("-A LIBVIRT_FWO -s 10.213.9.0/24 -i virbr0 -j ACCEPT"),
        "{rules}"
    );
    let (_, nat_rules) = ns.exec("iptables", &["-w", "-t", "nat", "-S"]);
    assert!(
        nat_rules.contains("-A LIBVIRT_PRT -s 10.213.9.0/24 ! -d 10.213.9.0/24 -j MASQUERADE"),
        "{nat_rules}"
    );
    assert_eq!(ns.exec("cat", &["/proc/sys/net/ipv4/ip_forward"]).1, "1\n");
    let pid_file = root.join("run/qemu/networks/testnet.pid");
    let pid = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .to_string();
    assert!(Path::new(&format!("/proc/{pid}")).exists());
    let info = vsh.ok(&["net-info", "testnet"]);
    assert!(
        info.contains("Active:         yes\n") && info.contains("Bridge:         virbr0\n"),
        "{info}"
    );
    let j = vsh.ok(&["net-info", "testnet", "--json"]);
    assert!(j.contains("\"bridge\": \"virbr0\""), "{j}");

    if let Some(kit) = bootkit::linux() {
        let x = file(
            "netvm.xml",
            &domain("netvm", Some(&kit), GUEST, &serial, &nic("testnet")),
        );
        vsh.ok(&["define", &x]);
        vsh.ok(&["start", "netvm"]);
        // libvirt's live XML: the network's bridge and a port id in <source>.
        let live = vsh.ok(&["dumpxml", "netvm"]);
        assert!(
            live.contains("<source network='testnet' portid='"),
            "{live}"
        );
        assert!(live.contains("bridge='virbr0'/>"), "{live}");
        assert!(live.contains("<target dev='vnet0'/>"), "{live}");
        let (_, vnet0) = ns.exec("ip", &["-o", "link", "show", "vnet0"]);
        assert!(vnet0.contains("master virbr0"), "{vnet0}");
        // The interface's port on the network, by the port id of its live XML.
        let portid = live
            .split("portid='")
            .nth(1)
            .and_then(|r| r.split('\'').next())
            .unwrap()
            .to_string();
        assert_eq!(
            vsh.ok(&["net-port-list", "testnet", "--uuid"]),
            format!("{portid}\n\n")
        );
        let port = vsh.ok(&["net-port-dumpxml", "testnet", &portid]);
        assert!(
            port.contains("<name>netvm</name>")
                && port.contains(&format!("<mac address='{MAC}'/>"))
                && port.contains("<plug type='network' bridge='virbr0'/>"),
            "{port}"
        );
        assert_eq!(
            vsh.fails(&["net-port-delete", "testnet", &portid]),
            format!(
                "error: Failed to delete network port {portid}\nerror: Requested operation is not valid: network port {portid} is the port of running domain 'netvm'; detach its interface instead\n"
            )
        );

        // The static host entry gives the guest its address; the bridge answers it.
        assert!(
            wait_for(&serial, "NET-PING-OK", 180),
            "the guest never reached the bridge: {}",
            std::fs::read_to_string(&serial).unwrap_or_default()
        );
        let serial_text = std::fs::read_to_string(&serial).unwrap_or_default();
        assert!(serial_text.contains("DHCP-OK"), "{serial_text}");
        assert!(serial_text.contains("inet 10.213.9.50/24"), "{serial_text}");
        let leases = vsh.ok(&["net-dhcp-leases", "testnet"]);
        let row = leases.lines().nth(2).unwrap_or_default();
        assert!(row.contains(MAC), "{leases}");
        assert!(
            row.contains("ipv4       10.213.9.50/24   netguest"),
            "{leases}"
        );
        assert!(
            vsh.ok(&["net-dhcp-leases", "testnet", "--mac", "52:54:00:00:00:99"])
                .lines()
                .nth(2)
                .is_none_or(str::is_empty)
        );
        let addr = vsh.ok(&["domifaddr", "netvm", "--source", "lease"]);
        assert!(addr.contains("10.213.9.50/24"), "{addr}");

        // Hotplug onto a `bridge` network: an existing host bridge, nothing made for it.
        ns.exec("ip", &["link", "add", "hostbr", "type", "bridge"]);
        ns.exec("ip", &["link", "set", "hostbr", "up"]);
        let hb = file(
            "hb.xml",
            "<network><name>hostbr</name><forward mode='bridge'/><bridge name='hostbr'/></network>",
        );
        vsh.ok(&["net-create", &hb]);
        assert!(
            vsh.ok(&["net-list", "--transient", "--name"])
                .contains("hostbr")
        );
        vsh.ok(&[
            "attach-interface",
            "netvm",
            "--type",
            "network",
            "--source",
            "hostbr",
            "--mac",
            "52:54:00:aa:bc:12",
            "--live",
        ]);
        let (_, vnet1) = ns.exec("ip", &["-o", "link", "show", "vnet1"]);
        assert!(vnet1.contains("master hostbr"), "{vnet1}");
        let hport = vsh.ok(&["net-port-list", "hostbr", "--uuid"]);
        let hport = hport.trim();
        assert!(
            vsh.ok(&["net-port-dumpxml", "hostbr", hport])
                .contains("<plug type='bridge' bridge='hostbr'/>")
        );
        vsh.ok(&["destroy", "netvm"]);
        // A stopped guest holds no port.
        assert_eq!(vsh.ok(&["net-port-list", "testnet", "--uuid"]), "\n");
        vsh.ok(&["net-destroy", "hostbr"]);
        assert!(
            ns.exec("ip", &["link", "show", "hostbr"]).0,
            "the host's bridge is not ours"
        );
        assert!(!vsh.ok(&["net-list", "--all", "--name"]).contains("hostbr"));
    }

    // net-update: a static host added to the running dnsmasq and the config at once.
    assert_eq!(
        vsh.ok(&[
            "net-update",
            "testnet",
            "add",
            "ip-dhcp-host",
            "<host mac='52:54:00:aa:bc:13' name='later' ip='10.213.9.51'/>",
            "--live",
            "--config",
        ]),
        "Updated network testnet persistent config and live state\n\n"
    );
    let (_, conf) = ns.exec(
        "cat",
        &[root
            .join("run/qemu/networks/testnet.conf")
            .to_str()
            .unwrap()],
    );
    assert!(
        conf.contains("dhcp-host=52:54:00:aa:bc:13,10.213.9.51,later"),
        "{conf}"
    );
    assert!(
        vsh.ok(&["net-dumpxml", "testnet", "--inactive"])
            .contains("name='later'")
    );
    assert_eq!(
        vsh.fails(&[
            "net-update",
            "testnet",
            "delete",
            "ip-dhcp-host",
            "<host name='nobody'/>"
        ]),
        "error: Failed to update network testnet\nerror: Requested operation is not valid: couldn't locate a matching dhcp host entry in network 'testnet'\n"
    );
    assert_eq!(
        vsh.fails(&["net-update", "testnet", "add", "dns-srv", "<srv/>"]),
        "error: Failed to update network testnet\nerror: Operation not supported: can't update 'dns-srv' section of network 'testnet'\n"
    );
    let pid = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .to_string();

    // A port made by net-port-create; net-destroy removes it with the run files.
    let port = file(
        "port.xml",
        "<networkport><uuid>5d744f21-ba4a-4d6e-bdb2-30a35ff3207d</uuid><owner><name>x</name>\
         <uuid>d54df46f-1ab5-4a22-8618-4560ef5fac2c</uuid></owner>\
         <mac address='52:54:00:7b:35:93'/></networkport>",
    );
    vsh.ok(&["net-port-create", "testnet", &port]);

    // net-destroy: no bridge, no rules, no private chains, no dnsmasq, no run files.
    assert_eq!(
        vsh.ok(&["net-destroy", "testnet"]),
        "Network testnet destroyed\n\n"
    );
    assert!(!ns.exec("ip", &["link", "show", "virbr0"]).0);
    let (_, rules) = ns.exec("iptables", &["-w", "-S"]);
    assert!(!rules.contains("LIBVIRT"), "{rules}");
    let (_, nat_rules) = ns.exec("iptables", &["-w", "-t", "nat", "-S"]);
    assert!(!nat_rules.contains("LIBVIRT"), "{nat_rules}");
    assert_eq!(ns.exec("cat", &["/proc/sys/net/ipv4/ip_forward"]).1, "0\n");
    let until = Instant::now() + Duration::from_secs(5);
    while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(50));
    }
    let gone = std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
        .map_or(true, |c| !c.contains("dnsmasq"));
    assert!(gone, "dnsmasq {pid} outlived net-destroy");
    let left: Vec<_> = std::fs::read_dir(root.join("run/qemu/networks"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    assert_eq!(
        vsh.fails(&["net-destroy", "testnet"]),
        "error: Failed to destroy network testnet\nerror: Requested operation is not valid: network 'testnet' is not active\n"
    );

    // Autostart, undefine.
    assert_eq!(
        vsh.ok(&["net-autostart", "testnet"]),
        "Network testnet marked as autostarted\n\n"
    );
    assert!(
        vsh.ok(&["net-list", "--all", "--autostart", "--name"])
            .contains("testnet")
    );
    let uuid = vsh.ok(&["net-uuid", "testnet"]);
    assert_eq!(vsh.ok(&["net-name", uuid.trim()]), "testnet\n\n");
    assert_eq!(
        vsh.ok(&["net-undefine", "testnet"]),
        "Network testnet has been undefined\n\n"
    );
    assert_eq!(vsh.ok(&["net-list", "--all", "--name"]), "\n");
}
