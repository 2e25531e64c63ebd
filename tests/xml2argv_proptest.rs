//! User text that reaches QEMU's argv cannot add, drop or change an option.
//!
//! A domain with a value in every user-controlled field that ends up in the command line (name,
//! disk path and serial, kernel/initrd paths and command line, chardev socket path, 9p
//! directory and tag, SMBIOS strings, tap ifname, VNC listen address) is built twice: once
//! with harmless placeholders, once with random text full of `,` `=` spaces quotes newlines
//! and non-ASCII. Each argument of the second command is parsed back as QEMU does (key=value
//! with `,,` for a comma and an implied first key, or JSON) and must equal the placeholder
//! command's with only the placeholders replaced by the random values.

mod common;

use domdriver::capabilities::qemu::{QemuCaps, probe_replies};
use domdriver::conformance::harness::run_case;
use proptest::prelude::*;
use serde_json::Value;
use std::sync::OnceLock;

fn caps() -> &'static QemuCaps {
    static CAPS: OnceLock<QemuCaps> = OnceLock::new();
    CAPS.get_or_init(|| {
        let path = common::testdata().join("tests/qemucapabilitiesdata/caps_8.0.0.x86_64.replies");
        domdriver::runtime::block_on(probe_replies(&path, "/usr/bin/qemu-system-x86_64"))
            .expect("replay caps_8.0.0.x86_64")
    })
}

/// The fields, in the order of [`domain_xml`]'s values.
const FIELDS: [&str; 12] = [
    "name",
    "disk path",
    "disk serial",
    "kernel",
    "initrd",
    "cmdline",
    "chardev path",
    "fs dir",
    "fs tag",
    "smbios manufacturer",
    "ifname",
    "vnc listen",
];

/// XML text for element content and attribute values alike; newlines and tabs as character
/// references so attribute normalisation keeps them.
fn esc(s: &str) -> String {
    let mut o = String::new();
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '\'' => o.push_str("&apos;"),
            '"' => o.push_str("&quot;"),
            '\n' => o.push_str("&#10;"),
            '\t' => o.push_str("&#9;"),
            '\r' => o.push_str("&#13;"),
            c => o.push(c),
        }
    }
    o
}

fn domain_xml(v: &[String]) -> String {
    let e: Vec<String> = v.iter().map(|s| esc(s)).collect();
    format!(
        r#"<domain type='qemu'>
  <name>{name}</name>
  <uuid>c7a5fdbd-edaf-9455-926a-d65c16db1809</uuid>
  <memory unit='KiB'>219136</memory>
  <vcpu placement='static'>1</vcpu>
  <sysinfo type='smbios'>
    <system>
      <entry name='manufacturer'>{manu}</entry>
    </system>
  </sysinfo>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>{kernel}</kernel>
    <initrd>{initrd}</initrd>
    <cmdline>{cmdline}</cmdline>
    <smbios mode='sysinfo'/>
  </os>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='{disk}'/>
      <target dev='vda' bus='virtio'/>
      <serial>{serial}</serial>
    </disk>
    <filesystem type='mount' accessmode='passthrough'>
      <source dir='{fsdir}'/>
      <target dir='{fstag}'/>
    </filesystem>
    <interface type='ethernet'>
      <target dev='{ifname}'/>
      <model type='virtio'/>
    </interface>
    <serial type='unix'>
      <source mode='connect' path='{chr}'/>
      <target port='0'/>
    </serial>
    <graphics type='vnc' port='5900' autoport='no'>
      <listen type='address' address='{listen}'/>
    </graphics>
    <memballoon model='none'/>
  </devices>
</domain>
"#,
        name = e[0],
        disk = e[1],
        serial = e[2],
        kernel = e[3],
        initrd = e[4],
        cmdline = e[5],
        chr = e[6],
        fsdir = e[7],
        fstag = e[8],
        manu = e[9],
        ifname = e[10],
        listen = e[11],
    )
}

