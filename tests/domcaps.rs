//! Domain capabilities against libvirt 9.0.0's `domaincapsdata` (all QEMU cases), our schema
//! and libvirt's, and real emulators.

mod common;

use std::path::{Path, PathBuf};

use domdriver::Connect;
use domdriver::capabilities::domcaps::{DomCapsError, resolve};
use domdriver::capabilities::qemu::{self, QemuCaps};
use domdriver::conformance::domcaps::run_domcaps_conformance;
use domdriver::driver::ConnectOptions;
use domdriver::runtime::block_on;

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

/// One replayed emulator of libvirt's test data.
fn replayed(version: &str, arch: &str) -> QemuCaps {
    let f = common::testdata().join(format!(
        "tests/qemucapabilitiesdata/caps_{version}.{arch}.replies"
    ));
    block_on(qemu::probe_replies(
        &f,
        &format!("/usr/bin/qemu-system-{arch}"),
    ))
    .expect("replay")
}

#[test]
fn resolve_defaults_and_errors() {
    let x86 = replayed("8.0.0", "x86_64");
    let emu = "/usr/bin/qemu-system-x86_64";
    // Probed with KVM: KVM by default, the preferred machine, aliases made canonical.
    let r = resolve(&x86, emu, "x86_64", None, None).unwrap();
    assert_eq!(
        (r.virttype.as_str(), r.machine.as_deref()),
        ("kvm", Some("pc-i440fx-8.0"))
    );
    let r = resolve(&x86, emu, "x86_64", Some("qemu"), Some("q35")).unwrap();
    assert_eq!(
        (r.virttype.as_str(), r.machine.as_deref()),
        ("qemu", Some("pc-q35-8.0"))
    );
    // A 32-bit guest of the 64-bit emulator is fine.
    assert!(resolve(&x86, emu, "i686", None, None).is_ok());

    let err = |r: Result<_, DomCapsError>| r.unwrap_err().to_string();
    assert_eq!(
        err(resolve(&x86, emu, "x86_64", Some("bogus"), None)),
        "invalid argument: unknown virttype: bogus"
    );
    assert_eq!(
        err(resolve(&x86, emu, "vax", None, None)),
        "invalid argument: unknown architecture: vax"
    );
    assert_eq!(
        err(resolve(&x86, emu, "aarch64", None, None)),
        "invalid argument: architecture from emulator 'x86_64' doesn't match given architecture 'aarch64'"
    );
    assert_eq!(
        err(resolve(&x86, emu, "x86_64", None, Some("virt"))),
        "invalid argument: the machine 'virt' is not supported by emulator '/usr/bin/qemu-system-x86_64'"
    );
    // sparc has no KVM.
    let sparc = replayed("5.1.0", "sparc");
    let r = resolve(&sparc, "/usr/bin/qemu-system-sparc", "sparc", None, None).unwrap();
    assert_eq!(
        (r.virttype.as_str(), r.machine.as_deref()),
        ("qemu", Some("SS-5"))
    );
    assert_eq!(
        err(resolve(
            &sparc,
            "/usr/bin/qemu-system-sparc",
            "sparc",
            Some("kvm"),
            None
        )),
        "invalid argument: KVM is not supported by '/usr/bin/qemu-system-sparc' on this host"
    );
}

/// A connection of its own (embedded root: its own probe cache) searching `dirs`.
fn connect(root: &Path, dirs: Vec<PathBuf>) -> Connect {
    let opts = ConnectOptions {
        emulator_dirs: dirs,
        ..ConnectOptions::default()
    };
    Connect::open_with(
        Some(&format!("qemu:///embed?root={}", root.display())),
        opts,
    )
    .expect("connect")
}

#[test]
fn connect_errors() {
    let d = tempfile::tempdir().unwrap();
    let empty = d.path().join("bin");
    std::fs::create_dir_all(&empty).unwrap();
    let c = connect(&d.path().join("root"), vec![empty]);
    let err = |r: Result<String, domdriver::driver::DriverError>| r.unwrap_err().to_string();
    assert_eq!(
        err(c.domain_capabilities(None, Some("x86_64"), None, None)),
        "invalid argument: unable to find any emulator to serve 'x86_64' architecture"
    );
    assert_eq!(
        err(c.domain_capabilities(None, None, None, None)),
        "invalid argument: unable to find any emulator to serve '(null)' architecture"
    );
    assert_eq!(
        err(c.domain_capabilities(Some("/nonexistent/qemu"), None, None, None)),
        "Cannot check QEMU binary /nonexistent/qemu: No such file or directory"
    );
    assert_eq!(
        err(c.domain_capabilities(None, None, None, Some("kvmm"))),
        "invalid argument: unknown virttype: kvmm"
    );
    // Not a QEMU at all.
    let fake = d.path().join("not-qemu");
    std::fs::write(&fake, "#!/bin/sh\nexit 0\n").unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let e = err(c.domain_capabilities(fake.to_str(), None, None, None));
    assert!(
        e.starts_with(&format!(
            "internal error: Failed to start QEMU binary {} for probing: ",
            fake.display()
        )),
        "{e}"
    );
}

