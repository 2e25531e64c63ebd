//! `conformance xml2argv --in DIR --out OUTDIR --arch ARCH --caps FILE.replies [--prepared DIR]
//! [--report FILE.md]`: builds the QEMU command for every `DIR/NAME.xml` (from
//! `PREPARED/NAME.ARCH-latest.xml` when that exists), writes `OUTDIR/NAME.ARCH-latest.args` or
//! `.err`, and compares with the expected file of the same name in DIR, printing
//! `N passed, M failed`; `--report` also writes every unmatched case with its reason.
//!
//! `conformance unmatched --report FILE.md [--testdata DIR] [--realclients DIR]`: the same over
//! the three corpora the project tracks, into one report (tests/data/xml2argv/UNMATCHED.md).

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use domdriver::capabilities::qemu::QemuCaps;
use domdriver::conformance::unmatched::{RunReport, render};
use domdriver::conformance::xml2argv::{Corpus, Outcome, check_case, load_cases};

use crate::Args;

/// The command that was run, for the report's header: how to regenerate it.
fn this_command() -> String {
    let args: Vec<String> = std::env::args().skip(1).collect();
    format!(
        "cargo run --release --bin conformance -- {}",
        args.join(" ")
    )
}

fn load_caps(path: &Path, arch: &str) -> Result<QemuCaps> {
    let emulator = format!(
        "/usr/bin/qemu-system-{}",
        if arch == "i686" { "i386" } else { arch }
    );
    domdriver::runtime::block_on(domdriver::capabilities::qemu::probe_replies(
        path, &emulator,
    ))
    .with_context(|| format!("replaying {}", path.display()))
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| p.display().to_string())
}

/// Check every case of `corpus`; write our outputs into `out` when given.
fn run_corpus(corpus: &Corpus, caps: &QemuCaps, out: Option<&Path>) -> Result<Vec<Outcome>> {
    let cases = load_cases(corpus).with_context(|| format!("reading {}", corpus.dir.display()))?;
    if let Some(out) = out {
        fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    }
    let mut outcomes = Vec::with_capacity(cases.len());
    for case in &cases {
        let o = check_case(case, &corpus.arch, caps);
        if let Some(out) = out {
            if case.swtpm.is_some() {
                // The second run of a case has no output file of its own.
                outcomes.push(o);
                continue;
            }
            let stem = format!("{}.{}-latest", case.file, corpus.arch);
            let other = if o.ext == "args" { "err" } else { "args" };
            let _ = fs::remove_file(out.join(format!("{stem}.{other}")));
            fs::write(out.join(format!("{stem}.{}", o.ext)), &o.body)?;
        }
        outcomes.push(o);
    }
    Ok(outcomes)
}

pub fn run(args: &Args) -> Result<()> {
    let caps_path = args
        .caps
        .as_ref()
        .context("xml2argv needs --caps FILE.replies")?;
    let caps = load_caps(caps_path, &args.arch)?;
    let corpus = Corpus {
        dir: args.input.clone(),
        arch: args.arch.clone(),
        prepared: args.prepared.clone(),
    };
    let outcomes = run_corpus(&corpus, &caps, Some(&args.out))?;
    if args.verbose {
        for o in &outcomes {
            let verdict = if o.mismatch.is_none() { "PASS" } else { "FAIL" };
            println!("{verdict} {}", o.name);
        }
    }
    let run = RunReport {
        label: format!(
            "{}, {}-latest ({})",
            file_name(&args.input),
            args.arch,
            file_name(caps_path)
        ),
        outcomes: &outcomes,
    };
    println!("{} passed, {} failed", run.passed(), run.failed());
    if let Some(report) = &args.report {
        fs::write(report, render(&[run], &this_command()))
            .with_context(|| format!("writing {}", report.display()))?;
    }
    Ok(())
}

/// `conformance unmatched`: libvirt's x86_64-latest and aarch64-latest corpora and the real
/// clients' corpus, into one report.
pub fn unmatched(mut it: impl Iterator<Item = String>) -> Result<()> {
    let usage =
        "usage: conformance unmatched --report FILE.md [--testdata DIR] [--realclients DIR]";
    let mut report = None;
    let mut testdata = std::env::var_os("LIBVIRT_TESTDATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("../shared/libvirt-9.0.0"));
    let mut realclients = PathBuf::from("../shared/realclients/virt-install");
    while let Some(a) = it.next() {
        let mut val = || {
            it.next()
                .with_context(|| format!("{a} needs a value\n{usage}"))
        };
        match a.as_str() {
            "--report" => report = Some(PathBuf::from(val()?)),
            "--testdata" => testdata = PathBuf::from(val()?),
            "--realclients" => realclients = PathBuf::from(val()?),
            other => bail!("unknown argument '{other}'\n{usage}"),
        }
    }
    let report = report.context(usage)?;
    let tests = testdata.join("tests");
    let capsdir = tests.join("qemucapabilitiesdata");
    let argvdata = tests.join("qemuxml2argvdata");
    let prepared = Some(tests.join("qemuxml2xmloutdata"));
    let runs = [
        (
            argvdata.clone(),
            "x86_64",
            "caps_8.0.0.x86_64.replies",
            prepared.clone(),
        ),
        (argvdata, "aarch64", "caps_7.0.0.aarch64.replies", prepared),
        (realclients, "x86_64", "caps_8.0.0.x86_64.replies", None),
    ];
    let mut results = Vec::new();
    for (dir, arch, caps_file, prepared) in runs {
        let caps = load_caps(&capsdir.join(caps_file), arch)?;
        let corpus = Corpus {
            dir: dir.clone(),
            arch: arch.to_string(),
            prepared,
        };
        let outcomes = run_corpus(&corpus, &caps, None)?;
        let label = format!("{}, {arch}-latest ({caps_file})", file_name(&dir));
        results.push((label, outcomes));
    }
    let runs: Vec<RunReport<'_>> = results
        .iter()
        .map(|(label, outcomes)| RunReport {
            label: label.clone(),
            outcomes,
        })
        .collect();
    for r in &runs {
        println!("{}: {} passed, {} failed", r.label, r.passed(), r.failed());
    }
    fs::write(&report, render(&runs, &this_command()))
        .with_context(|| format!("writing {}", report.display()))?;
    Ok(())
}
