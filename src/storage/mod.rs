//! Storage pools and volumes as libvirt's storage driver models them: the XML of
//! `<pool>` and `<volume>` (libvirt: src/conf/storage_conf.c), pure, with no files or
//! processes. The driver that keeps pools and makes volumes is `crate::driver::storage`.

pub mod pool;
pub mod vol;

pub use pool::{PoolDef, PoolType};
pub use vol::{VolDef, VolFormat};

use crate::domain::DomainError;

pub(crate) fn xml_err(m: impl std::fmt::Display) -> DomainError {
    DomainError::Xml(format!("XML error: {m}"))
}

/// Permissions of a pool's target dir or a volume's file (libvirt: virStoragePerms). `None`
/// is libvirt's -1: not set, inherited.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Perms {
    pub mode: Option<u32>,
    pub owner: Option<u32>,
    pub group: Option<u32>,
    pub label: Option<String>,
}

impl Perms {
    /// Read `<permissions>` (libvirt: virStorageDefParsePerms).
    pub fn parse(node: Option<&crate::domain::xml::XmlNode>) -> Result<Perms, DomainError> {
        let Some(node) = node else {
            return Ok(Perms::default());
        };
        let text = |n: &str| node.child(n).map(|c| c.text.trim().to_string());
        let mode = match text("mode").filter(|m| !m.is_empty()) {
            None => None,
            Some(m) => match u32::from_str_radix(&m, 8) {
                Ok(v) if v & !0o777 == 0 => Some(v),
                _ => return Err(xml_err("malformed octal mode")),
            },
        };
        // libvirt once wrote -1 for "unset", and still reads it so.
        let id = |n: &str, what: &str| -> Result<Option<u32>, DomainError> {
            match text(n) {
                None => Ok(None),
                Some(v) => match v.parse::<i64>() {
                    Ok(-1) => Ok(None),
                    Ok(x) if (0..=u32::MAX as i64).contains(&x) => Ok(Some(x as u32)),
                    _ => Err(xml_err(format!("malformed {what} element"))),
                },
            }
        };
        Ok(Perms {
            mode,
            owner: id("owner", "owner")?,
            group: id("group", "group")?,
            label: text("label").filter(|l| !l.is_empty()),
        })
    }

    pub fn is_empty(&self) -> bool {
        self == &Perms::default()
    }

    /// `<permissions>` as libvirt writes it, nothing when nothing is set.
    pub fn format(&self, out: &mut Lines) {
        if self.is_empty() {
            return;
        }
        out.open("<permissions>");
        if let Some(m) = self.mode {
            out.line(format!("<mode>0{m:o}</mode>"));
        }
        if let Some(o) = self.owner {
            out.line(format!("<owner>{o}</owner>"));
        }
        if let Some(g) = self.group {
            out.line(format!("<group>{g}</group>"));
        }
        if let Some(l) = &self.label {
            out.line(format!("<label>{}</label>", esc(l)));
        }
        out.close("</permissions>");
    }
}

pub(crate) fn esc(s: &str) -> String {
    crate::xmlfmt::escape_attr(s)
}

/// An indented line buffer, as libvirt's virBuffer with its indent.
#[derive(Debug, Default)]
pub struct Lines {
    buf: String,
    depth: usize,
}

impl Lines {
    pub fn line(&mut self, s: impl AsRef<str>) {
        for _ in 0..self.depth {
            self.buf.push_str("  ");
        }
        self.buf.push_str(s.as_ref());
        self.buf.push('\n');
    }

    pub fn open(&mut self, s: impl AsRef<str>) {
        self.line(s);
        self.depth += 1;
    }

    pub fn close(&mut self, s: impl AsRef<str>) {
        self.depth -= 1;
        self.line(s);
    }

    pub fn finish(self) -> String {
        self.buf
    }
}
