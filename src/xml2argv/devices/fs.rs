//! Filesystem passthrough (libvirt: qemuBuildFilesystemCommandLine).

use super::*;

impl Builder<'_> {
    pub(super) fn filesystems(&mut self) -> R {
        for fs in self.def.devices.filesystems.iter() {
            let alias = self.alias(&fs.info)?;
            let driver = fs.driver.as_ref().and_then(|d| d.dtype.as_deref());
            if driver == Some("virtiofs") {
                self.virtiofs(fs, &alias);
                continue;
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

    /// A virtiofs share: QEMU connects to the socket virtiofsd serves in the start's private
    /// dir (libvirt: qemuBuildVHostUserFsCommandLine, qemuDomainGetVHostUserFSSocketPath).
    fn virtiofs(&mut self, fs: &crate::domain::devices::Filesystem, alias: &str) {
        let (chr, path) = self.virtiofs_chardev(fs, alias);
        let mut c = KvOpts::with_head("socket");
        c.kv("id", &chr).kv("path", path);
        self.opt("-chardev", c.build());
        let j = self.virtiofs_device(fs, alias);
        self.device(&j);
    }

    /// The id and socket path of the vhost-user chardev of virtiofs share `alias`: a
    /// client of virtiofsd's socket, the user's own with `<source socket=>` (a daemon
    /// started outside; libvirt: qemuDomainGetVHostUserFSSocketPath).
    pub(super) fn virtiofs_chardev(
        &self,
        fs: &crate::domain::devices::Filesystem,
        alias: &str,
    ) -> (String, String) {
        let path = match fs.source.as_ref().and_then(|s| s.socket.clone()) {
            Some(sock) => sock,
            None => crate::xml2argv::helper_sockets::virtiofs_socket(&self.ctx.lib_dir, alias),
        };
        (format!("chr-vu-{alias}"), path)
    }

    /// The `vhost-user-fs-pci` device of a virtiofs share (libvirt:
    /// qemuBuildVHostUserFsDevProps, which hotplug uses too).
    pub(super) fn virtiofs_device(
        &self,
        fs: &crate::domain::devices::Filesystem,
        alias: &str,
    ) -> JsonOpts {
        let mut j = JsonOpts::new();
        j.s("driver", "vhost-user-fs-pci");
        self.virtio_opts(&mut j, fs.driver.as_ref().map(|x| &x.virtio));
        j.s("id", alias).s("chardev", format!("chr-vu-{alias}"));
        let queue = fs.driver.as_ref().and_then(|d| {
            d.extra
                .attrs
                .iter()
                .find(|(k, _)| k == "queue")
                .and_then(|(_, v)| v.parse::<u64>().ok())
        });
        j.u_opt("queue-size", queue)
            .s("tag", fs.target_dir.clone().unwrap_or_default());
        if let Some(b) = &fs.info.boot {
            j.u("bootindex", b.order as u64);
        }
        self.pci_props(&mut j, &fs.info);
        j
    }
}
