//! The memory balloon (libvirt: qemuBuildMemballoonCommandLine).

use super::*;

impl Builder<'_> {
    pub(super) fn memballoon(&mut self) {
        let Some(b) = &self.def.devices.memballoon else {
            return;
        };
        let model = b.model.as_deref().unwrap_or("virtio");
        let drv = match model {
            "virtio" => "virtio-balloon-pci",
            "virtio-transitional" => "virtio-balloon-pci-transitional",
            "virtio-non-transitional" => "virtio-balloon-pci-non-transitional",
            _ => return,
        };
        let mut j = JsonOpts::new();
        j.s("driver", drv);
        self.virtio_opts(&mut j, b.driver.as_ref().map(|x| &x.virtio));
        j.s("id", b.info.alias.clone().unwrap_or("balloon0".into()));
        j.tristate("free-page-reporting", b.free_page_reporting.as_deref());
        self.pci_props(&mut j, &b.info);
        j.tristate("deflate-on-oom", b.autodeflate.as_deref());
        self.device(&j);
    }
}
