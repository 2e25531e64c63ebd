//! Per-device and per-thread knobs: interface links, disk throttles and thresholds, disk
//! errors, the control interface, vCPU and emulator pinning (libvirt: tools/virsh-domain.c
//! cmdDomIfSetLink, cmdBlkdeviotune, cmdDomblkthreshold, cmdVcpuPin, cmdEmulatorPin;
//! tools/virsh-domain-monitor.c cmdDomIfGetLink, cmdDomBlkError, cmdDomControl).

use anyhow::{Context, Result, bail};

use super::hotplug::{CONFIG, CURRENT, LIVE, affect_flags, verb};
use super::util::DOMAIN;
use super::util::DOMAIN_ACTIVE;
use super::util::{lookup_domain, render_table};
use crate::capabilities::cpuset::CpuSet;
use crate::cli::ctx::CmdCtx;
use crate::cli::parse::ParsedArgs;
use crate::cli::table::{CmdDef, Group, OptDef};
use crate::domain::FormatFlags;
use crate::domain::xml::{XmlNode, parse_document};
use crate::driver::hotplug::{AFFECT_CONFIG, AFFECT_LIVE};
use crate::driver::tuning::IoTuneChange;

const IFACE: OptDef = OptDef::data("interface", "interface device (MAC Address)");
const PERSISTENT_ALIAS: OptDef = OptDef::alias("persistent", "config");

const fn monitor_verb(
    name: &'static str,
    info: &'static str,
    desc: &'static str,
    opts: &'static [OptDef],
    handler: crate::cli::table::Handler,
) -> CmdDef {
    CmdDef::new(Group::DomainMonitoring, name, info, desc, opts, handler)
}

/// blkdeviotune's numeric options: (option, libvirt's parameter, scaled as bytes).
const IOTUNE_OPTS: &[(&str, &str, bool)] = &[
    ("total-bytes-sec", "total_bytes_sec", true),
    ("read-bytes-sec", "read_bytes_sec", true),
    ("write-bytes-sec", "write_bytes_sec", true),
    ("total-bytes-sec-max", "total_bytes_sec_max", true),
    ("read-bytes-sec-max", "read_bytes_sec_max", true),
    ("write-bytes-sec-max", "write_bytes_sec_max", true),
    ("total-iops-sec", "total_iops_sec", false),
    ("read-iops-sec", "read_iops_sec", false),
    ("write-iops-sec", "write_iops_sec", false),
    ("total-iops-sec-max", "total_iops_sec_max", false),
    ("read-iops-sec-max", "read_iops_sec_max", false),
    ("write-iops-sec-max", "write_iops_sec_max", false),
    ("size-iops-sec", "size_iops_sec", false),
    (
        "total-bytes-sec-max-length",
        "total_bytes_sec_max_length",
        false,
    ),
    (
        "read-bytes-sec-max-length",
        "read_bytes_sec_max_length",
        false,
    ),
    (
        "write-bytes-sec-max-length",
        "write_bytes_sec_max_length",
        false,
    ),
    (
        "total-iops-sec-max-length",
        "total_iops_sec_max_length",
        false,
    ),
    (
        "read-iops-sec-max-length",
        "read_iops_sec_max_length",
        false,
    ),
    (
        "write-iops-sec-max-length",
        "write_iops_sec_max_length",
        false,
    ),
];

