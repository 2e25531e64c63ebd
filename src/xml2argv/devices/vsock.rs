//! vsock (libvirt: qemuBuildVsockCommandLine).

use super::*;

impl Builder<'_> {
    pub(super) fn vsock(&mut self) -> R {
        let Some(v) = &self.def.devices.vsock else {
            return Ok(());
        };
        let drv = virtio_driver(
            "vhost-vsock",
            VirtioModel::of(v.model.as_deref()),
            &v.info.address,
        )?;
        let mut j = JsonOpts::new();
        j.s("driver", drv).s("id", self.alias(&v.info)?);
        let cid = if v.cid_auto.as_deref() == Some("yes") {
            self.ctx.vsock_auto_cid.unwrap_or(0)
        } else {
            v.cid_address.unwrap_or(3)
        };
        j.u("guest-cid", cid as u64);
        // libvirt passes the vhost-vsock fd it opened; a pretend start has none (-1).
        let fd = self.ctx.vsock_fd.or(self.ctx.pretend.then_some(-1));
        if let Some(fd) = fd {
            j.s("vhostfd", fd.to_string());
        }
        self.pci_props(&mut j, &v.info);
        self.device(&j);
        Ok(())
    }
}
