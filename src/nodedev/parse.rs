//! Reading `<device>` XML (libvirt: virNodeDeviceDefParseXML and the per-capability
//! virNodeDevCap*ParseXML), with libvirt's messages.

use super::*;
use crate::domain::xml::{XmlNode, parse_document};

type R<T> = Result<T, NodeDevError>;

fn internal(m: String) -> NodeDevError {
    NodeDevError::Internal(m)
}

/// The text of the first child `name`, `None` when absent or empty (XPath `string()` of a
/// missing node is empty, which libvirt's virXPathString turns into NULL).
fn text(n: &XmlNode, name: &str) -> Option<String> {
    n.child(name)
        .map(|c| c.text.clone())
        .filter(|t| !t.is_empty())
}

/// strtoul-like: leading blanks allowed, an optional `0x` in base 16, nothing after.
fn parse_u64(s: &str, base: u32) -> Option<u64> {
    let s = s.trim_start();
    let s = s.strip_prefix('+').unwrap_or(s);
    let s = if base == 16 {
        s.strip_prefix("0x")
            .or_else(|| s.strip_prefix("0X"))
            .unwrap_or(s)
    } else {
        s
    };
    if s.is_empty() {
        return None;
    }
    u64::from_str_radix(s, base).ok()
}

/// A number that must fit an unsigned int, in `base` 0 (C's auto-detection), 10 or 16.
fn parse_uint_base(s: &str, base: u32) -> Option<u32> {
    let t = s.trim_start();
    let v = if base == 0 {
        if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
            parse_u64(h, 16)
        } else if t.len() > 1 && t.starts_with('0') {
            parse_u64(&t[1..], 8)
        } else {
            parse_u64(t, 10)
        }
    } else {
        parse_u64(t, base)
    }?;
    u32::try_from(v).ok()
}

/// libvirt: virNodeDevCapsDefParseUInt (and ParseHexId with `base` 16): missing and invalid
/// values each have their message, which names the device.
fn req_uint(v: Option<String>, base: u32, dev: &str, missing: &str, invalid: &str) -> R<u32> {
    match v {
        None => Err(internal(missing.replace("{}", dev))),
        Some(s) => parse_uint_base(&s, base).ok_or_else(|| internal(invalid.replace("{}", dev))),
    }
}

fn req_u64(v: Option<String>, dev: &str, missing: &str, invalid: &str) -> R<u64> {
    match v {
        None => Err(internal(missing.replace("{}", dev))),
        Some(s) => parse_u64(&s, 10).ok_or_else(|| internal(invalid.replace("{}", dev))),
    }
}

fn opt_int(v: Option<String>, dev: &str, invalid: &str) -> R<Option<i32>> {
    match v {
        None => Ok(None),
        Some(s) => s
            .trim_start()
            .parse::<i32>()
            .map(Some)
            .map_err(|_| internal(invalid.replace("{}", dev))),
    }
}

/// Parse a node device document (libvirt: virNodeDeviceDefParse for an existing device).
pub fn parse(xml: &str) -> R<NodeDeviceDef> {
    parse_mode(xml, false)
}

/// Parse the document of a device to create or define (libvirt's CREATE_DEVICE mode): its
/// name is "new device" until the device exists, and a vHBA has no host number yet.
pub fn parse_new(xml: &str) -> R<NodeDeviceDef> {
    parse_mode(xml, true)
}