pub const CMDS: &[CmdDef] = &[
    verb(
        "blkdeviotune",
        "Set or query a block device I/O tuning parameters.",
        "Set or query disk I/O parameters such as block throttling.",
        &[
            DOMAIN,
            OptDef::data("device", "block device"),
            OptDef::alias("total_bytes_sec", "total-bytes-sec"),
            OptDef::int(
                "total-bytes-sec",
                "total throughput limit, as scaled integer (default bytes)",
            ),
            OptDef::alias("read_bytes_sec", "read-bytes-sec"),
            OptDef::int(
                "read-bytes-sec",
                "read throughput limit, as scaled integer (default bytes)",
            ),
            OptDef::alias("write_bytes_sec", "write-bytes-sec"),
            OptDef::int(
                "write-bytes-sec",
                "write throughput limit, as scaled integer (default bytes)",
            ),
            OptDef::alias("total_iops_sec", "total-iops-sec"),
            OptDef::int("total-iops-sec", "total I/O operations limit per second"),
            OptDef::alias("read_iops_sec", "read-iops-sec"),
            OptDef::int("read-iops-sec", "read I/O operations limit per second"),
            OptDef::alias("write_iops_sec", "write-iops-sec"),
            OptDef::int("write-iops-sec", "write I/O operations limit per second"),
            OptDef::alias("total_bytes_sec_max", "total-bytes-sec-max"),
            OptDef::int(
                "total-bytes-sec-max",
                "total max, as scaled integer (default bytes)",
            ),
            OptDef::alias("read_bytes_sec_max", "read-bytes-sec-max"),
            OptDef::int(
                "read-bytes-sec-max",
                "read max, as scaled integer (default bytes)",
            ),
            OptDef::alias("write_bytes_sec_max", "write-bytes-sec-max"),
            OptDef::int(
                "write-bytes-sec-max",
                "write max, as scaled integer (default bytes)",
            ),
            OptDef::alias("total_iops_sec_max", "total-iops-sec-max"),
            OptDef::int("total-iops-sec-max", "total I/O operations max"),
            OptDef::alias("read_iops_sec_max", "read-iops-sec-max"),
            OptDef::int("read-iops-sec-max", "read I/O operations max"),
            OptDef::alias("write_iops_sec_max", "write-iops-sec-max"),
            OptDef::int("write-iops-sec-max", "write I/O operations max"),
            OptDef::alias("size_iops_sec", "size-iops-sec"),
            OptDef::int("size-iops-sec", "I/O size in bytes"),
            OptDef::alias("group_name", "group-name"),
            OptDef::string(
                "group-name",
                "group name to share I/O quota between multiple drives",
            ),
            OptDef::alias("total_bytes_sec_max_length", "total-bytes-sec-max-length"),
            OptDef::int(
                "total-bytes-sec-max-length",
                "duration in seconds to allow total max bytes",
            ),
            OptDef::alias("read_bytes_sec_max_length", "read-bytes-sec-max-length"),
            OptDef::int(
                "read-bytes-sec-max-length",
                "duration in seconds to allow read max bytes",
            ),
            OptDef::alias("write_bytes_sec_max_length", "write-bytes-sec-max-length"),
            OptDef::int(
                "write-bytes-sec-max-length",
                "duration in seconds to allow write max bytes",
            ),
            OptDef::alias("total_iops_sec_max_length", "total-iops-sec-max-length"),
            OptDef::int(
                "total-iops-sec-max-length",
                "duration in seconds to allow total I/O operations max",
            ),
            OptDef::alias("read_iops_sec_max_length", "read-iops-sec-max-length"),
            OptDef::int(
                "read-iops-sec-max-length",
                "duration in seconds to allow read I/O operations max",
            ),
            OptDef::alias("write_iops_sec_max_length", "write-iops-sec-max-length"),
            OptDef::int(
                "write-iops-sec-max-length",
                "duration in seconds to allow write I/O operations max",
            ),
            CONFIG,
            LIVE,
            CURRENT,
        ],
        cmd_blkdeviotune,
        "virDomainSetBlockIoTune",
    ),
    verb(
        "domblkthreshold",
        "set the threshold for block-threshold event for a given block device or it's backing chain element",
        "set threshold for block-threshold event for a block device",
        &[
            DOMAIN_ACTIVE,
            OptDef::data("dev", "device to set threshold for"),
            OptDef::int(
                "threshold",
                "threshold as a scaled number (by default bytes)",
            )
            .required()
            .positional(),
        ],
        cmd_domblkthreshold,
        "virDomainSetBlockThreshold",
    ),
    verb(
        "domif-setlink",
        "set link state of a virtual interface",
        "Set link state of a domain's virtual interface. This command wraps usage of update-device command.",
        &[
            DOMAIN,
            IFACE,
            OptDef::data("state", "new state of the device"),
            PERSISTENT_ALIAS,
            OptDef::flag("config", "affect next boot"),
            OptDef::flag(
                "print-xml",
                "print XML document rather than set the interface link state",
            ),
        ],
        cmd_domif_setlink,
        "virDomainUpdateDeviceFlags",
    ),
    verb(
        "emulatorpin",
        "control or query domain emulator affinity",
        "Pin domain emulator threads to host physical CPUs.",
        &[
            DOMAIN,
            OptDef::string(
                "cpulist",
                "host cpu number(s) to set, or omit option to query",
            )
            .positional(),
            CONFIG,
            LIVE,
            CURRENT,
        ],
        cmd_emulatorpin,
        "virDomainPinEmulator",
    ),
    verb(
        "vcpupin",
        "control or query domain vcpu affinity",
        "Pin domain VCPUs to host physical CPUs.",
        &[
            DOMAIN,
            OptDef::int("vcpu", "vcpu number").positional(),
            OptDef::string(
                "cpulist",
                "host cpu number(s) to set, or omit option to query",
            )
            .positional(),
            CONFIG,
            LIVE,
            CURRENT,
        ],
        cmd_vcpupin,
        "virDomainPinVcpuFlags",
    ),
    verb(
        "iothreadinfo",
        "view domain IOThreads",
        "Returns basic information about the domain IOThreads.",
        &[DOMAIN, CONFIG, LIVE, CURRENT],
        cmd_iothreadinfo,
        "virDomainGetIOThreadInfo",
    )
    .with_access(crate::cli::table::Access::Read),
    verb(
        "iothreadadd",
        "add an IOThread to the guest domain",
        "Add an IOThread to the guest domain.",
        &[
            DOMAIN,
            OptDef::int("id", "iothread for the new IOThread")
                .required()
                .positional(),
            CONFIG,
            LIVE,
            CURRENT,
        ],
        cmd_iothreadadd,
        "virDomainAddIOThread",
    ),
    verb(
        "iothreaddel",
        "delete an IOThread from the guest domain",
        "Delete an IOThread from the guest domain.",
        &[
            DOMAIN,
            OptDef::int("id", "iothread_id for the IOThread to delete")
                .required()
                .positional(),
            CONFIG,
            LIVE,
            CURRENT,
        ],
        cmd_iothreaddel,
        "virDomainDelIOThread",
    ),
    monitor_verb(
        "domblkerror",
        "Show errors on block devices",
        "Show block device errors",
        &[DOMAIN_ACTIVE],
        cmd_domblkerror,
    ),
    monitor_verb(
        "domcontrol",
        "domain control interface state",
        "Returns state of a control interface to the domain.",
        &[DOMAIN_ACTIVE],
        cmd_domcontrol,
    ),
    monitor_verb(
        "domif-getlink",
        "get link state of a virtual interface",
        "Get link state of a domain's virtual interface.",
        &[
            DOMAIN,
            IFACE,
            PERSISTENT_ALIAS,
            OptDef::flag("config", "Get persistent interface state"),
        ],
        cmd_domif_getlink,
    ),
];

