//! Storage Pool: virsh's pool verbs, worded as virsh's (libvirt: tools/virsh-pool.c).

use anyhow::{Context, Result, bail};
use serde::Serialize;

use super::readfmt::pretty_capacity;
use super::util::{read_xml_file, render_table};
use crate::Connect;
use crate::cli::ctx::CmdCtx;
use crate::cli::edit::edit_and_define;
use crate::cli::parse::ParsedArgs;
use crate::cli::table::{Access, CmdDef, Completer, Group, OptDef};
use crate::driver::storage::{Build, PoolState, StoragePool};
use crate::storage::PoolType;

const POOL: OptDef = OptDef::data("pool", "pool name or uuid").complete(Completer::Pool);
const FILE: OptDef =
    OptDef::data("file", "file containing an XML pool description").complete(Completer::File);
const BUILD: OptDef = OptDef::flag("build", "build the pool as normal");
const NO_OVERWRITE: OptDef = OptDef::flag("no-overwrite", "do not overwrite any existing data");
const OVERWRITE: OptDef = OptDef::flag("overwrite", "overwrite any existing data");

/// The pool types, for completion.
const TYPES: &[&str] = &[
    "dir",
    "fs",
    "netfs",
    "logical",
    "disk",
    "iscsi",
    "iscsi-direct",
    "scsi",
    "mpath",
    "rbd",
    "sheepdog",
    "gluster",
    "zfs",
    "vstorage",
];

/// virsh's VIRSH_COMMON_OPT_POOL_X_AS: what `pool-define-as` and `pool-create-as` build the
/// XML from.
macro_rules! x_as {
    ($($extra:expr),*) => {
        &[
            OptDef::data("name", "name of the pool"),
            OptDef::data("type", "type of the pool").complete(Completer::Words(TYPES)),
            OptDef::flag("print-xml", "print XML document, but don't define/create"),
            OptDef::string("source-host", "source-host for underlying storage").positional(),
            OptDef::string("source-path", "source path for underlying storage").positional(),
            OptDef::string("source-dev", "source device for underlying storage").positional(),
            OptDef::string("source-name", "source name for underlying storage").positional(),
            OptDef::string("target", "target for underlying storage").positional(),
            OptDef::string("source-format", "format for underlying storage").positional(),
            OptDef::string("auth-type", "auth type to be used for underlying storage").positional(),
            OptDef::string("auth-username", "auth username to be used for underlying storage").positional(),
            OptDef::string("secret-usage", "auth secret usage to be used for underlying storage").positional(),
            OptDef::string("secret-uuid", "auth secret UUID to be used for underlying storage").positional(),
            OptDef::string("adapter-name", "adapter name to be used for underlying storage").positional(),
            OptDef::string("adapter-wwnn", "adapter wwnn to be used for underlying storage").positional(),
            OptDef::string("adapter-wwpn", "adapter wwpn to be used for underlying storage").positional(),
            OptDef::string("adapter-parent", "adapter parent scsi_hostN to be used for underlying vHBA storage").positional(),
            OptDef::string("adapter-parent-wwnn", "adapter parent scsi_hostN wwnn to be used for underlying vHBA storage").positional(),
            OptDef::string("adapter-parent-wwpn", "adapter parent scsi_hostN wwpn to be used for underlying vHBA storage").positional(),
            OptDef::string("adapter-parent-fabric-wwn", "adapter parent scsi_hostN fabric_wwn to be used for underlying vHBA storage").positional(),
            OptDef::string("source-protocol-ver", "nfsvers value for NFS pool mount option").positional(),
            OptDef::string("source-initiator", "initiator iqn for underlying storage").positional(),
            $($extra),*
        ]
    };
}

const fn verb(
    name: &'static str,
    info: &'static str,
    desc: &'static str,
    opts: &'static [OptDef],
    handler: crate::cli::table::Handler,
    access: Access,
) -> CmdDef {
    CmdDef::new(Group::StoragePool, name, info, desc, opts, handler).with_access(access)
}

