//! Live attach and detach of controllers, random number generators, watchdogs and
//! channels, and libvirt's refusals for host devices and filesystems (libvirt:
//! qemuDomainAttachControllerDevice, qemuDomainAttachRNGDevice, qemuDomainAttachWatchdog,
//! qemuDomainAttachChrDevice, qemuDomainAttachHostDevice, qemuDomainAttachFSDevice and
//! their detach counterparts). The QMP arguments come from xml2argv's builders, as the
//! command line's do.

use serde_json::json;

use super::DeviceDef;
use super::live::{LiveGuest, call, next_alias, step};
use crate::domain::DomainDef;
use crate::domain::devices::{Chardev, Controller, Hostdev, Rng, Watchdog};
use crate::driver::DriverError;
use crate::driver::domain::Domain;
use crate::driver::monitor::proto::{QmpCall, QmpStep};
use crate::driver::prepare::Purpose;
use crate::xml2argv::props;

/// Keep a user alias, else give `alias`.
pub(super) fn with_alias(info: &mut crate::domain::DeviceInfo, alias: impl FnOnce() -> String) {
    if info.alias.is_none() {
        info.alias = Some(alias());
    }
}

/// Steps adding a chardev, an object, then the device; each backend taken back when a
/// later step fails.
pub(super) fn backend_steps(
    chardev: Option<serde_json::Value>,
    object: Option<serde_json::Value>,
) -> Vec<QmpStep> {
    let mut steps = Vec::new();
    if let Some(c) = chardev {
        let id = c["id"].clone();
        steps.push(step(
            call("chardev-add", c),
            Some(call("chardev-remove", json!({ "id": id }))),
        ));
    }
    if let Some(o) = object {
        let id = o["id"].clone();
        steps.push(step(
            call("object-add", o),
            Some(call("object-del", json!({ "id": id }))),
        ));
    }
    steps
}

