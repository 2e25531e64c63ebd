//! Network Filter: filters and their bindings, worded as virsh's (libvirt:
//! tools/virsh-nwfilter.c). Filters are stored and validated, not enforced (see
//! [`crate::driver::nwfilter`]).

use anyhow::{Context, Result};
use serde::Serialize;

use super::util::{read_xml_file, render_table};
use crate::cli::ctx::CmdCtx;
use crate::cli::edit::edit_and_define;
use crate::cli::parse::ParsedArgs;
use crate::cli::table::{Access, CmdDef, Completer, Group, Handler, OptDef};
use crate::driver::Connect;
use crate::driver::nwfilter::{NwFilter, NwFilterBinding};

const NWFILTER: OptDef =
    OptDef::data("nwfilter", "network filter name or uuid").complete(Completer::NwFilter);
const VALIDATE: OptDef = OptDef::flag("validate", "validate the XML against the schema");
const XPATH: OptDef = OptDef::string("xpath", "xpath expression to filter the XML document");
const WRAP: OptDef = OptDef::flag("wrap", "wrap xpath results in an common root element");

const fn verb(
    name: &'static str,
    info: &'static str,
    desc: &'static str,
    opts: &'static [OptDef],
    handler: Handler,
) -> CmdDef {
    CmdDef::new(Group::NwFilter, name, info, desc, opts, handler)
}

pub const CMDS: &[CmdDef] = &[
    verb(
        "nwfilter-define",
        "define or update a network filter from an XML file",
        "Define a new network filter or update an existing one.",
        &[
            OptDef::data("file", "file containing an XML network filter description")
                .complete(Completer::File),
            VALIDATE,
        ],
        cmd_define,
    )
    .with_access(Access::Write("virNWFilterDefineXML")),
    verb(
        "nwfilter-undefine",
        "undefine a network filter",
        "Undefine a given network filter.",
        &[NWFILTER],
        cmd_undefine,
    )
    .with_access(Access::Write("virNWFilterUndefine")),
    verb(
        "nwfilter-dumpxml",
        "network filter information in XML",
        "Output the network filter information as an XML dump to stdout.",
        &[NWFILTER, XPATH, WRAP],
        cmd_dumpxml,
    ),
    verb(
        "nwfilter-list",
        "list network filters",
        "Returns list of network filters.",
        &[],
        cmd_list,
    )
    .with_json(true),
    verb(
        "nwfilter-edit",
        "edit XML configuration for a network filter",
        "Edit the XML configuration for a network filter.",
        &[NWFILTER],
        cmd_edit,
    )
    .with_access(Access::Write("virNWFilterDefineXML")),
    verb(
        "nwfilter-binding-create",
        "create a network filter binding from an XML file",
        "Create a new network filter binding.",
        &[
            OptDef::data(
                "file",
                "file containing an XML network filter binding description",
            )
            .complete(Completer::File),
            VALIDATE,
        ],
        cmd_binding_create,
    )
    .with_access(Access::Write("virNWFilterBindingCreateXML")),
    verb(
        "nwfilter-binding-delete",
        "delete a network filter binding",
        "Delete a given network filter binding.",
        &[OptDef::data("binding", "network filter binding port dev")
            .complete(Completer::NwFilterBinding)],
        cmd_binding_delete,
    )
    .with_access(Access::Write("virNWFilterBindingDelete")),
    verb(
        "nwfilter-binding-dumpxml",
        "network filter information in XML",
        "Output the network filter information as an XML dump to stdout.",
        &[
            OptDef::data("binding", "network filter binding portdev")
                .complete(Completer::NwFilterBinding),
            XPATH,
            WRAP,
        ],
        cmd_binding_dumpxml,
    ),
    verb(
        "nwfilter-binding-list",
        "list network filter bindings",
        "Returns list of network filter bindings.",
        &[],
        cmd_binding_list,
    )
    .with_json(true),
];

/// virsh's filter lookup: by UUID when the argument has a UUID's length, then by name
/// (libvirt: virshCommandOptNWFilterBy).
fn lookup<'c>(conn: &'c Connect, arg: &str) -> Result<NwFilter<'c>> {
    let mut found = Err(anyhow::anyhow!("no nwfilter"));
    if arg.len() == 36 {
        found = conn
            .lookup_nwfilter_by_uuid_string(arg)
            .map_err(anyhow::Error::from);
    }
    if found.is_err() {
        found = conn
            .lookup_nwfilter_by_name(arg)
            .map_err(anyhow::Error::from);
    }
    found.with_context(|| format!("failed to get nwfilter '{arg}'"))
}

fn lookup_binding<'c>(conn: &'c Connect, arg: &str) -> Result<NwFilterBinding<'c>> {
    conn.lookup_nwfilter_binding_by_port_dev(arg)
        .with_context(|| format!("failed to get nwfilter binding '{arg}'"))
}

fn print_xml(ctx: &CmdCtx, args: &ParsedArgs, xml: &str) -> Result<()> {
    match args.string("xpath") {
        Some(expr) => ctx.print(super::xpath::render(xml, expr, args.flag("wrap"))?),
        None => ctx.print(xml),
    }
    Ok(())
}

