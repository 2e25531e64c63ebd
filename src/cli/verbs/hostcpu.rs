//! Host CPU and NUMA verbs: `nodecpumap`, `freecell`, `maxvcpus` (libvirt: tools/virsh-host.c
//! cmdNodeCpuMap, cmdFreecell, cmdMaxvcpus).

use anyhow::{Result, bail};

use crate::cli::ctx::CmdCtx;
use crate::cli::parse::ParsedArgs;
use crate::cli::table::{CmdDef, Group, OptDef};
use crate::domain::xml::parse_document;
use crate::driver::node_cells::CpuMap;

const fn verb(
    name: &'static str,
    info: &'static str,
    desc: &'static str,
    opts: &'static [OptDef],
    handler: crate::cli::table::Handler,
) -> CmdDef {
    CmdDef::new(Group::HostAndHypervisor, name, info, desc, opts, handler)
}

pub const CMDS: &[CmdDef] = &[
    verb(
        "freecell",
        "NUMA free memory",
        "display available free memory for the NUMA cell.",
        &[
            OptDef::int("cellno", "NUMA cell number").positional(),
            OptDef::flag("all", "show free memory for all NUMA cells"),
        ],
        cmd_freecell,
    ),
    verb(
        "maxvcpus",
        "connection vcpu maximum",
        "Show maximum number of virtual CPUs for guests on this connection.",
        &[OptDef::string("type", "domain type").positional()],
        cmd_maxvcpus,
    ),
    verb(
        "nodecpumap",
        "node cpu map",
        "Displays the node's total number of CPUs, the number of online CPUs and the list of online CPUs.",
        &[OptDef::flag("pretty", "return human readable output")],
        cmd_nodecpumap,
    ),
];

/// virsh's lines for a CPU map (libvirt: cmdNodeCpuMap).
pub fn cpu_map_text(m: &CpuMap, pretty: bool) -> String {
    let map = if pretty {
        m.online.to_string()
    } else {
        (0..m.present)
            .map(|c| if m.online.contains(c) { 'y' } else { '-' })
            .collect()
    };
    format!(
        "{:<15} {}\n{:<15} {}\n{:<15} {map}\n",
        "CPUs present:",
        m.present,
        "CPUs online:",
        m.online.len(),
        "CPU map:"
    )
}

fn cmd_nodecpumap(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let m = ctx.conn()?.cpu_map()?;
    ctx.print(cpu_map_text(&m, args.flag("pretty")));
    Ok(())
}

fn cmd_freecell(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    args.exclusive("all", "cellno")?;
    let conn = ctx.conn()?;
    if !args.flag("all") {
        if let Some(cell) = args.int::<i32>("cellno")? {
            let free = conn.cells_free_memory(cell, 1)?;
            ctx.println(format!("{cell}: {} KiB", free[0] / 1024));
            return Ok(());
        }
        let free = conn.free_memory()?;
        if free == 0 {
            bail!("failed to get free memory");
        }
        ctx.println(format!("Total: {} KiB", free / 1024));
        return Ok(());
    }
    let mut total = 0;
    for id in conn.numa_cells() {
        let free = conn.cells_free_memory(id as i32, 1).map_err(|e| {
            anyhow::Error::from(e).context(format!(
                "failed to get free memory for NUMA node number: {id}"
            ))
        })?;
        ctx.println(format!("{id:>5}: {:>10} KiB", free[0] / 1024));
        total += free[0];
    }
    ctx.println_extra("--------------------");
    ctx.println_extra(format!("{:>5}: {:>10} KiB", "Total", total / 1024));
    Ok(())
}

fn cmd_maxvcpus(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let caps = ctx
        .conn()?
        .domain_capabilities(None, None, None, args.string("type"))?;
    let doc = parse_document(&caps)?;
    let Some(max) = doc
        .child("vcpu")
        .and_then(|v| v.attr("max"))
        .and_then(|m| m.parse::<i64>().ok())
    else {
        bail!("failed to get the maximum vcpu count");
    };
    ctx.println(max.to_string());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capabilities::cpuset::CpuSet;

    #[test]
    fn cpu_map_as_virsh_prints_it() {
        let m = CpuMap {
            present: 4,
            online: CpuSet::parse("0-1,3").unwrap(),
        };
        assert_eq!(
            cpu_map_text(&m, false),
            "CPUs present:   4\nCPUs online:    3\nCPU map:        yy-y\n"
        );
        assert!(cpu_map_text(&m, true).ends_with("CPU map:        0-1,3\n"));
    }
}
