//! Device changes to the persistent definition (libvirt: qemuDomainAttachDeviceConfig,
//! qemuDomainDetachDeviceConfig, qemuDomainUpdateDeviceConfig). The caller runs the
//! post-parse on the result and stores it.

use super::DeviceDef;
use crate::domain::DomainDef;
use crate::domain::devices::Interface;
use crate::driver::DriverError;

/// `def` with the device added.
pub(super) fn attach(mut def: DomainDef, dev: DeviceDef) -> Result<DomainDef, DriverError> {
    match dev {
        DeviceDef::Disk(d) => {
            if def
                .devices
                .disks
                .iter()
                .any(|x| x.target.dev == d.target.dev)
            {
                return Err(DriverError::OperationInvalid(format!(
                    "target {} already exists.",
                    d.target.dev
                )));
            }
            def.devices.disks.push(*d);
        }
        DeviceDef::Interface(n) => def.devices.interfaces.push(*n),
        DeviceDef::Controller(c) => {
            if let Some(i) = c.index
                && def
                    .devices
                    .controllers
                    .iter()
                    .any(|x| x.ctype == c.ctype && x.index.unwrap_or(0) == i)
            {
                // libvirt: qemuDomainAttachDeviceConfig
                return Err(DriverError::OperationInvalid(format!(
                    "controller index='{i}' already exists"
                )));
            }
            def.devices.controllers.push(*c);
        }
        DeviceDef::Rng(r) => def.devices.rngs.push(*r),
        DeviceDef::Watchdog(w) => def.devices.watchdogs.push(*w),
        DeviceDef::Channel(c) => def.devices.channels.push(*c),
        DeviceDef::Hostdev(h) => def.devices.hostdevs.push(*h),
        DeviceDef::Filesystem(f) => def.devices.filesystems.push(*f),
    }
    Ok(def)
}

/// `def` without the device.
pub(super) fn detach(mut def: DomainDef, dev: &DeviceDef) -> Result<DomainDef, DriverError> {
    match dev {
        DeviceDef::Disk(d) => {
            let Some(i) = def
                .devices
                .disks
                .iter()
                .position(|x| x.target.dev == d.target.dev)
            else {
                return Err(DriverError::DeviceMissing(format!(
                    "no target device {}",
                    d.target.dev
                )));
            };
            def.devices.disks.remove(i);
        }
        DeviceDef::Interface(n) => {
            let i = find_net(&def.devices.interfaces, n)?;
            def.devices.interfaces.remove(i);
        }
        DeviceDef::Controller(c) => {
            let i = super::find::controller(&def, c)?;
            def.devices.controllers.remove(i);
        }
        DeviceDef::Rng(r) => {
            let i = super::find::rng(&def, r)?;
            def.devices.rngs.remove(i);
        }
        DeviceDef::Watchdog(w) => {
            let i = super::find::watchdog(&def, w)?;
            def.devices.watchdogs.remove(i);
        }
        DeviceDef::Channel(c) => {
            let i = super::find::channel(&def, c)?;
            def.devices.channels.remove(i);
        }
        DeviceDef::Filesystem(f) => {
            let i = super::find::filesystem(&def, f)?;
            def.devices.filesystems.remove(i);
        }
        DeviceDef::Hostdev(_) => {
            return Err(DriverError::OperationUnsupported(
                "persistent detach of device 'hostdev' is not supported".into(),
            ));
        }
    }
    Ok(def)
}

/// `def` without the device whose alias is `alias` (only user aliases live in a config).
pub(super) fn detach_alias(mut def: DomainDef, alias: &str) -> Result<DomainDef, DriverError> {
    if super::remove_by_alias(&mut def, alias) {
        Ok(def)
    } else {
        Err(DriverError::DeviceMissing(format!(
            "no device found with alias {alias}"
        )))
    }
}

/// `def` with a disk's medium changed.
pub(super) fn update(mut def: DomainDef, dev: &DeviceDef) -> Result<DomainDef, DriverError> {
    let DeviceDef::Disk(d) = dev else {
        return Err(DriverError::OperationUnsupported(format!(
            "persistent update of device '{}' is not supported",
            dev.kind()
        )));
    };
    let Some(old) = def
        .devices
        .disks
        .iter_mut()
        .find(|x| x.target.dev == d.target.dev)
    else {
        return Err(DriverError::OperationInvalid(format!(
            "target {} doesn't exist.",
            d.target.dev
        )));
    };
    old.source = d.source.clone();
    old.dtype = d.dtype.clone();
    if d.driver.is_some() {
        old.driver = d.driver.clone();
    }
    Ok(def)
}

