//! Save and restore: `save`, `restore`, `managedsave*`, `save-image-*` (libvirt:
//! tools/virsh-domain.c cmdSave, cmdRestore, cmdManagedSave*, cmdSaveImage*).

use std::path::Path;

use anyhow::{Context, Result, bail};

use super::util::{lookup_domain, read_xml_file};
use crate::cli::ctx::CmdCtx;
use crate::cli::parse::ParsedArgs;
use crate::cli::table::{Access, CmdDef, Completer, DomainFilter, Group, OptDef};
use crate::driver::save::RestoreState;

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

const FILE: OptDef = OptDef::data("file", "the state to restore").complete(Completer::File);
const RUNNING: OptDef = OptDef::flag("running", "restore domain into running state");
const PAUSED: OptDef = OptDef::flag("paused", "restore domain into paused state");
const BYPASS: OptDef = OptDef::flag("bypass-cache", "avoid file system cache when saving");

pub const CMDS: &[CmdDef] = &[
    verb(
        "save",
        "save a domain state to a file",
        "Save the RAM state of a running domain.",
        &[
            OptDef::domain("domain name, id or uuid", DomainFilter::Active),
            OptDef::data("file", "where to save the data").complete(Completer::File),
            BYPASS,
            OptDef::string("xml", "filename containing updated XML for the target"),
            OptDef::flag("running", "set domain to be running on restore"),
            OptDef::flag("paused", "set domain to be paused on restore"),
            OptDef::flag("verbose", "display the progress of save"),
        ],
        cmd_save,
        Access::Write("virDomainSaveFlags"),
    ),
    verb(
        "restore",
        "restore a domain from a saved state in a file",
        "Restore a domain.",
        &[
            FILE,
            BYPASS,
            OptDef::string("xml", "filename containing updated XML for the target"),
            RUNNING,
            PAUSED,
            OptDef::flag(
                "reset-nvram",
                "re-initialize NVRAM from its pristine template",
            ),
            // Ours: virsh 9.0's restore has no progress line.
            OptDef::flag("verbose", "display the progress of restore"),
        ],
        cmd_restore,
        Access::Write("virDomainRestoreFlags"),
    ),
    verb(
        "managedsave",
        "managed save of a domain state",
        "Save and destroy a running domain, so it can be restarted from the same state at a later time.",
        &[
            OptDef::domain("domain name, id or uuid", DomainFilter::Active),
            BYPASS,
            OptDef::flag("running", "set domain to be running on next start"),
            OptDef::flag("paused", "set domain to be paused on next start"),
            OptDef::flag("verbose", "display the progress of save"),
        ],
        cmd_managedsave,
        Access::Write("virDomainManagedSave"),
    ),
    verb(
        "managedsave-remove",
        "Remove managed save of a domain",
        "Remove an existing managed save state file from a domain",
        &[OptDef::domain(
            "domain name, id or uuid",
            DomainFilter::Inactive,
        )],
        cmd_managedsave_remove,
        Access::Write("virDomainManagedSaveRemove"),
    ),
    verb(
        "save-image-dumpxml",
        "saved state domain information in XML",
        "Dump XML of domain information for a saved state file to stdout.",
        &[
            OptDef::data("file", "saved state file to read").complete(Completer::File),
            OptDef::flag(
                "security-info",
                "include security sensitive information in XML dump",
            ),
        ],
        cmd_save_image_dumpxml,
        Access::Read,
    ),
    verb(
        "save-image-define",
        "redefine the XML for a domain's saved state file",
        "Replace the domain XML associated with a saved state file",
        &[
            OptDef::data("file", "saved state file to modify").complete(Completer::File),
            OptDef::data("xml", "filename containing updated XML for the target")
                .complete(Completer::File),
            RUNNING,
            PAUSED,
        ],
        cmd_save_image_define,
        Access::Write("virDomainSaveImageDefineXML"),
    ),
    verb(
        "save-image-edit",
        "edit XML for a domain's saved state file",
        "Edit the domain XML associated with a saved state file",
        &[
            OptDef::data("file", "saved state file to edit").complete(Completer::File),
            RUNNING,
            PAUSED,
        ],
        cmd_save_image_edit,
        Access::Write("virDomainSaveImageDefineXML"),
    ),
    verb(
        "managedsave-dumpxml",
        "Domain information of managed save state file in XML",
        "Dump XML of domain information for a managed save state file to stdout.",
        &[
            OptDef::domain("domain name, id or uuid", DomainFilter::Inactive),
            OptDef::flag(
                "security-info",
                "include security sensitive information in XML dump",
            ),
            OptDef::string("xpath", "xpath expression to filter the XML document"),
            OptDef::flag("wrap", "wrap xpath results in an common root element"),
        ],
        cmd_managedsave_dumpxml,
        Access::Read,
    ),
    verb(
        "managedsave-define",
        "redefine the XML for a domain's managed save state file",
        "Replace the domain XML associated with a managed save state file",
        &[
            OptDef::domain("domain name, id or uuid", DomainFilter::Inactive),
            OptDef::data("xml", "filename containing updated XML for the target")
                .complete(Completer::File),
            OptDef::flag("running", "set domain to be running on start"),
            OptDef::flag("paused", "set domain to be paused on start"),
        ],
        cmd_managedsave_define,
        Access::Write("virDomainManagedSaveDefineXML"),
    ),
    verb(
        "managedsave-edit",
        "edit XML for a domain's managed save state file",
        "Edit the domain XML associated with the managed save state file",
        &[
            OptDef::domain("domain name, id or uuid", DomainFilter::Inactive),
            OptDef::flag("running", "set domain to be running on start"),
            OptDef::flag("paused", "set domain to be paused on start"),
        ],
        cmd_managedsave_edit,
        Access::Write("virDomainManagedSaveDefineXML"),
    ),
];

