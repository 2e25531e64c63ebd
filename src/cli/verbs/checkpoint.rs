//! Checkpoint verbs (libvirt: tools/virsh-checkpoint.c): create, list, inspect, edit and
//! delete domain checkpoints, with virsh's output lines and table layout.

use anyhow::{Context, Result, bail};

use super::snapshot::{forest, local_time, split_commas};
use super::util::DOMAIN;
use super::util::{lookup_domain, print_table, read_xml_file};
use crate::cli::ctx::CmdCtx;
use crate::cli::parse::ParsedArgs;
use crate::cli::table::{Access, CmdDef, Completer, Group, OptDef};
use crate::driver::checkpoint::{self as chk, DomainCheckpoint};
use crate::driver::domain::Domain;
use crate::xmlfmt::{escape_attr, escape_text};

const fn verb(
    name: &'static str,
    info: &'static str,
    desc: &'static str,
    opts: &'static [OptDef],
    handler: crate::cli::table::Handler,
    access: Access,
) -> CmdDef {
    CmdDef::new(Group::Checkpoint, name, info, desc, opts, handler).with_access(access)
}

const NAME_ARG: OptDef = OptDef::data("checkpointname", "checkpoint name");
const QUIESCE: OptDef = OptDef::flag("quiesce", "quiesce guest's file systems");

pub const CMDS: &[CmdDef] = &[
    verb(
        "checkpoint-create",
        "Create a checkpoint from XML",
        "Create a checkpoint from XML for use in future incremental backups",
        &[
            DOMAIN,
            OptDef::string("xmlfile", "domain checkpoint XML")
                .positional()
                .complete(Completer::File),
            OptDef::flag("redefine", "redefine metadata for existing checkpoint"),
            OptDef::flag("redefine-validate", "validate the redefined checkpoint"),
            QUIESCE,
        ],
        cmd_create,
        Access::Write("virDomainCheckpointCreateXML"),
    ),
    verb(
        "checkpoint-create-as",
        "Create a checkpoint from a set of args",
        "Create a checkpoint from arguments for use in future incremental backups",
        &[
            DOMAIN,
            OptDef::string("name", "name of checkpoint").positional(),
            OptDef::string("description", "description of checkpoint").positional(),
            OptDef::flag("print-xml", "print XML document rather than create"),
            QUIESCE,
            OptDef::argv(
                "diskspec",
                "disk attributes: disk[,checkpoint=type][,bitmap=name]",
            ),
        ],
        cmd_create_as,
        Access::Write("virDomainCheckpointCreateXML"),
    ),
    verb(
        "checkpoint-delete",
        "Delete a domain checkpoint",
        "Checkpoint Delete",
        &[
            DOMAIN,
            NAME_ARG,
            OptDef::flag("children", "delete checkpoint and all children"),
            OptDef::flag("children-only", "delete children but not checkpoint"),
            OptDef::flag(
                "metadata",
                "delete only libvirt metadata, leaving checkpoint contents behind",
            ),
        ],
        cmd_delete,
        Access::Write("virDomainCheckpointDelete"),
    ),
    verb(
        "checkpoint-dumpxml",
        "Dump XML for a domain checkpoint",
        "Checkpoint Dump XML",
        &[
            DOMAIN,
            NAME_ARG,
            OptDef::flag(
                "security-info",
                "include security sensitive information in XML dump",
            ),
            OptDef::flag("no-domain", "exclude <domain> from XML"),
            OptDef::flag("size", "include backup size estimate in XML dump"),
            OptDef::string("xpath", "xpath expression to filter the XML document"),
            OptDef::flag("wrap", "wrap xpath results in an common root element"),
        ],
        cmd_dumpxml,
        Access::Read,
    ),
    verb(
        "checkpoint-edit",
        "edit XML for a checkpoint",
        "Edit the domain checkpoint XML for a named checkpoint",
        &[DOMAIN, NAME_ARG],
        cmd_edit,
        Access::Write("virDomainCheckpointCreateXML"),
    ),
    verb(
        "checkpoint-info",
        "checkpoint information",
        "Returns basic information about a checkpoint.",
        &[DOMAIN, NAME_ARG],
        cmd_info,
        Access::Read,
    ),
    verb(
        "checkpoint-list",
        "List checkpoints for a domain",
        "Checkpoint List",
        &[
            DOMAIN,
            OptDef::flag("parent", "add a column showing parent checkpoint"),
            OptDef::flag("roots", "list only checkpoints without parents"),
            OptDef::flag("leaves", "list only checkpoints without children"),
            OptDef::flag(
                "no-leaves",
                "list only checkpoints that are not leaves (with children)",
            ),
            OptDef::flag("tree", "list checkpoints in a tree"),
            OptDef::string("from", "limit list to children of given checkpoint"),
            OptDef::flag("descendants", "with --from, list all descendants"),
            OptDef::flag("name", "list checkpoint names only"),
            OptDef::flag("topological", "sort list topologically rather than by name"),
        ],
        cmd_list,
        Access::Read,
    ),
    verb(
        "checkpoint-parent",
        "Get the name of the parent of a checkpoint",
        "Extract the checkpoint's parent, if any",
        &[
            DOMAIN,
            OptDef::data("checkpointname", "find parent of checkpoint name"),
        ],
        cmd_parent,
        Access::Read,
    ),
];

