//! Host memory verbs: `freepages`, `allocpages`, `node-memory-tune` (libvirt:
//! tools/virsh-host.c cmdFreepages, cmdAllocpages, cmdNodeMemoryTune).

use anyhow::{Context, Result, bail};

use crate::cli::ctx::CmdCtx;
use crate::cli::parse::ParsedArgs;
use crate::cli::table::{Access, CmdDef, Group, OptDef};
use crate::driver::node_memory::NodeMemoryParam;
use crate::driver::node_pages::AllocPagesMode;

pub const CMDS: &[CmdDef] = &[
    CmdDef::new(
        Group::HostAndHypervisor,
        "freepages",
        "NUMA free pages",
        "display available free pages for the NUMA cell.",
        &[
            OptDef::int("cellno", "NUMA cell number").positional(),
            OptDef::int("pagesize", "page size (in kibibytes)").positional(),
            OptDef::flag("all", "show free pages for all NUMA cells"),
        ],
        cmd_freepages,
    )
    .with_json(true),
    CmdDef::new(
        Group::HostAndHypervisor,
        "allocpages",
        "Manipulate pages pool size",
        "Allocate or free some pages in the pool for NUMA cell.",
        &[
            OptDef::int("pagesize", "page size (in kibibytes)")
                .required()
                .positional(),
            OptDef::int("pagecount", "page count")
                .required()
                .positional(),
            OptDef::int("cellno", "NUMA cell number").positional(),
            OptDef::flag("add", "instead of setting new pool size add pages to it"),
            OptDef::flag("all", "set on all NUMA cells"),
        ],
        cmd_allocpages,
    )
    .with_access(Access::Write("virNodeAllocPages")),
    CmdDef::new(
        Group::HostAndHypervisor,
        "node-memory-tune",
        "Get or set node memory parameters",
        "Get or set node memory parameters",
        &[
            OptDef::int(
                "shm-pages-to-scan",
                "number of pages to scan before the shared memory service goes to sleep",
            ),
            OptDef::int(
                "shm-sleep-millisecs",
                "number of millisecs the shared memory service should sleep before next scan",
            ),
            OptDef::int(
                "shm-merge-across-nodes",
                "Specifies if pages from different numa nodes can be merged",
            ),
        ],
        cmd_node_memory_tune,
    )
    .with_json(true)
    // Read-only connections may read them (see readonly::changes).
    .with_access(Access::Write("virNodeSetMemoryParameters")),
];

/// One KSM parameter as `--json` gives it: libvirt's field name and its value.
#[derive(Debug, serde::Serialize)]
pub struct NodeMemoryValue {
    pub field: String,
    pub value: u64,
}

/// Without options, virsh's `Shared memory:` table; with any, sets those and prints nothing.
fn cmd_node_memory_tune(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let mut set = Vec::new();
    for (opt, p) in [
        ("shm-pages-to-scan", NodeMemoryParam::PagesToScan),
        ("shm-sleep-millisecs", NodeMemoryParam::SleepMillisecs),
        ("shm-merge-across-nodes", NodeMemoryParam::MergeAcrossNodes),
    ] {
        if let Some(v) = args.int::<u32>(opt)? {
            set.push((p, v));
        }
    }
    let conn = ctx.conn()?;
    if !set.is_empty() {
        return Ok(conn.set_node_memory_parameters(&set)?);
    }
    let values: Vec<NodeMemoryValue> = conn
        .node_memory_parameters()
        .context("Unable to get memory parameters")?
        .into_iter()
        .map(|(p, value)| NodeMemoryValue {
            field: p.field(),
            value,
        })
        .collect();
    ctx.emit(&values, |vs| {
        let mut out = String::from("Shared memory:\n");
        for v in vs {
            out.push_str(&format!("\t{:<15} {}\n", v.field, v.value));
        }
        out
    });
    Ok(())
}

/// The free pages of one size on one cell, as `--json` gives them.
#[derive(Debug, serde::Serialize)]
pub struct FreePages {
    pub size_kib: u32,
    pub free: u64,
}

/// One cell's free pages (`cell` -1: the whole host).
#[derive(Debug, serde::Serialize)]
pub struct CellPages {
    pub cell: i32,
    pub pages: Vec<FreePages>,
}

