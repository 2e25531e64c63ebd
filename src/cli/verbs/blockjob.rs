//! `blockpull`, `blockcommit`, `blockjob`: block jobs on a running guest's disks
//! (libvirt: tools/virsh-domain.c cmdBlockpull, cmdBlockcommit, cmdBlockjob,
//! virshBlockJobWait).

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::hotplug::verb;
use super::jobs::progress_line;
use super::util::{DOMAIN_ACTIVE, lookup_domain};
use crate::cli::ctx::CmdCtx;
use crate::cli::interrupt::CatchInterrupt;
use crate::cli::parse::ParsedArgs;
use crate::cli::table::{CmdDef, OptDef};
use crate::driver::blockjob::{
    BLOCK_COMMIT_ACTIVE, BLOCK_COMMIT_BANDWIDTH_BYTES, BLOCK_COMMIT_SHALLOW, BLOCK_JOB_ABORT_ASYNC,
    BLOCK_JOB_ABORT_PIVOT, BLOCK_JOB_INFO_BANDWIDTH_BYTES, BLOCK_JOB_SPEED_BANDWIDTH_BYTES,
    BLOCK_PULL_BANDWIDTH_BYTES, BlockJobType,
};
use crate::driver::domain::Domain;
use crate::driver::events::Events;
use crate::driver::monitor::events::BlockJobStatus;
use crate::driver::monitor::{DomainEvent, EventKind};

const PATH: OptDef = OptDef::data("path", "fully-qualified path of disk");

pub const CMDS: &[CmdDef] = &[
    verb(
        "blockcommit",
        "Start a block commit operation.",
        "Commit changes from a snapshot down to its backing image.",
        &[
            DOMAIN_ACTIVE,
            PATH,
            OptDef::int("bandwidth", "bandwidth limit in MiB/s").named_only(),
            OptDef::string(
                "base",
                "path of base file to commit into (default bottom of chain)",
            )
            .named_only(),
            OptDef::flag("shallow", "use backing file of top as base"),
            OptDef::string(
                "top",
                "path of top file to commit from (default top of chain)",
            )
            .named_only(),
            OptDef::flag("active", "trigger two-stage active commit of top file"),
            OptDef::flag(
                "wait",
                "wait for job to complete (with --active, wait for job to sync)",
            ),
            OptDef::flag("verbose", "with --wait, display the progress"),
            OptDef::int(
                "timeout",
                "implies --wait, abort if copy exceeds timeout (in seconds)",
            )
            .named_only(),
            OptDef::flag(
                "pivot",
                "implies --active --wait, pivot when commit is synced",
            ),
            OptDef::flag(
                "keep-overlay",
                "implies --active --wait, quit when commit is synced",
            ),
            OptDef::flag("async", "with --wait, don't wait for cancel to finish"),
            OptDef::flag(
                "bytes",
                "the bandwidth limit is in bytes/s rather than MiB/s",
            ),
        ],
        cmd_blockcommit,
        "virDomainBlockCommit",
    ),
    super::blockcopy::BLOCKCOPY,
    verb(
        "blockjob",
        "Manage active block operations",
        "Query, adjust speed, or cancel active block operations.",
        &[
            DOMAIN_ACTIVE,
            PATH,
            OptDef::flag("abort", "abort the active job on the specified disk"),
            OptDef::flag(
                "async",
                "implies --abort; request but don't wait for job end",
            ),
            OptDef::flag(
                "pivot",
                "implies --abort; conclude and pivot a copy or commit job",
            ),
            OptDef::flag("info", "get active job information for the specified disk"),
            OptDef::flag("bytes", "get/set bandwidth in bytes rather than MiB/s"),
            OptDef::flag(
                "raw",
                "implies --info; output details rather than human summary",
            ),
            OptDef::int("bandwidth", "set the bandwidth limit in MiB/s").named_only(),
        ],
        cmd_blockjob,
        "virDomainBlockJobAbort",
    ),
    verb(
        "blockpull",
        "Populate a disk from its backing image.",
        "Populate a disk from its backing image.",
        &[
            DOMAIN_ACTIVE,
            PATH,
            OptDef::int("bandwidth", "bandwidth limit in MiB/s").named_only(),
            OptDef::string("base", "path of backing file in chain for a partial pull").named_only(),
            OptDef::flag("wait", "wait for job to finish"),
            OptDef::flag("verbose", "with --wait, display the progress"),
            OptDef::int(
                "timeout",
                "with --wait, abort if pull exceeds timeout (in seconds)",
            )
            .named_only(),
            OptDef::flag("async", "with --wait, don't wait for cancel to finish"),
            OptDef::flag(
                "bytes",
                "the bandwidth limit is in bytes/s rather than MiB/s",
            ),
        ],
        cmd_blockpull,
        "virDomainBlockPull",
    ),
];

