//! `setvcpu` and `schedinfo`: single vCPUs on and off, and the CPU scheduler's parameters
//! (libvirt: tools/virsh-domain.c cmdSetvcpu, cmdSchedinfo, cmdSchedInfoUpdateOne).

use anyhow::{Result, anyhow, bail};

use super::hotplug::{CONFIG, CURRENT, LIVE, affect_flags, verb};
use super::util::{DOMAIN, lookup_domain};
use crate::cli::ctx::CmdCtx;
use crate::cli::parse::ParsedArgs;
use crate::cli::table::{CmdDef, OptDef};
use crate::driver::hotplug::{AFFECT_CONFIG, AFFECT_LIVE};
use crate::driver::schedinfo::{SCHED_PARAMS, SchedValue};

pub const CMDS: &[CmdDef] = &[
    verb(
        "setvcpu",
        "attach/detach vcpu or groups of threads",
        "Add or remove vcpus",
        &[
            DOMAIN,
            OptDef::data("vcpulist", "ids of vcpus to manipulate"),
            OptDef::flag("enable", "enable cpus specified by cpumap"),
            OptDef::flag("disable", "disable cpus specified by cpumap"),
            CONFIG,
            LIVE,
            CURRENT,
        ],
        cmd_setvcpu,
        "virDomainSetVcpu",
    ),
    verb(
        "schedinfo",
        "show/set scheduler parameters",
        "Show/Set scheduler parameters.",
        &[
            DOMAIN,
            OptDef::argv("set", "parameter=value"),
            OptDef::int("weight", "weight for XEN_CREDIT"),
            OptDef::int("cap", "cap for XEN_CREDIT"),
            CURRENT,
            CONFIG,
            LIVE,
        ],
        cmd_schedinfo,
        "virDomainSetSchedulerParametersFlags",
    ),
];

fn cmd_setvcpu(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let flags = affect_flags(args, false)?;
    args.exclusive("enable", "disable")?;
    let (enable, disable) = (args.flag("enable"), args.flag("disable"));
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    let list = args.required("vcpulist")?;
    if !enable && !disable {
        bail!("one of --enable, --disable is required");
    }
    dom.set_vcpu(list, enable, flags)?;
    Ok(())
}

/// One `name=value` (or `--weight`/`--cap`) typed as the parameter it names (libvirt:
/// cmdSchedInfoUpdateOne, virTypedParameterAssignFromStr).
fn update_one(name: &str, value: &str) -> Result<(&'static str, SchedValue)> {
    let Some(&(field, signed)) = SCHED_PARAMS.iter().find(|(n, _)| *n == name) else {
        bail!("invalid scheduler option: {name}");
    };
    let v = if signed {
        value.parse().map(SchedValue::LLong).map_err(|_| {
            anyhow!("invalid argument: Invalid value for field '{field}': expected long long")
        })?
    } else {
        value.parse().map(SchedValue::ULLong).map_err(|_| {
            anyhow!(
                "invalid argument: Invalid value for field '{field}': expected unsigned long long"
            )
        })?
    };
    Ok((field, v))
}

fn cmd_schedinfo(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let flags = affect_flags(args, false)?;
    let (live, config) = (args.flag("live"), args.flag("config"));
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    // virsh asks the scheduler type first, without flags, and says so when that fails.
    if let Err(e) = dom.scheduler_type() {
        ctx.println(format!("{:<15}: Unknown", "Scheduler"));
        return Err(e.into());
    }
    ctx.println(format!("{:<15}: posix", "Scheduler"));
    // Both at once cannot be read; the current ones are.
    let read_flags = if live && config { 0 } else { flags };
    let mut params = dom.scheduler_parameters_flags(read_flags)?;
    let mut updates = Vec::new();
    for set in args.all("set") {
        let Some((name, value)) = set.split_once('=') else {
            bail!("Invalid syntax for --set, expecting name=value");
        };
        updates.push(update_one(name, value)?);
    }
    for name in ["weight", "cap"] {
        if let Some(v) = args.int::<i32>(name)? {
            updates.push(update_one(name, &v.to_string())?);
        }
    }
    if !updates.is_empty() {
        let set_flags = flags & (AFFECT_LIVE | AFFECT_CONFIG);
        dom.set_scheduler_parameters_flags(&updates, set_flags)?;
        params = dom.scheduler_parameters_flags(read_flags)?;
    } else if live && config {
        bail!("cannot query both live and config at once");
    }
    for (name, v) in params {
        ctx.println(format!("{name:<15}: {v}"));
    }
    Ok(())
}
