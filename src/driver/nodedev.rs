//! The host's devices, as libvirt's node device driver (udev backend) shows them, read
//! straight from sysfs: there is no daemon keeping a udev monitor, so every call enumerates
//! afresh. Names follow the udev backend (libvirt: node_device_udev.c): `computer` for the
//! root, `pci_0000_00_1f_2`, `usb_1_2`, `net_eth0_52_54_00_12_34_56`, `block_vda`, ...
//!
//! What udev alone knows (its database's `ID_*` properties and device links) is read from
//! udev's database beside the sysfs root (`/run/udev/data`) when it exists, so a host
//! without a running udev still lists its devices, under the names libvirt gives when
//! those properties are missing.
//!
//! Changing devices (detaching a PCI device for passthrough, creating mediated devices
//! through mdevctl) is refused with libvirt's messages; see each method.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use super::hotplug::check_flags;
use super::{Connect, DriverError};
use crate::nodedev::{
    Cap, CapType, DrmType, MdevCap, MdevType, NetCap, NetSubtype, NodeDeviceDef, PciAddr, PciCap,
    Removable, ScsiCap, ScsiHostCap, ScsiTargetCap, StorageCap, SystemCap, UsbDevCap, UsbIfCap,
    VirtFunctions, generate_name,
};

/// Flags of [`Connect::list_all_node_devices`] (libvirt: virConnectListAllNodeDeviceFlags):
/// bit N selects capability type N of [`CapType::ALL`]; no capability bit means all.
pub mod list_flags {
    use crate::nodedev::CapType;

    pub const CAP_SYSTEM: u32 = 1 << 0;
    pub const CAP_PCI_DEV: u32 = 1 << 1;
    pub const CAP_USB_DEV: u32 = 1 << 2;
    pub const CAP_USB_INTERFACE: u32 = 1 << 3;
    pub const CAP_NET: u32 = 1 << 4;
    pub const CAP_SCSI_HOST: u32 = 1 << 5;
    pub const CAP_SCSI_TARGET: u32 = 1 << 6;
    pub const CAP_SCSI: u32 = 1 << 7;
    pub const CAP_STORAGE: u32 = 1 << 8;
    pub const CAP_DRM: u32 = 1 << 12;
    pub const CAP_MDEV_TYPES: u32 = 1 << 13;
    pub const CAP_MDEV: u32 = 1 << 14;
    /// Defined (mdevctl) devices that are not started.
    pub const INACTIVE: u32 = 1 << 30;
    /// Devices present now.
    pub const ACTIVE: u32 = 1 << 31;

    /// The flag selecting capability type `t`.
    pub fn cap(t: CapType) -> u32 {
        1 << t.index()
    }
}

/// `virNodeDeviceGetXMLDesc`'s flag: the defined configuration only.
pub const XML_INACTIVE: u32 = 1;

/// One node device (the `virt` crate's `NodeDevice`).
#[derive(Debug, Clone)]
pub struct NodeDevice<'c> {
    conn: &'c Connect,
    def: NodeDeviceDef,
}

fn no_device(name: &str) -> DriverError {
    DriverError::NoNodeDevice(format!("no node device with matching name '{name}'"))
}

fn unsupported_type() -> DriverError {
    DriverError::Unsupported("Unsupported device type".into())
}

impl<'c> NodeDevice<'c> {
    pub fn name(&self) -> &str {
        &self.def.name
    }

    /// The parent's name; `None` for `computer`.
    pub fn parent(&self) -> Option<&str> {
        self.def.parent.as_deref()
    }

    pub fn def(&self) -> &NodeDeviceDef {
        &self.def
    }

    /// The device's XML (libvirt: virNodeDeviceGetXMLDesc); `XML_INACTIVE` for the
    /// defined configuration only.
    pub fn xml_desc(&self, flags: u32) -> Result<String, DriverError> {
        check_flags(flags, XML_INACTIVE, "virNodeDeviceGetXMLDesc")?;
        Ok(self.def.format(flags & XML_INACTIVE != 0))
    }

    /// Names of the device's capabilities, nested ones included (virNodeDeviceListCaps).
    pub fn list_caps(&self) -> Vec<String> {
        self.def
            .cap_types()
            .into_iter()
            .map(|c| c.name().to_string())
            .collect()
    }

    /// Every device this driver lists is present.
    pub fn is_active(&self) -> bool {
        true
    }

    /// Only the `computer` root is persistent: the udev backend marks it so, and there are
    /// no mdevctl definitions without mdevctl.
    pub fn is_persistent(&self) -> bool {
        self.def.name == "computer"
    }

    /// Whether the device starts with the host (the root does; nothing else can be set).
    pub fn autostart(&self) -> bool {
        self.is_persistent()
    }

