use super::binding::BindingDef;
use super::*;

use crate::test_data::libvirt_tests_dir as testdir;

/// libvirt's nwfilterxml2xmltest: each input formats as its output; an `-invalid` input
/// may instead fail to parse (libvirt's own parser refuses most of them), except
/// `quirks-invalid`, which libvirt parses.
#[test]
fn libvirt_nwfilterxml2xml() {
    let (Some(inp), Some(out)) = (testdir("nwfilterxml2xmlin"), testdir("nwfilterxml2xmlout"))
    else {
        return;
    };
    let mut checked = 0;
    let mut failures = Vec::new();
    for e in std::fs::read_dir(&inp).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        let xml = std::fs::read_to_string(e.path()).unwrap();
        let may_fail = name.ends_with("-invalid.xml") && name != "quirks-invalid.xml";
        let want_file = if name == "quirks-invalid.xml" {
            name.clone()
        } else {
            name.replace("-invalid", "")
        };
        let want = std::fs::read_to_string(out.join(&want_file)).unwrap();
        match FilterDef::parse(&xml) {
            Ok(def) => {
                if def.to_xml() != want {
                    failures.push(format!("{name}:\n{}\nwant:\n{want}", def.to_xml()));
                }
            }
            Err(err) if may_fail => {
                assert!(
                    err.to_string().contains("has illegal value")
                        || err.to_string().contains("requires protocol")
                        || err.to_string().contains("chain"),
                    "{name}: {err}"
                );
            }
            Err(err) => failures.push(format!("{name}: {err}")),
        }
        checked += 1;
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(checked >= 42, "{checked}");
}

/// libvirt's virnwfilterbindingxml2xmltest: each document formats back to itself.
#[test]
fn libvirt_binding_round_trips() {
    let Some(dir) = testdir("virnwfilterbindingxml2xmldata") else {
        return;
    };
    for e in std::fs::read_dir(&dir).unwrap().flatten() {
        let xml = std::fs::read_to_string(e.path()).unwrap();
        let b = BindingDef::parse(&xml).unwrap_or_else(|err| panic!("{:?}: {err}", e.path()));
        assert_eq!(b.to_xml(), xml, "{:?}", e.path());
    }
}

const UUID: &str = "5c6d49af-b071-6127-b4ec-6f8ed4b55335";

fn one_rule(rule: &str) -> Result<String, NwfilterError> {
    FilterDef::parse(&format!(
        "<filter name='f'><uuid>{UUID}</uuid>{rule}</filter>"
    ))
    .map(|d| d.to_xml())
}

#[test]
fn values_are_normalized_like_libvirt() {
    let out = one_rule(
        "<rule action='accept' direction='out'><tcp srcmacaddr='1:2:3:4:5:6' dstipaddr='10.1.2.3' dstipmask='255.255.255.0' dscp='0x10' srcportstart='0x50' state='new,established' flags='SYN,ACK/ALL'/></rule>",
    )
    .unwrap();
    assert!(
        out.contains("<tcp srcmacaddr='01:02:03:04:05:06' dstipaddr='10.1.2.3' dstipmask='24' dscp='0x10' state='NEW,ESTABLISHED' srcportstart='0x50' flags='SYN,ACK/ALL'/>"),
        "{out}"
    );
    let out = one_rule("<rule action='drop' direction='in' priority='2000'><ip protocol='6' srcportstart='22'/></rule>").unwrap();
    assert!(
        out.contains("<rule action='drop' direction='in' priority='500'>"),
        "{out}"
    );
    assert!(
        out.contains("<ip protocol='tcp' srcportstart='22'/>"),
        "{out}"
    );
    let out = one_rule("<rule action='accept' direction='inout'><mac protocolid='0x0800'/></rule><rule action='accept' direction='inout'/>").unwrap();
    assert!(out.contains("<mac protocolid='ipv4'/>"), "{out}");
    assert!(
        out.contains("<rule action='accept' direction='inout' priority='500'/>"),
        "{out}"
    );
}

