//! Checks libvirt makes on a parsed definition that need no host or QEMU capabilities.
//!
//! libvirt runs these after parsing (and after its post-parse defaults); the messages are
//! libvirt's, so the conformance runner can compare them with its `.err` files. Checks that
//! depend on assigned addresses will fire once the defaults stage fills addresses in.

use super::DomainError;
use super::address::Address;
use super::devices::Disk;
use super::model::DomainDef;

fn config(msg: impl Into<String>) -> DomainError {
    DomainError::Config(format!("unsupported configuration: {}", msg.into()))
}

/// A message libvirt reports without a category prefix.
fn detail(msg: impl Into<String>) -> DomainError {
    DomainError::Xml(msg.into())
}

/// Validate a definition. Returns the first problem found, in libvirt's order of checks.
pub fn validate(def: &DomainDef) -> Result<(), DomainError> {
    validate_os(def)?;
    validate_features(def)?;
    validate_timers(def)?;
    let pseries = arch(def).starts_with("ppc64") && machine(def).starts_with("pseries");
    for disk in &def.devices.disks {
        if pseries && disk.device.as_deref() == Some("floppy") {
            return Err(config(
                "PowerPC pseries machines do not support floppy device",
            ));
        }
        validate_disk(disk)?;
    }
    check_duplicate_drive_addresses(def)?;
    super::netcheck::validate_interfaces(def)?;
    validate_controllers(def)?;
    validate_inputs(def)?;
    validate_graphics(def)?;
    validate_hostdevs(def)?;
    validate_panics(def)?;
    validate_iommu(def)?;
    validate_cpu_mode(def)?;
    Ok(())
}

/// libvirt's qemuValidateDomainDefCpu: the host's own CPU needs an accelerator (KVM, HVF);
/// TCG has no host CPU to pass through.
fn validate_cpu_mode(def: &DomainDef) -> Result<(), DomainError> {
    let Some(mode) = def.cpu.as_ref().and_then(|c| c.mode.as_deref()) else {
        return Ok(());
    };
    let accelerated = matches!(def.virt_type.as_str(), "kvm" | "hvf");
    if mode == "host-passthrough" && !accelerated {
        let host = crate::capabilities::qemu::host_arch();
        let guest = def.os.os_type.arch.as_deref().unwrap_or(host);
        return Err(config(format!(
            "CPU mode '{mode}' for {guest} {} domain on {host} host is not supported by hypervisor",
            def.virt_type
        )));
    }
    Ok(())
}

fn machine(def: &DomainDef) -> &str {
    def.os.os_type.machine.as_deref().unwrap_or("")
}

fn arch(def: &DomainDef) -> &str {
    def.os.os_type.arch.as_deref().unwrap_or("")
}

fn is_q35(def: &DomainDef) -> bool {
    let m = machine(def);
    m == "q35" || m.starts_with("pc-q35")
}

fn is_arm_virt(def: &DomainDef) -> bool {
    let m = machine(def);
    matches!(arch(def), "aarch64" | "armv7l") && (m == "virt" || m.starts_with("virt-"))
}

fn is_x86(def: &DomainDef) -> bool {
    matches!(arch(def), "x86_64" | "i686")
}

fn validate_features(def: &DomainDef) -> Result<(), DomainError> {
    let tseg = def
        .features
        .as_ref()
        .and_then(|f| f.smm.as_ref())
        .and_then(|s| s.tseg_kib);
    if tseg.is_some() && !is_q35(def) {
        return Err(config("SMM TSEG is only supported with q35 machine type"));
    }
    Ok(())
}

fn validate_timers(def: &DomainDef) -> Result<(), DomainError> {
    let Some(clock) = &def.clock else {
        return Ok(());
    };
    for t in &clock.timers {
        // These timers are paravirtual x86 clocks; other architectures have no such device.
        // Before post-parse the arch may be unknown: prepare fills it and checks again.
        if matches!(t.name.as_str(), "tsc" | "kvmclock" | "hypervclock")
            && !arch(def).is_empty()
            && !is_x86(def)
        {
            return Err(config(format!(
                "Configuring the '{}' timer is not supported for virtType={} arch={} machine={} guests",
                t.name,
                def.virt_type,
                arch(def),
                machine(def)
            )));
        }
    }
    Ok(())
}

