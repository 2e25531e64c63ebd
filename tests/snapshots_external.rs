//! Reverting to external disk-only snapshots of a real TCG guest, as libvirt 9.9+ does:
//! the disks the snapshot was taken on get new overlays (so the snapshot can be reverted
//! to again), what came after it is gone, and a chain of snapshots keeps the images its
//! children are built on. Snapshots with memory in a file (`--memspec`) revert to the
//! guest's memory and disks as they were. One booted guest for the whole file.

#[path = "common/bootkit.rs"]
mod bootkit;
mod common;
#[path = "common/vshrun.rs"]
mod vshrun;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use domdriver::Connect;
use domdriver::driver::console::Console;

const QEMU: &str = "/usr/bin/qemu-system-x86_64";

fn qemu_img(args: &[&str]) -> String {
    let o = Command::new("qemu-img").args(args).output().unwrap();
    assert!(
        o.status.success(),
        "qemu-img {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The first disk's `<source file>` in a domain or snapshot XML.
fn source_file(xml: &str) -> String {
    let a = xml.find("<source file='").unwrap() + "<source file='".len();
    let b = xml[a..].find('\'').unwrap() + a;
    xml[a..b].to_string()
}

fn backing_of(image: &str) -> String {
    let info = qemu_img(&["info", "-U", image]);
    info.lines()
        .find_map(|l| l.strip_prefix("backing file: "))
        .unwrap_or("")
        .to_string()
}

/// A guest whose console runs each line typed as a shell command.
fn guest_xml(kit: &bootkit::LinuxKit, name: &str, disk: &Path) -> String {
    let script = "echo SHELL-READY; while read -r l; do eval \"$l\"; done < /dev/ttyS0";
    format!(
        "<domain type='qemu'><name>{name}</name><memory unit='MiB'>256</memory><vcpu>1</vcpu>
<os><type arch='x86_64' machine='pc'>hvm</type><kernel>{}</kernel><initrd>{}</initrd>
<cmdline>{} {}</cmdline></os>
<devices><emulator>{QEMU}</emulator>
<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='{}'/><target dev='vda' bus='virtio'/></disk>
<serial type='pty'><target port='0'/></serial><memballoon model='none'/></devices></domain>",
        kit.kernel.display(),
        kit.initrd.display(),
        kit.cmdline(),
        bootkit::run_cmdline(script),
        disk.display(),
    )
}

/// Runs shell lines in the guest; each answers with a numbered marker and its status.
struct Shell {
    n: u32,
}

impl Shell {
    fn run(&mut self, con: &mut Console, cmd: &str) -> String {
        self.n += 1;
        let m = self.n * 1000 + 7;
        con.send_line(&format!("{cmd}; echo M$(({m}))-$?")).unwrap();
        con.expect_regex(
            &format!(r"M{m}-(\d+)"),
            Duration::from_secs(60 * vshrun::multiplier()),
        )
        .unwrap()
        .text
    }

    /// Write `word` at the start of the disk, through to the image.
    fn write(&mut self, con: &mut Console, word: &str) {
        let r = self.run(
            con,
            &format!("echo {word} | dd of=/dev/vda conv=fsync 2>/dev/null"),
        );
        assert!(r.ends_with("-0"), "{r}");
    }

    /// Whether the disk starts with `word`.
    fn reads(&mut self, con: &mut Console, word: &str) -> bool {
        let r = self.run(
            con,
            &format!("test \"$(head -c {} /dev/vda)\" = {word}", word.len()),
        );
        r.ends_with("-0")
    }
}

#[test]
fn external_disk_snapshots_revert_onto_new_overlays() {
    if !Path::new(QEMU).exists() {
        eprintln!("\n*** SKIPPED: {QEMU} is not installed ***\n");
        return;
    }
    let Some(kit) = bootkit::linux() else { return };
    let d = tempfile::Builder::new()
        .prefix("snext")
        .tempdir_in("/tmp")
        .unwrap();
    let root = d.path().join("r");
    let _reap = vshrun::Reaper(root.clone(), vec!["xs"]);
    let uri = format!("qemu:///embed?root={}", root.display());
    let v = vshrun::Vsh::new(root.clone());
    let img = d.path().join("xs.qcow2");
    let img_s = img.display().to_string();
    qemu_img(&["create", "-q", "-f", "qcow2", &img_s, "64M"]);
    let conn = Connect::open(Some(&uri)).unwrap();
    let dom = conn
        .define_domain_xml(&guest_xml(&kit, "xs", &img))
        .unwrap();
    dom.create().unwrap();
    let boot = Duration::from_secs(240 * vshrun::multiplier());
    let mut con = dom.console(None).unwrap();
    con.expect("SHELL-READY", boot).unwrap();
    let mut sh = Shell { n: 0 };
    sh.write(&mut con, "base");

    // A disk-only snapshot: the guest moves onto xs.e1; what it writes next lands there.
    v.ok(&["snapshot-create-as", "xs", "e1", "--disk-only"]);
    let e1 = d.path().join("xs.e1");
    assert_eq!(backing_of(e1.to_str().unwrap()), img_s);
    sh.write(&mut con, "late");
    assert!(sh.reads(&mut con, "late"));

    // Reverting leaves the guest shut off (a disk snapshot has no memory), its config on a
    // new overlay over the snapshot's own disk; the overlay it ran on is gone.
    assert_eq!(v.ok(&["snapshot-revert", "xs", "e1"]), "\n");
    assert_eq!(v.ok(&["domstate", "xs"]), "shut off\n\n");
    assert!(!e1.exists());
    let fresh1 = source_file(&v.ok(&["dumpxml", "xs", "--inactive"]));
    assert!(
        fresh1.starts_with(&format!("{}/xs.", d.path().display())),
        "{fresh1}"
    );
    assert_eq!(backing_of(&fresh1), img_s);
    let x = v.ok(&["snapshot-dumpxml", "xs", "e1"]);
    assert_eq!(source_file(x.split("\n  <domain ").next().unwrap()), fresh1);
    assert_eq!(v.ok(&["snapshot-current", "xs", "--name"]), "e1\n");
    v.ok(&["start", "xs"]);
    let mut con = dom.console(None).unwrap();
    con.expect("SHELL-READY", boot).unwrap();
    assert!(sh.reads(&mut con, "base"));

    // A child snapshot: e2 is built on e1's overlay. Reverting to e1 (--running) keeps that
    // overlay (e2's state is in it) and records the new one as e1's revert disks.
    sh.write(&mut con, "mid1");
    v.ok(&["snapshot-create-as", "xs", "e2", "--disk-only"]);
    let e2 = d.path().join("xs.e2");
    assert_eq!(backing_of(e2.to_str().unwrap()), fresh1);
    sh.write(&mut con, "gone");
    v.ok(&["snapshot-revert", "xs", "e1", "--running"]);
    assert_eq!(v.ok(&["domstate", "xs"]), "running\n\n");
    assert!(!e2.exists());
    assert!(Path::new(&fresh1).exists());
    let x = v.ok(&["snapshot-dumpxml", "xs", "e1"]);
    assert!(x.contains("<revertDisks>"), "{x}");
    let fresh2 = source_file(&v.ok(&["dumpxml", "xs", "--inactive"]));
    assert_ne!(fresh2, fresh1);
    assert_eq!(backing_of(&fresh2), img_s);
    let mut con = dom.console(None).unwrap();
    con.expect("SHELL-READY", boot).unwrap();
    assert!(sh.reads(&mut con, "base"));

    // Back to e2 (--paused): e1's revert overlay goes with the state on it, e2 gets a new
    // overlay over e1's, which still holds what e2 saw.
    sh.write(&mut con, "lost");
    v.ok(&["snapshot-revert", "xs", "e2", "--paused"]);
    assert_eq!(v.ok(&["domstate", "xs"]), "paused\n\n");
    assert!(!Path::new(&fresh2).exists());
    assert!(
        !v.ok(&["snapshot-dumpxml", "xs", "e1"])
            .contains("<revertDisks>")
    );
    let fresh3 = source_file(&v.ok(&["dumpxml", "xs", "--inactive"]));
    assert_eq!(backing_of(&fresh3), fresh1);
    v.ok(&["resume", "xs"]);
    let mut con = dom.console(None).unwrap();
    con.expect("SHELL-READY", boot).unwrap();
    assert!(sh.reads(&mut con, "mid1"));

    // An overlay someone removed is no reason to fail (libvirt only warns): revert again.
    std::fs::remove_file(&fresh3).unwrap();
    v.ok(&["snapshot-revert", "xs", "e2", "--running"]);
    let fresh4 = source_file(&v.ok(&["dumpxml", "xs", "--inactive"]));
    assert_eq!(backing_of(&fresh4), fresh1);
    let mut con = dom.console(None).unwrap();
    con.expect("SHELL-READY", boot).unwrap();
    assert!(sh.reads(&mut con, "mid1"));

    // A snapshot whose own disk is gone cannot be reverted to: the error names it, nothing
    // is made, and the guest runs on as it was.
    let ghost = d.path().join("ghost.xml");
    std::fs::write(
        &ghost,
        v.ok(&["snapshot-dumpxml", "xs", "e1"])
            .replace("<name>e1</name>", "<name>ghost</name>")
            .replace(
                &img_s,
                &d.path().join("missing.qcow2").display().to_string(),
            ),
    )
    .unwrap();
    v.ok(&[
        "snapshot-create",
        "xs",
        ghost.to_str().unwrap(),
        "--redefine",
    ]);
    let before: Vec<_> = std::fs::read_dir(d.path()).unwrap().collect();
    let e = v.fails(&["snapshot-revert", "xs", "ghost"]);
    assert!(
        e.starts_with("error: operation failed: ") && e.contains("missing.qcow2"),
        "{e}"
    );
    assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), before.len());
    assert_eq!(v.ok(&["domstate", "xs"]), "running\n\n");
    assert_eq!(v.ok(&["snapshot-current", "xs", "--name"]), "e2\n");
    assert!(sh.reads(&mut con, "mid1"));
    // --running and --paused together are refused before anything happens.
    let e = v.fails(&["snapshot-revert", "xs", "e1", "--running", "--paused"]);
    assert!(e.contains("mutually exclusive"), "{e}");
    assert_eq!(v.ok(&["snapshot-current", "xs", "--name"]), "e2\n");

    // With memory (--memspec): the memory goes to a file (a save image, 0600), the disk
    // onto a new overlay, and the guest runs on.
    let mem = d.path().join("m1.mem");
    assert!(sh.run(&mut con, "echo kept > /tmp/inmem").ends_with("-0"));
    let spec = format!("file={}", mem.display());
    assert_eq!(
        v.ok(&["snapshot-create-as", "xs", "m1", "--memspec", &spec]),
        "Domain snapshot m1 created\n"
    );
    assert_eq!(v.ok(&["domstate", "xs"]), "running\n\n");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&mem).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let x = v.ok(&["snapshot-dumpxml", "xs", "m1"]);
    assert!(x.contains("<state>running</state>"), "{x}");
    assert!(
        x.contains(&format!(
            "<memory snapshot='external' file='{}'/>",
            mem.display()
        )),
        "{x}"
    );
    let m1 = d.path().join("xs.m1");
    assert_eq!(backing_of(m1.to_str().unwrap()), fresh4);
    let jobs = v.ok(&["domjobinfo", "xs", "--completed", "--keep-completed"]);
    assert!(jobs.contains("Snapshot"), "{jobs}");
    // The kept statistics are no guest of their own to the listing.
    let (listed, out, err) = v.run(&["list", "--all"]);
    assert!(listed && err.is_empty(), "{out}{err}");
    assert!(sh.reads(&mut con, "mid1"));
    sh.write(&mut con, "post");
    assert!(
        sh.run(&mut con, "rm /tmp/inmem; echo x > /tmp/later")
            .ends_with("-0")
    );

    // Reverting starts the guest from the file on a new overlay over the disk the
    // snapshot was taken on: its memory and its disk as they were.
    v.ok(&["snapshot-revert", "xs", "m1"]);
    assert_eq!(v.ok(&["domstate", "xs"]), "running\n\n");
    assert!(!m1.exists());
    let fresh5 = source_file(&v.ok(&["dumpxml", "xs"]));
    assert_eq!(backing_of(&fresh5), fresh4);
    let mut con = dom.console(None).unwrap();
    assert!(sh.run(&mut con, "test -e /tmp/inmem").ends_with("-0"));
    assert!(sh.run(&mut con, "test -e /tmp/later").ends_with("-1"));
    assert!(sh.reads(&mut con, "mid1"));
    // --paused keeps it paused.
    v.ok(&["snapshot-revert", "xs", "m1", "--paused"]);
    assert_eq!(v.ok(&["domstate", "xs"]), "paused\n\n");
    v.ok(&["resume", "xs"]);

    // A memory file that is not a save image is refused before the guest is touched.
    std::fs::write(&mem, b"not a save image").unwrap();
    let e = v.fails(&["snapshot-revert", "xs", "m1"]);
    assert!(e.starts_with("error: "), "{e}");
    assert_eq!(v.ok(&["domstate", "xs"]), "running\n\n");
    let mut con = dom.console(None).unwrap();
    assert!(sh.run(&mut con, "test -e /tmp/inmem").ends_with("-0"));
    // A memory file that cannot be written fails the snapshot, with no metadata left.
    let e = v.fails(&[
        "snapshot-create-as",
        "xs",
        "m2",
        "--memspec",
        "file=/nonexistent/dir/m2.mem",
    ]);
    assert!(e.starts_with("error: "), "{e}");
    assert!(!v.ok(&["snapshot-list", "xs", "--name"]).contains("m2"));
    assert_eq!(v.ok(&["domstate", "xs"]), "running\n\n");
    assert!(sh.run(&mut con, "true").ends_with("-0"));
    v.ok(&["destroy", "xs"]);
}