#[test]
fn bad_filters_are_worded_like_libvirt() {
    let cases = [
        ("<filter/>", "internal error: filter has no name"),
        (
            "<network name='x'/>",
            "XML error: expecting root element of 'filter', not 'network'",
        ),
        (
            "<filter name='f' chain='bogus'/>",
            "invalid argument: Invalid chain name 'bogus'. Please use a chain name called 'root' or any of the following prefixes: mac, vlan, stp, arp, rarp, ipv4, ipv6",
        ),
        (
            "<filter name='f' chain='ipv4-much-too-long'/>",
            "invalid argument: Name of chain is longer than 12 characters",
        ),
        (
            "<filter name='f' chain='mac' priority='x'/>",
            "invalid argument: Could not parse chain priority 'x'",
        ),
        (
            "<filter name='f' chain='mac' priority='-1001'/>",
            "invalid argument: Priority '-1001' is outside valid range of [-1000,1000]",
        ),
        (
            "<filter name='f'><uuid>zz</uuid></filter>",
            "XML error: malformed uuid element",
        ),
        (
            "<filter name='f'><rule direction='in'/></filter>",
            "XML error: Missing required attribute 'action' in element 'rule'",
        ),
        (
            "<filter name='f'><rule action='allow' direction='in'/></filter>",
            "XML error: Invalid value for attribute 'action' in element 'rule': 'allow'.",
        ),
        (
            "<filter name='f'><rule action='drop' direction='in'><tcp srcportstart='65536'/></rule></filter>",
            "internal error: srcportstart has illegal value 65536",
        ),
        (
            "<filter name='f'><rule action='drop' direction='in'><ip srcportstart='22'/></rule></filter>",
            "internal error: IP rule with port specification requires protocol specification with protocol to be either one of tcp(6), udp(17), dccp(33), or sctp(132)",
        ),
        (
            "<filter name='f'><rule action='drop' direction='in'><mac srcmacmask='ff:00:ff:00:00:00'/></rule></filter>",
            "internal error: srcmacmask has illegal value ff:00:ff:00:00:00",
        ),
        (
            "<filter name='f'><filterref/></filter>",
            "XML error: Missing required attribute 'filter' in element 'filterref'",
        ),
        (
            "<filter name='f' chain='rootx'/>",
            "An error occurred, but the cause is unknown",
        ),
    ];
    for (xml, want) in cases {
        assert_eq!(
            FilterDef::parse(xml).unwrap_err().to_string(),
            want,
            "{xml}"
        );
    }
    // Without a chain a priority is checked but not kept.
    let d = FilterDef::parse("<filter name='f' priority='-300'/>").unwrap();
    assert_eq!((d.chain.as_str(), d.chain_priority), ("root", 0));
    assert!(!d.uuid_specified);
    let d = FilterDef::parse("<filter name='f' chain='arp-x'/>").unwrap();
    assert_eq!(d.chain_priority, -500);
}

#[test]
fn bad_bindings_are_worded_like_libvirt() {
    let full = "<filterbinding><owner><name>vm</name><uuid>d54df46f-1ab5-4a22-8618-4560ef5fac2c</uuid></owner><portdev name='vnet0'/><mac address='52:54:00:7b:35:93'/><filterref filter='clean-traffic'/></filterbinding>";
    let b = BindingDef::parse(full).unwrap();
    assert_eq!(BindingDef::parse(&b.to_xml()).unwrap(), b);
    for (from, to, want) in [
        (
            "<portdev name='vnet0'/>",
            "",
            "filter binding has no port dev name",
        ),
        ("<name>vm</name>", "", "filter binding has no owner name"),
        (
            "<uuid>d54df46f-1ab5-4a22-8618-4560ef5fac2c</uuid>",
            "",
            "filter binding has no owner UUID",
        ),
        (
            "d54df46f-1ab5-4a22-8618-4560ef5fac2c",
            "nope",
            "Unable to parse UUID 'nope'",
        ),
        (
            "<mac address='52:54:00:7b:35:93'/>",
            "",
            "filter binding has no MAC address",
        ),
        (
            "52:54:00:7b:35:93",
            "52:54:00:7b:35",
            "Unable to parse MAC '52:54:00:7b:35'",
        ),
        (
            "<filterref filter='clean-traffic'/>",
            "",
            "filter binding has no filter reference",
        ),
        (
            "<portdev name='vnet0'/>",
            "<portdev name='vnet0'/><linkdev/>",
            "filter binding has no link dev name",
        ),
    ] {
        let xml = full.replace(from, to);
        assert_eq!(
            BindingDef::parse(&xml).unwrap_err().to_string(),
            format!("internal error: {want}"),
            "{xml}"
        );
    }
}