fn parse_mode(xml: &str, create: bool) -> R<NodeDeviceDef> {
    let root = parse_document(xml).map_err(|e| {
        let m = e.to_string();
        NodeDevError::Xml(m.strip_prefix("XML error: ").unwrap_or(&m).to_string())
    })?;
    if root.name != "device" {
        return Err(NodeDevError::Xml(format!(
            "expecting root element of 'device', not '{}'",
            root.name
        )));
    }
    let name = if create {
        "new device".to_string()
    } else {
        text(&root, "name").ok_or(NodeDevError::NoName)?
    };
    let mut def = NodeDeviceDef {
        name,
        path: text(&root, "path"),
        ..Default::default()
    };
    for d in root.children.iter().filter(|c| c.name == "devnode") {
        match d.attr("type") {
            Some("dev") => def.devnode = Some(d.text.clone()),
            Some("link") => def.devlinks.push(d.text.clone()),
            Some(t) => {
                return Err(NodeDevError::Xml(format!(
                    "Invalid value for attribute 'type' in element 'devnode': '{t}'."
                )));
            }
            None => {
                return Err(NodeDevError::Xml(
                    "Missing required attribute 'type' in element 'devnode'".into(),
                ));
            }
        }
    }
    def.parent = text(&root, "parent");
    if let Some(p) = root.child("parent") {
        match (p.attr("wwnn"), p.attr("wwpn")) {
            (Some(n), None) => {
                return Err(NodeDevError::Xml(format!(
                    "when providing parent wwnn='{n}', the wwpn must also be provided"
                )));
            }
            (None, Some(p)) => {
                return Err(NodeDevError::Xml(format!(
                    "when providing parent wwpn='{p}', the wwnn must also be provided"
                )));
            }
            _ => {}
        }
    }
    // libvirt does not read <driver> back: it comes from the device's sysfs binding.
    let caps: Vec<&XmlNode> = root
        .children
        .iter()
        .filter(|c| c.name == "capability")
        .collect();
    if caps.is_empty() {
        return Err(internal(format!(
            "no device capabilities for '{}'",
            def.name
        )));
    }
    for c in caps {
        let cap = parse_cap(c, &def.name, create)?;
        def.caps.push(cap);
    }
    Ok(def)
}

// libvirt: virNodeDevCapsDefParseXML
fn parse_cap(n: &XmlNode, dev: &str, create: bool) -> R<Cap> {
    let t = match n.attr("type") {
        None => {
            return Err(NodeDevError::Xml(
                "Missing required attribute 'type' in element 'capability'".into(),
            ));
        }
        Some(t) => CapType::from_name(t).ok_or_else(|| {
            NodeDevError::Xml(format!(
                "Invalid value for attribute 'type' in element 'capability': '{t}'."
            ))
        })?,
    };
    Ok(match t {
        CapType::System => Cap::System(parse_system(n, dev)?),
        CapType::Pci => Cap::Pci(parse_pci(n, dev)?),
        CapType::UsbDevice => Cap::UsbDevice(UsbDevCap {
            bus: req_uint(
                text(n, "bus"),
                10,
                dev,
                "no USB bus number supplied for '{}'",
                "invalid USB bus number supplied for '{}'",
            )?,
            device: req_uint(
                text(n, "device"),
                10,
                dev,
                "no USB device number supplied for '{}'",
                "invalid USB device number supplied for '{}'",
            )?,
            vendor: req_uint(
                n.child("vendor")
                    .and_then(|v| v.attr("id"))
                    .map(str::to_string),
                16,
                dev,
                "no USB vendor ID supplied for '{}'",
                "invalid USB vendor ID supplied for '{}'",
            )?,
            product: req_uint(
                n.child("product")
                    .and_then(|v| v.attr("id"))
                    .map(str::to_string),
                16,
                dev,
                "no USB product ID supplied for '{}'",
                "invalid USB product ID supplied for '{}'",
            )?,
            vendor_name: text(n, "vendor"),
            product_name: text(n, "product"),
        }),
        CapType::Usb => {
            let f = |name: &str, what: &str| {
                req_uint(
                    text(n, name),
                    10,
                    dev,
                    &format!("no USB interface {what} supplied for '{{}}'"),
                    &format!("invalid USB interface {what} supplied for '{{}}'"),
                )
            };
            Cap::Usb(UsbIfCap {
                number: f("number", "number")?,
                class: f("class", "class")?,
                subclass: f("subclass", "subclass")?,
                protocol: f("protocol", "protocol")?,
                description: text(n, "description"),
            })
        }
        CapType::Net => Cap::Net(parse_net(n, dev)?),
        CapType::ScsiHost => Cap::ScsiHost(parse_scsi_host(n, dev, create)?),
        CapType::ScsiTarget => Cap::ScsiTarget(parse_scsi_target(n, dev)?),
        CapType::Scsi => {
            let f = |name: &str, what: &str| {
                req_uint(
                    text(n, name),
                    10,
                    dev,
                    &format!("no SCSI {what} supplied for '{{}}'"),
                    &format!("invalid SCSI {what} supplied for '{{}}'"),
                )
            };
            Cap::Scsi(ScsiCap {
                host: f("host", "host ID")?,
                bus: f("bus", "bus ID")?,
                target: f("target", "target ID")?,
                lun: f("lun", "LUN ID")?,
                kind: text(n, "type"),
            })
        }
        CapType::Storage => Cap::Storage(parse_storage(n, dev)?),
        CapType::Drm => {
            let ty = text(n, "type").unwrap_or_default();
            Cap::Drm(DrmType::from_name(&ty).ok_or_else(|| {
                NodeDevError::Unsupported(format!("unknown drm type '{ty}' for '{dev}'"))
            })?)
        }
        CapType::Mdev => Cap::Mdev(parse_mdev(n, dev)?),
        CapType::Ccw | CapType::Css | CapType::ApCard | CapType::ApQueue | CapType::ApMatrix => {
            // libvirt reads these; this driver models no s390 or AP device.
            return Err(NodeDevError::Unsupported(format!(
                "node device capability '{t}' is not supported by this driver"
            )));
        }
        CapType::MdevTypes
        | CapType::FcHost
        | CapType::Vports
        | CapType::ScsiGeneric
        | CapType::Vdpa
        | CapType::Vpd => {
            // libvirt prints the enum's number here.
            return Err(internal(format!(
                "unknown capability type '{}' for '{dev}'",
                t.index()
            )));
        }
    })
}

