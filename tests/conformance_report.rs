//! `conformance xml2argv --report FILE` on a tiny corpus in a tempdir: one case that matches,
//! one whose arguments differ, one we fail where libvirt builds a command, one where libvirt
//! fails and we do not, one with a different error message.

mod common;

use std::fs;
use std::process::Command;

#[test]
fn report_lists_each_unmatched_case_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("corpus");
    fs::create_dir(&corpus).unwrap();
    let golden = common::data().join("xml2argv");
    let good_xml = fs::read_to_string(golden.join("q35-virtio-minimal.xml")).unwrap();
    let good_args = fs::read_to_string(golden.join("q35-virtio-minimal.args")).unwrap();
    let bad_xml = fs::read_to_string(golden.join("unsupported-graphics.xml")).unwrap();
    let put = |name: &str, xml: &str, ext: &str, want: &str| {
        fs::write(corpus.join(format!("{name}.xml")), xml).unwrap();
        fs::write(corpus.join(format!("{name}.x86_64-latest.{ext}")), want).unwrap();
    };
    put("a-match", &good_xml, "args", &good_args);
    assert!(good_args.contains("-m 512 \\\n"));
    put(
        "b-memory",
        &good_xml,
        "args",
        &good_args.replace("-m 512 \\\n", "-m 1024 \\\n"),
    );
    put("c-we-fail", &bad_xml, "args", &good_args);
    put("d-libvirt-fails", &good_xml, "err", "XML error: nope\n");
    put("e-other-error", &bad_xml, "err", "XML error: nope\n");
    // An input without any expectation for this arch is not part of the run.
    fs::write(corpus.join("f-no-expectation.xml"), &good_xml).unwrap();

    let report = dir.path().join("R.md");
    let caps = common::testdata().join("tests/qemucapabilitiesdata/caps_8.0.0.x86_64.replies");
    let out = Command::new(env!("CARGO_BIN_EXE_conformance"))
        .args(["xml2argv", "--arch", "x86_64", "--in"])
        .arg(&corpus)
        .arg("--out")
        .arg(dir.path().join("out"))
        .arg("--caps")
        .arg(&caps)
        .arg("--report")
        .arg(&report)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("1 passed, 4 failed"), "{stdout}");
    let md = fs::read_to_string(&report).unwrap();
    let lines: Vec<&str> = md.lines().collect();
    assert_eq!(
        lines[0],
        "# xml2argv: cases that do not match libvirt 9.0.0"
    );
    // The header says how to regenerate it, the totals come before any case.
    let regen = md
        .find("cargo run --release --bin conformance -- xml2argv")
        .unwrap();
    let totals = md.find("| corpus, x86_64-latest (caps_8.0.0.x86_64.replies) | 5 | 1 | 4 |");
    let first_case = md.find("- `").unwrap();
    assert!(regen < first_case);
    assert!(totals.is_some_and(|t| t < first_case), "{md}");
    assert!(!md.contains("a-match"), "{md}");
    assert!(!md.contains("f-no-expectation"), "{md}");
    // Each unmatched case sits on one line under its category, with its reason.
    let section = |title: &str| {
        let at = md
            .find(&format!("### {title} (1)\n"))
            .unwrap_or_else(|| panic!("no section {title}:\n{md}"));
        md[at..].lines().nth(2).unwrap().to_string()
    };
    assert_eq!(
        section("arguments differ at `-m`"),
        "- `b-memory`: argv[13]: expected `1024`, ours `512`"
    );
    assert_eq!(
        section("we fail, libvirt builds a command"),
        "- `c-we-fail`: `unsupported configuration: graphics 'rdp' not supported yet`"
    );
    assert_eq!(
        section("libvirt fails, we build a command"),
        "- `d-libvirt-fails`: libvirt: `XML error: nope`"
    );
    assert_eq!(
        section("both fail, with different messages"),
        "- `e-other-error`: expected `XML error: nope`, ours `unsupported configuration: graphics 'rdp' not supported yet`"
    );
    // Our outputs were written next to the report.
    assert!(dir.path().join("out/b-memory.x86_64-latest.args").is_file());
}
