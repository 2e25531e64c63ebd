//! Disk secrets on real guests: a LUKS image made by qemu-img, its passphrase defined as a
//! secret, and a guest that QEMU starts only if the passphrase reached it, encrypted with the
//! start's master key. The passphrase must show up nowhere in clear: not in QEMU's argv, `ps`,
//! the guest log, the status file, the live XML nor any other file of the connection.

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use domdriver::Connect;
use domdriver::domain::FormatFlags;

const PASS: &str = "Sw0rdf1sh-domdriver-LUKS";
const UUID: &str = "0a81f5b2-8403-7b23-c8d6-21ccc2f80d6f";

fn tools() -> bool {
    let ok = Path::new("/usr/bin/qemu-system-x86_64").exists()
        && Command::new("qemu-img").arg("--version").output().is_ok();
    if !ok {
        eprintln!("\n*** SKIPPED: qemu-system-x86_64 or qemu-img is not installed ***\n");
    }
    ok
}

fn luks_image(dir: &Path) -> PathBuf {
    let img = dir.join("disk.luks");
    // QEMU times PBKDF2 by the thread's CPU usage to pick the iteration count, and on a busy
    // or coarse-clocked host that measure now and then comes back empty: try again.
    let mut last = None;
    for _ in 0..10 {
        let out = Command::new("qemu-img")
            .args(["create", "-q", "-f", "luks", "--object"])
            .arg(format!("secret,id=sec0,data={PASS}"))
            .args(["-o", "key-secret=sec0,iter-time=200"])
            .arg(&img)
            .arg("16M")
            .output()
            .unwrap();
        if out.status.success() {
            return img;
        }
        last = Some(out);
    }
    panic!("qemu-img create failed: {last:?}");
}

fn domain_xml(name: &str, img: &Path, secret_uuid: &str) -> String {
    format!(
        "<domain type='qemu'>
  <name>{name}</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
  </os>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='{}'>
        <encryption format='luks'>
          <secret type='passphrase' uuid='{secret_uuid}'/>
        </encryption>
      </source>
      <target dev='vda' bus='virtio'/>
    </disk>
    <memballoon model='none'/>
  </devices>
</domain>
",
        img.display()
    )
}

fn secret_xml(uuid: &str, img: &Path) -> String {
    format!(
        "<secret ephemeral='no' private='yes'>
  <uuid>{uuid}</uuid>
  <usage type='volume'>
    <volume>{}</volume>
  </usage>
</secret>
",
        img.display()
    )
}

/// QEMU's pid, from the status file.
fn qemu_pid(conn: &Connect, name: &str) -> i32 {
    let text = std::fs::read_to_string(conn.dirs().run.join(format!("{name}.json"))).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["pid"].as_i64().unwrap() as i32
}

