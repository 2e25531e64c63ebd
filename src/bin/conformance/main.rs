//! Conformance runner against libvirt's test data: one module per mode.
//!
//! - `conformance xml2xml --in DIR --out OUTDIR --arch ARCH [--caps FILE] [--expected DIR]`
//!   (see `xml2xml.rs`).
//! - `conformance domcaps --in DIR --out OUTDIR`: domain capabilities for every expected
//!   `DIR/qemu_*.xml` (DIR is libvirt's `tests/domaincapsdata` or `tests/`), replayed from the
//!   matching `caps_*.replies`.
//! - `conformance xml2argv --in DIR --out OUTDIR --arch ARCH --caps FILE.replies [--prepared DIR]
//!   [--report FILE.md]` (see `xml2argv.rs`).
//! - `conformance unmatched --report FILE.md [--testdata DIR] [--realclients DIR]`: the report
//!   of unmatched xml2argv cases over libvirt's x86_64 and aarch64 corpora and the real clients'.

mod xml2argv;
mod xml2xml;

use std::env;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};

pub struct Args {
    pub input: PathBuf,
    pub out: PathBuf,
    pub arch: String,
    pub caps: Option<PathBuf>,
    pub expected: Option<PathBuf>,
    pub prepared: Option<PathBuf>,
    pub report: Option<PathBuf>,
    pub verbose: bool,
}

/// The case names in a corpus directory: every `NAME.xml`, sorted.
pub fn case_names(dir: &std::path::Path) -> Result<Vec<String>> {
    domdriver::conformance::xml2argv::case_names(dir)
        .with_context(|| format!("reading {}", dir.display()))
}

fn usage() -> &'static str {
    "usage: conformance MODE --in DIR --out OUTDIR --arch ARCH [--caps FILE] [--expected DIR] [--prepared DIR] [--report FILE.md] [-v]\nmodes: xml2xml, xml2argv, domcaps (--in DIR --out OUTDIR only), unmatched (--report FILE.md [--testdata DIR] [--realclients DIR])"
}

fn parse_args(mut it: impl Iterator<Item = String>) -> Result<Args> {
    let mut input = None;
    let mut out = None;
    let mut arch = None;
    let mut caps = None;
    let mut expected = None;
    let mut prepared = None;
    let mut report = None;
    let mut verbose = false;
    while let Some(a) = it.next() {
        let mut val = |name: &str| it.next().with_context(|| format!("{name} needs a value"));
        match a.as_str() {
            "--in" => input = Some(PathBuf::from(val("--in")?)),
            "--out" => out = Some(PathBuf::from(val("--out")?)),
            "--arch" => arch = Some(val("--arch")?),
            "--caps" => caps = Some(PathBuf::from(val("--caps")?)),
            "--expected" => expected = Some(PathBuf::from(val("--expected")?)),
            "--prepared" => prepared = Some(PathBuf::from(val("--prepared")?)),
            "--report" => report = Some(PathBuf::from(val("--report")?)),
            "-v" | "--verbose" => verbose = true,
            other => bail!("unknown argument '{other}'\n{}", usage()),
        }
    }
    Ok(Args {
        input: input.context(usage())?,
        out: out.context(usage())?,
        arch: arch.context(usage())?,
        caps,
        expected,
        prepared,
        report,
        verbose,
    })
}

fn domcaps(mut it: impl Iterator<Item = String>) -> Result<()> {
    let usage = "usage: conformance domcaps --in DIR --out OUTDIR";
    let (mut input, mut out) = (None, None);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--in" => input = it.next().map(PathBuf::from),
            "--out" => out = it.next().map(PathBuf::from),
            other => bail!("unknown argument '{other}'\n{usage}"),
        }
    }
    let (input, out) = (input.context(usage)?, out.context(usage)?);
    let report = domdriver::conformance::domcaps::run_domcaps_conformance(&input, &out)
        .with_context(|| format!("domcaps conformance over {}", input.display()))?;
    println!("{report}");
    Ok(())
}

fn main() -> Result<()> {
    let mut it = env::args().skip(1);
    match it.next().as_deref() {
        Some("xml2xml") => xml2xml::run(&parse_args(it)?),
        Some("domcaps") => domcaps(it),
        Some("xml2argv") => xml2argv::run(&parse_args(it)?),
        Some("unmatched") => xml2argv::unmatched(it),
        _ => bail!("{}", usage()),
    }
}