fn xmllint() -> bool {
    let ok = std::process::Command::new("xmllint")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("SKIPPED: xmllint not installed; schema checks not run");
    }
    ok
}

/// Validate `xml` against a RelaxNG schema with xmllint.
fn validate(xml: &str, schema: &Path) {
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), xml).unwrap();
    let out = std::process::Command::new("xmllint")
        .arg("--noout")
        .arg("--relaxng")
        .arg(schema)
        .arg(f.path())
        .output()
        .expect("xmllint");
    assert!(
        out.status.success(),
        "{} rejects our document: {}\n{xml}",
        schema.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn schemas() -> [PathBuf; 2] {
    [
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("schemas/domaincaps.rng"),
        common::testdata().join("schemas/domaincaps.rng"),
    ]
}

#[test]
fn our_schema_accepts_libvirts_expected_documents() {
    if !xmllint() {
        return;
    }
    let dir = common::testdata().join("tests/domaincapsdata");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("qemu_") {
            validate(&std::fs::read_to_string(e.path()).unwrap(), &schemas()[0]);
            n += 1;
        }
    }
    assert_eq!(n, 55);
}

fn real(bin: &str) -> Option<PathBuf> {
    let p = PathBuf::from(bin);
    if p.is_file() {
        Some(p)
    } else {
        eprintln!("SKIPPED: {bin} not installed");
        None
    }
}

fn text_of<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{tag}>"))? + start;
    Some(&xml[start..end])
}

#[test]
fn real_qemu_x86_64_and_aarch64() {
    let Some(x86) = real("/usr/bin/qemu-system-x86_64") else {
        return;
    };
    let d = tempfile::tempdir().unwrap();
    let c = connect(d.path(), vec![PathBuf::from("/usr/bin")]);
    let lint = xmllint();
    let check = |xml: &str| {
        if lint {
            for s in schemas() {
                validate(xml, &s);
            }
        }
    };

    let tcg = c
        .domain_capabilities(x86.to_str(), Some("x86_64"), Some("q35"), Some("qemu"))
        .expect("TCG domcaps");
    check(&tcg);
    assert_eq!(text_of(&tcg, "domain"), Some("qemu"));
    assert!(text_of(&tcg, "machine").unwrap().starts_with("pc-q35-"));
    assert!(tcg.contains("<mode name='host-passthrough' supported='no'/>"));
    assert!(
        tcg.contains("<mode name='host-model' supported='yes'>"),
        "{tcg}"
    );
    assert!(tcg.contains(">qemu64</model>"));
    assert!(tcg.contains("<value>sata</value>"));

    if domdriver::capabilities::accel::kvm_status(Path::new("/dev/kvm")).usable() {
        let kvm = c
            .domain_capabilities(x86.to_str(), None, None, Some("kvm"))
            .expect("KVM domcaps");
        check(&kvm);
        assert_eq!(text_of(&kvm, "domain"), Some("kvm"));
        assert!(text_of(&kvm, "machine").unwrap().starts_with("pc-i440fx-"));
        assert!(kvm.contains("<mode name='host-passthrough' supported='yes'>"));
        // Defaults: the host's arch and KVM.
        if domdriver::capabilities::qemu::host_arch() == "x86_64" {
            let def = c.domain_capabilities(None, None, None, None).unwrap();
            assert_eq!(text_of(&def, "domain"), Some("kvm"));
        }
    } else {
        eprintln!("SKIPPED: /dev/kvm not usable; KVM domain capabilities not checked");
        let def = c
            .domain_capabilities(x86.to_str(), None, None, None)
            .unwrap();
        assert_eq!(text_of(&def, "domain"), Some("qemu"));
    }

    if let Some(arm) = real("/usr/bin/qemu-system-aarch64") {
        let xml = c
            .domain_capabilities(arm.to_str(), Some("aarch64"), Some("virt"), None)
            .expect("aarch64 domcaps");
        check(&xml);
        assert!(text_of(&xml, "machine").unwrap().starts_with("virt-"));
        assert_eq!(text_of(&xml, "arch"), Some("aarch64"));
        assert!(xml.contains("<gic supported='yes'>"), "{xml}");
        assert!(xml.contains(">cortex-a57</model>"));
    }
}

