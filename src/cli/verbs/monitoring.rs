//! Domain Monitoring's read verbs beyond `dominfo`/`domstate`: `list` with virsh's filters and
//! layouts, the block and interface lists, per-device statistics, `domstats` and
//! `domifaddr` (libvirt: tools/virsh-domain-monitor.c).

use anyhow::{Context, Result, bail};
use serde::Serialize;

use super::readfmt;
use super::util::{DOMAIN, DOMAIN_ACTIVE};
use super::util::{lookup_domain, render_table};
use crate::cli::ctx::CmdCtx;
use crate::cli::parse::ParsedArgs;
use crate::cli::table::{CmdDef, Group, OptDef};
use crate::domain::{DomainDef, FormatFlags};
use crate::driver::domain::{Domain, ListFlags};

const fn verb(
    name: &'static str,
    info: &'static str,
    desc: &'static str,
    opts: &'static [OptDef],
    handler: crate::cli::table::Handler,
) -> CmdDef {
    CmdDef::new(Group::DomainMonitoring, name, info, desc, opts, handler).with_json(true)
}

pub const CMDS: &[CmdDef] = &[
    verb(
        "domblkinfo",
        "domain block device size information",
        "Get block device size info for a domain.",
        &[
            DOMAIN,
            OptDef::string("device", "block device").positional(),
            OptDef::flag("human", "Human readable output"),
            OptDef::flag("all", "display all block devices info"),
        ],
        cmd_domblkinfo,
    ),
    verb(
        "domblklist",
        "list all domain blocks",
        "Get the summary of block devices for a domain.",
        &[
            DOMAIN,
            OptDef::flag("inactive", "get inactive rather than running configuration"),
            OptDef::flag("details", "additionally display the type and device value"),
        ],
        cmd_domblklist,
    ),
    verb(
        "domblkstat",
        "get device block stats for a domain",
        "Get device block stats for a running domain. See man page or use --human for explanation of fields",
        &[
            DOMAIN_ACTIVE,
            OptDef::string("device", "block device").positional(),
            OptDef::flag("human", "print a more human readable output"),
        ],
        cmd_domblkstat,
    ),
    verb(
        "domifaddr",
        "Get network interfaces' addresses for a running domain",
        "Get network interfaces' addresses for a running domain",
        &[
            DOMAIN_ACTIVE,
            OptDef::string("interface", "network interface name").positional(),
            OptDef::flag("full", "always display names and MACs of interfaces"),
            OptDef::string("source", "address source: 'lease', 'agent', or 'arp'"),
        ],
        cmd_domifaddr,
    ),
    verb(
        "domiflist",
        "list all domain virtual interfaces",
        "Get the summary of virtual interfaces for a domain.",
        &[
            DOMAIN,
            OptDef::flag("inactive", "get inactive rather than running configuration"),
        ],
        cmd_domiflist,
    ),
    verb(
        "domifstat",
        "get network interface stats for a domain",
        "Get network interface stats for a running domain.",
        &[
            DOMAIN_ACTIVE,
            OptDef::data(
                "interface",
                "interface device specified by name or MAC Address",
            ),
        ],
        cmd_domifstat,
    ),
    verb(
        "dommemstat",
        "get memory statistics for a domain",
        "Get memory statistics for a running domain.",
        &[DOMAIN_ACTIVE],
        cmd_dommemstat,
    ),
    verb(
        "domstats",
        "get statistics about one or multiple domains",
        "Gets statistics about one or more (or all) domains",
        &[
            OptDef::flag("state", "report domain state"),
            OptDef::flag("cpu-total", "report domain physical cpu usage"),
            OptDef::flag("balloon", "report domain balloon statistics"),
            OptDef::flag("vcpu", "report domain virtual cpu information"),
            OptDef::flag("interface", "report domain network interface information"),
            OptDef::flag("block", "report domain block device statistics"),
            OptDef::flag("perf", "report domain perf event statistics"),
            OptDef::flag("iothread", "report domain IOThread information"),
            OptDef::flag("memory", "report domain memory usage"),
            OptDef::flag("dirtyrate", "report domain dirty rate information"),
            OptDef::flag("vm", "report hypervisor-specific statistics"),
            OptDef::flag("list-active", "list only active domains"),
            OptDef::flag("list-inactive", "list only inactive domains"),
            OptDef::flag("list-persistent", "list only persistent domains"),
            OptDef::flag("list-transient", "list only transient domains"),
            OptDef::flag("list-running", "list only running domains"),
            OptDef::flag("list-paused", "list only paused domains"),
            OptDef::flag("list-shutoff", "list only shutoff domains"),
            OptDef::flag("list-other", "list only domains in other states"),
            OptDef::flag("raw", "do not pretty-print the fields"),
            OptDef::flag("enforce", "enforce requested stats parameters"),
            OptDef::flag("backing", "add backing chain information to block stats"),
            OptDef::flag("nowait", "report only stats that are accessible instantly"),
            OptDef::argv("domain", "list of domains to get stats for"),
        ],
        cmd_domstats,
    ),
    verb(
        "list",
        "list domains",
        "Returns list of domains.",
        &[
            OptDef::flag("inactive", "list inactive domains"),
            OptDef::flag("all", "list inactive & active domains"),
            OptDef::flag("transient", "list transient domains"),
            OptDef::flag("persistent", "list persistent domains"),
            OptDef::flag("state-running", "list domains in running state"),
            OptDef::flag("state-paused", "list domains in paused state"),
            OptDef::flag("state-shutoff", "list domains in shutoff state"),
            OptDef::flag("state-other", "list domains in other states"),
            OptDef::flag("autostart", "list domains with autostart enabled"),
            OptDef::flag("no-autostart", "list domains with autostart disabled"),
            OptDef::flag("uuid", "list uuid's only"),
            OptDef::flag("name", "list domain names only"),
            OptDef::flag("id", "list domain IDs only"),
            OptDef::flag("table", "list table (default)"),
            OptDef::flag("title", "show domain title"),
        ],
        cmd_list,
    ),
];

