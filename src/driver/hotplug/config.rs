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
