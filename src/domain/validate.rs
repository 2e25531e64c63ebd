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
    for disk in &def.devices.disks {
        validate_disk(disk)?;
    }
    check_duplicate_drive_addresses(def)?;
    Ok(())
}

fn validate_os(def: &DomainDef) -> Result<(), DomainError> {
    let os = &def.os;
    let stateless = os.loader.as_ref().and_then(|l| l.stateless.as_deref());
    if os.firmware.as_deref() == Some("bios") && (stateless == Some("no") || os.nvram.is_some()) {
        return Err(detail("Only EFI firmware permits NVRAM"));
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
