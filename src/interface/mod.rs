//! Host interfaces: the `<interface>` document of libvirt's interface driver (libvirt:
//! src/conf/interface_conf.c), parsed and formatted as libvirt does, and read from sysfs as
//! libvirt's udev backend reads it ([`sysfs`]). Pure: no I/O here but in [`sysfs`], whose
//! root is a parameter.

pub mod sysfs;

use crate::domain::DomainError;
use crate::domain::xml::{XmlNode, parse_document};
use crate::xmlfmt::XmlWriter;

fn xml_err(m: impl std::fmt::Display) -> DomainError {
    DomainError::Xml(format!("XML error: {m}"))
}

/// libvirt's virInterfaceType.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IfaceType {
    Ethernet,
    Bridge,
    Bond,
    Vlan,
}

impl IfaceType {
    pub fn name(self) -> &'static str {
        match self {
            IfaceType::Ethernet => "ethernet",
            IfaceType::Bridge => "bridge",
            IfaceType::Bond => "bond",
            IfaceType::Vlan => "vlan",
        }
    }

    fn from_name(s: &str) -> Option<IfaceType> {
        [
            IfaceType::Ethernet,
            IfaceType::Bridge,
            IfaceType::Bond,
            IfaceType::Vlan,
        ]
        .into_iter()
        .find(|t| t.name() == s)
    }
}

/// libvirt's virInterfaceStartMode (unspecified is `None` in [`IfaceDef::start`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartMode {
    None,
    OnBoot,
    Hotplug,
}

impl StartMode {
    fn name(self) -> &'static str {
        match self {
            StartMode::None => "none",
            StartMode::OnBoot => "onboot",
            StartMode::Hotplug => "hotplug",
        }
    }
}

/// libvirt's virNetDevIfState, the kernel's operstate words.
pub const LINK_STATES: &[&str] = &[
    "unknown",
    "notpresent",
    "down",
    "lowerlayerdown",
    "testing",
    "dormant",
    "up",
];

/// `<link speed state>` (libvirt: virNetDevIfLink).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Link {
    pub speed: u32,
    /// One of [`LINK_STATES`].
    pub state: Option<String>,
}

/// One `<ip>` of a `<protocol>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpAddr {
    pub address: String,
    pub prefix: i32,
}

/// `<protocol family>` (libvirt: virInterfaceProtocolDef).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Protocol {
    /// `ipv4` or `ipv6`.
    pub family: String,
    pub autoconf: bool,
    /// `Some(peerdns)` when `<dhcp>` is present; peerdns `None` when not given.
    pub dhcp: Option<Option<bool>>,
    pub ips: Vec<IpAddr>,
    pub gateway: Option<String>,
}

/// Bond modes, in libvirt's order (virInterfaceBondMode without NONE).
const BOND_MODES: &[&str] = &[
    "balance-rr",
    "active-backup",
    "balance-xor",
    "broadcast",
    "802.3ad",
    "balance-tlb",
    "balance-alb",
];

/// How a bond watches its links.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BondMonitor {
    None,
    Mii {
        freq: i32,
        downdelay: i32,
        updelay: i32,
        /// `ioctl` or `netif`.
        carrier: Option<String>,
    },
    Arp {
        interval: i32,
        target: String,
        /// `active`, `backup` or `all`.
        validate: Option<String>,
    },
}

/// What the type adds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IfaceKind {
    Ethernet {
        mac: Option<String>,
    },
    Bridge {
        /// `Some(true)` for `stp='on'`.
        stp: Option<bool>,
        delay: Option<String>,
        ports: Vec<IfaceDef>,
    },
    Bond {
        /// One of [`BOND_MODES`].
        mode: Option<String>,
        monitor: BondMonitor,
        slaves: Vec<IfaceDef>,
    },
    Vlan {
        tag: String,
        device: Option<String>,
    },
}

/// A host interface definition (libvirt: virInterfaceDef).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfaceDef {
    pub name: String,
    pub start: Option<StartMode>,
    pub mtu: u32,
    pub protocols: Vec<Protocol>,
    pub link: Link,
    pub kind: IfaceKind,
}

