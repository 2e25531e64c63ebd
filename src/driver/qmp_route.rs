//! The one way the read verbs reach a running guest's QMP monitor. Today it is the process
//! layer's [`super::process::Guest::qmp`] (which takes the guest's lock for the call); once a
//! per-guest monitor process owns the connection, only this file changes.

use serde_json::Value;

use super::DriverError;
use super::domain::Domain;
use super::process::GuestError;
use crate::qmp::QmpError;

/// What a monitor call answered: QEMU's `return`, or the error object QEMU replied with.
pub(crate) enum Reply {
    Return(Value),
    /// QEMU rejected the command: its error `class` and `desc`.
    Error {
        class: String,
        desc: String,
    },
}

impl Domain<'_> {
    /// Run QMP `command` on the running guest; libvirt's errors when it is not running, and
    /// QEMU's own error object when QEMU refused the command (for callers that show it).
    pub(crate) fn qmp_reply(
        &self,
        command: &str,
        args: Option<Value>,
    ) -> Result<Reply, DriverError> {
        let (mut guest, _) = self.guest()?;
        match guest.qmp(command, args) {
            Ok(v) => Ok(Reply::Return(v)),
            Err(GuestError::Monitor {
                source: QmpError::Command { class, desc, .. },
                ..
            }) => Ok(Reply::Error { class, desc }),
            Err(GuestError::NotRunning { .. }) => Err(DriverError::OperationInvalid(
                "domain is not running".into(),
            )),
            Err(e) => Err(DriverError::Guest(e)),
        }
    }

    /// Run QMP `command`; a refusal by QEMU is libvirt's `unable to execute QEMU command`.
    // libvirt: qemuMonitorJSONCheckErrorFull
    pub(crate) fn qmp_call(
        &self,
        command: &str,
        args: Option<Value>,
    ) -> Result<Value, DriverError> {
        match self.qmp_reply(command, args)? {
            Reply::Return(v) => Ok(v),
            Reply::Error { desc, .. } => Err(DriverError::Internal(format!(
                "unable to execute QEMU command '{command}': {desc}"
            ))),
        }
    }
}
