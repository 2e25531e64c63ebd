//! Domain Management's read verbs: ids and names, vCPU counts and placement, where the
//! displays and console are, and the title, description and metadata (libvirt:
//! tools/virsh-domain.c, virsh-domain-monitor.c).

use anyhow::{Context, Result, bail};
use serde::Serialize;

use super::readfmt;
use super::util::lookup_domain;
use super::util::{DOMAIN, DOMAIN_ACTIVE};
use crate::Connect;
use crate::cli::ctx::CmdCtx;
use crate::cli::parse::ParsedArgs;
use crate::cli::table::{Access, CmdDef, DomainFilter, Group, OptDef};
use crate::domain::FormatFlags;
use crate::driver::domain::Domain;
use crate::driver::metadata::{Affect, MetadataKind};

const fn verb(
    name: &'static str,
    info: &'static str,
    desc: &'static str,
    opts: &'static [OptDef],
    handler: crate::cli::table::Handler,
    access: Access,
    json: bool,
) -> CmdDef {
    CmdDef::new(Group::DomainManagement, name, info, desc, opts, handler)
        .with_access(access)
        .with_json(json)
}

const AFFECT: [OptDef; 3] = [
    OptDef::flag("live", "modify/get running state"),
    OptDef::flag("config", "modify/get persistent state"),
    OptDef::flag("current", "modify/get current state"),
];

pub const CMDS: &[CmdDef] = &[
    verb(
        "desc",
        "show or set domain's description or title",
        "Allows setting or modifying the description or title of a domain.",
        &super::metadata::desc_opts(DOMAIN, AFFECT),
        cmd_desc,
        Access::Write("virDomainSetMetadata"),
        true,
    ),
    verb(
        "domdisplay",
        "domain display connection URI",
        "Output the IP address and port number for the graphical display.",
        &[
            DOMAIN_ACTIVE,
            OptDef::flag(
                "include-password",
                "includes the password into the connection URI if available",
            ),
            OptDef::string(
                "type",
                "select particular graphical display (e.g. \"vnc\", \"spice\", \"rdp\")",
            )
            .positional(),
            OptDef::flag("all", "show all possible graphical displays"),
        ],
        cmd_domdisplay,
        Access::Read,
        true,
    ),
    verb(
        "domid",
        "convert a domain name or UUID to domain id",
        "",
        &[OptDef::domain("domain name or uuid", DomainFilter::All)],
        cmd_domid,
        Access::Read,
        true,
    ),
    verb(
        "domname",
        "convert a domain id or UUID to domain name",
        "",
        &[OptDef::domain("domain id or uuid", DomainFilter::All)],
        cmd_domname,
        Access::Read,
        true,
    ),
    verb(
        "domuuid",
        "convert a domain name or id to domain UUID",
        "",
        &[OptDef::domain("domain id or name", DomainFilter::All)],
        cmd_domuuid,
        Access::Read,
        true,
    ),
    verb(
        "lxc-enter-namespace",
        "LXC Guest Enter Namespace",
        "Run an arbitrary command in a lxc guest namespace; use at your own risk",
        &[
            DOMAIN_ACTIVE,
            OptDef::flag("noseclabel", "Do not change process security label"),
            OptDef::argv("cmd", "command to run").required(),
        ],
        cmd_lxc_enter_namespace,
        Access::Write("virDomainLxcOpenNamespace"),
        false,
    ),
    verb(
        "metadata",
        "show or set domain's custom XML metadata",
        "Shows or modifies the XML metadata of a domain.",
        &super::metadata::metadata_opts(DOMAIN, AFFECT),
        cmd_metadata,
        Access::Write("virDomainSetMetadata"),
        true,
    ),
    verb(
        "ttyconsole",
        "tty console",
        "Output the device for the TTY console.",
        &[DOMAIN_ACTIVE],
        cmd_ttyconsole,
        Access::Read,
        true,
    ),
    verb(
        "vcpucount",
        "domain vcpu counts",
        "Returns the number of virtual CPUs used by the domain.",
        &[
            DOMAIN,
            OptDef::flag("maximum", "get maximum count of vcpus"),
            OptDef::flag("active", "get number of currently active vcpus"),
            OptDef::flag("live", "get value from running domain"),
            OptDef::flag("config", "get value to be used on next boot"),
            OptDef::flag("current", "get value according to current domain state"),
            OptDef::flag(
                "guest",
                "retrieve vcpu count from the guest instead of the hypervisor",
            ),
        ],
        cmd_vcpucount,
        Access::Read,
        true,
    ),
    verb(
        "vcpuinfo",
        "detailed domain vcpu information",
        "Returns basic information about the domain virtual CPUs.",
        &[
            DOMAIN,
            OptDef::flag("pretty", "return human readable output"),
        ],
        cmd_vcpuinfo,
        Access::Read,
        true,
    ),
    verb(
        "vncdisplay",
        "vnc display",
        "Output the IP address and port number for the VNC display.",
        &[DOMAIN_ACTIVE],
        cmd_vncdisplay,
        Access::Read,
        true,
    ),
];