impl Domain<'_> {
    /// libvirt 9.0 hotplugs SCSI controllers only.
    pub(super) fn attach_controller_live(
        &self,
        mut lg: LiveGuest,
        mut c: Controller,
    ) -> Result<(), DriverError> {
        if c.ctype != "scsi" {
            return Err(DriverError::OperationUnsupported(format!(
                "'{}' controller cannot be hot plugged.",
                c.ctype
            )));
        }
        let used = |i: u32| {
            lg.def
                .devices
                .controllers
                .iter()
                .any(|x| x.ctype == c.ctype && x.index.unwrap_or(0) == i)
        };
        // libvirt: virDomainControllerFindUnusedIndex
        let idx = match c.index {
            Some(i) => i,
            None => (0..).find(|i| !used(*i)).unwrap_or(0),
        };
        if used(idx) {
            return Err(DriverError::OperationFailed(format!(
                "target {}:{idx} already exists",
                c.ctype
            )));
        }
        c.index = Some(idx);
        with_alias(&mut c.info, || format!("{}{idx}", c.ctype));
        let ctype = c.ctype.clone();
        let (prep, caps) = self.prepared_with(&lg.def, |d| d.devices.controllers.push(c))?;
        let Some(i) = prep
            .devices
            .controllers
            .iter()
            .position(|x| x.ctype == ctype && x.index == Some(idx))
        else {
            return Err(DriverError::Internal(
                "controller lost in preparation".into(),
            ));
        };
        let mut next = lg.def.clone();
        next.devices
            .controllers
            .push(prep.devices.controllers[i].clone());
        let k = next.devices.controllers.len() - 1;
        let ctx = self.connect().launch_context(&next, next.id.unwrap_or(-1));
        let Some(dev) = props::controller_props(&next, &caps, &ctx, k)? else {
            return Err(DriverError::OperationUnsupported(format!(
                "'{ctype}' controller cannot be hot plugged."
            )));
        };
        let steps = vec![step(call("device_add", dev), None)];
        self.run_hotplug(&mut lg.guest, steps, &next)
    }

    pub(super) fn attach_rng_live(&self, mut lg: LiveGuest, mut r: Rng) -> Result<(), DriverError> {
        with_alias(&mut r.info, || next_alias(&lg.def, "rng"));
        let before = lg.def.devices.rngs.len();
        let (prep, caps) = self.prepared_with(&lg.def, |d| d.devices.rngs.push(r))?;
        let Some(rng) = prep.devices.rngs.get(before).cloned() else {
            return Err(DriverError::Internal("rng lost in preparation".into()));
        };
        let mut next = lg.def.clone();
        next.devices.rngs.push(rng);
        let ctx = self.connect().launch_context(&next, next.id.unwrap_or(-1));
        let p = props::rng_props(&next, &caps, &ctx, before)?;
        let mut steps = backend_steps(p.chardev, Some(p.object));
        steps.push(step(call("device_add", p.device), None));
        self.run_hotplug(&mut lg.guest, steps, &next)
    }

    /// libvirt 9.0 allows one watchdog, an i6300esb, and sets its action first.
    pub(super) fn attach_watchdog_live(
        &self,
        mut lg: LiveGuest,
        mut w: Watchdog,
    ) -> Result<(), DriverError> {
        if !lg.def.devices.watchdogs.is_empty() {
            return Err(DriverError::OperationInvalid(
                "domain already has a watchdog".into(),
            ));
        }
        let model = w.model.clone().unwrap_or_else(|| "i6300esb".into());
        if model != "i6300esb" {
            return Err(DriverError::OperationUnsupported(format!(
                "hotplug of watchdog model '{model}' is not supported"
            )));
        }
        with_alias(&mut w.info, || "watchdog0".into());
        let (prep, caps) = self.prepared_with(&lg.def, |d| d.devices.watchdogs.push(w))?;
        let Some(wd) = prep.devices.watchdogs.first().cloned() else {
            return Err(DriverError::Internal("watchdog lost in preparation".into()));
        };
        let action = wd.action.clone().unwrap_or_else(|| "reset".into());
        let mut next = lg.def.clone();
        next.devices.watchdogs.push(wd);
        let ctx = self.connect().launch_context(&next, next.id.unwrap_or(-1));
        let dev = props::watchdog_props(&next, &caps, &ctx, 0)?;
        let steps = vec![
            step(
                call(
                    "set-action",
                    json!({ "watchdog": props::watchdog_action(&action) }),
                ),
                None,
            ),
            step(call("device_add", dev), None),
        ];
        self.run_hotplug(&mut lg.guest, steps, &next)
    }

    /// A virtio channel takes a free port of an existing virtio-serial controller: on a
    /// running guest libvirt adds no controller.
    pub(super) fn attach_channel_live(
        &self,
        mut lg: LiveGuest,
        mut c: Chardev,
    ) -> Result<(), DriverError> {
        let ttype = c
            .target
            .as_ref()
            .and_then(|t| t.ttype.clone())
            .unwrap_or_else(|| "virtio".into());
        if ttype != "virtio" {
            return Err(DriverError::OperationUnsupported(format!(
                "live attach of channel target '{ttype}' is not supported"
            )));
        }
        let serials = |d: &DomainDef| {
            d.devices
                .controllers
                .iter()
                .filter(|x| x.ctype == "virtio-serial")
                .count()
        };
        if serials(&lg.def) == 0 {
            // libvirt: virDomainVirtioSerialAddrNext
            return Err(DriverError::Internal(
                "no virtio-serial controllers are available".into(),
            ));
        }
        with_alias(&mut c.info, || next_alias(&lg.def, "channel"));
        let before = lg.def.devices.channels.len();
        let mut cand = lg.def.clone();
        cand.devices.channels.push(c);
        let (prep, caps) = self.connect().prepare_domain(cand, Purpose::Start)?;
        if serials(&prep) > serials(&lg.def) {
            // Every port taken: the post-parse would add a controller, which a running
            // guest cannot get.
            return Err(DriverError::Xml(crate::domain::DomainError::Xml(
                "XML error: Unable to find a free virtio-serial port".into(),
            )));
        }
        let Some(chan) = prep.devices.channels.get(before).cloned() else {
            return Err(DriverError::Internal("channel lost in preparation".into()));
        };
        let mut next = lg.def.clone();
        next.devices.channels.push(chan);
        let ctx = self.connect().launch_context(&next, next.id.unwrap_or(-1));
        let p = props::channel_props(&next, &caps, &ctx, before)?;
        let mut steps = backend_steps(Some(p.chardev), None);
        steps.push(step(call("device_add", p.device), None));
        self.run_hotplug(&mut lg.guest, steps, &next)
    }
}

