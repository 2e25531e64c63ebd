//! PCI address assignment over the domain model (CONFORMANCE §4): explicit addresses first,
//! then the machine's fixed placements, then every other PCI device in libvirt's visiting
//! order. When a device finds no bus, the controller libvirt would add (root port, bridge) is
//! added and assignment starts over, so added controllers take their place in the order
//! (they are controllers, which are visited first).

use super::Ctx;
use super::devices::insert_controller;
use super::pci::{Conn, Need, PciAddr, Topology};
use crate::domain::DomainError;
use crate::domain::address::{Address, DeviceInfo};
use crate::domain::devices::{Controller, ControllerTarget, Devices};
use crate::domain::model::DomainDef;

/// A device that may need a PCI address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dev {
    Ctrl(usize),
    Fs(usize),
    Net(usize),
    Sound(usize),
    Disk(usize),
    Hostdev(usize),
    Balloon,
    Rng(usize),
    Watchdog(usize),
    Video(usize),
    Shmem(usize),
    Input(usize),
    Serial(usize),
    Iommu,
    Vsock,
    Mem(usize),
    Crypto(usize),
}

fn info_mut(d: &mut Devices, r: Dev) -> Option<&mut DeviceInfo> {
    Some(match r {
        Dev::Ctrl(i) => &mut d.controllers.get_mut(i)?.info,
        Dev::Fs(i) => &mut d.filesystems.get_mut(i)?.info,
        Dev::Net(i) => &mut d.interfaces.get_mut(i)?.info,
        Dev::Sound(i) => &mut d.sounds.get_mut(i)?.info,
        Dev::Disk(i) => &mut d.disks.get_mut(i)?.info,
        Dev::Hostdev(i) => &mut d.hostdevs.get_mut(i)?.info,
        Dev::Balloon => &mut d.memballoon.as_mut()?.info,
        Dev::Rng(i) => &mut d.rngs.get_mut(i)?.info,
        Dev::Watchdog(i) => &mut d.watchdogs.get_mut(i)?.info,
        Dev::Video(i) => &mut d.videos.get_mut(i)?.info,
        Dev::Shmem(i) => &mut d.shmems.get_mut(i)?.info,
        Dev::Input(i) => &mut d.inputs.get_mut(i)?.info,
        Dev::Serial(i) => &mut d.serials.get_mut(i)?.info,
        Dev::Iommu => &mut d.iommu.as_mut()?.info,
        Dev::Vsock => &mut d.vsock.as_mut()?.info,
        Dev::Mem(i) => &mut d.memories.get_mut(i)?.info,
        Dev::Crypto(i) => &mut d.cryptos.get_mut(i)?.info,
    })
}

/// Every device info of the domain, for reserving explicit addresses.
fn all_infos(d: &Devices) -> Vec<&DeviceInfo> {
    let mut v: Vec<&DeviceInfo> = Vec::new();
    v.extend(d.disks.iter().map(|x| &x.info));
    v.extend(d.controllers.iter().map(|x| &x.info));
    v.extend(d.filesystems.iter().map(|x| &x.info));
    v.extend(d.interfaces.iter().map(|x| &x.info));
    v.extend(d.smartcards.iter().map(|x| &x.info));
    v.extend(d.serials.iter().map(|x| &x.info));
    v.extend(d.parallels.iter().map(|x| &x.info));
    v.extend(d.channels.iter().map(|x| &x.info));
    v.extend(d.inputs.iter().map(|x| &x.info));
    v.extend(d.tpms.iter().map(|x| &x.info));
    v.extend(d.sounds.iter().map(|x| &x.info));
    v.extend(d.videos.iter().map(|x| &x.info));
    v.extend(d.hostdevs.iter().map(|x| &x.info));
    v.extend(d.redirdevs.iter().map(|x| &x.info));
    v.extend(d.hubs.iter().map(|x| &x.info));
    v.extend(d.watchdogs.iter().map(|x| &x.info));
    v.extend(d.memballoon.iter().map(|x| &x.info));
    v.extend(d.rngs.iter().map(|x| &x.info));
    v.extend(d.panics.iter().map(|x| &x.info));
    v.extend(d.shmems.iter().map(|x| &x.info));
    v.extend(d.memories.iter().map(|x| &x.info));
    v.extend(d.iommu.iter().map(|x| &x.info));
    v.extend(d.vsock.iter().map(|x| &x.info));
    v.extend(d.cryptos.iter().map(|x| &x.info));
    v
}

