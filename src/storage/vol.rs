//! `<volume>`: a storage volume of a file-backed pool (libvirt: virStorageVolDefParseXML,
//! virStorageVolDefFormat, with a `dir` pool's options).

use super::{Lines, Perms, esc, xml_err};
use crate::domain::DomainError;
pub use crate::domain::storage_pool::VolType;
use crate::domain::units::parse_scaled_bytes;
use crate::domain::xml::{XmlNode, parse_document};

/// File formats of a file-backed pool's volumes (libvirt: virStorageFileFormat, without
/// `none`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VolFormat {
    Raw,
    Dir,
    Bochs,
    Cloop,
    Dmg,
    Iso,
    Vpc,
    Vdi,
    Fat,
    Vhd,
    Ploop,
    Cow,
    Qcow,
    Qcow2,
    Qed,
    Vmdk,
}

impl VolFormat {
    pub const ALL: &[VolFormat] = &[
        VolFormat::Raw,
        VolFormat::Dir,
        VolFormat::Bochs,
        VolFormat::Cloop,
        VolFormat::Dmg,
        VolFormat::Iso,
        VolFormat::Vpc,
        VolFormat::Vdi,
        VolFormat::Fat,
        VolFormat::Vhd,
        VolFormat::Ploop,
        VolFormat::Cow,
        VolFormat::Qcow,
        VolFormat::Qcow2,
        VolFormat::Qed,
        VolFormat::Vmdk,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            VolFormat::Raw => "raw",
            VolFormat::Dir => "dir",
            VolFormat::Bochs => "bochs",
            VolFormat::Cloop => "cloop",
            VolFormat::Dmg => "dmg",
            VolFormat::Iso => "iso",
            VolFormat::Vpc => "vpc",
            VolFormat::Vdi => "vdi",
            VolFormat::Fat => "fat",
            VolFormat::Vhd => "vhd",
            VolFormat::Ploop => "ploop",
            VolFormat::Cow => "cow",
            VolFormat::Qcow => "qcow",
            VolFormat::Qcow2 => "qcow2",
            VolFormat::Qed => "qed",
            VolFormat::Vmdk => "vmdk",
        }
    }

    pub fn parse(s: &str) -> Option<VolFormat> {
        Self::ALL.iter().copied().find(|f| f.as_str() == s)
    }

    /// Whether images of this format can name a backing file (libvirt: the formats after
    /// VIR_STORAGE_FILE_BACKING).
    pub fn has_backing(self) -> bool {
        matches!(
            self,
            VolFormat::Cow | VolFormat::Qcow | VolFormat::Qcow2 | VolFormat::Qed | VolFormat::Vmdk
        )
    }
}

/// qcow2 features libvirt names (virStorageFileFeature).
pub const FEATURES: &[&str] = &["lazy_refcounts", "extended_l2"];

/// A file's times: seconds and nanoseconds; `None` when unknown.
pub type Timestamp = Option<(i64, i64)>;

/// `<target>` or `<backingStore>` of a volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolTarget {
    pub path: Option<String>,
    pub format: VolFormat,
    pub perms: Perms,
    /// atime, mtime, ctime, btime; only a refreshed volume has them.
    pub timestamps: Option<[Timestamp; 4]>,
    pub compat: Option<String>,
    pub cluster_size: Option<u64>,
    /// `<features>`: present (maybe empty) for qcow2 with compat 1.1.
    pub features: Option<Vec<String>>,
    pub nocow: bool,
}

impl VolTarget {
    fn new(format: VolFormat) -> VolTarget {
        VolTarget {
            path: None,
            format,
            perms: Perms::default(),
            timestamps: None,
            compat: None,
            cluster_size: None,
            features: None,
            nocow: false,
        }
    }
}

/// A storage volume definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolDef {
    pub vtype: VolType,
    pub name: String,
    pub key: Option<String>,
    pub capacity: u64,
    pub allocation: u64,
    /// Whether `<allocation>` was given (a new raw file is then allocated so much).
    pub has_allocation: bool,
    /// The file's size; display only.
    pub physical: u64,
    pub target: VolTarget,
    pub backing: Option<VolTarget>,
}

fn scaled(node: &XmlNode) -> Result<u64, DomainError> {
    let v = node.text.trim();
    if v.parse::<u64>().is_err() {
        return Err(xml_err("malformed capacity element"));
    }
    parse_scaled_bytes(v, node.attr("unit"), "bytes", i64::MAX as u64)
}

