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
///
/// Protocol choices, mirroring libvirt:
/// - the `oob` capability QEMU offers in its greeting is never enabled ([`Monitor::negotiate`]
///   sends `qmp_capabilities` without arguments), so replies come strictly in command order;
/// - commands are written as one line ended by `\r\n`; incoming messages are split on `\n`
///   (a trailing `\r` is ignored) and blank lines are skipped;
/// - every command carries an id `libvirt-N`, counting from 1 on each connection, and a reply
///   must echo it: anything else is a protocol error.
///
/// Failure handling: a failed *transport* (EOF, I/O error, malformed or oversized message,
/// unexpected reply, timeout, or a command future dropped before its reply arrived) poisons
/// the monitor: later commands fail with [`QmpError::Poisoned`] instead of risking pairing a
/// command with another command's reply. [`Monitor::poison_reason`] says what happened. Events
/// already queued stay readable through [`Monitor::next_event`]. An error *reply* from QEMU
/// ([`QmpError::Command`]) is an ordinary answer and leaves the monitor usable.
///
/// Cancel safety: [`Monitor::next_event`] is cancel-safe (a partly read message is kept for the
/// next read). [`Monitor::execute`] is not resumable: dropping its future before it completes
/// poisons the monitor, because the reply may still arrive.
pub struct Monitor {
    reader: Reader,
    writer: Writer,
    greeting: Greeting,
    next_id: u64,
    events: VecDeque<Event>,
    opts: MonitorOptions,
    /// Bytes of the message being read. Kept here rather than on the stack of `read_message`
    /// so that a read abandoned by a timeout (e.g. in `next_event`) loses nothing.
    partial: Vec<u8>,
    /// The command whose reply is awaited. Still set when a new call starts only if the
    /// previous `execute` future was dropped mid-way.
    in_flight: Option<String>,
    /// The UNIX socket under the stream, when known: descriptors go through it.
    socket_fd: Option<std::os::fd::RawFd>,
    /// A descriptor to pass (SCM_RIGHTS) with the next command.
    pending_fd: Option<std::os::fd::RawFd>,
    /// Why the monitor is unusable, once it is.
    poison: Option<String>,
    record: Option<Arc<Mutex<Conversation>>>,
}

impl std::fmt::Debug for Monitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Monitor")
            .field("greeting", &self.greeting)
            .field("next_id", &self.next_id)
            .field("queued_events", &self.events.len())
            .field("poison", &self.poison)
            .finish_non_exhaustive()
    }
}

/// What one incoming line turned out to be.
enum Incoming {
    Event(Event),
    /// A command reply (has `return` or `error`), with its id when it has one.
    Reply(Option<String>, Value),
    /// A greeting again (`{"QMP": {...}}`). QEMU 7.2 has been seen to repeat its greeting
    /// on a connection made before its monitor was set up (a probe connects right after the
    /// spawn); it carries nothing new, so it is skipped.
    Greeting,
    /// Anything else: a non-object, an object of unknown shape.
    Other(Value),
}

fn classify(msg: Value) -> Result<Incoming, QmpError> {
    let Some(obj) = msg.as_object() else {
        return Ok(Incoming::Other(msg));
    };
    if let Some(name) = obj.get("event") {
        let Some(name) = name.as_str() else {
            return Err(QmpError::Malformed(format!(
                "event name is not a string: {}",
                truncate(&msg.to_string())
            )));
        };
        let ts = obj.get("timestamp");
        let field = |k: &str| ts.and_then(|t| t.get(k)).and_then(Value::as_i64);
        return Ok(Incoming::Event(Event {
            name: name.to_string(),
            data: obj.get("data").cloned().unwrap_or(Value::Null),
            timestamp: match (field("seconds"), field("microseconds")) {
                (Some(s), Some(u)) => Some((s, u)),
                _ => None,
            },
        }));
    }
    if obj.get("QMP").is_some_and(Value::is_object) {
        return Ok(Incoming::Greeting);
    }
    if obj.contains_key("return") || obj.contains_key("error") {
        let id = obj.get("id").map(|id| match id {
            Value::String(s) => s.clone(),
            // QEMU echoes any JSON value as id; we only send strings, so show the rest as JSON.
            other => other.to_string(),
        });
        return Ok(Incoming::Reply(id, msg));
    }
    Ok(Incoming::Other(msg))
}

