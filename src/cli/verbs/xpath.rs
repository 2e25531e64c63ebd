//! The XPath that `dumpxml --xpath` takes, a documented subset of XPath 1.0 location paths:
//!
//! - absolute (`/domain/devices/disk`) and relative paths (from the root element, as
//!   virsh's context node is `<domain>`), `//` for descendants, `|` for unions;
//! - steps: an element name, `*`, `.`, `@name`, `@*`, `text()`;
//! - predicates: `[N]` (1-based), `[last()]`, `[@a]`, `[@a='v']`, `[@a!='v']`, `[name]`,
//!   `[name='v']` (child text), several in a row.
//!
//! Anything else (functions, axes, `..`, arithmetic) is refused as an incorrect XPath.
//! Results are printed as libxml2's `xmlNodeDump` prints nodes, which is what virsh does.

use crate::domain::xml::XmlNode;

/// One selected node.
#[derive(Debug, Clone, PartialEq)]
pub enum Item<'a> {
    Element(&'a XmlNode),
    Attr(&'a str, &'a str),
    Text(&'a str),
}

#[derive(Debug, Clone, PartialEq)]
enum Test {
    Name(String),
    Any,
    SelfNode,
    Attr(String),
    AnyAttr,
    Text,
}

#[derive(Debug, Clone, PartialEq)]
enum Pred {
    Index(usize),
    Last,
    HasAttr(String),
    AttrEq(String, String, bool),
    HasChild(String),
    ChildEq(String, String),
}

#[derive(Debug, Clone, PartialEq)]
struct Step {
    descendants: bool,
    test: Test,
    preds: Vec<Pred>,
}

/// libvirt's message for an expression it cannot use.
fn incorrect(expr: &str) -> String {
    format!("internal error: Incorrect xpath '{expr}'")
}

/// Split `s` on `sep` outside brackets and quotes.
fn split_top(s: &str, sep: char) -> Vec<&str> {
    let (mut depth, mut quote, mut start, mut out) = (0i32, None, 0, Vec::new());
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '[') => depth += 1,
            (None, ']') => depth -= 1,
            (None, c) if c == sep && depth == 0 => {
                out.push(&s[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

/// The index of the `]` closing a predicate whose text starts `s`, outside quotes.
fn closing_bracket(s: &str) -> Option<usize> {
    let mut quote = None;
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, ']') => return Some(i),
            (None, '[') => return None,
            _ => {}
        }
    }
    None
}

fn is_name(s: &str) -> bool {
    s.starts_with(|c: char| c.is_alphabetic() || c == '_')
        && s.chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'))
}

fn unquote(s: &str) -> Option<&str> {
    let s = s.trim();
    s.strip_prefix('\'')
        .and_then(|r| r.strip_suffix('\''))
        .or_else(|| s.strip_prefix('"').and_then(|r| r.strip_suffix('"')))
}

fn parse_pred(p: &str) -> Option<Pred> {
    let p = p.trim();
    if let Ok(n) = p.parse::<usize>() {
        return (n > 0).then_some(Pred::Index(n));
    }
    if p == "last()" {
        return Some(Pred::Last);
    }
    let (lhs, rhs, neg) = if let Some((l, r)) = p.split_once("!=") {
        (l.trim(), Some(r), true)
    } else if let Some((l, r)) = p.split_once('=') {
        (l.trim(), Some(r), false)
    } else {
        (p, None, false)
    };
    let value = match rhs {
        Some(r) => Some(unquote(r)?.to_string()),
        None => None,
    };
    match (lhs.strip_prefix('@'), value) {
        (Some(a), None) if is_name(a) => Some(Pred::HasAttr(a.into())),
        (Some(a), Some(v)) if is_name(a) => Some(Pred::AttrEq(a.into(), v, neg)),
        (None, None) if is_name(lhs) => Some(Pred::HasChild(lhs.into())),
        (None, Some(v)) if is_name(lhs) && !neg => Some(Pred::ChildEq(lhs.into(), v)),
        _ => None,
    }
}

fn parse_step(s: &str, descendants: bool) -> Option<Step> {
    let (head, mut rest) = match s.find('[') {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, ""),
    };
    let test = match head.trim() {
        "*" => Test::Any,
        "." => Test::SelfNode,
        "@*" => Test::AnyAttr,
        "text()" => Test::Text,
        h => match h.strip_prefix('@') {
            Some(a) if is_name(a) => Test::Attr(a.into()),
            None if is_name(h) => Test::Name(h.into()),
            _ => return None,
        },
    };
    let mut preds = Vec::new();
    while !rest.is_empty() {
        let inner = rest.strip_prefix('[')?;
        let end = closing_bracket(inner)?;
        preds.push(parse_pred(&inner[..end])?);
        rest = inner.get(end + 1..)?;
    }
    Some(Step {
        descendants,
        test,
        preds,
    })
}

