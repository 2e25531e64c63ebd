//! `secret-event`: the secret store's changes as virsh prints secret events (libvirt:
//! tools/virsh-secret.c cmdSecretEvent, vshEventLifecyclePrint, vshEventGenericPrint), from
//! the store's directory ([`crate::driver::secret_events`]).

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::cli::ctx::{CmdCtx, QuietFailure};
use crate::cli::interrupt::CatchInterrupt;
use crate::cli::parse::ParsedArgs;
use crate::cli::table::{CmdDef, Completer, Group, OptDef};
use crate::driver::secret_events::{SecretEvent, SecretEventKind};

/// The event ids virsh knows, in its order.
const EVENT_NAMES: &[&str] = &["lifecycle", "value-changed"];

/// How often the wait looks at Ctrl-C.
const SLICE: Duration = Duration::from_millis(100);

pub const CMDS: &[CmdDef] = &[CmdDef::new(
    Group::Secret,
    "secret-event",
    "Secret Events",
    "List event types, or wait for secret events to occur",
    &[
        OptDef::string("secret", "filter by secret name or uuid")
            .positional()
            .complete(Completer::Secret),
        OptDef::string("event", "which event type to wait for")
            .positional()
            .complete(Completer::Words(EVENT_NAMES)),
        OptDef::flag(
            "loop",
            "loop until timeout or interrupt, rather than one-shot",
        ),
        OptDef::int("timeout", "timeout seconds").positional(),
        OptDef::flag("list", "list valid event types"),
        OptDef::flag("timestamp", "show timestamp for each printed event"),
    ],
    cmd_secret_event,
)
.with_json(true)];

/// virsh's line for an event, without the `--timestamp` prefix.
pub fn event_line(e: &SecretEvent) -> String {
    match e.kind {
        SecretEventKind::Defined => format!("event 'lifecycle' for secret {}: Defined", e.uuid),
        SecretEventKind::Undefined => {
            format!("event 'lifecycle' for secret {}: Undefined", e.uuid)
        }
        SecretEventKind::ValueChanged => format!("event 'value-changed' for secret {}", e.uuid),
    }
}

fn cmd_secret_event(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    if args.flag("list") {
        for n in EVENT_NAMES {
            ctx.println(n);
        }
        return Ok(());
    }
    let Some(event) = args.string("event") else {
        bail!("either --list or --event <type> is required");
    };
    if !EVENT_NAMES.contains(&event) {
        bail!("unknown event type {event}");
    }
    let timeout = match args.int::<u32>("timeout")? {
        None => None,
        Some(t) if t == 0 || t > i32::MAX as u32 / 1000 => {
            bail!("Numeric value '{t}' for <timeout> option is malformed or out of range")
        }
        Some(t) => Some(Duration::from_secs(t.into())),
    };
    let conn = ctx.conn()?;
    let only = match args.string("secret") {
        Some(s) => Some(
            conn.lookup_secret_by_uuid(s)
                .with_context(|| format!("failed to get secret '{s}'"))?
                .uuid_string()
                .to_string(),
        ),
        None => None,
    };
    let mut events = conn.secret_events()?;
    let intr = CatchInterrupt::install();
    let deadline = timeout.map(|t| Instant::now() + t);
    let looping = args.flag("loop");
    let mut count = 0usize;
    let ended = loop {
        if intr.interrupted() {
            break "interrupted";
        }
        let mut slice = SLICE;
        if let Some(d) = deadline {
            let left = d.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break "timed-out";
            }
            slice = slice.min(left);
        }
        let Some(e) = events.next_timeout(slice) else {
            continue;
        };
        if e.kind.event_name() != event || only.as_ref().is_some_and(|u| *u != e.uuid) {
            continue;
        }
        if ctx.json() {
            ctx.println(serde_json::to_string(&e)?);
        } else if args.flag("timestamp") {
            let ts =
                crate::timefmt::format_virsh_timestamp(crate::driver::monitor::events::now_ms());
            ctx.println(format!("{ts}: {}", event_line(&e)));
        } else {
            ctx.println(event_line(&e));
        }
        count += 1;
        if !looping {
            break "done";
        }
    };
    if ctx.json() {
        ctx.println(serde_json::json!({ "ended": ended, "events_received": count }).to_string());
    } else {
        match ended {
            "interrupted" => ctx.println("event loop interrupted"),
            "timed-out" => ctx.println("event loop timed out"),
            _ => {}
        }
        ctx.println(format!("events received: {count}"));
    }
    if count == 0 {
        return Err(QuietFailure.into());
    }
    Ok(())
}