/// The `error` member of a reply as (class, desc), with QEMU's defaults for missing parts.
fn error_parts(reply: &Value) -> (String, String) {
    let e = reply.get("error");
    let class = e
        .and_then(|e| e.get("class"))
        .and_then(Value::as_str)
        .unwrap_or("GenericError");
    let desc = e
        .and_then(|e| e.get("desc"))
        .and_then(Value::as_str)
        .unwrap_or("");
    (class.to_string(), desc.to_string())
}

/// I/O errors that mean the peer went away are reported as [`QmpError::Eof`], so callers
/// need one check for "QEMU is gone" whether it happened while reading or writing.
fn io_error(e: std::io::Error, context: &str) -> QmpError {
    use std::io::ErrorKind::*;
    match e.kind() {
        BrokenPipe | ConnectionReset | ConnectionAborted | NotConnected | UnexpectedEof => {
            QmpError::Eof(format!(" ({e}){context}"))
        }
        _ => QmpError::Io(e),
    }
}

impl Monitor {
    /// Connect to a UNIX socket QEMU listens on and read its greeting.
    ///
    /// When the driver created the listening socket itself and handed it to QEMU
    /// (`-chardev socket,fd=N,server=on,wait=off`), connecting succeeds as soon as the socket
    /// exists, even before QEMU runs: the kernel queues the connection, and the greeting
    /// arrives when QEMU accepts it. The greeting wait is bounded by
    /// [`MonitorOptions::command_timeout`], so a QEMU that dies first gives a clear error as
    /// long as nothing else holds the listening socket open.
    pub async fn connect_unix(
        path: &std::path::Path,
        opts: MonitorOptions,
    ) -> Result<Monitor, QmpError> {
        let s = tokio::net::UnixStream::connect(path).await?;
        let fd = std::os::fd::AsRawFd::as_raw_fd(&s);
        let mut m = Self::from_stream(s, opts).await?;
        m.socket_fd = Some(fd);
        Ok(m)
    }

