//! Host devices (libvirt: qemuBuildHostdevCommandLine).

use super::*;

impl Builder<'_> {
    pub(super) fn hostdevs(&mut self) -> R {
        use crate::domain::devices::HostAddress;
        let mut scsi_node = super::disk::first_free_node(&self.def.devices.disks);
        for (i, h) in self.def.devices.hostdevs.iter().enumerate() {
            let alias = self.alias(&h.info)?;
            let boot = h.info.boot.as_ref().map(|b| b.order);
            let src = h.source.clone().unwrap_or_default();
            let mut j = JsonOpts::new();
            match (h.htype.as_deref(), &src.address) {
                (Some("usb"), Some(HostAddress::Usb { bus, device })) => {
                    let n = |v: &str| v.trim().parse::<u32>().unwrap_or(0);
                    j.s("driver", "usb-host")
                        .s(
                            "hostdevice",
                            format!("/dev/bus/usb/{:03}/{:03}", n(bus), n(device)),
                        )
                        .s("id", alias);
                    if let Some(b) = boot {
                        j.u("bootindex", b as u64);
                    }
                    match src.guest_reset.as_deref() {
                        Some("off") => {
                            j.b("guest-reset", false);
                        }
                        Some("uninitialized") => {
                            j.b("guest-reset", true).b("guest-resets-all", false);
                        }
                        Some("on") => {
                            j.b("guest-reset", true).b("guest-resets-all", true);
                        }
                        _ => {}
                    }
                    self.usb_props(&mut j, "hostdev", i, &h.info)?;
                }
                (
                    Some("pci"),
                    Some(HostAddress::Pci {
                        domain,
                        bus,
                        slot,
                        function,
                    }),
                ) => {
                    j.s("driver", "vfio-pci")
                        .s(
                            "host",
                            format!("{domain:04x}:{bus:02x}:{slot:02x}.{function:x}"),
                        )
                        .s("id", alias);
                    if let Some(b) = boot {
                        j.u("bootindex", b as u64);
                    }
                    self.pci_props(&mut j, &h.info);
                }
                (Some("mdev"), _) => j = self.mdev_props(h, &alias)?,
                (Some("scsi"), _) => {
                    let parts = self.scsi_hostdev_parts(h, &alias, scsi_node)?;
                    scsi_node += 1;
                    for o in &parts.objects {
                        self.object(o);
                    }
                    self.opt("-blockdev", parts.backend.build());
                    j = parts.device;
                }
                (Some("scsi_host"), _) => j = self.vhost_scsi_props(h, &alias)?,
                (t, _) => {
                    return Err(unsupported(format!(
                        "hostdev type '{}' not supported yet",
                        t.unwrap_or("")
                    )));
                }
            }
            self.device(&j);
        }
        Ok(())
    }
}