// libvirt: virNodeDevCapSystemParseXML
fn parse_system(n: &XmlNode, dev: &str) -> R<SystemCap> {
    let hw = n.child("hardware");
    let fw = n.child("firmware");
    let sub = |p: Option<&XmlNode>, name: &str| p.and_then(|p| text(p, name));
    let uuid =
        sub(hw, "uuid").ok_or_else(|| internal(format!("no system UUID supplied for '{dev}'")))?;
    let uuid =
        parse_uuid(&uuid).ok_or_else(|| internal(format!("malformed uuid element for '{dev}'")))?;
    Ok(SystemCap {
        product: text(n, "product"),
        hardware_vendor: sub(hw, "vendor"),
        hardware_version: sub(hw, "version"),
        hardware_serial: sub(hw, "serial"),
        hardware_uuid: uuid,
        firmware_vendor: sub(fw, "vendor"),
        firmware_version: sub(fw, "version"),
        firmware_release_date: sub(fw, "release_date"),
    })
}

/// A UUID as libvirt's virUUIDParse reads it (32 hex digits, hyphens and blanks between
/// them ignored), in canonical form.
pub(crate) fn parse_uuid(s: &str) -> Option<String> {
    let s = s.trim();
    let mut hex = String::new();
    for c in s.chars() {
        if c.is_ascii_hexdigit() {
            hex.push(c.to_ascii_lowercase());
        } else if c != '-' && c != ' ' {
            return None;
        }
    }
    if hex.len() != 32 {
        return None;
    }
    Some(format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    ))
}

// libvirt: virPCIDeviceAddressParseXML
fn parse_pci_addr(n: &XmlNode) -> R<PciAddr> {
    let f = |a: &str| -> R<u32> {
        match n.attr(a) {
            None => Ok(0),
            Some(v) => parse_uint_base(v, 0).ok_or_else(|| {
                NodeDevError::Unsupported(format!("Cannot parse <address> '{a}' attribute"))
            }),
        }
    };
    Ok(PciAddr {
        domain: f("domain")?,
        bus: f("bus")?,
        slot: f("slot")?,
        function: f("function")?,
    })
}

fn parse_link(n: &XmlNode) -> R<PcieLink> {
    let width = match n.attr("width") {
        None => {
            return Err(NodeDevError::Xml(
                "Missing required attribute 'width' in element 'link'".into(),
            ));
        }
        Some(w) => parse_uint_base(w, 0).ok_or_else(|| {
            NodeDevError::Xml(format!(
                "Invalid value for attribute 'width' in element 'link': '{w}'. Expected non-negative integer value"
            ))
        })?,
    };
    let speed = match n.attr("speed") {
        None => None,
        Some(s) if ["2.5", "5", "8", "16", "32", "64"].contains(&s) => Some(s.to_string()),
        Some(s) => {
            return Err(NodeDevError::Xml(format!(
                "Invalid value for attribute 'speed' in element 'link': '{s}'."
            )));
        }
    };
    let port = match n.attr("port") {
        None => None,
        Some(p) => Some(p.trim().parse::<i32>().map_err(|_| {
            NodeDevError::Xml(format!(
                "Invalid value for attribute 'port' in element 'link': '{p}'. Expected integer value"
            ))
        })?),
    };
    Ok(PcieLink { port, speed, width })
}

