//! Helpers shared by integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

/// libvirt 9.0.0's test data: `LIBVIRT_TESTDATA`, default `../shared/libvirt-9.0.0`.
/// Panics loudly when absent: these tests are the spec and must not pass vacuously.
pub fn testdata() -> PathBuf {
    let p = std::env::var_os("LIBVIRT_TESTDATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/libvirt-9.0.0")
        });
    assert!(
        p.join("tests").is_dir(),
        "libvirt test data not found at {} (set LIBVIRT_TESTDATA to libvirt-9.0.0's directory)",
        p.display()
    );
    p
}

/// Check `xml` against libvirt's RelaxNG schema `schema` (e.g. `nodedev.rng`) with xmllint,
/// naming `what` when it is not valid.
pub fn assert_schema_valid(schema: &str, xml: &str, what: &str) {
    let rng = testdata().join("schemas").join(schema);
    let dir = tempfile::tempdir().expect("tempdir");
    let doc = dir.path().join("doc.xml");
    std::fs::write(&doc, xml).expect("write");
    let out = std::process::Command::new("xmllint")
        .args(["--noout", "--relaxng"])
        .arg(&rng)
        .arg(&doc)
        .output()
        .expect("xmllint must be installed (scripts/test installs libxml2-utils)");
    assert!(
        out.status.success(),
        "{what}: not valid per {schema}:\n{}\n{xml}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// This project's own golden files.
pub fn data() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

/// Whether golden files should be rewritten instead of compared.
pub fn regenerate() -> bool {
    std::env::var_os("VSH_TEST_REGENERATE_OUTPUT").is_some_and(|v| v == "1")
}

/// Spawn `cmd` and return once the kernel has finished exec'ing it. `spawn` returns as soon
/// as the child has left our address space, which is before exec has set up the new
/// program's arguments: for a moment `/proc/PID/cmdline` is empty (nearly always, right
/// after `spawn`). A test that stands a process in for QEMU records its `argv[0]`, which the
/// driver checks, so it must not read it in that window.
pub fn spawn_execd(cmd: &mut std::process::Command) -> std::process::Child {
    let child = cmd.spawn().expect("spawn");
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::fs::read(format!("/proc/{}/cmdline", child.id())).is_ok_and(|c| c.is_empty())
        && std::time::Instant::now() < until
    {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    child
}
