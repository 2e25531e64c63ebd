//! Host verbs about CPU models and power: `cpu-models`, `nodesuspend` (libvirt:
//! tools/virsh-host.c cmdCPUModelNames, cmdNodeSuspend).

use anyhow::{Context, Result, bail};

use crate::cli::ctx::CmdCtx;
use crate::cli::parse::ParsedArgs;
use crate::cli::table::{Access, CmdDef, Completer, Group, OptDef};
use crate::driver::node_suspend::NodeSuspendTarget;

pub const CMDS: &[CmdDef] = &[
    CmdDef::new(
        Group::HostAndHypervisor,
        "cpu-models",
        "CPU models",
        "Get the CPU models for an arch.",
        &[OptDef::string("arch", "architecture")
            .required()
            .positional()],
        cmd_cpu_models,
    )
    .with_json(true),
    CmdDef::new(
        Group::HostAndHypervisor,
        "nodesuspend",
        "suspend the host node for a given time duration",
        "Suspend the host node for a given time duration and attempt to resume thereafter.",
        &[
            OptDef::string(
                "target",
                "mem(Suspend-to-RAM), disk(Suspend-to-Disk), hybrid(Hybrid-Suspend)",
            )
            .required()
            .positional()
            .complete(Completer::Words(&["mem", "disk", "hybrid"])),
            OptDef::int("duration", "Suspend duration in seconds, at least 60")
                .required()
                .positional(),
        ],
        cmd_nodesuspend,
    )
    .with_access(Access::Write("virNodeSuspendForDuration")),
];

fn cmd_cpu_models(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let arch = args.required("arch")?;
    let models = ctx
        .conn()?
        .cpu_model_names(arch, 0)
        .context("failed to get CPU model names")?;
    if models.is_empty() && !ctx.json() {
        ctx.println_extra("all CPU models are accepted");
        return Ok(());
    }
    ctx.emit(&models, |m| m.iter().map(|n| format!("{n}\n")).collect());
    Ok(())
}

fn cmd_nodesuspend(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let target = args.required("target")?;
    let duration = args.int::<i64>("duration")?.unwrap_or(0);
    let Some(target) = NodeSuspendTarget::from_virsh(target) else {
        bail!("Invalid target");
    };
    if duration < 0 {
        bail!("Invalid duration");
    }
    ctx.conn()?
        .node_suspend_for_duration(target, duration as u64, 0)
        .context("The host was not suspended")?;
    Ok(())
}