pub const CMDS: &[CmdDef] = &[
    verb(
        "find-storage-pool-sources-as",
        "find potential storage pool sources",
        "Returns XML <sources> document.",
        &[
            OptDef::data("type", "type of storage pool sources to find")
                .complete(Completer::Words(TYPES)),
            OptDef::string("host", "optional host to query").positional(),
            OptDef::string("port", "optional port to query").positional(),
            OptDef::string("initiator", "optional initiator IQN to use for query").positional(),
        ],
        cmd_find_sources_as,
        Access::Write("virConnectFindStoragePoolSources"),
    ),
    verb(
        "find-storage-pool-sources",
        "discover potential storage pool sources",
        "Returns XML <sources> document.",
        &[
            OptDef::data("type", "type of storage pool sources to discover")
                .complete(Completer::Words(TYPES)),
            OptDef::string("srcSpec", "optional file of source xml to query for pools")
                .positional()
                .complete(Completer::File),
        ],
        cmd_find_sources,
        Access::Write("virConnectFindStoragePoolSources"),
    ),
    verb(
        "pool-autostart",
        "autostart a pool",
        "Configure a pool to be automatically started at boot.",
        &[POOL, OptDef::flag("disable", "disable autostarting")],
        cmd_autostart,
        Access::Write("virStoragePoolSetAutostart"),
    ),
    verb(
        "pool-build",
        "build a pool",
        "Build a given pool.",
        &[POOL, NO_OVERWRITE, OVERWRITE],
        cmd_build,
        Access::Write("virStoragePoolBuild"),
    ),
    verb(
        "pool-create-as",
        "create a pool from a set of args",
        "Create a pool.",
        x_as!(BUILD, NO_OVERWRITE, OVERWRITE),
        cmd_create_as,
        Access::Write("virStoragePoolCreateXML"),
    ),
    verb(
        "pool-create",
        "create a pool from an XML file",
        "Create a pool.",
        &[FILE, BUILD, NO_OVERWRITE, OVERWRITE],
        cmd_create,
        Access::Write("virStoragePoolCreateXML"),
    ),
    verb(
        "pool-define-as",
        "define a pool from a set of args",
        "Define a pool.",
        x_as!(),
        cmd_define_as,
        Access::Write("virStoragePoolDefineXML"),
    ),
    verb(
        "pool-define",
        "define an inactive persistent storage pool or modify an existing persistent one from an XML file",
        "Define or modify a persistent storage pool.",
        &[
            FILE,
            OptDef::flag("validate", "validate the XML against the schema"),
        ],
        cmd_define,
        Access::Write("virStoragePoolDefineXML"),
    ),
    verb(
        "pool-delete",
        "delete a pool",
        "Delete a given pool.",
        &[POOL],
        cmd_delete,
        Access::Write("virStoragePoolDelete"),
    ),
    verb(
        "pool-destroy",
        "destroy (stop) a pool",
        "Forcefully stop a given pool. Raw data in the pool is untouched",
        &[POOL],
        cmd_destroy,
        Access::Write("virStoragePoolDestroy"),
    ),
    verb(
        "pool-dumpxml",
        "pool information in XML",
        "Output the pool information as an XML dump to stdout.",
        &[
            POOL,
            OptDef::flag("inactive", "show inactive defined XML"),
            OptDef::string("xpath", "xpath expression to filter the XML document"),
            OptDef::flag("wrap", "wrap xpath results in an common root element"),
        ],
        cmd_dumpxml,
        Access::Read,
    ),
    verb(
        "pool-edit",
        "edit XML configuration for a storage pool",
        "Edit the XML configuration for a storage pool.",
        &[POOL],
        cmd_edit,
        Access::Write("virStoragePoolDefineXML"),
    ),
    CmdDef {
        json: true,
        ..verb(
            "pool-info",
            "storage pool information",
            "Returns basic information about the storage pool.",
            &[POOL, OptDef::flag("bytes", "Return pool info in bytes")],
            cmd_info,
            Access::Read,
        )
    },
    CmdDef {
        json: true,
        ..verb(
            "pool-list",
            "list pools",
            "Returns list of pools.",
            &[
                OptDef::flag("inactive", "list inactive pools"),
                OptDef::flag("all", "list inactive & active pools"),
                OptDef::flag("transient", "list transient pools"),
                OptDef::flag("persistent", "list persistent pools"),
                OptDef::flag("autostart", "list pools with autostart enabled"),
                OptDef::flag("no-autostart", "list pools with autostart disabled"),
                OptDef::string("type", "only list pool of specified type(s) (if supported)")
                    .positional()
                    .complete(Completer::Words(TYPES)),
                OptDef::flag("details", "display extended details for pools"),
                OptDef::flag("uuid", "list UUID of active pools only"),
                OptDef::flag("name", "list name of active pools only"),
            ],
            cmd_list,
            Access::Read,
        )
    },
    verb(
        "pool-name",
        "convert a pool UUID to pool name",
        "",
        &[POOL],
        cmd_name,
        Access::Read,
    ),
    verb(
        "pool-refresh",
        "refresh a pool",
        "Refresh a given pool.",
        &[POOL],
        cmd_refresh,
        Access::Write("virStoragePoolRefresh"),
    ),
    verb(
        "pool-start",
        "start a (previously defined) inactive pool",
        "Start a pool.",
        &[POOL, BUILD, NO_OVERWRITE, OVERWRITE],
        cmd_start,
        Access::Write("virStoragePoolCreate"),
    ),
    verb(
        "pool-undefine",
        "undefine an inactive pool",
        "Undefine the configuration for an inactive pool.",
        &[POOL],
        cmd_undefine,
        Access::Write("virStoragePoolUndefine"),
    ),
    verb(
        "pool-uuid",
        "convert a pool name to pool UUID",
        "",
        &[POOL],
        cmd_uuid,
        Access::Read,
    ),
    verb(
        "pool-capabilities",
        "storage pool capabilities",
        "Returns capabilities of storage pool support.",
        &[],
        cmd_capabilities,
        Access::Read,
    ),
];