/// virsh's vshPrintExtra without a newline of its own (the shell ends the output).
fn print_extra(ctx: &CmdCtx, s: String) {
    if !ctx.globals.quiet {
        ctx.print(s);
    }
}

/// libvirt: virshCheckpointCreate.
fn create(ctx: &CmdCtx, dom: &Domain<'_>, xml: &str, flags: u32, from: Option<&str>) -> Result<()> {
    let c = dom.checkpoint_create_xml(xml, flags)?;
    match from {
        Some(f) => print_extra(
            ctx,
            format!("Domain checkpoint {} created from '{f}'", c.name()),
        ),
        None => print_extra(ctx, format!("Domain checkpoint {} created", c.name())),
    }
    Ok(())
}

/// `vsh checkpoint-create DOMAIN [XMLFILE] [--redefine [--redefine-validate]]`.
fn cmd_create(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    if args.flag("redefine-validate") && !args.flag("redefine") {
        bail!("Option --redefine is required by option --redefine-validate");
    }
    let mut flags = 0;
    for (opt, f) in [
        ("redefine", chk::CREATE_REDEFINE),
        ("redefine-validate", chk::CREATE_REDEFINE_VALIDATE),
        ("quiesce", chk::CREATE_QUIESCE),
    ] {
        if args.flag(opt) {
            flags |= f;
        }
    }
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    let from = args.string("xmlfile");
    let xml = match from {
        Some(f) => read_xml_file(f)?,
        None => "<domaincheckpoint/>".to_string(),
    };
    create(ctx, &dom, &xml, flags, from)
}

/// `--diskspec DISK[,checkpoint=TYPE][,bitmap=NAME]` (libvirt: virshParseCheckpointDiskspec).
fn diskspec(s: &str) -> Result<String> {
    let parts = split_commas(s);
    let Some((name, rest)) = parts.split_first().filter(|_| !s.is_empty()) else {
        bail!("unable to parse diskspec: {s}");
    };
    let (mut checkpoint, mut bitmap) = (None, None);
    for p in rest {
        if checkpoint.is_none() && p.starts_with("checkpoint=") {
            checkpoint = Some(&p["checkpoint=".len()..]);
        } else if bitmap.is_none() && p.starts_with("bitmap=") {
            bitmap = Some(&p["bitmap=".len()..]);
        } else {
            bail!("unable to parse diskspec: {s}");
        }
    }
    let mut out = format!("    <disk name='{}'", escape_attr(name));
    if let Some(v) = checkpoint {
        out.push_str(&format!(" checkpoint='{v}'"));
    }
    if let Some(v) = bitmap {
        out.push_str(&format!(" bitmap='{v}'"));
    }
    out.push_str("/>\n");
    Ok(out)
}

