//! Host and Hypervisor read verbs: `nodeinfo`, `nodememstats`, `nodecpustats`, `hostname`,
//! `sysinfo` (libvirt: tools/virsh-host.c).

use anyhow::{Context, Result};

use super::readfmt;
use crate::cli::ctx::CmdCtx;
use crate::cli::parse::ParsedArgs;
use crate::cli::table::{CmdDef, Group, OptDef};

const fn verb(
    name: &'static str,
    info: &'static str,
    desc: &'static str,
    opts: &'static [OptDef],
    handler: crate::cli::table::Handler,
) -> CmdDef {
    CmdDef::new(Group::HostAndHypervisor, name, info, desc, opts, handler).with_json(true)
}

pub const CMDS: &[CmdDef] = &[
    verb(
        "hostname",
        "print the hypervisor hostname",
        "",
        &[],
        cmd_hostname,
    ),
    verb(
        "nodecpustats",
        "Prints cpu stats of the node.",
        "Returns cpu stats of the node, in nanoseconds.",
        &[
            OptDef::int("cpu", "prints specified cpu statistics only."),
            OptDef::flag("percent", "prints by percentage during 1 second."),
        ],
        cmd_nodecpustats,
    ),
    verb(
        "nodeinfo",
        "node information",
        "Returns basic information about the node.",
        &[],
        cmd_nodeinfo,
    ),
    verb(
        "nodememstats",
        "Prints memory stats of the node.",
        "Returns memory stats of the node, in kilobytes.",
        &[OptDef::int(
            "cell",
            "prints specified cell statistics only.",
        )],
        cmd_nodememstats,
    ),
    verb(
        "sysinfo",
        "print the hypervisor sysinfo",
        "output an XML string for the hypervisor sysinfo, if available",
        &[],
        cmd_sysinfo,
    ),
];

/// `vsh nodeinfo` (libvirt: cmdNodeinfo).
fn cmd_nodeinfo(ctx: &mut CmdCtx, _: &ParsedArgs) -> Result<()> {
    let info = ctx
        .conn()?
        .node_info()
        .context("failed to get node information")?;
    ctx.emit(&info, readfmt::nodeinfo);
    Ok(())
}

/// The fields as a JSON object of name to value.
fn as_map(stats: &[crate::driver::node::NodeStat]) -> serde_json::Map<String, serde_json::Value> {
    stats
        .iter()
        .map(|s| (s.field.clone(), s.value.into()))
        .collect()
}

/// `vsh nodememstats [--cell N]` (libvirt: cmdNodeMemStats). `--json`: KiB by field.
fn cmd_nodememstats(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let cell = args.int::<i32>("cell")?;
    let stats = ctx
        .conn()?
        .node_memory_stats(cell)
        .context("Unable to get memory stats")?;
    ctx.emit(&as_map(&stats), |_| readfmt::nodememstats(&stats));
    Ok(())
}

/// `vsh nodecpustats [--cpu N] [--percent]` (libvirt: cmdNodeCpuStats). `--json`: the
/// nanosecond counters by field, or with `--percent` the percentages by virsh's names.
fn cmd_nodecpustats(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let cpu = args.int::<i32>("cpu")?;
    let conn = ctx.conn()?;
    let first = conn
        .node_cpu_stats(cpu)
        .context("Unable to get node cpu stats")?;
    if !args.flag("percent") {
        ctx.emit(&as_map(&first), |_| readfmt::nodecpustats(&first));
        return Ok(());
    }
    std::thread::sleep(std::time::Duration::from_secs(1));
    let second = conn
        .node_cpu_stats(cpu)
        .context("Unable to get node cpu stats")?;
    let text = readfmt::nodecpustats_percent(&first, &second);
    let map: serde_json::Map<String, serde_json::Value> = text
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            let n: f64 = v.trim().trim_end_matches('%').parse().ok()?;
            Some((k.trim().to_string(), n.into()))
        })
        .collect();
    ctx.emit(&map, |_| text.clone());
    Ok(())
}

/// `vsh hostname` (libvirt: cmdHostname).
fn cmd_hostname(ctx: &mut CmdCtx, _: &ParsedArgs) -> Result<()> {
    let h = ctx.conn()?.hostname().context("failed to get hostname")?;
    ctx.emit(&h, |h| format!("{h}\n"));
    Ok(())
}

/// `vsh sysinfo` (libvirt: cmdSysinfo). `--json`: the XML as one string.
fn cmd_sysinfo(ctx: &mut CmdCtx, _: &ParsedArgs) -> Result<()> {
    let xml = ctx.conn()?.sysinfo().context("failed to get sysinfo")?;
    ctx.emit(&xml, |x| x.clone());
    Ok(())
}