/// One row of `list --json`.
#[derive(Serialize)]
struct ListEntry {
    /// The id while running, else null.
    id: Option<i32>,
    name: String,
    uuid: String,
    /// virsh's state name: `running`, `paused`, `shut off`, ...
    state: String,
    /// The `<title>`, empty when there is none.
    title: String,
    persistent: bool,
}

/// `vsh list` (libvirt: cmdList): filters as virsh builds them; a table by default, or
/// `--uuid`/`--id`/`--name` columns one domain a line.
fn cmd_list(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    args.exclusive("table", "name")?;
    args.exclusive("table", "id")?;
    let mut flags = ListFlags::ACTIVE;
    if args.flag("inactive") || args.flag("state-shutoff") {
        flags = ListFlags::INACTIVE;
    }
    if args.flag("all") {
        flags = ListFlags::ACTIVE | ListFlags::INACTIVE;
    }
    for (opt, f) in [
        ("persistent", ListFlags::PERSISTENT),
        ("transient", ListFlags::TRANSIENT),
        ("state-running", ListFlags::RUNNING),
        ("state-paused", ListFlags::PAUSED),
        ("state-shutoff", ListFlags::SHUTOFF),
        ("state-other", ListFlags::OTHER),
    ] {
        if args.flag(opt) {
            flags = flags | f;
        }
    }
    let (o_uuid, o_name, o_id, o_title) = (
        args.flag("uuid"),
        args.flag("name"),
        args.flag("id"),
        args.flag("title"),
    );
    let table = args.flag("table") || !(o_uuid || o_name || o_id);
    let conn = ctx.conn()?;
    let doms = conn
        .list_all_domains_with_state(flags)
        .context("Failed to list domains")?;
    let mut entries = Vec::new();
    // libvirt: virDomainObjMatchFilter, the autostart part (both flags: no filter).
    let (auto, no_auto) = (args.flag("autostart"), args.flag("no-autostart"));
    for l in &doms {
        if auto != no_auto && l.domain.autostart().unwrap_or(false) != auto {
            continue;
        }
        let title = if o_title || ctx.json() {
            // libvirt: virshGetDomainDescription; a domain without one has an empty title.
            l.domain
                .metadata(
                    crate::driver::metadata::MetadataKind::Title,
                    None,
                    Default::default(),
                )
                .unwrap_or_default()
        } else {
            String::new()
        };
        entries.push(ListEntry {
            id: l.id,
            name: l.domain.name().to_string(),
            uuid: l.domain.uuid_string(),
            state: l.state.state.to_string(),
            title,
            persistent: l.domain.is_persistent().unwrap_or(false),
        });
    }
    ctx.emit(&entries, |entries| {
        if table {
            let mut header = vec!["Id", "Name", "State"];
            if o_title {
                header.push("Title");
            }
            if o_uuid {
                header.push("UUID");
            }
            let rows: Vec<Vec<String>> = entries
                .iter()
                .map(|e| {
                    let mut r = vec![
                        e.id.map_or("-".to_string(), |i| i.to_string()),
                        e.name.clone(),
                        e.state.clone(),
                    ];
                    if o_title {
                        r.push(e.title.clone());
                    }
                    if o_uuid {
                        r.push(e.uuid.clone());
                    }
                    r
                })
                .collect();
            return render_table(&header, &rows);
        }
        let mut out = String::new();
        for e in entries {
            // --id alone lists running domains only.
            if o_id && !o_uuid && !o_name && e.id.is_none() {
                continue;
            }
            let mut cols = Vec::new();
            if o_uuid {
                cols.push(e.uuid.clone());
            }
            if o_id {
                cols.push(e.id.map_or("-".to_string(), |i| i.to_string()));
            }
            if o_name {
                cols.push(e.name.clone());
            }
            out.push_str(&cols.join(" "));
            out.push('\n');
        }
        out
    });
    Ok(())
}

