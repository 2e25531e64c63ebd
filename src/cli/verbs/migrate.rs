//! Migration: `migrate` to another connection on this host, and its tunables
//! `migrate-setspeed`, `migrate-getspeed`, `migrate-setmaxdowntime`,
//! `migrate-getmaxdowntime`, `migrate-compcache`, `migrate-postcopy` (libvirt:
//! tools/virsh-domain.c cmdMigrate, cmdMigrateSetMaxSpeed, ...).

use anyhow::{Result, bail};
use serde_json::json;

use super::readfmt::pretty_capacity;
use super::util::{lookup_domain, read_xml_file};
use crate::cli::ctx::CmdCtx;
use crate::cli::parse::ParsedArgs;
use crate::cli::table::{Access, CmdDef, Completer, DomainFilter, Group, OptDef};
use crate::driver::Connect;
use crate::driver::migrate::MigrateOptions;

const DOMAIN: OptDef = OptDef::domain("domain name, id or uuid", DomainFilter::Active);

const fn verb(
    name: &'static str,
    info: &'static str,
    desc: &'static str,
    opts: &'static [OptDef],
    handler: crate::cli::table::Handler,
    access: Access,
) -> CmdDef {
    CmdDef::new(Group::DomainManagement, name, info, desc, opts, handler).with_access(access)
}

pub const CMDS: &[CmdDef] = &[
    verb(
        "migrate",
        "migrate domain to another host",
        "Migrate domain to another host.  Add --live for live migration.",
        &[
            OptDef::domain("domain name, id or uuid", DomainFilter::All),
            OptDef::data(
                "desturi",
                "connection URI of the destination host as seen from the client(normal migration) or source(p2p migration)",
            ),
            OptDef::flag("live", "live migration"),
            OptDef::flag("offline", "offline migration"),
            OptDef::flag("p2p", "peer-2-peer migration"),
            OptDef::flag("direct", "direct migration"),
            OptDef::alias("tunneled", "tunnelled"),
            OptDef::flag("tunnelled", "tunnelled migration"),
            OptDef::flag("persistent", "persist VM on destination"),
            OptDef::flag("undefinesource", "undefine VM on source"),
            OptDef::flag(
                "suspend",
                "do not restart the domain on the destination host",
            ),
            OptDef::flag(
                "copy-storage-all",
                "migration with non-shared storage with full disk copy",
            ),
            OptDef::flag(
                "copy-storage-inc",
                "migration with non-shared storage with incremental copy (same base image shared between source and destination)",
            ),
            OptDef::flag("verbose", "display the progress of migration"),
            OptDef::flag(
                "compressed",
                "compress repeated pages during live migration",
            ),
            OptDef::flag("auto-converge", "force convergence during live migration"),
            OptDef::flag("abort-on-error", "abort on soft errors during migration"),
            OptDef::flag(
                "postcopy",
                "enable post-copy migration; switch to it using migrate-postcopy command",
            ),
            OptDef::string("migrateuri", "migration URI, usually can be omitted").positional(),
            OptDef::string("dname", "rename to new name during migration (if supported)")
                .positional(),
            OptDef::int(
                "timeout",
                "run action specified by --timeout-* option (suspend by default) if live migration exceeds timeout (in seconds)",
            )
            .positional(),
            OptDef::flag("timeout-suspend", "suspend the guest after timeout"),
            OptDef::flag("timeout-postcopy", "switch to post-copy after timeout"),
            OptDef::string("xml", "filename containing updated XML for the target")
                .positional()
                .complete(Completer::File),
            OptDef::string(
                "persistent-xml",
                "filename containing updated persistent XML for the target",
            )
            .complete(Completer::File),
            OptDef::int("bandwidth", "migration bandwidth limit in MiB/s"),
        ],
        cmd_migrate,
        Access::Write("virDomainMigrate3"),
    ),
    verb(
        "migrate-setmaxdowntime",
        "set maximum tolerable downtime",
        "Set maximum tolerable downtime of a domain which is being live-migrated to another host.",
        &[
            DOMAIN,
            OptDef::int(
                "downtime",
                "maximum tolerable downtime (in milliseconds) for migration",
            )
            .required()
            .positional(),
        ],
        cmd_setmaxdowntime,
        Access::Write("virDomainMigrateSetMaxDowntime"),
    ),
    verb(
        "migrate-getmaxdowntime",
        "get maximum tolerable downtime",
        "Get maximum tolerable downtime of a domain which is being live-migrated to another host.",
        &[DOMAIN],
        cmd_getmaxdowntime,
        Access::Read,
    )
    .with_json(true),
    verb(
        "migrate-compcache",
        "get/set compression cache size",
        "Get/set size of the cache (in bytes) used for compressing repeatedly transferred memory pages during live migration.",
        &[
            DOMAIN,
            OptDef::int(
                "size",
                "requested size of the cache (in bytes) used for compression",
            ),
        ],
        cmd_compcache,
        Access::Write("virDomainMigrateSetCompressionCache"),
    )
    .with_json(true),
    verb(
        "migrate-setspeed",
        "Set the maximum migration bandwidth",
        "Set the maximum migration bandwidth (in MiB/s) for a domain which is being migrated to another host.",
        &[
            DOMAIN,
            OptDef::int("bandwidth", "migration bandwidth limit in MiB/s")
                .required()
                .positional(),
            OptDef::flag("postcopy", "set post-copy migration bandwidth"),
        ],
        cmd_setspeed,
        Access::Write("virDomainMigrateSetMaxSpeed"),
    ),
    verb(
        "migrate-getspeed",
        "Get the maximum migration bandwidth",
        "Get the maximum migration bandwidth (in MiB/s) for a domain.",
        &[
            DOMAIN,
            OptDef::flag("postcopy", "get post-copy migration bandwidth"),
        ],
        cmd_getspeed,
        Access::Read,
    )
    .with_json(true),
    verb(
        "migrate-postcopy",
        "Switch running migration from pre-copy to post-copy",
        "Switch running migration from pre-copy to post-copy. The migration must have been started with --postcopy option.",
        &[DOMAIN],
        cmd_postcopy,
        Access::Write("virDomainMigrateStartPostCopy"),
    ),
];

