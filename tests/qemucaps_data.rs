//! Our own recorded conversations with Debian's QEMU binaries (`tests/data/qemucaps/`):
//! each replays to its golden caps document. `VSH_TEST_REGENERATE_OUTPUT=1` rewrites the
//! documents; re-record a conversation with
//! `vsh qemu-caps --emulator /usr/bin/qemu-system-ARCH --record tests/data/qemucaps/caps_VER_ARCH.replies`.

mod common;

use std::path::{Path, PathBuf};

use domdriver::capabilities::qemu::{
    GuestOptions, QemuCaps, format_guests_for_host, probe_replies,
};
use domdriver::xmlfmt::XmlWriter;

fn cases() -> Vec<PathBuf> {
    let dir = common::data().join("qemucaps");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "replies"))
        .collect();
    v.sort();
    v
}

/// `caps_7.2.0_aarch64+hvf` → `aarch64`.
fn target(path: &Path) -> String {
    let stem = path.file_stem().unwrap().to_str().unwrap();
    let (_version, arch) = stem.trim_start_matches("caps_").split_once('_').unwrap();
    arch.split('+').next().unwrap().to_string()
}

async fn replay(path: &Path) -> QemuCaps {
    let emulator = format!("/usr/bin/qemu-system-{}", target(path));
    probe_replies(path, &emulator)
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[tokio::test]
async fn recordings_replay_to_golden_documents() {
    let cases = cases();
    let mut arches: Vec<String> = cases.iter().map(|p| target(p)).collect();
    arches.dedup();
    for want in ["x86_64", "aarch64", "ppc64", "s390x", "riscv64"] {
        assert!(arches.iter().any(|a| a == want), "no recording for {want}");
    }
    for path in &cases {
        let caps = replay(path).await;
        let xml = caps.to_xml();
        let golden = path.with_extension("xml");
        if common::regenerate() {
            std::fs::write(&golden, &xml).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&golden).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (VSH_TEST_REGENERATE_OUTPUT=1 writes it)",
                golden.display()
            )
        });
        assert!(
            xml == expected,
            "{} differs from {} (VSH_TEST_REGENERATE_OUTPUT=1 rewrites it; review the diff)",
            path.display(),
            golden.display()
        );
    }
}

fn guests(caps: &[QemuCaps], host: &str, kvm: bool, hvf: bool) -> String {
    let mut w = XmlWriter::new();
    w.elem("capabilities").open();
    let opts = GuestOptions {
        kvm_usable: kvm,
        hvf_usable: hvf,
        machines: true,
    };
    format_guests_for_host(caps, host, &opts, &mut w);
    w.close();
    w.finish()
}

/// The hand-edited `aarch64+hvf` recording lists the `hvf-accel` type, as a macOS build does:
/// `<domain type='hvf'/>` appears exactly when Hypervisor.framework is usable.
#[tokio::test]
async fn hvf_guest_domain_follows_host_support() {
    let dir = common::data().join("qemucaps");
    let hvf = replay(&dir.join("caps_7.2.0_aarch64+hvf.replies")).await;
    assert!(hvf.has_flag("hvf"));
    let plain = replay(&dir.join("caps_7.2.0_aarch64.replies")).await;
    assert!(!plain.has_flag("hvf"));

    let with = guests(std::slice::from_ref(&hvf), "aarch64", false, true);
    assert!(with.contains("<domain type='hvf'/>"), "{with}");
    assert!(with.contains("<domain type='qemu'/>"));
    assert!(!with.contains("<domain type='kvm'/>"));
    let without = guests(std::slice::from_ref(&hvf), "aarch64", false, false);
    assert!(!without.contains("hvf"), "{without}");
    let not_built = guests(std::slice::from_ref(&plain), "aarch64", false, true);
    assert!(
        !not_built.contains("hvf"),
        "a binary without hvf-accel gets no hvf domain"
    );
}

/// KVM shows only where the host can use it and the binary reports it (`query-kvm`).
#[tokio::test]
async fn kvm_guest_domain_needs_usable_device_and_binary_support() {
    let dir = common::data().join("qemucaps");
    let x86 = replay(&dir.join("caps_7.2.0_x86_64.replies")).await;
    assert!(x86.kvm, "recorded on a host with working /dev/kvm");
    let with = guests(std::slice::from_ref(&x86), "x86_64", true, false);
    assert_eq!(
        with.matches("<domain type='kvm'/>").count(),
        2,
        "x86_64 and i686"
    );
    let without = guests(std::slice::from_ref(&x86), "x86_64", false, false);
    assert!(!without.contains("kvm"));
    // A foreign-arch binary never gets KVM.
    let arm = replay(&dir.join("caps_7.2.0_aarch64.replies")).await;
    let cross = guests(std::slice::from_ref(&arm), "x86_64", true, false);
    assert!(!cross.contains("<domain type='kvm'/>"), "{cross}");
}
