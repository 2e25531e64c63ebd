//! Verbs that change a guest's devices, live or in its config (libvirt: tools/virsh-domain.c,
//! cmdAttachDevice ... cmdChangeMedia). Memory, vCPUs and block sizes are in `resources.rs`.

use anyhow::{Context, Result, bail};

use super::util::DOMAIN;
use super::util::{lookup_domain, read_xml_file};
use crate::cli::ctx::CmdCtx;
use crate::cli::parse::ParsedArgs;
use crate::cli::table::{Access, CmdDef, Completer, Group, OptDef};
use crate::domain::FormatFlags;
use crate::domain::xml::{XmlNode, parse_document};
use crate::driver::domain::Domain;
use crate::driver::hotplug::{AFFECT_CONFIG, AFFECT_LIVE, DEVICE_MODIFY_FORCE};

const PERSISTENT: OptDef = OptDef::flag("persistent", "make live change persistent");
pub(super) const CONFIG: OptDef = OptDef::flag("config", "affect next boot");
pub(super) const LIVE: OptDef = OptDef::flag("live", "affect running domain");
pub(super) const CURRENT: OptDef = OptDef::flag("current", "affect current domain");
const PRINT_XML: OptDef = OptDef::flag(
    "print-xml",
    "print XML document rather than attach the disk",
);

pub(super) const fn verb(
    name: &'static str,
    info: &'static str,
    desc: &'static str,
    opts: &'static [OptDef],
    handler: crate::cli::table::Handler,
    api: &'static str,
) -> CmdDef {
    CmdDef::new(Group::DomainManagement, name, info, desc, opts, handler)
        .with_access(Access::Write(api))
}

pub const CMDS: &[CmdDef] = &[
    verb(
        "attach-device",
        "attach device from an XML file",
        "Attach device from an XML <file>.",
        &[
            DOMAIN,
            OptDef::data("file", "XML file").complete(Completer::File),
            PERSISTENT,
            CONFIG,
            LIVE,
            CURRENT,
        ],
        cmd_attach_device,
        "virDomainAttachDeviceFlags",
    ),
    verb(
        "attach-disk",
        "attach disk device",
        "Attach new disk device.",
        &[
            DOMAIN,
            OptDef::data("source", "source of disk device or name of network disk")
                .complete(Completer::File),
            OptDef::data("target", "target of disk device"),
            OptDef::string("targetbus", "target bus of disk device"),
            OptDef::string("driver", "driver of disk device"),
            OptDef::string("subdriver", "subdriver of disk device"),
            OptDef::string("cache", "cache mode of disk device"),
            OptDef::string("io", "io policy of disk device"),
            OptDef::string("type", "target device type"),
            OptDef::string("mode", "mode of device reading and writing"),
            OptDef::string("sourcetype", "type of source (block|file|network)"),
            OptDef::string("serial", "serial of disk device"),
            OptDef::string("wwn", "wwn of disk device"),
            OptDef::string("alias", "custom alias name of disk device"),
            PRINT_XML,
            PERSISTENT,
            CONFIG,
            LIVE,
            CURRENT,
        ],
        cmd_attach_disk,
        "virDomainAttachDeviceFlags",
    ),
    verb(
        "attach-interface",
        "attach network interface",
        "Attach new network interface.",
        &[
            DOMAIN,
            OptDef::data("type", "network interface type"),
            OptDef::data("source", "source of network interface"),
            OptDef::string("target", "target network name"),
            OptDef::string("mac", "MAC address"),
            OptDef::string("model", "model type"),
            OptDef::string("alias", "custom alias name of interface device"),
            OptDef::flag(
                "print-xml",
                "print XML document rather than attach the interface",
            ),
            PERSISTENT,
            CONFIG,
            LIVE,
            CURRENT,
        ],
        cmd_attach_interface,
        "virDomainAttachDeviceFlags",
    ),
    verb(
        "change-media",
        "Change media of CD or floppy drive",
        "Change media of CD or floppy drive.",
        &[
            DOMAIN,
            OptDef::data("path", "Fully-qualified path or target of disk device"),
            OptDef::string("source", "source of the media")
                .positional()
                .complete(Completer::File),
            OptDef::flag("eject", "Eject the media"),
            OptDef::flag("insert", "Insert the media"),
            OptDef::flag("update", "Update the media"),
            CURRENT,
            LIVE,
            CONFIG,
            OptDef::flag("force", "force media changing"),
            OptDef::flag("print-xml", "print XML document rather than change media"),
        ],
        cmd_change_media,
        "virDomainUpdateDeviceFlags",
    ),
    verb(
        "detach-device",
        "detach device from an XML file",
        "Detach device from an XML <file>",
        &[
            DOMAIN,
            OptDef::data("file", "XML file").complete(Completer::File),
            PERSISTENT,
            CONFIG,
            LIVE,
            CURRENT,
        ],
        cmd_detach_device,
        "virDomainDetachDeviceFlags",
    ),
    verb(
        "detach-device-alias",
        "detach device from an alias",
        "Detach device identified by the given alias from a domain",
        &[
            DOMAIN,
            OptDef::data("alias", "device alias"),
            CONFIG,
            LIVE,
            CURRENT,
        ],
        cmd_detach_device_alias,
        "virDomainDetachDeviceAlias",
    ),
    verb(
        "detach-disk",
        "detach disk device",
        "Detach disk device.",
        &[
            DOMAIN,
            OptDef::data("target", "target of disk device"),
            PERSISTENT,
            CONFIG,
            LIVE,
            CURRENT,
            OptDef::flag(
                "print-xml",
                "print XML document rather than detach the disk",
            ),
        ],
        cmd_detach_disk,
        "virDomainDetachDeviceFlags",
    ),
    verb(
        "detach-interface",
        "detach network interface",
        "Detach network interface.",
        &[
            DOMAIN,
            OptDef::data("type", "network interface type"),
            OptDef::string("mac", "MAC address"),
            PERSISTENT,
            CONFIG,
            LIVE,
            CURRENT,
            OptDef::flag(
                "print-xml",
                "print XML document rather than detach the interface",
            ),
        ],
        cmd_detach_interface,
        "virDomainDetachDeviceFlags",
    ),
    verb(
        "update-device",
        "update device from an XML file",
        "Update device from an XML <file>.",
        &[
            DOMAIN,
            OptDef::data("file", "XML file").complete(Completer::File),
            PERSISTENT,
            CONFIG,
            LIVE,
            CURRENT,
            OptDef::flag("force", "force device update"),
        ],
        cmd_update_device,
        "virDomainUpdateDeviceFlags",
    ),
];