impl IfaceDef {
    pub fn iface_type(&self) -> IfaceType {
        match self.kind {
            IfaceKind::Ethernet { .. } => IfaceType::Ethernet,
            IfaceKind::Bridge { .. } => IfaceType::Bridge,
            IfaceKind::Bond { .. } => IfaceType::Bond,
            IfaceKind::Vlan { .. } => IfaceType::Vlan,
        }
    }

    /// Parse an interface document (libvirt: virInterfaceDefParseString).
    pub fn parse(xml: &str) -> Result<IfaceDef, DomainError> {
        let root = parse_document(xml)?;
        if root.name != "interface" {
            return Err(xml_err(format!(
                "expecting root element of 'interface', not '{}'",
                root.name
            )));
        }
        parse_node(&root, None)
    }

    /// Format as libvirt's virInterfaceDefFormat.
    pub fn to_xml(&self) -> String {
        let mut w = XmlWriter::new();
        self.format(&mut w, true);
        w.finish()
    }

    fn format(&self, w: &mut XmlWriter, top: bool) {
        w.elem("interface")
            .attr("type", self.iface_type().name())
            .attr("name", &self.name)
            .open();
        if top {
            // Subordinate interfaces inherit these from the top-level one.
            if let Some(s) = self.start {
                w.elem("start").attr("mode", s.name()).empty();
            }
            if self.mtu != 0 {
                w.elem("mtu").attr("size", self.mtu).empty();
            }
            for p in &self.protocols {
                p.format(w);
            }
        }
        if !matches!(self.kind, IfaceKind::Bridge { .. })
            && (self.link.speed != 0 || self.link.state.is_some())
        {
            w.elem("link")
                .attr_opt("speed", (self.link.speed != 0).then_some(self.link.speed))
                .attr_opt("state", self.link.state.as_deref())
                .empty();
        }
        match &self.kind {
            IfaceKind::Ethernet { mac } => {
                if let Some(m) = mac {
                    w.elem("mac").attr("address", m).empty();
                }
            }
            IfaceKind::Bridge { stp, delay, ports } => {
                w.elem("bridge")
                    .attr_opt("stp", stp.map(|on| if on { "on" } else { "off" }))
                    .attr_opt("delay", delay.as_deref())
                    .open();
                for p in ports {
                    p.format(w, false);
                }
                w.close();
            }
            IfaceKind::Bond {
                mode,
                monitor,
                slaves,
            } => {
                w.elem("bond").attr_opt("mode", mode.as_deref()).open();
                match monitor {
                    BondMonitor::None => {}
                    BondMonitor::Mii {
                        freq,
                        downdelay,
                        updelay,
                        carrier,
                    } => w
                        .elem("miimon")
                        .attr("freq", freq)
                        .attr_opt("downdelay", (*downdelay > 0).then_some(downdelay))
                        .attr_opt("updelay", (*updelay > 0).then_some(updelay))
                        .attr_opt("carrier", carrier.as_deref())
                        .empty(),
                    BondMonitor::Arp {
                        interval,
                        target,
                        validate,
                    } => w
                        .elem("arpmon")
                        .attr("interval", interval)
                        .attr("target", target)
                        .attr_opt("validate", validate.as_deref())
                        .empty(),
                }
                for s in slaves {
                    s.format(w, false);
                }
                w.close();
            }
            IfaceKind::Vlan { tag, device } => match device {
                Some(d) => {
                    w.elem("vlan").attr("tag", tag).open();
                    w.elem("interface").attr("name", d).empty();
                    w.close();
                }
                None => w.elem("vlan").attr("tag", tag).empty(),
            },
        }
        w.close();
    }
}

impl Protocol {
    fn format(&self, w: &mut XmlWriter) {
        w.elem("protocol").attr("family", &self.family).open();
        if self.autoconf {
            w.elem("autoconf").empty();
        }
        if let Some(peerdns) = self.dhcp {
            w.elem("dhcp")
                .attr_opt("peerdns", peerdns.map(|p| if p { "yes" } else { "no" }))
                .empty();
        }
        for ip in &self.ips {
            w.elem("ip")
                .attr("address", &ip.address)
                .attr_opt("prefix", (ip.prefix != 0).then_some(ip.prefix))
                .empty();
        }
        if let Some(g) = &self.gateway {
            w.elem("route").attr("gateway", g).empty();
        }
        w.close();
    }
}

