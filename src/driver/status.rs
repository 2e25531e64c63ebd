//! The status file of a running guest: what a later process needs to find it again.
//!
//! There is no daemon holding guests in memory, so every `vsh` invocation rebuilds its view
//! from this file. It is written atomically (temp file, fsync, rename, fsync of the directory)
//! so a reader never sees half of it, and it records the process start time beside the pid so
//! that a pid recycled by an unrelated process after QEMU died is not mistaken for the guest.

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::process::GuestError;

/// Largest status file we accept: the live XML of a big guest is tens of KiB, so 16 MiB only
/// stops a corrupt or hostile file from exhausting memory.
const MAX_STATUS: u64 = 16 << 20;

/// What the status file of a running guest holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestStatus {
    pub name: String,
    pub uuid: String,
    /// QEMU's pid.
    pub pid: i32,
    /// Field 22 of `/proc/PID/stat` (clock ticks after boot) when QEMU was started.
    pub start_time: u64,
    /// The QMP socket QEMU listens on.
    pub monitor: PathBuf,
    /// Why the guest is in its current state, as libvirt names it (`booted`, `unpaused`,
    /// `user`): QEMU only reports the state, so the reason must survive between processes.
    #[serde(default)]
    pub reason: String,
    /// Whether the vCPUs were left paused (by us: QEMU may also pause on its own, e.g. on an
    /// I/O error, which only `query-status` tells).
    #[serde(default)]
    pub paused: bool,
    /// The live domain XML; opaque here.
    #[serde(default)]
    pub xml: String,
    /// QEMU's `argv[0]` as started. With the start time it tells our QEMU from a process that
    /// merely has its pid (a forged or corrupt status file); empty in files from before it
    /// was recorded, which are then checked by start time alone.
    #[serde(default)]
    pub emulator: String,
    /// The guest's monitor process (see `super::monitor`), with its start time; 0 in files
    /// from before monitors.
    #[serde(default)]
    pub monitor_pid: i32,
    #[serde(default)]
    pub monitor_start_time: u64,
    /// `crashed` for a guest preserved after a panic, `pmsuspended` for one that suspended
    /// itself; empty otherwise (then `paused` says).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub state: String,
}

impl GuestStatus {
    /// Write atomically to `path` with mode 0600. Not fsynced: the run dir does not outlive
    /// the host, and neither does the QEMU the file describes, so atomic replacement is all
    /// a reader needs; a flush would cost every start a disk round trip.
    pub fn write(&self, path: &Path) -> Result<(), GuestError> {
        let io = |source| GuestError::io(&self.name, path, source);
        let dir = path.parent().unwrap_or(Path::new("."));
        let data = serde_json::to_vec_pretty(self).map_err(|e| GuestError::Status {
            guest: self.name.clone(),
            path: path.to_path_buf(),
            msg: e.to_string(),
        })?;
        // The temp file lives in the same directory so that rename is atomic; tempfile creates
        // it 0600 with O_EXCL, so nobody can have pre-created it for us.
        let mut tmp = tempfile::Builder::new()
            .prefix(".status-")
            .tempfile_in(dir)
            .map_err(|e| GuestError::io(&self.name, dir, e))?;
        tmp.write_all(&data).map_err(io)?;
        tmp.write_all(b"\n").map_err(io)?;
        tmp.persist(path).map_err(|e| io(e.error))?;
        Ok(())
    }

    /// Read the status file of guest `guest` at `path`. `Ok(None)` when there is none.
    /// O_NOFOLLOW: a symlink planted in the run dir must not make us read another file.
    pub fn read(guest: &str, path: &Path) -> Result<Option<GuestStatus>, GuestError> {
        let f = OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(path);
        let f = match f {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) if e.raw_os_error() == Some(nix::libc::ELOOP) => {
                return Err(GuestError::Status {
                    guest: guest.to_string(),
                    path: path.to_path_buf(),
                    msg: "is a symbolic link, which is never followed: remove it".into(),
                });
            }
            Err(e) => return Err(GuestError::io(guest, path, e)),
        };
        let mut data = Vec::new();
        f.take(MAX_STATUS + 1)
            .read_to_end(&mut data)
            .map_err(|e| GuestError::io(guest, path, e))?;
        let bad = |msg: String| GuestError::Status {
            guest: guest.to_string(),
            path: path.to_path_buf(),
            msg,
        };
        if data.len() as u64 > MAX_STATUS {
            return Err(bad(format!("larger than {MAX_STATUS} bytes")));
        }
        let st: GuestStatus = serde_json::from_slice(&data).map_err(|e| bad(e.to_string()))?;
        if st.name != guest {
            return Err(bad(format!("describes guest '{}'", st.name)));
        }
        if st.pid <= 0 {
            return Err(bad(format!("invalid pid {}", st.pid)));
        }
        Ok(Some(st))
    }
}

