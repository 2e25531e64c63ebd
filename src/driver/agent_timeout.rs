//! How long the typed guest-agent calls wait for a reply (`virsh guest-agent-timeout`;
//! libvirt: qemuDomainAgentSetResponseTimeout, qemuAgentSetResponseTimeout).
//!
//! libvirt keeps the value in the domain's private data, in its daemon's memory and in the
//! status XML of a running domain. With no daemon, it lives in a small file in the run dir
//! (`RUN/NAME.agent-timeout`): like the daemon's memory it survives a guest's restart and is
//! gone with the host's runtime state. Arbitrary commands (`qemu-agent-command`) keep their
//! own timeout, as in libvirt.

use std::path::PathBuf;
use std::time::Duration;

use super::DriverError;
use super::domain::Domain;
use super::guest_agent::{AGENT_COMMAND_BLOCK, AGENT_COMMAND_DEFAULT, DEFAULT_WAIT};
use super::hotplug::check_flags;

/// What "block forever" waits at most: a dead agent must not hang `vsh` for good.
const BLOCK_WAIT: Duration = Duration::from_secs(24 * 3600);

/// The wait a libvirt agent timeout stands for (libvirt: qemuAgentSend): -2 blocks, -1 is
/// the default 5 s, 0 does not wait at all, N is N seconds.
pub fn wait_of(timeout: i32) -> Duration {
    match timeout {
        AGENT_COMMAND_BLOCK => BLOCK_WAIT,
        t if t >= 0 => Duration::from_secs(t as u64),
        _ => DEFAULT_WAIT,
    }
}

impl Domain<'_> {
    fn agent_timeout_path(&self) -> PathBuf {
        self.connect()
            .dirs()
            .run
            .join(format!("{}.agent-timeout", self.name()))
    }

    /// `virDomainAgentSetResponseTimeout`: the seconds typed agent calls wait, or -2
    /// (block), -1 (default), 0 (no wait).
    pub fn agent_set_response_timeout(&self, timeout: i32, flags: u32) -> Result<(), DriverError> {
        check_flags(flags, 0, "qemuDomainAgentSetResponseTimeout")?;
        if timeout < AGENT_COMMAND_BLOCK {
            return Err(DriverError::InvalidArg(format!(
                "guest agent timeout '{timeout}' is less than the minimum '{AGENT_COMMAND_BLOCK}'"
            )));
        }
        let path = self.agent_timeout_path();
        if timeout == AGENT_COMMAND_DEFAULT {
            return match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(DriverError::Io {
                    path: path.display().to_string(),
                    source: e,
                }),
                _ => Ok(()),
            };
        }
        let io = |e| DriverError::Io {
            path: path.display().to_string(),
            source: e,
        };
        std::fs::create_dir_all(&self.connect().dirs().run).map_err(io)?;
        super::config::write_atomic(&path, format!("{timeout}\n").as_bytes())
    }

    /// The agent timeout set for this domain (-1, the default, when none was).
    pub fn agent_response_timeout(&self) -> i32 {
        std::fs::read_to_string(self.agent_timeout_path())
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
            .filter(|t| *t >= AGENT_COMMAND_BLOCK)
            .unwrap_or(AGENT_COMMAND_DEFAULT)
    }

    /// How long a typed agent call waits (the domain's agent timeout).
    pub(crate) fn agent_wait(&self) -> Duration {
        wait_of(self.agent_response_timeout())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_as_libvirt_counts_them() {
        assert_eq!(wait_of(-1), DEFAULT_WAIT);
        assert_eq!(wait_of(0), Duration::ZERO);
        assert_eq!(wait_of(7), Duration::from_secs(7));
        assert_eq!(wait_of(-2), BLOCK_WAIT);
    }
}
