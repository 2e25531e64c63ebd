//! A domain's long job: `domjobinfo`, `domjobabort`, and the `--verbose` progress line of
//! `save`/`managedsave` (libvirt: tools/virsh-domain.c cmdDomjobinfo, cmdDomjobabort,
//! virshWatchJob, virshPrintJobProgress).

use std::time::Duration;

use anyhow::{Result, bail};

use super::readfmt::pretty_capacity;
use super::util::lookup_domain;
use crate::cli::ctx::CmdCtx;
use crate::cli::parse::ParsedArgs;
use crate::cli::table::{Access, CmdDef, DomainFilter, Group, OptDef};
use crate::driver::Connect;
use crate::driver::domain::Domain;
use crate::driver::jobs::{JOB_STATS_COMPLETED, JOB_STATS_KEEP_COMPLETED, JobStats, JobType};

pub const CMDS: &[CmdDef] = &[
    CmdDef::new(
        Group::DomainManagement,
        "domjobabort",
        "abort active domain job",
        "Aborts the currently running domain job",
        &[
            OptDef::domain("domain name, id or uuid", DomainFilter::Active),
            OptDef::flag("postcopy", "interrupt post-copy migration"),
        ],
        cmd_domjobabort,
    )
    .with_access(Access::Write("virDomainAbortJob")),
    CmdDef::new(
        Group::DomainManagement,
        "domjobinfo",
        "domain job information",
        "Returns information about jobs running on a domain.",
        &[
            OptDef::domain("domain name, id or uuid", DomainFilter::All),
            OptDef::flag("completed", "return statistics of a recently completed job"),
            OptDef::flag(
                "keep-completed",
                "don't destroy statistics of a recently completed job when reading",
            ),
            OptDef::flag(
                "anystats",
                "print statistics for any kind of job (even failed ones)",
            ),
            OptDef::flag("rawstats", "print the raw data returned by libvirt"),
        ],
        cmd_domjobinfo,
    )
    .with_access(Access::Read),
];

/// `vsh domjobabort DOMAIN`.
fn cmd_domjobabort(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    if args.flag("postcopy") {
        // Only a migration has a post-copy phase, and this driver does not migrate.
        bail!("this function is not supported by the connection driver: virDomainAbortJobFlags");
    }
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    dom.abort_job()?;
    Ok(())
}

/// `vsh domjobinfo DOMAIN [--completed [--keep-completed]] [--anystats] [--rawstats]`.
fn cmd_domjobinfo(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let completed = args.flag("completed");
    if args.flag("keep-completed") && !completed {
        // libvirt: VSH_REQUIRE_OPTION("keep-completed", "completed")
        bail!("Option --completed is required by option --keep-completed");
    }
    let mut flags = 0;
    if completed {
        flags |= JOB_STATS_COMPLETED;
    }
    if args.flag("keep-completed") {
        flags |= JOB_STATS_KEEP_COMPLETED;
    }
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    let stats = dom.job_stats(flags)?;
    ctx.print(jobinfo_text(
        &stats,
        completed,
        args.flag("anystats"),
        args.flag("rawstats"),
    ));
    Ok(())
}

/// virsh's name of a job type (virshDomainJob).
fn job_type_name(t: JobType) -> &'static str {
    match t {
        JobType::None => "None",
        JobType::Bounded => "Bounded",
        JobType::Unbounded => "Unbounded",
        JobType::Completed => "Completed",
        JobType::Failed => "Failed",
        JobType::Cancelled => "Cancelled",
    }
}

fn job_type_number(t: JobType) -> i32 {
    match t {
        JobType::None => 0,
        JobType::Bounded => 1,
        JobType::Unbounded => 2,
        JobType::Completed => 3,
        JobType::Failed => 4,
        JobType::Cancelled => 5,
    }
}

/// virsh's name of a job's operation (virshDomainJobOperation).
fn operation_name(op: i32) -> &'static str {
    match op {
        1 => "Start",
        2 => "Save",
        3 => "Restore",
        4 => "Incoming migration",
        5 => "Outgoing migration",
        6 => "Snapshot",
        7 => "Snapshot revert",
        8 => "Dump",
        9 => "Backup",
        _ => "Unknown",
    }
}

