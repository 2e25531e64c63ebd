//! `virDomainInterfaceAddresses`: the guest's IP addresses from the host's neighbour table
//! (`arp`), DHCP leases (`lease`) or the QEMU guest agent (`agent`).

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use super::DriverError;
use super::domain::Domain;
use crate::domain::DomainDef;

/// Where addresses come from (`VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AddrSource {
    Lease,
    Agent,
    Arp,
}

impl AddrSource {
    /// virsh's names; `None` for others.
    pub fn parse(s: &str) -> Option<AddrSource> {
        match s {
            "lease" => Some(AddrSource::Lease),
            "agent" => Some(AddrSource::Agent),
            "arp" => Some(AddrSource::Arp),
            _ => None,
        }
    }
}

/// One address of an interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IpAddress {
    /// `ipv4` or `ipv6`.
    #[serde(rename = "type")]
    pub family: String,
    pub addr: String,
    pub prefix: u32,
}

/// One interface and its addresses (`virDomainInterface`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Interface {
    pub name: String,
    pub hwaddr: Option<String>,
    pub addrs: Vec<IpAddress>,
}

/// How long the agent may take to answer.
const AGENT_TIMEOUT: Duration = Duration::from_secs(5);

/// Entries of `/proc/net/arp` text whose MAC is one of `def`'s interfaces, per interface.
// libvirt: qemuARPGetInterfaces
pub fn arp_interfaces(def: &DomainDef, arp: &str) -> Vec<Interface> {
    let table: Vec<(String, String)> = arp
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            // IP address, HW type, Flags, HW address, Mask, Device; flags 0x0 is incomplete.
            (f.len() >= 4 && f[2] != "0x0").then(|| (f[0].to_string(), f[3].to_ascii_lowercase()))
        })
        .collect();
    def.devices
        .interfaces
        .iter()
        .filter_map(|n| {
            let mac = n.mac.as_deref()?.to_ascii_lowercase();
            let addrs: Vec<IpAddress> = table
                .iter()
                .filter(|(_, m)| *m == mac)
                .map(|(ip, _)| IpAddress {
                    family: "ipv4".into(),
                    addr: ip.clone(),
                    prefix: 0,
                })
                .collect();
            (!addrs.is_empty()).then(|| Interface {
                name: iface_name(n),
                hwaddr: Some(mac),
                addrs,
            })
        })
        .collect()
}

fn iface_name(n: &crate::domain::devices::Interface) -> String {
    n.target_dev
        .clone()
        .or_else(|| n.info.alias.clone())
        .unwrap_or_else(|| "-".into())
}

/// Leases in libvirt's dnsmasq status files (`*.status` JSON arrays) for `def`'s
/// interfaces on libvirt networks.
// libvirt: qemuGetDHCPInterfaces
pub fn lease_interfaces(def: &DomainDef, status_files: &[String]) -> Vec<Interface> {
    let leases: Vec<Value> = status_files
        .iter()
        .filter_map(|t| serde_json::from_str::<Value>(t).ok()?.as_array().cloned())
        .flatten()
        .collect();
    def.devices
        .interfaces
        .iter()
        .filter(|n| n.itype == "network")
        .filter_map(|n| {
            let mac = n.mac.as_deref()?.to_ascii_lowercase();
            let addrs: Vec<IpAddress> = leases
                .iter()
                .filter(|l| {
                    l["mac-address"]
                        .as_str()
                        .is_some_and(|m| m.eq_ignore_ascii_case(&mac))
                })
                .filter_map(|l| {
                    let ip = l["ip-address"].as_str()?;
                    let v6 = ip.contains(':');
                    Some(IpAddress {
                        family: if v6 { "ipv6" } else { "ipv4" }.into(),
                        addr: ip.to_string(),
                        prefix: l["prefix"]
                            .as_u64()
                            .map_or(if v6 { 64 } else { 24 }, |p| p as u32),
                    })
                })
                .collect();
            Some(Interface {
                name: iface_name(n),
                hwaddr: Some(mac),
                addrs,
            })
        })
        .filter(|i| !i.addrs.is_empty())
        .collect()
}

