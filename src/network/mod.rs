//! Virtual networks as libvirt's network driver models them (libvirt: src/conf/network_conf.c):
//! the `<network>` XML, parsed and formatted with libvirt's rules and messages, and the
//! defaults its bridge driver fills in at define. Pure: no I/O; the driver
//! (`crate::driver::network`) decides names against the host and runs the network.
//!
//! Supported: forward modes `nat`, `route`, `open`, `bridge` and isolated (no `<forward>`),
//! IPv4 addresses with DHCP ranges and static hosts. What libvirt knows but this model does
//! not (IPv6, `<dns>` records, `<route>`, `<portgroup>`, the hostdev/macvtap modes) is refused
//! with an `unsupported configuration` error rather than dropped.

pub mod dnsmasq;
pub mod firewall;
pub mod port;
pub mod update;

use std::net::Ipv4Addr;

use crate::domain::xml::{Rd, XmlNode, parse_document};
use crate::xmlfmt::XmlWriter;

/// A network XML error, each variant carrying libvirt's message without its prefix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetworkError {
    /// VIR_ERR_XML_ERROR.
    #[error("XML error: {0}")]
    Xml(String),
    /// VIR_ERR_CONFIG_UNSUPPORTED.
    #[error("unsupported configuration: {0}")]
    Unsupported(String),
    /// VIR_ERR_NO_NAME.
    #[error("missing name information")]
    NoName,
    /// VIR_ERR_INTERNAL_ERROR.
    #[error("internal error: {0}")]
    Internal(String),
    /// VIR_ERR_OPERATION_INVALID.
    #[error("Requested operation is not valid: {0}")]
    OperationInvalid(String),
    /// VIR_ERR_OPERATION_UNSUPPORTED.
    #[error("Operation not supported: {0}")]
    OperationUnsupported(String),
}

/// `<forward mode=>`: the modes this driver runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ForwardMode {
    Nat,
    Route,
    Open,
    /// An existing host bridge (`<bridge name=>`); the driver makes nothing.
    Bridge,
}

impl ForwardMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ForwardMode::Nat => "nat",
            ForwardMode::Route => "route",
            ForwardMode::Open => "open",
            ForwardMode::Bridge => "bridge",
        }
    }
}

/// The modes libvirt knows and this driver does not run (refused by name, not as unknown).
const OTHER_MODES: &[&str] = &["private", "vepa", "passthrough", "hostdev"];

/// `<forward>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forward {
    pub mode: ForwardMode,
    /// `dev=` (or the first `<interface dev=>`): the only host interface traffic may leave by.
    pub dev: Option<String>,
    /// `<nat><port start= end=/>`, filled with 1024-65535 for `nat`.
    pub nat_ports: Option<(u16, u16)>,
    /// `<nat><address start= end=/>`.
    pub nat_addrs: Option<(Ipv4Addr, Ipv4Addr)>,
}

/// `<host mac= name= ip=/>` in `<dhcp>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DhcpHost {
    pub mac: Option<String>,
    pub name: Option<String>,
    pub ip: Option<Ipv4Addr>,
}

/// One `<ip>` (IPv4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpDef {
    pub address: Ipv4Addr,
    pub prefix: u8,
    /// Formatted as `netmask=` (as given) rather than `prefix=`.
    pub netmask_form: bool,
    /// `<dhcp><range start= end=/>`s.
    pub ranges: Vec<(Ipv4Addr, Ipv4Addr)>,
    pub hosts: Vec<DhcpHost>,
    /// `<dhcp>` was present (even empty).
    pub dhcp: bool,
}

impl IpDef {
    pub fn netmask(&self) -> Ipv4Addr {
        prefix_mask(self.prefix)
    }

    /// The network address (`192.168.122.0`).
    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.address) & u32::from(self.netmask()))
    }

    /// `192.168.122.0/24`, as iptables rules name the network.
    pub fn cidr(&self) -> String {
        format!("{}/{}", self.network(), self.prefix)
    }

    /// The number of addresses in the ranges (libvirt's dhcp-lease-max).
    pub fn range_size(&self) -> u32 {
        self.ranges
            .iter()
            .map(|(s, e)| u32::from(*e).saturating_sub(u32::from(*s)) + 1)
            .sum()
    }
}

