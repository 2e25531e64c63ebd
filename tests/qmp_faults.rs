//! Fault injection: a scripted fake QMP peer on the far end of an in-memory pipe (or a UNIX
//! socketpair) misbehaves in one way per test. Every failure must be a clear error, never a
//! hang or a panic, so each test runs under an outer timeout.

use std::future::Future;
use std::time::Duration;

use domdriver::qmp::{Monitor, MonitorOptions, QmpError};
use serde_json::{Value, json};
use tokio::io::{
    AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, DuplexStream, ReadHalf,
    WriteHalf,
};
use tokio::task::JoinHandle;

const GREETING: &str = r#"{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": "Debian 1:7.2"}, "capabilities": ["oob"]}}"#;

/// Fails the test instead of hanging it.
async fn bounded<F: Future<Output = ()>>(f: F) {
    tokio::time::timeout(Duration::from_secs(10), f)
        .await
        .expect("test hung: no result within 10 s");
}

fn opts(timeout_ms: u64) -> MonitorOptions {
    MonitorOptions {
        command_timeout: Duration::from_millis(timeout_ms),
        ..MonitorOptions::default()
    }
}

/// The fake QEMU side. Write errors are ignored: the client may legitimately hang up first.
struct Peer<S> {
    r: BufReader<ReadHalf<S>>,
    w: WriteHalf<S>,
    /// Every command received, in order.
    received: Vec<Value>,
}

impl<S: AsyncRead + AsyncWrite> Peer<S> {
    fn new(s: S) -> Self {
        let (r, w) = tokio::io::split(s);
        Peer {
            r: BufReader::new(r),
            w,
            received: Vec::new(),
        }
    }

    async fn raw(&mut self, bytes: &[u8]) {
        let _ = self.w.write_all(bytes).await;
        let _ = self.w.flush().await;
    }

    async fn send(&mut self, line: &str) {
        self.raw(format!("{line}\r\n").as_bytes()).await;
    }

    async fn greet(&mut self) {
        self.send(GREETING).await;
    }

    /// Read one command; returns its id (`None` at EOF).
    async fn cmd(&mut self) -> Option<String> {
        let mut line = String::new();
        match self.r.read_line(&mut line).await {
            Ok(0) | Err(_) => return None,
            Ok(_) => {}
        }
        assert!(line.ends_with("\r\n"), "commands end with CRLF: {line:?}");
        let v: Value = serde_json::from_str(line.trim()).expect("client sent valid JSON");
        let id = v["id"].as_str().map(str::to_string);
        self.received.push(v);
        id
    }

    /// Read one command and answer it with `ret`.
    async fn answer(&mut self, ret: Value) {
        let id = self.cmd().await.expect("a command");
        self.send(&json!({"return": ret, "id": id}).to_string())
            .await;
    }

    /// Wait until the client hangs up (so the peer does not close first by accident).
    async fn until_eof(&mut self) {
        while self.cmd().await.is_some() {}
    }
}

/// Start a scripted peer. When the script ends the peer hangs up (its streams are dropped);
/// the handle yields the commands it received.
fn peer<F, Fut>(script: F) -> (DuplexStream, JoinHandle<Vec<Value>>)
where
    F: FnOnce(Peer<DuplexStream>) -> Fut + Send + 'static,
    Fut: Future<Output = Peer<DuplexStream>> + Send + 'static,
{
    let (client, server) = tokio::io::duplex(1 << 16);
    let script = script(Peer::new(server));
    (client, tokio::spawn(async move { script.await.received }))
}

/// A monitor past the greeting and `qmp_capabilities`, whose peer then runs `rest`.
async fn negotiated<F, Fut>(timeout_ms: u64, rest: F) -> (Monitor, JoinHandle<Vec<Value>>)
where
    F: FnOnce(Peer<DuplexStream>) -> Fut + Send + 'static,
    Fut: Future<Output = Peer<DuplexStream>> + Send + 'static,
{
    let (c, h) = peer(|mut p| async move {
        p.greet().await;
        p.answer(json!({})).await;
        rest(p).await
    });
    let mut m = Monitor::from_stream(c, opts(timeout_ms)).await.unwrap();
    m.negotiate().await.unwrap();
    (m, h)
}

