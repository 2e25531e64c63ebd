//! `blkiotune`, `numatune`, `domiftune` and `perf`: a guest's typed-parameter knobs
//! (libvirt: tools/virsh-domain.c cmdBlkiotune, cmdNumatune, cmdDomIftune, cmdPerf,
//! virshParseRateStr).

use anyhow::{Context, Result, anyhow, bail};

use super::hotplug::{CONFIG, CURRENT, LIVE, affect_flags, verb};
use super::util::{DOMAIN, lookup_domain};
use crate::cli::ctx::CmdCtx;
use crate::cli::parse::ParsedArgs;
use crate::cli::table::{CmdDef, OptDef};
use crate::driver::blkiotune::{BlkioChange, BlkioField};
use crate::driver::iftune::RateChange;
use crate::driver::numatune::NumaMode;

pub const CMDS: &[CmdDef] = &[
    verb(
        "blkiotune",
        "Get or set blkio parameters",
        "Get or set the current blkio parameters for a guest domain.",
        &[
            DOMAIN,
            OptDef::int("weight", "IO Weight").positional(),
            OptDef::string(
                "device-weights",
                "per-device IO Weights, in the form of /path/to/device,weight,...",
            ),
            OptDef::string(
                "device-read-iops-sec",
                "per-device read I/O limit per second, in the form of /path/to/device,read_iops_sec,...",
            ),
            OptDef::string(
                "device-write-iops-sec",
                "per-device write I/O limit per second, in the form of /path/to/device,write_iops_sec,...",
            ),
            OptDef::string(
                "device-read-bytes-sec",
                "per-device bytes read per second, in the form of /path/to/device,read_bytes_sec,...",
            ),
            OptDef::string(
                "device-write-bytes-sec",
                "per-device bytes wrote per second, in the form of /path/to/device,write_bytes_sec,...",
            ),
            CONFIG,
            LIVE,
            CURRENT,
        ],
        cmd_blkiotune,
        "virDomainSetBlkioParameters",
    ),
    verb(
        "numatune",
        "Get or set numa parameters",
        "Get or set the current numa parameters for a guest domain.",
        &[
            DOMAIN,
            OptDef::string(
                "mode",
                "NUMA mode, one of strict, preferred and interleave or a number from the virDomainNumatuneMemMode enum",
            ),
            OptDef::string("nodeset", "NUMA node selections to set"),
            CONFIG,
            LIVE,
            CURRENT,
        ],
        cmd_numatune,
        "virDomainSetNumaParameters",
    ),
    verb(
        "domiftune",
        "get/set parameters of a virtual interface",
        "Get/set parameters of a domain's virtual interface.",
        &[
            DOMAIN,
            OptDef::data("interface", "interface device (MAC Address)"),
            OptDef::string("inbound", "control domain's incoming traffics"),
            OptDef::string("outbound", "control domain's outgoing traffics"),
            CONFIG,
            LIVE,
            CURRENT,
        ],
        cmd_domiftune,
        "virDomainSetInterfaceParameters",
    ),
    verb(
        "perf",
        "Get or set perf event",
        "Get or set the current perf events for a guest domain.",
        &[
            DOMAIN,
            OptDef::string("enable", "perf events which will be enabled"),
            OptDef::string("disable", "perf events which will be disabled"),
            CONFIG,
            LIVE,
            CURRENT,
        ],
        cmd_perf,
        "virDomainSetPerfEvents",
    ),
];

/// The blkiotune option of each per-device field.
const DEVICE_OPTS: [(&str, BlkioField); 5] = [
    ("device-weights", BlkioField::Weight),
    ("device-read-iops-sec", BlkioField::ReadIops),
    ("device-write-iops-sec", BlkioField::WriteIops),
    ("device-read-bytes-sec", BlkioField::ReadBytes),
    ("device-write-bytes-sec", BlkioField::WriteBytes),
];

