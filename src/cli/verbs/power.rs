//! Domain Management verbs about a guest's power and lifecycle: `inject-nmi`,
//! `dompmsuspend`, `dompmwakeup`, `set-lifecycle-action` and `send-process-signal`
//! (libvirt: tools/virsh-domain.c, cmdInjectNMI, cmdDomPMSuspend, cmdDomPMWakeup,
//! cmdSetLifecycleAction, cmdSendProcessSignal).

use anyhow::{Context, Result, bail};

use super::hotplug::{CONFIG, CURRENT, LIVE, affect_flags, verb};
use super::util::DOMAIN_ACTIVE;
use super::util::lookup_domain;
use crate::cli::ctx::CmdCtx;
use crate::cli::parse::ParsedArgs;
use crate::cli::table::{CmdDef, Completer, DomainFilter, OptDef};
use crate::driver::power::{LifecycleAction, LifecycleType, SuspendTarget};

const TYPES: &[&str] = &["poweroff", "reboot", "crash"];
const ACTIONS: &[&str] = &[
    "destroy",
    "restart",
    "rename-restart",
    "preserve",
    "coredump-destroy",
    "coredump-restart",
];

/// The signal names virsh takes (libvirt: virDomainProcessSignal), in signal number order
/// from 0 (`nop`); `rt0`..`rt32` follow.
const SIGNALS: &[&str] = &[
    "nop", "hup", "int", "quit", "ill", "trap", "abrt", "bus", "fpe", "kill", "usr1", "segv",
    "usr2", "pipe", "alrm", "term", "stkflt", "chld", "cont", "stop", "tstp", "ttin", "ttou",
    "urg", "xcpu", "xfsz", "vtalrm", "prof", "winch", "poll", "pwr", "sys",
];

pub const CMDS: &[CmdDef] = &[
    verb(
        "dompmsuspend",
        "suspend a domain gracefully using power management functions",
        "Suspends a running domain using guest OS's power management. (Note: This requires a guest agent configured and running in the guest OS).",
        &[
            DOMAIN_ACTIVE,
            OptDef::data(
                "target",
                "mem(Suspend-to-RAM), disk(Suspend-to-Disk), hybrid(Hybrid-Suspend)",
            )
            .complete(Completer::Words(&["mem", "disk", "hybrid"])),
            OptDef::int("duration", "duration in seconds"),
        ],
        cmd_dompmsuspend,
        "virDomainPMSuspendForDuration",
    ),
    verb(
        "dompmwakeup",
        "wakeup a domain from pmsuspended state",
        "Wakeup a domain that was previously suspended by power management.",
        &[DOMAIN_ACTIVE],
        cmd_dompmwakeup,
        "virDomainPMWakeup",
    ),
    verb(
        "inject-nmi",
        "Inject NMI to the guest",
        "Inject NMI to the guest domain.",
        &[DOMAIN_ACTIVE],
        cmd_inject_nmi,
        "virDomainInjectNMI",
    ),
    verb(
        "send-process-signal",
        "Send signals to processes",
        "Send signals to processes in the guest",
        &[
            DOMAIN_ACTIVE,
            OptDef::data("pid", "the process ID"),
            OptDef::data("signame", "the signal number or name"),
        ],
        cmd_send_process_signal,
        "virDomainSendProcessSignal",
    ),
    verb(
        "set-lifecycle-action",
        "change lifecycle actions",
        "Change lifecycle actions for the guest domain.",
        &[
            OptDef::domain("domain name, id or uuid", DomainFilter::All),
            OptDef::data("type", "lifecycle type to modify").complete(Completer::Words(TYPES)),
            OptDef::data("action", "lifecycle action to set").complete(Completer::Words(ACTIONS)),
            CONFIG,
            LIVE,
            CURRENT,
        ],
        cmd_set_lifecycle_action,
        "virDomainSetLifecycleAction",
    ),
];

