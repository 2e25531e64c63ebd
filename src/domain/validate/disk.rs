//! Disk checks: libvirt's virDomainDiskDefValidate, qemuValidateDomainDeviceDefDisk and
//! the duplicate drive address check.

use super::{DomainError, config};
use crate::domain::address::Address;
use crate::domain::devices::Disk;
use crate::domain::model::DomainDef;

/// Whether a disk target names a partition (`vdb1`), which libvirt refuses.
pub(super) fn target_has_partition(dev: &str) -> bool {
    let Some(rest) = ["fd", "hd", "vd", "sd", "xvd", "ubd"]
        .iter()
        .find_map(|p| dev.strip_prefix(p))
    else {
        return false;
    };
    let letters = rest.trim_end_matches(|c: char| c.is_ascii_digit());
    !letters.is_empty() && letters.len() < rest.len()
}

pub(super) fn validate_disk(disk: &Disk) -> Result<(), DomainError> {
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

pub(super) fn check_duplicate_drive_addresses(def: &DomainDef) -> Result<(), DomainError> {
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
