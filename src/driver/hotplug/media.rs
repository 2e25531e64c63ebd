//! Removable media of a running guest: CD-ROM and floppy trays (libvirt:
//! qemuDomainChangeMediaBlockdev). The old medium's nodes go, the new one's come from the
//! command line's builders.

use serde_json::json;

use super::DeviceDef;
use super::live::{LiveGuest, chain_cleanup, fresh_nodes, layer_steps, medium_node, step};
use crate::domain::devices::Disk;
use crate::driver::DriverError;
use crate::driver::domain::Domain;
use crate::driver::monitor::proto::QmpCall;
use crate::xml2argv::props::{self, Plug};

fn call(command: &str, args: serde_json::Value) -> QmpCall {
    QmpCall {
        command: command.into(),
        args: Some(args),
    }
}

impl Domain<'_> {
    /// `virsh update-device` on the running guest.
    pub(super) fn update_live(&self, dev: &DeviceDef, force: bool) -> Result<(), DriverError> {
        let DeviceDef::Disk(d) = dev else {
            return Err(DriverError::OperationUnsupported(format!(
                "live update of device '{}' is not supported",
                dev.kind()
            )));
        };
        let mut lg = self.live_guest()?;
        let Some(old) = lg
            .def
            .devices
            .disks
            .iter()
            .find(|x| x.target.dev == d.target.dev)
        else {
            return Err(DriverError::DeviceMissing(format!(
                "disk '{}' was not found in the domain",
                d.target.dev
            )));
        };
        let kind = old.device.as_deref().unwrap_or("disk");
        if !matches!(kind, "cdrom" | "floppy") {
            return Err(DriverError::OperationUnsupported(format!(
                "disk bus '{}' cannot be updated.",
                old.target.bus.as_deref().unwrap_or("")
            )));
        }
        self.change_medium(&mut lg, d, force)
    }

    /// Eject the medium of the drive `want` names and insert `want`'s source, if any.
    pub(super) fn change_medium(
        &self,
        lg: &mut LiveGuest,
        want: &Disk,
        force: bool,
    ) -> Result<(), DriverError> {
        let Some(index) = lg
            .def
            .devices
            .disks
            .iter()
            .position(|x| x.target.dev == want.target.dev)
        else {
            return Err(DriverError::DeviceMissing(format!(
                "disk '{}' was not found in the domain",
                want.target.dev
            )));
        };
        let mut next = lg.def.clone();
        let disk = &mut next.devices.disks[index];
        let Some(alias) = disk.info.alias.clone() else {
            return Err(DriverError::Internal(format!(
                "disk {} has no alias",
                want.target.dev
            )));
        };
        disk.source = want.source.clone();
        if want.dtype.is_some() {
            disk.dtype = want.dtype.clone();
        }
        if let Some(f) = want.driver.as_ref().and_then(|x| x.dtype.clone()) {
            disk.driver.get_or_insert_with(Default::default).dtype = Some(f);
        }
        disk.backing_store = None;
        let id = json!({ "id": alias });
        let mut steps = vec![step(
            call("blockdev-open-tray", json!({ "id": alias, "force": force })),
            None,
        )];
        if let Some(top) = medium_node(&mut lg.guest, &alias)? {
            steps.push(step(call("blockdev-remove-medium", id.clone()), None));
            let old_len = props::disk_chain_len(&lg.def, index).max(1);
            steps.extend(
                chain_cleanup(top, old_len)
                    .into_iter()
                    .map(|c| step(c, None)),
            );
        }
        let len = props::disk_chain_len(&next, index);
        if len > 0 {
            let nodes = fresh_nodes(&mut lg.guest, len)?;
            let caps = self.connect().emulator_caps_for(&next)?;
            let ctx = self.connect().launch_context(&next, next.id.unwrap_or(-1));
            let p = props::disk_props(&next, &caps, &ctx, index, &nodes, Plug::Hot)?;
            steps.extend(layer_steps(&p.layers));
            let top = format!("libvirt-{}-format", nodes[0]);
            steps.push(step(
                call(
                    "blockdev-insert-medium",
                    json!({ "id": alias, "node-name": top }),
                ),
                None,
            ));
        }
        steps.push(step(call("blockdev-close-tray", id), None));
        self.run_hotplug(&mut lg.guest, steps, &next)
    }
}
