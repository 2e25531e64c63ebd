//! Serial consoles: capturing what a guest prints, reading it back with expect-style calls,
//! and typing into it.
//!
//! There is no daemon to sit on a guest's pty, so what the guest prints must land in a file
//! QEMU itself writes: at start every `pty` serial port or console without a `<log>` of its
//! own gets one in the guest's log directory (`<log file=... append='off'/>`, which QEMU
//! truncates when it starts). The capture holds the whole boot from the first byte, whoever
//! is attached to the pty, and stays after `vsh` exits. A `file` serial port is its own
//! capture. Input goes through the pty QEMU allocated, whose path the live XML shows.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::DriverError;
use super::domain::Domain;
use super::status::is_same_live_process;
use crate::domain::DomainDef;
use crate::domain::common::ChrLog;
use crate::domain::devices::{Chardev, ChrSource};

/// How often a waiting `expect` looks at the capture again.
const POLL: Duration = Duration::from_millis(50);

/// How much of the recent output a timeout error shows.
const TAIL: usize = 1500;

/// Unmatched output kept in memory at most; beyond it the oldest part is dropped (it stays
/// in the capture file).
const MAX_PENDING: usize = 8 << 20;

/// `VSH_TIMEOUT_MULTIPLIER` (default 1): slow machines stretch every console timeout.
pub fn timeout_multiplier() -> f64 {
    std::env::var("VSH_TIMEOUT_MULTIPLIER")
        .ok()
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|m| m.is_finite() && *m > 0.0)
        .unwrap_or(1.0)
}

/// Where the capture of device `alias` of domain `name` goes: one directory per domain, so
/// no domain name and alias can produce another domain's file name.
pub fn capture_path(log_dir: &Path, name: &str, alias: &str) -> PathBuf {
    log_dir
        .join("console")
        .join(name)
        .join(format!("{alias}.log"))
}

fn is_pty(c: &Chardev) -> bool {
    c.stype.as_deref().unwrap_or("pty") == "pty"
}

/// Give every pty serial port and console of prepared (aliased) `def` without a `<log>` a
/// capture file under `log_dir`, and create the directory for them. A console that is serial
/// port 0 seen from another angle (same alias) shares the port's file.
pub(crate) fn add_capture_logs(def: &mut DomainDef, log_dir: &Path) -> Result<(), DriverError> {
    let name = def.name.clone();
    let mut added = false;
    let mut by_alias: Vec<(String, Option<ChrLog>)> = Vec::new();
    let devices = &mut def.devices;
    for c in devices
        .serials
        .iter_mut()
        .chain(devices.consoles.iter_mut())
    {
        let Some(alias) = c.info.alias.clone() else {
            continue;
        };
        if let Some((_, log)) = by_alias.iter().find(|(a, _)| *a == alias) {
            if c.log.is_none() {
                c.log = log.clone();
            }
            continue;
        }
        if is_pty(c) && c.log.is_none() {
            c.log = Some(ChrLog {
                file: Some(capture_path(log_dir, &name, &alias).display().to_string()),
                append: Some("off".into()),
                extra: Default::default(),
            });
            added = true;
        }
        by_alias.push((alias, c.log.clone()));
    }
    if added {
        let dir = log_dir.join("console").join(&name);
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|source| DriverError::System {
                msg: format!("cannot create directory '{}'", dir.display()),
                err: source,
            })?;
    }
    Ok(())
}

