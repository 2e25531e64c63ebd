//! The iptables rules of a network, as libvirt 9.0's bridge driver adds them (libvirt:
//! networkAddFirewallRules, networkAddGeneralIPv4FirewallRules, networkAddMasqueradingFirewallRules,
//! networkAddRoutingFirewallRules, iptablesSetupPrivateChains): libvirt's private chains
//! `LIBVIRT_INP`/`OUT` (DNS and DHCP to and from the host), `LIBVIRT_FWO`/`FWI`/`FWX`
//! (forwarding out, in and across the bridge) in `filter`, and `LIBVIRT_PRT` in `nat`
//! (masquerading), each jumped to from the built-in chain.
//!
//! Differences, on purpose: the `mangle` table's DHCP `CHECKSUM --checksum-fill` rule is not
//! added (it only helped guests whose DHCP client ignored partial checksums, and the target
//! is deprecated); and a private chain this driver finds empty after removing a network's
//! rules is removed with its jump, so a host with no active network has no trace left.

use super::{ForwardMode, NetworkDef};

/// The private chains: `(table, chain, built-in chain jumping to it)`, in the order the
/// jumps end up in the built-in chains (each is inserted first, so they are added in reverse).
pub const CHAINS: &[(&str, &str, &str)] = &[
    ("filter", "LIBVIRT_INP", "INPUT"),
    ("filter", "LIBVIRT_OUT", "OUTPUT"),
    ("filter", "LIBVIRT_FWX", "FORWARD"),
    ("filter", "LIBVIRT_FWI", "FORWARD"),
    ("filter", "LIBVIRT_FWO", "FORWARD"),
    ("nat", "LIBVIRT_PRT", "POSTROUTING"),
];

/// One rule in a private chain: `iptables -t TABLE -I CHAIN 1 ARGS` adds it, `-D CHAIN ARGS`
/// removes it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Rule {
    pub table: String,
    pub chain: String,
    pub args: Vec<String>,
}

fn rule(table: &str, chain: &str, args: &[&str]) -> Rule {
    Rule {
        table: table.into(),
        chain: chain.into(),
        args: args.iter().map(|s| s.to_string()).collect(),
    }
}

/// The rules of `def`, in the order they end up in their chains (top first). `open` and
/// `bridge` networks have none.
pub fn rules(def: &NetworkDef) -> Vec<Rule> {
    let mode = def.forward.as_ref().map(|f| f.mode);
    if matches!(mode, Some(ForwardMode::Open | ForwardMode::Bridge)) {
        return Vec::new();
    }
    let Some(br) = def.bridge.as_deref() else {
        return Vec::new();
    };
    let dev = def.forward.as_ref().and_then(|f| f.dev.as_deref());
    let mut v = Vec::new();
    // DNS and DHCP to the host, and their answers.
    for (p, port) in [("udp", "53"), ("tcp", "53"), ("udp", "67"), ("tcp", "67")] {
        v.push(rule(
            "filter",
            "LIBVIRT_INP",
            &["-i", br, "-p", p, "-m", p, "--dport", port, "-j", "ACCEPT"],
        ));
    }
    for (p, port) in [("udp", "53"), ("tcp", "53"), ("udp", "68"), ("tcp", "68")] {
        v.push(rule(
            "filter",
            "LIBVIRT_OUT",
            &["-o", br, "-p", p, "-m", p, "--dport", port, "-j", "ACCEPT"],
        ));
    }
    // Per address: what may leave and come back (nat, route), and the masquerading (nat).
    for ip in &def.ips {
        let net = ip.cidr();
        match mode {
            Some(ForwardMode::Nat) => {
                let mut out = vec!["-s", &net, "-i", br];
                let mut inn = vec!["-d", &net];
                if let Some(d) = dev {
                    out.extend(["-o", d]);
                    inn.extend(["-i", d]);
                }
                out.extend(["-j", "ACCEPT"]);
                inn.extend([
                    "-o",
                    br,
                    "-m",
                    "conntrack",
                    "--ctstate",
                    "RELATED,ESTABLISHED",
                    "-j",
                    "ACCEPT",
                ]);
                v.push(rule("filter", "LIBVIRT_FWO", &out));
                v.push(rule("filter", "LIBVIRT_FWI", &inn));
                let (ps, pe) = def
                    .forward
                    .as_ref()
                    .and_then(|f| f.nat_ports)
                    .unwrap_or((1024, 65535));
                let ports = format!("{ps}-{pe}");
                let odev: Vec<&str> = dev.map(|d| vec!["-o", d]).unwrap_or_default();
                let prt = |mid: &[&str], tail: &[&str]| {
                    let mut x: Vec<&str> = vec!["-s", &net];
                    x.extend_from_slice(mid);
                    x.extend_from_slice(&odev);
                    x.extend_from_slice(tail);
                    rule("nat", "LIBVIRT_PRT", &x)
                };
                v.push(prt(&["-d", "224.0.0.0/24"], &["-j", "RETURN"]));
                v.push(prt(&["-d", "255.255.255.255/32"], &["-j", "RETURN"]));
                for p in ["tcp", "udp"] {
                    v.push(prt(
                        &["!", "-d", &net, "-p", p],
                        &["-j", "MASQUERADE", "--to-ports", &ports],
                    ));
                }
                v.push(prt(&["!", "-d", &net], &["-j", "MASQUERADE"]));
            }
            Some(ForwardMode::Route) => {
                let mut out = vec!["-s", &net, "-i", br];
                let mut inn = vec!["-d", &net];
                if let Some(d) = dev {
                    out.extend(["-o", d]);
                    inn.extend(["-i", d]);
                }
                out.extend(["-j", "ACCEPT"]);
                inn.extend(["-o", br, "-j", "ACCEPT"]);
                v.push(rule("filter", "LIBVIRT_FWO", &out));
                v.push(rule("filter", "LIBVIRT_FWI", &inn));
            }
            _ => {}
        }
    }
    // Everything else is refused, guests on the bridge may talk to each other.
    v.push(rule(
        "filter",
        "LIBVIRT_FWO",
        &[
            "-i",
            br,
            "-j",
            "REJECT",
            "--reject-with",
            "icmp-port-unreachable",
        ],
    ));
    v.push(rule(
        "filter",
        "LIBVIRT_FWI",
        &[
            "-o",
            br,
            "-j",
            "REJECT",
            "--reject-with",
            "icmp-port-unreachable",
        ],
    ));
    v.push(rule(
        "filter",
        "LIBVIRT_FWX",
        &["-i", br, "-o", br, "-j", "ACCEPT"],
    ));
    v
}