/// `--running`/`--paused`, exclusive as in virsh.
fn restore_state(args: &ParsedArgs) -> Result<RestoreState> {
    args.exclusive("running", "paused")?;
    Ok(if args.flag("running") {
        RestoreState::Running
    } else if args.flag("paused") {
        RestoreState::Paused
    } else {
        RestoreState::AsSaved
    })
}

/// An `--xml` replacement is not supported yet: refused rather than ignored.
fn no_xml(args: &ParsedArgs) -> Result<()> {
    if args.string("xml").is_some() {
        bail!("this function is not supported by the connection driver: --xml");
    }
    Ok(())
}

/// `vsh save DOMAIN FILE [--running|--paused]`.
fn cmd_save(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let state = restore_state(args)?;
    no_xml(args)?;
    let file = args.required("file")?;
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    super::jobs::watch(&dom, args.flag("verbose"), "Save", || {
        dom.save(Path::new(file), state)
    })
    .with_context(|| format!("Failed to save domain '{}' to {file}", dom.name()))?;
    ctx.println_extra(format!("\nDomain '{}' saved to {file}", dom.name()));
    Ok(())
}

/// `vsh restore FILE [--running|--paused] [--verbose]`: with `--verbose`, the progress
/// line `save --verbose` prints, as `Restore: [ 45 %]`.
fn cmd_restore(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let state = restore_state(args)?;
    no_xml(args)?;
    let file = args.required("file")?;
    let verbose = args.flag("verbose");
    let conn = ctx.conn()?;
    // The guest's name is the image's; an image that cannot be read fails in the restore.
    let name = match verbose {
        true => conn
            .save_image_xml(Path::new(file))
            .ok()
            .and_then(|x| crate::domain::parse_unprepared(&x).ok())
            .map(|d| d.name),
        false => None,
    };
    let restore = || conn.restore(Path::new(file), state);
    match &name {
        Some(n) => super::jobs::watch_guest(conn, n, true, "Restore", restore),
        None => restore(),
    }
    .with_context(|| format!("Failed to restore domain from {file}"))?;
    if verbose {
        ctx.println_extra(format!("\nDomain restored from {file}"));
    } else {
        ctx.println_extra(format!("Domain restored from {file}"));
    }
    Ok(())
}

