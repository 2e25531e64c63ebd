//! Input devices (libvirt: qemuBuildInputCommandLine).

use super::*;
use crate::domain::devices::Input;

impl Builder<'_> {
    pub(super) fn inputs(&mut self) -> R {
        for (i, inp) in self.def.devices.inputs.iter().enumerate() {
            let alias = self.alias(&inp.info)?;
            let bus = inp.bus.as_deref().unwrap_or("ps2");
            let mut j = JsonOpts::new();
            if inp.itype == "evdev" {
                self.object(&evdev_props(inp, alias));
                continue;
            }
            match (inp.itype.as_str(), bus) {
                (_, "ps2") => continue,
                (t, "usb") => {
                    let drv = match t {
                        "mouse" => "usb-mouse",
                        "tablet" => "usb-tablet",
                        "keyboard" => "usb-kbd",
                        _ => return Err(unsupported(format!("input type '{t}' not supported"))),
                    };
                    j.s("driver", drv).s("id", alias);
                    self.usb_props(&mut j, "input", i, &inp.info)?;
                }
                (t, "virtio") => {
                    let base = match t {
                        "mouse" => "virtio-mouse",
                        "tablet" => "virtio-tablet",
                        "keyboard" => "virtio-keyboard",
                        "passthrough" => "virtio-input-host",
                        _ => return Err(unsupported(format!("input type '{t}' not supported"))),
                    };
                    let drv = virtio_driver(
                        base,
                        VirtioModel::of(inp.model.as_deref()),
                        &inp.info.address,
                    )?;
                    j.s("driver", drv);
                    self.virtio_opts(&mut j, inp.driver.as_ref().map(|x| &x.virtio));
                    j.s("id", alias);
                    if let Some(ev) = inp.source.as_ref().and_then(|s| s.evdev.clone()) {
                        j.s("evdev", ev);
                    }
                    self.info_props(&mut j, &inp.info)?;
                }
                (t, b) => {
                    return Err(unsupported(format!(
                        "input {t} on bus {b} not supported yet"
                    )));
                }
            }
            self.device(&j);
        }
        Ok(())
    }
}

/// A host evdev device grabbed for the guest (libvirt: qemuBuildInputEvdevProps).
fn evdev_props(inp: &Input, alias: String) -> JsonOpts {
    let src = inp.source.as_ref();
    let mut j = JsonOpts::new();
    j.s("qom-type", "input-linux").s("id", alias);
    if let Some(dev) = src.and_then(|s| s.dev.clone().or_else(|| s.evdev.clone())) {
        j.s("evdev", dev);
    }
    match src.and_then(|s| s.repeat.as_deref()) {
        Some("on") => {
            j.b("repeat", true);
        }
        Some("off") => {
            j.b("repeat", false);
        }
        _ => {}
    }
    if src.and_then(|s| s.grab.as_deref()) == Some("all") {
        j.b("grab_all", true);
    }
    if let Some(t) = src.and_then(|s| s.grab_toggle.clone()) {
        j.s("grab-toggle", t);
    }
    j
}
