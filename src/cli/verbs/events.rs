//! Domain Events: `event` (libvirt: virsh-domain-event.c cmdEvent) and `await` (virsh 11.5's
//! cmdAwait), on the events each guest's monitor serves ([`crate::driver::events`]).

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use serde::Serialize;

use super::util::lookup_domain;
use crate::cli::ctx::{CmdCtx, QuietFailure};
use crate::cli::interrupt::CatchInterrupt;
use crate::cli::parse::ParsedArgs;
use crate::cli::table::{CmdDef, Completer, DomainFilter, Group, OptDef};
use crate::driver::events::Events;
use crate::driver::monitor::DomainEvent;
use crate::driver::monitor::events::EVENT_NAMES;

/// The conditions `await --condition` knows.
const CONDITIONS: &[&str] = &["domain-inactive", "guest-agent-available"];

/// How often a wait looks at Ctrl-C (and `await` at the domain's state).
const SLICE: Duration = Duration::from_millis(100);

pub const CMDS: &[CmdDef] = &[
    CmdDef::new(
        Group::DomainEvents,
        "event",
        "Domain Events",
        "List event types, or wait for domain events to occur",
        &[
            OptDef::domain("filter by domain name, id or uuid", DomainFilter::All).optional(),
            OptDef::string("event", "which event type to wait for")
                .positional()
                .complete(Completer::Words(EVENT_NAMES)),
            OptDef::flag("all", "wait for all events instead of just one type"),
            OptDef::flag(
                "loop",
                "loop until timeout or interrupt, rather than one-shot",
            ),
            OptDef::int("timeout", "timeout seconds"),
            OptDef::flag("list", "list valid event types"),
            OptDef::flag("timestamp", "show timestamp for each printed event"),
        ],
        cmd_event,
    )
    .with_json(true),
    CmdDef::new(
        Group::DomainEvents,
        "await",
        "await a domain event",
        "Waits until the domain fulfils the condition: domain-inactive (it is shut off).",
        &[
            OptDef::domain("domain name, id or uuid", DomainFilter::All),
            OptDef::string("condition", "which condition to wait until")
                .required()
                .complete(Completer::Words(CONDITIONS)),
            OptDef::int("timeout", "timeout seconds"),
        ],
        cmd_await,
    ),
];

/// `--timeout` in seconds, as virsh takes it: positive, and small enough in milliseconds
/// (libvirt: vshCommandOptTimeoutToMs).
fn timeout(args: &ParsedArgs) -> Result<Option<Duration>> {
    match args.int::<u32>("timeout")? {
        None => Ok(None),
        Some(t) if t == 0 || t > i32::MAX as u32 / 1000 => {
            bail!("Numeric value '{t}' for <timeout> option is malformed or out of range")
        }
        Some(t) => Ok(Some(Duration::from_secs(t.into()))),
    }
}

/// How a wait for events ended (libvirt: vshEventWait's results).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
enum Ended {
    Done,
    TimedOut,
    Interrupted,
}

/// Wait for the next event of `events`, up to `deadline`, watching for Ctrl-C.
fn next_event(
    events: &mut Events,
    deadline: Option<Instant>,
    intr: &CatchInterrupt,
) -> Result<DomainEvent, Ended> {
    loop {
        if intr.interrupted() {
            return Err(Ended::Interrupted);
        }
        let mut slice = SLICE;
        if let Some(d) = deadline {
            let left = d.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Ended::TimedOut);
            }
            slice = slice.min(left);
        }
        if let Some(e) = events.next_timeout(slice) {
            return Ok(e);
        }
    }
}

/// `event --json`: one line per event, then the summary.
#[derive(Serialize)]
struct Summary {
    ended: Ended,
    events_received: usize,
}

