//! Video devices (libvirt: qemuBuildVideoCommandLine).

use super::*;

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
}
