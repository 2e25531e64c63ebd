//! Completion from the table (libvirt: vshReadlineParse, vshReadlineOptionsGenerator): verbs,
//! their options not given yet, and option values (domain names, secrets, fixed words).

use super::ctx::CmdCtx;
use super::parse::lookup;
use super::table::{CmdDef, Completer, DomainFilter, OptDef, OptKind};
use super::verbs;

/// The bash completion script `vsh completion bash` prints.
pub const BASH_SCRIPT: &str = include_str!("vsh.bash");

/// What completes the last of `words` (the word being typed; empty after a blank).
pub fn complete(ctx: &CmdCtx, words: &[String]) -> Vec<String> {
    let (text, before) = match words.split_last() {
        Some((t, b)) => (t.as_str(), b),
        None => ("", &[][..]),
    };
    let Some(first) = before.first() else {
        let mut names: Vec<String> = verbs::all()
            .filter(|c| c.name.starts_with(text))
            .map(|c| c.name.to_string())
            .collect();
        names.sort();
        return names;
    };
    let Some(cmd) = lookup(first) else {
        return Vec::new();
    };
    let state = scan(cmd, &before[1..]);
    let mut out = Vec::new();
    if let Some(opt) = state.wants_value {
        return values(ctx, opt, text);
    }
    if text.is_empty() || text.starts_with('-') {
        for o in cmd.opts {
            if matches!(o.kind, OptKind::Alias(_)) {
                continue;
            }
            let given = state.given.contains(&o.name) && o.kind != OptKind::Argv;
            let flag = format!("--{}", o.name);
            if !given && flag.starts_with(text) {
                out.push(flag);
            }
        }
    }
    if !text.starts_with("--")
        && let Some(opt) = state.next_positional
    {
        out.extend(values(ctx, opt, text));
    }
    out
}

/// What the words after the verb have filled.
struct Scan {
    given: Vec<&'static str>,
    /// The previous word is `--opt` and its value is being typed.
    wants_value: Option<&'static OptDef>,
    /// The option a positional word here would fill.
    next_positional: Option<&'static OptDef>,
}

fn scan(cmd: &'static CmdDef, words: &[String]) -> Scan {
    let mut given: Vec<&'static str> = Vec::new();
    let mut wants_value = None;
    let mut data_only = false;
    for w in words {
        if wants_value.take().is_some() {
            continue;
        }
        if !data_only && w == "--" {
            data_only = true;
            continue;
        }
        if !data_only && let Some(body) = w.strip_prefix("--") {
            let (name, inline) = match body.split_once('=') {
                Some((n, _)) => (n, true),
                None => (body, false),
            };
            if let Some(o) = cmd.opt(name) {
                let o = match o.kind {
                    OptKind::Alias(t) => match cmd.opt(t.split('=').next().unwrap_or(t)) {
                        Some(t) => t,
                        None => continue,
                    },
                    _ => o,
                };
                given.push(o.name);
                if o.kind != OptKind::Bool && !inline {
                    wants_value = Some(o);
                }
            }
            continue;
        }
        if let Some(o) = next_positional(cmd, &given) {
            given.push(o.name);
        }
    }
    Scan {
        next_positional: next_positional(cmd, &given),
        given,
        wants_value,
    }
}

fn next_positional(cmd: &'static CmdDef, given: &[&str]) -> Option<&'static OptDef> {
    cmd.opts.iter().find(|o| {
        o.positional
            && !matches!(o.kind, OptKind::Bool | OptKind::Alias(_))
            && (o.kind == OptKind::Argv || !given.contains(&o.name))
    })
}

/// The values of `opt` that start with `text`.
fn values(ctx: &CmdCtx, opt: &OptDef, text: &str) -> Vec<String> {
    let all: Vec<String> = match opt.completer {
        Completer::None | Completer::File => Vec::new(),
        Completer::Words(w) => w.iter().map(|s| s.to_string()).collect(),
        Completer::Domain(filter) => domain_names(ctx, filter),
        Completer::Secret => ctx
            .conn()
            .ok()
            .and_then(|c| c.list_secrets().ok())
            .map(|s| s.iter().map(|s| s.uuid_string().to_string()).collect())
            .unwrap_or_default(),
        Completer::Network => ctx
            .conn()
            .ok()
            .and_then(|c| c.list_all_networks().ok())
            .map(|n| n.iter().map(|n| n.name().to_string()).collect())
            .unwrap_or_default(),
        Completer::Interface => ctx
            .conn()
            .ok()
            .and_then(|c| {
                c.list_all_interfaces(crate::driver::iface::IfaceFilter::All)
                    .ok()
            })
            .map(|i| i.iter().map(|i| i.name().to_string()).collect())
            .unwrap_or_default(),
        Completer::NwFilter => ctx
            .conn()
            .ok()
            .and_then(|c| c.list_all_nwfilters().ok())
            .map(|f| f.iter().map(|f| f.name().to_string()).collect())
            .unwrap_or_default(),
        Completer::NwFilterBinding => ctx
            .conn()
            .ok()
            .and_then(|c| c.list_all_nwfilter_bindings().ok())
            .map(|b| b.iter().map(|b| b.portdev().to_string()).collect())
            .unwrap_or_default(),
        Completer::NodeDevice => ctx
            .conn()
            .ok()
            .and_then(|c| c.list_all_node_devices(0).ok())
            .map(|d| d.iter().map(|d| d.name().to_string()).collect())
            .unwrap_or_default(),
        Completer::Pool => ctx
            .conn()
            .ok()
            .and_then(|c| c.list_storage_pools().ok())
            .map(|p| p.iter().map(|p| p.name().to_string()).collect())
            .unwrap_or_default(),
    };
    all.into_iter().filter(|v| v.starts_with(text)).collect()
}

/// Domain names for completion (libvirt: virshDomainNameCompleter); none when the
/// connection fails, as completion must never complain.
fn domain_names(ctx: &CmdCtx, filter: DomainFilter) -> Vec<String> {
    use crate::driver::domain::ListFlags;
    let flags = match filter {
        DomainFilter::All => ListFlags::ALL,
        DomainFilter::Active => ListFlags::ACTIVE,
        DomainFilter::Inactive => ListFlags::INACTIVE,
    };
    let Ok(conn) = ctx.conn() else {
        return Vec::new();
    };
    let mut names: Vec<String> = conn
        .list_all_domains_with_state(flags)
        .map(|l| l.iter().map(|d| d.domain.name().to_string()).collect())
        .unwrap_or_default();
    // Completion must not print the warnings of a listing.
    let _ = conn.take_warnings();
    names.sort();
    names
}
