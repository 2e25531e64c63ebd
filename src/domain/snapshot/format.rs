//! Format `<domainsnapshot>` as libvirt does (libvirt: virDomainSnapshotDefFormatInternal).

use super::model::{SnapshotDef, SnapshotDisk};
use crate::domain::XmlNode;
use crate::domain::model::FormatFlags;
use crate::xmlfmt::XmlWriter;

impl SnapshotDef {
    /// The document; `internal` adds the current marker (`<active>`), as in the driver's own
    /// files (libvirt: VIR_DOMAIN_SNAPSHOT_FORMAT_INTERNAL).
    pub fn to_xml(&self, internal: bool) -> String {
        let mut w = XmlWriter::new();
        w.elem("domainsnapshot").open();
        w.text_elem("name", &self.name);
        if let Some(d) = &self.description {
            w.text_elem("description", d);
        }
        if let Some(s) = self.state {
            w.text_elem("state", s.as_str());
        }
        if let Some(p) = &self.parent {
            w.elem("parent").open();
            w.text_elem("name", p);
            w.close();
        }
        if let Some(t) = self.creation_time {
            w.text_elem("creationTime", &t.to_string());
        }
        if let Some(m) = self.memory {
            w.elem("memory")
                .attr("snapshot", m.as_str())
                .attr_opt("file", self.memory_file.as_deref())
                .empty();
        }
        if !self.disks.is_empty() {
            w.elem("disks").open();
            for d in &self.disks {
                write_disk(&mut w, d);
            }
            w.close();
        }
        if !self.revert_disks.is_empty() {
            w.elem("revertDisks").open();
            for d in &self.revert_disks {
                write_disk(&mut w, d);
            }
            w.close();
        }
        if let Some(d) = &self.domain {
            write_domain(&mut w, d);
        }
        if let Some(d) = &self.inactive_domain {
            write_domain(&mut w, d);
        }
        if let Some(c) = &self.cookie {
            c.write(&mut w);
        }
        if internal && self.current {
            w.text_elem("active", "1");
        }
        w.close();
        w.finish()
    }
}

fn write_disk(w: &mut XmlWriter, d: &SnapshotDisk) {
    let e = w
        .elem("disk")
        .attr("name", &d.name)
        .attr_opt("snapshot", d.snapshot.map(|s| s.as_str()))
        .attr_opt("type", d.source_type.as_deref());
    if d.driver.is_none() && d.source.is_none() && d.source_type.is_none() {
        e.empty();
        return;
    }
    e.open();
    if let Some(x) = &d.driver {
        x.write(w);
    }
    if let Some(x) = &d.source {
        x.write(w);
    }
    w.close();
}

/// The domain as the domain formatter writes it when it parses as one; a fragment (libvirt's
/// test data carries `<domain>` with a UUID alone) is written as it came.
fn write_domain(w: &mut XmlWriter, node: &XmlNode) {
    let mut as_domain = node.clone();
    as_domain.name = "domain".into();
    let parsed = crate::domain::DomainDef::from_node(&as_domain).ok();
    match parsed {
        Some(def) => {
            let text = def.to_xml(FormatFlags {
                inactive: false,
                secure: true,
            });
            let text = if node.name == "domain" {
                text
            } else {
                rename_root(&text, &node.name)
            };
            w.raw_lines(&text);
        }
        None => node.write(w),
    }
}

/// `<domain ...>...</domain>` as `<NAME ...>...</NAME>`.
fn rename_root(text: &str, name: &str) -> String {
    let body = text.trim_end();
    let open = body.strip_prefix("<domain").unwrap_or(body);
    let inner = open.strip_suffix("</domain>").unwrap_or(open);
    format!("<{name}{inner}</{name}>\n")
}
