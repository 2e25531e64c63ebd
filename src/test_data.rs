//! Unit tests' access to libvirt's test data.

use std::path::PathBuf;

/// A directory of libvirt's tests (`tests/NAME`) under `LIBVIRT_TESTDATA` (default
/// `../shared/libvirt-9.0.0`), when that tree has it (libvirt 9.0.0's reference copy here
/// may not: the caller's test is then skipped, saying so).
pub fn libvirt_tests_dir(name: &str) -> Option<PathBuf> {
    let root = std::env::var_os("LIBVIRT_TESTDATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("../shared/libvirt-9.0.0"));
    let d = root.join("tests").join(name);
    if d.is_dir() {
        Some(d)
    } else {
        eprintln!("skipped: no {}", d.display());
        None
    }
}