/// An explicit PCI address, if the device has one. An all-zero `<address type='pci'/>` means
/// "any PCI address", as in libvirt.
fn explicit_pci(info: &DeviceInfo) -> Option<PciAddr> {
    match info.address {
        Some(Address::Pci {
            domain,
            bus,
            slot,
            function,
            ..
        }) if !(domain == 0 && bus == 0 && slot == 0 && function == 0) => Some(PciAddr {
            bus,
            slot,
            function,
        }),
        _ => None,
    }
}

/// Whether the device still wants a PCI address: none yet, or the "any PCI" placeholder.
fn wants_pci(info: &DeviceInfo) -> bool {
    match &info.address {
        None => true,
        Some(Address::Pci { .. }) => explicit_pci(info).is_none(),
        _ => false,
    }
}

fn virtio_conn(model: Option<&str>) -> Conn {
    if model == Some("virtio-transitional") {
        Conn::Pci
    } else {
        Conn::Pcie
    }
}

/// The USB2 companion set a controller model belongs to, with its function in the shared slot.
fn usb2_function(model: &str) -> Option<u32> {
    match model {
        "ich9-ehci1" => Some(7),
        "ich9-uhci1" => Some(0),
        "ich9-uhci2" => Some(1),
        "ich9-uhci3" => Some(2),
        _ => None,
    }
}

fn controller_conn(c: &Controller, ctx: &Ctx<'_>) -> Option<Conn> {
    let model = c.model.as_deref();
    match c.ctype.as_str() {
        "pci" => match model? {
            "pcie-root-port" => Some(Conn::RootPort),
            "pci-bridge" => Some(Conn::PciBridge),
            "pcie-to-pci-bridge" => Some(Conn::PciePciBridge),
            "dmi-to-pci-bridge" => Some(Conn::DmiBridge),
            "pcie-switch-upstream-port" => Some(Conn::UpstreamPort),
            "pcie-switch-downstream-port" => Some(Conn::DownstreamPort),
            "pci-expander-bus" | "pcie-expander-bus" => Some(Conn::Expander),
            _ => None,
        },
        "usb" => match model? {
            "none" | "qusb1" | "qusb2" => None,
            "qemu-xhci" | "nec-xhci" => Some(Conn::Pcie),
            _ => Some(Conn::Pci),
        },
        "scsi" => match model {
            Some("ibmvscsi" | "ncr53c90" | "am53c974" | "dc390") => None,
            Some(m @ ("virtio-scsi" | "virtio-transitional" | "virtio-non-transitional")) => {
                Some(virtio_conn(Some(m)))
            }
            _ => Some(Conn::Pci),
        },
        "virtio-serial" => Some(virtio_conn(model)),
        "sata" => Some(Conn::Pci),
        "ide" => (c.index != Some(0) || !ctx.i440fx).then_some(Conn::Pci),
        _ => None,
    }
}

