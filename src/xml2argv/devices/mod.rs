//! The section builders, in libvirt's order.

mod audio;
mod chardev;
mod controller;
mod disk;
mod disk_sd;
mod fs;
mod graphics;
mod guestfwd;
mod hostdev;
mod hostdev_mdev;
mod hostdev_scsi;
mod input;
mod iommu;
pub(crate) mod launch_security;
mod machine;
mod memballoon;
mod memory;
pub(crate) mod net;
mod net_vdpa;
mod net_vhostuser;
mod numa_hmat;
mod panic;
mod pr_manager;
pub mod props;
mod rng;
mod smartcard;
mod sound;
mod usb;
mod vhost_user;
mod video;
mod virtio;
mod vsock;
mod watchdog;

use std::collections::HashMap;

use super::opts::{JsonOpts, KvOpts};
use super::socketnet::socket_netdev;
use virtio::{VirtioModel, virtio_driver};

use super::{
    FdGroup, LaunchContext, MonitorSource, VdpaFds, Xml2ArgvError, accel_of, pci_addr, storage,
};
use crate::capabilities::qemu::QemuCaps;
use crate::domain::devices::{
    Chardev, ChrSource, Controller, Disk, DiskSource, Interface, Rng, Watchdog,
};
use crate::domain::{Address, DeviceInfo, DomainDef};

type R<T = ()> = Result<T, Xml2ArgvError>;

fn unsupported(msg: impl Into<String>) -> Xml2ArgvError {
    Xml2ArgvError::Unsupported(msg.into())
}

pub(super) struct Builder<'a> {
    def: &'a DomainDef,
    caps: &'a QemuCaps,
    ctx: &'a LaunchContext,
    pub args: Vec<String>,
    pub extra_env: Vec<(String, String)>,
    /// Boot indexes derived from `<os><boot dev=..>` when no device has its own `<boot>`.
    disk_boot: HashMap<usize, u32>,
    net_boot: HashMap<usize, u32>,
    /// `-add-fd` set numbers handed out so far.
    fdset: u32,
    /// USB ports for devices without a USB address, keyed by (device kind, index).
    usb_ports: HashMap<(&'static str, usize), String>,
}

fn mib_round_up(kib: u64) -> u64 {
    kib.div_ceil(1024)
}

fn hex(v: u32) -> String {
    format!("0x{v:x}")
}

impl<'a> Builder<'a> {
    pub fn new(def: &'a DomainDef, caps: &'a QemuCaps, ctx: &'a LaunchContext) -> Self {
        Builder {
            def,
            caps,
            ctx,
            args: Vec::new(),
            extra_env: Vec::new(),
            disk_boot: HashMap::new(),
            net_boot: HashMap::new(),
            fdset: 0,
            usb_ports: assign_usb_ports(def),
        }
    }

    fn arg(&mut self, a: impl Into<String>) {
        self.args.push(a.into());
    }

    fn opt(&mut self, o: &str, v: impl Into<String>) {
        self.args.push(o.to_string());
        self.args.push(v.into());
    }

    fn has(&self, flag: &str) -> bool {
        self.caps.has_flag(flag)
    }

    fn machine(&self) -> &str {
        self.def.os.os_type.machine.as_deref().unwrap_or("")
    }

    fn is_q35(&self) -> bool {
        let m = self.machine();
        m == "q35" || m.starts_with("pc-q35")
    }

    fn is_x86(&self) -> bool {
        matches!(
            self.def
                .os
                .os_type
                .arch
                .as_deref()
                .unwrap_or(&self.caps.arch),
            "x86_64" | "i686"
        )
    }

    fn is_arm(&self) -> bool {
        matches!(
            self.def
                .os
                .os_type
                .arch
                .as_deref()
                .unwrap_or(&self.caps.arch),
            "aarch64" | "armv7l"
        )
    }

    /// Emit a `-device` (JSON when QEMU takes it).
    fn device(&mut self, j: &JsonOpts) {
        match self.with_overrides(j) {
            Some(o) => self.opt("-device", o.build()),
            None => self.opt("-device", j.build()),
        }
    }

    /// `<qemu:override>` of the device whose id is `j`'s: each property is removed, then
    /// set again (at the end) unless its type is `remove`, as libvirt does.
    fn with_overrides(&self, j: &JsonOpts) -> Option<JsonOpts> {
        let id = j.get_str("id")?;
        let props = self
            .def
            .qemu_override
            .as_ref()?
            .iter()
            .find(|o| o.alias == id)?
            .frontend
            .as_ref()?;
        let mut out = j.clone();
        for p in props {
            out.remove(&p.name);
            let v = p.value.as_deref().unwrap_or("");
            match p.ptype.as_str() {
                "string" => {
                    out.s(&p.name, v);
                }
                "signed" => {
                    if let Ok(n) = v.parse::<i64>() {
                        out.i(&p.name, n);
                    }
                }
                "unsigned" => {
                    if let Ok(n) = v.parse::<u64>() {
                        out.u(&p.name, n);
                    }
                }
                "bool" => {
                    out.b(&p.name, v == "true");
                }
                _ => {}
            }
        }
        Some(out)
    }

