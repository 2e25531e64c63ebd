//! Default devices, per-device defaults, implicit devices and non-PCI addresses.

use super::{AudioConfig, Ctx, PrepareOptions};
use crate::domain::DomainError;
use crate::domain::address::{Address, DeviceInfo};
use crate::domain::devices::{
    Audio, Chardev, ChrTarget, Controller, Devices, Disk, DiskSource, Driver, GraphicsListen,
    Input, Memballoon, MemballoonModel, ModelDevice, Video, VideoModel,
};
use crate::domain::model::DomainDef;

/// Insert a controller where libvirt puts it: controllers of one type stay sorted by index
/// (a new one goes before the trailing run of same-type controllers with a higher index, and a
/// USB companion goes after the controller it accompanies), anything else is appended.
pub(crate) fn insert_controller(list: &mut Vec<Controller>, c: Controller) {
    let mut at = list.len();
    let idx = c.index.unwrap_or(u32::MAX);
    for (i, cur) in list.iter().enumerate().rev() {
        if cur.ctype != c.ctype {
            continue;
        }
        let cur_idx = cur.index.unwrap_or(u32::MAX);
        let companion_after = c.ctype == "usb"
            && cur_idx == idx
            && cur.info.master_startport.is_some()
            && c.info.master_startport.is_none();
        if cur_idx > idx || companion_after {
            at = i;
        } else {
            break;
        }
    }
    list.insert(at, c);
}

fn has_controller(d: &Devices, ctype: &str, index: u32) -> bool {
    d.controllers
        .iter()
        .any(|c| c.ctype == ctype && c.index == Some(index))
}

fn add_controller(d: &mut Devices, ctype: &str, index: u32, model: Option<&str>) {
    if has_controller(d, ctype, index) {
        return;
    }
    insert_controller(
        &mut d.controllers,
        Controller {
            ctype: ctype.to_string(),
            index: Some(index),
            model: model.map(String::from),
            ..Default::default()
        },
    );
}