/// virsh's refusal of an option without the one it needs (VSH_REQUIRE_OPTION).
fn require(args: &ParsedArgs, opt: &str, needs: &str) -> Result<()> {
    if args.string(opt).is_some() && !args.flag(needs) {
        bail!("Option --{needs} is required by option --{opt}");
    }
    Ok(())
}

/// `vsh migrate DOMAIN DESTURI [MIGRATEURI] [DNAME] ...`.
fn cmd_migrate(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    args.exclusive("live", "offline")?;
    args.exclusive("timeout-suspend", "timeout-postcopy")?;
    args.exclusive("copy-storage-all", "copy-storage-inc")?;
    if args.flag("timeout-postcopy") && !args.flag("postcopy") {
        bail!("Option --postcopy is required by option --timeout-postcopy");
    }
    require(args, "persistent-xml", "persistent")?;
    let timeout: Option<u32> = args.int("timeout")?;
    let timeout = timeout.filter(|t| *t > 0);
    if timeout.is_some() && !args.flag("live") {
        bail!("migrate: Unexpected timeout for offline migration");
    }
    if timeout.is_none() && (args.flag("timeout-suspend") || args.flag("timeout-postcopy")) {
        bail!("migrate: Unexpected --timeout-* option without --timeout");
    }
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    let desturi = args.required("desturi")?;
    let dconn = Connect::open(Some(desturi)).map_err(|e| {
        anyhow::anyhow!("cannot migrate to '{desturi}': {e} (vsh migrates only to another connection URI on this host, e.g. qemu:///embed?root=DIR)")
    })?;
    let file = |opt: &str| -> Result<Option<String>> {
        match args.string(opt) {
            None => Ok(None),
            Some(f) => read_xml_file(f)
                .map(Some)
                .map_err(|_| anyhow::anyhow!("cannot read file '{f}'")),
        }
    };
    let o = MigrateOptions {
        live: args.flag("live"),
        offline: args.flag("offline"),
        p2p: args.flag("p2p"),
        direct: args.flag("direct"),
        tunnelled: args.flag("tunnelled"),
        persistent: args.flag("persistent"),
        undefine_source: args.flag("undefinesource"),
        suspend: args.flag("suspend"),
        copy_storage_all: args.flag("copy-storage-all"),
        copy_storage_inc: args.flag("copy-storage-inc"),
        abort_on_error: args.flag("abort-on-error"),
        postcopy: args.flag("postcopy"),
        auto_converge: args.flag("auto-converge"),
        compressed: args.flag("compressed"),
        dname: args.string("dname").map(String::from),
        xml: file("xml")?,
        persistent_xml: file("persistent-xml")?,
        migrate_uri: args.string("migrateuri").map(String::from),
        bandwidth: args.int("bandwidth")?,
    };
    let verbose = args.flag("verbose");
    let timeout_postcopy = args.flag("timeout-postcopy");
    let run = || {
        std::thread::scope(|s| {
            if let Some(t) = timeout {
                // virsh: virshMigrateTimeout, from the watch loop; here a thread that acts
                // once unless the migration ended first.
                let conn = dom.connect();
                let name = dom.name().to_string();
                let (tx, rx) = std::sync::mpsc::channel::<()>();
                let timer = s.spawn(move || {
                    if rx
                        .recv_timeout(std::time::Duration::from_secs(u64::from(t)))
                        .is_err()
                        && let Ok(d) = conn.lookup_domain_by_name(&name)
                    {
                        let _ = if timeout_postcopy {
                            d.migrate_start_post_copy()
                        } else {
                            d.suspend()
                        };
                    }
                });
                let r = dom.migrate(&dconn, &o).map(|_| ());
                drop(tx);
                let _ = timer.join();
                r
            } else {
                dom.migrate(&dconn, &o).map(|_| ())
            }
        })
    };
    super::jobs::watch(&dom, verbose, "Migration", run)?;
    Ok(())
}

