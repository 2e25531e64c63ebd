//! Node Device: the host's devices as libvirt's node device driver lists them, worded as
//! virsh's (libvirt: tools/virsh-nodedev.c).

use anyhow::{Context, Result, anyhow, bail};
use serde::Serialize;

use super::util::read_xml_file;
use crate::cli::ctx::CmdCtx;
use crate::cli::parse::ParsedArgs;
use crate::cli::table::{Access, CmdDef, Completer, Group, OptDef};
use crate::driver::Connect;
use crate::driver::nodedev::{NodeDevice, NodeDeviceEvent, NodeDeviceEventKind, list_flags};
use crate::nodedev::CapType;

const DEVICE: OptDef = OptDef::data("device", "device name or wwn pair in 'wwnn,wwpn' format")
    .complete(Completer::NodeDevice);
const DEVICE_KEY: OptDef = OptDef::data("device", "device key").complete(Completer::NodeDevice);
const FILE: OptDef = OptDef::data("file", "file containing an XML description of the device")
    .complete(Completer::File);
const VALIDATE: OptDef = OptDef::flag("validate", "validate the XML against the schema");

const fn verb(
    name: &'static str,
    info: &'static str,
    desc: &'static str,
    opts: &'static [OptDef],
    handler: crate::cli::table::Handler,
    access: Access,
) -> CmdDef {
    CmdDef::new(Group::NodeDevice, name, info, desc, opts, handler).with_access(access)
}

pub const CMDS: &[CmdDef] = &[
    verb(
        "nodedev-create",
        "create a device defined by an XML file on the node",
        "Create a device on the node.  Note that this command creates devices on the physical host that can then be assigned to a virtual machine.",
        &[FILE, VALIDATE],
        cmd_create,
        Access::Write("virNodeDeviceCreateXML"),
    ),
    verb(
        "nodedev-destroy",
        "destroy (stop) a device on the node",
        "Destroy a device on the node.  Note that this command destroys devices on the physical host",
        &[OptDef::alias("name", "device"), DEVICE],
        cmd_destroy,
        Access::Write("virNodeDeviceDestroy"),
    ),
    verb(
        "nodedev-detach",
        "detach node device from its device driver",
        "Detach node device from its device driver before assigning to a domain.",
        &[
            DEVICE_KEY,
            OptDef::string(
                "driver",
                "pci device assignment backend driver (e.g. 'vfio' or 'xen')",
            ),
        ],
        cmd_detach,
        Access::Write("virNodeDeviceDetachFlags"),
    ),
    CmdDef {
        alias_of: Some("nodedev-detach"),
        ..verb(
            "nodedev-dettach",
            "",
            "",
            &[],
            cmd_detach,
            Access::Write("virNodeDeviceDetachFlags"),
        )
    },
    verb(
        "nodedev-dumpxml",
        "node device details in XML",
        "Output the node device details as an XML dump to stdout.",
        &[
            DEVICE,
            OptDef::string("xpath", "xpath expression to filter the XML document"),
            OptDef::flag("wrap", "wrap xpath results in an common root element"),
        ],
        cmd_dumpxml,
        Access::Read,
    ),
    CmdDef {
        json: true,
        ..verb(
            "nodedev-list",
            "enumerate devices on this host",
            "",
            &[
                OptDef::flag("tree", "list devices in a tree"),
                OptDef::string("cap", "capability names, separated by comma").complete(
                    Completer::Words(&[
                        "system",
                        "pci",
                        "usb_device",
                        "usb",
                        "net",
                        "scsi_host",
                        "scsi_target",
                        "scsi",
                        "storage",
                        "fc_host",
                        "vports",
                        "scsi_generic",
                        "drm",
                        "mdev_types",
                        "mdev",
                        "ccw",
                        "css",
                        "vdpa",
                        "ap_card",
                        "ap_queue",
                        "ap_matrix",
                        "vpd",
                    ]),
                ),
                OptDef::flag("inactive", "list inactive devices"),
                OptDef::flag("all", "list inactive & active devices"),
            ],
            cmd_list,
            Access::Read,
        )
    },
    verb(
        "nodedev-reattach",
        "reattach node device to its device driver",
        "Reattach node device to its device driver once released by the domain.",
        &[DEVICE_KEY],
        cmd_reattach,
        Access::Write("virNodeDeviceReAttach"),
    ),
    verb(
        "nodedev-reset",
        "reset node device",
        "Reset node device before or after assigning to a domain.",
        &[DEVICE_KEY],
        cmd_reset,
        Access::Write("virNodeDeviceReset"),
    ),
    verb(
        "nodedev-define",
        "Define or modify a device by an xml file on a node",
        "Defines or modifies a persistent device on the node that can be assigned to a domain. The device must be started before it can be assigned to a domain.",
        &[FILE, VALIDATE],
        cmd_define,
        Access::Write("virNodeDeviceDefineXML"),
    ),
    verb(
        "nodedev-undefine",
        "Undefine an inactive node device",
        "Undefines the configuration for an inactive node device",
        &[DEVICE],
        cmd_undefine,
        Access::Write("virNodeDeviceUndefine"),
    ),
    verb(
        "nodedev-start",
        "Start an inactive node device",
        "Starts an inactive node device that was previously defined",
        &[OptDef::data("device", "device name").complete(Completer::NodeDevice)],
        cmd_start,
        Access::Write("virNodeDeviceCreate"),
    ),
    verb(
        "nodedev-autostart",
        "autostart a defined node device",
        "Configure a node device to be automatically started at boot.",
        &[DEVICE, OptDef::flag("disable", "disable autostarting")],
        cmd_autostart,
        Access::Write("virNodeDeviceSetAutostart"),
    ),
    CmdDef::new(
        Group::NodeDevice,
        "nodedev-event",
        "Node Device Events",
        "List event types, or wait for node device events to occur",
        &super::event_loop::object_event_opts(
            OptDef::string("device", "filter by node device name")
                .positional()
                .complete(Completer::NodeDevice),
            EVENT_NAMES,
        ),
        cmd_event,
    )
    .with_json(true),
    CmdDef {
        json: true,
        ..verb(
            "nodedev-info",
            "node device information",
            "Returns basic information about the node device",
            &[DEVICE],
            cmd_info,
            Access::Read,
        )
    },
];