/// The alias of the device a live detach names, after libvirt's refusals (libvirt:
/// qemuDomainDetachPrepController, -RNG, -Watchdog, qemuDomainDetachDeviceChr, -FS).
pub(super) fn detach_target(
    def: &DomainDef,
    dev: &DeviceDef,
) -> Result<Option<String>, DriverError> {
    let d = &def.devices;
    Ok(match dev {
        DeviceDef::Disk(_) | DeviceDef::Interface(_) => None,
        DeviceDef::Controller(c) => {
            if c.ctype != "scsi" {
                return Err(DriverError::OperationUnsupported(format!(
                    "'{}' controller cannot be hot unplugged.",
                    c.ctype
                )));
            }
            let x = &d.controllers[super::find::controller(def, c)?];
            check_controller_idle(def, x)?;
            x.info.alias.clone()
        }
        DeviceDef::Rng(r) => d.rngs[super::find::rng(def, r)?].info.alias.clone(),
        DeviceDef::Watchdog(w) => {
            let x = &d.watchdogs[super::find::watchdog(def, w)?];
            let model = x.model.as_deref().unwrap_or("i6300esb");
            if model != "i6300esb" {
                return Err(DriverError::OperationUnsupported(format!(
                    "hot unplug of watchdog of model {model} is not supported"
                )));
            }
            x.info.alias.clone()
        }
        DeviceDef::Channel(c) => d.channels[super::find::channel(def, c)?].info.alias.clone(),
        DeviceDef::Filesystem(f) => {
            let x = &d.filesystems[super::find::filesystem(def, f)?];
            if !super::live_helpers::is_virtiofs(x) {
                return Err(filesystem_refusal());
            }
            x.info.alias.clone()
        }
        DeviceDef::Hostdev(_) => {
            return Err(DriverError::OperationUnsupported(
                "live detach of device 'hostdev' is not supported".into(),
            ));
        }
    })
}

/// A SCSI controller with a disk on it stays (libvirt: qemuDomainDiskControllerIsBusy).
fn check_controller_idle(def: &DomainDef, c: &Controller) -> Result<(), DriverError> {
    let idx = c.index.unwrap_or(0);
    let busy = def.devices.disks.iter().any(|d| {
        d.target.bus.as_deref() == Some(c.ctype.as_str())
            && match &d.info.address {
                Some(crate::domain::Address::Drive { controller, .. }) => *controller == idx,
                _ => idx == 0,
            }
    });
    if busy {
        return Err(DriverError::OperationFailed(
            "device cannot be detached: device is busy".into(),
        ));
    }
    Ok(())
}

/// Whether `alias` names a controller, rng, watchdog or channel of `def`.
pub(super) fn has_alias(def: &DomainDef, alias: &str) -> bool {
    let d = &def.devices;
    let is = |i: &crate::domain::DeviceInfo| i.alias.as_deref() == Some(alias);
    d.controllers.iter().any(|x| is(&x.info))
        || d.rngs.iter().any(|x| is(&x.info))
        || d.watchdogs.iter().any(|x| is(&x.info))
        || d.channels.iter().any(|x| is(&x.info))
        || d.filesystems.iter().any(|x| is(&x.info))
}

/// What frees the backends of device `alias` once QEMU removed it (libvirt:
/// qemuDomainRemoveRNGDevice, qemuDomainRemoveChrDevice); none when `alias` is no
/// controller, rng, watchdog or channel.
pub(super) fn backend_cleanup(def: &DomainDef, alias: &str) -> Option<Vec<QmpCall>> {
    let d = &def.devices;
    let is = |i: &crate::domain::DeviceInfo| i.alias.as_deref() == Some(alias);
    if let Some(r) = d.rngs.iter().find(|x| is(&x.info)) {
        let mut calls = vec![call("object-del", json!({ "id": format!("obj{alias}") }))];
        if r.backend_model.as_deref() == Some("egd") {
            calls.push(call(
                "chardev-remove",
                json!({ "id": format!("char{alias}") }),
            ));
        }
        return Some(calls);
    }
    if let Some(calls) = super::live_helpers::fs_cleanup(def, alias) {
        return Some(calls);
    }
    if d.channels.iter().any(|x| is(&x.info)) {
        return Some(vec![call(
            "chardev-remove",
            json!({ "id": format!("char{alias}") }),
        )]);
    }
    if d.controllers.iter().any(|x| is(&x.info)) || d.watchdogs.iter().any(|x| is(&x.info)) {
        return Some(Vec::new());
    }
    None
}

