//! `<networkport>`: a port of a virtual network, what a guest's interface (or a caller of
//! `net-port-create`) holds on it (libvirt: src/conf/virnetworkportdef.c
//! virNetworkPortDefParseXML, virNetworkPortDefFormatBuf; docs/formatnetworkport.rst). The
//! parts this driver does not act on (`<virtualport>`, `<bandwidth>`, `<vlan>`, `<port>`,
//! a PCI plug's `<driver>` and `<address>`) are kept as given and written back in libvirt's
//! style.

use super::{NetworkError, format_mac, parse_mac};
use crate::domain::xml::{XmlNode, parse_document};
use crate::xmlfmt::XmlWriter;

/// How the port is connected (virNetworkPortPlugType), with what each kind carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plug {
    /// Not plugged yet: what `net-port-create` without `--reclaim` takes.
    None,
    /// A tap in the network's own bridge.
    Network {
        bridge: String,
        mac_table_manager: Option<MacTableManager>,
    },
    /// A tap in a host bridge (`<forward mode='bridge'>`).
    Bridge {
        bridge: String,
        mac_table_manager: Option<MacTableManager>,
    },
    /// A macvtap on a host device.
    Direct { dev: String, mode: DirectMode },
    /// A PCI device given to the guest.
    HostdevPci {
        managed: Option<bool>,
        driver: Option<XmlNode>,
        address: XmlNode,
    },
}

impl Plug {
    fn type_name(&self) -> Option<&'static str> {
        Some(match self {
            Plug::None => return None,
            Plug::Network { .. } => "network",
            Plug::Bridge { .. } => "bridge",
            Plug::Direct { .. } => "direct",
            Plug::HostdevPci { .. } => "hostdev-pci",
        })
    }
}

/// `macTableManager` (virNetworkBridgeMACTableManagerType).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MacTableManager {
    Kernel,
    Libvirt,
}

impl MacTableManager {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "kernel" => Some(MacTableManager::Kernel),
            "libvirt" => Some(MacTableManager::Libvirt),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            MacTableManager::Kernel => "kernel",
            MacTableManager::Libvirt => "libvirt",
        }
    }
}

/// A direct plug's macvtap mode (virNetDevMacVLanMode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirectMode {
    Vepa,
    Private,
    Bridge,
    Passthrough,
}

impl DirectMode {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "vepa" => DirectMode::Vepa,
            "private" => DirectMode::Private,
            "bridge" => DirectMode::Bridge,
            "passthrough" => DirectMode::Passthrough,
            _ => return None,
        })
    }

    fn as_str(self) -> &'static str {
        match self {
            DirectMode::Vepa => "vepa",
            DirectMode::Private => "private",
            DirectMode::Bridge => "bridge",
            DirectMode::Passthrough => "passthrough",
        }
    }
}

/// A `<networkport>` definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortDef {
    /// Canonical (lowercase, hyphenated).
    pub uuid: String,
    pub owner_name: String,
    pub owner_uuid: String,
    pub group: Option<String>,
    /// Lowercase `aa:bb:cc:dd:ee:ff`.
    pub mac: String,
    pub virtualport: Option<XmlNode>,
    pub bandwidth: Option<XmlNode>,
    pub vlan: Option<XmlNode>,
    /// `<port isolated=>`.
    pub port: Option<XmlNode>,
    /// `<rxfilters trustGuest=>`.
    pub trust_guest_rx_filters: Option<bool>,
    pub plug: Plug,
}

fn internal(m: impl Into<String>) -> NetworkError {
    NetworkError::Internal(m.into())
}

fn uuid_of(text: &str) -> Result<String, NetworkError> {
    uuid::Uuid::parse_str(text.trim())
        .map(|u| u.hyphenated().to_string())
        .map_err(|_| internal(format!("Unable to parse UUID '{text}'")))
}

