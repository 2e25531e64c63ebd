//! `.replies` parsing: never panics, and what parses formats back to something that parses
//! to the same conversation.
#![no_main]

use domdriver::qmp::Conversation;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(conv) = Conversation::parse(text, "fuzz.replies") {
        let again = Conversation::parse(&conv.format(), "formatted").expect("formatted output parses");
        assert_eq!(conv, again);
        let _ = conv.check_numbering();
        let mut c = conv.clone();
        c.renumber();
        c.check_numbering().expect("renumbered conversation is numbered");
    }
});