fn int_attr(node: &XmlNode, attr: &str) -> Result<Option<i32>, ()> {
    match node.attr(attr) {
        None => Ok(None),
        Some(v) => v.trim().parse().map(Some).map_err(|_| ()),
    }
}

/// libvirt: virInterfaceDefParseXML; `parent` is the enclosing interface's type.
fn parse_node(node: &XmlNode, parent: Option<IfaceType>) -> Result<IfaceDef, DomainError> {
    let Some(t) = node.attr("type") else {
        return Err(xml_err(
            "Missing required attribute 'type' in element 'interface'",
        ));
    };
    let Some(ty) = IfaceType::from_name(t) else {
        return Err(xml_err(format!(
            "Invalid value for attribute 'type' in element 'interface': '{t}'."
        )));
    };
    let allowed = match parent {
        None => true,
        Some(IfaceType::Bond) => ty == IfaceType::Ethernet,
        Some(IfaceType::Bridge) => ty != IfaceType::Bridge,
        Some(_) => false,
    };
    if !allowed {
        return Err(xml_err(format!(
            "interface has unsupported type '{}'",
            ty.name()
        )));
    }
    let Some(name) = node.attr("name") else {
        return Err(xml_err("interface has no name"));
    };
    let mut def = IfaceDef {
        name: name.to_string(),
        start: None,
        mtu: 0,
        protocols: Vec::new(),
        link: Link::default(),
        kind: IfaceKind::Ethernet { mac: None },
    };
    if parent.is_none() {
        def.start = match node.child("start").and_then(|s| s.attr("mode")) {
            None => None,
            Some("onboot") => Some(StartMode::OnBoot),
            Some("hotplug") => Some(StartMode::Hotplug),
            Some("none") => Some(StartMode::None),
            Some(m) => return Err(xml_err(format!("unknown interface startmode {m}"))),
        };
        if let Some(size) = node.child("mtu").and_then(|m| m.attr("size")) {
            def.mtu = size.trim().parse().map_err(|_| {
                xml_err(format!(
                    "Invalid value for attribute 'size' in element 'mtu': '{size}'."
                ))
            })?;
            if def.mtu > 100_000 {
                return Err(xml_err(
                    "value of the 'size' attribute of 'mtu' element must be at most 100000",
                ));
            }
        }
        for p in node.children.iter().filter(|c| c.name == "protocol") {
            def.protocols.push(parse_protocol(p)?);
        }
    }
    if ty != IfaceType::Bridge
        && let Some(l) = node.child("link")
    {
        if let Some(s) = l.attr("state") {
            if !LINK_STATES.contains(&s) {
                return Err(xml_err(format!(
                    "Invalid value for attribute 'state' in element 'link': '{s}'."
                )));
            }
            def.link.state = Some(s.to_string());
        }
        if let Some(s) = l.attr("speed") {
            def.link.speed = s.parse().map_err(|_| {
                xml_err(format!(
                    "Invalid value for attribute 'speed' in element 'link': '{s}'. Expected non-negative integer value"
                ))
            })?;
        }
    }
    def.kind = match ty {
        IfaceType::Ethernet => IfaceKind::Ethernet {
            mac: node
                .child("mac")
                .and_then(|m| m.attr("address"))
                .map(str::to_string),
        },
        IfaceType::Bridge => {
            let Some(b) = node.child("bridge") else {
                return Err(xml_err("bridge interface misses the bridge element"));
            };
            let stp = match b.attr("stp") {
                None => None,
                Some("on") => Some(true),
                Some("off") => Some(false),
                Some(v) => {
                    return Err(xml_err(format!(
                        "bridge interface stp should be on or off got {v}"
                    )));
                }
            };
            let ports = b
                .children
                .iter()
                .filter(|c| c.name == "interface")
                .map(|c| parse_node(c, Some(IfaceType::Bridge)))
                .collect::<Result<_, _>>()?;
            IfaceKind::Bridge {
                stp,
                delay: b.attr("delay").map(str::to_string),
                ports,
            }
        }
        IfaceType::Bond => {
            let Some(b) = node.child("bond") else {
                return Err(xml_err("bond interface misses the bond element"));
            };
            let mode = match b.attr("mode") {
                None => None,
                Some(m) if BOND_MODES.contains(&m) => Some(m.to_string()),
                Some(m) => return Err(xml_err(format!("unknown bonding mode {m}"))),
            };
            let slaves = b
                .children
                .iter()
                .filter(|c| c.name == "interface")
                .map(|c| parse_node(c, Some(IfaceType::Bond)))
                .collect::<Result<_, _>>()?;
            let monitor = if let Some(m) = b.child("miimon") {
                let freq = int_attr(m, "freq")
                    .ok()
                    .flatten()
                    .ok_or_else(|| xml_err("bond interface miimon freq missing or invalid"))?;
                let downdelay = int_attr(m, "downdelay")
                    .map_err(|_| xml_err("bond interface miimon downdelay invalid"))?
                    .unwrap_or(0);
                let updelay = int_attr(m, "updelay")
                    .map_err(|_| xml_err("bond interface miimon updelay invalid"))?
                    .unwrap_or(0);
                let carrier = match m.attr("carrier") {
                    None => None,
                    Some(c @ ("ioctl" | "netif")) => Some(c.to_string()),
                    Some(c) => return Err(xml_err(format!("unknown mii bonding carrier {c}"))),
                };
                BondMonitor::Mii {
                    freq,
                    downdelay,
                    updelay,
                    carrier,
                }
            } else if let Some(a) = b.child("arpmon") {
                let interval = int_attr(a, "interval")
                    .ok()
                    .flatten()
                    .ok_or_else(|| xml_err("bond interface arpmon interval missing or invalid"))?;
                let Some(target) = a.attr("target") else {
                    return Err(xml_err("bond interface arpmon target missing"));
                };
                let validate = match a.attr("validate") {
                    None => None,
                    Some(v @ ("active" | "backup" | "all")) => Some(v.to_string()),
                    Some(v) => return Err(xml_err(format!("unknown arp bonding validate {v}"))),
                };
                BondMonitor::Arp {
                    interval,
                    target: target.to_string(),
                    validate,
                }
            } else {
                BondMonitor::None
            };
            IfaceKind::Bond {
                mode,
                monitor,
                slaves,
            }
        }
        IfaceType::Vlan => {
            let Some(v) = node.child("vlan") else {
                return Err(xml_err("vlan interface misses the vlan element"));
            };
            let Some(tag) = v.attr("tag") else {
                return Err(xml_err("vlan interface misses the tag attribute"));
            };
            let Some(dev) = v.child("interface").and_then(|i| i.attr("name")) else {
                return Err(xml_err("vlan interface misses name attribute"));
            };
            IfaceKind::Vlan {
                tag: tag.to_string(),
                device: Some(dev.to_string()),
            }
        }
    };
    Ok(def)
}

