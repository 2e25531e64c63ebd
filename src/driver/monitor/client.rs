//! The client side of a guest monitor's control socket: blocking, so that it works from
//! plain threads and inside or outside any async runtime alike.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use super::proto::{Line, MAX_LINE, Push, Reply, Request, VERSION};

/// One connection to a guest's monitor.
#[derive(Debug)]
pub struct MonitorClient {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    /// A line read in part before a timeout.
    partial: Vec<u8>,
    pushes: VecDeque<Push>,
    monitor_pid: i32,
}

fn proto_err(msg: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, msg)
}

impl MonitorClient {
    /// Connect and exchange versions.
    pub fn connect(path: &Path) -> std::io::Result<MonitorClient> {
        let s = UnixStream::connect(path)?;
        let mut c = MonitorClient {
            reader: BufReader::new(s.try_clone()?),
            writer: s,
            partial: Vec::new(),
            pushes: VecDeque::new(),
            monitor_pid: 0,
        };
        match c.call(&Request::Hello { version: VERSION })? {
            Reply::Hello {
                version,
                monitor_pid,
            } if version == VERSION => {
                c.monitor_pid = monitor_pid;
                Ok(c)
            }
            Reply::Err(f) => Err(proto_err(f.desc)),
            other => Err(proto_err(format!("unexpected hello: {other:?}"))),
        }
    }

    /// The connection's socket, to poll: readable when a line or the end comes.
    pub fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.writer.as_fd()
    }

    /// Another handle on the connection's socket (to shut it down from another thread).
    pub fn socket(&self) -> std::io::Result<UnixStream> {
        self.writer.try_clone()
    }

    pub fn monitor_pid(&self) -> i32 {
        self.monitor_pid
    }

    /// Send `req` and wait for its reply; pushes read meanwhile are queued.
    pub fn call(&mut self, req: &Request) -> std::io::Result<Reply> {
        let mut data = serde_json::to_vec(req).map_err(std::io::Error::other)?;
        data.push(b'\n');
        self.writer.write_all(&data)?;
        loop {
            match self.read_line(None)? {
                Some(Line::Reply(r)) => return Ok(r),
                Some(Line::Push(p)) => self.pushes.push_back(p),
                None => unreachable!("no timeout given"),
            }
        }
    }

    /// The next push, waiting up to `timeout` (`None`: for ever). `Ok(None)` on timeout;
    /// an `UnexpectedEof` error once the monitor is gone (the guest ended).
    pub fn next_push(&mut self, timeout: Option<Duration>) -> std::io::Result<Option<Push>> {
        if let Some(p) = self.pushes.pop_front() {
            return Ok(Some(p));
        }
        match self.read_line(timeout)? {
            Some(Line::Push(p)) => Ok(Some(p)),
            Some(Line::Reply(r)) => Err(proto_err(format!("reply without a request: {r:?}"))),
            None => Ok(None),
        }
    }

    /// Wait until the monitor closes the connection (it exits once the guest is gone),
    /// up to `timeout`; whether it did.
    pub fn wait_closed(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            match self.read_line(Some(left)) {
                Ok(Some(Line::Push(p))) => self.pushes.push_back(p),
                Ok(Some(Line::Reply(_))) => {}
                Ok(None) => return false,
                Err(_) => return true,
            }
        }
    }

    /// The connection as a plain byte stream (a console session's), with the bytes read
    /// already behind the last reply.
    pub fn into_stream(mut self) -> std::io::Result<(UnixStream, Vec<u8>)> {
        let mut early = std::mem::take(&mut self.partial);
        early.extend_from_slice(self.reader.buffer());
        self.writer.set_read_timeout(None)?;
        Ok((self.writer, early))
    }

    /// Pushes already read, oldest first.
    pub fn take_pushes(&mut self) -> Vec<Push> {
        self.pushes.drain(..).collect()
    }

    /// One line; `Ok(None)` on timeout.
    fn read_line(&mut self, timeout: Option<Duration>) -> std::io::Result<Option<Line>> {
        self.reader.get_ref().set_read_timeout(timeout)?;
        let r = (&mut self.reader)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut self.partial);
        match r {
            Ok(0) => Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the guest monitor closed the connection",
            )),
            Ok(_) if !self.partial.ends_with(b"\n") => {
                if self.partial.len() > MAX_LINE {
                    return Err(proto_err("line from the guest monitor too long".into()));
                }
                Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the guest monitor closed the connection",
                ))
            }
            Ok(_) => {
                let line = std::mem::take(&mut self.partial);
                serde_json::from_slice(&line)
                    .map(Some)
                    .map_err(|e| proto_err(format!("bad line from the guest monitor: {e}")))
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                Ok(None)
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => Ok(None),
            Err(e) => Err(e),
        }
    }
}
