//! Filesystem passthrough (libvirt: qemuBuildFilesystemCommandLine).

use super::*;

impl Builder<'_> {
    pub(super) fn filesystems(&mut self) -> R {
        for fs in self.def.devices.filesystems.iter() {
            let alias = self.alias(&fs.info)?;
            let driver = fs.driver.as_ref().and_then(|d| d.dtype.as_deref());
            if driver == Some("virtiofs") {
                return Err(unsupported("virtiofs not supported yet"));
            }
            let o = crate::xml2argv::fsdev::fsdev_opts(fs, &alias);
            self.opt("-fsdev", o.build());
            let mut j = JsonOpts::new();
            j.s("driver", crate::xml2argv::fsdev::device_driver(fs));
            self.virtio_opts(&mut j, fs.driver.as_ref().map(|x| &x.virtio));
            j.s("id", alias.clone())
                .s("fsdev", format!("fsdev-{alias}"))
                .s("mount_tag", fs.target_dir.clone().unwrap_or_default());
            self.pci_props(&mut j, &fs.info);
            self.device(&j);
        }
        Ok(())
    }
}
