//! libvirt's parse-time checks of `<devices>`, kind by kind in libvirt's order (disks,
//! controllers, filesystems, interfaces, smartcards, character devices, inputs, graphics,
//! sound, audio, video, hostdevs, watchdogs, balloon, RNG, TPM, hubs, redirdevs, panic,
//! shmem, memory, IOMMU, vsock).

use super::super::xml::XmlNode;
use super::DomainError;
use super::parse::{boolean, missing, prop, prop_required, switch, uint, unsupported, xml};
use super::vocab as v;

fn of<'a>(d: &'a XmlNode, name: &'a str) -> impl Iterator<Item = &'a XmlNode> + 'a {
    d.children.iter().filter(move |c| c.name == name)
}

pub(super) fn check(d: &XmlNode) -> Result<(), DomainError> {
    of(d, "disk").try_for_each(disk)?;
    of(d, "controller").try_for_each(controller)?;
    of(d, "filesystem").try_for_each(filesystem)?;
    of(d, "interface").try_for_each(interface)?;
    for s in of(d, "smartcard") {
        prop_required(s, "mode", v::SMARTCARD_MODES, false)?;
    }
    for kind in ["parallel", "serial", "console", "channel"] {
        of(d, kind).try_for_each(chardev)?;
    }
    of(d, "input").try_for_each(input)?;
    of(d, "graphics").try_for_each(graphics)?;
    for s in of(d, "sound") {
        prop_required(s, "model", v::SOUND_MODELS, false)?;
    }
    for a in of(d, "audio") {
        prop_required(a, "type", v::AUDIO_TYPES, false)?;
    }
    of(d, "video").try_for_each(video)?;
    of(d, "hostdev").try_for_each(hostdev)?;
    for w in of(d, "watchdog") {
        prop_required(w, "model", v::WATCHDOG_MODELS, false)?;
        prop(w, "action", v::WATCHDOG_ACTIONS, false)?;
    }
    for m in of(d, "memballoon") {
        prop_required(m, "model", v::MEMBALLOON_MODELS, false)?;
        switch(m, "autodeflate", false)?;
        switch(m, "freePageReporting", false)?;
    }
    of(d, "rng").try_for_each(rng)?;
    of(d, "tpm").try_for_each(tpm)?;
    for h in of(d, "hub") {
        match h.attr("type") {
            None => return Err(internal("missing hub device type")),
            Some(t) if !v::HUB_TYPES.contains(&t) => {
                return Err(unsupported(format!("unknown hub device type '{t}'")));
            }
            _ => {}
        }
    }
    for r in of(d, "redirdev") {
        if let Some(b) = r.attr("bus")
            && !v::REDIRDEV_BUSES.contains(&b)
        {
            return Err(unsupported(format!("unknown redirdev bus '{b}'")));
        }
    }
    for p in of(d, "panic") {
        if let Some(m) = p.attr("model")
            && !v::PANIC_MODELS.contains(&m)
        {
            return Err(unsupported(format!("unknown panic model '{m}'")));
        }
    }
    for s in of(d, "shmem") {
        if let Some(m) = s.child("model") {
            prop(m, "type", v::SHMEM_MODELS, false)?;
        }
    }
    for m in of(d, "memory") {
        prop_required(m, "model", v::MEMORY_MODELS, true)?;
        prop(m, "access", v::MEMORY_ACCESS, true)?;
        boolean(m, "discard")?;
    }
    for i in of(d, "iommu") {
        prop_required(i, "model", v::IOMMU_MODELS, false)?;
    }
    for s in of(d, "vsock") {
        prop(s, "model", v::VSOCK_MODELS, false)?;
    }
    Ok(())
}

/// `internal error: ...` (libvirt's VIR_ERR_INTERNAL_ERROR).
fn internal(msg: &str) -> DomainError {
    DomainError::Xml(format!("internal error: {msg}"))
}

