//! Domain Events: `event` (libvirt: virsh-domain-event.c cmdEvent) and `await` (virsh 11.5's
//! cmdAwait), on the events each guest's monitor serves ([`crate::driver::events`]).

use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use super::event_loop::{self, Ended, next_event, timeout};
use super::util::lookup_domain;
use crate::cli::ctx::CmdCtx;
use crate::cli::interrupt::CatchInterrupt;
use crate::cli::parse::ParsedArgs;
use crate::cli::table::{CmdDef, Completer, DomainFilter, Group, OptDef};
use crate::driver::monitor::DomainEvent;
use crate::driver::monitor::events::EVENT_NAMES;

/// The conditions `await --condition` knows.
const CONDITIONS: &[&str] = &["domain-inactive", "guest-agent-available"];

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
    let stamp = args.flag("timestamp");
    event_loop::run(
        ctx,
        timeout,
        args.flag("loop"),
        |slice| events.next_timeout(slice),
        |ctx, e| {
            if kind.is_some_and(|k| k != e.kind()) {
                return Ok(false);
            }
            print_event(ctx, &e, stamp);
            Ok(true)
        },
    )
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
        ctx.println(event_loop::stamped(e.time_ms, &line));
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
        match next_event(&mut |t| events.next_timeout(t), slice, &intr) {
            Ok(e) if e.is_stop() && !agent => return Ok(()),
            Ok(_) => {}
            Err(Ended::TimedOut) if deadline.is_none_or(|d| Instant::now() < d) => {}
            Err(Ended::TimedOut) => bail!("timed out waiting for condition '{cond}'"),
            Err(_) => bail!("interrupted while waiting for condition '{cond}'"),
        }
    }
}
