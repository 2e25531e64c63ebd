//! Interface: physical host interfaces, worded as virsh's (libvirt: tools/virsh-interface.c),
//! over a driver that, like libvirt's udev backend, only reads them: the verbs that change
//! interfaces fail as virsh fails them on that backend.

use anyhow::{Context, Result, bail};
use serde::Serialize;

use super::util::{read_xml_file, render_table};
use crate::cli::ctx::CmdCtx;
use crate::cli::edit::edit_and_define;
use crate::cli::parse::ParsedArgs;
use crate::cli::table::{Access, CmdDef, Completer, Group, Handler, OptDef};
use crate::driver::Connect;
use crate::driver::iface::{IfaceFilter, Interface};

const IFACE: OptDef =
    OptDef::data("interface", "interface name or MAC address").complete(Completer::Interface);
const FILE: OptDef =
    OptDef::data("file", "file containing an XML interface description").complete(Completer::File);

const fn verb(
    name: &'static str,
    info: &'static str,
    desc: &'static str,
    opts: &'static [OptDef],
    handler: Handler,
) -> CmdDef {
    CmdDef::new(Group::Interface, name, info, desc, opts, handler)
}

pub const CMDS: &[CmdDef] = &[
    verb(
        "iface-begin",
        "create a snapshot of current interfaces settings, which can be later committed (iface-commit) or restored (iface-rollback)",
        "Create a restore point for interfaces settings",
        &[],
        cmd_begin,
    )
    .with_access(Access::Write("virInterfaceChangeBegin")),
    verb(
        "iface-bridge",
        "create a bridge device and attach an existing network device to it",
        "bridge an existing network device",
        &[
            OptDef::data("interface", "existing interface name").complete(Completer::Interface),
            OptDef::data("bridge", "new bridge device name"),
            OptDef::flag("no-stp", "do not enable STP for this bridge"),
            OptDef::int(
                "delay",
                "number of seconds to squelch traffic on newly connected ports",
            )
            .positional(),
            OptDef::flag("no-start", "don't start the bridge immediately"),
        ],
        cmd_bridge,
    )
    .with_access(Access::Write("virInterfaceDefineXML")),
    verb(
        "iface-commit",
        "commit changes made since iface-begin and free restore point",
        "commit changes and free restore point",
        &[],
        cmd_commit,
    )
    .with_access(Access::Write("virInterfaceChangeCommit")),
    verb(
        "iface-define",
        "define an inactive persistent physical host interface or modify an existing persistent one from an XML file",
        "Define or modify a persistent physical host interface.",
        &[FILE, OptDef::flag("validate", "validate the XML against the schema")],
        cmd_define,
    )
    .with_access(Access::Write("virInterfaceDefineXML")),
    verb(
        "iface-destroy",
        "destroy a physical host interface (disable it / \"if-down\")",
        "forcefully stop a physical host interface.",
        &[IFACE],
        cmd_destroy,
    )
    .with_access(Access::Write("virInterfaceDestroy")),
    verb(
        "iface-dumpxml",
        "interface information in XML",
        "Output the physical host interface information as an XML dump to stdout.",
        &[
            IFACE,
            OptDef::flag("inactive", "show inactive defined XML"),
            OptDef::string("xpath", "xpath expression to filter the XML document"),
            OptDef::flag("wrap", "wrap xpath results in an common root element"),
        ],
        cmd_dumpxml,
    ),
    verb(
        "iface-edit",
        "edit XML configuration for a physical host interface",
        "Edit the XML configuration for a physical host interface.",
        &[IFACE],
        cmd_edit,
    )
    .with_access(Access::Write("virInterfaceDefineXML")),
    verb(
        "iface-list",
        "list physical host interfaces",
        "Returns list of physical host interfaces.",
        &[
            OptDef::flag("inactive", "list inactive interfaces"),
            OptDef::flag("all", "list inactive & active interfaces"),
        ],
        cmd_list,
    )
    .with_json(true),
    verb(
        "iface-mac",
        "convert an interface name to interface MAC address",
        "",
        &[OptDef::data("interface", "interface name").complete(Completer::Interface)],
        cmd_mac,
    ),
    verb(
        "iface-name",
        "convert an interface MAC address to interface name",
        "",
        &[OptDef::data("interface", "interface mac")],
        cmd_name,
    ),
    verb(
        "iface-rollback",
        "rollback to previous saved configuration created via iface-begin",
        "rollback to previous restore point",
        &[],
        cmd_rollback,
    )
    .with_access(Access::Write("virInterfaceChangeRollback")),
    verb(
        "iface-start",
        "start a physical host interface (enable it / \"if-up\")",
        "start a physical host interface.",
        &[IFACE],
        cmd_start,
    )
    .with_access(Access::Write("virInterfaceCreate")),
    verb(
        "iface-unbridge",
        "undefine a bridge device after detaching its device(s)",
        "unbridge a network device",
        &[
            OptDef::data("bridge", "current bridge device name").complete(Completer::Interface),
            OptDef::flag(
                "no-start",
                "don't start the detached interface immediately (not recommended)",
            ),
        ],
        cmd_unbridge,
    )
    .with_access(Access::Write("virInterfaceDestroy")),
    verb(
        "iface-undefine",
        "undefine a physical host interface (remove it from configuration)",
        "undefine an interface.",
        &[IFACE],
        cmd_undefine,
    )
    .with_access(Access::Write("virInterfaceUndefine")),
];

