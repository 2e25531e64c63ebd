//! Domain events of a connection (libvirt: virConnectDomainEventRegisterAny), without a
//! daemon: each running guest's monitor serves its events on its control socket, and a
//! subscriber connects to every monitor there is and to every one that appears later.
//!
//! A watcher thread finds monitors: it scans the run dir and then sleeps in inotify until a
//! guest's run dir or control socket appears. One reader thread per monitor forwards its
//! events. Each subscription asks the monitor for its events since the subscriber began
//! (monitors keep a short backlog), so a guest found only after it started is still seen
//! starting, and nothing that happens after [`Connect::events`] returns is missed while the
//! guest's monitor runs.

use std::collections::{HashMap, HashSet};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::Duration;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};

use super::monitor::events::now_ms;
use super::monitor::proto::{Push, Reply, Request};
use super::monitor::{DomainEvent, MonitorClient};
use super::{Connect, DriverError};

/// How often the watcher looks again when inotify is not available (or misses something,
/// which it should not).
const RESCAN: Duration = Duration::from_secs(1);

/// A subscription to domain events: a blocking iterator, or with [`Events::into_stream`] a
/// tokio-friendly stream. Dropping it ends the subscription and its threads.
pub struct Events {
    rx: Receiver<DomainEvent>,
    shared: Arc<Shared>,
    /// Written to (or closed) to wake the watcher up for good.
    wake: Option<OwnedFd>,
    watcher: Option<JoinHandle<()>>,
}

/// What the watcher and the readers share.
struct Shared {
    /// Monitors connected to, by (domain, socket inode), with the reader's socket (shut
    /// down on drop so that the reader ends); a reader removes its own at EOF.
    connected: Mutex<HashMap<(String, u64), UnixStream>>,
    readers: Mutex<Vec<JoinHandle<()>>>,
}

impl Connect {
    /// Domain events of every guest of this connection, from now on (libvirt:
    /// virConnectDomainEventRegisterAny with no domain and every event id).
    pub fn events(&self) -> Result<Events, DriverError> {
        Events::subscribe(&self.dirs().run, None)
    }

    /// Domain events of the guest named `name` only, from now on; it need not be running yet.
    pub fn domain_events(&self, name: &str) -> Result<Events, DriverError> {
        crate::driver::config::validate_name(name)?;
        Events::subscribe(&self.dirs().run, Some(name.to_string()))
    }
}

impl Events {
    fn subscribe(run: &Path, domain: Option<String>) -> Result<Events, DriverError> {
        let (tx, rx) = channel();
        Self::subscribe_with(run, domain, Sink::Domain(tx), rx)
    }

    /// A subscription whose readers forward to `sink`; `rx` is what [`Events`] reads.
    fn subscribe_with(
        run: &Path,
        domain: Option<String>,
        sink: Sink,
        rx: Receiver<DomainEvent>,
    ) -> Result<Events, DriverError> {
        crate::driver::config::make_dir(run)?;
        let since = now_ms();
        let (wake_rd, wake_wr) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| DriverError::System {
                msg: "cannot create a pipe".into(),
                err: e.into(),
            })?;
        let shared = Arc::new(Shared {
            connected: Mutex::new(HashMap::new()),
            readers: Mutex::new(Vec::new()),
        });
        let w = Watcher {
            run: run.to_path_buf(),
            domain,
            since,
            tx: sink,
            shared: shared.clone(),
        };
        // Connect to the monitors there are before returning, so that an operation the
        // caller starts next is seen.
        w.scan();
        let watcher = std::thread::Builder::new()
            .name("domain-events".into())
            .spawn(move || w.run(wake_rd))
            .map_err(|e| DriverError::System {
                msg: "cannot start the event watcher".into(),
                err: e,
            })?;
        Ok(Events {
            rx,
            shared,
            wake: Some(wake_wr),
            watcher: Some(watcher),
        })
    }

    /// The next event, waiting up to `timeout`; `None` when none came in time.
    pub fn next_timeout(&mut self, timeout: Duration) -> Option<DomainEvent> {
        self.rx.recv_timeout(timeout).ok()
    }

    /// The same subscription as a [`futures_core::Stream`] for async code (tokio or any
    /// other executor).
    pub fn into_stream(self) -> EventStream {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let forward = std::thread::Builder::new()
            .name("domain-events-stream".into())
            .spawn(move || {
                let mut me = self;
                // Ends when the stream is dropped or the watcher ends.
                while !tx.is_closed() {
                    match me.rx.recv_timeout(Duration::from_millis(200)) {
                        Ok(e) => {
                            if tx.send(e).is_err() {
                                break;
                            }
                        }
                        Err(RecvTimeoutError::Timeout) => {}
                        Err(RecvTimeoutError::Disconnected) => break,
                    }
                }
                me.stop();
            });
        EventStream {
            rx,
            _forward: forward.ok(),
        }
    }

    fn stop(&mut self) {
        // Closing the pipe's write end wakes the watcher, which then ends.
        self.wake.take();
        if let Some(w) = self.watcher.take() {
            let _ = w.join();
        }
        for (_, s) in self.shared.connected.lock().unwrap().drain() {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
        let readers: Vec<_> = self.shared.readers.lock().unwrap().drain(..).collect();
        for r in readers {
            let _ = r.join();
        }
    }
}

