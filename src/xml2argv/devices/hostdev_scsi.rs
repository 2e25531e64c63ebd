//! SCSI host devices: a host SCSI target served through vhost-scsi (`type='scsi_host'`)
//! (libvirt: qemuBuildSCSIVHostHostdevDevProps).

use super::*;
use crate::domain::devices::Hostdev;

impl Builder<'_> {
    /// The `-device` of a `<hostdev type='scsi_host'>`: the host's vhost-scsi target named by
    /// its WWPN, with the `/dev/vhost-scsi` descriptor the caller opened, else QEMU opens it
    /// (libvirt: qemuBuildSCSIVHostHostdevDevProps).
    pub(super) fn vhost_scsi_props(&self, h: &Hostdev, alias: &str) -> R<JsonOpts> {
        let src = h.source.as_ref();
        if src.and_then(|s| s.protocol.as_deref()) != Some("vhost") {
            // libvirt: virDomainHostdevSubsysSCSIVHostDefParseXML
            return Err(Xml2ArgvError::Xml(
                "Missing scsi_host subsystem protocol".into(),
            ));
        }
        let wwpn = src
            .and_then(|s| s.wwpn.clone())
            .ok_or_else(|| Xml2ArgvError::Xml("missing vhost-scsi hostdev source wwpn".into()))?;
        let model = VirtioModel::of(h.model.as_deref());
        let mut j = JsonOpts::new();
        j.s(
            "driver",
            virtio_driver("vhost-scsi", model, &h.info.address)?,
        )
        .s("wwpn", wwpn);
        if let Some(fd) = self.ctx.vhost_scsi_fd {
            j.s("vhostfd", fd.to_string());
        }
        j.s("id", alias);
        if let Some(b) = h.info.boot.as_ref() {
            j.u("bootindex", b.order as u64);
        }
        self.info_props(&mut j, &h.info)?;
        Ok(j)
    }
}