/// Put the ptys QEMU allocated (`query-chardev`'s `pty:/dev/pts/N`) into the live definition,
/// as libvirt shows them: `<source path=.../>`, and `tty=...` on console 0.
pub(crate) fn note_ptys(def: &mut DomainDef, query_chardev: &Value) {
    let ptys: Vec<(&str, &str)> = query_chardev
        .as_array()
        .map(|a| a.as_slice())
        .unwrap_or_default()
        .iter()
        .filter_map(|c| {
            let label = c["label"].as_str()?;
            let path = c["filename"].as_str()?.strip_prefix("pty:")?;
            Some((label, path))
        })
        .collect();
    let devices = &mut def.devices;
    let all = devices
        .serials
        .iter_mut()
        .chain(devices.parallels.iter_mut())
        .chain(devices.channels.iter_mut())
        .chain(devices.consoles.iter_mut());
    for c in all {
        if !is_pty(c) {
            continue;
        }
        let Some(alias) = c.info.alias.as_deref() else {
            continue;
        };
        let label = format!("char{alias}");
        let Some((_, path)) = ptys.iter().find(|(l, _)| *l == label) else {
            continue;
        };
        match c.sources.first_mut() {
            Some(s) => s.path = Some(path.to_string()),
            None => c.sources.push(ChrSource {
                path: Some(path.to_string()),
                ..Default::default()
            }),
        }
        let port0 = c
            .target
            .as_ref()
            .and_then(|t| t.port.as_deref())
            .is_none_or(|p| p == "0");
        if c.kind == "console" && port0 {
            c.extra.attrs.retain(|(k, _)| k != "tty");
            c.extra.attrs.push(("tty".into(), path.to_string()));
        }
    }
}

/// The device `virsh console --devname` would pick: the one aliased `devname`, else the
/// first console, else the first serial port. libvirt's errors when there is none or it has
/// no pty.
fn pick_device<'d>(def: &'d DomainDef, devname: Option<&str>) -> Result<&'d Chardev, DriverError> {
    let d = &def.devices;
    let found = match devname {
        Some(n) => d
            .consoles
            .iter()
            .chain(d.serials.iter())
            .chain(d.parallels.iter())
            .chain(d.channels.iter())
            .find(|c| c.info.alias.as_deref() == Some(n)),
        None => d.consoles.first().or(d.serials.first()),
    };
    found.ok_or_else(|| {
        DriverError::Internal(format!(
            "cannot find character device {}",
            devname.unwrap_or("<null>")
        ))
    })
}

/// The pty QEMU allocated for the device aliased `alias` in the live XML `xml`; libvirt's
/// words when there is no such device or it has no pty.
pub(crate) fn pty_of(xml: &str, alias: &str) -> Result<PathBuf, String> {
    let def = crate::domain::parse(xml).map_err(|e| e.to_string())?;
    let dev = pick_device(&def, Some(alias)).map_err(|e| e.to_string())?;
    match (dev.stype.as_deref().unwrap_or("pty"), dev.sources.first()) {
        ("pty", Some(ChrSource { path: Some(p), .. })) => Ok(PathBuf::from(p)),
        _ => Err(format!(
            "internal error: character device {alias} is not using a PTY"
        )),
    }
}

/// What [`Console::expect_regex`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleMatch {
    /// The output between the previous match and this one.
    pub before: String,
    /// The matched text.
    pub text: String,
    /// Capture groups, group 0 being the whole match; `None` for a group that took no part.
    pub groups: Vec<Option<String>>,
}

/// A guest's serial console: the capture of its output, read from the start of the current
/// boot, and its pty for input. Reading does not take the guest's lock, so the guest can be
/// shut down or destroyed meanwhile (and an `expect` then fails at once).
#[derive(Debug)]
pub struct Console {
    domain: String,
    device: String,
    capture: PathBuf,
    pty: Option<PathBuf>,
    pid: i32,
    start_time: u64,
    /// Bytes of the capture read so far.
    read_to: u64,
    /// Output read but not yet consumed by a match.
    pending: Vec<u8>,
    multiplier: f64,
    writer: Option<PtyWriter>,
}

/// The guest's pty, non-blocking. O_NOCTTY: it must not become our controlling terminal.
/// O_NONBLOCK: a pty can have two readers (a [`Console`] that typed and `vsh console`), and
/// when both see it readable only one gets the bytes; a blocking read in the other would wait
/// for the guest's next output, for ever if the guest stays quiet.
pub(crate) fn open_pty(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(nix::libc::O_NOCTTY | nix::libc::O_NONBLOCK)
        .open(path)
}

