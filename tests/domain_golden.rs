//! Our own golden cases: `tests/data/xml2xml/NAME.xml` formats to `NAME.out.xml`, or fails
//! with the message in `NAME.err`. `VSH_TEST_REGENERATE_OUTPUT=1` rewrites the expectations.
//! Also: libvirt's test inputs all parse, limits on hostile input, and property tests.

mod common;

use std::fs;

use domdriver::domain::xml::MAX_XML_SIZE;
use domdriver::domain::{DomainDef, FormatFlags, parse};
use proptest::prelude::*;

const FLAGS: FormatFlags = FormatFlags {
    inactive: true,
    secure: true,
};

#[test]
fn golden_cases() {
    let dir = common::data().join("xml2xml");
    let mut names: Vec<String> = fs::read_dir(&dir)
        .expect("read tests/data/xml2xml")
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().map(String::from))
        .filter(|n| n.ends_with(".xml") && !n.ends_with(".out.xml"))
        .map(|n| n.trim_end_matches(".xml").to_string())
        .collect();
    names.sort();
    assert!(names.len() >= 8, "golden cases missing");
    let mut mismatches = Vec::new();
    for name in &names {
        let src = fs::read_to_string(dir.join(format!("{name}.xml"))).expect("read case");
        let (ext, got) = match parse(&src) {
            Ok(d) => ("out.xml", d.to_xml(FLAGS)),
            Err(e) => ("err", format!("{e}\n")),
        };
        let want_path = dir.join(format!("{name}.{ext}"));
        if common::regenerate() {
            let other = if ext == "err" { "out.xml" } else { "err" };
            let _ = fs::remove_file(dir.join(format!("{name}.{other}")));
            fs::write(&want_path, &got).expect("write expectation");
            continue;
        }
        match fs::read_to_string(&want_path) {
            Ok(want) if want == got => {}
            Ok(want) => mismatches.push(format!("{name}: expected\n{want}got\n{got}")),
            Err(_) => mismatches.push(format!("{name}: no {ext} file; got\n{got}")),
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

/// Formatting our own output again must not change it.
#[test]
fn golden_outputs_are_fixed_points() {
    let dir = common::data().join("xml2xml");
    for e in fs::read_dir(&dir).expect("read dir").filter_map(|e| e.ok()) {
        let p = e.path();
        if !p.to_string_lossy().ends_with(".out.xml") {
            continue;
        }
        let src = fs::read_to_string(&p).expect("read");
        let again = parse(&src).expect("reparse").to_xml(FLAGS);
        assert_eq!(again, src, "{}", p.display());
    }
}

/// Every input of libvirt's qemuxml2argv tests is well-formed domain XML that libvirt's parser
/// accepts, except the few whose `.err` file carries a parse-time message; ours must accept them.
#[test]
fn libvirt_inputs_parse() {
    let dir = common::testdata().join("tests/qemuxml2argvdata");
    let mut failures = Vec::new();
    let mut total = 0;
    let mut matched_errors = 0;
    for e in fs::read_dir(&dir)
        .expect("read qemuxml2argvdata")
        .filter_map(|e| e.ok())
    {
        let p = e.path();
        let Some(name) = p.file_name().and_then(|n| n.to_str()).map(String::from) else {
            continue;
        };
        let Some(stem) = name.strip_suffix(".xml") else {
            continue;
        };
        total += 1;
        let src = fs::read_to_string(&p).expect("read");
        match parse(&src) {
            Ok(d) => {
                // Nothing may be lost or changed by formatting (live flags keep the id).
                let out = d.to_xml(FormatFlags {
                    inactive: false,
                    secure: true,
                });
                match parse(&out) {
                    Ok(d2) if d2 == d => {}
                    Ok(d2) => {
                        let (a, b) = (format!("{d:#?}"), format!("{d2:#?}"));
                        let diff: Vec<String> = a
                            .lines()
                            .zip(b.lines())
                            .filter(|(x, y)| x != y)
                            .take(3)
                            .map(|(x, y)| format!("  {x}\n  {y}"))
                            .collect();
                        failures.push(format!("{stem}: reparse differs:\n{}", diff.join("\n")))
                    }
                    Err(e) => failures.push(format!("{stem}: our output fails to parse: {e}")),
                }
            }
            Err(e) => {
                let expected = fs::read_dir(&dir)
                    .expect("read dir")
                    .filter_map(|e| e.ok())
                    .filter_map(|e| e.file_name().to_str().map(String::from))
                    .filter(|n| n.starts_with(&format!("{stem}.")) && n.ends_with(".err"))
                    .filter_map(|n| fs::read_to_string(dir.join(n)).ok())
                    .any(|want| want.trim_end() == e.to_string());
                if expected {
                    matched_errors += 1;
                } else {
                    failures.push(format!("{stem}: {e}"));
                }
            }
        }
    }
    eprintln!("{total} libvirt inputs; {matched_errors} refused with libvirt's own message");
    assert!(total > 300, "too few inputs: {total}");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn oversized_input_is_refused_before_parsing() {
    let mut s = String::from("<domain type='kvm'><name>");
    s.push_str(&"a".repeat(MAX_XML_SIZE));
    s.push_str("</name></domain>");
    let e = DomainDef::from_xml(&s).unwrap_err().to_string();
    assert!(e.contains("larger than the limit"), "{e}");
}

#[test]
fn deep_nesting_is_refused() {
    let s = format!("{}{}", "<a>".repeat(100_000), "</a>".repeat(100_000));
    assert!(DomainDef::from_xml(&s).is_err());
}

#[test]
fn uuid_is_generated_when_absent() {
    let d = parse(
        "<domain type='kvm'><name>x</name><memory>1</memory><os><type>hvm</type></os></domain>",
    )
    .expect("parse");
    assert!(!d.uuid.is_nil());
}

fn simple_domain() -> impl Strategy<Value = String> {
    (
        "[a-zA-Z][a-zA-Z0-9_.-]{0,20}",
        1u64..(1 << 40),
        prop::sample::select(vec!["b", "KiB", "k", "MiB", "M", "MB", "GiB", "G", "GB"]),
        1u32..512,
        prop::collection::vec(
            (
                prop::sample::select(vec!["file", "block"]),
                "/[a-z]{1,8}/[a-z0-9]{1,8}\\.img",
                prop::sample::select(vec!["virtio", "sata", "scsi"]),
                prop::option::of(0u32..32),
            ),
            0..5,
        ),
        prop::collection::vec("[ -~]{0,16}", 0..3),
        prop::collection::vec(
            (
                prop::sample::select(vec!["user", "network", "bridge", "ethernet"]),
                any::<[u8; 3]>(),
                prop::option::of(prop::sample::select(vec!["virtio", "e1000e", "rtl8139"])),
                prop::option::of(1u32..9),
            ),
            0..4,
        ),
        prop::collection::vec(
            (
                prop::sample::select(vec!["pty", "file", "unix", "tcp", "null", "stdio"]),
                "[a-z]{1,8}",
            ),
            0..3,
        ),
    )
        .prop_map(|(name, mem, unit, vcpus, disks, args, nets, serials)| {
            let mut s = format!(
                "<domain type='kvm'><name>{name}</name><memory unit='{unit}'>{mem}</memory>\
                 <vcpu>{vcpus}</vcpu><os><type arch='x86_64' machine='q35'>hvm</type></os><devices>"
            );
            for (i, (ty, path, bus, slot)) in disks.iter().enumerate() {
                let attr = if *ty == "file" { "file" } else { "dev" };
                s.push_str(&format!(
                    "<disk type='{ty}' device='disk'><source {attr}='{path}'/>\
                     <target dev='vd{}' bus='{bus}'/>",
                    (b'a' + i as u8) as char
                ));
                if let Some(slot) = slot {
                    s.push_str(&format!(
                        "<address type='pci' domain='0' bus='0' slot='{slot}' function='0'/>"
                    ));
                }
                s.push_str("</disk>");
            }
            for (ty, mac, model, boot) in &nets {
                s.push_str(&format!(
                    "<interface type='{ty}'><mac address='52:54:00:{:02x}:{:02x}:{:02x}'/>",
                    mac[0], mac[1], mac[2]
                ));
                match *ty {
                    "network" => s.push_str("<source network='default'/>"),
                    "bridge" => s.push_str("<source bridge='br0'/>"),
                    _ => {}
                }
                if let Some(m) = model {
                    s.push_str(&format!("<model type='{m}'/>"));
                }
                if let Some(b) = boot {
                    s.push_str(&format!("<boot order='{b}'/>"));
                }
                s.push_str("</interface>");
            }
            for (i, (ty, word)) in serials.iter().enumerate() {
                s.push_str(&format!("<serial type='{ty}'>"));
                match *ty {
                    "file" => s.push_str(&format!("<source path='/tmp/{word}'/>")),
                    "unix" => s.push_str(&format!("<source mode='bind' path='/tmp/{word}'/>")),
                    "tcp" => s.push_str(&format!(
                        "<source mode='connect' host='{word}' service='4555'/><protocol type='raw'/>"
                    )),
                    _ => {}
                }
                s.push_str(&format!("<target port='{i}'/></serial>"));
            }
            s.push_str("</devices><qemu:commandline xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>");
            for a in &args {
                s.push_str(&format!(
                    "<qemu:arg value='{}'/>",
                    domdriver::xmlfmt::escape_attr(a)
                ));
            }
            s.push_str("</qemu:commandline></domain>");
            s
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn parse_format_roundtrip(xml in simple_domain()) {
        let Ok(d) = parse(&xml) else {
            // Sizes beyond the limit are refused; that is tested elsewhere.
            return Ok(());
        };
        let out = d.to_xml(FLAGS);
        let d2 = parse(&out).expect("our own output parses");
        prop_assert_eq!(&d, &d2);
        prop_assert_eq!(d2.to_xml(FLAGS), out);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let s = String::from_utf8_lossy(&bytes);
        let _ = parse(&s);
    }

    #[test]
    fn mutated_domains_never_panic(xml in simple_domain(), cut in 0usize..2000, junk in "[<>&'\"/a-z =]{0,8}") {
        let mut s = xml;
        let mut at = cut.min(s.len());
        while !s.is_char_boundary(at) {
            at -= 1;
        }
        s.insert_str(at, &junk);
        let _ = parse(&s);
    }
}

/// Every attribute of libvirt's inputs must survive formatting, apart from values libvirt
/// itself rewrites (numbers in canonical form, sizes in KiB): a cheap check that nothing is
/// silently dropped by the typed model.
#[test]
fn libvirt_inputs_lose_no_attributes() {
    use domdriver::domain::xml::{XmlNode, parse_document};
    use std::collections::BTreeSet;

    fn collect(n: &XmlNode, out: &mut BTreeSet<(String, String, String)>) {
        for (k, v) in &n.attrs {
            out.insert((n.name.clone(), k.clone(), v.clone()));
        }
        for c in &n.children {
            collect(c, out);
        }
    }
    // (element, attribute) pairs whose values are rewritten on purpose.
    const NORMALIZED: &[(&str, &str)] = &[
        ("address", "domain"),
        ("address", "bus"),
        ("address", "slot"),
        ("address", "function"),
        ("target", "port"),
        ("memory", "unit"),
        ("currentMemory", "unit"),
        ("maxMemory", "unit"),
        ("size", "unit"),
        ("page", "unit"),
        ("page", "size"),
        ("cell", "unit"),
        ("cell", "memory"),
        ("pagesize", "unit"),
        ("tseg", "unit"),
        ("max_size", "unit"),
        ("maxpagesize", "unit"),
        ("hard_limit", "unit"),
        ("soft_limit", "unit"),
        ("swap_hard_limit", "unit"),
        ("min_guarantee", "unit"),
        ("graphics", "port"),
        ("graphics", "autoport"),
        ("vcpu", "current"),
    ];
    // (element, attribute, value) that libvirt reads as its default and does not write back:
    // a closed tray, snapshot='no' of a read-only disk, the fallback of a host-model CPU
    // without a model name.
    const DEFAULTS_NOT_WRITTEN: &[(&str, &str, &str)] = &[
        ("target", "tray", "closed"),
        ("disk", "snapshot", "no"),
        ("model", "fallback", "allow"),
    ];
    let dir = common::testdata().join("tests/qemuxml2argvdata");
    let mut lost = Vec::new();
    for e in fs::read_dir(&dir).expect("read dir").filter_map(|e| e.ok()) {
        let p = e.path();
        if p.extension().and_then(|x| x.to_str()) != Some("xml") {
            continue;
        }
        let src = fs::read_to_string(&p).expect("read");
        let Ok(d) = parse(&src) else { continue };
        let out = d.to_xml(FormatFlags {
            inactive: false,
            secure: true,
        });
        let (mut a, mut b) = (BTreeSet::new(), BTreeSet::new());
        collect(&parse_document(&src).expect("dom"), &mut a);
        collect(&parse_document(&out).expect("dom"), &mut b);
        for t in a.difference(&b) {
            if t.1.starts_with("xmlns") || NORMALIZED.contains(&(t.0.as_str(), t.1.as_str())) {
                continue;
            }
            if DEFAULTS_NOT_WRITTEN.contains(&(t.0.as_str(), t.1.as_str(), t.2.as_str())) {
                continue;
            }
            lost.push(format!("{}: <{} {}='{}'>", p.display(), t.0, t.1, t.2));
        }
    }
    assert!(lost.is_empty(), "{}", lost.join("\n"));
}

fn corpus_files() -> Vec<String> {
    let dir = common::testdata().join("tests/qemuxml2xmloutdata");
    let mut v: Vec<String> = fs::read_dir(&dir)
        .expect("read dir")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().and_then(|x| x.to_str()) == Some("xml"))
        .filter_map(|p| fs::read_to_string(p).ok())
        .collect();
    v.sort();
    v
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Corrupting real documents (deleting or duplicating a span, changing a byte) may make
    /// them invalid, but must never make the parser or formatter panic.
    #[test]
    fn corrupted_libvirt_documents_never_panic(
        pick in any::<prop::sample::Index>(),
        at in any::<prop::sample::Index>(),
        len in 0usize..64,
        op in 0u8..3,
        byte in any::<u8>(),
    ) {
        let files = corpus_files();
        let src = files[pick.index(files.len())].as_bytes().to_vec();
        let start = at.index(src.len());
        let end = (start + len).min(src.len());
        let mut b = src.clone();
        match op {
            0 => { b.drain(start..end); }
            1 => { let dup = src[start..end].to_vec(); b.splice(start..start, dup); }
            _ => { b[start] = byte; }
        }
        let s = String::from_utf8_lossy(&b);
        if let Ok(d) = parse(&s) {
            let out = d.to_xml(FLAGS);
            prop_assert!(parse(&out).is_ok(), "our output must parse:\n{}", out);
        }
    }
}

/// Found by fuzzing: NUL bytes inside a tag became part of an attribute name.
#[test]
fn control_characters_are_malformed_xml() {
    let e = domdriver::domain::parse("<domain type='qemu'>\n  <name>a\0b</name>\n</domain>")
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "XML error: malformed XML at line 2, column 10: invalid character U+0000"
    );
    assert!(domdriver::domain::parse("<domain \u{1}type='qemu'/>").is_err());
}

/// Found by fuzzing: a device with two `<address>` elements formatted differently on a second
/// round (the duplicate, kept verbatim, came out before the typed one). Like libvirt, the
/// first is read and the rest ignored.
#[test]
fn duplicate_singular_elements_format_stably() {
    let xml = "<domain type='qemu'><name>g</name><memory>1024</memory><os><type arch='s390x'>hvm</type></os><devices><hostdev mode='subsystem' type='pci'><source><address domain='0x0001' bus='0x00' slot='0x00' function='0x0'/></source><address type='pci'><zpci uid='0x0035' fid='0x00000068'/></address><address type='pci' domain='0x0000' bus='0x00' slot='0x03' function='0x0'/></hostdev></devices></domain>";
    let flags = domdriver::domain::FormatFlags {
        inactive: true,
        secure: false,
    };
    let once = domdriver::domain::parse(xml).unwrap().to_xml(flags);
    let twice = domdriver::domain::parse(&once).unwrap().to_xml(flags);
    assert_eq!(once, twice);
    assert_eq!(once.matches("<zpci").count(), 1, "{once}");
}

/// Found by fuzzing (fuzz/regressions/domain/crash-cc43032a…): `<metadata>` whose child holds
/// multi-line text (a start tag broken into text) shifted that text by four spaces on every
/// format round. Like libxml2, indentation goes before tags only, never into text.
#[test]
fn metadata_text_formats_stably() {
    let xml = "<domain type='qemu'>\n  <name>guest</name>\n  <metadata>\n    <libosinfo:libosinfo xmlns:libosinfo='http://libosinfo.org/xmlns/libvirt/domain/1.0'>\n    aliasbosinfo:os id='http://fedoraproject.org/fedora/29'/>\n    </libosinfo:libosinfo>\n    <app:x xmlns:app='urn:app'><app:y a='1'/></app:x>\n  </metadata>\n  <memory>4194304</memory>\n  <os><type arch='x86_64'>hvm</type></os>\n</domain>";
    let flags = domdriver::domain::FormatFlags {
        inactive: true,
        secure: false,
    };
    let once = domdriver::domain::parse(xml).unwrap().to_xml(flags);
    let twice = domdriver::domain::parse(&once).unwrap().to_xml(flags);
    let thrice = domdriver::domain::parse(&twice).unwrap().to_xml(flags);
    assert_eq!(once, twice);
    assert_eq!(twice, thrice);
    // The text is kept as it was, tags are indented under <metadata>.
    assert!(
        once.contains("    <libosinfo:libosinfo xmlns:libosinfo=\"http://libosinfo.org/xmlns/libvirt/domain/1.0\">\n    aliasbosinfo:os id='http://fedoraproject.org/fedora/29'/&gt;\n    </libosinfo:libosinfo>\n"),
        "{once}"
    );
    assert!(
        once.contains("    <app:x xmlns:app=\"urn:app\">\n      <app:y a=\"1\"/>\n    </app:x>\n  </metadata>\n"),
        "{once}"
    );
}

/// The fuzz artifact itself, when the repository has it.
#[test]
fn metadata_fuzz_artifact_is_stable() {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/regressions/domain/crash-cc43032ad82d5871a9c50422b521f26c5d295aef");
    let text = std::fs::read_to_string(&p).unwrap();
    let flags = domdriver::domain::FormatFlags {
        inactive: true,
        secure: false,
    };
    let once = domdriver::domain::parse(&text).unwrap().to_xml(flags);
    let twice = domdriver::domain::parse(&once).unwrap().to_xml(flags);
    assert_eq!(once, twice);
}