/// The device named by `value`: a name, or an FC HBA's `wwnn,wwpn` (libvirt:
/// vshFindNodeDevice).
fn find<'c>(conn: &'c Connect, value: &str) -> Result<NodeDevice<'c>> {
    let found = if value.contains(',') {
        let parts: Vec<&str> = value.split(',').collect();
        if parts.len() != 2 {
            bail!("Malformed device value '{value}'");
        }
        for w in &parts {
            // libvirt: virValidateWWN
            let hex = w.strip_prefix("0x").unwrap_or(w);
            if hex.len() != 16 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                bail!("Malformed wwn: {w}");
            }
        }
        conn.node_device_lookup_scsi_host_by_wwn(parts[0], parts[1])
    } else {
        conn.node_device_lookup_by_name(value)
    };
    found.with_context(|| format!("Could not find matching device '{value}'"))
}

/// The device for the detach/reattach/reset/start verbs, which take a name only (libvirt:
/// cmdNodeDeviceDetach's lookup).
fn find_key<'c>(conn: &'c Connect, name: &str) -> Result<NodeDevice<'c>> {
    conn.node_device_lookup_by_name(name)
        .with_context(|| format!("Could not find matching device '{name}'"))
}

/// `vsh nodedev-create FILE [--validate]` (libvirt: cmdNodeDeviceCreate).
fn cmd_create(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let file = args.required("file")?;
    let xml = read_xml_file(file)?;
    let fail = || format!("Failed to create node device from {file}");
    if args.flag("validate") {
        crate::driver::schema::validate_xml_against(&xml, "nodedev.rng").with_context(fail)?;
    }
    let dev = ctx
        .conn()?
        .node_device_create_xml(&xml, 0)
        .with_context(fail)?;
    ctx.println_extra(format!("Node device {} created from {file}", dev.name()));
    Ok(())
}

/// `vsh nodedev-define FILE [--validate]` (libvirt: cmdNodeDeviceDefine).
fn cmd_define(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let file = args.required("file")?;
    let xml = read_xml_file(file)?;
    let fail = || format!("Failed to define node device from '{file}'");
    if args.flag("validate") {
        crate::driver::schema::validate_xml_against(&xml, "nodedev.rng").with_context(fail)?;
    }
    let dev = ctx
        .conn()?
        .node_device_define_xml(&xml, 0)
        .with_context(fail)?;
    ctx.println_extra(format!(
        "Node device '{}' defined from '{file}'",
        dev.name()
    ));
    Ok(())
}