/// libvirt: virDomainDiskDefParseXML and virDomainDiskDefDriverParseXML.
fn disk(d: &XmlNode) -> Result<(), DomainError> {
    prop(d, "type", v::STORAGE_TYPES, true)?;
    prop(d, "device", v::DISK_DEVICES, false)?;
    prop(d, "model", v::DISK_MODELS, false)?;
    prop(d, "snapshot", v::SNAPSHOT_LOCATIONS, true)?;
    boolean(d, "rawio")?;
    prop(d, "sgio", v::SGIO_MODES, true)?;
    if let Some(s) = d.child("source") {
        prop(s, "startupPolicy", v::STARTUP_POLICIES, true)?;
    }
    if let Some(t) = d.child("target") {
        prop(t, "bus", v::DISK_BUSES, true)?;
        prop(t, "tray", v::DISK_TRAYS, false)?;
        switch(t, "removable", false)?;
        uint(t, "rotation_rate", false, false)?;
    }
    if let Some(drv) = d.child("driver") {
        prop(drv, "cache", v::DISK_CACHES, false)?;
        prop(drv, "error_policy", v::DISK_ERROR_POLICIES, true)?;
        if prop(drv, "rerror_policy", v::DISK_ERROR_POLICIES, true)?.is_some()
            && drv.attr("rerror_policy") == Some("enospace")
        {
            return Err(unsupported("Invalid disk read error policy: 'enospace'"));
        }
        prop(drv, "io", v::DISK_IOS, true)?;
        switch(drv, "ioeventfd", false)?;
        switch(drv, "event_idx", false)?;
        switch(drv, "copy_on_read", false)?;
        prop(drv, "discard", v::DISK_DISCARDS, true)?;
        uint(drv, "iothread", false, true)?;
        prop(drv, "detect_zeroes", v::DISK_DETECT_ZEROES, true)?;
        uint(drv, "queues", false, false)?;
    }
    Ok(())
}

/// libvirt: virDomainControllerDefParseXML. The model's vocabulary depends on the type.
fn controller(c: &XmlNode) -> Result<(), DomainError> {
    let ctype =
        prop(c, "type", v::CONTROLLER_TYPES, false)?.map_or("ide", |i| v::CONTROLLER_TYPES[i]);
    if let Some(model) = c.attr("model") {
        let models: &[&str] = match ctype {
            "scsi" => v::CONTROLLER_MODELS_SCSI,
            "usb" => v::CONTROLLER_MODELS_USB,
            "pci" => v::CONTROLLER_MODELS_PCI,
            "ide" => v::CONTROLLER_MODELS_IDE,
            "virtio-serial" => v::CONTROLLER_MODELS_VIRTIO_SERIAL,
            _ => &[],
        };
        if !models.contains(&model) {
            return Err(unsupported(format!("Unknown model type '{model}'")));
        }
    }
    if let Some(idx) = c.attr("index")
        && idx.trim().parse::<i32>().map_or(true, |i| i < 0)
    {
        return Err(xml(format!(
            "Invalid value for attribute 'index' in element 'controller': '{idx}'. Expected non-negative integer value"
        )));
    }
    if let Some(drv) = c.child("driver") {
        uint(drv, "queues", false, false)?;
        uint(drv, "cmd_per_lun", false, false)?;
        uint(drv, "max_sectors", false, false)?;
        switch(drv, "ioeventfd", false)?;
        uint(drv, "iothread", false, false)?;
    }
    let models: Vec<&XmlNode> = of(c, "model").collect();
    if models.len() > 1 {
        return Err(xml(
            "Multiple <model> elements in controller definition not allowed",
        ));
    }
    if ctype == "pci"
        && let Some(m) = models.first()
    {
        prop(m, "name", v::PCI_MODEL_NAMES, false)?;
    }
    if of(c, "target").count() > 1 {
        return Err(xml(
            "Multiple <target> elements in controller definition not allowed",
        ));
    }
    Ok(())
}

