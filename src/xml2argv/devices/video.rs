//! Video devices (libvirt: qemuBuildVideoCommandLine).

use super::*;
use crate::domain::devices::Video;

impl Builder<'_> {
    pub(super) fn videos(&mut self) -> R {
        for (i, v) in self.def.devices.videos.iter().enumerate() {
            let alias = self.alias(&v.info)?;
            let m = v.model.clone().unwrap_or_default();
            let primary = i == 0;
            let mut j = JsonOpts::new();
            match m.vtype.as_str() {
                "none" => continue,
                "cirrus" => {
                    j.s("driver", "cirrus-vga").s("id", alias);
                }
                "vga" => {
                    j.s("driver", "VGA").s("id", alias);
                    if let Some(vg) = m.vgamem.or(m.vram) {
                        j.u("vgamem_mb", vg as u64 / 1024);
                    }
                }
                "vmvga" => {
                    j.s("driver", "vmware-svga").s("id", alias);
                    if let Some(vg) = m.vgamem.or(m.vram) {
                        j.u("vgamem_mb", vg as u64 / 1024);
                    }
                }
                "qxl" => {
                    j.s("driver", if primary { "qxl-vga" } else { "qxl" })
                        .s("id", alias);
                    j.u("max_outputs", m.heads.unwrap_or(1) as u64);
                    if let Some(r) = m.ram {
                        j.u("ram_size", r as u64 * 1024);
                    }
                    if let Some(r) = m.vram {
                        j.u("vram_size", r as u64 * 1024);
                    }
                    j.u("vram64_size_mb", m.vram64.unwrap_or(0) as u64 / 1024);
                    if let Some(r) = m.vgamem {
                        j.u("vgamem_mb", r as u64 / 1024);
                    }
                }
                "virtio" if is_vhost_user(v) => {
                    self.vhost_user_gpu(&mut j, v, &alias, primary)?;
                    let chardev = vhost_user::gpu_chardev(&alias, self.ctx.bind_socket_fd)?;
                    self.opt("-chardev", chardev);
                }
                "virtio" => {
                    let accel3d = m
                        .extra
                        .children
                        .iter()
                        .any(|c| c.name == "acceleration" && c.attr("accel3d") == Some("yes"));
                    j.s(
                        "driver",
                        match (primary && self.is_x86(), accel3d) {
                            (true, false) => "virtio-vga",
                            (true, true) => "virtio-vga-gl",
                            (false, false) => "virtio-gpu-pci",
                            (false, true) => "virtio-gpu-gl-pci",
                        },
                    )
                    .s("id", alias);
                    if let Some(h) = m.heads {
                        j.u("max_outputs", h as u64);
                    }
                }
                "bochs" => {
                    j.s("driver", "bochs-display").s("id", alias);
                    if let Some(vg) = m.vram {
                        j.u("vgamem", vg as u64 * 1024);
                    }
                }
                "ramfb" => {
                    j.s("driver", "ramfb").s("id", alias);
                }
                other => {
                    return Err(unsupported(format!("video '{other}' not supported yet")));
                }
            }
            self.info_props(&mut j, &v.info)?;
            self.device(&j);
        }
        Ok(())
    }

    /// A virtio GPU whose rendering runs in a vhost-user-gpu helper: `vhost-user-vga` as the
    /// primary VGA device, else a plain virtio device `vhost-user-gpu-*` with its virtio
    /// options (libvirt: qemuDeviceVideoGetModel, qemuBuildDeviceVideoCmd).
    fn vhost_user_gpu(&self, j: &mut JsonOpts, v: &Video, alias: &str, primary: bool) -> R {
        if primary && self.is_x86() {
            j.s("driver", "vhost-user-vga");
        } else {
            let drv = virtio_driver("vhost-user-gpu", VirtioModel::Default, &v.info.address)?;
            j.s("driver", drv);
            self.virtio_opts(j, v.driver.as_ref().map(|x| &x.virtio));
        }
        j.s("id", alias);
        let heads = v.model.as_ref().and_then(|m| m.heads);
        j.u_opt("max_outputs", heads.map(u64::from));
        j.s("chardev", vhost_user::chr_alias(alias));
        Ok(())
    }
}

/// Whether the video's rendering runs in a vhost-user back-end (`<driver name='vhostuser'/>`).
fn is_vhost_user(v: &Video) -> bool {
    v.driver.as_ref().and_then(|d| d.name.as_deref()) == Some("vhostuser")
}
