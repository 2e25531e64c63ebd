//! A client of the QEMU guest agent (`qemu-ga`) on its virtio-serial channel
//! (`org.qemu.guest_agent.0`), as libvirt's qemu_agent.c talks to it: one JSON command per
//! line, each exchange preceded by `guest-sync` with a fresh id, so that a reply left over
//! from an earlier client (or a command that timed out) is never taken for ours.
//!
//! The guest's monitor is its only user (it owns every socket of QEMU's); `shutdown --mode
//! agent`, `reboot --mode agent` and `domifaddr --source agent` reach it through the
//! monitor's `agent` requests.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use crate::domain::DomainDef;
use crate::domain::devices::Chardev;

/// The name of the agent's virtio channel.
pub const CHANNEL: &str = "org.qemu.guest_agent.0";

/// How long `guest-sync` and an ordinary command may take (libvirt: QEMU_AGENT_WAIT_TIME).
pub const WAIT: Duration = Duration::from_secs(5);

/// How long a `guest-shutdown` may take to show as QEMU's SHUTDOWN or RESET event (libvirt:
/// VIR_DOMAIN_QEMU_AGENT_COMMAND_SHUTDOWN).
pub const SHUTDOWN_WAIT: Duration = Duration::from_secs(60);

/// Longest reply line accepted: `guest-network-get-interfaces` of a big guest is a few KiB.
const MAX_LINE: usize = 4 << 20;

/// Why an agent exchange failed, with libvirt's words and error codes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AgentError {
    /// No agent channel in the domain (VIR_ERR_ARGUMENT_UNSUPPORTED).
    #[error("QEMU guest agent is not configured")]
    NotConfigured,
    /// The channel exists but nobody listens in the guest (VIR_ERR_AGENT_UNRESPONSIVE).
    #[error("QEMU guest agent is not connected")]
    NotConnected,
    /// The agent did not answer in time (VIR_ERR_AGENT_UNRESPONSIVE).
    #[error("Guest agent not available for now")]
    Timeout,
    /// The agent's socket closed under us (VIR_ERR_AGENT_UNRESPONSIVE).
    #[error("Guest agent disappeared while executing command")]
    Disappeared,
    /// The agent refused the command (VIR_ERR_INTERNAL_ERROR).
    #[error("unable to execute QEMU agent command '{command}': {desc}")]
    Command { command: String, desc: String },
    /// A reply that is no JSON object (VIR_ERR_INTERNAL_ERROR).
    #[error("cannot parse json {0}")]
    Garbled(String),
}

/// The agent's channel of `def`, if it has one.
// libvirt: qemuFindAgentConfig
pub fn channel(def: &DomainDef) -> Option<(usize, &Chardev)> {
    def.devices.channels.iter().enumerate().find(|(_, c)| {
        c.target.as_ref().is_some_and(|t| {
            t.ttype.as_deref() == Some("virtio") && t.name.as_deref() == Some(CHANNEL)
        })
    })
}

/// The UNIX socket QEMU serves the agent channel on: its source path, else where a
/// path-less channel binds, `CHANNEL` in the start's channel dir `auto_dir` (libvirt:
/// qemuDomainPrepareChannel).
pub fn socket_path(c: &Chardev, auto_dir: Option<PathBuf>) -> Option<PathBuf> {
    c.sources
        .iter()
        .find_map(|s| s.path.as_deref())
        .map(PathBuf::from)
        .or_else(|| Some(auto_dir?.join(CHANNEL)))
}

/// The id of the virtserialport device QEMU names in VSERPORT_CHANGE (libvirt's alias
/// `channelN`, N the channel's index when the XML has no alias).
pub fn device_alias(index: usize, c: &Chardev) -> String {
    c.info
        .alias
        .clone()
        .unwrap_or_else(|| format!("channel{index}"))
}

/// `guest-shutdown`'s modes (libvirt: qemuAgentShutdownMode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShutdownMode {
    Powerdown,
    Reboot,
    Halt,
}

impl ShutdownMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ShutdownMode::Powerdown => "powerdown",
            ShutdownMode::Reboot => "reboot",
            ShutdownMode::Halt => "halt",
        }
    }
}

