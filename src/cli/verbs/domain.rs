//! Domain Management: defining, starting and stopping domains, their XML and console.

use anyhow::{Context, Result, bail};

use super::util::{DOMAIN, DOMAIN_ACTIVE};
use super::util::{lookup_domain, read_xml_file};
use crate::cli::console_expect;
use crate::cli::ctx::CmdCtx;
use crate::cli::parse::ParsedArgs;
use crate::cli::table::{Access, CmdDef, Completer, DomainFilter, Group, OptDef};

const DOMAIN_INACTIVE: OptDef =
    OptDef::domain("name of the inactive domain", DomainFilter::Inactive);
const FILE: OptDef =
    OptDef::data("file", "file containing an XML domain description").complete(Completer::File);

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
        "console",
        "connect to the guest console",
        "Connect the virtual serial console for the guest, or with --expect run a\n    \
         non-interactive expect session on it.",
        &[
            DOMAIN_ACTIVE,
            OptDef::string("devname", "character device name").positional(),
            OptDef::flag(
                "force",
                "force console connection (disconnect already connected sessions)",
            ),
            OptDef::flag("safe", "only connect if safe console handling is supported"),
            OptDef::argv(
                "expect",
                "wait for a match of this regular expression (repeatable)",
            )
            .named_only(),
            OptDef::argv("send", "type this line and Enter (repeatable)").named_only(),
            OptDef::int("timeout", "seconds each --expect may wait (default 30)"),
        ],
        cmd_console,
        Access::Write("virDomainOpenConsole"),
    ),
    verb(
        "create",
        "create a domain from an XML file",
        "Create a domain.",
        &[
            FILE,
            OptDef::flag("paused", "leave the guest paused after creation"),
        ],
        cmd_create,
        Access::Write("virDomainCreateXML"),
    ),
    verb(
        "define",
        "define (but don't start) a domain from an XML file",
        "Define a domain.",
        &[
            FILE,
            OptDef::flag("validate", "validate the XML against the schema"),
        ],
        cmd_define,
        Access::Write("virDomainDefineXML"),
    ),
    verb(
        "destroy",
        "destroy (stop) a domain",
        "Forcefully stop a given domain, but leave its resources intact.",
        &[DOMAIN_ACTIVE],
        cmd_lifecycle,
        Access::Write("virDomainDestroy"),
    ),
    verb(
        "domxml-to-native",
        "Convert domain XML to native config",
        "Convert domain XML config to a native guest configuration format.",
        &[
            OptDef::data("format", "target config data type format")
                .complete(Completer::Words(&["qemu-argv"])),
            OptDef::string("domain", "domain name, id or uuid")
                .complete(Completer::Domain(DomainFilter::All)),
            OptDef::data("xml", "xml data file to export from")
                .optional()
                .complete(Completer::File),
            OptDef::flag(
                "explain",
                "show each QEMU option beside the XML it comes from",
            ),
        ],
        cmd_domxml_to_native,
        Access::Read,
    ),
    verb(
        "dumpxml",
        "domain information in XML",
        "Output the domain information as an XML dump to stdout.",
        &[
            DOMAIN,
            OptDef::flag("inactive", "show inactive defined XML"),
            OptDef::flag(
                "security-info",
                "include security sensitive information in XML dump",
            ),
            OptDef::string("xpath", "xpath expression to filter the XML document"),
            OptDef::flag("wrap", "wrap xpath results in an common root element"),
        ],
        cmd_dumpxml,
        Access::Read,
    ),
    verb(
        "reboot",
        "reboot a domain",
        "Run a reboot command in the target domain.",
        &[DOMAIN_ACTIVE, POWER_MODE],
        cmd_lifecycle,
        Access::Write("virDomainReboot"),
    ),
    verb(
        "resume",
        "resume a domain",
        "Resume a previously suspended domain.",
        &[DOMAIN_ACTIVE],
        cmd_lifecycle,
        Access::Write("virDomainResume"),
    ),
    verb(
        "shutdown",
        "gracefully shutdown a domain",
        "Run shutdown in the target domain.",
        &[DOMAIN_ACTIVE, POWER_MODE],
        cmd_lifecycle,
        Access::Write("virDomainShutdown"),
    ),
    verb(
        "start",
        "start a (previously defined) inactive domain",
        "Start a domain.",
        &[
            DOMAIN_INACTIVE,
            OptDef::flag("paused", "leave the guest paused after start"),
            OptDef::flag(
                "reset-nvram",
                "re-initialize NVRAM from its pristine template",
            ),
        ],
        cmd_start,
        Access::Write("virDomainCreate"),
    ),
    verb(
        "suspend",
        "suspend a domain",
        "Suspend a running domain.",
        &[DOMAIN_ACTIVE],
        cmd_lifecycle,
        Access::Write("virDomainSuspend"),
    ),
    verb(
        "undefine",
        "undefine a domain",
        "Undefine an inactive domain, or convert persistent to transient.",
        &[
            DOMAIN,
            OptDef::flag(
                "snapshots-metadata",
                "remove all domain snapshot metadata (vm must be inactive)",
            ),
            OptDef::flag(
                "checkpoints-metadata",
                "remove all domain checkpoint metadata (vm must be inactive)",
            ),
            OptDef::flag("nvram", "remove nvram file"),
            OptDef::flag("keep-nvram", "keep nvram file"),
            OptDef::flag("tpm", "remove TPM state"),
            OptDef::flag("keep-tpm", "keep TPM state"),
        ],
        cmd_undefine,
        Access::Write("virDomainUndefine"),
    ),
];

