//! Domain XML through the whole pure pipeline: parse, prepare (defaults, implicit devices,
//! addresses) against a recorded QEMU's caps, aliases, and the argv build. Any input gives a
//! command or an error, never a panic; a built command renders in both of its forms.
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use domdriver::capabilities::qemu::{QemuCaps, probe_replies};
use domdriver::conformance::harness::run_case;
use libfuzzer_sys::fuzz_target;

/// QEMU 7.2's recorded x86_64 probe, replayed once: replaying per input would measure the
/// replayer, not the pipeline.
fn caps() -> &'static QemuCaps {
    static CAPS: OnceLock<QemuCaps> = OnceLock::new();
    CAPS.get_or_init(|| {
        let replies = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/data/qemucaps/caps_7.2.0_x86_64.replies");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        rt.block_on(probe_replies(&replies, "/usr/bin/qemu-system-x86_64"))
            .expect("the recorded x86_64 probe replays")
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (kind, out) = run_case("fuzz", "x86_64", text, caps());
    assert!(kind == "args" || kind == "err");
    assert!(!out.is_empty());
});
