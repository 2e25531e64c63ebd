//! `secret-event`: the secret store's changes as virsh prints secret events (libvirt:
//! tools/virsh-secret.c cmdSecretEvent, vshEventLifecyclePrint, vshEventGenericPrint), from
//! the store's directory ([`crate::driver::secret_events`]).

use anyhow::{Context, Result, bail};

use super::event_loop;
use crate::cli::ctx::CmdCtx;
use crate::cli::parse::ParsedArgs;
use crate::cli::table::{CmdDef, Completer, Group, OptDef};
use crate::driver::secret_events::{SecretEvent, SecretEventKind};

/// The event ids virsh knows, in its order.
const EVENT_NAMES: &[&str] = &["lifecycle", "value-changed"];

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
    let timeout = event_loop::timeout(args)?;
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
    event_loop::run(
        ctx,
        timeout,
        args.flag("loop"),
        |slice| events.next_timeout(slice),
        |ctx, e| {
            if e.kind.event_name() != event || only.as_ref().is_some_and(|u| *u != e.uuid) {
                return Ok(false);
            }
            if ctx.json() {
                ctx.println(serde_json::to_string(&e)?);
            } else if args.flag("timestamp") {
                let now = crate::driver::monitor::events::now_ms();
                ctx.println(event_loop::stamped(now, &event_line(&e)));
            } else {
                ctx.println(event_line(&e));
            }
            Ok(true)
        },
    )
}