/// `vsh define FILE` (libvirt: cmdDefine).
fn cmd_define(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let file = args.required("file")?;
    let xml = read_xml_file(file)?;
    if args.flag("validate") {
        crate::driver::schema::validate_domain_xml(&xml)
            .with_context(|| format!("Failed to define domain from {file}"))?;
    }
    let dom = ctx
        .conn()?
        .define_domain_xml(&xml)
        .with_context(|| format!("Failed to define domain from {file}"))?;
    ctx.println_extra(format!("Domain '{}' defined from {file}", dom.name()));
    Ok(())
}

/// `vsh undefine DOMAIN` (libvirt: cmdUndefine).
fn cmd_undefine(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    use crate::driver::domain::UndefineFlags;
    args.exclusive("nvram", "keep-nvram")?;
    args.exclusive("tpm", "keep-tpm")?;
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    let mut flags = UndefineFlags::NONE;
    if args.flag("snapshots-metadata") {
        flags = flags | UndefineFlags::SNAPSHOTS_METADATA;
    }
    if args.flag("checkpoints-metadata") {
        flags = flags | UndefineFlags::CHECKPOINTS_METADATA;
    }
    if args.flag("nvram") {
        flags = flags | UndefineFlags::NVRAM;
    }
    if args.flag("keep-nvram") {
        flags = flags | UndefineFlags::KEEP_NVRAM;
    }
    if args.flag("tpm") {
        flags = flags | UndefineFlags::TPM;
    }
    if args.flag("keep-tpm") {
        flags = flags | UndefineFlags::KEEP_TPM;
    }
    dom.undefine_flags(flags)
        .with_context(|| format!("Failed to undefine domain '{}'", dom.name()))?;
    ctx.println_extra(format!("Domain '{}' has been undefined", dom.name()));
    Ok(())
}

/// `vsh start DOMAIN [--paused]` (libvirt: cmdStart).
fn cmd_start(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    let name = dom.name().to_string();
    use crate::driver::domain::CreateFlags;
    let mut flags = CreateFlags::from(args.flag("paused"));
    if args.flag("reset-nvram") {
        flags = flags | CreateFlags::RESET_NVRAM;
    }
    dom.create_with_flags(flags)
        .with_context(|| format!("Failed to start domain '{name}'"))?;
    ctx.println_extra(format!("Domain '{name}' started"));
    Ok(())
}

/// `vsh create FILE [--paused]` (libvirt: cmdCreate).
fn cmd_create(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    use crate::driver::domain::CreateFlags;
    let file = args.required("file")?;
    let xml = read_xml_file(file)?;
    let flags = if args.flag("paused") {
        CreateFlags::PAUSED
    } else {
        CreateFlags::NONE
    };
    let dom = ctx
        .conn()?
        .create_domain_xml(&xml, flags)
        .with_context(|| format!("Failed to create domain from {file}"))?;
    ctx.println_extra(format!("Domain '{}' created from {file}", dom.name()));
    Ok(())
}

/// `--mode` of shutdown and reboot (virsh names it "shutdown mode" for both).
const POWER_MODE: OptDef =
    OptDef::string("mode", "shutdown mode: acpi|agent|initctl|signal|paravirt").complete(
        Completer::Words(&["acpi", "agent", "initctl", "signal", "paravirt"]),
    );

