//! Device addresses and the per-device info libvirt attaches to every device: `<boot>`,
//! `<alias>`, `<acpi>`, `<address>`.

use super::DomainError;
use super::xml::{Extra, Rd, XmlNode};

/// Parse an unsigned integer the way libvirt's address parsers do: decimal, or hex with `0x`.
pub(crate) fn parse_uint(v: &str, attr: &str, elem: &str) -> Result<u32, DomainError> {
    let t = v.trim();
    let r = if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        u32::from_str_radix(h, 16)
    } else {
        t.parse::<u32>()
    };
    r.map_err(|_| {
        DomainError::Xml(format!(
            "XML error: Invalid value for attribute '{attr}' in element '{elem}': '{v}'. Expected non-negative integer value"
        ))
    })
}

pub(crate) fn opt_uint(rd: &Rd<'_>, attr: &str) -> Result<Option<u32>, DomainError> {
    rd.attr(attr)
        .map(|v| parse_uint(&v, attr, &rd.node.name))
        .transpose()
}

/// `<zpci uid='0x0001' fid='0x00000000'/>` inside an s390 PCI address.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Zpci {
    pub uid: Option<String>,
    pub fid: Option<String>,
}

fn parse_zpci(z: &XmlNode) -> Result<Zpci, DomainError> {
    if let Some(uid) = z.attr("uid") {
        let v = parse_uint(uid, "uid", "zpci")?;
        if v == 0 || v > 0xffff {
            return Err(DomainError::Xml(format!(
                "XML error: Invalid PCI address uid='0x{v:04x}', must be > 0x0000 and <= 0xffff"
            )));
        }
    }
    Ok(Zpci {
        uid: z.attr("uid").map(String::from),
        fid: z.attr("fid").map(String::from),
    })
}

/// `<rom bar='on|off' file='..' enabled='yes|no'/>` of a PCI device.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Rom {
    pub bar: Option<String>,
    pub file: Option<String>,
    pub enabled: Option<String>,
}

/// A device address. Values are kept numerically so address assignment can compare them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    Pci {
        domain: u32,
        bus: u32,
        slot: u32,
        function: u32,
        multifunction: Option<String>,
        /// s390 zPCI identifiers (`uid`, `fid`), as written.
        zpci: Option<Zpci>,
    },
    Drive {
        controller: u32,
        bus: u32,
        target: u32,
        unit: u32,
    },
    VirtioSerial {
        controller: u32,
        bus: u32,
        port: Option<u32>,
    },
    Ccid {
        controller: u32,
        slot: u32,
    },
    Usb {
        bus: u32,
        /// Dotted hub path, e.g. `1.2`.
        port: Option<String>,
    },
    SpaprVio {
        reg: Option<String>,
    },
    Ccw {
        cssid: String,
        ssid: String,
        devno: String,
    },
    Isa {
        iobase: Option<String>,
        irq: Option<String>,
    },
    Dimm {
        slot: Option<u32>,
        base: Option<String>,
    },
    VirtioMmio,
    VirtioS390,
    Unassigned,
    /// An address type we do not model, kept verbatim.
    Other(XmlNode),
}

impl Address {
    pub fn type_name(&self) -> &str {
        match self {
            Address::Pci { .. } => "pci",
            Address::Drive { .. } => "drive",
            Address::VirtioSerial { .. } => "virtio-serial",
            Address::Ccid { .. } => "ccid",
            Address::Usb { .. } => "usb",
            Address::SpaprVio { .. } => "spapr-vio",
            Address::Ccw { .. } => "ccw",
            Address::Isa { .. } => "isa",
            Address::Dimm { .. } => "dimm",
            Address::VirtioMmio => "virtio-mmio",
            Address::VirtioS390 => "virtio-s390",
            Address::Unassigned => "unassigned",
            Address::Other(n) => n.attr("type").unwrap_or(""),
        }
    }

    pub fn parse(node: &XmlNode) -> Result<Address, DomainError> {
        let rd = Rd::new(node);
        let u = |a: &str| opt_uint(&rd, a).map(|v| v.unwrap_or(0));
        let ty = rd.attr("type").unwrap_or_default();
        let addr = match ty.as_str() {
            "pci" => Address::Pci {
                domain: u("domain")?,
                bus: u("bus")?,
                slot: u("slot")?,
                function: u("function")?,
                multifunction: rd.attr("multifunction"),
                zpci: rd.child("zpci").map(parse_zpci).transpose()?,
            },
            "drive" => Address::Drive {
                controller: u("controller")?,
                bus: u("bus")?,
                target: u("target")?,
                unit: u("unit")?,
            },
            "virtio-serial" => Address::VirtioSerial {
                controller: u("controller")?,
                bus: u("bus")?,
                port: opt_uint(&rd, "port")?,
            },
            "ccid" => Address::Ccid {
                controller: u("controller")?,
                slot: u("slot")?,
            },
            "usb" => Address::Usb {
                bus: u("bus")?,
                port: rd.attr("port"),
            },
            "spapr-vio" => Address::SpaprVio {
                reg: rd.attr("reg"),
            },
            "ccw" => Address::Ccw {
                cssid: rd.attr("cssid").unwrap_or_default(),
                ssid: rd.attr("ssid").unwrap_or_default(),
                devno: rd.attr("devno").unwrap_or_default(),
            },
            "isa" => Address::Isa {
                iobase: rd.attr("iobase"),
                irq: rd.attr("irq"),
            },
            "dimm" => Address::Dimm {
                slot: opt_uint(&rd, "slot")?,
                base: rd.attr("base"),
            },
            "virtio-mmio" => Address::VirtioMmio,
            "virtio-s390" => Address::VirtioS390,
            "unassigned" => Address::Unassigned,
            "" => {
                return Err(DomainError::Xml(
                    "XML error: No type specified for device address".to_string(),
                ));
            }
            _ => return Ok(Address::Other(node.clone())),
        };
        if !rd.extra().is_empty() {
            // Attributes we would silently drop: keep the whole element instead.
            return Ok(Address::Other(node.clone()));
        }
        Ok(addr)
    }