fn format_of(node: Option<&XmlNode>) -> Result<VolFormat, DomainError> {
    match node
        .and_then(|n| n.child("format"))
        .and_then(|f| f.attr("type"))
        .filter(|t| !t.is_empty())
    {
        None => Ok(VolFormat::Raw),
        Some(t) => VolFormat::parse(t).ok_or_else(|| {
            DomainError::Config(format!(
                "unsupported configuration: unknown volume format type {t}"
            ))
        }),
    }
}

impl VolDef {
    /// Parse a `<volume>` document for a file-backed pool. `capacity_optional`: a volume
    /// made from another may leave its capacity out (libvirt: VIR_VOL_XML_PARSE_OPT_CAPACITY).
    pub fn parse(xml: &str, capacity_optional: bool) -> Result<VolDef, DomainError> {
        let root = parse_document(xml)?;
        if root.name != "volume" {
            return Err(xml_err(format!(
                "expecting root element of 'volume', not '{}'",
                root.name
            )));
        }
        let name = root
            .child("name")
            .map(|n| n.text.clone())
            .filter(|n| !n.is_empty())
            .ok_or_else(|| xml_err("missing volume name element"))?;
        let key = root
            .child("key")
            .map(|k| k.text.clone())
            .filter(|k| !k.is_empty());
        let vtype = match root.attr("type") {
            None => VolType::File,
            Some(t) => VolType::parse(t).ok_or_else(|| {
                DomainError::Config(format!(
                    "unsupported configuration: unknown volume type '{t}'"
                ))
            })?,
        };
        let backing = match root
            .child("backingStore")
            .and_then(|b| b.child("path"))
            .map(|p| p.text.clone())
            .filter(|p| !p.is_empty())
        {
            None => None,
            Some(path) => {
                let b = root.child("backingStore");
                let mut t = VolTarget::new(format_of(b)?);
                t.path = Some(path);
                t.perms = Perms::parse(b.and_then(|b| b.child("permissions")))?;
                Some(t)
            }
        };
        let capacity = match root.child("capacity") {
            Some(c) if !c.text.trim().is_empty() => scaled(c)?,
            _ if capacity_optional && backing.is_some() => 0,
            _ if capacity_optional => 0,
            _ => return Err(xml_err("missing capacity element")),
        };
        let (allocation, has_allocation) = match root.child("allocation") {
            Some(a) if !a.text.trim().is_empty() => (scaled(a)?, true),
            _ => (capacity, false),
        };
        let tnode = root.child("target");
        let mut target = VolTarget::new(format_of(tnode)?);
        target.path = tnode
            .and_then(|t| t.child("path"))
            .map(|p| p.text.clone())
            .filter(|p| !p.is_empty());
        target.perms = Perms::parse(tnode.and_then(|t| t.child("permissions")))?;
        if tnode.and_then(|t| t.child("encryption")).is_some() {
            return Err(DomainError::Config(
                "unsupported configuration: encrypted volumes are not supported by this storage driver"
                    .into(),
            ));
        }
        target.compat = tnode
            .and_then(|t| t.child("compat"))
            .map(|c| c.text.clone())
            .filter(|c| !c.is_empty());
        if let Some(c) = &target.compat {
            let ok = c
                .split_once('.')
                .is_some_and(|(a, b)| a.parse::<u32>().is_ok() && b.parse::<u32>().is_ok());
            if !ok {
                return Err(xml_err("forbidden characters in 'compat' attribute"));
            }
        }
        target.nocow = tnode.and_then(|t| t.child("nocow")).is_some();
        if let Some(cs) = tnode.and_then(|t| t.child("clusterSize")) {
            target.cluster_size = Some(parse_scaled_bytes(
                cs.text.trim(),
                cs.attr("unit"),
                "B",
                u64::MAX,
            )?);
        }
        if let Some(f) = tnode.and_then(|t| t.child("features")) {
            if target.compat.is_none() {
                target.compat = Some("1.1".into());
            }
            let mut names = Vec::new();
            for c in &f.children {
                if !FEATURES.contains(&c.name.as_str()) {
                    return Err(DomainError::Config(format!(
                        "unsupported configuration: unsupported feature {}",
                        c.name
                    )));
                }
                names.push(c.name.clone());
            }
            // libvirt keeps a bitmap: each once, in its own order.
            target.features = Some(
                FEATURES
                    .iter()
                    .filter(|f| names.iter().any(|n| n == *f))
                    .map(|f| f.to_string())
                    .collect(),
            );
        }
        Ok(VolDef {
            vtype,
            name,
            key,
            capacity,
            allocation,
            has_allocation,
            physical: 0,
            target,
            backing,
        })
    }