/// Harmless values, each unique so a substitution cannot hit another field's.
fn placeholders() -> Vec<String> {
    FIELDS
        .iter()
        .enumerate()
        .map(|(i, _)| {
            let p = format!("Pq{i}x");
            // Paths stay absolute.
            if matches!(i, 1 | 3 | 4 | 6 | 7) {
                format!("/{p}")
            } else {
                p
            }
        })
        .collect()
}

fn build(values: &[String]) -> Vec<String> {
    let (ext, body) = run_case("prop", "x86_64", &domain_xml(values), caps());
    assert_eq!(ext, "args", "values {values:?}: {body}");
    split(&body)
}

/// The words of the rendered command (libvirt's quoting undone).
fn split(body: &str) -> Vec<String> {
    domdriver::conformance::xml2argv::split_args_file(body)
}

/// The key QEMU gives a first element written without `key=`.
fn implied_key(opt: &str) -> &'static str {
    match opt {
        "-vnc" => "vnc",
        "-chardev" => "backend",
        "-fsdev" => "fsdriver",
        "-machine" => "type",
        "-netdev" => "type",
        "-name" => "guest",
        "-display" => "type",
        "-cpu" => "model",
        _ => "",
    }
}

/// An argument as QEMU reads it.
#[derive(Debug, PartialEq)]
enum Parsed {
    Json(Value),
    Kv(Vec<(String, String)>),
    Plain(String),
}

fn parse(opt: Option<&str>, arg: &str) -> Parsed {
    let json_opts = [
        "-device",
        "-blockdev",
        "-object",
        "-netdev",
        "-audiodev",
        "-chardev",
    ];
    if arg.starts_with('{') && opt.is_some_and(|o| json_opts.contains(&o)) {
        return Parsed::Json(serde_json::from_str(arg).expect("JSON argument"));
    }
    // Only the values of options that take key=value lists.
    let kv_opts = [
        "-name",
        "-machine",
        "-vnc",
        "-chardev",
        "-fsdev",
        "-netdev",
        "-smbios",
        "-boot",
        "-smp",
        "-cpu",
        "-display",
        "-overcommit",
        "-msg",
        "-rtc",
        "-sandbox",
        "-accel",
        "-global",
    ];
    match opt {
        Some(o) if kv_opts.contains(&o) => Parsed::Kv(
            domdriver::xml2argv::opts::parse_kv(arg)
                .into_iter()
                .enumerate()
                .map(|(i, part)| match part.split_once('=') {
                    Some((k, v)) => (k.to_string(), v.to_string()),
                    None if i == 0 => (implied_key(o).to_string(), part),
                    // A bare flag.
                    None => (part, String::new()),
                })
                .collect(),
        ),
        _ => Parsed::Plain(arg.to_string()),
    }
}

/// `text` with every placeholder replaced by its value.
fn subst(text: &str, from: &[String], to: &[String]) -> String {
    let mut out = text.to_string();
    // Longest first: `/Pq1x` must not be cut by `Pq1x`-like prefixes of other fields.
    let mut order: Vec<usize> = (0..from.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(from[i].len()));
    for i in order {
        out = out.replace(&from[i], &to[i]);
    }
    out
}

fn subst_parsed(p: Parsed, from: &[String], to: &[String]) -> Parsed {
    fn json(v: Value, from: &[String], to: &[String]) -> Value {
        match v {
            Value::String(s) => Value::String(subst(&s, from, to)),
            Value::Array(a) => Value::Array(a.into_iter().map(|x| json(x, from, to)).collect()),
            Value::Object(m) => {
                Value::Object(m.into_iter().map(|(k, x)| (k, json(x, from, to))).collect())
            }
            other => other,
        }
    }
    match p {
        Parsed::Json(v) => Parsed::Json(json(v, from, to)),
        Parsed::Kv(kv) => Parsed::Kv(
            kv.into_iter()
                .map(|(k, v)| (k, subst(&v, from, to)))
                .collect(),
        ),
        Parsed::Plain(s) => Parsed::Plain(subst(&s, from, to)),
    }
}

