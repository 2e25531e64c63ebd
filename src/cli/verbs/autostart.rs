//! `autostart`: mark a domain to start at host boot, worded as virsh's. The mark is
//! recorded only: without a daemon nothing starts guests when the host boots.

use anyhow::{Context, Result};

use super::util::{DOMAIN, lookup_domain};
use crate::cli::ctx::CmdCtx;
use crate::cli::parse::ParsedArgs;
use crate::cli::table::{Access, CmdDef, Group, OptDef};

pub const CMDS: &[CmdDef] = &[CmdDef::new(
    Group::DomainManagement,
    "autostart",
    "autostart a domain",
    "Configure a domain to be automatically started at boot.",
    &[DOMAIN, OptDef::flag("disable", "disable autostarting")],
    cmd_autostart,
)
.with_access(Access::Write("virDomainSetAutostart"))];

/// `vsh autostart DOMAIN [--disable]` (libvirt: cmdAutostart).
fn cmd_autostart(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let name = args.required("domain")?;
    let dom = lookup_domain(ctx.conn()?, name)?;
    let on = !args.flag("disable");
    dom.set_autostart(on).with_context(|| {
        if on {
            format!("Failed to mark domain '{name}' as autostarted")
        } else {
            format!("Failed to unmark domain '{name}' as autostarted")
        }
    })?;
    ctx.println_extra(if on {
        format!("Domain '{name}' marked as autostarted")
    } else {
        format!("Domain '{name}' unmarked as autostarted")
    });
    Ok(())
}