// libvirt: virNodeDevCapMdevTypesParseXML
fn parse_mdev_types(n: &XmlNode) -> R<Vec<MdevType>> {
    let mut out = Vec::new();
    for t in n.children.iter().filter(|c| c.name == "type") {
        let id = t.attr("id").filter(|s| !s.is_empty()).ok_or_else(|| {
            NodeDevError::Xml("missing 'id' attribute for mediated device's <type> element".into())
        })?;
        let device_api = text(t, "deviceAPI").ok_or_else(|| {
            NodeDevError::Xml(format!(
                "missing device API for mediated device type '{id}'"
            ))
        })?;
        let available_instances = text(t, "availableInstances")
            .and_then(|s| parse_uint_base(&s, 10))
            .ok_or_else(|| {
                NodeDevError::Xml(format!(
                    "missing number of available instances for mediated device type '{id}'"
                ))
            })?;
        out.push(MdevType {
            id: id.to_string(),
            name: text(t, "name"),
            device_api,
            available_instances,
        });
    }
    Ok(out)
}

// libvirt: virNodeDevCapPCIDevParseXML
fn parse_pci(n: &XmlNode, dev: &str) -> R<PciCap> {
    let class = match text(n, "class") {
        None => None,
        Some(s) => {
            let invalid = || internal(format!("invalid PCI class supplied for '{dev}'"));
            let v = parse_u64(&s, 16).ok_or_else(invalid)?;
            if v > 0xffffff {
                return Err(invalid());
            }
            Some(v as u32)
        }
    };
    let f = |name: &str, what: &str| {
        req_uint(
            text(n, name),
            10,
            dev,
            &format!("no PCI {what} ID supplied for '{{}}'"),
            &format!("invalid PCI {what} ID supplied for '{{}}'"),
        )
    };
    let addr = PciAddr {
        domain: f("domain", "domain")?,
        bus: f("bus", "bus")?,
        slot: f("slot", "slot")?,
        function: f("function", "function")?,
    };
    let hex = |name: &str, what: &str| {
        req_uint(
            n.child(name).and_then(|v| v.attr("id")).map(str::to_string),
            16,
            dev,
            &format!("no PCI {what} ID supplied for '{{}}'"),
            &format!("invalid PCI {what} ID supplied for '{{}}'"),
        )
    };
    let mut p = PciCap {
        class,
        addr,
        vendor: hex("vendor", "vendor")?,
        product: hex("product", "product")?,
        vendor_name: text(n, "vendor"),
        product_name: text(n, "product"),
        ..Default::default()
    };
    for c in n.children.iter().filter(|c| c.name == "capability") {
        let Some(t) = c.attr("type") else {
            return Err(NodeDevError::Xml("Missing capability type".into()));
        };
        match t {
            "phys_function" => {
                let a = c.child("address").ok_or_else(|| {
                    NodeDevError::Xml("Missing address in 'phys_function' capability".into())
                })?;
                p.phys_function = Some(parse_pci_addr(a)?);
            }
            "virt_functions" => {
                let max_count = match c.attr("maxCount") {
                    None => 0,
                    Some(m) => parse_uint_base(m, 10).ok_or_else(|| {
                        NodeDevError::Xml("Malformed 'maxCount' parameter".into())
                    })?,
                };
                let addrs = c
                    .children
                    .iter()
                    .filter(|a| a.name == "address")
                    .map(parse_pci_addr)
                    .collect::<R<Vec<_>>>()?;
                p.virt_functions = Some(VirtFunctions { max_count, addrs });
            }
            "mdev_types" => p.mdev_types = Some(parse_mdev_types(c)?),
            "vpd" => p.vpd = Some(c.clone()),
            other => {
                if let (Some(h), None) = (PciHeader::from_name(other), p.header) {
                    // libvirt keeps the first header type other than the endpoint's zero.
                    if h != PciHeader::Endpoint {
                        p.header = Some(h);
                    }
                }
            }
        }
    }
    if let Some(g) = n.child("iommuGroup") {
        let number = match g.attr("number") {
            None => {
                return Err(NodeDevError::Xml(
                    "Missing required attribute 'number' in element 'iommuGroup'".into(),
                ));
            }
            Some(v) => parse_uint_base(v, 10).ok_or_else(|| {
                NodeDevError::Xml(format!(
                    "Invalid value for attribute 'number' in element 'iommuGroup': '{v}'. Expected non-negative integer value"
                ))
            })?,
        };
        let addrs = g
            .children
            .iter()
            .filter(|a| a.name == "address")
            .map(parse_pci_addr)
            .collect::<R<Vec<_>>>()?;
        p.iommu_group = Some((number, addrs));
    }
    p.numa_node = opt_int(
        n.child("numa")
            .and_then(|x| x.attr("node"))
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        dev,
        "invalid NUMA node ID supplied for '{}'",
    )?;
    if let Some(e) = n.child("pci-express") {
        let find = |v: &str| {
            e.children
                .iter()
                .find(|l| l.name == "link" && l.attr("validity") == Some(v))
        };
        p.pci_express = Some(PciExpress {
            link_cap: find("cap").map(parse_link).transpose()?,
            link_sta: find("sta").map(parse_link).transpose()?,
        });
    }
    Ok(p)
}