/// `--pagesize` in KiB, a scaled integer of at most 4 TiB, rounded up to whole KiB
/// (libvirt: vshCommandOptScaledInt with a KiB default unit).
fn page_size_kib(args: &ParsedArgs) -> Result<Option<u32>> {
    let Some(text) = args.string("pagesize") else {
        return Ok(None);
    };
    let bad = || {
        anyhow::anyhow!(
            "Scaled numeric value '{text}' for <pagesize> option is malformed or out of range"
        )
    };
    let bytes = super::resources::scaled(text, "pagesize", 1024).map_err(|_| bad())?;
    if bytes > u64::from(u32::MAX) * 1024 {
        return Err(bad());
    }
    Ok(Some(bytes.div_ceil(1024) as u32))
}

/// virsh's lines: `Node N:` and one `SIZEKiB: COUNT` line per size for `--all`, else the
/// one size's line.
pub fn free_pages_text(cells: &[CellPages], all: bool) -> String {
    let mut out = String::new();
    for c in cells {
        if all {
            out.push_str(&format!("Node {}:\n", c.cell));
        }
        for p in &c.pages {
            out.push_str(&format!("{}KiB: {}\n", p.size_kib, p.free));
        }
        if all {
            out.push('\n');
        }
    }
    out
}

fn cmd_freepages(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    args.exclusive("all", "cellno")?;
    let size = page_size_kib(args)?;
    let all = args.flag("all");
    let mut cells = Vec::new();
    if all {
        let conn = ctx.conn()?;
        let sizes = match size {
            Some(s) => vec![s],
            None => conn
                .page_sizes()
                .map_err(|e| anyhow::Error::from(e).context("unable to get node capabilities"))?,
        };
        for cell in conn.numa_cells() {
            let counts = conn.free_pages(&sizes, cell as i32, 1)?;
            cells.push(CellPages {
                cell: cell as i32,
                pages: sizes
                    .iter()
                    .zip(counts)
                    .map(|(&size_kib, free)| FreePages { size_kib, free })
                    .collect(),
            });
        }
    } else {
        if !args.flag("cellno") {
            bail!("missing cellno argument");
        }
        let cell = args.int::<i32>("cellno")?.unwrap_or(0);
        if cell < -1 {
            bail!("cell number must be non-negative integer or -1");
        }
        let Some(size) = size else {
            bail!("missing pagesize argument");
        };
        let counts = ctx.conn()?.free_pages(&[size], cell, 1)?;
        let Some(&free) = counts.first() else {
            bail!("Could not get count of free {size}KiB pages, no data returned");
        };
        cells.push(CellPages {
            cell,
            pages: vec![FreePages {
                size_kib: size,
                free,
            }],
        });
    }
    ctx.emit(&cells, |c| free_pages_text(c, all));
    Ok(())
}

fn cmd_allocpages(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    args.exclusive("all", "cellno")?;
    let start = args.int::<i32>("cellno")?.unwrap_or(-1);
    let size = page_size_kib(args)?.unwrap_or(0);
    let count = args.int::<u64>("pagecount")?.unwrap_or(0);
    let mode = if args.flag("add") {
        AllocPagesMode::Add
    } else {
        AllocPagesMode::Set
    };
    let conn = ctx.conn()?;
    if args.flag("all") {
        for cell in conn.numa_cells() {
            conn.alloc_pages(&[size], &[count], cell as i32, 1, mode)?;
        }
    } else {
        conn.alloc_pages(&[size], &[count], start, 1, mode)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_pages_as_virsh_prints_them() {
        let cells = vec![
            CellPages {
                cell: 0,
                pages: vec![
                    FreePages {
                        size_kib: 4,
                        free: 100,
                    },
                    FreePages {
                        size_kib: 2048,
                        free: 0,
                    },
                ],
            },
            CellPages {
                cell: 1,
                pages: vec![FreePages {
                    size_kib: 4,
                    free: 7,
                }],
            },
        ];
        assert_eq!(
            free_pages_text(&cells, true),
            "Node 0:\n4KiB: 100\n2048KiB: 0\n\nNode 1:\n4KiB: 7\n\n"
        );
        assert_eq!(free_pages_text(&cells[1..], false), "4KiB: 7\n");
    }
}