fn validate_controllers(def: &DomainDef) -> Result<(), DomainError> {
    for c in &def.devices.controllers {
        let has_node = c
            .target
            .as_ref()
            .is_some_and(|t| t.extra.children.iter().any(|n| n.name == "node"));
        if c.ctype == "pci" && c.index == Some(0) && has_node {
            return Err(config(
                "The PCI controller with index=0 can't be associated with a NUMA node",
            ));
        }
    }
    Ok(())
}

fn validate_inputs(def: &DomainDef) -> Result<(), DomainError> {
    for i in &def.devices.inputs {
        let transitional = matches!(
            i.model.as_deref(),
            Some("virtio-transitional" | "virtio-non-transitional")
        );
        if transitional && i.itype != "passthrough" {
            return Err(config(format!(
                "virtio (non-)transitional models are not supported for input type={}",
                i.itype
            )));
        }
    }
    Ok(())
}

fn validate_graphics(def: &DomainDef) -> Result<(), DomainError> {
    let g = &def.devices.graphics;
    let egl = g.iter().any(|g| g.gtype == "egl-headless");
    if egl
        && g.iter()
            .any(|g| !matches!(g.gtype.as_str(), "vnc" | "spice" | "egl-headless"))
    {
        return Err(config(
            "graphics type 'egl-headless' is only supported with one of: 'vnc', 'spice' graphics types",
        ));
    }
    Ok(())
}

fn validate_hostdevs(def: &DomainDef) -> Result<(), DomainError> {
    for h in &def.devices.hostdevs {
        if h.info.boot.is_none() {
            continue;
        }
        match (h.htype.as_deref(), h.model.as_deref()) {
            (Some("scsi_host"), _) => {
                return Err(config(
                    "booting from assigned devices is not supported by vhost SCSI devices",
                ));
            }
            (Some("mdev"), Some(m)) if m != "vfio-pci" && m != "vfio-ccw" => {
                return Err(config(format!(
                    "booting from assigned devices is not supported by mediated devices of model {m}"
                )));
            }
            _ => {}
        }
    }
    Ok(())
}

fn validate_panics(def: &DomainDef) -> Result<(), DomainError> {
    let pseries = arch(def).starts_with("ppc64") && machine(def).starts_with("pseries");
    for p in &def.devices.panics {
        // Without a model, pSeries guests get the pseries panic device.
        let model = p
            .model
            .as_deref()
            .or(if pseries { Some("pseries") } else { None });
        if model == Some("pseries") && p.info.address.is_some() {
            return Err(config(
                "setting the panic device address is not supported for model 'pseries'",
            ));
        }
    }
    Ok(())
}

fn validate_iommu(def: &DomainDef) -> Result<(), DomainError> {
    let Some(iommu) = &def.devices.iommu else {
        return Ok(());
    };
    if iommu.model != "virtio" {
        return Ok(());
    }
    if !is_q35(def) && !is_arm_virt(def) {
        return Err(config(
            "IOMMU device: 'virtio' is only supported with Q35 and ARM Virt machines",
        ));
    }
    if !def.features.as_ref().is_some_and(|f| f.acpi) {
        return Err(config("IOMMU device: 'virtio' requires ACPI"));
    }
    match &iommu.info.address {
        None => Ok(()),
        Some(Address::Pci {
            domain,
            bus,
            slot,
            function,
            ..
        }) if *bus != 0 => Err(DomainError::Xml(format!(
            "XML error: The device at PCI address {domain:04x}:{bus:02x}:{slot:02x}.{function:x} needs to be an integrated device (bus=0)"
        ))),
        Some(Address::Pci { .. }) => Ok(()),
        Some(_) => Err(config("IOMMU device: 'virtio' needs a PCI address")),
    }
}

