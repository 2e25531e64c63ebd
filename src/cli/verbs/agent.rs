//! Verbs answered by the guest agent (libvirt: virsh-domain.c's qemu-agent-command, domtime,
//! domhostname, domfsinfo, set-user-password).

use anyhow::{Context, Result, bail};

use super::util::DOMAIN_ACTIVE;
use super::util::{lookup_domain, render_table};
use crate::cli::ctx::CmdCtx;
use crate::cli::parse::ParsedArgs;
use crate::cli::table::{Access, CmdDef, Group, OptDef};
use crate::driver::guest_agent::{
    AGENT_COMMAND_BLOCK, AGENT_COMMAND_DEFAULT, AGENT_COMMAND_NOWAIT,
};

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
        "qemu-agent-command",
        "QEMU Guest Agent Command",
        "Run an arbitrary qemu guest agent command; use at your own risk",
        &[
            DOMAIN_ACTIVE,
            OptDef::int("timeout", "timeout seconds. must be positive."),
            OptDef::flag("async", "execute command without waiting for timeout"),
            OptDef::flag("block", "execute command without timeout"),
            OptDef::flag("pretty", "pretty-print the output"),
            OptDef::argv("cmd", "command").required(),
        ],
        cmd_qemu_agent_command,
        Access::Write("virDomainQemuAgentCommand"),
    ),
    verb(
        "domtime",
        "domain time",
        "Gets or sets the domain's system time",
        &[
            DOMAIN_ACTIVE,
            OptDef::flag("now", "set to the time of the host running virsh"),
            OptDef::flag("pretty", "print domain's time in human readable form"),
            OptDef::flag(
                "sync",
                "instead of setting given time, synchronize from domain's RTC",
            ),
            OptDef::int("time", "time to set"),
        ],
        cmd_domtime,
        Access::Write("virDomainSetTime"),
    ),
    verb(
        "domhostname",
        "print the domain's hostname",
        "",
        &[
            DOMAIN_ACTIVE,
            OptDef::string("source", "address source: 'lease' or 'agent'"),
        ],
        cmd_domhostname,
        Access::Read,
    ),
    verb(
        "domfsinfo",
        "Get information of domain's mounted filesystems.",
        "Get information of domain's mounted filesystems.",
        &[DOMAIN_ACTIVE],
        cmd_domfsinfo,
        Access::Read,
    )
    .with_json(true),
    verb(
        "guestinfo",
        "query information about the guest (via agent)",
        "Use the guest agent to query various information from guest's point of view",
        &[
            DOMAIN_ACTIVE,
            OptDef::flag("user", "report active users"),
            OptDef::flag("os", "report operating system information"),
            OptDef::flag("timezone", "report timezone information"),
            OptDef::flag("hostname", "report hostname"),
        ],
        cmd_guestinfo,
        Access::Read,
    ),
    verb(
        "set-user-password",
        "set the user password inside the domain",
        "changes the password of the specified user inside the domain",
        &[
            DOMAIN_ACTIVE,
            OptDef::string("user", "the username")
                .positional()
                .required(),
            OptDef::string("password", "the new password")
                .positional()
                .required(),
            OptDef::flag("encrypted", "the password is already encrypted"),
        ],
        cmd_set_user_password,
        Access::Write("virDomainSetUserPassword"),
    ),
];

/// `vsh qemu-agent-command DOMAIN CMD...` (libvirt: cmdQemuAgentCommand).
fn cmd_qemu_agent_command(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let timeout = match args.int::<i32>("timeout")? {
        Some(t) if t < 1 => bail!("timeout must be positive"),
        Some(t) => {
            if args.flag("async") || args.flag("block") {
                bail!("Options --timeout and --async/--block are mutually exclusive");
            }
            t
        }
        None if args.flag("async") && args.flag("block") => {
            bail!("Options --async and --block are mutually exclusive")
        }
        None if args.flag("async") => AGENT_COMMAND_NOWAIT,
        None if args.flag("block") => AGENT_COMMAND_BLOCK,
        None => AGENT_COMMAND_DEFAULT,
    };
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    let cmd = args.all("cmd").join(" ");
    let reply = dom.qemu_agent_command(&cmd, timeout, 0)?;
    if args.flag("pretty") {
        let v: serde_json::Value = serde_json::from_str(&reply)?;
        ctx.println(serde_json::to_string_pretty(&v)?);
    } else {
        ctx.println(reply);
    }
    Ok(())
}