/// The devices needing PCI addresses, in libvirt's visiting order, with how they connect.
fn plan(d: &Devices, ctx: &Ctx<'_>) -> Vec<(Dev, Conn)> {
    let mut v = Vec::new();
    // 1. PCI controllers (bridges, ports), in index order.
    let mut pci: Vec<usize> = (0..d.controllers.len())
        .filter(|&i| d.controllers[i].ctype == "pci")
        .collect();
    pci.sort_by_key(|&i| d.controllers[i].index);
    for i in pci {
        if let Some(c) = controller_conn(&d.controllers[i], ctx) {
            v.push((Dev::Ctrl(i), c));
        }
    }
    // 2. filesystems.
    for (i, f) in d.filesystems.iter().enumerate() {
        let virtiofs = f.driver.as_ref().and_then(|x| x.dtype.as_deref()) == Some("virtiofs");
        if matches!(f.ftype.as_deref(), None | Some("mount")) || virtiofs {
            v.push((Dev::Fs(i), virtio_conn(f.model.as_deref())));
        }
    }
    // 3. interfaces other than hostdev ones.
    for (i, n) in d.interfaces.iter().enumerate() {
        if n.itype == "hostdev" {
            continue;
        }
        let conn = match n.model.as_deref() {
            Some("virtio" | "virtio-non-transitional" | "e1000e" | "igb") => Conn::Pcie,
            Some("usb-net" | "spapr-vlan" | "smc91c111" | "lan9118") => continue,
            _ => Conn::Pci,
        };
        v.push((Dev::Net(i), conn));
    }
    // 4. sound cards on PCI.
    for (i, s) in d.sounds.iter().enumerate() {
        if matches!(s.model.as_str(), "sb16" | "pcspk" | "usb") {
            continue;
        }
        v.push((Dev::Sound(i), Conn::Pci));
    }
    // 5. other controllers, in definition order.
    for (i, c) in d.controllers.iter().enumerate() {
        if c.ctype == "pci" {
            continue;
        }
        if let Some(conn) = controller_conn(c, ctx) {
            v.push((Dev::Ctrl(i), conn));
        }
    }
    // 6. virtio disks.
    for (i, disk) in d.disks.iter().enumerate() {
        if disk.target.bus.as_deref() == Some("virtio") {
            v.push((Dev::Disk(i), virtio_conn(disk.model.as_deref())));
        }
    }
    // 7. host devices on PCI.
    for (i, h) in d.hostdevs.iter().enumerate() {
        let t = h.htype.as_deref().unwrap_or("");
        let mdev_pci = t == "mdev" && h.model.as_deref() == Some("vfio-pci");
        if h.mode.as_deref().unwrap_or("subsystem") == "subsystem"
            && (t == "pci" || t == "scsi_host" || mdev_pci)
        {
            v.push((Dev::Hostdev(i), virtio_conn(h.model.as_deref())));
        }
    }
    // 8. balloon, 9. RNGs, 10. watchdog.
    if let Some(b) = &d.memballoon
        && b.model.is_some_and(|m| m.is_virtio())
    {
        v.push((Dev::Balloon, virtio_conn(b.model.map(|m| m.as_str()))));
    }
    for (i, r) in d.rngs.iter().enumerate() {
        if r.model.as_deref().is_some_and(|m| m.starts_with("virtio")) {
            v.push((Dev::Rng(i), virtio_conn(r.model.as_deref())));
        }
    }
    for (i, w) in d.watchdogs.iter().enumerate() {
        if w.model.as_deref() == Some("i6300esb") {
            v.push((Dev::Watchdog(i), Conn::Pci));
        }
    }
    // 11. secondary videos (the primary one has its fixed place).
    for (i, vid) in d.videos.iter().enumerate().skip(1) {
        let Some(m) = &vid.model else { continue };
        match m.vtype.as_str() {
            "none" | "ramfb" => {}
            "virtio" | "bochs" => v.push((Dev::Video(i), Conn::Pcie)),
            _ => v.push((Dev::Video(i), Conn::Pci)),
        }
    }
    if let Some(vid) = d.videos.first()
        && vid
            .model
            .as_ref()
            .is_some_and(|m| !matches!(m.vtype.as_str(), "none" | "ramfb"))
    {
        // Where the fixed slot is taken, the primary video is placed like a secondary one.
        let conn = match vid.model.as_ref().map(|m| m.vtype.as_str()) {
            Some("virtio" | "bochs") => Conn::Pcie,
            _ => Conn::Pci,
        };
        v.push((Dev::Video(0), conn));
    }
    // 12. shmem, 13. virtio inputs, 14. PCI serial, 15. IOMMU, 16. vsock, 17. memory devices.
    for i in 0..d.shmems.len() {
        v.push((Dev::Shmem(i), Conn::Pci));
    }
    for (i, inp) in d.inputs.iter().enumerate() {
        if inp.bus.as_deref() == Some("virtio") {
            v.push((Dev::Input(i), virtio_conn(inp.model.as_deref())));
        }
    }
    for (i, s) in d.serials.iter().enumerate() {
        if s.target.as_ref().and_then(|t| t.ttype.as_deref()) == Some("pci-serial") {
            v.push((Dev::Serial(i), Conn::Pci));
        }
    }
    if let Some(io) = &d.iommu
        && io.model == "virtio"
    {
        // virtio-iommu must sit on the root bus.
        v.push((Dev::Iommu, Conn::Expander));
    }
    if let Some(vs) = &d.vsock {
        v.push((Dev::Vsock, virtio_conn(vs.model.as_deref())));
    }
    for (i, m) in d.memories.iter().enumerate() {
        if matches!(m.model.as_deref(), Some("virtio-pmem" | "virtio-mem")) {
            v.push((Dev::Mem(i), Conn::Pcie));
        }
    }
    for (i, c) in d.cryptos.iter().enumerate() {
        if c.model.as_deref() == Some("virtio") {
            v.push((Dev::Crypto(i), Conn::Pcie));
        }
    }
    v
}

