//! Smartcards on a CCID reader (libvirt: qemuBuildSmartcardCommandLine): an emulated card
//! backed by the host's NSS database or by certificates, or a card passed through a chardev.

use super::*;
use crate::domain::devices::{Chardev, Smartcard};

/// The NSS database an emulated card with certificates uses when none is given (libvirt:
/// VIR_DOMAIN_SMARTCARD_DEFAULT_DATABASE).
const DEFAULT_DATABASE: &str = "/etc/pki/nssdb";

impl Builder<'_> {
    pub(super) fn smartcards(&mut self) -> R {
        for sc in &self.def.devices.smartcards {
            let alias = self.alias(&sc.info)?;
            let mut j = JsonOpts::new();
            match sc.mode.as_deref() {
                Some("host") => {
                    j.s("driver", "ccid-card-emulated")
                        .s("backend", "nss-emulated");
                }
                Some("host-certificates") => {
                    j.s("driver", "ccid-card-emulated")
                        .s("backend", "certificates");
                    for (i, c) in sc.certificates.iter().enumerate() {
                        j.s(&format!("cert{}", i + 1), c.clone());
                    }
                    j.s("db", sc.database.as_deref().unwrap_or(DEFAULT_DATABASE));
                }
                Some("passthrough") => {
                    let chr = format!("char{alias}");
                    self.chardev(&chr, &passthrough_chardev(sc))?;
                    j.s("driver", "ccid-card-passthru").s("chardev", chr);
                }
                other => {
                    return Err(unsupported(format!(
                        "smartcard mode '{}' not supported yet",
                        other.unwrap_or("")
                    )));
                }
            }
            let controller = match &sc.info.address {
                Some(Address::Ccid { controller, .. }) => *controller,
                _ => 0,
            };
            let bus = format!("{}.0", self.controller_alias("ccid", controller)?);
            j.s("id", alias).s("bus", bus);
            self.device(&j);
        }
        Ok(())
    }
}

/// The chardev a passthrough card talks through: the smartcard's own source.
fn passthrough_chardev(sc: &Smartcard) -> Chardev {
    Chardev {
        kind: "smartcard".to_string(),
        stype: sc.stype.clone(),
        sources: sc.sources.clone(),
        protocol: sc.protocol.clone(),
        info: sc.info.clone(),
        ..Default::default()
    }
}