fn prefix_mask(prefix: u8) -> Ipv4Addr {
    Ipv4Addr::from(match prefix {
        0 => 0,
        p => u32::MAX << (32 - u32::from(p.min(32))),
    })
}

/// The prefix of a contiguous netmask.
fn mask_prefix(mask: Ipv4Addr) -> Option<u8> {
    let m = u32::from(mask);
    let p = m.leading_ones();
    (m.checked_shl(p).unwrap_or(0) == 0).then_some(p as u8)
}

/// A `<network>` definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkDef {
    pub name: String,
    /// Canonical (lowercase, hyphenated).
    pub uuid: String,
    pub title: Option<String>,
    pub description: Option<String>,
    /// The children of `<metadata>`, as libvirt re-serializes them (libxml2 style, indented
    /// for their place in the document).
    pub metadata: Option<String>,
    /// None: isolated.
    pub forward: Option<Forward>,
    /// `<bridge name=>`; filled with `virbrN` at define for the modes that make a bridge.
    pub bridge: Option<String>,
    pub stp: bool,
    pub delay: u64,
    pub mtu: Option<u32>,
    /// `<mac address=>`; filled at define for the modes that make a bridge.
    pub mac: Option<String>,
    /// `<domain name=>`: the DNS domain dnsmasq serves.
    pub domain: Option<String>,
    /// `<dns enable=>`: `no` runs dnsmasq for DHCP only.
    pub dns_enable: Option<bool>,
    pub ips: Vec<IpDef>,
}

fn xml(m: impl Into<String>) -> NetworkError {
    NetworkError::Xml(m.into())
}

fn parse_v4(s: &str) -> Option<Ipv4Addr> {
    s.trim().parse().ok()
}