/// Print the sources `spec` finds for pool type `ptype`, or virsh's failure line over the
/// reason (libvirt: cmdPoolDiscoverSources, cmdPoolDiscoverSourcesAs).
fn find_sources(ctx: &CmdCtx, ptype: &str, spec: Option<&str>) -> Result<()> {
    let xml = ctx
        .conn()?
        .find_storage_pool_sources(ptype, spec)
        .with_context(|| format!("Failed to find any {ptype} pool sources"))?;
    ctx.print(xml);
    Ok(())
}

/// `vsh find-storage-pool-sources TYPE [SRCSPEC-FILE]`.
fn cmd_find_sources(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let ptype = args.required("type")?;
    let spec = match args.string("srcSpec") {
        Some(f) => Some(read_xml_file(f)?),
        None => None,
    };
    find_sources(ctx, ptype, spec.as_deref())
}

/// `vsh find-storage-pool-sources-as TYPE [HOST] [PORT] [INITIATOR]`: the `<source>` spec
/// built from the options, as virsh builds it.
fn cmd_find_sources_as(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let ptype = args.required("type")?;
    let spec = args.string("host").map(|host| {
        let esc = |v: &str| crate::xmlfmt::escape_attr(v);
        let mut s = format!("<source>\n  <host name='{}'", esc(host));
        if let Some(p) = args.string("port") {
            s.push_str(&format!(" port='{}'", esc(p)));
        }
        s.push_str("/>\n");
        if let Some(i) = args.string("initiator") {
            s.push_str(&format!(
                "  <initiator>\n    <iqn name='{}'/>\n  </initiator>\n",
                esc(i)
            ));
        }
        s.push_str("</source>\n");
        s
    });
    find_sources(ctx, ptype, spec.as_deref())
}

/// The pool named by option `opt` (libvirt: virshCommandOptPoolBy): by UUID when it looks
/// like one, then by name.
pub(super) fn lookup<'c>(
    conn: &'c Connect,
    args: &ParsedArgs,
    opt: &str,
) -> Result<StoragePool<'c>> {
    let arg = args.required(opt)?;
    conn.lookup_storage_pool(arg)
        .with_context(|| format!("failed to get pool '{arg}'"))
}

