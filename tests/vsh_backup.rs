//! Checkpoints and backups on a real TCG guest (libvirt's incremental backup): the
//! checkpoint-* verbs over persistent qcow2 bitmaps and their metadata, `backup-begin` in
//! push mode (full, then incremental from a checkpoint after writes through the guest's
//! disk) and in pull mode (the export read with qemu-img over NBD), `backup-dumpxml`,
//! `domjobinfo`/`domjobabort` of the backup job, the `job-completed` event, libvirt's
//! refusals.

#[path = "common/vshrun.rs"]
mod vshrun;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const QEMU: &str = "/usr/bin/qemu-system-x86_64";

fn run(prog: &str, args: &[&str]) -> String {
    let o = Command::new(prog).args(args).output().unwrap();
    assert!(
        o.status.success(),
        "{prog} {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `qemu-img compare -U`: whether the two images read the same.
fn same(a: &str, b: &str) -> bool {
    Command::new("qemu-img")
        .args(["compare", "-U", a, b])
        .output()
        .unwrap()
        .status
        .success()
}

/// The ranges (start, length) `qemu-img map` finds with data in `img`'s own layer.
fn own_data(img: &str) -> Vec<(u64, u64)> {
    let v: serde_json::Value =
        serde_json::from_str(&run("qemu-img", &["map", "-U", "--output=json", img])).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .filter(|e| e["depth"] == 0 && e["data"] == true)
        .map(|e| (e["start"].as_u64().unwrap(), e["length"].as_u64().unwrap()))
        .collect()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct KillOnDrop(u32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.0 as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

#[test]
fn checkpoints_and_backups_on_a_running_guest() {
    if !Path::new(QEMU).exists() {
        eprintln!("\n*** SKIPPED: {QEMU} is not installed ***\n");
        return;
    }
    let d = tempfile::Builder::new()
        .prefix("bkup")
        .tempdir_in("/tmp")
        .unwrap();
    let dir = d.path();
    let p = |n: &str| dir.join(n).display().to_string();
    let root = dir.join("r");
    let _reap = vshrun::Reaper(root.clone(), vec!["cb"]);
    let v = vshrun::Vsh::new(root.clone());
    let disk = p("a.qcow2");
    run("qemu-img", &["create", "-q", "-f", "qcow2", &disk, "16M"]);
    run(
        "qemu-io",
        &["-f", "qcow2", "-c", "write -P 0x33 0 1M", &disk],
    );
    let raw = p("r.raw");
    run("qemu-img", &["create", "-q", "-f", "raw", &raw, "4M"]);
    let xml = format!(
        "<domain type='qemu'><name>cb</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>\
         <os><type arch='x86_64' machine='pc'>hvm</type></os><devices><emulator>{QEMU}</emulator>\
         <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='{disk}'/>\
         <target dev='vda' bus='virtio'/></disk>\
         <disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='{raw}'/>\
         <target dev='vdb' bus='virtio'/></disk><memballoon model='none'/></devices></domain>"
    );
    let file = |name: &str, text: &str| {
        let f = p(name);
        std::fs::write(&f, text).unwrap();
        f
    };
    v.ok(&["define", &file("cb.xml", &xml)]);

    for (verb, opts) in [
        (
            "checkpoint-create",
            &["--redefine", "--redefine-validate", "--quiesce"][..],
        ),
        ("checkpoint-create-as", &["--print-xml", "--diskspec"]),
        (
            "checkpoint-list",
            &[
                "--tree",
                "--parent",
                "--roots",
                "--leaves",
                "--topological",
                "--name",
            ],
        ),
        ("checkpoint-info", &[]),
        (
            "checkpoint-dumpxml",
            &["--size", "--no-domain", "--security-info"],
        ),
        ("checkpoint-parent", &[]),
        (
            "checkpoint-delete",
            &["--children", "--children-only", "--metadata"],
        ),
        ("checkpoint-edit", &[]),
        (
            "backup-begin",
            &["--backupxml", "--checkpointxml", "--reuse-external"],
        ),
        ("backup-dumpxml", &["--xpath", "--wrap"]),
    ] {
        let help = v.ok(&[verb, "--help"]);
        for o in opts {
            assert!(help.contains(o), "{verb} {o}: {help}");
        }
    }
    assert_eq!(
        v.ok(&[
            "checkpoint-create-as",
            "cb",
            "c0",
            "--print-xml",
            "--diskspec",
            "vda,bitmap=b"
        ]),
        "<domaincheckpoint>\n  <name>c0</name>\n  <disks>\n    <disk name='vda' bitmap='b'/>\n  </disks>\n</domaincheckpoint>\n\n\n"
    );
    // Refusals of a shut-off guest.
    assert_eq!(
        v.fails(&["checkpoint-create-as", "cb", "c0"]),
        "error: Operation not supported: cannot create checkpoint for inactive domain\n"
    );
    assert_eq!(
        v.fails(&["backup-begin", "cb"]),
        "error: Operation not supported: cannot perform disk backup for inactive domain\n"
    );
    assert_eq!(
        v.fails(&["checkpoint-create-as", "cb", "--diskspec", "vda,x=y"]),
        "error: unable to parse diskspec: vda,x=y\n"
    );
    assert_eq!(
        v.fails(&["checkpoint-create", "cb", "--redefine-validate"]),
        "error: Option --redefine is required by option --redefine-validate\n"
    );

    v.ok(&["start", "cb"]);
    let t0 = Instant::now();
    // libvirt's refusals of what this guest's disks cannot do.
    assert_eq!(
        v.fails(&["checkpoint-create-as", "cb", "c1"]),
        "error: unsupported configuration: checkpoint for disk vdb unsupported for storage type raw\n"
    );
    assert_eq!(
        v.fails(&["checkpoint-create-as", "cb", "c1", "--diskspec", "vdz"]),
        "error: unsupported configuration: no disk named 'vdz'\n"
    );
    assert_eq!(
        v.fails(&[
            "checkpoint-create-as",
            "cb",
            "c1",
            "--diskspec",
            "vda,bitmap=other"
        ]),
        "error: unsupported configuration: bitmap for disk 'vda' must match checkpoint name 'c1'\n"
    );
    assert_eq!(
        v.fails(&["checkpoint-create-as", "cb", "c1", "--quiesce"]),
        "error: invalid argument: unsupported flags (0x2) in function qemuCheckpointCreateXML\n"
    );
    assert_eq!(
        v.ok(&[
            "checkpoint-create-as",
            "cb",
            "c1",
            "--diskspec",
            "vda",
            "--diskspec",
            "vdb,checkpoint=no"
        ]),
        "Domain checkpoint c1 created\n"
    );
    assert_eq!(
        v.fails(&["checkpoint-create-as", "cb", "c1", "--diskspec", "vda"]),
        "error: operation failed: domain moment c1 already exists\n"
    );
    let bitmaps = || {
        v.ok(&[
            "qemu-monitor-command",
            "cb",
            r#"{"execute":"query-named-block-nodes","arguments":{"flat":true}}"#,
        ])
    };
    assert!(bitmaps().contains(r#""name": "c1""#), "{}", bitmaps());
    let c1 = v.ok(&["checkpoint-dumpxml", "cb", "c1"]);
    assert!(
        c1.contains("<disk name='vda' checkpoint='bitmap' bitmap='c1'/>"),
        "{c1}"
    );
    assert!(c1.contains("<disk name='vdb' checkpoint='no'/>"), "{c1}");
    assert!(c1.contains("<domain type='qemu'>"), "{c1}");
    assert!(
        !v.ok(&["checkpoint-dumpxml", "cb", "c1", "--no-domain"])
            .contains("<domain ")
    );
    assert_eq!(
        v.fails(&["checkpoint-dumpxml", "cb", "nosuch"]),
        "error: Domain checkpoint not found: no domain checkpoint with matching name 'nosuch'\n"
    );
    assert_eq!(
        v.fails(&["checkpoint-parent", "cb", "c1"]),
        "error: checkpoint 'c1' has no parent\n"
    );
    for verb in [
        "checkpoint-info",
        "checkpoint-edit",
        "checkpoint-delete",
        "checkpoint-parent",
    ] {
        assert_eq!(
            v.fails(&[verb, "cb", "nosuch"]),
            "error: Domain checkpoint not found: no domain checkpoint with matching name 'nosuch'\n",
            "{verb}"
        );
    }
    assert_eq!(
        v.fails(&["checkpoint-list", "cb", "--descendants"]),
        "error: --descendants requires --from\n"
    );
    assert_eq!(
        v.fails(&["checkpoint-list", "cb", "--tree", "--leaves"]),
        "error: --leaves and --tree are mutually exclusive\n"
    );

    // A full push backup, with the default target name: the disk's path and the new
    // checkpoint's name.
    let events = v
        .cmd(&["event", "cb", "--event", "job-completed", "--loop"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let ev_pid = KillOnDrop(events.id());
    std::thread::sleep(Duration::from_millis(500));
    let only_vda = "<disks><disk name='vda'/><disk name='vdb' backup='no'/></disks>";
    let c2 = file(
        "c2.xml",
        "<domaincheckpoint><name>c2</name><disks><disk name='vda'/><disk name='vdb' checkpoint='no'/></disks></domaincheckpoint>",
    );
    let full_xml = file(
        "full.xml",
        &format!("<domainbackup>{only_vda}</domainbackup>"),
    );
    assert_eq!(
        v.ok(&["backup-begin", "cb", &full_xml, "--checkpointxml", &c2]),
        "Backup started\n\n"
    );
    let wait_done = || {
        let until = Instant::now() + Duration::from_secs(60 * vshrun::multiplier());
        loop {
            let (ok, _, err) = v.run(&["backup-dumpxml", "cb"]);
            if !ok {
                assert_eq!(
                    err,
                    "error: Domain backup job id not found: no domain backup job present\n"
                );
                return;
            }
            assert!(Instant::now() < until, "the backup did not end");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    wait_done();
    let full = format!("{disk}.c2");
    assert!(same(&full, &disk), "the full backup differs from the disk");
    let info = v.ok(&["domjobinfo", "cb", "--completed"]);
    assert!(info.contains("Job type:         Completed"), "{info}");
    assert!(info.contains("Operation:        Backup"), "{info}");
    assert!(info.contains("File total:       16.000 MiB"), "{info}");
    assert_eq!(v.ok(&["checkpoint-parent", "cb", "c2"]), "c1\n");
    assert_eq!(
        v.ok(&["checkpoint-list", "cb", "--name", "--parent"]),
        "c1\nc2\tc1\n\n"
    );
    assert_eq!(
        v.ok(&["checkpoint-list", "cb", "--leaves", "--name"]),
        "c2\n\n"
    );
    assert_eq!(
        v.ok(&["checkpoint-list", "cb", "--roots", "--name"]),
        "c1\n\n"
    );
    assert_eq!(
        v.ok(&["checkpoint-list", "cb", "--tree"]),
        "c1\n  |\n  +- c2\n    \n\n"
    );

    // The guest writes 64 KiB at 2 MiB (through its virtio disk's backend).
    v.ok(&[
        "qemu-monitor-command",
        "cb",
        "--hmp",
        "qemu-io -d /machine/peripheral/virtio-disk0/virtio-backend \"write -P 0x44 2M 64k\"",
    ]);
    for c in ["c1", "c2"] {
        let x = v.ok(&["checkpoint-dumpxml", "cb", c, "--size", "--no-domain"]);
        assert!(x.contains(&format!("bitmap='{c}' size='65536'/>")), "{x}");
    }

    // An incremental push backup from c2: only the changed cluster, over the disk.
    let inc = p("inc.qcow2");
    let inc_xml = file(
        "inc.xml",
        &format!(
            "<domainbackup><incremental>c2</incremental><disks><disk name='vda' type='file'>\
             <target file='{inc}'/><driver type='qcow2'/></disk><disk name='vdb' backup='no'/>\
             </disks></domainbackup>"
        ),
    );
    assert_eq!(
        v.ok(&["backup-begin", "cb", &inc_xml]),
        "Backup started\n\n"
    );
    wait_done();
    assert_eq!(own_data(&inc), vec![(2 << 20, 64 << 10)]);
    assert!(same(&inc, &disk));
    // On the full backup instead of the disk, it reads as the disk does now.
    let rebased = p("rebased.qcow2");
    std::fs::copy(&inc, &rebased).unwrap();
    run(
        "qemu-img",
        &["rebase", "-u", "-F", "qcow2", "-b", &full, &rebased],
    );
    assert!(same(&rebased, &disk));
    assert!(!same(&full, &disk));
    let info = v.ok(&["domjobinfo", "cb", "--completed"]);
    assert!(info.contains("File processed:   64.000 KiB"), "{info}");
    drop(ev_pid);
    let out = events.wait_with_output().unwrap();
    let ev = String::from_utf8_lossy(&out.stdout);
    assert!(
        ev.contains("event 'job-completed' for domain 'cb':\n\toperation: 9\n"),
        "{ev}"
    );
    assert!(
        ev.contains("\tdisk_processed: 65536\n\tdisk_remaining: 0\n\tsuccess: yes\n"),
        "{ev}"
    );

    // Refusals of backups.
    assert_eq!(
        v.fails(&["backup-begin", "cb", &inc_xml]),
        format!("error: invalid argument: store '{inc}' for backup of 'vda' exists\n")
    );
    let bad = |name: &str, text: &str| v.fails(&["backup-begin", "cb", &file(name, text)]);
    assert_eq!(
        bad(
            "b1.xml",
            &format!("<domainbackup><incremental>nope</incremental>{only_vda}</domainbackup>")
        ),
        "error: Domain checkpoint not found: Checkpoint 'nope' for incremental backup of disk 'vda' not found\n"
    );
    assert_eq!(
        bad(
            "b2.xml",
            &format!("<domainbackup mode='pull'>{only_vda}</domainbackup>")
        ),
        "error: Operation not supported: <domainbackup> must specify TCP port for now\n"
    );
    assert_eq!(
        bad(
            "b3.xml",
            "<domainbackup><server name='localhost' port='1'/></domainbackup>"
        ),
        "error: unsupported configuration: use of <server> requires pull mode backup\n"
    );
    assert_eq!(
        bad(
            "b4.xml",
            "<domainbackup mode='pull'><server name='localhost' port='1'/><disks><disk name='vda'><driver type='raw'/></disk><disk name='vdb' backup='no'/></disks></domainbackup>"
        ),
        "error: unsupported configuration: pull mode backup for disk 'vda' requires qcow2 driver\n"
    );
    assert_eq!(
        bad(
            "b5.xml",
            "<domainbackup><disks><disk name='vdz'/></disks></domainbackup>"
        ),
        "error: unsupported configuration: no disk named 'vdz'\n"
    );
    assert_eq!(
        bad("b6.xml", "<domainbackup mode='sideways'/>"),
        "error: unsupported configuration: unknown backup mode 'sideways'\n"
    );
    assert_eq!(
        v.fails(&["domjobabort", "cb"]),
        "error: Requested operation is not valid: no job is active on the domain\n"
    );

    // A pull backup from c1 on a TCP port: read over NBD, the bitmap exported.
    let port = free_port().to_string();
    let scratch = p("scratch.qcow2");
    let pull_xml = file(
        "pull.xml",
        &format!(
            "<domainbackup mode='pull'><incremental>c1</incremental>\
             <server transport='tcp' name='127.0.0.1' port='{port}'/>\
             <disks><disk name='vda' type='file'><scratch file='{scratch}'/></disk>\
             <disk name='vdb' backup='no'/></disks></domainbackup>"
        ),
    );
    assert_eq!(
        v.ok(&["backup-begin", "cb", &pull_xml]),
        "Backup started\n\n"
    );
    assert!(Path::new(&scratch).exists());
    let dx = v.ok(&["backup-dumpxml", "cb"]);
    assert!(
        dx.contains("<disk name='vda' backup='yes' type='file' backupmode='incremental' incremental='c1' exportname='vda' exportbitmap='backup-vda'>"),
        "{dx}"
    );
    assert!(
        dx.contains(&format!(
            "<server transport='tcp' name='127.0.0.1' port='{port}'/>"
        )),
        "{dx}"
    );
    assert_eq!(
        v.ok(&["backup-dumpxml", "cb", "--xpath", "//scratch"]),
        format!("<scratch file=\"{scratch}\"/>\n\n")
    );
    let info = v.ok(&["domjobinfo", "cb"]);
    assert!(info.contains("Job type:         Unbounded"), "{info}");
    assert!(info.contains("Operation:        Backup"), "{info}");
    assert_eq!(
        v.fails(&["backup-begin", "cb", &pull_xml]),
        "error: Requested operation is not valid: another backup job is already running\n"
    );
    let pulled = p("pulled.qcow2");
    run(
        "qemu-img",
        &[
            "convert",
            "-O",
            "qcow2",
            &format!("nbd://127.0.0.1:{port}/vda"),
            &pulled,
        ],
    );
    assert!(same(&pulled, &disk));
    // The exported bitmap marks what changed since c1 (qemu's x-dirty-bitmap map shows it
    // as data=false).
    let map: serde_json::Value = serde_json::from_str(&run(
        "qemu-img",
        &[
            "map",
            "--output=json",
            "--image-opts",
            &format!(
                "driver=nbd,export=vda,server.type=inet,server.host=127.0.0.1,server.port={port},x-dirty-bitmap=qemu:dirty-bitmap:backup-vda"
            ),
        ],
    ))
    .unwrap();
    let dirty: Vec<(u64, u64)> = map
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["data"] == false)
        .map(|e| (e["start"].as_u64().unwrap(), e["length"].as_u64().unwrap()))
        .collect();
    assert_eq!(dirty, vec![(2 << 20, 64 << 10)]);
    assert_eq!(v.ok(&["domjobabort", "cb"]), "\n");
    wait_done();
    assert!(!Path::new(&scratch).exists(), "the scratch image stayed");
    let info = v.ok(&["domjobinfo", "cb", "--completed"]);
    assert!(info.contains("Job type:         Completed"), "{info}");
    // The NBD server went with the job.
    assert!(std::net::TcpStream::connect(format!("127.0.0.1:{port}")).is_err());

    // A full pull backup on a unix socket.
    let sock = p("nbd.sock");
    let scratch2 = p("scratch2.qcow2");
    let unix_xml = file(
        "unix.xml",
        &format!(
            "<domainbackup mode='pull'><server transport='unix' socket='{sock}'/>\
             <disks><disk name='vda' type='file'><scratch file='{scratch2}'/></disk>\
             <disk name='vdb' backup='no'/></disks></domainbackup>"
        ),
    );
    assert_eq!(
        v.ok(&["backup-begin", "cb", &unix_xml]),
        "Backup started\n\n"
    );
    let pulled2 = p("pulled2.qcow2");
    run(
        "qemu-img",
        &[
            "convert",
            "-O",
            "qcow2",
            &format!("nbd+unix:///vda?socket={sock}"),
            &pulled2,
        ],
    );
    assert!(same(&pulled2, &disk));
    // A monitor that goes is replaced by one that adopts QEMU and follows the backup on.
    let st = domdriver::driver::status::GuestStatus::read("cb", &root.join("run/qemu/cb.json"))
        .unwrap()
        .unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(st.monitor_pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(v.ok(&["backup-dumpxml", "cb"]).contains(&scratch2));
    v.ok(&["domjobabort", "cb"]);
    wait_done();
    assert!(!Path::new(&scratch2).exists());

    // A full push backup into a raw image the caller made (--reuse-external keeps it).
    let rawt = p("target.raw");
    run("qemu-img", &["create", "-q", "-f", "raw", &rawt, "16M"]);
    let reuse_xml = file(
        "reuse.xml",
        &format!(
            "<domainbackup><disks><disk name='vda' type='file'><driver type='raw'/>\
             <target file='{rawt}'/></disk><disk name='vdb' backup='no'/></disks></domainbackup>"
        ),
    );
    v.ok(&["backup-begin", "cb", &reuse_xml, "--reuse-external"]);
    wait_done();
    assert!(same(&rawt, &disk));

    // checkpoint-edit through the editor: a new description; a new name is refused.
    let edit = |sed: &str| {
        let o = v
            .cmd(&["checkpoint-edit", "cb", "c2"])
            .env("EDITOR", format!("sed -i '{sed}'"))
            .output()
            .unwrap();
        (
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    assert_eq!(
        edit("s|<name>c2</name>|<name>c2</name><description>edited</description>|").0,
        "Checkpoint c2 edited.\n\n"
    );
    assert!(
        v.ok(&["checkpoint-dumpxml", "cb", "c2"])
            .contains("<description>edited</description>")
    );
    assert_eq!(
        edit("s|<name>c2</name>|<name>c9</name>|").1,
        "error: Failed to update c2\nerror: Cannot rename checkpoint c2 to c9\n"
    );
    assert_eq!(v.ok(&["checkpoint-list", "cb", "--name"]), "c1\nc2\n\n");

    // Deleting a checkpoint removes its bitmap; its child moves up.
    assert_eq!(
        v.ok(&["checkpoint-delete", "cb", "c1"]),
        "Domain checkpoint c1 deleted\n\n"
    );
    assert!(!bitmaps().contains(r#""name": "c1""#));
    assert!(bitmaps().contains(r#""name": "c2""#));
    assert_eq!(
        v.fails(&["checkpoint-parent", "cb", "c2"]),
        "error: checkpoint 'c2' has no parent\n"
    );
    let info = v.ok(&["checkpoint-info", "cb", "c2"]);
    assert_eq!(
        info,
        "Name:           c2\nDomain:         cb\nParent:         -\nChildren:       0\nDescendants:    0\n\n"
    );
    // A redefinition of a deleted checkpoint whose bitmap is gone.
    let c1_redef = file("c1r.xml", &c1);
    assert_eq!(
        v.fails(&[
            "checkpoint-create",
            "cb",
            &c1_redef,
            "--redefine",
            "--redefine-validate"
        ]),
        "error: checkpoint inconsistent: missing or broken bitmap 'c1' for disk 'vda'\n"
    );
    // Without validation, the metadata comes back (libvirt keeps what it is told).
    assert_eq!(
        v.ok(&["checkpoint-create", "cb", &c1_redef, "--redefine"]),
        format!("Domain checkpoint c1 created from '{c1_redef}'\n")
    );
    assert_eq!(v.ok(&["checkpoint-list", "cb", "--name"]), "c1\nc2\n\n");
    assert_eq!(
        v.ok(&["checkpoint-delete", "cb", "c1", "--metadata"]),
        "Domain checkpoint c1 deleted\n\n"
    );
    let own_parent = file(
        "loop.xml",
        "<domaincheckpoint><name>c2</name><parent><name>c2</name></parent><creationTime>1</creationTime></domaincheckpoint>",
    );
    assert_eq!(
        v.fails(&["checkpoint-create", "cb", &own_parent, "--redefine"]),
        "error: invalid argument: cannot set moment c2 as its own parent\n"
    );
    // An external snapshot carries c2's bitmap on into its overlay: an incremental backup
    // from c2 merges the chain's bitmaps (the write before and the one after).
    let ov = p("ov.qcow2");
    v.ok(&[
        "snapshot-create-as",
        "cb",
        "s1",
        "--disk-only",
        "--diskspec",
        &format!("vda,file={ov}"),
        "--diskspec",
        "vdb,snapshot=no",
    ]);
    v.ok(&[
        "qemu-monitor-command",
        "cb",
        "--hmp",
        "qemu-io -d /machine/peripheral/virtio-disk0/virtio-backend \"write -P 0x55 4M 64k\"",
    ]);
    let inc2 = p("inc2.qcow2");
    let inc2_xml = file(
        "inc2.xml",
        &format!(
            "<domainbackup><incremental>c2</incremental><disks><disk name='vda' type='file'>\
             <target file='{inc2}'/><driver type='raw'/></disk><disk name='vdb' backup='no'/>\
             </disks></domainbackup>"
        ),
    );
    v.ok(&["backup-begin", "cb", &inc2_xml]);
    wait_done();
    let info = v.ok(&["domjobinfo", "cb", "--completed"]);
    assert!(info.contains("File processed:   128.000 KiB"), "{info}");
    let x = v.ok(&["checkpoint-dumpxml", "cb", "c2", "--size", "--no-domain"]);
    assert!(x.contains("bitmap='c2' size='131072'/>"), "{x}");
    eprintln!("running guest part: {:?}", t0.elapsed());

    // A guest that goes during a backup fails it: its scratch image goes too.
    let scratch3 = p("scratch3.qcow2");
    let port = free_port().to_string();
    let last_xml = file(
        "last.xml",
        &format!(
            "<domainbackup mode='pull'><server name='127.0.0.1' port='{port}'/>\
             <disks><disk name='vda'><scratch file='{scratch3}'/></disk>\
             <disk name='vdb' backup='no'/></disks></domainbackup>"
        ),
    );
    v.ok(&["backup-begin", "cb", &last_xml]);
    assert!(Path::new(&scratch3).exists());

    // The metadata outlives the guest's monitor.
    v.ok(&["destroy", "cb"]);
    assert!(!Path::new(&scratch3).exists(), "the scratch image stayed");
    assert_eq!(v.ok(&["checkpoint-list", "cb", "--name"]), "c2\n\n");
    assert_eq!(
        v.fails(&["checkpoint-delete", "cb", "c2"]),
        "error: Failed to delete checkpoint c2\nerror: Operation not supported: cannot delete checkpoint for inactive domain\n"
    );
    assert_eq!(
        v.fails(&["undefine", "cb", "--snapshots-metadata"]),
        "error: Failed to undefine domain 'cb'\nerror: Requested operation is not valid: cannot delete inactive domain with 1 checkpoints\n"
    );
    v.ok(&["undefine", "cb", "--checkpoints-metadata"]);
    assert!(!root.join("lib/qemu/checkpoint/cb").exists());
}
