//! `secret-event`: the secret store's changes as virsh prints secret events (libvirt:
//! tools/virsh-secret.c cmdSecretEvent, vshEventLifecyclePrint, vshEventGenericPrint), from
//! the store's directory ([`crate::driver::secret_events`]).

use anyhow::{Context, Result};

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
    &event_loop::object_event_opts(
        OptDef::string("secret", "filter by secret name or uuid")
            .positional()
            .complete(Completer::Secret),
        EVENT_NAMES,
    ),
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
    let Some(event) = event_loop::chosen_event(ctx, args, EVENT_NAMES)? else {
        return Ok(());
    };
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
    event_loop::run_object_events(
        ctx,
        args,
        timeout,
        |slice| events.next_timeout(slice),
        |e| e.kind.event_name() == event && only.as_ref().is_none_or(|u| *u == e.uuid),
        event_line,
    )
}
