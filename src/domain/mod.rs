//! libvirt domain XML: typed model, parse, validate, defaults, addresses, format. Pure data.
//!
//! Parsing goes through a small DOM ([`xml::XmlNode`], built by [`xml::parse_document`], which
//! refuses DTDs, undeclared entities, oversized and too deeply nested input) and then into the
//! typed structs of [`model`] (domain-wide parts) and [`devices`] (one struct per device kind).
//! Anything not modelled yet is kept verbatim in an [`xml::Extra`] (unknown attributes and child
//! elements, in document order), so a parse/format round trip never loses information.
//!
//! Formatting builds an [`XmlNode`] tree in libvirt's element and attribute order and writes it
//! with [`crate::xmlfmt::XmlWriter`]. libvirt's order is fixed by its formatter, not by the
//! input, so each `to_node` lists fields in that order; typed fields come first, then the
//! verbatim extras, then the device info (`<boot>`, `<alias>`, `<rom>`, `<acpi>`,
//! `<address>`), which libvirt always writes last.
//!
//! Conventions:
//! - sizes are stored in KiB ([`units`]) and written with `unit='KiB'`, as libvirt does;
//! - values libvirt keeps as enums are kept as the strings it accepts, so matching is by string;
//! - only the defaults libvirt's *parser* applies itself are filled here (lifecycle actions,
//!   clock offset, vCPU placement, disk type and device, VNC autoport); capability-dependent
//!   defaults, implicit devices and addresses belong to the later `prepare` stage;
//! - [`parse`] also runs [`validate::check_parse`] (what libvirt's parser refuses) and
//!   [`validate::validate`], the checks that need no capabilities; error messages are
//!   libvirt's, prefix included. [`prepare`] adds [`validate::validate_with_caps`].

pub mod address;
pub mod backup;
pub mod checkpoint;
pub mod common;
pub mod devices;
pub mod hmat;
pub mod model;
mod netcheck;
pub mod prepare;
pub mod snapshot;
pub mod storage_pool;
pub mod units;
pub mod validate;
pub mod xml;

pub use address::{Address, DeviceInfo};
pub use devices::Devices;
pub use model::{DomainDef, FormatFlags, VirtType};
pub use prepare::{PrepareOptions, prepare};
pub use xml::{Extra, XmlNode};

/// Errors of the domain layer, carrying libvirt's messages (including libvirt's prefix such as
/// `XML error: ` or `invalid argument: `) so they can be compared with libvirt's `.err` files.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// Malformed or schema-invalid XML (`XML error: ...`), and libvirt's prefix-less details.
    #[error("{0}")]
    Xml(String),
    /// A value that cannot be interpreted (`invalid argument: ...`).
    #[error("{0}")]
    InvalidArg(String),
    /// A number too large for its field (`numerical overflow: ...`).
    #[error("{0}")]
    Overflow(String),
    /// Well-formed but inconsistent configuration (`unsupported configuration: ...`).
    #[error("{0}")]
    Config(String),
    /// A guest CPU the host cannot run (`the CPU is incompatible with host CPU: ...`).
    #[error("{0}")]
    CpuIncompatible(String),
}

/// Parse domain XML text into a [`DomainDef`] and run the checks that need no capabilities,
/// as libvirt does when a domain is defined.
pub fn parse(xml: &str) -> Result<DomainDef, DomainError> {
    let def = parse_unprepared(xml)?;
    validate::validate(&def)?;
    Ok(def)
}

/// Parse a document that goes on to the production post-parse ([`prepare`]), which validates
/// at its end: libvirt checks a definition after its post-parse has filled in the arch, machine
/// and devices, so a check that needs them must not run on the bare document. The parser's own
/// refusals (what libvirt refuses while reading the XML) belong here, so that both entry points
/// make them.
pub fn parse_unprepared(xml: &str) -> Result<DomainDef, DomainError> {
    let root = xml::parse_document(xml)?;
    validate::check_parse(&root)?;
    DomainDef::from_node(&root)
}

/// Format a definition as libvirt does (`virsh dumpxml` style).
pub fn format(def: &DomainDef, flags: FormatFlags) -> String {
    def.to_xml(flags)
}
