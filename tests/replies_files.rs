//! `check_replies_file` and `renumber_replies_file` on good and hand-broken files.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use domdriver::qmp::{QmpError, check_replies_file, renumber_replies_file};

/// Two sessions, canonical layout, correct ids. Line numbers below refer to this text:
/// exchange 1 starts on line 1, exchange 2 on line 12, exchange 3 (second session) on line 24.
const GOOD: &str = r#"{
  "execute": "qmp_capabilities",
  "id": "libvirt-1"
}

{
  "return": {
  },
  "id": "libvirt-1"
}

{
  "execute": "query-target",
  "id": "libvirt-2"
}

{
  "return": {
    "arch": "x86_64"
  },
  "id": "libvirt-2"
}

{
  "execute": "qmp_capabilities",
  "id": "libvirt-1"
}

{
  "return": {
  },
  "id": "libvirt-1"
}
"#;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn replies_err(e: QmpError) -> (String, String) {
    match e {
        QmpError::Replies { file, msg } => (file, msg),
        e => panic!("expected a .replies error, got {e:?}"),
    }
}

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn good_file_checks_clean_and_is_not_rewritten() {
    let d = tempfile::tempdir().unwrap();
    let p = write(d.path(), "good.replies", GOOD);
    let r = check_replies_file(&p).unwrap();
    assert!(r.is_ok(), "{r}");
    assert_eq!((r.exchanges, r.sessions), (3, 2));
    assert!(
        r.to_string()
            .ends_with("good.replies: OK (3 exchanges in 2 sessions)")
    );
    let ino = std::fs::metadata(&p).unwrap().ino();
    assert_eq!(renumber_replies_file(&p).unwrap(), 0);
    assert_eq!(
        std::fs::metadata(&p).unwrap().ino(),
        ino,
        "file was rewritten"
    );
    assert_eq!(std::fs::read_to_string(&p).unwrap(), GOOD);
}

#[test]
fn bad_ids_are_reported_and_renumbered_atomically() {
    let d = tempfile::tempdir().unwrap();
    // Exchange 2's command and reply carry a wrong id, exchange 3 lost its reply id.
    let mut broken = GOOD.replace("libvirt-2", "libvirt-7");
    let tail = "  },\n  \"id\": \"libvirt-1\"\n}\n";
    let last = broken.rfind(tail).unwrap();
    broken.replace_range(last.., "  }\n}\n");
    let p = write(d.path(), "bad.replies", &broken);
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();

    let r = check_replies_file(&p).unwrap();
    assert_eq!(
        r.problems,
        [
            "line 12: exchange 2 ('query-target'): command id is 'libvirt-7', expected 'libvirt-2'",
            "line 12: exchange 2 ('query-target'): reply id is 'libvirt-7', expected 'libvirt-2'",
            "line 24: exchange 3 ('qmp_capabilities'): reply id is missing, expected 'libvirt-1'",
        ],
        "{broken}"
    );
    let shown = r.to_string();
    assert!(
        shown
            .lines()
            .all(|l| l.starts_with(&p.display().to_string())),
        "every problem names the file: {shown}"
    );

    let ino = std::fs::metadata(&p).unwrap().ino();
    assert_eq!(renumber_replies_file(&p).unwrap(), 3);
    assert_ne!(
        std::fs::metadata(&p).unwrap().ino(),
        ino,
        "replaced by rename"
    );
    assert_eq!(std::fs::read_to_string(&p).unwrap(), GOOD);
    assert_eq!(
        std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
        0o640
    );
    assert_eq!(entries(d.path()), ["bad.replies"], "no temporary file left");
    assert!(check_replies_file(&p).unwrap().is_ok());
}

#[test]
fn missing_reply_names_file_line_and_exchange() {
    let d = tempfile::tempdir().unwrap();
    // Drop exchange 2's reply: the next object is the second session's command.
    let start = GOOD.find("{\n  \"return\": {\n    \"arch\"").unwrap();
    let end = start + GOOD[start..].find("}\n\n").unwrap() + 3;
    let mut broken = GOOD.to_string();
    broken.replace_range(start..end, "");
    let p = write(d.path(), "noreply.replies", &broken);
    let (file, msg) = replies_err(check_replies_file(&p).unwrap_err());
    assert_eq!(file, p.display().to_string());
    assert_eq!(
        msg,
        "line 12: exchange 2: command 'query-target' has no reply (line 17 starts the next command)"
    );
    // Renumbering refuses too, and leaves the file alone.
    assert!(renumber_replies_file(&p).is_err());
    assert_eq!(std::fs::read_to_string(&p).unwrap(), broken);

    // Truncated after a command.
    let cut = &GOOD[..GOOD.rfind("{\n  \"return\"").unwrap()];
    let p = write(d.path(), "cut.replies", cut);
    let (_, msg) = replies_err(check_replies_file(&p).unwrap_err());
    assert_eq!(
        msg,
        "line 24: exchange 3: command 'qmp_capabilities' has no reply (the file ends)"
    );

    // A reply where a command belongs (a command was deleted).
    let start = GOOD.find("{\n  \"execute\": \"query-target\"").unwrap();
    let end = start + GOOD[start..].find("}\n\n").unwrap() + 3;
    let mut broken = GOOD.to_string();
    broken.replace_range(start..end, "");
    let p = write(d.path(), "nocmd.replies", &broken);
    let (_, msg) = replies_err(check_replies_file(&p).unwrap_err());
    assert!(
        msg.starts_with("line 12: exchange 2: a reply where a command was expected"),
        "{msg}"
    );
}