/// A unicast MAC `aa:bb:cc:dd:ee:ff`, lowercased; None when malformed.
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut parts = s.split(':');
    for b in &mut out {
        let p = parts.next()?;
        if p.is_empty() || p.len() > 2 {
            return None;
        }
        *b = u8::from_str_radix(p, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}

pub fn format_mac(m: [u8; 6]) -> String {
    m.map(|b| format!("{b:02x}")).join(":")
}

impl NetworkDef {
    /// Parse network XML (libvirt: virNetworkDefParseXML). A definition without `<uuid>` gets
    /// a new random one; the other defaults come with [`NetworkDef::fill_defaults`].
    pub fn parse(text: &str) -> Result<NetworkDef, NetworkError> {
        let root = parse_document(text).map_err(|e| xml(strip_xml_prefix(&e.to_string())))?;
        if root.name != "network" {
            return Err(xml(format!(
                "expecting root element of 'network', not '{}'",
                root.name
            )));
        }
        let rd = Rd::new(&root);
        let name = rd
            .child_text("name")
            .filter(|n| !n.is_empty())
            .ok_or(NetworkError::NoName)?;
        if name.contains('/') {
            return Err(xml(format!("name {name} cannot contain '/'")));
        }
        if name.starts_with('.') || name.contains('\n') {
            // Names become file names (the config, the run dir's files): refused as
            // libvirt's file-name checks would refuse them.
            return Err(xml(format!("name '{name}' cannot be used as a file name")));
        }
        let uuid = match rd.child_text("uuid") {
            None => uuid::Uuid::new_v4(),
            Some(t) => uuid::Uuid::parse_str(t.trim())
                .map_err(|_| NetworkError::Internal("malformed uuid element".into()))?,
        }
        .hyphenated()
        .to_string();
        let title = rd.child_text("title");
        if title.as_deref().is_some_and(|t| t.contains('\n')) {
            return Err(xml("Network title can't contain newlines"));
        }
        let description = rd.child_text("description");
        let metadata = rd.child("metadata").map(|m| {
            let mut s = String::new();
            for c in &m.children {
                c.to_libxml_string(2, &mut s);
            }
            s
        });

        let dns_enable = match rd.child("dns") {
            None => None,
            Some(d) => {
                if let Some(c) = d.children.first() {
                    return Err(NetworkError::Unsupported(format!(
                        "<dns><{}> in network '{name}' is not supported by this network driver",
                        c.name
                    )));
                }
                match d.attr("enable") {
                    None => None,
                    Some("yes") => Some(true),
                    Some("no") => Some(false),
                    Some(v) => {
                        return Err(xml(format!(
                            "Invalid dns enable setting '{v}' in network '{name}'"
                        )));
                    }
                }
            }
        };
        for unsupported in ["route", "portgroup", "virtualport", "bandwidth", "vlan"] {
            if rd.child(unsupported).is_some() {
                return Err(NetworkError::Unsupported(format!(
                    "<{unsupported}> in network '{name}' is not supported by this network driver"
                )));
            }
        }

        let bridge_node = rd.child("bridge");
        let (mut bridge, mut stp, mut delay, mut stp_given) = (None, true, 0, false);
        if let Some(b) = bridge_node {
            bridge = b.attr("name").map(str::to_string);
            if let Some(s) = b.attr("stp") {
                stp_given = true;
                stp = s != "off";
            }
            if let Some(d) = b.attr("delay") {
                delay = d
                    .trim()
                    .parse()
                    .map_err(|_| xml(format!("Invalid delay value in network '{name}'")))?;
            }
        }
        let mac = match rd.child("mac").and_then(|m| m.attr("address")) {
            None => None,
            Some(a) => {
                let m = parse_mac(a).ok_or_else(|| {
                    xml(format!(
                        "Invalid bridge mac address '{a}' in network '{name}'"
                    ))
                })?;
                if m[0] & 1 == 1 {
                    return Err(xml(format!(
                        "Invalid multicast bridge mac address '{a}' in network '{name}'"
                    )));
                }
                Some(format_mac(m))
            }
        };
        let mtu = match rd.child("mtu").and_then(|m| m.attr("size")) {
            None => None,
            Some(s) => Some(
                s.trim()
                    .parse::<u32>()
                    .map_err(|_| xml(format!("Invalid mtu size '{s}' in network '{name}'")))?,
            ),
        };
        let domain = rd
            .child("domain")
            .and_then(|d| d.attr("name"))
            .map(str::to_string);

        let mut ips = Vec::new();
        for ip in rd.children("ip") {
            ips.push(parse_ip(ip, &name)?);
        }
        let forward = match rd.child("forward") {
            None => None,
            Some(f) => Some(parse_forward(f, &name)?),
        };

        // libvirt: the checks at the end of virNetworkDefParseXML.
        match forward.as_ref().map(|f| f.mode) {
            None => {}
            Some(m @ (ForwardMode::Nat | ForwardMode::Route | ForwardMode::Open)) => {
                if ips.is_empty() {
                    return Err(xml(format!(
                        "{} forwarding requested, but no IP address provided for network '{name}'",
                        m.as_str()
                    )));
                }
                if m == ForwardMode::Open && forward.as_ref().is_some_and(|f| f.dev.is_some()) {
                    return Err(xml(format!(
                        "forward dev not allowed for network '{name}' with forward mode='open'"
                    )));
                }
            }
            Some(ForwardMode::Bridge) => {
                if delay != 0 || stp_given {
                    return Err(xml(format!(
                        "bridge delay/stp/zone options only allowed in route, nat, and isolated mode, not in bridge (network '{name}')"
                    )));
                }
                let dev = forward.as_ref().and_then(|f| f.dev.clone());
                if bridge.is_some() && dev.is_some() {
                    return Err(xml(format!(
                        "A network with forward mode='bridge' can specify a bridge name or a forward dev, but not both (network '{name}')"
                    )));
                }
                if bridge.is_none() {
                    // libvirt would make a macvtap on the forward dev; this driver only
                    // connects to existing bridges.
                    return Err(NetworkError::Unsupported(format!(
                        "forward mode='bridge' needs <bridge name=> in network '{name}': macvtap on a forward dev is not supported by this network driver"
                    )));
                }
                if mtu.is_some() {
                    return Err(xml(format!(
                        "mtu size only allowed in open, route, nat, and isolated mode, not in bridge (network '{name}')"
                    )));
                }
                if !ips.is_empty() {
                    return Err(NetworkError::Unsupported(format!(
                        "Unsupported <ip> element in network {name} with forward mode='bridge'"
                    )));
                }
            }
        }
        if ips.iter().filter(|i| i.dhcp).count() > 1 {
            return Err(NetworkError::Unsupported(
                "Multiple IPv4 dhcp sections found -- dhcp is supported only for a single IPv4 address on each network".into(),
            ));
        }
        if bridge
            .as_deref()
            .is_some_and(|b| b.is_empty() || b.len() > 15 || b.contains('/'))
        {
            return Err(xml(format!(
                "invalid bridge name '{}' in network '{name}'",
                bridge.unwrap_or_default()
            )));
        }
        Ok(NetworkDef {
            name,
            uuid,
            title,
            description,
            metadata,
            forward,
            bridge,
            stp,
            delay,
            mtu,
            mac,
            domain,
            dns_enable,
            ips,
        })
    }

    /// Whether the driver makes (and removes) the bridge: every mode but `bridge`.
    pub fn makes_bridge(&self) -> bool {
        self.forward.as_ref().map(|f| f.mode) != Some(ForwardMode::Bridge)
    }

    /// The mode's name as libvirt's `net-dumpxml` and our listings show it.
    pub fn mode_name(&self) -> &'static str {
        self.forward
            .as_ref()
            .map_or("isolated", |f| f.mode.as_str())
    }

    /// The defaults libvirt's bridge driver fills in at define (libvirt: networkValidate,
    /// virNetworkSetBridgeName, networkSetBridgeMacAddr): the lowest `virbrN` that `taken`
    /// does not name, and a MAC from `random` with QEMU's 52:54:00 prefix.
    pub fn fill_defaults(&mut self, taken: impl Fn(&str) -> bool, random: [u8; 3]) {
        if !self.makes_bridge() {
            return;
        }
        if self.bridge.is_none() {
            self.bridge = (0..).map(|i| format!("virbr{i}")).find(|n| !taken(n));
        }
        if self.mac.is_none() {
            self.mac = Some(format_mac([
                0x52, 0x54, 0x00, random[0], random[1], random[2],
            ]));
        }
    }

    /// The DHCP `<ip>`: the one with a `<dhcp>` element.
    pub fn dhcp_ip(&self) -> Option<&IpDef> {
        self.ips.iter().find(|i| i.dhcp)
    }

    /// libvirt's formatting (libvirt: virNetworkDefFormatBuf). `connections` is shown on a
    /// live definition that has any.
    pub fn to_xml(&self, connections: Option<u32>) -> String {
        let mut w = XmlWriter::new();
        w.elem("network")
            .attr_opt("connections", connections.filter(|&c| c > 0))
            .open();
        w.text_elem("name", &self.name);
        w.text_elem("uuid", &self.uuid);
        if let Some(t) = &self.title {
            w.text_elem("title", t);
        }
        if let Some(d) = &self.description {
            w.text_elem("description", d);
        }
        if let Some(m) = &self.metadata {
            if m.is_empty() {
                w.elem("metadata").empty();
            } else {
                w.elem("metadata").open();
                w.raw(m);
                w.close();
            }
        }
        if let Some(f) = &self.forward {
            let long = f.nat_ports.is_some() || f.nat_addrs.is_some();
            let e = w
                .elem("forward")
                .attr_opt("dev", f.dev.as_deref())
                .attr("mode", f.mode.as_str());
            if long {
                e.open();
                w.elem("nat").open();
                if let Some((s, e)) = f.nat_addrs {
                    w.elem("address").attr("start", s).attr("end", e).empty();
                }
                if let Some((s, e)) = f.nat_ports {
                    w.elem("port").attr("start", s).attr("end", e).empty();
                }
                w.close();
                w.close();
            } else {
                e.empty();
            }
        }
        if self.makes_bridge() {
            w.elem("bridge")
                .attr_opt("name", self.bridge.as_deref())
                .attr("stp", if self.stp { "on" } else { "off" })
                .attr("delay", self.delay)
                .empty();
        } else if let Some(b) = &self.bridge {
            w.elem("bridge").attr("name", b).empty();
        }
        if let Some(m) = self.mtu {
            w.elem("mtu").attr("size", m).empty();
        }
        if let Some(m) = &self.mac {
            w.elem("mac").attr("address", m).empty();
        }
        if let Some(d) = &self.domain {
            w.elem("domain").attr("name", d).empty();
        }
        if let Some(d) = self.dns_enable {
            w.elem("dns")
                .attr("enable", if d { "yes" } else { "no" })
                .empty();
        }
        for ip in &self.ips {
            let e = w.elem("ip").attr("address", ip.address);
            let e = if ip.netmask_form {
                e.attr("netmask", ip.netmask())
            } else {
                e.attr("prefix", ip.prefix)
            };
            if !ip.dhcp {
                e.empty();
                continue;
            }
            e.open();
            if ip.ranges.is_empty() && ip.hosts.is_empty() {
                w.elem("dhcp").empty();
            } else {
                w.elem("dhcp").open();
                for (s, e) in &ip.ranges {
                    w.elem("range").attr("start", s).attr("end", e).empty();
                }
                for h in &ip.hosts {
                    w.elem("host")
                        .attr_opt("mac", h.mac.as_deref())
                        .attr_opt("name", h.name.as_deref())
                        .attr_opt("ip", h.ip)
                        .empty();
                }
                w.close();
            }
            w.close();
        }
        w.close();
        w.finish()
    }
}