    /// The PCI address of a PCI device, libvirt's refusal otherwise
    /// (libvirt: virDomainDriverNodeDeviceGetPCIInfo).
    fn pci_addr(&self) -> Result<PciAddr, DriverError> {
        self.def.pci().map(|p| p.addr).ok_or_else(|| {
            DriverError::InvalidArg(format!("device {} is not a PCI device", self.def.name))
        })
    }

    /// Changing a PCI device's driver binding: only root may; this driver does not do it
    /// (it would take the device away from the host, and a daemon's bookkeeping of which
    /// guest holds it).
    fn rebind_refusal(&self, what: &str) -> DriverError {
        let addr = self.pci_addr().map(|a| a.sysfs_name()).unwrap_or_default();
        if !nix::unistd::geteuid().is_root() {
            DriverError::System {
                msg: format!("cannot {what} PCI device {addr}: changing its driver needs root"),
                err: std::io::Error::from_raw_os_error(nix::libc::EPERM),
            }
        } else {
            DriverError::OperationUnsupported(format!(
                "cannot {what} PCI device {addr}: rebinding host devices is not implemented by this driver"
            ))
        }
    }

    /// Detach a PCI device from its host driver for passthrough (libvirt:
    /// qemuNodeDeviceDetachFlags): `driver` `vfio` (or none) is the only backend.
    pub fn detach_flags(&self, driver: Option<&str>, flags: u32) -> Result<(), DriverError> {
        check_flags(flags, 0, "qemuNodeDeviceDetachFlags")?;
        let driver = driver.filter(|d| *d != "vfio");
        if driver == Some("kvm") {
            return Err(DriverError::ArgumentUnsupported(
                "'legacy KVM' device assignment is no longer supported on this system".into(),
            ));
        }
        if !self.conn.vfio_supported() {
            return Err(DriverError::ArgumentUnsupported(
                "VFIO device assignment is currently not supported on this system".into(),
            ));
        }
        self.pci_addr()?;
        Err(self.rebind_refusal("detach"))
    }

    /// Give a detached PCI device back to its host driver (libvirt: qemuNodeDeviceReAttach).
    pub fn reattach(&self) -> Result<(), DriverError> {
        self.pci_addr()?;
        Err(self.rebind_refusal("re-attach"))
    }

    /// Reset a PCI device (libvirt: qemuNodeDeviceReset).
    pub fn reset(&self) -> Result<(), DriverError> {
        self.pci_addr()?;
        Err(self.rebind_refusal("reset"))
    }

    /// Stop a device (libvirt: nodeDeviceDestroy): only vHBAs and mediated devices can be.
    pub fn destroy(&self) -> Result<(), DriverError> {
        if self.def.has_cap(CapType::Mdev) {
            return Err(mdevctl_refusal());
        }
        Err(unsupported_type())
    }

    /// Remove a device's definition (libvirt: nodeDeviceUndefine).
    pub fn undefine(&self) -> Result<(), DriverError> {
        if !self.is_persistent() {
            return Err(DriverError::OperationInvalid(format!(
                "Node device '{}' is not defined",
                self.def.name
            )));
        }
        Err(unsupported_type())
    }

    /// Start a defined device (libvirt: nodeDeviceCreate).
    pub fn create(&self, flags: u32) -> Result<(), DriverError> {
        check_flags(flags, 0, "nodeDeviceCreate")?;
        if self.is_active() {
            return Err(DriverError::OperationInvalid(
                "Device is already active".into(),
            ));
        }
        Err(unsupported_type())
    }

    /// Mark a defined mediated device to start with the host (libvirt:
    /// nodeDeviceSetAutostart).
    pub fn set_autostart(&self, _autostart: bool) -> Result<(), DriverError> {
        if self.def.has_cap(CapType::Mdev) {
            return Err(DriverError::OperationInvalid(
                "cannot set autostart for transient device".into(),
            ));
        }
        Err(DriverError::OperationUnsupported(
            "Unsupported device type".into(),
        ))
    }
}

/// What running mdevctl would have failed with when it is not installed (libvirt's
/// virCommandRun), else why this driver does not run it.
fn mdevctl_refusal() -> DriverError {
    if find_in_path("mdevctl").is_none() {
        return DriverError::System {
            msg: "Cannot find 'mdevctl' in path".into(),
            err: std::io::Error::from_raw_os_error(nix::libc::ENOENT),
        };
    }
    DriverError::OperationUnsupported(
        "managing mediated devices through mdevctl is not implemented by this driver".into(),
    )
}

fn find_in_path(prog: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(prog))
            .find(|f| f.is_file())
    })
}

impl Connect {
    fn sys_root(&self) -> &Path {
        &self.opts.host_root.sys_dir
    }