/// The definition virsh reads for `--inactive` or not.
fn def_of(dom: &Domain<'_>, inactive: bool) -> Result<DomainDef> {
    let xml = dom.xml_desc(FormatFlags {
        inactive,
        secure: false,
    })?;
    Ok(crate::domain::parse(&xml)?)
}

/// One row of `domblklist --json`.
#[derive(Serialize)]
struct BlkEntry {
    #[serde(rename = "type")]
    dtype: String,
    device: String,
    target: String,
    /// The file, device, directory, name or volume; null when the drive is empty.
    source: Option<String>,
}

/// `vsh domblklist DOMAIN [--inactive] [--details]` (libvirt: cmdDomblklist).
fn cmd_domblklist(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    let def = def_of(&dom, args.flag("inactive"))?;
    let details = args.flag("details");
    let entries: Vec<BlkEntry> = def
        .devices
        .disks
        .iter()
        .map(|d| BlkEntry {
            dtype: d.dtype.clone().unwrap_or_else(|| "file".into()),
            device: d.device.clone().unwrap_or_else(|| "disk".into()),
            target: d.target.dev.clone(),
            source: d.source.as_ref().and_then(|s| {
                s.file
                    .clone()
                    .or(s.dev.clone())
                    .or(s.dir.clone())
                    .or(s.name.clone())
                    .or(s.volume.clone())
            }),
        })
        .collect();
    ctx.emit(&entries, |entries| {
        let src = |e: &BlkEntry| e.source.clone().unwrap_or_else(|| "-".into());
        if details {
            let rows: Vec<Vec<String>> = entries
                .iter()
                .map(|e| vec![e.dtype.clone(), e.device.clone(), e.target.clone(), src(e)])
                .collect();
            render_table(&["Type", "Device", "Target", "Source"], &rows)
        } else {
            let rows: Vec<Vec<String>> = entries
                .iter()
                .map(|e| vec![e.target.clone(), src(e)])
                .collect();
            render_table(&["Target", "Source"], &rows)
        }
    });
    Ok(())
}

/// One row of `domiflist --json`.
#[derive(Serialize)]
struct IfEntry {
    /// The host device (`<target dev>`), null when it has none.
    interface: Option<String>,
    #[serde(rename = "type")]
    itype: String,
    source: Option<String>,
    model: Option<String>,
    mac: Option<String>,
}

