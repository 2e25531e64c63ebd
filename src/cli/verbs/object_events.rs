//! `net-event` and `pool-event`: the network and pool stores' changes as virsh prints
//! network and storage pool events (libvirt: tools/virsh-network.c cmdNetworkEvent,
//! tools/virsh-pool.c cmdPoolEvent, their vshEventLifecyclePrint and the pool's
//! vshEventGenericPrint), from the stores' directories
//! ([`crate::driver::object_events`]).

use anyhow::{Context, Result};

use super::event_loop;
use crate::cli::ctx::CmdCtx;
use crate::cli::parse::ParsedArgs;
use crate::cli::table::{CmdDef, Completer, Group, OptDef};
use crate::driver::object_events::{ObjectEvent, ObjectEventKind};

/// The event ids virsh 9.0 knows for networks, in its order.
const NET_EVENTS: &[&str] = &["lifecycle"];
/// The event ids virsh knows for pools, in its order.
const POOL_EVENTS: &[&str] = &["lifecycle", "refresh"];

const NET_OPTS: [OptDef; 6] = event_loop::object_event_opts(
    OptDef::string("network", "filter by network name or uuid")
        .positional()
        .complete(Completer::Network),
    NET_EVENTS,
);
const POOL_OPTS: [OptDef; 6] = event_loop::object_event_opts(
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
    let Some(event) = event_loop::chosen_event(ctx, args, names)? else {
        return Ok(());
    };
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
    event_loop::run_object_events(
        ctx,
        args,
        timeout,
        |slice| events.next_timeout(slice),
        |e| e.kind.event_name() == event && only.as_ref().is_none_or(|n| *n == e.name),
        |e| event_line(obj, e),
    )
}
