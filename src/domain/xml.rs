//! A small DOM over quick-xml, used as the first stage of domain parsing.
//!
//! Parsing into a tree first lets the typed conversion look attributes and children up by name
//! in any order (libvirt accepts any order on input) and lets anything we do not model yet be
//! kept verbatim rather than silently dropped.

use std::cell::RefCell;

use quick_xml::events::{BytesStart, Event};
use quick_xml::reader::Reader;

use super::DomainError;
use crate::xmlfmt::XmlWriter;

/// Largest document we accept. Domain XML is a few KiB in practice; the limit bounds memory and
/// time spent on hostile input before any parsing happens.
pub const MAX_XML_SIZE: usize = 10 * 1024 * 1024;

/// Most attributes accepted on one element; libvirt's elements have a handful, and attribute
/// lookups are linear.
const MAX_ATTRS: usize = 256;

/// Deepest element nesting accepted, so a recursive conversion cannot exhaust the stack.
const MAX_DEPTH: usize = 256;

/// One element: its name (with prefix, if any), attributes in document order, child elements and
/// the concatenation of its character data.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct XmlNode {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub children: Vec<XmlNode>,
    pub text: String,
    /// Written as `<x>` + `</x>` on two lines even without children, a libvirt quirk for a
    /// few elements such as `<hyperv mode='passthrough'>`.
    pub open_empty: bool,
}

impl XmlNode {
    pub fn new(name: &str) -> Self {
        XmlNode {
            name: name.to_string(),
            ..Default::default()
        }
    }

    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn child(&self, name: &str) -> Option<&XmlNode> {
        self.children.iter().find(|c| c.name == name)
    }

    /// Builder: add an attribute.
    pub fn a(mut self, name: &str, value: impl std::fmt::Display) -> Self {
        self.attrs.push((name.to_string(), value.to_string()));
        self
    }

    /// Builder: add an attribute when present.
    pub fn ao<T: std::fmt::Display>(self, name: &str, value: Option<T>) -> Self {
        match value {
            Some(v) => self.a(name, v),
            None => self,
        }
    }

    /// Builder: add a child element.
    pub fn c(mut self, child: XmlNode) -> Self {
        self.children.push(child);
        self
    }

    /// Builder: add a child element when present.
    pub fn co(mut self, child: Option<XmlNode>) -> Self {
        if let Some(c) = child {
            self.children.push(c);
        }
        self
    }

    /// Builder: add several children.
    pub fn cs(mut self, children: impl IntoIterator<Item = XmlNode>) -> Self {
        self.children.extend(children);
        self
    }

    /// Builder: set the text.
    pub fn t(mut self, text: impl std::fmt::Display) -> Self {
        self.text = text.to_string();
        self
    }

    /// Builder: append the attributes we did not model.
    pub fn extra_attrs(mut self, extra: &Extra) -> Self {
        self.attrs.extend(extra.attrs.iter().cloned());
        self
    }

    /// Builder: append the child elements we did not model.
    pub fn extra_children(mut self, extra: &Extra) -> Self {
        self.children.extend(extra.children.iter().cloned());
        self
    }

    /// An element with no attributes and no children carries nothing.
    pub fn is_bare(&self) -> bool {
        self.attrs.is_empty() && self.children.is_empty() && self.text.is_empty()
    }

    /// Write this element the way libvirt writes its own elements (single quotes, two-space
    /// indent), used for sub-elements we keep verbatim.
    pub fn write(&self, w: &mut XmlWriter) {
        let mut e = w.elem(&self.name);
        for (k, v) in &self.attrs {
            e = e.attr(k, v);
        }
        if !self.children.is_empty() || (self.open_empty && self.text.is_empty()) {
            e.open();
            for c in &self.children {
                c.write(w);
            }
            w.close();
        } else if !self.text.is_empty() {
            e.text(&self.text);
        } else {
            e.empty();
        }
    }

