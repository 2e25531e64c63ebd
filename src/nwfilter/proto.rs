//! The protocols a rule may match and the attributes of each, in libvirt's order (which is
//! the order they are formatted in), with the data types each attribute accepts (libvirt:
//! the virXMLAttr2Struct tables of nwfilter_conf.c).

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::LazyLock;

// libvirt's attrDatatype bits; an attribute tries its types from the lowest bit up.
const U16: u32 = 1 << 0;
const U8: u32 = 1 << 1;
const U16_HEX: u32 = 1 << 2;
const U8_HEX: u32 = 1 << 3;
const MACADDR: u32 = 1 << 4;
const MACMASK: u32 = 1 << 5;
const IPADDR: u32 = 1 << 6;
const IPMASK: u32 = 1 << 7;
const STRING: u32 = 1 << 8;
const IPV6ADDR: u32 = 1 << 9;
const IPV6MASK: u32 = 1 << 10;
const STRINGCOPY: u32 = 1 << 11;
const BOOLEAN: u32 = 1 << 12;
const U32: u32 = 1 << 13;
const U32_HEX: u32 = 1 << 14;
const IPSETNAME: u32 = 1 << 15;
const IPSETFLAGS: u32 = 1 << 16;
const LAST: u32 = 1 << 17;

/// An attribute's own check and form beyond its data type (libvirt's validator and
/// formatter callbacks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Special {
    None,
    MacProtocol,
    VlanId,
    VlanEncap,
    ArpOpcode,
    IpProtocol,
    Dscp,
    State,
    TcpFlags,
    IpSet,
    IpSetFlags,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Attr {
    pub name: &'static str,
    types: u32,
    special: Special,
}

const fn at(name: &'static str, types: u32) -> Attr {
    Attr {
        name,
        types,
        special: Special::None,
    }
}

const fn sp(name: &'static str, types: u32, special: Special) -> Attr {
    Attr {
        name,
        types,
        special,
    }
}

/// What libvirt's virNWFilterRuleDefFixup does beyond copying negations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fixup {
    None,
    IpSet,
}

#[derive(Debug, PartialEq, Eq)]
pub(super) struct Protocol {
    pub id: &'static str,
    pub attrs: Vec<Attr>,
    /// `(a, b)`: attribute `a` takes `b`'s negation.
    pub neg_pairs: &'static [(&'static str, &'static str)],
    pub fixup: Fixup,
}

const COMMENT: Attr = at("comment", STRINGCOPY);
const MAX_COMMENT_LENGTH: usize = 256;
const MAX_IPSET_NAME_LENGTH: usize = 32;

fn mac_props() -> Vec<Attr> {
    vec![
        at("srcmacaddr", MACADDR),
        at("srcmacmask", MACMASK),
        at("dstmacaddr", MACADDR),
        at("dstmacmask", MACMASK),
    ]
}

/// libvirt's COMMON_IP_PROPS; note `dstipto` is an IPv4 address even for IPv6 protocols,
/// as in libvirt.
fn ip_props(addr: u32, mask: u32) -> Vec<Attr> {
    vec![
        at("srcmacaddr", MACADDR),
        at("srcipaddr", addr),
        at("srcipmask", mask),
        at("dstipaddr", addr),
        at("dstipmask", mask),
        at("srcipfrom", addr),
        at("srcipto", addr),
        at("dstipfrom", addr),
        at("dstipto", IPADDR),
        sp("dscp", U8 | U8_HEX, Special::Dscp),
        at("connlimit-above", U16),
        sp("state", STRING, Special::State),
        sp("ipset", IPSETNAME, Special::IpSet),
        sp("ipsetflags", IPSETFLAGS, Special::IpSetFlags),
    ]
}

fn port_props() -> Vec<Attr> {
    vec![
        at("srcportstart", U16 | U16_HEX),
        at("srcportend", U16 | U16_HEX),
        at("dstportstart", U16 | U16_HEX),
        at("dstportend", U16 | U16_HEX),
    ]
}

