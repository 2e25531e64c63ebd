//! `.replies` file maintenance for command-line use: check a file, renumber it in place.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::QmpError;
use super::replies::Conversation;

/// What [`check_replies_file`] found in a file that parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub file: PathBuf,
    pub exchanges: usize,
    /// QEMU sessions: runs of exchanges each starting with `qmp_capabilities`.
    pub sessions: usize,
    /// One line per problem, each naming the line and exchange; empty when the file is fine.
    pub problems: Vec<String>,
}

impl Report {
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

impl std::fmt::Display for Report {
    /// One line per problem prefixed with the file, or a one-line summary when clean.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let file = self.file.display();
        if self.problems.is_empty() {
            return write!(
                f,
                "{file}: OK ({} exchanges in {} sessions)",
                self.exchanges, self.sessions
            );
        }
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{file}: {p}")?;
        }
        Ok(())
    }
}

fn file_err(path: &Path, msg: impl std::fmt::Display) -> QmpError {
    QmpError::Replies {
        file: path.display().to_string(),
        msg: msg.to_string(),
    }
}

fn read(path: &Path) -> Result<String, QmpError> {
    std::fs::read_to_string(path).map_err(|e| file_err(path, e))
}

/// Parse a `.replies` file and check it the way libvirt's tests would: ids numbered from
/// `libvirt-1` in each session, every session opened by `qmp_capabilities`, and the text laid
/// out exactly as [`Conversation::format`] writes it.
///
/// A file that does not parse (invalid JSON, a command without a reply, ...) is an `Err`
/// naming the file and line; problems in a file that parses are listed in the [`Report`].
pub fn check_replies_file(path: &Path) -> Result<Report, QmpError> {
    let text = read(path)?;
    let file = path.display().to_string();
    let (conv, lines) = Conversation::parse_located(&text, &file)?;
    let line_of = |i: usize| lines.get(i).copied().unwrap_or(1);
    let mut problems = Vec::new();
    match conv.exchanges.first() {
        None => problems.push("line 1: the file holds no exchanges".to_string()),
        Some(first) if first.name() != "qmp_capabilities" => problems.push(format!(
            "line 1: exchange 1 is '{}'; a session must start with 'qmp_capabilities'",
            first.name()
        )),
        Some(_) => {}
    }
    for (i, msg) in conv.numbering_problems() {
        problems.push(format!("line {}: {msg}", line_of(i)));
    }
    // Compare against the canonical text of the same exchanges (ids as they are), so only
    // layout differences show here; the first differing line is enough to find the rest.
    let canonical = conv.format();
    if canonical != text {
        let mut want = canonical.lines();
        let mut got = text.lines();
        let mut n = 1;
        let msg = loop {
            match (got.next(), want.next()) {
                (Some(g), Some(w)) if g == w => n += 1,
                (Some(g), Some(w)) => {
                    break format!("line {n}: layout differs: {g:?}, expected {w:?}");
                }
                (Some(g), None) => break format!("line {n}: unexpected text after the end: {g:?}"),
                (None, Some(w)) => break format!("line {n}: file ends early, expected {w:?}"),
                // Same lines, so the difference is in line endings.
                (None, None) => {
                    break "line endings differ (expected \\n, ending with one)".to_string();
                }
            }
        };
        problems.push(msg);
    }
    Ok(Report {
        file: path.to_path_buf(),
        exchanges: conv.exchanges.len(),
        sessions: conv
            .exchanges
            .iter()
            .filter(|e| e.name() == "qmp_capabilities")
            .count(),
        problems,
    })
}

/// Renumber a `.replies` file's ids (see [`Conversation::renumber`]) and rewrite it in
/// canonical layout. Returns how many ids changed.
///
/// The file is rewritten only when its text changes (renumbered ids or layout), and then
/// atomically: a temporary file in the same directory is written, fsynced, and renamed over
/// the original (whose permissions it keeps), so a crash leaves either the old or the new
/// file, never a torn one. A symlink is followed and its target rewritten.
pub fn renumber_replies_file(path: &Path) -> Result<usize, QmpError> {
    let text = read(path)?;
    let mut conv = Conversation::parse(&text, &path.display().to_string())?;
    let changed = conv.renumber();
    let new = conv.format();
    if new != text {
        write_atomically(path, new.as_bytes())?;
    }
    Ok(changed)
}

fn write_atomically(path: &Path, data: &[u8]) -> Result<(), QmpError> {
    // Resolve symlinks so the rename replaces the real file, not the link.
    let target = std::fs::canonicalize(path).map_err(|e| file_err(path, e))?;
    let dir = target
        .parent()
        .ok_or_else(|| file_err(path, "has no parent directory"))?;
    let name = target
        .file_name()
        .ok_or_else(|| file_err(path, "has no file name"))?
        .to_string_lossy();
    let perms = std::fs::metadata(&target)
        .map_err(|e| file_err(path, e))?
        .permissions();
    let (tmp, mut f) = create_temp(dir, &name).map_err(|e| file_err(path, e))?;
    let result = (|| -> std::io::Result<()> {
        f.write_all(data)?;
        f.set_permissions(perms)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, &target)?;
        // The rename is durable only once the directory entry is on disk.
        std::fs::File::open(dir)?.sync_all()
    })();
    if let Err(e) = result {
        // The temporary file may or may not exist by now; either way it must not linger.
        let _ = std::fs::remove_file(&tmp);
        return Err(file_err(path, format!("rewriting failed: {e}")));
    }
    Ok(())
}

/// A new file next to the target, never clobbering an existing one (create_new).
fn create_temp(dir: &Path, name: &str) -> std::io::Result<(PathBuf, std::fs::File)> {
    let pid = std::process::id();
    let mut attempt = 0u32;
    loop {
        let tmp = dir.join(format!(".{name}.{pid}.{attempt}.tmp"));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
        {
            Ok(f) => return Ok((tmp, f)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt < 100 => {
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}