/// What `/proc/PID/stat` says about a process that we care about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    /// Field 3: R, S, D, Z, T, ...
    pub state: char,
    /// Field 4: the parent's pid.
    pub ppid: i32,
    /// Field 22: start time in clock ticks after boot.
    pub start_time: u64,
}

/// Parse `/proc/PID/stat`. `Ok(None)` when the process does not exist.
pub fn proc_stat(pid: i32) -> std::io::Result<Option<ProcStat>> {
    let path = format!("/proc/{pid}/stat");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        // ESRCH: the process went away between open and read.
        Err(e) if e.raw_os_error() == Some(nix::libc::ESRCH) => return Ok(None),
        Err(e) => return Err(e),
    };
    parse_stat(&text).map(Some).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{path}: cannot parse {text:?}"),
        )
    })
}

fn parse_stat(text: &str) -> Option<ProcStat> {
    // Field 2 is "(comm)" and comm may hold spaces and parentheses: the fields we need are
    // counted from the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    // After the ppid (field 4), field 22 is the 18th further on.
    let start_time = fields.nth(17)?.parse().ok()?;
    Some(ProcStat {
        state,
        ppid,
        start_time,
    })
}

/// Whether `pid` is still the process that started at `start_time`, and not a zombie (a dead
/// QEMU whose parent has not reaped it is as gone as one that was).
pub fn is_same_live_process(pid: i32, start_time: u64) -> bool {
    matches!(proc_stat(pid), Ok(Some(s)) if s.start_time == start_time && s.state != 'Z')
}

/// `argv[0]` of `pid`, from `/proc/PID/cmdline`; `None` when it cannot be read.
fn proc_argv0(pid: i32) -> Option<Vec<u8>> {
    let data = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    data.split(|b| *b == 0).next().map(<[u8]>::to_vec)
}

/// Whether the status file `st` describes a live process that is the guest's QEMU: the same
/// start time, not a zombie, and (when recorded) the same `argv[0]`. A pid now held by some
/// other process, even one started at the recorded time, is not our guest.
pub fn is_guest_process(st: &GuestStatus) -> bool {
    is_same_live_process(st.pid, st.start_time)
        && (st.emulator.is_empty()
            || proc_argv0(st.pid).is_some_and(|a| a == st.emulator.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_parens_in_comm() {
        let t = "42 (a) b (c)) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 98765 1000 10";
        let s = parse_stat(t).unwrap();
        assert_eq!(s.state, 'S');
        assert_eq!(s.start_time, 98765);
    }

    #[test]
    fn own_process_is_live() {
        let me = std::process::id() as i32;
        let st = proc_stat(me).unwrap().unwrap();
        assert!(is_same_live_process(me, st.start_time));
        assert!(!is_same_live_process(me, st.start_time + 1));
    }

    #[test]
    fn roundtrip_and_nofollow() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("g.json");
        let st = GuestStatus {
            name: "g".into(),
            uuid: "u".into(),
            pid: 7,
            start_time: 9,
            monitor: "/m".into(),
            reason: "booted".into(),
            paused: false,
            xml: "<domain/>".into(),
            emulator: String::new(),
            ..Default::default()
        };
        st.write(&p).unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&p).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(GuestStatus::read("g", &p).unwrap(), Some(st));
        let link = d.path().join("h.json");
        std::os::unix::fs::symlink(&p, &link).unwrap();
        assert!(GuestStatus::read("h", &link).is_err());
        assert_eq!(
            GuestStatus::read("x", &d.path().join("none")).unwrap(),
            None
        );
    }
}