    fn object(&mut self, j: &JsonOpts) {
        self.opt("-object", j.build());
    }

    /// The bus alias QEMU knows a PCI controller index by.
    fn pci_bus_name(&self, bus: u32) -> String {
        if bus == 0 {
            let root_is_pcie = self
                .def
                .devices
                .controllers
                .iter()
                .any(|c| c.ctype == "pci" && c.model.as_deref() == Some("pcie-root"))
                || self.is_q35();
            if root_is_pcie {
                "pcie.0".into()
            } else {
                "pci.0".into()
            }
        } else {
            format!("pci.{bus}")
        }
    }

    /// A device's alias, its QEMU `id`. Aliases come from one authority
    /// (`domain::prepare::assign_aliases`), run before every build; a device without one is
    /// a caller's mistake, reported rather than guessed.
    fn alias(&self, info: &DeviceInfo) -> R<String> {
        info.alias.clone().ok_or_else(|| {
            Xml2ArgvError::Internal(
                "device without an alias: assign aliases before the build".into(),
            )
        })
    }

    /// `"bus"`, `["multifunction"]`, `"addr"` of a device on PCI.
    fn pci_props(&self, j: &mut JsonOpts, info: &DeviceInfo) {
        if let Some((bus, slot, func, mf)) = pci_addr(&info.address) {
            j.s("bus", self.pci_bus_name(bus));
            if let Some(mf) = mf {
                j.b("multifunction", mf);
            }
            let addr = if func == 0 {
                hex(slot)
            } else {
                format!("{}.{}", hex(slot), hex(func))
            };
            j.s("addr", addr);
        }
    }

    fn info_props(&self, j: &mut JsonOpts, info: &DeviceInfo) -> R {
        self.pci_props(j, info);
        if let Some(Address::Usb { bus, port }) = &info.address {
            j.s("bus", self.usb_bus(*bus)?);
            if let Some(p) = port {
                j.s("port", p.clone());
            }
        }
        if let Some(i) = info.acpi_index {
            j.u("acpi-index", i as u64);
        }
        Ok(())
    }

    /// The alias of the `ctype` controller with index `index`: QEMU names the buses a
    /// controller provides after its id, which may be a user alias (`ua-...`).
    fn controller_alias(&self, ctype: &str, index: u32) -> R<&str> {
        self.def
            .devices
            .controllers
            .iter()
            .filter(|c| c.ctype == ctype && c.index.unwrap_or(0) == index)
            // USB companions share their master's bus; the master names it.
            .find(|c| c.info.master_startport.is_none())
            .and_then(|c| c.info.alias.as_deref())
            .ok_or_else(|| {
                Xml2ArgvError::Internal(format!("no {ctype} controller with index {index}"))
            })
    }

    /// The bus of USB controller `index` (libvirt: qemuBuildDeviceAddressProps).
    fn usb_bus(&self, index: u32) -> R<String> {
        Ok(format!("{}.0", self.controller_alias("usb", index)?))
    }

    pub fn build_all(&mut self) -> R {
        self.compute_boot_order();
        self.name();
        self.compat_deprecated();
        self.arg("-S");
        self.master_key();
        self.managed_pr()?;
        let pflash = self.pflash()?;
        self.machine_opts(&pflash)?;
        self.accel();
        self.cpu()?;
        self.bios();
        self.memory()?;
        self.smp();
        self.iothreads();
        self.numa()?;
        self.opt("-uuid", self.def.uuid.to_string());
        self.smbios();
        if let Some(g) = &self.def.genid {
            let guid = if g.is_empty() {
                self.ctx.generated_genid.clone()
            } else {
                g.clone()
            };
            let mut j = JsonOpts::new();
            j.s("driver", "vmgenid").s("guid", guid).s("id", "vmgenid0");
            self.device(&j);
        }
        if self.def.devices.graphics.is_empty() {
            self.opt("-display", "none");
        }
        self.arg("-no-user-config");
        self.arg("-nodefaults");
        self.monitor();
        self.clock();
        self.no_shutdown();
        self.pm_and_acpi();
        self.boot();
        self.kernel();
        self.iommu()?;
        self.controllers()?;
        self.memory_devices()?;
        self.hubs()?;
        self.ccid_controllers()?;
        self.disks()?;
        self.filesystems()?;
        self.nets()?;
        self.smartcards()?;
        self.serials()?;
        self.parallels()?;
        self.channels()?;
        self.consoles()?;
        self.tpms()?;
        self.inputs()?;
        self.audio();
        self.graphics()?;
        self.videos()?;
        self.sounds()?;
        self.watchdogs()?;
        self.redirdevs()?;
        self.hostdevs()?;
        self.memballoon()?;
        self.rngs()?;
        self.launch_security()?;
        self.qemu_commandline();
        if self.has("seccomp-sandbox") {
            self.opt(
                "-sandbox",
                "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny",
            );
        }
        self.panics();
        self.vsock()?;
        self.opt("-msg", "timestamp=on");
        Ok(())
    }