/// `--build`, `--overwrite`, `--no-overwrite` (libvirt: VIR_STORAGE_POOL_CREATE_WITH_BUILD*).
fn build_flags(args: &ParsedArgs) -> Result<Build> {
    args.exclusive("overwrite", "no-overwrite")?;
    Ok(if args.flag("overwrite") {
        Build::Overwrite
    } else if args.flag("no-overwrite") {
        Build::NoOverwrite
    } else if args.flag("build") {
        Build::Plain
    } else {
        Build::No
    })
}

/// The XML `pool-define-as` and `pool-create-as` make (libvirt: virshBuildPoolXML). Like
/// virsh, values go in as given.
fn build_xml(args: &ParsedArgs) -> Result<(String, String)> {
    args.exclusive("secret-usage", "secret-uuid")?;
    let s = |n| args.string(n);
    let name = args.required("name")?.to_string();
    let mut x = format!(
        "<pool type='{}'>\n  <name>{name}</name>\n",
        args.required("type")?
    );
    let (wwnn, wwpn) = (s("adapter-wwnn"), s("adapter-wwpn"));
    let any_source = [
        "source-host",
        "source-path",
        "source-dev",
        "source-initiator",
        "source-format",
        "source-name",
        "adapter-name",
    ]
    .iter()
    .any(|n| s(n).is_some())
        || (wwnn.is_some() && wwpn.is_some());
    if any_source {
        x.push_str("  <source>\n");
        if let Some(v) = s("source-host") {
            x.push_str(&format!("    <host name='{v}'/>\n"));
        }
        if let Some(v) = s("source-path") {
            x.push_str(&format!("    <dir path='{v}'/>\n"));
        }
        if let Some(v) = s("source-dev") {
            x.push_str(&format!("    <device path='{v}'/>\n"));
        }
        if let Some(v) = s("source-initiator") {
            x.push_str(&format!(
                "    <initiator>\n      <iqn name='{v}'/>\n    </initiator>\n"
            ));
        }
        if let (Some(n), Some(p)) = (wwnn, wwpn) {
            x.push_str("    <adapter type='fc_host'");
            if let Some(v) = s("adapter-parent") {
                x.push_str(&format!(" parent='{v}'"));
            } else if let (Some(a), Some(b)) = (s("adapter-parent-wwnn"), s("adapter-parent-wwpn"))
            {
                x.push_str(&format!(" parent_wwnn='{a}' parent_wwpn='{b}'"));
            } else if let Some(v) = s("adapter-parent-fabric-wwn") {
                x.push_str(&format!(" parent_fabric_wwn='{v}'"));
            }
            x.push_str(&format!(" wwnn='{n}' wwpn='{p}'/>\n"));
        } else if let Some(v) = s("adapter-name") {
            x.push_str(&format!("    <adapter type='scsi_host' name='{v}'/>\n"));
        }
        if let (Some(t), Some(u)) = (s("auth-type"), s("auth-username")) {
            let secret = match (s("secret-usage"), s("secret-uuid")) {
                (Some(v), _) => Some(format!("usage='{v}'")),
                (None, Some(v)) => Some(format!("uuid='{v}'")),
                _ => None,
            };
            if let Some(sec) = secret {
                x.push_str(&format!(
                    "    <auth type='{t}' username='{u}'>\n      <secret {sec}/>\n    </auth>\n"
                ));
            }
        }
        if let Some(v) = s("source-format") {
            x.push_str(&format!("    <format type='{v}'/>\n"));
        }
        if let Some(v) = s("source-name") {
            x.push_str(&format!("    <name>{v}</name>\n"));
        }
        if let Some(v) = s("source-protocol-ver") {
            x.push_str(&format!("    <protocol ver='{v}'/>\n"));
        }
        x.push_str("  </source>\n");
    }
    if let Some(v) = s("target") {
        x.push_str(&format!("  <target>\n    <path>{v}</path>\n  </target>\n"));
    }
    x.push_str("</pool>\n");
    Ok((name, x))
}

/// `vsh pool-autostart POOL [--disable]` (libvirt: cmdPoolAutostart).
fn cmd_autostart(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let pool = lookup(ctx.conn()?, args, "pool")?;
    let name = args.required("pool")?;
    let on = !args.flag("disable");
    super::util::autostart_said(ctx, "pool", "Pool", name, on, pool.set_autostart(on))
}