/// One connection to the agent's socket.
pub struct Agent {
    rd: BufReader<tokio::net::unix::OwnedReadHalf>,
    wr: tokio::net::unix::OwnedWriteHalf,
}

impl Agent {
    /// Connect to QEMU's end of the channel. QEMU accepts even when no agent runs in the
    /// guest; [`Agent::sync`] tells.
    pub async fn connect(path: &std::path::Path) -> Result<Agent, AgentError> {
        let s = UnixStream::connect(path)
            .await
            .map_err(|_| AgentError::NotConnected)?;
        let (rd, wr) = s.into_split();
        Ok(Agent {
            rd: BufReader::new(rd),
            wr,
        })
    }

    async fn send(&mut self, v: &Value) -> Result<(), AgentError> {
        let mut line = v.to_string().into_bytes();
        line.push(b'\n');
        self.wr
            .write_all(&line)
            .await
            .map_err(|_| AgentError::Disappeared)
    }

    /// The next JSON line from the agent.
    async fn recv(&mut self) -> Result<Value, AgentError> {
        let mut buf = Vec::new();
        loop {
            buf.clear();
            let n = (&mut self.rd)
                .take(MAX_LINE as u64)
                .read_until(b'\n', &mut buf)
                .await
                .map_err(|_| AgentError::Disappeared)?;
            if n == 0 {
                return Err(AgentError::Disappeared);
            }
            // The agent may send a 0xff delimiter or blank lines; skip them.
            let text = String::from_utf8_lossy(&buf);
            let text = text.trim_matches(|c: char| c.is_whitespace() || c == '\u{fffd}');
            if text.is_empty() {
                continue;
            }
            return serde_json::from_str(text).map_err(|_| AgentError::Garbled(text.to_string()));
        }
    }

    /// `guest-sync` with a fresh id, skipping anything else the agent sends first.
    // libvirt: qemuAgentGuestSync
    pub async fn sync(&mut self, timeout: Duration) -> Result<(), AgentError> {
        let id = sync_id();
        self.send(&json!({"execute": "guest-sync", "arguments": {"id": id}}))
            .await?;
        let wait = async {
            loop {
                // A stale line (a reply to someone else's command) is read past.
                match self.recv().await {
                    Ok(v) if v["return"].as_u64() == Some(id) => return Ok(()),
                    Ok(_) | Err(AgentError::Garbled(_)) => {}
                    Err(e) => return Err(e),
                }
            }
        };
        tokio::time::timeout(timeout, wait)
            .await
            .map_err(|_| AgentError::Timeout)?
    }

    /// Run `command` after a sync; its `return` value.
    // libvirt: qemuAgentCommandFull, qemuAgentCheckError
    pub async fn command(
        &mut self,
        command: &str,
        args: Option<Value>,
        timeout: Duration,
    ) -> Result<Value, AgentError> {
        self.sync(timeout).await?;
        let mut cmd = json!({ "execute": command });
        if let Some(a) = args {
            cmd["arguments"] = a;
        }
        self.send(&cmd).await?;
        let v = tokio::time::timeout(timeout, self.recv())
            .await
            .map_err(|_| AgentError::Timeout)??;
        if let Some(e) = v.get("error") {
            return Err(AgentError::Command {
                command: command.to_string(),
                desc: e["desc"]
                    .as_str()
                    .map(String::from)
                    .unwrap_or_else(|| e.to_string()),
            });
        }
        match v.get("return") {
            Some(r) => Ok(r.clone()),
            None => Err(AgentError::Garbled(v.to_string())),
        }
    }

    /// Ask the guest to power down or reboot. qemu-ga sends no reply when it succeeds (the
    /// guest goes down): the caller waits for QEMU's SHUTDOWN or RESET event instead. An
    /// error reply that comes at once is still reported.
    // libvirt: qemuAgentShutdown
    pub async fn shutdown(&mut self, mode: ShutdownMode) -> Result<(), AgentError> {
        self.sync(WAIT).await?;
        let command = "guest-shutdown";
        self.send(&json!({"execute": command, "arguments": {"mode": mode.as_str()}}))
            .await?;
        match tokio::time::timeout(Duration::from_millis(200), self.recv()).await {
            Ok(Ok(v)) if v.get("error").is_some() => Err(AgentError::Command {
                command: command.into(),
                desc: v["error"]["desc"].as_str().unwrap_or("").to_string(),
            }),
            // No reply yet, a success, or the channel closing as the guest goes down.
            _ => Ok(()),
        }
    }
}

