//! `vsh migrate` between two embed roots on this host, and the migration tunables, through
//! the real binary with one small TCG Linux guest: the refusals (libvirt's messages), an
//! offline migration of the definition, the tunables round-tripping, a live migration
//! throttled by `migrate-setspeed` and cancelled with `domjobabort` (the source runs on,
//! nothing is left at the destination), then one that moves the guest (it counts on at
//! the destination, its source QEMU is gone, `--persistent --undefinesource` moved the
//! definition).

#[path = "common/bootkit.rs"]
mod bootkit;
#[path = "common/vshrun.rs"]
mod vshrun;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use domdriver::driver::status::{GuestStatus, is_same_live_process};
use vshrun::{Reaper, Vsh, wait_until};

const QEMU: &str = "/usr/bin/qemu-system-x86_64";
const NAME: &str = "mg";
const UUID: &str = "5f0e7c3a-2b1d-4c8e-9a6f-1d2e3f4a5b6c";

fn guest_xml(kit: &bootkit::LinuxKit, console: &Path) -> String {
    let serial = format!(
        "<serial type='file'><source path='{}'/><target port='0'/></serial>",
        console.display()
    );
    kit.ticking_domain(NAME, 128, &serial)
        .replace("</name>", &format!("</name>\n  <uuid>{UUID}</uuid>"))
}

/// The pid of the guest's QEMU under `root`, while it runs.
fn qemu_pid(root: &Path) -> Option<(i32, u64)> {
    let st = GuestStatus::read(NAME, &root.join(format!("run/qemu/{NAME}.json")))
        .ok()
        .flatten()?;
    is_same_live_process(st.pid, st.start_time).then_some((st.pid, st.start_time))
}

