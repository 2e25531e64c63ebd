//! Backup verbs (libvirt: tools/virsh-backup.c): start a push or pull backup of a running
//! guest's disks and show the running one's XML.

use anyhow::Result;

use super::util::{DOMAIN_ACTIVE, lookup_domain, read_xml_file};
use crate::cli::ctx::CmdCtx;
use crate::cli::parse::ParsedArgs;
use crate::cli::table::{Access, CmdDef, Completer, Group, OptDef};
use crate::driver::backup::BACKUP_BEGIN_REUSE_EXTERNAL;

pub const CMDS: &[CmdDef] = &[
    CmdDef::new(
        Group::DomainManagement,
        "backup-begin",
        "Start a disk backup of a live domain",
        "Use XML to start a full or incremental disk backup of a live domain, optionally creating a checkpoint",
        &[
            DOMAIN_ACTIVE,
            OptDef::string("backupxml", "domain backup XML")
                .positional()
                .complete(Completer::File),
            OptDef::string("checkpointxml", "domain checkpoint XML").complete(Completer::File),
            OptDef::flag("reuse-external", "reuse files provided by caller"),
        ],
        cmd_begin,
    )
    .with_access(Access::Write("virDomainBackupBegin")),
    CmdDef::new(
        Group::DomainManagement,
        "backup-dumpxml",
        "Dump XML for an ongoing domain block backup job",
        "Backup Dump XML",
        &[
            DOMAIN_ACTIVE,
            OptDef::string("xpath", "xpath expression to filter the XML document"),
            OptDef::flag("wrap", "wrap xpath results in an common root element"),
        ],
        cmd_dumpxml,
    )
    .with_access(Access::Read),
];

/// `vsh backup-begin DOMAIN [BACKUPXML] [--checkpointxml FILE] [--reuse-external]`.
fn cmd_begin(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let flags = if args.flag("reuse-external") {
        BACKUP_BEGIN_REUSE_EXTERNAL
    } else {
        0
    };
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    let backup = match args.string("backupxml") {
        Some(f) => read_xml_file(f)?,
        None => "<domainbackup/>".to_string(),
    };
    let checkpoint = match args.string("checkpointxml") {
        Some(f) => Some(read_xml_file(f)?),
        None => None,
    };
    dom.backup_begin(&backup, checkpoint.as_deref(), flags)?;
    ctx.println("Backup started");
    Ok(())
}

/// `vsh backup-dumpxml DOMAIN [--xpath EXPR [--wrap]]`.
fn cmd_dumpxml(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    let xml = dom.backup_xml_desc(0)?;
    match args.string("xpath") {
        Some(expr) => ctx.print(super::xpath::render(&xml, expr, args.flag("wrap"))?),
        None => ctx.print(xml),
    }
    Ok(())
}