    /// Whether VFIO passthrough is possible (libvirt: qemuHostdevHostSupportsPassthroughVFIO):
    /// the VFIO container device exists and the kernel formed IOMMU groups.
    fn vfio_supported(&self) -> bool {
        let dev = self
            .sys_root()
            .parent()
            .unwrap_or(Path::new("/"))
            .join("dev/vfio/vfio");
        dev.exists()
            && std::fs::read_dir(self.sys_root().join("kernel/iommu_groups"))
                .is_ok_and(|mut d| d.next().is_some())
    }

    /// Every device of the host, `computer` first, then by name.
    fn node_device_defs(&self) -> Vec<NodeDeviceDef> {
        let sys = self.sys_root();
        let db = sys.parent().unwrap_or(Path::new("/")).join("run/udev/data");
        let mut out = vec![computer(&self.opts.host_root)];
        out.extend(enumerate(sys, &db));
        out
    }

    /// The host's devices (libvirt: virConnectListAllNodeDevices), filtered by capability
    /// ([`list_flags`]) and state; sorted by name, case-insensitively, as virsh sorts them.
    pub fn list_all_node_devices(&self, flags: u32) -> Result<Vec<NodeDevice<'_>>, DriverError> {
        let caps = flags & !(list_flags::ACTIVE | list_flags::INACTIVE);
        let known = (1u32 << CapType::ALL.len()) - 1;
        check_flags(caps, known, "virConnectListAllNodeDevices")?;
        // Every listed device is active: with only the inactive filter, none is left.
        let state_ok = flags & (list_flags::ACTIVE | list_flags::INACTIVE) != list_flags::INACTIVE;
        let mut devs: Vec<NodeDevice> = self
            .node_device_defs()
            .into_iter()
            .filter(|_| state_ok)
            .filter(|d| {
                caps == 0
                    || d.cap_types()
                        .iter()
                        .any(|t| caps & list_flags::cap(*t) != 0)
            })
            .map(|def| NodeDevice { conn: self, def })
            .collect();
        devs.sort_by_key(|d| d.def.name.to_ascii_lowercase());
        Ok(devs)
    }

    /// The device named `name` (libvirt: virNodeDeviceLookupByName).
    pub fn node_device_lookup_by_name(&self, name: &str) -> Result<NodeDevice<'_>, DriverError> {
        self.node_device_defs()
            .into_iter()
            .find(|d| d.name == name)
            .map(|def| NodeDevice { conn: self, def })
            .ok_or_else(|| no_device(name))
    }

    /// The FC HBA with these names (libvirt: virNodeDeviceLookupSCSIHostByWWN).
    pub fn node_device_lookup_scsi_host_by_wwn(
        &self,
        wwnn: &str,
        wwpn: &str,
    ) -> Result<NodeDevice<'_>, DriverError> {
        self.node_device_defs()
            .into_iter()
            .find(|d| {
                d.caps.iter().any(|c| {
                    matches!(c, Cap::ScsiHost(ScsiHostCap { fc_host: Some(f), .. })
                        if f.wwnn == wwnn && f.wwpn == wwpn)
                })
            })
            .map(|def| NodeDevice { conn: self, def })
            .ok_or_else(|| {
                DriverError::NoNodeDevice(format!(
                    "no node device with matching wwnn '{wwnn}' and wwpn '{wwpn}'"
                ))
            })
    }

    /// A new device's definition checked as libvirt's post-parse and validation do
    /// (libvirt: nodeDeviceDefPostParse, nodeDeviceDefValidateMdev).
    fn new_device_def(&self, xml: &str) -> Result<NodeDeviceDef, DriverError> {
        let def = crate::nodedev::parse_new(xml)?;
        if def.has_cap(CapType::Mdev) {
            let Some(parent) = &def.parent else {
                return Err(DriverError::Unsupported("missing parent device".into()));
            };
            let p = self
                .node_device_defs()
                .into_iter()
                .find(|d| d.name == *parent)
                .ok_or_else(|| {
                    DriverError::Unsupported(format!("invalid parent device '{parent}'"))
                })?;
            if p.pci().is_none() {
                return Err(DriverError::ParseFailed(format!(
                    "Unable to find address for parent device '{parent}'"
                )));
            }
        }
        Ok(def)
    }

    /// Create a device from XML (libvirt: nodeDeviceCreateXML): a vHBA or a mediated device.
    pub fn node_device_create_xml(
        &self,
        xml: &str,
        flags: u32,
    ) -> Result<NodeDevice<'_>, DriverError> {
        check_flags(flags, 1, "nodeDeviceCreateXML")?;
        let def = self.new_device_def(xml)?;
        if def.has_cap(CapType::ScsiHost) {
            return Err(DriverError::OperationUnsupported(
                "creating vHBAs (NPIV vports) is not implemented by this driver".into(),
            ));
        }
        if def.has_cap(CapType::Mdev) {
            if def.parent.is_none() {
                return Err(DriverError::Xml(crate::domain::DomainError::Xml(
                    "XML error: cannot create a mediated device without a parent".into(),
                )));
            }
            return Err(mdevctl_refusal());
        }
        Err(unsupported_type())
    }

    /// Define a persistent mediated device from XML (libvirt: nodeDeviceDefineXML).
    pub fn node_device_define_xml(
        &self,
        xml: &str,
        flags: u32,
    ) -> Result<NodeDevice<'_>, DriverError> {
        check_flags(flags, 1, "nodeDeviceDefineXML")?;
        let def = self.new_device_def(xml)?;
        if !def.has_cap(CapType::Mdev) {
            return Err(unsupported_type());
        }
        Err(mdevctl_refusal())
    }
}

