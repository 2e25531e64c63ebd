//! Networking: virtual networks, worded as virsh's (libvirt: tools/virsh-network.c).

use anyhow::{Context, Result, bail};
use serde::Serialize;

use super::util::{read_xml_file, render_table};
use crate::cli::ctx::CmdCtx;
use crate::cli::edit::edit_and_define;
use crate::cli::parse::ParsedArgs;
use crate::cli::table::{Access, CmdDef, Completer, Group, Handler, OptDef};
use crate::driver::metadata::{Affect, MetadataKind};
use crate::driver::network::Network;
use crate::driver::{Connect, DriverError};
use crate::network::port::PortDef;

const NETWORK: OptDef =
    OptDef::data("network", "network name or uuid").complete(Completer::Network);
const FILE: OptDef =
    OptDef::data("file", "file containing an XML network description").complete(Completer::File);

const PORT: OptDef = OptDef::data("port", "port UUID");

/// `--live`/`--config`/`--current` of `net-desc` and `net-metadata`.
const AFFECT: [OptDef; 3] = [
    OptDef::flag("live", "modify/get running state"),
    OptDef::flag("config", "modify/get persistent configuration"),
    OptDef::flag("current", "modify/get current state configuration"),
];

const fn verb(
    name: &'static str,
    info: &'static str,
    desc: &'static str,
    opts: &'static [OptDef],
    handler: Handler,
) -> CmdDef {
    CmdDef::new(Group::Network, name, info, desc, opts, handler)
}

