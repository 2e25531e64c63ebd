//! Node device XML (`<device>`), as libvirt's node device driver reads and writes it
//! (libvirt: src/conf/node_device_conf.c). Pure: no I/O. The host enumeration that fills these
//! definitions from sysfs lives in `crate::driver::nodedev`.
//!
//! Typed for the capabilities a host shows (system, pci, usb_device, usb, net, scsi_host,
//! scsi_target, scsi, storage, drm, mdev, and the mdev_types a PCI parent offers). A PCI
//! device's `vpd` capability is kept verbatim: it is only ever read back from a document,
//! never built from sysfs here. The s390 and AP capabilities (ccw, css, ap_*) are refused.

mod parse;

use std::fmt;

use crate::xmlfmt::XmlWriter;

pub use parse::{parse, parse_new};

/// Errors of the node device model, worded as libvirt's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodeDevError {
    /// libvirt's VIR_ERR_XML_ERROR.
    #[error("XML error: {0}")]
    Xml(String),
    /// libvirt's VIR_ERR_INTERNAL_ERROR.
    #[error("internal error: {0}")]
    Internal(String),
    /// libvirt's VIR_ERR_CONFIG_UNSUPPORTED.
    #[error("unsupported configuration: {0}")]
    Unsupported(String),
    /// libvirt's VIR_ERR_NO_NAME.
    #[error("missing name information")]
    NoName,
}

/// Every capability type libvirt names (libvirt: virNodeDevCapType), in its order: the
/// vocabulary of `nodedev-list --cap`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CapType {
    System,
    Pci,
    UsbDevice,
    Usb,
    Net,
    ScsiHost,
    ScsiTarget,
    Scsi,
    Storage,
    FcHost,
    Vports,
    ScsiGeneric,
    Drm,
    MdevTypes,
    Mdev,
    Ccw,
    Css,
    Vdpa,
    ApCard,
    ApQueue,
    ApMatrix,
    Vpd,
}

impl CapType {
    pub const ALL: &[CapType] = &[
        CapType::System,
        CapType::Pci,
        CapType::UsbDevice,
        CapType::Usb,
        CapType::Net,
        CapType::ScsiHost,
        CapType::ScsiTarget,
        CapType::Scsi,
        CapType::Storage,
        CapType::FcHost,
        CapType::Vports,
        CapType::ScsiGeneric,
        CapType::Drm,
        CapType::MdevTypes,
        CapType::Mdev,
        CapType::Ccw,
        CapType::Css,
        CapType::Vdpa,
        CapType::ApCard,
        CapType::ApQueue,
        CapType::ApMatrix,
        CapType::Vpd,
    ];

    pub fn name(self) -> &'static str {
        match self {
            CapType::System => "system",
            CapType::Pci => "pci",
            CapType::UsbDevice => "usb_device",
            CapType::Usb => "usb",
            CapType::Net => "net",
            CapType::ScsiHost => "scsi_host",
            CapType::ScsiTarget => "scsi_target",
            CapType::Scsi => "scsi",
            CapType::Storage => "storage",
            CapType::FcHost => "fc_host",
            CapType::Vports => "vports",
            CapType::ScsiGeneric => "scsi_generic",
            CapType::Drm => "drm",
            CapType::MdevTypes => "mdev_types",
            CapType::Mdev => "mdev",
            CapType::Ccw => "ccw",
            CapType::Css => "css",
            CapType::Vdpa => "vdpa",
            CapType::ApCard => "ap_card",
            CapType::ApQueue => "ap_queue",
            CapType::ApMatrix => "ap_matrix",
            CapType::Vpd => "vpd",
        }
    }

    pub fn from_name(s: &str) -> Option<CapType> {
        CapType::ALL.iter().copied().find(|c| c.name() == s)
    }

    /// The index libvirt's enum gives this type (some of its messages print the number).
    pub fn index(self) -> usize {
        CapType::ALL.iter().position(|c| *c == self).unwrap_or(0)
    }
}

