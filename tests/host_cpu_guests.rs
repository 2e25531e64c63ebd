//! The capabilities document names each guest's emulator by the path libvirt finds when it
//! looks the binary up by name: `qemu-system-ppc64le` for ppc64le guests where that exists
//! (Debian ships it as a link to qemu-system-ppc64), else qemu-system-ppc64.

use std::path::{Path, PathBuf};
use std::time::Duration;

use domdriver::Connect;
use domdriver::capabilities::host::HostRoot;
use domdriver::driver::ConnectOptions;

/// The `<emulator>` of the `<guest>` for `arch`.
fn emulator_of(xml: &str, arch: &str) -> Option<String> {
    let at = xml.find(&format!("<arch name='{arch}'>"))?;
    let rest = &xml[at..];
    let s = rest.find("<emulator>")? + "<emulator>".len();
    Some(rest[s..s + rest[s..].find('<')?].to_string())
}

fn capabilities(bin: &Path, root: &Path) -> String {
    let opts = ConnectOptions {
        host_root: HostRoot::real(),
        emulator_dirs: vec![bin.to_path_buf()],
        kvm_device: PathBuf::from("/dev/null"),
        probe_timeout: Duration::from_secs(30),
        ..ConnectOptions::default()
    };
    let uri = format!("qemu:///embed?root={}", root.display());
    Connect::open_with(Some(&uri), opts)
        .expect("open")
        .capabilities()
        .expect("capabilities")
}

#[test]
fn ppc64le_guest_is_named_by_the_binary_looked_up() {
    let ppc64 = Path::new("/usr/bin/qemu-system-ppc64");
    if !ppc64.exists() {
        eprintln!("\n*** SKIPPED: {} is not installed ***\n", ppc64.display());
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let bin = d.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(ppc64, bin.join("qemu-system-ppc64")).unwrap();

    // Only qemu-system-ppc64: it serves ppc64le guests too.
    let xml = capabilities(&bin, &d.path().join("r1"));
    let plain = bin.join("qemu-system-ppc64").display().to_string();
    assert_eq!(emulator_of(&xml, "ppc64").as_deref(), Some(plain.as_str()));
    assert_eq!(
        emulator_of(&xml, "ppc64le").as_deref(),
        Some(plain.as_str())
    );

    // Debian's layout: qemu-system-ppc64le is a link to qemu-system-ppc64, and libvirt, which
    // looks it up by name, names the ppc64le guest's emulator by it.
    std::os::unix::fs::symlink("qemu-system-ppc64", bin.join("qemu-system-ppc64le")).unwrap();
    let xml = capabilities(&bin, &d.path().join("r2"));
    let le = bin.join("qemu-system-ppc64le").display().to_string();
    assert_eq!(emulator_of(&xml, "ppc64").as_deref(), Some(plain.as_str()));
    assert_eq!(emulator_of(&xml, "ppc64le").as_deref(), Some(le.as_str()));
    // Both serve the same machines.
    let machines = |arch: &str| {
        let at = xml.find(&format!("<arch name='{arch}'>")).unwrap();
        let block = &xml[at..at + xml[at..].find("</arch>").unwrap()];
        block.lines().filter(|l| l.contains("<machine")).count()
    };
    assert!(machines("ppc64le") > 0);
    assert_eq!(machines("ppc64le"), machines("ppc64"));
}