/// How a waited job ended (virshBlockJobWait's result).
pub(super) enum Outcome {
    Completed,
    Ready,
    Failed,
    Canceled,
}

/// `--timeout` in ms (virsh: vshCommandOptTimeoutToMs), 0 when not given.
pub(super) fn timeout_ms(args: &ParsedArgs) -> Result<u64> {
    match args.int::<i64>("timeout")? {
        None => Ok(0),
        Some(t) if t <= 0 || t > i64::from(i32::MAX) / 1000 => {
            bail!("Numeric value '{t}' for <timeout> option is malformed or out of range")
        }
        Some(t) => Ok(t as u64 * 1000),
    }
}

pub(super) fn bandwidth(args: &ParsedArgs) -> Result<u64> {
    match args.int::<i64>("bandwidth")? {
        None => Ok(0),
        Some(b) if b < 0 => {
            bail!("Numeric value '{b}' for <bandwidth> option is malformed or out of range")
        }
        Some(b) => Ok(b as u64),
    }
}

pub(super) fn progress(label: &str, remaining: u64, total: u64) {
    if let Some(l) = progress_line(label, remaining, total) {
        let mut e = std::io::stderr().lock();
        let _ = e.write_all(l.as_bytes());
        let _ = e.flush();
    }
}

/// The events a waiting verb watches, subscribed before its job starts so that none is
/// missed (virsh: virshBlockJobWaitInit); `None` when they cannot be had.
pub(super) fn subscribe(dom: &Domain<'_>) -> Option<Events> {
    dom.connect().domain_events(dom.name()).ok()
}

/// The status a block job event reports for `disk` as the user named it: the
/// `block-job` event names a disk by its source path, `block-job-2` by its target
/// (virsh: virshBlockJobStatusHandler).
fn status_for(e: &DomainEvent, disk: &str) -> Option<BlockJobStatus> {
    match &e.kind {
        EventKind::BlockJob {
            disk: d, status, ..
        }
        | EventKind::BlockJob2 {
            disk: d, status, ..
        } if d == disk => Some(*status),
        _ => None,
    }
}

/// Wait for the disk's job to end or synchronise, aborting it after `timeout` ms or at
/// Ctrl-C (virsh: virshBlockJobWait). The job's block job event tells how it went; the
/// job's info is read every half second for the progress. Without events, a job gone is
/// taken as completed and one at 100 % as ready, as virsh's fallback does.
pub(super) fn wait(
    dom: &Domain<'_>,
    mut events: Option<Events>,
    disk: &str,
    label: &str,
    verbose: bool,
    timeout: u64,
    async_abort: bool,
) -> Result<Outcome> {
    let start = Instant::now();
    let limit = (timeout > 0).then(|| Duration::from_millis(timeout));
    let intr = CatchInterrupt::install();
    let mut last = None;
    let mut gone_at: Option<Instant> = None;
    let mut status: Option<BlockJobStatus> = None;
    let outcome = loop {
        let info = dom
            .block_job_info(disk, 0)
            .with_context(|| format!("failed to query job for disk {disk}"))?;
        if let Some(s) = status {
            break match s {
                BlockJobStatus::Completed => Outcome::Completed,
                BlockJobStatus::Ready => Outcome::Ready,
                BlockJobStatus::Failed => Outcome::Failed,
                BlockJobStatus::Canceled => Outcome::Canceled,
            };
        }
        match &info {
            None => {
                // The event of a job that went may still be on its way.
                let since = *gone_at.get_or_insert_with(Instant::now);
                if events.is_none() || since.elapsed() > Duration::from_secs(2) {
                    break Outcome::Completed;
                }
            }
            Some(i) if events.is_none() && i.cur == i.end => break Outcome::Ready,
            Some(_) => {}
        }
        if let Some(i) = &info
            && verbose
            && last != Some((i.cur, i.end))
        {
            progress(label, i.end - i.cur.min(i.end), i.end);
            last = Some((i.cur, i.end));
        }
        if intr.interrupted() || limit.is_some_and(|l| start.elapsed() > l) {
            let flags = if async_abort {
                BLOCK_JOB_ABORT_ASYNC
            } else {
                0
            };
            dom.block_job_abort(disk, flags)
                .with_context(|| format!("failed to abort job for disk '{disk}'"))?;
            break Outcome::Canceled;
        }
        // Half a second, or less when the job's event comes.
        let until = Instant::now() + Duration::from_millis(500);
        match events.as_mut() {
            Some(ev) => {
                while let Some(left) = until.checked_duration_since(Instant::now()) {
                    match ev.next_timeout(left) {
                        Some(e) => {
                            if let Some(s) = status_for(&e, disk) {
                                status = Some(s);
                                break;
                            }
                        }
                        None => break,
                    }
                }
            }
            None => std::thread::sleep(Duration::from_millis(500)),
        }
    };
    if verbose && matches!(outcome, Outcome::Completed | Outcome::Ready) {
        progress(label, 0, 1);
    }
    Ok(outcome)
}