/// `vsh domiflist DOMAIN [--inactive]` (libvirt: cmdDomiflist).
fn cmd_domiflist(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    let def = def_of(&dom, args.flag("inactive"))?;
    let entries: Vec<IfEntry> = def
        .devices
        .interfaces
        .iter()
        .map(|n| IfEntry {
            interface: n.target_dev.clone(),
            itype: n.itype.clone(),
            source: n.source.as_ref().and_then(|s| {
                s.network
                    .clone()
                    .or(s.bridge.clone())
                    .or(s.dev.clone())
                    .or(s.path.clone())
            }),
            model: n.model.clone(),
            mac: n.mac.clone(),
        })
        .collect();
    ctx.emit(&entries, |entries| {
        let m = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
        let rows: Vec<Vec<String>> = entries
            .iter()
            .map(|e| {
                vec![
                    m(&e.interface),
                    e.itype.clone(),
                    m(&e.source),
                    m(&e.model),
                    m(&e.mac),
                ]
            })
            .collect();
        render_table(&["Interface", "Type", "Source", "Model", "MAC"], &rows)
    });
    Ok(())
}

/// One disk of `domblkinfo --json`.
#[derive(Serialize)]
struct BlkInfoEntry {
    target: String,
    #[serde(flatten)]
    info: crate::driver::stats::BlockInfo,
}

/// `vsh domblkinfo DOMAIN {DEVICE | --all} [--human]` (libvirt: cmdDomblkinfo).
fn cmd_domblkinfo(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    if args.flag("all") && args.string("device").is_some() {
        bail!("Options --all and --device are mutually exclusive");
    }
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    let human = args.flag("human");
    if args.flag("all") {
        let def = def_of(&dom, false)?;
        let mut entries = Vec::new();
        for d in &def.devices.disks {
            let info = if d.source.is_some() {
                dom.block_info(&d.target.dev)?
            } else {
                Default::default()
            };
            entries.push(BlkInfoEntry {
                target: d.target.dev.clone(),
                info,
            });
        }
        ctx.emit(&entries, |entries| {
            let rows: Vec<Vec<String>> = entries
                .iter()
                .map(|e| {
                    let [c, a, p] = readfmt::blkinfo_cells(&e.info, human);
                    vec![e.target.clone(), c, a, p]
                })
                .collect();
            render_table(&["Target", "Capacity", "Allocation", "Physical"], &rows)
        });
        return Ok(());
    }
    let Some(device) = args.string("device") else {
        bail!("command 'domblkinfo' requires <device> option");
    };
    let info = dom.block_info(device)?;
    ctx.emit(&info, |i| readfmt::domblkinfo(i, human));
    Ok(())
}

/// `domblkstat --json`.
#[derive(Serialize)]
struct BlkStat<'a> {
    /// The disk asked for; empty for the sum over all disks.
    device: &'a str,
    #[serde(flatten)]
    stats: crate::driver::stats::BlockStats,
}

/// `vsh domblkstat DOMAIN [DEVICE] [--human]` (libvirt: cmdDomblkstat).
fn cmd_domblkstat(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let name = args.required("domain")?;
    let dom = lookup_domain(ctx.conn()?, name)?;
    let device = args.string("device").unwrap_or("");
    let stats = dom.block_stats(device).with_context(|| {
        format!("Failed to get block stats for domain '{name}' device '{device}'")
    })?;
    let human = args.flag("human");
    ctx.emit(&BlkStat { device, stats }, |v| {
        readfmt::domblkstat(v.device, &v.stats, human)
    });
    Ok(())
}

/// `domifstat --json`.
#[derive(Serialize)]
struct IfStat<'a> {
    interface: &'a str,
    #[serde(flatten)]
    stats: crate::driver::stats::InterfaceStats,
}

/// `vsh domifstat DOMAIN INTERFACE` (libvirt: cmdDomIfstat).
fn cmd_domifstat(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let name = args.required("domain")?;
    let dom = lookup_domain(ctx.conn()?, name)?;
    let device = args.required("interface")?;
    let stats = dom
        .interface_stats(device)
        .with_context(|| format!("Failed to get interface stats {name} {device}"))?;
    ctx.emit(
        &IfStat {
            interface: device,
            stats,
        },
        |v| readfmt::domifstat(v.interface, &v.stats),
    );
    Ok(())
}

