//! Changing a guest's devices, memory and vCPUs: on the running guest (through its
//! monitor, which alone talks to QEMU and owns the live XML), in the persistent config, or
//! both, as libvirt's `VIR_DOMAIN_AFFECT_*` flags say (libvirt: qemuDomainAttachDeviceFlags,
//! qemuDomainDetachDeviceFlags, qemuDomainUpdateDeviceFlags, qemuDomainSetMemoryFlags,
//! qemuDomainSetVcpusFlags, qemuDomainBlockResize).

mod config;
mod device;
mod find;
mod live;
mod live_helpers;
mod live_more;
mod media;
mod resources;

use super::DriverError;
use super::config::{ConfigLock, config_path, write_atomic};
use super::domain::Domain;
use crate::domain::{DomainDef, FormatFlags};

pub use device::DeviceDef;
pub(crate) use live::qmp;

/// `VIR_DOMAIN_AFFECT_CURRENT`: the live guest when it runs, else the config.
pub const AFFECT_CURRENT: u32 = 0;
/// `VIR_DOMAIN_AFFECT_LIVE`.
pub const AFFECT_LIVE: u32 = 1;
/// `VIR_DOMAIN_AFFECT_CONFIG`.
pub const AFFECT_CONFIG: u32 = 2;
/// `VIR_DOMAIN_DEVICE_MODIFY_FORCE`: eject a locked medium.
pub const DEVICE_MODIFY_FORCE: u32 = 4;
/// `VIR_DOMAIN_VCPU_MAXIMUM`.
pub const VCPU_MAXIMUM: u32 = 4;
/// `VIR_DOMAIN_MEM_MAXIMUM`.
pub const MEM_MAXIMUM: u32 = 4;

/// How long an unplug waits for QEMU's DEVICE_DELETED (libvirt:
/// qemuDomainRemoveDeviceWaitTime, 5 s).
pub const UNPLUG_WAIT_MS: u64 = 5000;

pub(crate) const LIVE_XML: FormatFlags = FormatFlags {
    inactive: false,
    secure: true,
};
const CONFIG_XML: FormatFlags = FormatFlags {
    inactive: true,
    secure: true,
};

/// Which definitions a change applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Impact {
    pub live: bool,
    pub config: bool,
}

/// Remove the device named `alias` from `def`; whether there was one. The guest's monitor
/// calls it when QEMU reports DEVICE_DELETED.
pub(crate) fn remove_by_alias(def: &mut DomainDef, alias: &str) -> bool {
    let d = &mut def.devices;
    let has = |i: &crate::domain::DeviceInfo| i.alias.as_deref() == Some(alias);
    if let Some(i) = d.disks.iter().position(|x| has(&x.info)) {
        d.disks.remove(i);
        return true;
    }
    if let Some(i) = d.interfaces.iter().position(|x| has(&x.info)) {
        d.interfaces.remove(i);
        return true;
    }
    if let Some(i) = d.controllers.iter().position(|x| has(&x.info)) {
        d.controllers.remove(i);
        return true;
    }
    if let Some(i) = d.rngs.iter().position(|x| has(&x.info)) {
        d.rngs.remove(i);
        return true;
    }
    if let Some(i) = d.watchdogs.iter().position(|x| has(&x.info)) {
        d.watchdogs.remove(i);
        return true;
    }
    if let Some(i) = d.channels.iter().position(|x| has(&x.info)) {
        d.channels.remove(i);
        return true;
    }
    if let Some(i) = d.filesystems.iter().position(|x| has(&x.info)) {
        d.filesystems.remove(i);
        return true;
    }
    // A hotplugged vCPU (`vcpuN`, as `set_vcpus_flags` plugs them), maybe gone after the
    // caller stopped waiting: one fewer online (libvirt: qemuDomainRemoveVcpuAlias).
    let online = def.vcpu.current.unwrap_or(def.vcpu.count);
    if is_vcpu_alias(alias) && online > 1 {
        let n = online - 1;
        def.vcpu.current = (n != def.vcpu.count).then_some(n);
        return true;
    }
    false
}