/// `vsh checkpoint-create-as DOMAIN [NAME] [DESCRIPTION] [--print-xml] [--diskspec ...]`.
fn cmd_create_as(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let flags = if args.flag("quiesce") {
        chk::CREATE_QUIESCE
    } else {
        0
    };
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    let mut xml = "<domaincheckpoint>\n".to_string();
    if let Some(n) = args.string("name") {
        xml.push_str(&format!("  <name>{}</name>\n", escape_text(n)));
    }
    if let Some(d) = args.string("description") {
        xml.push_str(&format!(
            "  <description>{}</description>\n",
            escape_text(d)
        ));
    }
    let specs = args.all("diskspec");
    if !specs.is_empty() {
        xml.push_str("  <disks>\n");
        for s in specs {
            xml.push_str(&diskspec(s)?);
        }
        xml.push_str("  </disks>\n");
    }
    xml.push_str("</domaincheckpoint>\n");
    if args.flag("print-xml") {
        ctx.println(xml);
        return Ok(());
    }
    create(ctx, &dom, &xml, flags, None)
}

fn lookup<'c>(args: &ParsedArgs, arg: &str, dom: &Domain<'c>) -> Result<DomainCheckpoint<'c>> {
    Ok(dom.checkpoint_lookup_by_name(args.required(arg)?, 0)?)
}

/// `vsh checkpoint-delete DOMAIN CHECKPOINT [--children | --children-only] [--metadata]`.
fn cmd_delete(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    let c = lookup(args, "checkpointname", &dom)?;
    let mut flags = 0;
    for (opt, f) in [
        ("children", chk::DELETE_CHILDREN),
        ("children-only", chk::DELETE_CHILDREN_ONLY),
        ("metadata", chk::DELETE_METADATA_ONLY),
    ] {
        if args.flag(opt) {
            flags |= f;
        }
    }
    c.delete(flags)
        .with_context(|| format!("Failed to delete checkpoint {}", c.name()))?;
    if flags & chk::DELETE_CHILDREN_ONLY != 0 {
        ctx.println_extra(format!("Domain checkpoint {} children deleted", c.name()));
    } else {
        ctx.println_extra(format!("Domain checkpoint {} deleted", c.name()));
    }
    Ok(())
}

/// `vsh checkpoint-dumpxml DOMAIN CHECKPOINT [--no-domain] [--size] [--security-info]`.
fn cmd_dumpxml(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let mut flags = 0;
    for (opt, f) in [
        ("security-info", chk::XML_SECURE),
        ("no-domain", chk::XML_NO_DOMAIN),
        ("size", chk::XML_SIZE),
    ] {
        if args.flag(opt) {
            flags |= f;
        }
    }
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    let xml = lookup(args, "checkpointname", &dom)?.xml_desc(flags)?;
    match args.string("xpath") {
        Some(expr) => ctx.print(super::xpath::render(&xml, expr, args.flag("wrap"))?),
        None => ctx.print(xml),
    }
    Ok(())
}

/// `vsh checkpoint-edit DOMAIN CHECKPOINT` (libvirt: cmdCheckpointEdit): a changed name is
/// refused after the new one's metadata is cleaned up.
fn cmd_edit(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    let c = lookup(args, "checkpointname", &dom)?;
    let name = c.name().to_string();
    let res = (|| -> Result<()> {
        let doc = c.xml_desc(chk::XML_SECURE)?;
        let edited = crate::cli::edit::edit_text(&doc)?;
        if edited == doc {
            ctx.println_extra(format!("Checkpoint {name} XML configuration not changed."));
            return Ok(());
        }
        let new = dom.checkpoint_create_xml(&edited, chk::CREATE_REDEFINE)?;
        if new.name() == name {
            ctx.println_extra(format!("Checkpoint {name} edited."));
            return Ok(());
        }
        new.delete(chk::DELETE_METADATA_ONLY)
            .with_context(|| format!("Failed to clean up {}", new.name()))?;
        bail!("Cannot rename checkpoint {name} to {}", new.name());
    })();
    res.with_context(|| format!("Failed to update {name}"))
}

