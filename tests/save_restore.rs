//! Save and restore of a real Linux guest under TCG: the guest counts on its serial console
//! with an id drawn at boot; after `save` it is `shut off (saved)` and its image carries the
//! XML; after `restore` it counts on from where it was with the same id (it did not boot
//! again). Refusals of bad images and wrong states, through the library and `vsh`. Every
//! QEMU is killed by pid on drop should a test fail half-way.

#[path = "common/bootkit.rs"]
mod bootkit;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use domdriver::Connect;
use domdriver::driver::save::RestoreState;
use domdriver::driver::status::{GuestStatus, is_same_live_process};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const QEMU: &str = "/usr/bin/qemu-system-x86_64";
const NAME: &str = "sv";

/// Kills the guest's QEMU on drop if it still runs.
struct Reaper(std::path::PathBuf);

impl Drop for Reaper {
    fn drop(&mut self) {
        if let Ok(Some(st)) = GuestStatus::read(NAME, &self.0.join(format!("run/qemu/{NAME}.json")))
            && is_same_live_process(st.pid, st.start_time)
        {
            let _ = kill(Pid::from_raw(st.pid), Signal::SIGKILL);
            let until = Instant::now() + Duration::from_secs(5);
            while is_same_live_process(st.pid, st.start_time) && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

fn guest_xml(kit: &bootkit::LinuxKit) -> String {
    kit.ticking_domain(NAME, 256, "<serial type='pty'><target port='0'/></serial>")
}

fn vsh(uri: &str, args: &[&str]) -> (bool, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_vsh"))
        .env_remove("VSH_DEFAULT_URI")
        .arg("-c")
        .arg(uri)
        .args(args)
        .output()
        .unwrap();
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn a_saved_guest_carries_on_where_it_was() {
    if !Path::new(QEMU).exists() {
        eprintln!("\n*** SKIPPED: {QEMU} is not installed ***\n");
        return;
    }
    let Some(kit) = bootkit::linux() else { return };
    let d = tempfile::Builder::new()
        .prefix("sv")
        .tempdir_in("/tmp")
        .unwrap();
    let _reap = Reaper(d.path().to_path_buf());
    let uri = format!("qemu:///embed?root={}", d.path().display());
    let conn = Connect::open(Some(&uri)).unwrap();
    let dom = conn.define_domain_xml(&guest_xml(&kit)).unwrap();
    let image = d.path().join("sv.save");
    let img = image.to_str().unwrap();

    // Not running: nothing to save.
    let (ok, _, err) = vsh(&uri, &["save", NAME, img]);
    assert!(!ok);
    assert_eq!(
        err,
        format!(
            "error: Failed to save domain '{NAME}' to {img}\n\
             error: Requested operation is not valid: domain is not running\n"
        )
    );
    assert!(!image.exists());

    dom.create().unwrap();
    let mut con = dom.console(None).unwrap();
    con.expect_regex(r"tick-3-[0-9a-f-]{36}", Duration::from_secs(180))
        .unwrap();
    let mut events = conn.domain_events(NAME).unwrap();

    let (ok, out, err) = vsh(&uri, &["save", NAME, img]);
    assert!(ok, "{err}");
    assert_eq!(out, format!("\nDomain '{NAME}' saved to {img}\n\n"));
    let seen = std::fs::read_to_string(con.capture_path()).unwrap();
    let (n, id) = bootkit::last_tick(&seen).expect("a tick");
    let (_, out, _) = vsh(&uri, &["domstate", NAME, "--reason"]);
    assert_eq!(out, "shut off (saved)\n\n");
    assert_eq!(
        std::fs::metadata(&image).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let mut lines = Vec::new();
    while let Some(e) = events.next_timeout(Duration::from_secs(5)) {
        let stop = e.is_stop();
        lines.push(e.virsh_line());
        if stop {
            break;
        }
    }
    assert_eq!(
        lines,
        [
            format!("event 'lifecycle' for domain '{NAME}': Suspended Paused"),
            format!("event 'lifecycle' for domain '{NAME}': Stopped Saved"),
        ]
    );
    // The image carries the definition.
    let (ok, xml, _) = vsh(&uri, &["save-image-dumpxml", img]);
    assert!(ok);
    assert!(xml.contains(&format!("<name>{NAME}</name>")), "{xml}");
    assert_eq!(format!("{}\n", conn.save_image_xml(&image).unwrap()), xml);

    let (ok, out, err) = vsh(&uri, &["restore", img]);
    assert!(ok, "{err}");
    assert_eq!(out, format!("Domain restored from {img}\n\n"));
    let e = events.next_timeout(Duration::from_secs(30)).unwrap();
    assert_eq!(
        e.virsh_line(),
        format!("event 'lifecycle' for domain '{NAME}': Started Restored")
    );
    let (_, out, _) = vsh(&uri, &["domstate", NAME, "--reason"]);
    assert_eq!(out, "running (restored)\n\n");
    // Counting on with the same id: the guest did not boot again.
    let mut con = dom.console(None).unwrap();
    con.expect_regex(&format!("tick-{}-{id}", n + 3), Duration::from_secs(60))
        .unwrap();

    // A running domain is not restored over.
    let (ok, _, err) = vsh(&uri, &["restore", img]);
    assert!(!ok);
    assert_eq!(
        err,
        format!(
            "error: Failed to restore domain from {img}\n\
             error: Requested operation is not valid: domain '{NAME}' is already active\n"
        )
    );
    // Paused on restore when asked.
    dom.save(&image, RestoreState::Paused).unwrap();
    conn.restore(&image, RestoreState::AsSaved).unwrap();
    let (_, out, _) = vsh(&uri, &["domstate", NAME]);
    assert_eq!(out, "paused\n\n");
    dom.destroy().unwrap();
}

#[test]
fn bad_images_are_refused_before_qemu_starts() {
    let d = tempfile::tempdir().unwrap();
    let uri = format!("qemu:///embed?root={}", d.path().display());
    let p = d.path().join("x.save");
    let s = p.to_str().unwrap();
    // A header (libvirt's virQEMUSaveHeader: magic, then version, XML length, was_running,
    // compressed, 15 unused words) and `tail`.
    let header = |version: u32, xml_len: u32, tail: &[u8]| -> Vec<u8> {
        let mut h = b"LibvirtQemudSave".to_vec();
        for w in [version, xml_len, 1, 0] {
            h.extend_from_slice(&w.to_ne_bytes());
        }
        h.resize(16 + 4 * 20, 0);
        h.extend_from_slice(tail);
        h
    };
    let xml = b"<domain type='qemu'><name>x</name></domain>\0";
    let cases: [(Vec<u8>, &str); 6] = [
        (
            b"short".to_vec(),
            "error: operation failed: failed to read qemu header\n",
        ),
        (
            vec![b'x'; 4096],
            "error: invalid argument: image magic is incorrect\n",
        ),
        (
            [b"LibvirtQemudPart".as_slice(), &[0u8; 4096]].concat(),
            "error: operation failed: save image is incomplete\n",
        ),
        // Cut inside its XML: the length the header gives runs past the end.
        (
            header(2, 4096, xml),
            "error: operation failed: failed to read domain XML\n",
        ),
        // A newer format than this driver writes.
        (
            header(3, 64, &[0u8; 128]),
            "error: operation failed: image version is not supported (3 > 2)\n",
        ),
        (
            header(2, 0, &[0u8; 128]),
            "error: operation failed: invalid header data length: 0\n",
        ),
    ];
    for (data, msg) in cases {
        std::fs::write(&p, data).unwrap();
        let (ok, _, err) = vsh(&uri, &["restore", s]);
        assert!(!ok);
        assert_eq!(
            err,
            format!("error: Failed to restore domain from {s}\n{msg}")
        );
        let (ok, _, err) = vsh(&uri, &["save-image-dumpxml", s]);
        assert!(!ok);
        assert_eq!(err, msg);
    }
    let (ok, _, err) = vsh(&uri, &["restore", "/nonexistent/x.save"]);
    assert!(!ok);
    assert!(
        err.starts_with(
            "error: Failed to restore domain from /nonexistent/x.save\n\
             error: cannot open saved image '/nonexistent/x.save'"
        ),
        "{err}"
    );
    let (ok, _, err) = vsh(&uri, &["restore", s, "--running", "--paused"]);
    assert!(!ok);
    assert_eq!(
        err,
        "error: Options --running and --paused are mutually exclusive\n"
    );
    // No QEMU was started for any of them.
    assert!(!d.path().join("run/qemu").join("x.json").exists());
}

/// `managedsave`: the next `start` restores and drops the image; `managedsave-remove` makes
/// it boot instead; `undefine` refuses while an image waits; transient domains have none.
#[test]
fn managed_save_round_trip() {
    if !Path::new(QEMU).exists() {
        return;
    }
    let d = tempfile::Builder::new()
        .prefix("ms")
        .tempdir_in("/tmp")
        .unwrap();
    let _reap = Reaper(d.path().to_path_buf());
    let uri = format!("qemu:///embed?root={}", d.path().display());
    let xml = format!(
        "<domain type='qemu'><name>{NAME}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>\
         <os><type arch='x86_64' machine='pc'>hvm</type></os>\
         <devices><emulator>{QEMU}</emulator><memballoon model='none'/></devices></domain>"
    );
    let f = d.path().join("ms.xml");
    std::fs::write(&f, &xml).unwrap();
    let run = |args: &[&str]| {
        let (ok, out, err) = vsh(&uri, args);
        assert!(ok, "{args:?}: {err}");
        out
    };
    run(&["define", f.to_str().unwrap()]);
    run(&["start", NAME]);
    assert_eq!(
        run(&["managedsave", NAME]),
        format!("\nDomain '{NAME}' state saved by libvirt\n\n")
    );
    assert_eq!(run(&["domstate", NAME, "--reason"]), "shut off (saved)\n\n");
    assert!(run(&["dominfo", NAME]).contains("Managed save:   yes"));
    let (ok, _, err) = vsh(&uri, &["undefine", NAME]);
    assert!(!ok);
    assert!(
        err.contains("Refusing to undefine while domain managed save image exists"),
        "{err}"
    );
    run(&["start", NAME]);
    assert_eq!(
        run(&["domstate", NAME, "--reason"]),
        "running (restored)\n\n"
    );
    assert!(run(&["dominfo", NAME]).contains("Managed save:   no"));
    run(&["managedsave", NAME, "--paused"]);
    assert_eq!(
        run(&["managedsave-remove", NAME]),
        format!("Removed managedsave image for domain '{NAME}'\n\n")
    );
    assert_eq!(
        run(&["managedsave-remove", NAME]),
        format!("Domain '{NAME}' has no manage save image; removal skipped\n\n")
    );
    run(&["start", NAME]);
    assert_eq!(run(&["domstate", NAME, "--reason"]), "running (booted)\n\n");
    run(&["destroy", NAME]);
    run(&["undefine", NAME]);
    // A transient domain has no managed save.
    run(&["create", f.to_str().unwrap()]);
    let (ok, _, err) = vsh(&uri, &["managedsave", NAME]);
    assert!(!ok);
    assert_eq!(
        err,
        format!(
            "error: Failed to save domain '{NAME}' state\n\
             error: Requested operation is not valid: cannot do managed save for transient domain\n"
        )
    );
    run(&["destroy", NAME]);
}