/// `vsh dommemstat DOMAIN` (libvirt: cmdDomMemStat). `--json`: an object of virsh's names
/// to values.
fn cmd_dommemstat(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let name = args.required("domain")?;
    let dom = lookup_domain(ctx.conn()?, name)?;
    let stats = dom
        .memory_stats()
        .with_context(|| format!("Failed to get memory statistics for domain {name}"))?;
    let map: serde_json::Map<String, serde_json::Value> = stats
        .iter()
        .map(|s| (s.tag.dommemstat_name().to_string(), s.val.into()))
        .collect();
    ctx.emit(&map, |_| readfmt::dommemstat(&stats));
    Ok(())
}

/// One record of `domstats --json`.
#[derive(Serialize)]
struct StatsEntry {
    domain: String,
    stats: serde_json::Map<String, serde_json::Value>,
}

/// `vsh domstats [GROUPS] [--list-*] [DOMAIN...]` (libvirt: cmdDomstats). Our records
/// carry no pretty-printed fields, so `--raw` changes nothing, as in virsh today; every
/// group is this driver's, so `--enforce` refuses nothing; no stats wait on a job, so
/// `--nowait` changes nothing either.
fn cmd_domstats(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    use crate::driver::domstats::{
        GET_ALL_DOMAINS_STATS_BACKING, StatsGroups, domain_list_stats_flags,
    };
    let groups = StatsGroups {
        state: args.flag("state"),
        cpu_total: args.flag("cpu-total"),
        balloon: args.flag("balloon"),
        vcpu: args.flag("vcpu"),
        interface: args.flag("interface"),
        block: args.flag("block"),
        perf: args.flag("perf"),
        iothread: args.flag("iothread"),
        memory: args.flag("memory"),
        dirtyrate: args.flag("dirtyrate"),
        vm: args.flag("vm"),
    };
    let conn = ctx.conn()?;
    let names = args.all("domain");
    let stats_flags = if args.flag("backing") {
        GET_ALL_DOMAINS_STATS_BACKING
    } else {
        0
    };
    let records = if names.is_empty() {
        let mut flags = ListFlags::ALL;
        for (opt, f) in [
            ("list-active", ListFlags::ACTIVE),
            ("list-inactive", ListFlags::INACTIVE),
            ("list-persistent", ListFlags::PERSISTENT),
            ("list-transient", ListFlags::TRANSIENT),
            ("list-running", ListFlags::RUNNING),
            ("list-paused", ListFlags::PAUSED),
            ("list-shutoff", ListFlags::SHUTOFF),
            ("list-other", ListFlags::OTHER),
        ] {
            if args.flag(opt) {
                flags = flags | f;
            }
        }
        let doms = conn.list_all_domains(flags)?;
        domain_list_stats_flags(&doms, groups, stats_flags)?
    } else {
        let doms = names
            .iter()
            .map(|n| lookup_domain(conn, n))
            .collect::<Result<Vec<_>>>()?;
        domain_list_stats_flags(&doms, groups, stats_flags)?
    };
    let entries: Vec<StatsEntry> = records
        .iter()
        .map(|r| StatsEntry {
            domain: r.name.clone(),
            stats: r
                .params
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::to_value(v).unwrap_or_default()))
                .collect(),
        })
        .collect();
    ctx.emit(&entries, |_| readfmt::domstats(&records));
    Ok(())
}

/// `vsh domifaddr DOMAIN [INTERFACE] [--full] [--source lease|agent|arp]`
/// (libvirt: cmdDomIfAddr).
fn cmd_domifaddr(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    use crate::driver::ifaddr::AddrSource;
    let source = match args.string("source") {
        None => AddrSource::Lease,
        Some(s) => match AddrSource::parse(s) {
            Some(src) => src,
            None => bail!("Unknown data source '{s}'"),
        },
    };
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    let ifaces = dom
        .interface_addresses(source)
        .context("Failed to query for interfaces addresses")?;
    let only = args.string("interface");
    let full = args.flag("full");
    let shown: Vec<_> = ifaces
        .iter()
        .filter(|i| only.is_none_or(|o| o == i.name))
        .cloned()
        .collect();
    ctx.emit(&shown, |v| readfmt::domifaddr(v, None, full));
    Ok(())
}
