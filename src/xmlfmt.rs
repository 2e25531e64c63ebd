//! A tiny XML writer that formats the way libvirt does: two-space indent, single-quoted
//! attributes, `<a/>` for empty elements, one element per line.
//!
//! libvirt's formatter is line-oriented rather than a generic serializer, and byte-identical
//! output is what lets users diff our documents against `virsh`'s, so we mirror it directly
//! instead of going through serde.

use std::fmt::Write;

/// Escape text for an attribute value written between single quotes, as libvirt's
/// `virBufferEscapeString` does.
pub fn escape_attr(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\'' => out.push_str("&apos;"),
            '"' => out.push_str("&quot;"),
            _ => out.push(c),
        }
    }
    out
}

/// Escape element text content (libvirt escapes quotes there too).
pub fn escape_text(s: &str) -> String {
    escape_attr(s)
}

/// Builds an indented document line by line.
#[derive(Debug, Default, Clone)]
pub struct XmlWriter {
    buf: String,
    depth: usize,
    stack: Vec<String>,
}

/// An element being opened: attributes are added before it is written as empty, with text,
/// or with children.
#[must_use = "an element is only written by empty(), text() or open()"]
pub struct Elem<'w> {
    w: &'w mut XmlWriter,
    name: String,
    attrs: String,
}

impl XmlWriter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Start an element at the current depth.
    pub fn elem(&mut self, name: &str) -> Elem<'_> {
        Elem {
            w: self,
            name: name.to_string(),
            attrs: String::new(),
        }
    }

    /// Close the most recently opened element.
    pub fn close(&mut self) {
        let name = self.stack.pop().expect("close() without open()");
        self.depth -= 1;
        self.indent();
        let _ = writeln!(self.buf, "</{name}>");
    }

    /// Write a `<name>text</name>` line.
    pub fn text_elem(&mut self, name: &str, text: &str) {
        self.elem(name).text(text);
    }

    /// Append pre-formatted lines (already indented relative to the current depth).
    pub fn raw_lines(&mut self, text: &str) {
        for line in text.lines() {
            self.indent();
            self.buf.push_str(line);
            self.buf.push('\n');
        }
    }

    /// Append text exactly as given: for content serialized with its final indentation, whose
    /// text nodes must not gain indentation (re-indenting every line would shift multi-line
    /// text on each format round).
    pub fn raw(&mut self, text: &str) {
        self.buf.push_str(text);
    }

    /// An empty line, as libvirt puts between the top-level blocks of some documents.
    pub fn blank(&mut self) {
        self.buf.push('\n');
    }

    pub fn depth(&self) -> usize {
        self.depth
    }

    fn indent(&mut self) {
        for _ in 0..self.depth {
            self.buf.push_str("  ");
        }
    }

    pub fn finish(self) -> String {
        debug_assert!(self.stack.is_empty(), "unclosed elements: {:?}", self.stack);
        self.buf
    }
}

impl Elem<'_> {
    /// Add an attribute; the value is escaped.
    pub fn attr(mut self, name: &str, value: impl std::fmt::Display) -> Self {
        let v = value.to_string();
        let _ = write!(self.attrs, " {name}='{}'", escape_attr(&v));
        self
    }

    /// Add an attribute only when `value` is `Some`.
    pub fn attr_opt<T: std::fmt::Display>(self, name: &str, value: Option<T>) -> Self {
        match value {
            Some(v) => self.attr(name, v),
            None => self,
        }
    }

    /// `<name attrs/>`
    pub fn empty(self) {
        self.w.indent();
        let _ = writeln!(self.w.buf, "<{}{}/>", self.name, self.attrs);
    }

    /// `<name attrs>text</name>`
    pub fn text(self, text: &str) {
        self.w.indent();
        let _ = writeln!(
            self.w.buf,
            "<{}{}>{}</{}>",
            self.name,
            self.attrs,
            escape_text(text),
            self.name
        );
    }

    /// `<name attrs>` followed by children; finish with [`XmlWriter::close`].
    pub fn open(self) {
        self.w.indent();
        let _ = writeln!(self.w.buf, "<{}{}>", self.name, self.attrs);
        self.w.depth += 1;
        self.w.stack.push(self.name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_libvirt() {
        let mut w = XmlWriter::new();
        w.elem("capabilities").open();
        w.elem("host").open();
        w.text_elem("uuid", "x<y");
        w.elem("cpu").attr("a", "it's").empty();
        w.close();
        w.close();
        assert_eq!(
            w.finish(),
            "<capabilities>\n  <host>\n    <uuid>x&lt;y</uuid>\n    <cpu a='it&apos;s'/>\n  </host>\n</capabilities>\n"
        );
    }
}