/// virsh's `--config/--live/--current` reading: `--current` alone with neither of the
/// others, `--config` (or `--persistent`) the config, `--live` the guest.
pub(super) fn affect_flags(args: &ParsedArgs, persistent: bool) -> Result<u32> {
    args.exclusive("current", "live")?;
    args.exclusive("current", "config")?;
    let mut flags = 0;
    if args.flag("config") {
        flags |= AFFECT_CONFIG;
    }
    if args.flag("live") {
        flags |= AFFECT_LIVE;
    }
    if persistent {
        flags |= AFFECT_CONFIG;
    }
    Ok(flags)
}

/// The flags of the verbs with `--persistent` (libvirt: cmdAttachDevice): it means the
/// config, and the guest too when it runs.
fn device_flags(args: &ParsedArgs, dom: &Domain) -> Result<u32> {
    args.exclusive("persistent", "current")?;
    let persistent = args.flag("persistent");
    let mut flags = affect_flags(args, persistent)?;
    if persistent && dom.is_active()? {
        flags |= AFFECT_LIVE;
    }
    Ok(flags)
}

fn cmd_attach_device(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    let file = args.required("file")?;
    let xml = read_xml_file(file)?;
    let flags = device_flags(args, &dom)?;
    dom.attach_device_flags(&xml, flags)
        .with_context(|| format!("Failed to attach device from {file}"))?;
    ctx.println_extra("Device attached successfully");
    Ok(())
}

fn cmd_detach_device(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    let file = args.required("file")?;
    let xml = read_xml_file(file)?;
    let flags = device_flags(args, &dom)?;
    dom.detach_device_flags(&xml, flags)
        .with_context(|| format!("Failed to detach device from {file}"))?;
    ctx.println_extra("Device detached successfully");
    Ok(())
}

fn cmd_update_device(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    let file = args.required("file")?;
    let xml = read_xml_file(file)?;
    let mut flags = device_flags(args, &dom)?;
    if args.flag("force") {
        flags |= DEVICE_MODIFY_FORCE;
    }
    dom.update_device_flags(&xml, flags)
        .with_context(|| format!("Failed to update device from {file}"))?;
    ctx.println_extra("Device updated successfully");
    Ok(())
}

fn cmd_detach_device_alias(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    let alias = args.required("alias")?;
    let flags = affect_flags(args, false)?;
    dom.detach_device_alias(alias, flags)
        .with_context(|| format!("Failed to detach device with alias {alias}"))?;
    ctx.println_extra("Device detach request sent successfully");
    Ok(())
}