pub(crate) fn strip_xml_prefix(m: &str) -> String {
    m.strip_prefix("XML error: ").unwrap_or(m).to_string()
}

fn parse_forward(f: &XmlNode, name: &str) -> Result<Forward, NetworkError> {
    let mode = match f.attr("mode") {
        None | Some("nat") => ForwardMode::Nat,
        Some("route") => ForwardMode::Route,
        Some("open") => ForwardMode::Open,
        Some("bridge") => ForwardMode::Bridge,
        Some(m) if OTHER_MODES.contains(&m) => {
            return Err(NetworkError::Unsupported(format!(
                "forward mode='{m}' in network '{name}' is not supported by this network driver"
            )));
        }
        Some(m) => {
            return Err(NetworkError::Unsupported(format!(
                "unknown forwarding type '{m}'"
            )));
        }
    };
    let ifs: Vec<&XmlNode> = f
        .children
        .iter()
        .filter(|c| c.name == "interface")
        .collect();
    let mut dev = f.attr("dev").map(str::to_string);
    for (i, n) in ifs.iter().enumerate() {
        let Some(d) = n.attr("dev") else {
            return Err(xml(format!(
                "Missing required dev attribute in <forward> <interface> element of network {name}"
            )));
        };
        if i == 0 {
            if let Some(fd) = &dev
                && fd != d
            {
                return Err(xml(format!(
                    "<forward dev='{fd}'> must match first <interface dev='{d}'/> in network {name}"
                )));
            }
            dev = Some(d.to_string());
        }
    }
    if ifs.len() > 1 && mode != ForwardMode::Bridge {
        return Err(xml(format!(
            "multiple forwarding interfaces specified for network '{name}', only one is supported"
        )));
    }
    let nats: Vec<&XmlNode> = f.children.iter().filter(|c| c.name == "nat").collect();
    if nats.len() > 1 {
        return Err(xml(format!(
            "Only one <nat> element is allowed in <forward> of network {name}"
        )));
    }
    let (mut nat_ports, mut nat_addrs) = (None, None);
    if let Some(nat) = nats.first() {
        if mode != ForwardMode::Nat {
            return Err(xml(format!(
                "The <nat> element can only be used when <forward> 'mode' is 'nat' in network {name}"
            )));
        }
        if let Some(a) = nat.child("address") {
            let s = a.attr("start").ok_or_else(|| {
                xml(format!(
                    "missing 'start' attribute in <address> element in <nat> in <forward> in network {name}"
                ))
            })?;
            let e = a.attr("end").ok_or_else(|| {
                xml(format!(
                    "missing 'end' attribute in <address> element in <nat> in <forward> in network {name}"
                ))
            })?;
            let sa = parse_v4(s).ok_or_else(|| {
                xml(format!(
                    "Bad ipv4 start address '{s}' in <nat> in <forward> in network '{name}'"
                ))
            })?;
            let ea = parse_v4(e).ok_or_else(|| {
                xml(format!(
                    "Bad ipv4 end address '{e}' in <nat> in <forward> in network '{name}'"
                ))
            })?;
            nat_addrs = Some((sa, ea));
        }
        if let Some(p) = nat.child("port") {
            let num = |a: &str, what: &str| {
                p.attr(a)
                    .and_then(|v| v.trim().parse::<u16>().ok())
                    .ok_or_else(|| {
                        xml(format!(
                            "Missing or invalid '{what}' attribute in <port> in <nat> in <forward> in network {name}"
                        ))
                    })
            };
            nat_ports = Some((num("start", "start")?, num("end", "end")?));
        }
    }
    if mode == ForwardMode::Nat && nat_ports.is_none() {
        // libvirt's default masquerading port range, shown once defined.
        nat_ports = Some((1024, 65535));
    }
    Ok(Forward {
        mode,
        dev,
        nat_ports,
        nat_addrs,
    })
}

