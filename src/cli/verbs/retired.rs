//! Verbs whose API libvirt's QEMU driver dropped: `domxml-from-native` and `qemu-attach`
//! (libvirt: tools/virsh-domain.c cmdDomXMLFromNative, cmdQemuAttach). The QEMU driver has
//! had no `connectDomainXMLFromNative` and no `domainQemuAttach` since libvirt 5.5.0, so
//! virsh against it reads its input and then reports VIR_ERR_NO_SUPPORT; so do we, with the
//! same lines, rather than leave a virsh user with "unknown command".

use anyhow::{Context, Result};

use super::util::read_xml_file;
use crate::cli::ctx::CmdCtx;
use crate::cli::parse::ParsedArgs;
use crate::cli::table::{Access, CmdDef, Completer, Group, OptDef};
use crate::driver::DriverError;

pub const CMDS: &[CmdDef] = &[
    CmdDef::new(
        Group::DomainManagement,
        "domxml-from-native",
        "Convert native config to domain XML",
        "Convert native guest configuration format to domain XML format.",
        &[
            OptDef::data("format", "source config data format")
                .complete(Completer::Words(&["qemu-argv"])),
            OptDef::data("config", "config data file to import from").complete(Completer::File),
        ],
        cmd_domxml_from_native,
    ),
    CmdDef::new(
        Group::DomainManagement,
        "qemu-attach",
        "QEMU Attach",
        "QEMU Attach",
        &[OptDef::data("pid", "pid")],
        cmd_qemu_attach,
    )
    .with_access(Access::Write("virDomainQemuAttach")),
];

fn cmd_domxml_from_native(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    // virsh reads the file before it asks the driver, so a missing file is its error.
    read_xml_file(args.required("config")?)?;
    ctx.conn()?;
    Err(DriverError::NoSupport("virConnectDomainXMLFromNative".into()).into())
}

fn cmd_qemu_attach(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let pid: u32 = args.int("pid")?.unwrap_or(0);
    ctx.conn()?;
    Err(anyhow::Error::from(DriverError::NoSupport(
        "virDomainQemuAttach".into(),
    )))
    .with_context(|| format!("Failed to attach to pid {pid}"))
}
