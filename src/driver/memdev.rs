//! Updating a `<memory>` device (`update-device` with a memory device, and so
//! `update-memory-device`): a virtio-mem device's requested size, in the config and in the
//! running guest through QOM (libvirt: qemuDomainUpdateDeviceConfig's memory case,
//! qemuDomainChangeMemoryLive, qemuDomainChangeMemoryLiveValidateChange,
//! virDomainMemoryFindByDeviceInfo, virDomainMemoryDefValidate's requested-size rules).

use serde_json::json;

use super::DriverError;
use super::domain::Domain;
use super::hotplug::{AFFECT_CONFIG, AFFECT_LIVE, check_flags};
use crate::domain::devices::{Devices, MemoryDevice};
use crate::domain::xml::{XmlNode, parse_document};

/// Whether `xml` is a `<memory>` device element.
pub(crate) fn is_memory_xml(xml: &str) -> bool {
    let t = xml.trim_start();
    let t = match t.strip_prefix("<?xml") {
        Some(r) => r.split_once("?>").map_or(t, |(_, b)| b.trim_start()),
        None => t,
    };
    t.strip_prefix("<memory")
        .is_some_and(|r| r.starts_with(|c: char| c.is_whitespace() || c == '>' || c == '/'))
}

fn parse_memory(xml: &str) -> Result<MemoryDevice, DriverError> {
    let root = parse_document(xml)?;
    let wrapped = XmlNode {
        name: "devices".into(),
        children: vec![root],
        ..Default::default()
    };
    let mut d = Devices::parse(&wrapped)?;
    let m = d
        .memories
        .pop()
        .ok_or_else(|| DriverError::Internal("not a memory device".into()))?;
    validate(&m)?;
    Ok(m)
}

/// libvirt: virDomainMemoryDefValidate's rules on `<requested>`.
fn validate(m: &MemoryDevice) -> Result<(), DriverError> {
    let Some(t) = &m.target else {
        return Ok(());
    };
    let Some(req) = t.requested_kib else {
        return Ok(());
    };
    if m.model.as_deref() != Some("virtio-mem") {
        return Err(DriverError::Unsupported(
            "requested size is supported only for virtio-mem memory devices".into(),
        ));
    }
    if let Some(size) = t.size_kib
        && req > size
    {
        return Err(DriverError::Unsupported(
            "requested size must be smaller than or equal to @size".into(),
        ));
    }
    if let Some(block) = t.block_kib
        && block > 0
        && req % block != 0
    {
        return Err(DriverError::Unsupported(
            "requested size must be an integer multiple of block size".into(),
        ));
    }
    Ok(())
}

/// The device of `mems` that `want` is (libvirt: virDomainMemoryFindByDeviceInfo, which
/// compares the device addresses).
fn find(mems: &[MemoryDevice], want: &MemoryDevice) -> Result<usize, DriverError> {
    mems.iter()
        .position(|m| {
            m.info.address == want.info.address
                && (want.info.alias.is_none() || m.info.alias == want.info.alias)
        })
        .ok_or_else(|| DriverError::InvalidArg("memory not found".into()))
}

/// Whether `new` differs from `old` only in what may change: the requested size (libvirt:
/// virDomainMemoryDefCheckABIStability, through virDomainDefCompatibleDevice).
fn only_requested_differs(old: &MemoryDevice, new: &MemoryDevice) -> bool {
    let strip = |m: &MemoryDevice| {
        let mut m = m.clone();
        if let Some(t) = &mut m.target {
            t.requested_kib = None;
            t.current_kib = None;
        }
        m.info.alias = None;
        m
    };
    strip(old) == strip(new)
}

impl Domain<'_> {
    /// `virDomainUpdateDeviceFlags` for a `<memory>` device: its new requested size (a
    /// virtio-mem device's) in the config and/or the running guest.
    pub(crate) fn update_memory_device(&self, xml: &str, flags: u32) -> Result<(), DriverError> {
        check_flags(
            flags,
            AFFECT_LIVE | AFFECT_CONFIG,
            "qemuDomainUpdateDeviceFlags",
        )?;
        let new = parse_memory(xml)?;
        let impact = self.impact(flags)?;
        self.modify(
            impact,
            |def| {
                let i = find(&def.devices.memories, &new)?;
                if !only_requested_differs(&def.devices.memories[i], &new) {
                    return Err(DriverError::Unsupported(
                        "Target memory device can change only its requested size".into(),
                    ));
                }
                let t = def.devices.memories[i]
                    .target
                    .get_or_insert_with(Default::default);
                t.requested_kib = new.target.as_ref().and_then(|t| t.requested_kib);
                Ok(())
            },
            |lg| {
                let i = find(&lg.def.devices.memories, &new)?;
                let old = &lg.def.devices.memories[i];
                // libvirt: qemuDomainChangeMemoryLiveValidateChange.
                if old.model.as_deref() != Some("virtio-mem") {
                    return Err(DriverError::OperationUnsupported(format!(
                        "cannot modify memory of model '{}'",
                        old.model.as_deref().unwrap_or("dimm")
                    )));
                }
                if !only_requested_differs(old, &new) {
                    return Err(DriverError::OperationUnsupported(
                        "cannot modify memory device other than its requested size".into(),
                    ));
                }
                let Some(alias) = old.info.alias.clone() else {
                    return Err(DriverError::Internal("memory device has no alias".into()));
                };
                let req = new
                    .target
                    .as_ref()
                    .and_then(|t| t.requested_kib)
                    .unwrap_or(0);
                super::hotplug::qmp(
                    &mut lg.guest,
                    "qom-set",
                    Some(json!({
                        "path": format!("/machine/peripheral/{alias}"),
                        "property": "requested-size",
                        "value": req * 1024,
                    })),
                )?;
                let t = lg.def.devices.memories[i]
                    .target
                    .get_or_insert_with(Default::default);
                t.requested_kib = Some(req);
                Ok(())
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VMEM: &str = "<memory model='virtio-mem'><target><size unit='KiB'>1048576</size>\
                        <node>0</node><block unit='KiB'>2048</block>\
                        <requested unit='KiB'>REQ</requested></target>\
                        <address type='pci' domain='0x0000' bus='0x00' slot='0x05' function='0x0'/></memory>";

    #[test]
    fn memory_elements() {
        assert!(is_memory_xml("<memory model='virtio-mem'/>"));
        assert!(is_memory_xml("<?xml version='1.0'?>\n<memory>"));
        assert!(!is_memory_xml("<memoryBacking/>"));
        assert!(!is_memory_xml("<disk/>"));
    }

    #[test]
    fn requested_size_rules() {
        assert!(parse_memory(&VMEM.replace("REQ", "4096")).is_ok());
        let e = parse_memory(&VMEM.replace("REQ", "4097")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "unsupported configuration: requested size must be an integer multiple of block size"
        );
        let e = parse_memory(&VMEM.replace("REQ", "2097152")).unwrap_err();
        assert!(e.to_string().ends_with("smaller than or equal to @size"));
        let a = parse_memory(&VMEM.replace("REQ", "0")).unwrap();
        let b = parse_memory(&VMEM.replace("REQ", "4096")).unwrap();
        assert!(only_requested_differs(&a, &b));
        assert_eq!(find(std::slice::from_ref(&a), &b).unwrap(), 0);
        let c = parse_memory(&VMEM.replace("REQ", "0").replace("1048576", "2097152")).unwrap();
        assert!(!only_requested_differs(&a, &c));
    }
}
