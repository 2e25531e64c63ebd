//! virsh's command grammar over the table (libvirt: vshCommandParse, vshCommandStringGetArg):
//! options by name (`--opt value`, `--opt=value`), the main arguments by position in declared
//! order, `--` ending options, aliases, and virsh's messages for what is wrong.

use super::table::{CmdDef, OptKind};
use super::verbs;

/// A parse failure, worded as virsh's (each line becomes one `error:` line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub Vec<String>);

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.join("\n"))
    }
}

impl std::error::Error for ParseError {}

fn err<T>(msg: String) -> Result<T, ParseError> {
    Err(ParseError(vec![msg]))
}

/// A verb's arguments after parsing: each option given, in the order given.
#[derive(Debug, Clone)]
pub struct ParsedArgs {
    pub cmd: &'static CmdDef,
    /// (option name, value); flags have no value.
    pub given: Vec<(&'static str, Option<String>)>,
    /// `--help` was given: show the verb's help instead of running it.
    pub help: bool,
    /// `--json` was given to a verb that has JSON output.
    pub json: bool,
}

impl ParsedArgs {
    fn check_name(&self, name: &str) {
        debug_assert!(
            self.cmd.opt(name).is_some(),
            "verb '{}' has no option '{name}'",
            self.cmd.name
        );
    }

    /// Whether flag (or any option) `name` was given.
    pub fn flag(&self, name: &str) -> bool {
        self.check_name(name);
        self.given.iter().any(|(n, _)| *n == name)
    }

    /// The value of string or data option `name`.
    pub fn string(&self, name: &str) -> Option<&str> {
        self.check_name(name);
        self.given
            .iter()
            .find(|(n, _)| *n == name)
            .and_then(|(_, v)| v.as_deref())
    }

    /// The value of a required option (the parser has made sure it is there).
    pub fn required(&self, name: &str) -> anyhow::Result<&str> {
        self.string(name)
            .ok_or_else(|| anyhow::anyhow!("command '{}' requires <{name}> option", self.cmd.name))
    }

    /// The value of number option `name`, with virsh's message when it is not a number of
    /// type `T` (libvirt: vshCommandOptInt).
    pub fn int<T: std::str::FromStr>(&self, name: &str) -> anyhow::Result<Option<T>> {
        match self.string(name) {
            None => Ok(None),
            Some(s) => s.parse::<T>().map(Some).map_err(|_| {
                anyhow::anyhow!(
                    "Numeric value '{s}' for <{name}> option is malformed or out of range"
                )
            }),
        }
    }

    /// virsh's refusal of two options given together (libvirt: VSH_EXCLUSIVE_OPTIONS).
    pub fn exclusive(&self, a: &str, b: &str) -> anyhow::Result<()> {
        if self.flag(a) && self.flag(b) {
            anyhow::bail!("Options --{a} and --{b} are mutually exclusive");
        }
        Ok(())
    }

    /// Every value of a repeatable (argv) option, in order.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.check_name(name);
        self.given
            .iter()
            .filter(|(n, _)| *n == name)
            .filter_map(|(_, v)| v.as_deref())
            .collect()
    }
}

/// The verb named `name`, aliases resolved.
pub fn lookup(name: &str) -> Option<&'static CmdDef> {
    let def = verbs::all().find(|c| c.name == name)?;
    match def.alias_of {
        Some(real) => verbs::all().find(|c| c.name == real),
        None => Some(def),
    }
}

/// Parse one command's words (`words[0]` is the verb).
pub fn parse(words: &[String]) -> Result<ParsedArgs, ParseError> {
    let Some(first) = words.first() else {
        return err("no command given".into());
    };
    let Some(cmd) = lookup(first) else {
        return err(format!("unknown command: '{first}'"));
    };
    parse_for(cmd, &words[1..])
}

