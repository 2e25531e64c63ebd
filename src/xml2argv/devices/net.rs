//! Network interfaces (libvirt: qemuBuildNetCommandLine, qemuBuildNicDevProps).

use super::*;

impl Builder<'_> {
    pub(super) fn nets(&mut self) -> R {
        let mut tapfd = self.ctx.tap_fd_base;
        let mut vhostfd = self.ctx.vhost_fd_base;
        for (i, n) in self.def.devices.interfaces.iter().enumerate() {
            if n.itype == "vhostuser" {
                let chardev = self.vhostuser_net_chardev(n)?;
                self.opt("-chardev", chardev);
            }
            let vdpa_set = match n.itype.as_str() {
                "vdpa" => Some(self.vdpa_add_fd(n)?),
                _ => None,
            };
            let (nd, dev) = self.net_parts(i, n, &mut tapfd, &mut vhostfd, vdpa_set)?;
            let netdev = if self.has("netdev.json") {
                nd.build()
            } else {
                kv_from_json(&nd.into_value())
            };
            self.opt("-netdev", netdev);
            self.opt("-device", dev.build());
        }
        Ok(())
    }

    /// The host side (`-netdev`, QMP `netdev_add`) and the guest device (`-device`,
    /// `device_add`, `<qemu:override>` applied) of interface `i`: one source for the command
    /// line and hotplug (libvirt: qemuBuildHostNetProps, qemuBuildNicDevProps). `tapfd` and
    /// `vhostfd` are the next descriptor numbers, advanced past the ones it uses; `vdpa_set`
    /// is the fd set holding a vDPA interface's device.
    pub(super) fn net_parts(
        &self,
        i: usize,
        n: &Interface,
        tapfd: &mut i32,
        vhostfd: &mut i32,
        vdpa_set: Option<u32>,
    ) -> R<(JsonOpts, JsonOpts)> {
        {
            let alias = self.alias(&n.info)?;
            let host = format!("host{alias}");
            let model = n.model.as_deref().unwrap_or("rtl8139");
            let is_virtio = model.starts_with("virtio");
            let mut nd = JsonOpts::new();
            match n.itype.as_str() {
                "user" if n.backend_type.as_deref() == Some("passt") => {
                    // libvirt: qemuPasstAddNetProps; passt listens, QEMU connects.
                    let short = self.ctx.short_name(self.def);
                    let path = crate::xml2argv::helper_sockets::passt_socket(
                        &self.ctx.runtime_dir,
                        &short,
                        &alias,
                    );
                    nd.s("type", "stream")
                        .v("addr", serde_json::json!({"type": "unix", "path": path}))
                        .b("server", false);
                }
                "user" => {
                    nd.s("type", "user");
                }
                "ethernet" | "bridge" | "network" => {
                    nd.s("type", "tap").s("fd", tapfd.to_string());
                    *tapfd += 1;
                    if uses_vhost_net(self.def, n, self.ctx) {
                        nd.b("vhost", true).s("vhostfd", vhostfd.to_string());
                        *vhostfd += 1;
                    }
                }
                "server" | "client" | "mcast" | "udp" => socket_netdev(&mut nd, n),
                "vhostuser" => net_vhostuser::vhostuser_netdev(&mut nd, n, &alias),
                "vdpa" => net_vdpa::vdpa_netdev(&mut nd, n, vdpa_set)?,
                other => {
                    return Err(unsupported(format!(
                        "interface type '{other}' not supported yet"
                    )));
                }
            }
            nd.s("id", host.clone());
            let mut j = JsonOpts::new();
            let driver = if is_virtio {
                virtio_driver("virtio-net", VirtioModel::of(Some(model)), &n.info.address)?
            } else {
                model.to_string()
            };
            j.s("driver", driver);
            if is_virtio {
                self.virtio_opts(&mut j, n.driver.as_ref().map(|x| &x.virtio));
            }
            if is_virtio && let Some(d) = &n.driver {
                if let Some(q) = d.queues
                    && q > 1
                {
                    j.b("mq", true).u("vectors", 2 * q as u64 + 2);
                }
                if let Some(tm) = &d.txmode {
                    j.s("tx", if tm == "iothread" { "bh" } else { "timer" });
                }
                j.tristate("ioeventfd", d.ioeventfd.as_deref());
                j.tristate("event_idx", d.event_idx.as_deref());
                j.u_opt("rx_queue_size", d.queue_size.map(u64::from));
                let attr = |k: &str| {
                    d.extra
                        .attrs
                        .iter()
                        .find(|(n, _)| n == k)
                        .map(|(_, v)| v.as_str())
                };
                j.tristate("rss", attr("rss"));
                j.tristate("hash", attr("rss_hash_report"));
            }
            j.s("netdev", host).s("id", alias);
            j.s_opt("mac", n.mac.clone());

            let boot = n
                .info
                .boot
                .as_ref()
                .map(|b| b.order)
                .or(self.net_boot.get(&i).copied());
            if let Some(b) = boot {
                j.u("bootindex", b as u64);
            }
            self.info_props(&mut j, &n.info)?;
            let dev = self.with_overrides(&j).unwrap_or(j);
            Ok((nd, dev))
        }
    }
}

/// Whether interface `n` of `def` gets a vhost-net descriptor beside its tap: a virtio model on
/// KVM, unless `<driver name='qemu'/>` says no or the host has no usable vhost-net (libvirt:
/// qemuInterfaceOpenVhostNet). The start path opens exactly these.
pub fn uses_vhost_net(
    def: &crate::domain::DomainDef,
    n: &Interface,
    ctx: &crate::xml2argv::LaunchContext,
) -> bool {
    let is_virtio = n.model.as_deref().is_some_and(|m| m.starts_with("virtio"));
    let driver = n.driver.as_ref().and_then(|d| d.name.as_deref());
    ctx.vhost_net
        && is_virtio
        && driver != Some("qemu")
        && accel_of(def) == crate::capabilities::qemu::Accel::Kvm
}
