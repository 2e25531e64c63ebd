//! Serves a recorded conversation as a fake QMP monitor, for tests and `--replies` probing.
//!
//! The replayer is a peer at the far end of an in-memory pipe, so the [`Monitor`] talking to it
//! is the same code that talks to real QEMU. Commands must arrive exactly in recorded order
//! with the recorded arguments; the first that differs ends the replay, and
//! [`Replayer::finish`] reports it by name.

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use super::QmpError;
use super::monitor::{Monitor, MonitorOptions};
use super::replies::Conversation;

#[derive(Debug)]
struct State {
    conv: Conversation,
    pos: usize,
    mismatch: Option<String>,
}

/// A recorded conversation served one QEMU session per [`Replayer::connect`].
#[derive(Debug, Clone)]
pub struct Replayer {
    name: String,
    state: Arc<Mutex<State>>,
}

fn describe(cmd: &Value) -> String {
    let name = cmd.get("execute").and_then(Value::as_str).unwrap_or("?");
    match cmd.get("arguments") {
        Some(a) => format!("'{name}' {a}"),
        None => format!("'{name}'"),
    }
}

impl Replayer {
    /// `name` (usually the file) appears in mismatch errors.
    pub fn new(conv: Conversation, name: &str) -> Self {
        Replayer {
            name: name.to_string(),
            state: Arc::new(Mutex::new(State {
                conv,
                pos: 0,
                mismatch: None,
            })),
        }
    }

    pub fn load(path: &std::path::Path) -> Result<Self, QmpError> {
        Ok(Self::new(
            Conversation::load(path)?,
            &path.display().to_string(),
        ))
    }

    /// The name given at construction (usually the `.replies` path).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The `query-version` reply of the recording, used for the greeting.
    fn greeting(&self) -> Value {
        let st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let version = st
            .conv
            .exchanges
            .iter()
            .find(|e| e.name() == "query-version")
            .and_then(|e| e.reply.get("return").cloned())
            .unwrap_or_else(
                || json!({"qemu": {"major": 0, "minor": 0, "micro": 0}, "package": ""}),
            );
        json!({"QMP": {"version": version, "capabilities": ["oob"]}})
    }

    /// Whether commands remain to be replayed.
    pub fn has_more(&self) -> bool {
        let st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        st.pos < st.conv.exchanges.len() && st.mismatch.is_none()
    }

    /// Open the next session: a [`Monitor`] whose peer answers from the recording.
    pub async fn connect(&self, opts: MonitorOptions) -> Result<Monitor, QmpError> {
        let (client, server) = tokio::io::duplex(1 << 16);
        let greeting = self.greeting();
        let state = self.state.clone();
        let name = self.name.clone();
        tokio::spawn(async move {
            let (r, mut w) = tokio::io::split(server);
            let mut r = BufReader::new(r);
            let mut line = greeting.to_string();
            line.push_str("\r\n");
            if w.write_all(line.as_bytes()).await.is_err() {
                return;
            }
            let mut buf = String::new();
            loop {
                buf.clear();
                match r.read_line(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
                let Ok(cmd) = serde_json::from_str::<Value>(buf.trim()) else {
                    return;
                };
                let reply = {
                    let mut st = state.lock().unwrap_or_else(|p| p.into_inner());
                    if st.mismatch.is_some() {
                        return;
                    }
                    let pos = st.pos;
                    let expected = st.conv.exchanges.get(pos).cloned();
                    match expected {
                        None => {
                            st.mismatch = Some(format!(
                                "{name}: command {} sent after the end of the recording",
                                describe(&cmd)
                            ));
                            None
                        }
                        Some(ex)
                            if ex.command.get("execute") == cmd.get("execute")
                                && ex.command.get("arguments") == cmd.get("arguments") =>
                        {
                            st.pos += 1;
                            let mut reply = ex.reply.clone();
                            if let (Some(m), Some(id)) = (reply.as_object_mut(), cmd.get("id")) {
                                m.insert("id".into(), id.clone());
                            }
                            Some(reply)
                        }
                        Some(ex) => {
                            st.mismatch = Some(format!(
                                "{name}: exchange {}: got command {}, recording has {}",
                                pos + 1,
                                describe(&cmd),
                                describe(&ex.command)
                            ));
                            None
                        }
                    }
                };
                // On a mismatch the pipe closes: the client sees EOF and finish() says why.
                let Some(reply) = reply else { return };
                let mut out = reply.to_string();
                out.push_str("\r\n");
                if w.write_all(out.as_bytes()).await.is_err() {
                    return;
                }
            }
        });
        Monitor::from_stream(client, opts).await
    }

    /// The replay's verdict: the first mismatch, or the first command never asked for.
    pub fn finish(&self) -> Result<(), QmpError> {
        let st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(m) = &st.mismatch {
            return Err(QmpError::ReplayMismatch(m.clone()));
        }
        if let Some(ex) = st.conv.exchanges.get(st.pos) {
            return Err(QmpError::ReplayMismatch(format!(
                "{}: exchange {}: recorded command {} was never sent",
                self.name,
                st.pos + 1,
                describe(&ex.command)
            )));
        }
        Ok(())
    }

    /// The mismatch seen so far, if any (the probe checks this when a session ends early).
    pub fn mismatch(&self) -> Option<String> {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .mismatch
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conv() -> Conversation {
        Conversation::parse(
            r#"{"execute":"qmp_capabilities","id":"libvirt-1"}

{"return":{},"id":"libvirt-1"}

{"execute":"query-target","id":"libvirt-2"}

{"return":{"arch":"aarch64"},"id":"libvirt-2"}

{"execute":"device-list-properties","arguments":{"typename":"x"},"id":"libvirt-3"}

{"error":{"class":"DeviceNotFound","desc":"Device 'x' not found"},"id":"libvirt-3"}
"#,
            "t.replies",
        )
        .unwrap()
    }

    #[tokio::test]
    async fn replays_in_order() {
        let r = Replayer::new(conv(), "t.replies");
        let mut m = r.connect(MonitorOptions::default()).await.unwrap();
        m.negotiate().await.unwrap();
        let t = m.execute("query-target", None).await.unwrap();
        assert_eq!(t["arch"], "aarch64");
        let e = m
            .execute("device-list-properties", Some(json!({"typename": "x"})))
            .await
            .unwrap_err();
        assert_eq!(e.class(), Some("DeviceNotFound"));
        r.finish().unwrap();
    }

    #[tokio::test]
    async fn names_first_differing_command() {
        let r = Replayer::new(conv(), "t.replies");
        let mut m = r.connect(MonitorOptions::default()).await.unwrap();
        m.negotiate().await.unwrap();
        assert!(m.execute("query-version", None).await.is_err());
        let e = r.finish().unwrap_err().to_string();
        assert!(
            e.contains("exchange 2: got command 'query-version', recording has 'query-target'"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn reports_unsent_commands() {
        let r = Replayer::new(conv(), "t.replies");
        let mut m = r.connect(MonitorOptions::default()).await.unwrap();
        m.negotiate().await.unwrap();
        drop(m);
        let e = r.finish().unwrap_err().to_string();
        assert!(
            e.contains("recorded command 'query-target' was never sent"),
            "{e}"
        );
    }
}
