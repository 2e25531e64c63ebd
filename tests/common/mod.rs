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

/// This project's own golden files.
pub fn data() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

/// Whether golden files should be rewritten instead of compared.
pub fn regenerate() -> bool {
    std::env::var_os("VSH_TEST_REGENERATE_OUTPUT").is_some_and(|v| v == "1")
}
