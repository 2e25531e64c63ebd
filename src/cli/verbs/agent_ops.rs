//! Guest agent verbs that act on the guest: `domfsfreeze`, `domfsthaw`, `domfstrim`,
//! `guestvcpus`, `get-user-sshkeys`, `set-user-sshkeys` (libvirt: tools/virsh-domain.c
//! cmdDomFSFreeze, cmdDomFSThaw, cmdDomFSTrim, cmdGuestvcpus, cmdGetUserSSHKeys,
//! cmdSetUserSSHKeys).

use anyhow::{Context, Result, bail};

use super::util::DOMAIN_ACTIVE;
use super::util::{lookup_domain, read_xml_file};
use crate::cli::ctx::CmdCtx;
use crate::cli::parse::ParsedArgs;
use crate::cli::table::{Access, CmdDef, Group, OptDef};
use crate::driver::guest_agent_ops::{SSH_KEYS_APPEND, SSH_KEYS_REMOVE};

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
        "domfsfreeze",
        "Freeze domain's mounted filesystems.",
        "Freeze domain's mounted filesystems.",
        &[
            DOMAIN_ACTIVE,
            OptDef::argv("mountpoint", "mountpoint path to be frozen"),
        ],
        cmd_domfsfreeze,
        Access::Write("virDomainFSFreeze"),
    ),
    verb(
        "domfsthaw",
        "Thaw domain's mounted filesystems.",
        "Thaw domain's mounted filesystems.",
        &[
            DOMAIN_ACTIVE,
            OptDef::argv("mountpoint", "mountpoint path to be thawed"),
        ],
        cmd_domfsthaw,
        Access::Write("virDomainFSThaw"),
    ),
    verb(
        "domfstrim",
        "Invoke fstrim on domain's mounted filesystems.",
        "Invoke fstrim on domain's mounted filesystems.",
        &[
            DOMAIN_ACTIVE,
            OptDef::int(
                "minimum",
                "Just a hint to ignore contiguous free ranges smaller than this (Bytes)",
            ),
            OptDef::string("mountpoint", "which mount point to trim"),
        ],
        cmd_domfstrim,
        Access::Write("virDomainFSTrim"),
    ),
    verb(
        "get-user-sshkeys",
        "list authorized SSH keys for given user (via agent)",
        "Use the guest agent to query authorized SSH keys for given user",
        &[
            DOMAIN_ACTIVE,
            OptDef::data("user", "user to list authorized keys for"),
        ],
        cmd_get_user_sshkeys,
        Access::Read,
    ),
    verb(
        "guestvcpus",
        "query or modify state of vcpu in the guest (via agent)",
        "Use the guest agent to query or set cpu state from guest's point of view",
        &[
            DOMAIN_ACTIVE,
            OptDef::string("cpulist", "list of cpus to enable or disable").positional(),
            OptDef::flag("enable", "enable cpus specified by cpulist"),
            OptDef::flag("disable", "disable cpus specified by cpulist"),
        ],
        cmd_guestvcpus,
        Access::Write("virDomainSetGuestVcpus"),
    ),
    verb(
        "set-user-sshkeys",
        "manipulate authorized SSH keys file for given user (via agent)",
        "Append, reset or remove specified key from the authorized keys file for given user",
        &[
            DOMAIN_ACTIVE,
            OptDef::data("user", "user to set authorized keys for"),
            OptDef::string("file", "optional file to read keys from").positional(),
            OptDef::flag(
                "reset",
                "clear out authorized keys file before adding new keys",
            ),
            OptDef::flag("remove", "remove keys from the authorized keys file"),
        ],
        cmd_set_user_sshkeys,
        Access::Write("virDomainAuthorizedSSHKeysSet"),
    ),
];

/// virsh's VSH_REQUIRE_OPTION.
fn require(args: &ParsedArgs, opt: &str, needs: &str) -> Result<()> {
    if args.flag(opt) && args.string(needs).is_none() && !args.flag(needs) {
        bail!("Option --{needs} is required by option --{opt}");
    }
    Ok(())
}

fn cmd_domfsfreeze(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    let n = dom
        .fs_freeze(&args.all("mountpoint"), 0)
        .context("Unable to freeze filesystems")?;
    ctx.println_extra(format!("Froze {n} filesystem(s)"));
    Ok(())
}

fn cmd_domfsthaw(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    let n = dom
        .fs_thaw(&args.all("mountpoint"), 0)
        .context("Unable to thaw filesystems")?;
    ctx.println_extra(format!("Thawed {n} filesystem(s)"));
    Ok(())
}

fn cmd_domfstrim(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    let minimum = args.int::<u64>("minimum")?.unwrap_or(0);
    dom.fs_trim(args.string("mountpoint"), minimum, 0)
        .context("Unable to invoke fstrim")?;
    Ok(())
}

fn cmd_guestvcpus(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    args.exclusive("enable", "disable")?;
    require(args, "enable", "cpulist")?;
    require(args, "disable", "cpulist")?;
    let enable = args.flag("enable");
    let cpulist = args.string("cpulist");
    if cpulist.is_some() && !enable && !args.flag("disable") {
        bail!("One of options --enable or --disable is required by option --cpulist");
    }
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    if let Some(list) = cpulist {
        dom.set_guest_vcpus(list, enable, 0)?;
        return Ok(());
    }
    for (k, v) in dom.guest_vcpus()?.params() {
        ctx.println(format!("{k:<15}: {v}"));
    }
    Ok(())
}

fn cmd_get_user_sshkeys(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    let keys = dom.authorized_ssh_keys(args.required("user")?, 0)?;
    // virsh prints each key as the agent gave it, with no newline of its own.
    for k in keys {
        ctx.print(k);
    }
    Ok(())
}

fn cmd_set_user_sshkeys(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    require(args, "remove", "file")?;
    args.exclusive("reset", "remove")?;
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    let user = args.required("user")?;
    let from = args.string("file");
    let mut flags = 0;
    if args.flag("remove") {
        flags |= SSH_KEYS_REMOVE;
    } else if !args.flag("reset") {
        flags |= SSH_KEYS_APPEND;
        if from.is_none() {
            bail!("Option --file is required");
        }
    }
    let buffer = match from {
        Some(f) => Some(read_xml_file(f)?),
        None => None,
    };
    // g_strsplit's pieces: a file ending in a newline gives a last, empty key too.
    let keys: Vec<&str> = buffer
        .as_deref()
        .map(|b| b.split('\n').collect())
        .unwrap_or_default();
    if from.is_some() && keys.is_empty() {
        bail!("File {} contains no keys", from.unwrap_or_default());
    }
    dom.set_authorized_ssh_keys(user, &keys, flags)?;
    Ok(())
}
