//! Properties: the monitor survives any byte stream from its peer (an error at worst, never a
//! panic or a hang), `Conversation::parse` survives any text, and `format` -> `parse`
//! round-trips.

use std::time::Duration;

use domdriver::qmp::{Conversation, Exchange, Monitor, MonitorOptions};
use proptest::prelude::*;
use serde_json::{Map, Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const GREETING: &str = r#"{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": ""}, "capabilities": ["oob"]}}"#;

/// Feed `bytes` to a monitor (after a greeting when `greet`), then hang up, while the
/// monitor negotiates, runs a command and reads events. Only termination and the absence of
/// panics are checked: any error is an acceptable answer to garbage.
fn drive(greet: bool, bytes: Vec<u8>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let (client, mut server) = tokio::io::duplex(1 << 12);
        let peer = tokio::spawn(async move {
            if greet {
                let _ = server.write_all(format!("{GREETING}\r\n").as_bytes()).await;
            }
            let _ = server.write_all(&bytes).await;
            // EOF for the monitor's reads; keep draining its writes so it never blocks.
            let _ = server.shutdown().await;
            let mut sink = [0u8; 1024];
            while matches!(server.read(&mut sink).await, Ok(n) if n > 0) {}
        });
        let opts = MonitorOptions {
            command_timeout: Duration::from_millis(500),
            max_message: 2048,
            max_queued_events: 4,
        };
        let work = async {
            let Ok(mut m) = Monitor::from_stream(client, opts).await else {
                return;
            };
            let _ = m.negotiate().await;
            let _ = m
                .execute("query-status", Some(json!({"a": [1, "b"]})))
                .await;
            for _ in 0..8 {
                match m.next_event(Duration::from_millis(20)).await {
                    Ok(Some(_)) => {}
                    Ok(None) | Err(_) => break,
                }
            }
            let _ = m.execute("query-version", None).await;
            let _ = m.close().await;
        };
        tokio::time::timeout(Duration::from_secs(10), work)
            .await
            .expect("monitor hung on peer input");
        peer.abort();
    });
}