/// What `domjobinfo` prints for `stats` (libvirt: cmdDomjobinfo).
pub fn jobinfo_text(stats: &JobStats, completed: bool, anystats: bool, raw: bool) -> String {
    let mut out = String::new();
    if raw {
        out.push_str(&format!("Job type: {}\n\n", job_type_number(stats.kind)));
        for (name, v) in &stats.params {
            out.push_str(&format!("{name}: {}\n", v.render()));
        }
        return out;
    }
    let line = |out: &mut String, label: &str, value: String| {
        out.push_str(&format!("{label:<17} {value}\n"));
    };
    let num = |v: u64, unit: &str| format!("{v:<12} {unit}");
    let size = |v: u64| {
        let (n, u) = pretty_capacity(v);
        format!("{n:.3} {u}")
    };
    line(
        &mut out,
        "Job type:",
        format!("{:<12}", job_type_name(stats.kind)),
    );
    let shown = matches!(stats.kind, JobType::Bounded | JobType::Unbounded)
        || (completed && stats.kind == JobType::Completed);
    if !anystats && !shown {
        return out;
    }
    let info = crate::driver::jobs::JobInfo::from(stats);
    let op = stats.operation().unwrap_or(0);
    line(
        &mut out,
        "Operation:",
        format!("{:<12}", operation_name(op)),
    );
    line(&mut out, "Time elapsed:", num(info.time_elapsed, "ms"));
    if let Some(v) = stats.ullong("time_elapsed_net") {
        line(&mut out, "Time elapsed w/o network:", num(v, "ms"));
    }
    if stats.kind == JobType::Bounded {
        line(&mut out, "Time remaining:", num(info.time_remaining, "ms"));
    }
    if info.data_total != 0 || info.data_remaining != 0 || info.data_processed != 0 {
        line(&mut out, "Data processed:", size(info.data_processed));
        line(&mut out, "Data remaining:", size(info.data_remaining));
        line(&mut out, "Data total:", size(info.data_total));
    }
    if info.mem_total != 0 || info.mem_remaining != 0 || info.mem_processed != 0 {
        line(&mut out, "Memory processed:", size(info.mem_processed));
        line(&mut out, "Memory remaining:", size(info.mem_remaining));
        line(&mut out, "Memory total:", size(info.mem_total));
        if let Some(v) = stats.ullong("memory_bps").filter(|v| *v != 0) {
            line(&mut out, "Memory bandwidth:", format!("{}/s", size(v)));
        }
        if let Some(v) = stats.ullong("memory_dirty_rate") {
            line(&mut out, "Dirty rate:", num(v, "pages/s"));
        }
        if let Some(v) = stats.ullong("memory_page_size") {
            line(&mut out, "Page size:", num(v, "bytes"));
        }
        if let Some(v) = stats.ullong("memory_iteration") {
            line(&mut out, "Iteration:", format!("{v:<12}"));
        }
        if let Some(v) = stats.ullong("memory_postcopy_requests") {
            line(&mut out, "Postcopy requests:", format!("{v:<12}"));
        }
    }
    if info.file_total != 0 || info.file_remaining != 0 || info.file_processed != 0 {
        line(&mut out, "File processed:", size(info.file_processed));
        line(&mut out, "File remaining:", size(info.file_remaining));
        line(&mut out, "File total:", size(info.file_total));
    }
    if let Some(v) = stats.ullong("memory_constant") {
        line(&mut out, "Constant pages:", format!("{v:<12}"));
    }
    if let Some(v) = stats.ullong("memory_normal") {
        line(&mut out, "Normal pages:", format!("{v:<12}"));
    }
    if let Some(v) = stats.ullong("memory_normal_bytes") {
        line(&mut out, "Normal data:", size(v));
    }
    if let Some(v) = stats.ullong("downtime") {
        line(&mut out, "Total downtime:", num(v, "ms"));
    }
    if let Some(v) = stats.ullong("downtime_net") {
        line(&mut out, "Downtime w/o network:", num(v, "ms"));
    }
    if let Some(v) = stats.ullong("setup_time") {
        line(&mut out, "Setup time:", num(v, "ms"));
    }
    // A pull backup's scratch images.
    if let Some(v) = stats.ullong("disk_temp_used") {
        line(&mut out, "Temporary disk space use:", size(v));
    }
    if let Some(v) = stats.ullong("disk_temp_total") {
        line(&mut out, "Temporary disk space total:", size(v));
    }
    if let Some(crate::driver::domstats::TypedValue::Str(e)) = stats
        .params
        .iter()
        .find_map(|(n, v)| (n == "errmsg").then_some(v))
    {
        line(&mut out, "Error message:", e.clone());
    }
    out
}