fn el(name: &str) -> XmlNode {
    XmlNode::new(name)
}

fn to_text(n: &XmlNode) -> String {
    let mut s = String::new();
    n.to_libxml_string(0, &mut s);
    s
}

/// The `<disk>` attach-disk describes (libvirt: cmdAttachDisk).
fn disk_xml(args: &ParsedArgs) -> Result<String> {
    let source = args.required("source")?;
    let target = args.required("target")?;
    let stype = match args.string("sourcetype") {
        Some(t @ ("file" | "block")) => t.to_string(),
        Some(t) => bail!("Unknown source type: '{t}'"),
        None => {
            let block = std::fs::metadata(source).is_ok_and(|m| {
                use std::os::unix::fs::FileTypeExt;
                m.file_type().is_block_device()
            });
            if block { "block" } else { "file" }.to_string()
        }
    };
    let mut disk = el("disk").a("type", &stype);
    disk = disk.ao("device", args.string("type"));
    let driver_given = ["driver", "subdriver", "cache", "io"]
        .iter()
        .any(|o| args.string(o).is_some());
    if driver_given {
        disk = disk.c(el("driver")
            .ao("name", args.string("driver"))
            .ao("type", args.string("subdriver"))
            .ao("cache", args.string("cache"))
            .ao("io", args.string("io")));
    }
    if !source.is_empty() {
        let key = if stype == "block" { "dev" } else { "file" };
        disk = disk.c(el("source").a(key, source));
    }
    disk = disk.c(el("target")
        .a("dev", target)
        .ao("bus", args.string("targetbus")));
    match args.string("mode") {
        None => {}
        Some("readonly") => disk = disk.c(el("readonly")),
        Some("shareable") => disk = disk.c(el("shareable")),
        Some(m) => bail!("No support for {m} in command 'attach-disk'"),
    }
    if let Some(s) = args.string("serial") {
        disk = disk.c(el("serial").t(s));
    }
    if let Some(w) = args.string("wwn") {
        disk = disk.c(el("wwn").t(w));
    }
    if let Some(a) = args.string("alias") {
        disk = disk.c(el("alias").a("name", a));
    }
    Ok(to_text(&disk))
}

fn cmd_attach_disk(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    attach_built(ctx, args, disk_xml(args)?, "disk", "Disk")
}

/// Print (`--print-xml`) or attach the device XML a shortcut verb built; `what` in virsh's
/// failure line, `What` in its success line.
fn attach_built(
    ctx: &mut CmdCtx,
    args: &ParsedArgs,
    xml: String,
    what: &str,
    what_cap: &str,
) -> Result<()> {
    if args.flag("print-xml") {
        ctx.print(&xml);
        return Ok(());
    }
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    let flags = device_flags(args, &dom)?;
    dom.attach_device_flags(&xml, flags)
        .with_context(|| format!("Failed to attach {what}"))?;
    ctx.println_extra(format!("{what_cap} attached successfully"));
    Ok(())
}

/// The `<interface>` attach-interface describes (libvirt: cmdAttachInterface).
fn interface_xml(args: &ParsedArgs) -> Result<String> {
    let itype = args.required("type")?;
    let source = args.required("source")?;
    let mut n = el("interface").a("type", itype);
    n = match itype {
        "network" => n.c(el("source").a("network", source)),
        "bridge" => n.c(el("source").a("bridge", source)),
        "direct" => n.c(el("source").a("dev", source)),
        "user" | "ethernet" => n,
        other => bail!("No support for {other} in command 'attach-interface'"),
    };
    if let Some(t) = args.string("target") {
        n = n.c(el("target").a("dev", t));
    }
    if let Some(m) = args.string("mac") {
        n = n.c(el("mac").a("address", m));
    }
    if let Some(m) = args.string("model") {
        n = n.c(el("model").a("type", m));
    }
    if let Some(a) = args.string("alias") {
        n = n.c(el("alias").a("name", a));
    }
    Ok(to_text(&n))
}

fn cmd_attach_interface(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    attach_built(ctx, args, interface_xml(args)?, "interface", "Interface")
}

/// The definition the flags point at: the config with `--config`, else the current one.
fn devices_of(dom: &Domain, flags: u32) -> Result<XmlNode> {
    let inactive = flags & AFFECT_CONFIG != 0 || !dom.is_active()?;
    let xml = dom.xml_desc(FormatFlags {
        inactive,
        secure: false,
    })?;
    let root = parse_document(&xml)?;
    Ok(root.child("devices").cloned().unwrap_or_default())
}

