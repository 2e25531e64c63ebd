//! OS and firmware checks: libvirt's virDomainDefOSValidate.

use super::{DomainError, detail};
use crate::domain::model::DomainDef;

pub(super) fn validate_os(def: &DomainDef) -> Result<(), DomainError> {
    let os = &def.os;
    let stateless = os.loader.as_ref().and_then(|l| l.stateless.as_deref());
    if os.firmware.as_deref() == Some("bios") && (stateless == Some("no") || os.nvram.is_some()) {
        return Err(detail("Only EFI firmware permits NVRAM"));
    }
    // With autoselection the descriptor decides the loader's type and whether it is secure;
    // the XML may only ask for a secure one. A bare path implies a type.
    if os.firmware.is_some()
        && let Some(l) = &os.loader
    {
        if l.ltype.is_some() || l.path.is_some() {
            return Err(detail(
                "loader attribute 'type' cannot be specified when firmware autoselection is enabled",
            ));
        }
        if l.secure.as_deref() == Some("no") {
            return Err(detail(
                "loader attribute 'secure' cannot be specified when firmware autoselection is enabled",
            ));
        }
    }
    if let Some(features) = &os.firmware_features {
        if os.firmware.is_none() {
            return Err(detail(
                "cannot use feature-based firmware autoselection when firmware autoselection is disabled",
            ));
        }
        let enabled = |name: &str| {
            features
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, e)| e.as_str())
        };
        if enabled("enrolled-keys") == Some("yes") && enabled("secure-boot") == Some("no") {
            return Err(detail(
                "firmware feature 'enrolled-keys' cannot be enabled when firmware feature 'secure-boot' is disabled",
            ));
        }
    }
    // Without autoselection nothing would pick the loader a path-less <loader> asks for.
    if os.firmware.is_none()
        && let Some(l) = &os.loader
        && l.path.as_deref().is_none_or(|p| p.is_empty())
    {
        return Err(detail(
            "no loader path specified and firmware auto selection disabled",
        ));
    }
    if stateless == Some("yes")
        && let Some(nv) = &os.nvram
    {
        if nv.template.is_some() {
            return Err(detail(
                "NVRAM template is not permitted when loader is stateless",
            ));
        }
        return Err(detail("NVRAM is not permitted when loader is stateless"));
    }
    Ok(())
}
