//! vhost-user back-ends: the `-chardev socket` a vhost-user device talks to its back-end
//! process through (libvirt: qemuDomainGetVhostUserChrAlias, qemuBuildChardevCommand for the
//! chardev sources libvirt builds for vhost-user disks and GPUs).

use super::*;

/// The id of the chardev of vhost-user device `alias` (libvirt: qemuDomainGetVhostUserChrAlias).
pub(super) fn chr_alias(alias: &str) -> String {
    format!("chr-vu-{alias}")
}

/// `reconnect=N` for a client socket whose `<reconnect enabled='yes' timeout='N'/>` asks QEMU
/// to reconnect after N seconds (libvirt: qemuBuildChrChardevReconnectStr).
pub(super) fn reconnect_opt(o: &mut KvOpts, enabled: Option<&str>, timeout: Option<&str>) {
    if enabled == Some("yes")
        && let Some(t) = timeout
    {
        o.kv("reconnect", t);
    }
}

/// The chardev of a vhost-user disk: a client of the back-end's UNIX socket (libvirt:
/// qemuBuildStorageSourceChainAttachPrepareChardev).
pub(super) fn disk_chardev(alias: &str, src: Option<&DiskSource>) -> R<String> {
    let path = src.and_then(DiskSource::vhost_user_socket).ok_or_else(|| {
        // libvirt: virDomainChrSourceDefValidate, the disk's source is a chardev source
        Xml2ArgvError::Xml("Missing source path attribute for char device".into())
    })?;
    let mut o = KvOpts::with_head("socket");
    o.kv("id", chr_alias(alias));
    o.kv("path", path);
    if let Some((enabled, timeout)) = src.and_then(|s| s.reconnect.as_ref()) {
        reconnect_opt(&mut o, enabled.as_deref(), timeout.as_deref());
    }
    Ok(o.build())
}

/// The chardev of a vhost-user GPU: the descriptor of the socket pair shared with the
/// `vhost-user-gpu` helper (libvirt: qemuBuildVideoCommandLine, `priv->vhost_user_fd`). Only
/// a caller that started the helper has one.
pub(super) fn gpu_chardev(alias: &str, fd: Option<i32>) -> R<String> {
    let fd = fd.ok_or_else(|| {
        unsupported("video backend 'vhostuser' needs a vhost-user-gpu helper, not started yet")
    })?;
    let mut o = KvOpts::with_head("socket");
    o.kv("id", chr_alias(alias));
    o.kv("fd", fd);
    Ok(o.build())
}