/// `vsh domtime DOMAIN [--now|--time N|--sync] [--pretty]` (libvirt: cmdDomTime).
fn cmd_domtime(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    args.exclusive("time", "now")?;
    args.exclusive("time", "sync")?;
    args.exclusive("now", "sync")?;
    let set_time = args.int::<i64>("time")?;
    let now = args.flag("now");
    let sync = args.flag("sync");
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    if set_time.is_none() && !now && !sync {
        let (secs, _) = dom.time()?;
        if args.flag("pretty") {
            // g_date_time_format's "%Y-%m-%d %H:%M:%S", in UTC.
            let t = crate::timefmt::format_epoch(secs).replacen('T', " ", 1);
            ctx.println(format!("Time: {t}"));
        } else {
            ctx.println(format!("Time: {secs}"));
        }
        return Ok(());
    }
    if args.flag("pretty") {
        bail!("Options --pretty and --now/--sync/--time are mutually exclusive");
    }
    let (secs, nsecs) = match set_time {
        Some(s) => (s, 0),
        None if now => {
            let d = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .context("the host's clock is before 1970")?;
            (d.as_secs() as i64, d.subsec_nanos())
        }
        None => (0, 0),
    };
    dom.set_time(secs, nsecs, sync)?;
    Ok(())
}

/// `vsh domhostname DOMAIN [--source agent]` (libvirt: cmdDomHostname).
fn cmd_domhostname(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    match args.string("source") {
        None | Some("agent") => {}
        Some("lease") => bail!(
            "argument unsupported: Unsupported source type 'lease': no DHCP leases exist on this host"
        ),
        Some(s) => bail!("Unknown data source '{s}'"),
    }
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    let name = dom.hostname().context("failed to get hostname")?;
    ctx.println(name);
    Ok(())
}

/// `vsh domfsinfo DOMAIN` (libvirt: cmdDomFSInfo).
fn cmd_domfsinfo(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    let info = dom
        .fs_info()
        .context("Unable to get filesystem information")?;
    if info.is_empty() && !ctx.json() {
        // virsh's words, without a newline of their own.
        ctx.print_extra("No filesystems are mounted in the domain");
        return Ok(());
    }
    ctx.emit(&info, |info| {
        let rows: Vec<Vec<String>> = info
            .iter()
            .map(|f| {
                vec![
                    f.mountpoint.clone(),
                    f.name.clone(),
                    f.fstype.clone(),
                    f.dev_aliases.join(","),
                ]
            })
            .collect();
        render_table(&["Mountpoint", "Name", "Type", "Target"], &rows)
    });
    Ok(())
}

/// `vsh set-user-password DOMAIN USER PASSWORD [--encrypted]` (libvirt: cmdSetUserPassword).
fn cmd_set_user_password(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    let user = args.required("user")?;
    dom.set_user_password(user, args.required("password")?, args.flag("encrypted"))?;
    ctx.println(format!(
        "Password set successfully for {user} in {}",
        dom.name()
    ));
    Ok(())
}

/// `vsh guestinfo DOMAIN [--user] [--os] [--timezone] [--hostname]` (libvirt: cmdGuestInfo):
/// each typed parameter as `%-20s: %s`.
fn cmd_guestinfo(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    use crate::driver::guest_agent::GuestInfoTypes;
    let mut want = GuestInfoTypes {
        users: args.flag("user"),
        os: args.flag("os"),
        timezone: args.flag("timezone"),
        hostname: args.flag("hostname"),
    };
    if want == GuestInfoTypes::default() {
        want = GuestInfoTypes::ALL;
    }
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    for (k, v) in dom.guest_info(want)? {
        ctx.println(format!("{k:<20}: {v}"));
    }
    Ok(())
}
