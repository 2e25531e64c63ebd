//! One device's XML, as `attach-device` and friends take it (libvirt: virDomainDeviceDefParse).

use crate::domain::devices::{Devices, Disk, Interface};
use crate::driver::DriverError;

/// The devices hotplug knows.
#[derive(Debug, Clone, PartialEq)]
pub enum DeviceDef {
    Disk(Box<Disk>),
    Interface(Box<Interface>),
}

impl DeviceDef {
    /// Parse one device element.
    pub fn parse(xml: &str) -> Result<DeviceDef, DriverError> {
        let body = strip_declaration(xml);
        let root = crate::domain::xml::parse_document(body)?;
        let kind = root.name.clone();
        let wrapped = crate::domain::xml::XmlNode {
            name: "devices".into(),
            children: vec![root],
            ..Default::default()
        };
        let mut d = Devices::parse(&wrapped)?;
        if let Some(mut disk) = d.disks.pop() {
            super::keep_user_alias(&mut disk.info);
            return Ok(DeviceDef::Disk(Box::new(disk)));
        }
        if let Some(mut n) = d.interfaces.pop() {
            super::keep_user_alias(&mut n.info);
            return Ok(DeviceDef::Interface(Box::new(n)));
        }
        if is_device_element(&kind) {
            // libvirt: qemuDomainAttachDeviceLive's refusal of the other kinds.
            return Err(DriverError::OperationUnsupported(format!(
                "live attach of device '{kind}' is not supported"
            )));
        }
        Err(DriverError::Xml(crate::domain::DomainError::Xml(format!(
            "XML error: unknown device type '{kind}'"
        ))))
    }

    /// libvirt's name of the kind (virDomainDeviceType).
    pub fn kind(&self) -> &'static str {
        match self {
            DeviceDef::Disk(_) => "disk",
            DeviceDef::Interface(_) => "interface",
        }
    }
}

fn strip_declaration(xml: &str) -> &str {
    let t = xml.trim_start();
    match t
        .strip_prefix("<?xml")
        .and_then(|r| r.find("?>").map(|i| &r[i + 2..]))
    {
        Some(rest) => rest,
        None => t,
    }
}

/// The elements `<devices>` holds (libvirt: virDomainDeviceType).
fn is_device_element(name: &str) -> bool {
    matches!(
        name,
        "disk"
            | "lease"
            | "filesystem"
            | "interface"
            | "input"
            | "sound"
            | "video"
            | "hostdev"
            | "watchdog"
            | "controller"
            | "graphics"
            | "hub"
            | "redirdev"
            | "smartcard"
            | "serial"
            | "parallel"
            | "channel"
            | "console"
            | "memballoon"
            | "nvram"
            | "rng"
            | "shmem"
            | "tpm"
            | "panic"
            | "memory"
            | "iommu"
            | "vsock"
            | "audio"
            | "crypto"
    )
}