/// A transient guest has no config to go back to: reverting it to a snapshot without
/// memory must ask for it to run (libvirt's refusal), and leaves it running as it was.
#[test]
fn transient_guest_must_ask_to_run_after_a_disk_revert() {
    if !Path::new(QEMU).exists() {
        eprintln!("\n*** SKIPPED: {QEMU} is not installed ***\n");
        return;
    }
    let d = tempfile::Builder::new()
        .prefix("snext-t")
        .tempdir_in("/tmp")
        .unwrap();
    let root = d.path().join("r");
    let _reap = vshrun::Reaper(root.clone(), vec!["tr"]);
    let v = vshrun::Vsh::new(root.clone());
    let img = d.path().join("tr.qcow2");
    qemu_img(&["create", "-q", "-f", "qcow2", img.to_str().unwrap(), "16M"]);
    // No OS: the firmware idles, which is all a disk snapshot needs.
    let xml = d.path().join("tr.xml");
    std::fs::write(
        &xml,
        format!(
            "<domain type='qemu'><name>tr</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
<os><type arch='x86_64' machine='pc'>hvm</type></os>
<devices><emulator>{QEMU}</emulator>
<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='{}'/><target dev='vda' bus='virtio'/></disk>
<memballoon model='none'/></devices></domain>",
            img.display()
        ),
    )
    .unwrap();
    v.ok(&["create", xml.to_str().unwrap()]);
    v.ok(&["snapshot-create-as", "tr", "t1", "--disk-only"]);
    let overlay = source_file(&v.ok(&["dumpxml", "tr"]));
    assert_eq!(
        v.fails(&["snapshot-revert", "tr", "t1"]),
        "error: Requested operation is not valid: transient domain needs to request run or \
         pause to revert to inactive snapshot\n"
    );
    assert_eq!(v.ok(&["domstate", "tr"]), "running\n\n");
    assert_eq!(source_file(&v.ok(&["dumpxml", "tr"])), overlay);
    // Asked to run, it runs on a new overlay over the image the snapshot was taken of.
    v.ok(&["snapshot-revert", "tr", "t1", "--running"]);
    assert_eq!(v.ok(&["domstate", "tr"]), "running\n\n");
    let fresh = source_file(&v.ok(&["dumpxml", "tr"]));
    assert_ne!(fresh, overlay);
    assert_eq!(backing_of(&fresh), img.display().to_string());
    v.ok(&["destroy", "tr"]);
}