impl fmt::Display for CapType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A PCI address as node device XML writes it (`<address domain= bus= slot= function=/>`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PciAddr {
    pub domain: u32,
    pub bus: u32,
    pub slot: u32,
    pub function: u32,
}

impl PciAddr {
    /// `0000:00:1f.2`, the kernel's name for the device.
    pub fn sysfs_name(&self) -> String {
        format!(
            "{:04x}:{:02x}:{:02x}.{:x}",
            self.domain, self.bus, self.slot, self.function
        )
    }

    /// Parse the kernel's `DDDD:BB:SS.F`.
    pub fn from_sysfs_name(s: &str) -> Option<PciAddr> {
        let (domain, rest) = s.split_once(':')?;
        let (bus, rest) = rest.split_once(':')?;
        let (slot, function) = rest.split_once('.')?;
        Some(PciAddr {
            domain: u32::from_str_radix(domain, 16).ok()?,
            bus: u32::from_str_radix(bus, 16).ok()?,
            slot: u32::from_str_radix(slot, 16).ok()?,
            function: u32::from_str_radix(function, 16).ok()?,
        })
    }

    fn write(&self, w: &mut XmlWriter) {
        // libvirt writes the function with "0x%d": a decimal number behind a hex prefix.
        w.raw_lines(&format!(
            "<address domain='0x{:04x}' bus='0x{:02x}' slot='0x{:02x}' function='0x{}'/>",
            self.domain, self.bus, self.slot, self.function
        ));
    }
}

/// The `<capability type='system'>` of the `computer` root.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SystemCap {
    pub product: Option<String>,
    pub hardware_vendor: Option<String>,
    pub hardware_version: Option<String>,
    pub hardware_serial: Option<String>,
    /// Canonical lowercase UUID; all zeroes when the host has none.
    pub hardware_uuid: String,
    pub firmware_vendor: Option<String>,
    pub firmware_version: Option<String>,
    pub firmware_release_date: Option<String>,
}

/// A PCI header type (libvirt: virPCIHeader).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PciHeader {
    Endpoint,
    PciBridge,
    CardbusBridge,
}

impl PciHeader {
    pub fn name(self) -> &'static str {
        match self {
            PciHeader::Endpoint => "endpoint",
            PciHeader::PciBridge => "pci-bridge",
            PciHeader::CardbusBridge => "cardbus-bridge",
        }
    }

    fn from_name(s: &str) -> Option<PciHeader> {
        [
            PciHeader::Endpoint,
            PciHeader::PciBridge,
            PciHeader::CardbusBridge,
        ]
        .into_iter()
        .find(|h| h.name() == s)
    }
}

/// One PCIe link (libvirt: virPCIELink).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PcieLink {
    pub port: Option<i32>,
    /// GT/s as libvirt spells it: `2.5`, `5`, `8`, `16`, `32`, `64`.
    pub speed: Option<String>,
    pub width: u32,
}

/// `<pci-express>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PciExpress {
    pub link_cap: Option<PcieLink>,
    pub link_sta: Option<PcieLink>,
}

/// One mediated device type a parent offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MdevType {
    pub id: String,
    pub name: Option<String>,
    pub device_api: String,
    pub available_instances: u32,
}

/// SR-IOV virtual functions of a physical function.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VirtFunctions {
    pub max_count: u32,
    pub addrs: Vec<PciAddr>,
}

/// `<capability type='pci'>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PciCap {
    pub class: Option<u32>,
    pub addr: PciAddr,
    pub product: u32,
    pub product_name: Option<String>,
    pub vendor: u32,
    pub vendor_name: Option<String>,
    pub phys_function: Option<PciAddr>,
    pub virt_functions: Option<VirtFunctions>,
    pub header: Option<PciHeader>,
    pub mdev_types: Option<Vec<MdevType>>,
    /// The `vpd` capability, verbatim.
    pub vpd: Option<crate::domain::xml::XmlNode>,
    /// IOMMU group number and its members.
    pub iommu_group: Option<(u32, Vec<PciAddr>)>,
    pub numa_node: Option<i32>,
    pub pci_express: Option<PciExpress>,
}

