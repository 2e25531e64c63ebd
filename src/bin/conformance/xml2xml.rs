//! `conformance xml2xml`: parses every `DIR/NAME.xml`, formats it, writes
//! `OUTDIR/NAME.ARCH-latest.xml` (or `.err` with the error message) and compares with
//! libvirt's `NAME.ARCH-latest.xml` in the expected directory (default:
//! `DIR/../qemuxml2xmloutdata`), printing `N passed, M failed`.

use std::fs;
use std::path::Path;

use anyhow::{Context, Result};
use domdriver::domain::FormatFlags;

use crate::Args;

pub fn run(args: &Args) -> Result<()> {
    if let Some(caps) = &args.caps {
        // Accepted now so scripts can pass it; defaults that depend on capabilities come with
        // the post-parse stage.
        fs::metadata(caps).with_context(|| format!("capabilities file {}", caps.display()))?;
    }
    let expected_dir = match &args.expected {
        Some(d) => d.clone(),
        None => args
            .input
            .parent()
            .unwrap_or(Path::new("."))
            .join("qemuxml2xmloutdata"),
    };
    fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let mut names: Vec<String> = fs::read_dir(&args.input)
        .with_context(|| format!("reading {}", args.input.display()))?
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().map(String::from))
        .filter_map(|n| n.strip_suffix(".xml").map(String::from))
        .collect();
    names.sort();

    let (mut passed, mut failed, mut unreferenced) = (0usize, 0usize, 0usize);
    for name in &names {
        let src = fs::read_to_string(args.input.join(format!("{name}.xml")))
            .with_context(|| format!("reading {name}.xml"))?;
        let stem = format!("{name}.{}-latest", args.arch);
        let (ext, body) = match domdriver::domain::parse(&src) {
            Ok(def) => (
                "xml",
                def.to_xml(FormatFlags {
                    inactive: true,
                    secure: true,
                }),
            ),
            Err(e) => ("err", format!("{e}\n")),
        };
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
