//! The guest's threads and their time: `cpu-stats`, `iothreadpin`, `iothreadset`, and the
//! guest agent's reply timeout (libvirt: tools/virsh-domain.c cmdCPUStats, cmdIOThreadPin,
//! cmdIOThreadSet, cmdGuestAgentTimeout).

use anyhow::{Context, Result, bail};

use super::hotplug::{CONFIG, CURRENT, LIVE, affect_flags, verb};
use super::tuning::parse_cpulist;
use super::util::{DOMAIN, DOMAIN_ACTIVE, lookup_domain};
use crate::cli::ctx::CmdCtx;
use crate::cli::parse::ParsedArgs;
use crate::cli::table::{CmdDef, Group, OptDef};
use crate::driver::iothread_tune::IoThreadParams;

pub const CMDS: &[CmdDef] = &[
    CmdDef::new(
        Group::DomainManagement,
        "cpu-stats",
        "show domain cpu statistics",
        "Display per-CPU and total statistics about the domain's CPUs",
        &[
            DOMAIN_ACTIVE,
            OptDef::flag("total", "Show total statistics only"),
            OptDef::int("start", "Show statistics from this CPU").positional(),
            OptDef::int("count", "Number of shown CPUs at most").positional(),
        ],
        cmd_cpu_stats,
    )
    .with_json(true),
    verb(
        "guest-agent-timeout",
        "Set the guest agent timeout",
        "Set the number of seconds to wait for a response from the guest agent.",
        &[DOMAIN, OptDef::int("timeout", "timeout seconds.")],
        cmd_guest_agent_timeout,
        "virDomainAgentSetResponseTimeout",
    ),
    verb(
        "iothreadpin",
        "control domain IOThread affinity",
        "Pin domain IOThreads to host physical CPUs.",
        &[
            DOMAIN,
            OptDef::int("iothread", "IOThread ID number")
                .required()
                .positional(),
            OptDef::string("cpulist", "host cpu number(s) to set")
                .required()
                .positional(),
            CONFIG,
            LIVE,
            CURRENT,
        ],
        cmd_iothreadpin,
        "virDomainPinIOThread",
    ),
    verb(
        "iothreadset",
        "modifies an existing IOThread of the guest domain",
        "Modifies an existing IOThread of the guest domain.",
        &[
            DOMAIN,
            OptDef::int("id", "iothread id of existing IOThread")
                .required()
                .positional(),
            OptDef::int("poll-max-ns", "set the maximum IOThread polling time in ns").positional(),
            OptDef::int(
                "poll-grow",
                "set the value to increase the IOThread polling time",
            )
            .positional(),
            OptDef::int(
                "poll-shrink",
                "set the value for reduction of the IOThread polling time",
            )
            .positional(),
            OptDef::int("thread-pool-min", "lower boundary for worker thread pool").positional(),
            OptDef::int("thread-pool-max", "upper boundary for worker thread pool").positional(),
            CONFIG,
            LIVE,
            CURRENT,
        ],
        cmd_iothreadset,
        "virDomainSetIOThreadParams",
    ),
];

/// virsh's line for one figure (libvirt: vshCPUStatsPrintField): times as seconds with
/// nine decimals, right-aligned.
fn field(name: &str, ns: u64) -> String {
    format!(
        "\t{name:<12} {:9}.{:09} seconds\n",
        ns / 1_000_000_000,
        ns % 1_000_000_000
    )
}

#[derive(serde::Serialize)]
struct CpuStatsJson {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    percpu: Vec<(u32, crate::driver::cpu_stats::PerCpuTime)>,
    #[serde(skip_serializing_if = "Option::is_none")]
    total: Option<crate::driver::cpu_stats::TotalCpuTime>,
}