/// How long a write to a full pty may wait for QEMU to read it.
const PTY_WRITE_WAIT: Duration = Duration::from_secs(30);

/// Read what the pty has: `Some(0)` at its end (QEMU closed it), `None` when another reader
/// took the bytes first.
fn read_pty(f: &mut File, buf: &mut [u8]) -> std::io::Result<Option<usize>> {
    match f.read(buf) {
        Ok(n) => Ok(Some(n)),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => Ok(None),
        Err(e) => Err(e),
    }
}

/// Write all of `data` to the non-blocking pty, waiting while it is full, at most
/// [`PTY_WRITE_WAIT`] in all.
fn write_pty(f: &mut File, mut data: &[u8]) -> std::io::Result<()> {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let deadline = Instant::now() + PTY_WRITE_WAIT;
    while !data.is_empty() {
        match f.write(data) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if Instant::now() >= deadline {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "the guest does not read its console",
                    ));
                }
                let mut fds = [PollFd::new(f.as_fd(), PollFlags::POLLOUT)];
                let _ = poll(&mut fds, PollTimeout::from(100u16));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The pty, held open for a while after each write. A pty nobody holds open drops what is
/// typed into it before QEMU, which looks for a reader once a second, reads it; but while it
/// is open QEMU sends it the guest's output too, and unread that would fill the pty and stall
/// the guest's UART. So a thread reads and drops the output (the capture has it already),
/// and closes the pty once no write came for [`PTY_IDLE`], leaving the output to whoever
/// else is attached (`vsh console`).
#[derive(Debug)]
struct PtyWriter {
    /// The pty and the time of the last write; `None` once the thread closed it.
    shared: Arc<Mutex<Option<(File, Instant)>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// How long [`PtyWriter`] keeps the pty open after a write.
const PTY_IDLE: Duration = Duration::from_secs(3);

impl PtyWriter {
    fn open(path: &Path, idle: Duration) -> std::io::Result<PtyWriter> {
        let file = open_pty(path)?;
        let mut reader = file.try_clone()?;
        let shared = Arc::new(Mutex::new(Some((file, Instant::now()))));
        let stop = Arc::new(AtomicBool::new(false));
        let (sh, st) = (shared.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
            let mut buf = [0u8; 4096];
            while !st.load(Ordering::Relaxed) {
                {
                    let mut g = sh.lock().unwrap_or_else(|p| p.into_inner());
                    if g.as_ref().is_none_or(|(_, t)| t.elapsed() >= idle) {
                        *g = None;
                        return;
                    }
                }
                let mut fds = [PollFd::new(reader.as_fd(), PollFlags::POLLIN)];
                if matches!(poll(&mut fds, PollTimeout::from(100u16)), Ok(n) if n > 0)
                    // EOF or EIO: QEMU closed the pty's other end. Nothing read: another
                    // reader took the bytes.
                    && !matches!(read_pty(&mut reader, &mut buf), Ok(None | Some(1..)))
                {
                    break;
                }
            }
            *sh.lock().unwrap_or_else(|p| p.into_inner()) = None;
        });
        Ok(PtyWriter {
            shared,
            stop,
            thread: Some(thread),
        })
    }

    /// Write `data`; `Ok(false)` when the thread closed the pty already.
    fn write(&self, data: &[u8]) -> std::io::Result<bool> {
        let mut g = self.shared.lock().unwrap_or_else(|p| p.into_inner());
        let Some((f, at)) = g.as_mut() else {
            return Ok(false);
        };
        write_pty(f, data)?;
        *at = Instant::now();
        Ok(true)
    }
}

impl Drop for PtyWriter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// `s`, shown in an error: its last `max` bytes, lossily decoded.
fn tail_of(s: &[u8], max: usize) -> String {
    let start = s.len().saturating_sub(max);
    String::from_utf8_lossy(&s[start..]).into_owned()
}

impl Console {
    /// The device's capture file.
    pub fn capture_path(&self) -> &Path {
        &self.capture
    }