/// How virsh looks an interface up (libvirt: virshCommandOptInterfaceBy): by MAC when the
/// argument parses as one, else by name.
#[derive(Clone, Copy, PartialEq, Eq)]
enum By {
    Name,
    Mac,
    Either,
}

fn lookup<'c>(conn: &'c Connect, arg: &str, by: By) -> Result<Interface<'c>> {
    let is_mac = crate::nwfilter::is_mac(arg);
    let found = match (is_mac, by) {
        (false, By::Name | By::Either) => conn.lookup_interface_by_name(arg).map_err(Into::into),
        (true, By::Mac | By::Either) => {
            conn.lookup_interface_by_mac_string(arg).map_err(Into::into)
        }
        _ => Err(anyhow::anyhow!("")),
    };
    found.with_context(|| format!("failed to get interface '{arg}'"))
}

/// One row of `iface-list --json`.
#[derive(Serialize)]
struct Entry {
    name: String,
    active: bool,
    mac: String,
}

/// `vsh iface-list [--inactive | --all]` (libvirt: cmdInterfaceList).
fn cmd_list(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let (inactive, all) = (args.flag("inactive"), args.flag("all"));
    if inactive && all {
        bail!("Options --all and --inactive are mutually exclusive");
    }
    let filter = if all {
        IfaceFilter::All
    } else if inactive {
        IfaceFilter::Inactive
    } else {
        IfaceFilter::Active
    };
    let conn = ctx.conn()?;
    let list = conn
        .list_all_interfaces(filter)
        .context("Failed to list interfaces")?;
    let mut entries: Vec<Entry> = list
        .iter()
        .map(|i| {
            Ok(Entry {
                name: i.name().to_string(),
                active: i.is_active()?,
                mac: i.mac_string().to_string(),
            })
        })
        .collect::<Result<_>>()?;
    // virsh sorts without regard to case (libvirt: virshInterfaceSorter).
    entries.sort_by_key(|e| e.name.to_ascii_lowercase());
    ctx.emit(&entries, |entries| {
        let rows: Vec<Vec<String>> = entries
            .iter()
            .map(|e| {
                vec![
                    e.name.clone(),
                    if e.active { "active" } else { "inactive" }.to_string(),
                    e.mac.clone(),
                ]
            })
            .collect();
        render_table(&["Name", "State", "MAC Address"], &rows)
    });
    Ok(())
}

/// `vsh iface-name MAC` (libvirt: cmdInterfaceName).
fn cmd_name(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let i = lookup(ctx.conn()?, args.required("interface")?, By::Mac)?;
    ctx.println(i.name());
    Ok(())
}

/// `vsh iface-mac NAME` (libvirt: cmdInterfaceMAC).
fn cmd_mac(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let i = lookup(ctx.conn()?, args.required("interface")?, By::Name)?;
    ctx.println(i.mac_string());
    Ok(())
}

/// `vsh iface-dumpxml IFACE [--inactive] [--xpath E [--wrap]]` (libvirt:
/// cmdInterfaceDumpXML).
fn cmd_dumpxml(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let xml = lookup(ctx.conn()?, args.required("interface")?, By::Either)?.xml_desc()?;
    match args.string("xpath") {
        Some(expr) => ctx.print(super::xpath::render(&xml, expr, args.flag("wrap"))?),
        None => ctx.print(xml),
    }
    Ok(())
}

/// `vsh iface-define FILE [--validate]` (libvirt: cmdInterfaceDefine).
fn cmd_define(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let file = args.required("file")?;
    let xml = read_xml_file(file)?;
    let i = ctx
        .conn()?
        .define_interface_xml(&xml)
        .with_context(|| format!("Failed to define interface from {file}"))?;
    ctx.println_extra(format!("Interface {} defined from {file}", i.name()));
    Ok(())
}

