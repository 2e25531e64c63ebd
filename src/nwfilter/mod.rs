//! Network filters: the `<filter>` document (libvirt: src/conf/nwfilter_conf.c) and the
//! `<filterbinding>` document ([`binding`]), parsed and formatted as libvirt does, quirks
//! included: each rule attribute is tried against its data types in libvirt's order, its
//! value normalized the way libvirt stores it (masks as prefix lengths, MACs zero-padded,
//! protocol numbers as names), and a rule's negation copied between paired attributes.
//! Pure: storing and using filters is the driver's ([`crate::driver::nwfilter`]).
//!
//! Filters are stored and validated; applying them to guest traffic (ebtables/iptables on
//! the guest's tap) is not done yet.

pub mod binding;
mod proto;

use std::collections::BTreeMap;

use crate::domain::DomainError;
use crate::domain::xml::{XmlNode, parse_document};
use crate::xmlfmt::XmlWriter;

use proto::{Attr, Fixup, PROTOCOLS, Protocol};

/// Errors of the filter documents, with libvirt's error classes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NwfilterError {
    /// VIR_ERR_XML_ERROR (and the document not parsing at all).
    #[error("{0}")]
    Xml(String),
    /// VIR_ERR_INTERNAL_ERROR.
    #[error("internal error: {0}")]
    Internal(String),
    /// VIR_ERR_INVALID_ARG.
    #[error("invalid argument: {0}")]
    InvalidArg(String),
    /// A failure libvirt reports without a message (a chain named `root...`).
    #[error("An error occurred, but the cause is unknown")]
    Unknown,
}

fn xml_err(m: impl std::fmt::Display) -> NwfilterError {
    NwfilterError::Xml(format!("XML error: {m}"))
}

fn parse_root(xml: &str, root_name: &str) -> Result<XmlNode, NwfilterError> {
    let root = parse_document(xml).map_err(|e: DomainError| NwfilterError::Xml(e.to_string()))?;
    if root.name != root_name {
        return Err(xml_err(format!(
            "expecting root element of '{root_name}', not '{}'",
            root.name
        )));
    }
    Ok(root)
}

/// Whether `s` is a MAC address as libvirt's virMacAddrParse takes it.
pub fn is_mac(s: &str) -> bool {
    proto::parse_mac(s).is_some()
}

/// libvirt's VALID_VARNAME.
fn is_var_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// `<parameter name value>` children of a `<filterref>` (libvirt:
/// virNWFilterParseParamAttributes): a name may repeat, giving a list; invalid ones are
/// skipped. Formatted sorted by name, as libvirt's hash table is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params(pub BTreeMap<String, Vec<String>>);

impl Params {
    pub fn parse(node: &XmlNode) -> Params {
        let mut p = Params::default();
        for c in node.children.iter().filter(|c| c.name == "parameter") {
            let (Some(n), Some(v)) = (c.attr("name"), c.attr("value")) else {
                continue;
            };
            let valid_name = n.chars().all(is_var_name_char);
            let valid_value = !v.is_empty()
                && v.chars()
                    .all(|c| is_var_name_char(c) || c == '.' || c == ':');
            if valid_name && valid_value {
                p.0.entry(n.to_string()).or_default().push(v.to_string());
            }
        }
        p
    }

    /// `<filterref filter='F'>` with the parameters (libvirt:
    /// virNWFilterFormatParamAttributes).
    pub fn format(&self, w: &mut XmlWriter, filter: &str) {
        if self.0.is_empty() {
            w.elem("filterref").attr("filter", filter).empty();
            return;
        }
        w.elem("filterref").attr("filter", filter).open();
        for (k, vs) in &self.0 {
            for v in vs {
                w.elem("parameter").attr("name", k).attr("value", v).empty();
            }
        }
        w.close();
    }
}

/// A rule's action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Drop,
    Accept,
    Reject,
    Return,
    Continue,
}

const ACTIONS: &[(&str, Action)] = &[
    ("drop", Action::Drop),
    ("accept", Action::Accept),
    ("reject", Action::Reject),
    ("return", Action::Return),
    ("continue", Action::Continue),
];

/// A rule's direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    In,
    Out,
    InOut,
}

const DIRECTIONS: &[(&str, Direction)] = &[
    ("in", Direction::In),
    ("out", Direction::Out),
    ("inout", Direction::InOut),
];

