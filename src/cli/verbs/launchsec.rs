//! AMD SEV verbs: `nodesevinfo` (libvirt: tools/virsh-host.c cmdNodeSEVInfo),
//! `domlaunchsecinfo`, `domsetlaunchsecstate` (tools/virsh-domain.c cmdDomLaunchSecInfo,
//! cmdDomSetLaunchSecState).

use anyhow::{Context, Result, bail};

use super::util::{DOMAIN, lookup_domain};
use crate::cli::ctx::CmdCtx;
use crate::cli::parse::ParsedArgs;
use crate::cli::table::{Access, CmdDef, Group, OptDef};
use crate::driver::launch_sec::{LaunchSecret, Params};

pub const CMDS: &[CmdDef] = &[
    CmdDef::new(
        Group::HostAndHypervisor,
        "nodesevinfo",
        "node SEV information",
        "Returns basic SEV information about the node.",
        &[],
        cmd_nodesevinfo,
    )
    .with_json(true),
    CmdDef::new(
        Group::DomainManagement,
        "domlaunchsecinfo",
        "Get domain launch security info",
        "Get the launch security parameters for a guest domain",
        &[DOMAIN],
        cmd_domlaunchsecinfo,
    )
    .with_json(true),
    CmdDef::new(
        Group::DomainManagement,
        "domsetlaunchsecstate",
        "Set domain launch security state",
        "Set a secret in the guest domain's memory",
        &[
            DOMAIN,
            OptDef::string("secrethdr", "path to file containing the secret header"),
            OptDef::string("secret", "path to file containing the secret"),
            OptDef::int(
                "set-address",
                "physical address within the guest domain's memory to set the secret",
            ),
        ],
        cmd_domsetlaunchsecstate,
    )
    .with_access(Access::Write("virDomainSetLaunchSecurityState")),
];

/// Typed parameters as virsh lists them, names padded to `width`; under `--json` one object.
fn emit_params(ctx: &CmdCtx, params: &Params, width: usize) {
    let obj: serde_json::Map<String, serde_json::Value> = params
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::to_value(v).unwrap_or_default()))
        .collect();
    ctx.emit(&obj, |_| {
        params
            .iter()
            .map(|(k, v)| format!("{k:<width$}: {}\n", v.render()))
            .collect()
    });
}

fn cmd_nodesevinfo(ctx: &mut CmdCtx, _args: &ParsedArgs) -> Result<()> {
    let params = ctx
        .conn()?
        .node_sev_info()
        .context("Unable to get host SEV information")?;
    emit_params(ctx, &params, 18);
    Ok(())
}

fn cmd_domlaunchsecinfo(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    let params = dom
        .launch_security_info(0)
        .context("Unable to get launch security parameters")?;
    emit_params(ctx, &params, 15);
    Ok(())
}

/// A secret file as libvirt reads it: at most 64 KiB (libvirt: virFileReadAll).
fn read_secret_file(path: &str) -> Result<String> {
    use std::io::Read;
    const MAX: u64 = 64 * 1024;
    let f = std::fs::File::open(path).map_err(|e| {
        anyhow::anyhow!(
            "Failed to open file '{path}': {}",
            crate::driver::config::strerror(&e)
        )
    })?;
    let mut data = Vec::new();
    f.take(MAX + 1).read_to_end(&mut data).map_err(|e| {
        anyhow::anyhow!(
            "Failed to read file '{path}': {}",
            crate::driver::config::strerror(&e)
        )
    })?;
    if data.len() as u64 > MAX {
        bail!("File '{path}' is too large");
    }
    String::from_utf8(data).map_err(|_| anyhow::anyhow!("File '{path}' is not UTF-8"))
}

fn cmd_domsetlaunchsecstate(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    let (Some(hdr), Some(sec)) = (args.string("secrethdr"), args.string("secret")) else {
        bail!("Both secret and the secret header are required");
    };
    let secret = LaunchSecret {
        header: read_secret_file(hdr)?,
        secret: read_secret_file(sec)?,
        address: args.int::<u64>("set-address")?,
    };
    dom.set_launch_security_state(&secret, 0)
        .context("Unable to set launch security state")?;
    Ok(())
}
