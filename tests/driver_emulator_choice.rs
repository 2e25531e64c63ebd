//! Which emulator a domain without `<emulator>` runs on, and what choosing it costs.

use std::path::{Path, PathBuf};

use domdriver::Connect;
use domdriver::driver::ConnectOptions;

fn connect(root: &Path, dirs: Vec<PathBuf>) -> Connect {
    let uri = format!("qemu:///embed?root={}", root.display());
    Connect::open_with(
        Some(&uri),
        ConnectOptions {
            emulator_dirs: dirs,
            ..ConnectOptions::default()
        },
    )
    .unwrap()
}

fn domain(arch: &str, machine: &str) -> String {
    format!(
        "<domain type='qemu'><name>pick</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>\
         <os><type arch='{arch}' machine='{machine}'>hvm</type></os></domain>"
    )
}

fn cached_binaries(root: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root.join("cache/qemu/capabilities"))
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".json"))
                .map(|n| n.split('-').take(3).collect::<Vec<_>>().join("-"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names.dedup();
    names
}

/// A start needs one emulator: on a cold cache only the binary named for the arch is asked,
/// not every QEMU on the machine.
#[test]
fn a_domain_without_emulator_probes_only_the_binary_named_for_its_arch() {
    let bin = Path::new("/usr/bin");
    if !bin.join("qemu-system-x86_64").exists() || !bin.join("qemu-system-aarch64").exists() {
        eprintln!("\n*** SKIPPED: qemu-system-x86_64 and qemu-system-aarch64 are needed ***\n");
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let conn = connect(d.path(), vec![bin.to_path_buf()]);
    let cmd = conn
        .domain_xml_to_native(&domain("x86_64", "pc"))
        .expect("argv for an x86_64 domain");
    assert_eq!(cmd.binary, "/usr/bin/qemu-system-x86_64");
    assert_eq!(cached_binaries(d.path()), ["qemu-system-x86_64"]);
}

/// The name only says what to ask first: a binary called qemu-system-x86_64 that serves
/// another target is not chosen for x86_64, and the full inventory decides.
#[test]
fn a_misnamed_binary_is_not_chosen_by_its_name() {
    let real = Path::new("/usr/bin/qemu-system-aarch64");
    if !real.exists() {
        eprintln!("\n*** SKIPPED: qemu-system-aarch64 is needed ***\n");
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("bin");
    std::fs::create_dir(&dir).unwrap();
    std::os::unix::fs::symlink(real, dir.join("qemu-system-x86_64")).unwrap();
    let conn = connect(&d.path().join("root"), vec![dir.clone()]);
    let err = conn
        .domain_xml_to_native(&domain("x86_64", "pc"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("no emulator found for arch 'x86_64'"), "{err}");
    let cmd = conn
        .domain_xml_to_native(&domain("aarch64", "virt"))
        .expect("the misnamed binary still serves aarch64");
    assert_eq!(Path::new(&cmd.binary), dir.join("qemu-system-x86_64"));
}