    pub fn to_node(&self) -> XmlNode {
        let n = XmlNode::new("address").a("type", self.type_name());
        match self {
            Address::Pci {
                domain,
                bus,
                slot,
                function,
                multifunction,
                zpci,
            } => n
                .a("domain", format_args!("0x{domain:04x}"))
                .a("bus", format_args!("0x{bus:02x}"))
                .a("slot", format_args!("0x{slot:02x}"))
                .a("function", format_args!("0x{function:x}"))
                .ao("multifunction", multifunction.as_ref())
                .co(zpci.as_ref().map(|z| {
                    XmlNode::new("zpci")
                        .ao("uid", z.uid.as_ref())
                        .ao("fid", z.fid.as_ref())
                })),
            Address::Drive {
                controller,
                bus,
                target,
                unit,
            } => n
                .a("controller", controller)
                .a("bus", bus)
                .a("target", target)
                .a("unit", unit),
            Address::VirtioSerial {
                controller,
                bus,
                port,
            } => n
                .a("controller", controller)
                .a("bus", bus)
                .ao("port", port.as_ref()),
            Address::Ccid { controller, slot } => n.a("controller", controller).a("slot", slot),
            Address::Usb { bus, port } => n.a("bus", bus).ao("port", port.as_ref()),
            Address::SpaprVio { reg } => n.ao("reg", reg.as_ref()),
            Address::Ccw { cssid, ssid, devno } => {
                n.a("cssid", cssid).a("ssid", ssid).a("devno", devno)
            }
            Address::Isa { iobase, irq } => n.ao("iobase", iobase.as_ref()).ao("irq", irq.as_ref()),
            Address::Dimm { slot, base } => n.ao("slot", slot.as_ref()).ao("base", base.as_ref()),
            Address::VirtioMmio | Address::VirtioS390 | Address::Unassigned => n,
            Address::Other(node) => node.clone(),
        }
    }
}

/// `<boot order='N' loadparm='...'/>` on a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootOrder {
    pub order: u32,
    pub loadparm: Option<String>,
}

/// What libvirt keeps for every device besides its own configuration.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeviceInfo {
    pub boot: Option<BootOrder>,
    pub alias: Option<String>,
    /// USB companion controllers: `<master startport='N'/>`.
    pub master_startport: Option<String>,
    pub rom: Option<Rom>,
    pub acpi_index: Option<u32>,
    pub address: Option<Address>,
}

impl DeviceInfo {
    /// Take the info elements out of a device element being read.
    pub(crate) fn parse(rd: &Rd<'_>) -> Result<DeviceInfo, DomainError> {
        let boot = match rd.child("boot") {
            Some(b) => {
                let brd = Rd::new(b);
                let order = opt_uint(&brd, "order")?.ok_or_else(|| {
                    DomainError::Xml("XML error: missing boot order attribute".to_string())
                })?;
                if order == 0 {
                    return Err(DomainError::Xml(
                        "XML error: incorrect boot order '0', expecting positive integer"
                            .to_string(),
                    ));
                }
                Some(BootOrder {
                    order,
                    loadparm: brd.attr("loadparm"),
                })
            }
            None => None,
        };
        let alias = rd
            .child("alias")
            .and_then(|a| a.attr("name").map(String::from));
        let master_startport = rd
            .child("master")
            .and_then(|m| m.attr("startport").map(String::from));
        let rom = rd.child("rom").map(|r| Rom {
            bar: r.attr("bar").map(String::from),
            file: r.attr("file").map(String::from),
            enabled: r.attr("enabled").map(String::from),
        });
        let acpi_index = match rd.child("acpi") {
            Some(a) => opt_uint(&Rd::new(a), "index")?,
            None => None,
        };
        let address = rd.child("address").map(Address::parse).transpose()?;
        Ok(DeviceInfo {
            boot,
            alias,
            master_startport,
            rom,
            acpi_index,
            address,
        })
    }

    pub fn nodes(&self) -> Vec<XmlNode> {
        let mut v = Vec::new();
        if let Some(b) = &self.boot {
            v.push(
                XmlNode::new("boot")
                    .a("order", b.order)
                    .ao("loadparm", b.loadparm.as_ref()),
            );
        }
        if let Some(a) = &self.alias {
            v.push(XmlNode::new("alias").a("name", a));
        }
        if let Some(m) = &self.master_startport {
            v.push(XmlNode::new("master").a("startport", m));
        }
        if let Some(r) = &self.rom {
            v.push(
                XmlNode::new("rom")
                    .ao("enabled", r.enabled.as_ref())
                    .ao("bar", r.bar.as_ref())
                    .ao("file", r.file.as_ref()),
            );
        }
        if let Some(i) = self.acpi_index {
            v.push(XmlNode::new("acpi").a("index", i));
        }
        if let Some(a) = &self.address {
            v.push(a.to_node());
        }
        v
    }
}

/// Append unmodelled children, then the device info, which libvirt always writes last.
pub(crate) fn finish(node: XmlNode, extra: &Extra, info: &DeviceInfo) -> XmlNode {
    node.extra_children(extra).cs(info.nodes())
}
