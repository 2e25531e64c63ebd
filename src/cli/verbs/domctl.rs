//! Domain Management verbs that act through the monitor: `qemu-monitor-command`, `send-key`,
//! `screenshot` and `reset` (libvirt: tools/virsh-domain.c).

use anyhow::{Context, Result, bail};

use super::util::DOMAIN_ACTIVE;
use super::util::lookup_domain;
use crate::cli::ctx::CmdCtx;
use crate::cli::parse::ParsedArgs;
use crate::cli::table::{Access, CmdDef, Completer, Group, OptDef};
use crate::driver::keycodes;

const fn verb(
    name: &'static str,
    info: &'static str,
    desc: &'static str,
    opts: &'static [OptDef],
    handler: crate::cli::table::Handler,
    access: Access,
) -> CmdDef {
    CmdDef::new(Group::DomainManagement, name, info, desc, opts, handler).with_access(access)
}

pub const CMDS: &[CmdDef] = &[
    verb(
        "qemu-monitor-command",
        "QEMU Monitor Command",
        "QEMU Monitor Command",
        &[
            DOMAIN_ACTIVE,
            OptDef::flag("hmp", "command is in human monitor protocol"),
            OptDef::flag("pretty", "pretty-print any qemu monitor protocol output"),
            OptDef::flag(
                "return-value",
                "extract the value of the 'return' key from the returned string",
            ),
            OptDef::argv("cmd", "command").required(),
        ],
        cmd_qemu_monitor_command,
        Access::Write("virDomainQemuMonitorCommand"),
    ),
    verb(
        "reset",
        "reset a domain",
        "Reset the target domain as if by power button",
        &[DOMAIN_ACTIVE],
        cmd_reset,
        Access::Write("virDomainReset"),
    ),
    verb(
        "screenshot",
        "take a screenshot of a current domain console and store it into a file",
        "screenshot of a current domain console",
        &[
            DOMAIN_ACTIVE,
            OptDef::string("file", "where to store the screenshot")
                .positional()
                .complete(Completer::File),
            OptDef::int("screen", "ID of a screen to take screenshot of"),
        ],
        cmd_screenshot,
        Access::Read,
    ),
    verb(
        "send-key",
        "Send keycodes to the guest",
        "Send keycodes (integers or symbolic names) to the guest",
        &[
            DOMAIN_ACTIVE,
            OptDef::string("codeset", "the codeset of keycodes, default:linux")
                .complete(Completer::Words(keycodes::CODESETS)),
            OptDef::int(
                "holdtime",
                "the time (in milliseconds) how long the keys will be held",
            ),
            OptDef::argv("keycode", "the key code").required(),
        ],
        cmd_send_key,
        Access::Write("virDomainSendKey"),
    ),
];

/// `vsh qemu-monitor-command DOMAIN [--hmp] [--pretty] [--return-value] CMD...`
/// (libvirt: cmdQemuMonitorCommand). QEMU's reply is printed as QEMU wrote it, without the
/// `id` libvirt's own requests carry.
fn cmd_qemu_monitor_command(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    args.exclusive("hmp", "pretty")?;
    args.exclusive("hmp", "return-value")?;
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    let cmd = args.all("cmd").join(" ");
    let hmp = args.flag("hmp");
    let reply = dom.qemu_monitor_command(&cmd, hmp)?;
    if hmp {
        ctx.print(&reply);
        if !reply.ends_with('\n') {
            ctx.println("");
        }
        return Ok(());
    }
    let value: serde_json::Value = serde_json::from_str(&reply)?;
    let shown = if args.flag("return-value") {
        let Some(ret) = value.get("return") else {
            bail!(
                "internal error: failed to extract 'return' key from '{}'",
                reply
            );
        };
        ret.clone()
    } else {
        value
    };
    let text = if args.flag("pretty") {
        serde_json::to_string_pretty(&shown)?
    } else if args.flag("return-value") {
        serde_json::to_string(&shown)?
    } else {
        reply
    };
    ctx.println(text);
    Ok(())
}

/// `vsh reset DOMAIN` (libvirt: cmdReset).
fn cmd_reset(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    let name = dom.name().to_string();
    dom.reset()
        .with_context(|| format!("Failed to reset domain '{name}'"))?;
    ctx.println_extra(format!("Domain '{name}' was reset"));
    Ok(())
}

/// `vsh send-key DOMAIN [--codeset CODESET] [--holdtime MS] KEYCODE...` (libvirt:
/// cmdSendKey): each key a number or a name of the codeset, at most 16.
fn cmd_send_key(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let name = args.string("codeset").unwrap_or("linux");
    let Some(codeset) = keycodes::Codeset::from_name(name) else {
        bail!("unknown codeset: '{name}'");
    };
    let holdtime: u32 = args.int::<i32>("holdtime")?.unwrap_or(0).max(0) as u32;
    let mut keys = Vec::new();
    for k in args.all("keycode") {
        if keys.len() == crate::driver::control::SEND_KEY_MAX_KEYS {
            bail!("too many keycodes");
        }
        let Some(v) = keycodes::keycode(codeset, k) else {
            bail!("invalid keycode: '{k}'");
        };
        keys.push(v);
    }
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    dom.send_key(codeset, holdtime, &keys)?;
    Ok(())
}

/// virsh's file name for a screenshot: `NAME-YYYY-MM-DD-HH:MM:SS.ppm` (local time).
// libvirt: virshGenFileName
fn screenshot_name(dom: &str) -> String {
    let now = std::process::Command::new("date")
        .arg("+%Y-%m-%d-%H:%M:%S")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "screenshot".into());
    format!("{dom}-{now}.ppm")
}

/// `vsh screenshot DOMAIN [FILE] [--screen N]` (libvirt: cmdScreenshot).
fn cmd_screenshot(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    let screen = args.int::<u32>("screen")?.unwrap_or(0);
    let file = match args.string("file") {
        Some(f) => f.to_string(),
        None => screenshot_name(dom.name()),
    };
    let (mime, data) = dom
        .screenshot(screen)
        .with_context(|| format!("could not take a screenshot of {}", dom.name()))?;
    std::fs::write(&file, &data).map_err(|_| anyhow::anyhow!("cannot create file {file}"))?;
    ctx.println_extra(format!("Screenshot saved to {file}, with type of {mime}"));
    Ok(())
}