/// How virsh may look the domain up for one verb (libvirt: virshLookupDomainBy's flags).
#[derive(Clone, Copy)]
struct By {
    id: bool,
    uuid: bool,
    name: bool,
}

fn lookup_by<'c>(conn: &'c Connect, arg: &str, by: By) -> Result<Domain<'c>> {
    let mut found = Err(anyhow::anyhow!("no domain"));
    if by.id
        && let Ok(id) = arg.parse::<i32>()
        && id >= 0
    {
        found = conn.lookup_domain_by_id(id).map_err(anyhow::Error::from);
    }
    if found.is_err() && by.uuid && uuid::Uuid::parse_str(arg).is_ok() {
        found = conn.lookup_domain_by_uuid(arg).map_err(anyhow::Error::from);
    }
    if found.is_err() && by.name {
        found = conn.lookup_domain_by_name(arg).map_err(anyhow::Error::from);
    }
    found.with_context(|| format!("failed to get domain '{arg}'"))
}

/// `domid --json` and friends: the three names of a domain.
#[derive(Serialize)]
struct Ident {
    id: Option<i32>,
    name: String,
    uuid: String,
}

fn ident(dom: &Domain<'_>) -> Result<Ident> {
    Ok(Ident {
        id: dom.id()?,
        name: dom.name().to_string(),
        uuid: dom.uuid_string(),
    })
}

/// `vsh domid DOMAIN` (libvirt: cmdDomid): `-` for an inactive domain.
fn cmd_domid(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let by = By {
        id: false,
        uuid: true,
        name: true,
    };
    let dom = lookup_by(ctx.conn()?, args.required("domain")?, by)?;
    ctx.emit(&ident(&dom)?, |v| {
        format!("{}\n", v.id.map_or("-".to_string(), |i| i.to_string()))
    });
    Ok(())
}

/// `vsh domname DOMAIN` (libvirt: cmdDomname).
fn cmd_domname(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let by = By {
        id: true,
        uuid: true,
        name: false,
    };
    let dom = lookup_by(ctx.conn()?, args.required("domain")?, by)?;
    ctx.emit(&ident(&dom)?, |v| format!("{}\n", v.name));
    Ok(())
}

/// `vsh domuuid DOMAIN` (libvirt: cmdDomuuid).
fn cmd_domuuid(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let by = By {
        id: true,
        uuid: false,
        name: true,
    };
    let dom = lookup_by(ctx.conn()?, args.required("domain")?, by)?;
    ctx.emit(&ident(&dom)?, |v| format!("{}\n", v.uuid));
    Ok(())
}

/// (maximum, current) vCPUs of the live definition or the config; `None` when there is
/// no such definition (an inactive domain's live one, a transient domain's config).
fn vcpu_counts(dom: &Domain<'_>, config: bool) -> Result<Option<(u32, u32)>> {
    if config && !dom.is_persistent()? || !config && !dom.is_active()? {
        return Ok(None);
    }
    let def = crate::domain::parse(&dom.xml_desc(FormatFlags {
        inactive: config,
        secure: false,
    })?)?;
    Ok(Some((
        def.vcpu.count,
        def.vcpu.current.unwrap_or(def.vcpu.count),
    )))
}

/// `vcpucount --json`: the counts that exist.
#[derive(Serialize)]
struct VcpuCount {
    maximum_config: Option<u32>,
    maximum_live: Option<u32>,
    current_config: Option<u32>,
    current_live: Option<u32>,
}

/// `vsh vcpucount DOMAIN [--maximum|--active] [--config|--live|--current]`
/// (libvirt: cmdVcpucount): the table, or the one count the flags select.
fn cmd_vcpucount(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    for (a, b) in [
        ("maximum", "active"),
        ("current", "live"),
        ("current", "config"),
        ("live", "config"),
        ("guest", "config"),
    ] {
        args.exclusive(a, b)?;
    }
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    if args.flag("guest") {
        bail!("argument unsupported: QEMU guest agent is not configured");
    }
    let conf = vcpu_counts(&dom, true)?;
    let live = vcpu_counts(&dom, false)?;
    let any = ["maximum", "active", "live", "config", "current"]
        .iter()
        .any(|f| args.flag(f));
    if !any {
        let v = VcpuCount {
            maximum_config: conf.map(|c| c.0),
            maximum_live: live.map(|c| c.0),
            current_config: conf.map(|c| c.1),
            current_live: live.map(|c| c.1),
        };
        ctx.emit(&v, |v| {
            readfmt::vcpucount_table(&[
                ("maximum", "config", v.maximum_config.unwrap_or(0)),
                ("maximum", "live", v.maximum_live.unwrap_or(0)),
                ("current", "config", v.current_config.unwrap_or(0)),
                ("current", "live", v.current_live.unwrap_or(0)),
            ])
        });
        return Ok(());
    }
    let use_config = args.flag("config") || !args.flag("live") && !dom.is_active()?;
    let counts = if use_config { conf } else { live };
    let Some((max, cur)) = counts else {
        if use_config {
            bail!(
                "Requested operation is not valid: transient domains do not have any persistent config"
            );
        }
        bail!("Requested operation is not valid: domain is not running");
    };
    let n = if args.flag("maximum") { max } else { cur };
    ctx.emit(&n, |n| format!("{n}\n"));
    Ok(())
}

