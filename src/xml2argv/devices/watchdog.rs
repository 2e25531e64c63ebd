//! Watchdogs (libvirt: qemuBuildWatchdogCommandLine, qemuBuildWatchdogDevProps).

use super::*;

impl Builder<'_> {
    pub(super) fn watchdogs(&mut self) -> R {
        for (i, w) in self.def.devices.watchdogs.iter().enumerate() {
            let j = self.watchdog_device(w)?;
            self.opt("-device", j.build());
            if i == 0
                && let Some(a) = &w.action
            {
                self.opt("-watchdog-action", watchdog_action(a));
            }
        }
        Ok(())
    }

    /// The device of `w` (`-device`, QMP `device_add`, `<qemu:override>` applied): one
    /// source for the command line and hotplug.
    pub(super) fn watchdog_device(&self, w: &Watchdog) -> R<JsonOpts> {
        let alias = self.alias(&w.info)?;
        let drv = match w.model.as_deref().unwrap_or("i6300esb") {
            "i6300esb" => "i6300esb",
            "ib700" => "ib700",
            "diag288" => "diag288",
            "itco" => return Err(unsupported("itco watchdog not supported yet")),
            other => return Err(unsupported(format!("watchdog '{other}' not supported yet"))),
        };
        let mut j = JsonOpts::new();
        j.s("driver", drv).s("id", alias);
        self.pci_props(&mut j, &w.info);
        Ok(self.with_overrides(&j).unwrap_or(j))
    }
}

/// QEMU's name of a watchdog action, for `-watchdog-action` and QMP `set-action`: QEMU has
/// no `dump`; libvirt asks for `pause` and dumps on the event itself.
pub fn watchdog_action(action: &str) -> &str {
    match action {
        "dump" => "pause",
        other => other,
    }
}