/// Whether the network routes between the bridge and the host's other interfaces (and so
/// needs `net.ipv4.ip_forward`).
pub fn forwards(def: &NetworkDef) -> bool {
    matches!(
        def.forward.as_ref().map(|f| f.mode),
        Some(ForwardMode::Nat | ForwardMode::Route)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(fwd: &str) -> NetworkDef {
        NetworkDef::parse(&format!(
            "<network><name>n</name>{fwd}<bridge name='virbr9'/>
             <ip address='10.1.2.1' prefix='24'/></network>"
        ))
        .unwrap()
    }

    fn lines(d: &NetworkDef) -> Vec<String> {
        rules(d)
            .iter()
            .map(|r| format!("{} {} {}", r.table, r.chain, r.args.join(" ")))
            .collect()
    }

    #[test]
    fn nat_masquerades_the_network() {
        let l = lines(&def("<forward mode='nat'/>"));
        assert!(l.contains(&"filter LIBVIRT_FWO -s 10.1.2.0/24 -i virbr9 -j ACCEPT".into()));
        assert!(l.contains(
            &"filter LIBVIRT_FWI -d 10.1.2.0/24 -o virbr9 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT".into()
        ));
        let prt: Vec<&String> = l.iter().filter(|r| r.starts_with("nat")).collect();
        assert_eq!(
            prt,
            [
                "nat LIBVIRT_PRT -s 10.1.2.0/24 -d 224.0.0.0/24 -j RETURN",
                "nat LIBVIRT_PRT -s 10.1.2.0/24 -d 255.255.255.255/32 -j RETURN",
                "nat LIBVIRT_PRT -s 10.1.2.0/24 ! -d 10.1.2.0/24 -p tcp -j MASQUERADE --to-ports 1024-65535",
                "nat LIBVIRT_PRT -s 10.1.2.0/24 ! -d 10.1.2.0/24 -p udp -j MASQUERADE --to-ports 1024-65535",
                "nat LIBVIRT_PRT -s 10.1.2.0/24 ! -d 10.1.2.0/24 -j MASQUERADE",
            ]
        );
        assert!(forwards(&def("<forward mode='nat'/>")));
    }

    #[test]
    fn isolated_route_and_open() {
        let iso = lines(&def(""));
        assert!(
            !iso.iter()
                .any(|r| r.contains("ACCEPT") && r.contains("FWO"))
        );
        assert!(iso.contains(&"filter LIBVIRT_FWX -i virbr9 -o virbr9 -j ACCEPT".into()));
        assert!(!forwards(&def("")));
        let route = lines(&def("<forward mode='route' dev='eth0'/>"));
        assert!(
            route.contains(&"filter LIBVIRT_FWO -s 10.1.2.0/24 -i virbr9 -o eth0 -j ACCEPT".into())
        );
        assert!(!route.iter().any(|r| r.starts_with("nat")));
        assert!(rules(&def("<forward mode='open'/>")).is_empty());
    }
}