fn validate_os(def: &DomainDef) -> Result<(), DomainError> {
    let os = &def.os;
    let stateless = os.loader.as_ref().and_then(|l| l.stateless.as_deref());
    if os.firmware.as_deref() == Some("bios") && (stateless == Some("no") || os.nvram.is_some()) {
        return Err(detail("Only EFI firmware permits NVRAM"));
    }
    // With autoselection the descriptor decides the loader's type and whether it is secure;
    // the XML may only ask for a secure one. A bare path implies a type.
    if os.firmware.is_some()
        && let Some(l) = &os.loader
    {
        if l.ltype.is_some() || l.path.is_some() {
            return Err(detail(
                "loader attribute 'type' cannot be specified when firmware autoselection is enabled",
            ));
        }
        if l.secure.as_deref() == Some("no") {
            return Err(detail(
                "loader attribute 'secure' cannot be specified when firmware autoselection is enabled",
            ));
        }
    }
    if let Some(features) = &os.firmware_features {
        if os.firmware.is_none() {
            return Err(detail(
                "cannot use feature-based firmware autoselection when firmware autoselection is disabled",
            ));
        }
        let enabled = |name: &str| {
            features
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, e)| e.as_str())
        };
        if enabled("enrolled-keys") == Some("yes") && enabled("secure-boot") == Some("no") {
            return Err(detail(
                "firmware feature 'enrolled-keys' cannot be enabled when firmware feature 'secure-boot' is disabled",
            ));
        }
    }
    if stateless == Some("yes")
        && let Some(nv) = &os.nvram
    {
        if nv.template.is_some() {
            return Err(detail(
                "NVRAM template is not permitted when loader is stateless",
            ));
        }
        return Err(detail("NVRAM is not permitted when loader is stateless"));
    }
    Ok(())
}

/// Whether a disk target names a partition (`vdb1`), which libvirt refuses.
fn target_has_partition(dev: &str) -> bool {
    let Some(rest) = ["fd", "hd", "vd", "sd", "xvd", "ubd"]
        .iter()
        .find_map(|p| dev.strip_prefix(p))
    else {
        return false;
    };
    let letters = rest.trim_end_matches(|c: char| c.is_ascii_digit());
    !letters.is_empty() && letters.len() < rest.len()
}