/// A MAC address in libvirt's canonical form, when `s` is one (libvirt: virMacAddrParse,
/// virMacAddrFormat).
fn normalize_mac(s: &str) -> Option<String> {
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() != 6 {
        return None;
    }
    let mut out = Vec::new();
    for p in parts {
        if p.is_empty() || p.len() > 2 || !p.chars().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        out.push(format!("{:02x}", u8::from_str_radix(p, 16).ok()?));
    }
    Some(out.join(":"))
}

/// The `<interface>` elements of a domain document.
fn interfaces(doc: &XmlNode) -> Vec<&XmlNode> {
    doc.child("devices")
        .map(|d| {
            d.children
                .iter()
                .filter(|c| c.name == "interface")
                .collect()
        })
        .unwrap_or_default()
}

fn mac_of(n: &XmlNode) -> Option<&str> {
    n.child("mac").and_then(|m| m.attr("address"))
}

fn target_of(n: &XmlNode) -> Option<&str> {
    n.child("target").and_then(|m| m.attr("dev"))
}

fn domain_doc(ctx: &CmdCtx, args: &ParsedArgs, inactive: bool) -> Result<XmlNode> {
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    let xml = dom.xml_desc(FormatFlags {
        inactive,
        secure: false,
    })?;
    Ok(parse_document(&xml)?)
}