pub const CMDS: &[CmdDef] = &[
    verb(
        "net-autostart",
        "autostart a network",
        "Configure a network to be automatically started at boot.",
        &[NETWORK, OptDef::flag("disable", "disable autostarting")],
        cmd_autostart,
    )
    .with_access(Access::Write("virNetworkSetAutostart")),
    verb(
        "net-create",
        "create a network from an XML file",
        "Create a network.",
        &[FILE, OptDef::flag("validate", "validate the XML against the schema")],
        cmd_create,
    )
    .with_access(Access::Write("virNetworkCreateXML")),
    verb(
        "net-define",
        "define an inactive persistent virtual network or modify an existing persistent one from an XML file",
        "Define or modify a persistent virtual network.",
        &[FILE, OptDef::flag("validate", "validate the XML against the schema")],
        cmd_define,
    )
    .with_access(Access::Write("virNetworkDefineXML")),
    verb(
        "net-desc",
        "show or set network's description or title",
        "Allows setting or modifying the description or title of a network.",
        &super::metadata::desc_opts(NETWORK, AFFECT),
        cmd_desc,
    )
    .with_access(Access::Write("virNetworkSetMetadata"))
    .with_json(true),
    verb(
        "net-destroy",
        "destroy (stop) a network",
        "Forcefully stop a given network.",
        &[NETWORK],
        cmd_destroy,
    )
    .with_access(Access::Write("virNetworkDestroy")),
    verb(
        "net-dhcp-leases",
        "print lease info for a given network",
        "Print lease info for a given network",
        &[NETWORK, OptDef::string("mac", "MAC address")],
        cmd_dhcp_leases,
    )
    .with_json(true),
    verb(
        "net-dumpxml",
        "network information in XML",
        "Output the network information as an XML dump to stdout.",
        &[
            NETWORK,
            OptDef::flag("inactive", "show inactive defined XML"),
            OptDef::string("xpath", "xpath expression to filter the XML document"),
            OptDef::flag("wrap", "wrap xpath results in an common root element"),
        ],
        cmd_dumpxml,
    ),
    verb(
        "net-edit",
        "edit XML configuration for a network",
        "Edit the XML configuration for a network.",
        &[NETWORK],
        cmd_edit,
    )
    .with_access(Access::Write("virNetworkDefineXML")),
    verb(
        "net-info",
        "network information",
        "Returns basic information about the network",
        &[NETWORK],
        cmd_info,
    )
    .with_json(true),
    verb(
        "net-list",
        "list networks",
        "Returns list of networks.",
        &[
            OptDef::flag("inactive", "list inactive networks"),
            OptDef::flag("all", "list inactive & active networks"),
            OptDef::flag("persistent", "list persistent networks"),
            OptDef::flag("transient", "list transient networks"),
            OptDef::flag("autostart", "list networks with autostart enabled"),
            OptDef::flag("no-autostart", "list networks with autostart disabled"),
            OptDef::flag("uuid", "list uuid's only"),
            OptDef::flag("name", "list network names only"),
            OptDef::flag("table", "list table (default)"),
            OptDef::flag("title", "show network title"),
        ],
        cmd_list,
    )
    .with_json(true),
    verb(
        "net-metadata",
        "show or set network's custom XML metadata",
        "Shows or modifies the XML metadata of a network.",
        &super::metadata::metadata_opts(NETWORK, AFFECT),
        cmd_metadata,
    )
    .with_access(Access::Write("virNetworkSetMetadata"))
    .with_json(true),
    verb(
        "net-name",
        "convert a network UUID to network name",
        "",
        &[OptDef::data("network", "network uuid").complete(Completer::Network)],
        cmd_name,
    ),
    verb(
        "net-port-create",
        "create a network port from an XML file",
        "Create a network port.",
        &[
            NETWORK,
            OptDef::data("file", "file containing an XML network port description")
                .complete(Completer::File),
            OptDef::flag("validate", "validate the XML against the schema"),
        ],
        cmd_port_create,
    )
    .with_access(Access::Write("virNetworkPortCreateXML")),
    verb(
        "net-port-delete",
        "delete the specified network port",
        "Delete the specified network port.",
        &[NETWORK, PORT],
        cmd_port_delete,
    )
    .with_access(Access::Write("virNetworkPortDelete")),
    verb(
        "net-port-dumpxml",
        "network port information in XML",
        "Output the network port information as an XML dump to stdout.",
        &[
            NETWORK,
            PORT,
            OptDef::string("xpath", "xpath expression to filter the XML document"),
            OptDef::flag("wrap", "wrap xpath results in an common root element"),
        ],
        cmd_port_dumpxml,
    ),
    verb(
        "net-port-list",
        "list network ports",
        "Returns list of network ports.",
        &[
            NETWORK,
            OptDef::flag("uuid", "list uuid's only"),
            OptDef::flag("table", "list table (default)"),
        ],
        cmd_port_list,
    )
    .with_json(true),
    verb(
        "net-start",
        "start a (previously defined) inactive network",
        "Start a network.",
        &[NETWORK],
        cmd_start,
    )
    .with_access(Access::Write("virNetworkCreate")),
    verb(
        "net-undefine",
        "undefine a persistent network",
        "Undefine the configuration for a persistent network.",
        &[NETWORK],
        cmd_undefine,
    )
    .with_access(Access::Write("virNetworkUndefine")),
    verb(
        "net-update",
        "update parts of an existing network's configuration",
        "Update existing network configuration.",
        &[
            NETWORK,
            OptDef::data(
                "command",
                "type of update (add-first, add-last (add), delete, or modify)",
            )
            .complete(Completer::Words(&["add", "add-first", "add-last", "delete", "modify"])),
            OptDef::data("section", "which section of network configuration to update")
                .complete(Completer::Words(crate::network::update::SECTIONS)),
            OptDef::data(
                "xml",
                "name of file containing xml (or, if it starts with '<', the complete text of the xml element) to add/modify in, or to be deleted from the list of items",
            )
            .complete(Completer::File),
            OptDef::int("parent-index", "which parent object to search through"),
            OptDef::flag("config", "affect next network startup"),
            OptDef::flag("live", "affect running network"),
            OptDef::flag("current", "affect current state of network"),
        ],
        cmd_update,
    )
    .with_access(Access::Write("virNetworkUpdate")),
    verb(
        "net-uuid",
        "convert a network name to network UUID",
        "",
        &[OptDef::data("network", "network name").complete(Completer::Network)],
        cmd_uuid,
    ),
];

