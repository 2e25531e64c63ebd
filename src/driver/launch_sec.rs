//! AMD SEV: the host's platform data (`nodesevinfo`), a running guest's launch measurement
//! (`domlaunchsecinfo`) and injecting a launch secret into a paused one
//! (`domsetlaunchsecstate`) (libvirt: qemuNodeGetSEVInfo, qemuGetSEVInfoToParams,
//! qemuDomainGetLaunchSecurityInfo, qemuDomainGetSEVInfo, qemuDomainSetLaunchSecurityState).
//! A host without SEV gets libvirt's refusals: QEMU reports no SEV capabilities there.

use serde_json::json;

use super::domain::Domain;
use super::domcaps::sev_asids;
use super::domstats::TypedValue;
use super::process::State;
use super::{Connect, DriverError};
use crate::domain::FormatFlags;

/// Typed parameters in libvirt's order: name and value.
pub type Params = Vec<(String, TypedValue)>;

/// The secret `domsetlaunchsecstate` injects: base64 texts as the files hold them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchSecret {
    /// `sev-secret-header`.
    pub header: String,
    /// `sev-secret`.
    pub secret: String,
    /// `sev-secret-set-address`: where in guest memory; QEMU chooses when `None`.
    pub address: Option<u64>,
}

/// SEV guests per kind from CPUID 0x8000001F's ASID range: (SEV, SEV-ES)
/// (libvirt: virQEMUCapsGetSEVMaxGuests).
fn max_guests(asids: Option<(u32, u32)>) -> (u32, u32) {
    match asids {
        Some((max, min)) if max != 0 && min != 0 && max >= min => (max - min + 1, min - 1),
        _ => (0, 0),
    }
}

impl Connect {
    /// `virNodeGetSEVInfo`: the SEV platform data of the host's default emulator.
    pub fn node_sev_info(&self) -> Result<Params, DriverError> {
        let (_, caps) = self.domcaps_emulator(None, None)?;
        let Some(sev) = caps
            .sev
            .as_ref()
            .filter(|_| caps.flags.contains("sev-guest"))
        else {
            return Err(DriverError::OperationUnsupported(
                "QEMU does not support SEV guest".into(),
            ));
        };
        let (guests, es_guests) = max_guests(sev_asids());
        let mut p: Params = vec![
            ("pdh".into(), TypedValue::Str(sev.pdh.clone())),
            ("cert-chain".into(), TypedValue::Str(sev.cert_chain.clone())),
        ];
        if let Some(id) = &sev.cpu0_id {
            p.push(("cpu0-id".into(), TypedValue::Str(id.clone())));
        }
        p.push(("cbitpos".into(), TypedValue::UInt(sev.cbitpos)));
        p.push((
            "reduced-phys-bits".into(),
            TypedValue::UInt(sev.reduced_phys_bits),
        ));
        p.push(("max-guests".into(), TypedValue::UInt(guests)));
        p.push(("max-es-guests".into(), TypedValue::UInt(es_guests)));
        Ok(p)
    }
}

impl Domain<'_> {
    /// The `<launchSecurity type>` of the definition in force (live while running).
    fn launch_security_type(&self) -> Result<Option<String>, DriverError> {
        let xml = self.xml_desc(FormatFlags::default())?;
        let def = crate::domain::parse_unprepared(&xml)?;
        Ok(def.launch_security.map(|l| l.ltype))
    }

    /// `virDomainGetLaunchSecurityInfo`: nothing for a guest without SEV (or with s390
    /// protected virtualization); for a running SEV guest, its launch measurement and the
    /// firmware's API version and build, and its policy.
    pub fn launch_security_info(&self, flags: u32) -> Result<Params, DriverError> {
        super::hotplug::check_flags(flags, 0, "qemuDomainGetLaunchSecurityInfo")?;
        if self.launch_security_type()?.as_deref() != Some("sev") {
            return Ok(Vec::new());
        }
        if !self.is_active()? {
            return Err(DriverError::OperationInvalid(
                "domain is not running".into(),
            ));
        }
        let m = self.qmp_call("query-sev-launch-measure", None)?;
        let Some(measurement) = m["data"].as_str() else {
            return Err(DriverError::Internal(
                "query-sev-launch-measure reply was missing 'data'".into(),
            ));
        };
        let info = self.qmp_call("query-sev", None)?;
        let u = |k: &str| -> Result<u32, DriverError> {
            info[k]
                .as_u64()
                .and_then(|v| u32::try_from(v).ok())
                .ok_or_else(|| DriverError::Internal(format!("query-sev reply was missing '{k}'")))
        };
        Ok(vec![
            (
                "sev-measurement".into(),
                TypedValue::Str(measurement.to_string()),
            ),
            ("sev-api-major".into(), TypedValue::UInt(u("api-major")?)),
            ("sev-api-minor".into(), TypedValue::UInt(u("api-minor")?)),
            ("sev-build-id".into(), TypedValue::UInt(u("build-id")?)),
            ("sev-policy".into(), TypedValue::UInt(u("policy")?)),
        ])
    }

    /// `virDomainSetLaunchSecurityState`: put `secret` into the memory of a paused SEV guest.
    pub fn set_launch_security_state(
        &self,
        secret: &LaunchSecret,
        flags: u32,
    ) -> Result<(), DriverError> {
        super::hotplug::check_flags(flags, 0, "qemuDomainSetLaunchSecurityState")?;
        if self.launch_security_type()?.as_deref() != Some("sev") {
            return Err(DriverError::OperationUnsupported(
                "setting a launch secret is only supported in SEV-enabled domains".into(),
            ));
        }
        if !self.is_active()? {
            return Err(DriverError::OperationInvalid(
                "domain is not running".into(),
            ));
        }
        if self.state()?.state != State::Paused {
            return Err(DriverError::OperationInvalid(
                "domain must be in a paused state".into(),
            ));
        }
        let mut args = json!({ "packet-header": secret.header, "secret": secret.secret });
        if let Some(a) = secret.address {
            args["gpa"] = json!(a);
        }
        self.qmp_call("sev-inject-launch-secret", Some(args))
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guests_from_the_asid_range() {
        assert_eq!(max_guests(Some((509, 100))), (410, 99));
        assert_eq!(max_guests(Some((0, 0))), (0, 0));
        assert_eq!(max_guests(None), (0, 0));
    }
}