/// `vsh pool-build POOL [--overwrite | --no-overwrite]` (libvirt: cmdPoolBuild).
fn cmd_build(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let pool = lookup(ctx.conn()?, args, "pool")?;
    let name = args.required("pool")?;
    let how = if args.flag("no-overwrite") {
        Build::NoOverwrite
    } else if args.flag("overwrite") {
        Build::Overwrite
    } else {
        Build::Plain
    };
    pool.build(how)
        .with_context(|| format!("Failed to build pool {name}"))?;
    ctx.println_extra(format!("Pool {name} built"));
    Ok(())
}

/// `vsh pool-create FILE [--build] [--overwrite | --no-overwrite]` (libvirt: cmdPoolCreate).
fn cmd_create(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let file = args.required("file")?;
    let build = build_flags(args)?;
    let xml = read_xml_file(file)?;
    let pool = ctx
        .conn()?
        .create_storage_pool_xml(&xml, build)
        .with_context(|| format!("Failed to create pool from {file}"))?;
    ctx.println_extra(format!("Pool {} created from {file}", pool.name()));
    Ok(())
}

/// `vsh pool-create-as NAME TYPE ...` (libvirt: cmdPoolCreateAs).
fn cmd_create_as(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let build = build_flags(args)?;
    let (name, xml) = build_xml(args)?;
    if args.flag("print-xml") {
        ctx.print(xml);
        return Ok(());
    }
    ctx.conn()?
        .create_storage_pool_xml(&xml, build)
        .with_context(|| format!("Failed to create pool {name}"))?;
    ctx.println_extra(format!("Pool {name} created"));
    Ok(())
}

/// `vsh pool-define FILE [--validate]` (libvirt: cmdPoolDefine). Our parser's checks are
/// the validation: no schema file ships with us.
fn cmd_define(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let file = args.required("file")?;
    let xml = read_xml_file(file)?;
    let pool = ctx
        .conn()?
        .define_storage_pool_xml(&xml)
        .with_context(|| format!("Failed to define pool from {file}"))?;
    ctx.println_extra(format!("Pool {} defined from {file}", pool.name()));
    Ok(())
}

/// `vsh pool-define-as NAME TYPE ...` (libvirt: cmdPoolDefineAs).
fn cmd_define_as(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let (name, xml) = build_xml(args)?;
    if args.flag("print-xml") {
        ctx.print(xml);
        return Ok(());
    }
    ctx.conn()?
        .define_storage_pool_xml(&xml)
        .with_context(|| format!("Failed to define pool {name}"))?;
    ctx.println_extra(format!("Pool {name} defined"));
    Ok(())
}

/// `vsh pool-delete POOL` (libvirt: cmdPoolDelete).
fn cmd_delete(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let pool = lookup(ctx.conn()?, args, "pool")?;
    let name = args.required("pool")?;
    pool.delete()
        .with_context(|| format!("Failed to delete pool {name}"))?;
    ctx.println_extra(format!("Pool {name} deleted"));
    Ok(())
}

/// `vsh pool-destroy POOL` (libvirt: cmdPoolDestroy).
fn cmd_destroy(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let pool = lookup(ctx.conn()?, args, "pool")?;
    let name = args.required("pool")?;
    pool.destroy()
        .with_context(|| format!("Failed to destroy pool {name}"))?;
    ctx.println_extra(format!("Pool {name} destroyed"));
    Ok(())
}

/// `vsh pool-dumpxml POOL [--inactive] [--xpath EXPR [--wrap]]` (libvirt: cmdPoolDumpXML).
fn cmd_dumpxml(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let pool = lookup(ctx.conn()?, args, "pool")?;
    let xml = pool.xml_desc(args.flag("inactive"));
    match args.string("xpath") {
        Some(expr) => ctx.print(super::xpath::render(&xml, expr, args.flag("wrap"))?),
        None => ctx.print(xml),
    }
    Ok(())
}

/// `vsh pool-edit POOL` (libvirt: cmdPoolEdit).
fn cmd_edit(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let conn = ctx.conn()?;
    let pool = lookup(conn, args, "pool")?;
    edit_and_define(ctx, "Pool", pool.name(), &pool.xml_desc(true), |x| {
        Ok(conn.define_storage_pool_xml(x)?.name().to_string())
    })
}