fn enum_attr<T: Copy>(node: &XmlNode, attr: &str, table: &[(&str, T)]) -> Result<T, NwfilterError> {
    let Some(v) = node.attr(attr) else {
        return Err(xml_err(format!(
            "Missing required attribute '{attr}' in element '{}'",
            node.name
        )));
    };
    table
        .iter()
        .find(|(n, _)| *n == v)
        .map(|(_, t)| *t)
        .ok_or_else(|| {
            xml_err(format!(
                "Invalid value for attribute '{attr}' in element '{}': '{v}'.",
                node.name
            ))
        })
}

/// One attribute of a rule as libvirt stores it: present or not, negated or not, and its
/// value already in the form libvirt formats.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Item {
    exists: bool,
    neg: bool,
    text: String,
    /// The number, for the checks that need one (the IP protocol).
    num: Option<u32>,
}

/// A `<rule>` (libvirt: virNWFilterRuleDef).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub action: Action,
    pub direction: Direction,
    pub priority: i32,
    pub statematch: bool,
    /// `None`: a rule without a protocol element.
    protocol: Option<&'static Protocol>,
    /// One per attribute of the protocol's table.
    items: Vec<Item>,
}

const MIN_RULE_PRIORITY: i32 = -1000;
const MAX_RULE_PRIORITY: i32 = 1000;

