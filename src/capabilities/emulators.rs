//! Finding the QEMU system emulators installed on this host.
//!
//! Only the file name pattern decides what is *looked at*; what a binary *is* (its target)
//! always comes from asking it over QMP, so renamed binaries and wrapper scripts work.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Directories searched after PATH, where distributions put QEMU outside PATH.
pub const EXTRA_DIRS: &[&str] = &[
    "/usr/libexec",
    "/usr/lib/qemu",
    "/usr/local/libexec",
    "/usr/bin",
    "/usr/local/bin",
    "/opt/homebrew/bin",
];

fn is_emulator_name(name: &str) -> bool {
    // qemu-kvm is RHEL's name for the host-arch binary in /usr/libexec.
    (name.starts_with("qemu-system-") && !name.ends_with(".bak")) || name == "qemu-kvm"
}

/// The file's identity when it is an executable regular file (following symlinks).
fn executable_id(p: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(p).ok()?;
    (m.is_file() && m.permissions().mode() & 0o111 != 0).then(|| (m.dev(), m.ino()))
}

/// Every `qemu-system-*` (and `qemu-kvm`) in `dirs`, in search order, with duplicates reached
/// through symlinks or repeated directories removed (the first path found is kept).
///
/// A duplicate is the same file under the same name. The same file under another name is
/// kept: libvirt looks emulators up by name (`qemu-system-ppc64le` for a ppc64le guest, a
/// link to qemu-system-ppc64 on Debian) and names the guest's emulator by the path it found.
pub fn find_in(dirs: &[PathBuf]) -> Vec<PathBuf> {
    // Identity by device and inode: one stat per file, where canonicalizing costs a readlink
    // per path component. The same holds for directories listed twice (PATH often repeats).
    let mut seen = BTreeSet::new();
    let mut seen_dirs = BTreeSet::new();
    let mut found = Vec::new();
    for dir in dirs {
        if let Some(id) = std::fs::metadata(dir).ok().map(|m| {
            (
                std::os::unix::fs::MetadataExt::dev(&m),
                std::os::unix::fs::MetadataExt::ino(&m),
            )
        }) && !seen_dirs.insert(id)
        {
            continue;
        }
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        let mut names: Vec<_> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| is_emulator_name(n))
            .collect();
        names.sort();
        for n in names {
            let p = dir.join(&n);
            if let Some(id) = executable_id(&p)
                && seen.insert((id, n.clone()))
            {
                found.push(p);
            }
        }
    }
    found
}

/// The directories to search: `VSH_EMULATOR_PATH` (colon-separated) when set, which replaces
/// the search entirely; else PATH followed by [`EXTRA_DIRS`].
pub fn search_dirs() -> Vec<PathBuf> {
    if let Some(p) = std::env::var_os("VSH_EMULATOR_PATH") {
        return std::env::split_paths(&p).collect();
    }
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend(EXTRA_DIRS.iter().map(PathBuf::from));
    dirs
}

/// Installed emulators, found as [`search_dirs`] says.
pub fn find() -> Vec<PathBuf> {
    find_in(&search_dirs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_executables_and_dedups_links() {
        let d = tempfile::tempdir().unwrap();
        let a = d.path().join("a");
        let b = d.path().join("b");
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        let exe = a.join("qemu-system-foo");
        std::fs::write(&exe, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(a.join("qemu-system-noexec"), "").unwrap();
        std::fs::write(a.join("qemu-img"), "").unwrap();
        std::os::unix::fs::symlink(&exe, b.join("qemu-system-foo")).unwrap();
        std::os::unix::fs::symlink(&exe, b.join("qemu-system-foole")).unwrap();
        let found = find_in(&[a.clone(), b.clone(), a.clone(), d.path().join("missing")]);
        // The link under the same name is the same emulator; under another name it is what
        // a lookup by that name finds.
        assert_eq!(found, vec![exe, b.join("qemu-system-foole")]);
    }
}