/// A sysfs attribute, its trailing newline dropped (as udev's sysattr values are).
fn attr(dir: &Path, name: &str) -> Option<String> {
    let s = std::fs::read_to_string(dir.join(name)).ok()?;
    Some(s.trim_end_matches(['\n', '\r', ' ', '\t']).to_string())
}

/// A number in `base` (16 takes an optional `0x`), as udev's integer properties are read.
fn num(s: &str, base: u32) -> Option<u64> {
    let t = s.trim();
    let t = if base == 16 {
        t.strip_prefix("0x").unwrap_or(t)
    } else {
        t
    };
    u64::from_str_radix(t, base).ok()
}

fn link_name(p: &Path) -> Option<String> {
    std::fs::read_link(p)
        .ok()?
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
}

/// What udev knows of one device: the uevent file's properties, over them the udev
/// database's (`E:`), and the database's device links (`S:`).
struct UdevInfo {
    props: HashMap<String, String>,
    links: Vec<String>,
}

impl UdevInfo {
    fn read(dir: &Path, subsystem: &str, db: &Path) -> UdevInfo {
        let mut props = HashMap::new();
        if let Ok(s) = std::fs::read_to_string(dir.join("uevent")) {
            for l in s.lines() {
                if let Some((k, v)) = l.split_once('=') {
                    props.insert(k.to_string(), v.to_string());
                }
            }
        }
        let sysname = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        // udev's database names a device by its dev_t, ifindex, or subsystem:sysname.
        let id = match (props.get("MAJOR"), props.get("MINOR"), props.get("IFINDEX")) {
            (Some(ma), Some(mi), _) => {
                format!("{}{ma}:{mi}", if subsystem == "block" { 'b' } else { 'c' })
            }
            (_, _, Some(i)) => format!("n{i}"),
            _ => format!("+{subsystem}:{sysname}"),
        };
        let mut links = Vec::new();
        if let Ok(s) = std::fs::read_to_string(db.join(id)) {
            for l in s.lines() {
                if let Some(e) = l.strip_prefix("E:")
                    && let Some((k, v)) = e.split_once('=')
                {
                    props.insert(k.to_string(), v.to_string());
                } else if let Some(link) = l.strip_prefix("S:") {
                    links.push(format!("/dev/{link}"));
                }
            }
        }
        links.sort();
        UdevInfo { props, links }
    }

    fn get(&self, k: &str) -> Option<&str> {
        self.props.get(k).map(String::as_str)
    }

    fn devnode(&self) -> Option<String> {
        self.get("DEVNAME").map(|n| {
            if n.starts_with('/') {
                n.to_string()
            } else {
                format!("/dev/{n}")
            }
        })
    }
}

/// The `computer` root (libvirt: udevSetupSystemDev, udevGetDMIData).
fn computer(root: &crate::capabilities::host::HostRoot) -> NodeDeviceDef {
    let dmi = root.sys_dir.join("devices/virtual/dmi/id");
    // libvirt reads DMI on x86 only.
    let x86 = cfg!(any(target_arch = "x86_64", target_arch = "x86"));
    let a = |n: &str| if x86 { attr(&dmi, n) } else { None };
    let uuid = crate::capabilities::host::host_uuid(root)
        .unwrap_or_else(|_| "00000000-0000-0000-0000-000000000000".into());
    NodeDeviceDef {
        name: "computer".into(),
        caps: vec![Cap::System(SystemCap {
            product: a("product_name"),
            hardware_vendor: a("sys_vendor"),
            hardware_version: a("product_version"),
            hardware_serial: a("product_serial"),
            hardware_uuid: uuid,
            firmware_vendor: a("bios_vendor"),
            firmware_version: a("bios_version"),
            firmware_release_date: a("bios_date"),
        })],
        ..Default::default()
    }
}

/// Names from the PCI ID database (libvirt asks libpciaccess, which reads the same file).
struct PciIds {
    text: Option<String>,
}

impl PciIds {
    fn load(sys: &Path) -> PciIds {
        let base = sys.parent().unwrap_or(Path::new("/"));
        let text = [
            "usr/share/misc/pci.ids",
            "usr/share/hwdata/pci.ids",
            "usr/share/pci.ids",
        ]
        .iter()
        .find_map(|p| std::fs::read_to_string(base.join(p)).ok());
        PciIds { text }
    }