#[test]
fn vsh_domcapabilities() {
    let d = tempfile::tempdir().unwrap();
    let uri = format!("qemu:///embed?root={}", d.path().display());
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_vsh"))
            .arg("-c")
            .arg(&uri)
            .arg("domcapabilities")
            .args(args)
            .env("VSH_EMULATOR_PATH", "/usr/bin")
            .output()
            .expect("run vsh")
    };
    // virsh's two error lines, exit status 1.
    let out = run(&["--virttype", "bogus"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: failed to get emulator capabilities\nerror: invalid argument: unknown virttype: bogus\n"
    );
    let out = run(&["--bogus"]);
    assert_eq!(out.status.code(), Some(1));

    let Some(x86) = real("/usr/bin/qemu-system-x86_64") else {
        return;
    };
    let out = run(&[
        "--emulatorbin",
        x86.to_str().unwrap(),
        "--virttype",
        "qemu",
        "--machine=pc",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let xml = String::from_utf8(out.stdout).unwrap();
    assert!(xml.starts_with("<domainCapabilities>\n"));
    // virsh adds a newline after the document's own, then the empty line that ends every
    // command.
    assert!(xml.ends_with("</domainCapabilities>\n\n\n"));
    assert!(text_of(&xml, "machine").unwrap().starts_with("pc-i440fx-"));
}

#[test]
fn host_facts_shape_the_document() {
    use domdriver::capabilities::domcaps::{HostFacts, build};
    use domdriver::conformance::domcaps::test_firmware;
    let caps = replayed("8.0.0", "x86_64");
    let emu = "/usr/bin/qemu-system-x86_64";
    let fw = test_firmware(&common::testdata().join("tests/qemufirmwaredata"));
    let facts = HostFacts {
        arch: "x86_64".into(),
        kvm_max_vcpus: Some(16),
        tpm_versions: None,
        vfio: false,
        firmware: fw,
        ..HostFacts::default()
    };
    let r = resolve(&caps, emu, "x86_64", Some("kvm"), Some("q35")).unwrap();
    let xml = build(&caps, emu, &r, &facts).to_xml();
    // KVM's own limit caps the machine's.
    assert!(xml.contains("<vcpu max='16'/>"), "{xml}");
    // No swtpm: no TPM; no VFIO: no PCI backend.
    assert!(xml.contains("<tpm supported='no'/>"));
    assert!(xml.contains("<enum name='pciBackend'/>"));
    // The descriptors offer BIOS and UEFI for q35, one of them with SMM (secure boot).
    assert!(xml.contains(
        "<enum name='firmware'>\n      <value>bios</value>\n      <value>efi</value>\n    </enum>"
    ));
    assert!(
        xml.contains("<enum name='secure'>\n        <value>yes</value>\n        <value>no</value>")
    );
    // Loader paths come from descriptors whose files exist on this host (with Debian's ovmf
    // installed, some of the fixtures' names do).
    for line in xml.lines().filter(|l| l.contains("<value>/")) {
        let path = line
            .trim()
            .trim_start_matches("<value>")
            .trim_end_matches("</value>");
        assert!(
            std::path::Path::new(path).exists(),
            "{path} listed but absent"
        );
    }
    for fixture in [
        "/usr/share/OVMF/OVMF_CODE.fd",
        "/usr/share/OVMF/OVMF_CODE.secboot.fd",
    ] {
        assert_eq!(
            xml.contains(&format!("<value>{fixture}</value>")),
            std::path::Path::new(fixture).exists(),
            "{fixture}: {xml}"
        );
    }
    // No SEV ASIDs known: zero guests.
    assert!(xml.contains("<maxGuests>0</maxGuests>") || !xml.contains("<sev supported='yes'>"));

    // i440fx: no secure boot firmware; TCG: no KVM clamp.
    let r = resolve(&caps, emu, "x86_64", Some("qemu"), None).unwrap();
    let xml = build(&caps, emu, &r, &facts).to_xml();
    assert!(xml.contains("<vcpu max='255'/>"));
    assert!(xml.contains("<enum name='secure'>\n        <value>no</value>\n      </enum>"));
    assert!(xml.contains("<value>ide</value>"));
}
