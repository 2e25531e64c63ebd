//! `-l/--log FILE` (or `VIRSH_LOG_FILE`): virsh's log of what it reports, one line each,
//! `[YYYY.MM.DD HH:MM:SS vsh PID] LEVEL message` (libvirt: vshOpenLogFile,
//! vshOutputLogFile).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::{Mutex, OnceLock};

static LOG: OnceLock<Mutex<std::fs::File>> = OnceLock::new();

/// virsh's log levels (`vshErrorLevel`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Error,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Level::Info => "INFO",
            Level::Error => "ERROR",
        }
    }
}

/// Open `path` for appending (created 0644, as virsh does); virsh's message when it cannot.
pub fn open(path: &str) -> Result<(), String> {
    let f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o644)
        .open(path)
        .map_err(|_| "failed to open the log file. check the log file path".to_string())?;
    let _ = LOG.set(Mutex::new(f));
    Ok(())
}

/// Append one line at `level`, when a log is open; a failed write is not the command's.
pub fn write(level: Level, msg: &str) {
    let Some(log) = LOG.get() else {
        return;
    };
    let line = format!(
        "[{} vsh {}] {} {}\n",
        local_time(),
        std::process::id(),
        level.as_str(),
        msg.trim_end_matches('\n')
    );
    if let Ok(mut f) = log.lock() {
        let _ = f.write_all(line.as_bytes());
    }
}

/// Now in local time as `YYYY.MM.DD HH:MM:SS`.
fn local_time() -> String {
    let now = nix::libc::time_t::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    )
    .unwrap_or(0);
    // SAFETY: `tm` is plain old data for which all-zero is valid; localtime_r only writes
    // into it and reads `now`, both alive for the call.
    let tm = unsafe {
        let mut tm: nix::libc::tm = std::mem::zeroed();
        nix::libc::localtime_r(&now, &mut tm);
        tm
    };
    format!(
        "{}.{:02}.{:02} {:02}:{:02}:{:02}",
        1900 + tm.tm_year,
        1 + tm.tm_mon,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec
    )
}
