//! Secret reads (`secret-dumpxml`, `secret-get-value`) and the autostart flag (`autostart`,
//! `dominfo`'s "Autostart:", `list --autostart/--no-autostart`) through the real binary,
//! error paths included.

#[path = "common/guests.rs"]
mod guests;
#[path = "common/vshrun.rs"]
mod vshrun;

use std::process::Stdio;

use guests::{have_qemu, small_xml};
use vshrun::{Reaper, Vsh};

const SECRET: &str = "6e9b4d3f-4a1c-4b7f-8e52-1d3c8f0a2b21";

fn vsh(d: &tempfile::TempDir) -> Vsh {
    Vsh::new(d.path().join("r"))
}

/// Raw stdout bytes of a successful run.
fn bytes(v: &Vsh, args: &[&str]) -> Vec<u8> {
    let o = v.cmd(args).stdin(Stdio::null()).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    o.stdout
}

#[test]
fn secret_dumpxml_and_get_value() {
    let d = tempfile::tempdir().unwrap();
    let v = vsh(&d);
    let f = d.path().join("s.xml");
    std::fs::write(
        &f,
        format!(
            "<secret ephemeral='no' private='yes'><uuid>{SECRET}</uuid>\
             <description>disk key</description></secret>"
        ),
    )
    .unwrap();
    v.ok(&["secret-define", f.to_str().unwrap()]);

    let xml = v.ok(&["secret-dumpxml", SECRET]);
    assert!(
        xml.starts_with("<secret ephemeral='no' private='yes'>\n"),
        "{xml}"
    );
    assert!(xml.contains(&format!("  <uuid>{SECRET}</uuid>\n")), "{xml}");
    assert_eq!(
        v.ok(&["secret-dumpxml", SECRET, "--xpath", "//description"]),
        "<description>disk key</description>\n\n"
    );
    assert_eq!(
        v.ok(&[
            "secret-dumpxml",
            "--secret",
            SECRET,
            "--xpath",
            "//description/text()",
            "--wrap"
        ]),
        v.ok(&[
            "secret-dumpxml",
            SECRET,
            "--xpath",
            "//description/text()",
            "--wrap"
        ]),
    );

    // No value yet: libvirt's VIR_ERR_NO_SECRET.
    assert_eq!(
        v.fails(&["secret-get-value", SECRET]),
        format!("error: Secret not found: secret '{SECRET}' does not have a value\n")
    );
    v.ok(&["secret-set-value", SECRET, "--base64", "aGVsbG8K"]);
    // The value has no newline of its own; virsh's end-of-command line follows unless -q.
    assert_eq!(v.ok(&["secret-get-value", SECRET]), "aGVsbG8K\n");
    assert_eq!(bytes(&v, &["-q", "secret-get-value", SECRET]), b"aGVsbG8K");
    assert_eq!(
        bytes(&v, &["-q", "secret-get-value", SECRET, "--plain"]),
        b"hello\n"
    );
    // Not valid UTF-8: --plain writes the bytes as they are.
    v.ok(&["secret-set-value", SECRET, "--base64", "/wD+"]);
    assert_eq!(
        bytes(&v, &["-q", "secret-get-value", "--plain", SECRET]),
        [0xff, 0, 0xfe]
    );

    // Unknown secrets: virsh's lookup message, then libvirt's.
    for verb in ["secret-dumpxml", "secret-get-value"] {
        let bad = "0e9b4d3f-4a1c-4b7f-8e52-1d3c8f0a2b21";
        assert_eq!(
            v.fails(&[verb, bad]),
            format!(
                "error: failed to get secret '{bad}'\n\
                 error: Secret not found: no secret with matching uuid '{bad}'\n"
            )
        );
        assert_eq!(
            v.fails(&[verb, "not-a-uuid"]),
            "error: failed to get secret 'not-a-uuid'\n\
             error: Secret not found: no secret with matching uuid 'not-a-uuid'\n"
        );
        assert_eq!(
            v.fails(&[verb]),
            format!("error: command '{verb}' requires <secret> option\n")
        );
        assert!(v.ok(&[verb, "--help"]).contains("secret UUID"));
    }
    assert_eq!(
        v.fails(&["secret-dumpxml", SECRET, "--xpath", "//["])
            .lines()
            .count(),
        1
    );
    // libvirt refuses virSecretGetValue on a read-only connection; the XML is readable.
    assert_eq!(
        v.fails(&["-r", "secret-get-value", SECRET]),
        "error: operation forbidden: read only access prevents virSecretGetValue\n"
    );
    v.ok(&["-r", "secret-dumpxml", SECRET]);
}

fn autostart_line(v: &Vsh, dom: &str) -> String {
    v.ok(&["dominfo", dom])
        .lines()
        .find(|l| l.starts_with("Autostart:"))
        .unwrap()
        .to_string()
}

