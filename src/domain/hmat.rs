//! A guest NUMA topology's HMAT (Heterogeneous Memory Attribute Table): each cell's memory-side
//! caches and the latency/bandwidth interconnects between cells. The model keeps the XML as
//! written (so it round-trips untouched); this is its typed reading, checked with libvirt's
//! messages (libvirt: virDomainNumaDefNodeCacheParseXML, virDomainNumaDefParseXML).

use super::DomainError;
use super::model::Cpu;
use super::units::parse_scaled_bytes;
use super::units::parse_scaled_kib;
use super::validate::parse::{missing, prop_required, uint};
use super::xml::XmlNode;
// The host's HMAT reading names caches and figures the same way (bandwidth in KiB/s).
pub use crate::capabilities::host::{CacheAssociativity, CachePolicy, InterconnectKind};

/// One `<cache>` of a NUMA cell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumaCache {
    pub level: u32,
    pub associativity: CacheAssociativity,
    pub policy: CachePolicy,
    pub size_kib: u64,
    pub line_bytes: u64,
}

/// Which accesses an interconnect figure is for (libvirt's virMemoryLatency).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessType {
    Access,
    Read,
    Write,
}

impl AccessType {
    pub fn as_str(self) -> &'static str {
        match self {
            AccessType::Access => "access",
            AccessType::Read => "read",
            AccessType::Write => "write",
        }
    }
}

/// One `<latency>` or `<bandwidth>` of `<interconnects>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interconnect {
    pub kind: InterconnectKind,
    pub initiator: u32,
    pub target: u32,
    /// The cache level measured; 0 for the memory itself.
    pub cache: u32,
    pub access: AccessType,
    pub value: u64,
}

/// The HMAT of a guest NUMA topology: caches per cell (in the model's cell order) and the
/// interconnects.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Hmat {
    pub caches: Vec<Vec<NumaCache>>,
    pub interconnects: Vec<Interconnect>,
}

impl Hmat {
    /// The HMAT of `cpu`'s NUMA topology.
    pub fn of(cpu: &Cpu) -> Result<Hmat, DomainError> {
        let mut h = Hmat::default();
        for cell in &cpu.numa {
            let caches = cell
                .extra
                .children
                .iter()
                .filter(|n| n.name == "cache")
                .map(cache)
                .collect::<Result<Vec<_>, _>>()?;
            h.caches.push(caches);
        }
        for ics in cpu
            .numa_extra
            .children
            .iter()
            .filter(|n| n.name == "interconnects")
        {
            for n in &ics.children {
                let kind = match n.name.as_str() {
                    "latency" => InterconnectKind::Latency,
                    "bandwidth" => InterconnectKind::Bandwidth,
                    _ => continue,
                };
                h.interconnects.push(interconnect(n, kind)?);
            }
        }
        Ok(h)
    }

    /// Whether the topology has an HMAT to give the guest (libvirt: virDomainNumaHasHMAT).
    pub fn is_present(&self) -> bool {
        !self.interconnects.is_empty() || self.caches.iter().any(|c| !c.is_empty())
    }

    /// The initiator of cell `node`: itself when it has vCPUs, else the cell with the lowest
    /// latency to it, else the one with the largest bandwidth (libvirt:
    /// virDomainNumaGetNodeInitiator).
    pub fn initiator(&self, node: u32, has_cpus: bool) -> Option<u32> {
        if has_cpus {
            return Some(node);
        }
        let to_node = || self.interconnects.iter().filter(move |l| l.target == node);
        let mut best_latency: Option<(u64, u32)> = None;
        let mut best_bandwidth: Option<(u64, u32)> = None;
        for l in to_node() {
            match l.kind {
                InterconnectKind::Latency => {
                    if best_latency.is_none_or(|(v, _)| l.value < v) {
                        best_latency = Some((l.value, l.initiator));
                    }
                }
                InterconnectKind::Bandwidth => {
                    if l.value > best_bandwidth.map_or(0, |(v, _)| v) {
                        best_bandwidth = Some((l.value, l.initiator));
                    }
                }
            }
        }
        best_latency.or(best_bandwidth).map(|(_, i)| i)
    }
}

/// A required attribute from a closed vocabulary, as `values` lists it (libvirt:
/// virXMLPropEnum).
fn enum_attr<T: Copy>(n: &XmlNode, attr: &str, values: &[(&str, T)]) -> Result<T, DomainError> {
    let names: Vec<&str> = values.iter().map(|(k, _)| *k).collect();
    Ok(values[prop_required(n, attr, &names, false)?].1)
}

/// The scaled `value`/`unit` of child `name`, required.
fn scaled_child(n: &XmlNode, name: &str, default_unit: &str) -> Result<u64, DomainError> {
    let c = n.child(name);
    let v = c.and_then(|c| c.attr("value")).ok_or_else(|| {
        DomainError::Xml(format!(
            "XML error: missing element or attribute './{name}/@value'"
        ))
    })?;
    let unit = c.and_then(|c| c.attr("unit"));
    if default_unit == "B" {
        parse_scaled_bytes(v, unit, default_unit, u64::MAX)
    } else {
        parse_scaled_kib(v, unit, default_unit, u64::MAX / 1024)
    }
}

fn cache(n: &XmlNode) -> Result<NumaCache, DomainError> {
    Ok(NumaCache {
        level: uint(n, "level", true, true)?.unwrap_or(0),
        associativity: enum_attr(
            n,
            "associativity",
            &[
                ("none", CacheAssociativity::None),
                ("direct", CacheAssociativity::Direct),
                ("full", CacheAssociativity::Full),
            ],
        )?,
        policy: enum_attr(
            n,
            "policy",
            &[
                ("none", CachePolicy::None),
                ("writeback", CachePolicy::Writeback),
                ("writethrough", CachePolicy::Writethrough),
            ],
        )?,
        size_kib: scaled_child(n, "size", "KiB")?,
        line_bytes: scaled_child(n, "line", "B")?,
    })
}

