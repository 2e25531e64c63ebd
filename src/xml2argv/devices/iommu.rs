//! The guest IOMMU (libvirt: qemuBuildIOMMUCommandLine).

use super::*;

impl Builder<'_> {
    /// Intel's and virtio's IOMMU are devices; SMMUv3 is a machine property (see
    /// `machine_opts`), so it adds nothing here.
    pub(super) fn iommu(&mut self) -> R {
        let Some(iommu) = &self.def.devices.iommu else {
            return Ok(());
        };
        let mut j = JsonOpts::new();
        match iommu.model.as_str() {
            "intel" => {
                j.s("driver", "intel-iommu")
                    .s("id", self.alias(&iommu.info)?);
                j.s_opt("intremap", iommu.intremap.clone());
                j.tristate("caching-mode", iommu.caching_mode.as_deref());
                match iommu.eim.as_deref() {
                    Some("on") => {
                        j.s("eim", "on");
                    }
                    Some("off") => {
                        j.s("eim", "off");
                    }
                    _ => {}
                }
                j.tristate("device-iotlb", iommu.iotlb.as_deref());
                if let Some(aw) = iommu.aw_bits {
                    j.u("aw-bits", aw as u64);
                }
            }
            // A plain `virtio-iommu` (QEMU's alias of the bus's variant) at the address
            // prepare gave it on the root bus.
            "virtio" => {
                j.s("driver", "virtio-iommu")
                    .s("id", self.alias(&iommu.info)?);
                self.info_props(&mut j, &iommu.info)?;
            }
            "smmuv3" => return Ok(()),
            other => {
                return Err(unsupported(format!(
                    "IOMMU model '{other}' is not supported"
                )));
            }
        }
        self.device(&j);
        Ok(())
    }
}