#[test]
fn invalid_json_names_file_line_and_exchange() {
    let d = tempfile::tempdir().unwrap();
    let broken = GOOD.replace("\"arch\": \"x86_64\"", "\"arch\": x86_64");
    let p = write(d.path(), "json.replies", &broken);
    let (file, msg) = replies_err(check_replies_file(&p).unwrap_err());
    assert_eq!(file, p.display().to_string());
    assert!(
        msg.starts_with("line 19: exchange 2: invalid JSON: "),
        "{msg}"
    );
    let e = renumber_replies_file(&p).unwrap_err().to_string();
    assert!(e.starts_with(&format!("{}: line 19", p.display())), "{e}");
}

#[test]
fn layout_problems_are_reported_and_fixed() {
    let d = tempfile::tempdir().unwrap();
    let compact = "{\"execute\": \"qmp_capabilities\", \"id\": \"libvirt-1\"}\n\n{\"return\": {}, \"id\": \"libvirt-1\"}\n";
    let p = write(d.path(), "compact.replies", compact);
    let r = check_replies_file(&p).unwrap();
    assert_eq!(r.problems.len(), 1, "{r}");
    assert!(r.problems[0].starts_with("line 1: layout differs"), "{r}");
    // Nothing to renumber, but the file is rewritten in canonical layout.
    assert_eq!(renumber_replies_file(&p).unwrap(), 0);
    assert!(check_replies_file(&p).unwrap().is_ok());

    let p = write(d.path(), "crlf.replies", &GOOD.replace('\n', "\r\n"));
    let r = check_replies_file(&p).unwrap();
    assert_eq!(r.problems.len(), 1, "{r}");
    assert!(r.problems[0].contains("line endings differ"), "{r}");

    let p = write(d.path(), "noeol.replies", GOOD.trim_end());
    assert!(!check_replies_file(&p).unwrap().is_ok());
}

#[test]
fn session_and_emptiness_problems() {
    let d = tempfile::tempdir().unwrap();
    let p = write(d.path(), "empty.replies", "");
    let r = check_replies_file(&p).unwrap();
    assert_eq!(r.problems, ["line 1: the file holds no exchanges"]);

    let start = GOOD.find("{\n  \"execute\": \"query-target\"").unwrap();
    let p = write(d.path(), "nocaps.replies", &GOOD[start..]);
    let r = check_replies_file(&p).unwrap();
    assert_eq!(
        r.problems[0],
        "line 1: exchange 1 is 'query-target'; a session must start with 'qmp_capabilities'"
    );
}

#[test]
fn missing_file_is_named() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("absent.replies");
    let (file, msg) = replies_err(check_replies_file(&p).unwrap_err());
    assert_eq!(file, p.display().to_string());
    assert!(msg.contains("No such file"), "{msg}");
    assert!(renumber_replies_file(&p).is_err());
}

#[test]
fn renumber_through_a_symlink_keeps_the_link() {
    let d = tempfile::tempdir().unwrap();
    let real = write(
        d.path(),
        "real.replies",
        &GOOD.replace("libvirt-2", "libvirt-3"),
    );
    let link = d.path().join("link.replies");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    assert_eq!(renumber_replies_file(&link).unwrap(), 2);
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(std::fs::read_to_string(&real).unwrap(), GOOD);
    assert_eq!(entries(d.path()), ["link.replies", "real.replies"]);
}

/// libvirt's own files are the reference: all must check clean.
#[test]
fn libvirt_corpus_checks_clean() {
    let dir = common::testdata().join("tests/qemucapabilitiesdata");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("replies") {
            continue;
        }
        let r = check_replies_file(&path).unwrap();
        assert!(r.is_ok(), "{r}");
        assert!(r.sessions >= 1, "{r}");
        n += 1;
    }
    assert_eq!(n, 29);
}