    /// (vendor name, device name).
    fn names(&self, vendor: u32, device: u32) -> (Option<String>, Option<String>) {
        let Some(t) = &self.text else {
            return (None, None);
        };
        let (v, d) = (format!("{vendor:04x}  "), format!("\t{device:04x}  "));
        let mut vname = None;
        for l in t.lines() {
            if vname.is_none() {
                if let Some(n) = l.strip_prefix(&v) {
                    vname = Some(n.to_string());
                }
            } else if let Some(n) = l.strip_prefix(&d) {
                return (vname, Some(n.to_string()));
            } else if !l.starts_with('\t') && !l.starts_with('#') && !l.is_empty() {
                break;
            }
        }
        (vname, None)
    }
}

/// The real sysfs dirs of the entries of `dir` (symlinks resolved), in name order.
fn entries(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter_map(|e| std::fs::canonicalize(e.path()).ok())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn sysname(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Every device under sysfs root `sys` that libvirt's udev backend would list, parents
/// filled in (libvirt: udevEnumerateDevices, udevGetDeviceDetails, udevSetParent).
pub fn enumerate(sys: &Path, udev_db: &Path) -> Vec<NodeDeviceDef> {
    let root = std::fs::canonicalize(sys).unwrap_or_else(|_| sys.to_path_buf());
    let shown = |p: &Path| -> String {
        match p.strip_prefix(&root) {
            Ok(rel) => Path::new("/sys").join(rel).display().to_string(),
            Err(_) => p.display().to_string(),
        }
    };
    let ids = PciIds::load(sys);
    let mut found: BTreeMap<PathBuf, NodeDeviceDef> = BTreeMap::new();
    let mut add = |path: PathBuf, mut def: NodeDeviceDef, info: &UdevInfo| {
        def.path = Some(shown(&path));
        if def.devnode.is_none() {
            def.devnode = info.devnode();
        }
        def.devlinks = info.links.clone();
        if def.driver.is_none() {
            def.driver = info
                .get("DRIVER")
                .map(str::to_string)
                .or_else(|| link_name(&path.join("driver")));
        }
        found.entry(path).or_insert(def);
    };

    for p in entries(&sys.join("bus/pci/devices")) {
        let info = UdevInfo::read(&p, "pci", udev_db);
        if let Some(def) = pci_device(sys, &p, &info, &ids) {
            add(p, def, &info);
        }
    }
    for p in entries(&sys.join("bus/usb/devices")) {
        let info = UdevInfo::read(&p, "usb", udev_db);
        if let Some(def) = usb_device(&p, &info) {
            add(p, def, &info);
        }
    }
    for p in entries(&sys.join("class/net")) {
        let info = UdevInfo::read(&p, "net", udev_db);
        if let Some(def) = net_device(&p, &info) {
            add(p, def, &info);
        }
    }
    for p in entries(&sys.join("bus/scsi/devices")) {
        let info = UdevInfo::read(&p, "scsi", udev_db);
        if let Some(def) = scsi_device(sys, &p, &info) {
            add(p, def, &info);
        }
    }
    for p in entries(&sys.join("class/block")) {
        let info = UdevInfo::read(&p, "block", udev_db);
        if let Some(def) = storage_device(&p, &info) {
            add(p, def, &info);
        }
    }
    for p in entries(&sys.join("class/drm")) {
        let info = UdevInfo::read(&p, "drm", udev_db);
        if info.get("DEVTYPE") == Some("drm_minor")
            && let Some(t) = info
                .get("MINOR")
                .and_then(|m| m.parse::<u32>().ok())
                .and_then(DrmType::from_minor)
        {
            let def = NodeDeviceDef {
                name: generate_name("drm", &sysname(&p), None),
                caps: vec![Cap::Drm(t)],
                ..Default::default()
            };
            add(p, def, &info);
        }
    }
    for p in entries(&sys.join("bus/mdev/devices")) {
        let info = UdevInfo::read(&p, "mdev", udev_db);
        let uuid = sysname(&p);
        let parent_addr = p.parent().map(sysname);
        let def = NodeDeviceDef {
            name: generate_name("mdev", &uuid, parent_addr.as_deref()),
            caps: vec![Cap::Mdev(MdevCap {
                type_id: link_name(&p.join("mdev_type")).unwrap_or_default(),
                uuid: Some(uuid),
                parent_addr,
                iommu_group: link_name(&p.join("iommu_group"))
                    .and_then(|g| g.parse().ok())
                    .unwrap_or(0),
                attrs: Vec::new(),
            })],
            ..Default::default()
        };
        add(p, def, &info);
    }

    // libvirt: udevSetParent: the nearest ancestor directory that is a listed device.
    let names: HashMap<PathBuf, String> = found
        .iter()
        .map(|(p, d)| (p.clone(), d.name.clone()))
        .collect();
    let mut out: Vec<NodeDeviceDef> = found
        .into_iter()
        .map(|(p, mut d)| {
            let parent = p.ancestors().skip(1).find_map(|a| names.get(a).cloned());
            d.parent = Some(parent.unwrap_or_else(|| "computer".into()));
            d
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// A PCI device (libvirt: udevProcessPCI, virNodeDeviceGetPCIDynamicCaps).
fn pci_device(sys: &Path, p: &Path, info: &UdevInfo, ids: &PciIds) -> Option<NodeDeviceDef> {
    let class = num(info.get("PCI_CLASS")?, 16)? as u32;
    let name = sysname(p);
    let addr = PciAddr::from_sysfs_name(&name)?;
    let vendor = num(&attr(p, "vendor")?, 16)? as u32;
    let product = num(&attr(p, "device")?, 16)? as u32;
    let (vendor_name, product_name) = ids.names(vendor, product);
    let link_addr = |l: &Path| link_name(l).and_then(|n| PciAddr::from_sysfs_name(&n));
    let virt_functions = attr(p, "sriov_totalvfs").map(|t| {
        let mut vfs: Vec<(u32, PciAddr)> = std::fs::read_dir(p)
            .map(|d| {
                d.flatten()
                    .filter_map(|e| {
                        let n = e.file_name().to_string_lossy().into_owned();
                        let i = n.strip_prefix("virtfn")?.parse::<u32>().ok()?;
                        Some((i, link_addr(&e.path())?))
                    })
                    .collect()
            })
            .unwrap_or_default();
        vfs.sort();
        VirtFunctions {
            max_count: t.trim().parse().unwrap_or(0),
            addrs: vfs.into_iter().map(|(_, a)| a).collect(),
        }
    });
    let mdev_types = mdev_types(&p.join("mdev_supported_types"));
    let iommu_group = link_name(&p.join("iommu_group"))
        .and_then(|g| g.parse::<u32>().ok())
        .map(|g| {
            let mut members: Vec<PciAddr> =
                std::fs::read_dir(sys.join(format!("kernel/iommu_groups/{g}/devices")))
                    .map(|d| {
                        d.flatten()
                            .filter_map(|e| {
                                PciAddr::from_sysfs_name(&e.file_name().to_string_lossy())
                            })
                            .collect()
                    })
                    .unwrap_or_default();
            members.sort();
            (g, members)
        });
    Some(NodeDeviceDef {
        name: generate_name("pci", &name, None),
        caps: vec![Cap::Pci(PciCap {
            class: Some(class),
            addr,
            vendor,
            product,
            vendor_name,
            product_name,
            phys_function: link_addr(&p.join("physfn")),
            virt_functions,
            mdev_types,
            iommu_group,
            numa_node: attr(p, "numa_node")
                .and_then(|n| n.trim().parse::<i32>().ok())
                .filter(|n| *n >= 0),
            ..Default::default()
        })],
        ..Default::default()
    })
}

/// The mediated device types a parent offers (libvirt: virMediatedDeviceGetMdevTypes).
fn mdev_types(dir: &Path) -> Option<Vec<MdevType>> {
    let mut types: Vec<MdevType> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter_map(|e| {
            let p = e.path();
            Some(MdevType {
                id: e.file_name().to_string_lossy().into_owned(),
                name: attr(&p, "name"),
                device_api: attr(&p, "device_api")?,
                available_instances: attr(&p, "available_instances")?.trim().parse().ok()?,
            })
        })
        .collect();
    if types.is_empty() {
        return None;
    }
    types.sort_by(|a, b| a.id.cmp(&b.id));
    Some(types)
}

/// A USB device or interface (libvirt: udevProcessUSBDevice, udevProcessUSBInterface).
fn usb_device(p: &Path, info: &UdevInfo) -> Option<NodeDeviceDef> {
    let name = generate_name("usb", &sysname(p), None);
    let hex = |a: &str| attr(p, a).and_then(|v| num(&v, 16)).map(|v| v as u32);
    let cap = match info.get("DEVTYPE")? {
        "usb_device" => Cap::UsbDevice(UsbDevCap {
            bus: info.get("BUSNUM")?.parse().ok()?,
            device: info.get("DEVNUM")?.parse().ok()?,
            vendor: info
                .get("ID_VENDOR_ID")
                .and_then(|v| num(v, 16))
                .map(|v| v as u32)
                .or_else(|| hex("idVendor"))?,
            product: info
                .get("ID_MODEL_ID")
                .and_then(|v| num(v, 16))
                .map(|v| v as u32)
                .or_else(|| hex("idProduct"))?,
            vendor_name: info
                .get("ID_VENDOR_FROM_DATABASE")
                .map(str::to_string)
                .or_else(|| attr(p, "manufacturer")),
            product_name: info
                .get("ID_MODEL_FROM_DATABASE")
                .map(str::to_string)
                .or_else(|| attr(p, "product")),
        }),
        "usb_interface" => Cap::Usb(UsbIfCap {
            number: hex("bInterfaceNumber")?,
            class: hex("bInterfaceClass")?,
            subclass: hex("bInterfaceSubClass")?,
            protocol: hex("bInterfaceProtocol")?,
            description: None,
        }),
        _ => return None,
    };
    Some(NodeDeviceDef {
        name,
        caps: vec![cap],
        ..Default::default()
    })
}

/// A network interface (libvirt: udevProcessNetworkInterface, virNetDevGetLinkInfo).
fn net_device(p: &Path, info: &UdevInfo) -> Option<NodeDeviceDef> {
    let ifname = info.get("INTERFACE")?.to_string();
    let address = attr(p, "address");
    let state = attr(p, "operstate").and_then(|s| crate::nodedev::LinkState::from_name(&s));
    // The kernel's speed is meaningless unless the link is up (libvirt reads it only then).
    let speed = if state == Some(crate::nodedev::LinkState::Up) {
        attr(p, "speed")
            .and_then(|s| s.trim().parse::<i64>().ok())
            .filter(|s| *s > 0)
            .and_then(|s| u32::try_from(s).ok())
    } else {
        None
    };
    Some(NodeDeviceDef {
        name: generate_name("net", &sysname(p), address.as_deref()),
        caps: vec![Cap::Net(NetCap {
            interface: ifname,
            address,
            link_speed: speed,
            link_state: state,
            features: Vec::new(),
            subtype: Some(if info.get("DEVTYPE") == Some("wlan") {
                NetSubtype::Ieee80211
            } else {
                NetSubtype::Ieee80203
            }),
        })],
        ..Default::default()
    })
}

/// The SCSI type name of a peripheral type code (libvirt: udevGetSCSIType).
fn scsi_type(code: u32) -> Option<&'static str> {
    Some(match code {
        0x00 => "disk",
        0x01 => "tape",
        0x03 => "processor",
        0x04 => "worm",
        0x05 => "cdrom",
        0x06 => "scanner",
        0x07 => "mod",
        0x08 => "changer",
        0x0c => "raid",
        0x0d => "enclosure",
        0x11 => "osd",
        0x1f => "no-device",
        _ => return None,
    })
}

/// A SCSI host, target or device (libvirt: udevProcessSCSIHost, udevProcessSCSITarget,
/// udevProcessSCSIDevice).
fn scsi_device(sys: &Path, p: &Path, info: &UdevInfo) -> Option<NodeDeviceDef> {
    let sn = sysname(p);
    let cap = match info.get("DEVTYPE")? {
        "scsi_host" => {
            let host: u32 = sn.strip_prefix("host")?.parse().ok()?;
            Cap::ScsiHost(ScsiHostCap {
                host,
                unique_id: attr(&sys.join(format!("class/scsi_host/{sn}")), "unique_id")
                    .and_then(|u| u.trim().parse().ok()),
                ..Default::default()
            })
        }
        "scsi_target" => Cap::ScsiTarget(ScsiTargetCap {
            target: sn.clone(),
            fc_remote_port: None,
        }),
        "scsi_device" => {
            let mut it = sn.split(':').map(|x| x.parse::<u32>().ok());
            let (host, bus, target, lun) = (it.next()??, it.next()??, it.next()??, it.next()??);
            Cap::Scsi(ScsiCap {
                host,
                bus,
                target,
                lun,
                kind: attr(p, "type")
                    .and_then(|t| t.trim().parse().ok())
                    .and_then(scsi_type)
                    .map(str::to_string),
            })
        }
        _ => return None,
    };
    Some(NodeDeviceDef {
        name: generate_name("scsi", &sn, None),
        caps: vec![cap],
        ..Default::default()
    })
}

/// A whole disk (libvirt: udevProcessStorage and its per-kind helpers). Devices whose kind
/// cannot be told (loop, zram without udev's ID_TYPE) are left out, as libvirt leaves them.
fn storage_device(p: &Path, info: &UdevInfo) -> Option<NodeDeviceDef> {
    if info.get("DEVTYPE") != Some("disk") {
        return None;
    }
    let block = info.devnode()?;
    let trimmed = |a: &str| attr(p, a).map(|s| s.trim().to_string());
    let mut drive_type = info.get("ID_TYPE").map(str::to_string);
    let guess = |block: &str| {
        // libvirt: udevKludgeStorageType
        [
            ("/dev/vd", "disk"),
            ("/dev/dasd", "dasd"),
            ("/dev/nvme", "disk"),
        ]
        .iter()
        .find(|(pre, _)| block.starts_with(pre))
        .map(|(_, t)| t.to_string())
    };
    if drive_type.is_none() || drive_type.as_deref() == Some("generic") {
        drive_type = if info.get("ID_DRIVE_FLOPPY").is_some() {
            Some("floppy".into())
        } else if info.get("ID_CDROM").is_some() {
            Some("cd".into())
        } else if info.get("ID_DRIVE_FLASH_SD").is_some() {
            Some("sd".into())
        } else {
            Some(guess(&block)?)
        };
    } else if drive_type.as_deref() == Some("disk") && block.starts_with("/dev/dasd") {
        drive_type = Some("dasd".into());
    }
    let num_blocks: u64 = attr(p, "size")?.trim().parse().ok()?;
    let lbs: u64 = attr(p, "queue/logical_block_size")
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(512);
    let serial = info.get("ID_SERIAL").map(str::to_string);
    let mut s = StorageCap {
        block,
        bus: info.get("ID_BUS").map(str::to_string),
        drive_type: drive_type.clone(),
        model: trimmed("device/model"),
        vendor: trimmed("device/vendor"),
        serial: serial.clone(),
        ..Default::default()
    };
    match drive_type.as_deref()? {
        "disk" | "dasd" => {
            s.num_blocks = num_blocks;
            s.logical_block_size = lbs;
            s.size = num_blocks * lbs;
        }
        "cd" | "cd/dvd" | "floppy" | "sd" => {
            // libvirt: udevProcessRemoveableMedia
            let has_media = match drive_type.as_deref() {
                Some("floppy") => info.get("DKD_MEDIA_AVAILABLE").is_some_and(|v| v == "1"),
                Some("sd") => true,
                _ => info.get("ID_CDROM_MEDIA").is_some_and(|v| v == "1"),
            };
            s.removable = Some(Removable {
                media_available: has_media,
                media_size: if has_media { num_blocks * lbs } else { 0 },
                media_label: info.get("ID_FS_LABEL").map(str::to_string),
            });
            if has_media {
                s.num_blocks = num_blocks;
                s.logical_block_size = lbs;
            }
        }
        _ => return None,
    }
    Some(NodeDeviceDef {
        name: generate_name("block", &sysname(p), serial.as_deref()),
        caps: vec![Cap::Storage(s)],
        ..Default::default()
    })
}

#[cfg(test)]
mod tests;

/// What happened to a device (libvirt: virNodeDeviceEventLifecycleType, and the update
/// event).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeDeviceEventKind {
    Created,
    Deleted,
    /// The device's XML changed.
    Update,
}

/// One node device event.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NodeDeviceEvent {
    pub device: String,
    pub kind: NodeDeviceEventKind,
}

/// Node device events, found by comparing successive enumerations: sysfs gives no inotify
/// events, and without udev's netlink monitor this is what a daemonless driver can watch.
pub struct NodeDeviceEvents<'c> {
    conn: &'c Connect,
    /// Each device's XML at the last look.
    last: BTreeMap<String, String>,
    pending: std::collections::VecDeque<NodeDeviceEvent>,
}

/// How often the device list is looked at again.
const EVENT_POLL: std::time::Duration = std::time::Duration::from_millis(250);

impl Connect {
    /// Start watching the host's devices (virConnectNodeDeviceEventRegisterAny's events):
    /// changes after this call are reported.
    pub fn node_device_events(&self) -> NodeDeviceEvents<'_> {
        let mut ev = NodeDeviceEvents {
            conn: self,
            last: BTreeMap::new(),
            pending: Default::default(),
        };
        ev.last = ev.snapshot();
        ev
    }
}