    // ---- boot order ------------------------------------------------------------------

    /// libvirt turns `<os><boot dev=..>` into per-device boot indexes: each listed device
    /// class gives its first device the next index.
    pub(super) fn compute_boot_order(&mut self) {
        let d = &self.def.devices;
        let any_device_boot = d.disks.iter().any(|x| x.info.boot.is_some())
            || d.interfaces.iter().any(|x| x.info.boot.is_some())
            || d.hostdevs.iter().any(|x| x.info.boot.is_some());
        if any_device_boot {
            return;
        }
        // Each <boot dev> entry's index is its position, whether or not a device takes it.
        for (pos, dev) in self.def.os.boot_devs.iter().enumerate() {
            let idx = pos as u32 + 1;
            match dev.as_str() {
                "hd" | "cdrom" | "fd" => {
                    let want = match dev.as_str() {
                        "hd" => "disk",
                        "cdrom" => "cdrom",
                        _ => "floppy",
                    };
                    d.disks
                        .iter()
                        .position(|x| {
                            let dev = x.device.as_deref().unwrap_or("disk");
                            // A LUN boots as a disk.
                            dev == want || (want == "disk" && dev == "lun")
                        })
                        .map(|i| {
                            self.disk_boot.insert(i, idx);
                        })
                }
                "network" => (!d.interfaces.is_empty()).then(|| {
                    self.net_boot.insert(0, idx);
                }),
                _ => None,
            };
        }
    }

    // ---- domain-wide sections ---------------------------------------------------------

    // ---- controllers -------------------------------------------------------------------

    /// libvirt puts the common virtio options right after the driver name.
    fn virtio_opts(&self, j: &mut JsonOpts, v: Option<&crate::domain::devices::VirtioOptions>) {
        let Some(v) = v else { return };
        j.tristate("iommu_platform", v.iommu.as_deref());
        j.tristate("ats", v.ats.as_deref());
        j.tristate("packed", v.packed.as_deref());
        j.tristate("page-per-vq", v.page_per_vq.as_deref());
    }

    // ---- disks ---------------------------------------------------------------------------

    // ---- filesystems, nets ---------------------------------------------------------------

    // ---- character devices -----------------------------------------------------------------

    // ---- inputs, audio, graphics, video, sound -------------------------------------------

    fn qemu_commandline(&mut self) {
        if let Some(q) = &self.def.qemu_commandline {
            for a in &q.args {
                self.args.push(a.clone());
            }
            for e in &q.env {
                self.extra_env
                    .push((e.name.clone(), e.value.clone().unwrap_or_default()));
            }
        }
    }
}

/// The key=value form of a flat JSON object, for QEMUs that take no JSON for an option:
/// `type` leads bare, booleans become on/off, strings are comma-escaped.
fn kv_from_json(v: &serde_json::Value) -> String {
    let mut o = KvOpts::new();
    if let Some(m) = v.as_object() {
        for (k, val) in m {
            let text = match val {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Bool(b) => (if *b { "on" } else { "off" }).to_string(),
                other => other.to_string(),
            };
            if k == "type" {
                o.raw(&super::opts::escape_commas(&text));
            } else {
                o.kv(k, text);
            }
        }
    }
    o.build()
}

/// `"iobase"` (and `"irq"`) of a device with an ISA address.
fn isa_props(j: &mut JsonOpts, info: &DeviceInfo, with_irq: bool) {
    let num = |v: &Option<String>| {
        v.as_deref().and_then(|x| match x.strip_prefix("0x") {
            Some(h) => u64::from_str_radix(h, 16).ok(),
            None => x.parse().ok(),
        })
    };
    if let Some(Address::Isa { iobase, irq }) = &info.address {
        j.u_opt("iobase", num(iobase));
        if with_irq {
            j.u_opt("irq", num(irq));
        }
    }
}