/// `<capability type='usb_device'>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UsbDevCap {
    pub bus: u32,
    pub device: u32,
    pub product: u32,
    pub product_name: Option<String>,
    pub vendor: u32,
    pub vendor_name: Option<String>,
}

/// `<capability type='usb'>`: a USB interface.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UsbIfCap {
    pub number: u32,
    pub class: u32,
    pub subclass: u32,
    pub protocol: u32,
    pub description: Option<String>,
}

/// A network link's operational state (libvirt: virNetDevIfState).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    Unknown,
    NotPresent,
    Down,
    LowerLayerDown,
    Testing,
    Dormant,
    Up,
}

impl LinkState {
    pub const ALL: &[LinkState] = &[
        LinkState::Unknown,
        LinkState::NotPresent,
        LinkState::Down,
        LinkState::LowerLayerDown,
        LinkState::Testing,
        LinkState::Dormant,
        LinkState::Up,
    ];

    pub fn name(self) -> &'static str {
        match self {
            LinkState::Unknown => "unknown",
            LinkState::NotPresent => "notpresent",
            LinkState::Down => "down",
            LinkState::LowerLayerDown => "lowerlayerdown",
            LinkState::Testing => "testing",
            LinkState::Dormant => "dormant",
            LinkState::Up => "up",
        }
    }

    pub fn from_name(s: &str) -> Option<LinkState> {
        LinkState::ALL.iter().copied().find(|l| l.name() == s)
    }
}

/// Offload features libvirt reports, in its order (libvirt: virNetDevFeature).
pub const NET_FEATURES: &[&str] = &[
    "rx",
    "tx",
    "sg",
    "tso",
    "gso",
    "gro",
    "lro",
    "rxvlan",
    "txvlan",
    "ntuple",
    "rxhash",
    "rdma",
    "txudptnl",
    "switchdev",
];

/// 802.3 or 802.11.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetSubtype {
    Ieee80203,
    Ieee80211,
}

impl NetSubtype {
    pub fn name(self) -> &'static str {
        match self {
            NetSubtype::Ieee80203 => "80203",
            NetSubtype::Ieee80211 => "80211",
        }
    }
}

/// `<capability type='net'>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NetCap {
    pub interface: String,
    pub address: Option<String>,
    /// Mb/s; `None` when unknown.
    pub link_speed: Option<u32>,
    pub link_state: Option<LinkState>,
    /// Indices into [`NET_FEATURES`], ascending.
    pub features: Vec<usize>,
    pub subtype: Option<NetSubtype>,
}

/// An FC HBA's names.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FcHost {
    pub wwnn: String,
    pub wwpn: String,
    pub fabric_wwn: Option<String>,
}

/// `<capability type='scsi_host'>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScsiHostCap {
    pub host: u32,
    pub unique_id: Option<i32>,
    pub fc_host: Option<FcHost>,
    /// `(max_vports, vports)` of an HBA that can create vports.
    pub vport_ops: Option<(u32, u32)>,
}

/// `<capability type='scsi_target'>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScsiTargetCap {
    pub target: String,
    /// `(rport, wwpn)` of an FC remote port.
    pub fc_remote_port: Option<(String, String)>,
}

/// `<capability type='scsi'>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScsiCap {
    pub host: u32,
    pub bus: u32,
    pub target: u32,
    pub lun: u32,
    pub kind: Option<String>,
}

/// Removable media of a storage device.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Removable {
    pub media_available: bool,
    pub media_size: u64,
    pub media_label: Option<String>,
}

/// `<capability type='storage'>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StorageCap {
    pub block: String,
    pub bus: Option<String>,
    pub drive_type: Option<String>,
    pub model: Option<String>,
    pub vendor: Option<String>,
    pub serial: Option<String>,
    pub removable: Option<Removable>,
    pub size: u64,
    pub logical_block_size: u64,
    pub num_blocks: u64,
    pub hotpluggable: bool,
}

