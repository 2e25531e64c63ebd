//! Host and Hypervisor: what this host and its emulators can do, and the connection.

use anyhow::{Context, Result};
use serde::Serialize;

use crate::cli::ctx::CmdCtx;
use crate::cli::parse::ParsedArgs;
use crate::cli::table::{CmdDef, Completer, Group, OptDef};

const fn verb(
    name: &'static str,
    info: &'static str,
    desc: &'static str,
    opts: &'static [OptDef],
    handler: crate::cli::table::Handler,
    json: bool,
) -> CmdDef {
    CmdDef::new(Group::HostAndHypervisor, name, info, desc, opts, handler).with_json(json)
}

pub const CMDS: &[CmdDef] = &[
    verb(
        "capabilities",
        "capabilities",
        "Returns capabilities of hypervisor/driver.",
        &[],
        cmd_capabilities,
        false,
    ),
    verb(
        "domcapabilities",
        "domain capabilities",
        "Returns capabilities of emulator with respect to host and libvirt.",
        &[
            OptDef::string("virttype", "virtualization type (/domain/@type)")
                .positional()
                .complete(Completer::Words(&["qemu", "kvm"])),
            OptDef::string(
                "emulatorbin",
                "path to emulator binary (/domain/devices/emulator)",
            )
            .positional()
            .complete(Completer::File),
            OptDef::string("arch", "domain architecture (/domain/os/type/@arch)").positional(),
            OptDef::string("machine", "machine type (/domain/os/type/@machine)").positional(),
        ],
        cmd_domcapabilities,
        false,
    ),
    verb(
        "uri",
        "print the hypervisor canonical URI",
        "",
        &[],
        cmd_uri,
        true,
    ),
    verb(
        "version",
        "show version",
        "Display the system version information.",
        &[],
        cmd_version,
        true,
    ),
];

/// `vsh capabilities` (libvirt: cmdCapabilities): the document and a newline of virsh's own.
fn cmd_capabilities(ctx: &mut CmdCtx, _: &ParsedArgs) -> Result<()> {
    let xml = ctx.conn()?.capabilities()?;
    ctx.println(xml);
    Ok(())
}

/// `vsh domcapabilities` (libvirt: cmdDomCapabilities).
fn cmd_domcapabilities(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let xml = ctx
        .conn()?
        .domain_capabilities(
            args.string("emulatorbin"),
            args.string("arch"),
            args.string("machine"),
            args.string("virttype"),
        )
        .context("failed to get emulator capabilities")?;
    ctx.println(xml);
    Ok(())
}

/// `uri --json`.
#[derive(Serialize)]
struct Uri {
    uri: String,
}

/// `vsh uri` (libvirt: cmdURI).
fn cmd_uri(ctx: &mut CmdCtx, _: &ParsedArgs) -> Result<()> {
    let v = Uri {
        uri: ctx.conn()?.uri(),
    };
    ctx.emit(&v, |v| format!("{}\n", v.uri));
    Ok(())
}

/// `version --json`.
#[derive(Serialize)]
struct Version {
    /// domdriver's version (virsh's library and API lines).
    library: String,
    /// The host architecture's QEMU, `major.minor.micro`; null when none is installed.
    hypervisor: Option<String>,
}

/// `vsh version` (libvirt: cmdVersion).
fn cmd_version(ctx: &mut CmdCtx, _: &ParsedArgs) -> Result<()> {
    let conn = ctx.conn()?;
    let host = crate::capabilities::qemu::host_arch();
    let inv = conn.emulator_summaries();
    let hypervisor = inv
        .emulators
        .iter()
        .find(|(_, c)| c.arch == host)
        .map(|(_, c)| {
            format!(
                "{}.{}.{}",
                c.version / 1_000_000,
                c.version / 1000 % 1000,
                c.version % 1000
            )
        });
    if hypervisor.is_none() {
        ctx.warn(format!(
            "no QEMU for the host architecture {host} is installed"
        ));
    }
    let v = Version {
        library: env!("CARGO_PKG_VERSION").to_string(),
        hypervisor,
    };
    ctx.emit(&v, |v| {
        let mut out = format!(
            "Compiled against library: domdriver {0}\nUsing library: domdriver {0}\n\
             Using API: QEMU {0}\n",
            v.library
        );
        if let Some(h) = &v.hypervisor {
            out.push_str(&format!("Running hypervisor: QEMU {h}\n"));
        }
        out
    });
    Ok(())
}
