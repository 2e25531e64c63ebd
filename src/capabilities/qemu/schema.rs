//! Path queries into QEMU's `query-qmp-schema` reply, in the query language libvirt uses to
//! name capability facts (`device_add/$json-cli-hotplug`, `blockdev-add/arg-type/+nvme`, ...).
//!
//! A query is `entity/step/step/...`: the first component names a command or event, and each
//! following step descends one level:
//! - `arg-type` / `ret-type` (and any other plain word on a command): follow that field;
//! - `name` on an object: follow member `name`; `*name`: the member must be optional;
//! - `+case` on an object: follow the union variant `case`;
//! - `^value` on an enum: true when the enum has that value (may be followed by `$feature`);
//! - `!jsontype` on a builtin: true when its JSON type matches;
//! - `$feature` anywhere: true when the entity lists that feature (must be last).
//!
//! Arrays are looked through, and alternates try each branch until one answers.

use std::collections::HashMap;

use serde_json::Value;

/// The schema indexed by entity name.
#[derive(Debug, Default)]
pub struct Schema<'a> {
    entries: HashMap<&'a str, &'a Value>,
}

/// Depth bound: a malformed (cyclic) schema must not recurse forever.
const MAX_DEPTH: usize = 1000;

impl<'a> Schema<'a> {
    /// Index a `query-qmp-schema` reply (an array of entities with a `name`).
    pub fn new(reply: &'a Value) -> Self {
        let mut entries = HashMap::new();
        if let Some(arr) = reply.as_array() {
            for e in arr {
                if let Some(n) = e.get("name").and_then(Value::as_str) {
                    entries.insert(n, e);
                }
            }
        }
        Schema { entries }
    }

    /// Whether the entity (command, event or type) exists.
    pub fn has(&self, name: &str) -> bool {
        self.entries.contains_key(name)
    }

    /// Whether `query` names something present in the schema. Malformed schemas or queries
    /// answer false: a capability we cannot confirm is a capability we do not use.
    pub fn path_exists(&self, query: &str) -> bool {
        let mut parts = query.split('/');
        let Some(first) = parts.next() else {
            return false;
        };
        if !self.has(first) {
            return false;
        }
        let rest: Vec<&str> = parts.collect();
        let mut depth = 0;
        self.traverse(first, &rest, &mut depth) == Some(true)
    }

    /// `None` means malformed (treated as not found by the caller).
    fn traverse(&self, name: &str, q: &[&str], depth: &mut usize) -> Option<bool> {
        *depth += 1;
        if *depth > MAX_DEPTH {
            return None;
        }
        let cur = *self.entries.get(name)?;
        if q.is_empty() {
            return Some(true);
        }
        match cur.get("meta-type").and_then(Value::as_str)? {
            "object" => self.object(cur, q, depth),
            "array" => {
                let et = cur.get("element-type").and_then(Value::as_str)?;
                self.traverse(et, q, depth)
            }
            "command" | "event" => self.command(cur, q, depth),
            "enum" => enum_query(cur, q),
            "builtin" => {
                let (Some(t), true) = (q[0].strip_prefix('!'), q.len() == 1) else {
                    return Some(false);
                };
                Some(cur.get("json-type").and_then(Value::as_str)? == t)
            }
            "alternate" => {
                for m in cur.get("members").and_then(Value::as_array)? {
                    let Some(t) = m.get("type").and_then(Value::as_str) else {
                        continue;
                    };
                    match self.traverse(t, q, depth) {
                        Some(false) => continue,
                        other => return other,
                    }
                }
                Some(false)
            }
            _ => Some(false),
        }
    }

    fn object(&self, cur: &Value, q: &[&str], depth: &mut usize) -> Option<bool> {
        let (modifier, word) = split_modifier(q[0]);
        match modifier {
            Some('^') | Some('!') => Some(false),
            Some('$') => feature(cur, word, q.len() == 1),
            Some('+') => match find_by(cur, "variants", "case", word) {
                Some(v) => self.traverse(v.get("type").and_then(Value::as_str)?, &q[1..], depth),
                None => Some(false),
            },
            m => match find_by(cur, "members", "name", word) {
                Some(v) if m == Some('*') && v.get("default").is_none() => Some(false),
                Some(v) => self.traverse(v.get("type").and_then(Value::as_str)?, &q[1..], depth),
                None => Some(false),
            },
        }
    }