/// libvirt: virInterfaceDefParseProtoIPv4 / IPv6.
fn parse_protocol(p: &XmlNode) -> Result<Protocol, DomainError> {
    let Some(family) = p.attr("family") else {
        return Err(xml_err("protocol misses the family attribute"));
    };
    if family != "ipv4" && family != "ipv6" {
        return Err(xml_err(format!("unsupported protocol family '{family}'")));
    }
    let dhcp = match p.child("dhcp") {
        None => None,
        Some(d) => Some(match d.attr("peerdns") {
            None => None,
            Some("yes") => Some(true),
            Some("no") => Some(false),
            Some(v) => {
                return Err(xml_err(format!(
                    "Invalid value for attribute 'peerdns' in element 'dhcp': '{v}'. Expected 'yes' or 'no'"
                )));
            }
        }),
    };
    let mut ips = Vec::new();
    for ip in p.children.iter().filter(|c| c.name == "ip") {
        let Some(address) = ip.attr("address") else {
            continue;
        };
        let prefix = int_attr(ip, "prefix")
            .map_err(|_| {
                xml_err(format!(
                    "Invalid value for attribute 'prefix' in element 'ip': '{}'. Expected integer value",
                    ip.attr("prefix").unwrap_or_default()
                ))
            })?
            .unwrap_or(0);
        ips.push(IpAddr {
            address: address.to_string(),
            prefix,
        });
    }
    Ok(Protocol {
        family: family.to_string(),
        autoconf: family == "ipv6" && p.child("autoconf").is_some(),
        dhcp,
        ips,
        gateway: p
            .children
            .iter()
            .find(|c| c.name == "route")
            .and_then(|r| r.attr("gateway"))
            .map(str::to_string),
    })
}

#[cfg(test)]
mod tests;