/// The USB controller model libvirt picks when none is given.
fn default_usb_model(ctx: &Ctx<'_>) -> Option<&'static str> {
    if ctx.q35 {
        if ctx.has("qemu-xhci") {
            return Some("qemu-xhci");
        }
        if ctx.has("nec-usb-xhci") {
            return Some("nec-xhci");
        }
        return Some("ich9-ehci1");
    }
    if ctx.arm_virt {
        if ctx.has("qemu-xhci") {
            return Some("qemu-xhci");
        }
        return None;
    }
    if ctx.pseries && ctx.has("pci-ohci") {
        return Some("pci-ohci");
    }
    if ctx.i440fx && ctx.has("piix3-usb-uhci") {
        return Some("piix3-uhci");
    }
    None
}

/// Controllers without an index get the lowest index their type does not use yet, in
/// document order, before any implicit controller exists; then all are put in libvirt's order
/// (libvirt: virDomainAssignControllerIndexes, virDomainControllerFindUnusedIndex).
fn index_and_sort_controllers(d: &mut Devices) {
    let mut list = std::mem::take(&mut d.controllers);
    for i in 0..list.len() {
        // A USB companion (`<master>`) without an index belongs to the controller before it, so
        // it shares that controller's index (and with it the master bus and the PCI slot).
        if list[i].index.is_none()
            && list[i].ctype == "usb"
            && list[i].info.master_startport.is_some()
        {
            let master = list[..i]
                .iter()
                .rev()
                .find(|c| c.ctype == "usb" && c.info.master_startport.is_none())
                .and_then(|c| c.index);
            if master.is_some() {
                list[i].index = master;
                continue;
            }
        }
        if list[i].index.is_none() {
            let t = list[i].ctype.clone();
            let used: Vec<u32> = list
                .iter()
                .filter(|c| c.ctype == t)
                .filter_map(|c| c.index)
                .collect();
            list[i].index = (0..=u32::MAX).find(|n| !used.contains(n));
        }
    }
    for c in list {
        insert_controller(&mut d.controllers, c);
    }
}

/// What every domain of this machine type gets: libvirt's `qemuDomainDefAddDefaultDevices`.
pub(crate) fn default_devices(
    def: &mut DomainDef,
    ctx: &Ctx<'_>,
    opts: &PrepareOptions,
) -> Result<(), DomainError> {
    index_and_sort_controllers(&mut def.devices);
    input_buses(def, ctx);
    let d = &mut def.devices;
    let pc_like = ctx.i440fx || ctx.q35;
    if pc_like || ctx.pseries {
        // One USB controller index 0 unless the XML has any USB controller (model='none'
        // included, which is how USB is switched off).
        if !d.controllers.iter().any(|c| c.ctype == "usb")
            && let Some(model) = default_usb_model(ctx)
        {
            add_controller(d, "usb", 0, Some(model));
        }
    }
    if ctx.q35 {
        add_controller(d, "sata", 0, None);
    }
    let root = if ctx.i440fx || ctx.pseries || ctx.s390 {
        Some("pci-root")
    } else if ctx.q35 || ctx.arm_virt || ctx.riscv_virt {
        Some("pcie-root")
    } else {
        None
    };
    if let Some(root) = root {
        check_pci_root(d, root)?;
        add_controller(d, "pci", 0, Some(root));
    }
    if d.memballoon.is_none() && (pc_like || ctx.pseries || ctx.s390) {
        d.memballoon = Some(Memballoon {
            model: Some(MemballoonModel::Virtio),
            ..Default::default()
        });
    }
    if pc_like {
        for kind in ["mouse", "keyboard"] {
            let present = d
                .inputs
                .iter()
                .any(|i| i.itype == kind && i.bus.as_deref() == Some("ps2"));
            if !present {
                d.inputs.push(Input {
                    itype: kind.to_string(),
                    bus: Some("ps2".to_string()),
                    ..Default::default()
                });
            }
        }
    }
    // pSeries has no PS/2: a graphical guest gets USB keyboard and mouse instead.
    if ctx.pseries
        && !d.graphics.is_empty()
        && d.controllers
            .iter()
            .any(|c| c.ctype == "usb" && c.model.as_deref() != Some("none"))
    {
        for kind in ["keyboard", "mouse"] {
            // Any pointing device will do for the mouse.
            let have = d
                .inputs
                .iter()
                .any(|i| i.itype == kind || (kind == "mouse" && i.itype == "tablet"));
            if !have {
                d.inputs.push(Input {
                    itype: kind.to_string(),
                    bus: Some("usb".to_string()),
                    ..Default::default()
                });
            }
        }
    }
    for p in &mut d.panics {
        if ctx.pseries && p.model.is_none() {
            p.model = Some("pseries".to_string());
        }
    }
    if ctx.s390 && d.panics.is_empty() {
        // s390 guests report crashes through the hypervisor interface, always wired up.
        d.panics.push(ModelDevice {
            model: Some("s390".to_string()),
            ..Default::default()
        });
    }
    if ctx.pseries && d.panics.is_empty() {
        // The pSeries firmware reports guest crashes; libvirt always wires that up.
        d.panics.push(ModelDevice {
            model: Some("pseries".to_string()),
            ..Default::default()
        });
    }
    // A graphical console needs a display device to show (libvirt:
    // virDomainDefAddImplicitVideo, for any graphics type).
    if d.videos.is_empty() && !d.graphics.is_empty() {
        let vtype = default_video_type(ctx);
        d.videos.push(Video {
            model: Some(VideoModel {
                vtype: vtype.to_string(),
                ..Default::default()
            }),
            ..Default::default()
        });
    }
    default_audio(d, &opts.audio);
    Ok(())
}

/// PCI controller 0 is the machine's root bus: one given in the XML, or one an unindexed
/// controller was numbered 0, must be that root's model (libvirt:
/// qemuDomainDefAddDefaultDevices).
/// An HVM input without a bus gets the one libvirt's parser gives it: PS/2 for an x86 mouse
/// or keyboard, virtio on s390 and for passthrough, none for evdev, USB otherwise (libvirt:
/// virDomainInputDefParseXML).
fn input_buses(def: &mut DomainDef, ctx: &Ctx<'_>) {
    if def.os.os_type.kind != "hvm" {
        return;
    }
    let x86 = matches!(ctx.arch.as_str(), "x86_64" | "i686");
    for i in def.devices.inputs.iter_mut().filter(|i| i.bus.is_none()) {
        let bus = match i.itype.as_str() {
            "mouse" | "keyboard" if x86 => "ps2",
            "evdev" => continue,
            "passthrough" => "virtio",
            _ if ctx.s390 || ctx.arch.starts_with("s390") => "virtio",
            _ => "usb",
        };
        i.bus = Some(bus.to_string());
    }
}

fn check_pci_root(d: &Devices, root: &str) -> Result<(), DomainError> {
    let found = d
        .controllers
        .iter()
        .find(|c| c.ctype == "pci" && c.index == Some(0))
        .and_then(|c| c.model.as_deref());
    match found {
        Some(m) if m != root => Err(DomainError::Xml(format!(
            "XML error: The PCI controller with index='0' must be model='{root}' for this machine type, but model='{m}' was found instead"
        ))),
        _ => Ok(()),
    }
}

/// The display adapter a graphical domain gets when it names none.
fn default_video_type(ctx: &Ctx<'_>) -> &'static str {
    if ctx.x86() {
        if ctx.has("cirrus-vga") {
            "cirrus"
        } else {
            "vga"
        }
    } else if ctx.arch.starts_with("ppc") {
        "vga"
    } else {
        "virtio"
    }
}

/// The audio backend a domain without one gets, from its graphics in order (the last VNC,
/// SPICE or SDL one decides) and qemu.conf; a backend passed through from the host is
/// `QEMU_AUDIO_DRV`'s, and none is added when that is unset (libvirt:
/// qemuDomainDefAddDefaultAudioBackend).
fn default_audio(d: &mut Devices, cfg: &AudioConfig) {
    if !d.audios.is_empty() {
        return;
    }
    let mut add = false;
    let mut passthrough = false;
    let mut backend = "none";
    for g in &d.graphics {
        match g.gtype.as_str() {
            "vnc" => {
                passthrough = cfg.vnc_allow_host_audio;
                if !passthrough {
                    backend = "none";
                }
                add = true;
            }
            "spice" => {
                passthrough = false;
                backend = "spice";
                add = true;
            }
            "sdl" => {
                passthrough = true;
                add = true;
            }
            // rdp, desktop, egl-headless, dbus: no audio of their own.
            _ => {}
        }
    }
    if d.graphics.is_empty() {
        passthrough = cfg.nogfx_allow_host_audio;
        if !passthrough {
            backend = "none";
        }
        add = true;
    }
    let atype = match (add, passthrough, &cfg.env_driver) {
        (false, _, _) | (true, true, None) => return,
        (true, true, Some(env)) => env.clone(),
        (true, false, _) => backend.to_string(),
    };
    d.audios.push(Audio {
        id: Some(1),
        atype,
        ..Default::default()
    });
}

/// Per-device defaults libvirt's device post-parse writes into the definition.
pub(crate) fn device_defaults(def: &mut DomainDef, ctx: &Ctx<'_>) {
    let usb_model = default_usb_model(ctx);
    let d = &mut def.devices;
    for c in &mut d.controllers {
        if c.ctype == "usb" && c.model.is_none() {
            c.model = usb_model.map(String::from);
        }
        // No USB controller is no device: an address given for it is ignored and the slot
        // stays free.
        if c.ctype == "usb" && c.model.as_deref() == Some("none") {
            c.info.address = None;
        }
    }
    if ctx.pseries {
        // Each PHB gets the lowest free PHB number, in definition order.
        let mut used: Vec<u32> = d
            .controllers
            .iter()
            .filter_map(|c| c.target.as_ref().and_then(|t| t.index))
            .collect();
        for c in &mut d.controllers {
            if c.ctype == "pci"
                && c.model.as_deref() == Some("pci-root")
                && c.target.as_ref().and_then(|t| t.index).is_none()
            {
                let n = (0..).find(|n| !used.contains(n)).unwrap_or(0);
                used.push(n);
                c.target.get_or_insert_with(Default::default).index = Some(n);
            }
        }
    }
    for g in &mut d.graphics {
        // A VNC/SPICE server with neither socket nor listen listens on the configured
        // default address, written as an address listen without address.
        if matches!(g.gtype.as_str(), "vnc" | "spice")
            && g.listens.is_empty()
            && g.socket.is_none()
            && g.listen.is_none()
        {
            g.listens.push(GraphicsListen {
                ltype: "address".to_string(),
                ..Default::default()
            });
        }
    }
    for (i, v) in d.videos.iter_mut().enumerate() {
        let Some(m) = v.model.as_mut() else { continue };
        match m.vtype.as_str() {
            "qxl" => {
                m.ram.get_or_insert(65536);
                m.vram.get_or_insert(65536);
                m.vgamem.get_or_insert(16384);
                m.heads.get_or_insert(1);
            }
            "cirrus" | "vga" | "vmvga" | "bochs" => {
                m.vram.get_or_insert(16384);
                m.heads.get_or_insert(1);
            }
            "virtio" => {
                m.heads.get_or_insert(1);
            }
            _ => {}
        }
        if i == 0 && m.vtype != "none" {
            m.primary.get_or_insert_with(|| "yes".to_string());
        }
        // Video memory comes in powers of two: libvirt rounds a size given otherwise up
        // (formatdomain: "rounded to closest one"; libvirtd 9.0 makes 9216 KiB 16384).
        if let Some(v) = m.vram.as_mut()
            && *v > 0
            && !v.is_power_of_two()
        {
            *v = v.checked_next_power_of_two().unwrap_or(*v);
        }
    }
    for disk in &mut d.disks {
        disk_defaults(disk);
    }
    for p in &mut d.panics {
        // libvirt: qemuDomainDevicePanicDefPostParse. The platform's own panic device.
        if p.model.is_none() {
            let model = if ctx.x86() {
                Some("isa")
            } else if ctx.pseries {
                Some("pseries")
            } else if ctx.s390 {
                Some("s390")
            } else {
                None
            };
            p.model = model.map(String::from);
        }
    }
    for r in &mut d.rngs {
        // libvirt: virDomainRNGDefParseXML. A random backend without a file reads
        // /dev/random.
        if r.backend_model.as_deref() == Some("random") && r.backend_path.is_none() {
            r.backend_path = Some("/dev/random".to_string());
        }
    }
    for n in &mut d.interfaces {
        // A macvtap interface without a mode is in VEPA mode, which libvirt writes down.
        if n.itype == "direct"
            && let Some(src) = n.source.as_mut()
        {
            src.mode.get_or_insert_with(|| "vepa".to_string());
        }
    }
    for n in &mut d.interfaces {
        // A vDPA device only serves virtio queues; elsewhere QEMU's default NIC on PC
        // machines, written out so the guest ABI stays stable.
        // libvirt: qemuDomainDeviceNetDefPostParse
        if n.model.is_none() && n.itype == "vdpa" {
            n.model = Some("virtio".to_string());
        } else if n.model.is_none() && ctx.x86() && n.itype != "hostdev" {
            n.model = Some("rtl8139".to_string());
        }
    }
    for f in &mut d.filesystems {
        if matches!(f.ftype.as_deref(), None | Some("mount")) && f.accessmode.is_none() {
            f.accessmode = Some("passthrough".to_string());
        }
    }
    for h in &mut d.hostdevs {
        // Mediated devices are created outside libvirt, so they are never managed.
        if h.htype.as_deref() == Some("mdev") && h.managed.is_none() {
            h.managed = Some("no".to_string());
        }
    }
    if let Some(v) = d.vsock.as_mut() {
        v.model.get_or_insert_with(|| "virtio".to_string());
    }
    for ch in &mut d.channels {
        // A UNIX channel without a path gets one generated at start; the bare source is not
        // part of the persistent definition.
        if ch.stype.as_deref() == Some("unix")
            && ch.sources.len() == 1
            && ch.sources[0].path.is_none()
            && ch.sources[0].extra.is_empty()
        {
            ch.sources.clear();
        }
    }
    serial_defaults(d, ctx);
}

/// The port a network protocol uses when the XML names none.
fn default_port(protocol: &str) -> Option<&'static str> {
    Some(match protocol {
        "http" => "80",
        "https" => "443",
        "ftp" => "21",
        "ftps" => "990",
        "tftp" => "69",
        "nbd" => "10809",
        "iscsi" => "3260",
        "gluster" => "24007",
        "sheepdog" => "7000",
        _ => return None,
    })
}

fn source_defaults(src: &mut DiskSource) {
    if let Some(enc) = src.encryption.as_mut()
        && enc.format.as_deref() == Some("luks")
    {
        enc.engine.get_or_insert_with(|| "qemu".to_string());
    }
    if let Some(port) = src.protocol.as_deref().and_then(default_port) {
        for h in &mut src.hosts {
            if h.port.is_none() && matches!(h.transport.as_deref(), None | Some("tcp")) {
                h.port = Some(port.to_string());
            }
        }
    }
}

/// Driver name and format, encryption engine, network ports, along the backing chain.
fn disk_defaults(disk: &mut Disk) {
    // libvirt infers a missing bus from the device and the target's prefix
    // (virDomainDiskDefParseXML): `vda` is a virtio disk, `sda` SCSI, `hda` IDE.
    if disk.target.bus.is_none() {
        let dev = disk.target.dev.as_str();
        let bus = if disk.device.as_deref() == Some("floppy") {
            "fdc"
        } else if dev.starts_with("sd") {
            "scsi"
        } else if dev.starts_with("vd") {
            "virtio"
        } else if dev.starts_with("xvd") {
            "xen"
        } else if dev.starts_with("ubd") {
            "uml"
        } else {
            "ide"
        };
        disk.target.bus = Some(bus.to_string());
    }
    // An empty network CD-ROM is just an empty drive.
    if disk.dtype.as_deref() == Some("network")
        && disk.source.is_none()
        && matches!(disk.device.as_deref(), Some("cdrom" | "floppy"))
    {
        disk.dtype = Some("file".to_string());
    }
    let drv = disk.driver.get_or_insert_with(Driver::default);
    drv.name.get_or_insert_with(|| "qemu".to_string());
    drv.dtype.get_or_insert_with(|| "raw".to_string());
    if disk.dtype.as_deref() == Some("vhostuser") {
        disk.snapshot.get_or_insert_with(|| "no".to_string());
    }
    if let Some(enc) = disk.encryption.as_mut()
        && enc.format.as_deref() == Some("luks")
    {
        enc.engine.get_or_insert_with(|| "qemu".to_string());
    }
    if let Some(s) = disk.source.as_mut() {
        source_defaults(s);
    }
    let mut bs = disk.backing_store.as_mut();
    while let Some(b) = bs {
        if let Some(s) = b.source.as_mut() {
            source_defaults(s);
        }
        bs = b.backing.as_deref_mut();
    }
}

/// Serial target type, port numbers and model; console/serial pairing.
fn serial_defaults(d: &mut Devices, ctx: &Ctx<'_>) {
    // Virtio and SCLP consoles are numbered by their place among the consoles.
    for (i, c) in d.consoles.iter_mut().enumerate() {
        if let Some(t) = c.target.as_mut() {
            match t.ttype.as_deref() {
                Some("virtio") => t.port = Some(i.to_string()),
                Some("sclp" | "sclplm") if t.port.is_none() => t.port = Some(i.to_string()),
                _ => {}
            }
        }
    }
    let (default_type, default_model) = if ctx.x86() {
        ("isa-serial", "isa-serial")
    } else if ctx.arm_virt {
        ("system-serial", "pl011")
    } else if ctx.pseries {
        ("spapr-vio-serial", "spapr-vty")
    } else if ctx.riscv_virt {
        ("system-serial", "16550a")
    } else {
        return;
    };
    // A console of (default) serial type with no serial stands for serial port 0.
    if d.serials.is_empty()
        && let Some(c) = d.consoles.first()
        && c.target
            .as_ref()
            .and_then(|t| t.ttype.as_deref())
            .is_none_or(|t| t == "serial")
    {
        let mut s = c.clone();
        s.kind = "serial".to_string();
        s.target = None;
        d.serials.push(s);
    }
    // A serial without a port gets the one after the highest in use, ports given later in
    // the document included (libvirt: virDomainChrDefPostParse).
    let port_of = |t: Option<&ChrTarget>| t.and_then(|t| t.port.as_deref()?.parse::<u32>().ok());
    let mut next_port = d
        .serials
        .iter()
        .filter_map(|s| port_of(s.target.as_ref()))
        .max()
        .map_or(0, |p| p.saturating_add(1));
    for s in &mut d.serials {
        let t = s.target.get_or_insert_with(ChrTarget::default);
        // pSeries accepts isa-serial for old definitions and means its own serial port.
        if ctx.pseries && t.ttype.as_deref() == Some("isa-serial") {
            t.ttype = None;
        }
        let ttype = t
            .ttype
            .get_or_insert_with(|| default_type.to_string())
            .clone();
        if t.port.is_none() {
            t.port = Some(next_port.to_string());
            next_port = next_port.saturating_add(1);
        }
        if t.model.is_none() {
            t.model = match ttype.as_str() {
                "isa-serial" | "system-serial" | "spapr-vio-serial" => {
                    Some(default_model.to_string())
                }
                "usb-serial" => Some("usb-serial".to_string()),
                "pci-serial" => Some("pci-serial".to_string()),
                _ => None,
            };
        }
    }
    // Console 0 of serial type mirrors serial 0, when that is the platform's own serial port.
    if let Some(s0) = d.serials.first().cloned() {
        let platform_serial =
            s0.target.as_ref().and_then(|t| t.ttype.as_deref()) == Some(default_type);
        if d.consoles.is_empty() {
            if platform_serial {
                d.consoles.push(console_of(&s0));
            }
        } else if d.consoles[0]
            .target
            .as_ref()
            .and_then(|t| t.ttype.as_deref())
            .is_none_or(|t| t == "serial")
        {
            d.consoles[0] = console_of(&s0);
        }
    }
}

fn console_of(serial: &Chardev) -> Chardev {
    Chardev {
        kind: "console".to_string(),
        target: Some(ChrTarget {
            ttype: Some("serial".to_string()),
            port: serial
                .target
                .as_ref()
                .and_then(|t| t.port.clone())
                .or(Some("0".to_string())),
            ..Default::default()
        }),
        // The console is the same device as the serial port, address included.
        info: serial.info.clone(),
        ..serial.clone()
    }
}

/// Index of a disk target name (`hda` → 0, `sdb` → 1, `vdaa` → 26), as libvirt derives the
/// drive address from it.
pub(crate) fn disk_index(dev: &str) -> Option<u32> {
    let letters = ["hd", "sd", "vd", "xvd", "fd", "ubd"]
        .iter()
        .find_map(|p| dev.strip_prefix(p))?;
    if letters.is_empty() || !letters.bytes().all(|b| b.is_ascii_lowercase()) {
        return None;
    }
    let mut idx: u64 = 0;
    for b in letters.bytes() {
        idx = idx.checked_mul(26)?.checked_add(u64::from(b - b'a') + 1)?;
    }
    u32::try_from(idx - 1).ok()
}

/// Whether a device wants a sPAPR VIO register: it has none yet and either asked for a VIO
/// address or sits on a bus that only exists as VIO.
fn wants_vio(info: &DeviceInfo, vio_by_default: bool) -> bool {
    match &info.address {
        None => vio_by_default,
        Some(Address::SpaprVio { reg: None }) => true,
        _ => false,
    }
}

/// VIO registers: per kind a customary base (net 0x1000, SCSI 0x2000, NVRAM 0x3000,
/// serial 0x30000000), moved up by 0x1000 while taken.
fn spapr_vio_addresses(d: &mut Devices, ctx: &Ctx<'_>) {
    let parse = |r: &str| {
        let t = r.trim();
        t.strip_prefix("0x")
            .map_or_else(|| t.parse().ok(), |h| u64::from_str_radix(h, 16).ok())
    };
    let mut taken: Vec<u64> = Vec::new();
    // Explicit registers are kept, written the way libvirt writes them.
    let mut collect = |info: &mut DeviceInfo| {
        if let Some(Address::SpaprVio { reg: Some(r) }) = &mut info.address
            && let Some(v) = parse(r)
        {
            taken.push(v);
            *r = format!("0x{v:08x}");
        }
    };
    d.interfaces.iter_mut().for_each(|x| collect(&mut x.info));
    d.controllers.iter_mut().for_each(|x| collect(&mut x.info));
    d.serials.iter_mut().for_each(|x| collect(&mut x.info));
    d.nvram.iter_mut().for_each(|x| collect(&mut x.info));
    let mut give = |info: &mut DeviceInfo, base: u64| {
        let mut reg = base;
        while taken.contains(&reg) {
            reg += 0x1000;
        }
        taken.push(reg);
        info.address = Some(Address::SpaprVio {
            reg: Some(format!("0x{reg:08x}")),
        });
    };
    for n in &mut d.interfaces {
        if wants_vio(&n.info, n.model.as_deref() == Some("spapr-vlan")) {
            give(&mut n.info, 0x1000);
        }
    }
    for c in &mut d.controllers {
        let vscsi = c.ctype == "scsi" && c.model.as_deref() == Some("ibmvscsi");
        if wants_vio(&c.info, vscsi) {
            give(&mut c.info, 0x2000);
        }
    }
    if let Some(n) = d.nvram.as_mut()
        && wants_vio(&n.info, ctx.pseries)
    {
        give(&mut n.info, 0x3000);
    }
    for s in &mut d.serials {
        let vty = s.target.as_ref().and_then(|t| t.ttype.as_deref()) == Some("spapr-vio-serial");
        if wants_vio(&s.info, vty) {
            give(&mut s.info, 0x3000_0000);
        }
    }
    // Console 0 is serial 0: same address.
    if let (Some(s0), Some(c0)) = (d.serials.first(), d.consoles.first_mut())
        && c0.target.as_ref().and_then(|t| t.ttype.as_deref()) == Some("serial")
    {
        c0.info.address = s0.info.address.clone();
    }
}

/// Controllers, addresses and companions the configured devices imply.
pub(crate) fn implicit_devices(def: &mut DomainDef, ctx: &Ctx<'_>) -> Result<(), DomainError> {
    let d = &mut def.devices;
    for disk in &d.disks {
        if disk.target.bus.as_deref() == Some("usb")
            && disk
                .info
                .address
                .as_ref()
                .is_some_and(|a| !matches!(a, Address::Usb { .. }))
        {
            return Err(DomainError::Config(
                "internal error: unexpected address type for usb disk".to_string(),
            ));
        }
    }
    // Drive addresses from target names, then the controllers those addresses need.
    for disk in &mut d.disks {
        let bus = disk.target.bus.clone().unwrap_or_default();
        if disk.info.address.is_some() {
            continue;
        }
        let Some(idx) = disk_index(&disk.target.dev) else {
            continue;
        };
        let (controller, bus_n, unit) = match bus.as_str() {
            "ide" => (idx / 4, (idx % 4) / 2, idx % 2),
            "sata" => (idx / 6, 0, idx % 6),
            "fdc" => (idx / 2, 0, idx % 2),
            "scsi" => (idx / 7, 0, idx % 7),
            _ => continue,
        };
        disk.info.address = Some(Address::Drive {
            controller,
            bus: bus_n,
            target: 0,
            unit,
        });
    }
    let mut needed: Vec<(String, u32)> = Vec::new();
    for disk in &d.disks {
        if let Some(Address::Drive { controller, .. }) = disk.info.address {
            let t = match disk.target.bus.as_deref() {
                Some("ide") if ctx.q35 => "sata",
                Some(b @ ("ide" | "sata" | "fdc" | "scsi")) => b,
                _ => continue,
            };
            needed.push((t.to_string(), controller));
        }
    }
    for (t, i) in needed {
        add_controller(d, &t, i, None);
    }
    spapr_vio_addresses(d, ctx);
    for c in &mut d.controllers {
        if c.ctype == "scsi" && c.model.is_none() {
            c.model = Some(if ctx.has("lsi") {
                "lsilogic".to_string()
            } else {
                "virtio-scsi".to_string()
            });
        }
    }
    // Virtio channels and consoles live on a virtio-serial controller.
    let virtio_chr = d
        .channels
        .iter()
        .any(|c| c.target.as_ref().and_then(|t| t.ttype.as_deref()) == Some("virtio"))
        || d.consoles
            .iter()
            .any(|c| c.target.as_ref().and_then(|t| t.ttype.as_deref()) == Some("virtio"));
    if virtio_chr && !d.controllers.iter().any(|c| c.ctype == "virtio-serial") {
        add_controller(d, "virtio-serial", 0, None);
    }
    let mut used_ports: Vec<(u32, u32, u32)> = d
        .channels
        .iter()
        .filter_map(|c| match c.info.address {
            Some(Address::VirtioSerial {
                controller,
                bus,
                port: Some(p),
            }) => Some((controller, bus, p)),
            _ => None,
        })
        .collect();
    for ch in &mut d.channels {
        let is_virtio = ch.target.as_ref().and_then(|t| t.ttype.as_deref()) == Some("virtio");
        if !is_virtio {
            continue;
        }
        let (controller, bus) = match ch.info.address {
            Some(Address::VirtioSerial { port: Some(_), .. }) => continue,
            Some(Address::VirtioSerial {
                controller, bus, ..
            }) => (controller, bus),
            None => (0, 0),
            _ => continue,
        };
        let port = (1..)
            .find(|p| !used_ports.contains(&(controller, bus, *p)))
            .unwrap_or(1);
        used_ports.push((controller, bus, port));
        ch.info.address = Some(Address::VirtioSerial {
            controller,
            bus,
            port: Some(port),
        });
    }
    // Smartcards sit on a CCID controller.
    if !d.smartcards.is_empty() && !d.controllers.iter().any(|c| c.ctype == "ccid") {
        add_controller(d, "ccid", 0, None);
    }
    for (slot, sc) in d.smartcards.iter_mut().enumerate() {
        if sc.info.address.is_none() {
            sc.info.address = Some(Address::Ccid {
                controller: 0,
                slot: u32::try_from(slot).unwrap_or(0),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_names() {
        assert_eq!(disk_index("hda"), Some(0));
        assert_eq!(disk_index("sdc"), Some(2));
        assert_eq!(disk_index("vdz"), Some(25));
        assert_eq!(disk_index("vdaa"), Some(26));
        assert_eq!(disk_index("vd1"), None);
    }

    #[test]
    fn controllers_stay_grouped() {
        let mk = |t: &str, i: u32| Controller {
            ctype: t.to_string(),
            index: Some(i),
            ..Default::default()
        };
        let mut l = vec![mk("usb", 0), mk("pci", 0), mk("pci", 3)];
        insert_controller(&mut l, mk("pci", 1));
        insert_controller(&mut l, mk("sata", 0));
        let got: Vec<_> = l
            .iter()
            .map(|c| format!("{}{}", c.ctype, c.index.unwrap_or(99)))
            .collect();
        assert_eq!(got, ["usb0", "pci0", "pci1", "pci3", "sata0"]);
    }
}
