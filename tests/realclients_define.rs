//! `vsh define NAME.xml` then `vsh dumpxml --inactive NAME` over the real-client corpus
//! (`../shared/realclients2`: what 12 real clients wrote, with what libvirtd 9.0 made of it on a
//! host like ours), compared as text with libvirtd's `NAME.inactive.xml`; inputs libvirtd
//! refused at define (`NAME.define.err`) must be refused, with libvirt's message where the
//! pass list says so. The pass list (tests/data/realclients2/define-pass.txt) holds the gains:
//! a listed case that fails is a regression. `VSH_TEST_REGENERATE_OUTPUT=1` rewrites it.
//!
//! The expected files name QEMU 7.2's machines (`pc-i440fx-7.2`), so the test only compares on
//! a host whose `qemu-system-x86_64` is 7.2, as the corpus's host was.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The corpus: `REALCLIENTS_DATA`, else `realclients2` beside libvirt's test data.
fn corpus() -> PathBuf {
    match std::env::var_os("REALCLIENTS_DATA") {
        Some(p) => PathBuf::from(p),
        None => common::testdata()
            .parent()
            .expect("libvirt test data has a parent")
            .join("realclients2"),
    }
}

fn vsh(uri: &str, args: &[&str]) -> (bool, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_vsh"))
        .arg("-c")
        .arg(uri)
        .args(args)
        .output()
        .expect("run vsh");
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// The message after virsh's last `error: `, as compare.py takes it.
fn last_msg(text: &str) -> String {
    let joined: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let joined = joined.join(" ");
    let t = joined.trim();
    t.rsplit_once("error: ")
        .map_or(t, |(_, m)| m)
        .trim()
        .to_string()
}

fn host_qemu_is_7_2() -> bool {
    Command::new("qemu-system-x86_64")
        .arg("--version")
        .output()
        .ok()
        .is_some_and(|o| String::from_utf8_lossy(&o.stdout).contains("version 7.2"))
}

fn domain_name(xml: &str) -> String {
    let a = xml.find("<name>").expect("<name>") + "<name>".len();
    let b = xml[a..].find("</name>").expect("</name>") + a;
    xml[a..b].to_string()
}

fn cases(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .expect("read corpus")
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let n = e.file_name().to_str()?.to_string();
            let b = n.strip_suffix(".xml")?;
            (!b.contains('.')).then(|| b.to_string())
        })
        .filter(|b| {
            dir.join(format!("{b}.inactive.xml")).exists()
                || dir.join(format!("{b}.define.err")).exists()
        })
        .collect();
    v.sort();
    v
}

#[test]
fn define_then_inactive_xml_matches_libvirtd() {
    let dir = corpus();
    if !dir.is_dir() {
        panic!(
            "real-client corpus not found at {} (set REALCLIENTS_DATA)",
            dir.display()
        );
    }
    if !host_qemu_is_7_2() {
        eprintln!("skipped: the corpus was made with QEMU 7.2, this host has another");
        return;
    }
    let root = tempfile::tempdir().expect("tempdir");
    let uri = format!("qemu:///embed?root={}", root.path().display());
    let mut passed: BTreeSet<String> = BTreeSet::new();
    let mut failures: Vec<String> = Vec::new();
    let (mut same, mut inactive, mut refused, mut exact, mut refusals) = (0, 0, 0, 0, 0);
    for b in cases(&dir) {
        let path = dir.join(format!("{b}.xml"));
        let name = domain_name(&fs::read_to_string(&path).expect("read input"));
        let (ok, _, err) = vsh(&uri, &["define", path.to_str().expect("utf-8 path")]);
        let got = ok.then(|| vsh(&uri, &["dumpxml", "--inactive", &name]).1);
        if ok {
            vsh(&uri, &["undefine", "--nvram", &name]);
            vsh(&uri, &["undefine", &name]);
        }
        if let Ok(want) = fs::read_to_string(dir.join(format!("{b}.inactive.xml"))) {
            inactive += 1;
            match got {
                Some(g) if g == want => {
                    same += 1;
                    passed.insert(format!("inactive {b}"));
                }
                Some(g) => failures.push(format!("inactive {b}: {}", first_difference(&want, &g))),
                None => failures.push(format!("inactive {b}: define failed: {}", err.trim())),
            }
        } else if let Ok(want) = fs::read_to_string(dir.join(format!("{b}.define.err"))) {
            refusals += 1;
            if ok {
                failures.push(format!(
                    "refused {b}: defined, libvirtd refused: {}",
                    want.trim()
                ));
                continue;
            }
            refused += 1;
            passed.insert(format!("refused {b}"));
            if last_msg(&err).starts_with(&last_msg(&want)) {
                exact += 1;
                passed.insert(format!("exact {b}"));
            } else {
                failures.push(format!(
                    "exact {b}: libvirtd `{}`, vsh `{}`",
                    last_msg(&want),
                    last_msg(&err)
                ));
            }
        }
    }
    eprintln!(
        "realclients2 define: inactive {same}/{inactive} identical, refused {refused}/{refusals} ({exact} exact)"
    );
    let list = common::data().join("realclients2/define-pass.txt");
    if common::regenerate() {
        fs::create_dir_all(list.parent().expect("parent")).expect("mkdir");
        let body: String = passed.iter().map(|n| format!("{n}\n")).collect();
        fs::write(&list, body).expect("write pass list");
        return;
    }
    let expected = fs::read_to_string(&list).expect("tests/data/realclients2/define-pass.txt");
    let regressions: Vec<String> = expected
        .lines()
        .filter(|l| !l.is_empty() && !passed.contains(*l))
        .map(|l| {
            failures
                .iter()
                .find(|f| f.starts_with(&format!("{l}:")))
                .cloned()
                .unwrap_or_else(|| format!("{l}: not run"))
        })
        .collect();
    assert!(
        regressions.is_empty(),
        "cases that used to pass now fail:\n{}",
        regressions.join("\n")
    );
}

fn first_difference(want: &str, got: &str) -> String {
    for (i, (w, g)) in want.lines().zip(got.lines()).enumerate() {
        if w != g {
            return format!("line {}: expected {w:?}, got {g:?}", i + 1);
        }
    }
    format!(
        "length differs: {} lines expected, {} got",
        want.lines().count(),
        got.lines().count()
    )
}