    /// Use an already connected std UNIX stream: one end of a `socketpair`, or a connection
    /// accepted from a listener. Must be called from within a tokio runtime.
    pub async fn from_std_unix_stream(
        stream: std::os::unix::net::UnixStream,
        opts: MonitorOptions,
    ) -> Result<Monitor, QmpError> {
        // tokio's from_std panics outside a runtime; an async fn can be polled by another
        // executor, so check and fail politely instead.
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(QmpError::Io(std::io::Error::other(
                "Monitor::from_std_unix_stream needs a tokio runtime",
            )));
        }
        // tokio requires non-blocking descriptors; a blocking one would stall the runtime.
        stream.set_nonblocking(true)?;
        let s = tokio::net::UnixStream::from_std(stream)?;
        let fd = std::os::fd::AsRawFd::as_raw_fd(&s);
        let mut m = Self::from_stream(s, opts).await?;
        m.socket_fd = Some(fd);
        Ok(m)
    }

    /// Use a connected UNIX stream socket given as a raw descriptor (e.g. a `socketpair` end
    /// created with nix). Takes ownership: the descriptor is closed with the monitor. A
    /// descriptor that is not a stream socket is refused rather than misused.
    pub async fn from_unix_fd(
        fd: std::os::fd::OwnedFd,
        opts: MonitorOptions,
    ) -> Result<Monitor, QmpError> {
        use nix::sys::socket::{SockType, getsockopt, sockopt};
        match getsockopt(&fd, sockopt::SockType) {
            Ok(SockType::Stream) => {}
            Ok(t) => {
                return Err(QmpError::Io(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("QMP descriptor is a {t:?} socket, not a stream socket"),
                )));
            }
            Err(e) => {
                return Err(QmpError::Io(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("QMP descriptor is not a socket: {e}"),
                )));
            }
        }
        // QEMU is the server: a listening socket here means the caller passed the descriptor
        // meant for QEMU instead of connecting to it; reads would only say ENOTCONN.
        if getsockopt(&fd, sockopt::AcceptConn).unwrap_or(false) {
            return Err(QmpError::Io(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "QMP descriptor is a listening socket; connect to it (or accept) first",
            )));
        }
        Self::from_std_unix_stream(std::os::unix::net::UnixStream::from(fd), opts).await
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
            partial: Vec::new(),
            in_flight: None,
            socket_fd: None,
            pending_fd: None,
            poison: None,
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
        let Some(q) = msg.get("QMP").filter(|q| q.is_object()) else {
            return Err(QmpError::Greeting(format!(
                "expected {{\"QMP\": {{...}}}}, got {}",
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

    /// Record every exchange from now on into `conv` (for `.replies` capture). Only
    /// completed exchanges are recorded (error replies included), with the ids as sent, so
    /// each connection's ids start again at `libvirt-1` as libvirt's files expect.
    pub fn record_into(&mut self, conv: Arc<Mutex<Conversation>>) {
        self.record = Some(conv);
    }

    /// Why the monitor became unusable, or `None` while it is usable.
    pub fn poison_reason(&self) -> Option<&str> {
        self.poison.as_deref()
    }

    fn set_poison(&mut self, why: impl Into<String>) {
        // The first failure is the cause; later ones are consequences.
        if self.poison.is_none() {
            self.poison = Some(why.into());
        }
    }

    /// Fails when the monitor cannot be used: poisoned earlier, or an `execute` future was
    /// dropped while its command was in flight (its reply may still come).
    fn check_usable(&mut self) -> Result<(), QmpError> {
        if let Some(cmd) = self.in_flight.take() {
            self.set_poison(format!(
                "command '{cmd}' was abandoned before its reply arrived"
            ));
        }
        if self.poison.is_some() {
            return Err(QmpError::Poisoned);
        }
        Ok(())
    }

    /// Leave the greeting's capability negotiation mode. No capability is enabled (in
    /// particular not `oob`).
    pub async fn negotiate(&mut self) -> Result<(), QmpError> {
        self.execute("qmp_capabilities", None).await.map(|_| ())
    }

    /// Run a command and return its `return` value, or [`QmpError::Command`] when QEMU
    /// answered with an error (the monitor stays usable). Any other error poisons the
    /// monitor; see the type's documentation. Bounded by [`MonitorOptions::command_timeout`],
    /// which covers sending as well as waiting.
    pub async fn execute(&mut self, command: &str, args: Option<Value>) -> Result<Value, QmpError> {
        self.check_usable()?;
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
        // Cleared only when the round trip finishes, so a dropped future leaves it set.
        self.in_flight = Some(command.to_string());
        let result = tokio::time::timeout(timeout, self.roundtrip(&cmd, &id, command)).await;
        self.in_flight = None;
        let reply = match result {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                self.set_poison(format!("command '{command}' failed: {e}"));
                return Err(e);
            }
            Err(_) => {
                self.set_poison(format!(
                    "command '{command}' got no reply within {timeout:?}"
                ));
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
        // Move the value out rather than clone it: query-qmp-schema returns megabytes.
        let (class, desc) = match reply {
            Value::Object(mut m) if m.contains_key("return") => {
                return Ok(m.remove("return").unwrap_or(Value::Null));
            }
            other => error_parts(&other),
        };
        Err(QmpError::Command {
            command: command.to_string(),
            class,
            desc,
        })
    }

    /// [`Monitor::execute`], passing `fd` to QEMU with the command (SCM_RIGHTS), as `getfd`
    /// and `add-fd` expect. QEMU keeps its own copy; the caller still owns `fd`.
    pub async fn execute_with_fd(
        &mut self,
        command: &str,
        args: Option<Value>,
        fd: std::os::fd::BorrowedFd<'_>,
    ) -> Result<Value, QmpError> {
        if self.socket_fd.is_none() {
            return Err(QmpError::Io(std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                "this monitor connection cannot pass file descriptors",
            )));
        }
        self.pending_fd = Some(std::os::fd::AsRawFd::as_raw_fd(&fd));
        let r = self.execute(command, args).await;
        self.pending_fd = None;
        r
    }

    /// Write `line` with the pending descriptor attached, straight on the socket (the
    /// writer holds nothing: every command is flushed).
    async fn send_with_fd(&mut self, line: &[u8], fd: std::os::fd::RawFd) -> std::io::Result<()> {
        use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};
        let Some(sock) = self.socket_fd else {
            return Err(std::io::Error::other("no socket to pass a descriptor on"));
        };
        let fds = [fd];
        let mut sent = 0;
        while sent < line.len() {
            let iov = [std::io::IoSlice::new(&line[sent..])];
            // The descriptor goes with the first byte only.
            let cmsg = [ControlMessage::ScmRights(&fds)];
            let cmsgs: &[ControlMessage<'_>] = if sent == 0 { &cmsg } else { &[] };
            match sendmsg::<()>(sock, &iov, cmsgs, MsgFlags::MSG_NOSIGNAL, None) {
                Ok(n) => sent += n,
                Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => {
                    tokio::time::sleep(Duration::from_millis(1)).await
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    async fn roundtrip(&mut self, cmd: &Value, id: &str, command: &str) -> Result<Value, QmpError> {
        let mut line = serde_json::to_vec(cmd).map_err(|e| QmpError::Malformed(e.to_string()))?;
        line.extend_from_slice(b"\r\n");
        let sending = format!(" while sending '{command}'");
        if let Some(fd) = self.pending_fd.take() {
            self.send_with_fd(&line, fd)
                .await
                .map_err(|e| io_error(e, &sending))?;
        } else {
            self.writer
                .write_all(&line)
                .await
                .map_err(|e| io_error(e, &sending))?;
            self.writer
                .flush()
                .await
                .map_err(|e| io_error(e, &sending))?;
        }
        loop {
            let msg = self.read_message().await.map_err(|e| match e {
                QmpError::Eof(why) => {
                    QmpError::Eof(format!("{why} while waiting for the reply to '{command}'"))
                }
                e => e,
            })?;
            match classify(msg)? {
                Incoming::Event(e) => self.queue_event(e),
                Incoming::Greeting => {}
                Incoming::Reply(Some(got), msg) if got == id => return Ok(msg),
                // A reply to something we did not send: trusting it could pair a command with
                // the wrong answer, so it is fatal rather than skipped.
                Incoming::Reply(Some(got), msg) => {
                    return Err(QmpError::Malformed(format!(
                        "reply with unknown id '{got}' while waiting for '{id}' ('{command}'): {}",
                        truncate(&msg.to_string())
                    )));
                }
                // QEMU omits the id only when it could not parse the command line at all.
                Incoming::Reply(None, msg) => {
                    let (class, desc) = error_parts(&msg);
                    return Err(QmpError::Malformed(format!(
                        "reply without id while waiting for '{id}' ('{command}'): {class}: {desc}"
                    )));
                }
                Incoming::Other(msg) => {
                    return Err(QmpError::Malformed(format!(
                        "unexpected message while waiting for '{id}' ('{command}'): {}",
                        truncate(&msg.to_string())
                    )));
                }
            }
        }
    }

    fn queue_event(&mut self, e: Event) {
        if self.events.len() >= self.opts.max_queued_events.max(1) {
            self.events.pop_front();
        }
        self.events.push_back(e);
    }

    /// The next event: a queued one, or the next to arrive within `timeout`.
    /// `Ok(None)` on timeout; the monitor stays usable. Cancel-safe.
    ///
    /// Queued events are returned even after the monitor failed, so e.g. `SHUTDOWN` sent just
    /// before QEMU closed the socket is not lost; after that the failure is reported
    /// (`Eof` the first time, `Poisoned` afterwards).
    pub async fn next_event(&mut self, timeout: Duration) -> Result<Option<Event>, QmpError> {
        if let Some(e) = self.events.pop_front() {
            return Ok(Some(e));
        }
        self.check_usable()?;
        let msg = match tokio::time::timeout(timeout, self.read_message()).await {
            Err(_) => return Ok(None),
            Ok(Err(e)) => {
                self.set_poison(format!("while waiting for events: {e}"));
                return Err(e);
            }
            Ok(Ok(m)) => m,
        };
        let why = match classify(msg) {
            Ok(Incoming::Event(e)) => return Ok(Some(e)),
            // Nothing for the caller; it waits again (cancel-safe, as a timeout is).
            Ok(Incoming::Greeting) => return Ok(None),
            Ok(Incoming::Reply(id, msg)) => QmpError::Malformed(format!(
                "reply with id {} while no command was pending: {}",
                id.map(|i| format!("'{i}'"))
                    .unwrap_or_else(|| "missing".into()),
                truncate(&msg.to_string())
            )),
            Ok(Incoming::Other(msg)) => QmpError::Malformed(format!(
                "unexpected message while waiting for events: {}",
                truncate(&msg.to_string())
            )),
            Err(e) => e,
        };
        self.set_poison(why.to_string());
        Err(why)
    }

    /// Events already received and not yet taken, oldest first.
    pub fn queued_events(&self) -> usize {
        self.events.len()
    }

    /// Close the connection: our side is shut down so QEMU sees EOF, then everything is
    /// dropped. A peer that is already gone is not an error.
    pub async fn close(mut self) -> Result<(), QmpError> {
        let timeout = self.opts.command_timeout;
        match tokio::time::timeout(timeout, self.writer.shutdown()).await {
            Ok(Ok(())) | Err(_) => Ok(()),
            Ok(Err(e)) => match io_error(e, "") {
                QmpError::Eof(_) => Ok(()),
                e => Err(e),
            },
        }
    }

    /// Read one newline-terminated JSON message, bounded by `max_message`.
    ///
    /// Cancel-safe: the bytes read so far live in `self.partial`, and the only await is
    /// `fill_buf`, which consumes nothing.
    async fn read_message(&mut self) -> Result<Value, QmpError> {
        let limit = self.opts.max_message;
        loop {
            let chunk = self.reader.fill_buf().await.map_err(|e| io_error(e, ""))?;
            if chunk.is_empty() {
                return Err(QmpError::Eof(if self.partial.is_empty() {
                    String::new()
                } else {
                    format!(
                        " in the middle of a message ({} bytes read: {})",
                        self.partial.len(),
                        truncate(&String::from_utf8_lossy(&self.partial))
                    )
                }));
            }
            let (take, done) = match chunk.iter().position(|&b| b == b'\n') {
                Some(i) => (i + 1, true),
                None => (chunk.len(), false),
            };
            // `+ 2` leaves room for the "\r\n" that is not part of the message.
            if self.partial.len() + take > limit.saturating_add(2) {
                self.partial.clear();
                return Err(QmpError::TooLarge { limit });
            }
            self.partial.extend_from_slice(&chunk[..take]);
            self.reader.consume(take);
            if !done {
                continue;
            }
            let buf = std::mem::take(&mut self.partial);
            let Ok(text) = std::str::from_utf8(&buf) else {
                return Err(QmpError::Malformed(format!(
                    "message is not UTF-8: {}",
                    truncate(&String::from_utf8_lossy(&buf))
                )));
            };
            let text = text.trim();
            if text.is_empty() {
                continue;
            }
            return serde_json::from_str(text)
                .map_err(|e| QmpError::Malformed(format!("{e}: {}", truncate(text))));
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
