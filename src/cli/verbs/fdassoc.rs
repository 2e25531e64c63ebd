//! `dom-fd-associate` (libvirt: tools/virsh-domain.c cmdDomFdAssociate,
//! virshFetchPassFdsList): descriptors vsh inherited, associated with a domain for as long
//! as vsh's connection lives, so that a later command of the same vsh (`;`, the shell) starts
//! the domain with its `fdgroup` disks.

use anyhow::{Result, bail};

use super::util::{DOMAIN, lookup_domain};
use crate::cli::ctx::CmdCtx;
use crate::cli::parse::ParsedArgs;
use crate::cli::table::{Access, CmdDef, Group, OptDef};
use crate::driver::fdpass::FdAssociateFlags;

pub const CMDS: &[CmdDef] = &[CmdDef::new(
    Group::DomainManagement,
    "dom-fd-associate",
    "associate a FD with a domain",
    "associate a FD with a domain",
    &[
        DOMAIN,
        OptDef::string("name", "name of the FD group")
            .required()
            .positional(),
        OptDef::string("pass-fds", "file descriptors N,M,... to associate")
            .required()
            .positional(),
        OptDef::flag("seclabel-writable", "use seclabels allowing writes"),
        OptDef::flag(
            "seclabel-restore",
            "try to restore security label after use if possible",
        ),
    ],
    cmd_dom_fd_associate,
)
.with_access(Access::Write("virDomainFDAssociate"))];

/// virsh's `--pass-fds` list: numbers separated by commas, each a whole decimal int.
fn parse_fds(list: &str) -> Result<Vec<i32>> {
    list.split(',')
        .map(|s| match s.parse::<i32>() {
            Ok(n) => Ok(n),
            Err(_) => bail!("Unable to parse FD number '{s}'"),
        })
        .collect()
}

fn cmd_dom_fd_associate(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let mut flags = FdAssociateFlags::NONE;
    if args.flag("seclabel-writable") {
        flags = flags | FdAssociateFlags::SECLABEL_WRITABLE;
    }
    if args.flag("seclabel-restore") {
        flags = flags | FdAssociateFlags::SECLABEL_RESTORE;
    }
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    let name = args.required("name")?;
    let fds = parse_fds(args.required("pass-fds")?)?;
    dom.fd_associate(name, &fds, flags)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fd_lists_are_parsed_as_virsh_does() {
        assert_eq!(parse_fds("3").unwrap(), vec![3]);
        assert_eq!(parse_fds("3,4,10").unwrap(), vec![3, 4, 10]);
        assert_eq!(
            parse_fds("3,x").unwrap_err().to_string(),
            "Unable to parse FD number 'x'"
        );
        assert_eq!(
            parse_fds("3,").unwrap_err().to_string(),
            "Unable to parse FD number ''"
        );
    }
}