fn interconnect(n: &XmlNode, kind: InterconnectKind) -> Result<Interconnect, DomainError> {
    let raw = n.attr("value").ok_or_else(|| missing(n, "value"))?;
    let value = match kind {
        InterconnectKind::Latency => raw.parse().map_err(|_| {
            DomainError::Xml(format!(
                "XML error: Invalid value for attribute 'value' in element '{}': '{raw}'. Expected non-negative integer value",
                n.name
            ))
        })?,
        InterconnectKind::Bandwidth => {
            parse_scaled_kib(raw, n.attr("unit"), "KiB", u64::MAX / 1024)?
        }
    };
    Ok(Interconnect {
        kind,
        initiator: uint(n, "initiator", true, false)?.unwrap_or(0),
        target: uint(n, "target", true, false)?.unwrap_or(0),
        cache: uint(n, "cache", false, false)?.unwrap_or(0),
        access: enum_attr(
            n,
            "type",
            &[
                ("access", AccessType::Access),
                ("read", AccessType::Read),
                ("write", AccessType::Write),
            ],
        )?,
        value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cpu(xml: &str) -> Result<Hmat, DomainError> {
        let doc = format!(
            "<domain type='qemu'><name>h</name><memory>4194304</memory><vcpu>2</vcpu>\
             <os><type arch='x86_64' machine='pc'>hvm</type></os><cpu><numa>{xml}</numa></cpu></domain>"
        );
        let d = crate::domain::parse(&doc)?;
        Hmat::of(d.cpu.as_ref().unwrap())
    }

    const CELLS: &str = "<cell id='0' cpus='0-1' memory='1048576'>\
        <cache level='1' associativity='direct' policy='writeback'>\
        <size value='10' unit='KiB'/><line value='8' unit='B'/></cache></cell>\
        <cell id='1' memory='1048576'/>";

    #[test]
    fn caches_and_interconnects_are_read() {
        let h = cpu(&format!(
            "{CELLS}<interconnects>\
             <latency initiator='0' target='1' type='access' value='5'/>\
             <bandwidth initiator='0' target='1' cache='1' type='read' value='2' unit='MiB'/>\
             </interconnects>"
        ))
        .unwrap();
        assert!(h.is_present());
        assert_eq!(h.caches[0][0].size_kib, 10);
        assert_eq!(h.caches[0][0].line_bytes, 8);
        assert_eq!(h.interconnects[1].value, 2048);
        assert_eq!(h.interconnects[1].access, AccessType::Read);
        assert_eq!(h.initiator(1, false), Some(0));
        assert_eq!(h.initiator(0, true), Some(0));
    }

    #[test]
    fn lowest_latency_beats_bandwidth() {
        let h = cpu(&format!(
            "{CELLS}<interconnects>\
             <bandwidth initiator='0' target='1' type='access' value='9'/>\
             <latency initiator='1' target='1' type='access' value='7'/>\
             <latency initiator='0' target='1' type='access' value='3'/>\
             </interconnects>"
        ))
        .unwrap();
        assert_eq!(h.initiator(1, false), Some(0));
        assert_eq!(h.initiator(5, false), None);
    }

    #[test]
    fn no_hmat_without_caches_or_interconnects() {
        let h = cpu("<cell id='0' cpus='0-1' memory='1048576'/>").unwrap();
        assert!(!h.is_present());
    }

    #[test]
    fn bad_values_are_refused_at_parse() {
        let bad = |cache: &str| {
            cpu(&format!(
                "<cell id='0' cpus='0-1' memory='1048576'>{cache}</cell>"
            ))
            .unwrap_err()
            .to_string()
        };
        assert_eq!(
            bad(
                "<cache associativity='direct' policy='writeback'><size value='1'/><line value='8'/></cache>"
            ),
            "XML error: Missing required attribute 'level' in element 'cache'"
        );
        assert_eq!(
            bad(
                "<cache level='0' associativity='direct' policy='writeback'><size value='1'/><line value='8'/></cache>"
            ),
            "XML error: Invalid value for attribute 'level' in element 'cache': Zero is not permitted"
        );
        assert_eq!(
            bad(
                "<cache level='1' associativity='odd' policy='writeback'><size value='1'/><line value='8'/></cache>"
            ),
            "XML error: Invalid value for attribute 'associativity' in element 'cache': 'odd'."
        );
        assert_eq!(
            bad(
                "<cache level='1' associativity='full' policy='later'><size value='1'/><line value='8'/></cache>"
            ),
            "XML error: Invalid value for attribute 'policy' in element 'cache': 'later'."
        );
        assert_eq!(
            bad("<cache level='1' associativity='full' policy='none'><line value='8'/></cache>"),
            "XML error: missing element or attribute './size/@value'"
        );
        let ic = |x: &str| {
            cpu(&format!("{CELLS}<interconnects>{x}</interconnects>"))
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            ic("<latency initiator='0' target='1' type='sideways' value='5'/>"),
            "XML error: Invalid value for attribute 'type' in element 'latency': 'sideways'."
        );
        assert_eq!(
            ic("<latency initiator='0' type='access' value='5'/>"),
            "XML error: Missing required attribute 'target' in element 'latency'"
        );
        assert_eq!(
            ic("<latency initiator='0' target='1' type='access'/>"),
            "XML error: Missing required attribute 'value' in element 'latency'"
        );
        assert_eq!(
            ic("<latency initiator='x' target='1' type='access' value='1'/>"),
            "XML error: Invalid value for attribute 'initiator' in element 'latency': 'x'. Expected non-negative integer value"
        );
    }
}