/// virsh's progress line (virshPrintJobProgress), on stderr: `\rSave: [ 45 %]`.
pub fn progress_line(label: &str, remaining: u64, total: u64) -> Option<String> {
    if total == 0 {
        return None;
    }
    let pct = if remaining == 0 {
        100
    } else {
        ((100.0 - remaining as f64 * 100.0 / total as f64) as i32).min(99)
    };
    Some(format!("\r{label}: [{pct:3} %]"))
}

/// Run `work` (a save of `dom`), printing virsh's progress line every half second when
/// `verbose`, and `[100 %]` when it succeeded (virsh: virshWatchJob).
pub fn watch<T, E>(
    dom: &Domain<'_>,
    verbose: bool,
    label: &'static str,
    work: impl FnOnce() -> std::result::Result<T, E>,
) -> std::result::Result<T, E> {
    watch_guest(dom.conn, dom.name(), verbose, label, work)
}

/// [`watch`] for the guest named `name`, which `work` may start (a restore).
pub fn watch_guest<T, E>(
    conn: &Connect,
    name: &str,
    verbose: bool,
    label: &'static str,
    work: impl FnOnce() -> std::result::Result<T, E>,
) -> std::result::Result<T, E> {
    if !verbose {
        return work();
    }
    let show = |line: Option<String>| {
        if let Some(l) = line {
            use std::io::Write;
            let mut e = std::io::stderr().lock();
            let _ = e.write_all(l.as_bytes());
            let _ = e.flush();
        }
    };
    let r = conn.with_job_progress(
        name,
        Duration::from_millis(500),
        |i| {
            if i.kind == JobType::Unbounded {
                show(progress_line(label, i.data_remaining, i.data_total));
            }
        },
        work,
    );
    if r.is_ok() {
        show(progress_line(label, 0, 1));
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::domstats::TypedValue;

    #[test]
    fn progress_as_virsh() {
        assert_eq!(progress_line("Save", 0, 0), None);
        assert_eq!(progress_line("Save", 0, 1).unwrap(), "\rSave: [100 %]");
        assert_eq!(progress_line("Save", 55, 100).unwrap(), "\rSave: [ 45 %]");
        assert_eq!(progress_line("Save", 1, 1000).unwrap(), "\rSave: [ 99 %]");
    }

    #[test]
    fn no_job_is_one_line() {
        let s = JobStats {
            kind: JobType::None,
            params: vec![],
        };
        assert_eq!(
            jobinfo_text(&s, false, false, false),
            "Job type:         None        \n"
        );
        assert_eq!(jobinfo_text(&s, false, false, true), "Job type: 0\n\n");
    }

    #[test]
    fn running_save_layout() {
        let u = |n: &str, v: u64| (n.to_string(), TypedValue::ULLong(v));
        let s = JobStats {
            kind: JobType::Unbounded,
            params: vec![
                ("operation".into(), TypedValue::Int(2)),
                u("time_elapsed", 1234),
                u("data_total", 1 << 30),
                u("data_processed", 1 << 29),
                u("data_remaining", 1 << 29),
                u("memory_total", 1 << 30),
                u("memory_processed", 1 << 29),
                u("memory_remaining", 1 << 29),
                u("memory_bps", 1 << 20),
                u("memory_dirty_rate", 0),
                u("memory_iteration", 1),
                u("memory_constant", 7),
            ],
        };
        let t = jobinfo_text(&s, false, false, false);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "Job type:         Unbounded   ");
        assert_eq!(lines[1], "Operation:        Save        ");
        assert_eq!(lines[2], "Time elapsed:     1234         ms");
        assert_eq!(lines[3], "Data processed:   512.000 MiB");
        assert_eq!(lines[5], "Data total:       1.000 GiB");
        assert_eq!(lines[9], "Memory bandwidth: 1.000 MiB/s");
        assert_eq!(lines[10], "Dirty rate:       0            pages/s");
        assert_eq!(lines[11], "Iteration:        1           ");
        assert_eq!(lines[12], "Constant pages:   7           ");
    }
}
