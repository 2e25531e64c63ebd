//! SCSI host devices: a host or iSCSI LUN passed through as `scsi-generic` (`type='scsi'`),
//! and a host SCSI target served through vhost-scsi (`type='scsi_host'`) (libvirt:
//! qemuBuildHostdevSCSICommandLine, qemuBuildSCSIVHostHostdevDevProps).

use super::*;
use crate::domain::devices::{HostAddress, Hostdev};

/// What QEMU gets for one `<hostdev type='scsi'>`: the objects its backend needs (an iSCSI
/// login secret), the backend node, then the guest's `scsi-generic` device.
#[derive(Debug, Clone, Default)]
pub(super) struct ScsiHostdevParts {
    pub objects: Vec<JsonOpts>,
    pub backend: JsonOpts,
    pub device: JsonOpts,
}

/// The block node name of the backend numbered `n` (libvirt: `libvirt-N-backend`).
fn backend_node(n: u32) -> String {
    format!("libvirt-{n}-backend")
}

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

    /// A `<hostdev type='scsi'>` with backend node number `node`: a local LUN through its
    /// SCSI generic node, or an iSCSI LUN QEMU logs in to itself (libvirt:
    /// qemuBuildHostdevSCSIAttachPrepare, qemuBuildSCSIHostdevDevProps).
    pub(super) fn scsi_hostdev_parts(
        &self,
        h: &Hostdev,
        alias: &str,
        node: u32,
    ) -> R<ScsiHostdevParts> {
        let name = backend_node(node);
        let src = h.source.clone().unwrap_or_default();
        let mut parts = ScsiHostdevParts::default();
        let mut backend = if src.protocol.as_deref() == Some("iscsi") {
            let disk_src = src
                .network_source()
                .map_err(|e| Xml2ArgvError::Xml(e.to_string()))?;
            let mut pre = Vec::new();
            let secret = format!("{name}-secret0");
            let auth = disk_src.auth.as_ref();
            let j = storage::iscsi_props(self.ctx, &disk_src, auth, &secret, &mut pre)?;
            parts.objects = pre.into_iter().map(|(_, o)| o).collect();
            j
        } else {
            let mut j = JsonOpts::new();
            j.s("driver", "host_device")
                .s("filename", self.scsi_generic_path(&src)?);
            j
        };
        backend
            .s("node-name", name.clone())
            .b("read-only", h.readonly);
        parts.backend = backend;
        let mut j = JsonOpts::new();
        j.s("driver", "scsi-generic")
            .s("drive", name)
            .s("id", alias);
        if let Some(b) = h.info.boot.as_ref() {
            j.u("bootindex", b.order as u64);
        }
        self.scsi_address_props(&mut j, &h.info.address);
        parts.device = j;
        Ok(parts)
    }

    /// The host's SCSI generic node of a local LUN (libvirt: virSCSIDeviceGetSgName, which
    /// reads it from sysfs; the launch context answers for the host).
    fn scsi_generic_path(&self, src: &crate::domain::devices::HostdevSource) -> R<String> {
        let adapter = src.adapter.as_deref().ok_or_else(|| {
            // libvirt: virDomainHostdevSubsysSCSIHostDefParseXML
            Xml2ArgvError::Xml("'adapter' must be specified for scsi hostdev source".into())
        })?;
        let Some(HostAddress::Scsi { bus, target, unit }) = &src.address else {
            return Err(Xml2ArgvError::Xml(
                "'address' must be specified for scsi hostdev source".into(),
            ));
        };
        self.ctx.scsi_generic_dev.clone().ok_or_else(|| {
            unsupported(format!(
                "SCSI hostdev {adapter}:{bus}:{target}:{unit}: finding its SCSI generic node is not supported yet"
            ))
        })
    }
}