const MAC_NEG: &[(&str, &str)] = &[("srcmacmask", "srcmacaddr"), ("dstmacmask", "dstmacaddr")];
const IP_NEG: &[(&str, &str)] = &[
    ("srcipmask", "srcipaddr"),
    ("dstipmask", "dstipaddr"),
    ("srcipto", "srcipfrom"),
    ("dstipto", "dstipfrom"),
];
const PORT_NEG: &[(&str, &str)] = &[
    ("srcipmask", "srcipaddr"),
    ("dstipmask", "dstipaddr"),
    ("srcipto", "srcipfrom"),
    ("dstipto", "dstipfrom"),
    ("srcportend", "srcportstart"),
    ("dstportstart", "srcportstart"),
    ("dstportend", "srcportstart"),
];
const ICMP_NEG: &[(&str, &str)] = &[
    ("srcipmask", "srcipaddr"),
    ("dstipmask", "dstipaddr"),
    ("srcipto", "srcipfrom"),
    ("dstipto", "dstipfrom"),
    ("code", "type"),
];

fn cat(parts: Vec<Vec<Attr>>) -> Vec<Attr> {
    parts.into_iter().flatten().collect()
}

/// Every protocol, in libvirt's virAttr order (the first child element naming one of these
/// decides a rule's protocol).
pub(super) static PROTOCOLS: LazyLock<Vec<Protocol>> = LazyLock::new(|| {
    let arp = cat(vec![
        mac_props(),
        vec![
            at("hwtype", U16 | U16_HEX),
            at("protocoltype", U16 | U16_HEX),
            sp("opcode", U16 | U16_HEX | STRING, Special::ArpOpcode),
            at("arpsrcmacaddr", MACADDR),
            at("arpdstmacaddr", MACADDR),
            at("arpsrcipaddr", IPADDR),
            at("arpsrcipmask", IPMASK),
            at("arpdstipaddr", IPADDR),
            at("arpdstipmask", IPMASK),
            at("gratuitous", BOOLEAN),
            COMMENT,
        ],
    ]);
    let stp_pairs: Vec<Attr> = [
        ("type", U8 | U8_HEX),
        ("flags", U8 | U8_HEX),
        ("root-priority", U16 | U16_HEX),
        ("root-priority-hi", U16 | U16_HEX),
        ("root-address", MACADDR),
        ("root-address-mask", MACMASK),
        ("root-cost", U32 | U32_HEX),
        ("root-cost-hi", U32 | U32_HEX),
        ("sender-priority", U16 | U16_HEX),
        ("sender-priority-hi", U16 | U16_HEX),
        ("sender-address", MACADDR),
        ("sender-address-mask", MACMASK),
        ("port", U16 | U16_HEX),
        ("port-hi", U16 | U16_HEX),
        ("age", U16 | U16_HEX),
        ("age-hi", U16 | U16_HEX),
        ("max-age", U16 | U16_HEX),
        ("max-age-hi", U16 | U16_HEX),
        ("hello-time", U16 | U16_HEX),
        ("hello-time-hi", U16 | U16_HEX),
        ("forward-delay", U16 | U16_HEX),
        ("forward-delay-hi", U16 | U16_HEX),
    ]
    .into_iter()
    .map(|(n, t)| at(n, t))
    .collect();
    let ip_common = |addr, mask, v6: bool| {
        let mut v = cat(vec![
            mac_props(),
            vec![
                at("srcipaddr", addr),
                at("srcipmask", mask),
                at("dstipaddr", addr),
                at("dstipmask", mask),
                sp("protocol", STRING | U8 | U8_HEX, Special::IpProtocol),
            ],
            port_props(),
        ]);
        if v6 {
            v.extend([
                at("type", U8 | U8_HEX),
                at("typeend", U8 | U8_HEX),
                at("code", U8 | U8_HEX),
                at("codeend", U8 | U8_HEX),
            ]);
        } else {
            v.push(sp("dscp", U8 | U8_HEX, Special::Dscp));
        }
        v.push(COMMENT);
        v
    };
    let l4 = |addr, mask, extra: Vec<Attr>| cat(vec![ip_props(addr, mask), extra, vec![COMMENT]]);
    let icmp_extra = || vec![at("type", U8 | U8_HEX), at("code", U8 | U8_HEX)];
    let (v4, m4, v6, m6) = (IPADDR, IPMASK, IPV6ADDR, IPV6MASK);
    let p = |id, attrs, neg_pairs, fixup| Protocol {
        id,
        attrs,
        neg_pairs,
        fixup,
    };
    vec![
        p("arp", arp.clone(), &[], Fixup::None),
        p("rarp", arp, &[], Fixup::None),
        p(
            "mac",
            cat(vec![
                mac_props(),
                vec![
                    sp("protocolid", U16 | U16_HEX | STRING, Special::MacProtocol),
                    COMMENT,
                ],
            ]),
            MAC_NEG,
            Fixup::None,
        ),
        p(
            "vlan",
            cat(vec![
                mac_props(),
                vec![
                    sp("vlanid", U16 | U16_HEX, Special::VlanId),
                    sp("encap-protocol", U16 | U16_HEX | STRING, Special::VlanEncap),
                    COMMENT,
                ],
            ]),
            MAC_NEG,
            Fixup::None,
        ),
        p(
            "stp",
            cat(vec![
                vec![at("srcmacaddr", MACADDR), at("srcmacmask", MACMASK)],
                stp_pairs,
                vec![COMMENT],
            ]),
            &[
                ("srcmacmask", "srcmacaddr"),
                ("root-priority-hi", "root-priority"),
                ("root-address-mask", "root-address"),
                ("root-cost-hi", "root-cost"),
                ("sender-priority-hi", "sender-priority"),
                ("sender-address-mask", "sender-address"),
                ("port-hi", "port"),
                ("age-hi", "age"),
                ("max-age-hi", "max-age"),
                ("hello-time-hi", "hello-time"),
                ("forward-delay-hi", "forward-delay"),
            ],
            Fixup::None,
        ),
        p(
            "ip",
            ip_common(v4, m4, false),
            &[("srcipmask", "srcipaddr"), ("dstipmask", "dstipaddr")],
            Fixup::IpSet,
        ),
        p(
            "ipv6",
            ip_common(v6, m6, true),
            &[
                ("srcipmask", "srcipaddr"),
                ("dstipmask", "dstipaddr"),
                ("typeend", "type"),
                ("code", "type"),
                ("codeend", "type"),
            ],
            Fixup::IpSet,
        ),
        p(
            "tcp",
            l4(
                v4,
                m4,
                cat(vec![
                    port_props(),
                    vec![
                        at("option", U8 | U8_HEX),
                        sp("flags", STRING, Special::TcpFlags),
                    ],
                ]),
            ),
            PORT_NEG,
            Fixup::IpSet,
        ),
        p("udp", l4(v4, m4, port_props()), PORT_NEG, Fixup::IpSet),
        p("udplite", l4(v4, m4, vec![]), IP_NEG, Fixup::IpSet),
        p("esp", l4(v4, m4, vec![]), IP_NEG, Fixup::IpSet),
        p("ah", l4(v4, m4, vec![]), IP_NEG, Fixup::IpSet),
        p("sctp", l4(v4, m4, port_props()), PORT_NEG, Fixup::IpSet),
        p("icmp", l4(v4, m4, icmp_extra()), ICMP_NEG, Fixup::IpSet),
        p("all", l4(v4, m4, vec![]), IP_NEG, Fixup::None),
        p("igmp", l4(v4, m4, vec![]), IP_NEG, Fixup::IpSet),
        p(
            "tcp-ipv6",
            l4(
                v6,
                m6,
                cat(vec![port_props(), vec![at("option", U8 | U8_HEX)]]),
            ),
            PORT_NEG,
            Fixup::IpSet,
        ),
        p("udp-ipv6", l4(v6, m6, port_props()), PORT_NEG, Fixup::IpSet),
        p("udplite-ipv6", l4(v6, m6, vec![]), IP_NEG, Fixup::IpSet),
        p("esp-ipv6", l4(v6, m6, vec![]), IP_NEG, Fixup::IpSet),
        p("ah-ipv6", l4(v6, m6, vec![]), IP_NEG, Fixup::IpSet),
        p(
            "sctp-ipv6",
            l4(v6, m6, port_props()),
            PORT_NEG,
            Fixup::IpSet,
        ),
        p("icmpv6", l4(v6, m6, icmp_extra()), ICMP_NEG, Fixup::IpSet),
        p("all-ipv6", l4(v6, m6, vec![]), IP_NEG, Fixup::None),
    ]
});

