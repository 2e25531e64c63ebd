//! Reproducing one case of libvirt's `qemuxml2argvtest`: the per-case configuration it toggles
//! and the one-line error format, so the conformance runner and the tests share them.

use std::path::Path;

use super::{LaunchContext, build};
use crate::capabilities::qemu::QemuCaps;

/// The harness context for case `name` (the test name, not the domain name), with the
/// `qemu.conf` overrides libvirt's test applies around that case (CONFORMANCE §2.3).
pub fn case_context(name: &str, def: &crate::domain::DomainDef) -> LaunchContext {
    let mut ctx = LaunchContext::libvirt_test_harness(def);
    let c = &mut ctx.conf;
    match name {
        "audio-default-sdl" => {
            c.audio_driver = Some("sdl".into());
            c.sdl_audio_driver = Some("esd".into());
        }
        "audio-default-vnc" => {
            c.audio_driver = Some("alsa".into());
            c.vnc_allow_host_audio = true;
        }
        "audio-default-nographics" => {
            c.audio_driver = Some("alsa".into());
            c.nogfx_allow_host_audio = true;
        }
        "graphics-vnc-auto-socket-cfg" => c.vnc_auto_unix_socket = true,
        "graphics-vnc-sasl" => {
            c.vnc_sasl = true;
            c.sasl_conf_dir = Some("/root/.sasl2".into());
        }
        "graphics-vnc-tls" | "graphics-vnc-tls-secret" => {
            c.vnc_sasl = true;
            c.sasl_conf_dir = Some("/root/.sasl2".into());
            c.vnc_tls = true;
            c.vnc_tls_x509_verify = true;
            if name == "graphics-vnc-tls-secret" {
                c.vnc_tls_x509_secret_uuid = Some("6fd3f62d-9fe7-4a4e-a869-7acd6376d8ea".into());
            }
        }
        "graphics-spice-sasl" => {
            c.spice_sasl = true;
            c.sasl_conf_dir = Some("/root/.sasl2".into());
        }
        "graphics-spice-auto-socket-cfg" => c.spice_auto_unix_socket = true,
        _ if name.starts_with("serial-tcp-tlsx509-chardev") => {
            c.chardev_tls = true;
            if name.contains("verify") {
                c.chardev_tls_x509_verify = true;
            }
            if name.contains("secret") {
                c.chardev_tls_x509_secret_uuid =
                    Some("6fd3f62d-9fe7-4a4e-a869-7acd6376d8ea".into());
            }
        }
        _ => {}
    }
    ctx
}

/// Run one case: parse `xml`, build the command and render it. Returns the file extension
/// (`args` or `err`) and the body libvirt's test would compare against.
pub fn run_case(name: &str, xml: &str, caps: &QemuCaps) -> (&'static str, String) {
    let mut def = match crate::domain::parse(xml) {
        Ok(d) => d,
        Err(e) => return ("err", format!("{e}\n")),
    };
    fallback_prepare(&mut def, caps);
    let ctx = case_context(name, &def);
    match build(&def, caps, &ctx) {
        Ok(cmd) => ("args", cmd.to_args_file()),
        Err(e) => ("err", format!("{e}\n")),
    }
}

/// The input for case `name`: libvirt's prepared document in `prepared` when present (defaults
/// and addresses already applied), else the plain input.
pub fn case_input(
    name: &str,
    arch: &str,
    input: &Path,
    prepared: Option<&Path>,
) -> std::io::Result<String> {
    if let Some(p) = prepared {
        let f = p.join(format!("{name}.{arch}-latest.xml"));
        if f.exists() {
            return std::fs::read_to_string(f);
        }
    }
    std::fs::read_to_string(input.join(format!("{name}.xml")))
}