fn cmd_blockpull(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let blocking = args.flag("wait");
    for o in ["verbose", "async"] {
        if args.flag(o) && !blocking {
            bail!("Option --wait is required by option --{o}");
        }
    }
    let path = args.required("path")?;
    let bw = bandwidth(args)?;
    let timeout = timeout_ms(args)?;
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    let events = if blocking { subscribe(&dom) } else { None };
    let flags = if args.flag("bytes") {
        BLOCK_PULL_BANDWIDTH_BYTES
    } else {
        0
    };
    match args.string("base") {
        Some(base) => dom.block_rebase(path, Some(base), bw, flags)?,
        None => dom.block_pull(path, bw, flags)?,
    }
    if !blocking {
        extra(ctx, "Block Pull started");
        return Ok(());
    }
    let verbose = args.flag("verbose");
    match wait(
        &dom,
        events,
        path,
        "Block Pull",
        verbose,
        timeout,
        args.flag("async"),
    )? {
        Outcome::Canceled => bail_quiet(ctx, "\nPull aborted"),
        Outcome::Failed => bail_quiet(ctx, "\nPull failed"),
        Outcome::Completed | Outcome::Ready => {
            extra(ctx, "\nPull complete");
            Ok(())
        }
    }
}

/// virsh's end of a waited job that did not succeed: its line, then failure.
pub(super) fn bail_quiet(ctx: &CmdCtx, line: &str) -> Result<()> {
    extra(ctx, line);
    Err(crate::cli::ctx::QuietFailure.into())
}

/// virsh's vshPrintExtra: no newline of its own (the one after every command ends it).
pub(super) fn extra(ctx: &CmdCtx, s: &str) {
    if !ctx.globals.quiet {
        ctx.print(s);
    }
}

fn cmd_blockcommit(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    args.exclusive("pivot", "keep-overlay")?;
    let pivot = args.flag("pivot");
    let finish = args.flag("keep-overlay");
    let active = args.flag("active") || pivot || finish;
    let path = args.required("path")?;
    let bw = bandwidth(args)?;
    let timeout = timeout_ms(args)?;
    let blocking = args.flag("wait") || pivot || finish || timeout > 0;
    if !blocking {
        for o in ["verbose", "async"] {
            if args.flag(o) {
                bail!(
                    "--{o} requires at least one of --timeout, --wait, --pivot, or --keep-overlay"
                );
            }
        }
    }
    let mut flags = 0;
    for (o, f) in [
        ("bytes", BLOCK_COMMIT_BANDWIDTH_BYTES),
        ("shallow", BLOCK_COMMIT_SHALLOW),
    ] {
        if args.flag(o) {
            flags |= f;
        }
    }
    if active {
        flags |= BLOCK_COMMIT_ACTIVE;
    }
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    let events = if blocking { subscribe(&dom) } else { None };
    dom.block_commit(path, args.string("base"), args.string("top"), bw, flags)?;
    if !blocking {
        extra(
            ctx,
            if active {
                "Active Block Commit started"
            } else {
                "Block Commit started"
            },
        );
        return Ok(());
    }
    let async_abort = args.flag("async");
    match wait(
        &dom,
        events,
        path,
        "Block commit",
        args.flag("verbose"),
        timeout,
        async_abort,
    )? {
        Outcome::Canceled => return bail_quiet(ctx, "\nCommit aborted"),
        Outcome::Failed => return bail_quiet(ctx, "\nCommit failed"),
        Outcome::Completed | Outcome::Ready => {}
    }
    let abort_flags = if async_abort {
        BLOCK_JOB_ABORT_ASYNC
    } else {
        0
    };
    if !active {
        extra(ctx, "\nCommit complete");
    } else if pivot {
        dom.block_job_abort(path, abort_flags | BLOCK_JOB_ABORT_PIVOT)
            .with_context(|| format!("failed to pivot job for disk {path}"))?;
        extra(ctx, "\nSuccessfully pivoted");
    } else if finish {
        dom.block_job_abort(path, abort_flags)
            .with_context(|| format!("failed to finish job for disk {path}"))?;
        extra(ctx, "\nCommit complete, overlay image kept");
    } else {
        extra(ctx, "\nNow in synchronized phase");
    }
    Ok(())
}