/// `vsh vcpuinfo DOMAIN [--pretty]` (libvirt: cmdVcpuinfo).
fn cmd_vcpuinfo(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    let vcpus = dom.vcpus()?;
    let pretty = args.flag("pretty");
    ctx.emit(&vcpus, |v| readfmt::vcpuinfo(v, pretty));
    Ok(())
}

/// `domdisplay --json`: each display's URI.
#[derive(Serialize)]
struct DisplayUri {
    #[serde(rename = "type")]
    gtype: String,
    uri: String,
}

/// `vsh domdisplay DOMAIN [--type TYPE] [--all] [--include-password]`
/// (libvirt: cmdDomDisplay).
fn cmd_domdisplay(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    if !dom.is_active()? {
        bail!("Domain is not running");
    }
    let want = args.string("type");
    let all = args.flag("all");
    let mut uris = Vec::new();
    for scheme in ["vnc", "spice", "rdp"] {
        if want.is_some_and(|t| t != scheme) {
            continue;
        }
        for d in dom.displays()?.iter().filter(|d| d.gtype == scheme) {
            if let Some(uri) = crate::driver::display::display_uri(d, args.flag("include-password"))
            {
                uris.push(DisplayUri {
                    gtype: scheme.into(),
                    uri,
                });
                break;
            }
        }
        if !all && !uris.is_empty() {
            break;
        }
    }
    if uris.is_empty() {
        bail!("No graphical display found");
    }
    ctx.emit(&uris, |u| {
        u.iter().map(|d| format!("{}\n", d.uri)).collect()
    });
    Ok(())
}

/// `vsh vncdisplay DOMAIN` (libvirt: cmdVNCDisplay).
fn cmd_vncdisplay(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    if !dom.is_active()? {
        bail!("Domain is not running");
    }
    let shown = dom
        .displays()?
        .iter()
        .filter(|d| d.gtype == "vnc")
        .find_map(crate::driver::display::vnc_display);
    let Some(shown) = shown else {
        bail!("Failed to get VNC port. Is this domain using VNC?");
    };
    ctx.emit(&shown, |s| format!("{s}\n"));
    Ok(())
}

/// `vsh ttyconsole DOMAIN` (libvirt: cmdTTYConsole).
fn cmd_ttyconsole(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    // virsh fails without a word when there is none; say which domain has no tty.
    let Some(tty) = dom.tty_console()? else {
        bail!("domain '{}' has no TTY console", dom.name());
    };
    ctx.emit(&tty, |t| format!("{t}\n"));
    Ok(())
}

impl super::metadata::Described for Domain<'_> {
    const NOUN: &'static str = "domain";
    const READ_BEFORE_SET: bool = false;
    fn object_name(&self) -> String {
        self.name().to_string()
    }
    fn read_affect(aff: Affect) -> Affect {
        Affect {
            live: aff.live && !aff.config,
            config: aff.config,
        }
    }
    fn get(
        &self,
        kind: MetadataKind,
        uri: Option<&str>,
        aff: Affect,
    ) -> Result<String, crate::driver::DriverError> {
        self.metadata(kind, uri, aff)
    }
    fn set(
        &mut self,
        kind: MetadataKind,
        value: Option<&str>,
        key: Option<&str>,
        uri: Option<&str>,
        aff: Affect,
    ) -> Result<(), crate::driver::DriverError> {
        self.set_metadata(kind, value, key, uri, aff)
    }
}

/// `vsh lxc-enter-namespace DOMAIN [--noseclabel] -- CMD...` (libvirt: cmdLxcEnterNamespace):
/// virsh looks the domain up and asks for its namespaces, which only the LXC driver has;
/// the QEMU driver's answer is libvirt's "not supported" for the API (libvirt:
/// virDomainLxcOpenNamespace's virReportUnsupportedError).
fn cmd_lxc_enter_namespace(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    lookup_domain(ctx.conn()?, args.required("domain")?)?;
    Err(crate::driver::DriverError::NoSupport("virDomainLxcOpenNamespace".into()).into())
}

/// `vsh desc DOMAIN [--title] [--live|--config|--current] [NEW-DESC...]` (libvirt: cmdDesc).
fn cmd_desc(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let mut dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    super::metadata::desc(ctx, args, &mut dom)
}

/// `vsh metadata DOMAIN URI [--key KEY] [--set XML | --remove] [--live|--config|--current]`
/// (libvirt: cmdMetadata).
fn cmd_metadata(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    args.exclusive("edit", "set")?;
    args.exclusive("remove", "set")?;
    args.exclusive("remove", "edit")?;
    let mut dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    super::metadata::metadata(ctx, args, &mut dom)
}