    /// The pty QEMU allocated for the device, if it has one.
    pub fn pty_path(&self) -> Option<&Path> {
        self.pty.as_deref()
    }

    /// The device's alias (`serial0`, `console1`, ...).
    pub fn device(&self) -> &str {
        &self.device
    }

    /// Read what the guest wrote since the last read.
    fn fill(&mut self) -> Result<(), DriverError> {
        let io = |source| DriverError::System {
            msg: format!("cannot read console capture '{}'", self.capture.display()),
            err: source,
        };
        let mut f = match File::open(&self.capture) {
            Ok(f) => f,
            // QEMU creates it at start; until then there is simply nothing yet.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io(e)),
        };
        f.seek(SeekFrom::Start(self.read_to)).map_err(io)?;
        let n = f.read_to_end(&mut self.pending).map_err(io)?;
        self.read_to += n as u64;
        if self.pending.len() > MAX_PENDING {
            let drop = self.pending.len() - MAX_PENDING / 8;
            self.pending.drain(..drop);
        }
        Ok(())
    }

    fn alive(&self) -> bool {
        is_same_live_process(self.pid, self.start_time)
    }

    /// Wait up to `timeout` (times [`timeout_multiplier`]) for `find` to match the pending
    /// output; it returns the match's byte range. `what` names the wait in errors.
    fn wait_for<T>(
        &mut self,
        what: &str,
        timeout: Duration,
        mut find: impl FnMut(&[u8]) -> Option<(usize, T)>,
    ) -> Result<(Vec<u8>, T), DriverError> {
        let limit = timeout.mul_f64(self.multiplier);
        let deadline = Instant::now() + limit;
        loop {
            // Whether QEMU was alive before this read: then a miss is not final.
            let alive = self.alive();
            self.fill()?;
            if let Some((end, t)) = find(&self.pending) {
                let consumed: Vec<u8> = self.pending.drain(..end).collect();
                return Ok((consumed, t));
            }
            if !alive {
                return Err(DriverError::OperationFailed(format!(
                    "domain '{}' stopped while waiting for {what} on console {}; last output:\n{}",
                    self.domain,
                    self.device,
                    tail_of(&self.pending, TAIL)
                )));
            }
            if Instant::now() >= deadline {
                return Err(DriverError::Timeout(format!(
                    "waiting for {what} on console {} of domain '{}' for {limit:?}; last output:\n{}",
                    self.device,
                    self.domain,
                    tail_of(&self.pending, TAIL)
                )));
            }
            std::thread::sleep(POLL);
        }
    }