/// A DRM minor's kind (libvirt: virNodeDevDRMType).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrmType {
    Primary,
    Control,
    Render,
}

impl DrmType {
    pub fn name(self) -> &'static str {
        match self {
            DrmType::Primary => "primary",
            DrmType::Control => "control",
            DrmType::Render => "render",
        }
    }

    pub fn from_name(s: &str) -> Option<DrmType> {
        [DrmType::Primary, DrmType::Control, DrmType::Render]
            .into_iter()
            .find(|d| d.name() == s)
    }

    /// The kind of DRM minor number `minor` (libvirt: drmGetMinorType).
    pub fn from_minor(minor: u32) -> Option<DrmType> {
        match minor >> 6 {
            0 => Some(DrmType::Primary),
            1 => Some(DrmType::Control),
            2 => Some(DrmType::Render),
            _ => None,
        }
    }
}

/// `<capability type='mdev'>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MdevCap {
    pub type_id: String,
    pub uuid: Option<String>,
    pub parent_addr: Option<String>,
    pub iommu_group: u32,
    /// `<attr name= value=/>`, in order.
    pub attrs: Vec<(String, String)>,
}

/// One `<capability>` of a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cap {
    System(SystemCap),
    Pci(PciCap),
    UsbDevice(UsbDevCap),
    Usb(UsbIfCap),
    Net(NetCap),
    ScsiHost(ScsiHostCap),
    ScsiTarget(ScsiTargetCap),
    Scsi(ScsiCap),
    Storage(StorageCap),
    /// The `/dev/sgN` path.
    ScsiGeneric(String),
    Drm(DrmType),
    /// A parent of mediated devices that is not PCI (e.g. mtty).
    MdevTypes(Vec<MdevType>),
    Mdev(MdevCap),
}

impl Cap {
    pub fn cap_type(&self) -> CapType {
        match self {
            Cap::System(_) => CapType::System,
            Cap::Pci(_) => CapType::Pci,
            Cap::UsbDevice(_) => CapType::UsbDevice,
            Cap::Usb(_) => CapType::Usb,
            Cap::Net(_) => CapType::Net,
            Cap::ScsiHost(_) => CapType::ScsiHost,
            Cap::ScsiTarget(_) => CapType::ScsiTarget,
            Cap::Scsi(_) => CapType::Scsi,
            Cap::Storage(_) => CapType::Storage,
            Cap::ScsiGeneric(_) => CapType::ScsiGeneric,
            Cap::Drm(_) => CapType::Drm,
            Cap::MdevTypes(_) => CapType::MdevTypes,
            Cap::Mdev(_) => CapType::Mdev,
        }
    }
}

/// A node device (libvirt: virNodeDeviceDef).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NodeDeviceDef {
    pub name: String,
    /// The sysfs path.
    pub path: Option<String>,
    pub devnode: Option<String>,
    pub devlinks: Vec<String>,
    pub parent: Option<String>,
    pub driver: Option<String>,
    pub caps: Vec<Cap>,
}

impl NodeDeviceDef {
    /// The capability types the device has, nested ones included, as libvirt lists them
    /// (libvirt: virNodeDeviceCapsListExport): an FC HBA is also `fc_host` (and `vports`),
    /// a PCI mdev parent also `mdev_types`, a PCI device with VPD also `vpd`.
    pub fn cap_types(&self) -> Vec<CapType> {
        let mut out = Vec::new();
        for c in &self.caps {
            out.push(c.cap_type());
            match c {
                Cap::Pci(p) => {
                    if p.mdev_types.is_some() {
                        out.push(CapType::MdevTypes);
                    }
                    if p.vpd.is_some() {
                        out.push(CapType::Vpd);
                    }
                }
                Cap::ScsiHost(s) => {
                    if s.fc_host.is_some() {
                        out.push(CapType::FcHost);
                    }
                    if s.vport_ops.is_some() {
                        out.push(CapType::Vports);
                    }
                }
                _ => {}
            }
        }
        out
    }