    /// Serialize the way libxml2's `xmlNodeDump` with formatting does (double quotes), which is
    /// how libvirt re-emits `<metadata>` content. `depth` is the indent level of this element.
    pub fn to_libxml_string(&self, depth: usize, out: &mut String) {
        for _ in 0..depth {
            out.push_str("  ");
        }
        out.push('<');
        out.push_str(&self.name);
        for (k, v) in &self.attrs {
            out.push(' ');
            out.push_str(k);
            out.push_str("=\"");
            out.push_str(&escape_libxml_attr(v));
            out.push('"');
        }
        if !self.children.is_empty() {
            out.push_str(">\n");
            for c in &self.children {
                c.to_libxml_string(depth + 1, out);
            }
            for _ in 0..depth {
                out.push_str("  ");
            }
            out.push_str("</");
            out.push_str(&self.name);
            out.push_str(">\n");
        } else if !self.text.is_empty() {
            out.push('>');
            out.push_str(&escape_libxml_text(&self.text));
            out.push_str("</");
            out.push_str(&self.name);
            out.push_str(">\n");
        } else {
            out.push_str("/>\n");
        }
    }
}

/// An attribute value escaped for a double-quoted attribute, as libxml2 writes it.
pub fn escape_attr_dq(s: &str) -> String {
    escape_libxml_attr(s)
}

/// The namespace declarations element `n` is written with when copied out of its document, as
/// libxml2's node copy does it: `n`'s own, then each prefix its subtree uses (element or
/// attribute names) that is declared only on an ancestor (`ancestor_attrs`), in order of first
/// use. A subtree's own declarations stay where they are.
pub fn inherited_namespaces(
    n: &XmlNode,
    ancestor_attrs: &[(String, String)],
) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = n
        .attrs
        .iter()
        .filter(|(k, _)| k.starts_with("xmlns:"))
        .cloned()
        .collect();
    // Prefixes declared on the copy's root (its own and those added to it) and, while
    // walking, on the elements between it and the current one.
    let mut local: Vec<String> = Vec::new();
    fn walk(
        n: &XmlNode,
        local: &mut Vec<String>,
        anc: &[(String, String)],
        out: &mut Vec<(String, String)>,
    ) {
        let mark = local.len();
        local.extend(
            n.attrs
                .iter()
                .filter_map(|(k, _)| k.strip_prefix("xmlns:").map(String::from)),
        );
        let used = std::iter::once(n.name.as_str())
            .chain(n.attrs.iter().map(|(k, _)| k.as_str()))
            .filter_map(|name| name.split_once(':').map(|(p, _)| p))
            .filter(|p| *p != "xmlns" && *p != "xml");
        for p in used {
            let key = format!("xmlns:{p}");
            if local.iter().any(|s| s == p) || out.iter().any(|(k, _)| *k == key) {
                continue;
            }
            if let Some(d) = anc.iter().find(|(k, _)| *k == key) {
                out.push(d.clone());
            }
        }
        for c in &n.children {
            walk(c, local, anc, out);
        }
        local.truncate(mark);
    }
    for c in &n.children {
        walk(c, &mut local, ancestor_attrs, &mut out);
    }
    out
}

