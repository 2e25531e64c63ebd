//! `edit` (with EDITOR set to scripts) and `dump` through `vsh` on one TCG guest with no
//! OS: the redefined config, the unchanged and refused edits, memory-only dumps in ELF and
//! kdump formats and the full form, their files' mode and magic, and libvirt's refusals.

#[path = "common/guests.rs"]
mod guests;
#[path = "common/vshrun.rs"]
mod vshrun;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use guests::{QEMU, have_qemu};
use vshrun::{Reaper, Vsh};

const NAME: &str = "edump";

fn xml() -> String {
    format!(
        "<domain type='qemu'><name>{NAME}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>\
         <os><type arch='x86_64' machine='pc'>hvm</type></os>\
         <devices><emulator>{QEMU}</emulator><memballoon model='none'/></devices></domain>"
    )
}

/// An editor: a shell script running `body` on its file `$1`.
fn editor(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

fn with_editor(root: &Path, ed: &Path) -> Vsh {
    let mut v = Vsh::new(root.to_path_buf());
    v.env.push(("VISUAL".into(), ed.to_path_buf()));
    v.env.push(("EDITOR".into(), ed.to_path_buf()));
    v
}

fn head(p: &Path, n: usize) -> Vec<u8> {
    let mut b = std::fs::read(p).unwrap();
    b.truncate(n);
    b
}

#[test]
fn edit_and_dump_on_a_guest() {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::Builder::new()
        .prefix("ved")
        .tempdir_in("/tmp")
        .unwrap();
    let d = dir.path();
    let root = d.join("r");
    let file = d.join("d.xml");
    std::fs::write(&file, xml()).unwrap();
    let v = Vsh::new(root.clone());
    let _reap = Reaper(root.clone(), vec![NAME]);
    v.ok(&["define", file.to_str().unwrap()]);

    // ---- edit ----
    let same = with_editor(&root, &editor(d, "same", "true"));
    assert_eq!(
        same.ok(&["edit", NAME]),
        format!("Domain '{NAME}' XML configuration not changed.\n\n")
    );
    let grow = with_editor(
        &root,
        &editor(d, "grow", "sed -i 's/>65536</>131072</' \"$1\""),
    );
    assert_eq!(
        grow.ok(&["-q", "edit", NAME]),
        "",
        "quiet edit prints nothing"
    );
    let x = v.ok(&["dumpxml", NAME, "--inactive"]);
    assert!(x.contains("<memory unit='KiB'>131072</memory>"), "{x}");
    // A document the schema refuses: no terminal to ask on, so the edit ends with the
    // error and the config stays.
    let bad = with_editor(
        &root,
        &editor(d, "bad", "sed -i 's/<vcpu /<vcpux /' \"$1\""),
    );
    let err = bad.fails(&["edit", NAME]);
    assert!(
        err.starts_with("error: XML document failed to validate against schema"),
        "{err}"
    );
    assert_eq!(v.ok(&["dumpxml", NAME, "--inactive"]), x);
    let fail = with_editor(&root, &editor(d, "fail", "exit 3"));
    let err = fail.fails(&["edit", NAME]);
    assert!(
        err.starts_with("error: internal error: Child process (sh -c '")
            && err.ends_with("unexpected exit status 3\n"),
        "{err}"
    );
    assert_eq!(
        same.fails(&["edit", "nosuch"]),
        "error: failed to get domain 'nosuch'\nerror: Domain not found: no domain with matching name 'nosuch'\n"
    );

    // ---- dump, inactive ----
    let core = d.join("core");
    let core_s = core.to_str().unwrap();
    assert_eq!(
        v.fails(&["dump", NAME, core_s, "--memory-only"]),
        format!(
            "error: Failed to core dump domain '{NAME}' to {core_s}\nerror: Requested operation is not valid: domain is not running\n"
        )
    );
    assert_eq!(
        v.fails(&["dump", NAME, core_s, "--format", "elf"]),
        "error: --format only works with --memory-only\n"
    );
    assert_eq!(
        v.fails(&["dump", NAME, core_s, "--memory-only", "--format", "zip"]),
        "error: format 'zip' is not supported, expecting 'kdump-zlib', 'kdump-lzo', 'kdump-snappy', 'win-dmp' or 'elf'\n"
    );

    // ---- dump, running ----
    v.ok(&["start", NAME]);
    assert_eq!(
        v.ok(&["dump", NAME, core_s, "--memory-only"]),
        format!("\nDomain '{NAME}' dumped to {core_s}\n\n")
    );
    let meta = std::fs::metadata(&core).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(head(&core, 4), b"\x7fELF");
    // 64 MiB of guest memory are in it.
    assert!(meta.len() > 64 << 20, "{}", meta.len());
    assert_eq!(v.ok(&["domstate", NAME]).trim(), "running");
    v.ok(&[
        "-q",
        "dump",
        NAME,
        core_s,
        "--memory-only",
        "--format",
        "kdump-zlib",
        "--live",
    ]);
    // QEMU writes kdump formats as makedumpfile's flattened stream.
    assert_eq!(head(&core, 12), b"makedumpfile");
    assert_eq!(
        v.fails(&["dump", NAME, core_s, "--memory-only", "--live", "--crash"]),
        format!(
            "error: Failed to core dump domain '{NAME}' to {core_s}\nerror: invalid argument: crash and live flags are mutually exclusive\n"
        )
    );
    assert_eq!(
        v.fails(&["dump", NAME, "/nonexistent/dir/core", "--memory-only"]),
        format!(
            "error: Failed to core dump domain '{NAME}' to /nonexistent/dir/core\nerror: Failed to create file '/nonexistent/dir/core': No such file or directory\n"
        )
    );
    // The full form: QEMU's migration stream, the guest running again after.
    let full = d.join("full");
    v.ok(&["-q", "dump", NAME, full.to_str().unwrap()]);
    assert_eq!(head(&full, 4), b"QEVM");
    assert_eq!(
        std::fs::metadata(&full).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(v.ok(&["domstate", NAME]).trim(), "running");
    assert_eq!(
        v.fails(&[
            "dump",
            NAME,
            core_s,
            "--format",
            "kdump-lzo",
            "--memory-only",
            "--reset",
            "--live"
        ]),
        format!(
            "error: Failed to core dump domain '{NAME}' to {core_s}\nerror: invalid argument: live and reset flags are mutually exclusive\n"
        )
    );
    v.ok(&["-q", "dump", NAME, core_s, "--memory-only", "--reset"]);
    assert_eq!(v.ok(&["domstate", NAME]).trim(), "running");
    v.ok(&["-q", "dump", NAME, core_s, "--memory-only", "--crash"]);
    // libvirt ends it as crashed, not destroyed.
    assert_eq!(
        v.ok(&["domstate", NAME, "--reason"]).trim(),
        "shut off (crashed)"
    );
    v.ok(&["undefine", NAME]);
}