/// virsh's network lookup: by UUID when the argument has a UUID's length, then by name
/// (libvirt: virshCommandOptNetworkBy).
pub(super) fn lookup_by<'c>(
    conn: &'c Connect,
    arg: &str,
    uuid: bool,
    name: bool,
) -> Result<Network<'c>> {
    let mut found = Err(anyhow::anyhow!("no network"));
    if uuid && arg.len() == 36 {
        found = conn
            .lookup_network_by_uuid_string(arg)
            .map_err(anyhow::Error::from);
    }
    if found.is_err() && name {
        found = conn
            .lookup_network_by_name(arg)
            .map_err(anyhow::Error::from);
    }
    found.with_context(|| format!("failed to get network '{arg}'"))
}

fn lookup<'c>(conn: &'c Connect, args: &ParsedArgs) -> Result<Network<'c>> {
    lookup_by(conn, args.required("network")?, true, true)
}

/// `vsh net-autostart NETWORK [--disable]` (libvirt: cmdNetworkAutostart).
fn cmd_autostart(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let net = lookup(ctx.conn()?, args)?;
    let on = !args.flag("disable");
    let name = net.name().to_string();
    super::util::autostart_said(ctx, "network", "Network", &name, on, net.set_autostart(on))
}

/// `vsh net-create FILE` (libvirt: cmdNetworkCreate).
fn cmd_create(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let file = args.required("file")?;
    let xml = read_xml_file(file)?;
    if args.flag("validate") {
        crate::driver::schema::validate_xml_against(&xml, "network.rng")
            .with_context(|| format!("Failed to create network from {file}"))?;
    }
    let net = ctx
        .conn()?
        .create_network_xml(&xml)
        .with_context(|| format!("Failed to create network from {file}"))?;
    ctx.println_extra(format!("Network {} created from {file}", net.name()));
    Ok(())
}

/// `vsh net-define FILE` (libvirt: cmdNetworkDefine).
fn cmd_define(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let file = args.required("file")?;
    let xml = read_xml_file(file)?;
    if args.flag("validate") {
        crate::driver::schema::validate_xml_against(&xml, "network.rng")
            .with_context(|| format!("Failed to define network from {file}"))?;
    }
    let net = ctx
        .conn()?
        .define_network_xml(&xml)
        .with_context(|| format!("Failed to define network from {file}"))?;
    ctx.println_extra(format!("Network {} defined from {file}", net.name()));
    Ok(())
}

impl super::metadata::Described for Network<'_> {
    const NOUN: &'static str = "network";
    const READ_BEFORE_SET: bool = true;
    fn object_name(&self) -> String {
        self.name().to_string()
    }
    fn read_affect(aff: Affect) -> Affect {
        aff
    }
    fn get(
        &self,
        kind: MetadataKind,
        uri: Option<&str>,
        aff: Affect,
    ) -> Result<String, DriverError> {
        self.metadata(kind, uri, aff)
    }
    fn set(
        &mut self,
        kind: MetadataKind,
        value: Option<&str>,
        key: Option<&str>,
        uri: Option<&str>,
        aff: Affect,
    ) -> Result<(), DriverError> {
        self.set_metadata(kind, value, key, uri, aff)
    }
}

/// `vsh net-desc NETWORK [--title] [--live|--config|--current] [--edit] [NEW-DESC...]`
/// (libvirt: cmdNetworkDesc).
fn cmd_desc(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let mut net = lookup(ctx.conn()?, args)?;
    super::metadata::desc(ctx, args, &mut net)
}

/// `vsh net-metadata NETWORK URI [--key KEY] [--set XML | --remove | --edit]
/// [--live|--config|--current]` (libvirt: cmdNetworkMetadata).
fn cmd_metadata(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    args.exclusive("edit", "set")?;
    args.exclusive("remove", "set")?;
    args.exclusive("remove", "edit")?;
    let mut net = lookup(ctx.conn()?, args)?;
    super::metadata::metadata(ctx, args, &mut net)
}

/// virsh's port lookup (libvirt: virshCommandOptNetworkPort): by UUID only.
fn lookup_port(net: &Network<'_>, args: &ParsedArgs) -> Result<PortDef> {
    let arg = args.required("port")?;
    net.lookup_port_by_uuid_string(arg)
        .with_context(|| format!("failed to get network port '{arg}'"))
}