fn escape_libxml_attr(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn escape_libxml_text(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// 1-based line and column of a byte offset, for error messages.
fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(src.len());
    let before = src.get(..offset).unwrap_or(src);
    let line = before.matches('\n').count() + 1;
    let col = before
        .rfind('\n')
        .map_or(before.chars().count(), |p| before[p + 1..].chars().count())
        + 1;
    (line, col)
}

fn malformed(src: &str, offset: u64, msg: impl std::fmt::Display) -> DomainError {
    let (line, col) = line_col(src, usize::try_from(offset).unwrap_or(usize::MAX));
    DomainError::Xml(format!(
        "XML error: malformed XML at line {line}, column {col}: {msg}"
    ))
}

/// Whether `name` is an XML name (NameStartChar then NameChars; every non-ASCII character
/// is let through, as the ranges the spec excludes there are rare punctuation). quick-xml
/// does not check names, and a name that is not one could not be read back once written.
fn is_xml_name(name: &str) -> bool {
    let mut chars = name.chars();
    let start = |c: char| c.is_ascii_alphabetic() || c == '_' || c == ':' || !c.is_ascii();
    chars.next().is_some_and(start)
        && chars.all(|c| start(c) || c.is_ascii_digit() || c == '-' || c == '.')
}

fn start_to_node(src: &str, pos: u64, e: &BytesStart<'_>) -> Result<XmlNode, DomainError> {
    let name = e.name().0.to_string();
    if !is_xml_name(&name) {
        return Err(malformed(
            src,
            pos,
            format_args!("invalid element name '{name}'"),
        ));
    }
    let mut node = XmlNode::new(&name);
    let mut keys = std::collections::HashSet::new();
    // quick-xml's own duplicate check is quadratic in the number of attributes; ours is not.
    for a in e.attributes().with_checks(false) {
        let a = a.map_err(|err| malformed(src, pos, err))?;
        let key = a.key.0.to_string();
        if !is_xml_name(&key) {
            return Err(malformed(
                src,
                pos,
                format_args!("invalid attribute name '{key}'"),
            ));
        }
        if keys.len() >= MAX_ATTRS {
            return Err(malformed(src, pos, "too many attributes on one element"));
        }
        if !keys.insert(key.clone()) {
            return Err(malformed(
                src,
                pos,
                format_args!("attribute '{key}' redefined"),
            ));
        }
        // Only the predefined entities and character references are known, so any other
        // entity reference is an error: nothing is ever expanded from a DTD.
        let val = a
            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .map_err(|err| malformed(src, pos, err))?;
        node.attrs.push((key, val.into_owned()));
    }
    Ok(node)
}

fn resolve_entity(name: &str) -> Option<char> {
    match name {
        "lt" => Some('<'),
        "gt" => Some('>'),
        "amp" => Some('&'),
        "apos" => Some('\''),
        "quot" => Some('"'),
        _ => None,
    }
}

/// Parse a whole document and return its root element.
///
/// Refuses documents over [`MAX_XML_SIZE`], any `<!DOCTYPE>` (so no entity can be declared, let
/// alone expanded) and references to undeclared entities.
pub fn parse_document(src: &str) -> Result<XmlNode, DomainError> {
    if src.len() > MAX_XML_SIZE {
        return Err(DomainError::Xml(format!(
            "XML error: document is {} bytes, larger than the limit of {MAX_XML_SIZE} bytes",
            src.len()
        )));
    }
    // A UTF-8 byte order mark is allowed before the document and carries no content.
    let src = src.strip_prefix('\u{feff}').unwrap_or(src);
    // XML 1.0 allows no control characters but tab, newline and carriage return; quick-xml
    // does not check, and a NUL inside a tag would otherwise end up in an attribute name.
    if let Some(bad) = src.find(|c: char| c < ' ' && !matches!(c, '\t' | '\n' | '\r')) {
        let c = src[bad..].chars().next().unwrap_or('\0');
        return Err(malformed(
            src,
            bad as u64,
            format_args!("invalid character U+{:04X}", c as u32),
        ));
    }
    let mut reader = Reader::from_str(src);
    let cfg = reader.config_mut();
    cfg.trim_text(false);
    cfg.check_end_names = true;
    cfg.expand_empty_elements = false;

    let mut stack: Vec<XmlNode> = Vec::new();
    let mut root: Option<XmlNode> = None;
    loop {
        let pos = reader.buffer_position();
        let ev = reader
            .read_event()
            .map_err(|e| malformed(src, reader.error_position(), e))?;
        match ev {
            Event::Start(e) => {
                if root.is_some() {
                    return Err(malformed(
                        src,
                        pos,
                        "extra content at the end of the document",
                    ));
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(malformed(src, pos, "elements nested too deeply"));
                }
                stack.push(start_to_node(src, pos, &e)?);
            }
            Event::Empty(e) => {
                let node = start_to_node(src, pos, &e)?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(node),
                    None if root.is_none() => root = Some(node),
                    None => {
                        return Err(malformed(
                            src,
                            pos,
                            "extra content at the end of the document",
                        ));
                    }
                }
            }
            Event::End(_) => {
                let Some(mut node) = stack.pop() else {
                    return Err(malformed(src, pos, "unexpected end tag"));
                };
                if !node.children.is_empty() && node.text.trim().is_empty() {
                    // Indentation between child elements is not content.
                    node.text.clear();
                }
                match stack.last_mut() {
                    Some(parent) => parent.children.push(node),
                    None => root = Some(node),
                }
            }
            Event::Text(t) => {
                let text = t.xml10_content();
                match stack.last_mut() {
                    Some(n) => n.text.push_str(&text),
                    None if text.trim().is_empty() => {}
                    None => return Err(malformed(src, pos, "text outside the root element")),
                }
            }
            Event::CData(t) => {
                let text = t.into_inner().into_owned();
                match stack.last_mut() {
                    Some(n) => n.text.push_str(&text),
                    None => return Err(malformed(src, pos, "CDATA outside the root element")),
                }
            }
            Event::GeneralRef(r) => {
                let c = if r.is_char_ref() {
                    r.resolve_char_ref().map_err(|e| malformed(src, pos, e))?
                } else {
                    resolve_entity(&r)
                };
                let Some(c) = c else {
                    return Err(malformed(
                        src,
                        pos,
                        format_args!("entity '{}' not defined (entities are not supported)", &*r),
                    ));
                };
                match stack.last_mut() {
                    Some(n) => n.text.push(c),
                    None => return Err(malformed(src, pos, "text outside the root element")),
                }
            }
            Event::DocType(_) => {
                return Err(malformed(
                    src,
                    pos,
                    "DTDs and entity declarations are not allowed",
                ));
            }
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) => {}
            Event::Eof => break,
        }
    }
    if let Some(open) = stack.last() {
        return Err(malformed(
            src,
            src.len() as u64,
            format_args!("premature end of data in tag {}", open.name),
        ));
    }
    root.ok_or_else(|| DomainError::Xml("XML error: document is empty".to_string()))
}