/// virsh's `--mode` list (comma-separated) as libvirt's shutdown/reboot flags (libvirt:
/// cmdShutdown, cmdReboot).
fn power_flags(mode: Option<&str>) -> Result<u32> {
    use crate::driver::domain as d;
    let mut flags = 0;
    // An empty list is no mode (g_strsplit gives no parts), an empty part is unknown.
    for m in mode
        .filter(|m| !m.is_empty())
        .into_iter()
        .flat_map(|m| m.split(','))
    {
        flags |= match m {
            "acpi" => d::SHUTDOWN_ACPI_POWER_BTN,
            "agent" => d::SHUTDOWN_GUEST_AGENT,
            "initctl" => d::SHUTDOWN_INITCTL,
            "signal" => d::SHUTDOWN_SIGNAL,
            "paravirt" => d::SHUTDOWN_PARAVIRT,
            _ => bail!(
                "Unknown mode {} value, expecting 'acpi', 'agent', 'initctl', 'signal', or 'paravirt'",
                mode.unwrap_or_default()
            ),
        };
    }
    Ok(flags)
}

/// `vsh destroy|suspend|resume|shutdown|reboot DOMAIN`, with virsh's messages.
fn cmd_lifecycle(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let verb = args.cmd.name;
    // virsh checks the modes before it looks the domain up.
    let power = match verb {
        "shutdown" | "reboot" => power_flags(args.string("mode"))?,
        _ => 0,
    };
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    let name = dom.name().to_string();
    let (res, done) = match verb {
        "destroy" => (dom.destroy(), "destroyed"),
        "suspend" => (dom.suspend(), "suspended"),
        "resume" => (dom.resume(), "resumed"),
        "shutdown" => (dom.shutdown_flags(power), "is being shutdown"),
        "reboot" => (dom.reboot_flags(power), "is being rebooted"),
        other => bail!("internal error: no lifecycle action '{other}'"),
    };
    res.with_context(|| format!("Failed to {verb} domain '{name}'"))?;
    ctx.println_extra(format!("Domain '{name}' {done}"));
    Ok(())
}

/// `vsh dumpxml DOMAIN [--inactive] [--security-info]` (libvirt: cmdDumpXML).
fn cmd_dumpxml(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    let xml = dom.xml_desc(crate::domain::FormatFlags {
        inactive: args.flag("inactive"),
        secure: args.flag("security-info"),
    })?;
    if let Some(expr) = args.string("xpath") {
        ctx.print(super::xpath::render(&xml, expr, args.flag("wrap"))?);
        return Ok(());
    }
    ctx.print(&xml);
    if !xml.ends_with('\n') {
        ctx.println("");
    }
    Ok(())
}

/// `vsh domxml-to-native qemu-argv {[--xml] FILE | --domain DOMAIN} [--explain]`
/// (libvirt: cmdDomXMLToNative).
fn cmd_domxml_to_native(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let format = args.required("format")?;
    let xml = match (args.string("domain"), args.string("xml")) {
        (Some(_), Some(_)) => bail!("Options --domain and --xml are mutually exclusive"),
        (None, None) => bail!("need either domain or domain XML"),
        (None, Some(file)) => read_xml_file(file)?,
        (Some(d), None) => lookup_domain(ctx.conn()?, d)?.xml_desc(Default::default())?,
    };
    if format != "qemu-argv" {
        bail!("invalid argument: unsupported config type {format}");
    }
    let conn = ctx.conn()?;
    let (def, cmd) = conn.domain_xml_to_native_with_def(&xml)?;
    if args.flag("explain") {
        let lines = crate::xml2argv::explain::explain(&def, &cmd);
        ctx.print(crate::xml2argv::explain::render(&lines));
    } else {
        ctx.println(cmd.to_shell_line());
    }
    Ok(())
}

/// `vsh console DOMAIN [--devname ALIAS] [--force]`: virsh's session, also usable with a pipe
/// on stdin (its end detaches once the guest is quiet); with `--expect`/`--send`, a scripted
/// session instead (libvirt: cmdConsole).
fn cmd_console(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    use crate::driver::console::attach_terminal;
    let devname = args.string("devname");
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    if !dom.is_active()? {
        bail!("The domain is not running");
    }
    let steps = console_expect::steps(args)?;
    if !steps.is_empty() {
        return console_expect::run(ctx, &dom, devname, &steps, args);
    }
    let console = dom.console(devname)?;
    if console.pty_path().is_none() {
        bail!(
            "internal error: character device {} is not using a PTY",
            devname.unwrap_or(console.device())
        );
    }
    let session = dom.console_stream(console.device(), args.flag("force"))?;
    ctx.println_extra(format!("Connected to domain '{}'", dom.name()));
    let esc = &ctx.globals.escape_text;
    match esc.strip_prefix('^') {
        Some(key) => ctx.println_extra(format!("Escape character is {esc} (Ctrl + {key})")),
        None => ctx.println_extra(format!("Escape character is {esc}")),
    }
    let quiet = std::time::Duration::from_secs(1);
    attach_terminal(session, ctx.globals.escape, quiet)?;
    Ok(())
}
