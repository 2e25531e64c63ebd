//! `qemu-monitor-event`: QEMU's raw QMP events as the guests' monitors relay them
//! (libvirt: tools/virsh-domain.c cmdQemuMonitorEvent, virshEventQemuPrint; the name filter
//! is src/conf/domain_event.c virDomainQemuMonitorEventStateRegisterID's).

use anyhow::{Result, bail};
use regex::Regex;

use super::event_loop;
use super::util::lookup_domain;
use crate::cli::ctx::CmdCtx;
use crate::cli::parse::ParsedArgs;
use crate::cli::table::{CmdDef, Completer, DomainFilter, Group, OptDef};
use crate::driver::events::QemuMonitorEvent;
use crate::driver::monitor::events::now_ms;

pub const CMDS: &[CmdDef] = &[CmdDef::new(
    Group::DomainManagement,
    "qemu-monitor-event",
    "QEMU Monitor Events",
    "Listen for QEMU Monitor Events",
    &[
        OptDef::string("domain", "filter by domain name, id or uuid")
            .positional()
            .complete(Completer::Domain(DomainFilter::Active)),
        OptDef::string("event", "filter by event name").positional(),
        OptDef::flag("pretty", "pretty-print any JSON output"),
        OptDef::flag(
            "loop",
            "loop until timeout or interrupt, rather than one-shot",
        ),
        OptDef::int("timeout", "timeout seconds").positional(),
        OptDef::flag("regex", "treat event as a regex rather than literal filter"),
        OptDef::flag("no-case", "treat event case-insensitively"),
        OptDef::flag("timestamp", "show timestamp for each printed event"),
    ],
    cmd_qemu_monitor_event,
)
.with_json(true)];

/// Which event names a subscription takes (libvirt: a literal name, compared exactly or
/// ignoring case, or a POSIX basic regular expression searched for in the name).
#[derive(Debug, Clone)]
pub enum EventFilter {
    All,
    Name { name: String, no_case: bool },
    Regex(Regex),
}

impl EventFilter {
    pub fn new(event: Option<&str>, regex: bool, no_case: bool) -> Result<EventFilter> {
        let Some(event) = event else {
            return Ok(EventFilter::All);
        };
        if !regex {
            return Ok(EventFilter::Name {
                name: event.to_string(),
                no_case,
            });
        }
        let pattern = format!(
            "{}{}",
            if no_case { "(?i)" } else { "" },
            bre_to_regex(event)
        );
        match Regex::new(&pattern) {
            Ok(r) => Ok(EventFilter::Regex(r)),
            Err(e) => {
                let why = match e {
                    regex::Error::Syntax(s) => s.lines().last().unwrap_or_default().to_string(),
                    other => other.to_string(),
                };
                bail!("invalid argument: failed to compile regex '{event}': {why}")
            }
        }
    }

    pub fn matches(&self, name: &str) -> bool {
        match self {
            EventFilter::All => true,
            EventFilter::Name { name: n, no_case } if *no_case => n.eq_ignore_ascii_case(name),
            EventFilter::Name { name: n, .. } => n == name,
            EventFilter::Regex(r) => r.is_match(name),
        }
    }
}

