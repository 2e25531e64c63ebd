//! `-r/--readonly`: which runs of a changing verb are refused, and the lines virsh prints
//! then. virsh sends the call and the read-only connection refuses it, so virsh first looks
//! the domain up (a missing domain is that error, not a refusal) and then prints its own
//! "Failed to ..." line before libvirt's reason, as for any failed call.

use anyhow::{Result, anyhow};

use super::ctx::CmdCtx;
use super::parse::ParsedArgs;
use super::verbs::util::lookup_domain;

/// virsh's failure line for verb `name` when its call fails, `{domain}` the domain's name
/// and `{file}` the verb's file argument; None where virsh prints only libvirt's error.
// libvirt: the vshError calls after each API call in tools/virsh-domain.c, virsh-secret.c
const FAILURE_LINES: &[(&str, &str)] = &[
    ("create", "Failed to create domain from {file}"),
    ("define", "Failed to define domain from {file}"),
    ("destroy", "Failed to destroy domain '{domain}'"),
    ("reboot", "Failed to reboot domain '{domain}'"),
    ("reset", "Failed to reset domain '{domain}'"),
    ("resume", "Failed to resume domain '{domain}'"),
    ("shutdown", "Failed to shutdown domain '{domain}'"),
    ("start", "Failed to start domain '{domain}'"),
    ("suspend", "Failed to suspend domain '{domain}'"),
    ("undefine", "Failed to undefine domain '{domain}'"),
    ("save", "Failed to save domain '{domain}' to {file}"),
    ("restore", "Failed to restore domain from {file}"),
    ("managedsave", "Failed to save domain '{domain}' state"),
    (
        "managedsave-remove",
        "Failed to remove managed save image for domain '{domain}'",
    ),
    ("save-image-define", "Failed to update {file}"),
    ("secret-define", "Failed to set attributes from {file}"),
    ("secret-undefine", "Failed to delete secret {secret}"),
    // libvirt: tools/virsh-nodedev.c
    ("nodedev-create", "Failed to create node device from {file}"),
    (
        "nodedev-define",
        "Failed to define node device from '{file}'",
    ),
    (
        "nodedev-destroy",
        "Failed to destroy node device '{device}'",
    ),
    (
        "nodedev-undefine",
        "Failed to undefine node device '{device}'",
    ),
    ("nodedev-start", "Failed to start device {device}"),
    ("nodedev-detach", "Failed to detach device {device}"),
    ("nodedev-reattach", "Failed to re-attach device {device}"),
    ("nodedev-reset", "Failed to reset device {device}"),
    // libvirt: tools/virsh-pool.c, virsh-volume.c
    ("pool-build", "Failed to build pool {pool}"),
    ("pool-create", "Failed to create pool from {file}"),
    ("pool-create-as", "Failed to create pool {name}"),
    ("pool-define", "Failed to define pool from {file}"),
    ("pool-define-as", "Failed to define pool {name}"),
    ("pool-delete", "Failed to delete pool {pool}"),
    ("pool-destroy", "Failed to destroy pool {pool}"),
    ("pool-refresh", "Failed to refresh pool {pool}"),
    ("pool-start", "Failed to start pool {pool}"),
    ("pool-undefine", "Failed to undefine pool {pool}"),
    ("vol-create-as", "Failed to create vol {name}"),
    ("vol-create", "Failed to create vol from {file}"),
    ("vol-create-from", "Failed to create vol from {file}"),
    ("vol-delete", "Failed to delete vol {vol}"),
    ("vol-wipe", "Failed to wipe vol {vol}"),
];

/// Whether this run of a changing verb changes anything: `desc`, `metadata` and the get/set
/// verbs only read unless given something to set, remove or edit.
pub fn changes(p: &ParsedArgs) -> bool {
    let flag = |n| has(p, n) && p.flag(n);
    match p.cmd.name {
        "desc" | "net-desc" => !p.all("new-desc").is_empty() || flag("edit"),
        "metadata" | "net-metadata" => p.string("set").is_some() || flag("remove") || flag("edit"),
        "snapshot-current" => p.string("snapshotname").is_some(),
        "node-memory-tune" => [
            "shm-pages-to-scan",
            "shm-sleep-millisecs",
            "shm-merge-across-nodes",
        ]
        .iter()
        .any(|o| p.string(o).is_some()),
        "snapshot-create-as" => !flag("print-xml"),
        _ => true,
    }
}

/// Whether `p`'s verb has option `name` (asking a verb for an option it lacks is a bug).
fn has(p: &ParsedArgs, name: &str) -> bool {
    p.cmd.opts.iter().any(|o| o.name == name)
}

/// The value of option `name`, or "" when the verb has no such option or it was not given.
fn value<'a>(p: &'a ParsedArgs, name: &str) -> &'a str {
    if has(p, name) {
        p.string(name).unwrap_or("")
    } else {
        ""
    }
}

/// The error of a refused run of `p` calling `api`: the domain lookup's error when the
/// domain does not exist, else virsh's failure line (if any) over libvirt's reason.
pub fn refusal(ctx: &mut CmdCtx, p: &ParsedArgs, api: &str) -> anyhow::Error {
    let reason = anyhow!("operation forbidden: read only access prevents {api}");
    let domain = match domain_name(ctx, p) {
        Ok(d) => d,
        Err(e) => return e,
    };
    let line = match p.cmd.name {
        // libvirt: cmdDesc
        "desc" if p.flag("title") => "Failed to set new domain title",
        "desc" => "Failed to set new domain description",
        // libvirt: cmdNetworkDesc
        "net-desc" if p.flag("title") => "Failed to set new network title",
        "net-desc" => "Failed to set new network description",
        verb => match FAILURE_LINES.iter().find(|(v, _)| *v == verb) {
            Some((_, line)) => line,
            None => return reason,
        },
    };
    let text = line
        .replace("{domain}", domain.as_deref().unwrap_or(""))
        .replace("{file}", value(p, "file"))
        .replace("{secret}", value(p, "secret"))
        .replace("{pool}", value(p, "pool"))
        .replace("{device}", value(p, "device"))
        .replace("{name}", value(p, "name"))
        .replace("{vol}", value(p, "vol"));
    reason.context(text)
}

/// The name of the domain `p` names (virsh prints the looked-up name, not the argument).
fn domain_name(ctx: &mut CmdCtx, p: &ParsedArgs) -> Result<Option<String>> {
    let arg = value(p, "domain");
    if arg.is_empty() {
        return Ok(None);
    }
    let conn = ctx.conn()?;
    Ok(Some(lookup_domain(conn, arg)?.name().to_string()))
}
