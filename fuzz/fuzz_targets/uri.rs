//! Connection URIs: any string gives a URI or an error, and a parsed URI prints as a string
//! that parses to the same URI.
#![no_main]

use domdriver::driver::ConnectUri;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(u) = ConnectUri::parse(s) {
        let printed = u.to_string();
        assert_eq!(ConnectUri::parse(&printed).ok(), Some(u), "{printed}");
    }
});