/// A POSIX basic regular expression (regcomp without REG_EXTENDED, glibc's extensions
/// included) in the regex crate's syntax: `\( \) \{ \} \| \+ \?` are the operators, the bare
/// characters literals; a leading `*` is literal.
pub fn bre_to_regex(bre: &str) -> String {
    let mut out = String::new();
    let mut chars = bre.chars().peekable();
    // Whether a `*` here would have nothing to repeat (and so is literal).
    let mut at_start = true;
    while let Some(c) = chars.next() {
        let was_start = at_start;
        at_start = false;
        match c {
            '\\' => match chars.next() {
                Some(o @ ('(' | ')' | '{' | '}' | '|' | '+' | '?')) => {
                    out.push(o);
                    at_start = matches!(o, '(' | '|');
                }
                Some(d @ '1'..='9') => {
                    // Back-references have no counterpart: match the digit literally.
                    out.push_str(&regex::escape(&d.to_string()));
                }
                Some(other) => out.push_str(&regex::escape(&other.to_string())),
                None => out.push_str("\\\\"),
            },
            '*' if was_start => out.push_str("\\*"),
            '^' if was_start => {
                out.push('^');
                at_start = true;
            }
            '[' => {
                // A bracket expression, copied; backslashes are literal inside one.
                out.push('[');
                let mut first = true;
                if chars.peek() == Some(&'^') {
                    out.push('^');
                    chars.next();
                }
                while let Some(b) = chars.next() {
                    match b {
                        ']' if !first => {
                            out.push(']');
                            break;
                        }
                        '[' if matches!(chars.peek(), Some(':' | '.' | '=')) => {
                            // A class such as [:alpha:], up to its closing `:]`.
                            out.push('[');
                            for x in chars.by_ref() {
                                out.push(x);
                                if x == ']' {
                                    break;
                                }
                            }
                        }
                        // Literal in POSIX, operators in the regex crate's classes.
                        '\\' | '[' | '&' | '~' => {
                            out.push('\\');
                            out.push(b);
                        }
                        _ => out.push(b),
                    }
                    first = false;
                }
            }
            '(' | ')' | '{' | '}' | '|' | '+' | '?' => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

/// The line virsh prints for an event (libvirt: virshEventQemuPrint); `timestamp` replaces
/// QEMU's time with the time of printing.
pub fn event_line(e: &QemuMonitorEvent, pretty: bool, timestamp: Option<&str>) -> String {
    let details = match &e.data {
        None => "<null>".to_string(),
        Some(d) if pretty => serde_json::to_string_pretty(d).unwrap_or_default(),
        Some(d) => serde_json::to_string(d).unwrap_or_default(),
    };
    match timestamp {
        Some(ts) => format!(
            "{ts}: event {} for domain '{}': {details}",
            e.event, e.domain
        ),
        None => format!(
            "event {} at {}.{:06} for domain '{}': {details}",
            e.event, e.seconds, e.micros, e.domain
        ),
    }
}

fn cmd_qemu_monitor_event(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let looping = args.flag("loop");
    let pretty = args.flag("pretty");
    let stamp = args.flag("timestamp");
    let timeout = event_loop::timeout(args)?;
    let conn = ctx.conn()?;
    let domain = match args.string("domain") {
        Some(d) => Some(lookup_domain(conn, d)?.name().to_string()),
        None => None,
    };
    let filter = EventFilter::new(
        args.string("event"),
        args.flag("regex"),
        args.flag("no-case"),
    )?;
    let mut events = conn.qemu_monitor_events(domain.as_deref())?;
    event_loop::run(
        ctx,
        timeout,
        looping,
        |slice| events.next_timeout(slice),
        |ctx, e| {
            if !filter.matches(&e.event) {
                return Ok(false);
            }
            if ctx.json() {
                ctx.println(serde_json::to_string(&e)?);
            } else {
                let ts = stamp.then(|| crate::timefmt::format_virsh_timestamp(now_ms()));
                ctx.println(event_line(&e, pretty, ts.as_deref()));
            }
            Ok(true)
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_regular_expressions() {
        let m = |bre: &str, name: &str| Regex::new(&bre_to_regex(bre)).unwrap().is_match(name);
        assert!(m("STOP", "STOP"));
        assert!(m("^RES", "RESUME"));
        assert!(!m("^RES", "BLOCK_RESIZE"));
        assert!(m("S\\(TOP\\|HUTDOWN\\)$", "SHUTDOWN"));
        assert!(!m("(STOP)", "STOP"));
        assert!(m("(STOP)", "(STOP)"));
        assert!(m("*x", "*x"));
        assert!(m("BLOCK_[A-Z]*", "BLOCK_JOB_READY"));
        assert!(m("[[:upper:]_]\\{5\\}", "RESUME"));
        assert!(m("A.B", "AxB"));
    }

    #[test]
    fn filters() {
        let f = EventFilter::new(Some("stop"), false, true).unwrap();
        assert!(f.matches("STOP") && !f.matches("STOPPED"));
        let f = EventFilter::new(Some("STOP"), false, false).unwrap();
        assert!(f.matches("STOP") && !f.matches("stop"));
        let f = EventFilter::new(Some("res"), true, true).unwrap();
        assert!(f.matches("RESUME") && f.matches("RESET"));
        let e = EventFilter::new(Some("\\(x"), true, false).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("invalid argument: failed to compile regex '\\(x': "),
            "{e}"
        );
    }

    #[test]
    fn lines_as_virsh_prints_them() {
        let mut e = QemuMonitorEvent {
            domain: "g".into(),
            event: "STOP".into(),
            seconds: 1700000000,
            micros: 42,
            data: None,
        };
        assert_eq!(
            event_line(&e, false, None),
            "event STOP at 1700000000.000042 for domain 'g': <null>"
        );
        e.data = Some(serde_json::json!({"guest": false, "reason": "host-qmp-quit"}));
        assert_eq!(
            event_line(&e, false, Some("2026-01-01 00:00:00.000+0000")),
            "2026-01-01 00:00:00.000+0000: event STOP for domain 'g': {\"guest\":false,\"reason\":\"host-qmp-quit\"}"
        );
        assert!(
            event_line(&e, true, None)
                .ends_with(": {\n  \"guest\": false,\n  \"reason\": \"host-qmp-quit\"\n}")
        );
    }
}
