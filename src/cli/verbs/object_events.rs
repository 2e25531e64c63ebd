//! `net-event` and `pool-event`: the network and pool stores' changes as virsh prints
//! network and storage pool events (libvirt: tools/virsh-network.c cmdNetworkEvent,
//! tools/virsh-pool.c cmdPoolEvent, their vshEventLifecyclePrint and the pool's
//! vshEventGenericPrint), from the stores' directories
//! ([`crate::driver::object_events`]).

use anyhow::{Context, Result, bail};

use super::event_loop;
use crate::cli::ctx::CmdCtx;
use crate::cli::parse::ParsedArgs;
use crate::cli::table::{CmdDef, Completer, Group, OptDef};
use crate::driver::object_events::{ObjectEvent, ObjectEventKind};

/// The event ids virsh 9.0 knows for networks, in its order.
const NET_EVENTS: &[&str] = &["lifecycle"];
/// The event ids virsh knows for pools, in its order.
const POOL_EVENTS: &[&str] = &["lifecycle", "refresh"];

const fn common(object: OptDef, names: &'static [&'static str]) -> [OptDef; 6] {
    [
        object,
        OptDef::string("event", "which event type to wait for")
            .positional()
            .complete(Completer::Words(names)),
        OptDef::flag(
            "loop",
            "loop until timeout or interrupt, rather than one-shot",
        ),
        OptDef::int("timeout", "timeout seconds").positional(),
        OptDef::flag("list", "list valid event types"),
        OptDef::flag("timestamp", "show timestamp for each printed event"),
    ]
}

const NET_OPTS: [OptDef; 6] = common(
    OptDef::string("network", "filter by network name or uuid")
        .positional()
        .complete(Completer::Network),
    NET_EVENTS,
);
const POOL_OPTS: [OptDef; 6] = common(
    OptDef::string("pool", "filter by storage pool name or uuid")
        .positional()
        .complete(Completer::Pool),
    POOL_EVENTS,
);

pub const NET_CMDS: &[CmdDef] = &[CmdDef::new(
    Group::Network,
    "net-event",
    "Network Events",
    "List event types, or wait for network events to occur",
    &NET_OPTS,
    cmd_net_event,
)
.with_json(true)];

pub const POOL_CMDS: &[CmdDef] = &[CmdDef::new(
    Group::StoragePool,
    "pool-event",
    "Storage Pool Events",
    "List event types, or wait for storage pool events to occur",
    &POOL_OPTS,
    cmd_pool_event,
)
.with_json(true)];

/// Which object's events, as virsh's messages name it.
#[derive(Clone, Copy)]
enum Object {
    Network,
    Pool,
}

impl Object {
    fn noun(self) -> &'static str {
        match self {
            Object::Network => "network",
            Object::Pool => "storage pool",
        }
    }
}

/// virsh's line for an event, without the `--timestamp` prefix.
fn event_line(obj: Object, e: &ObjectEvent) -> String {
    let noun = obj.noun();
    match e.kind {
        ObjectEventKind::Refresh => format!("event 'refresh' for {noun} {}", e.name),
        k => format!("event 'lifecycle' for {noun} {}: {}", e.name, k.as_str()),
    }
}

fn cmd_net_event(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    run(ctx, args, Object::Network, NET_EVENTS, "network")
}

fn cmd_pool_event(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    run(ctx, args, Object::Pool, POOL_EVENTS, "pool")
}

fn run(ctx: &mut CmdCtx, args: &ParsedArgs, obj: Object, names: &[&str], opt: &str) -> Result<()> {
    if args.flag("list") {
        for n in names {
            ctx.println(n);
        }
        return Ok(());
    }
    let Some(event) = args.string("event") else {
        bail!("either --list or --event <type> is required");
    };
    if !names.contains(&event) {
        bail!("unknown event type {event}");
    }
    let timeout = event_loop::timeout(args)?;
    let conn = ctx.conn()?;
    let only = match (obj, args.string(opt)) {
        (_, None) => None,
        (Object::Network, Some(s)) => Some(
            super::network::lookup_by(conn, s, true, true)?
                .name()
                .to_string(),
        ),
        (Object::Pool, Some(s)) => Some(
            conn.lookup_storage_pool(s)
                .with_context(|| format!("failed to get pool '{s}'"))?
                .name()
                .to_string(),
        ),
    };
    let mut events = match obj {
        Object::Network => conn.network_events()?,
        Object::Pool => conn.storage_pool_events()?,
    };
    event_loop::run(
        ctx,
        timeout,
        args.flag("loop"),
        |slice| events.next_timeout(slice),
        |ctx, e| {
            if e.kind.event_name() != event || only.as_ref().is_some_and(|n| *n != e.name) {
                return Ok(false);
            }
            if ctx.json() {
                ctx.println(serde_json::to_string(&e)?);
            } else if args.flag("timestamp") {
                let now = crate::driver::monitor::events::now_ms();
                ctx.println(event_loop::stamped(now, &event_line(obj, &e)));
            } else {
                ctx.println(event_line(obj, &e));
            }
            Ok(true)
        },
    )
}
