//! The verbs, one file per group of virsh's (or per concern within a big group). Each file
//! exports `CMDS`, its part of the table; [`TABLES`] lists every part.

pub mod agent;
pub mod agent_ops;
pub mod autostart;
pub mod backup;
mod blockcopy;
pub mod blockjob;
pub mod checkpoint;
pub mod cpucompare;
pub mod cputune;
mod dirtyrate;
pub mod domain;
pub mod domctl;
pub mod domedit;
pub mod domread;
pub mod dump;
mod event_loop;
pub mod events;
mod fdassoc;
pub mod host;
pub mod hostcpu;
pub mod hostmisc;
pub mod hostpages;
pub mod hotplug;
pub mod iface;
pub mod jobs;
pub mod launchsec;
pub mod memdev;
pub mod memtune;
mod metadata;
mod migrate;
pub mod monitor;
pub mod monitoring;
pub mod network;
pub mod node;
pub mod nodedev;
pub mod nwfilter;
mod object_events;
pub mod paramtune;
pub mod pool;
pub mod power;
pub mod qemu_events;
pub mod readfmt;
pub mod rename;
pub mod resources;
pub mod retired;
pub mod save;
pub mod secret;
pub mod secret_events;
pub mod secret_read;
pub mod shellverbs;
pub mod snapshot;
pub mod threads;
pub mod tools;
pub mod tuning;
pub mod util;
pub mod virsh;
pub mod volume;
pub mod xpath;

use super::table::CmdDef;

/// Every part of the table. Help lists groups in [`super::table::Group::ALL`]'s order and
/// within a group the verbs in the order they appear here.
pub const TABLES: &[&[CmdDef]] = &[
    domain::CMDS,
    retired::CMDS,
    backup::CMDS,
    domedit::CMDS,
    domread::CMDS,
    domctl::CMDS,
    autostart::CMDS,
    power::CMDS,
    agent::CMDS,
    agent_ops::CMDS,
    hotplug::CMDS,
    memdev::CMDS,
    resources::CMDS,
    tuning::CMDS,
    threads::CMDS,
    memtune::CMDS,
    cputune::CMDS,
    paramtune::CMDS,
    rename::CMDS,
    save::CMDS,
    dump::CMDS,
    blockjob::CMDS,
    dirtyrate::CMDS,
    jobs::CMDS,
    migrate::CMDS,
    monitor::CMDS,
    monitoring::CMDS,
    events::CMDS,
    qemu_events::CMDS,
    host::CMDS,
    node::CMDS,
    hostcpu::CMDS,
    cpucompare::CMDS,
    hostmisc::CMDS,
    hostpages::CMDS,
    launchsec::CMDS,
    fdassoc::CMDS,
    checkpoint::CMDS,
    iface::CMDS,
    nwfilter::CMDS,
    network::CMDS,
    object_events::NET_CMDS,
    nodedev::CMDS,
    secret::CMDS,
    secret_read::CMDS,
    secret_events::CMDS,
    snapshot::CMDS,
    pool::CMDS,
    object_events::POOL_CMDS,
    volume::CMDS,
    tools::CMDS,
    virsh::CMDS,
    shellverbs::CMDS,
];

/// Every verb in the table.
pub fn all() -> impl Iterator<Item = &'static CmdDef> + Clone {
    TABLES.iter().flat_map(|t| t.iter())
}