    /// The document, as libvirt formats a volume of a file-backed pool.
    pub fn format(&self) -> String {
        let mut o = Lines::default();
        o.open(format!("<volume type='{}'>", self.vtype.as_str()));
        o.line(format!("<name>{}</name>", esc(&self.name)));
        if let Some(k) = &self.key {
            o.line(format!("<key>{}</key>", esc(k)));
        }
        // An empty <source/> is left out (no extents for file volumes).
        o.line(format!(
            "<capacity unit='bytes'>{}</capacity>",
            self.capacity
        ));
        o.line(format!(
            "<allocation unit='bytes'>{}</allocation>",
            self.allocation
        ));
        if self.physical != 0 {
            o.line(format!(
                "<physical unit='bytes'>{}</physical>",
                self.physical
            ));
        }
        format_target(&mut o, &self.target, "target");
        if let Some(b) = &self.backing {
            format_target(&mut o, b, "backingStore");
        }
        o.close("</volume>");
        o.finish()
    }
}

// libvirt: virStorageVolTargetDefFormat
fn format_target(o: &mut Lines, t: &VolTarget, elem: &str) {
    o.open(format!("<{elem}>"));
    if let Some(p) = &t.path {
        o.line(format!("<path>{}</path>", esc(p)));
    }
    o.line(format!("<format type='{}'/>", t.format.as_str()));
    t.perms.format(o);
    if let Some(ts) = &t.timestamps {
        o.open("<timestamps>");
        for (name, v) in ["atime", "mtime", "ctime", "btime"].iter().zip(ts) {
            if let Some((s, ns)) = v {
                if *ns != 0 {
                    o.line(format!("<{name}>{s}.{ns:09}</{name}>"));
                } else {
                    o.line(format!("<{name}>{s}</{name}>"));
                }
            }
        }
        o.close("</timestamps>");
    }
    if let Some(c) = &t.compat {
        o.line(format!("<compat>{}</compat>", esc(c)));
    }
    if let Some(cs) = t.cluster_size.filter(|c| *c > 0) {
        o.line(format!("<clusterSize unit='B'>{cs}</clusterSize>"));
    }
    if let Some(f) = &t.features {
        if f.is_empty() {
            o.line("<features/>");
        } else {
            o.open("<features>");
            for n in f {
                o.line(format!("<{n}/>"));
            }
            o.close("</features>");
        }
    }
    o.close(format!("</{elem}>"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_volume_is_read_and_written() {
        let v = VolDef::parse(
            "<volume><name>a.qcow2</name><capacity unit='M'>1</capacity>\
             <target><format type='qcow2'/><features><lazy_refcounts/></features></target>\
             <backingStore><path>/b.img</path><format type='raw'/></backingStore></volume>",
            false,
        )
        .unwrap();
        assert_eq!(v.capacity, 1 << 20);
        assert_eq!(v.allocation, 1 << 20);
        assert!(!v.has_allocation);
        assert_eq!(v.target.format, VolFormat::Qcow2);
        assert_eq!(v.target.compat.as_deref(), Some("1.1"));
        let x = v.format();
        assert!(x.starts_with("<volume type='file'>\n  <name>a.qcow2</name>\n  <capacity unit='bytes'>1048576</capacity>\n"), "{x}");
        assert!(x.contains("    <compat>1.1</compat>\n    <features>\n      <lazy_refcounts/>\n    </features>\n"), "{x}");
        assert!(x.contains("  <backingStore>\n    <path>/b.img</path>\n    <format type='raw'/>\n  </backingStore>\n"), "{x}");
    }

    #[test]
    fn bad_volumes_are_refused_with_libvirts_words() {
        let e = |x: &str| VolDef::parse(x, false).unwrap_err().to_string();
        assert_eq!(
            e("<volume><capacity>1</capacity></volume>"),
            "XML error: missing volume name element"
        );
        assert_eq!(
            e("<volume><name>a</name></volume>"),
            "XML error: missing capacity element"
        );
        assert_eq!(
            e("<volume><name>a</name><capacity>x</capacity></volume>"),
            "XML error: malformed capacity element"
        );
        assert_eq!(
            e("<volume><name>a</name><capacity unit='Q'>1</capacity></volume>"),
            "invalid argument: unknown suffix 'Q'"
        );
        assert_eq!(
            e(
                "<volume><name>a</name><capacity>1</capacity><target><format type='zip'/></target></volume>"
            ),
            "unsupported configuration: unknown volume format type zip"
        );
        assert_eq!(
            e(
                "<volume><name>a</name><capacity>1</capacity><target><features><x/></features></target></volume>"
            ),
            "unsupported configuration: unsupported feature x"
        );
    }
}