impl Rule {
    pub fn protocol_name(&self) -> Option<&'static str> {
        self.protocol.map(|p| p.id)
    }

    /// libvirt: virNWFilterRuleParse.
    fn parse(node: &XmlNode) -> Result<Rule, NwfilterError> {
        let action = enum_attr(node, "action", ACTIONS)?;
        let direction = enum_attr(node, "direction", DIRECTIONS)?;
        let mut priority = match node.attr("priority") {
            None => MAX_RULE_PRIORITY / 2,
            Some(p) => p.parse::<i32>().map_err(|_| {
                xml_err(format!(
                    "Invalid value for attribute 'priority' in element 'rule': '{p}'. Expected integer value"
                ))
            })?,
        };
        if !(MIN_RULE_PRIORITY..=MAX_RULE_PRIORITY).contains(&priority) {
            priority = MAX_RULE_PRIORITY / 2;
        }
        let statematch = !matches!(node.attr("statematch"), Some(s) if s == "0" || s.eq_ignore_ascii_case("false"));
        // The first child naming a protocol decides; only children of that name count.
        let protocol = node
            .children
            .iter()
            .find_map(|c| PROTOCOLS.iter().find(|p| p.id == c.name));
        let mut rule = Rule {
            action,
            direction,
            priority,
            statematch,
            protocol,
            items: vec![Item::default(); protocol.map_or(0, |p| p.attrs.len())],
        };
        if let Some(p) = protocol {
            for c in node.children.iter().filter(|c| c.name == p.id) {
                rule.parse_details(c, p)?;
            }
            rule.validate(p)?;
            rule.fixup(p);
        }
        Ok(rule)
    }

    /// libvirt: virNWFilterRuleDetailsParse. A later element overrides what an earlier one
    /// set; `match='no'` negates every attribute of its element.
    fn parse_details(&mut self, node: &XmlNode, p: &Protocol) -> Result<(), NwfilterError> {
        let neg = node.attr("match") == Some("no");
        let mut err = None;
        for (i, a) in p.attrs.iter().enumerate() {
            let Some(prop) = node.attr(a.name) else {
                continue;
            };
            match proto::parse_value(a, prop) {
                Some((text, num)) => {
                    self.items[i] = Item {
                        exists: true,
                        neg,
                        text,
                        num,
                    }
                }
                // libvirt goes on with the other attributes, reporting each failure; the
                // last one reported is the one the caller sees.
                None => {
                    err = Some(NwfilterError::Internal(format!(
                        "{} has illegal value {prop}",
                        a.name
                    )))
                }
            }
        }
        err.map_or(Ok(()), Err)
    }

    fn idx(p: &Protocol, name: &str) -> Option<usize> {
        p.attrs.iter().position(|a: &Attr| a.name == name)
    }

    fn item(&self, p: &Protocol, name: &str) -> Option<&Item> {
        Self::idx(p, name).map(|i| &self.items[i])
    }

    /// libvirt: virNWFilterRuleValidate: ports on `ip`/`ipv6` only with a protocol that
    /// has them.
    fn validate(&self, p: &Protocol) -> Result<(), NwfilterError> {
        let family = match p.id {
            "ip" => "IP",
            "ipv6" => "IPv6",
            _ => return Ok(()),
        };
        let has_ports = ["srcportstart", "dstportstart", "srcportend", "dstportend"]
            .iter()
            .any(|n| self.item(p, n).is_some_and(|i| i.exists));
        if !has_ports {
            return Ok(());
        }
        let ok = self
            .item(p, "protocol")
            .filter(|i| i.exists)
            .is_some_and(|i| matches!(i.num.unwrap_or(0), 6 | 17 | 33 | 132));
        if ok {
            Ok(())
        } else {
            Err(NwfilterError::Internal(format!(
                "{family} rule with port specification requires protocol specification with protocol to be either one of tcp(6), udp(17), dccp(33), or sctp(132)"
            )))
        }
    }

    /// libvirt: virNWFilterRuleDefFixup: a mask takes its address's negation, and so on;
    /// an ipset without flags gets `src`, and (quirk) one with flags loses both.
    fn fixup(&mut self, p: &Protocol) {
        for (to, from) in p.neg_pairs {
            if let (Some(t), Some(f)) = (Self::idx(p, to), Self::idx(p, from)) {
                self.items[t].neg = self.items[f].neg;
            }
        }
        if p.fixup == Fixup::IpSet
            && let (Some(s), Some(f)) = (Self::idx(p, "ipset"), Self::idx(p, "ipsetflags"))
        {
            if self.items[s].exists && !self.items[f].exists {
                self.items[f] = Item {
                    exists: true,
                    neg: self.items[f].neg,
                    text: "src".into(),
                    num: None,
                };
            } else {
                self.items[s].exists = false;
                self.items[f].exists = false;
            }
        }
    }

    fn open_elem<'w>(&self, w: &'w mut XmlWriter) -> crate::xmlfmt::Elem<'w> {
        let action = ACTIONS
            .iter()
            .find(|(_, a)| *a == self.action)
            .map_or("", |a| a.0);
        let direction = DIRECTIONS
            .iter()
            .find(|(_, d)| *d == self.direction)
            .map_or("", |d| d.0);
        w.elem("rule")
            .attr("action", action)
            .attr("direction", direction)
            .attr("priority", self.priority)
            .attr_opt("statematch", (!self.statematch).then_some("false"))
    }

    /// libvirt: virNWFilterRuleDefFormat.
    fn format(&self, w: &mut XmlWriter) {
        let Some(p) = self.protocol else {
            self.open_elem(w).empty();
            return;
        };
        self.open_elem(w).open();
        let mut any = false;
        for neg in [false, true] {
            let mut el = w.elem(p.id);
            if neg {
                el = el.attr("match", "no");
            }
            let mut present = false;
            for (a, it) in p.attrs.iter().zip(&self.items) {
                if it.exists && it.neg == neg {
                    el = el.attr(a.name, &it.text);
                    present = true;
                }
            }
            if present {
                el.empty();
                any = true;
            } else {
                drop(el);
            }
        }
        if !any {
            w.elem(p.id).empty();
        }
        w.close();
    }
}

/// An entry of a filter: a rule or a reference to another filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Rule(Rule),
    Include { filter: String, params: Params },
}

/// libvirt's chain suffixes, in its order, with the default priority of each.
const CHAINS: &[(&str, Option<i32>)] = &[
    ("root", Some(0)),
    ("mac", Some(-800)),
    ("vlan", Some(-750)),
    ("stp", None),
    ("arp", Some(-500)),
    ("rarp", Some(-400)),
    ("ipv4", Some(-700)),
    ("ipv6", Some(-600)),
];

const MAX_CHAIN_SUFFIX_SIZE: usize = 12;

