//! Our own small QMP client: greeting, capability negotiation, commands by id, events.
//!
//! One [`Monitor`] type serves real QEMU sockets and recorded `.replies` conversations alike
//! (the replayer is a peer on the other end of an in-memory pipe), so code that probes QEMU
//! cannot tell the two apart.

pub mod files;
pub mod monitor;
pub mod replay;
pub mod replies;

pub use files::{Report, check_replies_file, renumber_replies_file};
pub use monitor::{Event, Greeting, Monitor, MonitorOptions};
pub use replies::{Conversation, Exchange};

use std::time::Duration;

/// Everything that can go wrong talking QMP.
#[derive(Debug, thiserror::Error)]
pub enum QmpError {
    #[error("QMP I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("QMP peer closed the connection{0}")]
    Eof(String),
    #[error("malformed QMP message: {0}")]
    Malformed(String),
    #[error("QMP message larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("QMP command '{command}' timed out after {timeout:?}")]
    Timeout { command: String, timeout: Duration },
    #[error("QMP greeting not received: {0}")]
    Greeting(String),
    /// QEMU answered the command with an error object.
    #[error("QMP command '{command}' failed: {class}: {desc}")]
    Command {
        command: String,
        class: String,
        desc: String,
    },
    #[error("QMP monitor is unusable after an earlier failure")]
    Poisoned,
    #[error("{file}: {msg}")]
    Replies { file: String, msg: String },
    #[error("replay mismatch: {0}")]
    ReplayMismatch(String),
}

impl QmpError {
    /// The QMP error class when QEMU rejected a command (e.g. `CommandNotFound`).
    pub fn class(&self) -> Option<&str> {
        match self {
            QmpError::Command { class, .. } => Some(class),
            _ => None,
        }
    }
}