    fn command(&self, cur: &Value, q: &[&str], depth: &mut usize) -> Option<bool> {
        let (modifier, word) = split_modifier(q[0]);
        match modifier {
            Some('$') => feature(cur, word, q.len() == 1),
            Some(_) => Some(false),
            None => match cur.get(word).and_then(Value::as_str) {
                Some(t) => self.traverse(t, &q[1..], depth),
                None => Some(false),
            },
        }
    }
}

/// A leading non-letter is a modifier; a space escapes names that start with one.
fn split_modifier(s: &str) -> (Option<char>, &str) {
    match s.chars().next() {
        Some(c) if !c.is_ascii_alphabetic() => (Some(c).filter(|c| *c != ' '), &s[c.len_utf8()..]),
        _ => (None, s),
    }
}

fn find_by<'v>(cur: &'v Value, field: &str, key: &str, want: &str) -> Option<&'v Value> {
    cur.get(field)?
        .as_array()?
        .iter()
        .find(|e| e.get(key).and_then(Value::as_str) == Some(want))
}

fn has_feature(v: &Value, name: &str) -> bool {
    v.get("features")
        .and_then(Value::as_array)
        .is_some_and(|a| a.iter().any(|f| f.as_str() == Some(name)))
}

fn feature(cur: &Value, name: &str, last: bool) -> Option<bool> {
    if !last {
        return None;
    }
    Some(has_feature(cur, name))
}

fn enum_query(cur: &Value, q: &[&str]) -> Option<bool> {
    let Some(value) = q[0].strip_prefix('^') else {
        return Some(false);
    };
    let feat = match q.get(1) {
        None => None,
        Some(f) if q.len() == 2 => Some(f.strip_prefix('$')?),
        Some(_) => return None,
    };
    // QEMU 6.2 added `members` (with per-value features) next to the older `values`.
    if let Some(members) = cur.get("members").and_then(Value::as_array) {
        for m in members {
            if m.get("name").and_then(Value::as_str)? == value {
                return Some(feat.is_none_or(|f| has_feature(m, f)));
            }
        }
        return Some(false);
    }
    if feat.is_some() {
        return Some(false);
    }
    let values = cur.get("values").and_then(Value::as_array)?;
    Some(values.iter().any(|v| v.as_str() == Some(value)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!([
            {"name": "device_add", "meta-type": "command", "arg-type": "0", "ret-type": "1",
             "features": ["json-cli-hotplug"]},
            {"name": "0", "meta-type": "object", "members": [
                {"name": "driver", "type": "str"},
                {"name": "bus", "type": "str", "default": null}]},
            {"name": "1", "meta-type": "object", "members": []},
            {"name": "str", "meta-type": "builtin", "json-type": "string"},
            {"name": "netdev_add", "meta-type": "command", "arg-type": "2", "ret-type": "1"},
            {"name": "2", "meta-type": "object", "members": [{"name": "type", "type": "3"}],
             "tag": "type", "variants": [{"case": "dgram", "type": "1"}]},
            {"name": "3", "meta-type": "enum", "values": ["user", "dgram"]},
        ])
    }

    #[test]
    fn queries() {
        let s = schema();
        let s = Schema::new(&s);
        assert!(s.path_exists("device_add/$json-cli-hotplug"));
        assert!(!s.path_exists("device_add/$nope"));
        assert!(s.path_exists("device_add/arg-type/driver"));
        assert!(!s.path_exists("device_add/arg-type/*driver"));
        assert!(s.path_exists("device_add/arg-type/*bus"));
        assert!(s.path_exists("device_add/arg-type/driver/!string"));
        assert!(s.path_exists("netdev_add/arg-type/type/^dgram"));
        assert!(!s.path_exists("netdev_add/arg-type/type/^stream"));
        assert!(s.path_exists("netdev_add/arg-type/+dgram"));
        assert!(!s.path_exists("netdev_add/arg-type/+stream"));
        assert!(!s.path_exists("nothere"));
    }
}