/// (absolute, steps) of one location path.
fn parse_path(p: &str) -> Option<(bool, Vec<Step>)> {
    let p = p.trim();
    if p.is_empty() {
        return None;
    }
    let absolute = p.starts_with('/');
    let parts = split_top(p, '/');
    let mut steps = Vec::new();
    let mut descendants = false;
    for (i, part) in parts.iter().enumerate() {
        if part.is_empty() {
            // The leading '/' of an absolute path, or the middle of '//'.
            if i > 0 {
                descendants = true;
            }
            continue;
        }
        steps.push(parse_step(part, descendants)?);
        descendants = false;
    }
    (!steps.is_empty()).then_some((absolute, steps))
}

fn all_descendants<'a>(n: &'a XmlNode, out: &mut Vec<&'a XmlNode>) {
    for c in &n.children {
        out.push(c);
        all_descendants(c, out);
    }
}

fn child_text_is(n: &XmlNode, name: &str, v: &str) -> bool {
    n.children.iter().any(|c| c.name == name && c.text == v)
}

fn keep(n: &XmlNode, p: &Pred) -> bool {
    match p {
        Pred::HasAttr(a) => n.attr(a).is_some(),
        Pred::AttrEq(a, v, neg) => n.attr(a).is_some_and(|x| (x == v) != *neg),
        Pred::HasChild(c) => n.child(c).is_some(),
        Pred::ChildEq(c, v) => child_text_is(n, c, v),
        Pred::Index(_) | Pred::Last => true,
    }
}

/// Apply `step` to each context element; positional predicates count per context node.
fn apply<'a>(ctx: &[&'a XmlNode], step: &Step) -> Vec<Item<'a>> {
    let mut out = Vec::new();
    for &n in ctx {
        let pool: Vec<&'a XmlNode> = if step.descendants {
            let mut v = vec![n];
            all_descendants(n, &mut v);
            v
        } else {
            vec![n]
        };
        for base in pool {
            let mut found: Vec<Item<'a>> = match &step.test {
                Test::Name(name) => base
                    .children
                    .iter()
                    .filter(|c| c.name == *name)
                    .map(Item::Element)
                    .collect(),
                Test::Any => base.children.iter().map(Item::Element).collect(),
                Test::SelfNode => vec![Item::Element(base)],
                Test::Attr(a) => base
                    .attrs
                    .iter()
                    .filter(|(k, _)| k == a)
                    .map(|(k, v)| Item::Attr(k, v))
                    .collect(),
                Test::AnyAttr => base
                    .attrs
                    .iter()
                    .filter(|(k, _)| !k.starts_with("xmlns"))
                    .map(|(k, v)| Item::Attr(k, v))
                    .collect(),
                Test::Text => (!base.text.is_empty())
                    .then(|| Item::Text(&base.text))
                    .into_iter()
                    .collect(),
            };
            for p in &step.preds {
                found = match p {
                    Pred::Index(i) => found.get(i - 1).cloned().into_iter().collect(),
                    Pred::Last => found.last().cloned().into_iter().collect(),
                    p => found
                        .into_iter()
                        .filter(|it| matches!(it, Item::Element(e) if keep(e, p)))
                        .collect(),
                };
            }
            out.extend(found);
        }
    }
    out
}

/// The nodes `expr` selects in the document whose root element is `root`, in document
/// order per path (a union lists each path's nodes in turn, without duplicates).
pub fn select<'a>(root: &'a XmlNode, expr: &str) -> Result<Vec<Item<'a>>, String> {
    let mut out: Vec<Item<'a>> = Vec::new();
    // A synthetic document node whose only child is the root element.
    for path in split_top(expr, '|') {
        let (absolute, steps) = parse_path(path).ok_or_else(|| incorrect(expr))?;
        let mut items: Vec<Item<'a>>;
        let mut rest: &[Step] = &steps;
        if absolute {
            // The first step applies to the document node: it matches the root element.
            let first = &steps[0];
            let mut cand = vec![root];
            if first.descendants {
                all_descendants(root, &mut cand);
            }
            items = cand
                .into_iter()
                .filter(|n| match &first.test {
                    Test::Name(name) => n.name == *name,
                    Test::Any => true,
                    _ => false,
                })
                .map(Item::Element)
                .collect();
            for p in &first.preds {
                items = match p {
                    Pred::Index(i) => items.get(i - 1).cloned().into_iter().collect(),
                    Pred::Last => items.last().cloned().into_iter().collect(),
                    p => items
                        .into_iter()
                        .filter(|it| matches!(it, Item::Element(e) if keep(e, p)))
                        .collect(),
                };
            }
            rest = &steps[1..];
        } else {
            items = vec![Item::Element(root)];
        }
        for step in rest {
            let ctx: Vec<&'a XmlNode> = items
                .iter()
                .filter_map(|i| match i {
                    Item::Element(e) => Some(*e),
                    _ => None,
                })
                .collect();
            items = apply(&ctx, step);
        }
        for it in items {
            if !out.contains(&it) {
                out.push(it);
            }
        }
    }
    Ok(out)
}