const MAC_PROTO_MAP: &[(u32, &str)] = &[
    (0x0806, "arp"),
    (0x8035, "rarp"),
    (0x0800, "ipv4"),
    (0x86DD, "ipv6"),
    (0x8100, "vlan"),
];

const ARP_OPCODE_MAP: &[(u32, &str)] = &[
    (1, "Request"),
    (2, "Reply"),
    (3, "Request_Reverse"),
    (4, "Reply_Reverse"),
    (5, "DRARP_Request"),
    (6, "DRARP_Reply"),
    (7, "DRARP_Error"),
    (8, "InARP_Request"),
    (9, "ARP_NAK"),
];

const IP_PROTO_MAP: &[(u32, &str)] = &[
    (6, "tcp"),
    (17, "udp"),
    (136, "udplite"),
    (50, "esp"),
    (51, "ah"),
    (1, "icmp"),
    (2, "igmp"),
    (132, "sctp"),
    (58, "icmpv6"),
];

const STATE_MAP: &[(u32, &str)] = &[
    (1 << 1, "NEW"),
    (1 << 2, "ESTABLISHED"),
    (1 << 3, "RELATED"),
    (1 << 4, "INVALID"),
    (1 << 5, "NONE"),
];
const STATE_NONE: u32 = 1 << 5;