/// `vsh net-port-create NETWORK FILE [--validate]` (libvirt: cmdNetworkPortCreate).
fn cmd_port_create(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let net = lookup(ctx.conn()?, args)?;
    let file = args.required("file")?;
    let xml = read_xml_file(file)?;
    let port = (|| -> Result<PortDef> {
        if args.flag("validate") {
            crate::driver::schema::validate_xml_against(&xml, "networkport.rng")?;
        }
        Ok(net.create_port_xml(&xml, false)?)
    })()
    // virsh's words, "network" and all (libvirt: cmdNetworkPortCreate).
    .with_context(|| format!("Failed to create network from {file}"))?;
    ctx.println_extra(format!("Network port {} created from {file}", port.uuid));
    Ok(())
}

/// `vsh net-port-delete NETWORK PORT` (libvirt: cmdNetworkPortDelete).
fn cmd_port_delete(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let net = lookup(ctx.conn()?, args)?;
    let port = lookup_port(&net, args)?;
    net.delete_port(&port.uuid)
        .with_context(|| format!("Failed to delete network port {}", port.uuid))?;
    ctx.println_extra(format!("Network port {} deleted", port.uuid));
    Ok(())
}

/// `vsh net-port-dumpxml NETWORK PORT [--xpath EXPR [--wrap]]` (libvirt:
/// cmdNetworkPortDumpXML).
fn cmd_port_dumpxml(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let net = lookup(ctx.conn()?, args)?;
    let xml = lookup_port(&net, args)?.to_xml();
    match args.string("xpath") {
        Some(expr) => ctx.print(super::xpath::render(&xml, expr, args.flag("wrap"))?),
        None => ctx.print(xml),
    }
    Ok(())
}

/// `vsh net-port-list NETWORK [--uuid | --table]` (libvirt: cmdNetworkPortList): the
/// ports' UUIDs, sorted.
fn cmd_port_list(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    if args.flag("table") && args.flag("uuid") {
        bail!("Only one argument from --table and --uuid may be specified.");
    }
    let net = lookup(ctx.conn()?, args)?;
    let uuids: Vec<String> = net.list_all_ports()?.into_iter().map(|p| p.uuid).collect();
    let only_uuid = args.flag("uuid");
    ctx.emit(&uuids, |u| {
        if only_uuid {
            u.iter().map(|x| format!("{x}\n")).collect()
        } else {
            let rows: Vec<Vec<String>> = u.iter().map(|x| vec![x.clone()]).collect();
            render_table(&["UUID"], &rows)
        }
    });
    Ok(())
}

/// `vsh net-destroy NETWORK` (libvirt: cmdNetworkDestroy).
fn cmd_destroy(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let mut net = lookup(ctx.conn()?, args)?;
    let name = net.name().to_string();
    net.destroy()
        .with_context(|| format!("Failed to destroy network {name}"))?;
    ctx.println_extra(format!("Network {name} destroyed"));
    Ok(())
}

/// One row of `net-dhcp-leases --json`.
#[derive(Serialize)]
struct LeaseEntry {
    /// Seconds since the epoch (0: never).
    expiry: i64,
    mac: String,
    /// `ipv4`.
    protocol: &'static str,
    ip: String,
    prefix: u8,
    hostname: Option<String>,
    client_id: Option<String>,
}

/// `vsh net-dhcp-leases NETWORK [--mac MAC]` (libvirt: cmdNetworkDHCPLeases). The expiry is
/// shown in UTC.
fn cmd_dhcp_leases(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let net = lookup(ctx.conn()?, args)?;
    let name = args.required("network")?;
    let mut leases = net
        .dhcp_leases(args.string("mac"))
        .with_context(|| format!("Failed to get leases info for {name}"))?;
    leases.sort_by_key(|a| a.0.mac.to_lowercase());
    let entries: Vec<LeaseEntry> = leases
        .into_iter()
        .map(|(l, prefix)| LeaseEntry {
            expiry: l.expiry,
            mac: l.mac,
            protocol: "ipv4",
            ip: l.ip.to_string(),
            prefix,
            hostname: l.hostname,
            client_id: l.client_id,
        })
        .collect();
    ctx.emit(&entries, |entries| {
        let rows: Vec<Vec<String>> = entries
            .iter()
            .map(|e| {
                vec![
                    crate::timefmt::format_epoch(e.expiry).replace('T', " "),
                    e.mac.clone(),
                    e.protocol.to_string(),
                    format!("{}/{}", e.ip, e.prefix),
                    e.hostname.clone().unwrap_or_else(|| "-".into()),
                    e.client_id.clone().unwrap_or_else(|| "-".into()),
                ]
            })
            .collect();
        render_table(
            &[
                "Expiry Time",
                "MAC address",
                "Protocol",
                "IP address",
                "Hostname",
                "Client ID or DUID",
            ],
            &rows,
        )
    });
    Ok(())
}