fn parse_ip(n: &XmlNode, name: &str) -> Result<IpDef, NetworkError> {
    let family = n.attr("family");
    let Some(addr) = n.attr("address") else {
        return Err(xml(format!(
            "Missing required address attribute in network '{name}'"
        )));
    };
    if family == Some("ipv6") || addr.contains(':') {
        return Err(NetworkError::Unsupported(format!(
            "IPv6 address '{addr}' in network '{name}': only IPv4 is supported by this network driver"
        )));
    }
    if let Some(f) = family
        && f != "ipv4"
    {
        return Err(xml(format!(
            "Unrecognized family '{f}' in network '{name}'"
        )));
    }
    let address = parse_v4(addr)
        .ok_or_else(|| xml(format!("Invalid address '{addr}' in network '{name}'")))?;
    let (prefix, netmask_form) = match (n.attr("netmask"), n.attr("prefix")) {
        (Some(_), Some(_)) => {
            return Err(xml(format!(
                "Network '{name}' IP address cannot have both a prefix and a netmask"
            )));
        }
        (Some(m), None) => {
            let mask = parse_v4(m)
                .ok_or_else(|| xml(format!("Invalid netmask '{m}' in network '{name}'")))?;
            let p = mask_prefix(mask)
                .ok_or_else(|| xml(format!("Invalid netmask '{m}' in network '{name}'")))?;
            (p, true)
        }
        (None, Some(p)) => {
            let v: u32 = p.trim().parse().unwrap_or(u32::MAX);
            if v > 32 {
                return Err(xml(format!(
                    "Invalid IPv4 prefix '{p}' in network '{name}'"
                )));
            }
            (v as u8, false)
        }
        // libvirt: the class's netmask; the common case is a /24.
        (None, None) => {
            let first = address.octets()[0];
            let p = if first < 128 {
                8
            } else if first < 192 {
                16
            } else {
                24
            };
            (p, false)
        }
    };
    let mut ip = IpDef {
        address,
        prefix,
        netmask_form,
        ranges: Vec::new(),
        hosts: Vec::new(),
        dhcp: false,
    };
    if n.child("tftp").is_some() {
        return Err(NetworkError::Unsupported(format!(
            "<tftp> in network '{name}' is not supported by this network driver"
        )));
    }
    if let Some(d) = n.child("dhcp") {
        ip.dhcp = true;
        for c in &d.children {
            match c.name.as_str() {
                "range" => ip.ranges.push(parse_range(c, &ip, name)?),
                "host" => ip.hosts.push(parse_host(c, name, false)?),
                "bootp" => {
                    return Err(NetworkError::Unsupported(format!(
                        "<bootp> in network '{name}' is not supported by this network driver"
                    )));
                }
                _ => {}
            }
        }
    }
    Ok(ip)
}

