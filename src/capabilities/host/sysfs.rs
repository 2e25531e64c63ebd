//! Reading small pseudo-files (sysfs, procfs) with errors that name the file.
//!
//! Every host fact comes from a one-line file; the distinction that matters is "absent"
//! (often meaningful: the kernel omits files for unsupported features) versus "present but
//! unreadable or malformed" (always an error, reported with its path).

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::capabilities::CapsError;
use crate::capabilities::cpuset::CpuSet;

pub(crate) fn err(path: &Path, msg: impl std::fmt::Display) -> CapsError {
    CapsError::Host {
        path: path.display().to_string(),
        msg: msg.to_string(),
    }
}

/// The file's content, or `None` when it does not exist.
pub(crate) fn read_opt(path: &Path) -> Result<Option<String>, CapsError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(err(path, format!("cannot read: {e}"))),
    }
}

pub(crate) fn read(path: &Path) -> Result<String, CapsError> {
    read_opt(path)?.ok_or_else(|| err(path, "cannot read: no such file"))
}

fn parse_trimmed<T: FromStr>(path: &Path, s: &str) -> Result<T, CapsError>
where
    T::Err: std::fmt::Display,
{
    let t = s.trim();
    t.parse()
        .map_err(|e| err(path, format!("invalid value '{t}': {e}")))
}

pub(crate) fn read_num_opt<T: FromStr>(path: &Path) -> Result<Option<T>, CapsError>
where
    T::Err: std::fmt::Display,
{
    read_opt(path)?.map(|s| parse_trimmed(path, &s)).transpose()
}

pub(crate) fn read_num<T: FromStr>(path: &Path) -> Result<T, CapsError>
where
    T::Err: std::fmt::Display,
{
    parse_trimmed(path, &read(path)?)
}

pub(crate) fn read_cpuset_opt(path: &Path) -> Result<Option<CpuSet>, CapsError> {
    read_opt(path)?
        .map(|s| CpuSet::parse_sysfs(&s).map_err(|e| err(path, e)))
        .transpose()
}

pub(crate) fn read_cpuset(path: &Path) -> Result<CpuSet, CapsError> {
    CpuSet::parse_sysfs(&read(path)?).map_err(|e| err(path, e))
}

/// Sizes as sysfs cache files write them (`32K`, `33M`, `8192K`, plain bytes), in bytes.
pub(crate) fn read_scaled_bytes(path: &Path) -> Result<u64, CapsError> {
    let content = read(path)?;
    let t = content.trim();
    let (digits, mult) = match t.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        None => (t, 1u64),
        Some((i, _)) => {
            let mult = match t[i..].trim() {
                "K" | "k" | "KiB" => 1 << 10,
                "M" | "MiB" => 1 << 20,
                "G" | "GiB" => 1 << 30,
                "B" | "" => 1,
                other => return Err(err(path, format!("unknown size unit '{other}'"))),
            };
            (&t[..i], mult)
        }
    };
    let n: u64 = digits
        .parse()
        .map_err(|e| err(path, format!("invalid size '{t}': {e}")))?;
    n.checked_mul(mult)
        .ok_or_else(|| err(path, format!("size '{t}' overflows")))
}

/// Names of the entries of a directory, sorted so results never depend on readdir order;
/// `None` when the directory does not exist.
pub(crate) fn list_dir_opt(path: &Path) -> Result<Option<Vec<String>>, CapsError> {
    let rd = match std::fs::read_dir(path) {
        Ok(rd) => rd,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(err(path, format!("cannot list directory: {e}"))),
    };
    let mut names = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|e| err(path, format!("cannot list directory: {e}")))?;
        names.push(entry.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    Ok(Some(names))
}

/// Entries named `PREFIX<number>` with their numbers, in numeric order.
pub(crate) fn numbered_entries(names: &[String], prefix: &str) -> Vec<(u32, String)> {
    let mut out: Vec<(u32, String)> = names
        .iter()
        .filter_map(|n| {
            let rest = n.strip_prefix(prefix)?;
            rest.parse::<u32>().ok().map(|i| (i, n.clone()))
        })
        .collect();
    out.sort();
    out
}

pub(crate) fn join(base: &Path, parts: &[&str]) -> PathBuf {
    let mut p = base.to_path_buf();
    for part in parts {
        p.push(part);
    }
    p
}