    /// Whether the device has capability `t`, nested ones included.
    pub fn has_cap(&self, t: CapType) -> bool {
        self.cap_types().contains(&t)
    }

    /// The PCI capability, if the device is a PCI device.
    pub fn pci(&self) -> Option<&PciCap> {
        self.caps.iter().find_map(|c| match c {
            Cap::Pci(p) => Some(p),
            _ => None,
        })
    }

    /// The XML (libvirt: virNodeDeviceDefFormat). `inactive` leaves out what only a present
    /// device has (sysfs path, device nodes, driver), as VIR_NODE_DEVICE_XML_INACTIVE does.
    pub fn format(&self, inactive: bool) -> String {
        let mut w = XmlWriter::new();
        w.elem("device").open();
        w.text_elem("name", &self.name);
        if !inactive {
            if let Some(p) = &self.path {
                w.text_elem("path", p);
            }
            if let Some(d) = &self.devnode {
                w.elem("devnode").attr("type", "dev").text(d);
            }
            for l in &self.devlinks {
                w.elem("devnode").attr("type", "link").text(l);
            }
        }
        if let Some(p) = &self.parent {
            w.text_elem("parent", p);
        }
        if let (Some(d), false) = (&self.driver, inactive) {
            w.elem("driver").open();
            w.text_elem("name", d);
            w.close();
        }
        for c in &self.caps {
            w.elem("capability").attr("type", c.cap_type()).open();
            format_cap(&mut w, c);
            w.close();
        }
        w.close();
        w.finish()
    }
}

fn opt_text(w: &mut XmlWriter, name: &str, v: &Option<String>) {
    if let Some(v) = v {
        w.text_elem(name, v);
    }
}

fn format_mdev_types(w: &mut XmlWriter, types: &[MdevType]) {
    if types.is_empty() {
        return;
    }
    w.elem("capability").attr("type", "mdev_types").open();
    for t in types {
        w.elem("type").attr("id", &t.id).open();
        opt_text(w, "name", &t.name);
        w.text_elem("deviceAPI", &t.device_api);
        w.text_elem("availableInstances", &t.available_instances.to_string());
        w.close();
    }
    w.close();
}

fn format_link(w: &mut XmlWriter, l: &PcieLink, validity: &str) {
    let mut s = format!("<link validity='{validity}'");
    if let Some(p) = l.port.filter(|p| *p >= 0) {
        s.push_str(&format!(" port='{p}'"));
    }
    if let Some(sp) = &l.speed {
        s.push_str(&format!(" speed='{sp}'"));
    }
    s.push_str(&format!(" width='{}'/>", l.width));
    w.raw_lines(&s);
}

