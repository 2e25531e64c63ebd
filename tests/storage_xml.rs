//! Storage pool XML against libvirt's own: every document of libvirt 9.0's
//! `tests/storagepoolxml2xmlout` reads and writes back byte for byte (libvirt:
//! storagepoolxml2xmltest, whose outputs are its fixed points).

mod common;

use domdriver::storage::PoolDef;

#[test]
fn every_libvirt_pool_document_round_trips() {
    let dir = common::testdata().join("tests/storagepoolxml2xmlout");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "xml"))
        .collect();
    files.sort();
    assert!(files.len() >= 38, "only {} pool documents", files.len());
    let mut failures = Vec::new();
    for f in &files {
        let xml = std::fs::read_to_string(f).unwrap();
        match PoolDef::parse(&xml) {
            Ok(def) if def.format() == xml => {}
            Ok(def) => failures.push(format!(
                "{}: differs\n--- want\n{xml}--- got\n{}",
                f.display(),
                def.format()
            )),
            Err(e) => failures.push(format!("{}: {e}", f.display())),
        }
    }
    assert!(
        failures.is_empty(),
        "{}/{} differ:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

#[test]
fn a_state_file_keeps_the_figures() {
    let xml = std::fs::read_to_string(
        common::testdata().join("tests/storagepoolxml2xmlout/pool-dir.xml"),
    )
    .unwrap();
    let mut def = PoolDef::parse(&xml).unwrap();
    def.capacity = 3 << 30;
    def.available = 1 << 30;
    def.allocation = 2 << 30;
    let state = def.format_state();
    assert!(
        state.starts_with("<poolstate>\n  <pool type='dir'>\n"),
        "{state}"
    );
    assert_eq!(PoolDef::parse_state(&state).unwrap(), def);
}
