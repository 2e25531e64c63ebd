//! `conformance xml2argv --in DIR --out OUTDIR --arch ARCH --caps FILE.replies [--prepared DIR]`:
//! builds the QEMU command for every `DIR/NAME.xml` (from `PREPARED/NAME.ARCH-latest.xml` when
//! that exists), writes `OUTDIR/NAME.ARCH-latest.args` or `.err`, and compares with the
//! expected file of the same name in DIR, printing `N passed, M failed`.

use std::fs;

use anyhow::{Context, Result};
use domdriver::xml2argv::harness::{case_input, run_case};

use crate::Args;

pub fn run(args: &Args) -> Result<()> {
    let caps_path = args
        .caps
        .as_ref()
        .context("xml2argv needs --caps FILE.replies")?;
    let emulator = format!(
        "/usr/bin/qemu-system-{}",
        if args.arch == "i686" {
            "i386"
        } else {
            &args.arch
        }
    );
    let caps = domdriver::runtime::block_on(domdriver::capabilities::qemu::probe_replies(
        caps_path, &emulator,
    ))
    .with_context(|| format!("replaying {}", caps_path.display()))?;
    fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let names = crate::case_names(&args.input)?;
    let (mut passed, mut failed) = (0usize, 0usize);
    for name in &names {
        let stem = format!("{name}.{}-latest", args.arch);
        let want_args = fs::read_to_string(args.input.join(format!("{stem}.args"))).ok();
        let want_err = fs::read_to_string(args.input.join(format!("{stem}.err"))).ok();
        if want_args.is_none() && want_err.is_none() {
            continue;
        }
        let xml = case_input(name, &args.arch, &args.input, args.prepared.as_deref())
            .with_context(|| format!("reading {name}"))?;
        let (ext, body) = run_case(name, &args.arch, &xml, &caps);
        let other = if ext == "args" { "err" } else { "args" };
        let _ = fs::remove_file(args.out.join(format!("{stem}.{other}")));
        fs::write(args.out.join(format!("{stem}.{ext}")), &body)?;
        let ok = match ext {
            "args" => want_args.as_deref() == Some(body.as_str()),
            _ => want_err.as_deref() == Some(body.as_str()),
        };
        if ok {
            passed += 1;
            if args.verbose {
                println!("PASS {name}");
            }
        } else {
            failed += 1;
            if args.verbose {
                println!("FAIL {name}");
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    Ok(())
}