/// virsh's `--raw` name of a job type (virshDomainBlockJob's enum strings).
fn raw_type(t: BlockJobType) -> &'static str {
    match t {
        BlockJobType::Pull => "Block Pull",
        BlockJobType::Copy => "Block Copy",
        BlockJobType::Commit => "Block Commit",
        BlockJobType::ActiveCommit => "Active Block Commit",
    }
}

fn cmd_blockjob(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    for (a, others) in [
        ("raw", ["abort", "pivot", "async", "bandwidth"]),
        ("info", ["abort", "pivot", "async", "bandwidth"]),
    ] {
        for b in others {
            args.exclusive(a, b)?;
        }
    }
    for b in ["abort", "pivot", "async"] {
        args.exclusive("bytes", b)?;
    }
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    let path = args.required("path")?;
    let bytes = args.flag("bytes");
    if args.string("bandwidth").is_some() {
        let f = if bytes {
            BLOCK_JOB_SPEED_BANDWIDTH_BYTES
        } else {
            0
        };
        dom.block_job_set_speed(path, bandwidth(args)?, f)?;
        return Ok(());
    }
    if args.flag("abort") || args.flag("pivot") || args.flag("async") {
        let mut f = 0;
        if args.flag("async") {
            f |= BLOCK_JOB_ABORT_ASYNC;
        }
        if args.flag("pivot") {
            f |= BLOCK_JOB_ABORT_PIVOT;
        }
        dom.block_job_abort(path, f)?;
        return Ok(());
    }
    let raw = args.flag("raw");
    let f = if raw && !bytes {
        0
    } else {
        BLOCK_JOB_INFO_BANDWIDTH_BYTES
    };
    let Some(info) = dom.block_job_info(path, f)? else {
        if !raw {
            // virsh prints this without a newline.
            extra(ctx, &format!("No current block job for {path}"));
        }
        return Ok(());
    };
    if raw {
        ctx.print(format!(
            " type={}\n bandwidth={}\n cur={}\n end={}\n",
            raw_type(info.job_type),
            info.bandwidth,
            info.cur,
            info.end
        ));
        return Ok(());
    }
    progress(
        info.job_type.label(),
        info.end - info.cur.min(info.end),
        info.end,
    );
    let mut line = String::new();
    if info.bandwidth > 0 {
        let (val, unit) = pretty_capacity(info.bandwidth);
        line = format!(
            "    Bandwidth limit: {} bytes/s ({val:.3} {unit}/s)",
            info.bandwidth
        );
    }
    ctx.println(line);
    Ok(())
}

/// virsh's vshPrettyCapacity.
fn pretty_capacity(v: u64) -> (f64, &'static str) {
    const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut i = 0;
    while i + 1 < UNITS.len() && v >= 1u64 << (10 * (i + 1)) {
        i += 1;
    }
    (v as f64 / (1u64 << (10 * i)) as f64, UNITS[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_as_virsh() {
        assert_eq!(pretty_capacity(1 << 20), (1.0, "MiB"));
        assert_eq!(pretty_capacity(512), (512.0, "B"));
    }
}