#[test]
fn autostart_is_recorded_shown_and_filtered() {
    let d = tempfile::tempdir().unwrap();
    let v = vsh(&d);
    for name in ["vm1", "vm2"] {
        let f = d.path().join(format!("{name}.xml"));
        std::fs::write(&f, small_xml(name, None)).unwrap();
        v.ok(&["define", f.to_str().unwrap()]);
    }
    assert_eq!(autostart_line(&v, "vm1"), "Autostart:      disable");
    assert_eq!(
        v.ok(&["autostart", "vm1"]),
        "Domain 'vm1' marked as autostarted\n\n"
    );
    // Marking twice is no error (libvirt changes nothing).
    assert_eq!(v.ok(&["-q", "autostart", "vm1"]), "");
    assert_eq!(autostart_line(&v, "vm1"), "Autostart:      enable");
    assert_eq!(autostart_line(&v, "vm2"), "Autostart:      disable");
    assert_eq!(v.ok(&["list", "--all", "--name", "--autostart"]), "vm1\n\n");
    assert_eq!(
        v.ok(&["list", "--all", "--name", "--no-autostart"]),
        "vm2\n\n"
    );
    assert_eq!(
        v.ok(&["list", "--all", "--name", "--autostart", "--no-autostart"]),
        "vm1\nvm2\n\n"
    );
    // libvirt's layout: a link in the config dir's autostart/ to the config.
    let link = d.path().join("r/etc/qemu/autostart/vm1.xml");
    assert_eq!(
        std::fs::read_link(&link).unwrap(),
        d.path().join("r/etc/qemu/vm1.xml")
    );

    // A rename keeps the mark; an undefine drops it, so a new vm1 starts unmarked.
    v.ok(&["domrename", "vm1", "vm3"]);
    assert_eq!(autostart_line(&v, "vm3"), "Autostart:      enable");
    assert!(std::fs::symlink_metadata(&link).is_err());
    v.ok(&["autostart", "vm3"]);
    v.ok(&["undefine", "vm3"]);
    let f = d.path().join("vm3.xml");
    std::fs::write(&f, small_xml("vm3", None)).unwrap();
    v.ok(&["define", f.to_str().unwrap()]);
    assert_eq!(autostart_line(&v, "vm3"), "Autostart:      disable");

    v.ok(&["autostart", "vm2"]);
    assert_eq!(
        v.ok(&["autostart", "--disable", "vm2"]),
        "Domain 'vm2' unmarked as autostarted\n\n"
    );
    assert_eq!(
        v.ok(&["autostart", "--disable", "vm2"]),
        "Domain 'vm2' unmarked as autostarted\n\n"
    );
    assert_eq!(autostart_line(&v, "vm2"), "Autostart:      disable");

    // Error paths.
    assert_eq!(
        v.fails(&["autostart", "nope"]),
        "error: failed to get domain 'nope'\n\
         error: Domain not found: no domain with matching name 'nope'\n"
    );
    assert_eq!(
        v.fails(&["autostart"]),
        "error: command 'autostart' requires <domain> option\n"
    );
    assert_eq!(
        v.fails(&["-r", "autostart", "vm2"]),
        "error: operation forbidden: read only access prevents virDomainSetAutostart\n"
    );
    assert!(v.ok(&["autostart", "--help"]).contains("--disable"));
    // The config dir's autostart/ cannot be made: libvirt's system error.
    let dir = d.path().join("r/etc/qemu/autostart");
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::write(&dir, "").unwrap();
    let err = v.fails(&["autostart", "vm2"]);
    assert!(
        err.starts_with(&format!(
            "error: Failed to mark domain 'vm2' as autostarted\n\
             error: cannot create autostart directory {}: ",
            d.path().join("r/etc/qemu/autostart").display()
        )),
        "{err}"
    );
}

/// A transient domain cannot be marked (libvirt's VIR_ERR_OPERATION_INVALID).
#[test]
fn autostart_refuses_a_transient_domain() {
    if !have_qemu() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let v = vsh(&d);
    let _reaper = Reaper(d.path().join("r"), vec!["tr"]);
    let f = d.path().join("tr.xml");
    std::fs::write(&f, small_xml("tr", None)).unwrap();
    v.ok(&["create", f.to_str().unwrap()]);
    assert_eq!(
        v.fails(&["autostart", "tr"]),
        "error: Failed to mark domain 'tr' as autostarted\n\
         error: Requested operation is not valid: cannot set autostart for transient domain\n"
    );
    assert_eq!(autostart_line(&v, "tr"), "Autostart:      disable");
    assert_eq!(v.ok(&["list", "--name", "--no-autostart"]), "tr\n\n");
    v.ok(&["destroy", "tr"]);
}