/// Unmounts a test's tmpfs on drop.
struct Unmount(std::path::PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// QEMU's migration bandwidth (bytes/s) for guest `name`, which a memory snapshot's stream
/// obeys.
fn set_bandwidth(v: &vshrun::Vsh, name: &str, bytes_per_s: u64) {
    let cmd = format!(
        r#"{{"execute":"migrate-set-parameters","arguments":{{"max-bandwidth":{bytes_per_s}}}}}"#
    );
    v.ok(&["qemu-monitor-command", name, &cmd]);
}

/// The first `n` bytes of a qcow2 image's guest-visible data.
fn image_head(image: &Path, n: usize) -> Vec<u8> {
    let out = image.with_extension("head");
    qemu_img(&[
        "dd",
        "-f",
        "qcow2",
        "-O",
        "raw",
        "bs=512",
        "count=1",
        &format!("if={}", image.display()),
        &format!("of={}", out.display()),
    ]);
    let b = std::fs::read(&out).unwrap();
    std::fs::remove_file(&out).unwrap();
    b[..n].to_vec()
}

/// A memory snapshot whose memory step fails (cancelled with `domjobabort` while it streams,
/// or a full filesystem) leaves the guest as it was: running on its own image, no overlay
/// in QEMU or on disk, the live and persistent definitions unchanged, no snapshot. The
/// guest then writes to its image, and a later memory snapshot succeeds.
#[test]
fn a_failed_memory_snapshot_leaves_the_guest_as_it_was() {
    if !Path::new(QEMU).exists() {
        eprintln!("\n*** SKIPPED: {QEMU} is not installed ***\n");
        return;
    }
    let Some(kit) = bootkit::linux() else { return };
    let d = tempfile::Builder::new()
        .prefix("snext-f")
        .tempdir_in("/tmp")
        .unwrap();
    let root = d.path().join("r");
    let _reap = vshrun::Reaper(root.clone(), vec!["xf"]);
    let uri = format!("qemu:///embed?root={}", root.display());
    let v = vshrun::Vsh::new(root.clone());
    let img = d.path().join("xf.qcow2");
    let img_s = img.display().to_string();
    qemu_img(&["create", "-q", "-f", "qcow2", &img_s, "64M"]);
    let conn = Connect::open(Some(&uri)).unwrap();
    let dom = conn
        .define_domain_xml(&guest_xml(&kit, "xf", &img))
        .unwrap();
    dom.create().unwrap();
    let m = vshrun::multiplier();
    let mut con = dom.console(None).unwrap();
    con.expect("SHELL-READY", Duration::from_secs(240 * m))
        .unwrap();
    let mut sh = Shell { n: 0 };
    sh.write(&mut con, "base");

    let live = v.ok(&["dumpxml", "xf"]);
    let config = v.ok(&["dumpxml", "xf", "--inactive"]);
    let blklist = v.ok(&["domblklist", "xf"]);
    assert!(blklist.contains(&img_s), "{blklist}");
    let files = |dir: &Path| -> Vec<String> {
        let mut f: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        f.sort();
        f
    };
    let before = files(d.path());
    // The guest as it was: its definitions, its image, no overlay left in QEMU, no snapshot.
    let as_it_was = |sh: &mut Shell, con: &mut Console, what: &str| {
        assert_eq!(v.ok(&["domstate", "xf"]), "running\n\n", "{what}");
        assert_eq!(v.ok(&["domblklist", "xf"]), blklist, "{what}");
        assert_eq!(v.ok(&["dumpxml", "xf"]), live, "{what}");
        assert_eq!(v.ok(&["dumpxml", "xf", "--inactive"]), config, "{what}");
        assert_eq!(
            v.ok(&["snapshot-list", "xf", "--name"]).trim(),
            "",
            "{what}"
        );
        assert_eq!(files(d.path()), before, "{what}");
        let nodes = v.ok(&[
            "qemu-monitor-command",
            "xf",
            r#"{"execute":"query-named-block-nodes"}"#,
        ]);
        assert!(nodes.contains(&img_s), "{what}: {nodes}");
        assert!(
            !nodes.contains("xf.f"),
            "{what}: an overlay is left: {nodes}"
        );
        let jobs = v.ok(&["qemu-monitor-command", "xf", r#"{"execute":"query-jobs"}"#]);
        let jobs: String = jobs.split_whitespace().collect();
        assert!(jobs.contains(r#""return":[]"#), "{what}: {jobs}");
        assert!(sh.reads(con, "base"), "{what}");
    };

    // Cancelled while the memory streams (slowed to 256 KiB/s, so that it streams for
    // many seconds): libvirt's error for a cancelled snapshot job.
    set_bandwidth(&v, "xf", 256 * 1024);
    let mem = d.path().join("f1.mem");
    let spec = format!("file={}", mem.display());
    let snap = v
        .cmd(&["snapshot-create-as", "xf", "f1", "--memspec", &spec])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let until = std::time::Instant::now() + Duration::from_secs(60 * m);
    while !v.ok(&["domjobinfo", "xf"]).contains("Data processed:") {
        assert!(std::time::Instant::now() < until, "no snapshot job");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        d.path().join("xf.f1").exists(),
        "the disk is on its overlay"
    );
    assert_eq!(v.ok(&["domjobabort", "xf"]), "\n");
    let out = snap.wait_with_output().unwrap();
    assert!(!out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: operation aborted: snapshot job: canceled by client\n"
    );
    as_it_was(&mut sh, &mut con, "after domjobabort");
    set_bandwidth(&v, "xf", 128 << 20);

    // A memory file on a filesystem that fills up (a 512 KiB tmpfs; mounting needs root).
    if nix::unistd::geteuid().is_root() {
        let small = d.path().join("small");
        std::fs::create_dir(&small).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=512k", "tmpfs"])
            .arg(&small)
            .status()
            .unwrap()
            .success();
        assert!(ok, "mount tmpfs");
        let _umount = Unmount(small.clone());
        let before_small = files(d.path());
        let spec = format!("file={}", small.join("f2.mem").display());
        let e = v.fails(&["snapshot-create-as", "xf", "f2", "--memspec", &spec]);
        assert!(
            e.starts_with("error: operation failed: ") && e.contains("snapshot job"),
            "{e}"
        );
        assert!(files(&small).is_empty());
        assert_eq!(files(d.path()), before_small);
        drop(_umount);
        std::fs::remove_dir(&small).unwrap();
        as_it_was(&mut sh, &mut con, "after a full filesystem");
    } else {
        eprintln!("not root: the full-filesystem case is skipped");
    }

    // The guest writes to its own image; a memory snapshot works again.
    sh.write(&mut con, "after");
    assert!(sh.reads(&mut con, "after"));
    let mem = d.path().join("ok.mem");
    let spec = format!("file={}", mem.display());
    v.ok(&["snapshot-create-as", "xf", "ok", "--memspec", &spec]);
    assert_eq!(v.ok(&["snapshot-list", "xf", "--name"]), "ok\n\n");
    assert_eq!(backing_of(d.path().join("xf.ok").to_str().unwrap()), img_s);
    assert_eq!(v.ok(&["domstate", "xf"]), "running\n\n");
    assert_eq!(qemus_of(&root), 1);

    // Reverting replaces the guest's QEMU: never two for the domain.
    v.ok(&["snapshot-revert", "xf", "ok"]);
    assert_eq!(v.ok(&["domstate", "xf"]), "running\n\n");
    assert_eq!(qemus_of(&root), 1);

    // A revert whose memory stream QEMU refuses (the file cut in the middle of the stream)
    // leaves the guest shut off on the config it had: no QEMU, no new overlay.
    let image = std::fs::read(&mem).unwrap();
    std::fs::write(&mem, &image[..image.len() / 2]).unwrap();
    let config = v.ok(&["dumpxml", "xf", "--inactive"]);
    let before = files(d.path());
    let e = v.fails(&["snapshot-revert", "xf", "ok"]);
    assert!(e.starts_with("error: "), "{e}");
    assert_eq!(v.ok(&["domstate", "xf"]), "shut off\n\n");
    assert_eq!(qemus_of(&root), 0);
    assert_eq!(v.ok(&["dumpxml", "xf", "--inactive"]), config);
    assert_eq!(files(d.path()), before);
    let disk = source_file(&config);
    assert!(Path::new(&disk).exists(), "{disk}");
    // What the guest wrote after the failed snapshots is on its own image.
    assert_eq!(image_head(&img, 5), b"after");
}

/// The QEMU processes of the guests under embed root `root` (their argv names it).
fn qemus_of(root: &Path) -> usize {
    let root = root.display().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| std::fs::read(e.ok()?.path().join("cmdline")).ok())
        .filter(|c| {
            let c = String::from_utf8_lossy(c);
            c.starts_with("/usr/bin/qemu-system") && c.contains(&root)
        })
        .count()
}
