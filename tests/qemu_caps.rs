//! QEMU capabilities probing against libvirt 9.0.0's recorded probe conversations
//! (`caps_*.replies`) and the caps documents libvirt derived from them (`caps_*.xml`).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use domdriver::capabilities::CapsError;
use domdriver::capabilities::qemu::{
    Accel, CpuUsable, GuestOptions, ProbeOptions, QemuCaps, ReplaySessions, format_guest,
    probe_binary, probe_sessions,
};
use domdriver::qmp::replay::Replayer;
use domdriver::xmlfmt::XmlWriter;
use quick_xml::events::Event;

/// A parsed XML element: enough structure to compare facts.
#[derive(Debug, Default, Clone)]
struct El {
    name: String,
    attrs: BTreeMap<String, String>,
    text: String,
    children: Vec<El>,
}

impl El {
    fn attr(&self, k: &str) -> Option<&str> {
        self.attrs.get(k).map(String::as_str)
    }
    fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a El> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }
    fn child_text<'a>(&'a self, name: &'a str) -> Option<&'a str> {
        self.all(name).next().map(|c| c.text.as_str())
    }
}

fn parse_xml(text: &str) -> El {
    let mut r = quick_xml::Reader::from_str(text);
    let mut stack: Vec<El> = vec![El::default()];
    let el_of = |e: &quick_xml::events::BytesStart| {
        let mut el = El {
            name: e.name().0.to_string(),
            ..El::default()
        };
        for a in e.attributes() {
            let a = a.expect("attribute");
            el.attrs.insert(
                a.key.0.to_string(),
                a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                    .expect("attr value")
                    .into_owned(),
            );
        }
        el
    };
    loop {
        match r.read_event().expect("well-formed XML") {
            Event::Start(e) => stack.push(el_of(&e)),
            Event::Empty(e) => {
                let el = el_of(&e);
                stack.last_mut().unwrap().children.push(el);
            }
            Event::End(_) => {
                let el = stack.pop().unwrap();
                stack.last_mut().unwrap().children.push(el);
            }
            Event::Text(t) => {
                let s = t.xml10_content().into_owned();
                stack.last_mut().unwrap().text.push_str(s.trim());
            }
            Event::GeneralRef(g) => {
                let name = g.xml10_content().into_owned();
                let s = quick_xml::escape::unescape(&format!("&{name};"))
                    .expect("unescape")
                    .into_owned();
                stack.last_mut().unwrap().text.push_str(&s);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    stack.pop().unwrap().children.remove(0)
}

fn caps_dir() -> PathBuf {
    common::testdata().join("tests/qemucapabilitiesdata")
}

fn replies_files() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(caps_dir())
        .expect("qemucapabilitiesdata directory")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "replies"))
        .collect();
    v.sort();
    assert_eq!(
        v.len(),
        29,
        "expected libvirt 9.0.0's 29 caps_*.replies files in {}",
        caps_dir().display()
    );
    v
}

async fn replay(path: &Path, emulator: &str) -> (Result<QemuCaps, CapsError>, Replayer) {
    let r = Replayer::load(path).expect("load .replies");
    let mut s = ReplaySessions::new(r.clone(), emulator);
    (probe_sessions(&mut s).await, r)
}

fn yes(el: &El, attr: &str) -> bool {
    el.attr(attr) == Some("yes")
}

