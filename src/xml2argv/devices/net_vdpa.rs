//! vDPA interfaces: the guest's virtio-net queues served by a host vDPA device, which QEMU
//! reaches through a descriptor the caller opened and passes in an fd set (libvirt:
//! qemuBuildInterfaceConnect's vdpa case, qemuBuildHostNetProps, qemuFDPassTransferCommand).

use super::*;

impl Builder<'_> {
    /// The `-add-fd` of vDPA interface `n` (opaque `<alias>-vdpa`); returns its fd set. The
    /// caller must have opened the device: QEMU is never handed the path itself.
    pub(super) fn vdpa_add_fd(&mut self, n: &Interface) -> R<u32> {
        let alias = self.alias(&n.info)?;
        let dev = n
            .source
            .as_ref()
            .and_then(|s| s.dev.as_deref())
            .unwrap_or("");
        let fd = match self.ctx.vdpa_fds {
            Some(VdpaFds::Same(fd)) => fd,
            Some(VdpaFds::From(base)) => {
                let nth = self
                    .def
                    .devices
                    .interfaces
                    .iter()
                    .filter(|x| x.itype == "vdpa")
                    .position(|x| std::ptr::eq(x, n))
                    .unwrap_or(0);
                base + nth as i32
            }
            // The caller opens the device (libvirt: qemuVDPAConnect) before the build.
            None => {
                return Err(Xml2ArgvError::Internal(format!(
                    "no descriptor was opened for vdpa device '{dev}'"
                )));
            }
        };
        let set = self.fdset;
        self.fdset += 1;
        self.opt("-add-fd", format!("set={set},fd={fd},opaque={alias}-vdpa"));
        Ok(set)
    }
}

/// The `-netdev` properties of vDPA interface `n` whose descriptor is in fd set `set`
/// (`None`: no set was prepared, as in a hotplug).
pub(super) fn vdpa_netdev(nd: &mut JsonOpts, n: &Interface, set: Option<u32>) -> R<()> {
    let Some(set) = set else {
        return Err(unsupported(
            "hotplug of a vdpa interface is not supported yet",
        ));
    };
    nd.s("type", "vhost-vdpa")
        .s("vhostdev", format!("/dev/fdset/{set}"));
    if let Some(q) = n.driver.as_ref().and_then(|d| d.queues)
        && q > 1
    {
        nd.u("queues", u64::from(q));
    }
    Ok(())
}
