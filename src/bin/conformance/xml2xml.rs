//! `conformance xml2xml`: parses every `DIR/NAME.xml`, formats it, writes
//! `OUTDIR/NAME.ARCH-latest.xml` (or `.err` with the error message) and compares with
//! libvirt's `NAME.ARCH-latest.xml` in the expected directory (default:
//! `DIR/../qemuxml2xmloutdata`), printing `N passed, M failed`.
//!
//! With `--caps FILE` (a libvirt `.replies` recording), the capabilities are replayed once and
//! every definition goes through [`domdriver::domain::prepare`] before formatting, as libvirt's
//! post-parse does; without it the parsed definition is formatted as is.

use std::fs;
use std::path::Path;

use anyhow::{Context, Result};
use domdriver::capabilities::qemu::{QemuCaps, probe_replies};
use domdriver::domain::prepare::PrepareOptions;
use domdriver::domain::{DomainDef, DomainError, FormatFlags};

use crate::Args;

pub use domdriver::conformance::harness::harness_emulator;

/// Replay a `.replies` recording into capabilities, as probed from the harness emulator.
pub fn load_caps(path: &Path, arch: &str) -> Result<QemuCaps> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    rt.block_on(probe_replies(path, &harness_emulator(arch)))
        .with_context(|| format!("replaying {}", path.display()))
}

pub use domdriver::conformance::harness::prepare_options as harness_options;

/// Parse, optionally prepare, and format one case: `("xml", text)` or `("err", message)`.
pub fn convert(
    src: &str,
    caps: Option<&QemuCaps>,
    opts: &PrepareOptions,
) -> (&'static str, String) {
    let run = || -> Result<DomainDef, DomainError> {
        let def = domdriver::domain::parse(src)?;
        match caps {
            Some(c) => domdriver::domain::prepare(def, c, opts),
            None => Ok(def),
        }
    };
    match run() {
        Ok(def) => (
            "xml",
            def.to_xml(FormatFlags {
                inactive: true,
                secure: true,
            }),
        ),
        Err(e) => ("err", format!("{e}\n")),
    }
}

pub fn run(args: &Args) -> Result<()> {
    let caps = match &args.caps {
        Some(p) => Some(load_caps(p, &args.arch)?),
        None => None,
    };
    let expected_dir = match &args.expected {
        Some(d) => d.clone(),
        None => args
            .input
            .parent()
            .unwrap_or(Path::new("."))
            .join("qemuxml2xmloutdata"),
    };
    fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let names = crate::case_names(&args.input)?;

    let (mut passed, mut failed, mut unreferenced) = (0usize, 0usize, 0usize);
    for name in &names {
        let src = fs::read_to_string(args.input.join(format!("{name}.xml")))
            .with_context(|| format!("reading {name}.xml"))?;
        let stem = format!("{name}.{}-latest", args.arch);
        let opts = harness_options(name, &args.arch);
        let (ext, body) = convert(&src, caps.as_ref(), &opts);
        let other = if ext == "xml" { "err" } else { "xml" };
        let _ = fs::remove_file(args.out.join(format!("{stem}.{other}")));
        fs::write(args.out.join(format!("{stem}.{ext}")), &body)?;

        let reference = expected_dir.join(format!("{stem}.xml"));
        match fs::read_to_string(&reference) {
            Ok(want) if ext == "xml" && want == body => passed += 1,
            Ok(_) => {
                failed += 1;
                if args.verbose {
                    println!("FAIL {stem}");
                }
            }
            Err(_) => unreferenced += 1,
        }
    }
    println!("{passed} passed, {failed} failed ({unreferenced} without a reference output)");
    Ok(())
}