fn cmd_domif_getlink(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let iface = args.required("interface")?;
    let doc = domain_doc(ctx, args, args.flag("config"))?;
    let mac = normalize_mac(iface);
    let found: Vec<&XmlNode> = interfaces(&doc)
        .into_iter()
        .filter(|n| {
            mac.as_deref().is_some_and(|m| mac_of(n) == Some(m)) || target_of(n) == Some(iface)
        })
        .collect();
    match found.as_slice() {
        [] => match mac {
            Some(m) => bail!("Interface (mac: {m}) not found."),
            None => bail!("Interface (dev: {iface}) not found."),
        },
        [n] => {
            let state = n
                .child("link")
                .and_then(|l| l.attr("state"))
                .unwrap_or("up");
            // virsh prints no newline here.
            ctx.print(format!("{iface} {state}"));
            Ok(())
        }
        _ => bail!("multiple matching interfaces found"),
    }
}

/// The interface element as libxml2 dumps a node of a document parsed with its blanks
/// (libvirt: virXMLNodeToString): libvirt's own indentation inside, a new `<link>` last.
fn interface_dump(n: &XmlNode, had_link: bool) -> String {
    let mut head = XmlNode::new(&n.name);
    head.attrs = n.attrs.clone();
    let mut out = String::new();
    head.to_libxml_string(0, &mut out);
    let mut out = out.trim_end().trim_end_matches("/>").to_string();
    out.push('>');
    let mut added = None;
    for c in &n.children {
        if !had_link && c.name == "link" {
            added = Some(c);
            continue;
        }
        let mut s = String::new();
        c.to_libxml_string(3, &mut s);
        out.push('\n');
        out.push_str(s.trim_end_matches('\n'));
    }
    out.push_str("\n    ");
    if let Some(l) = added {
        let mut s = String::new();
        l.to_libxml_string(0, &mut s);
        out.push_str(s.trim_end());
    }
    out.push_str("</interface>");
    out
}

fn cmd_domif_setlink(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    let iface = args.required("interface")?;
    let state = args.required("state")?;
    if state != "up" && state != "down" {
        bail!("invalid link state '{state}'");
    }
    let config = args.flag("config");
    let mut flags = if config { AFFECT_CONFIG } else { AFFECT_LIVE };
    if !dom.is_active()? {
        flags = AFFECT_CONFIG;
    }
    let xml = dom.xml_desc(FormatFlags {
        inactive: config,
        secure: false,
    })?;
    let mut doc = parse_document(&xml)?;
    let Some(devices) = doc.children.iter_mut().find(|c| c.name == "devices") else {
        bail!("Failed to extract interface information or no interfaces found");
    };
    let mut nodes: Vec<&mut XmlNode> = devices
        .children
        .iter_mut()
        .filter(|c| c.name == "interface")
        .collect();
    if nodes.is_empty() {
        bail!("Failed to extract interface information or no interfaces found");
    }
    let eq = |v: Option<&str>| v.is_some_and(|v| v.eq_ignore_ascii_case(iface));
    let Some(node) = nodes.iter_mut().find(|n| eq(mac_of(n)) || eq(target_of(n))) else {
        bail!("interface '{iface}' not found");
    };
    let had_link = node.child("link").is_some();
    if !had_link {
        node.children.push(XmlNode::new("link"));
    }
    let link = node
        .children
        .iter_mut()
        .find(|c| c.name == "link")
        .expect("just added");
    match link.attrs.iter_mut().find(|(k, _)| k == "state") {
        Some(a) => a.1 = state.to_string(),
        None => link.attrs.push(("state".into(), state.into())),
    }
    if args.flag("print-xml") {
        ctx.print(interface_dump(node, had_link));
        return Ok(());
    }
    let Some(mac) = mac_of(node).map(str::to_string) else {
        bail!("interface '{iface}' not found");
    };
    dom.interface_set_link(&mac, state == "up", flags)
        .context("Failed to update interface link state")?;
    ctx.println_extra("Device updated successfully");
    Ok(())
}

fn cmd_domblkerror(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    let errors = dom.disk_errors()?;
    if errors.is_empty() {
        ctx.println("No errors found");
    }
    for e in &errors {
        ctx.println(format!("{}: {}", e.disk, e.error.as_virsh()));
    }
    Ok(())
}

fn cmd_domcontrol(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    let state = dom.control_info()?;
    ctx.println(state.as_virsh());
    Ok(())
}

