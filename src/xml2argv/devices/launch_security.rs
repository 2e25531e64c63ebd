//! Confidential guests: AMD SEV and s390 protected virtualization (libvirt:
//! qemuBuildSecCommandLine). The object is always `lsec0`, which the machine's
//! `confidential-guest-support` names.

use super::*;

/// The id of the launch-security object.
pub(super) const LSEC_ID: &str = "lsec0";

/// The files a SEV guest's certificate and session blobs are handed to QEMU in, inside the
/// per-domain private directory (libvirt: qemuProcessPrepareSEVGuestInput).
pub const SEV_DH_CERT_FILE: &str = "dh_cert.base64";
pub const SEV_SESSION_FILE: &str = "session.base64";

impl Builder<'_> {
    /// Whether the machine gets `confidential-guest-support`.
    pub(super) fn has_launch_security(&self) -> bool {
        self.def
            .launch_security
            .as_ref()
            .is_some_and(|l| matches!(l.ltype.as_str(), "sev" | "s390-pv"))
    }

    pub(super) fn launch_security(&mut self) -> R {
        let Some(sec) = &self.def.launch_security else {
            return Ok(());
        };
        let mut j = JsonOpts::new();
        match sec.ltype.as_str() {
            // libvirt: qemuBuildSEVCommandLine
            "sev" => {
                j.s("qom-type", "sev-guest").s("id", LSEC_ID);
                if let Some(c) = &sec.cbitpos {
                    j.u("cbitpos", parse_number(c, "cbitpos")?);
                }
                if let Some(r) = &sec.reduced_phys_bits {
                    j.u("reduced-phys-bits", parse_number(r, "reducedPhysBits")?);
                }
                if let Some(p) = &sec.policy {
                    j.u("policy", parse_number(p, "policy")?);
                }
                if sec.dh_cert.is_some() {
                    j.s(
                        "dh-cert-file",
                        format!("{}/{SEV_DH_CERT_FILE}", self.ctx.lib_dir),
                    );
                }
                if sec.session.is_some() {
                    j.s(
                        "session-file",
                        format!("{}/{SEV_SESSION_FILE}", self.ctx.lib_dir),
                    );
                }
                if sec.kernel_hashes.as_deref() == Some("yes") {
                    j.b("kernel-hashes", true);
                }
            }
            // libvirt: qemuBuildPVCommandLine
            "s390-pv" => {
                j.s("qom-type", "s390-pv-guest").s("id", LSEC_ID);
            }
            _ => return Ok(()),
        }
        self.object(&j);
        Ok(())
    }
}

/// A launch-security number as libvirt reads it: decimal, or hex with `0x`.
fn parse_number(text: &str, what: &str) -> R<u64> {
    let t = text.trim();
    let v = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16),
        None => t.parse(),
    };
    // libvirt: virDomainSEVDefParseXML
    v.map_err(|_| Xml2ArgvError::Xml(format!("failed to get launch security {what}")))
}