/// `pool-info --json`.
#[derive(Serialize)]
struct PoolInfoOut {
    name: String,
    uuid: String,
    /// `running` or `inactive`.
    state: String,
    persistent: bool,
    autostart: bool,
    /// Bytes; absent for an inactive pool.
    capacity: Option<u64>,
    allocation: Option<u64>,
    available: Option<u64>,
}

fn info_of(p: &StoragePool<'_>) -> Result<PoolInfoOut> {
    let i = p.info();
    let running = i.state == PoolState::Running;
    Ok(PoolInfoOut {
        name: p.name().to_string(),
        uuid: p.uuid_string().to_string(),
        state: i.state.as_str().to_string(),
        persistent: p.is_persistent(),
        autostart: p.autostart()?,
        capacity: running.then_some(i.capacity),
        allocation: running.then_some(i.allocation),
        available: running.then_some(i.available),
    })
}

fn pretty(v: u64) -> String {
    let (n, u) = pretty_capacity(v);
    format!("{n:.2} {u}")
}

/// `vsh pool-info POOL [--bytes]` (libvirt: cmdPoolInfo).
fn cmd_info(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let pool = lookup(ctx.conn()?, args, "pool")?;
    let out = info_of(&pool)?;
    let bytes = args.flag("bytes");
    ctx.emit(&out, |o| {
        let yn = |b: bool| if b { "yes" } else { "no" };
        let mut s = format!(
            "{:<15} {}\n{:<15} {}\n{:<15} {}\n{:<15} {}\n{:<15} {}\n",
            "Name:",
            o.name,
            "UUID:",
            o.uuid,
            "State:",
            o.state,
            "Persistent:",
            yn(o.persistent),
            "Autostart:",
            yn(o.autostart)
        );
        for (label, v) in [
            ("Capacity:", o.capacity),
            ("Allocation:", o.allocation),
            ("Available:", o.available),
        ] {
            if let Some(v) = v {
                if bytes {
                    s.push_str(&format!("{label:<15} {v}\n"));
                } else {
                    s.push_str(&format!("{label:<15} {}\n", pretty(v)));
                }
            }
        }
        s
    });
    Ok(())
}

/// One row of `pool-list --json`.
#[derive(Serialize)]
struct PoolRow {
    #[serde(flatten)]
    info: PoolInfoOut,
    #[serde(rename = "type")]
    ptype: String,
}

/// `vsh pool-list [filters] [--details | --uuid | --name]` (libvirt: cmdPoolList).
fn cmd_list(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    args.exclusive("all", "inactive")?;
    args.exclusive("details", "uuid")?;
    args.exclusive("details", "name")?;
    let mut types: Vec<PoolType> = Vec::new();
    if let Some(t) = args.string("type") {
        for one in t.split(',').filter(|s| !s.is_empty()) {
            types.push(
                PoolType::parse(one).ok_or_else(|| anyhow::anyhow!("Invalid pool type '{one}'"))?,
            );
        }
    }
    let (want_active, want_inactive) = if args.flag("all") {
        (true, true)
    } else if args.flag("inactive") {
        (false, true)
    } else {
        (true, false)
    };
    let conn = ctx.conn()?;
    let mut rows = Vec::new();
    for p in conn.list_storage_pools()? {
        if !(if p.is_active() {
            want_active
        } else {
            want_inactive
        }) {
            continue;
        }
        let (pers, trans) = (args.flag("persistent"), args.flag("transient"));
        if (pers || trans) && !((pers && p.is_persistent()) || (trans && !p.is_persistent())) {
            continue;
        }
        let auto = p.autostart()?;
        let (a, na) = (args.flag("autostart"), args.flag("no-autostart"));
        if (a || na) && !((a && auto) || (na && !auto)) {
            continue;
        }
        if !types.is_empty() && !types.contains(&p.pool_type()) {
            continue;
        }
        rows.push(PoolRow {
            info: info_of(&p)?,
            ptype: p.pool_type().as_str().to_string(),
        });
    }
    let details = args.flag("details");
    let (uuid, name) = (args.flag("uuid"), args.flag("name"));
    ctx.emit(&rows, |rows| {
        if !details && (uuid || name) {
            let mut s = String::new();
            for r in rows {
                if uuid {
                    s.push_str(&format!(
                        "{:<36}{}",
                        r.info.uuid,
                        if name { ' ' } else { '\n' }
                    ));
                }
                if name {
                    s.push_str(&format!("{:<20}\n", r.info.name));
                }
            }
            return s;
        }
        let yn = |b: bool| if b { "yes" } else { "no" }.to_string();
        if !details {
            let cells: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    let state = if r.info.state == "running" {
                        "active"
                    } else {
                        "inactive"
                    };
                    vec![r.info.name.clone(), state.into(), yn(r.info.autostart)]
                })
                .collect();
            return render_table(&["Name", "State", "Autostart"], &cells);
        }
        let size = |v: Option<u64>| v.map_or("-".to_string(), pretty);
        let cells: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                vec![
                    r.info.name.clone(),
                    r.info.state.clone(),
                    yn(r.info.autostart),
                    yn(r.info.persistent),
                    size(r.info.capacity),
                    size(r.info.allocation),
                    size(r.info.available),
                ]
            })
            .collect();
        render_table(
            &[
                "Name",
                "State",
                "Autostart",
                "Persistent",
                "Capacity",
                "Allocation",
                "Available",
            ],
            &cells,
        )
    });
    Ok(())
}

