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

/// swtpm and its setup tool on `PATH`: what libvirtd needs for an emulated TPM.
fn swtpm_installed() -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    ["swtpm", "swtpm_setup"]
        .iter()
        .all(|t| std::env::split_paths(&path).any(|d| d.join(t).is_file()))
}

/// The input asks for an emulated TPM (`<backend type='emulator'>`).
fn has_emulated_tpm(xml: &str) -> bool {
    xml.contains("<tpm") && (xml.contains("type='emulator'") || xml.contains("type=\"emulator\""))
}

/// libvirtd's refusal of an emulated TPM on a host without swtpm.
fn no_swtpm_refusal(err: &str) -> bool {
    let m = last_msg(err);
    m.starts_with("unsupported configuration: TPM version '") && m.ends_with("' is not supported")
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
    let swtpm = swtpm_installed();
    for b in cases(&dir) {
        let path = dir.join(format!("{b}.xml"));
        let xml = fs::read_to_string(&path).expect("read input");
        let name = domain_name(&xml);
        let (ok, _, err) = vsh(&uri, &["define", path.to_str().expect("utf-8 path")]);
        let got = ok.then(|| vsh(&uri, &["dumpxml", "--inactive", &name]).1);
        if ok {
            vsh(&uri, &["undefine", "--nvram", &name]);
            vsh(&uri, &["undefine", &name]);
        }
        if let Ok(want) = fs::read_to_string(dir.join(format!("{b}.inactive.xml"))) {
            inactive += 1;
            if !swtpm && has_emulated_tpm(&xml) {
                // The corpus's host had swtpm; without it libvirtd refuses the TPM at define.
                if !ok && no_swtpm_refusal(&err) {
                    passed.insert(format!("inactive {b}"));
                } else {
                    failures.push(format!(
                        "inactive {b}: no swtpm here, expected libvirtd's refusal of the TPM, got {}",
                        if ok { "a definition".to_string() } else { err.trim().to_string() }
                    ));
                }
                continue;
            }
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

/// The CPU features a refusal says the corpus's host lacked (libvirt's "Host CPU does not
/// provide required features: a, b"); `None` for other refusals.
fn host_cpu_lacked(err: &str) -> Option<Vec<String>> {
    let list = err
        .trim()
        .split_once("Host CPU does not provide required features: ")?
        .1;
    Some(list.split(", ").map(str::to_string).collect())
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

/// The words of a shell command line: single and double quotes and backslashes undone.
fn shell_words(line: &str) -> Vec<String> {
    let (mut words, mut cur, mut started) = (Vec::new(), String::new(), false);
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                started = true;
                cur.extend(chars.by_ref().take_while(|&c| c != '\''));
            }
            '"' => {
                started = true;
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => cur.extend(chars.next()),
                        c => cur.push(c),
                    }
                }
            }
            '\\' => {
                started = true;
                cur.extend(chars.next());
            }
            c if c.is_whitespace() => {
                if started {
                    words.push(std::mem::take(&mut cur));
                    started = false;
                }
            }
            c => {
                started = true;
                cur.push(c);
            }
        }
    }
    if started {
        words.push(cur);
    }
    words
}

/// A `domxml-to-native` line as compare.py normalises it: what differs between two hosts or
/// two runs masked (the caller's PATH/USER/LOGNAME, the per-domain dir, the monitor, tap
/// netdevs and the NIC names tied to them, wall-clock RTC bases).
fn norm_native(text: &str, name: &str) -> Vec<String> {
    let short: String = name.chars().take(20).collect();
    let libdir = regex::Regex::new(&format!(
        r#"[^\s"',=]*/domain--?1-{}"#,
        regex::escape(&short)
    ))
    .expect("regex");
    let mon = regex::Regex::new(r"id=charmonitor,(path=[^,]*|fd=\d+)").expect("regex");
    let now = regex::Regex::new(r"base=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d").expect("regex");
    let mut out: Vec<String> = Vec::new();
    for w in shell_words(text) {
        if ["PATH=", "USER=", "LOGNAME="]
            .iter()
            .any(|p| w.starts_with(p))
        {
            continue;
        }
        let mut t = libdir.replace_all(&w, "<LIBDIR>").into_owned();
        t = mon.replace_all(&t, "id=charmonitor,<MON>").into_owned();
        t = now.replace_all(&t, "base=<NOW>").into_owned();
        if out.last().is_some_and(|l| l == "-netdev") {
            t = "<NETDEV>".to_string();
        } else if t.starts_with('{')
            && t.contains("\"netdev\"")
            && let Ok(serde_json::Value::Object(mut j)) = serde_json::from_str(&t)
        {
            for k in ["netdev", "id"] {
                if let Some(v) = j.get_mut(k) {
                    *v = serde_json::Value::from("<NIC>");
                }
            }
            j.remove("iommu_platform");
            t = serde_json::Value::Object(j).to_string();
        }
        out.push(t);
    }
    out
}