/// `vsh event [DOMAIN] {EVENT | --all} [--loop] [--timeout S] [--timestamp] | --list`.
fn cmd_event(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    args.exclusive("all", "event")?;
    args.exclusive("list", "all")?;
    args.exclusive("list", "event")?;
    if args.flag("list") {
        for n in EVENT_NAMES {
            ctx.println(n);
        }
        return Ok(());
    }
    let kind = args.string("event");
    if kind.is_none() && !args.flag("all") {
        bail!("one of --list, --all, or --event <type> is required");
    }
    if let Some(k) = kind
        && !EVENT_NAMES.contains(&k)
    {
        bail!("unknown event type {k}");
    }
    let timeout = timeout(args)?;
    let conn = ctx.conn()?;
    let mut events = match args.string("domain") {
        Some(d) => conn.domain_events(lookup_domain(conn, d)?.name())?,
        None => conn.events()?,
    };
    let intr = CatchInterrupt::install();
    let deadline = timeout.map(|t| Instant::now() + t);
    let mut count = 0usize;
    let ended = loop {
        match next_event(&mut events, deadline, &intr) {
            Err(end) => break end,
            Ok(e) if kind.is_some_and(|k| k != e.kind()) => {}
            Ok(e) => {
                print_event(ctx, &e, args.flag("timestamp"));
                count += 1;
                if !args.flag("loop") {
                    break Ended::Done;
                }
            }
        }
    };
    if ctx.json() {
        let s = Summary {
            ended,
            events_received: count,
        };
        ctx.println(serde_json::to_string(&s)?);
    } else {
        match ended {
            Ended::Interrupted => ctx.println("event loop interrupted"),
            Ended::TimedOut => ctx.println("event loop timed out"),
            Ended::Done => {}
        }
        ctx.println(format!("events received: {count}"));
    }
    if count == 0 {
        return Err(QuietFailure.into());
    }
    Ok(())
}

/// One event as virsh prints it (libvirt: virshEventPrint), or as one JSON line.
fn print_event(ctx: &CmdCtx, e: &DomainEvent, timestamp: bool) {
    if ctx.json() {
        if let Ok(s) = serde_json::to_string(e) {
            ctx.println(s);
        }
        return;
    }
    let line = e.virsh_line();
    if timestamp {
        let ts = crate::timefmt::format_virsh_timestamp(e.time_ms);
        ctx.println(format!("{ts}: {line}"));
    } else {
        ctx.println(line);
    }
}

/// `vsh await DOMAIN --condition domain-inactive [--timeout S]`: returns once the domain is
/// shut off; at once when it is already.
fn cmd_await(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let cond = args.required("condition")?;
    if !CONDITIONS.contains(&cond) {
        bail!("unknown condition '{cond}'");
    }
    let timeout = timeout(args)?;
    let conn = ctx.conn()?;
    let dom = lookup_domain(conn, args.required("domain")?)?;
    // Subscribe first, then look: a stop between the two is then an event.
    let mut events = conn.domain_events(dom.name())?;
    let intr = CatchInterrupt::install();
    let deadline = timeout.map(|t| Instant::now() + t);
    let agent = cond == "guest-agent-available";
    loop {
        // The state too, not only events: a guest whose monitor died is noticed by looking.
        let active = dom.is_active()?;
        if agent {
            // libvirt's virsh: the agent answers, not only has its channel open.
            if !active {
                bail!("domain is not running");
            }
            if dom.agent_connected()? {
                return Ok(());
            }
        } else if !active {
            return Ok(());
        }
        // An agent may open its channel a moment before it answers: look again each second.
        let slice = match (agent, deadline) {
            (true, Some(d)) => Some(d.min(Instant::now() + Duration::from_secs(1))),
            (true, None) => Some(Instant::now() + Duration::from_secs(1)),
            (false, d) => d,
        };
        match next_event(&mut events, slice, &intr) {
            Ok(e) if e.is_stop() && !agent => return Ok(()),
            Ok(_) => {}
            Err(Ended::TimedOut) if deadline.is_none_or(|d| Instant::now() < d) => {}
            Err(Ended::TimedOut) => bail!("timed out waiting for condition '{cond}'"),
            Err(_) => bail!("interrupted while waiting for condition '{cond}'"),
        }
    }
}