// libvirt: virNodeDevCapNetParseXML
fn parse_net(n: &XmlNode, dev: &str) -> R<NetCap> {
    let interface = text(n, "interface")
        .ok_or_else(|| internal(format!("no network interface supplied for '{dev}'")))?;
    let mut features = Vec::new();
    for f in n.children.iter().filter(|c| c.name == "feature") {
        let name = f
            .attr("name")
            .ok_or_else(|| NodeDevError::Xml("missing network device feature name".into()))?;
        let i = NET_FEATURES
            .iter()
            .position(|x| *x == name)
            .ok_or_else(|| NodeDevError::Xml(format!("unknown network device feature '{name}'")))?;
        if !features.contains(&i) {
            features.push(i);
        }
    }
    features.sort_unstable();
    let subtype = match n
        .child("capability")
        .and_then(|c| c.attr("type"))
        .filter(|s| !s.is_empty())
    {
        None => None,
        Some("80203") => Some(NetSubtype::Ieee80203),
        Some("80211") => Some(NetSubtype::Ieee80211),
        Some(_) => {
            return Err(NodeDevError::Unsupported(format!(
                "invalid network type supplied for '{dev}'"
            )));
        }
    };
    let (mut link_speed, mut link_state) = (None, None);
    if let Some(l) = n.child("link") {
        if let Some(s) = l.attr("state") {
            link_state = Some(LinkState::from_name(s).ok_or_else(|| {
                NodeDevError::Xml(format!(
                    "Invalid value for attribute 'state' in element 'link': '{s}'."
                ))
            })?);
        }
        if let Some(s) = l.attr("speed") {
            let v = parse_uint_base(s, 10).ok_or_else(|| {
                NodeDevError::Xml(format!(
                    "Invalid value for attribute 'speed' in element 'link': '{s}'. Expected non-negative integer value"
                ))
            })?;
            link_speed = Some(v).filter(|v| *v != 0);
        }
    }
    Ok(NetCap {
        interface,
        address: text(n, "address"),
        link_speed,
        link_state,
        features,
        subtype,
    })
}

// libvirt: virNodeDevCapSCSIHostParseXML (an existing device)
fn parse_scsi_host(n: &XmlNode, dev: &str, create: bool) -> R<ScsiHostCap> {
    let mut s = ScsiHostCap::default();
    if !create {
        s.host = req_uint(
            text(n, "host"),
            10,
            dev,
            "no SCSI host ID supplied for '{}'",
            "invalid SCSI host ID supplied for '{}'",
        )?;
        s.unique_id = opt_int(
            text(n, "unique_id"),
            dev,
            "invalid unique_id supplied for '{}'",
        )?;
    }
    for c in n.children.iter().filter(|c| c.name == "capability") {
        match c.attr("type") {
            None => {
                return Err(internal(format!(
                    "missing SCSI host capability type for '{dev}'"
                )));
            }
            // libvirt reads only the flag: the figures come from sysfs.
            Some("vport_ops") => s.vport_ops = Some((0, 0)),
            Some("fc_host") => {
                // libvirt generates a random WWN for a missing one; a document describing
                // an existing device has them.
                let wwnn = text(c, "wwnn").ok_or_else(|| {
                    internal(format!(
                        "no WWNN supplied for '{dev}', and auto-generation failed"
                    ))
                })?;
                let wwpn = text(c, "wwpn").ok_or_else(|| {
                    internal(format!(
                        "no WWPN supplied for '{dev}', and auto-generation failed"
                    ))
                })?;
                s.fc_host = Some(FcHost {
                    wwnn,
                    wwpn,
                    fabric_wwn: text(c, "fabric_wwn"),
                });
            }
            Some(t) => {
                return Err(internal(format!(
                    "unknown SCSI host capability type '{t}' for '{dev}'"
                )));
            }
        }
    }
    Ok(s)
}