// libvirt: virNodeDeviceCapPCIDefFormat
fn format_pci(w: &mut XmlWriter, p: &PciCap) {
    if let Some(c) = p.class {
        w.text_elem("class", &format!("0x{c:06x}"));
    }
    w.text_elem("domain", &p.addr.domain.to_string());
    w.text_elem("bus", &p.addr.bus.to_string());
    w.text_elem("slot", &p.addr.slot.to_string());
    w.text_elem("function", &p.addr.function.to_string());
    let id = |v: u32| format!("0x{v:04x}");
    match &p.product_name {
        Some(n) => w.elem("product").attr("id", id(p.product)).text(n),
        None => w.elem("product").attr("id", id(p.product)).empty(),
    }
    match &p.vendor_name {
        Some(n) => w.elem("vendor").attr("id", id(p.vendor)).text(n),
        None => w.elem("vendor").attr("id", id(p.vendor)).empty(),
    }
    if let Some(pf) = &p.phys_function {
        w.elem("capability").attr("type", "phys_function").open();
        pf.write(w);
        w.close();
    }
    if let Some(vf) = &p.virt_functions {
        let e = w
            .elem("capability")
            .attr("type", "virt_functions")
            .attr_opt("maxCount", Some(vf.max_count).filter(|m| *m != 0));
        if vf.addrs.is_empty() {
            e.empty();
        } else {
            e.open();
            for a in &vf.addrs {
                a.write(w);
            }
            w.close();
        }
    }
    if let Some(h) = p.header {
        w.elem("capability").attr("type", h.name()).empty();
    }
    if let Some(t) = &p.mdev_types {
        format_mdev_types(w, t);
    }
    if let Some(v) = &p.vpd {
        v.write(w);
    }
    if let Some((n, devs)) = &p.iommu_group
        && !devs.is_empty()
    {
        w.elem("iommuGroup").attr("number", n).open();
        for a in devs {
            a.write(w);
        }
        w.close();
    }
    if let Some(n) = p.numa_node.filter(|n| *n >= 0) {
        w.elem("numa").attr("node", n).empty();
    }
    if let Some(e) = &p.pci_express {
        if e.link_cap.is_none() && e.link_sta.is_none() {
            w.elem("pci-express").empty();
        } else {
            w.elem("pci-express").open();
            if let Some(l) = &e.link_cap {
                format_link(w, l, "cap");
            }
            if let Some(l) = &e.link_sta {
                format_link(w, l, "sta");
            }
            w.close();
        }
    }
}