/// libvirt: virNWFilterIsAllowedChain.
fn allowed_chain(chain: &str) -> Result<&'static str, NwfilterError> {
    if chain.len() > MAX_CHAIN_SUFFIX_SIZE {
        return Err(NwfilterError::InvalidArg(format!(
            "Name of chain is longer than {MAX_CHAIN_SUFFIX_SIZE} characters"
        )));
    }
    if !chain
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_.:-".contains(c))
    {
        return Err(NwfilterError::InvalidArg(
            "Chain name contains invalid characters".into(),
        ));
    }
    for (name, _) in CHAINS {
        if *name == "root" {
            if chain == "root" {
                return Ok(name);
            }
            if chain.starts_with("root") {
                return Err(NwfilterError::Unknown);
            }
        }
        if chain.starts_with(name) {
            return Ok(name);
        }
    }
    let others: Vec<&str> = CHAINS.iter().skip(1).map(|(n, _)| *n).collect();
    Err(NwfilterError::InvalidArg(format!(
        "Invalid chain name '{chain}'. Please use a chain name called 'root' or any of the following prefixes: {}",
        others.join(", ")
    )))
}

/// A `<filter>` (libvirt: virNWFilterDef).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterDef {
    pub name: String,
    pub chain: String,
    /// 0 is not formatted.
    pub chain_priority: i32,
    /// Canonical UUID; a random one when the document has none.
    pub uuid: String,
    pub uuid_specified: bool,
    pub entries: Vec<Entry>,
}

impl FilterDef {
    /// libvirt: virNWFilterDefParse.
    pub fn parse(xml: &str) -> Result<FilterDef, NwfilterError> {
        let root = parse_root(xml, "filter")?;
        let Some(name) = root.attr("name").filter(|n| !n.is_empty()) else {
            return Err(NwfilterError::Internal("filter has no name".into()));
        };
        let priority = match root.attr("priority").filter(|p| !p.is_empty()) {
            None => None,
            Some(p) => {
                let v: i32 = p.parse().map_err(|_| {
                    NwfilterError::InvalidArg(format!("Could not parse chain priority '{p}'"))
                })?;
                if !(-1000..=1000).contains(&v) {
                    return Err(NwfilterError::InvalidArg(format!(
                        "Priority '{v}' is outside valid range of [-1000,1000]"
                    )));
                }
                Some(v)
            }
        };
        let (chain, chain_priority) = match root.attr("chain").filter(|c| !c.is_empty()) {
            Some(c) => {
                let prefix = allowed_chain(c)?;
                let default = CHAINS
                    .iter()
                    .find(|(n, _)| *n == prefix)
                    .and_then(|(_, p)| *p)
                    .unwrap_or(0);
                (c.to_string(), priority.unwrap_or(default))
            }
            // Without a chain the priority is checked but not kept, as in libvirt.
            None => ("root".to_string(), 0),
        };
        let uuid_text = root.child("uuid").map(|u| u.text.clone());
        let uuid = match &uuid_text {
            None => uuid::Uuid::new_v4(),
            Some(t) => {
                uuid::Uuid::parse_str(t.trim()).map_err(|_| xml_err("malformed uuid element"))?
            }
        };
        let mut entries = Vec::new();
        for c in &root.children {
            match c.name.as_str() {
                "rule" => entries.push(Entry::Rule(Rule::parse(c)?)),
                "filterref" => {
                    let Some(f) = c.attr("filter") else {
                        return Err(xml_err(
                            "Missing required attribute 'filter' in element 'filterref'",
                        ));
                    };
                    entries.push(Entry::Include {
                        filter: f.to_string(),
                        params: Params::parse(c),
                    });
                }
                _ => {}
            }
        }
        Ok(FilterDef {
            name: name.to_string(),
            chain,
            chain_priority,
            uuid: uuid.hyphenated().to_string(),
            uuid_specified: uuid_text.is_some(),
            entries,
        })
    }

    /// libvirt: virNWFilterDefFormat.
    pub fn to_xml(&self) -> String {
        let mut w = XmlWriter::new();
        w.elem("filter")
            .attr("name", &self.name)
            .attr("chain", &self.chain)
            .attr_opt(
                "priority",
                (self.chain_priority != 0).then_some(self.chain_priority),
            )
            .open();
        w.text_elem("uuid", &self.uuid);
        for e in &self.entries {
            match e {
                Entry::Rule(r) => r.format(&mut w),
                Entry::Include { filter, params } => params.format(&mut w, filter),
            }
        }
        w.close();
        w.finish()
    }

    /// The filters this one references directly.
    pub fn includes(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().filter_map(|e| match e {
            Entry::Include { filter, .. } => Some(filter.as_str()),
            Entry::Rule(_) => None,
        })
    }
}

#[cfg(test)]
mod tests;
