//! Device aliases, the names devices carry in the live XML and as QEMU `id`s. libvirt assigns
//! them when a domain starts, not when it is defined, so this is separate from
//! [`super::prepare`]: call it on a prepared definition before building a command line.
//! Aliases already present (user aliases, `ua-*`) are kept.

use crate::domain::address::{Address, DeviceInfo};
use crate::domain::model::DomainDef;

use super::devices::disk_index;

fn set(info: &mut DeviceInfo, alias: impl FnOnce() -> String) {
    if info.alias.is_none() {
        info.alias = Some(alias());
    }
}

/// Fill in every missing device alias the way libvirt's QEMU driver names devices.
pub fn assign_aliases(def: &mut DomainDef) {
    let machine = def.os.os_type.machine.clone().unwrap_or_default();
    let q35 = machine == "q35" || machine.starts_with("pc-q35");
    let d = &mut def.devices;

    let lsi: Vec<u32> = d
        .controllers
        .iter()
        .filter(|c| c.ctype == "scsi" && c.model.as_deref() == Some("lsilogic"))
        .filter_map(|c| c.index)
        .collect();
    for disk in &mut d.disks {
        let bus = disk.target.bus.clone().unwrap_or_default();
        let addr = disk.info.address.clone();
        set(&mut disk.info, || match (bus.as_str(), addr) {
            (
                b @ ("ide" | "sata" | "fdc" | "scsi"),
                Some(Address::Drive {
                    controller,
                    bus,
                    target,
                    unit,
                }),
            ) => {
                // SCSI disks name their target too, except on the LSI HBA, whose disks
                // are addressed like IDE ones.
                if b == "scsi" && !lsi.contains(&controller) {
                    format!("scsi{controller}-{bus}-{target}-{unit}")
                } else {
                    format!("{b}{controller}-{bus}-{unit}")
                }
            }
            (b, _) => {
                let idx = disk_index(&disk.target.dev).unwrap_or(0);
                let b = if b.is_empty() { "disk" } else { b };
                format!("{b}-disk{idx}")
            }
        });
    }
    for c in &mut d.controllers {
        let index = c.index.unwrap_or(0);
        let name = match (c.ctype.as_str(), c.model.as_deref()) {
            ("pci", Some("pcie-root")) => "pcie.0".to_string(),
            ("pci", _) => format!("pci.{index}"),
            ("ide", _) if index == 0 && !q35 => "ide".to_string(),
            ("sata", _) if index == 0 && q35 => "ide".to_string(),
            ("usb", _) if index == 0 => "usb".to_string(),
            (t, _) => format!("{t}{index}"),
        };
        set(&mut c.info, || name);
    }
    // Network interfaces of type hostdev count among the host devices. Each new one gets the
    // number after the highest `hostdevN` in use; a device that keeps its own alias uses up
    // none (libvirt: qemuAssignDeviceHostdevAlias with idx -1).
    let taken = d
        .interfaces
        .iter()
        .map(|n| &n.info)
        .chain(d.hostdevs.iter().map(|h| &h.info))
        .filter_map(|i| {
            i.alias
                .as_deref()?
                .strip_prefix("hostdev")?
                .parse::<usize>()
                .ok()
        })
        .max();
    let mut hostdev_n = taken.map_or(0, |n| n + 1);
    let mut next_hostdev = |info: &mut DeviceInfo| {
        if info.alias.is_none() {
            info.alias = Some(format!("hostdev{hostdev_n}"));
            hostdev_n += 1;
        }
    };
    for (i, n) in d.interfaces.iter_mut().enumerate() {
        if n.itype == "hostdev" {
            next_hostdev(&mut n.info);
        } else {
            set(&mut n.info, || format!("net{i}"));
        }
    }
    for h in &mut d.hostdevs {
        next_hostdev(&mut h.info);
    }
    macro_rules! numbered {
        ($list:expr, $prefix:expr) => {
            for (i, x) in $list.iter_mut().enumerate() {
                set(&mut x.info, || format!("{}{i}", $prefix));
            }
        };
    }
    numbered!(d.filesystems, "fs");
    numbered!(d.sounds, "sound");
    numbered!(d.videos, "video");
    numbered!(d.redirdevs, "redir");
    numbered!(d.watchdogs, "watchdog");
    numbered!(d.rngs, "rng");
    numbered!(d.tpms, "tpm");
    numbered!(d.inputs, "input");
    numbered!(d.serials, "serial");
    numbered!(d.parallels, "parallel");
    numbered!(d.channels, "channel");
    numbered!(d.smartcards, "smartcard");
    numbered!(d.hubs, "hub");
    numbered!(d.shmems, "shmem");
    numbered!(d.cryptos, "crypto");
    for (i, c) in d.consoles.iter_mut().enumerate() {
        // Console 0 of serial type is serial 0 seen from another angle.
        let serial = i == 0 && c.target.as_ref().and_then(|t| t.ttype.as_deref()) == Some("serial");
        set(&mut c.info, || {
            if serial {
                "serial0".to_string()
            } else {
                format!("console{i}")
            }
        });
    }
    // libvirt: qemuAssignDeviceMemoryAlias. A DIMM-addressed module is named after its slot,
    // the others count within their model.
    let mut counts: std::collections::HashMap<&str, u32> = Default::default();
    for m in d.memories.iter_mut() {
        let prefix = match m.model.as_deref() {
            Some("nvdimm") => "nvdimm",
            Some("virtio-pmem") => "virtiopmem",
            Some("virtio-mem") => "virtiomem",
            Some("sgx-epc") => "epc",
            _ => "dimm",
        };
        let n = counts.entry(prefix).or_insert(0);
        let idx = match &m.info.address {
            Some(Address::Dimm {
                slot: Some(slot), ..
            }) => *slot,
            _ => *n,
        };
        *n += 1;
        set(&mut m.info, || format!("{prefix}{idx}"));
    }
    if let Some(b) = d.memballoon.as_mut() {
        set(&mut b.info, || "balloon0".to_string());
    }
    if let Some(io) = d.iommu.as_mut() {
        set(&mut io.info, || "iommu0".to_string());
    }
    if let Some(v) = d.vsock.as_mut() {
        set(&mut v.info, || "vsock0".to_string());
    }
}
