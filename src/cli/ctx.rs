//! What a verb's handler gets: the global options, the connection (opened on first use) and
//! the one output writer, which ends output quietly when stdout is closed (`vsh list | head`).

use std::cell::{Cell, OnceCell, RefCell};
use std::io::Write;

use crate::Connect;
use anyhow::{Context, Result};

use super::globals::Globals;

/// A verb failed and said why on stdout already, or has nothing to add: the command's exit
/// status is 1 with no `error:` line (virsh's handlers that return false without an error,
/// as `event` after a timeout with no event).
#[derive(Debug)]
pub struct QuietFailure;

impl std::fmt::Display for QuietFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("failed")
    }
}

impl std::error::Error for QuietFailure {}

/// Where output goes: stdout, or a buffer in tests.
pub enum Sink {
    Stdout(std::io::Stdout),
    Buffer(Vec<u8>),
}

/// The one writer every verb prints through. A reader that went away (EPIPE) ends output
/// quietly: the rest is dropped and the command keeps its own exit status, as virsh's, whose
/// prints are not checked. Other write errors are kept for the command's end.
pub struct Out {
    sink: RefCell<Sink>,
    closed: Cell<bool>,
    error: RefCell<Option<std::io::Error>>,
}

impl Out {
    pub fn stdout() -> Out {
        Out::new(Sink::Stdout(std::io::stdout()))
    }

    pub fn buffer() -> Out {
        Out::new(Sink::Buffer(Vec::new()))
    }

    fn new(sink: Sink) -> Out {
        Out {
            sink: RefCell::new(sink),
            closed: Cell::new(false),
            error: RefCell::new(None),
        }
    }

    /// Write `data`, unless the reader is gone.
    pub fn write_bytes(&self, data: &[u8]) {
        if self.closed.get() || data.is_empty() {
            return;
        }
        let res = match &mut *self.sink.borrow_mut() {
            Sink::Stdout(s) => {
                let mut l = s.lock();
                l.write_all(data).and_then(|()| l.flush())
            }
            Sink::Buffer(b) => {
                b.extend_from_slice(data);
                Ok(())
            }
        };
        if let Err(e) = res {
            self.closed.set(true);
            if e.kind() != std::io::ErrorKind::BrokenPipe {
                *self.error.borrow_mut() = Some(e);
            }
        }
    }

    /// Whether the reader went away (further output is dropped).
    pub fn closed(&self) -> bool {
        self.closed.get()
    }

    /// A write error other than a closed pipe, once.
    pub fn take_error(&self) -> Option<std::io::Error> {
        self.error.borrow_mut().take()
    }

    /// What a buffer sink holds (empty for stdout).
    pub fn contents(&self) -> String {
        match &*self.sink.borrow() {
            Sink::Buffer(b) => String::from_utf8_lossy(b).into_owned(),
            Sink::Stdout(_) => String::new(),
        }
    }
}

/// A handler's view of the run: see the module doc.
pub struct CmdCtx {
    pub globals: Globals,
    conn: OnceCell<Connect>,
    out: Out,
    /// `--json` was given, globally or to this verb.
    json: Cell<bool>,
    /// `quit` ran: the shell ends.
    quit: Cell<bool>,
}

impl CmdCtx {
    pub fn new(globals: Globals, out: Out) -> CmdCtx {
        CmdCtx {
            globals,
            conn: OnceCell::new(),
            out,
            json: Cell::new(false),
            quit: Cell::new(false),
        }
    }

    /// Ask the shell to end (`quit`, `exit`).
    pub fn request_quit(&self) {
        self.quit.set(true);
    }

    pub fn quit_requested(&self) -> bool {
        self.quit.get()
    }

    /// The connection, opened on first use with the URI the global options chose.
    pub fn conn(&self) -> Result<&Connect> {
        if let Some(c) = self.conn.get() {
            return Ok(c);
        }
        let c = Connect::open(self.globals.uri.as_deref())
            .context("failed to connect to the hypervisor")?;
        Ok(self.conn.get_or_init(|| c))
    }

    /// The open connection, if a verb opened one.
    pub fn conn_if_open(&self) -> Option<&Connect> {
        self.conn.get()
    }

    /// Drop the connection (the shell's `connect` verb).
    pub fn reset_conn(&mut self) {
        self.conn = OnceCell::new();
    }

    pub fn out(&self) -> &Out {
        &self.out
    }

    /// Print `s` (virsh's vshPrint).
    pub fn print(&self, s: impl AsRef<str>) {
        self.out.write_bytes(s.as_ref().as_bytes());
    }

    /// Print `s` and a newline.
    pub fn println(&self, s: impl AsRef<str>) {
        let mut line = s.as_ref().to_string();
        line.push('\n');
        self.out.write_bytes(line.as_bytes());
    }

    /// Print `s` as it is (no newline added) unless `-q/--quiet` (virsh's vshPrintExtra).
    pub fn print_extra(&self, s: impl AsRef<str>) {
        if !self.globals.quiet {
            self.print(s);
        }
    }

    /// Print an informational line that `-q/--quiet` silences (virsh's vshPrintExtra).
    pub fn println_extra(&self, s: impl AsRef<str>) {
        if !self.globals.quiet {
            self.println(s);
        }
    }

    /// A warning on stderr (skipped files, missing emulators); never fails.
    pub fn warn(&self, msg: impl std::fmt::Display) {
        let _ = writeln!(std::io::stderr(), "warning: {msg}");
    }

    /// The connection's warnings, printed (after a verb that used the connection).
    pub fn flush_warnings(&self) {
        if let Some(c) = self.conn.get() {
            for w in c.take_warnings() {
                self.warn(w);
            }
        }
    }

    /// Whether the output is JSON.
    pub fn json(&self) -> bool {
        self.json.get()
    }

    pub(crate) fn set_json(&self, on: bool) {
        self.json.set(on);
    }

    /// Print a verb's data: one JSON document under `--json`, else `text` renders it.
    pub fn emit<T: serde::Serialize>(&self, value: &T, text: impl FnOnce(&T) -> String) {
        if self.json() {
            match serde_json::to_string_pretty(value) {
                Ok(s) => self.println(s),
                // Our own types always serialize; say so rather than print half a document.
                Err(e) => self.warn(format!("cannot render JSON: {e}")),
            }
        } else {
            self.print(text(value));
        }
    }
}
