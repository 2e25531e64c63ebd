//! `domrename` (libvirt: tools/virsh-domain.c cmdDomrename).

use anyhow::Result;

use super::hotplug::verb;
use super::util::lookup_domain;
use crate::cli::ctx::CmdCtx;
use crate::cli::parse::ParsedArgs;
use crate::cli::table::{CmdDef, DomainFilter, OptDef};

pub const CMDS: &[CmdDef] = &[verb(
    "domrename",
    "rename a domain",
    "Rename an inactive domain.",
    &[
        OptDef::domain("domain name, id or uuid", DomainFilter::Inactive),
        OptDef::data("new-name", "new domain name"),
    ],
    cmd_domrename,
    "virDomainRename",
)];

fn cmd_domrename(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    dom.rename(args.required("new-name")?, 0)?;
    ctx.println_extra("Domain successfully renamed");
    Ok(())
}