/// A yes/no attribute (libvirt: virXMLPropTristateBool).
fn yes_no(n: &XmlNode, attr: &str) -> Result<Option<bool>, NetworkError> {
    match n.attr(attr) {
        None => Ok(None),
        Some("yes") => Ok(Some(true)),
        Some("no") => Ok(Some(false)),
        Some(v) => Err(NetworkError::Xml(format!(
            "Invalid value for attribute '{attr}' in element '{}': '{v}'. Expected 'yes' or 'no'",
            n.name
        ))),
    }
}

impl PortDef {
    /// Parse port XML (libvirt: virNetworkPortDefParseXML), with its errors.
    pub fn parse(text: &str) -> Result<PortDef, NetworkError> {
        let root = parse_document(text)
            .map_err(|e| NetworkError::Xml(super::strip_xml_prefix(&e.to_string())))?;
        if root.name != "networkport" {
            return Err(NetworkError::Xml(format!(
                "expecting root element of 'networkport', not '{}'",
                root.name
            )));
        }
        let child = |n: &str| root.child(n);
        let text_of = |n: Option<&XmlNode>| n.map(|c| c.text.clone());
        let uuid = text_of(child("uuid")).ok_or_else(|| internal("network port has no uuid"))?;
        let uuid = uuid_of(&uuid)?;
        let owner = child("owner");
        let owner_name = text_of(owner.and_then(|o| o.child("name")))
            .ok_or_else(|| internal("network port has no owner name"))?;
        let owner_uuid = text_of(owner.and_then(|o| o.child("uuid")))
            .ok_or_else(|| internal("network port has no owner UUID"))?;
        let owner_uuid = uuid_of(&owner_uuid)?;
        let group = text_of(child("group"));
        let mac = child("mac")
            .and_then(|m| m.attr("address"))
            .ok_or_else(|| internal("network port has no mac"))?;
        let mac = parse_mac(mac)
            .map(format_mac)
            .ok_or_else(|| internal(format!("Unable to parse MAC '{mac}'")))?;
        let trust_guest_rx_filters = match child("rxfilters") {
            Some(r) => yes_no(r, "trustGuest")?,
            None => None,
        };
        let plug = match child("plug") {
            None => Plug::None,
            Some(p) => Self::parse_plug(p)?,
        };
        Ok(PortDef {
            uuid,
            owner_name,
            owner_uuid,
            group,
            mac,
            virtualport: child("virtualport").cloned(),
            bandwidth: child("bandwidth").cloned(),
            vlan: child("vlan").cloned(),
            port: child("port").cloned(),
            trust_guest_rx_filters,
            plug,
        })
    }

    fn parse_plug(p: &XmlNode) -> Result<Plug, NetworkError> {
        let mtm = || -> Result<Option<MacTableManager>, NetworkError> {
            match p.attr("macTableManager") {
                None => Ok(None),
                Some(v) => MacTableManager::parse(v).map(Some).ok_or_else(|| {
                    internal(format!(
                        "Invalid macTableManager setting '{v}' in network port"
                    ))
                }),
            }
        };
        let bridge = || {
            p.attr("bridge")
                .map(String::from)
                .ok_or_else(|| internal("Missing network port bridge name"))
        };
        Ok(match p.attr("type") {
            None => Plug::None,
            Some("network") => Plug::Network {
                bridge: bridge()?,
                mac_table_manager: mtm()?,
            },
            Some("bridge") => Plug::Bridge {
                bridge: bridge()?,
                mac_table_manager: mtm()?,
            },
            Some("direct") => {
                let dev = p
                    .attr("dev")
                    .ok_or_else(|| internal("Missing network port link device name"))?;
                let m = p.attr("mode").unwrap_or("vepa");
                let mode = DirectMode::parse(m).ok_or_else(|| {
                    internal(format!("Invalid mode setting '{m}' in network port"))
                })?;
                Plug::Direct {
                    dev: dev.to_string(),
                    mode,
                }
            }
            Some("hostdev-pci") => Plug::HostdevPci {
                managed: yes_no(p, "managed")?,
                driver: p.child("driver").cloned(),
                address: p
                    .child("address")
                    .cloned()
                    .ok_or_else(|| internal("Missing network port PCI address"))?,
            },
            Some(v) => {
                return Err(NetworkError::Xml(format!(
                    "Invalid value for attribute 'type' in element 'plug': '{v}'."
                )));
            }
        })
    }

