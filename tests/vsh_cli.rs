//! `vsh` as a user runs it: output, exit status, `error:` lines.

use std::process::Command;

fn vsh() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_vsh"));
    c.env_remove("VSH_DEFAULT_URI");
    c
}

fn run(c: &mut Command) -> (bool, String, String) {
    let o = c.output().expect("vsh runs");
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn uri_forms() {
    let (ok, out, _) = run(vsh().args(["-c", "qemu:///embed?root=/tmp/vsh-x", "uri"]));
    assert!(ok);
    assert_eq!(out, "qemu:///embed?root=/tmp/vsh-x\n\n");
    let (ok, out, _) = run(vsh().args(["--connect=qemu:///session", "uri"]));
    assert!(ok);
    assert_eq!(out, "qemu:///session\n\n");
    let (ok, out, _) = run(vsh()
        .env("VSH_DEFAULT_URI", "qemu:///embed?root=/e")
        .arg("uri"));
    assert!(ok);
    assert_eq!(out, "qemu:///embed?root=/e\n\n");
}

#[test]
fn bad_uri_is_a_clear_error() {
    let (ok, out, err) = run(vsh().args(["-c", "qemu:///nowhere", "uri"]));
    assert!(!ok);
    // virsh ends every command, failed or not, with an empty line.
    assert_eq!(out, "\n");
    assert!(
        err.starts_with("error: failed to connect to the hypervisor\n"),
        "{err}"
    );
    assert!(
        err.contains("error: unexpected QEMU URI path '/nowhere'"),
        "{err}"
    );
    let (ok, _, err) = run(vsh().env("VSH_DEFAULT_URI", "bogus").arg("uri"));
    assert!(!ok);
    assert!(err.contains("invalid URI 'bogus'"), "{err}");
}

#[test]
fn unknown_command_and_options() {
    let (ok, _, err) = run(vsh().arg("frobnicate"));
    assert!(!ok);
    assert_eq!(err, "error: unknown command: 'frobnicate'\n");
    let (ok, _, err) = run(vsh().args(["uri", "--bogus"]));
    assert!(!ok);
    assert_eq!(err, "error: command 'uri' doesn't support option --bogus\n");
    let (ok, out, _) = run(vsh().arg("--help"));
    assert!(ok);
    assert!(out.contains("capabilities"));
}

#[test]
fn replies_check_and_renumber() {
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("x.replies");
    std::fs::write(
        &f,
        "{\n  \"execute\": \"qmp_capabilities\",\n  \"id\": \"libvirt-1\"\n}\n\n{\n  \"return\": {\n  },\n  \"id\": \"libvirt-9\"\n}\n",
    )
    .unwrap();
    let (ok, _, err) = run(vsh().arg("replies-check").arg(&f));
    assert!(!ok);
    assert!(
        err.contains("reply id is 'libvirt-9', expected 'libvirt-1'"),
        "{err}"
    );
    let (ok, out, _) = run(vsh().arg("replies-renumber").arg(&f));
    assert!(ok, "{out}");
    let (ok, out, _) = run(vsh().arg("replies-check").arg(&f));
    assert!(ok);
    assert!(out.contains("OK (1 exchanges in 1 sessions)"), "{out}");
    let (ok, _, err) = run(vsh()
        .arg("replies-check")
        .arg(d.path().join("missing.replies")));
    assert!(!ok);
    assert!(err.contains("missing.replies"), "{err}");
}

#[path = "common/mod.rs"]
mod common;

#[test]
fn qemu_caps_from_libvirt_replies_matches_libvirt() {
    let dir = common::testdata().join("tests/qemucapabilitiesdata");
    // -q: without virsh's empty line after the command, the document alone.
    let (ok, out, err) = run(vsh()
        .args(["-q", "qemu-caps", "--replies"])
        .arg(dir.join("caps_8.0.0.x86_64.replies")));
    assert!(ok, "{err}");
    let expected = std::fs::read_to_string(dir.join("caps_8.0.0.x86_64.xml")).unwrap();
    // libvirt's test synthesizes a host microcode version; we print none.
    let expected: String = expected
        .lines()
        .filter(|l| !l.contains("<microcodeVersion>"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(
        out == expected,
        "qemu-caps --replies differs from libvirt's caps_8.0.0.x86_64.xml"
    );
}

#[test]
fn qemu_caps_errors() {
    let (ok, _, err) = run(vsh().arg("qemu-caps"));
    assert!(!ok);
    assert!(
        err.contains("exactly one of --emulator PATH or --replies FILE"),
        "{err}"
    );
    let (ok, _, err) = run(vsh().args(["qemu-caps", "--emulator", "/nonexistent/qemu-system-x"]));
    assert!(!ok);
    assert!(err.contains("/nonexistent/qemu-system-x"), "{err}");

    // A recording whose second command is not what the probe sends.
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("caps_7.2.0_x86_64.replies");
    std::fs::write(
        &f,
        "{\n  \"execute\": \"qmp_capabilities\",\n  \"id\": \"libvirt-1\"\n}\n\n{\n  \"return\": {\n  },\n  \"id\": \"libvirt-1\"\n}\n\n{\n  \"execute\": \"query-kvm\",\n  \"id\": \"libvirt-2\"\n}\n\n{\n  \"return\": {\n  },\n  \"id\": \"libvirt-2\"\n}\n",
    )
    .unwrap();
    let (ok, _, err) = run(vsh().arg("qemu-caps").arg("--replies").arg(&f));
    assert!(!ok);
    assert!(
        err.contains("got command 'query-version', recording has 'query-kvm'"),
        "{err}"
    );
    let (ok, _, err) = run(vsh()
        .arg("qemu-caps")
        .arg("--replies")
        .arg(&f)
        .args(["--record", "x"]));
    assert!(!ok);
    assert!(err.contains("--record goes with --emulator"), "{err}");
}

#[test]
fn domxml_to_native_prints_the_command_line() {
    if !std::path::Path::new("/usr/bin/qemu-system-x86_64").exists() {
        eprintln!("\n*** SKIPPED: qemu-system-x86_64 is not installed ***\n");
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
    let xml = d.path().join("d.xml");
    std::fs::write(
        &xml,
        "<domain type='qemu'><name>n,1</name><memory unit='MiB'>64</memory><os><type arch='x86_64' machine='q35'>hvm</type></os></domain>",
    )
    .unwrap();
    let uri = format!("qemu:///embed?root={}", d.path().join("r").display());
    let (ok, out, err) = run(vsh()
        .env("VSH_EMULATOR_PATH", &bin)
        .args(["-c", &uri, "domxml-to-native", "qemu-argv"])
        .arg(&xml));
    assert!(ok, "{err}");
    assert!(out.contains(" -name guest=n,,1,debug-threads=on "), "{out}");
    // The machine alias is replaced by the machine it stands for, as libvirtd does.
    assert!(out.contains(" -machine pc-q35-"), "{out}");
    assert!(out.trim_end().ends_with("-msg timestamp=on"), "{out}");
    // --explain: one option a line, beside the element it comes from.
    let (ok, out, err) = run(vsh()
        .env("VSH_EMULATOR_PATH", &bin)
        .args(["-c", &uri, "domxml-to-native", "qemu-argv", "--explain"])
        .arg(&xml));
    assert!(ok, "{err}");
    let line = |opt: &str| {
        out.lines()
            .find(|l| l.split_whitespace().nth(1) == Some(opt))
            .map(|l| l.split_whitespace().next().unwrap_or("").to_string())
    };
    assert_eq!(line("-name").as_deref(), Some("/domain/name"), "{out}");
    assert_eq!(line("-m").as_deref(), Some("/domain/memory"), "{out}");
    assert_eq!(
        line("-machine").as_deref(),
        Some("/domain/os/type"),
        "{out}"
    );
    let (ok, _, err) = run(vsh().args(["domxml-to-native", "bogus"]).arg(&xml));
    assert!(!ok);
    assert_eq!(
        err,
        "error: invalid argument: unsupported config type bogus\n"
    );
}