/// `vsh nodedev-destroy DEVICE` (libvirt: cmdNodeDeviceDestroy).
fn cmd_destroy(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let value = args.required("device")?;
    let dev = find(ctx.conn()?, value)?;
    dev.destroy()
        .with_context(|| format!("Failed to destroy node device '{value}'"))?;
    ctx.println_extra(format!("Destroyed node device '{value}'"));
    Ok(())
}

/// `vsh nodedev-undefine DEVICE` (libvirt: cmdNodeDeviceUndefine).
fn cmd_undefine(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let value = args.required("device")?;
    let dev = find(ctx.conn()?, value)?;
    dev.undefine()
        .with_context(|| format!("Failed to undefine node device '{value}'"))?;
    ctx.println_extra(format!("Undefined node device '{value}'"));
    Ok(())
}

/// `vsh nodedev-start DEVICE` (libvirt: cmdNodeDeviceStart).
fn cmd_start(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let name = args.required("device")?;
    let dev = find_key(ctx.conn()?, name)?;
    dev.create(0)
        .with_context(|| format!("Failed to start device {name}"))?;
    ctx.println_extra(format!("Device {name} started"));
    Ok(())
}

/// `vsh nodedev-autostart DEVICE [--disable]` (libvirt: cmdNodeDeviceAutostart).
fn cmd_autostart(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let name = args.required("device")?;
    let on = !args.flag("disable");
    let dev = find(ctx.conn()?, name)?;
    super::util::autostart_said(ctx, "device", "Device", name, on, dev.set_autostart(on))
}

/// `vsh nodedev-detach DEVICE [--driver NAME]` (libvirt: cmdNodeDeviceDetach).
fn cmd_detach(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let name = args.required("device")?;
    let dev = find_key(ctx.conn()?, name)?;
    dev.detach_flags(args.string("driver"), 0)
        .with_context(|| format!("Failed to detach device {name}"))?;
    ctx.println_extra(format!("Device {name} detached"));
    Ok(())
}

/// `vsh nodedev-reattach DEVICE` (libvirt: cmdNodeDeviceReAttach).
fn cmd_reattach(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let name = args.required("device")?;
    let dev = find_key(ctx.conn()?, name)?;
    dev.reattach()
        .with_context(|| format!("Failed to re-attach device {name}"))?;
    ctx.println_extra(format!("Device {name} re-attached"));
    Ok(())
}

/// `vsh nodedev-reset DEVICE` (libvirt: cmdNodeDeviceReset).
fn cmd_reset(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let name = args.required("device")?;
    let dev = find_key(ctx.conn()?, name)?;
    dev.reset()
        .with_context(|| format!("Failed to reset device {name}"))?;
    ctx.println_extra(format!("Device {name} reset"));
    Ok(())
}

/// `vsh nodedev-dumpxml DEVICE [--xpath EXPR [--wrap]]` (libvirt: cmdNodeDeviceDumpXML).
fn cmd_dumpxml(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let value = args.required("device")?;
    let xml = find(ctx.conn()?, value)?.xml_desc(0)?;
    match args.string("xpath") {
        Some(expr) => ctx.print(super::xpath::render(&xml, expr, args.flag("wrap"))?),
        None => ctx.print(xml),
    }
    Ok(())
}

/// One row of `nodedev-list --json`.
#[derive(Serialize)]
struct DeviceEntry {
    name: String,
    /// Null for `computer`.
    parent: Option<String>,
    /// Capability types, nested ones included.
    capabilities: Vec<String>,
}

