//! Target-specific queries are sent only where QEMU's command list has them, and count only
//! when they succeed.

mod common;

use domdriver::capabilities::qemu::{ReplaySessions, probe_sessions};
use domdriver::qmp::Conversation;
use domdriver::qmp::replay::Replayer;
use serde_json::Value;

fn load(name: &str) -> Conversation {
    Conversation::load(
        &common::testdata()
            .join("tests/qemucapabilitiesdata")
            .join(name),
    )
    .unwrap()
}

/// Drop `cmd` from the `query-commands` reply and its own exchange from the recording.
fn without_command(mut conv: Conversation, cmd: &str) -> Conversation {
    for ex in &mut conv.exchanges {
        if ex.name() == "query-commands"
            && let Some(Value::Array(list)) = ex.reply.get_mut("return")
        {
            list.retain(|c| c["name"] != cmd);
        }
    }
    conv.exchanges.retain(|ex| ex.name() != cmd);
    conv.renumber();
    conv
}

async fn probe(conv: Conversation) -> Result<domdriver::capabilities::qemu::QemuCaps, String> {
    let r = Replayer::new(conv, "edited.replies");
    let mut s = ReplaySessions::new(r.clone(), "/usr/bin/qemu-system-x86_64");
    let caps = probe_sessions(&mut s).await.map_err(|e| e.to_string())?;
    r.finish().map_err(|e| e.to_string())?;
    Ok(caps)
}

#[tokio::test]
async fn unlisted_target_queries_are_not_sent() {
    // caps_7.0.0.x86_64 answers query-sgx-capabilities successfully.
    let full = probe(load("caps_7.0.0.x86_64.replies")).await.unwrap();
    assert!(full.sgx.is_some());
    // The same QEMU without the command in its list: the probe must not send it (the strict
    // replay would fail on an unexpected command) and reports no SGX.
    let edited = probe(without_command(
        load("caps_7.0.0.x86_64.replies"),
        "query-sgx-capabilities",
    ))
    .await
    .unwrap();
    assert!(edited.sgx.is_none());

    // ARM: query-gic-capabilities likewise.
    let arm = without_command(load("caps_7.0.0.aarch64.replies"), "query-gic-capabilities");
    let r = Replayer::new(arm, "edited.replies");
    let mut s = ReplaySessions::new(r.clone(), "/usr/bin/qemu-system-aarch64");
    let caps = probe_sessions(&mut s).await.unwrap();
    r.finish().unwrap();
    assert!(caps.gic.is_empty());
}

#[tokio::test]
async fn failing_target_queries_count_as_absent() {
    // caps_8.0.0.x86_64 lists query-sev-capabilities and knows sev-guest, but the host has no
    // SEV: the error reply means no <sev> and no sev-guest flag.
    let caps = probe(load("caps_8.0.0.x86_64.replies")).await.unwrap();
    assert!(caps.sev.is_none());
    assert!(!caps.has_flag("sev-guest"));
    assert!(caps.commands.contains("query-sev-capabilities"));
}