fn parse_range(c: &XmlNode, ip: &IpDef, name: &str) -> Result<(Ipv4Addr, Ipv4Addr), NetworkError> {
    let s = c.attr("start").ok_or_else(|| {
        xml(format!(
            "Missing 'start' attribute in dhcp range for network '{name}'"
        ))
    })?;
    let e = c.attr("end").ok_or_else(|| {
        xml(format!(
            "Missing 'end' attribute in dhcp range for network '{name}'"
        ))
    })?;
    let sa = parse_v4(s).ok_or_else(|| {
        xml(format!(
            "Invalid dhcp range '{s}' to '{e}' in network '{name}'"
        ))
    })?;
    let ea = parse_v4(e).ok_or_else(|| {
        xml(format!(
            "Invalid dhcp range '{s}' to '{e}' in network '{name}'"
        ))
    })?;
    // libvirt: virSocketAddrGetRange's checks, with its words.
    let net = u32::from(ip.network());
    let mask = u32::from(ip.netmask());
    if u32::from(sa) & mask != net || u32::from(ea) & mask != net {
        return Err(NetworkError::Internal(format!(
            "range {s} - {e} is not entirely within network {}/{}",
            ip.address, ip.prefix
        )));
    }
    if u32::from(sa) > u32::from(ea) {
        return Err(NetworkError::Internal(format!(
            "range {s} - {e} is reversed "
        )));
    }
    Ok((sa, ea))
}