/// `vsh pool-name UUID` (libvirt: cmdPoolName): by UUID only.
fn cmd_name(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let arg = args.required("pool")?;
    let conn = ctx.conn()?;
    let found = if arg.len() == 36 {
        conn.lookup_storage_pool_by_uuid(arg)
    } else {
        Err(crate::driver::DriverError::NoStoragePool(format!(
            "no storage pool with matching uuid '{arg}'"
        )))
    };
    let pool = found.with_context(|| format!("failed to get pool '{arg}'"))?;
    ctx.println(pool.name());
    Ok(())
}

/// `vsh pool-refresh POOL` (libvirt: cmdPoolRefresh).
fn cmd_refresh(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let pool = lookup(ctx.conn()?, args, "pool")?;
    let name = args.required("pool")?;
    pool.refresh()
        .with_context(|| format!("Failed to refresh pool {name}"))?;
    ctx.println_extra(format!("Pool {name} refreshed"));
    Ok(())
}

/// `vsh pool-start POOL [--build] [--overwrite | --no-overwrite]` (libvirt: cmdPoolStart).
fn cmd_start(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let pool = lookup(ctx.conn()?, args, "pool")?;
    let name = args.required("pool")?;
    let build = build_flags(args)?;
    pool.create(build)
        .with_context(|| format!("Failed to start pool {name}"))?;
    ctx.println_extra(format!("Pool {name} started"));
    Ok(())
}

/// `vsh pool-undefine POOL` (libvirt: cmdPoolUndefine).
fn cmd_undefine(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let pool = lookup(ctx.conn()?, args, "pool")?;
    let name = args.required("pool")?;
    pool.undefine()
        .with_context(|| format!("Failed to undefine pool {name}"))?;
    ctx.println_extra(format!("Pool {name} has been undefined"));
    Ok(())
}

/// `vsh pool-uuid NAME` (libvirt: cmdPoolUuid): by name only.
fn cmd_uuid(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let arg = args.required("pool")?;
    let pool = ctx
        .conn()?
        .lookup_storage_pool_by_name(arg)
        .with_context(|| format!("failed to get pool '{arg}'"))?;
    ctx.println(pool.uuid_string());
    Ok(())
}

/// `vsh pool-capabilities` (libvirt: cmdPoolCapabilities).
fn cmd_capabilities(ctx: &mut CmdCtx, _: &ParsedArgs) -> Result<()> {
    let caps = ctx.conn()?.storage_pool_capabilities();
    if caps.is_empty() {
        bail!("failed to get storage pool capabilities");
    }
    // virsh prints the document and a newline of its own.
    ctx.print(caps);
    ctx.println("");
    Ok(())
}
