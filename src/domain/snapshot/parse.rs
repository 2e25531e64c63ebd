//! Parse `<domainsnapshot>` (libvirt: virDomainSnapshotDefParse).

use super::model::{Location, SnapshotDef, SnapshotDisk, SnapshotState};
use crate::domain::DomainError;
use crate::domain::xml::{XmlNode, parse_document};

/// libvirt's VIR_DOMAIN_SNAPSHOT_PARSE_* flags.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ParseFlags {
    /// The document describes an existing snapshot (`--redefine`, the driver's own files):
    /// state, parent, creation time and domain are taken as given.
    pub redefine: bool,
    /// The driver's own files: `<active>` marks the current snapshot.
    pub internal: bool,
    /// Now, in seconds since the epoch: the creation time (and default name) of a new
    /// snapshot. Passed in so parsing stays pure.
    pub now: i64,
}

fn xml_err(msg: impl Into<String>) -> DomainError {
    DomainError::Xml(format!("XML error: {}", msg.into()))
}

fn config_err(msg: impl Into<String>) -> DomainError {
    DomainError::Config(format!("unsupported configuration: {}", msg.into()))
}

fn text_of(root: &XmlNode, name: &str) -> Option<String> {
    root.child(name).map(|n| n.text.clone())
}

/// Parse a snapshot document.
pub fn parse(xml: &str, flags: ParseFlags) -> Result<SnapshotDef, DomainError> {
    let root = parse_document(xml)?;
    if root.name != "domainsnapshot" {
        return Err(xml_err(format!(
            "unexpected root element <{}>, expecting <domainsnapshot>",
            root.name
        )));
    }
    let mut def = SnapshotDef {
        description: text_of(&root, "description"),
        ..Default::default()
    };
    let name = text_of(&root, "name").filter(|n| !n.is_empty());
    if flags.redefine {
        def.name = name.ok_or_else(|| xml_err("a redefined snapshot must have a name"))?;
        let t = text_of(&root, "creationTime")
            .ok_or_else(|| xml_err("missing creationTime from existing snapshot"))?;
        def.creation_time = Some(
            t.trim()
                .parse()
                .map_err(|_| xml_err(format!("malformed creationTime '{t}'")))?,
        );
        def.parent = root
            .child("parent")
            .and_then(|p| p.child("name"))
            .map(|n| n.text.clone());
        let st = text_of(&root, "state")
            .ok_or_else(|| xml_err("missing state from existing snapshot"))?;
        def.state =
            Some(SnapshotState::parse(&st).ok_or_else(|| {
                config_err(format!("Invalid state '{st}' in domain snapshot XML"))
            })?);
        def.domain = root.child("domain").cloned();
        def.inactive_domain = root.child("inactiveDomain").cloned();
        def.cookie = root.child("cookie").cloned();
    } else {
        def.creation_time = Some(flags.now);
        def.name = name.unwrap_or_else(|| flags.now.to_string());
    }
    if def.name.contains('/') {
        return Err(xml_err(format!(
            "invalid snapshot name '{}': name can't contain '/'",
            def.name
        )));
    }
    if let Some(m) = root.child("memory") {
        let loc = match m.attr("snapshot") {
            Some(s) => Some(
                Location::parse(s)
                    .ok_or_else(|| config_err(format!("unknown memory snapshot setting '{s}'")))?,
            ),
            None => None,
        };
        let file = m.attr("file").map(str::to_string);
        def.memory = match (loc, &file) {
            (None, Some(_)) => Some(Location::External),
            (Some(l), Some(f)) if l != Location::External => {
                return Err(xml_err(format!(
                    "memory filename '{f}' requires external snapshot"
                )));
            }
            (l, _) => l,
        };
        def.memory_file = file;
    }
    if let Some(disks) = root.child("disks") {
        for d in &disks.children {
            def.disks.push(parse_disk(d)?);
        }
    }
    if flags.redefine
        && let Some(disks) = root.child("revertDisks")
    {
        for d in &disks.children {
            def.revert_disks.push(parse_disk(d)?);
        }
    }
    if flags.internal {
        def.current = text_of(&root, "active").is_some_and(|t| t.trim() == "1");
    }
    Ok(def)
}

/// libvirt: virDomainSnapshotDiskDefParseXML.
fn parse_disk(d: &XmlNode) -> Result<SnapshotDisk, DomainError> {
    let name = d
        .attr("name")
        .ok_or_else(|| xml_err("missing name from disk snapshot element"))?
        .to_string();
    let mut snapshot = match d.attr("snapshot") {
        Some(s) => Some(
            Location::parse(s)
                .ok_or_else(|| config_err(format!("unknown disk snapshot setting '{s}'")))?,
        ),
        None => None,
    };
    let source = d.child("source").filter(|s| !s.is_bare()).cloned();
    if let Some(s) = &source
        && s.attr("startupPolicy").is_some()
    {
        return Err(xml_err(
            "startupPolicy is only valid for 'file' type volume",
        ));
    }
    let driver = d.child("driver").filter(|s| !s.is_bare()).cloned();
    let mut source_type = d.attr("type").map(str::to_string);
    if snapshot.is_none() && (d.child("source").is_some() || d.child("driver").is_some()) {
        snapshot = Some(Location::External);
    }
    if snapshot == Some(Location::External) {
        source_type.get_or_insert_with(|| "file".into());
        if let Some(t) = source_type.as_deref()
            && !matches!(t, "file" | "block" | "network")
        {
            return Err(config_err(format!("unknown disk type '{t}'")));
        }
    } else {
        source_type = None;
    }
    Ok(SnapshotDisk {
        name,
        snapshot,
        source_type,
        driver,
        source,
    })
}