/// One `<host>`; `partial` (a delete's pattern) may leave out the address.
pub(crate) fn parse_host(c: &XmlNode, name: &str, partial: bool) -> Result<DhcpHost, NetworkError> {
    let mac = match c.attr("mac") {
        None => None,
        Some(m) => {
            let b = parse_mac(m).ok_or_else(|| {
                xml(format!(
                    "Cannot parse MAC address '{m}' in network '{name}'"
                ))
            })?;
            if b[0] & 1 == 1 {
                return Err(xml(format!(
                    "expected unicast mac address, found multicast '{m}' in network '{name}'"
                )));
            }
            Some(format_mac(b))
        }
    };
    let hname = c.attr("name").map(str::to_string);
    if let Some(h) = &hname
        && (h.is_empty()
            || !h
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '.' || ch == '_'))
    {
        return Err(xml(format!(
            "Cannot use host name '{h}' in network '{name}'"
        )));
    }
    let ip = match c.attr("ip") {
        None => None,
        Some(i) => Some(parse_v4(i).ok_or_else(|| {
            xml(format!(
                "Invalid IP address in static host definition for network '{name}'"
            ))
        })?),
    };
    if mac.is_none() && hname.is_none() && ip.is_none() {
        return Err(xml(format!(
            "At least one of name, mac, or ip attribute must be specified for static host definition in network '{name}'"
        )));
    }
    if partial {
        return Ok(DhcpHost {
            mac,
            name: hname,
            ip,
        });
    }
    if mac.is_none() && hname.is_none() {
        return Err(xml(format!(
            "Static host definition in IPv4 network '{name}' must have mac or name attribute"
        )));
    }
    if ip.is_none() {
        return Err(xml(format!(
            "Missing IP address in static host definition for network '{name}'"
        )));
    }
    Ok(DhcpHost {
        mac,
        name: hname,
        ip,
    })
}

#[cfg(test)]
mod tests;