// libvirt: virNodeDevCapSCSITargetParseXML
fn parse_scsi_target(n: &XmlNode, dev: &str) -> R<ScsiTargetCap> {
    let target = text(n, "target")
        .ok_or_else(|| internal(format!("no target name supplied for '{dev}'")))?;
    let mut t = ScsiTargetCap {
        target,
        fc_remote_port: None,
    };
    for c in n.children.iter().filter(|c| c.name == "capability") {
        match c.attr("type") {
            None => {
                return Err(internal(format!(
                    "missing type for SCSI target capability for '{dev}'"
                )));
            }
            Some("fc_remote_port") => {
                let rport = text(c, "rport")
                    .ok_or_else(|| internal(format!("missing rport name for '{dev}'")))?;
                let wwpn = text(c, "wwpn")
                    .ok_or_else(|| internal(format!("missing wwpn identifier for '{dev}'")))?;
                t.fc_remote_port = Some((rport, wwpn));
            }
            Some(x) => {
                return Err(internal(format!(
                    "unknown SCSI target capability type '{x}' for '{dev}'"
                )));
            }
        }
    }
    Ok(t)
}

// libvirt: virNodeDevCapStorageParseXML
fn parse_storage(n: &XmlNode, dev: &str) -> R<StorageCap> {
    let block = text(n, "block")
        .ok_or_else(|| internal(format!("no block device path supplied for '{dev}'")))?;
    let mut s = StorageCap {
        block,
        bus: text(n, "bus"),
        drive_type: text(n, "drive_type"),
        model: text(n, "model"),
        vendor: text(n, "vendor"),
        serial: text(n, "serial"),
        ..Default::default()
    };
    for c in n.children.iter().filter(|c| c.name == "capability") {
        match c.attr("type") {
            None => {
                return Err(internal(format!(
                    "missing storage capability type for '{dev}'"
                )));
            }
            Some("hotpluggable") => s.hotpluggable = true,
            Some("removable") => {
                let media_available = c
                    .children
                    .iter()
                    .any(|m| m.name == "media_available" && m.text == "1");
                let media_size = req_u64(
                    text(c, "media_size"),
                    dev,
                    "no removable media size supplied for '{}'",
                    "invalid removable media size supplied for '{}'",
                )?;
                s.removable = Some(Removable {
                    media_available,
                    media_size,
                    media_label: text(c, "media_label"),
                });
            }
            Some(t) => {
                return Err(internal(format!(
                    "unknown storage capability type '{t}' for '{dev}'"
                )));
            }
        }
    }
    if s.removable.is_none() {
        s.size = req_u64(
            text(n, "size"),
            dev,
            "no size supplied for '{}'",
            "invalid size supplied for '{}'",
        )?;
    }
    Ok(s)
}

// libvirt: virNodeDevCapMdevParseXML
fn parse_mdev(n: &XmlNode, dev: &str) -> R<MdevCap> {
    let type_id = n
        .child("type")
        .and_then(|t| t.attr("id"))
        .filter(|s| !s.is_empty())
        .ok_or_else(|| NodeDevError::Unsupported(format!("missing type id attribute for '{dev}'")))?
        .to_string();
    let uuid = match text(n, "uuid") {
        None => None,
        Some(u) => Some(
            parse_uuid(&u)
                .ok_or_else(|| internal(format!("Invalid uuid '{u}' for new mdev device")))?,
        ),
    };
    let iommu_group = match n
        .child("iommuGroup")
        .and_then(|g| g.attr("number"))
        .filter(|s| !s.is_empty())
    {
        None => 0,
        Some(v) => parse_uint_base(v, 10)
            .ok_or_else(|| internal(format!("invalid iommuGroup number attribute for '{dev}'")))?,
    };
    let mut attrs = Vec::new();
    for a in n.children.iter().filter(|c| c.name == "attr") {
        match (a.attr("name"), a.attr("value")) {
            (Some(k), Some(v)) if !k.is_empty() && !v.is_empty() => {
                attrs.push((k.to_string(), v.to_string()))
            }
            // libvirt reports this and carries on without the attribute.
            _ => {}
        }
    }
    Ok(MdevCap {
        type_id,
        uuid,
        // Like <driver>, libvirt takes the parent address from sysfs, not from a document.
        parent_addr: None,
        iommu_group,
        attrs,
    })
}
