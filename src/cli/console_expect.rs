//! `vsh console DOMAIN --expect REGEX [--send LINE]... [--timeout S]`: a scripted session on
//! the serial console, the steps in the order given, over [`crate::driver::console`].

use std::time::Duration;

use anyhow::{Result, bail};

use super::ctx::CmdCtx;
use super::parse::ParsedArgs;
use crate::driver::domain::Domain;

/// How long one `--expect` waits by default, before `VSH_TIMEOUT_MULTIPLIER` stretches it.
const DEFAULT_TIMEOUT: f64 = 30.0;

/// One step of a scripted session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Wait for a match of this regular expression.
    Expect(String),
    /// Type this line and Enter.
    Send(String),
}

/// The `--expect`/`--send` steps, in the order given.
pub fn steps(args: &ParsedArgs) -> Result<Vec<Step>> {
    let steps: Vec<Step> = args
        .given
        .iter()
        .filter_map(|(n, v)| match (*n, v) {
            ("expect", Some(v)) => Some(Step::Expect(v.clone())),
            ("send", Some(v)) => Some(Step::Send(v.clone())),
            _ => None,
        })
        .collect();
    if args.string("timeout").is_some() && steps.is_empty() {
        bail!("--timeout goes with --expect");
    }
    Ok(steps)
}

/// Run `steps` on `dom`'s console; the output each match consumed goes to stdout. A pattern
/// not seen in time fails the command with the console's tail.
pub fn run(
    ctx: &CmdCtx,
    dom: &Domain<'_>,
    devname: Option<&str>,
    steps: &[Step],
    args: &ParsedArgs,
) -> Result<()> {
    let secs = args.int::<f64>("timeout")?.unwrap_or(DEFAULT_TIMEOUT);
    if !secs.is_finite() || secs <= 0.0 {
        bail!(
            "Numeric value '{}' for <timeout> option is malformed or out of range",
            args.string("timeout").unwrap_or_default()
        );
    }
    // The console stretches it by VSH_TIMEOUT_MULTIPLIER itself.
    let timeout = Duration::from_secs_f64(secs);
    let mut console = dom.console(devname)?;
    let _session = dom.console_session(console.device(), args.flag("force"))?;
    for step in steps {
        match step {
            Step::Expect(re) => {
                let m = console.expect_regex(re, timeout)?;
                ctx.print(format!("{}{}", m.before, m.text));
            }
            Step::Send(line) => console.send_line(line)?,
        }
    }
    ctx.println("");
    Ok(())
}
