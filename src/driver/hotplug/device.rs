//! One device's XML, as `attach-device` and friends take it (libvirt: virDomainDeviceDefParse).

use crate::domain::devices::{
    Chardev, Controller, Devices, Disk, Filesystem, Hostdev, Interface, Rng, Watchdog,
};
use crate::driver::DriverError;

/// The devices hotplug knows.
#[derive(Debug, Clone, PartialEq)]
pub enum DeviceDef {
    Disk(Box<Disk>),
    Interface(Box<Interface>),
    Controller(Box<Controller>),
    Rng(Box<Rng>),
    Watchdog(Box<Watchdog>),
    /// A `<channel>`.
    Channel(Box<Chardev>),
    /// Parsed so that a live attach can be refused with libvirt's reason.
    Hostdev(Box<Hostdev>),
    Filesystem(Box<Filesystem>),
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
        if let Some(mut c) = d.controllers.pop() {
            super::keep_user_alias(&mut c.info);
            return Ok(DeviceDef::Controller(Box::new(c)));
        }
        if let Some(mut r) = d.rngs.pop() {
            super::keep_user_alias(&mut r.info);
            return Ok(DeviceDef::Rng(Box::new(r)));
        }
        if let Some(mut w) = d.watchdogs.pop() {
            super::keep_user_alias(&mut w.info);
            return Ok(DeviceDef::Watchdog(Box::new(w)));
        }
        if let Some(mut c) = d.channels.pop() {
            super::keep_user_alias(&mut c.info);
            return Ok(DeviceDef::Channel(Box::new(c)));
        }
        if let Some(h) = d.hostdevs.pop() {
            return Ok(DeviceDef::Hostdev(Box::new(h)));
        }
        if let Some(f) = d.filesystems.pop() {
            return Ok(DeviceDef::Filesystem(Box::new(f)));
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
            DeviceDef::Controller(_) => "controller",
            DeviceDef::Rng(_) => "rng",
            DeviceDef::Watchdog(_) => "watchdog",
            DeviceDef::Channel(_) => "chr",
            DeviceDef::Hostdev(_) => "hostdev",
            DeviceDef::Filesystem(_) => "fs",
        }
    }

    /// The device's own definition data (alias, address).
    pub(crate) fn info(&self) -> &crate::domain::DeviceInfo {
        match self {
            DeviceDef::Disk(d) => &d.info,
            DeviceDef::Interface(n) => &n.info,
            DeviceDef::Controller(c) => &c.info,
            DeviceDef::Rng(r) => &r.info,
            DeviceDef::Watchdog(w) => &w.info,
            DeviceDef::Channel(c) => &c.info,
            DeviceDef::Hostdev(h) => &h.info,
            DeviceDef::Filesystem(f) => &f.info,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_device_element() {
        let d = DeviceDef::parse(
            "<?xml version='1.0'?>\n<disk type='file'><source file='/a'/><target dev='vdb'/>\
             <alias name='virtio-disk9'/></disk>",
        )
        .unwrap();
        let DeviceDef::Disk(d) = d else {
            panic!("not a disk")
        };
        assert_eq!(d.target.dev, "vdb");
        // libvirt's own aliases are its to assign; only user aliases are kept.
        assert_eq!(d.info.alias, None);
        let n =
            DeviceDef::parse("<interface type='user'><alias name='ua-n'/></interface>").unwrap();
        let DeviceDef::Interface(n) = n else {
            panic!("not an interface")
        };
        assert_eq!(n.info.alias.as_deref(), Some("ua-n"));
        assert_eq!(
            DeviceDef::parse("<sound model='ich9'/>")
                .unwrap_err()
                .to_string(),
            "Operation not supported: live attach of device 'sound' is not supported"
        );
        assert_eq!(
            DeviceDef::parse("<frob/>").unwrap_err().to_string(),
            "XML error: unknown device type 'frob'"
        );
        assert!(
            DeviceDef::parse("<disk")
                .unwrap_err()
                .to_string()
                .starts_with("XML error: ")
        );
    }
}