/// An unsigned option as virsh reads it: a scaled integer (default unit bytes) or a plain
/// one (libvirt: vshCommandOptScaledInt, vshCommandOptULongLong).
fn unsigned_opt(args: &ParsedArgs, name: &str, scaled: bool) -> Result<Option<u64>> {
    let Some(text) = args.string(name) else {
        return Ok(None);
    };
    let bad = || {
        anyhow::anyhow!("Numeric value '{text}' for <{name}> option is malformed or out of range")
    };
    if scaled {
        return super::resources::scaled(text, name, 1).map(Some);
    }
    text.parse::<u64>().map(Some).map_err(|_| bad())
}

fn cmd_blkdeviotune(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let flags = affect_flags(args, false)?;
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    let disk = args.required("device")?;
    let mut change = IoTuneChange::default();
    for (opt, param, scaled) in IOTUNE_OPTS {
        let v = unsigned_opt(args, opt, *scaled)
            .map_err(|e| e.context("Unable to parse integer parameter"))?;
        if let Some(v) = v {
            change.values.push((param.to_string(), v));
        }
    }
    change.group_name = args.string("group-name").map(str::to_string);
    if change.values.is_empty() && change.group_name.is_none() {
        let params = dom
            .block_io_tune(disk, flags)
            .context("Unable to get block I/O throttle parameters")?;
        for (name, v) in params {
            ctx.println(format!("{name:<15}: {v}"));
        }
        return Ok(());
    }
    dom.set_block_io_tune(disk, &change, flags)
        .context("Unable to change block I/O throttle")?;
    Ok(())
}

fn cmd_domblkthreshold(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let dev = args.required("dev")?;
    let threshold = unsigned_opt(args, "threshold", true)?.unwrap_or(0);
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    dom.set_block_threshold(dev, threshold, 0)?;
    Ok(())
}

/// A host CPU list as virsh reads it (libvirt: virshParseCPUList): `r` for every CPU,
/// else a cpuset naming at least one CPU below `maxcpu`.
pub fn parse_cpulist(text: &str, maxcpu: u32) -> Result<CpuSet> {
    if text.starts_with('r') {
        let mut all = CpuSet::new();
        for i in 0..maxcpu {
            all.insert(i);
        }
        return Ok(all);
    }
    let set = CpuSet::parse(text)
        .ok()
        .filter(|s| !s.is_empty() && s.last().is_some_and(|l| l < 1024))
        .ok_or_else(|| anyhow::anyhow!("Invalid cpulist '{text}'"))?;
    if let Some(last) = set.last()
        && last >= maxcpu
    {
        bail!("CPU {last} in cpulist '{text}' exceed the maxcpu {maxcpu}");
    }
    Ok(set)
}

fn maxcpu() -> u32 {
    crate::driver::stats::host_cpu_count() as u32
}

fn cmd_vcpupin(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let flags = affect_flags(args, false)?;
    let cpulist = args.string("cpulist");
    if cpulist.is_none() {
        args.exclusive("live", "config")?;
    }
    let vcpu = args.int::<u32>("vcpu")?;
    if cpulist.is_some() && vcpu.is_none() {
        bail!("vcpupin: Missing vCPU number in pin mode.");
    }
    let max = maxcpu();
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    let Some(cpulist) = cpulist else {
        let live = flags & AFFECT_LIVE != 0 || (flags & AFFECT_CONFIG == 0 && dom.is_active()?);
        if flags & AFFECT_LIVE != 0 && !dom.is_active()? {
            bail!("cannot get vcpupin for offline domain");
        }
        let pins = dom.vcpu_pin_info(flags)?;
        if let Some(v) = vcpu
            && v as usize >= pins.len()
        {
            let which = if live { "live" } else { "persistent" };
            bail!(
                "vcpu {v} is out of range of {which} cpu count {}",
                pins.len()
            );
        }
        let rows: Vec<Vec<String>> = pins
            .iter()
            .enumerate()
            .filter(|(i, _)| vcpu.is_none_or(|v| v as usize == *i))
            .map(|(i, s)| vec![i.to_string(), s.to_string()])
            .collect();
        ctx.print(render_table(&["VCPU", "CPU Affinity"], &rows));
        return Ok(());
    };
    let cpus = parse_cpulist(cpulist, max)?;
    dom.pin_vcpu_flags(vcpu.unwrap_or(0), &cpus, flags)?;
    Ok(())
}

