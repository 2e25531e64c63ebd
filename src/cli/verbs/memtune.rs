//! `memtune`: a guest's memory limits (libvirt: tools/virsh-domain.c cmdMemtune,
//! virshMemtuneGetSize).

use anyhow::{Context, Result};

use super::hotplug::{CONFIG, CURRENT, LIVE, affect_flags, verb};
use super::util::{DOMAIN, lookup_domain};
use crate::cli::ctx::CmdCtx;
use crate::cli::parse::ParsedArgs;
use crate::cli::table::{CmdDef, OptDef};
use crate::driver::memtune::{MEMORY_PARAM_UNLIMITED, MemtuneChange};

pub const CMDS: &[CmdDef] = &[verb(
    "memtune",
    "Get or set memory parameters",
    "Get or set the current memory parameters for a guest domain.",
    &[
        DOMAIN,
        OptDef::int("hard-limit", "Max memory, as scaled integer (default KiB)").positional(),
        OptDef::int(
            "soft-limit",
            "Memory during contention, as scaled integer (default KiB)",
        )
        .positional(),
        OptDef::int(
            "swap-hard-limit",
            "Max memory plus swap, as scaled integer (default KiB)",
        )
        .positional(),
        OptDef::int(
            "min-guarantee",
            "Min guaranteed memory, as scaled integer (default KiB)",
        )
        .positional(),
        CONFIG,
        LIVE,
        CURRENT,
    ],
    cmd_memtune,
    "virDomainSetMemoryParameters",
)];

/// A limit as virsh reads it: a negative number is "unlimited", else a scaled integer
/// (default KiB) rounded up to KiB (libvirt: virshMemtuneGetSize).
fn limit_kib(args: &ParsedArgs, name: &str) -> Result<Option<u64>> {
    let Some(text) = args.string(name) else {
        return Ok(None);
    };
    let bad = || anyhow::anyhow!("Unable to parse integer parameter {name}");
    let digits = text
        .strip_prefix('-')
        .map(|r| r.find(|c: char| !c.is_ascii_digit()).unwrap_or(r.len()))
        .unwrap_or(0);
    if digits > 0 {
        return Ok(Some(MEMORY_PARAM_UNLIMITED));
    }
    let bytes = super::resources::scaled(text, name, 1024).map_err(|_| bad())?;
    Ok(Some(bytes.div_ceil(1024)))
}

fn cmd_memtune(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let flags = affect_flags(args, false)?;
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    let change = MemtuneChange {
        hard_limit: limit_kib(args, "hard-limit")?,
        soft_limit: limit_kib(args, "soft-limit")?,
        swap_hard_limit: limit_kib(args, "swap-hard-limit")?,
        min_guarantee: limit_kib(args, "min-guarantee")?,
    };
    if change == MemtuneChange::default() {
        let params = dom
            .memory_parameters(flags)
            .context("Unable to get number of memory parameters")?;
        for (name, v) in params {
            if v == MEMORY_PARAM_UNLIMITED {
                ctx.println(format!("{name:<15}: unlimited"));
            } else {
                ctx.println(format!("{name:<15}: {v}"));
            }
        }
        return Ok(());
    }
    dom.set_memory_parameters(&change, flags)
        .context("Unable to change memory parameters")?;
    Ok(())
}
