//! libvirt domain XML: typed model, parse, validate, defaults, addresses, format. Pure data.

/// Errors of the domain layer, carrying libvirt's messages.
#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    #[error("{0}")]
    Xml(String),
}
