//! `vsh secret-event`: secret events from the secret store's directory, as virsh prints
//! them, while other `vsh` runs define, change and undefine secrets. Every `vsh` started in
//! the background is killed on drop.

#[path = "common/eventbg.rs"]
mod eventbg;
#[path = "common/vshrun.rs"]
mod vshrun;

use eventbg::Bg;
use vshrun::Vsh;

const S: &str = "6e9b4d3f-4a1c-4b7f-8e52-1d3c8f0a2b21";

#[test]
fn secret_events_of_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let v = Vsh::new(dir.path().join("r"));
    assert!(
        v.ok(&["secret-event", "--help"])
            .contains("List event types, or wait for secret events to occur")
    );
    assert_eq!(
        v.ok(&["secret-event", "--list"]),
        "lifecycle\nvalue-changed\n\n"
    );
    for (args, msg) in [
        (
            &["secret-event"][..],
            "error: either --list or --event <type> is required\n",
        ),
        (
            &["secret-event", "--event", "bogus"],
            "error: unknown event type bogus\n",
        ),
        (
            &["secret-event", "--event", "lifecycle", "--timeout", "0"],
            "error: Numeric value '0' for <timeout> option is malformed or out of range\n",
        ),
    ] {
        assert_eq!(v.fails(args), msg, "{args:?}");
    }
    let err = v.fails(&["secret-event", "nosuch", "lifecycle"]);
    assert!(
        err.starts_with("error: failed to get secret 'nosuch'\n"),
        "{err}"
    );
    let (ok, out, err) = v.run(&["secret-event", "--event", "lifecycle", "--timeout", "1"]);
    assert!(!ok);
    assert_eq!(out, "event loop timed out\nevents received: 0\n\n");
    assert_eq!(err, "");

    let life = Bg::spawn(&v, &["secret-event", "--event", "lifecycle", "--loop"]);
    let one = Bg::spawn(&v, &["secret-event", "--event", "value-changed"]);
    let json = Bg::spawn(
        &v,
        &["secret-event", "--event", "lifecycle", "--loop", "--json"],
    );
    for b in [&life, &one, &json] {
        b.watching();
    }
    let f = dir.path().join("s.xml");
    std::fs::write(
        &f,
        format!("<secret ephemeral='no' private='no'><uuid>{S}</uuid></secret>"),
    )
    .unwrap();
    v.ok(&["secret-define", f.to_str().unwrap()]);
    assert_eq!(
        life.line(),
        format!("event 'lifecycle' for secret {S}: Defined")
    );
    v.ok(&["secret-set-value", S, "--base64", "eA=="]);
    let (ok, rest) = one.finish();
    assert!(ok);
    assert_eq!(
        rest,
        [
            format!("event 'value-changed' for secret {S}"),
            "events received: 1".into(),
            "".into()
        ]
    );
    // Filtered by secret: only its events.
    let only = Bg::spawn(&v, &["secret-event", S, "lifecycle", "--timestamp"]);
    only.watching();
    v.ok(&["secret-undefine", S]);
    assert_eq!(
        life.line(),
        format!("event 'lifecycle' for secret {S}: Undefined")
    );
    let (ok, rest) = only.finish();
    assert!(ok);
    assert!(
        rest[0].ends_with(&format!(
            "+0000: event 'lifecycle' for secret {S}: Undefined"
        )),
        "{rest:?}"
    );
    let j: serde_json::Value = serde_json::from_str(&json.line()).unwrap();
    assert_eq!(j, serde_json::json!({"uuid": S, "event": "defined"}));
    let j: serde_json::Value = serde_json::from_str(&json.line()).unwrap();
    assert_eq!(j["event"], "undefined");
}
