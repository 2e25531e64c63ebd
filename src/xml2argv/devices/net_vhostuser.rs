//! vhost-user interfaces: the guest's virtio-net queues served by a process on a UNIX socket,
//! reached through a socket chardev (libvirt: qemuBuildInterfaceCommandLine's vhost-user
//! case, qemuBuildChardevCommand).

use super::*;

impl Builder<'_> {
    /// The `-chardev` of vhost-user interface `n`, named `char<alias>`. In server mode QEMU
    /// waits at startup for the back-end to connect; a real start here cannot hand that
    /// over, so it refuses server mode rather than hang (libvirt's pretend start builds it).
    pub(super) fn vhostuser_net_chardev(&self, n: &Interface) -> R<String> {
        let alias = self.alias(&n.info)?;
        let src = n.source.as_ref();
        if src.and_then(|s| s.stype.as_deref()).unwrap_or("unix") != "unix" {
            return Err(unsupported(format!(
                "vhost-user interface '{alias}' needs a source of type 'unix'"
            )));
        }
        let path = src.and_then(|s| s.path.clone()).ok_or_else(|| {
            unsupported(format!("vhost-user interface '{alias}' has no socket path"))
        })?;
        let server = src.and_then(|s| s.mode.as_deref()) == Some("server");
        if server && !self.ctx.pretend {
            return Err(unsupported(format!(
                "vhost-user interface '{alias}' in server mode is not supported yet: QEMU would wait for its back-end at startup"
            )));
        }
        let mut o = KvOpts::with_head("socket");
        o.kv("id", format!("char{alias}")).kv("path", path);
        if server {
            o.raw("server=on");
        }
        let reconnect = src
            .and_then(|s| s.extra.children.iter().find(|c| c.name == "reconnect"))
            .filter(|r| r.attr("enabled") == Some("yes"))
            .and_then(|r| r.attr("timeout"));
        if let Some(t) = reconnect {
            o.kv("reconnect", t);
        }
        Ok(o.build())
    }
}

/// The `-netdev` of a vhost-user interface: its chardev and, past one, its queue count
/// (libvirt: qemuBuildHostNetProps).
pub(super) fn vhostuser_netdev(nd: &mut JsonOpts, n: &Interface, alias: &str) {
    nd.s("type", "vhost-user")
        .s("chardev", format!("char{alias}"));
    if let Some(q) = n.driver.as_ref().and_then(|d| d.queues)
        && q > 1
    {
        nd.u("queues", q as u64);
    }
}
