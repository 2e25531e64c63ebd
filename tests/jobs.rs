//! A save as the monitor's job, beside its request loop: while a real TCG Linux guest is
//! being saved, `domjobinfo` reports the running job as virsh prints it, `domstate` answers,
//! a request that needs the job lock waits and then gets libvirt's state-change-lock
//! refusal, and `domjobabort` cancels the save: the guest runs on (same boot, counting on),
//! the partial file is gone and the save reports libvirt's cancelled-job error. Then a save
//! with `--verbose` prints virsh's progress line and `domjobinfo --completed` its statistics.
//! A restore is the monitor's job as well: `domjobinfo` shows its progress while the image
//! loads, `restore --verbose` prints the progress line, and `domjobabort` ends the loading
//! QEMU and fails the start (a managed save image is kept, a transient domain is gone).
//! Every error path of the two verbs too. One guest boot for all of it.

#[path = "common/bootkit.rs"]
mod bootkit;
#[path = "common/vshrun.rs"]
mod vshrun;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use vshrun::{Reaper, Vsh, wait_until};

const QEMU: &str = "/usr/bin/qemu-system-x86_64";
const NAME: &str = "jb";

fn guest_xml(kit: &bootkit::LinuxKit) -> String {
    kit.ticking_domain(
        NAME,
        256,
        "<serial type='file'><source path='CONSOLE'/><target port='0'/></serial>",
    )
}

/// QEMU's migration bandwidth (bytes/s), through `qemu-monitor-command`.
fn set_bandwidth(vsh: &Vsh, bytes_per_s: u64) {
    let cmd = format!(
        r#"{{"execute":"migrate-set-parameters","arguments":{{"max-bandwidth":{bytes_per_s}}}}}"#
    );
    vsh.ok(&["qemu-monitor-command", NAME, &cmd]);
}