/// `vsh domxml-to-native qemu-argv NAME.xml` over the corpus against libvirtd's `NAME.native`
/// (normalised as compare.py does) or its refusal `NAME.err`, held by `native-pass.txt`.
/// The host `<cpu>`'s model and vendor in capabilities XML `xml`.
fn host_cpu_of(xml: &str) -> (String, String) {
    let cpu = xml
        .split("<host>")
        .nth(1)
        .and_then(|h| h.split("<cpu>").nth(1))
        .and_then(|c| c.split("</cpu>").next())
        .unwrap_or_default();
    let field = |tag: &str| {
        cpu.split(&format!("<{tag}>"))
            .nth(1)
            .and_then(|r| r.split(&format!("</{tag}>")).next())
            .unwrap_or_default()
            .to_string()
    };
    (field("model"), field("vendor"))
}

/// Replace the value after `-cpu` with a placeholder.
fn mask_cpu(words: &mut [String]) {
    if let Some(i) = words.iter().position(|w| w == "-cpu")
        && let Some(v) = words.get_mut(i + 1)
    {
        *v = "<the host's CPU>".into();
    }
}

#[test]
fn domxml_to_native_matches_libvirtd() {
    let dir = corpus();
    assert!(
        dir.is_dir(),
        "real-client corpus not found at {}",
        dir.display()
    );
    if !host_qemu_is_7_2() {
        eprintln!("skipped: the corpus was made with QEMU 7.2, this host has another");
        return;
    }
    let swtpm = swtpm_installed();
    let (mut passed, mut failures) = (BTreeSet::new(), Vec::new());
    let (mut same, mut natives, mut refused, mut exact, mut refusals) = (0, 0, 0, 0, 0);
    let names: Vec<String> = fs::read_dir(&dir)
        .expect("read corpus")
        .filter_map(|e| {
            e.ok()?
                .file_name()
                .to_str()?
                .strip_suffix(".native")
                .map(String::from)
        })
        .chain(
            fs::read_dir(&dir)
                .expect("read corpus")
                .filter_map(|e| {
                    e.ok()?
                        .file_name()
                        .to_str()?
                        .strip_suffix(".err")
                        .map(String::from)
                })
                .filter(|b| !b.contains('.')),
        )
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let this_cpu = domdriver::capabilities::host::this_cpu_features();
    // A host-model CPU is the host's: its `-cpu` compares only on a host whose CPU is the
    // corpus host's (the rest of the command line compares everywhere).
    let corpus_cpu = host_cpu_of(
        &fs::read_to_string(dir.join("host-capabilities.xml")).expect("read host capabilities"),
    );
    let our_cpu = host_cpu_of(&vsh("qemu:///system", &["-q", "capabilities"]).1);
    let same_cpu = corpus_cpu == our_cpu;
    if !same_cpu {
        eprintln!(
            "this host's CPU is {our_cpu:?}, the corpus host's {corpus_cpu:?}: \
             host-model -cpu values are not compared"
        );
    }
    for b in names {
        let path = dir.join(format!("{b}.xml"));
        let xml = fs::read_to_string(&path).expect("read input");
        let name = domain_name(&xml);
        let args = [
            "domxml-to-native",
            "qemu-argv",
            path.to_str().expect("utf-8 path"),
        ];
        let (ok, out, err) = vsh("qemu:///system", &args);
        if let Ok(want) = fs::read_to_string(dir.join(format!("{b}.native"))) {
            natives += 1;
            if !swtpm && has_emulated_tpm(&xml) {
                // The corpus's host had swtpm; without it libvirtd refuses the TPM.
                if !ok && no_swtpm_refusal(&err) {
                    passed.insert(format!("native {b}"));
                } else {
                    failures.push(format!(
                        "native {b}: no swtpm here, expected the TPM refused"
                    ));
                }
                continue;
            }
            let got = if ok {
                norm_native(&out, &name)
            } else {
                vec![format!("error: {err}")]
            };
            let mut want = norm_native(&want, &name);
            let mut got = got;
            if !same_cpu && xml.contains("host-model") {
                for v in [&mut want, &mut got] {
                    mask_cpu(v);
                }
            }
            if got == want {
                same += 1;
                passed.insert(format!("native {b}"));
            } else {
                let at = want.iter().zip(&got).take_while(|(a, b)| a == b).count();
                failures.push(format!(
                    "native {b}: word {at}: expected {:?}, got {:?}",
                    want.get(at),
                    got.get(at)
                ));
            }
        } else if let Ok(want) = fs::read_to_string(dir.join(format!("{b}.err"))) {
            refusals += 1;
            if let Some(needed) = host_cpu_lacked(&want)
                && needed.iter().all(|f| this_cpu.contains(&f.as_str()))
            {
                // The corpus's host lacked these CPU features; this one has them, so a
                // KVM guest asking for them starts here, with libvirtd as with us.
                eprintln!("refused {b}: this host's CPU has {needed:?}: not comparable here");
                refused += 1;
                exact += 1;
                passed.insert(format!("refused {b}"));
                passed.insert(format!("exact {b}"));
                continue;
            }
            if ok {
                failures.push(format!(
                    "refused {b}: accepted, libvirtd refused: {}",
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
        "realclients2 domxml-to-native: {same}/{natives} identical, refused {refused}/{refusals} ({exact} exact)"
    );
    let list = common::data().join("realclients2/native-pass.txt");
    if common::regenerate() {
        let body: String = passed.iter().map(|n| format!("{n}\n")).collect();
        fs::write(&list, body).expect("write pass list");
        return;
    }
    let expected = fs::read_to_string(&list).expect("tests/data/realclients2/native-pass.txt");
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
