//! Devices whose backend is a helper process of the guest: virtiofs shares (virtiofsd) and
//! passt interfaces (libvirt: qemuDomainAttachFSDevice, qemuDomainAttachNetDevice with
//! qemuPasstStart). The driver plans the helper exactly as a start plans it; the guest's
//! monitor, the parent of every helper, starts it before the QMP steps, stops it when a
//! step fails, and stops it again once QEMU let the device go.

use serde_json::json;

use super::live::{LiveGuest, call, next_alias, step};
use super::live_more::{backend_steps, filesystem_refusal, with_alias};
use crate::domain::DomainDef;
use crate::domain::devices::{Devices, Filesystem};
use crate::driver::DriverError;
use crate::driver::domain::Domain;
use crate::driver::helpers::HelperSpec;
use crate::xml2argv::props;

pub(super) fn is_virtiofs(f: &Filesystem) -> bool {
    f.driver.as_ref().and_then(|d| d.dtype.as_deref()) == Some("virtiofs")
}

/// The helpers a start of `next` would run for the one device `only` keeps.
fn helpers_of(
    dom: &Domain,
    next: &DomainDef,
    only: impl FnOnce(&DomainDef, &mut Devices),
) -> Result<Vec<HelperSpec>, DriverError> {
    let mut one = next.clone();
    one.devices = Devices::default();
    only(next, &mut one.devices);
    let ctx = dom.connect().launch_context(next, next.id.unwrap_or(-1));
    Ok(dom.connect().plan_helpers(&one, &ctx)?.specs)
}

/// The passt a hotplugged interface `index` of `next` needs, if it is a passt one.
pub(super) fn net_helpers(
    dom: &Domain,
    next: &DomainDef,
    index: usize,
) -> Result<Vec<HelperSpec>, DriverError> {
    let passt = next
        .devices
        .interfaces
        .get(index)
        .is_some_and(|n| n.itype == "user" && n.backend_type.as_deref() == Some("passt"));
    if !passt {
        return Ok(Vec::new());
    }
    helpers_of(dom, next, |d, one| {
        one.interfaces.push(d.devices.interfaces[index].clone())
    })
}

impl Domain<'_> {
    /// A virtiofs share on the running guest: virtiofsd for it, the vhost-user chardev,
    /// then the device (libvirt: qemuDomainAttachFSDevice). The guest's memory must be
    /// shared, as at a start; libvirt 9.0 hotplugs no other filesystem.
    pub(super) fn attach_fs_live(
        &self,
        mut lg: LiveGuest,
        mut f: Filesystem,
    ) -> Result<(), DriverError> {
        if !is_virtiofs(&f) {
            return Err(filesystem_refusal());
        }
        // libvirt: qemuAssignDeviceFSAlias.
        with_alias(&mut f.info, || next_alias(&lg.def, "fs"));
        let before = lg.def.devices.filesystems.len();
        let (prep, caps) = self.prepared_with(&lg.def, |def| def.devices.filesystems.push(f))?;
        let Some(fs) = prep.devices.filesystems.get(before).cloned() else {
            return Err(DriverError::Internal(
                "filesystem lost in preparation".into(),
            ));
        };
        let mut next = lg.def.clone();
        next.devices.filesystems.push(fs);
        let ctx = self.connect().launch_context(&next, next.id.unwrap_or(-1));
        let p = props::filesystem_props(&next, &caps, &ctx, before)?;
        let helpers = helpers_of(self, &next, |d, one| {
            one.filesystems.push(d.devices.filesystems[before].clone())
        })?;
        let mut steps = backend_steps(Some(p.chardev), None);
        steps.push(step(call("device_add", p.device), None));
        self.run_hotplug_with(&mut lg.guest, steps, &next, helpers)
    }
}

/// What frees a virtiofs share's backend once QEMU removed its device (libvirt:
/// qemuDomainRemoveFSDevice); its virtiofsd the monitor stops by itself.
pub(super) fn fs_cleanup(
    def: &DomainDef,
    alias: &str,
) -> Option<Vec<crate::driver::monitor::proto::QmpCall>> {
    def.devices
        .filesystems
        .iter()
        .any(|x| x.info.alias.as_deref() == Some(alias) && is_virtiofs(x))
        .then(|| {
            vec![call(
                "chardev-remove",
                json!({ "id": format!("chr-vu-{alias}") }),
            )]
        })
}