/// `vsh iface-undefine IFACE` (libvirt: cmdInterfaceUndefine).
fn cmd_undefine(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let arg = args.required("interface")?;
    let i = lookup(ctx.conn()?, arg, By::Either)?;
    i.undefine()
        .with_context(|| format!("Failed to undefine interface {arg}"))?;
    ctx.println_extra(format!("Interface {arg} undefined"));
    Ok(())
}

/// `vsh iface-start IFACE` (libvirt: cmdInterfaceStart).
fn cmd_start(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let arg = args.required("interface")?;
    let i = lookup(ctx.conn()?, arg, By::Either)?;
    i.create()
        .with_context(|| format!("Failed to start interface {arg}"))?;
    ctx.println_extra(format!("Interface {arg} started"));
    Ok(())
}

/// `vsh iface-destroy IFACE` (libvirt: cmdInterfaceDestroy).
fn cmd_destroy(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let arg = args.required("interface")?;
    let i = lookup(ctx.conn()?, arg, By::Either)?;
    i.destroy()
        .with_context(|| format!("Failed to destroy interface {arg}"))?;
    ctx.println_extra(format!("Interface {arg} destroyed"));
    Ok(())
}

/// `vsh iface-edit IFACE` (libvirt: cmdInterfaceEdit): the live XML in the editor; a
/// change is defined, which this driver cannot do.
fn cmd_edit(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let conn = ctx.conn()?;
    let i = lookup(conn, args.required("interface")?, By::Either)?;
    let name = i.name().to_string();
    edit_and_define(ctx, "Interface", &name, &i.xml_desc()?, |x| {
        Ok(conn.define_interface_xml(x)?.name().to_string())
    })
}

/// `vsh iface-begin` (libvirt: cmdInterfaceBegin).
fn cmd_begin(ctx: &mut CmdCtx, _: &ParsedArgs) -> Result<()> {
    ctx.conn()?
        .interface_change_begin()
        .context("Failed to begin network config change transaction")?;
    ctx.println_extra("Network config change transaction started");
    Ok(())
}

/// `vsh iface-commit` (libvirt: cmdInterfaceCommit).
fn cmd_commit(ctx: &mut CmdCtx, _: &ParsedArgs) -> Result<()> {
    ctx.conn()?
        .interface_change_commit()
        .context("Failed to commit network config change transaction")?;
    ctx.println_extra("Network config change transaction committed");
    Ok(())
}

/// `vsh iface-rollback` (libvirt: cmdInterfaceRollback).
fn cmd_rollback(ctx: &mut CmdCtx, _: &ParsedArgs) -> Result<()> {
    ctx.conn()?
        .interface_change_rollback()
        .context("Failed to rollback network config change transaction")?;
    ctx.println_extra("Network config change transaction rolled back");
    Ok(())
}

/// `vsh iface-bridge IFACE BRIDGE [--no-stp] [--delay N] [--no-start]` (libvirt:
/// cmdInterfaceBridge): virsh's checks, then the define this driver cannot do.
fn cmd_bridge(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let conn = ctx.conn()?;
    let if_name = args.required("interface")?;
    let i = lookup(conn, if_name, By::Name)?;
    let br_name = args.required("bridge")?;
    if conn.lookup_interface_by_name(br_name).is_ok() {
        bail!("Network device {br_name} already exists");
    }
    args.int::<u32>("delay")?;
    let def = crate::interface::IfaceDef::parse(&i.xml_desc()?)
        .map_err(|_| anyhow::anyhow!("Failed to parse configuration of {if_name}"))?;
    if def.iface_type() == crate::interface::IfaceType::Bridge {
        bail!("Existing device {if_name} is already a bridge");
    }
    conn.define_interface_xml("")
        .with_context(|| format!("Failed to define new bridge interface {br_name}"))?;
    Ok(())
}

/// `vsh iface-unbridge BRIDGE [--no-start]` (libvirt: cmdInterfaceUnbridge): virsh's
/// checks, then the destroy this driver cannot do.
fn cmd_unbridge(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let br_name = args.required("bridge")?;
    let br = lookup(ctx.conn()?, br_name, By::Name)?;
    let def = crate::interface::IfaceDef::parse(&br.xml_desc()?)
        .map_err(|_| anyhow::anyhow!("Failed to parse configuration of {br_name}"))?;
    let crate::interface::IfaceKind::Bridge { ports, .. } = &def.kind else {
        bail!("Device {br_name} is not a bridge");
    };
    match ports.len() {
        0 => bail!("No interface attached to bridge"),
        1 => {}
        _ => bail!("Multiple interfaces attached to bridge"),
    }
    br.destroy()
        .with_context(|| format!("Failed to destroy bridge interface {br_name}"))?;
    Ok(())
}
