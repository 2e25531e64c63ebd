//! Watchdogs (libvirt: qemuBuildWatchdogCommandLine).

use super::*;

impl Builder<'_> {
    pub(super) fn watchdogs(&mut self) -> R {
        for (i, w) in self.def.devices.watchdogs.iter().enumerate() {
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
            self.device(&j);
            if i == 0
                && let Some(a) = &w.action
            {
                let act = match a.as_str() {
                    "dump" => "pause",
                    other => other,
                };
                self.opt("-watchdog-action", act);
            }
        }
        Ok(())
    }
}