fn pci_address(a: PciAddr, multifunction: bool) -> Address {
    Address::Pci {
        domain: 0,
        bus: a.bus,
        slot: a.slot,
        function: a.function,
        multifunction: multifunction.then(|| "on".to_string()),
        zpci: None,
    }
}

enum Fail {
    /// The controller to add, and whether a root port is still free for it.
    Need(Need, bool),
    Fatal(DomainError),
}

/// Assign every missing PCI address in `d`, or say which controller is missing.
fn try_assign(d: &mut Devices, ctx: &Ctx<'_>) -> Result<(), Fail> {
    let mut t = Topology::new(ctx.q35 || ctx.arm_virt || ctx.riscv_virt);
    for c in &d.controllers {
        if c.ctype == "pci"
            && let (Some(i), Some(m)) = (c.index, c.model.as_deref())
        {
            t.add_bus(i, m);
        }
    }
    for info in all_infos(d) {
        if let Some(a) = explicit_pci(info) {
            t.reserve(a).map_err(|e| Fail::Fatal(DomainError::Xml(e)))?;
        }
    }
    for c in &d.controllers {
        if c.ctype == "pci"
            && c.model.as_deref() == Some("pcie-root-port")
            && let Some(a) = explicit_pci(&c.info)
        {
            t.mark_aggregate(a);
        }
    }
    let at = |slot, function| PciAddr {
        bus: 0,
        slot,
        function,
    };
    let mut assigned: Vec<(Dev, PciAddr)> = Vec::new();
    let fixed = |t: &mut Topology, assigned: &mut Vec<(Dev, PciAddr)>, dev, a: PciAddr| {
        if !t.is_used(a) && t.reserve(a).is_ok() {
            assigned.push((dev, a));
            true
        } else {
            false
        }
    };
    // Built-in functions of the chipset.
    if ctx.i440fx {
        for (i, c) in d.controllers.iter().enumerate() {
            if c.index == Some(0) && wants_pci(&c.info) {
                match (c.ctype.as_str(), c.model.as_deref()) {
                    ("ide", _) => {
                        fixed(&mut t, &mut assigned, Dev::Ctrl(i), at(1, 1));
                    }
                    ("usb", Some("piix3-uhci")) => {
                        fixed(&mut t, &mut assigned, Dev::Ctrl(i), at(1, 2));
                    }
                    _ => {}
                }
            }
        }
        for f in [0, 1, 2, 3] {
            let _ = t.reserve(at(1, f));
        }
    } else if ctx.q35 {
        for (i, c) in d.controllers.iter().enumerate() {
            if c.ctype == "sata" && c.index == Some(0) && wants_pci(&c.info) {
                fixed(&mut t, &mut assigned, Dev::Ctrl(i), at(0x1f, 2));
            }
        }
        for f in [0, 2, 3] {
            let _ = t.reserve(at(0x1f, f));
        }
    }
    // The primary video at its conventional slot.
    if (ctx.i440fx || ctx.q35)
        && let Some(v) = d.videos.first()
        && wants_pci(&v.info)
        && v.model
            .as_ref()
            .is_some_and(|m| !matches!(m.vtype.as_str(), "none" | "ramfb"))
    {
        let slot = if ctx.q35 { 1 } else { 2 };
        fixed(&mut t, &mut assigned, Dev::Video(0), at(slot, 0));
    }
    if ctx.q35 {
        // Integrated devices with their customary slots on pcie.0.
        for (i, c) in d.controllers.iter().enumerate() {
            if c.ctype == "pci"
                && c.model.as_deref() == Some("dmi-to-pci-bridge")
                && wants_pci(&c.info)
            {
                fixed(&mut t, &mut assigned, Dev::Ctrl(i), at(0x1e, 0));
            }
        }
        for (i, s) in d.sounds.iter().enumerate() {
            if s.model == "ich9" && wants_pci(&s.info) {
                fixed(&mut t, &mut assigned, Dev::Sound(i), at(0x1b, 0));
            }
        }
    }
    let plan = plan(d, ctx);
    let mut usb2_slots: Vec<(u32, PciAddr)> = Vec::new();
    // Slots of USB2 sets that already have an explicit member.
    for c in &d.controllers {
        if c.ctype == "usb"
            && let (Some(idx), Some(a)) = (c.index, explicit_pci(&c.info))
            && c.model.as_deref().and_then(usb2_function).is_some()
        {
            usb2_slots.push((idx, PciAddr { function: 0, ..a }));
        }
    }
    let mut usb2_sets = 0;
    for (dev, conn) in plan {
        let Some(info) = info_mut(d, dev) else {
            continue;
        };
        if !wants_pci(info) || assigned.iter().any(|(x, _)| *x == dev) {
            continue;
        }
        if let Dev::Ctrl(i) = dev {
            let c = &d.controllers[i];
            if c.ctype == "usb"
                && let Some(func) = c.model.as_deref().and_then(usb2_function)
            {
                let idx = c.index.unwrap_or(0);
                let base = match usb2_slots.iter().find(|(x, _)| *x == idx) {
                    Some((_, a)) => *a,
                    None => {
                        let preferred = if ctx.q35 {
                            [0x1d, 0x1a].get(usb2_sets).copied()
                        } else {
                            None
                        };
                        usb2_sets += 1;
                        let a = match preferred {
                            Some(s) if t.functions(0, s) == 0 => at(s, 0),
                            _ => match t.place(Conn::Pci) {
                                Ok(a) => {
                                    // place() reserved function 0; the set decides which
                                    // functions it really uses.
                                    if let Some(b) = t.buses.get_mut(&a.bus) {
                                        b.used[a.slot as usize] = 0;
                                    }
                                    a
                                }
                                Err(n) => return Err(Fail::Need(n, false)),
                            },
                        };
                        usb2_slots.push((idx, a));
                        a
                    }
                };
                let a = PciAddr {
                    function: func,
                    ..base
                };
                if t.reserve(a).is_ok() {
                    assigned.push((dev, a));
                }
                continue;
            }
            if c.ctype == "pci" && c.model.as_deref() == Some("dmi-to-pci-bridge") {
                // Not at its customary slot: any free pcie.0 slot.
                match t.reserve_slot_on(0, 1, 0) {
                    Some(a) => assigned.push((dev, a)),
                    None => {
                        return Err(Fail::Fatal(DomainError::Config(
                            "internal error: No more available PCI slots".to_string(),
                        )));
                    }
                }
                continue;
            }
        }
        match t.place(conn) {
            Ok(a) => assigned.push((dev, a)),
            Err(n) => {
                let free_port = t
                    .buses
                    .values()
                    .any(|b| b.model == "pcie-root-port" && b.used[0] == 0);
                return Err(Fail::Need(n, free_port));
            }
        }
    }
    for (dev, a) in assigned {
        if let Some(info) = info_mut(d, dev) {
            info.address = Some(pci_address(a, false));
        }
    }
    mark_multifunction(d, &t);
    Ok(())
}