fn cmd_cpu_stats(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    let failed = || {
        format!(
            "Failed to retrieve CPU statistics for domain '{}'",
            dom.name()
        )
    };
    let mut show_total = args.flag("total");
    let mut show_per_cpu = false;
    let start = args.int::<i32>("start")?;
    if let Some(s) = start {
        if s < 0 {
            bail!("Invalid value for start CPU");
        }
        show_per_cpu = true;
    }
    let count = args.int::<i32>("count")?;
    if let Some(c) = count {
        if c < 0 {
            bail!("Invalid value for number of CPUs to show");
        }
        show_per_cpu = true;
    }
    if !show_total && !show_per_cpu {
        show_total = true;
        show_per_cpu = true;
    }
    let mut text = String::new();
    let mut json = CpuStatsJson {
        percpu: Vec::new(),
        total: None,
    };
    if show_per_cpu {
        let max = dom.cpu_stats_cpus().with_context(failed)? as i32;
        let cpu = start.unwrap_or(0);
        if cpu >= max {
            bail!("Start CPU {cpu} is out of range (min: 0, max: {})", max - 1);
        }
        let mut show = count.unwrap_or(-1);
        if show < 0 || show > max {
            if show > max {
                text.push_str(&format!("Only {max} CPUs available to show\n"));
            }
            show = max - cpu;
        }
        let list = dom
            .cpu_stats_percpu(cpu as u32, show as u32)
            .with_context(failed)?;
        for (i, c) in list.into_iter().enumerate() {
            let n = cpu as u32 + i as u32;
            text.push_str(&format!("CPU{n}:\n"));
            text.push_str(&field("cpu_time", c.cpu_time));
            text.push_str(&field("vcpu_time", c.vcpu_time));
            json.percpu.push((n, c));
        }
    }
    if show_total {
        let t = dom.cpu_stats_total().with_context(failed)?;
        text.push_str("Total:\n");
        text.push_str(&field("cpu_time", t.cpu_time));
        text.push_str(&field("user_time", t.user_time));
        text.push_str(&field("system_time", t.system_time));
        json.total = Some(t);
    }
    ctx.emit(&json, |_| text);
    Ok(())
}

fn cmd_guest_agent_timeout(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    let timeout = args
        .int::<i32>("timeout")?
        .unwrap_or(crate::driver::guest_agent::AGENT_COMMAND_BLOCK);
    dom.agent_set_response_timeout(timeout, 0)?;
    Ok(())
}

fn cmd_iothreadpin(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let flags = affect_flags(args, false)?;
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    let id = args.int::<u32>("iothread")?.unwrap_or(0);
    let cpus = parse_cpulist(
        args.required("cpulist")?,
        crate::driver::stats::host_cpu_count() as u32,
    )?;
    dom.pin_iothread(id, &cpus, flags)?;
    Ok(())
}

fn cmd_iothreadset(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let flags = affect_flags(args, false)?;
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    let id = args.int::<i32>("id")?.unwrap_or(0);
    if id <= 0 {
        bail!("Invalid IOThread id value: '{id}'");
    }
    let params = IoThreadParams {
        poll_max_ns: args.int::<u64>("poll-max-ns")?,
        // virsh reads these as unsigned long long and passes them on as unsigned int.
        poll_grow: args.int::<u64>("poll-grow")?.map(|v| v as u32),
        poll_shrink: args.int::<u64>("poll-shrink")?.map(|v| v as u32),
        thread_pool_min: args.int::<i32>("thread-pool-min")?,
        thread_pool_max: args.int::<i32>("thread-pool-max")?,
    };
    if params.is_empty() {
        bail!("Not enough arguments passed, nothing to set");
    }
    dom.set_iothread_params(id as u32, &params, flags)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_as_virsh_prints_them() {
        assert_eq!(
            field("cpu_time", 1_234_567_890),
            "\tcpu_time             1.234567890 seconds\n"
        );
        assert_eq!(
            field("system_time", 5),
            "\tsystem_time          0.000000005 seconds\n"
        );
    }
}
