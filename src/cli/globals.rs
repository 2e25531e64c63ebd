//! vsh's own options, before the verb (libvirt: virshParseArgv): getopt_long's grammar with
//! virsh's options and messages, and where the URI comes from when `-c` names none.

/// The global options a verb runs under.
#[derive(Debug, Clone)]
pub struct Globals {
    /// The URI to open; `None` lets the driver choose (`VSH_DEFAULT_URI`, else system for
    /// root and session otherwise).
    pub uri: Option<String>,
    pub quiet: bool,
    pub readonly: bool,
    /// virsh's debug level 0 (most) to 4 (errors only, the default).
    pub debug: u8,
    /// The console's escape character (`-e`, default `^]`).
    pub escape: u8,
    /// The escape sequence as given (`^]`), for the console's greeting.
    pub escape_text: String,
    /// Print the time each command took (`-t`).
    pub timing: bool,
    /// Every verb that prints data prints JSON.
    pub json: bool,
    /// Running in the interactive shell (virsh's imode), where `cd` works.
    pub interactive: bool,
    /// `-l/--log FILE`, else `VIRSH_LOG_FILE`: where errors (and debug lines) are logged.
    pub log_file: Option<String>,
}

impl Default for Globals {
    fn default() -> Self {
        Globals {
            uri: None,
            quiet: false,
            readonly: false,
            debug: 4,
            escape: 0x1d,
            escape_text: "^]".into(),
            timing: false,
            json: false,
            interactive: false,
            log_file: None,
        }
    }
}

/// What the command line asks for.
#[derive(Debug)]
pub enum Action {
    /// Run the verb in these words, or the shell when there are none.
    Run(Globals, Vec<String>),
    /// Print the usage.
    Usage,
    /// Print the version, short or long.
    Version { long: bool },
}

/// Options taking a value: (short, long).
const WITH_VALUE: &[(char, &str)] = &[
    ('c', "connect"),
    ('d', "debug"),
    ('e', "escape"),
    ('k', "keepalive-interval"),
    ('K', "keepalive-count"),
    ('l', "log"),
];

/// Flags: (short, long).
const FLAGS: &[(char, &str)] = &[
    ('h', "help"),
    ('q', "quiet"),
    ('r', "readonly"),
    ('t', "timing"),
    ('v', "version"),
    ('V', ""),
    ('\0', "json"),
];

/// Parse `args` (without the program name). Errors are virsh's messages.
pub fn parse(args: &[String]) -> Result<Action, String> {
    let mut g = Globals::default();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        i += 1;
        if a == "--" {
            break;
        }
        if let Some(body) = a.strip_prefix("--") {
            let (name, value) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (body, None),
            };
            // getopt_long takes any unambiguous prefix of a long option.
            let longs = WITH_VALUE
                .iter()
                .chain(FLAGS)
                .filter(|(_, l)| !l.is_empty());
            let exact = longs.clone().find(|(_, l)| *l == name);
            let mut prefixed = longs.filter(|(_, l)| l.starts_with(name));
            let (short, long) = match (exact, prefixed.next(), prefixed.next()) {
                (Some(o), _, _) => *o,
                (None, Some(o), None) if !name.is_empty() => *o,
                _ => return Err(format!("unsupported option '{a}'. See --help.")),
            };
            if short == 'v' {
                return Ok(Action::Version {
                    long: value.as_deref() == Some("long"),
                });
            }
            let takes_value = WITH_VALUE.iter().any(|(s, _)| *s == short);
            let value = if takes_value {
                match value {
                    Some(v) => Some(v),
                    None if i < args.len() => {
                        i += 1;
                        Some(args[i - 1].clone())
                    }
                    None => {
                        return Err(format!("option '-{short}'/'--{long}' requires an argument"));
                    }
                }
            } else if value.is_some() {
                return Err(format!("option '--{long}' doesn't allow an argument"));
            } else {
                None
            };
            if long == "json" {
                g.json = true;
                continue;
            }
            if let Some(done) = apply(&mut g, short, value, true)? {
                return Ok(done);
            }
            continue;
        }
        if a.len() > 1 && a.starts_with('-') {
            // A cluster of short options, the last of which may take a value.
            for (at, c) in a[1..].char_indices() {
                if WITH_VALUE.iter().any(|(s, _)| *s == c) {
                    let rest = &a[1 + at + c.len_utf8()..];
                    let value = if !rest.is_empty() {
                        rest.to_string()
                    } else if i < args.len() {
                        i += 1;
                        args[i - 1].clone()
                    } else {
                        let long = WITH_VALUE.iter().find(|(s, _)| *s == c).unwrap().1;
                        return Err(format!("option '-{c}'/'--{long}' requires an argument"));
                    };
                    if let Some(done) = apply(&mut g, c, Some(value), false)? {
                        return Ok(done);
                    }
                    break;
                }
                if !FLAGS.iter().any(|(s, _)| *s == c && c != '\0') {
                    return Err(format!("unsupported option '-{c}'. See --help."));
                }
                if let Some(done) = apply(&mut g, c, None, false)? {
                    return Ok(done);
                }
            }
            continue;
        }
        // The verb: everything from here on is its own.
        i -= 1;
        break;
    }
    if g.uri.is_none() {
        g.uri = default_uri();
    }
    Ok(Action::Run(g, args[i.min(args.len())..].to_vec()))
}

