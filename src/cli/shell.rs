//! The interactive shell when no verb is given (libvirt: virsh.c main's interactive loop,
//! vshReadlineInit): prompt `vsh # ` (`vsh > ` read-only), line editing, history in
//! `$XDG_CACHE_HOME/vsh/history`, tab completion from the table, `quit`/`exit`.

use std::path::PathBuf;

use rustyline::completion::Completer;
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::Validator;
use rustyline::{Config, Editor, Helper};

use super::ctx::{CmdCtx, Out};
use super::{complete, parse, print_error, run_commands};

/// virsh's limit on `VIRSH_HISTSIZE` (libvirt: HISTSIZE_MAX).
const HISTSIZE_MAX: usize = 500_000;

/// Tab completion through [`complete::complete`], with a connection of its own.
struct VshHelper {
    ctx: CmdCtx,
}

impl Completer for VshHelper {
    type Candidate = String;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _: &rustyline::Context<'_>,
    ) -> rustyline::Result<(usize, Vec<String>)> {
        let upto = &line[..pos];
        let start = upto.rfind([' ', '\t', ';']).map_or(0, |i| i + 1);
        let mut words = parse::split_line(upto)
            .ok()
            .and_then(|mut c| {
                // After a `;` the next command starts.
                if upto.trim_end().ends_with(';') {
                    None
                } else {
                    c.pop()
                }
            })
            .unwrap_or_default();
        if start == pos {
            words.push(String::new());
        }
        Ok((start, complete::complete(&self.ctx, &words)))
    }
}

impl Hinter for VshHelper {
    type Hint = String;
}

impl Highlighter for VshHelper {}

impl Validator for VshHelper {}

impl Helper for VshHelper {}

/// Where history is kept: `$XDG_CACHE_HOME/vsh/history`, else `~/.cache/vsh/history`.
fn history_file() -> Option<PathBuf> {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(cache.join("vsh").join("history"))
}

/// The history size: `VSH_HISTSIZE`, default 500 (libvirt: VIRSH_HISTSIZE).
fn history_size() -> Result<usize, String> {
    match std::env::var("VSH_HISTSIZE") {
        Err(_) => Ok(500),
        Ok(s) => match s.trim().parse::<i64>() {
            Err(_) => Err("Bad $VSH_HISTSIZE value.".into()),
            Ok(n) if n < 0 || n as usize > HISTSIZE_MAX => Err(format!(
                "$VSH_HISTSIZE value should be between 0 and {HISTSIZE_MAX}"
            )),
            Ok(n) => Ok(n as usize),
        },
    }
}

/// Run the shell until `quit` or end of input; the exit status is 0, as virsh's.
pub fn run(ctx: &mut CmdCtx) -> u8 {
    let size = match history_size() {
        Ok(n) => n,
        Err(e) => {
            print_error([e]);
            return 1;
        }
    };
    let config = match Config::builder().max_history_size(size) {
        Ok(b) => b.auto_add_history(false).build(),
        Err(e) => {
            print_error([e]);
            return 1;
        }
    };
    let mut rl: Editor<VshHelper, DefaultHistory> = match Editor::with_config(config) {
        Ok(r) => r,
        Err(e) => {
            print_error([format!("cannot start the shell: {e}")]);
            return 1;
        }
    };
    rl.set_helper(Some(VshHelper {
        ctx: CmdCtx::new(ctx.globals.clone(), Out::buffer()),
    }));
    ctx.globals.interactive = true;
    let hist = history_file();
    if let Some(h) = &hist {
        let _ = rl.load_history(h);
    }
    if !ctx.globals.quiet {
        ctx.print(
            "Welcome to vsh, the virtualization interactive terminal.\n\n\
             Type:  'help' for help with commands\n       'quit' to quit\n\n",
        );
    }
    loop {
        let prompt = if ctx.globals.readonly {
            "vsh > "
        } else {
            "vsh # "
        };
        match rl.readline(prompt) {
            Ok(line) => {
                if line.trim().is_empty() {
                    continue;
                }
                let _ = rl.add_history_entry(line.as_str());
                match parse::split_line(&line) {
                    Ok(cmds) => {
                        run_commands(ctx, &cmds);
                    }
                    Err(e) => print_error(e.0),
                }
                if ctx.quit_requested() || ctx.out().closed() {
                    break;
                }
            }
            // ^C drops the line being typed, as readline does.
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => {
                ctx.print("\n");
                break;
            }
            Err(e) => {
                print_error([format!("cannot read a command: {e}")]);
                break;
            }
        }
    }
    if let Some(h) = &hist {
        let saved = h
            .parent()
            .map(std::fs::create_dir_all)
            .transpose()
            .map_err(|e| e.to_string())
            .and_then(|_| rl.save_history(h).map_err(|e| e.to_string()));
        if let Err(e) = saved {
            print_error([format!("Failed to create '{}': {e}", h.display())]);
        }
    }
    0
}