#[test]
fn a_running_save_or_restore_can_be_queried_and_aborted() {
    if !Path::new(QEMU).exists() {
        eprintln!("\n*** SKIPPED: {QEMU} is not installed ***\n");
        return;
    }
    let Some(kit) = bootkit::linux() else { return };
    let d = tempfile::Builder::new()
        .prefix("jb")
        .tempdir_in("/tmp")
        .unwrap();
    let root: PathBuf = d.path().to_path_buf();
    let _reap = Reaper(root.clone(), vec![NAME]);
    let mut vsh = Vsh::new(root.clone());
    // The monitor inherits it from the `vsh start` below: a request that needs the job lock
    // gives up after 1.5 s instead of libvirt's 30 s.
    vsh.env
        .push(("DOMDRIVER_JOB_WAIT_MS".into(), PathBuf::from("1500")));
    let console = root.join("console.log");
    let xml_path = root.join("jb.xml");
    let xml = guest_xml(&kit).replace("CONSOLE", console.to_str().unwrap());
    std::fs::write(&xml_path, xml).unwrap();
    vsh.ok(&["define", xml_path.to_str().unwrap()]);
    let image = root.join("jb.save");
    let img = image.to_str().unwrap();

    // Refusals before the guest runs.
    let not_running = "error: Requested operation is not valid: domain is not running\n";
    assert_eq!(vsh.fails(&["domjobinfo", NAME]), not_running);
    assert_eq!(vsh.fails(&["domjobabort", NAME]), not_running);
    assert_eq!(
        vsh.fails(&["domjobinfo", NAME, "--keep-completed"]),
        "error: Option --completed is required by option --keep-completed\n"
    );
    assert_eq!(
        vsh.fails(&["domjobinfo", "nosuch"]),
        "error: failed to get domain 'nosuch'\n\
         error: Domain not found: no domain with matching name 'nosuch'\n"
    );
    // Nothing completed yet.
    assert_eq!(
        vsh.ok(&["domjobinfo", NAME, "--completed"]),
        "Job type:         None        \n\n"
    );

    vsh.ok(&["start", NAME]);
    let m = vshrun::multiplier();
    wait_until(
        "the guest's third tick",
        Duration::from_secs(180 * m),
        || bootkit::last_tick_in(&console).is_some_and(|(n, _)| n >= 3),
    );
    let (_, boot_id) = bootkit::last_tick_in(&console).unwrap();

    // No job: one line, and nothing to abort.
    assert_eq!(
        vsh.ok(&["domjobinfo", NAME]),
        "Job type:         None        \n\n"
    );
    assert_eq!(
        vsh.ok(&["domjobinfo", NAME, "--rawstats"]),
        "Job type: 0\n\n\n"
    );
    assert_eq!(
        vsh.fails(&["domjobabort", NAME]),
        "error: Requested operation is not valid: no job is active on the domain\n"
    );
    assert_eq!(
        vsh.fails(&["domjobabort", NAME, "--postcopy"]),
        "error: this function is not supported by the connection driver: virDomainAbortJobFlags\n"
    );

    // A save of a 256 MiB guest takes well under a second here; at 256 KiB/s (QEMU's
    // migration speed limit, which the save's stream obeys) it takes many seconds, long
    // enough to look at it and cancel it.
    set_bandwidth(&vsh, 256 * 1024);
    let mut save = vsh
        .cmd(&["save", NAME, img, "--verbose"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut info = String::new();
    wait_until("the save's job", Duration::from_secs(30 * m), || {
        info = vsh.ok(&["domjobinfo", NAME]);
        info.contains("Data processed:")
    });
    let lines: Vec<&str> = info.lines().collect();
    assert_eq!(lines[0], "Job type:         Unbounded   ", "{info}");
    assert_eq!(lines[1], "Operation:        Save        ", "{info}");
    assert!(lines[2].starts_with("Time elapsed:     "), "{info}");
    assert!(lines[2].ends_with(" ms"), "{info}");
    assert!(lines[3].starts_with("Data processed:   "), "{info}");
    assert!(lines[4].starts_with("Data remaining:   "), "{info}");
    assert!(lines[5].starts_with("Data total:       "), "{info}");
    assert!(lines[6].starts_with("Memory processed: "), "{info}");
    let raw = vsh.ok(&["domjobinfo", NAME, "--rawstats"]);
    assert!(
        raw.starts_with("Job type: 2\n\noperation: 2\ntime_elapsed: "),
        "{raw}"
    );
    assert!(raw.contains("\nmemory_total: "), "{raw}");

    // Other requests are served while the job runs.
    let t = Instant::now();
    assert_eq!(vsh.ok(&["domstate", NAME]), "paused\n\n");
    assert!(t.elapsed() < Duration::from_secs(5 * m));
    // One that needs the job lock waits for it, then gives up as libvirt does.
    assert_eq!(
        vsh.fails(&["suspend", NAME]),
        format!(
            "error: Failed to suspend domain '{NAME}'\n\
             error: Timed out during operation: cannot acquire state change lock (held by monitor=remoteDispatchDomainSave)\n"
        )
    );

    // Cancel it: the save fails with libvirt's message, the guest runs on.
    assert_eq!(vsh.ok(&["domjobabort", NAME]), "\n");
    let st = save.wait().unwrap();
    let mut err = String::new();
    save.stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(!st.success());
    assert!(
        err.ends_with(&format!(
            "error: Failed to save domain '{NAME}' to {img}\n\
             error: operation aborted: domain save job: canceled by client\n"
        )),
        "{err:?}"
    );
    assert!(
        err.starts_with("\rSave: ["),
        "virsh's progress line first: {err:?}"
    );
    assert!(!image.exists(), "the partial image is removed");
    assert_eq!(
        vsh.ok(&["domstate", NAME, "--reason"]),
        "running (save canceled)\n\n"
    );
    let (n0, _) = bootkit::last_tick_in(&console).unwrap();
    wait_until("ticks after the abort", Duration::from_secs(60 * m), || {
        bootkit::last_tick_in(&console).is_some_and(|(n, _)| n > n0 + 1)
    });
    assert_eq!(
        bootkit::last_tick_in(&console).unwrap().1,
        boot_id,
        "the same boot"
    );
    assert_eq!(
        vsh.ok(&["domjobinfo", NAME]),
        "Job type:         None        \n\n"
    );

    // A full-speed save with --verbose ends on virsh's [100 %].
    set_bandwidth(&vsh, 128 << 20);
    let (n_saved, _) = bootkit::last_tick_in(&console).unwrap();
    let (ok, out, err) = vsh.run(&["save", NAME, img, "--verbose"]);
    assert!(ok, "{err}");
    assert!(err.ends_with("\rSave: [100 %]"), "{err:?}");
    assert_eq!(out, format!("\nDomain '{NAME}' saved to {img}\n\n"));
    assert_eq!(vsh.fails(&["domjobinfo", NAME]), not_running);

    // The completed job's statistics, kept once, then gone.
    let done = vsh.ok(&["domjobinfo", NAME, "--completed", "--keep-completed"]);
    let lines: Vec<&str> = done.lines().collect();
    assert_eq!(lines[0], "Job type:         Completed   ", "{done}");
    assert_eq!(lines[1], "Operation:        Save        ", "{done}");
    assert!(done.contains("\nData remaining:   0.000 B\n"), "{done}");
    assert_eq!(
        vsh.ok(&["domjobinfo", NAME, "--completed"]),
        done,
        "--keep-completed kept them"
    );
    assert_eq!(
        vsh.ok(&["domjobinfo", NAME, "--completed"]),
        "Job type:         None        \n\n"
    );

    // The restore is the monitor's job too. The image holds the whole 256 MiB guest; slowed
    // to last about 8 s, it is looked at midway: `domjobinfo` from another vsh shows the
    // job with the stream's progress, `domstate` answers, and `restore --verbose` prints
    // the progress line `save --verbose` prints, ending at 100 %.
    let size = std::fs::metadata(&image).unwrap().len();
    let slow = (size / 8).max(1).to_string();
    let restore = slowed(&vsh, &["restore", img, "--verbose"], &slow);
    let info = running_restore(&vsh, m);
    let lines: Vec<&str> = info.lines().collect();
    assert_eq!(lines[0], "Job type:         Unbounded   ", "{info}");
    assert_eq!(lines[1], "Operation:        Restore     ", "{info}");
    assert!(lines[2].starts_with("Time elapsed:     "), "{info}");
    assert!(lines[3].starts_with("Data processed:   "), "{info}");
    assert!(lines[4].starts_with("Data remaining:   "), "{info}");
    assert!(lines[5].starts_with("Data total:       "), "{info}");
    let raw = vsh.ok(&["domjobinfo", NAME, "--rawstats"]);
    assert!(
        raw.starts_with("Job type: 2\n\noperation: 3\ntime_elapsed: "),
        "{raw}"
    );
    assert!(
        raw.contains(&format!("\ndata_total: {}\n", size - stream_offset(&image))),
        "{raw}"
    );
    assert_eq!(vsh.ok(&["domstate", NAME]), "paused\n\n");
    let (ok, out, err) = finish(restore);
    assert!(ok, "{err}");
    assert!(err.starts_with("\rRestore: ["), "{err:?}");
    assert!(err.ends_with("\rRestore: [100 %]"), "{err:?}");
    assert_eq!(out, format!("\nDomain restored from {img}\n\n"));
    assert_eq!(
        vsh.ok(&["domstate", NAME, "--reason"]),
        "running (restored)\n\n"
    );
    assert_eq!(
        vsh.ok(&["domjobinfo", NAME]),
        "Job type:         None        \n\n"
    );
    // The image restores to the same boot, counting on (QEMU starts the console file
    // afresh).
    wait_until(
        "ticks after the restore",
        Duration::from_secs(60 * m),
        || bootkit::last_tick_in(&console).is_some_and(|(n, _)| n > n_saved),
    );
    assert_eq!(bootkit::last_tick_in(&console).unwrap().1, boot_id);

    // `domjobabort` while a start loads the managed save image: that QEMU goes, the start
    // fails as an aborted job, the domain is shut off and keeps its image for the next start.
    vsh.ok(&["managedsave", NAME]);
    let start = slowed(&vsh, &["start", NAME], &slow);
    running_restore(&vsh, m);
    let pid = qemu_pid(&root);
    assert_eq!(vsh.ok(&["domjobabort", NAME]), "\n");
    let (ok, _, err) = finish(start);
    assert!(!ok);
    assert_eq!(
        err,
        format!(
            "error: Failed to start domain '{NAME}'\n\
             error: operation aborted: start job: canceled by client\n"
        )
    );
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "QEMU {pid} is gone"
    );
    assert_eq!(vsh.ok(&["domstate", NAME]), "shut off\n\n");
    assert!(
        vsh.ok(&["dominfo", NAME]).contains("Managed save:   yes"),
        "the managed save image is kept"
    );
    // `destroy` during the load ends it too: the start fails with QEMU's exit.
    let start = slowed(&vsh, &["start", NAME], &slow);
    running_restore(&vsh, m);
    let pid = qemu_pid(&root);
    assert_eq!(
        vsh.ok(&["destroy", NAME]),
        format!("Domain '{NAME}' destroyed\n\n")
    );
    let (ok, _, err) = finish(start);
    assert!(!ok);
    assert!(
        err.starts_with(&format!(
            "error: Failed to start domain '{NAME}'\n\
             error: internal error: guest '{NAME}': process exited while loading the guest's state"
        )),
        "{err}"
    );
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "QEMU {pid} is gone"
    );
    assert_eq!(vsh.ok(&["domstate", NAME]), "shut off\n\n");
    vsh.ok(&["start", NAME]);
    assert_eq!(
        vsh.ok(&["domstate", NAME, "--reason"]),
        "running (restored)\n\n"
    );

    // The same for `restore FILE` of a domain not defined: no domain is left.
    vsh.ok(&["save", NAME, img]);
    vsh.ok(&["undefine", NAME]);
    let restore = slowed(&vsh, &["restore", img], &slow);
    running_restore(&vsh, m);
    let pid = qemu_pid(&root);
    assert_eq!(vsh.ok(&["domjobabort", NAME]), "\n");
    let (ok, _, err) = finish(restore);
    assert!(!ok);
    assert_eq!(
        err,
        format!(
            "error: Failed to restore domain from {img}\n\
             error: operation aborted: start job: canceled by client\n"
        )
    );
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "QEMU {pid} is gone"
    );
    assert_eq!(vsh.ok(&["list", "--all", "--name"]), "\n");
    assert_eq!(
        vsh.fails(&["domjobabort", NAME]),
        format!(
            "error: failed to get domain '{NAME}'\n\
             error: Domain not found: no domain with matching name '{NAME}'\n"
        )
    );
    // --verbose changes nothing about a restore's errors.
    assert_eq!(
        vsh.fails(&["restore", "/nonexistent/x.save", "--verbose"]),
        vsh.fails(&["restore", "/nonexistent/x.save"])
    );
    // The image is intact: it restores at full speed.
    vsh.ok(&["restore", img]);
    assert_eq!(
        vsh.ok(&["domstate", NAME, "--reason"]),
        "running (restored)\n\n"
    );
    vsh.ok(&["destroy", NAME]);
}

