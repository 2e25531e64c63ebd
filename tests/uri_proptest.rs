//! The CI version of the `uri` fuzz target: any string gives a connection URI or an error,
//! never a panic, and a parsed URI prints as a string that parses to the same URI.

use domdriver::driver::ConnectUri;
use proptest::prelude::*;

fn check(s: &str) {
    if let Ok(u) = ConnectUri::parse(s) {
        let printed = u.to_string();
        assert_eq!(ConnectUri::parse(&printed).ok(), Some(u), "{printed}");
    }
}

/// Strings that look like URIs get much further into the parser than arbitrary text.
fn uri_like() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec!["qemu", "qemu+unix", "qemu+ssh", "xen", "", "QEMU"]),
        prop::sample::select(vec![":///", "://", ":/", "://host/", ":"]),
        prop::sample::select(vec!["session", "system", "embed", "", "Session"]),
        "[?&=a-z/%. ]{0,30}",
    )
        .prop_map(|(s, sep, path, q)| format!("{s}{sep}{path}{q}"))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn any_text_parses_or_errs(s in any::<String>()) {
        check(&s);
    }

    #[test]
    fn uri_like_text_round_trips(s in uri_like()) {
        check(&s);
    }

    #[test]
    fn embed_roots_round_trip(root in "/[a-zA-Z0-9 %&=?_./-]{1,40}") {
        check(&format!("qemu:///embed?root={root}"));
    }
}