/// `guest-network-get-interfaces`' answer as interfaces.
// libvirt: qemuAgentGetInterfaces
pub fn agent_interfaces(reply: &Value) -> Vec<Interface> {
    reply
        .as_array()
        .map(|a| a.as_slice())
        .unwrap_or_default()
        .iter()
        .filter_map(|i| {
            Some(Interface {
                name: i["name"].as_str()?.to_string(),
                hwaddr: i["hardware-address"].as_str().map(String::from),
                addrs: i["ip-addresses"]
                    .as_array()
                    .map(|a| a.as_slice())
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|a| {
                        Some(IpAddress {
                            family: a["ip-address-type"].as_str()?.to_string(),
                            addr: a["ip-address"].as_str()?.to_string(),
                            prefix: a["prefix"].as_u64()? as u32,
                        })
                    })
                    .collect(),
            })
        })
        .collect()
}

impl Domain<'_> {
    /// `virDomainInterfaceAddresses` of the running domain from `source`.
    pub fn interface_addresses(&self, source: AddrSource) -> Result<Vec<Interface>, DriverError> {
        let live = self.live_process()?;
        let def = &live.def;
        match source {
            AddrSource::Arp => {
                let arp = std::fs::read_to_string("/proc/net/arp").unwrap_or_default();
                Ok(arp_interfaces(def, &arp))
            }
            AddrSource::Lease => {
                let files: Vec<String> = std::fs::read_dir("/var/lib/libvirt/dnsmasq")
                    .map(|d| {
                        d.filter_map(|e| e.ok())
                            .filter(|e| e.path().extension().is_some_and(|x| x == "status"))
                            .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                            .collect()
                    })
                    .unwrap_or_default();
                let mut files = files;
                // This driver's own networks' leases (dnsmasq's files), in the same shape.
                let ours: Vec<Value> = self
                    .connect()
                    .all_network_leases()
                    .into_iter()
                    .map(|(mac, ip, prefix)| {
                        serde_json::json!({"mac-address": mac, "ip-address": ip, "prefix": prefix})
                    })
                    .collect();
                files.push(Value::Array(ours).to_string());
                Ok(lease_interfaces(def, &files))
            }
            AddrSource::Agent => {
                // Through the guest's monitor, which owns the agent's channel and knows
                // whether the guest has it open (libvirt's errors when not).
                let (mut guest, _) = self.guest()?;
                let v = guest
                    .agent_command("guest-network-get-interfaces", None, AGENT_TIMEOUT)
                    .map_err(super::domain::guest_err)?;
                Ok(agent_interfaces(&v))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def() -> DomainDef {
        crate::domain::parse(
            "<domain type='qemu'><name>m</name><memory>1024</memory><os><type>hvm</type></os>\
             <devices><interface type='network'><mac address='52:54:00:AA:BB:CC'/>\
             <source network='default'/><target dev='vnet0'/></interface></devices></domain>",
        )
        .unwrap()
    }

    #[test]
    fn arp_entries_by_mac() {
        let arp = "IP address       HW type     Flags       HW address            Mask     Device\n\
                   192.168.122.5    0x1         0x2         52:54:00:aa:bb:cc     *        virbr0\n\
                   192.168.122.6    0x1         0x0         52:54:00:aa:bb:cc     *        virbr0\n\
                   10.0.0.1         0x1         0x2         00:11:22:33:44:55     *        eth0\n";
        let i = arp_interfaces(&def(), arp);
        assert_eq!(i.len(), 1);
        assert_eq!(i[0].name, "vnet0");
        assert_eq!(
            i[0].addrs,
            vec![IpAddress {
                family: "ipv4".into(),
                addr: "192.168.122.5".into(),
                prefix: 0
            }]
        );
    }

    #[test]
    fn leases_by_mac() {
        let status = r#"[{"ip-address": "192.168.122.9", "mac-address": "52:54:00:aa:bb:cc", "hostname": "g", "expiry-time": 1}]"#;
        let i = lease_interfaces(&def(), &[status.to_string()]);
        assert_eq!(i[0].addrs[0].addr, "192.168.122.9");
        assert_eq!(i[0].addrs[0].prefix, 24);
        assert!(lease_interfaces(&def(), &[]).is_empty());
    }

    #[test]
    fn agent_reply() {
        let r = serde_json::json!([{"name": "lo", "hardware-address": "00:00:00:00:00:00",
            "ip-addresses": [{"ip-address-type": "ipv4", "ip-address": "127.0.0.1", "prefix": 8}]}]);
        let i = agent_interfaces(&r);
        assert_eq!(i[0].name, "lo");
        assert_eq!(i[0].addrs[0].prefix, 8);
    }
}
