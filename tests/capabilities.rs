//! `Connect::capabilities()` and `vsh capabilities` on this host, with good and bad emulators.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use domdriver::Connect;
use domdriver::capabilities::host::HostRoot;
use domdriver::driver::ConnectOptions;

fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

fn have(bin: &str) -> bool {
    if Path::new(bin).exists() {
        return true;
    }
    eprintln!("\n*** SKIPPED: {bin} is not installed (scripts/test installs it) ***\n");
    false
}

/// Validate with xmllint against a RelaxNG schema; `None` when xmllint is missing.
fn relaxng(schema: &Path, xml: &str) -> Option<Result<(), String>> {
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("doc.xml");
    std::fs::write(&f, xml).unwrap();
    let out = match Command::new("xmllint")
        .args(["--noout", "--relaxng"])
        .arg(schema)
        .arg(&f)
        .output()
    {
        Ok(o) => o,
        Err(_) => {
            eprintln!("\n*** SKIPPED schema check: xmllint is not installed ***\n");
            return None;
        }
    };
    Some(if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    })
}

/// xmllint's RelaxNG implementation rejects `sse4.1`-style names in an NCName-typed attribute
/// although libvirt emits them; rename them for validation only.
fn for_libxml2(xml: &str) -> String {
    xml.replace("sse4.1", "sse4-1").replace("sse4.2", "sse4-2")
}

/// A directory of emulators: a real one under a misleading name (the target must come from
/// QMP), a wrapper script, and three broken ones.
fn emulator_dir(d: &Path) -> PathBuf {
    let bin = d.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    // An aarch64 QEMU that calls itself x86_64: the guest arch must say aarch64.
    std::os::unix::fs::symlink(
        "/usr/bin/qemu-system-aarch64",
        bin.join("qemu-system-x86_64"),
    )
    .unwrap();
    script(
        &bin,
        "qemu-system-wrapped",
        "exec /usr/bin/qemu-system-riscv64 \"$@\"",
    );
    script(
        &bin,
        "qemu-system-garbage",
        "echo 'this is not QEMU'; echo '{garbage'; sleep 1",
    );
    script(&bin, "qemu-system-hang", "exec sleep 600");
    // A wrapper whose QEMU runs as its child and which then hangs: when the probe gives up,
    // the QEMU must die too, not linger as an orphan.
    script(
        &bin,
        "qemu-system-hangwrap",
        &format!(
            "/usr/bin/qemu-system-riscv64 -S -nodefaults -display none -machine none & echo $! > {}\nexec sleep 600",
            d.join("hangwrap.pid").display()
        ),
    );
    // Aborts while the probe runs (the whole probe takes far longer than 50 ms): the probe
    // sees EOF, before or during the conversation.
    script(
        &bin,
        "qemu-system-aborts",
        "/usr/bin/qemu-system-ppc64 \"$@\" & pid=$!\nsleep 0.05\nkill -ABRT $pid\nwait $pid",
    );
    bin
}

