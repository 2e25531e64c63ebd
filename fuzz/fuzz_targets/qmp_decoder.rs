//! The QMP client reading whatever a peer sends: greeting, replies, events, garbage. It must
//! return an error or a value, never panic or hang.
#![no_main]

use std::time::Duration;

use domdriver::qmp::{Monitor, MonitorOptions};
use libfuzzer_sys::fuzz_target;
use tokio::io::AsyncWriteExt;

fuzz_target!(|data: &[u8]| {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    rt.block_on(async {
        let (client, mut peer) = tokio::io::duplex(1 << 16);
        let bytes = data.to_vec();
        tokio::spawn(async move {
            let _ = peer.write_all(&bytes).await;
            let _ = peer.shutdown().await;
            // Keep reading what the client sends so its writes never block.
            let mut sink = Vec::new();
            let _ = tokio::io::AsyncReadExt::read_to_end(&mut peer, &mut sink).await;
        });
        let opts = MonitorOptions {
            command_timeout: Duration::from_millis(200),
            max_message: 1 << 16,
            max_queued_events: 8,
        };
        if let Ok(mut m) = Monitor::from_stream(client, opts).await {
            let _ = m.negotiate().await;
            let _ = m.execute("query-status", None).await;
            let _ = m.next_event(Duration::from_millis(10)).await;
        }
    });
});