/// Every regular file under `dir`, except the secret store, which keeps values as libvirt's
/// does (base64, 0600).
fn files_under(dir: &Path, store: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        let ft = e.file_type().unwrap();
        if p == store {
            continue;
        } else if ft.is_dir() {
            files_under(&p, store, out);
        } else if ft.is_file() {
            out.push(p);
        }
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn luks_disk_gets_its_passphrase_encrypted_and_never_in_clear() {
    if !tools() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let img = luks_image(d.path());
    let root = d.path().join("root");
    let conn = Connect::open(Some(&format!("qemu:///embed?root={}", root.display()))).unwrap();

    // Not defined yet: libvirt's error, and nothing started.
    let dom = conn
        .define_domain_xml(&domain_xml("luks", &img, UUID))
        .unwrap();
    let e = dom.create_with_flags(true).unwrap_err().to_string();
    assert_eq!(
        e,
        format!("Secret not found: no secret with matching uuid '{UUID}'")
    );
    assert!(!dom.is_active().unwrap());

    // Defined without a value.
    let secret = conn.define_secret_xml(&secret_xml(UUID, &img)).unwrap();
    let e = dom.create_with_flags(true).unwrap_err().to_string();
    assert_eq!(
        e,
        format!("Secret not found: secret '{UUID}' does not have a value")
    );

    // A wrong passphrase reaches QEMU, which refuses the image: the start fails with its word.
    secret.set_value(b"not the passphrase").unwrap();
    let e = dom.create_with_flags(true).unwrap_err().to_string();
    assert!(
        e.contains("Invalid password, cannot unlock any keyslot"),
        "{e}"
    );
    assert!(!dom.is_active().unwrap());

    // The right one: QEMU opens the encrypted image.
    secret.set_value(PASS.as_bytes()).unwrap();
    dom.create_with_flags(true).unwrap();
    let pid = qemu_pid(&conn, "luks");
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    let ps = Command::new("ps")
        .args(["-ww", "-eo", "args"])
        .output()
        .unwrap();
    let live = dom
        .xml_desc(FormatFlags {
            inactive: false,
            secure: true,
        })
        .unwrap();
    let mut files = Vec::new();
    files_under(&root, &conn.secrets_dir(), &mut files);
    let key_files: Vec<_> = files
        .iter()
        .filter(|p| p.file_name().is_some_and(|n| n == "master-key.aes"))
        .cloned()
        .collect();
    let key_meta = key_files.first().map(|k| std::fs::metadata(k).unwrap());
    let dumped: Vec<(PathBuf, Vec<u8>)> = files
        .iter()
        .map(|p| (p.clone(), std::fs::read(p).unwrap_or_default()))
        .collect();
    dom.destroy().unwrap();
    // Gone, by pid.
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists() || {
            std::thread::sleep(std::time::Duration::from_millis(500));
            !Path::new(&format!("/proc/{pid}")).exists()
        }
    );

    let b64 = base64::engine::general_purpose::STANDARD.encode(PASS);
    for needle in [PASS.as_bytes(), b64.as_bytes()] {
        assert!(!contains(&cmdline, needle), "passphrase in QEMU's argv");
        assert!(!contains(&ps.stdout, needle), "passphrase in ps");
        assert!(!contains(live.as_bytes(), needle), "passphrase in live XML");
        for (p, data) in &dumped {
            assert!(!contains(data, needle), "passphrase in {}", p.display());
        }
    }
    // The secret went to QEMU encrypted, with the key QEMU reads from master-key.aes.
    let argv = String::from_utf8_lossy(&cmdline).replace('\0', " ");
    assert!(
        argv.contains("\"id\":\"masterKey0\",\"format\":\"raw\",\"file\":"),
        "{argv}"
    );
    assert!(argv.contains("\"keyid\":\"masterKey0\""), "{argv}");
    assert!(
        argv.contains("\"driver\":\"luks\",\"key-secret\":"),
        "{argv}"
    );
    assert!(live.contains(&format!("uuid='{UUID}'")), "{live}");
    // The status file and log were among the files searched.
    assert!(
        dumped.iter().any(|(p, _)| p.ends_with("luks.json")),
        "{files:?}"
    );
    assert!(
        dumped.iter().any(|(p, _)| p.ends_with("luks.log")),
        "{files:?}"
    );
    assert_eq!(key_files.len(), 1, "{files:?}");
    let meta = key_meta.unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(meta.len(), 32);
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);

    // No master key is left behind by the failed starts nor by the destroy.
    let mut after = Vec::new();
    files_under(&root, &conn.secrets_dir(), &mut after);
    assert!(
        !after.iter().any(|p| p.ends_with("master-key.aes")),
        "{after:?}"
    );

    // Undefined again: the next start names the missing secret.
    secret.undefine().unwrap();
    let e = dom.create_with_flags(true).unwrap_err().to_string();
    assert!(e.starts_with("Secret not found: no secret"), "{e}");
}

#[test]
fn two_starts_use_different_keys_and_ivs() {
    if !tools() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let img = luks_image(d.path());
    let root = d.path().join("root");
    let conn = Connect::open(Some(&format!("qemu:///embed?root={}", root.display()))).unwrap();
    // Looked up by usage (the volume path) this time.
    let secret = conn.define_secret_xml(&secret_xml(UUID, &img)).unwrap();
    secret.set_value(PASS.as_bytes()).unwrap();
    let xml = domain_xml("luks2", &img, UUID).replace(
        &format!("uuid='{UUID}'"),
        &format!("usage='{}'", img.display()),
    );
    let dom = conn.define_domain_xml(&xml).unwrap();
    let mut seen = Vec::new();
    for _ in 0..2 {
        dom.create_with_flags(true).unwrap();
        let pid = qemu_pid(&conn, "luks2");
        let argv = String::from_utf8_lossy(&std::fs::read(format!("/proc/{pid}/cmdline")).unwrap())
            .replace('\0', " ");
        dom.destroy().unwrap();
        let enc = argv
            .split("\"keyid\":\"masterKey0\",\"iv\":\"")
            .nth(1)
            .map(|s| s.split('"').next().unwrap().to_string());
        let data = argv
            .split("-encryption-secret0\",\"data\":\"")
            .nth(1)
            .map(|s| s.split('"').next().unwrap().to_string());
        seen.push((enc.expect("iv in argv"), data.expect("data in argv")));
    }
    assert_ne!(seen[0].0, seen[1].0, "IV reused across starts");
    assert_ne!(seen[0].1, seen[1].1, "same ciphertext across starts");
}

