//! Connections and guests: URIs, state and config dirs, processes. The only layer with side
//! effects besides probing.

/// Errors of the driver layer.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error("{0}")]
    Uri(String),
}

/// A connection to the QEMU driver (no daemon: the connection is the driver).
#[derive(Debug)]
pub struct Connect {}