/// An item as libxml2's `xmlNodeDump` (level 0, formatted) writes it.
pub fn dump(item: &Item<'_>) -> String {
    match item {
        Item::Element(e) => {
            let mut s = String::new();
            e.to_libxml_string(0, &mut s);
            s.trim_end_matches('\n').to_string()
        }
        Item::Attr(k, v) => format!(
            " {k}=\"{}\"",
            v.replace('&', "&amp;")
                .replace('"', "&quot;")
                .replace('<', "&lt;")
        ),
        Item::Text(t) => t
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;"),
    }
}

/// `--wrap`: the items as children of a `<nodes>` element.
pub fn dump_wrapped(items: &[Item<'_>]) -> String {
    if items.is_empty() {
        return "<nodes/>".into();
    }
    let mut s = String::from("<nodes>\n");
    for it in items {
        match it {
            Item::Element(e) => e.to_libxml_string(1, &mut s),
            other => {
                s.push_str("  ");
                s.push_str(dump(other).trim_start());
                s.push('\n');
            }
        }
    }
    s.push_str("</nodes>");
    s
}

/// `dumpxml --xpath EXPR [--wrap]`: what virsh prints for document `xml`.
// libvirt: virshDumpXML
pub fn render(xml: &str, expr: &str, wrap: bool) -> anyhow::Result<String> {
    let root = crate::domain::xml::parse_document(xml)?;
    let items = select(&root, expr).map_err(anyhow::Error::msg)?;
    Ok(if wrap {
        dump_wrapped(&items)
    } else {
        items.iter().map(|i| format!("{}\n", dump(i))).collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::xml::parse_document;

    const XML: &str = "<domain type='qemu'><name>vm</name><devices>\
        <disk type='file' device='disk'><source file='/a.img'/><target dev='vda' bus='virtio'/></disk>\
        <disk type='file' device='cdrom'><target dev='sda' bus='sata'/></disk>\
        <interface type='user'><mac address='52:54:00:00:00:01'/></interface>\
        </devices></domain>";

    fn sel(expr: &str) -> Vec<String> {
        let root = parse_document(XML).unwrap();
        select(&root, expr).unwrap().iter().map(dump).collect()
    }

    #[test]
    fn paths() {
        assert_eq!(sel("/domain/name"), ["<name>vm</name>"]);
        assert_eq!(sel("name"), ["<name>vm</name>"]);
        assert_eq!(sel("//target/@dev"), [" dev=\"vda\"", " dev=\"sda\""]);
        assert_eq!(sel("/domain/devices/disk[2]/target/@dev"), [" dev=\"sda\""]);
        assert_eq!(
            sel("//disk[@device='cdrom']/target/@bus"),
            [" bus=\"sata\""]
        );
        assert_eq!(sel("//disk[last()]/@device"), [" device=\"cdrom\""]);
        assert_eq!(sel("/domain/name/text()"), ["vm"]);
        assert_eq!(sel("//mac/@address | /domain/@type").len(), 2);
        assert_eq!(
            sel("//disk[source]"),
            [
                "<disk type=\"file\" device=\"disk\">\n  <source file=\"/a.img\"/>\n  <target dev=\"vda\" bus=\"virtio\"/>\n</disk>"
            ]
        );
        assert!(sel("/nope").is_empty());
    }

    #[test]
    fn unsupported_expressions_are_refused() {
        let root = parse_document(XML).unwrap();
        for bad in ["", "count(//disk)", "..", "//disk[", "a b"] {
            assert_eq!(
                select(&root, bad).unwrap_err(),
                format!("internal error: Incorrect xpath '{bad}'"),
                "{bad}"
            );
        }
    }

    #[test]
    fn wrapped() {
        let root = parse_document(XML).unwrap();
        let items = select(&root, "//target").unwrap();
        assert_eq!(
            dump_wrapped(&items),
            "<nodes>\n  <target dev=\"vda\" bus=\"virtio\"/>\n  <target dev=\"sda\" bus=\"sata\"/>\n</nodes>"
        );
    }
}
