//! The QMP client proper.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};

use super::QmpError;
use super::replies::{Conversation, Exchange};

/// What QEMU says when a client connects.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Greeting {
    /// `QMP.version.qemu` as (major, minor, micro), when QEMU sent it.
    pub version: Option<(u64, u64, u64)>,
    pub package: Option<String>,
    pub capabilities: Vec<String>,
}

/// An asynchronous message from QEMU.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub name: String,
    pub data: Value,
    pub timestamp: Option<(i64, i64)>,
}

/// Bounds that keep a misbehaving peer from hanging or exhausting us.
#[derive(Debug, Clone)]
pub struct MonitorOptions {
    /// How long one command may take before it fails (the monitor is unusable afterwards).
    pub command_timeout: Duration,
    /// Largest single message accepted; query-qmp-schema is about 1 MB, so 64 MiB is generous.
    pub max_message: usize,
    /// Events kept while nobody reads them; the oldest are dropped beyond this.
    pub max_queued_events: usize,
}

impl Default for MonitorOptions {
    fn default() -> Self {
        MonitorOptions {
            command_timeout: Duration::from_secs(30),
            max_message: 64 << 20,
            max_queued_events: 1024,
        }
    }
}

type Reader = BufReader<Pin<Box<dyn AsyncRead + Send>>>;
type Writer = Pin<Box<dyn AsyncWrite + Send>>;

/// A QMP connection. Commands are sent one at a time (`&mut self`); events that arrive while
/// waiting for a reply are queued for [`Monitor::next_event`].
pub struct Monitor {
    reader: Reader,
    writer: Writer,
    greeting: Greeting,
    next_id: u64,
    events: VecDeque<Event>,
    opts: MonitorOptions,
    poisoned: bool,
    record: Option<Arc<Mutex<Conversation>>>,
}

impl std::fmt::Debug for Monitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Monitor")
            .field("greeting", &self.greeting)
            .field("next_id", &self.next_id)
            .finish_non_exhaustive()
    }
}

impl Monitor {
    /// Connect to a UNIX socket QEMU listens on and read its greeting.
    pub async fn connect_unix(
        path: &std::path::Path,
        opts: MonitorOptions,
    ) -> Result<Monitor, QmpError> {
        let s = tokio::net::UnixStream::connect(path).await?;
        Self::from_stream(s, opts).await
    }

    /// Wrap any byte stream whose other end speaks QMP, and read the greeting.
    pub async fn from_stream<S>(stream: S, opts: MonitorOptions) -> Result<Monitor, QmpError>
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (r, w) = tokio::io::split(stream);
        let mut m = Monitor {
            reader: BufReader::new(Box::pin(r) as Pin<Box<dyn AsyncRead + Send>>),
            writer: Box::pin(w),
            greeting: Greeting::default(),
            next_id: 1,
            events: VecDeque::new(),
            opts,
            poisoned: false,
            record: None,
        };
        let timeout = m.opts.command_timeout;
        let msg = match tokio::time::timeout(timeout, m.read_message()).await {
            Ok(r) => r.map_err(|e| QmpError::Greeting(e.to_string()))?,
            Err(_) => {
                return Err(QmpError::Greeting(format!(
                    "nothing received within {timeout:?}"
                )));
            }
        };
        let Some(q) = msg.get("QMP") else {
            return Err(QmpError::Greeting(format!(
                "expected {{\"QMP\": ...}}, got {}",
                truncate(&msg.to_string())
            )));
        };
        let v = &q["version"]["qemu"];
        m.greeting = Greeting {
            version: match (
                v["major"].as_u64(),
                v["minor"].as_u64(),
                v["micro"].as_u64(),
            ) {
                (Some(a), Some(b), Some(c)) => Some((a, b, c)),
                _ => None,
            },
            package: q["version"]["package"].as_str().map(str::to_string),
            capabilities: q["capabilities"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|c| c.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
        };
        Ok(m)
    }

    pub fn greeting(&self) -> &Greeting {
        &self.greeting
    }

    /// Record every exchange from now on into `conv` (for `.replies` capture).
    pub fn record_into(&mut self, conv: Arc<Mutex<Conversation>>) {
        self.record = Some(conv);
    }

    /// Leave the greeting's capability negotiation mode.
    pub async fn negotiate(&mut self) -> Result<(), QmpError> {
        self.execute("qmp_capabilities", None).await.map(|_| ())
    }