fn validate_disk(disk: &Disk) -> Result<(), DomainError> {
    if target_has_partition(&disk.target.dev) {
        return Err(config(format!(
            "invalid disk target '{}', partitions can't appear in disk targets",
            disk.target.dev
        )));
    }
    // QEMU's ide-hd refuses a read-only drive ("Block node is read-only").
    let bus = disk.target.bus.as_deref().unwrap_or("");
    if disk.readonly && matches!(bus, "ide" | "sata") && disk.device.as_deref() == Some("disk") {
        return Err(config(format!("readonly {bus} disks are not supported")));
    }
    let dtype = disk.dtype.as_deref().unwrap_or("file");
    let protocol = disk.source.as_ref().and_then(|s| s.protocol.as_deref());
    if disk.device.as_deref() == Some("lun")
        && dtype != "block"
        && !(dtype == "network" && protocol == Some("iscsi"))
    {
        return Err(config(
            "disk device='lun' is only valid for block type disk source",
        ));
    }
    let auth = disk
        .auth
        .clone()
        .or_else(|| disk.source.as_ref().and_then(|s| s.auth.clone()));
    if let Some(secret) = auth.and_then(|a| a.secret) {
        match secret.stype.as_deref() {
            None => return Err(config("unknown secret type '<null>'")),
            Some(t) => {
                let expected = match protocol {
                    Some("iscsi") => Some("iscsi"),
                    Some("rbd") => Some("ceph"),
                    _ => None,
                };
                if expected.is_some_and(|e| e != t) {
                    return Err(config(format!("invalid secret type '{t}'")));
                }
            }
        }
    }
    if (disk.vendor.is_some() || disk.product.is_some())
        && disk.target.bus.as_deref() != Some("scsi")
    {
        return Err(config("Only scsi disk supports vendor and product"));
    }
    let format = disk.driver.as_ref().and_then(|d| d.dtype.as_deref());
    match format {
        Some("cow") => return Err(config("'cow' storage format is not supported")),
        Some("iso") => {
            return Err(config(
                "storage format 'iso' is not directly supported by QEMU, use 'raw' instead",
            ));
        }
        _ => {}
    }
    if disk.shareable && !disk.readonly && format.is_some_and(|f| f != "raw") {
        return Err(config(format!(
            "shared access for disk '{}' requires use of supported storage format",
            disk.target.dev
        )));
    }
    // These buses address disks by controller/bus/target/unit only.
    if let (Some(bus @ ("ide" | "fdc" | "scsi" | "sata")), Some(addr)) =
        (disk.target.bus.as_deref(), &disk.info.address)
        && !matches!(addr, Address::Drive { .. })
    {
        return Err(config(format!(
            "Invalid address type '{}' for the disk '{}' with the bus type '{}'",
            addr.type_name(),
            disk.target.dev,
            bus
        )));
    }
    let enc = disk
        .encryption
        .clone()
        .or_else(|| disk.source.as_ref().and_then(|s| s.encryption.clone()));
    if let Some(enc) = enc
        && enc.format.as_deref() == Some("luks")
        && enc
            .extra
            .children
            .iter()
            .any(|c| c.name == "cipher" || c.name == "ivgen")
    {
        return Err(config(
            "supplying <cipher> for domain disk definition is unnecessary",
        ));
    }
    Ok(())
}

fn check_duplicate_drive_addresses(def: &DomainDef) -> Result<(), DomainError> {
    let drive = |a: &Option<Address>| match a {
        Some(Address::Drive {
            controller,
            bus,
            target,
            unit,
        }) => Some((*controller, *bus, *target, *unit)),
        _ => None,
    };
    let fmt = |(c, b, t, u): (u32, u32, u32, u32)| {
        format!("controller='{c}' bus='{b}' target='{t}' unit='{u}'")
    };
    // The first disk (in definition order) whose address a later disk on the same bus reuses.
    let mut first_use = std::collections::HashMap::new();
    let mut clash: Option<usize> = None;
    for (i, d) in def.devices.disks.iter().enumerate() {
        let Some(addr) = drive(&d.info.address) else {
            continue;
        };
        match first_use.get(&(d.target.bus.as_deref(), addr)) {
            Some(&f) => clash = Some(clash.map_or(f, |c: usize| c.min(f))),
            None => {
                first_use.insert((d.target.bus.as_deref(), addr), i);
            }
        }
    }
    if let Some(i) = clash {
        let a = &def.devices.disks[i];
        if let Some(addr) = drive(&a.info.address) {
            return Err(config(format!(
                "Found duplicate drive address for disk with target name '{}' {}",
                a.target.dev,
                fmt(addr)
            )));
        }
    }
    let scsi_hostdevs: Vec<_> = def
        .devices
        .hostdevs
        .iter()
        .filter(|h| h.htype.as_deref() == Some("scsi"))
        .filter_map(|h| drive(&h.info.address))
        .collect();
    let mut first_index = std::collections::HashMap::new();
    let mut first_dup: Option<usize> = None;
    for (i, a) in scsi_hostdevs.iter().enumerate() {
        let f = *first_index.entry(*a).or_insert(i);
        if f != i {
            first_dup = Some(first_dup.map_or(f, |c| c.min(f)));
        }
    }
    if let Some(a) = first_dup.and_then(|i| scsi_hostdevs.get(i)) {
        return Err(config(format!(
            "SCSI host address {} in use by another SCSI host device",
            fmt(*a)
        )));
    }
    Ok(())
}
