//! Host and emulator capabilities: what this machine and each installed QEMU can do.

pub mod accel;
pub mod cache;
pub mod cpuset;
pub mod emulators;
pub mod host;
pub mod inventory;
pub mod qemu;

/// Errors of the capabilities layer.
#[derive(Debug, thiserror::Error)]
pub enum CapsError {
    #[error("{path}: {msg}")]
    Host { path: String, msg: String },
    #[error("{emulator}: {msg}")]
    Probe { emulator: String, msg: String },
    #[error(transparent)]
    Qmp(#[from] crate::qmp::QmpError),
}