/// A function-0 device whose slot has other functions in use is multifunction, unless the
/// XML says otherwise.
fn mark_multifunction(d: &mut Devices, t: &Topology) {
    let set = |info: &mut DeviceInfo| {
        if let Some(Address::Pci {
            domain: 0,
            bus,
            slot,
            function: 0,
            multifunction,
            ..
        }) = &mut info.address
            && multifunction.is_none()
            && t.functions(*bus, *slot) & !1 != 0
        {
            *multifunction = Some("on".to_string());
        }
    };
    d.disks.iter_mut().for_each(|x| set(&mut x.info));
    d.controllers.iter_mut().for_each(|x| set(&mut x.info));
    d.filesystems.iter_mut().for_each(|x| set(&mut x.info));
    d.interfaces.iter_mut().for_each(|x| set(&mut x.info));
    d.sounds.iter_mut().for_each(|x| set(&mut x.info));
    d.videos.iter_mut().for_each(|x| set(&mut x.info));
    d.hostdevs.iter_mut().for_each(|x| set(&mut x.info));
    d.watchdogs.iter_mut().for_each(|x| set(&mut x.info));
    d.memballoon.iter_mut().for_each(|x| set(&mut x.info));
    d.rngs.iter_mut().for_each(|x| set(&mut x.info));
    d.shmems.iter_mut().for_each(|x| set(&mut x.info));
    d.inputs.iter_mut().for_each(|x| set(&mut x.info));
    d.serials.iter_mut().for_each(|x| set(&mut x.info));
    d.memories.iter_mut().for_each(|x| set(&mut x.info));
    d.iommu.iter_mut().for_each(|x| set(&mut x.info));
    d.vsock.iter_mut().for_each(|x| set(&mut x.info));
    d.cryptos.iter_mut().for_each(|x| set(&mut x.info));
}

