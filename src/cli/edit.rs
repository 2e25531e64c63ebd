//! Editing a text in the user's editor, as virsh's `--edit` options do (libvirt:
//! vshEditWriteToTempFile, vshEditFile, vshEditReadBackFile): the text goes into a temp
//! file in `$TMPDIR` (else /tmp), `sh -c "$VISUAL FILE"` (else `$EDITOR`, else `vi`) runs
//! on our terminal, and the file is read back and removed.

use std::io::Write;
use std::process::Command;

use anyhow::{Result, anyhow, bail};

/// The characters virsh lets into the editor's command line with the file name.
const ACCEPTED: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-+/";

/// `doc` as the user left it after editing it.
pub fn edit_text(doc: &str) -> Result<String> {
    let dir = std::env::var("TMPDIR").unwrap_or_else(|_| "/tmp".into());
    let mut tmp = tempfile::Builder::new()
        .prefix("vsh")
        .suffix(".xml")
        .tempfile_in(&dir)
        .map_err(|e| anyhow!("g_mkstemp_full: failed to create temporary file: {e}"))?;
    let path = tmp.path().display().to_string();
    tmp.write_all(doc.as_bytes())
        .and_then(|_| tmp.flush())
        .map_err(|e| anyhow!("write: {path}: failed to write to temporary file: {e}"))?;
    run_editor(&path)?;
    std::fs::read_to_string(tmp.path())
        .map_err(|e| anyhow!("{path}: failed to read temporary file: {e}"))
}

/// Run the editor on `path`, inheriting our terminal.
fn run_editor(path: &str) -> Result<()> {
    let editor = std::env::var("VISUAL")
        .or_else(|_| std::env::var("EDITOR"))
        .unwrap_or_else(|_| "vi".into());
    if !path.chars().all(|c| ACCEPTED.contains(c)) {
        bail!(
            "{path}: temporary filename contains shell meta or other unacceptable characters (is $TMPDIR wrong?)"
        );
    }
    let line = format!("{editor} {path}");
    let status = Command::new("sh")
        .args(["-c", &line])
        .status()
        .map_err(|e| anyhow!("Cannot run sh: {e}"))?;
    if !status.success() {
        let how = match status.code() {
            Some(c) => format!("exit status {c}"),
            None => "fatal signal".to_string(),
        };
        bail!("internal error: Child process (sh -c '{line}') unexpected {how}");
    }
    Ok(())
}

/// What the user answers when an edited document was refused (libvirt: vshAskReedit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reedit {
    /// `y`: edit the same text again.
    Again,
    /// `n`, or no terminal to ask on: give up, the error stands.
    GiveUp,
    /// `f`: try the same text again.
    Force,
    /// `i`: try again without schema validation.
    Relax,
}

/// Ask whether to edit again after `err`; without a terminal on stdin nobody can answer,
/// so the edit ends there, as in virsh.
pub fn ask_reedit(msg: &str, err: &anyhow::Error, relax_avail: bool) -> Reedit {
    use std::io::{BufRead, IsTerminal};
    if !std::io::stdin().is_terminal() {
        return Reedit::GiveUp;
    }
    eprintln!("error: {err:#}");
    let choices = if relax_avail {
        "[y,n,i,f,?]"
    } else {
        "[y,n,f,?]"
    };
    let stdin = std::io::stdin();
    loop {
        print!("{msg} Try again? {choices}: ");
        let _ = std::io::stdout().flush();
        let mut line = String::new();
        // End of input is a "no".
        if stdin.lock().read_line(&mut line).unwrap_or(0) == 0 {
            println!();
            return Reedit::GiveUp;
        }
        match line.trim() {
            "y" => return Reedit::Again,
            "n" => return Reedit::GiveUp,
            "f" => return Reedit::Force,
            "i" if relax_avail => return Reedit::Relax,
            "?" => {
                println!("y - yes, start editor again");
                println!("n - no, throw away my changes");
                if relax_avail {
                    println!("i - turn off validation and try to redefine again");
                }
                println!("f - force, try to redefine again");
                println!("? - print this help");
            }
            _ => {}
        }
    }
}

/// virsh's edit of an object's definition without a relaxed retry (libvirt: the EDIT_*
/// macros of tools/virsh-edit.c as cmdNetworkEdit, cmdPoolEdit, cmdInterfaceEdit and
/// cmdNWFilterEdit use them): `doc` in the editor, the edited text given to `define` (which
/// returns the defined object's name) until it is unchanged, accepted, or the user gives up.
/// `noun` names the object in the messages ("Network").
pub fn edit_and_define(
    ctx: &crate::cli::ctx::CmdCtx,
    noun: &str,
    name: &str,
    doc: &str,
    mut define: impl FnMut(&str) -> Result<String>,
) -> Result<()> {
    let mut edited = edit_text(doc)?;
    loop {
        if edited == doc {
            ctx.println_extra(format!("{noun} {name} XML configuration not changed."));
            return Ok(());
        }
        let err = match define(&edited) {
            Ok(n) => {
                ctx.println_extra(format!("{noun} {n} XML configuration edited."));
                return Ok(());
            }
            Err(e) => e,
        };
        match ask_reedit("Failed.", &err, false) {
            Reedit::Again => edited = edit_text(&edited)?,
            Reedit::Force | Reedit::Relax => {}
            Reedit::GiveUp => return Err(err),
        }
    }
}