/// A sync id no earlier exchange used: milliseconds since the epoch, as libvirt's.
fn sync_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = super::monitor::events::now_ms();
    let prev = LAST.fetch_max(now, Ordering::Relaxed);
    if prev >= now {
        LAST.fetch_add(1, Ordering::Relaxed) + 1
    } else {
        now
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(channels: &str) -> DomainDef {
        crate::domain::parse(&format!(
            "<domain type='qemu'><name>a</name><memory>1024</memory><os><type>hvm</type></os>\
             <devices>{channels}</devices></domain>"
        ))
        .unwrap()
    }

    #[test]
    fn finds_the_agent_channel() {
        assert!(channel(&def("")).is_none());
        let d = def(
            "<channel type='pty'><target type='virtio' name='com.example.0'/></channel>\
             <channel type='unix'><source mode='bind' path='/r/ga.sock'/>\
             <target type='virtio' name='org.qemu.guest_agent.0'/></channel>",
        );
        let (i, c) = channel(&d).unwrap();
        assert_eq!(i, 1);
        assert_eq!(socket_path(c, None).unwrap(), PathBuf::from("/r/ga.sock"));
        let d = def(
            "<channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/>\
             </channel>",
        );
        let (_, c) = channel(&d).unwrap();
        assert_eq!(socket_path(c, None), None);
        assert_eq!(
            socket_path(c, Some("/lib/channel/target/domain-1-a".into())).unwrap(),
            PathBuf::from("/lib/channel/target/domain-1-a/org.qemu.guest_agent.0")
        );
        assert_eq!(device_alias(i, c), "channel1");
        assert_eq!(
            AgentError::NotConfigured.to_string(),
            "QEMU guest agent is not configured"
        );
    }

    #[tokio::test]
    async fn sync_skips_stale_lines_and_commands_report_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ga.sock");
        let l = tokio::net::UnixListener::bind(&path).unwrap();
        let server = tokio::spawn(async move {
            let (s, _) = l.accept().await.unwrap();
            let (rd, mut wr) = s.into_split();
            let mut rd = BufReader::new(rd).lines();
            while let Ok(Some(line)) = rd.next_line().await {
                let v: Value = serde_json::from_str(&line).unwrap();
                let out = match v["execute"].as_str().unwrap() {
                    "guest-sync" => format!(
                        "{{\"return\": 1}}\n\u{ff}\n{{\"return\": {}}}\n",
                        v["arguments"]["id"]
                    ),
                    "guest-info" => "{\"return\": {\"version\": \"9\"}}\n".into(),
                    _ => {
                        "{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"nope\"}}\n".into()
                    }
                };
                wr.write_all(out.as_bytes()).await.unwrap();
            }
        });
        let mut a = Agent::connect(&path).await.unwrap();
        let v = a.command("guest-info", None, WAIT).await.unwrap();
        assert_eq!(v["version"], "9");
        let e = a.command("guest-frob", None, WAIT).await.unwrap_err();
        assert_eq!(
            e.to_string(),
            "unable to execute QEMU agent command 'guest-frob': nope"
        );
        drop(a);
        server.await.unwrap();
        assert_eq!(
            Agent::connect(&dir.path().join("none")).await.err(),
            Some(AgentError::NotConnected)
        );
    }

    #[tokio::test]
    async fn a_silent_agent_times_out() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ga.sock");
        let l = tokio::net::UnixListener::bind(&path).unwrap();
        let _keep = tokio::spawn(async move {
            let (s, _) = l.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(5)).await;
            drop(s);
        });
        let mut a = Agent::connect(&path).await.unwrap();
        assert_eq!(
            a.sync(Duration::from_millis(100)).await,
            Err(AgentError::Timeout)
        );
    }
}
