//! Host and emulator capabilities: what this machine and each installed QEMU can do.

pub mod accel;
pub mod cache;
pub mod cpuset;
pub mod document;
pub mod domcaps;
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
    /// The binary works but is nothing we can use (an architecture libvirt has no name for,
    /// a QEMU too old): it will say the same next time, so the answer is cached.
    #[error("{emulator}: {msg}")]
    Unsupported { emulator: String, msg: String },
    #[error(transparent)]
    Qmp(#[from] crate::qmp::QmpError),
}

impl CapsError {
    /// Whether probing the same, unchanged binary again would fail the same way.
    pub fn is_permanent(&self) -> bool {
        matches!(self, CapsError::Unsupported { .. })
    }
}