impl Iterator for Events {
    type Item = DomainEvent;

    /// Blocks until the next event.
    fn next(&mut self) -> Option<DomainEvent> {
        self.rx.recv().ok()
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Domain events as an async stream; see [`Events::into_stream`].
pub struct EventStream {
    rx: tokio::sync::mpsc::UnboundedReceiver<DomainEvent>,
    _forward: Option<JoinHandle<()>>,
}

impl EventStream {
    /// The next event.
    pub async fn next(&mut self) -> Option<DomainEvent> {
        self.rx.recv().await
    }
}

impl futures_core::Stream for EventStream {
    type Item = DomainEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<DomainEvent>> {
        self.rx.poll_recv(cx)
    }
}

/// Finds monitors and starts a reader for each.
struct Watcher {
    run: PathBuf,
    domain: Option<String>,
    since: u64,
    tx: Sink,
    shared: Arc<Shared>,
}

/// Where a subscription's readers forward what monitors push: libvirt's domain events, or
/// QEMU's raw QMP events.
#[derive(Clone)]
enum Sink {
    Domain(Sender<DomainEvent>),
    Qmp(Sender<QemuMonitorEvent>),
}

impl Sink {
    /// Forward `p` from the guest `domain`'s monitor; false once the subscriber is gone.
    fn forward(&self, domain: &str, p: Push) -> bool {
        match (self, p) {
            (Sink::Domain(tx), Push::Domain(e)) => tx.send(e).is_ok(),
            (Sink::Qmp(tx), Push::Qmp(e)) => tx
                .send(QemuMonitorEvent {
                    domain: domain.to_string(),
                    event: e.name,
                    seconds: e.timestamp.map_or(0, |t| t.0),
                    micros: e.timestamp.map_or(0, |t| t.1),
                    data: (!e.data.is_null()).then_some(e.data),
                })
                .is_ok(),
            _ => true,
        }
    }
}

/// One QMP event a guest's QEMU sent, as libvirt relays it
/// (virConnectDomainQemuMonitorEventRegister's callback arguments).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct QemuMonitorEvent {
    pub domain: String,
    /// QEMU's event name (`STOP`, `RESUME`, ...).
    pub event: String,
    /// QEMU's timestamp: seconds and microseconds since the epoch.
    pub seconds: i64,
    pub micros: i64,
    /// The event's `data`; `None` when QEMU sent none.
    pub data: Option<serde_json::Value>,
}

/// A subscription to raw QMP events (libvirt: virConnectDomainQemuMonitorEventRegister).
/// Dropping it ends the subscription.
pub struct QemuMonitorEvents {
    rx: Receiver<QemuMonitorEvent>,
    _sub: Events,
}

impl QemuMonitorEvents {
    /// The next event, waiting up to `timeout`; `None` when none came in time.
    pub fn next_timeout(&mut self, timeout: Duration) -> Option<QemuMonitorEvent> {
        self.rx.recv_timeout(timeout).ok()
    }
}

impl Connect {
    /// QMP events of every running guest, or of the guest named `domain` only, from now on.
    /// Filtering by event name is the caller's (libvirt's flags for it are virsh's).
    pub fn qemu_monitor_events(
        &self,
        domain: Option<&str>,
    ) -> Result<QemuMonitorEvents, DriverError> {
        if let Some(d) = domain {
            crate::driver::config::validate_name(d)?;
        }
        let (tx, rx) = channel();
        // The domain-event side stays empty: its sender is dropped at once.
        let (_, none) = channel();
        let sub = Events::subscribe_with(
            &self.dirs().run,
            domain.map(str::to_string),
            Sink::Qmp(tx),
            none,
        )?;
        Ok(QemuMonitorEvents { rx, _sub: sub })
    }
}

impl Watcher {
    fn run(self, wake: OwnedFd) {
        let inotify = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK).ok();
        let flags = AddWatchFlags::IN_CREATE | AddWatchFlags::IN_MOVED_TO;
        let mut watched = HashSet::new();
        loop {
            if let Some(ino) = &inotify {
                // The run dir for new guests' dirs; each guest's dir for its socket.
                for dir in std::iter::once(self.run.clone()).chain(self.guest_dirs()) {
                    if !watched.contains(&dir) && ino.add_watch(&dir, flags).is_ok() {
                        watched.insert(dir);
                    }
                }
                // Dirs of guests that are gone drop their watches themselves.
                watched.retain(|d| d.exists());
            }
            // Look after adding the watches, so nothing falls between the two.
            self.scan();
            let mut fds = vec![PollFd::new(wake.as_fd(), PollFlags::POLLIN)];
            if let Some(ino) = &inotify {
                fds.push(PollFd::new(ino.as_fd(), PollFlags::POLLIN));
            }
            let ms = u16::try_from(RESCAN.as_millis()).unwrap_or(u16::MAX);
            match poll(&mut fds, PollTimeout::from(ms)) {
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(_) => std::thread::sleep(RESCAN),
            }
            if fds[0].revents().is_some_and(|r| !r.is_empty()) {
                return;
            }
            drop(fds);
            if let Some(ino) = &inotify {
                // Only that something changed matters: drain.
                while ino.read_events().is_ok_and(|e| !e.is_empty()) {}
            }
        }
    }