/// Whether `alias` names a vCPU `set_vcpus_flags` plugged (`vcpuN`).
pub(crate) fn is_vcpu_alias(alias: &str) -> bool {
    alias
        .strip_prefix("vcpu")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// What frees the backends of device `alias` of `def` when no caller recorded it: an
/// unplug an earlier monitor of the guest asked for, confirmed by QEMU after a monitor
/// restart. An interface's netdev, an rng's object (and chardev), a channel's chardev; a
/// disk's nodes are QEMU's to name and stay (libvirt: qemuDomainRemoveDevice).
pub(crate) fn backend_cleanup_of(
    def: &DomainDef,
    alias: &str,
) -> Vec<crate::driver::monitor::proto::QmpCall> {
    if def
        .devices
        .interfaces
        .iter()
        .any(|x| x.info.alias.as_deref() == Some(alias))
    {
        return vec![crate::driver::monitor::proto::QmpCall {
            command: "netdev_del".into(),
            args: Some(serde_json::json!({ "id": format!("host{alias}") })),
        }];
    }
    live_more::backend_cleanup(def, alias).unwrap_or_default()
}

/// The `ua-` alias a user gave, kept; any other alias in the input is libvirt's to assign
/// (libvirt parses device XML without the live state, keeping only user aliases).
pub(crate) fn keep_user_alias(info: &mut crate::domain::DeviceInfo) {
    if info.alias.as_deref().is_some_and(|a| !a.starts_with("ua-")) {
        info.alias = None;
    }
}

impl Domain<'_> {
    /// libvirt: virDomainObjUpdateModificationImpact.
    pub(crate) fn impact(&self, flags: u32) -> Result<Impact, DriverError> {
        let active = self.is_active()?;
        let mut live = flags & AFFECT_LIVE != 0;
        let mut config = flags & AFFECT_CONFIG != 0;
        if !live && !config {
            live = active;
            config = !active;
        }
        if live && !active {
            return Err(DriverError::OperationInvalid(
                "domain is not running".into(),
            ));
        }
        if config && !self.is_persistent()? {
            return Err(DriverError::OperationInvalid(
                "cannot change persistent config of a transient domain".into(),
            ));
        }
        Ok(Impact { live, config })
    }

    /// The persistent definition.
    pub(crate) fn config_def(&self) -> Result<DomainDef, DriverError> {
        let xml = self.xml_desc(CONFIG_XML)?;
        Ok(crate::domain::parse_unprepared(&xml)?)
    }

    /// Store `def` as the persistent definition, after libvirt's post-parse (defaults,
    /// addresses) as `define` does.
    pub(crate) fn save_config(&self, def: DomainDef) -> Result<(), DriverError> {
        let conn = self.connect();
        let (def, _) = conn.prepare_domain(def, super::prepare::Purpose::Define)?;
        let path = config_path(&conn.dirs().config, self.name())?;
        let _lock = ConfigLock::acquire(&conn.dirs().config)?;
        write_atomic(&path, def.to_xml(CONFIG_XML).as_bytes())
    }

    /// A change to the persistent definition and/or the running guest, as `impact` says (the
    /// tail of libvirt's setters that take --live/--config/--current): `config` changes a copy
    /// of the config first, so that a change it refuses leaves the guest untouched; then `live`
    /// changes the guest; the config is written last.
    pub(crate) fn modify_with(
        &self,
        impact: Impact,
        config: impl FnOnce(DomainDef) -> Result<DomainDef, DriverError>,
        live: impl FnOnce() -> Result<(), DriverError>,
    ) -> Result<(), DriverError> {
        let def = if impact.config {
            Some(config(self.config_def()?)?)
        } else {
            None
        };
        if impact.live {
            live()?;
        }
        if let Some(def) = def {
            self.save_config(def)?;
        }
        Ok(())
    }

    /// [`Self::modify_with`] where `live` changes the guest through its monitor and its live
    /// definition, which is saved after.
    pub(crate) fn modify(
        &self,
        impact: Impact,
        config: impl FnOnce(&mut DomainDef) -> Result<(), DriverError>,
        live: impl FnOnce(&mut live::LiveGuest) -> Result<(), DriverError>,
    ) -> Result<(), DriverError> {
        self.modify_with(
            impact,
            |mut def| {
                config(&mut def)?;
                Ok(def)
            },
            || {
                let mut lg = self.live_guest()?;
                live(&mut lg)?;
                lg.save_live()
            },
        )
    }

    /// Add the device `xml` describes (`virsh attach-device`).
    pub fn attach_device_flags(&self, xml: &str, flags: u32) -> Result<(), DriverError> {
        check_flags(
            flags,
            AFFECT_LIVE | AFFECT_CONFIG,
            "qemuDomainAttachDeviceFlags",
        )?;
        let mut dev = DeviceDef::parse(xml)?;
        let impact = self.impact(flags)?;
        if let DeviceDef::Interface(n) = &mut dev
            && n.mac.is_none()
        {
            // Drawn once, as libvirt does while parsing, so that the guest and its config
            // get the same address.
            let b = super::secret::random_bytes::<3>()?;
            n.mac = Some(format!("52:54:00:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2]));
        }
        // libvirt checks the config change first, so that a refused one changes nothing.
        let for_config = dev.clone();
        self.modify_with(
            impact,
            |def| config::attach(def, for_config),
            || self.attach_live(dev),
        )
    }

    /// Remove the device `xml` describes (`virsh detach-device`).
    pub fn detach_device_flags(&self, xml: &str, flags: u32) -> Result<(), DriverError> {
        check_flags(
            flags,
            AFFECT_LIVE | AFFECT_CONFIG,
            "qemuDomainDetachDeviceFlags",
        )?;
        let dev = DeviceDef::parse(xml)?;
        let impact = self.impact(flags)?;
        self.modify_with(
            impact,
            |def| config::detach(def, &dev),
            || self.detach_live(&dev),
        )
    }

    /// Remove the device whose alias is `alias` (`virsh detach-device-alias`); a live unplug
    /// is only asked for, as libvirt's (the guest's monitor finishes it when QEMU reports
    /// the device gone).
    pub fn detach_device_alias(&self, alias: &str, flags: u32) -> Result<(), DriverError> {
        check_flags(
            flags,
            AFFECT_LIVE | AFFECT_CONFIG,
            "qemuDomainDetachDeviceAlias",
        )?;
        let impact = self.impact(flags)?;
        self.modify_with(
            impact,
            |def| config::detach_alias(def, alias),
            || self.detach_live_alias(alias, 0),
        )
    }

    /// Change a device in place (`virsh update-device`): a CD-ROM's or floppy's medium.
    pub fn update_device_flags(&self, xml: &str, flags: u32) -> Result<(), DriverError> {
        check_flags(
            flags,
            AFFECT_LIVE | AFFECT_CONFIG | DEVICE_MODIFY_FORCE,
            "qemuDomainUpdateDeviceFlags",
        )?;
        if super::memdev::is_memory_xml(xml) {
            return self.update_memory_device(xml, flags & !DEVICE_MODIFY_FORCE);
        }
        let dev = DeviceDef::parse(xml)?;
        let impact = self.impact(flags & !DEVICE_MODIFY_FORCE)?;
        self.modify_with(
            impact,
            |def| config::update(def, &dev),
            || self.update_live(&dev, flags & DEVICE_MODIFY_FORCE != 0),
        )
    }
}

/// libvirt: virCheckFlags.
pub(crate) fn check_flags(flags: u32, known: u32, function: &str) -> Result<(), DriverError> {
    let bad = flags & !known;
    if bad != 0 {
        return Err(DriverError::InvalidArg(format!(
            "unsupported flags (0x{bad:x}) in function {function}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removed_vcpus_and_shares_leave_the_live_xml() {
        let mut def = crate::domain::parse(
            "<domain type='qemu'><name>t</name><memory>65536</memory><vcpu current='3'>4</vcpu>\
             <memoryBacking><source type='memfd'/><access mode='shared'/></memoryBacking>\
             <os><type>hvm</type></os><devices>\
             <filesystem type='mount'><driver type='virtiofs'/><source dir='/s'/>\
             <target dir='t'/><alias name='fs0'/></filesystem></devices></domain>",
        )
        .unwrap();
        assert!(remove_by_alias(&mut def, "fs0"));
        assert!(def.devices.filesystems.is_empty());
        assert!(remove_by_alias(&mut def, "vcpu2"));
        assert_eq!(def.vcpu.current, Some(2));
        assert!(remove_by_alias(&mut def, "vcpu1"));
        assert_eq!(def.vcpu.current, Some(1));
        // The last vCPU stays; other names are no vCPU.
        assert!(!remove_by_alias(&mut def, "vcpu1"));
        assert!(!remove_by_alias(&mut def, "vcpu"));
        assert!(!remove_by_alias(&mut def, "vcpux"));
        assert_eq!(def.vcpu.current, Some(1));
    }
}