    /// Wait for `needle` in the output after the previous match; returns that output up to
    /// and including `needle`.
    pub fn expect(&mut self, needle: &str, timeout: Duration) -> Result<String, DriverError> {
        let n = needle.as_bytes();
        let what = format!("'{needle}'");
        let (out, ()) = self.wait_for(&what, timeout, |hay| {
            if n.is_empty() {
                return Some((0, ()));
            }
            hay.windows(n.len())
                .position(|w| w == n)
                .map(|i| (i + n.len(), ()))
        })?;
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    /// Wait for a match of regular expression `pattern` (the `regex` crate's syntax) in the
    /// output after the previous match.
    pub fn expect_regex(
        &mut self,
        pattern: &str,
        timeout: Duration,
    ) -> Result<ConsoleMatch, DriverError> {
        let re = regex::bytes::Regex::new(pattern).map_err(|e| {
            DriverError::InvalidArg(format!("bad console pattern '{pattern}': {e}"))
        })?;
        let what = format!("a match of /{pattern}/");
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let (out, (start, groups)) = self.wait_for(&what, timeout, |hay| {
            let caps = re.captures(hay)?;
            let whole = caps.get(0)?;
            let groups: Vec<Option<String>> =
                caps.iter().map(|g| g.map(|m| text(m.as_bytes()))).collect();
            Some((whole.end(), (whole.start(), groups)))
        })?;
        Ok(ConsoleMatch {
            before: text(&out[..start]),
            text: text(&out[start..]),
            groups,
        })
    }

    /// Everything the guest printed and no match consumed yet, without waiting.
    pub fn read_available(&mut self) -> Result<String, DriverError> {
        self.fill()?;
        let out: Vec<u8> = std::mem::take(&mut self.pending);
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    /// Type `data` into the guest, through its pty (see [`PtyWriter`] for how long it stays
    /// open).
    pub fn write(&mut self, data: &[u8]) -> Result<(), DriverError> {
        let Some(pty) = self.pty.clone() else {
            return Err(DriverError::Internal(format!(
                "character device {} is not using a PTY",
                self.device
            )));
        };
        if !self.alive() {
            return Err(DriverError::OperationInvalid(
                "domain is not running".into(),
            ));
        }
        let sys = |source| DriverError::System {
            msg: format!("cannot write to console {}", pty.display()),
            err: source,
        };
        if let Some(w) = &self.writer
            && w.write(data).map_err(sys)?
        {
            return Ok(());
        }
        let w = PtyWriter::open(&pty, PTY_IDLE.mul_f64(self.multiplier)).map_err(sys)?;
        w.write(data).map_err(sys)?;
        self.writer = Some(w);
        Ok(())
    }

    /// Type `line` and a newline (`\n`, which the guest's tty takes as Enter).
    pub fn send_line(&mut self, line: &str) -> Result<(), DriverError> {
        let mut data = line.as_bytes().to_vec();
        data.push(b'\n');
        self.write(&data)
    }
}

impl Domain<'_> {
    /// The serial console of the running domain (`virsh console [--devname ALIAS]`): the
    /// first console, else the first serial port, unless `devname` names a device by alias.
    /// Its output is read from the start of the current boot.
    pub fn console(&self, devname: Option<&str>) -> Result<Console, DriverError> {
        let live = self.live_process()?;
        let dev = pick_device(&live.def, devname)?;
        let alias = dev.info.alias.clone().unwrap_or_default();
        let shown = devname.unwrap_or(&alias).to_string();
        let (capture, pty) = match dev.stype.as_deref().unwrap_or("pty") {
            "pty" => {
                let pty = dev.sources.first().and_then(|s| s.path.clone());
                let log = dev.log.as_ref().and_then(|l| l.file.clone());
                let Some(log) = log else {
                    return Err(DriverError::OperationInvalid(format!(
                        "character device {shown} has no capture: it was started without a <log>"
                    )));
                };
                (PathBuf::from(log), pty.map(PathBuf::from))
            }
            "file" => {
                let path = dev.sources.first().and_then(|s| s.path.clone());
                let Some(path) = path else {
                    return Err(DriverError::Internal(format!(
                        "character device {shown} has no file"
                    )));
                };
                (PathBuf::from(path), None)
            }
            _ => {
                return Err(DriverError::Internal(format!(
                    "character device {shown} is not using a PTY"
                )));
            }
        };
        Ok(Console {
            domain: self.name().to_string(),
            device: alias,
            capture,
            pty,
            pid: live.pid,
            start_time: live.start_time,
            read_to: 0,
            pending: Vec::new(),
            multiplier: timeout_multiplier(),
            writer: None,
        })
    }

    /// The running QEMU's command line as one shell-quoted line, ready to paste into a shell
    /// (from `/proc/PID/cmdline`, so it is what runs, not what we meant to run).
    pub fn cmdline_quoted(&self) -> Result<String, DriverError> {
        let live = self.live_process()?;
        let path = format!("/proc/{}/cmdline", live.pid);
        let raw = std::fs::read(&path).map_err(|source| DriverError::System {
            msg: format!("cannot read '{path}'"),
            err: source,
        })?;
        // The pid may have been reused between the two reads.
        if !is_same_live_process(live.pid, live.start_time) {
            return Err(DriverError::OperationInvalid(
                "domain is not running".into(),
            ));
        }
        let args: Vec<String> = raw
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| crate::xml2argv::render::shell_escape(&String::from_utf8_lossy(a)))
            .collect();
        Ok(args.join(" "))
    }
}