/// How a value appears where the builder decorates it (VNC wraps an address holding `:` in
/// brackets, as for IPv6; a disk serial has its spaces backslash-escaped, as libvirt's
/// qemuBuildDiskDeviceProps writes it).
fn as_rendered(values: &[String]) -> Vec<String> {
    let mut v = values.to_vec();
    v[2] = v[2].replace(' ', "\\ ");
    if v[11].contains(':') {
        v[11] = format!("[{}]", v[11]);
    }
    v
}

/// Text with the characters that break option strings, quoting and lines.
fn nasty() -> impl Strategy<Value = String> {
    let chars = prop::sample::select(vec![
        'a', 'b', 'Z', '0', ',', ',', '=', '=', ' ', '"', '\'', '\n', '\t', ':', '/', '\\', '{',
        '}', '[', ']', '$', '`', ';', '&', '<', '>', 'é', '日', '🦀', '\u{a0}',
    ]);
    prop::collection::vec(chars, 1..16).prop_map(|v| v.into_iter().collect())
}

fn check(values: Vec<String>) -> Result<(), TestCaseError> {
    let base = placeholders();
    let want = build(&base);
    let got = build(&values);
    prop_assert_eq!(
        got.len(),
        want.len(),
        "argument count changed:\n{:?}\nvs\n{:?}",
        got,
        want
    );
    let to = as_rendered(&values);
    let mut opt: Option<&str> = None;
    for (w, g) in want.iter().zip(&got) {
        let expected = subst_parsed(parse(opt, w), &base, &to);
        let parsed = parse(opt, g);
        prop_assert_eq!(&parsed, &expected, "after {:?}", opt);
        opt = w.starts_with('-').then_some(w.as_str());
    }
    // Every field reached the command line (the ifname excepted: the harness passes a
    // ready tap fd, as libvirt does, so QEMU never sees the name).
    for (i, p) in base.iter().enumerate() {
        if i == 10 {
            prop_assert!(!want.iter().any(|a| a.contains(p.as_str())));
            continue;
        }
        prop_assert!(
            want.iter().any(|a| a.contains(p.as_str())),
            "{} never reaches the argv",
            FIELDS[i]
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn user_text_never_changes_the_options(
        // libvirt refuses '/' in names; ours are trimmed like libvirt's whitespace-only check.
        name in nasty().prop_filter("a usable name", |s| !s.contains('/') && s.trim() == s && !s.is_empty()),
        fields in prop::collection::vec(nasty(), 11),
    ) {
        let mut values = vec![name];
        for (i, f) in fields.into_iter().enumerate() {
            // Paths are absolute, as libvirt wants them.
            values.push(if matches!(i + 1, 1 | 3 | 4 | 6 | 7) { format!("/{f}") } else { f });
        }
        check(values)?;
    }
}

/// The shapes that broke option strings before: a comma-separated key=value list in each
/// field, and an address that looks like `key=value`.
#[test]
fn known_nasty_values() {
    let v = |s: &str| s.to_string();
    check(vec![
        v("a,b=c"),
        v("/d,isk=x,,y"),
        v("s,n=1"),
        v("/k,=,"),
        v("/i ,"),
        v("console=ttyS0,115200 x=\"y z\""),
        v("/c,server=on"),
        v("/f,s=1"),
        v("t,a=g"),
        v("M,anu"),
        v("tap,0"),
        v("a=b"),
    ])
    .unwrap();
}

/// SMBIOS entry names become option keys: a name that is not an SMBIOS field is left out
/// rather than written as `-smbios type=1,NAME=VALUE`.
#[test]
fn smbios_entry_names_cannot_add_options() {
    let xml = domain_xml(&placeholders()).replace(
        "<entry name='manufacturer'>",
        "<entry name='uuid=x,type=0,vendor'>v</entry><entry name='manufacturer'>",
    );
    let (ext, body) = run_case("prop", "x86_64", &xml, caps());
    assert_eq!(ext, "args", "{body}");
    let args = split(&body);
    let smbios: Vec<&String> = args
        .windows(2)
        .filter(|w| w[0] == "-smbios")
        .map(|w| &w[1])
        .collect();
    assert_eq!(smbios, vec!["type=1,manufacturer=Pq9x"], "{body}");
}
