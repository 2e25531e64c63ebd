//! Acting on a running guest through its monitor: arbitrary monitor commands, reset, keys
//! and screenshots.

use serde_json::{Value, json};

use super::DriverError;
use super::domain::Domain;
use super::keycodes;
use super::qmp_route::Reply;

/// Most keys one `virDomainSendKey` may press at once (`VIR_DOMAIN_SEND_KEY_MAX_KEYS`).
pub const SEND_KEY_MAX_KEYS: usize = 16;

/// The MIME type of the screenshots QEMU writes (PPM).
pub const SCREENSHOT_MIME: &str = "image/x-portable-pixmap";

/// JSON as QEMU writes its replies: `": "` after keys and `", "` between members.
pub fn qemu_json(v: &Value) -> String {
    match v {
        Value::Object(m) => {
            let items: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{}: {}", Value::String(k.clone()), qemu_json(v)))
                .collect();
            format!("{{{}}}", items.join(", "))
        }
        Value::Array(a) => {
            let items: Vec<String> = a.iter().map(qemu_json).collect();
            format!("[{}]", items.join(", "))
        }
        v => v.to_string(),
    }
}

/// The QMP command virsh sends for `words`: a JSON object as it is, else the first word as
/// `execute` and the rest as its `arguments` (an object, or members to wrap in one).
// libvirt: cmdQemuMonitorCommand's wrapping of non-JSON commands
pub fn wrap_qmp_command(words: &str) -> Result<Value, DriverError> {
    let text = words.trim();
    if text.starts_with('{') {
        return serde_json::from_str(text)
            .map_err(|e| DriverError::Internal(format!("cannot parse json {text}: {e}")));
    }
    let (cmd, rest) = match text.split_once(char::is_whitespace) {
        Some((c, r)) => (c, r.trim()),
        None => (text, ""),
    };
    if rest.is_empty() {
        return Ok(json!({ "execute": cmd }));
    }
    let args = if rest.starts_with('{') {
        rest.to_string()
    } else {
        // Members given one per word: `"a":1 "b":2`.
        format!(
            "{{{}}}",
            rest.split_whitespace().collect::<Vec<_>>().join(",")
        )
    };
    let args: Value = serde_json::from_str(&args)
        .map_err(|e| DriverError::Internal(format!("cannot parse json {args}: {e}")))?;
    Ok(json!({ "execute": cmd, "arguments": args }))
}

impl Domain<'_> {
    /// `virDomainQemuMonitorCommand`: QEMU's whole reply to `cmd` (QMP JSON, see
    /// [`wrap_qmp_command`]), or with `hmp` the text of human monitor command `cmd`.
    pub fn qemu_monitor_command(&self, cmd: &str, hmp: bool) -> Result<String, DriverError> {
        if hmp {
            let v = self.qmp_call("human-monitor-command", Some(json!({"command-line": cmd})))?;
            return Ok(v.as_str().unwrap_or_default().to_string());
        }
        let req = wrap_qmp_command(cmd)?;
        let Some(execute) = req["execute"].as_str() else {
            return Err(DriverError::Internal(format!(
                "cannot parse json {cmd}: no 'execute' member"
            )));
        };
        let args = req.get("arguments").cloned();
        let reply = match self.qmp_reply(execute, args)? {
            Reply::Return(v) => json!({ "return": v }),
            Reply::Error { class, desc } => json!({ "error": { "class": class, "desc": desc } }),
        };
        Ok(qemu_json(&reply))
    }

    /// `virDomainReset`: the reset button, no guest shutdown.
    pub fn reset(&self) -> Result<(), DriverError> {
        self.qmp_call("system_reset", None).map(|_| ())
    }

    /// `virDomainSendKey`: press `keycodes` of `codeset` together for `holdtime` ms (QEMU's
    /// default when 0), sent as QEMU key numbers (`qnum`).
    // libvirt: qemuDomainSendKey, qemuMonitorJSONSendKey
    pub fn send_key(
        &self,
        codeset: keycodes::Codeset,
        holdtime: u32,
        keycodes: &[u32],
    ) -> Result<(), DriverError> {
        if keycodes.is_empty() {
            return Err(DriverError::InvalidArg(
                "nkeycodes in virDomainSendKey must be greater than zero".into(),
            ));
        }
        if keycodes.len() > SEND_KEY_MAX_KEYS {
            return Err(DriverError::InvalidArg(format!(
                "nkeycodes must be <= {SEND_KEY_MAX_KEYS}"
            )));
        }
        let mut keys = Vec::new();
        for &k in keycodes {
            let q = if codeset == keycodes::Codeset::Qnum {
                Some(k)
            } else {
                keycodes::translate(codeset, keycodes::Codeset::Qnum, k)
            };
            let q = q.ok_or_else(|| {
                DriverError::Internal(format!(
                    "cannot translate keycode {k} of {} codeset to qnum keycode",
                    codeset.as_str()
                ))
            })?;
            if q > 0xffff {
                return Err(DriverError::Internal(format!(
                    "keycode {} is invalid: 0x{q:X}",
                    keys.len()
                )));
            }
            keys.push(json!({"type": "number", "data": q}));
        }
        let mut args = json!({ "keys": keys });
        if holdtime > 0 {
            args["hold-time"] = json!(holdtime);
        }
        self.qmp_call("send-key", Some(args)).map(|_| ())
    }

    /// `virDomainScreenshot`: the PPM image of screen `screen` and its MIME type.
    pub fn screenshot(&self, screen: u32) -> Result<(&'static str, Vec<u8>), DriverError> {
        // Not running is the news, not a missing run dir.
        self.live_process()?;
        let run = &self.connect().dirs().run;
        let tmp = tempfile::Builder::new()
            .prefix(&format!("{}.screendump.", self.name()))
            .suffix(".ppm")
            .tempfile_in(run)
            .map_err(|e| DriverError::System {
                msg: format!("failed to create a temporary file in '{}'", run.display()),
                err: e,
            })?;
        let path = tmp.path().display().to_string();
        let mut args = json!({ "filename": path });
        if screen > 0 {
            args["head"] = json!(screen);
        }
        self.qmp_call("screendump", Some(args))?;
        let data = std::fs::read(tmp.path()).map_err(|e| DriverError::System {
            msg: format!("unable to read screenshot '{path}'"),
            err: e,
        })?;
        Ok((SCREENSHOT_MIME, data))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_spaced_as_qemu_writes_them() {
        let v = json!({"return": {"status": "running", "running": true, "list": [1, 2]}});
        assert_eq!(
            qemu_json(&v),
            r#"{"return": {"status": "running", "running": true, "list": [1, 2]}}"#
        );
    }

    #[test]
    fn commands_are_wrapped_as_virsh_does() {
        assert_eq!(
            wrap_qmp_command("query-status").unwrap(),
            json!({"execute": "query-status"})
        );
        assert_eq!(
            wrap_qmp_command(r#"{"execute":"x","arguments":{"a":1}}"#).unwrap(),
            json!({"execute": "x", "arguments": {"a": 1}})
        );
        assert_eq!(
            wrap_qmp_command(r#"cmd "a":1 "b":"t""#).unwrap(),
            json!({"execute": "cmd", "arguments": {"a": 1, "b": "t"}})
        );
        assert_eq!(
            wrap_qmp_command(r#"cmd {"a":1}"#).unwrap(),
            json!({"execute": "cmd", "arguments": {"a": 1}})
        );
        assert!(wrap_qmp_command("{bad").is_err());
    }
}
