//! libvirt domain XML: typed model, parse, validate, defaults, addresses, format. Pure data.
//!
//! Parsing goes through a small DOM ([`xml::XmlNode`]) and then into typed structs; anything
//! we do not model yet is kept verbatim in an [`xml::Extra`] so a parse/format round trip never
//! loses information.

pub mod address;
pub mod common;
pub mod devices;
pub mod model;
pub mod units;
pub mod validate;
pub mod xml;

pub use address::{Address, DeviceInfo};
pub use devices::Devices;
pub use model::{DomainDef, FormatFlags};
pub use xml::{Extra, XmlNode};

/// Errors of the domain layer, carrying libvirt's messages (including libvirt's prefix such as
/// `XML error: ` or `invalid argument: `) so they can be compared with libvirt's `.err` files.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// Malformed or schema-invalid XML (`XML error: ...`).
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
}

/// Parse domain XML text into a [`DomainDef`] and run the checks that need no capabilities,
/// as libvirt does when a domain is defined.
pub fn parse(xml: &str) -> Result<DomainDef, DomainError> {
    let def = DomainDef::from_xml(xml)?;
    validate::validate(&def)?;
    Ok(def)
}