/// `vsh dompmsuspend DOMAIN TARGET [--duration S]` (libvirt: cmdDomPMSuspend).
fn cmd_dompmsuspend(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    let duration = args.int::<u64>("duration")?.unwrap_or(0);
    let Some(target) = SuspendTarget::from_name(args.required("target")?) else {
        bail!("Invalid target");
    };
    let name = dom.name().to_string();
    dom.pm_suspend_for_duration(target, duration, 0)
        .with_context(|| format!("Domain '{name}' could not be suspended"))?;
    ctx.println_extra(format!("Domain '{name}' successfully suspended"));
    Ok(())
}

/// `vsh dompmwakeup DOMAIN` (libvirt: cmdDomPMWakeup).
fn cmd_dompmwakeup(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    let name = dom.name().to_string();
    dom.pm_wakeup(0)
        .with_context(|| format!("Domain '{name}' could not be woken up"))?;
    ctx.println_extra(format!("Domain '{name}' successfully woken up"));
    Ok(())
}

/// `vsh inject-nmi DOMAIN` (libvirt: cmdInjectNMI): silent when it worked.
fn cmd_inject_nmi(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    dom.inject_nmi(0)?;
    Ok(())
}

/// virsh's signal argument: a number, or a name with or without `sig`/`sig_`, any case.
// libvirt: getSignalNumber
fn signal_number(s: &str) -> Option<u32> {
    let lower = s.to_ascii_lowercase();
    if let Ok(n) = lower.parse::<i64>() {
        return u32::try_from(n).ok();
    }
    let name = lower.strip_prefix("sig").unwrap_or(&lower);
    let name = name.strip_prefix('_').unwrap_or(name);
    if let Some(i) = SIGNALS.iter().position(|n| *n == name) {
        return Some(i as u32);
    }
    // rt0 .. rt32 follow sys (31).
    let rt = name.strip_prefix("rt")?;
    if rt.is_empty() || !rt.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let rt: u32 = rt.parse().ok()?;
    (rt <= 32).then_some(SIGNALS.len() as u32 + rt)
}

/// `vsh send-process-signal DOMAIN PID SIGNAME` (libvirt: cmdSendProcessSignal): the
/// arguments are checked as virsh checks them, then libvirt's QEMU driver refuses.
fn cmd_send_process_signal(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    let pid = args.required("pid")?;
    let pid: i64 = pid.parse().map_err(|_| {
        anyhow::anyhow!("Numeric value '{pid}' for <pid> option is malformed or out of range")
    })?;
    let signame = args.required("signame")?;
    let Some(signum) = signal_number(signame) else {
        bail!("malformed signal name: {signame}");
    };
    dom.send_process_signal(pid, signum, 0)?;
    Ok(())
}

/// `vsh set-lifecycle-action DOMAIN TYPE ACTION [--config] [--live] [--current]`
/// (libvirt: cmdSetLifecycleAction).
fn cmd_set_lifecycle_action(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let flags = affect_flags(args, false)?;
    let ty = args.required("type")?;
    let action = args.required("action")?;
    let Some(ty) = LifecycleType::from_name(ty) else {
        bail!("Invalid lifecycle type '{ty}'.");
    };
    let Some(action) = LifecycleAction::from_name(action) else {
        bail!("Invalid lifecycle action '{action}'.");
    };
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    dom.set_lifecycle_action(ty, action, flags)
        .context("Unable to change lifecycle action.")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_as_virsh_reads_them() {
        assert_eq!(signal_number("0"), Some(0));
        assert_eq!(signal_number("15"), Some(15));
        assert_eq!(signal_number("term"), Some(15));
        assert_eq!(signal_number("SIGTERM"), Some(15));
        assert_eq!(signal_number("sig_kill"), Some(9));
        assert_eq!(signal_number("sys"), Some(31));
        assert_eq!(signal_number("rt0"), Some(32));
        assert_eq!(signal_number("RT32"), Some(64));
        assert_eq!(signal_number("rt33"), None);
        assert_eq!(signal_number("-1"), None);
        assert_eq!(signal_number("bogus"), None);
    }
}