    /// Run a command and return its `return` value, or [`QmpError::Command`] when QEMU
    /// answered with an error.
    pub async fn execute(&mut self, command: &str, args: Option<Value>) -> Result<Value, QmpError> {
        if self.poisoned {
            return Err(QmpError::Poisoned);
        }
        let id = format!("libvirt-{}", self.next_id);
        self.next_id += 1;
        let mut cmd = serde_json::Map::new();
        cmd.insert("execute".into(), json!(command));
        if let Some(a) = args {
            cmd.insert("arguments".into(), a);
        }
        cmd.insert("id".into(), json!(id));
        let cmd = Value::Object(cmd);
        let timeout = self.opts.command_timeout;
        let fut = self.roundtrip(&cmd, &id);
        let reply = match tokio::time::timeout(timeout, fut).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                self.poisoned = true;
                return Err(match e {
                    QmpError::Eof(_) => QmpError::Eof(format!(" while waiting for '{command}'")),
                    e => e,
                });
            }
            Err(_) => {
                self.poisoned = true;
                return Err(QmpError::Timeout {
                    command: command.to_string(),
                    timeout,
                });
            }
        };
        if let Some(rec) = &self.record {
            rec.lock()
                .unwrap_or_else(|p| p.into_inner())
                .exchanges
                .push(Exchange {
                    command: cmd.clone(),
                    reply: reply.clone(),
                });
        }
        if let Some(r) = reply.get("return") {
            return Ok(r.clone());
        }
        let e = &reply["error"];
        Err(QmpError::Command {
            command: command.to_string(),
            class: e["class"].as_str().unwrap_or("GenericError").to_string(),
            desc: e["desc"].as_str().unwrap_or("").to_string(),
        })
    }

    async fn roundtrip(&mut self, cmd: &Value, id: &str) -> Result<Value, QmpError> {
        let mut line = serde_json::to_vec(cmd).map_err(|e| QmpError::Malformed(e.to_string()))?;
        line.extend_from_slice(b"\r\n");
        self.writer.write_all(&line).await?;
        self.writer.flush().await?;
        loop {
            let msg = self.read_message().await?;
            if msg.get("event").is_some() {
                self.queue_event(&msg);
                continue;
            }
            match msg.get("id").and_then(Value::as_str) {
                Some(got) if got == id => {
                    if msg.get("return").is_none() && msg.get("error").is_none() {
                        return Err(QmpError::Malformed(format!(
                            "reply to '{id}' has neither return nor error: {}",
                            truncate(&msg.to_string())
                        )));
                    }
                    return Ok(msg);
                }
                // A reply to something we did not send (or no id at all) is a protocol error:
                // trusting it could pair a command with the wrong answer.
                _ => {
                    return Err(QmpError::Malformed(format!(
                        "unexpected message while waiting for '{id}': {}",
                        truncate(&msg.to_string())
                    )));
                }
            }
        }
    }

    fn queue_event(&mut self, msg: &Value) {
        if self.events.len() >= self.opts.max_queued_events {
            self.events.pop_front();
        }
        self.events.push_back(Event {
            name: msg["event"].as_str().unwrap_or_default().to_string(),
            data: msg.get("data").cloned().unwrap_or(Value::Null),
            timestamp: match (
                msg["timestamp"]["seconds"].as_i64(),
                msg["timestamp"]["microseconds"].as_i64(),
            ) {
                (Some(s), Some(u)) => Some((s, u)),
                _ => None,
            },
        });
    }

    /// The next event: a queued one, or the next to arrive within `timeout`.
    /// `Ok(None)` on timeout.
    pub async fn next_event(&mut self, timeout: Duration) -> Result<Option<Event>, QmpError> {
        if let Some(e) = self.events.pop_front() {
            return Ok(Some(e));
        }
        if self.poisoned {
            return Err(QmpError::Poisoned);
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let msg = match tokio::time::timeout_at(deadline, self.read_message()).await {
                Err(_) => return Ok(None),
                Ok(Err(e)) => {
                    self.poisoned = true;
                    return Err(e);
                }
                Ok(Ok(m)) => m,
            };
            if msg.get("event").is_some() {
                self.queue_event(&msg);
                return Ok(self.events.pop_front());
            }
            self.poisoned = true;
            return Err(QmpError::Malformed(format!(
                "unexpected message while waiting for events: {}",
                truncate(&msg.to_string())
            )));
        }
    }

    /// Read one newline-terminated JSON message, bounded by `max_message`.
    async fn read_message(&mut self) -> Result<Value, QmpError> {
        let limit = self.opts.max_message;
        let mut buf = Vec::new();
        loop {
            let chunk = self.reader.fill_buf().await?;
            if chunk.is_empty() {
                return Err(QmpError::Eof(if buf.is_empty() {
                    String::new()
                } else {
                    " in the middle of a message".to_string()
                }));
            }
            let (take, done) = match chunk.iter().position(|&b| b == b'\n') {
                Some(i) => (i + 1, true),
                None => (chunk.len(), false),
            };
            if buf.len() + take > limit + 2 {
                return Err(QmpError::TooLarge { limit });
            }
            buf.extend_from_slice(&chunk[..take]);
            self.reader.consume(take);
            if done {
                let text = std::str::from_utf8(&buf)
                    .map_err(|_| QmpError::Malformed("message is not UTF-8".into()))?
                    .trim();
                if text.is_empty() {
                    buf.clear();
                    continue;
                }
                return serde_json::from_str(text)
                    .map_err(|e| QmpError::Malformed(format!("{e}: {}", truncate(text))));
            }
        }
    }
}

fn truncate(s: &str) -> String {
    const MAX: usize = 200;
    if s.len() <= MAX {
        return s.to_string();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}