/// An attached console session (`virsh console`): one per device at a time, as libvirt
/// allows. The guest's monitor keeps the claim for as long as the session's connection to it
/// stays open (the kernel closes it if the holder dies); `--force` makes the monitor close
/// the earlier holder's connection.
#[derive(Debug)]
pub struct ConsoleSession {
    /// Held, not read: the claim lasts as long as this connection is open.
    _client: crate::driver::monitor::MonitorClient,
}

/// A console session whose bytes go through the guest's monitor (`virsh console`): the
/// monitor reads and writes the pty and this connection carries the bytes. It ends when
/// either side closes it: a `--force` elsewhere or the guest's end closes it from the
/// monitor's side.
#[derive(Debug)]
pub struct ConsoleStream {
    socket: std::os::unix::net::UnixStream,
    /// Console bytes read with the monitor's reply, not yet shown.
    early: Vec<u8>,
}

impl Domain<'_> {
    /// Take the console session of device `alias` from the guest's monitor; `force` takes
    /// it from an earlier session (libvirt: virDomainOpenConsole, VIR_DOMAIN_CONSOLE_FORCE).
    pub fn console_session(&self, alias: &str, force: bool) -> Result<ConsoleSession, DriverError> {
        let client = self.take_console(alias, force, false)?;
        Ok(ConsoleSession { _client: client })
    }

    /// Take the console session of device `alias` with its bytes carried by the monitor:
    /// what [`attach_terminal`] reads and writes.
    pub fn console_stream(&self, alias: &str, force: bool) -> Result<ConsoleStream, DriverError> {
        let client = self.take_console(alias, force, true)?;
        let (socket, early) = client.into_stream().map_err(|e| DriverError::System {
            msg: format!("cannot connect to the monitor of domain '{}'", self.name()),
            err: e,
        })?;
        Ok(ConsoleStream { socket, early })
    }

    fn take_console(
        &self,
        alias: &str,
        force: bool,
        stream: bool,
    ) -> Result<crate::driver::monitor::MonitorClient, DriverError> {
        use crate::driver::monitor::proto::{Reply, Request};
        // Through the guest first: a guest whose monitor died gets a new one here.
        let (guest, _) = self.guest()?;
        let control = guest.paths().control.clone();
        drop(guest);
        let failed = |e: std::io::Error| DriverError::System {
            msg: format!("cannot connect to the monitor of domain '{}'", self.name()),
            err: e,
        };
        let mut client =
            crate::driver::monitor::MonitorClient::connect(&control).map_err(failed)?;
        let req = Request::Console {
            alias: alias.to_string(),
            force,
            stream,
        };
        match client.call(&req).map_err(failed)? {
            Reply::Ok { .. } => Ok(client),
            Reply::Err(f) if f.not_running => Err(DriverError::OperationInvalid(
                "domain is not running".into(),
            )),
            Reply::Err(f) => match f.desc.strip_prefix("internal error: ") {
                Some(d) => Err(DriverError::Internal(d.to_string())),
                None => Err(DriverError::OperationFailed(f.desc)),
            },
            other => Err(DriverError::Internal(format!(
                "unexpected answer from the guest monitor: {other:?}"
            ))),
        }
    }
}

/// Restores a terminal's settings when dropped.
struct RawMode {
    saved: nix::sys::termios::Termios,
}

