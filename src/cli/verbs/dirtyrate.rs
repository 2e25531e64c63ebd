//! `domdirtyrate-calc` (libvirt: tools/virsh-domain.c cmdDomDirtyRateCalc).

use anyhow::{Result, bail};

use super::hotplug::verb;
use super::util::lookup_domain;
use crate::cli::ctx::CmdCtx;
use crate::cli::parse::ParsedArgs;
use crate::cli::table::{CmdDef, Completer, DomainFilter, OptDef};
use crate::driver::dirtyrate::{DIRTYRATE_MODE_DIRTY_BITMAP, DIRTYRATE_MODE_DIRTY_RING};

/// The modes `--mode` takes, in virsh's order.
const MODES: &[&str] = &["page-sampling", "dirty-bitmap", "dirty-ring"];

pub const CMDS: &[CmdDef] = &[verb(
    "domdirtyrate-calc",
    "Calculate a vm's memory dirty rate",
    "Calculate memory dirty rate of a domain in order to decide whether it's proper to be \
     migrated out or not.\nThe calculated dirty rate information is available by calling \
     'domstats --dirtyrate'.",
    &[
        OptDef::domain("domain name, id or uuid", DomainFilter::All),
        OptDef::int(
            "seconds",
            "calculate memory dirty rate within specified seconds, the supported value range from 1 to 60, default to 1.",
        ),
        OptDef::string(
            "mode",
            "dirty page rate calculation mode, either of these 3 options 'page-sampling, dirty-bitmap, dirty-ring' can be specified.",
        )
        .complete(Completer::Words(MODES)),
    ],
    cmd_domdirtyrate_calc,
    "virDomainStartDirtyRateCalc",
)];

fn cmd_domdirtyrate_calc(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    let seconds = args.int::<i32>("seconds")?.unwrap_or(1);
    let flags = match args.string("mode") {
        None | Some("page-sampling") => 0,
        Some("dirty-bitmap") => DIRTYRATE_MODE_DIRTY_BITMAP,
        Some("dirty-ring") => DIRTYRATE_MODE_DIRTY_RING,
        Some(m) => bail!("Unknown calculation mode '{m}'"),
    };
    dom.start_dirty_rate_calc(seconds, flags)?;
    if !ctx.globals.quiet {
        ctx.print("Start to calculate domain's memory dirty rate successfully.\n");
    }
    Ok(())
}