/// libvirt's refusal of a host device on this host: PCI passthrough needs VFIO
/// (libvirt: qemuHostdevPreparePCIDevicesCheckSupport); the other kinds are not done here.
pub(super) fn hostdev_refusal(h: &Hostdev) -> DriverError {
    hostdev_refusal_on(h, crate::driver::domcaps::vfio_usable())
}

fn hostdev_refusal_on(h: &Hostdev, vfio: bool) -> DriverError {
    let mode = h.mode.as_deref().unwrap_or("subsystem");
    if mode != "subsystem" {
        return DriverError::Unsupported(format!(
            "hotplug is not supported for hostdev mode '{mode}'"
        ));
    }
    if h.htype.as_deref() == Some("pci") && !vfio {
        return DriverError::Unsupported(match h.driver_name.as_deref() {
            Some("vfio") => "host doesn't support VFIO PCI passthrough".into(),
            _ => "host doesn't support passthrough of host PCI devices".into(),
        });
    }
    DriverError::OperationUnsupported("live attach of device 'hostdev' is not supported".into())
}

/// libvirt 9.0 hotplugs and unplugs virtiofs shares only (libvirt: qemuDomainAttachFSDevice,
/// qemuDomainDetachPrepFS).
pub(super) fn filesystem_refusal() -> DriverError {
    DriverError::OperationUnsupported("only virtiofs filesystems can be hotplugged".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev(xml: &str) -> DeviceDef {
        DeviceDef::parse(xml).unwrap()
    }

    fn def() -> DomainDef {
        crate::domain::parse(
            "<domain type='qemu'><name>t</name><memory>65536</memory><os><type>hvm</type></os>\
             <devices><controller type='scsi' index='0' model='virtio-scsi'><alias name='scsi0'/></controller>\
             <controller type='virtio-serial' index='0'><alias name='virtio-serial0'/></controller>\
             <disk type='file'><source file='/a'/><target dev='sda' bus='scsi'/><alias name='scsi0-0-0-0'/></disk>\
             <channel type='unix'><source mode='bind' path='/tmp/c'/><target type='virtio' name='org.x'/><alias name='channel0'/></channel>\
             <watchdog model='ib700'><alias name='watchdog0'/></watchdog>\
             <rng model='virtio'><backend model='egd' type='unix'><source mode='connect' path='/e'/></backend><alias name='rng0'/></rng>\
             <filesystem type='mount'><source dir='/s'/><target dir='t'/></filesystem>\
             </devices></domain>",
        )
        .unwrap()
    }

    fn err(r: Result<Option<String>, DriverError>) -> String {
        r.unwrap_err().to_string()
    }

    #[test]
    fn detach_targets_and_refusals() {
        let d = def();
        assert_eq!(
            err(detach_target(
                &d,
                &dev("<controller type='virtio-serial' index='0'/>")
            )),
            "Operation not supported: 'virtio-serial' controller cannot be hot unplugged."
        );
        assert_eq!(
            err(detach_target(
                &d,
                &dev("<controller type='scsi' index='0'/>")
            )),
            "operation failed: device cannot be detached: device is busy"
        );
        assert_eq!(
            err(detach_target(
                &d,
                &dev("<controller type='scsi' index='3'/>")
            )),
            "device not found: controller scsi:3 not found"
        );
        assert_eq!(
            err(detach_target(&d, &dev("<watchdog model='ib700'/>"))),
            "Operation not supported: hot unplug of watchdog of model ib700 is not supported"
        );
        assert_eq!(
            err(detach_target(&d, &dev("<watchdog model='i6300esb'/>"))),
            "Requested operation is not valid: no matching watchdog was found"
        );
        assert_eq!(
            err(detach_target(
                &d,
                &dev("<rng model='virtio'><backend model='random'/></rng>")
            )),
            "device not found: model 'random' RNG device not present in domain configuration"
        );
        let egd = "<rng model='virtio'><backend model='egd' type='unix'>\
                   <source mode='connect' path='/e'/></backend></rng>";
        assert_eq!(
            detach_target(&d, &dev(egd)).unwrap().as_deref(),
            Some("rng0")
        );
        assert_eq!(
            err(detach_target(
                &d,
                &dev("<channel type='unix'><target type='virtio' name='org.y'/></channel>")
            )),
            "device not found: chr type 'channel' device not present in domain configuration"
        );
        let chan = "<channel type='unix'><target type='virtio' name='org.x'/></channel>";
        assert_eq!(
            detach_target(&d, &dev(chan)).unwrap().as_deref(),
            Some("channel0")
        );
        assert_eq!(
            err(detach_target(
                &d,
                &dev("<filesystem type='mount'><source dir='/s'/><target dir='t'/></filesystem>")
            )),
            "Operation not supported: only virtiofs filesystems can be hotplugged"
        );
        assert_eq!(
            err(detach_target(
                &d,
                &dev("<filesystem type='mount'><source dir='/s'/><target dir='u'/></filesystem>")
            )),
            "device not found: matching filesystem not found"
        );
        let calls = backend_cleanup(&d, "rng0").unwrap();
        let names: Vec<&str> = calls.iter().map(|c| c.command.as_str()).collect();
        assert_eq!(names, ["object-del", "chardev-remove"]);
        assert_eq!(calls[0].args.as_ref().unwrap()["id"], "objrng0");
        let calls = backend_cleanup(&d, "channel0").unwrap();
        assert_eq!(calls[0].args.as_ref().unwrap()["id"], "charchannel0");
        assert!(backend_cleanup(&d, "watchdog0").unwrap().is_empty());
        assert!(backend_cleanup(&d, "scsi0-0-0-0").is_none());
        assert!(has_alias(&d, "channel0") && !has_alias(&d, "net0"));
        // After a monitor restart the live XML alone says what to free.
        let c = super::super::backend_cleanup_of(&d, "channel0");
        assert_eq!(c[0].command, "chardev-remove");
        assert!(super::super::backend_cleanup_of(&d, "scsi0-0-0-0").is_empty());
        assert_eq!(next_alias(&d, "rng"), "rng1");
    }

    #[test]
    fn host_devices_and_filesystems_refused_as_libvirt() {
        let DeviceDef::Hostdev(pci) = dev("<hostdev mode='subsystem' type='pci' managed='yes'>\
             <source><address domain='0' bus='1' slot='0' function='0'/></source></hostdev>")
        else {
            panic!("not a hostdev")
        };
        assert_eq!(
            hostdev_refusal_on(&pci, false).to_string(),
            "unsupported configuration: host doesn't support passthrough of host PCI devices"
        );
        let mut vfio = (*pci).clone();
        vfio.driver_name = Some("vfio".into());
        assert_eq!(
            hostdev_refusal_on(&vfio, false).to_string(),
            "unsupported configuration: host doesn't support VFIO PCI passthrough"
        );
        assert_eq!(
            hostdev_refusal_on(&pci, true).to_string(),
            "Operation not supported: live attach of device 'hostdev' is not supported"
        );
        let mut caps = (*pci).clone();
        caps.mode = Some("capabilities".into());
        assert_eq!(
            hostdev_refusal_on(&caps, false).to_string(),
            "unsupported configuration: hotplug is not supported for hostdev mode 'capabilities'"
        );
        let DeviceDef::Filesystem(_) =
            dev("<filesystem type='mount'><source dir='/s'/><target dir='t'/></filesystem>")
        else {
            panic!("not a filesystem")
        };
        assert_eq!(
            filesystem_refusal().to_string(),
            "Operation not supported: only virtiofs filesystems can be hotplugged"
        );
    }
}
