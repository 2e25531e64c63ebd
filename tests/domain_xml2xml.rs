//! Idempotence on libvirt's own formatted output: parsing then formatting a file from
//! `tests/qemuxml2xmloutdata/*.ARCH-latest.xml` must reproduce it byte for byte.
//!
//! Cases that pass are listed in `tests/data/xml2xml/pass.txt`; a listed case that stops
//! passing fails the test. Run with `VSH_TEST_REGENERATE_OUTPUT=1` to rewrite the list.

mod common;

use std::collections::BTreeSet;
use std::fs;

use domdriver::domain::{DomainDef, FormatFlags};

const FLAGS: FormatFlags = FormatFlags {
    inactive: true,
    secure: true,
};

/// Names of libvirt's output files, e.g. `disk-cache.x86_64-latest`; the `-latest` ones are the
/// reference for the current QEMU, the others are older formats still worth keeping stable.
fn latest_cases() -> Vec<(String, std::path::PathBuf)> {
    let dir = common::testdata().join("tests/qemuxml2xmloutdata");
    let mut v: Vec<_> = fs::read_dir(&dir)
        .expect("read qemuxml2xmloutdata")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter_map(|p| {
            let name = p.file_name()?.to_str()?.to_string();
            let stem = name.strip_suffix(".xml")?;
            Some((stem.to_string(), p.clone()))
        })
        .collect();
    v.sort();
    v
}

fn roundtrip(path: &std::path::Path) -> Result<(), String> {
    let src = fs::read_to_string(path).map_err(|e| e.to_string())?;
    let def = DomainDef::from_xml(&src).map_err(|e| format!("parse: {e}"))?;
    let out = def.to_xml(FLAGS);
    if out == src {
        Ok(())
    } else {
        let first = src
            .lines()
            .zip(out.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| src.lines().count().min(out.lines().count()));
        Err(format!(
            "differs at line {}: expected {:?}, got {:?}",
            first + 1,
            src.lines().nth(first).unwrap_or(""),
            out.lines().nth(first).unwrap_or("")
        ))
    }
}

#[test]
fn xml2xml_idempotent_on_libvirt_output() {
    let cases = latest_cases();
    assert!(cases.len() > 100, "too few cases found: {}", cases.len());
    let mut passed = BTreeSet::new();
    let mut failures = Vec::new();
    for (name, path) in &cases {
        match roundtrip(path) {
            Ok(()) => {
                passed.insert(name.clone());
            }
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    let per_arch = |arch: &str| {
        let suffix = format!(".{arch}-latest");
        let total = cases.iter().filter(|(n, _)| n.ends_with(&suffix)).count();
        let ok = passed.iter().filter(|n| n.ends_with(&suffix)).count();
        format!("{arch}: {ok}/{total}")
    };
    let other_total = cases
        .iter()
        .filter(|(n, _)| !n.ends_with("-latest"))
        .count();
    let other_ok = passed.iter().filter(|n| !n.ends_with("-latest")).count();
    eprintln!(
        "xml2xml idempotence: {} of {} pass ({}, {}, {}, {}, {}, other: {other_ok}/{other_total})",
        passed.len(),
        cases.len(),
        per_arch("x86_64"),
        per_arch("aarch64"),
        per_arch("ppc64"),
        per_arch("s390x"),
        per_arch("riscv64"),
    );
    for f in &failures {
        eprintln!("FAIL {f}");
    }

    let list = common::data().join("xml2xml/pass.txt");
    if common::regenerate() {
        let body: String = passed.iter().map(|n| format!("{n}\n")).collect();
        fs::write(&list, body).expect("write pass.txt");
        return;
    }
    let expected: BTreeSet<String> = fs::read_to_string(&list)
        .expect("tests/data/xml2xml/pass.txt (regenerate with VSH_TEST_REGENERATE_OUTPUT=1)")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    let regressed: Vec<_> = expected.difference(&passed).collect();
    assert!(
        regressed.is_empty(),
        "cases that used to pass now fail: {regressed:?}"
    );
}