/// libvirt: virDomainFSDefParseXML, and virDomainFSDefValidate's target.
fn filesystem(f: &XmlNode) -> Result<(), DomainError> {
    prop(f, "type", v::FS_TYPES, false)?;
    prop(f, "accessmode", v::FS_ACCESS_MODES, false)?;
    prop(f, "model", v::FS_MODELS, true)?;
    if let Some(drv) = f.child("driver") {
        prop(drv, "type", v::FS_DRIVERS, true)?;
    }
    // The source attribute each type reads; a share may instead name the socket of a
    // virtiofsd started outside (`<source socket=>`). RAM and volume shares have neither.
    let fstype = f.attr("type").unwrap_or("mount");
    let src = f.child("source");
    let attr = |k: &str| src.and_then(|s| s.attr(k));
    let source = match fstype {
        "mount" | "bind" => attr("dir"),
        "file" => attr("file"),
        "block" => attr("dev"),
        "template" => attr("name"),
        _ => None,
    };
    let sock = attr("socket");
    let target = f.child("target").and_then(|t| t.attr("dir"));
    if source.is_none() && sock.is_none() && !matches!(fstype, "ram" | "volume") {
        // libvirt: VIR_ERR_NO_SOURCE, naming the target when there is one.
        return Err(DomainError::Xml(match target {
            Some(t) => format!("missing source information for device {t}"),
            None => "missing source information".into(),
        }));
    }
    if target.is_none() {
        // libvirt: VIR_ERR_NO_TARGET, naming the source path, else the socket.
        return Err(DomainError::Xml(match source.or(sock) {
            Some(s) => format!("missing target information for device {s}"),
            None => "missing target information".into(),
        }));
    }
    Ok(())
}

/// libvirt: virDomainNetDefParseXML. The model is free text outside the known names, but
/// only of letters, digits, `_` and `-`.
fn interface(n: &XmlNode) -> Result<(), DomainError> {
    prop(n, "type", v::NET_TYPES, false)?;
    if let Some(m) = n.child("model").and_then(|m| m.attr("type"))
        && m.chars().any(|c| !v::NET_MODEL_CHARS.contains(c))
    {
        return Err(DomainError::InvalidArg(
            "invalid argument: Model name contains invalid characters".to_string(),
        ));
    }
    // The driver's name and txmode are virtio's; a hostdev interface's driver names the
    // device assignment backend instead.
    let virtio = n
        .child("model")
        .and_then(|m| m.attr("type"))
        .is_some_and(|m| {
            ["virtio", "virtio-transitional", "virtio-non-transitional"]
                .iter()
                .any(|v| v.eq_ignore_ascii_case(m))
        });
    if n.attr("type") != Some("hostdev")
        && virtio
        && let Some(drv) = n.child("driver")
    {
        prop(drv, "name", v::NET_DRIVERS, true)?;
        prop(drv, "txmode", v::NET_TXMODES, true)?;
    }
    if let Some(b) = n.child("backend") {
        prop(b, "type", v::NET_BACKENDS, false)?;
    }
    Ok(())
}

/// libvirt: virDomainChrDefParseXML and virDomainChrDefParseTargetXML.
fn chardev(c: &XmlNode) -> Result<(), DomainError> {
    if let Some(t) = c.attr("type")
        && !v::CHR_TYPES.contains(&t)
    {
        return Err(unsupported(format!(
            "unknown type presented to host for character device: {t}"
        )));
    }
    let Some(target) = c.child("target") else {
        return Ok(());
    };
    let types: &[&str] = match c.name.as_str() {
        "serial" => v::SERIAL_TARGETS,
        "console" => v::CONSOLE_TARGETS,
        "channel" => v::CHANNEL_TARGETS,
        _ => return Ok(()),
    };
    if let Some(t) = target.attr("type")
        && !types.contains(&t)
    {
        return Err(unsupported(format!(
            "unknown target type '{t}' specified for character device"
        )));
    }
    if c.name == "serial"
        && let Some(m) = target.child("model").and_then(|m| m.attr("name"))
        && !v::SERIAL_TARGET_MODELS.contains(&m)
    {
        return Err(unsupported(format!(
            "unknown target model '{m}' specified for character device"
        )));
    }
    Ok(())
}

