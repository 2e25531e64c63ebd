//! Per-device checks that need no capabilities (controllers, inputs, graphics, hostdevs,
//! panic devices, IOMMU).

use super::{DomainError, arch, config, is_arm_virt, is_q35, machine};
use crate::domain::address::Address;
use crate::domain::model::DomainDef;

pub(super) fn validate_controllers(def: &DomainDef) -> Result<(), DomainError> {
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

pub(super) fn validate_inputs(def: &DomainDef) -> Result<(), DomainError> {
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

pub(super) fn validate_graphics(def: &DomainDef) -> Result<(), DomainError> {
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

pub(super) fn validate_hostdevs(def: &DomainDef) -> Result<(), DomainError> {
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

pub(super) fn validate_panics(def: &DomainDef) -> Result<(), DomainError> {
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

pub(super) fn validate_iommu(def: &DomainDef) -> Result<(), DomainError> {
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