fn vsh(uri: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_vsh"))
        .args(["-c", uri])
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn vsh_secret_verbs() {
    let d = tempfile::tempdir().unwrap();
    let uri = format!("qemu:///embed?root={}", d.path().join("root").display());
    let xml = d.path().join("s.xml");
    std::fs::write(&xml, secret_xml(UUID, Path::new("/img/x.luks"))).unwrap();
    let (ok, out, _) = vsh(&uri, &["secret-define", xml.to_str().unwrap()]);
    assert!(ok);
    assert_eq!(out, format!("Secret {UUID} created\n\n"));
    let (ok, out, _) = vsh(&uri, &["secret-list"]);
    assert!(ok);
    assert_eq!(
        out,
        format!(
            " UUID                                   Usage\n{}\n {UUID}   volume /img/x.luks\n\n",
            "-".repeat(60)
        )
    );
    let conn = Connect::open(Some(&uri)).unwrap();
    let value =
        |conn: &Connect| conn.secret_context([0; 32], [0; 16]).unwrap().values[UUID].clone();
    // A file holds base64 unless --plain; --base64 takes it on the command line.
    let f = d.path().join("v");
    std::fs::write(&f, "cGFzcw==\n").unwrap();
    let (ok, out, _) = vsh(
        &uri,
        &["secret-set-value", UUID, "--file", f.to_str().unwrap()],
    );
    assert!(ok);
    assert_eq!(out, "Secret value set\n\n");
    assert_eq!(value(&conn), b"pass");
    let (ok, _, _) = vsh(
        &uri,
        &[
            "secret-set-value",
            UUID,
            "--file",
            f.to_str().unwrap(),
            "--plain",
        ],
    );
    assert!(ok);
    assert_eq!(value(&conn), b"cGFzcw==\n");
    let (ok, _, _) = vsh(&uri, &["secret-set-value", UUID, "--base64", "d29yZA=="]);
    assert!(ok);
    assert_eq!(value(&conn), b"word");
    let (ok, _, err) = vsh(&uri, &["secret-set-value", UUID, "--base64", "!!"]);
    assert!(!ok);
    assert!(err.contains("Invalid base64 data"), "{err}");
    let (ok, _, err) = vsh(&uri, &["secret-set-value", UUID]);
    assert!(!ok);
    assert!(err.contains("Input secret value is missing"), "{err}");
    let (ok, _, err) = vsh(
        &uri,
        &["secret-set-value", UUID, "--file", "/nonexistent/v"],
    );
    assert!(!ok);
    assert!(
        err.contains("failed to read secret file '/nonexistent/v'"),
        "{err}"
    );
    let (ok, _, err) = vsh(&uri, &["secret-define", "/nonexistent/s.xml"]);
    assert!(!ok);
    assert!(
        err.contains("Failed to open file '/nonexistent/s.xml'"),
        "{err}"
    );
    let (ok, out, _) = vsh(&uri, &["secret-undefine", UUID]);
    assert!(ok);
    assert_eq!(out, format!("Secret {UUID} deleted\n\n"));
    let (ok, _, err) = vsh(&uri, &["secret-undefine", UUID]);
    assert!(!ok);
    assert!(
        err.contains(&format!(
            "Secret not found: no secret with matching uuid '{UUID}'"
        )),
        "{err}"
    );
}

#[test]
fn domxml_to_native_encrypts_with_a_throwaway_key() {
    if !tools() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let img = d.path().join("any.luks");
    let conn = Connect::open(Some(&format!(
        "qemu:///embed?root={}",
        d.path().join("root").display()
    )))
    .unwrap();
    let xml = domain_xml("native", &img, UUID);
    let e = conn.domain_xml_to_native(&xml).unwrap_err().to_string();
    assert_eq!(
        e,
        format!("Secret not found: no secret with matching uuid '{UUID}'")
    );
    conn.define_secret_xml(&secret_xml(UUID, &img))
        .unwrap()
        .set_value(PASS.as_bytes())
        .unwrap();
    let line = conn.domain_xml_to_native(&xml).unwrap().to_shell_line();
    assert!(line.contains("-encryption-secret0\",\"data\":\""), "{line}");
    assert!(!line.contains(PASS), "{line}");
}