/// `vsh checkpoint-info DOMAIN CHECKPOINT`.
fn cmd_info(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    let c = lookup(args, "checkpointname", &dom)?;
    let def = c.def()?;
    let row = |k: &str, v: &str| format!("{:<15} {v}\n", format!("{k}:"));
    let mut out = String::new();
    out.push_str(&row("Name", c.name()));
    out.push_str(&row("Domain", dom.name()));
    out.push_str(&row("Parent", def.parent.as_deref().unwrap_or("-")));
    out.push_str(&row("Children", &c.list_all_children(0)?.len().to_string()));
    out.push_str(&row(
        "Descendants",
        &c.list_all_children(chk::LIST_DESCENDANTS)?
            .len()
            .to_string(),
    ));
    ctx.print(out);
    Ok(())
}

/// `vsh checkpoint-list DOMAIN [--parent | --roots | --tree | --name] ...` (libvirt:
/// cmdCheckpointList, virshCheckpointListCollect).
fn cmd_list(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let (tree_mode, name_mode) = (args.flag("tree"), args.flag("name"));
    for (a, b) in [
        ("tree", "name"),
        ("parent", "roots"),
        ("parent", "tree"),
        ("roots", "tree"),
        ("roots", "from"),
    ] {
        args.exclusive(a, b)?;
    }
    let mut flags = 0;
    for (opt, f) in [
        ("leaves", chk::LIST_LEAVES),
        ("no-leaves", chk::LIST_NO_LEAVES),
    ] {
        if args.flag(opt) {
            if tree_mode {
                bail!("--{opt} and --tree are mutually exclusive");
            }
            flags |= f;
        }
    }
    if args.flag("topological") {
        flags |= chk::LIST_TOPOLOGICAL;
    }
    if args.flag("roots") {
        flags |= chk::LIST_ROOTS;
    }
    let from = args.string("from");
    if args.flag("descendants") {
        if from.is_none() {
            bail!("--descendants requires --from");
        }
        flags |= chk::LIST_DESCENDANTS;
    }
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    let start = match from {
        Some(f) => Some(dom.checkpoint_lookup_by_name(f, 0)?),
        None => None,
    };
    let mut chks = match &start {
        Some(s) => {
            let mut v = s.list_all_children(flags)?;
            if tree_mode {
                v.push(s.clone());
            }
            v
        }
        None => dom.list_all_checkpoints(flags)?,
    };
    let mut rows: Vec<_> = chks
        .drain(..)
        .map(|c| c.def())
        .collect::<Result<Vec<_>, _>>()?;
    if flags & chk::LIST_TOPOLOGICAL == 0 {
        // virsh: virshChkSorter, case-insensitive.
        rows.sort_by(|a, b| {
            a.name
                .to_lowercase()
                .cmp(&b.name.to_lowercase())
                .then_with(|| a.name.cmp(&b.name))
        });
    }
    if tree_mode {
        let start_name = start.as_ref().map(|s| s.name().to_string());
        let items = rows.iter().map(|d| (d.name.clone(), d.parent.clone()));
        ctx.print(forest(items, start_name.as_deref()));
        return Ok(());
    }
    let parent = args.flag("parent");
    if name_mode {
        let out: String = rows
            .iter()
            .map(|d| match d.parent.as_deref().filter(|_| parent) {
                Some(p) => format!("{}\t{p}\n", d.name),
                None => format!("{}\n", d.name),
            })
            .collect();
        ctx.print(out);
        return Ok(());
    }
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|d| {
            let mut r = vec![d.name.clone(), local_time(d.creation_time)];
            if parent {
                r.push(d.parent.clone().unwrap_or_default());
            }
            r
        })
        .collect();
    let header: &[&str] = if parent {
        &["Name", "Creation Time", "Parent"]
    } else {
        &["Name", "Creation Time"]
    };
    print_table(ctx, header, &table);
    Ok(())
}

/// `vsh checkpoint-parent DOMAIN CHECKPOINT`.
fn cmd_parent(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    let c = lookup(args, "checkpointname", &dom)?;
    match c.def()?.parent {
        Some(p) => ctx.print(p),
        None => bail!("checkpoint '{}' has no parent", c.name()),
    }
    Ok(())
}