/// Reads one element, remembering which attributes and children the typed conversion used so
/// that the rest can be kept verbatim.
pub(crate) struct Rd<'a> {
    pub node: &'a XmlNode,
    used_attrs: RefCell<Vec<bool>>,
    used_children: RefCell<Vec<bool>>,
}

/// Attributes and children of an element that the typed model does not cover, kept in document
/// order and written back after the typed ones.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Extra {
    pub attrs: Vec<(String, String)>,
    pub children: Vec<XmlNode>,
}

impl Extra {
    pub fn is_empty(&self) -> bool {
        self.attrs.is_empty() && self.children.is_empty()
    }

    /// A kept attribute's value.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn write_children(&self, w: &mut XmlWriter) {
        for c in &self.children {
            c.write(w);
        }
    }
}

impl<'a> Rd<'a> {
    pub fn new(node: &'a XmlNode) -> Self {
        Rd {
            node,
            used_attrs: RefCell::new(vec![false; node.attrs.len()]),
            used_children: RefCell::new(vec![false; node.children.len()]),
        }
    }

    pub fn attr(&self, name: &str) -> Option<String> {
        let i = self.node.attrs.iter().position(|(k, _)| k == name)?;
        self.used_attrs.borrow_mut()[i] = true;
        Some(self.node.attrs[i].1.clone())
    }

