//! libvirt's `.replies` format: a QMP conversation written as pretty-printed JSON objects
//! separated by blank lines, alternating command and reply, ids `libvirt-N` counting from 1 in
//! each QEMU session.

use serde_json::{Map, Value};

use super::QmpError;

/// One command and QEMU's answer to it.
#[derive(Debug, Clone, PartialEq)]
pub struct Exchange {
    pub command: Value,
    pub reply: Value,
}

impl Exchange {
    /// The `execute` name of the command.
    pub fn name(&self) -> &str {
        self.command
            .get("execute")
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    pub fn arguments(&self) -> Option<&Value> {
        self.command.get("arguments")
    }
}

/// A recorded conversation, possibly several QEMU sessions one after another (each starts
/// with `qmp_capabilities`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Conversation {
    pub exchanges: Vec<Exchange>,
}

fn err(file: &str, msg: impl Into<String>) -> QmpError {
    QmpError::Replies {
        file: file.to_string(),
        msg: msg.into(),
    }
}

impl Conversation {
    /// Parse `.replies` text. `file` names the source in errors, which also give the line
    /// and, where it helps, the exchange number.
    pub fn parse(text: &str, file: &str) -> Result<Self, QmpError> {
        Self::parse_located(text, file).map(|(c, _)| c)
    }

    /// [`Conversation::parse`], also returning the line each exchange's command starts on.
    pub(crate) fn parse_located(text: &str, file: &str) -> Result<(Self, Vec<usize>), QmpError> {
        let mut lines = LineCounter::new(text);
        let mut values = Vec::new();
        let mut stream = serde_json::Deserializer::from_str(text).into_iter::<Value>();
        loop {
            // byte_offset() is where the previous value ended; this one starts after the
            // whitespace that follows.
            let offset = stream.byte_offset();
            match stream.next() {
                None => break,
                Some(Ok(v)) => values.push((lines.line_at(offset), v)),
                Some(Err(e)) => {
                    return Err(err(
                        file,
                        format!(
                            "line {}: exchange {}: invalid JSON: {e}",
                            e.line(),
                            values.len() / 2 + 1
                        ),
                    ));
                }
            }
        }
        let mut exchanges = Vec::new();
        let mut starts = Vec::new();
        let mut it = values.into_iter().peekable();
        while let Some((line, command)) = it.next() {
            let n = exchanges.len() + 1;
            let Some(name) = command.get("execute").and_then(Value::as_str) else {
                let what = if is_reply(&command) {
                    "a reply where a command was expected (is a command missing?)"
                } else {
                    "expected a command object with \"execute\""
                };
                return Err(err(file, format!("line {line}: exchange {n}: {what}")));
            };
            match it.peek() {
                Some((_, v)) if is_reply(v) => {}
                Some((l, v)) if v.get("execute").is_some() => {
                    return Err(err(
                        file,
                        format!(
                            "line {line}: exchange {n}: command '{name}' has no reply \
                             (line {l} starts the next command)"
                        ),
                    ));
                }
                Some((l, _)) => {
                    return Err(err(
                        file,
                        format!(
                            "line {l}: exchange {n}: expected the reply to '{name}' \
                             (an object with \"return\" or \"error\")"
                        ),
                    ));
                }
                None => {
                    return Err(err(
                        file,
                        format!(
                            "line {line}: exchange {n}: command '{name}' has no reply \
                             (the file ends)"
                        ),
                    ));
                }
            }
            let Some((_, reply)) = it.next() else {
                // Unreachable: peek() just saw a reply. Kept as an error, not a panic.
                return Err(err(file, format!("line {line}: exchange {n}: no reply")));
            };
            exchanges.push(Exchange { command, reply });
            starts.push(line);
        }
        Ok((Conversation { exchanges }, starts))
    }

    /// Read and parse a `.replies` file.
    pub fn load(path: &std::path::Path) -> Result<Self, QmpError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| err(&path.display().to_string(), e.to_string()))?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Format as libvirt writes `.replies` files.
    pub fn format(&self) -> String {
        let mut out = String::new();
        for (i, ex) in self.exchanges.iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            pretty(&ex.command, 0, &mut out);
            out.push_str("\n\n");
            pretty(&ex.reply, 0, &mut out);
            out.push('\n');
        }
        out
    }

    /// Rewrite ids so that they count `libvirt-1`, `libvirt-2`, ... restarting at each
    /// `qmp_capabilities`. Returns how many ids changed.
    pub fn renumber(&mut self) -> usize {
        let mut n = 0;
        let mut changed = 0;
        for ex in &mut self.exchanges {
            if ex.name() == "qmp_capabilities" {
                n = 0;
            }
            n += 1;
            let id = Value::String(format!("libvirt-{n}"));
            for v in [&mut ex.command, &mut ex.reply] {
                if let Value::Object(m) = v {
                    if m.get("id") != Some(&id) {
                        changed += 1;
                    }
                    set_id(m, id.clone());
                }
            }
        }
        changed
    }

    /// Check that ids are numbered as [`Conversation::renumber`] would number them; the
    /// error names the first exchange that is off.
    pub fn check_numbering(&self) -> Result<(), String> {
        match self.numbering_problems().into_iter().next() {
            Some((_, msg)) => Err(msg),
            None => Ok(()),
        }
    }

    /// Every id that differs from what [`Conversation::renumber`] would write, as
    /// (exchange index from 0, message naming the exchange from 1).
    pub fn numbering_problems(&self) -> Vec<(usize, String)> {
        let mut out = Vec::new();
        let mut n = 0;
        for (i, ex) in self.exchanges.iter().enumerate() {
            if ex.name() == "qmp_capabilities" {
                n = 0;
            }
            n += 1;
            let want = format!("libvirt-{n}");
            for (what, v) in [("command", &ex.command), ("reply", &ex.reply)] {
                let got = v.get("id");
                if got.and_then(Value::as_str) != Some(want.as_str()) {
                    out.push((
                        i,
                        format!(
                            "exchange {} ('{}'): {what} id is {}, expected '{want}'",
                            i + 1,
                            ex.name(),
                            match got {
                                None => "missing".to_string(),
                                Some(Value::String(g)) => format!("'{g}'"),
                                Some(other) => other.to_string(),
                            }
                        ),
                    ));
                }
            }
        }
        out
    }
}

