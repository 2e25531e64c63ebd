//! libvirt's `domaincheckpoint` XML (docs/formatcheckpoint.rst): typed model, parse and
//! format (libvirt: src/conf/checkpoint_conf.c). Pure data, no I/O. The domain inside a
//! checkpoint is kept as a tree and re-formatted by the domain formatter.

use super::xml::{XmlNode, parse_document};
use super::{DomainDef, DomainError, FormatFlags};
use crate::xmlfmt::XmlWriter;

/// What a disk's checkpoint is (libvirt: virDomainCheckpointType).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckpointType {
    No,
    Bitmap,
}

impl CheckpointType {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckpointType::No => "no",
            CheckpointType::Bitmap => "bitmap",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "no" => Some(CheckpointType::No),
            "bitmap" => Some(CheckpointType::Bitmap),
            _ => None,
        }
    }
}

/// One `<disk>` of `<disks>` (libvirt: virDomainCheckpointDiskDef).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CheckpointDisk {
    /// The target (`vda`), or the source path the user named before alignment.
    pub name: String,
    /// `None`: not given (libvirt's default is a bitmap).
    pub checkpoint: Option<CheckpointType>,
    pub bitmap: Option<String>,
    /// Bytes changed since the checkpoint (`--size`), when QEMU could tell.
    pub size: Option<u64>,
}

impl CheckpointDisk {
    /// Whether this disk gets a bitmap.
    pub fn is_bitmap(&self) -> bool {
        self.checkpoint.unwrap_or(CheckpointType::Bitmap) == CheckpointType::Bitmap
    }
}

/// A `<domaincheckpoint>` (libvirt: virDomainCheckpointDef).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CheckpointDef {
    pub name: String,
    pub description: Option<String>,
    pub parent: Option<String>,
    /// Seconds since the epoch.
    pub creation_time: i64,
    pub disks: Vec<CheckpointDisk>,
    /// The inactive domain definition when the checkpoint was made.
    pub domain: Option<XmlNode>,
    /// The current-checkpoint marker, only in the driver's own files.
    pub current: bool,
}

/// libvirt's VIR_DOMAIN_CHECKPOINT_PARSE_* flags, plus the time for a new checkpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ParseFlags {
    /// An existing checkpoint (`--redefine`, the driver's files): name, creation time,
    /// parent and domain are taken as given.
    pub redefine: bool,
    /// The driver's own files: `<active>1</active>` marks the current one.
    pub internal: bool,
    /// Now, in seconds since the epoch: a new checkpoint's creation time and default name.
    pub now: i64,
}

/// libvirt's VIR_DOMAIN_CHECKPOINT_FORMAT_* flags.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CheckpointFormat {
    pub secure: bool,
    pub no_domain: bool,
    pub size: bool,
    /// The driver's files: with the current marker.
    pub internal: bool,
}

fn xml_err(msg: impl Into<String>) -> DomainError {
    DomainError::Xml(format!("XML error: {}", msg.into()))
}

fn text_of(root: &XmlNode, name: &str) -> Option<String> {
    root.child(name).map(|n| n.text.clone())
}

/// Parse a checkpoint document (libvirt: virDomainCheckpointDefParse; the checks libvirt's
/// schema makes are made here with the schema's verdict).
pub fn parse(xml: &str, flags: ParseFlags) -> Result<CheckpointDef, DomainError> {
    let root = parse_document(xml)?;
    if root.name != "domaincheckpoint" {
        return Err(xml_err(format!(
            "unexpected root element <{}>, expecting <domaincheckpoint>",
            root.name
        )));
    }
    let name = text_of(&root, "name").filter(|n| !n.is_empty());
    let mut def = CheckpointDef {
        description: text_of(&root, "description"),
        ..Default::default()
    };
    if flags.redefine {
        def.name = name.ok_or_else(|| xml_err("a redefined checkpoint must have a name"))?;
        let t = text_of(&root, "creationTime").ok_or_else(|| {
            DomainError::Config(
                "internal error: missing creationTime from existing checkpoint".into(),
            )
        })?;
        def.creation_time = t.trim().parse().map_err(|_| {
            DomainError::Config(
                "internal error: missing creationTime from existing checkpoint".into(),
            )
        })?;
        def.parent = root
            .child("parent")
            .and_then(|p| p.child("name"))
            .map(|n| n.text.clone());
        def.domain = root.child("domain").cloned();
    } else {
        // libvirt: virDomainMomentDefPostParse.
        def.creation_time = flags.now;
        def.name = name.unwrap_or_else(|| flags.now.to_string());
    }
    // domaincheckpoint.rng: a name is a file name.
    if def.name.contains('/') || def.name.starts_with('.') {
        return Err(DomainError::Xml(format!(
            "XML document failed to validate against schema: invalid checkpoint name '{}'",
            def.name
        )));
    }
    if let Some(disks) = root.child("disks") {
        for d in disks.children.iter().filter(|d| d.name == "disk") {
            let name = d.attr("name").ok_or_else(|| {
                DomainError::Xml(
                    "XML document failed to validate against schema: disk without a name".into(),
                )
            })?;
            let checkpoint = match d.attr("checkpoint") {
                Some(c) => Some(CheckpointType::parse(c).ok_or_else(|| {
                    DomainError::Xml(format!(
                        "XML document failed to validate against schema: invalid checkpoint type '{c}'"
                    ))
                })?),
                None => None,
            };
            def.disks.push(CheckpointDisk {
                name: name.to_string(),
                checkpoint,
                bitmap: d.attr("bitmap").map(str::to_string),
                size: None,
            });
        }
    }
    if flags.internal {
        def.current = text_of(&root, "active").is_some_and(|t| t.trim() == "1");
    }
    Ok(def)
}