/// Lines a QMP peer might plausibly (or implausibly) send.
fn qmp_line() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(GREETING.to_string()),
        Just(String::new()),
        (1u8..4).prop_map(|n| format!(r#"{{"return": {{}}, "id": "libvirt-{n}"}}"#)),
        (1u8..4).prop_map(|n| format!(
            r#"{{"error": {{"class": "GenericError", "desc": "x"}}, "id": "libvirt-{n}"}}"#
        )),
        Just(r#"{"error": {"class": "GenericError", "desc": "JSON parse error"}}"#.to_string()),
        "[A-Z_]{1,12}".prop_map(|e| format!(
            r#"{{"event": "{e}", "data": {{}}, "timestamp": {{"seconds": 1, "microseconds": 2}}}}"#
        )),
        Just(r#"{"event": 7}"#.to_string()),
        Just(r#"{"return": {}, "id": 5}"#.to_string()),
        Just(r#"{"id": "libvirt-1"}"#.to_string()),
        Just("[]".to_string()),
        Just("x".repeat(3000)),
        "\\PC{0,40}",
        any::<String>(),
    ]
}

fn qmp_stream() -> impl Strategy<Value = Vec<u8>> {
    (
        proptest::collection::vec((qmp_line(), prop_oneof![Just("\r\n"), Just("\n")]), 0..12),
        any::<bool>(),
    )
        .prop_map(|(lines, cut)| {
            let mut out = Vec::new();
            for (l, end) in lines {
                out.extend_from_slice(l.as_bytes());
                out.extend_from_slice(end.as_bytes());
            }
            // Sometimes end mid-message.
            if cut && out.len() > 3 {
                out.truncate(out.len() - 3);
            }
            out
        })
}

/// JSON values whose text form round-trips exactly (floats are dyadic fractions with few
/// digits: serde_json without `float_roundtrip` may be 1 ULP off on arbitrary ones).
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        (-1_000_000i32..1_000_000).prop_map(|n| json!(f64::from(n) / 64.0)),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::vec((any::<String>(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn exchange() -> impl Strategy<Value = Exchange> {
    (
        "[a-z][a-z0-9-]{0,20}",
        proptest::option::of(proptest::collection::vec(
            ("[a-z-]{1,10}", json_value()),
            0..4,
        )),
        prop_oneof![
            json_value().prop_map(|v| json!({"return": v})),
            (any::<String>(), any::<String>())
                .prop_map(|(c, d)| json!({"error": {"class": c, "desc": d}})),
        ],
        1u32..50,
        any::<bool>(),
    )
        .prop_map(|(name, args, mut reply, id, id_first)| {
            let id = json!(format!("libvirt-{id}"));
            let mut cmd = Map::new();
            cmd.insert("execute".into(), json!(name));
            if let Some(a) = args {
                cmd.insert("arguments".into(), Value::Object(a.into_iter().collect()));
            }
            cmd.insert("id".into(), id.clone());
            // QEMU's replies carry the id last; recorded files may have it anywhere.
            if let Value::Object(m) = &mut reply {
                if id_first {
                    let mut n = Map::new();
                    n.insert("id".into(), id);
                    n.extend(std::mem::take(m));
                    *m = n;
                } else {
                    m.insert("id".into(), id);
                }
            }
            Exchange {
                command: Value::Object(cmd),
                reply,
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn monitor_survives_arbitrary_bytes(greet in any::<bool>(),
                                         bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        drive(greet, bytes);
    }

    #[test]
    fn monitor_survives_arbitrary_lines(greet in any::<bool>(), bytes in qmp_stream()) {
        drive(greet, bytes);
    }
}

/// Text made of `.replies` building blocks, so the parser gets past the first byte.
fn replies_text() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        proptest::sample::select(vec![
            "{",
            "}",
            "[",
            "]",
            ",",
            ":",
            "\n",
            "\n\n",
            "  ",
            "\"execute\"",
            "\"return\"",
            "\"error\"",
            "\"id\"",
            "\"libvirt-1\"",
            "\"qmp_capabilities\"",
            "1",
            "null",
            "\"é\"",
            "\u{feff}",
            "\\",
            "\"",
        ]),
        0..80,
    )
    .prop_map(|parts| parts.concat())
}

fn check_parse(text: &str) {
    if let Ok(c) = Conversation::parse(text, "fuzz.replies") {
        // Whatever parses must survive the rest of the API and re-parse identically.
        let _ = c.check_numbering();
        let _ = c.numbering_problems();
        let again = Conversation::parse(&c.format(), "again").expect("formatted text parses");
        assert_eq!(again, c);
        let mut r = c.clone();
        r.renumber();
        assert_eq!(r.check_numbering(), Ok(()));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn parse_never_panics_on_arbitrary_text(text in any::<String>()) {
        check_parse(&text);
    }

    #[test]
    fn parse_never_panics_on_replies_like_text(text in replies_text()) {
        check_parse(&text);
    }

    #[test]
    fn parse_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        check_parse(&String::from_utf8_lossy(&bytes));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn format_parse_round_trips(exchanges in proptest::collection::vec(exchange(), 0..8)) {
        let c = Conversation { exchanges };
        let text = c.format();
        let back = Conversation::parse(&text, "gen.replies");
        prop_assert!(back.is_ok(), "{:?}\n{}", back, text);
        let back = back.unwrap_or_default();
        prop_assert_eq!(&back, &c);
        prop_assert_eq!(back.format(), text);

        let mut r = c.clone();
        r.renumber();
        prop_assert_eq!(r.check_numbering(), Ok(()));
        prop_assert!(r.numbering_problems().is_empty());
        prop_assert_eq!(r.renumber(), 0);
    }
}
