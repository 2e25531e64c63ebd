//! The memory balloon (libvirt: qemuBuildMemballoonCommandLine).

use super::*;
use crate::domain::devices::MemballoonModel;

impl Builder<'_> {
    pub(super) fn memballoon(&mut self) -> R {
        let Some(b) = &self.def.devices.memballoon else {
            return Ok(());
        };
        let model = b.model.unwrap_or(MemballoonModel::Virtio);
        let drv = match model {
            m if m.is_virtio() => virtio_driver(
                "virtio-balloon",
                VirtioModel::of(Some(m.as_str())),
                &b.info.address,
            )?,
            MemballoonModel::None => return Ok(()),
            // libvirt: qemuValidateDomainDeviceDefMemballoon
            other => {
                return Err(unsupported(format!(
                    "Memory balloon device type '{}' is not supported by this version of qemu",
                    other.as_str()
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
