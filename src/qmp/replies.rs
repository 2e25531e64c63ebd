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
    /// Parse `.replies` text. `file` names the source in errors.
    pub fn parse(text: &str, file: &str) -> Result<Self, QmpError> {
        let mut values = Vec::new();
        let mut stream = serde_json::Deserializer::from_str(text).into_iter::<Value>();
        loop {
            let offset = stream.byte_offset();
            match stream.next() {
                None => break,
                Some(Ok(v)) => values.push((offset, v)),
                Some(Err(e)) => {
                    return Err(err(file, format!("line {}: invalid JSON: {e}", e.line())));
                }
            }
        }
        // byte_offset() is where the previous value ended; the value itself starts after the
        // whitespace that follows.
        let line_of = |off: usize| {
            let off = off.min(text.len());
            let start = off + (text[off..].len() - text[off..].trim_start().len());
            text[..start].matches('\n').count() + 1
        };
        let mut exchanges = Vec::new();
        let mut it = values.into_iter();
        while let Some((off, command)) = it.next() {
            if command.get("execute").and_then(Value::as_str).is_none() {
                return Err(err(
                    file,
                    format!(
                        "line {}: expected a command object with \"execute\"",
                        line_of(off)
                    ),
                ));
            }
            let Some((roff, reply)) = it.next() else {
                return Err(err(
                    file,
                    format!(
                        "line {}: command '{}' has no reply",
                        line_of(off),
                        command["execute"].as_str().unwrap_or_default()
                    ),
                ));
            };
            if reply.get("return").is_none() && reply.get("error").is_none() {
                return Err(err(
                    file,
                    format!(
                        "line {}: expected a reply with \"return\" or \"error\"",
                        line_of(roff)
                    ),
                ));
            }
            exchanges.push(Exchange { command, reply });
        }
        Ok(Conversation { exchanges })
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
        let mut n = 0;
        for (i, ex) in self.exchanges.iter().enumerate() {
            if ex.name() == "qmp_capabilities" {
                n = 0;
            }
            n += 1;
            let want = format!("libvirt-{n}");
            for (what, v) in [("command", &ex.command), ("reply", &ex.reply)] {
                let got = v.get("id").and_then(Value::as_str);
                if got != Some(want.as_str()) {
                    return Err(format!(
                        "exchange {} ('{}'): {what} id is {}, expected '{want}'",
                        i + 1,
                        ex.name(),
                        got.map(|g| format!("'{g}'"))
                            .unwrap_or_else(|| "missing".into())
                    ));
                }
            }
        }
        Ok(())
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
