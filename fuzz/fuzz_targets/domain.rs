//! Domain XML: any bytes parse or give an error, never a panic; whatever parses formats to a
//! document that parses to the same definition.
#![no_main]

use domdriver::domain::{self, FormatFlags};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(def) = domain::parse(text) {
        let flags = FormatFlags {
            inactive: true,
            secure: false,
        };
        let xml = def.to_xml(flags);
        let again = domain::parse(&xml).expect("formatted output parses");
        assert_eq!(again.to_xml(flags), xml, "format is stable");
    }
});