    /// libvirt's formatting (libvirt: virNetworkPortDefFormatBuf).
    pub fn to_xml(&self) -> String {
        let mut w = XmlWriter::new();
        w.elem("networkport").open();
        w.text_elem("uuid", &self.uuid);
        w.elem("owner").open();
        w.text_elem("name", &self.owner_name);
        w.text_elem("uuid", &self.owner_uuid);
        w.close();
        if let Some(g) = &self.group {
            w.text_elem("group", g);
        }
        w.elem("mac").attr("address", &self.mac).empty();
        for n in [&self.virtualport, &self.bandwidth, &self.vlan, &self.port]
            .into_iter()
            .flatten()
        {
            n.write(&mut w);
        }
        if let Some(t) = self.trust_guest_rx_filters {
            w.elem("rxfilters")
                .attr("trustGuest", if t { "yes" } else { "no" })
                .empty();
        }
        if let Some(t) = self.plug.type_name() {
            let e = w.elem("plug").attr("type", t);
            match &self.plug {
                Plug::None => {}
                Plug::Network {
                    bridge,
                    mac_table_manager,
                }
                | Plug::Bridge {
                    bridge,
                    mac_table_manager,
                } => e
                    .attr("bridge", bridge)
                    .attr_opt("macTableManager", mac_table_manager.map(|m| m.as_str()))
                    .empty(),
                Plug::Direct { dev, mode } => {
                    e.attr("dev", dev).attr("mode", mode.as_str()).empty()
                }
                Plug::HostdevPci {
                    managed,
                    driver,
                    address,
                } => {
                    e.attr_opt("managed", managed.map(|m| if m { "yes" } else { "no" }))
                        .open();
                    if let Some(d) = driver {
                        d.write(&mut w);
                    }
                    address.write(&mut w);
                    w.close();
                }
            }
        }
        w.close();
        w.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PORT: &str = "<networkport>\n  <uuid>5d744f21-ba4a-4d6e-bdb2-30a35ff3207d</uuid>\n  <owner>\n    <name>g</name>\n    <uuid>d54df46f-1ab5-4a22-8618-4560ef5fac2c</uuid>\n  </owner>\n  <mac address='52:54:00:7b:35:93'/>\n  <plug type='direct' dev='eth0' mode='vepa'/>\n</networkport>\n";

    #[test]
    fn round_trip_and_refusals() {
        assert_eq!(PortDef::parse(PORT).unwrap().to_xml(), PORT);
        let bad = |from: &str, to: &str, msg: &str| {
            let e = PortDef::parse(&PORT.replace(from, to)).unwrap_err();
            assert_eq!(e.to_string(), msg, "{from} -> {to}");
        };
        bad(
            "<uuid>5d744f21-ba4a-4d6e-bdb2-30a35ff3207d</uuid>\n  <owner>",
            "<owner>",
            "internal error: network port has no uuid",
        );
        bad(
            "<name>g</name>",
            "",
            "internal error: network port has no owner name",
        );
        bad(
            "52:54:00:7b:35:93",
            "zz",
            "internal error: Unable to parse MAC 'zz'",
        );
        bad(
            "mode='vepa'",
            "mode='x'",
            "internal error: Invalid mode setting 'x' in network port",
        );
        bad(
            " dev='eth0'",
            "",
            "internal error: Missing network port link device name",
        );
        bad(
            "type='direct'",
            "type='bogus'",
            "XML error: Invalid value for attribute 'type' in element 'plug': 'bogus'.",
        );
    }
}
