//! Domain Monitoring: listing domains and their state.

use anyhow::Result;
use serde::Serialize;

use super::util::lookup_domain;
use crate::cli::ctx::CmdCtx;
use crate::cli::parse::ParsedArgs;
use crate::cli::table::{CmdDef, DomainFilter, Group, OptDef};

const fn verb(
    name: &'static str,
    info: &'static str,
    desc: &'static str,
    opts: &'static [OptDef],
    handler: crate::cli::table::Handler,
) -> CmdDef {
    CmdDef::new(Group::DomainMonitoring, name, info, desc, opts, handler).with_json(true)
}

pub const CMDS: &[CmdDef] = &[
    verb(
        "dominfo",
        "domain information",
        "Returns basic information about the domain.",
        &[OptDef::domain("domain name, id or uuid", DomainFilter::All)],
        cmd_dominfo,
    ),
    verb(
        "domstate",
        "domain state",
        "Returns state about a domain.",
        &[
            OptDef::domain("domain name, id or uuid", DomainFilter::All),
            OptDef::flag("reason", "also print reason for the state"),
        ],
        cmd_domstate,
    ),
];

/// `dominfo --json`.
#[derive(Serialize)]
struct DomInfo {
    id: Option<i32>,
    name: String,
    uuid: String,
    os_type: String,
    state: String,
    cpus: u32,
    /// Nanoseconds; absent when the domain has not run.
    cpu_time_ns: Option<u64>,
    max_memory_kib: u64,
    used_memory_kib: u64,
    persistent: bool,
    autostart: bool,
    managed_save: bool,
    security_model: String,
    security_doi: String,
}

/// `vsh dominfo DOMAIN`, in virsh's `%-15s %s` layout (libvirt: cmdDominfo).
fn cmd_dominfo(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    let info = dom.info()?;
    let v = DomInfo {
        id: dom.id()?,
        name: dom.name().to_string(),
        uuid: dom.uuid_string(),
        os_type: dom.os_type()?,
        state: info.state.to_string(),
        cpus: info.nr_virt_cpu,
        cpu_time_ns: (info.cpu_time != 0).then_some(info.cpu_time),
        max_memory_kib: info.max_mem,
        used_memory_kib: info.memory,
        persistent: dom.is_persistent()?,
        autostart: dom.autostart()?,
        managed_save: dom.has_managed_save_image()?,
        // The only security driver is 'none' (see the capabilities' <secmodel>), whose labels
        // are empty, so virsh prints no label line.
        security_model: "none".into(),
        security_doi: "0".into(),
    };
    ctx.emit(&v, |v| {
        let mut out = String::new();
        let mut line = |k: &str, val: &str| out.push_str(&format!("{k:<15} {val}\n"));
        line("Id:", &v.id.map_or("-".to_string(), |i| i.to_string()));
        line("Name:", &v.name);
        line("UUID:", &v.uuid);
        line("OS Type:", &v.os_type);
        line("State:", &v.state);
        line("CPU(s):", &v.cpus.to_string());
        if let Some(t) = v.cpu_time_ns {
            line("CPU time:", &format!("{:.1}s", t as f64 / 1e9));
        }
        line("Max memory:", &format!("{} KiB", v.max_memory_kib));
        line("Used memory:", &format!("{} KiB", v.used_memory_kib));
        line("Persistent:", if v.persistent { "yes" } else { "no" });
        line("Autostart:", if v.autostart { "enable" } else { "disable" });
        line("Managed save:", if v.managed_save { "yes" } else { "no" });
        line("Security model:", &v.security_model);
        line("Security DOI:", &v.security_doi);
        out
    });
    Ok(())
}

/// `domstate --json`.
#[derive(Serialize)]
struct DomState {
    state: String,
    reason: String,
}

/// `vsh domstate DOMAIN [--reason]` (libvirt: cmdDomstate).
fn cmd_domstate(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let st = lookup_domain(ctx.conn()?, args.required("domain")?)?.state()?;
    let reason = args.flag("reason");
    let v = DomState {
        state: st.state.to_string(),
        reason: st.reason.clone(),
    };
    ctx.emit(&v, |_| {
        if reason {
            format!("{} ({})\n", st.state, virsh_reason(&st))
        } else {
            format!("{}\n", st.state)
        }
    });
    Ok(())
}

/// How virsh words a state's reason (libvirt: virshDomainStateReasonToString), where its
/// words differ from the reason's name (`event wakeup`, `I/O error`, `creating snapshot`).
fn virsh_reason(st: &crate::driver::process::DomainState) -> &str {
    use crate::driver::process::State;
    let r = st.reason.as_str();
    match (st.state, r) {
        (State::Running, "wakeup") => "event wakeup",
        (State::Paused, "migration") => "migrating",
        (State::Paused, "save") => "saving",
        (State::Paused, "dump") => "dumping",
        (State::Paused, "ioerror") => "I/O error",
        (State::Paused, "shutdown") => "shutting down",
        (State::Paused, "snapshot") => "creating snapshot",
        _ => r,
    }
}