/// `vsh nwfilter-define FILE [--validate]` (libvirt: cmdNWFilterDefine).
fn cmd_define(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let file = args.required("file")?;
    let xml = read_xml_file(file)?;
    let f = ctx
        .conn()?
        .define_nwfilter_xml(&xml, args.flag("validate"))
        .with_context(|| format!("Failed to define network filter from {file}"))?;
    ctx.println_extra(format!("Network filter {} defined from {file}", f.name()));
    Ok(())
}

/// `vsh nwfilter-undefine FILTER` (libvirt: cmdNWFilterUndefine).
fn cmd_undefine(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let arg = args.required("nwfilter")?;
    lookup(ctx.conn()?, arg)?
        .undefine()
        .with_context(|| format!("Failed to undefine network filter {arg}"))?;
    ctx.println_extra(format!("Network filter {arg} undefined"));
    Ok(())
}

/// `vsh nwfilter-dumpxml FILTER [--xpath E [--wrap]]` (libvirt: cmdNWFilterDumpXML).
fn cmd_dumpxml(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let xml = lookup(ctx.conn()?, args.required("nwfilter")?)?.xml_desc();
    print_xml(ctx, args, &xml)
}

/// One row of `nwfilter-list --json`.
#[derive(Serialize)]
struct FilterEntry {
    uuid: String,
    name: String,
}

/// `vsh nwfilter-list` (libvirt: cmdNWFilterList), by name.
fn cmd_list(ctx: &mut CmdCtx, _: &ParsedArgs) -> Result<()> {
    let mut entries: Vec<FilterEntry> = ctx
        .conn()?
        .list_all_nwfilters()
        .context("Failed to list network filters")?
        .iter()
        .map(|f| FilterEntry {
            uuid: f.uuid_string().to_string(),
            name: f.name().to_string(),
        })
        .collect();
    // virsh sorts without regard to case (libvirt: virshNWFilterSorter).
    entries.sort_by_key(|e| e.name.to_ascii_lowercase());
    ctx.emit(&entries, |entries| {
        let rows: Vec<Vec<String>> = entries
            .iter()
            .map(|e| vec![e.uuid.clone(), e.name.clone()])
            .collect();
        render_table(&["UUID", "Name"], &rows)
    });
    Ok(())
}

/// `vsh nwfilter-edit FILTER` (libvirt: cmdNWFilterEdit).
fn cmd_edit(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let conn = ctx.conn()?;
    let f = lookup(conn, args.required("nwfilter")?)?;
    let name = f.name().to_string();
    edit_and_define(ctx, "Network filter", &name, &f.xml_desc(), |x| {
        Ok(conn.define_nwfilter_xml(x, false)?.name().to_string())
    })
}

/// `vsh nwfilter-binding-create FILE [--validate]` (libvirt: cmdNWFilterBindingCreate).
fn cmd_binding_create(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let file = args.required("file")?;
    let xml = read_xml_file(file)?;
    let b = ctx
        .conn()?
        .create_nwfilter_binding_xml(&xml, args.flag("validate"))
        .with_context(|| format!("Failed to create network filter from {file}"))?;
    ctx.println_extra(format!(
        "Network filter binding on {} created from {file}",
        b.portdev()
    ));
    Ok(())
}

/// `vsh nwfilter-binding-delete PORTDEV` (libvirt: cmdNWFilterBindingDelete).
fn cmd_binding_delete(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let arg = args.required("binding")?;
    lookup_binding(ctx.conn()?, arg)?
        .delete()
        .with_context(|| format!("Failed to delete network filter binding on {arg}"))?;
    ctx.println_extra(format!("Network filter binding on {arg} deleted"));
    Ok(())
}

/// `vsh nwfilter-binding-dumpxml PORTDEV [--xpath E [--wrap]]` (libvirt:
/// cmdNWFilterBindingDumpXML).
fn cmd_binding_dumpxml(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let xml = lookup_binding(ctx.conn()?, args.required("binding")?)?.xml_desc();
    print_xml(ctx, args, &xml)
}

/// One row of `nwfilter-binding-list --json`.
#[derive(Serialize)]
struct BindingEntry {
    portdev: String,
    filter: String,
}

/// `vsh nwfilter-binding-list` (libvirt: cmdNWFilterBindingList), by port dev.
fn cmd_binding_list(ctx: &mut CmdCtx, _: &ParsedArgs) -> Result<()> {
    let mut entries: Vec<BindingEntry> = ctx
        .conn()?
        .list_all_nwfilter_bindings()
        .context("Failed to list network filter bindings")?
        .iter()
        .map(|b| BindingEntry {
            portdev: b.portdev().to_string(),
            filter: b.filter_name().to_string(),
        })
        .collect();
    // virsh sorts without regard to case (libvirt: virshNWFilterBindingSorter).
    entries.sort_by_key(|e| e.portdev.to_ascii_lowercase());
    ctx.emit(&entries, |entries| {
        let rows: Vec<Vec<String>> = entries
            .iter()
            .map(|e| vec![e.portdev.clone(), e.filter.clone()])
            .collect();
        render_table(&["Port Dev", "Filter"], &rows)
    });
    Ok(())
}