const TCP_FLAGS: &[(u32, &str)] = &[
    (0x1, "FIN"),
    (0x2, "SYN"),
    (0x4, "RST"),
    (0x8, "PSH"),
    (0x10, "ACK"),
    (0x20, "URG"),
    (0x3F, "ALL"),
    (0x0, "NONE"),
];

fn by_name(map: &[(u32, &str)], s: &str) -> Option<u32> {
    map.iter()
        .find(|(_, n)| n.eq_ignore_ascii_case(s))
        .map(|(v, _)| *v)
}

fn by_value(map: &[(u32, &'static str)], v: u32) -> Option<&'static str> {
    map.iter().find(|(n, _)| *n == v).map(|(_, s)| *s)
}

/// libvirt's virStrToLong_ui without an end pointer: leading blanks and a sign allowed, a
/// `0x` prefix in base 16, a negative number wrapping ("-1" is UINT_MAX), nothing after.
fn str_to_ui(s: &str, base: u32) -> Option<u32> {
    let s = s.trim_start_matches(|c: char| c.is_ascii_whitespace());
    let (neg, s) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let s = if base == 16 {
        s.strip_prefix("0x")
            .or_else(|| s.strip_prefix("0X"))
            .filter(|r| r.starts_with(|c: char| c.is_ascii_hexdigit()))
            .unwrap_or(s)
    } else {
        s
    };
    if s.is_empty() || !s.chars().all(|c| c.is_digit(base)) {
        return None;
    }
    let v = u64::from_str_radix(s, base).ok()?;
    if v > u64::from(u32::MAX) {
        return None;
    }
    Some(if neg {
        (v as u32).wrapping_neg()
    } else {
        v as u32
    })
}

/// C's strtoul with base 0, the whole string: `0x` hex, leading-zero octal, else decimal.
fn c_number(s: &str) -> Option<u64> {
    let (digits, radix) = if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        (h, 16)
    } else if s.len() > 1 && s.starts_with('0') {
        (&s[1..], 8)
    } else {
        (s, 10)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    u64::from_str_radix(digits, radix).ok()
}

/// An IPv4 address as getaddrinfo's numeric parser (inet_aton) takes it: one to four parts,
/// each decimal, octal or hex, the last filling the remaining bytes.
pub(super) fn parse_ipv4(s: &str) -> Option<Ipv4Addr> {
    let parts: Vec<&str> = s.split('.').collect();
    if parts.is_empty() || parts.len() > 4 {
        return None;
    }
    let nums: Vec<u64> = parts.iter().map(|p| c_number(p)).collect::<Option<_>>()?;
    let (head, last) = nums.split_at(nums.len() - 1);
    if head.iter().any(|n| *n > 0xff) {
        return None;
    }
    let last_bits = 8 * (4 - head.len() as u32);
    if last[0] >= 1u64 << last_bits {
        return None;
    }
    let mut v: u32 = 0;
    for (i, n) in head.iter().enumerate() {
        v |= (*n as u32) << (24 - 8 * i);
    }
    v |= last[0] as u32;
    Some(Ipv4Addr::from(v))
}

/// The prefix length of a netmask, `None` when its ones are not contiguous.
fn mask_bits(bytes: &[u8]) -> Option<u32> {
    let ones: u32 = bytes.iter().map(|b| b.count_ones()).sum();
    let contiguous = bytes.iter().enumerate().all(|(i, b)| {
        let want_ones = ones.saturating_sub(8 * i as u32).min(8);
        let want = if want_ones == 0 {
            0
        } else {
            0xffu8 << (8 - want_ones)
        };
        *b == want
    });
    contiguous.then_some(ones)
}

/// libvirt's virMacAddrParse: six parts of one or two hex digits.
pub(crate) fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut rest = s;
    for (i, o) in out.iter_mut().enumerate() {
        let n = rest.chars().take_while(|c| c.is_ascii_hexdigit()).count();
        if !(1..=2).contains(&n) {
            return None;
        }
        *o = u8::from_str_radix(&rest[..n], 16).ok()?;
        rest = &rest[n..];
        if i == 5 {
            return rest.bytes().next().is_none_or(|b| b <= b' ').then_some(out);
        }
        rest = rest.strip_prefix(':')?;
    }
    None
}

pub(crate) fn format_mac(m: &[u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// libvirt's parseStringItems: names (prefix-matched, any case) separated by `sep` or
/// blanks.
fn string_items(map: &[(u32, &str)], input: &str, sep: char) -> Option<u32> {
    let mut flags = 0;
    let mut rest = input;
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_ascii_whitespace() || c == sep);
        if rest.is_empty() {
            return Some(flags);
        }
        let (v, n) = map.iter().find(|(_, n)| {
            rest.len() >= n.len() && rest.as_bytes()[..n.len()].eq_ignore_ascii_case(n.as_bytes())
        })?;
        flags |= v;
        rest = &rest[n.len()..];
    }
}

/// libvirt's printStringItems: the names of the set bits, lowest first.
fn print_items(map: &[(u32, &'static str)], flags: u32, sep: &str) -> String {
    (0..32)
        .map(|b| 1u32 << b)
        .filter(|m| flags & m != 0)
        .filter_map(|m| by_value(map, m))
        .collect::<Vec<_>>()
        .join(sep)
}

fn print_tcp_flags(f: u32) -> String {
    match f {
        0 => "NONE".into(),
        0x3f => "ALL".into(),
        f => print_items(TCP_FLAGS, f, ","),
    }
}

/// A variable reference `NAME`, `NAME[@ITER]` or `NAME[INDEX]` (libvirt:
/// virNWFilterVarAccessParse), formatted as libvirt prints it back.
fn parse_var(s: &str) -> Option<String> {
    let n = s.chars().take_while(|c| is_var_char(*c)).count();
    let (name, rest) = s.split_at(n);
    if rest.is_empty() {
        return Some(name.to_string());
    }
    let inner = rest.strip_prefix('[')?.trim_start();
    let (iter, inner) = match inner.strip_prefix('@') {
        Some(r) => (true, r),
        None => (false, inner),
    };
    let digits = inner.chars().take_while(char::is_ascii_digit).count();
    let num: u32 = inner[..digits].parse().ok()?;
    if !inner[digits..].trim_start().starts_with(']') {
        return None;
    }
    if iter {
        if num > 1000 {
            return None;
        }
        Some(if num == 0 {
            name.to_string()
        } else {
            format!("{name}[@{num}]")
        })
    } else {
        Some(format!("{name}[{num}]"))
    }
}

fn is_var_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// A value parsed by one data type.
enum Val {
    Num(u32),
    Mask(u32),
    Ip4(Ipv4Addr),
    Ip6(Ipv6Addr),
    Mac([u8; 6]),
    Str(String),
    Bool(bool),
}

/// Parse one data type, as libvirt's virNWFilterRuleDetailsParse switch does.
fn parse_as(dt: u32, prop: &str) -> Option<Val> {
    match dt {
        U8 | U8_HEX => str_to_ui(prop, if dt == U8 { 10 } else { 16 })
            .filter(|v| *v <= 0xff)
            .map(Val::Num),
        U16 | U16_HEX => str_to_ui(prop, if dt == U16 { 10 } else { 16 })
            .filter(|v| *v <= 0xffff)
            .map(Val::Num),
        U32 | U32_HEX => str_to_ui(prop, if dt == U32 { 10 } else { 16 }).map(Val::Num),
        IPADDR => parse_ipv4(prop).map(Val::Ip4),
        IPV6ADDR => prop.parse::<Ipv6Addr>().ok().map(Val::Ip6),
        IPMASK | IPV6MASK => {
            let max = if dt == IPMASK { 32 } else { 128 };
            match str_to_ui(prop, 10) {
                Some(v) => (v <= max).then_some(Val::Mask(v)),
                None if dt == IPMASK => mask_bits(&parse_ipv4(prop)?.octets()).map(Val::Mask),
                None => mask_bits(&prop.parse::<Ipv6Addr>().ok()?.octets()).map(Val::Mask),
            }
        }
        MACADDR | MACMASK => parse_mac(prop).map(Val::Mac),
        STRING | IPSETNAME | IPSETFLAGS => Some(Val::Str(prop.to_string())),
        STRINGCOPY => {
            let mut end = prop.len().min(MAX_COMMENT_LENGTH);
            while !prop.is_char_boundary(end) {
                end -= 1;
            }
            Some(Val::Str(prop[..end].to_string()))
        }
        BOOLEAN => Some(Val::Bool(matches!(prop, "true" | "1" | "yes"))),
        _ => None,
    }
}

/// The value of attribute `a` given as `prop`, in the form libvirt formats it, and its
/// number where it has one; `None` when libvirt refuses it ("A has illegal value P").
pub(super) fn parse_value(a: &Attr, prop: &str) -> Option<(String, Option<u32>)> {
    if let Some(var) = prop.strip_prefix('$') {
        return parse_var(var).map(|v| (format!("${v}"), None));
    }
    let mut remaining = a.types;
    let mut dt = 1;
    let mut parsed = None;
    while dt < LAST {
        if remaining & dt != 0 {
            remaining ^= dt;
            if let Some(v) = parse_as(dt, prop) {
                parsed = Some((dt, v));
                break;
            }
            if remaining == 0 {
                return None;
            }
        }
        dt <<= 1;
    }
    let (dt, val) = parsed?;
    let num = match &val {
        Val::Num(n) => Some(*n),
        _ => None,
    };
    let proto_form = |map: &[(u32, &'static str)], v: u32, decimal: bool| {
        by_value(map, v).map_or_else(
            || {
                if decimal {
                    format!("{v}")
                } else {
                    format!("0x{v:x}")
                }
            },
            str::to_string,
        )
    };
    let text = match (a.special, val) {
        (Special::MacProtocol | Special::VlanEncap, Val::Str(s)) => {
            let v = by_name(MAC_PROTO_MAP, &s)?;
            return Some((proto_form(MAC_PROTO_MAP, v, true), Some(v)));
        }
        (Special::MacProtocol | Special::VlanEncap, Val::Num(v)) => {
            let min = if a.special == Special::MacProtocol {
                0x600
            } else {
                0x3c
            };
            if v < min {
                return None;
            }
            proto_form(MAC_PROTO_MAP, v, dt == U16)
        }
        (Special::VlanId, Val::Num(v)) => {
            if v > 4095 {
                return None;
            }
            default_form(dt, v)
        }
        (Special::ArpOpcode, Val::Str(s)) => {
            let v = by_name(ARP_OPCODE_MAP, &s)?;
            return Some((proto_form(ARP_OPCODE_MAP, v, true), Some(v)));
        }
        (Special::ArpOpcode, Val::Num(v)) => proto_form(ARP_OPCODE_MAP, v, true),
        (Special::IpProtocol, Val::Str(s)) => {
            let v = by_name(IP_PROTO_MAP, &s)?;
            return Some((proto_form(IP_PROTO_MAP, v, false), Some(v)));
        }
        (Special::IpProtocol, Val::Num(v)) => proto_form(IP_PROTO_MAP, v, dt == U8),
        (Special::Dscp, Val::Num(v)) => {
            if v > 63 {
                return None;
            }
            default_form(dt, v)
        }
        (Special::State, Val::Str(s)) => {
            let mut f = string_items(STATE_MAP, &s, ',')?;
            if f & STATE_NONE != 0 {
                f = STATE_NONE;
            }
            print_items(STATE_MAP, f, ",")
        }
        (Special::TcpFlags, Val::Str(s)) => {
            let (m, f) = s.split_once('/')?;
            let m = string_items(TCP_FLAGS, m, ',')? & 0x3f;
            let f = string_items(TCP_FLAGS, f, ',')? & 0x3f;
            format!("{}/{}", print_tcp_flags(m), print_tcp_flags(f))
        }
        (Special::IpSet, Val::Str(s)) => {
            let valid = |c: char| c.is_ascii_alphanumeric() || "_.:-+ ".contains(c);
            if s.len() >= MAX_IPSET_NAME_LENGTH || !s.chars().all(valid) {
                return None;
            }
            s
        }
        (Special::IpSetFlags, Val::Str(s)) => ipset_flags(&s)?,
        (Special::None, Val::Num(v)) => default_form(dt, v),
        (_, Val::Mask(m)) => m.to_string(),
        (_, Val::Ip4(ip)) => ip.to_string(),
        (_, Val::Ip6(ip)) => ip.to_string(),
        (_, Val::Mac(m)) => {
            if dt == MACMASK && mask_bits(&m).is_none() {
                return None;
            }
            format_mac(&m)
        }
        (_, Val::Bool(b)) => b.to_string(),
        (Special::None, Val::Str(s)) if dt == STRINGCOPY => s,
        // A string type without a validator is not supported (libvirt: "not supported").
        _ => return None,
    };
    Some((text, num))
}

fn default_form(dt: u32, v: u32) -> String {
    match dt {
        U8_HEX | U16_HEX | U32_HEX => format!("0x{v:x}"),
        _ => v.to_string(),
    }
}

/// libvirt's ipsetFlagsValidator and formatter: up to six `src`/`dst`, comma-separated.
fn ipset_flags(s: &str) -> Option<String> {
    let mut out = Vec::new();
    let mut rest = s;
    while out.len() < 6 {
        let w = rest.get(..3)?;
        if w.eq_ignore_ascii_case("src") {
            out.push("src");
        } else if w.eq_ignore_ascii_case("dst") {
            out.push("dst");
        } else {
            return None;
        }
        rest = &rest[3..];
        match rest.strip_prefix(',') {
            Some(r) => rest = r,
            None => break,
        }
    }
    rest.is_empty().then(|| out.join(","))
}