fn format_cap(w: &mut XmlWriter, c: &Cap) {
    match c {
        // libvirt: virNodeDeviceCapSystemDefFormat
        Cap::System(s) => {
            opt_text(w, "product", &s.product);
            w.elem("hardware").open();
            opt_text(w, "vendor", &s.hardware_vendor);
            opt_text(w, "version", &s.hardware_version);
            opt_text(w, "serial", &s.hardware_serial);
            w.text_elem("uuid", &s.hardware_uuid);
            w.close();
            w.elem("firmware").open();
            opt_text(w, "vendor", &s.firmware_vendor);
            opt_text(w, "version", &s.firmware_version);
            opt_text(w, "release_date", &s.firmware_release_date);
            w.close();
        }
        Cap::Pci(p) => format_pci(w, p),
        // libvirt: virNodeDeviceCapUSBDevDefFormat (its empty ids end in " />")
        Cap::UsbDevice(u) => {
            w.text_elem("bus", &u.bus.to_string());
            w.text_elem("device", &u.device.to_string());
            for (tag, id, name) in [
                ("product", u.product, &u.product_name),
                ("vendor", u.vendor, &u.vendor_name),
            ] {
                match name {
                    Some(n) => w.elem(tag).attr("id", format!("0x{id:04x}")).text(n),
                    None => w.raw_lines(&format!("<{tag} id='0x{id:04x}' />")),
                }
            }
        }
        Cap::Usb(u) => {
            w.text_elem("number", &u.number.to_string());
            w.text_elem("class", &u.class.to_string());
            w.text_elem("subclass", &u.subclass.to_string());
            w.text_elem("protocol", &u.protocol.to_string());
            opt_text(w, "description", &u.description);
        }
        // libvirt: virNodeDeviceCapNetDefFormat
        Cap::Net(n) => {
            w.text_elem("interface", &n.interface);
            opt_text(w, "address", &n.address);
            if n.link_speed.is_some() || n.link_state.is_some() {
                w.elem("link")
                    .attr_opt("speed", n.link_speed)
                    .attr_opt("state", n.link_state.map(LinkState::name))
                    .empty();
            }
            for f in &n.features {
                w.elem("feature").attr("name", NET_FEATURES[*f]).empty();
            }
            if let Some(s) = n.subtype {
                w.elem("capability").attr("type", s.name()).empty();
            }
        }
        // libvirt: virNodeDeviceCapSCSIHostDefFormat
        Cap::ScsiHost(s) => {
            w.text_elem("host", &s.host.to_string());
            if let Some(u) = s.unique_id.filter(|u| *u != -1) {
                w.text_elem("unique_id", &u.to_string());
            }
            if let Some(fc) = &s.fc_host {
                w.elem("capability").attr("type", "fc_host").open();
                w.text_elem("wwnn", &fc.wwnn);
                w.text_elem("wwpn", &fc.wwpn);
                opt_text(w, "fabric_wwn", &fc.fabric_wwn);
                w.close();
            }
            if let Some((max, n)) = s.vport_ops {
                w.elem("capability").attr("type", "vport_ops").open();
                w.text_elem("max_vports", &max.to_string());
                w.text_elem("vports", &n.to_string());
                w.close();
            }
        }
        Cap::ScsiTarget(t) => {
            w.text_elem("target", &t.target);
            if let Some((rport, wwpn)) = &t.fc_remote_port {
                w.elem("capability").attr("type", "fc_remote_port").open();
                w.text_elem("rport", rport);
                w.text_elem("wwpn", wwpn);
                w.close();
            }
        }
        Cap::Scsi(s) => {
            w.text_elem("host", &s.host.to_string());
            w.text_elem("bus", &s.bus.to_string());
            w.text_elem("target", &s.target.to_string());
            w.text_elem("lun", &s.lun.to_string());
            opt_text(w, "type", &s.kind);
        }
        // libvirt: virNodeDeviceCapStorageDefFormat
        Cap::Storage(s) => {
            w.text_elem("block", &s.block);
            opt_text(w, "bus", &s.bus);
            opt_text(w, "drive_type", &s.drive_type);
            opt_text(w, "model", &s.model);
            opt_text(w, "vendor", &s.vendor);
            opt_text(w, "serial", &s.serial);
            let blocks = |w: &mut XmlWriter| {
                if s.logical_block_size != 0 || s.num_blocks != 0 {
                    w.text_elem("logical_block_size", &s.logical_block_size.to_string());
                    w.text_elem("num_blocks", &s.num_blocks.to_string());
                }
            };
            match &s.removable {
                Some(r) => {
                    w.elem("capability").attr("type", "removable").open();
                    w.text_elem("media_available", if r.media_available { "1" } else { "0" });
                    w.text_elem("media_size", &r.media_size.to_string());
                    opt_text(w, "media_label", &r.media_label);
                    blocks(w);
                    w.close();
                }
                None => {
                    w.text_elem("size", &s.size.to_string());
                    blocks(w);
                }
            }
            if s.hotpluggable {
                w.elem("capability").attr("type", "hotpluggable").empty();
            }
        }
        Cap::ScsiGeneric(p) => w.text_elem("char", p),
        Cap::Drm(d) => w.text_elem("type", d.name()),
        Cap::MdevTypes(t) => format_mdev_types(w, t),
        // libvirt: virNodeDeviceCapMdevDefFormat
        Cap::Mdev(m) => {
            w.elem("type").attr("id", &m.type_id).empty();
            opt_text(w, "uuid", &m.uuid);
            opt_text(w, "parent_addr", &m.parent_addr);
            w.elem("iommuGroup").attr("number", m.iommu_group).empty();
            for (n, v) in &m.attrs {
                w.elem("attr").attr("name", n).attr("value", v).empty();
            }
        }
    }
}

/// A device name as libvirt's udev backend builds it (libvirt: nodeDeviceGenerateName):
/// `SUBSYSTEM_SYSNAME[_EXTRA]`, every character but ASCII letters and digits turned to `_`.
pub fn generate_name(subsystem: &str, sysname: &str, extra: Option<&str>) -> String {
    let mut s = format!("{subsystem}_{sysname}");
    if let Some(e) = extra {
        s.push('_');
        s.push_str(e);
    }
    // Byte by byte, as libvirt's loop over strlen(): a non-ASCII character becomes one `_`
    // per byte of its UTF-8 form.
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                b as char
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;