    /// `RUN/domain-NAME` dirs of the guests we follow.
    fn guest_dirs(&self) -> Vec<PathBuf> {
        if let Some(d) = &self.domain {
            return vec![self.run.join(format!("domain-{d}"))];
        }
        let Ok(rd) = std::fs::read_dir(&self.run) else {
            return Vec::new();
        };
        rd.flatten()
            .filter(|e| {
                e.file_name().to_string_lossy().starts_with("domain-")
                    && e.file_type().is_ok_and(|t| t.is_dir())
            })
            .map(|e| e.path())
            .collect()
    }

    /// Connect to every monitor not connected to yet.
    fn scan(&self) {
        for dir in self.guest_dirs() {
            let Some(name) = dir
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_prefix("domain-"))
                .map(str::to_string)
            else {
                continue;
            };
            let sock = dir.join("control.sock");
            let Ok(meta) = std::fs::metadata(&sock) else {
                continue;
            };
            let key = (name, meta.ino());
            if self.shared.connected.lock().unwrap().contains_key(&key) {
                continue;
            }
            if let Some(client) = self.connect(&sock) {
                self.start_reader(client, key);
            }
        }
    }

    fn connect(&self, sock: &Path) -> Option<MonitorClient> {
        let mut c = MonitorClient::connect(sock).ok()?;
        match c.call(&Request::Subscribe {
            since_ms: Some(self.since),
        }) {
            Ok(Reply::Ok { .. }) => Some(c),
            // A monitor going away, or one of another build: not ours to follow.
            _ => None,
        }
    }

    fn start_reader(&self, mut client: MonitorClient, key: (String, u64)) {
        let Ok(sock) = client.socket() else {
            return;
        };
        self.shared
            .connected
            .lock()
            .unwrap()
            .insert(key.clone(), sock);
        let tx = self.tx.clone();
        let shared = self.shared.clone();
        let mine = key.clone();
        let reader = std::thread::Builder::new()
            .name(format!("domain-events-{}", key.0))
            .spawn(move || {
                // Until the monitor goes (the guest ended) or we are dropped.
                while let Ok(p) = client.next_push(None) {
                    if let Some(p) = p
                        && !tx.forward(&mine.0, p)
                    {
                        break;
                    }
                }
                shared.connected.lock().unwrap().remove(&mine);
            });
        let mut readers = self.shared.readers.lock().unwrap();
        readers.retain(|r| !r.is_finished());
        match reader {
            Ok(r) => readers.push(r),
            Err(_) => {
                self.shared.connected.lock().unwrap().remove(&key);
            }
        }
    }
}