fn next_pci_index(d: &Devices) -> u32 {
    d.controllers
        .iter()
        .filter(|c| c.ctype == "pci")
        .filter_map(|c| c.index)
        .max()
        .map_or(0, |m| m.saturating_add(1))
}

fn add_pci(d: &mut Devices, model: &str) {
    let index = next_pci_index(d);
    insert_controller(
        &mut d.controllers,
        Controller {
            ctype: "pci".to_string(),
            index: Some(index),
            model: Some(model.to_string()),
            ..Default::default()
        },
    );
}

/// `<model name>` and `<target>` of PCI controllers, as libvirt fills them in.
fn pci_controller_details(d: &mut Devices, ctx: &Ctx<'_>) {
    // PHBs numbered during device post-parse keep their numbers; ones added since follow.
    let mut next_phb_target = d
        .controllers
        .iter()
        .filter(|c| c.ctype == "pci")
        .filter_map(|c| c.target.as_ref().and_then(|t| t.index))
        .max()
        .map_or(0, |m| m.saturating_add(1));
    let mut next_bus_nr = d
        .controllers
        .iter()
        .filter_map(|c| c.target.as_ref().and_then(|t| t.bus_nr))
        .min()
        .map_or(254, |m| m.saturating_sub(2));
    for c in &mut d.controllers {
        if c.ctype != "pci" {
            continue;
        }
        let index = c.index.unwrap_or(0);
        let model = c.model.clone().unwrap_or_default();
        let name = match model.as_str() {
            "pci-bridge" => Some("pci-bridge"),
            "pcie-root-port" => Some(if ctx.has("pcie-root-port") {
                "pcie-root-port"
            } else {
                "ioh3420"
            }),
            "dmi-to-pci-bridge" => Some("i82801b11-bridge"),
            "pcie-switch-upstream-port" => Some("x3130-upstream"),
            "pcie-switch-downstream-port" => Some("xio3130-downstream"),
            "pci-expander-bus" => Some("pxb"),
            "pcie-expander-bus" => Some("pxb-pcie"),
            "pcie-to-pci-bridge" => Some("pcie-pci-bridge"),
            _ => None,
        };
        if c.model_name.is_none() {
            c.model_name = name.map(String::from);
        }
        let addr = match c.info.address {
            Some(Address::Pci { slot, function, .. }) => Some((slot, function)),
            _ => None,
        };
        match model.as_str() {
            "pci-root" if ctx.pseries => {
                // Each pSeries PHB is a host bridge of its own, numbered by its index.
                c.model_name
                    .get_or_insert_with(|| "spapr-pci-host-bridge".to_string());
                if c.target.as_ref().and_then(|t| t.index).is_none() {
                    let t = c.target.get_or_insert_with(ControllerTarget::default);
                    t.index = Some(next_phb_target);
                    next_phb_target = next_phb_target.saturating_add(1);
                }
            }
            "pci-expander-bus" | "pcie-expander-bus" => {
                // Expander buses take bus numbers from the top down, below the ones taken.
                let t = c.target.get_or_insert_with(ControllerTarget::default);
                if t.bus_nr.is_none() {
                    t.bus_nr = Some(next_bus_nr);
                    next_bus_nr = next_bus_nr.saturating_sub(2);
                }
            }
            "pci-bridge" => {
                let t = c.target.get_or_insert_with(ControllerTarget::default);
                t.chassis_nr.get_or_insert(index);
            }
            "pcie-root-port" | "pcie-switch-downstream-port" => {
                let t = c.target.get_or_insert_with(ControllerTarget::default);
                t.chassis.get_or_insert(index);
                if t.port.is_none()
                    && let Some((slot, function)) = addr
                {
                    t.port = Some(if model == "pcie-root-port" {
                        (slot << 3) + function
                    } else {
                        slot
                    });
                }
            }
            _ => {}
        }
    }
}