/// `vsh net-dumpxml NETWORK [--inactive] [--xpath EXPR [--wrap]]` (libvirt: cmdNetworkDumpXML).
fn cmd_dumpxml(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let xml = lookup(ctx.conn()?, args)?.xml_desc(args.flag("inactive"));
    match args.string("xpath") {
        Some(expr) => ctx.print(super::xpath::render(&xml, expr, args.flag("wrap"))?),
        None => ctx.print(xml),
    }
    Ok(())
}

/// `vsh net-edit NETWORK` (libvirt: cmdNetworkEdit): the persistent definition (or the live
/// one of a transient network) in `$VISUAL`/`$EDITOR`, defined again when changed.
fn cmd_edit(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let conn = ctx.conn()?;
    let net = lookup(conn, args)?;
    let name = net.name().to_string();
    edit_and_define(ctx, "Network", &name, &net.xml_desc(true), |x| {
        Ok(conn.define_network_xml(x)?.name().to_string())
    })
}

/// `net-info --json`.
#[derive(Serialize)]
struct Info {
    name: String,
    uuid: String,
    active: bool,
    persistent: bool,
    autostart: bool,
    bridge: Option<String>,
}

/// `vsh net-info NETWORK` (libvirt: cmdNetworkInfo).
fn cmd_info(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let net = lookup(ctx.conn()?, args)?;
    let info = Info {
        name: net.name().to_string(),
        uuid: net.uuid_string().to_string(),
        active: net.is_active(),
        persistent: net.is_persistent(),
        autostart: net.autostart(),
        bridge: net.bridge_name().ok(),
    };
    let yn = |b: bool| if b { "yes" } else { "no" };
    ctx.emit(&info, |i| {
        let mut s = format!(
            "{:<15} {}\n{:<15} {}\n{:<15} {}\n{:<15} {}\n{:<15} {}\n",
            "Name:",
            i.name,
            "UUID:",
            i.uuid,
            "Active:",
            yn(i.active),
            "Persistent:",
            yn(i.persistent),
            "Autostart:",
            yn(i.autostart)
        );
        if let Some(b) = &i.bridge {
            s.push_str(&format!("{:<15} {b}\n", "Bridge:"));
        }
        s
    });
    Ok(())
}

/// One row of `net-list --json`.
#[derive(Serialize)]
struct ListEntry {
    name: String,
    uuid: String,
    active: bool,
    autostart: bool,
    persistent: bool,
    title: Option<String>,
}

