//! TPM checks that depend on the host's swtpm: libvirt's qemuValidateDomainDeviceDefTPM.
//!
//! The TPM versions an emulated TPM can have are the ones the installed swtpm offers (domain
//! capabilities' `backendVersion`), a fact of the host rather than of the emulator, so the
//! caller passes them in: the driver from its swtpm probe, libvirt's test harness none.

use super::{DomainError, config};
use crate::domain::model::DomainDef;

/// libvirt: qemuValidateDomainDeviceDefTPM, the version part. `versions` are the TPM versions
/// swtpm offers ("1.2", "2.0"); empty when there is no usable swtpm.
pub fn validate_tpm_versions(def: &DomainDef, versions: &[String]) -> Result<(), DomainError> {
    let x86 = matches!(
        def.os
            .os_type
            .arch
            .as_deref()
            .unwrap_or(crate::capabilities::qemu::host_arch()),
        "x86_64" | "i686"
    );
    for tpm in &def.devices.tpms {
        if tpm.backend_type.as_deref() != Some("emulator") {
            continue;
        }
        let model = tpm.model.as_deref().unwrap_or("tpm-tis");
        // Without a version, CRB and sPAPR get 2.0 and TIS what swtpm runs by default.
        let version = match tpm.version.as_deref() {
            Some(v) if v != "default" => v,
            _ if matches!(model, "tpm-crb" | "tpm-spapr") => "2.0",
            _ if versions.iter().any(|v| v == "2.0") => "2.0",
            _ => "1.2",
        };
        if !versions.iter().any(|v| v == version) {
            return Err(config(format!("TPM version '{version}' is not supported")));
        }
        if version == "1.2" {
            if model != "tpm-tis" {
                return Err(config(format!(
                    "TPM 1.2 is not supported for model '{model}'"
                )));
            }
            if !x86 {
                return Err(config(format!(
                    "TPM 1.2 is not supported on architecture '{}'",
                    def.os.os_type.arch.as_deref().unwrap_or("")
                )));
            }
        }
    }
    Ok(())
}