/// s390: every virtio device gets a channel-I/O device number in subchannel set 0xfe.0,
/// the lowest free one, visiting devices in libvirt's generic device order.
fn assign_ccw(d: &mut Devices) {
    let devno = |a: &Option<Address>| match a {
        Some(Address::Ccw { devno, .. }) => {
            let t = devno.trim();
            t.strip_prefix("0x")
                .map_or_else(|| t.parse().ok(), |h| u32::from_str_radix(h, 16).ok())
        }
        _ => None,
    };
    let mut taken: Vec<u32> = all_infos(d)
        .iter()
        .filter_map(|i| devno(&i.address))
        .collect();
    let virtio = |m: Option<&str>| m.is_none_or(|m| m.starts_with("virtio"));
    let mut order: Vec<Dev> = Vec::new();
    for (i, x) in d.disks.iter().enumerate() {
        if x.target.bus.as_deref() == Some("virtio") {
            order.push(Dev::Disk(i));
        }
    }
    for (i, x) in d.interfaces.iter().enumerate() {
        if x.itype != "hostdev" && virtio(x.model.as_deref()) {
            order.push(Dev::Net(i));
        }
    }
    for (i, x) in d.hostdevs.iter().enumerate() {
        if x.htype.as_deref() == Some("scsi_host") {
            order.push(Dev::Hostdev(i));
        }
    }
    for (i, x) in d.videos.iter().enumerate() {
        if x.model.as_ref().is_some_and(|m| m.vtype == "virtio") {
            order.push(Dev::Video(i));
        }
    }
    for (i, x) in d.controllers.iter().enumerate() {
        let virtio_ctrl = match x.ctype.as_str() {
            "virtio-serial" => true,
            "scsi" => x.model.as_deref().is_some_and(|m| m.starts_with("virtio")),
            _ => false,
        };
        if virtio_ctrl {
            order.push(Dev::Ctrl(i));
        }
    }
    for (i, x) in d.inputs.iter().enumerate() {
        if x.bus.as_deref() == Some("virtio") {
            order.push(Dev::Input(i));
        }
    }
    for i in 0..d.filesystems.len() {
        order.push(Dev::Fs(i));
    }
    if d.memballoon
        .as_ref()
        .is_some_and(|b| b.model.is_some_and(|m| m.is_virtio()))
    {
        order.push(Dev::Balloon);
    }
    for (i, x) in d.rngs.iter().enumerate() {
        if virtio(x.model.as_deref()) {
            order.push(Dev::Rng(i));
        }
    }
    if d.vsock.is_some() {
        order.push(Dev::Vsock);
    }
    for (i, x) in d.cryptos.iter().enumerate() {
        if virtio(x.model.as_deref()) {
            order.push(Dev::Crypto(i));
        }
    }
    for dev in order {
        let Some(info) = info_mut(d, dev) else {
            continue;
        };
        if info.address.is_some() {
            continue;
        }
        let Some(n) = (0..=0xffffu32).find(|n| !taken.contains(n)) else {
            return;
        };
        taken.push(n);
        info.address = Some(Address::Ccw {
            cssid: "0xfe".to_string(),
            ssid: "0x0".to_string(),
            devno: format!("0x{n:04x}"),
        });
    }
}