impl CheckpointDef {
    /// Give every bitmap disk without a bitmap name the checkpoint's name (libvirt:
    /// virDomainCheckpointDefAssignBitmapNames).
    pub fn assign_bitmap_names(&mut self) {
        for d in &mut self.disks {
            if d.checkpoint == Some(CheckpointType::Bitmap) && d.bitmap.is_none() {
                d.bitmap = Some(self.name.clone());
            }
        }
    }

    /// One entry per disk of `dom`, in its order: the ones named kept (by target), the rest
    /// defaulted; names given as paths become targets (libvirt:
    /// virDomainCheckpointAlignDisks).
    pub fn align_disks(&mut self, dom: &DomainDef) -> Result<(), DomainError> {
        let unsupported =
            |m: String| DomainError::Config(format!("unsupported configuration: {m}"));
        let disks = &dom.devices.disks;
        if self.disks.len() > disks.len() {
            return Err(unsupported(
                "too many disk checkpoint requests for domain".into(),
            ));
        }
        if disks.is_empty() {
            return Err(unsupported(
                "domain must have at least one disk to perform checkpoints".into(),
            ));
        }
        let default = if self.disks.is_empty() {
            CheckpointType::Bitmap
        } else {
            CheckpointType::No
        };
        let mut given: Vec<(String, CheckpointDisk)> = Vec::new();
        for c in &self.disks {
            let Some(d) = disks.iter().find(|d| {
                d.target.dev == c.name
                    || d.source.as_ref().and_then(|s| s.file.as_deref()) == Some(c.name.as_str())
            }) else {
                return Err(unsupported(format!("no disk named '{}'", c.name)));
            };
            if given.iter().any(|(t, _)| *t == d.target.dev) {
                return Err(unsupported(format!("disk '{}' specified twice", c.name)));
            }
            let checkpoint = c.checkpoint.unwrap_or(CheckpointType::Bitmap);
            if (disk_empty(d) || d.readonly) && checkpoint != CheckpointType::No {
                return Err(unsupported(format!(
                    "disk '{}' is empty or readonly",
                    c.name
                )));
            }
            given.push((
                d.target.dev.clone(),
                CheckpointDisk {
                    name: d.target.dev.clone(),
                    checkpoint: Some(checkpoint),
                    ..c.clone()
                },
            ));
        }
        self.disks = disks
            .iter()
            .map(|d| match given.iter().find(|(t, _)| *t == d.target.dev) {
                Some((_, c)) => c.clone(),
                None => CheckpointDisk {
                    name: d.target.dev.clone(),
                    checkpoint: Some(if disk_empty(d) || d.readonly {
                        CheckpointType::No
                    } else {
                        default
                    }),
                    bitmap: None,
                    size: None,
                },
            })
            .collect();
        self.assign_bitmap_names();
        Ok(())
    }

    /// The document (libvirt: virDomainCheckpointDefFormatInternal).
    pub fn to_xml(&self, f: CheckpointFormat) -> String {
        let mut w = XmlWriter::new();
        w.elem("domaincheckpoint").open();
        w.text_elem("name", &self.name);
        if let Some(d) = &self.description {
            w.text_elem("description", d);
        }
        if let Some(p) = &self.parent {
            w.elem("parent").open();
            w.text_elem("name", p);
            w.close();
        }
        if self.creation_time != 0 {
            w.text_elem("creationTime", &self.creation_time.to_string());
        }
        if !self.disks.is_empty() {
            w.elem("disks").open();
            for d in &self.disks {
                let mut e = w
                    .elem("disk")
                    .attr("name", &d.name)
                    .attr_opt("checkpoint", d.checkpoint.map(|c| c.as_str()));
                if let Some(b) = &d.bitmap {
                    e = e.attr("bitmap", b);
                    if f.size {
                        e = e.attr_opt("size", d.size);
                    }
                }
                e.empty();
            }
            w.close();
        }
        if let Some(d) = self.domain.as_ref().filter(|_| !f.no_domain) {
            let mut node = d.clone();
            node.name = "domain".into();
            match DomainDef::from_node(&node) {
                Ok(def) => w.raw_lines(&def.to_xml(FormatFlags {
                    inactive: true,
                    secure: f.secure,
                })),
                Err(_) => node.write(&mut w),
            }
        }
        if f.internal && self.current {
            w.text_elem("active", "1");
        }
        w.close();
        w.finish()
    }
}

/// A disk without a medium (libvirt: virStorageSourceIsEmpty).
fn disk_empty(d: &crate::domain::devices::Disk) -> bool {
    d.source
        .as_ref()
        .is_none_or(|s| s.file.is_none() && s.dev.is_none() && s.name.is_none() && s.dir.is_none())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_names() {
        let xml = "<domaincheckpoint>\n  <name>c1</name>\n  <parent>\n    <name>c0</name>\n  </parent>\n  <creationTime>1700000000</creationTime>\n  <disks>\n    <disk name='vda' checkpoint='bitmap' bitmap='c1'/>\n    <disk name='vdb' checkpoint='no'/>\n  </disks>\n</domaincheckpoint>\n";
        let d = parse(
            xml,
            ParseFlags {
                redefine: true,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(d.parent.as_deref(), Some("c0"));
        assert_eq!(d.to_xml(CheckpointFormat::default()), xml);
        let n = parse(
            "<domaincheckpoint/>",
            ParseFlags {
                now: 42,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!((n.name.as_str(), n.creation_time), ("42", 42));
        let e = parse(
            "<domaincheckpoint/>",
            ParseFlags {
                redefine: true,
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("a redefined checkpoint must have a name")
        );
        assert!(
            parse(
                "<domaincheckpoint><name>a/b</name></domaincheckpoint>",
                ParseFlags::default()
            )
            .is_err()
        );
    }
}
