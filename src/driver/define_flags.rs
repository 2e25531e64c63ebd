//! Defining a domain with libvirt's define flags (libvirt: virDomainDefineXMLFlags), which
//! `virsh edit` and `define --validate` use.

use super::domain::Domain;
use super::{Connect, DriverError};

/// `VIR_DOMAIN_DEFINE_VALIDATE`: check the document against the domain schema first.
pub const DEFINE_VALIDATE: u32 = 1;

impl Connect {
    /// `virDomainDefineXMLFlags`.
    pub fn define_domain_xml_flags(
        &self,
        xml: &str,
        flags: u32,
    ) -> Result<Domain<'_>, DriverError> {
        super::hotplug::check_flags(flags, DEFINE_VALIDATE, "qemuDomainDefineXMLFlags")?;
        if flags & DEFINE_VALIDATE != 0 {
            super::schema::validate_domain_xml(xml)?;
        }
        self.define_domain_xml(xml)
    }
}