    /// The first child with this name. Later ones are consumed too: libvirt reads the first
    /// and ignores the rest, and keeping them verbatim would put them before the typed one on
    /// output, so that a second round would read a different element.
    pub fn child(&self, name: &str) -> Option<&'a XmlNode> {
        let i = self.node.children.iter().position(|c| c.name == name)?;
        let mut used = self.used_children.borrow_mut();
        for (j, c) in self.node.children.iter().enumerate().skip(i) {
            if c.name == name {
                used[j] = true;
            }
        }
        Some(&self.node.children[i])
    }

    pub fn children(&self, name: &str) -> Vec<&'a XmlNode> {
        let mut used = self.used_children.borrow_mut();
        let mut out = Vec::new();
        for (i, c) in self.node.children.iter().enumerate() {
            if c.name == name {
                used[i] = true;
                out.push(c);
            }
        }
        out
    }

    /// Text of the first child with this name.
    pub fn child_text(&self, name: &str) -> Option<String> {
        self.child(name).map(|c| c.text.clone())
    }

    /// Text of the first child with this name, absent when empty: libvirt reads such
    /// elements with `virXPathString`, which gives NULL for an empty string.
    pub fn child_text_nonempty(&self, name: &str) -> Option<String> {
        self.child_text(name).filter(|t| !t.is_empty())
    }

    /// The first child with this name, kept verbatim.
    pub fn child_node(&self, name: &str) -> Option<XmlNode> {
        self.child(name).cloned()
    }

    pub fn extra(&self) -> Extra {
        let ua = self.used_attrs.borrow();
        let uc = self.used_children.borrow();
        Extra {
            attrs: self
                .node
                .attrs
                .iter()
                .zip(ua.iter())
                .filter(|(_, u)| !**u)
                .map(|(a, _)| a.clone())
                .collect(),
            children: self
                .node
                .children
                .iter()
                .zip(uc.iter())
                .filter(|(_, u)| !**u)
                .map(|(c, _)| c.clone())
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_doctype() {
        let e = parse_document("<!DOCTYPE x [<!ENTITY a 'b'>]><x>&a;</x>").unwrap_err();
        assert!(e.to_string().contains("DTD"), "{e}");
    }

    #[test]
    fn reports_line_and_column() {
        let e = parse_document("<a>\n  <b></c>\n</a>").unwrap_err();
        assert!(e.to_string().contains("line 2"), "{e}");
    }

    #[test]
    fn accepts_bom_declaration_and_crlf() {
        let n =
            parse_document("\u{feff}<?xml version='1.0'?>\r\n<a b='x\r\ny'>t\r\n</a>\r\n").unwrap();
        assert_eq!(n.attr("b"), Some("x y"));
        assert_eq!(n.text, "t\n");
    }

    #[test]
    fn refuses_names_that_are_not_xml_names() {
        let e = parse_document("<domain><video><model #ype='cirrus'/></video></domain>")
            .unwrap_err()
            .to_string();
        assert!(e.contains("invalid attribute name '#ype'"), "{e}");
        let e = parse_document("<domain><1video/></domain>")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("XML error: malformed XML"), "{e}");
        assert!(parse_document("<a xmlns:q='u'><q:b c-d.e_f='1'/></a>").is_ok());
    }

    #[test]
    fn refuses_too_many_attributes() {
        let attrs: String = (0..1000).map(|i| format!(" a{i}='x'")).collect();
        let e = parse_document(&format!("<a{attrs}/>")).unwrap_err();
        assert!(e.to_string().contains("too many attributes"), "{e}");
        let e = parse_document("<a x='1' x='2'/>").unwrap_err();
        assert!(e.to_string().contains("redefined"), "{e}");
    }

    #[test]
    fn keeps_text_and_attrs() {
        let n = parse_document("<a x='1&amp;2'>t&lt;<b/></a>").unwrap();
        assert_eq!(n.attr("x"), Some("1&2"));
        assert_eq!(n.text, "t<");
        assert_eq!(n.children[0].name, "b");
    }
}