/// `vsh nodedev-list [--tree] [--cap LIST] [--inactive | --all]` (libvirt: cmdNodeListDevices).
fn cmd_list(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let (tree, inactive, all) = (args.flag("tree"), args.flag("inactive"), args.flag("all"));
    let cap = args.string("cap");
    if all && inactive {
        bail!("Option --all is incompatible with --inactive");
    }
    if tree && (cap.is_some() || inactive) {
        bail!("Option --tree is incompatible with --cap, --inactive, --persistent and --transient");
    }
    let mut flags = 0;
    for c in cap.iter().flat_map(|c| c.split(',')) {
        let t = CapType::from_name(c.trim()).ok_or_else(|| anyhow!("Invalid capability type"))?;
        flags |= list_flags::cap(t);
    }
    if inactive || all {
        flags |= list_flags::INACTIVE;
    }
    if !inactive {
        flags |= list_flags::ACTIVE;
    }
    let entries: Vec<DeviceEntry> = ctx
        .conn()?
        .list_all_node_devices(flags)
        .context("Failed to list node devices")?
        .iter()
        .map(|d| DeviceEntry {
            name: d.name().to_string(),
            parent: d.parent().map(str::to_string),
            capabilities: d.list_caps(),
        })
        .collect();
    ctx.emit(&entries, |entries| {
        if tree {
            // virsh forces the root's parent to none; every other device hangs off its parent.
            super::snapshot::forest(
                entries.iter().map(|e| {
                    let parent = if e.name == "computer" {
                        None
                    } else {
                        e.parent.clone()
                    };
                    (e.name.clone(), parent)
                }),
                None,
            )
        } else {
            entries.iter().map(|e| format!("{}\n", e.name)).collect()
        }
    });
    Ok(())
}

/// `vsh nodedev-info DEVICE --json`.
#[derive(Serialize)]
struct DeviceInfo {
    name: String,
    parent: Option<String>,
    active: bool,
    persistent: bool,
    autostart: bool,
}

/// `vsh nodedev-info DEVICE` (libvirt: cmdNodeDeviceInfo).
fn cmd_info(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let value = args.required("device")?;
    let dev = find(ctx.conn()?, value)?;
    let info = DeviceInfo {
        name: dev.name().to_string(),
        parent: dev.parent().map(str::to_string),
        active: dev.is_active(),
        persistent: dev.is_persistent(),
        autostart: dev.autostart(),
    };
    ctx.emit(&info, |i| {
        let yn = |b: bool| if b { "yes" } else { "no" };
        [
            ("Name:", i.name.clone()),
            ("Parent:", i.parent.clone().unwrap_or_default()),
            ("Active:", yn(i.active).into()),
            ("Persistent:", yn(i.persistent).into()),
            ("Autostart:", yn(i.autostart).into()),
        ]
        .iter()
        .map(|(k, v)| format!("{k:<15} {v}\n"))
        .collect()
    });
    Ok(())
}

/// The event ids virsh knows, in its order.
const EVENT_NAMES: &[&str] = &["lifecycle", "update"];

/// virsh's line for an event, without the `--timestamp` prefix (libvirt:
/// vshEventLifecyclePrint, vshEventGenericPrint in tools/virsh-nodedev.c).
fn event_line(e: &NodeDeviceEvent) -> String {
    match e.kind {
        NodeDeviceEventKind::Created => {
            format!("event 'lifecycle' for node device {}: Created", e.device)
        }
        NodeDeviceEventKind::Deleted => {
            format!("event 'lifecycle' for node device {}: Deleted", e.device)
        }
        NodeDeviceEventKind::Update => format!("event 'update' for node device {}", e.device),
    }
}

/// `vsh nodedev-event {[DEVICE] --event TYPE [--loop] [--timeout S] [--timestamp] | --list}`
/// (libvirt: cmdNodeDeviceEvent).
fn cmd_event(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let Some(event) = super::event_loop::chosen_event(ctx, args, EVENT_NAMES)? else {
        return Ok(());
    };
    let timeout = super::event_loop::timeout(args)?;
    let conn = ctx.conn()?;
    let only = match args.string("device") {
        Some(d) => Some(
            conn.node_device_lookup_by_name(d)
                .with_context(|| format!("Could not find matching device '{d}'"))?
                .name()
                .to_string(),
        ),
        None => None,
    };
    let mut events = conn.node_device_events();
    let want_update = event == "update";
    super::event_loop::run_object_events(
        ctx,
        args,
        timeout,
        |slice| events.next_timeout(slice),
        |e| {
            (e.kind == NodeDeviceEventKind::Update) == want_update
                && only.as_ref().is_none_or(|d| *d == e.device)
        },
        event_line,
    )
}
