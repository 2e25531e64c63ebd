//! Secret reads: a secret's XML and its value, worded as virsh's.

use anyhow::{Context, Result};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use crate::cli::ctx::CmdCtx;
use crate::cli::parse::ParsedArgs;
use crate::cli::table::{Access, CmdDef, Completer, Group, OptDef};
use crate::driver::Connect;
use crate::driver::secret::Secret;

const SECRET: OptDef = OptDef::data("secret", "secret UUID").complete(Completer::Secret);

pub const CMDS: &[CmdDef] = &[
    CmdDef::new(
        Group::Secret,
        "secret-dumpxml",
        "secret attributes in XML",
        "Output attributes of a secret as an XML dump to stdout.",
        &[
            SECRET,
            OptDef::string("xpath", "xpath expression to filter the XML document"),
            OptDef::flag("wrap", "wrap xpath results in an common root element"),
        ],
        cmd_dumpxml,
    ),
    CmdDef::new(
        Group::Secret,
        "secret-get-value",
        "Output a secret value",
        "Output a secret value to stdout.",
        &[
            SECRET,
            OptDef::flag("plain", "get value without converting to base64"),
        ],
        cmd_get_value,
    )
    // libvirt's virSecretGetValue is refused on a read-only connection.
    .with_access(Access::Write("virSecretGetValue")),
];

/// The secret named by the `secret` option (libvirt: virshCommandOptSecret).
fn lookup<'c>(conn: &'c Connect, args: &ParsedArgs) -> Result<Secret<'c>> {
    let uuid = args.required("secret")?;
    conn.lookup_secret_by_uuid(uuid)
        .with_context(|| format!("failed to get secret '{uuid}'"))
}

/// `vsh secret-dumpxml UUID [--xpath EXPR [--wrap]]` (libvirt: cmdSecretDumpXML).
fn cmd_dumpxml(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let xml = lookup(ctx.conn()?, args)?.xml_desc();
    match args.string("xpath") {
        Some(expr) => ctx.print(super::xpath::render(&xml, expr, args.flag("wrap"))?),
        None if xml.ends_with('\n') => ctx.print(xml),
        None => ctx.println(xml),
    }
    Ok(())
}

/// `vsh secret-get-value UUID [--plain]` (libvirt: cmdSecretGetValue). Like virsh, no
/// newline of its own: the one after the value is virsh's end-of-command line, which `-q`
/// leaves out.
fn cmd_get_value(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let value = lookup(ctx.conn()?, args)?.value()?;
    if args.flag("plain") {
        ctx.out().write_bytes(&value);
    } else {
        ctx.print(B64.encode(&value));
    }
    Ok(())
}