fn cmd_iothreadinfo(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let flags = affect_flags(args, false)?;
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    let threads = dom
        .iothread_info(flags)
        .context("Unable to get domain IOThreads information")?;
    if threads.is_empty() {
        // virsh prints no newline here.
        if !ctx.globals.quiet {
            ctx.print("No IOThreads found for the domain");
        }
        return Ok(());
    }
    let rows: Vec<Vec<String>> = threads
        .iter()
        .map(|(id, s)| vec![id.to_string(), s.to_string()])
        .collect();
    ctx.print(render_table(&["IOThread ID", "CPU Affinity"], &rows));
    Ok(())
}

/// The `--id` of iothreadadd/iothreaddel, which virsh wants positive.
fn iothread_id(args: &ParsedArgs) -> Result<u32> {
    let id = args.int::<i64>("id")?.unwrap_or(0);
    if id <= 0 || id > i64::from(i32::MAX) {
        bail!("Invalid IOThread id value: '{id}'");
    }
    Ok(id as u32)
}

fn cmd_iothreadadd(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let flags = affect_flags(args, false)?;
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    dom.add_iothread(iothread_id(args)?, flags)?;
    Ok(())
}

fn cmd_iothreaddel(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let flags = affect_flags(args, false)?;
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    dom.del_iothread(iothread_id(args)?, flags)?;
    Ok(())
}

fn cmd_emulatorpin(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let given = affect_flags(args, false)?;
    let none = !args.flag("current") && given == 0;
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    let max = maxcpu();
    let Some(cpulist) = args.string("cpulist") else {
        let set = dom.emulator_pin_info(given)?;
        ctx.println_extra("emulator: CPU Affinity");
        ctx.println_extra("----------------------------------");
        if !ctx.globals.quiet {
            ctx.print("       *: ");
        }
        ctx.println(set.to_string());
        return Ok(());
    };
    let cpus = parse_cpulist(cpulist, max)?;
    // Without --live/--config/--current virsh pins the running guest only.
    let flags = if none { AFFECT_LIVE } else { given };
    dom.pin_emulator(&cpus, flags)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_as_libvirt_normalizes_them() {
        assert_eq!(
            normalize_mac("52:54:0:AB:cd:1").as_deref(),
            Some("52:54:00:ab:cd:01")
        );
        assert_eq!(normalize_mac("vnet0"), None);
        assert_eq!(normalize_mac("52:54:00:ab:cd"), None);
        assert_eq!(normalize_mac("52:54:00:ab:cd:123"), None);
    }

    #[test]
    fn cpulists_as_virsh_reads_them() {
        assert_eq!(parse_cpulist("0-1,3", 4).unwrap().to_string(), "0-1,3");
        assert_eq!(parse_cpulist("r", 3).unwrap().to_string(), "0-2");
        assert_eq!(
            parse_cpulist("x", 4).unwrap_err().to_string(),
            "Invalid cpulist 'x'"
        );
        assert_eq!(
            parse_cpulist("0,9", 4).unwrap_err().to_string(),
            "CPU 9 in cpulist '0,9' exceed the maxcpu 4"
        );
        assert!(parse_cpulist("", 4).is_err());
    }

    #[test]
    fn interface_dump_as_libxml_writes_it() {
        let doc = parse_document(
            "<interface type='user'>\n      <mac address='52:54:00:00:00:01'/>\n      <model type='virtio'/>\n    </interface>",
        )
        .unwrap();
        let mut n = doc.clone();
        n.children.push(XmlNode::new("link").a("state", "down"));
        assert_eq!(
            interface_dump(&n, false),
            "<interface type=\"user\">\n      <mac address=\"52:54:00:00:00:01\"/>\n      <model type=\"virtio\"/>\n    <link state=\"down\"/></interface>"
        );
        let mut n = doc;
        n.children.insert(1, XmlNode::new("link").a("state", "up"));
        assert_eq!(
            interface_dump(&n, true),
            "<interface type=\"user\">\n      <mac address=\"52:54:00:00:00:01\"/>\n      <link state=\"up\"/>\n      <model type=\"virtio\"/>\n    </interface>"
        );
    }
}