/// The URI when `-c` names none. `VSH_DEFAULT_URI` is left to the driver; below it come
/// virsh's own variable and then libvirt's (virsh reads `VIRSH_DEFAULT_CONNECT_URI` itself and
/// libvirt falls back to `LIBVIRT_DEFAULT_URI` when given none).
pub fn default_uri() -> Option<String> {
    let set = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    if set("VSH_DEFAULT_URI").is_some() {
        return None;
    }
    set("VIRSH_DEFAULT_CONNECT_URI").or_else(|| set("LIBVIRT_DEFAULT_URI"))
}

/// Apply one option; `Some` when it ends parsing (help, version).
fn apply(
    g: &mut Globals,
    short: char,
    value: Option<String>,
    long: bool,
) -> Result<Option<Action>, String> {
    let value = value.unwrap_or_default();
    match short {
        'c' => g.uri = Some(value),
        'd' => {
            let n: i64 = value.trim().parse().map_err(|_| {
                format!(
                    "option {} takes a numeric argument",
                    if long { "--debug" } else { "-d" }
                )
            })?;
            if (0..=4).contains(&n) {
                g.debug = n as u8;
            } else {
                // virsh goes on with its default level.
                let _ = std::io::Write::write_all(
                    &mut std::io::stderr(),
                    format!("error: ignoring debug level {n} out of range [0-4]\n").as_bytes(),
                );
            }
        }
        'e' => {
            g.escape = escape_char(&value)?;
            g.escape_text = value;
        }
        'k' | 'K' => {
            let name = match (short, long) {
                ('k', false) => "-k",
                ('k', true) => "--keepalive-interval",
                (_, false) => "-K",
                _ => "--keepalive-count",
            };
            let n: i64 =
                parse_c_int(&value).ok_or_else(|| format!("Invalid value for option {name}"))?;
            if n < 0 {
                return Err(format!(
                    "option {name} requires a positive integer argument"
                ));
            }
            // No daemon, no keepalive: accepted for virsh's command lines.
        }
        'l' => g.log_file = Some(value),
        'h' => return Ok(Some(Action::Usage)),
        'q' => g.quiet = true,
        'r' => g.readonly = true,
        't' => g.timing = true,
        'v' => return Ok(Some(Action::Version { long: false })),
        'V' => return Ok(Some(Action::Version { long: true })),
        _ => return Err("unknown option".into()),
    }
    Ok(None)
}

/// A number as strtol with base 0 reads it: decimal, `0x` hex or leading-0 octal.
fn parse_c_int(s: &str) -> Option<i64> {
    let (neg, t) = match s.strip_prefix('-') {
        Some(t) => (true, t),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let n = if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        i64::from_str_radix(h, 16).ok()?
    } else if t.len() > 1 && t.starts_with('0') {
        i64::from_str_radix(&t[1..], 8).ok()?
    } else {
        t.parse().ok()?
    };
    Some(if neg { -n } else { n })
}

/// virsh's escape sequence: one character other than `^`, or `^` and one of `a-z`, `@`-`_`,
/// meaning that control character (libvirt: virshAllowedEscapeChar, vshGetEscapeChar).
pub fn escape_char(s: &str) -> Result<u8, String> {
    let b = s.as_bytes();
    let allowed = |c: u8| c.is_ascii_lowercase() || (b'@'..=b'_').contains(&c);
    match b {
        [b'^', c] if allowed(*c) => Ok(c.to_ascii_uppercase() ^ 0x40),
        [c] if *c != b'^' => Ok(*c),
        _ => Err(format!("Invalid string '{s}' for escape sequence")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn options_then_verb() {
        let Ok(Action::Run(g, rest)) = parse(&words("-q -r -c qemu:///session list --all")) else {
            panic!()
        };
        assert!(g.quiet && g.readonly);
        assert_eq!(g.uri.as_deref(), Some("qemu:///session"));
        assert_eq!(rest, words("list --all"));
        let Ok(Action::Run(g, rest)) = parse(&words("-qrcqemu:///embed?root=/x --conn=a uri"))
        else {
            panic!()
        };
        assert!(g.quiet && g.readonly);
        assert_eq!(g.uri.as_deref(), Some("a"));
        assert_eq!(rest, words("uri"));
        let Ok(Action::Run(g, rest)) = parse(&words("--json -e ^a")) else {
            panic!()
        };
        assert!(g.json && rest.is_empty());
        assert_eq!(g.escape, 1);
    }

    #[test]
    fn versions_and_errors() {
        assert!(matches!(
            parse(&words("-v")),
            Ok(Action::Version { long: false })
        ));
        assert!(matches!(
            parse(&words("--version=long")),
            Ok(Action::Version { long: true })
        ));
        assert!(matches!(
            parse(&words("-V")),
            Ok(Action::Version { long: true })
        ));
        assert!(matches!(parse(&words("-h list")), Ok(Action::Usage)));
        assert_eq!(
            parse(&words("-x")).unwrap_err(),
            "unsupported option '-x'. See --help."
        );
        assert_eq!(
            parse(&words("--bogus")).unwrap_err(),
            "unsupported option '--bogus'. See --help."
        );
        assert_eq!(
            parse(&words("-c")).unwrap_err(),
            "option '-c'/'--connect' requires an argument"
        );
        assert_eq!(
            parse(&words("-d x")).unwrap_err(),
            "option -d takes a numeric argument"
        );
        assert_eq!(
            parse(&words("-e ^^^")).unwrap_err(),
            "Invalid string '^^^' for escape sequence"
        );
        assert_eq!(escape_char("^]"), Ok(0x1d));
        assert_eq!(escape_char("x"), Ok(b'x'));
        assert!(escape_char("^1").is_err());
    }
}
