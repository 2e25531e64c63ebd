//! vsock (libvirt: qemuBuildVsockCommandLine).

use super::*;

impl Builder<'_> {
    pub(super) fn vsock(&mut self) {
        let Some(v) = &self.def.devices.vsock else {
            return;
        };
        let drv = match v.model.as_deref() {
            Some("virtio-transitional") => "vhost-vsock-pci-transitional",
            Some("virtio-non-transitional") => "vhost-vsock-pci-non-transitional",
            _ => "vhost-vsock-pci",
        };
        let mut j = JsonOpts::new();
        j.s("driver", drv)
            .s("id", v.info.alias.clone().unwrap_or("vsock0".into()));
        let cid = if v.cid_auto.as_deref() == Some("yes") {
            42
        } else {
            v.cid_address.unwrap_or(3) as u64
        };
        j.u("guest-cid", cid).s("vhostfd", "6789");
        self.pci_props(&mut j, &v.info);
        self.device(&j);
    }
}