#[tokio::test]
async fn greeting_is_parsed_and_oob_is_not_enabled() {
    bounded(async {
        let (c, h) = peer(|mut p| async move {
            p.greet().await;
            p.answer(json!({})).await;
            p.answer(json!({"status": "prelaunch", "running": false}))
                .await;
            p.until_eof().await;
            p
        });
        let mut m = Monitor::from_stream(c, opts(2000)).await.unwrap();
        let g = m.greeting().clone();
        assert_eq!(g.version, Some((7, 2, 0)));
        assert_eq!(g.package.as_deref(), Some("Debian 1:7.2"));
        assert_eq!(g.capabilities, vec!["oob".to_string()]);
        m.negotiate().await.unwrap();
        let st = m.execute("query-status", None).await.unwrap();
        assert_eq!(st["status"], "prelaunch");
        m.close().await.unwrap();
        let received = h.await.unwrap();
        // Capabilities are negotiated without enabling any (no "arguments": {"enable": [..]}).
        assert_eq!(
            received[0],
            json!({"execute": "qmp_capabilities", "id": "libvirt-1"})
        );
        assert_eq!(received[1]["id"], "libvirt-2");
    })
    .await;
}

/// QEMU 7.2 has been seen to send its greeting twice on a connection made right after its
/// spawn (a capabilities probe failed on it once): the repeat is skipped, not fatal.
#[tokio::test]
async fn a_repeated_greeting_is_skipped() {
    bounded(async {
        let (c, h) = peer(|mut p| async move {
            p.greet().await;
            let id = p.cmd().await.expect("qmp_capabilities");
            p.greet().await;
            p.send(&json!({"return": {}, "id": id}).to_string()).await;
            p.answer(json!({"status": "prelaunch", "running": false}))
                .await;
            p.until_eof().await;
            p
        });
        let mut m = Monitor::from_stream(c, opts(2000)).await.unwrap();
        m.negotiate().await.unwrap();
        let st = m.execute("query-status", None).await.unwrap();
        assert_eq!(st["status"], "prelaunch");
        m.close().await.unwrap();
        h.await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn no_greeting_times_out() {
    bounded(async {
        let (c, _h) = peer(|mut p| async move {
            // Connected, silent, and still open when the client gives up.
            p.until_eof().await;
            p
        });
        let t0 = std::time::Instant::now();
        let e = Monitor::from_stream(c, opts(200)).await.unwrap_err();
        assert!(matches!(e, QmpError::Greeting(_)), "{e:?}");
        assert!(e.to_string().contains("nothing received"), "{e}");
        assert!(t0.elapsed() < Duration::from_secs(3));
    })
    .await;
}

#[tokio::test]
async fn eof_before_greeting() {
    bounded(async {
        let (c, _h) = peer(|p| async move { p });
        let e = Monitor::from_stream(c, opts(2000)).await.unwrap_err();
        assert!(matches!(e, QmpError::Greeting(_)), "{e:?}");
        assert!(e.to_string().contains("closed the connection"), "{e}");
    })
    .await;
}

#[tokio::test]
async fn non_qmp_greetings_are_refused() {
    bounded(async {
        // The human monitor, as when -mon was given mode=readline by mistake.
        let (c, _h) = peer(|mut p| async move {
            p.raw(b"QEMU 7.2.0 monitor - type 'help' for more information\r\n(qemu) ")
                .await;
            p.until_eof().await;
            p
        });
        let e = Monitor::from_stream(c, opts(2000)).await.unwrap_err();
        assert!(matches!(e, QmpError::Greeting(_)), "{e:?}");
        let s = e.to_string();
        assert!(
            s.contains("malformed") && s.contains("QEMU 7.2.0 monitor"),
            "{s}"
        );

        // Valid JSON that is not a greeting, including a "QMP" member that is not an object.
        for bad in [r#"{"hello": 1}"#, r#"{"QMP": 5}"#, "[1, 2]", r#""QMP""#] {
            let (c, _h) = peer(move |mut p| async move {
                p.send(bad).await;
                p.until_eof().await;
                p
            });
            let e = Monitor::from_stream(c, opts(2000)).await.unwrap_err();
            assert!(matches!(e, QmpError::Greeting(_)), "{bad}: {e:?}");
            assert!(e.to_string().contains("expected {\"QMP\""), "{bad}: {e}");
        }
    })
    .await;
}

#[tokio::test]
async fn garbage_json_reply_poisons() {
    bounded(async {
        let (mut m, _h) = negotiated(2000, |mut p| async move {
            p.cmd().await;
            p.send("{\"return\": {}, \"id\": libvirt-2}").await;
            p.until_eof().await;
            p
        })
        .await;
        let e = m.execute("query-status", None).await.unwrap_err();
        assert!(matches!(e, QmpError::Malformed(_)), "{e:?}");
        assert!(e.to_string().contains("libvirt-2}"), "{e}");
        let e = m.execute("query-status", None).await.unwrap_err();
        assert!(matches!(e, QmpError::Poisoned), "{e:?}");
        let why = m.poison_reason().unwrap();
        assert!(
            why.contains("query-status") && why.contains("malformed"),
            "{why}"
        );
    })
    .await;
}

#[tokio::test]
async fn non_utf8_message() {
    bounded(async {
        let (mut m, _h) = negotiated(2000, |mut p| async move {
            p.cmd().await;
            p.raw(b"{\"return\": \"\xff\xfe\"}\r\n").await;
            p.until_eof().await;
            p
        })
        .await;
        let e = m.execute("query-status", None).await.unwrap_err();
        assert!(e.to_string().contains("not UTF-8"), "{e}");
    })
    .await;
}

#[tokio::test]
async fn reply_larger_than_bound() {
    bounded(async {
        let (c, _h) = peer(|mut p| async move {
            p.greet().await;
            p.answer(json!({})).await;
            p.answer(json!("x".repeat(5000))).await;
            p.until_eof().await;
            p
        });
        let o = MonitorOptions {
            max_message: 1024,
            ..opts(2000)
        };
        let mut m = Monitor::from_stream(c, o).await.unwrap();
        m.negotiate().await.unwrap();
        let e = m.execute("query-qmp-schema", None).await.unwrap_err();
        assert!(matches!(e, QmpError::TooLarge { limit: 1024 }), "{e:?}");
        assert!(matches!(
            m.execute("query-status", None).await,
            Err(QmpError::Poisoned)
        ));
    })
    .await;
}

#[tokio::test]
async fn endless_line_hits_bound_not_memory() {
    bounded(async {
        // A peer that never ends its line: the bound must trip while it is still sending.
        let (c, _h) = peer(|mut p| async move {
            p.greet().await;
            p.answer(json!({})).await;
            p.cmd().await;
            let chunk = vec![b' '; 4096];
            for _ in 0..1024 {
                if p.w.write_all(&chunk).await.is_err() {
                    break;
                }
            }
            p
        });
        let o = MonitorOptions {
            max_message: 64 << 10,
            ..opts(5000)
        };
        let mut m = Monitor::from_stream(c, o).await.unwrap();
        m.negotiate().await.unwrap();
        let e = m.execute("query-status", None).await.unwrap_err();
        assert!(matches!(e, QmpError::TooLarge { .. }), "{e:?}");
    })
    .await;
}

#[tokio::test]
async fn slow_reply_times_out_and_poisons() {
    bounded(async {
        let (mut m, _h) = negotiated(300, |mut p| async move {
            let id = p.cmd().await;
            tokio::time::sleep(Duration::from_millis(1500)).await;
            p.send(&json!({"return": {}, "id": id}).to_string()).await;
            p.until_eof().await;
            p
        })
        .await;
        let t0 = std::time::Instant::now();
        let e = m.execute("query-cpus-fast", None).await.unwrap_err();
        let el = t0.elapsed();
        assert!(
            el >= Duration::from_millis(300) && el < Duration::from_millis(1400),
            "{el:?}"
        );
        match &e {
            QmpError::Timeout { command, timeout } => {
                assert_eq!(command, "query-cpus-fast");
                assert_eq!(*timeout, Duration::from_millis(300));
            }
            e => panic!("expected a timeout, got {e:?}"),
        }
        assert!(e.to_string().contains("'query-cpus-fast' timed out"), "{e}");
        // The late reply must never be taken as the answer to a later command.
        assert!(matches!(
            m.execute("query-status", None).await,
            Err(QmpError::Poisoned)
        ));
        assert!(m.poison_reason().unwrap().contains("no reply within"));
    })
    .await;
}

#[tokio::test]
async fn reply_with_unknown_id() {
    bounded(async {
        let (mut m, _h) = negotiated(2000, |mut p| async move {
            p.cmd().await;
            p.send(r#"{"return": {}, "id": "libvirt-99"}"#).await;
            p.until_eof().await;
            p
        })
        .await;
        let e = m.execute("query-status", None).await.unwrap_err();
        assert!(matches!(e, QmpError::Malformed(_)), "{e:?}");
        let s = e.to_string();
        assert!(
            s.contains("unknown id 'libvirt-99'")
                && s.contains("'libvirt-2'")
                && s.contains("query-status"),
            "{s}"
        );
    })
    .await;
}

#[tokio::test]
async fn reply_without_id_surfaces_qemu_error() {
    bounded(async {
        // What QEMU sends when it cannot parse a command line at all.
        let (mut m, _h) = negotiated(2000, |mut p| async move {
            p.cmd().await;
            p.send(r#"{"error": {"class": "GenericError", "desc": "JSON parse error, invalid keyword"}}"#)
                .await;
            p.until_eof().await;
            p
        })
        .await;
        let e = m.execute("query-status", None).await.unwrap_err();
        let s = e.to_string();
        assert!(
            s.contains("reply without id") && s.contains("GenericError: JSON parse error"),
            "{s}"
        );
    })
    .await;
}

#[tokio::test]
async fn reply_when_no_command_pending() {
    bounded(async {
        let (mut m, _h) = negotiated(2000, |mut p| async move {
            p.send(r#"{"return": {}, "id": "libvirt-7"}"#).await;
            p.until_eof().await;
            p
        })
        .await;
        let e = m
            .next_event(Duration::from_secs(2))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("'libvirt-7' while no command was pending"),
            "{e}"
        );
    })
    .await;
}

#[tokio::test]
async fn events_interleaved_with_replies() {
    bounded(async {
        let (mut m, _h) = negotiated(2000, |mut p| async move {
            let id = p.cmd().await;
            p.send(r#"{"timestamp": {"seconds": 1700000000, "microseconds": 5}, "event": "STOP"}"#)
                .await;
            // A blank line and a bare "\n" ending are tolerated.
            p.raw(b"\r\n{\"event\": \"RESUME\", \"data\": {\"x\": 1}}\n")
                .await;
            p.send(&json!({"return": {"running": true}, "id": id}).to_string())
                .await;
            p.send(r#"{"event": "DEVICE_DELETED", "data": {"device": "d0"}}"#)
                .await;
            p.answer(json!({})).await;
            p.until_eof().await;
            p
        })
        .await;
        let r = m.execute("cont", None).await.unwrap();
        assert_eq!(r["running"], true);
        let e = m.next_event(Duration::from_secs(1)).await.unwrap().unwrap();
        assert_eq!(e.name, "STOP");
        assert_eq!(e.timestamp, Some((1700000000, 5)));
        assert_eq!(e.data, Value::Null);
        let e = m.next_event(Duration::from_secs(1)).await.unwrap().unwrap();
        assert_eq!((e.name.as_str(), &e.data), ("RESUME", &json!({"x": 1})));
        assert_eq!(e.timestamp, None);
        let e = m.next_event(Duration::from_secs(1)).await.unwrap().unwrap();
        assert_eq!(e.name, "DEVICE_DELETED");
        assert_eq!(e.data["device"], "d0");
        // Nothing more: a quiet timeout, and the monitor stays usable.
        assert!(
            m.next_event(Duration::from_millis(50))
                .await
                .unwrap()
                .is_none()
        );
        m.execute("stop", None).await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn event_queue_is_bounded() {
    bounded(async {
        let (c, _h) = peer(|mut p| async move {
            p.greet().await;
            let id = p.cmd().await;
            for i in 0..5 {
                p.send(&json!({"event": format!("E{i}")}).to_string()).await;
            }
            p.send(&json!({"return": {}, "id": id}).to_string()).await;
            p.until_eof().await;
            p
        });
        let o = MonitorOptions {
            max_queued_events: 2,
            ..opts(2000)
        };
        let mut m = Monitor::from_stream(c, o).await.unwrap();
        m.negotiate().await.unwrap();
        assert_eq!(m.queued_events(), 2);
        let mut names = Vec::new();
        while let Some(e) = m.next_event(Duration::from_millis(50)).await.unwrap() {
            names.push(e.name);
        }
        assert_eq!(names, ["E3", "E4"], "the oldest events are dropped first");
    })
    .await;
}

#[tokio::test]
async fn event_name_must_be_a_string() {
    bounded(async {
        let (mut m, _h) = negotiated(2000, |mut p| async move {
            p.send(r#"{"event": 42}"#).await;
            p.until_eof().await;
            p
        })
        .await;
        let e = m.next_event(Duration::from_secs(2)).await.unwrap_err();
        assert!(e.to_string().contains("event name is not a string"), "{e}");
    })
    .await;
}

#[tokio::test]
async fn eof_in_the_middle_of_a_reply() {
    bounded(async {
        let (mut m, _h) = negotiated(2000, |mut p| async move {
            p.cmd().await;
            p.raw(br#"{"return": {"status": "runn"#).await;
            p
        })
        .await;
        let e = m.execute("query-status", None).await.unwrap_err();
        assert!(matches!(e, QmpError::Eof(_)), "{e:?}");
        let s = e.to_string();
        assert!(
            s.contains("in the middle of a message")
                && s.contains("\"runn")
                && s.contains("reply to 'query-status'"),
            "{s}"
        );
        assert!(matches!(
            m.execute("query-status", None).await,
            Err(QmpError::Poisoned)
        ));
    })
    .await;
}

#[tokio::test]
async fn peer_gone_before_command() {
    bounded(async {
        let (mut m, h) = negotiated(2000, |p| async move { p }).await;
        h.await.unwrap();
        let e = m.execute("query-status", None).await.unwrap_err();
        assert!(matches!(e, QmpError::Eof(_)), "{e:?}");
        let s = e.to_string();
        assert!(s.contains("'query-status'"), "{s}");
        assert_eq!(s.matches(" while ").count(), 1, "context given once: {s}");
    })
    .await;
}

#[tokio::test]
async fn error_reply_surfaces_class_and_desc_and_keeps_monitor() {
    bounded(async {
        let (mut m, _h) = negotiated(2000, |mut p| async move {
            let id = p.cmd().await;
            p.send(
                &json!({"id": id, "error": {"class": "CommandNotFound",
                    "desc": "The command nope has not been found"}})
                .to_string(),
            )
            .await;
            p.answer(json!({"running": false})).await;
            p.until_eof().await;
            p
        })
        .await;
        let e = m.execute("nope", None).await.unwrap_err();
        assert_eq!(e.class(), Some("CommandNotFound"));
        assert_eq!(
            e.to_string(),
            "QMP command 'nope' failed: CommandNotFound: The command nope has not been found"
        );
        assert!(m.poison_reason().is_none());
        assert_eq!(
            m.execute("query-status", None).await.unwrap()["running"],
            false
        );
    })
    .await;
}

#[tokio::test]
async fn replies_split_across_reads() {
    bounded(async {
        let (mut m, _h) = negotiated(2000, |mut p| async move {
            let id = p.cmd().await;
            let line = format!("{}\r\n", json!({"return": {"a": [1, 2, 3]}, "id": id}));
            for b in line.as_bytes().chunks(3) {
                p.raw(b).await;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            p.until_eof().await;
            p
        })
        .await;
        let r = m.execute("x", Some(json!({"k": "v"}))).await.unwrap();
        assert_eq!(r, json!({"a": [1, 2, 3]}));
    })
    .await;
}

#[tokio::test]
async fn next_event_timeout_keeps_partial_message() {
    bounded(async {
        let (mut m, _h) = negotiated(2000, |mut p| async move {
            p.raw(br#"{"event": "SHUT"#).await;
            tokio::time::sleep(Duration::from_millis(300)).await;
            p.raw(b"DOWN\", \"data\": {\"guest\": false}}\r\n").await;
            p.until_eof().await;
            p
        })
        .await;
        // Give up while half the event has been read; the half must not be lost.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            m.next_event(Duration::from_millis(50))
                .await
                .unwrap()
                .is_none()
        );
        let e = m.next_event(Duration::from_secs(2)).await.unwrap().unwrap();
        assert_eq!(e.name, "SHUTDOWN");
        assert_eq!(e.data["guest"], false);
    })
    .await;
}

#[tokio::test]
async fn abandoned_execute_poisons() {
    bounded(async {
        let (mut m, _h) = negotiated(5000, |mut p| async move {
            let id = p.cmd().await;
            tokio::time::sleep(Duration::from_millis(300)).await;
            p.send(&json!({"return": {}, "id": id}).to_string()).await;
            p.until_eof().await;
            p
        })
        .await;
        // The caller's own timeout drops the execute future mid-way.
        let r = tokio::time::timeout(Duration::from_millis(50), m.execute("slow", None)).await;
        assert!(r.is_err());
        let e = m.execute("query-status", None).await.unwrap_err();
        assert!(matches!(e, QmpError::Poisoned), "{e:?}");
        assert!(
            m.poison_reason().unwrap().contains("'slow' was abandoned"),
            "{:?}",
            m.poison_reason()
        );
    })
    .await;
}

#[tokio::test]
async fn eof_after_quit_then_poisoned() {
    bounded(async {
        let (mut m, _h) = negotiated(2000, |mut p| async move {
            p.answer(json!({})).await;
            p.send(r#"{"event": "SHUTDOWN", "data": {"guest": false, "reason": "host-qmp-quit"}}"#)
                .await;
            p
        })
        .await;
        m.execute("quit", None).await.unwrap();
        let e = m.next_event(Duration::from_secs(2)).await.unwrap().unwrap();
        assert_eq!(e.name, "SHUTDOWN");
        let e = m.next_event(Duration::from_secs(2)).await.unwrap_err();
        assert!(matches!(e, QmpError::Eof(_)), "{e:?}");
        let e = m.next_event(Duration::from_secs(2)).await.unwrap_err();
        assert!(matches!(e, QmpError::Poisoned), "{e:?}");
    })
    .await;
}

/// A greeting + capabilities peer on a real UNIX socket, so the fd constructors are covered.
fn unix_peer(s: std::os::unix::net::UnixStream) -> JoinHandle<Vec<Value>> {
    tokio::spawn(async move {
        s.set_nonblocking(true).unwrap();
        let mut p = Peer::new(tokio::net::UnixStream::from_std(s).unwrap());
        p.greet().await;
        p.answer(json!({})).await;
        p.until_eof().await;
        p.received
    })
}

#[tokio::test]
async fn from_std_unix_stream_and_close() {
    bounded(async {
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        let h = unix_peer(b);
        let mut m = Monitor::from_std_unix_stream(a, opts(2000)).await.unwrap();
        m.negotiate().await.unwrap();
        m.close().await.unwrap();
        // The peer only finishes once it saw our EOF.
        assert_eq!(h.await.unwrap().len(), 1);
    })
    .await;
}

#[tokio::test]
async fn from_unix_fd_accepts_sockets_only() {
    bounded(async {
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        let h = unix_peer(b);
        let fd = std::os::fd::OwnedFd::from(a);
        let mut m = Monitor::from_unix_fd(fd, opts(2000)).await.unwrap();
        m.negotiate().await.unwrap();
        m.close().await.unwrap();
        assert_eq!(h.await.unwrap().len(), 1);

        let (r, _w) = nix::unistd::pipe().unwrap();
        let e = Monitor::from_unix_fd(r, opts(2000)).await.unwrap_err();
        assert!(e.to_string().contains("not a socket"), "{e}");

        let (d, _d2) = std::os::unix::net::UnixDatagram::pair().unwrap();
        let e = Monitor::from_unix_fd(d.into(), opts(2000))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("not a stream socket"), "{e}");

        // The descriptor meant for QEMU, passed here by mistake.
        let dir = tempfile::tempdir().unwrap();
        let l = std::os::unix::net::UnixListener::bind(dir.path().join("s")).unwrap();
        let e = Monitor::from_unix_fd(l.into(), opts(2000))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("listening socket"), "{e}");
    })
    .await;
}

/// Polled by something other than tokio, the fd constructor fails instead of panicking.
#[test]
fn from_std_unix_stream_outside_tokio_is_an_error() {
    let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    let fut = Monitor::from_std_unix_stream(a, opts(100));
    let mut fut = std::pin::pin!(fut);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match fut.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(Err(e)) => {
            assert!(e.to_string().contains("needs a tokio runtime"), "{e}")
        }
        std::task::Poll::Ready(Ok(_)) => panic!("succeeded without a runtime"),
        std::task::Poll::Pending => panic!("pending without a runtime"),
    }
}