fn cmd_blkiotune(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let flags = affect_flags(args, false)?;
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    let mut change = BlkioChange::default();
    if let Some(w) = args.int::<i32>("weight")? {
        if w <= 0 {
            bail!("Invalid value of {w} for I/O weight");
        }
        change.weight = Some(w as u32);
    }
    for (opt, field) in DEVICE_OPTS {
        if let Some(s) = args.string(opt) {
            change.devices.push((field, s.to_string()));
        }
    }
    if change == BlkioChange::default() {
        let params = dom
            .blkio_parameters(flags)
            .context("Unable to get number of blkio parameters")?;
        for p in params {
            ctx.println(format!("{:<15}: {p}", p.name()));
        }
        return Ok(());
    }
    dom.set_blkio_parameters(&change, flags)
        .context("Unable to change blkio parameters")?;
    Ok(())
}

fn cmd_numatune(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let flags = affect_flags(args, false)?;
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    // A name, or libvirt's number of the mode.
    let mode = args
        .string("mode")
        .map(|m| {
            NumaMode::from_name(m)
                .or_else(|| m.parse().ok().and_then(NumaMode::from_index))
                .ok_or_else(|| anyhow!("Invalid mode: {m}"))
        })
        .transpose()?;
    let nodeset = args.string("nodeset");
    if mode.is_none() && nodeset.is_none() {
        let p = dom
            .numa_parameters(flags)
            .context("Unable to get number of memory parameters")?;
        ctx.println(format!("{:<15}: {}", "numa_mode", p.mode.name()));
        ctx.println(format!("{:<15}: {}", "numa_nodeset", p.nodeset));
        return Ok(());
    }
    dom.set_numa_parameters(mode, nodeset, flags)
        .context("Unable to change numa parameters")?;
    Ok(())
}

/// `average,peak,burst[,floor]`, each part optional (libvirt: virshParseRateStr).
fn parse_rate(text: &str, dir: &str) -> Result<RateChange> {
    let parts: Vec<&str> = text.split(',').collect();
    if parts.len() > 4 {
        bail!("Rate string '{text}' has too many fields");
    }
    let mut v = [0u64; 4];
    for (i, p) in parts.iter().enumerate() {
        if !p.is_empty() {
            v[i] = p.parse().map_err(|_| anyhow!("field '{p}' is malformed"))?;
        }
    }
    if v.iter().any(|x| *x > u32::MAX as u64) {
        bail!("{dir} rate larger than maximum {}", u32::MAX);
    }
    let [average, peak, burst, floor] = v.map(|x| x as u32);
    Ok(RateChange {
        average,
        peak,
        burst,
        floor,
    })
}

fn cmd_domiftune(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let flags = affect_flags(args, false)?;
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    let device = args.required("interface")?;
    let inbound = args
        .string("inbound")
        .map(|s| parse_rate(s, "inbound"))
        .transpose()?;
    if let Some(r) = &inbound
        && r.average == 0
        && r.floor == 0
        && (r.peak != 0 || r.burst != 0)
    {
        bail!("either inbound average or floor is mandatory");
    }
    let outbound = args
        .string("outbound")
        .map(|s| parse_rate(s, "outbound"))
        .transpose()?;
    if let Some(r) = &outbound {
        if r.floor != 0 {
            bail!("outbound floor is unsupported yet");
        }
        if r.average == 0 && (r.peak != 0 || r.burst != 0) {
            bail!("outbound average is mandatory");
        }
    }
    if inbound.is_none() && outbound.is_none() {
        let params = dom
            .interface_parameters(device, flags)
            .context("Unable to get number of interface parameters")?;
        for (name, v) in params {
            ctx.println(format!("{name:<15}: {v}"));
        }
        return Ok(());
    }
    dom.set_interface_parameters(device, inbound, outbound, flags)
        .context("Unable to set interface parameters")?;
    Ok(())
}

fn cmd_perf(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let flags = affect_flags(args, false)?;
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    let mut events = Vec::new();
    for (opt, on) in [("enable", true), ("disable", false)] {
        if let Some(s) = args.string(opt) {
            events.extend(s.split(',').filter(|e| !e.is_empty()).map(|e| (e, on)));
        }
    }
    if events.is_empty() {
        let list = dom
            .perf_events(flags)
            .context("Unable to get perf events")?;
        for (name, on) in list {
            let state = if on { "enabled" } else { "disabled" };
            ctx.println(format!("{name:<15}: {state}"));
        }
        return Ok(());
    }
    dom.set_perf_events(&events, flags)
        .context("Unable to enable/disable perf events")?;
    Ok(())
}