/// The interface `want` names: by MAC when it has one (libvirt: virDomainNetFindIdx).
pub(super) fn find_net(list: &[Interface], want: &Interface) -> Result<usize, DriverError> {
    let mac = want.mac.as_deref().map(str::to_ascii_lowercase);
    let found: Vec<usize> = list
        .iter()
        .enumerate()
        .filter(|(_, n)| {
            mac.as_deref()
                .is_none_or(|m| n.mac.as_deref().map(str::to_ascii_lowercase).as_deref() == Some(m))
        })
        .map(|(i, _)| i)
        .collect();
    match (found.as_slice(), mac) {
        ([i], _) => Ok(*i),
        ([], Some(m)) => Err(DriverError::DeviceMissing(format!(
            "no device matching MAC address {m} found"
        ))),
        ([], None) => Err(DriverError::DeviceMissing(
            "no matching device found".into(),
        )),
        (_, Some(m)) => Err(DriverError::OperationFailed(format!(
            "multiple devices matching MAC address {m} found"
        ))),
        (_, None) => Err(DriverError::OperationFailed(
            "multiple matching devices found".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def() -> DomainDef {
        crate::domain::parse(
            "<domain type='qemu'><name>t</name><memory>65536</memory><os><type>hvm</type></os>\
             <devices><disk type='file'><source file='/a'/><target dev='vda' bus='virtio'/></disk>\
             <interface type='user'><mac address='52:54:00:00:00:01'/><alias name='ua-a'/></interface>\
             <interface type='user'><mac address='52:54:00:00:00:02'/></interface></devices></domain>",
        )
        .unwrap()
    }

    fn net(xml: &str) -> DeviceDef {
        DeviceDef::parse(xml).unwrap()
    }

    #[test]
    fn config_changes_and_their_refusals() {
        let disk = DeviceDef::parse("<disk type='file'><target dev='vda'/></disk>").unwrap();
        assert_eq!(
            attach(def(), disk.clone()).unwrap_err().to_string(),
            "Requested operation is not valid: target vda already exists."
        );
        assert!(detach(def(), &disk).unwrap().devices.disks.is_empty());
        let vdz = DeviceDef::parse("<disk type='file'><target dev='vdz'/></disk>").unwrap();
        assert_eq!(
            detach(def(), &vdz).unwrap_err().to_string(),
            "device not found: no target device vdz"
        );
        let by_mac = net("<interface type='user'><mac address='52:54:00:00:00:02'/></interface>");
        let d = detach(def(), &by_mac).unwrap();
        assert_eq!(d.devices.interfaces.len(), 1);
        let any = net("<interface type='user'/>");
        assert_eq!(
            detach(def(), &any).unwrap_err().to_string(),
            "operation failed: multiple matching devices found"
        );
        let none = net("<interface type='user'><mac address='52:54:00:00:00:09'/></interface>");
        assert_eq!(
            detach(def(), &none).unwrap_err().to_string(),
            "device not found: no device matching MAC address 52:54:00:00:00:09 found"
        );
        assert_eq!(
            detach_alias(def(), "ua-a")
                .unwrap()
                .devices
                .interfaces
                .len(),
            1
        );
        assert_eq!(
            detach_alias(def(), "ua-b").unwrap_err().to_string(),
            "device not found: no device found with alias ua-b"
        );
        let media =
            DeviceDef::parse("<disk type='file'><source file='/b'/><target dev='vda'/></disk>")
                .unwrap();
        let d = update(def(), &media).unwrap();
        let src = d.devices.disks[0].source.as_ref().unwrap();
        assert_eq!(src.file.as_deref(), Some("/b"));
    }

    #[test]
    fn more_kinds_in_the_config() {
        let scsi = net("<controller type='scsi' index='0' model='virtio-scsi'/>");
        let d = attach(def(), scsi.clone()).unwrap();
        assert_eq!(
            attach(d.clone(), scsi.clone()).unwrap_err().to_string(),
            "Requested operation is not valid: controller index='0' already exists"
        );
        assert!(detach(d, &scsi).unwrap().devices.controllers.is_empty());
        assert_eq!(
            detach(def(), &scsi).unwrap_err().to_string(),
            "device not found: controller scsi:0 not found"
        );
        let rng = net("<rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>");
        let d = attach(def(), rng.clone()).unwrap();
        assert!(detach(d, &rng).unwrap().devices.rngs.is_empty());
        let wd = net("<watchdog model='i6300esb'/>");
        let d = attach(def(), wd.clone()).unwrap();
        assert!(detach(d, &wd).unwrap().devices.watchdogs.is_empty());
        let chan = net("<channel type='unix'><target type='virtio' name='org.a'/></channel>");
        let d = attach(def(), chan.clone()).unwrap();
        assert!(detach(d, &chan).unwrap().devices.channels.is_empty());
        let hd = net("<hostdev mode='subsystem' type='pci'><source>\
             <address domain='0' bus='1' slot='0' function='0'/></source></hostdev>");
        assert_eq!(attach(def(), hd.clone()).unwrap().devices.hostdevs.len(), 1);
        assert!(detach(def(), &hd).is_err());
    }
}