impl NodeDeviceEvents<'_> {
    fn snapshot(&self) -> BTreeMap<String, String> {
        self.conn
            .node_device_defs()
            .into_iter()
            .map(|d| (d.name.clone(), d.format(false)))
            .collect()
    }

    /// Queue what changed since the last look.
    fn rescan(&mut self) {
        let now = self.snapshot();
        for (name, xml) in &now {
            let kind = match self.last.get(name) {
                None => NodeDeviceEventKind::Created,
                Some(old) if old != xml => NodeDeviceEventKind::Update,
                Some(_) => continue,
            };
            self.pending.push_back(NodeDeviceEvent {
                device: name.clone(),
                kind,
            });
        }
        for name in self.last.keys().filter(|n| !now.contains_key(*n)) {
            self.pending.push_back(NodeDeviceEvent {
                device: name.clone(),
                kind: NodeDeviceEventKind::Deleted,
            });
        }
        self.last = now;
    }

    /// The next event, waiting up to `timeout`; `None` when none came in time.
    pub fn next_timeout(&mut self, timeout: std::time::Duration) -> Option<NodeDeviceEvent> {
        let end = std::time::Instant::now() + timeout;
        loop {
            if let Some(e) = self.pending.pop_front() {
                return Some(e);
            }
            self.rescan();
            if let Some(e) = self.pending.pop_front() {
                return Some(e);
            }
            let left = end.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return None;
            }
            std::thread::sleep(left.min(EVENT_POLL));
        }
    }
}
