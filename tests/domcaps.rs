//! Domain capabilities against libvirt 9.0.0's `domaincapsdata` (all QEMU cases), our schema
//! and libvirt's, and real emulators.

mod common;

use std::path::Path;

use domdriver::conformance::domcaps::run_domcaps_conformance;

#[test]
fn libvirt_domaincaps_cases() {
    let tests = common::testdata().join("tests");
    let out = tempfile::tempdir().expect("tempdir");
    let report = run_domcaps_conformance(&tests, out.path()).expect("run");
    eprintln!("domcaps conformance: {report}");
    for (n, why) in &report.failed {
        eprintln!("  FAIL {n}: {why}");
    }
    assert_eq!(
        report.passed.len() + report.failed.len(),
        55,
        "expected libvirt's 55 QEMU domain capabilities cases"
    );
    let list = common::data().join("domcaps/pass.txt");
    if common::regenerate() {
        std::fs::create_dir_all(list.parent().unwrap()).unwrap();
        let mut text = report.passed.join("\n");
        text.push('\n');
        std::fs::write(&list, text).unwrap();
        return;
    }
    let must = std::fs::read_to_string(&list).unwrap_or_default();
    let regressed: Vec<&str> = must
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .filter(|l| !report.passed.iter().any(|p| p == l))
        .collect();
    assert!(
        regressed.is_empty(),
        "cases listed in {} no longer pass: {regressed:?}",
        list.display()
    );
}

#[allow(dead_code)]
fn exists(p: &str) -> bool {
    Path::new(p).exists()
}