/// Parse the arguments of `cmd`.
pub fn parse_for(cmd: &'static CmdDef, args: &[String]) -> Result<ParsedArgs, ParseError> {
    let mut out = ParsedArgs {
        cmd,
        given: Vec::new(),
        help: false,
        json: false,
    };
    let mut seen = vec![false; cmd.opts.len()];
    let mut data_only = false;
    let mut it = args.iter();
    while let Some(tok) = it.next() {
        let b = tok.as_bytes();
        if !data_only && b.len() > 2 && b.starts_with(b"--") && b[2].is_ascii_alphanumeric() {
            let body = &tok[2..];
            let (mut name, mut value) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (body, None),
            };
            if name == "help" {
                out.help = true;
                continue;
            }
            if name == "json" && cmd.json {
                if value.is_some() {
                    return err("invalid '=' after option --json".into());
                }
                out.json = true;
                continue;
            }
            // libvirt: vshCmddefGetOption, aliases first.
            let mut idx = cmd.opts.iter().position(|o| o.name == name);
            if let Some(i) = idx
                && let OptKind::Alias(target) = cmd.opts[i].kind
            {
                let (t, v) = match target.split_once('=') {
                    Some((t, v)) => (t, Some(v)),
                    None => (target, None),
                };
                if let Some(v) = v {
                    if value.is_some() {
                        return err(format!("invalid '=' after option --{name}"));
                    }
                    value = Some(v.to_string());
                }
                name = t;
                idx = cmd.opts.iter().position(|o| o.name == t);
            }
            let Some(i) = idx else {
                if cmd.name == "help" {
                    continue;
                }
                return err(format!(
                    "command '{}' doesn't support option --{name}",
                    cmd.name
                ));
            };
            let opt = &cmd.opts[i];
            if seen[i] && opt.kind != OptKind::Argv {
                return err(format!("option --{} already seen", opt.name));
            }
            seen[i] = true;
            if opt.kind == OptKind::Bool {
                if value.is_some() {
                    return err(format!("invalid '=' after option --{}", opt.name));
                }
                out.given.push((opt.name, None));
                continue;
            }
            let value = match value {
                Some(v) => v,
                None => match it.next() {
                    Some(v) => v.clone(),
                    None => {
                        let what = if opt.kind == OptKind::Int {
                            "number"
                        } else {
                            "string"
                        };
                        return err(format!("expected syntax: --{} <{what}>", opt.name));
                    }
                },
            };
            out.given.push((opt.name, Some(value)));
            continue;
        }
        if !data_only && tok == "--" {
            data_only = true;
            continue;
        }
        // libvirt: vshCmddefGetData: the first positional option not given yet; argv takes
        // every remaining word.
        let next = cmd.opts.iter().enumerate().find(|(i, o)| {
            o.positional
                && !matches!(o.kind, OptKind::Bool | OptKind::Alias(_))
                && (!seen[*i] || o.kind == OptKind::Argv)
        });
        match next {
            Some((i, o)) => {
                seen[i] = true;
                out.given.push((o.name, Some(tok.clone())));
            }
            None if cmd.name == "help" => {}
            None => return err(format!("unexpected data '{tok}'")),
        }
    }
    if out.help {
        return Ok(out);
    }
    // libvirt: vshCommandCheckOpts.
    let missing: Vec<String> = cmd
        .opts
        .iter()
        .zip(&seen)
        .filter(|(o, seen)| o.required && !**seen)
        .map(|(o, _)| match o.kind {
            OptKind::Data | OptKind::Argv => {
                format!("command '{}' requires <{}> option", cmd.name, o.name)
            }
            _ => format!("command '{}' requires --{} option", cmd.name, o.name),
        })
        .collect();
    if !missing.is_empty() {
        return Err(ParseError(missing));
    }
    Ok(out)
}

/// Split a command line as virsh does (libvirt: vshCommandStringGetArg): blanks separate
/// words, `;` and newlines separate commands, `'…'`, `"…"` and `\` quote as in the shell,
/// and `#` at the start of a word comments out the rest of the line.
pub fn split_line(line: &str) -> Result<Vec<Vec<String>>, ParseError> {
    let mut cmds = Vec::new();
    let mut words: Vec<String> = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while let Some(&c) = chars.peek() {
            if c == ' ' || c == '\t' {
                chars.next();
            } else if c == '\\' {
                let mut ahead = chars.clone();
                ahead.next();
                if ahead.peek() == Some(&'\n') {
                    chars.next();
                    chars.next();
                } else {
                    break;
                }
            } else {
                break;
            }
        }
        match chars.peek() {
            None => break,
            Some(';') | Some('\n') => {
                chars.next();
                if !words.is_empty() {
                    cmds.push(std::mem::take(&mut words));
                }
                continue;
            }
            Some('#') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
                if !words.is_empty() {
                    cmds.push(std::mem::take(&mut words));
                }
                continue;
            }
            _ => {}
        }
        let mut word = String::new();
        let (mut sq, mut dq) = (false, false);
        while let Some(&c) = chars.peek() {
            if !sq && !dq && matches!(c, ' ' | '\t' | ';' | '\n') {
                break;
            }
            chars.next();
            if !dq && c == '\'' {
                sq = !sq;
            } else if !sq && c == '"' {
                dq = !dq;
            } else if !sq && c == '\\' {
                match chars.next() {
                    None => return err("dangling \\".into()),
                    Some('\n') => {}
                    Some(n) => word.push(n),
                }
            } else {
                word.push(c);
            }
        }
        if dq {
            return err("missing \"".into());
        }
        words.push(word);
    }
    if !words.is_empty() {
        cmds.push(words);
    }
    Ok(cmds)
}