/// libvirt: virDomainInputDefParseXML.
fn input(i: &XmlNode) -> Result<(), DomainError> {
    let Some(t) = i.attr("type") else {
        return Err(internal("missing input device type"));
    };
    if !v::INPUT_TYPES.contains(&t) {
        return Err(unsupported(format!("unknown input device type '{t}'")));
    }
    if let Some(m) = i.attr("model")
        && !v::INPUT_MODELS[1..].contains(&m)
    {
        return Err(unsupported(format!("unknown input model '{m}'")));
    }
    if let Some(b) = i.attr("bus")
        && !v::INPUT_BUSES[1..].contains(&b)
    {
        return Err(unsupported(format!("unknown input bus type '{b}'")));
    }
    Ok(())
}

/// libvirt: virDomainGraphicsDefParseXML and the per-type parsers' port numbers.
fn graphics(g: &XmlNode) -> Result<(), DomainError> {
    let t = v::GRAPHICS_TYPES[prop_required(g, "type", v::GRAPHICS_TYPES, false)?];
    for l in of(g, "listen") {
        prop_required(l, "type", v::GRAPHICS_LISTEN_TYPES, false)?;
    }
    let int = |attr: &str, what: &str| -> Result<(), DomainError> {
        match g.attr(attr) {
            Some(p) if p.parse::<i32>().is_err() => {
                Err(internal(&format!("cannot parse {what} {p}")))
            }
            _ => Ok(()),
        }
    };
    match t {
        "vnc" => int("port", "vnc port")?,
        "rdp" => int("port", "rdp port")?,
        "spice" => {
            int("port", "spice port")?;
            int("tlsPort", "spice tlsPort")?;
        }
        _ => {}
    }
    Ok(())
}

/// libvirt: virDomainVideoDefParseXML and virDomainVideoModelDefParseXML.
fn video(vd: &XmlNode) -> Result<(), DomainError> {
    if let Some(m) = vd.child("model") {
        prop(m, "type", v::VIDEO_MODELS, false)?;
    }
    if let Some(drv) = vd.child("driver") {
        prop(drv, "name", v::VIDEO_BACKENDS, true)?;
        prop(drv, "vgaconf", v::VIDEO_VGACONFS, false)?;
    }
    Ok(())
}

/// libvirt: virDomainHostdevDefParseXML.
fn hostdev(h: &XmlNode) -> Result<(), DomainError> {
    let mode = prop(h, "mode", v::HOSTDEV_MODES, false)?.unwrap_or(0);
    let types = if mode == 0 {
        v::HOSTDEV_SUBSYS_TYPES
    } else {
        v::HOSTDEV_CAPS_TYPES
    };
    if h.attr("type").is_none() {
        return Err(missing(h, "type"));
    }
    prop(h, "type", types, false)?;
    Ok(())
}

/// libvirt: virDomainRNGDefParseXML.
fn rng(r: &XmlNode) -> Result<(), DomainError> {
    prop_required(r, "model", v::RNG_MODELS, false)?;
    let backends: Vec<&XmlNode> = of(r, "backend").collect();
    if backends.len() != 1 {
        return Err(xml("only one RNG backend is supported"));
    }
    prop_required(backends[0], "model", v::RNG_BACKENDS, false)?;
    Ok(())
}

/// libvirt: virDomainTPMDefParseXML.
fn tpm(t: &XmlNode) -> Result<(), DomainError> {
    prop(t, "model", v::TPM_MODELS, false)?;
    let backends: Vec<&XmlNode> = of(t, "backend").collect();
    let Some(b) = backends.first() else {
        return Err(xml("missing TPM device backend"));
    };
    prop_required(b, "type", v::TPM_BACKENDS, false)?;
    prop(b, "version", v::TPM_VERSIONS, false)?;
    Ok(())
}