/// Stand-in for the domain layer's post-parse stage (being written separately) for inputs that
/// have no prepared document: the implicit devices and addresses that simple i440fx
/// definitions need. Only fills what is missing; anything prepared is left alone.
pub fn fallback_prepare(def: &mut crate::domain::DomainDef, caps: &QemuCaps) {
    use crate::domain::Address;
    use crate::domain::devices::{Audio, Controller, Memballoon};

    if def.os.os_type.machine.is_none() {
        def.os.os_type.machine = caps
            .primary_machines()
            .iter()
            .find(|m| m.default)
            .map(|m| m.alias.clone().unwrap_or(m.name.clone()));
    }
    let machine = def.os.os_type.machine.clone().unwrap_or_default();
    let i440fx = machine == "pc" || machine.starts_with("pc-i440fx") || machine.starts_with("pc-");
    if !i440fx || machine.contains("q35") {
        return;
    }
    let pci = |slot: u32, function: u32| Address::Pci {
        domain: 0,
        bus: 0,
        slot,
        function,
        multifunction: None,
        zpci: None,
    };
    let d = &mut def.devices;
    if !d.controllers.iter().any(|c| c.ctype == "usb") {
        d.controllers.push(Controller {
            ctype: "usb".into(),
            index: Some(0),
            model: Some("piix3-uhci".into()),
            ..Default::default()
        });
    }
    for c in d.controllers.iter_mut() {
        if c.ctype == "usb"
            && c.index.unwrap_or(0) == 0
            && matches!(c.model.as_deref(), None | Some("piix3-uhci"))
            && c.info.address.is_none()
        {
            c.info.address = Some(pci(1, 2));
        }
    }
    for disk in d.disks.iter_mut() {
        if disk.info.address.is_some() {
            continue;
        }
        let Some(idx) = super::devices::disk_index(&disk.target.dev) else {
            continue;
        };
        disk.info.address = match disk.target.bus.as_deref().unwrap_or("ide") {
            "ide" => Some(Address::Drive {
                controller: idx / 4,
                bus: (idx % 4) / 2,
                target: 0,
                unit: idx % 2,
            }),
            "fdc" => Some(Address::Drive {
                controller: 0,
                bus: 0,
                target: 0,
                unit: idx,
            }),
            "scsi" => Some(Address::Drive {
                controller: idx / 7,
                bus: 0,
                target: 0,
                unit: idx % 7,
            }),
            "sata" => Some(Address::Drive {
                controller: idx / 6,
                bus: 0,
                target: 0,
                unit: idx % 6,
            }),
            _ => None,
        };
    }
    if d.audios.is_empty() {
        d.audios.push(Audio {
            id: Some(1),
            atype: "none".into(),
            ..Default::default()
        });
    }
    if d.memballoon.is_none() {
        d.memballoon = Some(Memballoon {
            model: Some("virtio".into()),
            ..Default::default()
        });
    }
    // PCI slots on pci.0: 0 and 1 are the host bridge and PIIX3, 2 the primary video.
    let mut used: Vec<u32> = vec![0, 1];
    let mut note = |a: &Option<Address>| {
        if let Some(Address::Pci { bus: 0, slot, .. }) = a {
            used.push(*slot);
        }
    };
    d.disks.iter().for_each(|x| note(&x.info.address));
    d.controllers.iter().for_each(|x| note(&x.info.address));
    d.interfaces.iter().for_each(|x| note(&x.info.address));
    d.videos.iter().for_each(|x| note(&x.info.address));
    d.sounds.iter().for_each(|x| note(&x.info.address));
    d.hostdevs.iter().for_each(|x| note(&x.info.address));
    d.rngs.iter().for_each(|x| note(&x.info.address));
    d.filesystems.iter().for_each(|x| note(&x.info.address));
    d.watchdogs.iter().for_each(|x| note(&x.info.address));
    if let Some(b) = &d.memballoon {
        note(&b.info.address);
    }
    if let Some(v) = d.videos.first_mut()
        && v.info.address.is_none()
        && v.model.as_ref().is_some_and(|m| m.vtype != "none")
        && !used.contains(&2)
    {
        v.info.address = Some(pci(2, 0));
        used.push(2);
    }
    if !d.videos.is_empty() && !used.contains(&2) {
        used.push(2);
    }
    let mut next = move || {
        let s = (2..32u32).find(|s| !used.contains(s))?;
        used.push(s);
        Some(pci(s, 0))
    };
    let needs = |a: &Option<Address>| a.is_none();
    for x in d.filesystems.iter_mut() {
        if needs(&x.info.address) {
            x.info.address = next();
        }
    }
    for x in d.interfaces.iter_mut() {
        if needs(&x.info.address) && x.itype != "hostdev" {
            x.info.address = next();
        }
    }
    for x in d.sounds.iter_mut() {
        if needs(&x.info.address) && !matches!(x.model.as_str(), "sb16" | "pcspk" | "usb") {
            x.info.address = next();
        }
    }
    for x in d.controllers.iter_mut() {
        let wants = match x.ctype.as_str() {
            "usb" => x.model.as_deref() != Some("none"),
            "scsi" | "virtio-serial" | "sata" => true,
            _ => false,
        };
        if wants && needs(&x.info.address) {
            x.info.address = next();
        }
    }
    for x in d.disks.iter_mut() {
        if x.target.bus.as_deref() == Some("virtio") && needs(&x.info.address) {
            x.info.address = next();
        }
    }
    if let Some(b) = d.memballoon.as_mut()
        && b.model.as_deref() == Some("virtio")
        && needs(&b.info.address)
    {
        b.info.address = next();
    }
    for x in d.rngs.iter_mut() {
        if needs(&x.info.address) {
            x.info.address = next();
        }
    }
    for x in d.watchdogs.iter_mut() {
        if x.model.as_deref() == Some("i6300esb") && needs(&x.info.address) {
            x.info.address = next();
        }
    }
    for x in d.videos.iter_mut().skip(1) {
        if needs(&x.info.address) {
            x.info.address = next();
        }
    }
}
