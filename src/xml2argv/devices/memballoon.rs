//! The memory balloon (libvirt: qemuBuildMemballoonCommandLine).

use super::*;

impl Builder<'_> {
    pub(super) fn memballoon(&mut self) -> R {
        let Some(b) = &self.def.devices.memballoon else {
            return Ok(());
        };
        let model = b.model.as_deref().unwrap_or("virtio");
        let drv = match model {
            "virtio" | "virtio-transitional" | "virtio-non-transitional" => virtio_driver(
                "virtio-balloon",
                VirtioModel::of(Some(model)),
                &b.info.address,
            )?,
            "none" => return Ok(()),
            // libvirt: qemuValidateDomainDeviceDefMemballoon
            other => {
                return Err(unsupported(format!(
                    "Memory balloon device type '{other}' is not supported by this version of qemu"
                )));
            }
        };
        let mut j = JsonOpts::new();
        j.s("driver", drv);
        self.virtio_opts(&mut j, b.driver.as_ref().map(|x| &x.virtio));
        j.s("id", self.alias(&b.info)?);
        j.tristate("free-page-reporting", b.free_page_reporting.as_deref());
        self.pci_props(&mut j, &b.info);
        j.tristate("deflate-on-oom", b.autodeflate.as_deref());
        self.device(&j);
        Ok(())
    }
}