/// `vsh managedsave DOMAIN [--running|--paused]`.
fn cmd_managedsave(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let state = restore_state(args)?;
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    super::jobs::watch(&dom, args.flag("verbose"), "Managedsave", || {
        dom.managed_save(state)
    })
    .with_context(|| format!("Failed to save domain '{}' state", dom.name()))?;
    ctx.println_extra(format!("\nDomain '{}' state saved by libvirt", dom.name()));
    Ok(())
}

/// `vsh managedsave-remove DOMAIN`.
fn cmd_managedsave_remove(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    if !dom.has_managed_save_image()? {
        ctx.println_extra(format!(
            "Domain '{}' has no manage save image; removal skipped",
            dom.name()
        ));
        return Ok(());
    }
    dom.managed_save_remove().with_context(|| {
        format!(
            "Failed to remove managed save image for domain '{}'",
            dom.name()
        )
    })?;
    ctx.println_extra(format!(
        "Removed managedsave image for domain '{}'",
        dom.name()
    ));
    Ok(())
}

/// `vsh save-image-dumpxml FILE`.
fn cmd_save_image_dumpxml(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let xml = ctx
        .conn()?
        .save_image_xml(Path::new(args.required("file")?))?;
    ctx.print(xml);
    Ok(())
}

/// `vsh save-image-define FILE XML [--running|--paused]`.
fn cmd_save_image_define(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let state = restore_state(args)?;
    let file = args.required("file")?;
    let xml = read_xml_file(args.required("xml")?)?;
    ctx.conn()?
        .save_image_define_xml(Path::new(file), &xml, state)
        .with_context(|| format!("Failed to update {file}"))?;
    ctx.println_extra(format!("State file {file} updated."));
    Ok(())
}

/// `vsh save-image-edit FILE [--running|--paused]` (libvirt: cmdSaveImageEdit).
fn cmd_save_image_edit(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let state = restore_state(args)?;
    let file = args.required("file")?;
    let conn = ctx.conn()?;
    let doc = conn.save_image_xml(Path::new(file))?;
    let edited = crate::cli::edit::edit_text(&doc)?;
    if edited == doc {
        ctx.println_extra(format!("Saved image {file} XML configuration not changed."));
        return Ok(());
    }
    conn.save_image_define_xml(Path::new(file), &edited, state)
        .with_context(|| format!("Failed to update {file}"))?;
    ctx.println_extra(format!("State file {file} edited."));
    Ok(())
}

/// `vsh managedsave-dumpxml DOMAIN [--security-info] [--xpath EXPR [--wrap]]`.
fn cmd_managedsave_dumpxml(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    let xml = dom.managed_save_xml_desc(args.flag("security-info"))?;
    match args.string("xpath") {
        Some(expr) => ctx.print(super::xpath::render(&xml, expr, args.flag("wrap"))?),
        None => ctx.print(xml),
    }
    Ok(())
}

/// `vsh managedsave-define DOMAIN XML [--running|--paused]`.
fn cmd_managedsave_define(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let state = restore_state(args)?;
    let xml = read_xml_file(args.required("xml")?)?;
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    dom.managed_save_define_xml(&xml, state)
        .with_context(|| format!("Failed to update {} XML configuration", dom.name()))?;
    ctx.println_extra(format!(
        "Managed save state file of domain '{}' updated.",
        dom.name()
    ));
    Ok(())
}

/// `vsh managedsave-edit DOMAIN [--running|--paused]` (libvirt: cmdManagedSaveEdit).
fn cmd_managedsave_edit(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let state = restore_state(args)?;
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    let doc = dom.managed_save_xml_desc(true)?;
    let edited = crate::cli::edit::edit_text(&doc)?;
    if edited == doc {
        ctx.println_extra(format!(
            "Managed save image of domain '{}' XML configuration not changed.",
            dom.name()
        ));
        return Ok(());
    }
    dom.managed_save_define_xml(&edited, state)
        .with_context(|| format!("Failed to update {} XML configuration", dom.name()))?;
    ctx.println_extra(format!(
        "Managed save image of Domain '{}' XML configuration edited.",
        dom.name()
    ));
    Ok(())
}
