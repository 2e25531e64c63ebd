//! The wait the event verbs share (`event`, `qemu-monitor-event`, `secret-event`; `await`
//! uses its single step): `--timeout`, one event or `--loop`, Ctrl-C, and the summary virsh
//! prints at the end (libvirt: tools/vsh.c vshEventStart/vshEventWait/vshEventDone, and each
//! verb's "events received" tail).

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use serde::Serialize;

use crate::cli::ctx::{CmdCtx, QuietFailure};
use crate::cli::interrupt::CatchInterrupt;
use crate::cli::parse::ParsedArgs;
use crate::cli::table::{Completer, OptDef};

/// How often a wait looks at Ctrl-C (and `await` at the domain's state).
pub const SLICE: Duration = Duration::from_millis(100);

/// `--timeout` in seconds, as virsh takes it: positive, and small enough in milliseconds
/// (libvirt: vshCommandOptTimeoutToMs).
pub fn timeout(args: &ParsedArgs) -> Result<Option<Duration>> {
    match args.int::<u32>("timeout")? {
        None => Ok(None),
        Some(t) if t == 0 || t > i32::MAX as u32 / 1000 => {
            bail!("Numeric value '{t}' for <timeout> option is malformed or out of range")
        }
        Some(t) => Ok(Some(Duration::from_secs(t.into()))),
    }
}

/// How a wait for events ended (libvirt: vshEventWait's results).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Ended {
    Done,
    TimedOut,
    Interrupted,
}

/// The next event `next` gives (it waits at most the duration it is given), up to
/// `deadline`, watching for Ctrl-C.
pub fn next_event<E>(
    next: &mut impl FnMut(Duration) -> Option<E>,
    deadline: Option<Instant>,
    intr: &CatchInterrupt,
) -> Result<E, Ended> {
    loop {
        if intr.interrupted() {
            return Err(Ended::Interrupted);
        }
        let mut slice = SLICE;
        if let Some(d) = deadline {
            let left = d.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Ended::TimedOut);
            }
            slice = slice.min(left);
        }
        if let Some(e) = next(slice) {
            return Ok(e);
        }
    }
}

/// `--json`'s last line: how the wait ended and how many events were printed.
#[derive(Serialize)]
struct Summary {
    ended: Ended,
    events_received: usize,
}

/// Waits for events from `next` until one is printed (all of them with `looping`), the
/// timeout passes or Ctrl-C; `print` prints an event and says whether it printed it (false:
/// the verb's filter dropped it). Then the summary, as virsh prints it or as one JSON line;
/// no event printed is a failure with nothing more to say, as in virsh.
pub fn run<E>(
    ctx: &CmdCtx,
    timeout: Option<Duration>,
    looping: bool,
    mut next: impl FnMut(Duration) -> Option<E>,
    mut print: impl FnMut(&CmdCtx, E) -> Result<bool>,
) -> Result<()> {
    let intr = CatchInterrupt::install();
    let deadline = timeout.map(|t| Instant::now() + t);
    let mut count = 0usize;
    let ended = loop {
        match next_event(&mut next, deadline, &intr) {
            Err(end) => break end,
            Ok(e) => {
                if !print(ctx, e)? {
                    continue;
                }
                count += 1;
                if !looping {
                    break Ended::Done;
                }
            }
        }
    };
    if ctx.json() {
        let s = Summary {
            ended,
            events_received: count,
        };
        ctx.println(serde_json::to_string(&s)?);
    } else {
        match ended {
            Ended::Interrupted => ctx.println("event loop interrupted"),
            Ended::TimedOut => ctx.println("event loop timed out"),
            Ended::Done => {}
        }
        ctx.println(format!("events received: {count}"));
    }
    if count == 0 {
        return Err(QuietFailure.into());
    }
    Ok(())
}

/// `--timestamp`'s prefix on a line: the event's time (ms since the epoch) as virsh prints
/// it (libvirt: virshEventPrint's vshEventTimestamp).
pub fn stamped(time_ms: u64, line: &str) -> String {
    let ts = crate::timefmt::format_virsh_timestamp(time_ms);
    format!("{ts}: {line}")
}

/// The options of the object event verbs (`secret-event`, `net-event`, `pool-event`,
/// `nodedev-event`): `object` filters by one object, `names` are the verb's event ids.
pub const fn object_event_opts(object: OptDef, names: &'static [&'static str]) -> [OptDef; 6] {
    [
        object,
        OptDef::string("event", "which event type to wait for")
            .positional()
            .complete(Completer::Words(names)),
        OptDef::flag(
            "loop",
            "loop until timeout or interrupt, rather than one-shot",
        ),
        OptDef::int("timeout", "timeout seconds").positional(),
        OptDef::flag("list", "list valid event types"),
        OptDef::flag("timestamp", "show timestamp for each printed event"),
    ]
}

/// The object event verbs' `--list` / `--event` choice: `None` once `--list` has printed
/// `names`, else the event id asked for, which must be one of `names`.
pub fn chosen_event<'a>(
    ctx: &CmdCtx,
    args: &'a ParsedArgs,
    names: &[&str],
) -> Result<Option<&'a str>> {
    if args.flag("list") {
        for n in names {
            ctx.println(n);
        }
        return Ok(None);
    }
    let Some(event) = args.string("event") else {
        bail!("either --list or --event <type> is required");
    };
    if !names.contains(&event) {
        bail!("unknown event type {event}");
    }
    Ok(Some(event))
}

/// The wait of an object event verb: the events from `next` that `keep` keeps, each as one
/// JSON line or as virsh's `line`, with the time it is printed in front with `--timestamp`
/// (these events carry no time of their own); `--loop` and the end as [`run`] has them.
pub fn run_object_events<E: Serialize>(
    ctx: &CmdCtx,
    args: &ParsedArgs,
    timeout: Option<Duration>,
    next: impl FnMut(Duration) -> Option<E>,
    keep: impl Fn(&E) -> bool,
    line: impl Fn(&E) -> String,
) -> Result<()> {
    run(ctx, timeout, args.flag("loop"), next, |ctx, e| {
        if !keep(&e) {
            return Ok(false);
        }
        if ctx.json() {
            ctx.println(serde_json::to_string(&e)?);
        } else if args.flag("timestamp") {
            let now = crate::driver::monitor::events::now_ms();
            ctx.println(stamped(now, &line(&e)));
        } else {
            ctx.println(line(&e));
        }
        Ok(true)
    })
}