#[test]
fn migrate_between_two_roots() {
    if !Path::new(QEMU).exists() {
        eprintln!("\n*** SKIPPED: {QEMU} is not installed ***\n");
        return;
    }
    let Some(kit) = bootkit::linux() else { return };
    let mk = |p: &str| {
        tempfile::Builder::new()
            .prefix(p)
            .tempdir_in("/tmp")
            .unwrap()
    };
    let (ds, dd) = (mk("mgs"), mk("mgd"));
    let (src_root, dst_root): (PathBuf, PathBuf) = (ds.path().into(), dd.path().into());
    let _reap_src = Reaper(src_root.clone(), vec![NAME]);
    let _reap_dst = Reaper(dst_root.clone(), vec![NAME]);
    let src = Vsh::new(src_root.clone());
    let dst = Vsh::new(dst_root.clone());
    let desturi = format!("qemu:///embed?root={}", dst_root.display());
    let console = src_root.join("console.log");
    let dconsole = dst_root.join("console.log");
    let xml_path = src_root.join("mg.xml");
    std::fs::write(&xml_path, guest_xml(&kit, &console)).unwrap();
    src.ok(&["define", xml_path.to_str().unwrap()]);
    let m = vshrun::multiplier();

    // Refusals, before anything runs.
    let not_running = "error: Requested operation is not valid: domain is not running\n";
    assert_eq!(src.fails(&["migrate", NAME, &desturi]), not_running);
    assert_eq!(
        src.fails(&["migrate", NAME, &desturi, "--offline"]),
        "error: Requested operation is not valid: offline migration must be specified with the persistent flag set\n"
    );
    assert_eq!(
        src.fails(&["migrate", NAME, &desturi, "--live", "--offline"]),
        "error: Options --live and --offline are mutually exclusive\n"
    );
    assert_eq!(
        src.fails(&["migrate", NAME, &desturi, "--timeout", "5"]),
        "error: migrate: Unexpected timeout for offline migration\n"
    );
    assert_eq!(
        src.fails(&["migrate", NAME, &desturi, "--live", "--timeout-suspend"]),
        "error: migrate: Unexpected --timeout-* option without --timeout\n"
    );
    assert_eq!(
        src.fails(&["migrate", NAME, &desturi, "--persistent-xml", "/x.xml"]),
        "error: Option --persistent is required by option --persistent-xml\n"
    );
    assert_eq!(
        src.fails(&["migrate", NAME, &desturi, "--direct"]),
        "error: argument unsupported: direct migration is not supported by the source host\n"
    );
    assert_eq!(
        src.fails(&["migrate", NAME, &desturi, "--postcopy"]),
        "error: argument unsupported: post-copy migration is not supported with non-live or paused migration\n"
    );
    let bad = src.fails(&["migrate", NAME, "xen:///system"]);
    assert!(
        bad.starts_with("error: cannot migrate to 'xen:///system': "),
        "{bad}"
    );
    assert_eq!(
        src.fails(&["migrate", "nosuch", &desturi]),
        "error: failed to get domain 'nosuch'\n\
         error: Domain not found: no domain with matching name 'nosuch'\n"
    );
    let same = src.fails(&[
        "migrate",
        NAME,
        &format!("qemu:///embed?root={}", src_root.display()),
        "--offline",
        "--persistent",
    ]);
    assert!(
        same.contains("Attempt to migrate guest to the same host"),
        "{same}"
    );

    // Offline: the definition only; the source keeps its own.
    src.ok(&["migrate", NAME, &desturi, "--offline", "--persistent"]);
    assert_eq!(dst.ok(&["domstate", NAME]), "shut off\n\n");
    assert_eq!(src.ok(&["domstate", NAME]), "shut off\n\n");
    dst.ok(&["undefine", NAME]);

    // Tunables of the shut-off guest: the speed is kept, the others need QEMU.
    assert_eq!(src.ok(&["migrate-getspeed", NAME]), "8796093022207\n\n");
    assert_eq!(
        src.fails(&["migrate-setspeed", NAME, "8796093022208"]),
        "error: numerical overflow: bandwidth must be less than 8796093022208\n"
    );
    src.ok(&["migrate-setspeed", NAME, "100"]);
    assert_eq!(src.ok(&["migrate-getspeed", NAME]), "100\n\n");
    assert_eq!(src.fails(&["migrate-getmaxdowntime", NAME]), not_running);
    assert_eq!(src.fails(&["migrate-compcache", NAME]), not_running);
    assert_eq!(
        src.fails(&["migrate-setmaxdowntime", NAME, "0"]),
        "error: migrate: Invalid downtime\n"
    );

    src.ok(&["start", NAME]);
    wait_until(
        "the guest's second tick",
        Duration::from_secs(180 * m),
        || bootkit::last_tick_in(&console).is_some_and(|(n, _)| n >= 2),
    );
    let (_, boot_id) = bootkit::last_tick_in(&console).unwrap();

    // Tunables of the running guest.
    src.ok(&["migrate-setmaxdowntime", NAME, "400"]);
    assert_eq!(src.ok(&["migrate-getmaxdowntime", NAME]), "400\n\n");
    assert_eq!(
        src.ok(&["migrate-compcache", NAME, "--size", "67108864"]),
        "Compression cache: 64.000 MiB\n"
    );
    src.ok(&["migrate-setspeed", NAME, "5", "--postcopy"]);
    assert_eq!(src.ok(&["migrate-getspeed", NAME, "--postcopy"]), "5\n\n");
    assert_eq!(
        src.ok(&["--json", "migrate-getspeed", NAME]).trim(),
        "{\n  \"bandwidth\": 100\n}"
    );
    assert_eq!(
        src.fails(&["migrate-postcopy", NAME]),
        "error: Requested operation is not valid: post-copy can only be started while outgoing migration is in progress\n"
    );
    assert_eq!(
        src.fails(&["migrate", NAME, &desturi, "--live", "--copy-storage-all"]),
        "error: Operation not supported: migration of non-shared storage is not supported: the destination is on this host and uses the same disks\n"
    );

    // The destination writes its console elsewhere (--xml, same ABI): QEMU opens the
    // file afresh, which would cut the source's short.
    let live = src.ok(&["dumpxml", NAME, "--security-info"]);
    let dxml = live.replace(console.to_str().unwrap(), dconsole.to_str().unwrap());
    let dxml_path = src_root.join("dest.xml");
    std::fs::write(&dxml_path, dxml).unwrap();
    // Throttled to 1 MiB/s, the migration runs long enough to look at and cancel.
    src.ok(&["migrate-setspeed", NAME, "1"]);
    let (pid, _) = qemu_pid(&src_root).expect("the source QEMU runs");
    let mut mig = src
        .cmd(&[
            "migrate",
            NAME,
            &desturi,
            "--live",
            "--verbose",
            "--xml",
            dxml_path.to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Its stderr, as it comes: virsh's progress line shows while it runs.
    let progress = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
    let reader = {
        let progress = progress.clone();
        let mut stderr = mig.stderr.take().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 256];
            while let Ok(n) = stderr.read(&mut buf) {
                if n == 0 {
                    break;
                }
                progress.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        })
    };
    let mut info = String::new();
    wait_until("the migration's job", Duration::from_secs(30 * m), || {
        info = src.ok(&["domjobinfo", NAME]);
        info.contains("Data processed:")
    });
    wait_until("the progress line", Duration::from_secs(30 * m), || {
        String::from_utf8_lossy(&progress.lock().unwrap()).starts_with("\rMigration: [")
    });
    assert!(
        info.contains("Operation:        Outgoing migration"),
        "{info}"
    );
    assert!(
        qemu_pid(&dst_root).is_some(),
        "the destination QEMU listens"
    );
    // The destination's side is libvirt's migration-in job: no statistics there, and not
    // to be aborted but destroyed.
    assert_eq!(
        dst.fails(&["domjobinfo", NAME]),
        "error: Operation not supported: migration statistics are available only on the source host\n"
    );
    assert_eq!(
        dst.fails(&["domjobabort", NAME]),
        "error: Requested operation is not valid: cannot abort incoming migration; use virDomainDestroy instead\n"
    );
    assert_eq!(
        src.fails(&["migrate-postcopy", NAME]),
        "error: Requested operation is not valid: switching to post-copy requires migration to be started with VIR_MIGRATE_POSTCOPY flag\n"
    );
    // Suspending is allowed during the migration (`--timeout`'s action), and the guest
    // the user paused stays paused when the migration ends.
    src.ok(&["suspend", NAME]);
    assert_eq!(src.ok(&["domstate", NAME]), "paused\n\n");
    src.ok(&["domjobabort", NAME]);
    let st = mig.wait().unwrap();
    reader.join().unwrap();
    let err = String::from_utf8_lossy(&progress.lock().unwrap()).into_owned();
    assert!(!st.success());
    assert!(
        err.ends_with("error: operation aborted: migration out job: canceled by client\n"),
        "{err:?}"
    );
    assert!(err.starts_with("\rMigration: ["), "{err:?}");
    assert_eq!(
        qemu_pid(&src_root).map(|p| p.0),
        Some(pid),
        "the source runs on"
    );
    assert_eq!(src.ok(&["domstate", NAME, "--reason"]), "paused (user)\n\n");
    src.ok(&["resume", NAME]);
    wait_until(
        "no QEMU at the destination",
        Duration::from_secs(10 * m),
        || qemu_pid(&dst_root).is_none(),
    );
    assert_eq!(dst.ok(&["list", "--all", "--name"]), "\n");
    let (n0, _) = bootkit::last_tick_in(&console).unwrap();
    wait_until("ticks after the abort", Duration::from_secs(30 * m), || {
        bootkit::last_tick_in(&console).is_some_and(|(n, _)| n > n0)
    });

    // The move.
    src.ok(&["migrate-setspeed", NAME, "1000"]);
    let (n_before, _) = bootkit::last_tick_in(&console).unwrap();
    let (ok, out, err) = src.run_bounded(
        &[
            "migrate",
            NAME,
            &desturi,
            "--live",
            "--persistent",
            "--undefinesource",
            "--verbose",
            "--xml",
            dxml_path.to_str().unwrap(),
        ],
        120,
    );
    assert!(ok, "{err}");
    assert_eq!(out, "\n");
    assert!(err.ends_with("\rMigration: [100 %]"), "{err:?}");
    assert!(!is_alive(pid), "the source QEMU is gone");
    assert_eq!(
        src.ok(&["list", "--all", "--name"]),
        "\n",
        "undefined at the source"
    );
    assert_eq!(
        dst.ok(&["domstate", NAME, "--reason"]),
        "running (migrated)\n\n"
    );
    let info = dst.ok(&["dominfo", NAME]);
    assert!(info.contains("\nPersistent:     yes\n"), "{info}");
    wait_until(
        "ticks at the destination",
        Duration::from_secs(30 * m),
        || bootkit::last_tick_in(&dconsole).is_some_and(|(n, _)| n > n_before),
    );
    assert_eq!(
        bootkit::last_tick_in(&dconsole).unwrap().1,
        boot_id,
        "the same boot"
    );

    // And back, not live (the vCPUs stop for the copy) and left paused (--suspend): the
    // source keeps its definition, shut off (migrated); the guest is transient here.
    let srcuri = format!("qemu:///embed?root={}", src_root.display());
    // Its QEMU here opens the console file afresh: ticks count on from the last one seen.
    let (n_back, _) = bootkit::last_tick_in(&dconsole).unwrap();
    let (dpid, _) = qemu_pid(&dst_root).expect("the destination QEMU runs");
    let (ok, _, err) = dst.run_bounded(&["migrate", NAME, &srcuri, "--suspend"], 120);
    assert!(ok, "{err}");
    assert!(!is_alive(dpid), "the destination QEMU is gone");
    assert_eq!(
        dst.ok(&["domstate", NAME, "--reason"]),
        "shut off (migrated)\n\n"
    );
    assert_eq!(src.ok(&["domstate", NAME]), "paused\n\n");
    let info = src.ok(&["dominfo", NAME]);
    assert!(info.contains("\nPersistent:     no\n"), "{info}");
    src.ok(&["resume", NAME]);
    wait_until(
        "ticks back at the source",
        Duration::from_secs(30 * m),
        || bootkit::last_tick_in(&dconsole).is_some_and(|(n, _)| n > n_back),
    );
    assert_eq!(
        bootkit::last_tick_in(&dconsole).unwrap().1,
        boot_id,
        "still the same boot"
    );
    src.ok(&["destroy", NAME]);
    assert_eq!(
        src.ok(&["list", "--all", "--name"]),
        "\n",
        "it was transient"
    );
    dst.ok(&["undefine", NAME]);
}

fn is_alive(pid: i32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // A zombie has ended; only its parent has yet to reap it.
    !stat.is_empty() && !stat.contains(") Z ")
}
