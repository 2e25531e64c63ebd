//! libvirt's `domaincapstest` for QEMU: every expected `qemu_VER[-VARIANT].ARCH.xml` is
//! rebuilt from the recorded probe `caps_VER.ARCH.replies` and compared byte for byte.
//!
//! The case name says what was asked: no variant is KVM with the default machine, `-q35` and
//! `-virt` are KVM with that machine, `-tcg` is TCG with the default machine. The emulator is
//! `/usr/bin/qemu-system-ARCH`; the host facts are libvirt's test fixtures
//! ([`libvirt_test_facts`]), with the firmware descriptors of its `qemufirmwaredata` tree.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::capabilities::domcaps::{self, firmware, libvirt_test_facts};
use crate::capabilities::qemu::{self, QemuCaps};

/// One case, as its file name describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Case {
    pub name: String,
    pub version: String,
    pub arch: String,
    pub machine: Option<String>,
    pub virttype: &'static str,
}

/// Parse `qemu_7.2.0-q35.x86_64.xml` (without `.xml` too). `None` for other files.
pub fn parse_case(file: &str) -> Option<Case> {
    let name = file.strip_suffix(".xml").unwrap_or(file);
    let rest = name.strip_prefix("qemu_")?;
    let (verpart, arch) = rest.rsplit_once('.')?;
    // Versions have dots too: the arch is after the last dot, the variant after the first '-'.
    let (version, variant) = match verpart.split_once('-') {
        Some((v, s)) => (v, Some(s)),
        None => (verpart, None),
    };
    let (machine, virttype) = match variant {
        None => (None, "kvm"),
        Some("tcg") => (None, "qemu"),
        Some(m) => (Some(m.to_string()), "kvm"),
    };
    Some(Case {
        name: name.to_string(),
        version: version.to_string(),
        arch: arch.to_string(),
        machine,
        virttype,
    })
}

/// What a run did.
#[derive(Debug, Default, Clone)]
pub struct Report {
    pub passed: Vec<String>,
    /// (case, why): a diff summary or the error.
    pub failed: Vec<(String, String)>,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} passed, {} failed",
            self.passed.len(),
            self.failed.len()
        )
    }
}

/// Where libvirt's test trees are, given either its `tests/` directory or `domaincapsdata/`.
fn layout(in_dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let tests = if in_dir.join("domaincapsdata").is_dir() {
        in_dir.to_path_buf()
    } else {
        in_dir.parent().unwrap_or(in_dir).to_path_buf()
    };
    (
        tests.join("domaincapsdata"),
        tests.join("qemucapabilitiesdata"),
        tests.join("qemufirmwaredata"),
    )
}

/// The firmware descriptors libvirt's test sees (an unprivileged user's view of the tree).
pub fn test_firmware(fwdata: &Path) -> Vec<firmware::Descriptor> {
    let dirs = [
        fwdata.join("home/user/.config/qemu/firmware"),
        fwdata.join("etc/qemu/firmware"),
        fwdata.join("usr/share/qemu/firmware"),
    ];
    firmware::load(&dirs).0
}

/// Build one case's document.
pub fn run_case(
    case: &Case,
    caps: &QemuCaps,
    fw: &[firmware::Descriptor],
) -> Result<String, String> {
    let emulator = format!("/usr/bin/qemu-system-{}", case.arch);
    let r = domcaps::resolve_with(
        caps,
        &emulator,
        &case.arch,
        Some(case.virttype),
        case.machine.as_deref(),
        true,
    )
    .map_err(|e| e.to_string())?;
    let facts = libvirt_test_facts(&case.arch, &case.version, fw.to_vec());
    Ok(domcaps::build(caps, &emulator, &r, &facts).to_xml())
}

/// The first differing line of two documents, for failure reports.
fn first_difference(want: &str, got: &str) -> String {
    let (w, g): (Vec<&str>, Vec<&str>) = (want.lines().collect(), got.lines().collect());
    for i in 0..w.len().max(g.len()) {
        let (a, b) = (w.get(i).copied(), g.get(i).copied());
        if a != b {
            return format!(
                "line {}: expected {:?}, got {:?}",
                i + 1,
                a.unwrap_or("<end>"),
                b.unwrap_or("<end>")
            );
        }
    }
    "documents differ".into()
}

/// Run every QEMU case under `in_dir` (libvirt's `tests/` or its `domaincapsdata/`), writing
/// our documents to `out_dir/NAME.xml`.
pub fn run_domcaps_conformance(in_dir: &Path, out_dir: &Path) -> std::io::Result<Report> {
    let (expected_dir, capsdata, fwdata) = layout(in_dir);
    std::fs::create_dir_all(out_dir)?;
    let fw = test_firmware(&fwdata);
    let mut names: Vec<String> = std::fs::read_dir(&expected_dir)?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("qemu_") && n.ends_with(".xml"))
        .collect();
    names.sort();
    let mut report = Report::default();
    // Several cases share one recording: probe each once.
    let mut probed: std::collections::BTreeMap<String, Result<QemuCaps, String>> =
        Default::default();
    for n in names {
        let Some(case) = parse_case(&n) else {
            continue;
        };
        let key = format!("caps_{}.{}.replies", case.version, case.arch);
        let caps = probed.entry(key.clone()).or_insert_with(|| {
            let emulator = format!("/usr/bin/qemu-system-{}", case.arch);
            crate::runtime::block_on(qemu::probe_replies(&capsdata.join(&key), &emulator))
                .map_err(|e| format!("{key}: {e}"))
        });
        let got = match caps {
            Ok(c) => run_case(&case, c, &fw),
            Err(e) => Err(e.clone()),
        };
        let want = std::fs::read_to_string(expected_dir.join(&n))?;
        match got {
            Ok(doc) => {
                std::fs::write(out_dir.join(&n), &doc)?;
                if doc == want {
                    report.passed.push(case.name);
                } else {
                    report
                        .failed
                        .push((case.name, first_difference(&want, &doc)));
                }
            }
            Err(e) => report.failed.push((case.name, e)),
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_names() {
        let c = parse_case("qemu_7.2.0-q35.x86_64.xml").unwrap();
        assert_eq!(
            (
                c.version.as_str(),
                c.arch.as_str(),
                c.machine.as_deref(),
                c.virttype
            ),
            ("7.2.0", "x86_64", Some("q35"), "kvm")
        );
        let c = parse_case("qemu_8.0.0-tcg.x86_64.xml").unwrap();
        assert_eq!((c.machine, c.virttype), (None, "qemu"));
        let c = parse_case("qemu_5.1.0.sparc.xml").unwrap();
        assert_eq!((c.version.as_str(), c.arch.as_str()), ("5.1.0", "sparc"));
        assert!(parse_case("bhyve_basic.x86_64.xml").is_none());
        assert!(parse_case("qemu_").is_none());
    }
}
