//! Secret: secrets and their values, worded as virsh's.

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::Serialize;

use super::util::{read_xml_file, render_table};
use crate::cli::ctx::CmdCtx;
use crate::cli::parse::ParsedArgs;
use crate::cli::table::{Access, CmdDef, Completer, Group, OptDef};

const SECRET: OptDef = OptDef::data("secret", "secret UUID").complete(Completer::Secret);

const fn verb(
    name: &'static str,
    info: &'static str,
    desc: &'static str,
    opts: &'static [OptDef],
    handler: crate::cli::table::Handler,
    access: Access,
) -> CmdDef {
    CmdDef::new(Group::Secret, name, info, desc, opts, handler).with_access(access)
}

pub const CMDS: &[CmdDef] = &[
    verb(
        "secret-define",
        "define or modify a secret from an XML file",
        "Define or modify a secret.",
        &[
            OptDef::data("file", "file containing secret attributes in XML")
                .complete(Completer::File),
        ],
        cmd_define,
        Access::Write("virSecretDefineXML"),
    ),
    CmdDef {
        json: true,
        ..verb(
            "secret-list",
            "list secrets",
            "Returns a list of secrets",
            &[],
            cmd_list,
            Access::Read,
        )
    },
    verb(
        "secret-set-value",
        "set a secret value",
        "Set a secret value.",
        &[
            SECRET,
            OptDef::string("file", "read secret from file").complete(Completer::File),
            OptDef::flag(
                "plain",
                "read the secret from file without converting from base64",
            ),
            OptDef::string("base64", "base64-encoded secret value"),
        ],
        cmd_set_value,
        Access::Write("virSecretSetValue"),
    ),
    verb(
        "secret-undefine",
        "undefine a secret",
        "Undefine a secret.",
        &[SECRET],
        cmd_undefine,
        Access::Write("virSecretUndefine"),
    ),
];

/// `vsh secret-define FILE` (libvirt: cmdSecretDefine).
fn cmd_define(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let file = args.required("file")?;
    let xml = read_xml_file(file)?;
    let s = ctx
        .conn()?
        .define_secret_xml(&xml)
        .with_context(|| format!("Failed to set attributes from {file}"))?;
    ctx.println_extra(format!("Secret {} created", s.uuid_string()));
    Ok(())
}

/// `vsh secret-set-value UUID (--file F [--plain] | --base64 B)` (libvirt: cmdSecretSetValue).
fn cmd_set_value(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let uuid = args.required("secret")?;
    let value = match (args.string("file"), args.string("base64")) {
        (Some(_), Some(_)) => bail!("Options --file and --base64 are mutually exclusive"),
        (None, None) => bail!("Input secret value is missing"),
        (Some(f), None) => {
            let data = std::fs::read(f).map_err(|e| {
                anyhow::anyhow!(
                    "failed to read secret file '{f}': {}",
                    crate::driver::config::strerror(&e)
                )
            })?;
            if args.flag("plain") {
                data
            } else {
                decode(data.trim_ascii())?
            }
        }
        (None, Some(b)) => decode(b.trim().as_bytes())?,
    };
    let s = ctx.conn()?.lookup_secret_by_uuid(uuid)?;
    s.set_value(&value)?;
    ctx.println_extra("Secret value set");
    Ok(())
}

/// One row of `secret-list --json`.
#[derive(Serialize)]
struct SecretEntry {
    uuid: String,
    /// `volume`, `ceph`, `iscsi`, `tls`, `vtpm`; null when unused.
    usage_type: Option<String>,
    usage_id: Option<String>,
}

/// `vsh secret-list` (libvirt: cmdSecretList).
fn cmd_list(ctx: &mut CmdCtx, _: &ParsedArgs) -> Result<()> {
    let entries: Vec<SecretEntry> = ctx
        .conn()?
        .list_secrets()?
        .iter()
        .map(|s| SecretEntry {
            uuid: s.uuid_string().to_string(),
            usage_type: s.usage_id().map(|_| s.usage_type().to_string()),
            usage_id: s.usage_id().map(str::to_string),
        })
        .collect();
    ctx.emit(&entries, |entries| {
        let rows: Vec<Vec<String>> = entries
            .iter()
            .map(|e| {
                let usage = match (&e.usage_type, &e.usage_id) {
                    (Some(t), Some(id)) => format!("{t} {id}"),
                    _ => "Unused".to_string(),
                };
                vec![e.uuid.clone(), usage]
            })
            .collect();
        render_table(&["UUID", "Usage"], &rows)
    });
    Ok(())
}

/// `vsh secret-undefine UUID` (libvirt: cmdSecretUndefine).
fn cmd_undefine(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let uuid = args.required("secret")?;
    let s = ctx.conn()?.lookup_secret_by_uuid(uuid)?;
    s.undefine()
        .with_context(|| format!("Failed to delete secret {uuid}"))?;
    ctx.println_extra(format!("Secret {uuid} deleted"));
    Ok(())
}

fn decode(b: &[u8]) -> Result<Vec<u8>> {
    B64.decode(b)
        .map_err(|_| anyhow::anyhow!("Invalid base64 data"))
}