/// Compare our facts with libvirt's document; returns the differences.
fn compare(caps: &QemuCaps, exp: &El) -> Vec<String> {
    let mut d = Vec::new();
    let mut check = |what: &str, ours: String, theirs: String| {
        if ours != theirs {
            d.push(format!("{what}: ours {ours:?}, libvirt {theirs:?}"));
        }
    };
    check(
        "version",
        caps.version.to_string(),
        exp.child_text("version").unwrap_or("").to_string(),
    );
    check(
        "package",
        format!("{:?}", caps.package),
        format!("{:?}", exp.child_text("package").map(str::to_string)),
    );
    check(
        "arch",
        caps.arch.clone(),
        exp.child_text("arch").unwrap_or("").to_string(),
    );
    let exp_kvm = exp.all("flag").any(|f| f.attr("name") == Some("kvm"));
    check("kvm", caps.kvm.to_string(), exp_kvm.to_string());

    for accel in [Accel::Kvm, Accel::Tcg] {
        let t = accel.as_str();
        let ours = caps.accel(accel);
        let machines: Vec<String> = exp
            .all("machine")
            .filter(|m| m.attr("type") == Some(t))
            .map(|m| {
                format!(
                    "{} alias={:?} hotplug={} max={} default={} cpu={:?} numa={} ram={:?} depr={}",
                    m.attr("name").unwrap_or(""),
                    m.attr("alias"),
                    yes(m, "hotplugCpus"),
                    m.attr("maxCpus").unwrap_or("0"),
                    yes(m, "default"),
                    m.attr("defaultCPU"),
                    yes(m, "numaMemSupported"),
                    m.attr("defaultRAMid"),
                    yes(m, "deprecated"),
                )
            })
            .collect();
        let our_machines: Vec<String> = ours
            .map(|a| {
                a.machines
                    .iter()
                    .map(|m| {
                        format!(
                            "{} alias={:?} hotplug={} max={} default={} cpu={:?} numa={} ram={:?} depr={}",
                            m.name,
                            m.alias.as_deref(),
                            m.hotplug_cpus,
                            m.max_cpus,
                            m.default,
                            m.default_cpu.as_deref(),
                            m.numa_mem_supported,
                            m.default_ram_id.as_deref(),
                            m.deprecated
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        if machines != our_machines {
            let first = machines
                .iter()
                .zip(&our_machines)
                .find(|(a, b)| a != b)
                .map(|(a, b)| format!("libvirt {a} / ours {b}"))
                .unwrap_or_default();
            d.push(format!(
                "{t} machines differ ({} vs {} ours): {first}",
                machines.len(),
                our_machines.len()
            ));
        }

        let cpus: Vec<String> = exp
            .all("cpu")
            .filter(|m| m.attr("type") == Some(t))
            .map(|c| {
                let blockers: Vec<&str> = c.all("blocker").filter_map(|b| b.attr("name")).collect();
                format!(
                    "{} {:?} usable={} depr={} blockers={:?}",
                    c.attr("name").unwrap_or(""),
                    c.attr("typename"),
                    c.attr("usable").unwrap_or("unknown"),
                    yes(c, "deprecated"),
                    blockers
                )
            })
            .collect();
        let our_cpus: Vec<String> = ours
            .and_then(|a| a.cpus.as_ref())
            .map(|v| {
                v.iter()
                    .map(|c| {
                        format!(
                            "{} {:?} usable={} depr={} blockers={:?}",
                            c.name,
                            c.typename.as_deref(),
                            c.usable.as_str(),
                            c.deprecated,
                            c.blockers
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        if cpus != our_cpus {
            let first = cpus
                .iter()
                .zip(&our_cpus)
                .find(|(a, b)| a != b)
                .map(|(a, b)| format!("libvirt {a} / ours {b}"))
                .unwrap_or_default();
            d.push(format!(
                "{t} cpus differ ({} vs {} ours): {first}",
                cpus.len(),
                our_cpus.len()
            ));
        }

        let host = exp.all("hostCPU").find(|h| h.attr("type") == Some(t));
        let ours_host = ours.and_then(|a| a.host_cpu.as_ref());
        match (host, ours_host) {
            (None, None) => {}
            (Some(h), Some(o)) => {
                let props: Vec<String> = h
                    .all("property")
                    .map(|p| {
                        format!(
                            "{}={}:{} {:?}",
                            p.attr("name").unwrap_or(""),
                            p.attr("type").unwrap_or(""),
                            p.attr("value").unwrap_or(""),
                            p.attr("migratable")
                        )
                    })
                    .collect();
                let ours_props: Vec<String> = o
                    .props
                    .iter()
                    .map(|p| {
                        let (ty, v) = match &p.value {
                            domdriver::capabilities::qemu::CpuPropValue::Boolean(b) => {
                                ("boolean", b.to_string())
                            }
                            domdriver::capabilities::qemu::CpuPropValue::String(s) => {
                                ("string", s.clone())
                            }
                            domdriver::capabilities::qemu::CpuPropValue::Number(n) => {
                                ("number", n.to_string())
                            }
                        };
                        format!(
                            "{}={ty}:{v} {:?}",
                            p.name,
                            p.migratable.map(|m| if m { "yes" } else { "no" })
                        )
                    })
                    .collect();
                if h.attr("model") != Some(o.model.as_str())
                    || yes(h, "migratability") != o.migratability
                    || props != ours_props
                {
                    d.push(format!("{t} hostCPU differs"));
                }
            }
            (a, b) => d.push(format!(
                "{t} hostCPU presence: libvirt {}, ours {}",
                a.is_some(),
                b.is_some()
            )),
        }
    }

    let gic: Vec<String> = exp.all("gic").map(|g| format!("{:?}", g.attrs)).collect();
    let our_gic: Vec<String> = caps
        .gic
        .iter()
        .map(|g| {
            let mut m = BTreeMap::new();
            m.insert(
                "emulated".to_string(),
                if g.emulated { "yes" } else { "no" }.to_string(),
            );
            m.insert(
                "kernel".to_string(),
                if g.kernel { "yes" } else { "no" }.to_string(),
            );
            m.insert("version".to_string(), g.version.to_string());
            format!("{m:?}")
        })
        .collect();
    if gic != our_gic {
        d.push(format!("gic: libvirt {gic:?}, ours {our_gic:?}"));
    }
    if exp.all("sev").next().is_some() != caps.sev.is_some() {
        d.push("sev presence differs".into());
    }
    if let (Some(s), Some(o)) = (exp.all("sev").next(), &caps.sev)
        && (s.child_text("cbitpos") != Some(o.cbitpos.to_string().as_str())
            || s.child_text("pdh") != Some(o.pdh.as_str())
            || s.child_text("certChain") != Some(o.cert_chain.as_str()))
    {
        d.push("sev differs".into());
    }
    if exp.all("sgx").next().is_some() != caps.sgx.is_some() {
        d.push("sgx presence differs".into());
    }
    let hv: Option<Vec<String>> = exp.all("hypervCapabilities").next().map(|h| {
        h.all("cap")
            .filter_map(|c| c.attr("name").map(str::to_string))
            .collect()
    });
    if hv != caps.hyperv {
        d.push(format!("hyperv: libvirt {hv:?}, ours {:?}", caps.hyperv));
    }
    d
}

/// libvirt's document without the lines we do not reproduce (the host microcode stamp that
/// libvirt's test synthesizes from the file name).
fn comparable(xml: &str) -> String {
    xml.lines()
        .filter(|l| !l.contains("<microcodeVersion>"))
        .map(|l| format!("{l}\n"))
        .collect()
}

#[tokio::test]
async fn replay_all_caps_files() {
    let mut failures = Vec::new();
    let mut report = Vec::new();
    let mut exact_flags = 0;
    let mut exact_xml = 0;
    for path in replies_files() {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let xml_path = path.with_extension("xml");
        let xml_text = std::fs::read_to_string(&xml_path).expect("paired .xml");
        let exp = parse_xml(&xml_text);
        let emulator = exp.child_text("emulator").unwrap_or("").to_string();
        let (caps, r) = replay(&path, &emulator).await;
        let caps = match caps {
            Ok(c) => c,
            Err(e) => {
                failures.push(format!("{name}: probe failed: {e}"));
                continue;
            }
        };
        if let Err(e) = r.finish() {
            failures.push(format!("{name}: {e}"));
        }
        for diff in compare(&caps, &exp) {
            failures.push(format!("{name}: {diff}"));
        }

        let theirs: BTreeSet<String> = exp
            .all("flag")
            .filter_map(|f| f.attr("name").map(str::to_string))
            .collect();
        let missing: Vec<&String> = theirs.difference(&caps.flags).collect();
        let extra: Vec<&String> = caps.flags.difference(&theirs).collect();
        if missing.is_empty() && extra.is_empty() {
            exact_flags += 1;
        }
        let ours_xml = caps.to_xml();
        let same_xml = ours_xml == comparable(&xml_text);
        if same_xml {
            exact_xml += 1;
        }
        report.push(format!(
            "{name}: flags {}/{} matched, missing {:?}, extra {:?}; whole document {}",
            theirs.len() - missing.len(),
            theirs.len(),
            missing,
            extra,
            if same_xml { "identical" } else { "differs" }
        ));
        if name == "caps_8.0.0.x86_64.replies" || name == "caps_7.0.0.aarch64.replies" {
            if !(missing.is_empty() && extra.is_empty()) {
                failures.push(format!(
                    "{name}: flags must match exactly: missing {missing:?}, extra {extra:?}"
                ));
            }
            if !same_xml {
                failures.push(format!("{name}: to_xml() differs from libvirt's document"));
            }
        }
    }
    for l in &report {
        println!("{l}");
    }
    println!("flag sets exact: {exact_flags}/29; documents identical: {exact_xml}/29");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn replay_mismatch_is_named() {
    // A conversation cut short: the probe must fail and finish() must name the command.
    let path = caps_dir().join("caps_8.0.0.x86_64.replies");
    let mut conv = domdriver::qmp::Conversation::load(&path).unwrap();
    conv.exchanges.truncate(5);
    let r = Replayer::new(conv, "cut.replies");
    let mut s = ReplaySessions::new(r.clone(), "/usr/bin/qemu-system-x86_64");
    let e = probe_sessions(&mut s).await.unwrap_err().to_string();
    assert!(e.contains("/usr/bin/qemu-system-x86_64"), "{e}");
    let f = r.finish().unwrap_err().to_string();
    assert!(f.contains("after the end of the recording"), "{f}");
}

#[tokio::test]
async fn caps_roundtrip_json() {
    let path = caps_dir().join("caps_7.0.0.aarch64.replies");
    let (caps, _) = replay(&path, "/usr/bin/qemu-system-aarch64").await;
    let caps = caps.unwrap();
    let j = serde_json::to_string(&caps).unwrap();
    let back: QemuCaps = serde_json::from_str(&j).unwrap();
    assert_eq!(caps, back);
    // libvirt 9.0 prefers integratorcp on ARM (its historical first machine).
    assert_eq!(
        caps.accel(Accel::Kvm).unwrap().machines[0].name,
        "integratorcp"
    );
    assert!(
        caps.accel(Accel::Tcg)
            .unwrap()
            .cpus
            .as_ref()
            .unwrap()
            .iter()
            .any(|c| c.usable == CpuUsable::Unknown)
    );
}

/// The `<guest>` part of libvirt's host capabilities: `qemucaps2xmloutdata/caps.ARCH.xml`
/// derives from each `caps_*.xml` (libvirt's harness adds no machines there).
#[tokio::test]
async fn guests_match_qemucaps2xml() {
    let outdir = common::testdata().join("tests/qemucaps2xmloutdata");
    let mut checked = 0;
    for path in replies_files() {
        let xml = parse_xml(&std::fs::read_to_string(path.with_extension("xml")).unwrap());
        let emulator = xml.child_text("emulator").unwrap().to_string();
        let (caps, _) = replay(&path, &emulator).await;
        let caps = caps.unwrap();
        let expected = std::fs::read_to_string(outdir.join(format!("caps.{}.xml", caps.arch)))
            .expect("expected host caps");
        let start = expected.find("  <guest>").unwrap();
        let end = expected.rfind("</guest>").unwrap() + "</guest>\n".len();
        let mut w = XmlWriter::new();
        // One level of indentation, as inside <capabilities>.
        w.elem("capabilities").open();
        let opts = GuestOptions {
            kvm_usable: true,
            hvf_usable: false,
            machines: false,
        };
        format_guest(&caps, &caps.arch, &opts, &mut w);
        w.close();
        let out = w.finish();
        let ours = out
            .strip_prefix("<capabilities>\n")
            .and_then(|s| s.strip_suffix("</capabilities>\n"))
            .unwrap();
        assert_eq!(ours, &expected[start..end], "{}", path.display());
        checked += 1;
    }
    assert_eq!(checked, 29);
}

#[tokio::test]
async fn guests_with_machines_and_extra_arches() {
    let (caps, _) = replay(
        &caps_dir().join("caps_8.0.0.x86_64.replies"),
        "/usr/bin/qemu-system-x86_64",
    )
    .await;
    let caps = caps.unwrap();
    let mut w = XmlWriter::new();
    let opts = GuestOptions {
        kvm_usable: true,
        hvf_usable: false,
        machines: true,
    };
    domdriver::capabilities::qemu::format_guests_for_host(
        std::slice::from_ref(&caps),
        "x86_64",
        &opts,
        &mut w,
    );
    let out = w.finish();
    // i686 guests run on qemu-system-x86_64 (natively) on an x86_64 host, listed first.
    let i686 = out.find("<arch name='i686'>").expect("i686 guest");
    let x86 = out.find("<arch name='x86_64'>").expect("x86_64 guest");
    assert!(i686 < x86);
    assert!(out.contains("<pae/>"));
    // The canonical machine precedes its alias.
    let canon = out
        .find("<machine maxCpus='255'>pc-i440fx-8.0</machine>")
        .unwrap();
    let alias = out
        .find("<machine canonical='pc-i440fx-8.0' maxCpus='255'>pc</machine>")
        .unwrap();
    assert!(canon < alias, "{out}");
    // format_guests() uses the real host's arch, named as libvirt names it.
    let host = domdriver::capabilities::qemu::host_arch();
    assert!(
        domdriver::capabilities::qemu::wordsize(host).is_some(),
        "{host}"
    );
    let mut w = XmlWriter::new();
    domdriver::capabilities::qemu::format_guests(std::slice::from_ref(&caps), true, false, &mut w);
    let out = w.finish();
    assert!(out.contains("<arch name='x86_64'>"));
    assert_eq!(out.contains("<arch name='i686'>"), host == "x86_64");
    // On an aarch64 host the same binary serves no i686 guest.
    let mut w = XmlWriter::new();
    domdriver::capabilities::qemu::format_guests_for_host(
        std::slice::from_ref(&caps),
        "aarch64",
        &opts,
        &mut w,
    );
    assert!(!w.finish().contains("i686"));
}

// -------------------------------------------------------------------------------------------
// Real binaries

fn real(name: &str) -> Option<PathBuf> {
    let p = PathBuf::from(format!("/usr/bin/{name}"));
    if p.exists() {
        Some(p)
    } else {
        println!("skipping: {} not installed", p.display());
        None
    }
}

async fn probe_real(name: &str, arch: &str) {
    let Some(path) = real(name) else { return };
    let opts = ProbeOptions {
        timeout: Duration::from_secs(60),
        kvm: false,
        record: None,
    };
    let caps = probe_binary(&path, &opts).await.expect("probe");
    assert_eq!(caps.arch, arch);
    assert!(caps.version >= 4_002_000, "{}", caps.version);
    assert!(caps.flags.contains("tcg"));
    let tcg = caps.accel(Accel::Tcg).expect("tcg accel");
    assert!(!tcg.machines.is_empty());
    assert!(tcg.machines.iter().all(|m| m.name != "none"));
    println!(
        "{name}: version {} package {:?} first machine {} ({} flags)",
        caps.version,
        caps.package,
        tcg.machines[0].name,
        caps.flags.len()
    );
}

#[tokio::test]
async fn probe_real_x86_64() {
    probe_real("qemu-system-x86_64", "x86_64").await;
    let Some(path) = real("qemu-system-x86_64") else {
        return;
    };
    assert_eq!(
        probe_binary(
            &path,
            &ProbeOptions {
                kvm: false,
                ..ProbeOptions::default()
            }
        )
        .await
        .unwrap()
        .accel(Accel::Tcg)
        .unwrap()
        .machines[0]
            .alias
            .as_deref(),
        Some("pc")
    );
}

#[tokio::test]
async fn probe_real_aarch64() {
    probe_real("qemu-system-aarch64", "aarch64").await;
}

#[tokio::test]
async fn capture_writes_replayable_replies() {
    let Some(path) = real("qemu-system-aarch64") else {
        return;
    };
    let opts = ProbeOptions {
        timeout: Duration::from_secs(60),
        kvm: false,
        record: None,
    };
    let (caps, text) = domdriver::capabilities::qemu::capture_replies(&path, &opts)
        .await
        .expect("capture");
    let conv = domdriver::qmp::Conversation::parse(&text, "captured.replies").unwrap();
    conv.check_numbering().expect("ids numbered per session");
    let r = Replayer::new(conv, "captured.replies");
    let mut s = ReplaySessions::new(r.clone(), &caps.emulator);
    assert_eq!(probe_sessions(&mut s).await.unwrap(), caps);
    r.finish().unwrap();
}

#[tokio::test]
async fn probe_real_kvm_two_sessions_recorded() {
    let Some(path) = real("qemu-system-x86_64") else {
        return;
    };
    if !domdriver::capabilities::qemu::kvm_usable(Path::new("/dev/kvm")) {
        println!("skipping: no /dev/kvm");
        return;
    }
    let conv = std::sync::Arc::new(std::sync::Mutex::new(
        domdriver::qmp::Conversation::default(),
    ));
    let opts = ProbeOptions {
        timeout: Duration::from_secs(90),
        kvm: true,
        record: Some(conv.clone()),
    };
    let caps = probe_binary(&path, &opts).await.expect("probe");
    let conv = conv.lock().unwrap().clone();
    let sessions = conv
        .exchanges
        .iter()
        .filter(|e| e.name() == "qmp_capabilities")
        .count();
    if caps.kvm {
        assert_eq!(sessions, 2);
        assert!(caps.accel(Accel::Kvm).is_some());
    } else {
        println!("KVM not usable by QEMU here; single TCG session");
        assert_eq!(sessions, 1);
    }
    // The recording replays to the same caps.
    let r = Replayer::new(conv, "recorded");
    let mut s = ReplaySessions::new(r.clone(), &caps.emulator);
    let again = probe_sessions(&mut s).await.expect("replay of recording");
    r.finish().expect("recording replays exactly");
    assert_eq!(again, caps);
}

// -------------------------------------------------------------------------------------------
// Error paths with fake emulators

fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

fn quick() -> ProbeOptions {
    ProbeOptions {
        timeout: Duration::from_secs(3),
        kvm: false,
        record: None,
    }
}

#[tokio::test]
async fn not_qemu_is_a_clear_error() {
    let d = tempfile::tempdir().unwrap();
    let p = script(
        d.path(),
        "garbage",
        "echo 'this is not QEMU' >&2; echo garbage; exit 3",
    );
    let t = Instant::now();
    let e = probe_binary(&p, &quick()).await.unwrap_err().to_string();
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "took {:?}",
        t.elapsed()
    );
    assert!(e.contains(&p.display().to_string()), "{e}");
    assert!(e.contains("greeting"), "{e}");
    assert!(e.contains("this is not QEMU"), "{e}");
}

#[tokio::test]
async fn hanging_emulator_times_out() {
    let d = tempfile::tempdir().unwrap();
    let p = script(d.path(), "hang", "exec sleep 60");
    let t = Instant::now();
    let e = probe_binary(&p, &quick()).await.unwrap_err().to_string();
    assert!(
        t.elapsed() < Duration::from_secs(6),
        "took {:?}",
        t.elapsed()
    );
    assert!(e.contains(&p.display().to_string()), "{e}");
    assert!(e.contains("timed out"), "{e}");
}

#[tokio::test]
async fn emulator_dying_mid_probe_is_explained() {
    if std::process::Command::new("python3")
        .arg("-V")
        .output()
        .is_err()
    {
        println!("skipping: python3 not available");
        return;
    }
    let d = tempfile::tempdir().unwrap();
    // Speaks QMP on the inherited listening socket (fd 3), answers the handshake and the
    // version, then crashes.
    let py = d.path().join("fake.py");
    std::fs::write(
        &py,
        r#"import socket, sys, json
l = socket.socket(fileno=3)
c, _ = l.accept()
f = c.makefile('rwb')
f.write(b'{"QMP": {"version": {"qemu": {"major": 7, "minor": 2, "micro": 0}, "package": ""}, "capabilities": []}}\r\n'); f.flush()
for n in range(2):
    cmd = json.loads(f.readline())
    r = {"return": {}} if n == 0 else {"return": {"qemu": {"major": 7, "minor": 2, "micro": 0}, "package": ""}}
    r["id"] = cmd.get("id")
    f.write(json.dumps(r).encode() + b'\r\n'); f.flush()
sys.stderr.write("fake qemu: segmentation fault\n")
sys.exit(139)
"#,
    )
    .unwrap();
    let p = script(d.path(), "dies", &format!("exec python3 {}", py.display()));
    let t = Instant::now();
    let e = probe_binary(&p, &quick()).await.unwrap_err().to_string();
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "took {:?}",
        t.elapsed()
    );
    assert!(e.contains(&p.display().to_string()), "{e}");
    assert!(e.contains("mid-probe"), "{e}");
    assert!(e.contains("segmentation fault"), "{e}");
}

#[tokio::test]
async fn missing_binary_is_a_clear_error() {
    let e = probe_binary(Path::new("/nonexistent/qemu-system-x86_64"), &quick())
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("/nonexistent/qemu-system-x86_64"), "{e}");
    assert!(e.contains("cannot execute"), "{e}");
}
