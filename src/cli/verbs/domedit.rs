//! `edit`: a domain's persistent XML in the user's editor, then redefined (libvirt:
//! tools/virsh-domain.c cmdEdit with tools/vsh-edit.c's loop).

use anyhow::Result;

use super::hotplug::verb;
use super::util::{DOMAIN, lookup_domain};
use crate::cli::ctx::CmdCtx;
use crate::cli::edit::{Reedit, ask_reedit, edit_text};
use crate::cli::parse::ParsedArgs;
use crate::cli::table::{CmdDef, OptDef};
use crate::domain::FormatFlags;
use crate::driver::define_flags::DEFINE_VALIDATE;

pub const CMDS: &[CmdDef] = &[verb(
    "edit",
    "edit XML configuration for a domain",
    "Edit the XML configuration for a domain.",
    &[
        DOMAIN,
        OptDef::flag(
            "skip-validate",
            "skip validation of the XML document against the schema",
        ),
    ],
    cmd_edit,
    "virDomainDefineXMLFlags",
)];

const XML_FLAGS: FormatFlags = FormatFlags {
    inactive: true,
    secure: true,
};

fn cmd_edit(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let conn = ctx.conn()?;
    let dom = lookup_domain(conn, args.required("domain")?)?;
    let mut flags = if args.flag("skip-validate") {
        0
    } else {
        DEFINE_VALIDATE
    };
    let mut doc = dom.xml_desc(XML_FLAGS)?;
    let mut edited = edit_text(&doc)?;
    loop {
        if edited == doc {
            ctx.println_extra(format!(
                "Domain '{}' XML configuration not changed.",
                dom.name()
            ));
            return Ok(());
        }
        // Someone else may have changed it meanwhile; then the user sees theirs.
        let reread = dom.xml_desc(XML_FLAGS)?;
        let (msg, err) = if reread != doc {
            doc = reread;
            (
                "The XML configuration was changed by another user.",
                anyhow::anyhow!("The XML configuration was changed by another user."),
            )
        } else {
            match conn.define_domain_xml_flags(&edited, flags) {
                Ok(d) => {
                    ctx.println_extra(format!("Domain '{}' XML configuration edited.", d.name()));
                    return Ok(());
                }
                Err(e) => ("Failed.", anyhow::Error::from(e)),
            }
        };
        match ask_reedit(msg, &err, flags & DEFINE_VALIDATE != 0) {
            Reedit::Again => edited = edit_text(&edited)?,
            Reedit::Force => {}
            Reedit::Relax => flags &= !DEFINE_VALIDATE,
            Reedit::GiveUp => return Err(err),
        }
    }
}