#[test]
fn bad_emulators_are_left_out_with_warnings_and_nothing_hangs() {
    if !have("/usr/bin/qemu-system-aarch64") || !have("/usr/bin/qemu-system-riscv64") {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let bin = emulator_dir(d.path());
    let opts = ConnectOptions {
        host_root: HostRoot::real(),
        emulator_dirs: vec![bin.clone()],
        kvm_device: PathBuf::from("/dev/null"),
        // Room for a good emulator probed cold while the other tests of this file probe
        // every QEMU of the host at once (5 s was too little on two loaded cores); the
        // hanging ones still cost only this bound.
        probe_timeout: Duration::from_secs(20),
        ..ConnectOptions::default()
    };
    let uri = format!("qemu:///embed?root={}", d.path().join("root").display());
    let conn = Connect::open_with(Some(&uri), opts.clone()).unwrap();
    let start = Instant::now();
    let xml = conn.capabilities().unwrap();
    let took = start.elapsed();
    let warnings = conn.take_warnings();
    assert!(took < Duration::from_secs(60), "capabilities took {took:?}");

    // The renamed aarch64 binary serves aarch64 (and armv7l); the wrapper serves riscv64.
    let misnamed = bin.join("qemu-system-x86_64");
    assert!(
        xml.contains(&format!(
            "<arch name='aarch64'>\n      <wordsize>64</wordsize>\n      <emulator>{}</emulator>",
            misnamed.display()
        )),
        "the misnamed aarch64 binary is not listed as aarch64"
    );
    assert!(
        !xml.contains("<arch name='x86_64'>"),
        "target comes from QMP, not the name"
    );
    assert!(xml.contains(&format!(
        "<emulator>{}</emulator>",
        bin.join("qemu-system-wrapped").display()
    )));
    // /dev/null is no KVM device.
    assert!(!xml.contains("<domain type='kvm'/>"));

    let wrapper_qemu_is_gone = || {
        let pid: i32 = std::fs::read_to_string(d.path().join("hangwrap.pid"))
            .expect("the wrapper ran")
            .trim()
            .parse()
            .unwrap();
        let alive_now = || {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            stat.rsplit_once(") ")
                .is_some_and(|(_, rest)| !rest.starts_with('Z') && !rest.starts_with('X'))
        };
        // A SIGKILLed QEMU takes a moment to exit (its threads go first): allow 2 s.
        let until = std::time::Instant::now() + std::time::Duration::from_secs(2);
        while alive_now() && std::time::Instant::now() < until {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let alive = alive_now();
        if alive {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        !alive
    };
    assert!(
        wrapper_qemu_is_gone(),
        "the wrapper's QEMU outlived the probe"
    );

    for bad in ["garbage", "hang", "hangwrap", "aborts"] {
        let name = format!("qemu-system-{bad}: left out:");
        assert!(
            warnings.iter().any(|w| w.contains(&name)),
            "no warning for {bad}: {warnings:#?}"
        );
    }
    assert_eq!(warnings.len(), 4, "{warnings:#?}");

    // Warm: served from the cache, broken emulators re-probed (they may be fixed by now).
    // Host memory may change between calls (ballooning), so compare the guests only.
    let guests = |x: &str| x[x.find("<guest>").unwrap_or(0)..].to_string();
    let conn = Connect::open_with(Some(&uri), opts).unwrap();
    let again = conn.capabilities().unwrap();
    assert!(
        guests(&xml) == guests(&again),
        "warm call differs from cold"
    );
    assert_eq!(conn.take_warnings().len(), 4);
    assert!(
        wrapper_qemu_is_gone(),
        "the wrapper's QEMU outlived the warm probe"
    );
}

#[test]
fn unwritable_cache_still_gives_capabilities() {
    if !have("/usr/bin/qemu-system-riscv64") {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let bin = d.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(
        "/usr/bin/qemu-system-riscv64",
        bin.join("qemu-system-riscv64"),
    )
    .unwrap();
    let root = d.path().join("root");
    // A file where the cache directory tree should start: nothing can be created under it,
    // even by root.
    std::fs::create_dir_all(root.join("cache")).unwrap();
    std::fs::write(root.join("cache/qemu"), "").unwrap();
    let opts = ConnectOptions {
        host_root: HostRoot::real(),
        emulator_dirs: vec![bin],
        kvm_device: PathBuf::from("/dev/null"),
        probe_timeout: Duration::from_secs(20),
        ..ConnectOptions::default()
    };
    let conn = Connect::open_with(
        Some(&format!("qemu:///embed?root={}", root.display())),
        opts,
    )
    .unwrap();
    let xml = conn.capabilities().unwrap();
    assert!(xml.contains("<arch name='riscv64'>"));
    let w = conn.take_warnings();
    assert_eq!(w.len(), 1, "{w:#?}");
    assert!(w[0].contains("cannot cache probe result"), "{w:#?}");
}

#[test]
fn vsh_capabilities_validates_against_both_schemas() {
    if !have("/usr/bin/qemu-system-x86_64") {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let bin = d.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for a in ["x86_64", "aarch64"] {
        let src = format!("/usr/bin/qemu-system-{a}");
        if Path::new(&src).exists() {
            std::os::unix::fs::symlink(&src, bin.join(format!("qemu-system-{a}"))).unwrap();
        }
    }
    let out = Command::new(env!("CARGO_BIN_EXE_vsh"))
        .env("VSH_EMULATOR_PATH", &bin)
        .args([
            "-c",
            &format!("qemu:///embed?root={}", d.path().join("r").display()),
        ])
        .arg("capabilities")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let xml = String::from_utf8(out.stdout).unwrap();
    assert!(xml.starts_with("<capabilities>\n\n  <host>\n"), "{xml}");
    assert!(
        xml.ends_with("  </guest>\n\n</capabilities>\n\n\n"),
        "virsh adds a newline, and the empty line that ends every command"
    );
    assert!(xml.contains("<arch name='x86_64'>") && xml.contains("<arch name='i686'>"));
    assert!(xml.contains("<machine canonical='pc-i440fx-7.2' maxCpus='255'>pc</machine>"));

    let ours = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/capability.rng");
    let libvirt = common::testdata().join("schemas/capability.rng");
    let doc = for_libxml2(&xml);
    if let Some(r) = relaxng(&ours, &doc) {
        r.unwrap_or_else(|e| panic!("our schema rejects vsh capabilities: {e}"));
    }
    if let Some(r) = relaxng(&libvirt, &doc) {
        r.unwrap_or_else(|e| panic!("libvirt's schema rejects vsh capabilities: {e}"));
    }
}

#[test]
fn our_schema_rejects_what_we_never_emit() {
    let ours = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/capability.rng");
    let bad = "<capabilities>\n  <host>\n    <cpu>\n      <arch>x86_64</arch>\n    </cpu>\n  </host>\n  <guest>\n    <os_type>xen</os_type>\n  </guest>\n</capabilities>\n";
    if let Some(r) = relaxng(&ours, bad) {
        assert!(r.is_err(), "os_type xen must be rejected");
    }
}

/// Without KVM the host CPU model is named from the host's CPUID features among the models
/// the x86_64 emulator knows; with KVM it comes from the models KVM can run.
#[test]
fn host_cpu_model_with_and_without_kvm() {
    if !have("/usr/bin/qemu-system-x86_64") || std::env::consts::ARCH != "x86_64" {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let bin = d.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(
        "/usr/bin/qemu-system-x86_64",
        bin.join("qemu-system-x86_64"),
    )
    .unwrap();
    let model = |kvm: &str| {
        let opts = ConnectOptions {
            host_root: HostRoot::real(),
            emulator_dirs: vec![bin.clone()],
            kvm_device: PathBuf::from(kvm),
            probe_timeout: Duration::from_secs(30),
            ..ConnectOptions::default()
        };
        let uri = format!("qemu:///embed?root={}", d.path().join("r").display());
        let caps = Connect::open_with(Some(&uri), opts)
            .unwrap()
            .capabilities_data()
            .unwrap();
        (caps.host.cpu.model.clone(), caps.host.cpu.features.len())
    };
    let (tcg_model, features) = model("/dev/null");
    if features > 20 {
        assert!(
            tcg_model.is_some(),
            "a model is named from {features} CPUID features"
        );
    }
    if domdriver::capabilities::accel::kvm_status(Path::new("/dev/kvm")).usable() {
        let (kvm_model, _) = model("/dev/kvm");
        assert!(kvm_model.is_some());
    } else {
        eprintln!(
            "\n*** /dev/kvm not usable: KVM half of host_cpu_model_with_and_without_kvm skipped ***\n"
        );
    }
}