fn qemu_cpu_feature(name: &str) -> String {
    match name {
        "pclmuldq" => "pclmulqdq".into(),
        "sse4.1" => "sse4-1".into(),
        "sse4.2" => "sse4-2".into(),
        other => other.replace('_', "-"),
    }
}

/// Whether the disk's chain is known to end at its last listed image (`<backingStore/>`).
fn chain_terminated(d: &Disk) -> bool {
    let mut bs = d.backing_store.as_ref();
    while let Some(b) = bs {
        if b.source.is_none() && b.btype.is_none() {
            return true;
        }
        bs = b.backing.as_deref();
    }
    false
}

/// libvirt hands out USB ports at start, in this device order: hubs, host devices, disks,
/// CCID controllers, inputs, serials, sounds, redirected devices. Ports count from 1 on the
/// first USB bus, skipping the ones devices already claim.
fn assign_usb_ports(def: &DomainDef) -> HashMap<(&'static str, usize), String> {
    let mut out = HashMap::new();
    let d = &def.devices;
    let has_usb = d
        .controllers
        .iter()
        .any(|c| c.ctype == "usb" && c.model.as_deref() != Some("none"));
    if !has_usb {
        return out;
    }
    let mut taken: Vec<String> = Vec::new();
    let mut want: Vec<(&'static str, usize)> = Vec::new();
    let mut visit = |kind: &'static str, i: usize, info: &DeviceInfo, is_usb: bool| {
        if !is_usb {
            return;
        }
        match &info.address {
            Some(Address::Usb { port: Some(p), .. }) => taken.push(p.clone()),
            Some(Address::Usb { port: None, .. }) | None => want.push((kind, i)),
            _ => {}
        }
    };
    for (i, h) in d.hubs.iter().enumerate() {
        visit("hub", i, &h.info, h.htype == "usb");
    }
    for (i, h) in d.hostdevs.iter().enumerate() {
        visit("hostdev", i, &h.info, h.htype.as_deref() == Some("usb"));
    }
    for (i, x) in d.disks.iter().enumerate() {
        visit("disk", i, &x.info, x.target.bus.as_deref() == Some("usb"));
    }
    for (i, c) in d.controllers.iter().enumerate() {
        visit("controller", i, &c.info, c.ctype == "ccid");
    }
    for (i, x) in d.inputs.iter().enumerate() {
        visit("input", i, &x.info, x.bus.as_deref() == Some("usb"));
    }
    for (i, x) in d.serials.iter().enumerate() {
        let usb = x.target.as_ref().and_then(|t| t.ttype.as_deref()) == Some("usb-serial");
        visit("serial", i, &x.info, usb);
    }
    for (i, x) in d.sounds.iter().enumerate() {
        visit("sound", i, &x.info, x.model == "usb");
    }
    for (i, x) in d.redirdevs.iter().enumerate() {
        visit("redirdev", i, &x.info, true);
    }
    let mut next = 1u32;
    for key in want {
        while taken.contains(&next.to_string()) {
            next += 1;
        }
        out.insert(key, next.to_string());
        next += 1;
    }
    out
}

/// The fields of SMBIOS table `ty` libvirt writes, in its order.
fn smbios_fields(ty: u32) -> &'static [&'static str] {
    let fields: &[&str] = match ty {
        0 => &["vendor", "version", "date", "release"],
        1 => &[
            "manufacturer",
            "product",
            "version",
            "serial",
            "uuid",
            "sku",
            "family",
        ],
        2 => &[
            "manufacturer",
            "product",
            "version",
            "serial",
            "asset",
            "location",
        ],
        3 => &["manufacturer", "version", "serial", "asset", "sku"],
        _ => &[],
    };
    fields
}

impl Builder<'_> {
    /// `bus`/`nr` of a port on a virtio-serial controller (channels and virtio consoles): the
    /// bus is named after the controller's alias, which may be a user alias (`ua-...`)
    /// (libvirt: qemuBuildVirtioSerialPortDevProps).
    fn virtio_serial_port(&self, j: &mut JsonOpts, address: &Option<Address>) -> R {
        let Some(Address::VirtioSerial {
            controller,
            bus,
            port,
        }) = address
        else {
            return Ok(());
        };
        let alias = self.controller_alias("virtio-serial", *controller)?;
        j.s("bus", format!("{alias}.{bus}"));
        if let Some(p) = port {
            j.u("nr", *p as u64);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::timefmt::format_epoch;

    #[test]
    fn epoch() {
        assert_eq!(format_epoch(253402300799), "9999-12-31T23:59:59");
        assert_eq!(format_epoch(0), "1970-01-01T00:00:00");
    }
}
