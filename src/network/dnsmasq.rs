//! dnsmasq's configuration for a network, as libvirt writes it (libvirt:
//! networkDnsmasqConfContents) with one difference: there is no daemon to run libvirt's
//! lease helper, so dnsmasq keeps its leases itself (`dhcp-leasefile=`), in dnsmasq's own
//! format, which [`parse_leases`] reads back.
//!
//! The static hosts (`<host>`) are `dhcp-host=` lines of the conf file rather than libvirt's
//! `dhcp-hostsfile`: dnsmasq reads a hosts file only after it has dropped root (so that a
//! SIGHUP reload reads it the same way), and the connection's run dir is private (0700), so
//! the file would go unread; the conf file is read while dnsmasq is still root. Its lease
//! file is opened before the drop too. For the same reason there is no `addn-hosts` file
//! (it would be empty: `<dns>` host records are not supported).

use std::fmt::Write as _;
use std::net::Ipv4Addr;

use super::NetworkDef;

/// Where a network's dnsmasq files go (chosen by the driver).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsmasqPaths {
    pub pid_file: String,
    pub lease_file: String,
}

/// Whether the network needs a dnsmasq at all: a bridge it makes, with an IPv4 address
/// (libvirt starts one for DNS even without DHCP).
pub fn needed(def: &NetworkDef) -> bool {
    def.makes_bridge() && !def.ips.is_empty()
}

/// The conf file's text.
pub fn conf(def: &NetworkDef, paths: &DnsmasqPaths) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "##WARNING:  THIS IS AN AUTO-GENERATED FILE. CHANGES TO IT ARE LIKELY TO BE\n\
         ##OVERWRITTEN AND LOST.  Changes to this configuration should be made using:\n\
         ##    vsh net-edit {}\n\
         ## or other application using the libvirt API.\n\
         ##\n\
         ## dnsmasq conf file created by domdriver",
        def.name
    );
    s.push_str("strict-order\n");
    if def.dns_enable == Some(false) {
        // libvirt: DNS disabled is dnsmasq with no DNS port.
        s.push_str("port=0\n");
    } else if let Some(d) = &def.domain {
        let _ = writeln!(s, "domain={d}\nexpand-hosts");
    }
    let _ = writeln!(s, "pid-file={}", paths.pid_file);
    s.push_str("except-interface=lo\nbind-dynamic\n");
    if let Some(b) = &def.bridge {
        let _ = writeln!(s, "interface={b}");
    }
    if let Some(ip) = def.dhcp_ip() {
        for (start, end) in &ip.ranges {
            let _ = writeln!(s, "dhcp-range={start},{end},{}", ip.netmask());
        }
        if ip.ranges.is_empty() && !ip.hosts.is_empty() {
            // Static hosts only (libvirt: a "static" range for the network).
            let _ = writeln!(s, "dhcp-range={},static", ip.network());
        }
        if !ip.ranges.is_empty() || !ip.hosts.is_empty() {
            s.push_str("dhcp-no-override\ndhcp-authoritative\n");
            // libvirt: the ranges' size (the static hosts' count without ranges).
            let max = match ip.range_size() {
                0 => ip.hosts.len() as u32,
                n => n,
            };
            let _ = writeln!(s, "dhcp-lease-max={max}");
            for line in host_lines(def) {
                let _ = writeln!(s, "dhcp-host={line}");
            }
            let _ = writeln!(s, "dhcp-leasefile={}", paths.lease_file);
        }
    }
    s
}

/// One entry per `<host>` (libvirt: dhcphostsAdd), `mac,ip,name`, `mac,ip` or `name,ip`.
fn host_lines(def: &NetworkDef) -> Vec<String> {
    let mut s = Vec::new();
    for h in def
        .dhcp_ip()
        .map(|i| i.hosts.as_slice())
        .unwrap_or_default()
    {
        let ip = h.ip.map(|i| i.to_string()).unwrap_or_default();
        let line = match (&h.mac, &h.name) {
            (Some(m), Some(n)) => format!("{m},{ip},{n}"),
            (Some(m), None) => format!("{m},{ip}"),
            (None, Some(n)) => format!("{n},{ip}"),
            (None, None) => continue,
        };
        s.push(line);
    }
    s
}

/// One DHCP lease, as `net-dhcp-leases` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Lease {
    /// Seconds since the epoch; 0 for an infinite lease.
    pub expiry: i64,
    pub mac: String,
    pub ip: Ipv4Addr,
    pub hostname: Option<String>,
    pub client_id: Option<String>,
}

/// dnsmasq's lease file: `EXPIRY MAC IP HOSTNAME CLIENTID` per line, `*` for none. Lines
/// that do not parse (IPv6 `duid` lines, garbage) are skipped.
pub fn parse_leases(text: &str) -> Vec<Lease> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() < 4 {
                return None;
            }
            let opt = |s: &str| (s != "*").then(|| s.to_string());
            Some(Lease {
                expiry: f[0].parse().ok()?,
                mac: f[1].to_ascii_lowercase(),
                ip: f[2].parse().ok()?,
                hostname: opt(f[3]),
                client_id: f.get(4).and_then(|c| opt(c)),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths() -> DnsmasqPaths {
        DnsmasqPaths {
            pid_file: "/run/n.pid".into(),
            lease_file: "/lib/n.leases".into(),
        }
    }

    #[test]
    fn conf_of_the_default_network() {
        let mut d = NetworkDef::parse(
            "<network><name>default</name><forward mode='nat'/><bridge name='virbr0'/>
             <ip address='192.168.122.1' netmask='255.255.255.0'><dhcp>
             <range start='192.168.122.2' end='192.168.122.254'/>
             <host mac='52:54:00:00:00:01' name='a' ip='192.168.122.10'/></dhcp></ip></network>",
        )
        .unwrap();
        d.fill_defaults(|_| false, [1, 2, 3]);
        let c = conf(&d, &paths());
        let body: Vec<&str> = c.lines().filter(|l| !l.starts_with("##")).collect();
        assert_eq!(
            body,
            [
                "strict-order",
                "pid-file=/run/n.pid",
                "except-interface=lo",
                "bind-dynamic",
                "interface=virbr0",
                "dhcp-range=192.168.122.2,192.168.122.254,255.255.255.0",
                "dhcp-no-override",
                "dhcp-authoritative",
                "dhcp-lease-max=253",
                "dhcp-host=52:54:00:00:00:01,192.168.122.10,a",
                "dhcp-leasefile=/lib/n.leases",
            ]
        );
    }

    #[test]
    fn leases_are_read_from_dnsmasqs_file() {
        let l = parse_leases(
            "1700000000 52:54:00:AA:bb:01 10.0.0.5 guest 01:52:54:00:aa:bb:01\n\
             0 52:54:00:aa:bb:02 10.0.0.6 * *\nduid 00:01\ngarbage\n",
        );
        assert_eq!(l.len(), 2);
        assert_eq!(l[0].mac, "52:54:00:aa:bb:01");
        assert_eq!(l[0].hostname.as_deref(), Some("guest"));
        assert_eq!(l[1].hostname, None);
        assert_eq!(l[1].client_id, None);
    }
}
