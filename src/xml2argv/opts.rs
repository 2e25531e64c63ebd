//! Option builders for QEMU arguments.
//!
//! QEMU's key=value parser splits on `,` and takes `,,` as a literal comma, so every value that
//! can hold user text must have its commas doubled or a path such as `/a,b=c` would smuggle an
//! extra option in. [`KvOpts`] does that for every value it is given; the only way to add raw
//! text is [`KvOpts::raw`], meant for fixed strings written in this crate.
//!
//! JSON arguments need no escaping beyond JSON's own, and keep insertion order (serde_json is
//! built with `preserve_order`), which libvirt's outputs depend on.

use serde_json::{Map, Value};

/// Double every comma so QEMU's option parser reads the value back verbatim.
pub fn escape_commas(s: &str) -> String {
    s.replace(',', ",,")
}

/// A `key=value,key=value` option string. Values are always comma-escaped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KvOpts {
    buf: String,
}

impl KvOpts {
    pub fn new() -> Self {
        KvOpts::default()
    }

    /// Start with a bare leading value (e.g. a machine type or a chardev backend), escaped.
    pub fn with_head(head: &str) -> Self {
        KvOpts {
            buf: escape_commas(head),
        }
    }

    fn sep(&mut self) {
        if !self.buf.is_empty() {
            self.buf.push(',');
        }
    }

    /// `key=value`, value comma-escaped.
    pub fn kv(&mut self, key: &str, value: impl std::fmt::Display) -> &mut Self {
        self.sep();
        self.buf.push_str(key);
        self.buf.push('=');
        self.buf.push_str(&escape_commas(&value.to_string()));
        self
    }

    /// `key=value` when the value is present.
    pub fn kv_opt<T: std::fmt::Display>(&mut self, key: &str, value: Option<T>) -> &mut Self {
        if let Some(v) = value {
            self.kv(key, v);
        }
        self
    }

    /// `key=on|off`.
    pub fn on_off(&mut self, key: &str, on: bool) -> &mut Self {
        self.kv(key, if on { "on" } else { "off" })
    }

    /// A bare flag or a fixed fragment written by this crate (never user input).
    pub fn raw(&mut self, fixed: &str) -> &mut Self {
        self.sep();
        self.buf.push_str(fixed);
        self
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub fn build(&self) -> String {
        self.buf.clone()
    }
}

/// Split a key=value option string the way QEMU does (`,,` is a literal comma); used by tests
/// to check that no value can add an option.
pub fn parse_kv(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == ',' {
            if chars.peek() == Some(&',') {
                chars.next();
                cur.push(',');
            } else {
                out.push(std::mem::take(&mut cur));
            }
        } else {
            cur.push(c);
        }
    }
    out.push(cur);
    out
}

/// A JSON object built in insertion order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JsonOpts {
    map: Map<String, Value>,
}

impl JsonOpts {
    pub fn new() -> Self {
        JsonOpts::default()
    }

    pub fn s(&mut self, key: &str, v: impl Into<String>) -> &mut Self {
        self.map.insert(key.to_string(), Value::String(v.into()));
        self
    }

    pub fn s_opt(&mut self, key: &str, v: Option<impl Into<String>>) -> &mut Self {
        if let Some(v) = v {
            self.s(key, v);
        }
        self
    }

    pub fn u(&mut self, key: &str, v: u64) -> &mut Self {
        self.map.insert(key.to_string(), Value::from(v));
        self
    }

    pub fn u_opt(&mut self, key: &str, v: Option<u64>) -> &mut Self {
        if let Some(v) = v {
            self.u(key, v);
        }
        self
    }

    pub fn i(&mut self, key: &str, v: i64) -> &mut Self {
        self.map.insert(key.to_string(), Value::from(v));
        self
    }

    pub fn b(&mut self, key: &str, v: bool) -> &mut Self {
        self.map.insert(key.to_string(), Value::Bool(v));
        self
    }

    /// `on`/`off` (or `yes`/`no`) strings from the XML as a JSON boolean.
    pub fn tristate(&mut self, key: &str, v: Option<&str>) -> &mut Self {
        match v {
            Some("on") | Some("yes") => self.b(key, true),
            Some("off") | Some("no") => self.b(key, false),
            _ => self,
        }
    }

    pub fn v(&mut self, key: &str, v: Value) -> &mut Self {
        self.map.insert(key.to_string(), v);
        self
    }

    pub fn contains(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    /// The string value of `key`, if it holds one.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.map.get(key).and_then(Value::as_str)
    }

    /// Remove `key`, keeping the order of the others.
    pub fn remove(&mut self, key: &str) -> &mut Self {
        self.map.shift_remove(key);
        self
    }

    pub fn into_value(self) -> Value {
        Value::Object(self.map)
    }

    /// Compact JSON, as libvirt prints it.
    pub fn build(&self) -> String {
        serde_json::to_string(&self.map).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn commas_are_doubled() {
        let mut o = KvOpts::with_head("socket");
        o.kv("id", "a,b").kv("path", "/x,y=z");
        assert_eq!(o.build(), "socket,id=a,,b,path=/x,,y=z");
        assert_eq!(
            parse_kv(&o.build()),
            vec!["socket", "id=a,b", "path=/x,y=z"]
        );
    }

    #[test]
    fn json_keeps_order() {
        let mut j = JsonOpts::new();
        j.s("driver", "x").u("b", 1).s("a", "q\"\\");
        assert_eq!(j.build(), r#"{"driver":"x","b":1,"a":"q\"\\"}"#);
    }

    proptest! {
        #[test]
        fn user_values_never_add_options(name in ".*", path in ".*") {
            let mut o = KvOpts::with_head("file");
            o.kv("id", &name).kv("path", &path).raw("server=on");
            let parts = parse_kv(&o.build());
            prop_assert_eq!(parts.len(), 4);
            prop_assert_eq!(&parts[1], &format!("id={name}"));
            prop_assert_eq!(&parts[2], &format!("path={path}"));
            prop_assert_eq!(&parts[3], "server=on");
        }
    }
}