impl RawMode {
    fn enter() -> Option<RawMode> {
        use nix::sys::termios::{SetArg, cfmakeraw, tcgetattr, tcsetattr};
        let stdin = std::io::stdin();
        let saved = tcgetattr(stdin.as_fd()).ok()?;
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        tcsetattr(stdin.as_fd(), SetArg::TCSAFLUSH, &raw).ok()?;
        Some(RawMode { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        use nix::sys::termios::{SetArg, tcsetattr};
        let _ = tcsetattr(std::io::stdin().as_fd(), SetArg::TCSAFLUSH, &self.saved);
    }
}

/// How [`attach_terminal`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detach {
    /// The escape character was typed, or our stdout closed.
    Escape,
    /// Standard input ended (pipe mode) and the guest then went quiet.
    EndOfInput,
    /// The monitor ended the session: the guest stopped, or another session took the
    /// console (`console --force`).
    Ended,
}

/// Connect our stdin and stdout to the console `session` (`virsh console`) until `escape`
/// (^] is 0x1d) is typed. On a terminal, stdin goes raw for the session and is restored
/// after. When stdin is not a terminal (a pipe), its end detaches once the guest has been
/// quiet for `quiet`, so that a script sees the answers to what it typed. The session ends
/// when the monitor closes it (the guest stopped, or a `--force` took the console).
pub fn attach_terminal(
    session: ConsoleStream,
    escape: u8,
    quiet: Duration,
) -> Result<Detach, DriverError> {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let sys = |msg: String| move |source| DriverError::System { msg, err: source };
    let ConsoleStream { socket, early } = session;
    let mut guest = &socket;
    let stdin = std::io::stdin();
    let tty = nix::unistd::isatty(stdin.as_fd()).unwrap_or(false);
    let _raw = if tty { RawMode::enter() } else { None };
    let mut stdout = std::io::stdout().lock();
    if stdout
        .write_all(&early)
        .and_then(|()| stdout.flush())
        .is_err()
    {
        return Ok(Detach::Escape);
    }
    let mut input_open = true;
    let mut quiet_until: Option<Instant> = None;
    let mut buf = [0u8; 4096];
    loop {
        let mut fds = vec![PollFd::new(socket.as_fd(), PollFlags::POLLIN)];
        if input_open {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
        }
        let wait = match quiet_until {
            Some(t) => t.saturating_duration_since(Instant::now()),
            None => Duration::from_millis(500),
        };
        let ms = u16::try_from(wait.as_millis()).unwrap_or(u16::MAX);
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(sys("cannot poll console".into())(e.into())),
        }
        let ready = |f: &PollFd<'_>| {
            f.revents().is_some_and(|r| {
                r.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR)
            })
        };
        let guest_ready = ready(&fds[0]);
        let input_ready = input_open && ready(&fds[1]);
        drop(fds);
        if guest_ready {
            // We are the connection's only reader: readable means a read returns at once.
            match guest.read(&mut buf) {
                Ok(n) if n > 0 => {
                    // A closed stdout ends the session like the escape key.
                    if stdout
                        .write_all(&buf[..n])
                        .and_then(|()| stdout.flush())
                        .is_err()
                    {
                        return Ok(Detach::Escape);
                    }
                    if quiet_until.is_some() {
                        quiet_until = Some(Instant::now() + quiet);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                _ => return Ok(Detach::Ended),
            }
        }
        if input_ready {
            let n = stdin.lock().read(&mut buf).unwrap_or(0);
            if n == 0 {
                input_open = false;
                quiet_until = Some(Instant::now() + quiet);
            } else {
                let data = &buf[..n];
                let (data, detach) = match data.iter().position(|b| *b == escape) {
                    Some(i) => (&data[..i], true),
                    None => (data, false),
                };
                if guest.write_all(data).is_err() {
                    return Ok(Detach::Ended);
                }
                if detach {
                    return Ok(Detach::Escape);
                }
            }
        }
        if quiet_until.is_some_and(|t| Instant::now() >= t) {
            return Ok(Detach::EndOfInput);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(xml: &str) -> DomainDef {
        let mut d = crate::domain::parse(xml).unwrap();
        crate::domain::prepare::assign_aliases(&mut d);
        d
    }

    const XML: &str = "<domain type='qemu'><name>g</name><memory>65536</memory>\
        <os><type arch='x86_64'>hvm</type></os><devices>\
        <serial type='pty'><target port='0'/></serial>\
        <serial type='file'><source path='/tmp/f'/><target port='1'/></serial>\
        <console type='pty'><target type='serial' port='0'/></console>\
        <console type='pty'><target type='virtio' port='1'/></console>\
        </devices></domain>";

    #[test]
    fn pty_devices_get_a_capture_and_their_pty() {
        let dir = tempfile::tempdir().unwrap();
        let mut d = def(XML);
        add_capture_logs(&mut d, dir.path()).unwrap();
        let log = |c: &Chardev| c.log.as_ref().and_then(|l| l.file.clone());
        let s0 = log(&d.devices.serials[0]).unwrap();
        assert!(s0.ends_with("/console/g/serial0.log"), "{s0}");
        assert_eq!(log(&d.devices.serials[1]), None);
        assert_eq!(log(&d.devices.consoles[0]), Some(s0));
        assert!(
            log(&d.devices.consoles[1])
                .unwrap()
                .ends_with("console1.log")
        );
        assert!(dir.path().join("console/g").is_dir());

        let q: Value = serde_json::json!([
            {"label": "charserial0", "filename": "pty:/dev/pts/7", "frontend-open": true},
            {"label": "charconsole1", "filename": "pty:/dev/pts/8", "frontend-open": true},
            {"label": "charmonitor", "filename": "unix:/x,server=on", "frontend-open": true}
        ]);
        note_ptys(&mut d, &q);
        let xml = d.to_xml(crate::domain::FormatFlags {
            inactive: false,
            secure: true,
        });
        assert!(
            xml.contains(
                "<serial type='pty'>\n      <source path='/dev/pts/7'/>\n      <log file='"
            ),
            "{xml}"
        );
        assert!(
            xml.contains("<console type='pty' tty='/dev/pts/7'>"),
            "{xml}"
        );
        assert!(xml.contains("<source path='/dev/pts/8'/>"), "{xml}");
        assert_eq!(
            pick_device(&d, None).unwrap().info.alias.as_deref(),
            Some("serial0")
        );
        let e = pick_device(&d, Some("serial9")).unwrap_err().to_string();
        assert_eq!(e, "internal error: cannot find character device serial9");
    }

    #[test]
    fn multiplier_reads_the_environment_shape() {
        // Only the parse: the process environment is shared by parallel tests.
        assert!(timeout_multiplier() > 0.0);
        assert_eq!(tail_of(b"abcdef", 3), "def");
    }

    /// Two readers of one pty: the one that loses the race must not block (the hang that
    /// once held `vsh console` for ever while a `Console` that typed drained the pty).
    #[test]
    fn a_pty_read_that_finds_nothing_returns_at_once() {
        use std::os::fd::AsRawFd;
        let pty = nix::pty::openpty(None, None).unwrap();
        let path = std::fs::read_link(format!("/proc/self/fd/{}", pty.slave.as_raw_fd())).unwrap();
        let mut ours = open_pty(&path).unwrap();
        let mut buf = [0u8; 64];
        let t0 = Instant::now();
        assert!(read_pty(&mut ours, &mut buf).unwrap().is_none());
        assert!(t0.elapsed() < Duration::from_secs(5));
        nix::unistd::write(&pty.master, b"hi\n").unwrap();
        let mut got = Vec::new();
        while !got.ends_with(b"\n") && t0.elapsed() < Duration::from_secs(5) {
            match read_pty(&mut ours, &mut buf).unwrap() {
                Some(n) => got.extend_from_slice(&buf[..n]),
                None => std::thread::sleep(Duration::from_millis(10)),
            }
        }
        assert_eq!(got, b"hi\n");
        write_pty(&mut ours, b"typed\n").unwrap();
        // The master sees the slave's echo of "hi" first, then what we typed, each once
        // the kernel's pty work has run.
        use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
        let mut seen = Vec::new();
        while !String::from_utf8_lossy(&seen).contains("typed") {
            assert!(t0.elapsed() < Duration::from_secs(5), "{seen:?}");
            let mut fds = [PollFd::new(pty.master.as_fd(), PollFlags::POLLIN)];
            if matches!(poll(&mut fds, PollTimeout::from(100u16)), Ok(n) if n > 0) {
                let n = nix::unistd::read(&pty.master, &mut buf).unwrap();
                seen.extend_from_slice(&buf[..n]);
            }
        }
    }
}