fn is_reply(v: &Value) -> bool {
    v.get("return").is_some() || v.get("error").is_some()
}

/// Line numbers for increasing byte offsets, in one pass over the text overall (files with
/// query-qmp-schema replies run to megabytes, so rescanning from the start would be slow).
struct LineCounter<'a> {
    text: &'a str,
    pos: usize,
    line: usize,
}

impl<'a> LineCounter<'a> {
    fn new(text: &'a str) -> Self {
        LineCounter {
            text,
            pos: 0,
            line: 1,
        }
    }

    /// The line of the first non-whitespace character at or after `off`.
    fn line_at(&mut self, off: usize) -> usize {
        let bytes = self.text.as_bytes();
        let mut start = off.clamp(self.pos, bytes.len());
        while start < bytes.len() && bytes[start].is_ascii_whitespace() {
            start += 1;
        }
        self.line += bytes[self.pos..start]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        self.pos = start;
        self.line
    }
}

/// Keep `id` where it was if present (replies put it first or last); append otherwise.
fn set_id(m: &mut Map<String, Value>, id: Value) {
    if let Some(v) = m.get_mut("id") {
        *v = id;
    } else {
        m.insert("id".into(), id);
    }
}

/// libvirt's pretty printer: two-space indent, `"key": value`, and empty containers written
/// open on one line and closed on the next (`{` newline `}`), unlike serde_json's `{}`.
pub fn pretty(v: &Value, depth: usize, out: &mut String) {
    let pad = |d: usize, out: &mut String| {
        for _ in 0..d {
            out.push_str("  ");
        }
    };
    match v {
        Value::Object(m) => {
            out.push_str("{\n");
            let n = m.len();
            for (i, (k, val)) in m.iter().enumerate() {
                pad(depth + 1, out);
                out.push_str(&Value::String(k.clone()).to_string());
                out.push_str(": ");
                pretty(val, depth + 1, out);
                if i + 1 < n {
                    out.push(',');
                }
                out.push('\n');
            }
            pad(depth, out);
            out.push('}');
        }
        Value::Array(a) => {
            out.push_str("[\n");
            let n = a.len();
            for (i, val) in a.iter().enumerate() {
                pad(depth + 1, out);
                pretty(val, depth + 1, out);
                if i + 1 < n {
                    out.push(',');
                }
                out.push('\n');
            }
            pad(depth, out);
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "{\n  \"execute\": \"qmp_capabilities\",\n  \"id\": \"libvirt-1\"\n}\n\n{\n  \"return\": {\n  },\n  \"id\": \"libvirt-1\"\n}\n\n{\n  \"execute\": \"query-target\",\n  \"id\": \"libvirt-2\"\n}\n\n{\n  \"return\": {\n    \"arch\": \"x86_64\",\n    \"l\": [\n    ]\n  },\n  \"id\": \"libvirt-2\"\n}\n";

    #[test]
    fn round_trips_libvirt_format() {
        let c = Conversation::parse(SAMPLE, "s").unwrap();
        assert_eq!(c.exchanges.len(), 2);
        assert_eq!(c.exchanges[1].name(), "query-target");
        assert_eq!(c.format(), SAMPLE);
        c.check_numbering().unwrap();
    }

    #[test]
    fn renumber_fixes_ids() {
        let mut c = Conversation::parse(&SAMPLE.replace("libvirt-2", "libvirt-7"), "s").unwrap();
        let e = c.check_numbering().unwrap_err();
        assert!(e.contains("exchange 2 ('query-target')"), "{e}");
        assert_eq!(c.renumber(), 2);
        assert_eq!(c.format(), SAMPLE);
    }

    #[test]
    fn errors_name_file_and_line() {
        let e = Conversation::parse("{\"execute\":\"x\"}\n\n{\"nope\":1}\n", "f.replies")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("f.replies: line 3"), "{e}");
        let e = Conversation::parse("{\"execute\":\"x\"}\n", "f.replies")
            .unwrap_err()
            .to_string();
        assert!(e.contains("command 'x' has no reply"), "{e}");
        let e = Conversation::parse("{\"execute\":", "f.replies")
            .unwrap_err()
            .to_string();
        assert!(e.contains("invalid JSON"), "{e}");
    }
}
