//! USB ports and redirected USB devices (libvirt: qemuBuildRedirdevCommandLine).

use super::*;

impl Builder<'_> {
    /// `"bus"`/`"port"` of a USB device: its own address, else the port handed out at start.
    pub(super) fn usb_props(
        &self,
        j: &mut JsonOpts,
        kind: &'static str,
        idx: usize,
        info: &DeviceInfo,
    ) -> R {
        match &info.address {
            Some(Address::Usb { bus, port }) => {
                j.s("bus", self.usb_bus(*bus)?);
                if let Some(p) = port {
                    j.s("port", p.clone());
                }
            }
            _ => {
                if let Some(p) = self.usb_ports.get(&(kind, idx)) {
                    j.s("bus", self.usb_bus(0)?).s("port", p.clone());
                }
            }
        }
        Ok(())
    }

    /// USB hubs (libvirt: qemuBuildHubCommandLine); other hub types are refused as
    /// libvirt's qemuBuildHubDevCmdLine does.
    pub(super) fn hubs(&mut self) -> R {
        for (i, h) in self.def.devices.hubs.iter().enumerate() {
            if h.htype != "usb" {
                return Err(unsupported(format!("hub type {} not supported", h.htype)));
            }
            let alias = self.alias(&h.info)?;
            let mut j = JsonOpts::new();
            j.s("driver", "usb-hub").s("id", alias);
            self.usb_props(&mut j, "hub", i, &h.info)?;
            self.device(&j);
        }
        Ok(())
    }

    pub(super) fn redirdevs(&mut self) -> R {
        for (i, r) in self.def.devices.redirdevs.iter().enumerate() {
            let alias = self.alias(&r.info)?;
            let chr = format!("char{alias}");
            self.chardev(&chr, r)?;
            let mut j = JsonOpts::new();
            j.s("driver", "usb-redir").s("chardev", chr).s("id", alias);
            if let Some(b) = r.info.boot.as_ref() {
                j.u("bootindex", b.order as u64);
            }
            self.usb_props(&mut j, "redirdev", i, &r.info)?;
            self.device(&j);
        }
        Ok(())
    }
}