/// The disk whose target or source is `path` (libvirt: virshFindDisk).
fn find_disk(devices: &XmlNode, path: &str) -> Result<XmlNode> {
    let found = devices
        .children
        .iter()
        .filter(|c| c.name == "disk")
        .find(|d| {
            let target = d.child("target").and_then(|t| t.attr("dev"));
            let source = d.child("source").and_then(|s| {
                ["file", "dev", "dir", "name", "volume"]
                    .iter()
                    .find_map(|k| s.attr(k))
            });
            target == Some(path) || source == Some(path)
        });
    found
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("No disk found whose source path or target is {path}"))
}

fn cmd_detach_disk(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    let flags = device_flags(args, &dom)?;
    let target = args.required("target")?;
    let disk = find_disk(&devices_of(&dom, flags)?, target)?;
    let xml = to_text(&disk);
    if args.flag("print-xml") {
        ctx.print(&xml);
        return Ok(());
    }
    dom.detach_device_flags(&xml, flags)
        .context("Failed to detach disk")?;
    ctx.println_extra("Disk detached successfully");
    Ok(())
}

fn cmd_detach_interface(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    let flags = device_flags(args, &dom)?;
    let itype = args.required("type")?;
    let mac = args.string("mac");
    let devices = devices_of(&dom, flags)?;
    let of_type: Vec<&XmlNode> = devices
        .children
        .iter()
        .filter(|c| c.name == "interface" && c.attr("type") == Some(itype))
        .collect();
    if of_type.is_empty() {
        bail!("No interface found whose type is {itype}");
    }
    let chosen = match mac {
        Some(m) => of_type
            .iter()
            .find(|n| {
                n.child("mac")
                    .and_then(|x| x.attr("address"))
                    .is_some_and(|a| a.eq_ignore_ascii_case(m))
            })
            .copied()
            .ok_or_else(|| anyhow::anyhow!("No interface with MAC address {m} was found"))?,
        None if of_type.len() > 1 => bail!(
            "Domain has {} interfaces. Please specify which one to detach using --mac",
            of_type.len()
        ),
        None => of_type[0],
    };
    let xml = to_text(chosen);
    if args.flag("print-xml") {
        ctx.print(&xml);
        return Ok(());
    }
    dom.detach_device_flags(&xml, flags)
        .context("Failed to detach interface")?;
    ctx.println_extra("Interface detached successfully");
    Ok(())
}

/// `vsh change-media DOMAIN PATH [SOURCE] (--eject|--insert|--update) [--force]`
/// (libvirt: cmdChangeMedia, virshUpdateDiskXML).
fn cmd_change_media(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    for (a, b) in [
        ("eject", "insert"),
        ("eject", "update"),
        ("insert", "update"),
    ] {
        args.exclusive(a, b)?;
    }
    let source = args.string("source");
    let (action, done) = if args.flag("eject") {
        if source.is_some() {
            bail!("Options --eject and --source are mutually exclusive");
        }
        ("eject", "Successfully ejected media.")
    } else if args.flag("insert") {
        if source.is_none() {
            bail!("No source is specified for inserting media");
        }
        ("insert", "Successfully inserted media.")
    } else {
        ("update", "Successfully updated media.")
    };
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    let mut flags = affect_flags(args, false)?;
    if args.flag("force") {
        flags |= DEVICE_MODIFY_FORCE;
    }
    let path = args.required("path")?;
    let mut disk = find_disk(&devices_of(&dom, flags)?, path)?;
    let device = disk.attr("device").unwrap_or("disk").to_string();
    if !matches!(device.as_str(), "cdrom" | "floppy") {
        bail!("The disk device '{path}' is not removable");
    }
    let has_media = disk.child("source").is_some();
    match action {
        "eject" if !has_media => bail!("The disk device '{path}' doesn't have media"),
        "insert" if has_media => bail!("The disk device '{path}' already has media"),
        _ => {}
    }
    disk.children
        .retain(|c| c.name != "source" && c.name != "backingStore");
    if let Some(src) = source {
        let key = if disk.attr("type") == Some("block") {
            "dev"
        } else {
            "file"
        };
        let pos = disk
            .children
            .iter()
            .position(|c| c.name == "target")
            .unwrap_or(disk.children.len());
        disk.children.insert(pos, el("source").a(key, src));
    }
    let xml = to_text(&disk);
    if args.flag("print-xml") {
        ctx.print(&xml);
        return Ok(());
    }
    dom.update_device_flags(&xml, flags)
        .with_context(|| format!("Failed to complete action {action} on media"))?;
    ctx.println_extra(done);
    Ok(())
}