/// `vsh migrate-setmaxdowntime DOMAIN DOWNTIME`.
fn cmd_setmaxdowntime(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    let downtime: u64 = args.int("downtime")?.unwrap_or(0);
    if downtime < 1 {
        bail!("migrate: Invalid downtime");
    }
    dom.migrate_set_max_downtime(downtime)?;
    Ok(())
}

/// `vsh migrate-getmaxdowntime DOMAIN`.
fn cmd_getmaxdowntime(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    let v = dom.migrate_max_downtime()?;
    ctx.emit(&json!({ "downtime": v }), |_| format!("{v}\n"));
    Ok(())
}

/// `vsh migrate-compcache DOMAIN [--size BYTES]`.
fn cmd_compcache(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    if let Some(size) = args.int::<u64>("size")? {
        dom.migrate_set_compression_cache(size)?;
    }
    let size = dom.migrate_compression_cache()?;
    let (n, unit) = pretty_capacity(size);
    // virsh prints it without a newline.
    ctx.emit(&json!({ "size": size }), |_| {
        format!("Compression cache: {n:.3} {unit}")
    });
    Ok(())
}

/// `vsh migrate-setspeed DOMAIN BANDWIDTH [--postcopy]`.
fn cmd_setspeed(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    let bw: u64 = args.int("bandwidth")?.unwrap_or(0);
    dom.migrate_set_max_speed(bw, args.flag("postcopy"))?;
    Ok(())
}

/// `vsh migrate-getspeed DOMAIN [--postcopy]`.
fn cmd_getspeed(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    let v = dom.migrate_max_speed(args.flag("postcopy"))?;
    ctx.emit(&json!({ "bandwidth": v }), |_| format!("{v}\n"));
    Ok(())
}

/// `vsh migrate-postcopy DOMAIN`.
fn cmd_postcopy(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    dom.migrate_start_post_copy()?;
    Ok(())
}