/// `vsh net-list [--inactive | --all] [filters] [--uuid | --name | --table] [--title]`
/// (libvirt: cmdNetworkList).
fn cmd_list(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let (table, name, uuid) = (args.flag("table"), args.flag("name"), args.flag("uuid"));
    if [table, name, uuid].iter().filter(|&&b| b).count() > 1 {
        bail!("Only one argument from --table, --name and --uuid may be specified.");
    }
    let (want_active, want_inactive) = if args.flag("all") {
        (true, true)
    } else if args.flag("inactive") {
        (false, true)
    } else {
        (true, false)
    };
    let (p, t) = (args.flag("persistent"), args.flag("transient"));
    let (a, na) = (args.flag("autostart"), args.flag("no-autostart"));
    let conn = ctx.conn()?;
    let entries: Vec<ListEntry> = conn
        .list_all_networks()
        .context("Failed to list networks")?
        .iter()
        .filter(|n| {
            if n.is_active() {
                want_active
            } else {
                want_inactive
            }
        })
        .filter(|n| !(p || t) || (p && n.is_persistent()) || (t && !n.is_persistent()))
        .filter(|n| !(a || na) || (a && n.autostart()) || (na && !n.autostart()))
        .map(|n| ListEntry {
            name: n.name().to_string(),
            uuid: n.uuid_string().to_string(),
            active: n.is_active(),
            autostart: n.autostart(),
            persistent: n.is_persistent(),
            title: n.title(),
        })
        .collect();
    let show_title = args.flag("title");
    ctx.emit(&entries, |entries| {
        if uuid || name {
            return entries
                .iter()
                .map(|e| format!("{}\n", if uuid { &e.uuid } else { &e.name }))
                .collect();
        }
        let yn = |b: bool| if b { "yes" } else { "no" }.to_string();
        let rows: Vec<Vec<String>> = entries
            .iter()
            .map(|e| {
                let mut r = vec![
                    e.name.clone(),
                    if e.active { "active" } else { "inactive" }.to_string(),
                    yn(e.autostart),
                    yn(e.persistent),
                ];
                if show_title {
                    r.push(e.title.clone().unwrap_or_default());
                }
                r
            })
            .collect();
        let mut header = vec!["Name", "State", "Autostart", "Persistent"];
        if show_title {
            header.push("Title");
        }
        render_table(&header, &rows)
    });
    Ok(())
}

/// `vsh net-name UUID` (libvirt: cmdNetworkName): by UUID only.
fn cmd_name(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let net = lookup_by(ctx.conn()?, args.required("network")?, true, false)?;
    ctx.println(net.name());
    Ok(())
}

/// `vsh net-start NETWORK` (libvirt: cmdNetworkStart).
fn cmd_start(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let mut net = lookup(ctx.conn()?, args)?;
    let name = net.name().to_string();
    net.create()
        .with_context(|| format!("Failed to start network {name}"))?;
    ctx.println_extra(format!("Network {name} started"));
    Ok(())
}

/// `vsh net-undefine NETWORK` (libvirt: cmdNetworkUndefine).
fn cmd_undefine(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let mut net = lookup(ctx.conn()?, args)?;
    let name = net.name().to_string();
    net.undefine()
        .with_context(|| format!("Failed to undefine network {name}"))?;
    ctx.println_extra(format!("Network {name} has been undefined"));
    Ok(())
}

/// `vsh net-uuid NETWORK` (libvirt: cmdNetworkUuid): by name only.
fn cmd_uuid(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let net = lookup_by(ctx.conn()?, args.required("network")?, false, true)?;
    ctx.println(net.uuid_string());
    Ok(())
}

/// `vsh net-update NETWORK COMMAND SECTION XML [--parent-index N] [--config] [--live]
/// [--current]` (libvirt: cmdNetworkUpdate).
fn cmd_update(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    use crate::network::update::{SECTIONS, UpdateCommand};
    let current = args.flag("current");
    let (live, config) = (args.flag("live"), args.flag("config"));
    if current && (live || config) {
        let other = if live { "live" } else { "config" };
        bail!("Options --current and --{other} are mutually exclusive");
    }
    let command_str = args.required("command")?;
    let Some(command) = UpdateCommand::from_name(command_str) else {
        bail!("unrecognized command name '{command_str}'");
    };
    let section = args.required("section")?;
    if !SECTIONS.contains(&section) {
        bail!("unrecognized section name '{section}'");
    }
    let parent = args.int::<i64>("parent-index")?;
    let xml_arg = args.required("xml")?;
    let xml = if xml_arg.starts_with('<') {
        xml_arg.to_string()
    } else {
        read_xml_file(xml_arg)?
    };
    let mut net = lookup(ctx.conn()?, args)?;
    let name = net.name().to_string();
    let parent = parent.and_then(|p| usize::try_from(p).ok());
    let (l, c) = net
        .update(command, section, parent, &xml, live, config)
        .with_context(|| format!("Failed to update network {name}"))?;
    ctx.println_extra(match (l, c) {
        (true, true) => format!("Updated network {name} persistent config and live state"),
        (true, false) => format!("Updated network {name} live state"),
        _ => format!("Updated network {name} persistent config"),
    });
    Ok(())
}