/// Assign PCI addresses, adding the root ports and bridges libvirt adds on the way.
pub(crate) fn assign(def: &mut DomainDef, ctx: &Ctx<'_>) -> Result<(), DomainError> {
    if matches!(ctx.arch.as_str(), "aarch64" | "armv7l") && !ctx.arm_virt {
        // ARM boards without PCI attach virtio devices over MMIO.
        for (dev, _) in plan(&def.devices, ctx) {
            if let Some(info) = info_mut(&mut def.devices, dev)
                && info.address.is_none()
            {
                info.address = Some(Address::VirtioMmio);
            }
        }
        return Ok(());
    }
    if ctx.s390 {
        assign_ccw(&mut def.devices);
        return Ok(());
    }
    if !(ctx.i440fx || ctx.q35 || ctx.arm_virt || ctx.riscv_virt || ctx.pseries) {
        return Ok(());
    }
    if ctx.pseries {
        // An explicit address on bus N means PHB N exists.
        // So does PHB N-1 when N does: indexes have no gaps.
        let wanted = all_infos(&def.devices)
            .iter()
            .filter_map(|i| explicit_pci(i).map(|a| a.bus))
            .chain(next_pci_index(&def.devices).checked_sub(1))
            .max();
        if let Some(max) = wanted {
            for idx in 1..=max.min(255) {
                let d = &mut def.devices;
                if !d
                    .controllers
                    .iter()
                    .any(|c| c.ctype == "pci" && c.index == Some(idx))
                {
                    // Added after the fact, so appended rather than sorted in.
                    d.controllers.push(Controller {
                        ctype: "pci".to_string(),
                        index: Some(idx),
                        model: Some("pci-root".to_string()),
                        ..Default::default()
                    });
                }
            }
        }
    }
    if ctx.i440fx {
        // An explicit address on bus N means buses up to N exist: libvirt's first addressing
        // pass grows the set with a pci-bridge per missing bus (virDomainPCIAddressSetGrow).
        let wanted = all_infos(&def.devices)
            .iter()
            .filter_map(|i| explicit_pci(i).map(|a| a.bus))
            .max();
        if let Some(max) = wanted {
            while next_pci_index(&def.devices) <= max.min(255) {
                add_pci(&mut def.devices, "pci-bridge");
            }
        }
    }
    let had_pci_controllers = next_pci_index(&def.devices) > 1;
    let mut added = false;
    let mut spare_added = false;
    // Each round adds at most a couple of controllers, and each device needs at most one.
    for _ in 0..512 {
        let mut work = def.devices.clone();
        match try_assign(&mut work, ctx) {
            Ok(()) => {
                let pcie = ctx.q35 || ctx.arm_virt || ctx.riscv_virt;
                if pcie && added && !had_pci_controllers && !spare_added {
                    // One empty root port for hotplug when libvirt built the topology.
                    add_pci(&mut def.devices, "pcie-root-port");
                    spare_added = true;
                    continue;
                }
                def.devices = work;
                pci_controller_details(&mut def.devices, ctx);
                return Ok(());
            }
            Err(Fail::Fatal(e)) => return Err(e),
            Err(Fail::Need(n, free_port)) => {
                added = true;
                match n {
                    Need::RootPort => add_pci(&mut def.devices, "pcie-root-port"),
                    // pSeries grows by host bridges (PHBs), not by PCI bridges.
                    Need::PciBridge if ctx.pseries => add_pci(&mut def.devices, "pci-root"),
                    Need::PciBridge => add_pci(&mut def.devices, "pci-bridge"),
                    Need::PciePciBridge => {
                        // libvirt: virDomainPCIAddressSetGrow adds the bridge with a root
                        // port of its own to plug into, free ports or not.
                        let _ = free_port;
                        add_pci(&mut def.devices, "pcie-root-port");
                        add_pci(&mut def.devices, "pcie-to-pci-bridge");
                    }
                }
            }
        }
    }
    Err(DomainError::Config(
        "internal error: No more available PCI slots".to_string(),
    ))
}