/// `vsh ARGS` in the background, its restore's stream slowed to `bps` bytes per second.
fn slowed(vsh: &Vsh, args: &[&str], bps: &str) -> std::process::Child {
    vsh.cmd(args)
        .env("DOMDRIVER_RESTORE_BANDWIDTH", bps)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Wait for `child`: whether it succeeded, its stdout and stderr.
fn finish(child: std::process::Child) -> (bool, String, String) {
    let o = child.wait_with_output().unwrap();
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// `domjobinfo` once it shows the restore's job with some of the stream loaded.
fn running_restore(vsh: &Vsh, m: u64) -> String {
    let mut info = String::new();
    wait_until("the restore's job", Duration::from_secs(60 * m), || {
        let (_, out, _) = vsh.run(&["domjobinfo", NAME]);
        info = out;
        info.contains("Operation:        Restore") && !info.contains("Data processed:   0.000 B")
    });
    info
}

/// The pid of the guest's QEMU, from its status file.
fn qemu_pid(root: &Path) -> i32 {
    let path = root.join(format!("run/qemu/{NAME}.json"));
    domdriver::driver::status::GuestStatus::read(NAME, &path)
        .unwrap()
        .unwrap()
        .pid
}

/// Where the migration stream begins in a save image.
fn stream_offset(image: &Path) -> u64 {
    domdriver::driver::saveimage::read(image)
        .unwrap()
        .stream_offset
}

/// A save image of `xml` whose stream is a few bytes: enough for the XML verbs.
fn fake_image(path: &Path, xml: &str, running: bool) {
    use std::io::Write;
    domdriver::driver::saveimage::create(path, xml, running).unwrap();
    let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(b"QEVM").unwrap();
    domdriver::driver::saveimage::mark_complete(path).unwrap();
}

/// The image XML verbs on a managed save image and a save file written by the library's
/// own image writer (the stream after the XML does not matter to them): dump, define with
/// a host-side change, the running/paused flag, editing, and libvirt's refusals (no image,
/// ABI changes, exclusive flags).
#[test]
fn image_xml_verbs_follow_libvirts_rules() {
    use domdriver::driver::saveimage;
    let d = tempfile::Builder::new()
        .prefix("jbx")
        .tempdir_in("/tmp")
        .unwrap();
    let root: PathBuf = d.path().to_path_buf();
    let mut vsh = Vsh::new(root.clone());
    let name = "jbx";
    let xml = format!(
        "<domain type='qemu'><name>{name}</name><uuid>7a4c1c1e-4b59-4d1e-9d7b-3f0c2b9a1d11</uuid>\
         <description>tick</description><memory unit='KiB'>262144</memory><vcpu>1</vcpu>\
         <os><type arch='x86_64' machine='pc'>hvm</type></os>\
         <devices><emulator>{QEMU}</emulator><serial type='pty'><target port='0'/></serial>\
         <memballoon model='none'/></devices></domain>"
    );
    let xml_path = root.join("x.xml");
    std::fs::write(&xml_path, &xml).unwrap();
    let xml_file = xml_path.to_str().unwrap();
    vsh.ok(&["define", xml_file]);

    // No managed save image yet.
    let none = "error: Requested operation is not valid: domain does not have managed save image\n";
    assert_eq!(vsh.fails(&["managedsave-dumpxml", name]), none);
    assert_eq!(
        vsh.fails(&["managedsave-define", name, xml_file]),
        format!("error: Failed to update {name} XML configuration\n{none}")
    );

    let conn =
        domdriver::Connect::open(Some(&format!("qemu:///embed?root={}", root.display()))).unwrap();
    let managed = conn.dirs().lib.join("save").join(format!("{name}.save"));
    std::fs::create_dir_all(managed.parent().unwrap()).unwrap();
    fake_image(&managed, &xml, true);

    let dumped = vsh.ok(&["managedsave-dumpxml", name, "--security-info"]);
    assert!(
        dumped.contains("<description>tick</description>"),
        "{dumped}"
    );
    let name_only = vsh.ok(&["managedsave-dumpxml", name, "--xpath", "/domain/name"]);
    assert_eq!(name_only, format!("<name>{name}</name>\n\n"));

    // A host-side change and --paused: accepted, the header's flag follows.
    let changed = xml.replace(
        "<description>tick</description>",
        "<description>tock</description>",
    );
    let changed_path = root.join("changed.xml");
    std::fs::write(&changed_path, &changed).unwrap();
    assert_eq!(
        vsh.ok(&[
            "managedsave-define",
            name,
            changed_path.to_str().unwrap(),
            "--paused"
        ]),
        format!("Managed save state file of domain '{name}' updated.\n\n")
    );
    let img = saveimage::read(&managed).unwrap();
    assert!(img.xml.contains("tock"));
    assert!(!img.was_running);

    // ABI changes are refused with libvirt's messages, the image untouched.
    let refusals = [
        (
            xml.replace("262144", "524288"),
            "Target domain max memory 524288 does not match source 262144",
        ),
        (
            xml.replace("<vcpu>1</vcpu>", "<vcpu>2</vcpu>"),
            "Target domain vCPU max 2 does not match source 1",
        ),
        (
            xml.replace("<serial type='pty'><target port='0'/></serial>", ""),
            "Target domain serial port count 0 does not match source 1",
        ),
    ];
    for (bad, msg) in refusals {
        std::fs::write(&changed_path, &bad).unwrap();
        assert_eq!(
            vsh.fails(&["managedsave-define", name, changed_path.to_str().unwrap()]),
            format!(
                "error: Failed to update {name} XML configuration\n\
                 error: unsupported configuration: {msg}\n"
            )
        );
    }
    let other = xml.replace(&format!("<name>{name}</name>"), "<name>other</name>");
    std::fs::write(&changed_path, &other).unwrap();
    assert_eq!(
        vsh.fails(&["managedsave-define", name, changed_path.to_str().unwrap()]),
        format!(
            "error: Failed to update {name} XML configuration\n\
             error: operation failed: target domain name 'other' does not match source '{name}'\n"
        )
    );
    assert_eq!(saveimage::read(&managed).unwrap(), img);
    assert_eq!(
        vsh.fails(&[
            "managedsave-define",
            name,
            xml_file,
            "--running",
            "--paused"
        ]),
        "error: Options --running and --paused are mutually exclusive\n"
    );

    // managedsave-edit: unchanged, then an ABI change refused.
    vsh.env.push(("VISUAL".into(), PathBuf::from("true")));
    assert_eq!(
        vsh.ok(&["managedsave-edit", name]),
        format!("Managed save image of domain '{name}' XML configuration not changed.\n\n")
    );
    vsh.env.pop();
    vsh.env
        .push(("VISUAL".into(), PathBuf::from("sed -i s/262144/524288/")));
    assert_eq!(
        vsh.fails(&["managedsave-edit", name]),
        format!(
            "error: Failed to update {name} XML configuration\n\
             error: unsupported configuration: Target domain max memory 524288 does not match source 262144\n"
        )
    );
    vsh.env.pop();

    // save-image-edit on a file: a host-side edit with --running.
    let file = root.join("f.save");
    let f = file.to_str().unwrap();
    fake_image(&file, &xml, false);
    vsh.env
        .push(("VISUAL".into(), PathBuf::from("sed -i s/tick/tack/")));
    assert_eq!(
        vsh.ok(&["save-image-edit", f, "--running"]),
        format!("State file {f} edited.\n\n")
    );
    let img = saveimage::read(&file).unwrap();
    assert!(img.xml.contains("tack") && img.was_running);
    vsh.env.pop();
    vsh.env.push(("VISUAL".into(), PathBuf::from("true")));
    assert_eq!(
        vsh.ok(&["save-image-edit", f]),
        format!("Saved image {f} XML configuration not changed.\n\n")
    );
    assert_eq!(
        vsh.fails(&["save-image-edit", "/nonexistent/x.save"]),
        "error: cannot open saved image '/nonexistent/x.save': No such file or directory\n"
    );

    // A stream QEMU cannot load: QEMU exits, the restore (a job that failed) reports it with
    // QEMU's words (the job's failure or QEMU's exit, whichever the monitor saw first), and the domain is shut off, with no QEMU and no job left behind.
    if Path::new(QEMU).exists() {
        let _reap = Reaper(root.clone(), vec!["jbx"]);
        let err = vsh.fails(&["restore", f, "--verbose"]);
        assert!(
            err.starts_with(&format!(
                "error: Failed to restore domain from {f}\n\
                 error: internal error: guest '{name}': "
            )),
            "{err}"
        );
        assert!(err.contains("load of migration failed"), "{err}");
        assert_eq!(vsh.ok(&["domstate", name]), "shut off\n\n");
        assert!(!root.join(format!("run/qemu/{name}.json")).exists());
        assert_eq!(
            vsh.fails(&["domjobinfo", name]),
            "error: Requested operation is not valid: domain is not running\n"
        );
    }
}
