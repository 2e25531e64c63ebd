//! QEMU command lines against libvirt's `qemuxml2argvdata` (x86_64-latest, caps_8.0.0).
//!
//! The domain comes from libvirt's prepared document (`qemuxml2xmloutdata/NAME.x86_64-latest.xml`,
//! defaults and addresses applied) when there is one, else from the plain input. Cases that pass
//! are listed in `tests/data/xml2argv/pass.txt`; a listed case that stops passing fails the test.
//! Our own golden cases live in `tests/data/xml2argv/NAME.xml` → `NAME.args`.
//! `VSH_TEST_REGENERATE_OUTPUT=1` rewrites the list and the golden outputs.

mod common;

use std::collections::BTreeSet;
use std::fs;

use domdriver::capabilities::qemu::{QemuCaps, probe_replies};
use domdriver::conformance::harness::{
    case_input, run_case, run_case_swtpm, swtpm_err_run, swtpm_run_name,
};

fn caps() -> QemuCaps {
    caps_for("x86_64")
}

/// The caps libvirt's "ARCH-latest" cases use: 8.0.0 for x86_64, 7.0.0 for aarch64.
fn caps_for(arch: &str) -> QemuCaps {
    let ver = if arch == "aarch64" { "7.0.0" } else { "8.0.0" };
    let name = format!("caps_{ver}.{arch}");
    let path = common::testdata().join(format!("tests/qemucapabilitiesdata/{name}.replies"));
    domdriver::runtime::block_on(probe_replies(
        &path,
        &format!("/usr/bin/qemu-system-{arch}"),
    ))
    .unwrap_or_else(|e| panic!("replay {name}: {e}"))
}

/// The guest arch a golden input names (`<type arch='..'>`), x86_64 when it names none.
fn golden_arch(xml: &str) -> &'static str {
    if xml.contains("arch='aarch64'") || xml.contains("arch=\"aarch64\"") {
        "aarch64"
    } else {
        "x86_64"
    }
}

#[test]
fn xml2argv_x86_64_latest() {
    let td = common::testdata().join("tests");
    let input = td.join("qemuxml2argvdata");
    let prepared = td.join("qemuxml2xmloutdata");
    let caps = caps();
    let mut names: Vec<String> = fs::read_dir(&input)
        .expect("read qemuxml2argvdata")
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().map(String::from))
        .filter_map(|n| n.strip_suffix(".xml").map(String::from))
        .collect();
    names.sort();
    let mut passing = BTreeSet::new();
    let mut total = 0;
    for name in &names {
        let stem = format!("{name}.x86_64-latest");
        let want_args = fs::read_to_string(input.join(format!("{stem}.args"))).ok();
        let want_err = fs::read_to_string(input.join(format!("{stem}.err"))).ok();
        if want_args.is_none() && want_err.is_none() {
            continue;
        }
        total += 1;
        let xml = case_input(name, "x86_64", &input, Some(&prepared)).expect("read case");
        let (ext, body) = run_case(name, "x86_64", &xml, &caps);
        let ok = match ext {
            "args" => want_args.as_deref() == Some(body.as_str()),
            _ => want_err.as_deref() == Some(body.as_str()),
        };
        if ok {
            passing.insert(name.clone());
        }
        // libvirt's second run of the case, with a restricted swtpm, gives its `.err`.
        if let (Some(versions), Some(_)) = (swtpm_err_run(name), &want_args) {
            total += 1;
            let (ext, body) = run_case_swtpm(name, "x86_64", &xml, &caps, versions);
            if ext == "err" && want_err.as_deref() == Some(body.as_str()) {
                passing.insert(swtpm_run_name(name, versions));
            }
        }
    }
    let list = common::data().join("xml2argv/pass.txt");
    if common::regenerate() {
        let mut text: String = passing.iter().map(|n| format!("{n}\n")).collect();
        if text.is_empty() {
            text.push('\n');
        }
        fs::write(&list, text).expect("write pass.txt");
        return;
    }
    let expected: BTreeSet<String> = fs::read_to_string(&list)
        .expect("tests/data/xml2argv/pass.txt (regenerate with VSH_TEST_REGENERATE_OUTPUT=1)")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(String::from)
        .collect();
    let regressed: Vec<_> = expected.difference(&passing).collect();
    eprintln!("xml2argv: {} of {total} cases pass", passing.len());
    assert!(
        regressed.is_empty(),
        "cases that used to pass: {regressed:?}"
    );
}

#[test]
fn xml2argv_golden() {
    let dir = common::data().join("xml2argv");
    let mut caps = std::collections::HashMap::new();
    let mut checked = 0;
    let mut entries: Vec<_> = fs::read_dir(&dir)
        .expect("read tests/data/xml2argv")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "xml"))
        .collect();
    entries.sort();
    for p in entries {
        let name = p
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_string();
        let xml = fs::read_to_string(&p).expect("read golden input");
        let arch = golden_arch(&xml);
        let caps = caps.entry(arch).or_insert_with(|| caps_for(arch));
        let (ext, body) = run_case(&name, arch, &xml, caps);
        let out = dir.join(format!("{name}.{ext}"));
        if common::regenerate() {
            fs::write(&out, &body).expect("write golden output");
            continue;
        }
        let want = fs::read_to_string(&out)
            .unwrap_or_else(|_| panic!("{name}: no {ext} expectation (got: {body})"));
        assert_eq!(body, want, "{name}");
        checked += 1;
    }
    assert!(common::regenerate() || checked > 0, "no golden cases");
}
