//! Every `.replies` file in libvirt's corpus parses, is numbered as libvirt numbers it, and
//! formats back byte for byte.

mod common;

use domdriver::qmp::Conversation;

#[test]
fn libvirt_replies_round_trip() {
    let dir = common::testdata().join("tests/qemucapabilitiesdata");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("replies") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let conv = Conversation::parse(&text, &path.display().to_string()).unwrap();
        conv.check_numbering()
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(
            conv.format() == text,
            "{} does not round-trip",
            path.display()
        );
        n += 1;
    }
    assert_eq!(n, 29, "expected libvirt's 29 .replies files");
}

/// Found by fuzzing: an integer too large for u64 is read as a float, and without exact float
/// parsing the formatted conversation read back as a different number.
#[test]
fn huge_numbers_survive_format_and_parse() {
    let text = "{\n  \"execute\": \"q)mlibv2\"\n}\n\n{\n  \"return\": 222222222222000001675063872737791576\n}\n";
    let conv = Conversation::parse(text, "fuzz").unwrap();
    let again = Conversation::parse(&conv.format(), "formatted").unwrap();
    assert_eq!(conv, again);
}
