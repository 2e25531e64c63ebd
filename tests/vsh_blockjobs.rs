//! `blockpull`, `blockcommit`, `blockcopy`, `blockjob` on a real TCG guest (one for the
//! file) whose qcow2 chains are made with qemu-img in the test's directory: QEMU's
//! block-stream, block-commit and blockdev-mirror jobs, virsh's lines, the block job events,
//! the live XML's chain and `<mirror>`, the persistent config after a pivot, `domstats
//! --backing`, libvirt's errors.

#[path = "common/vshrun.rs"]
mod vshrun;

use std::path::Path;
use std::process::{Command, Stdio};

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

/// A qcow2 image, over `backing` when given.
fn image(dir: &Path, name: &str, backing: Option<&str>) -> String {
    let p = dir.join(name).display().to_string();
    match backing {
        Some(b) => run(
            "qemu-img",
            &["create", "-q", "-f", "qcow2", "-b", b, "-F", "qcow2", &p],
        ),
        None => run("qemu-img", &["create", "-q", "-f", "qcow2", &p, "16M"]),
    };
    p
}

/// The backing file qemu-img reads in `image`'s header ("" for none).
fn backing_of(image: &str) -> String {
    run("qemu-img", &["info", "-U", image])
        .lines()
        .find_map(|l| l.strip_prefix("backing file: "))
        .unwrap_or("")
        .to_string()
}

fn disk(file: &str, dev: &str) -> String {
    format!(
        "<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>\
         <source file='{file}'/><target dev='{dev}' bus='virtio'/></disk>"
    )
}

/// The `<disk>` element of target `dev` in a domain XML.
fn disk_xml(xml: &str, dev: &str) -> String {
    xml.split("<disk ")
        .skip(1)
        .map(|d| d.split("</disk>").next().unwrap())
        .find(|d| d.contains(&format!("<target dev='{dev}'")))
        .unwrap()
        .to_string()
}

#[test]
fn block_jobs_on_a_running_guest() {
    if !Path::new(QEMU).exists() {
        eprintln!("\n*** SKIPPED: {QEMU} is not installed ***\n");
        return;
    }
    let d = tempfile::Builder::new()
        .prefix("bjob")
        .tempdir_in("/tmp")
        .unwrap();
    let dir = d.path();
    let root = dir.join("r");
    let _reap = vshrun::Reaper(root.clone(), vec!["xb"]);
    let v = vshrun::Vsh::new(root.clone());
    // vda: top -> mid -> base; vdb: over -> under; vdc: slow (data to pull) -> fill.
    let base = image(dir, "base.qcow2", None);
    let mid = image(dir, "mid.qcow2", Some(&base));
    let top = image(dir, "top.qcow2", Some(&mid));
    let under = image(dir, "under.qcow2", None);
    let over = image(dir, "over.qcow2", Some(&under));
    let fill = image(dir, "fill.qcow2", None);
    run(
        "qemu-io",
        &["-f", "qcow2", "-c", "write -P 0x5a 0 12M", &fill],
    );
    let slow = image(dir, "slow.qcow2", Some(&fill));
    // vdd: the copies' source, a single image with data.
    let csrc = image(dir, "csrc.qcow2", None);
    run(
        "qemu-io",
        &["-f", "qcow2", "-c", "write -P 0x33 0 1M", &csrc],
    );
    let xml = format!(
        "<domain type='qemu'><name>xb</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>\
         <os><type arch='x86_64' machine='pc'>hvm</type></os><devices><emulator>{QEMU}</emulator>\
         {}{}{}{}<memballoon model='none'/></devices></domain>",
        disk(&top, "vda"),
        disk(&over, "vdb"),
        disk(&slow, "vdc"),
        disk(&csrc, "vdd"),
    );
    let xf = dir.join("xb.xml");
    std::fs::write(&xf, xml).unwrap();
    v.ok(&["define", xf.to_str().unwrap()]);

    let help = v.ok(&["blockcopy", "--help"]);
    for o in [
        "--dest",
        "--xml",
        "--shallow",
        "--reuse-external",
        "--pivot",
        "--finish",
    ] {
        assert!(help.contains(&format!("    {o} ")), "{o}: {help}");
    }
    assert!(v.ok(&["domstats", "--help"]).contains("    --backing "));

    // Not running yet.
    assert_eq!(
        v.fails(&["blockpull", "xb", "vda"]),
        "error: Requested operation is not valid: domain is not running\n"
    );
    // Every event of the guest, from before its start to the end of the test.
    let events = v
        .cmd(&["event", "xb", "--all", "--loop"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _stop_events = KillOnDrop(events.id());
    std::thread::sleep(std::time::Duration::from_millis(500));
    v.ok(&["start", "xb"]);

    // libvirt's refusals.
    assert_eq!(
        v.fails(&["blockpull", "xb", "vdz"]),
        "error: invalid argument: disk 'vdz' not found in domain\n"
    );
    assert_eq!(
        v.fails(&["blockpull", "xb", "vda", "--verbose"]),
        "error: Option --wait is required by option --verbose\n"
    );
    assert_eq!(
        v.fails(&["blockcommit", "xb", "vda", "--verbose"]),
        "error: --verbose requires at least one of --timeout, --wait, --pivot, or --keep-overlay\n"
    );
    assert_eq!(
        v.fails(&["blockcommit", "xb", "vda"]),
        "error: invalid argument: commit of 'vda' active layer requires active flag\n"
    );
    assert_eq!(
        v.fails(&["blockcommit", "xb", "vda", "--top", &mid, "--active"]),
        format!("error: invalid argument: active commit requested but '{mid}' is not active\n")
    );
    assert_eq!(
        v.fails(&["blockcommit", "xb", "vda", "--top", &mid, "--base", &top]),
        format!(
            "error: invalid argument: could not find image '{top}' beneath '{mid}' in chain for '{top}'\n"
        )
    );
    assert_eq!(
        v.fails(&["blockpull", "xb", "vda", "--base", "/nope"]),
        format!("error: invalid argument: could not find image '/nope' in chain for '{top}'\n")
    );
    assert_eq!(
        v.fails(&["blockcommit", "xb", "vda", "--pivot", "--keep-overlay"]),
        "error: Options --pivot and --keep-overlay are mutually exclusive\n"
    );
    assert_eq!(
        v.ok(&["blockjob", "xb", "vda", "--info"]),
        "No current block job for vda\n"
    );
    assert_eq!(
        v.fails(&["blockjob", "xb", "vda", "--abort"]),
        "error: invalid argument: disk vda does not have an active block job\n"
    );

    // Commit of a middle layer: the chain loses it.
    let (ok, out, err) = v.run(&[
        "blockcommit",
        "xb",
        "vda",
        "--top",
        &mid,
        "--wait",
        "--verbose",
        "--timeout",
        "300",
    ]);
    assert!(ok, "{err}");
    assert_eq!(out, "\nCommit complete\n");
    assert!(err.ends_with("\rBlock commit: [100 %]"), "{err:?}");
    assert_eq!(backing_of(&top), base);
    let live = disk_xml(&v.ok(&["dumpxml", "xb"]), "vda");
    assert!(live.contains(&format!("<source file='{base}'")), "{live}");
    assert!(!live.contains(&mid), "{live}");

    // Pull: the image stands alone, the live XML says the chain ends.
    assert_eq!(
        v.ok(&["blockpull", "xb", "vda", "--wait", "--timeout", "300"]),
        "\nPull complete\n"
    );
    assert_eq!(backing_of(&top), "");
    let live = disk_xml(&v.ok(&["dumpxml", "xb"]), "vda");
    assert!(live.contains(&format!("<source file='{top}'")), "{live}");
    assert!(live.contains("<backingStore/>"), "{live}");
    assert_eq!(
        v.fails(&["blockcommit", "xb", "vda", "--active"]),
        format!("error: invalid argument: top '{top}' in chain for '{top}' has no backing file\n")
    );

    // Active commit with pivot: the disk now reads the base.
    let (ok, out, err) = v.run(&[
        "blockcommit",
        "xb",
        "vdb",
        "--pivot",
        "--verbose",
        "--timeout",
        "300",
    ]);
    assert!(ok, "{err}");
    assert_eq!(out, "\nSuccessfully pivoted\n");
    assert!(err.contains("Block commit: [100 %]"), "{err:?}");
    let live = disk_xml(&v.ok(&["dumpxml", "xb"]), "vdb");
    assert!(live.contains(&format!("<source file='{under}'")), "{live}");
    assert!(!live.contains(&over), "{live}");
    // The config follows an active commit's pivot (libvirt:
    // qemuBlockJobRewriteConfigDiskSource).
    let config = disk_xml(&v.ok(&["dumpxml", "xb", "--inactive"]), "vdb");
    assert!(
        config.contains(&format!("<source file='{under}'")),
        "{config}"
    );

    // A slow pull (1 MiB/s over 12 MiB): its progress, a second job refused, no pivot for
    // a pull, its abort.
    assert_eq!(
        v.ok(&["blockpull", "xb", "vdc", "--bandwidth", "1"]),
        "Block Pull started\n"
    );
    let (ok, out, err) = v.run(&["blockjob", "xb", "vdc"]);
    assert!(ok, "{err}");
    assert!(err.starts_with("\rBlock Pull: ["), "{err:?}");
    assert_eq!(
        out,
        "    Bandwidth limit: 1048576 bytes/s (1.000 MiB/s)\n\n"
    );
    let raw = v.ok(&["blockjob", "xb", "vdc", "--raw"]);
    assert!(
        raw.starts_with(" type=Block Pull\n bandwidth=1\n cur="),
        "{raw}"
    );
    assert_eq!(
        v.fails(&["blockcommit", "xb", "vdc", "--active"]),
        "error: block copy still active: disk 'vdc' already in active block job\n"
    );
    assert_eq!(
        v.fails(&["blockjob", "xb", "vdc", "--pivot"]),
        "error: Requested operation is not valid: job type 'pull' does not support pivot\n"
    );
    v.ok(&["blockjob", "xb", "vdc", "--bandwidth", "2"]);
    assert!(
        v.ok(&["blockjob", "xb", "vdc", "--raw"])
            .contains(" bandwidth=2\n")
    );
    assert_eq!(v.ok(&["blockjob", "xb", "vdc", "--abort"]), "\n");
    assert_eq!(
        v.ok(&["blockjob", "xb", "vdc", "--info"]),
        "No current block job for vdc\n"
    );
    assert_eq!(backing_of(&slow), fill);

    // Active commit that keeps the overlay: the chain stays as it was.
    assert_eq!(
        v.ok(&[
            "blockcommit",
            "xb",
            "vdc",
            "--keep-overlay",
            "--timeout",
            "300"
        ]),
        "\nCommit complete, overlay image kept\n"
    );
    let live = disk_xml(&v.ok(&["dumpxml", "xb"]), "vdc");
    assert!(live.contains(&format!("<source file='{slow}'")), "{live}");
    assert!(live.contains(&format!("<source file='{fill}'")), "{live}");
    assert_eq!(
        v.ok(&["blockjob", "xb", "vdc", "--info"]),
        "No current block job for vdc\n"
    );

    // domstats --backing: a record per image of vdc's chain.
    let st = v.ok(&["domstats", "xb", "--block", "--backing"]);
    assert!(st.contains("  block.count=5\n"), "{st}");
    assert!(
        st.contains(&format!(
            "  block.3.name=vdc\n  block.3.path={fill}\n  block.3.backingIndex=1\n"
        )),
        "{st}"
    );
    let plain = v.ok(&["domstats", "xb", "--block"]);
    assert!(plain.contains("  block.count=4\n"), "{plain}");
    assert!(!plain.contains("backingIndex"), "{plain}");

    blockcopy_cases(&v, dir, &csrc, &slow, &fill);

    v.ok(&["destroy", "xb"]);
    drop(_stop_events);
    let out = events.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for line in [
        format!("event 'block-job' for domain 'xb': Block Commit for {top} completed"),
        "event 'block-job-2' for domain 'xb': Block Commit for vda completed".into(),
        "event 'block-job-2' for domain 'xb': Block Pull for vda completed".into(),
        "event 'block-job-2' for domain 'xb': Active Block Commit for vdb ready".into(),
        format!("event 'block-job' for domain 'xb': Active Block Commit for {under} completed"),
        "event 'block-job-2' for domain 'xb': Block Pull for vdc canceled".into(),
        "event 'block-job-2' for domain 'xb': Active Block Commit for vdc canceled".into(),
        "event 'block-job-2' for domain 'xb': Block Copy for vdd ready".into(),
        "event 'block-job-2' for domain 'xb': Block Copy for vdd completed".into(),
        "event 'block-job-2' for domain 'xb': Block Copy for vdc canceled".into(),
    ] {
        assert!(
            text.contains(&format!("{line}\n")),
            "no '{line}' in:\n{text}"
        );
    }
}

/// Ends `vsh event` with Ctrl-C (its own way out), even when the test fails.
struct KillOnDrop(u32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.0 as i32),
            nix::sys::signal::Signal::SIGINT,
        );
    }
}

/// `blockcopy` on vdd (one image) and vdc (`slow` over `fill`), the guest persistent.
fn blockcopy_cases(v: &vshrun::Vsh, dir: &Path, csrc: &str, slow: &str, fill: &str) {
    let copy1 = dir.join("copy1.qcow2").display().to_string();
    let copy1s = copy1.as_str();
    // virsh's and libvirt's refusals.
    assert_eq!(
        v.fails(&["blockcopy", "xb", "vdd"]),
        "error: need either --dest or --xml\n"
    );
    assert_eq!(
        v.fails(&["blockcopy", "xb", "vdd", copy1s, "--xml", "/x.xml"]),
        "error: Options --dest and --xml are mutually exclusive\n"
    );
    assert_eq!(
        v.fails(&["blockcopy", "xb", "vdd", copy1s, "--verbose"]),
        "error: --verbose requires at least one of --timeout, --wait, --pivot, or --finish\n"
    );
    assert_eq!(
        v.fails(&["blockcopy", "xb", "vdd", copy1s]),
        "error: Requested operation is not valid: domain is not transient\n"
    );
    assert_eq!(
        v.fails(&["blockcopy", "xb", "vdd", "rel.qcow2", "--transient-job"]),
        "error: invalid argument: absolute path must be used as block copy target\n"
    );
    assert_eq!(
        v.fails(&[
            "blockcopy",
            "xb",
            "vdd",
            copy1s,
            "--transient-job",
            "--granularity",
            "3"
        ]),
        "error: invalid argument: granularity must be power of 2\n"
    );
    assert_eq!(
        v.fails(&[
            "blockcopy",
            "xb",
            "vdd",
            copy1s,
            "--transient-job",
            "--reuse-external"
        ]),
        format!(
            "error: missing destination file for disk vdd: {copy1}: No such file or directory\n"
        )
    );
    assert_eq!(
        v.fails(&["blockcopy", "xb", "vdd", fill, "--transient-job"]),
        format!(
            "error: unsupported configuration: external destination file for disk vdd already exists and is not a block device: {fill}\n"
        )
    );
    assert_eq!(
        v.ok(&["blockcopy", "xb", "vdd", copy1s, "--raw", "--print-xml"]),
        format!(
            "<disk type='file'>\n  <source file='{copy1}'/>\n  <driver type='raw'/>\n</disk>\n\n"
        )
    );
    assert!(!Path::new(copy1s).exists());

    // A deep copy: mirroring, shown in the live XML, then pivoted by blockjob; the config
    // follows the pivot.
    let (ok, out, err) = v.run(&[
        "blockcopy",
        "xb",
        "vdd",
        "--dest",
        copy1s,
        "--transient-job",
        "--wait",
        "--verbose",
        "--timeout",
        "300",
    ]);
    assert!(ok, "{err}");
    assert_eq!(out, "\nNow in mirroring phase\n");
    assert!(err.ends_with("\rBlock Copy: [100 %]"), "{err:?}");
    let live = disk_xml(&v.ok(&["dumpxml", "xb"]), "vdd");
    assert!(
        live.contains(&format!(
            "<mirror type='file' file='{copy1}' format='qcow2' job='copy' ready='yes'>"
        )),
        "{live}"
    );
    assert_eq!(
        v.fails(&[
            "blockcopy",
            "xb",
            "vdd",
            "--dest",
            "/tmp/other.qcow2",
            "--transient-job"
        ]),
        "error: block copy still active: disk 'vdd' already in active block job\n"
    );
    v.ok(&["blockjob", "xb", "vdd", "--pivot"]);
    let live = disk_xml(&v.ok(&["dumpxml", "xb"]), "vdd");
    assert!(live.contains(&format!("<source file='{copy1}'")), "{live}");
    assert!(!live.contains("<mirror"), "{live}");
    let config = disk_xml(&v.ok(&["dumpxml", "xb", "--inactive"]), "vdd");
    assert!(
        config.contains(&format!("<source file='{copy1}'")),
        "{config}"
    );
    assert!(!config.contains(csrc), "{config}");
    assert_eq!(backing_of(copy1s), "");
    let data = run(
        "qemu-io",
        &["-r", "-U", "-f", "qcow2", "-c", "read -P 0x33 0 1M", copy1s],
    );
    assert!(data.contains("read 1048576/1048576 bytes"), "{data}");

    // --finish: a point-in-time copy, the disk stays on its image.
    let copy2 = dir.join("copy2.raw").display().to_string();
    assert_eq!(
        v.ok(&[
            "blockcopy",
            "xb",
            "vdd",
            &copy2,
            "--format",
            "raw",
            "--transient-job",
            "--finish",
            "--timeout",
            "300",
        ]),
        "\nSuccessfully copied\n"
    );
    let live = disk_xml(&v.ok(&["dumpxml", "xb"]), "vdd");
    assert!(live.contains(&format!("<source file='{copy1}'")), "{live}");
    assert!(!live.contains("<mirror"), "{live}");
    assert_eq!(std::fs::metadata(&copy2).unwrap().len(), 16 << 20);

    // A target described in XML, pre-created and reused: its format is probed.
    let copy5 = image(dir, "copy5.qcow2", None);
    let xf = dir.join("copy5.xml");
    std::fs::write(
        &xf,
        format!("<disk type='file'><source file='{copy5}'/></disk>"),
    )
    .unwrap();
    let xfs = xf.to_str().unwrap();
    assert_eq!(
        v.ok(&[
            "blockcopy",
            "xb",
            "vdd",
            "--xml",
            xfs,
            "--reuse-external",
            "--transient-job",
            "--finish",
            "--timeout",
            "300",
        ]),
        "\nSuccessfully copied\n"
    );
    let data = run(
        "qemu-io",
        &["-r", "-U", "-f", "qcow2", "-c", "read -P 0x33 0 1M", &copy5],
    );
    assert!(data.contains("read 1048576/1048576 bytes"), "{data}");
    assert_eq!(
        v.fails(&[
            "blockcopy",
            "xb",
            "vdd",
            "--xml",
            "/nonexistent.xml",
            "--transient-job"
        ]),
        "error: Failed to open file '/nonexistent.xml': No such file or directory\n"
    );
    // QEMU refuses the job: what was made for it goes.
    let copy4 = dir.join("copy4.qcow2").display().to_string();
    let err = v.fails(&[
        "blockcopy",
        "xb",
        "vdd",
        &copy4,
        "--transient-job",
        "--granularity",
        "256",
    ]);
    assert!(
        err.starts_with(
            "error: internal error: unable to execute QEMU command 'blockdev-mirror': "
        ),
        "{err}"
    );
    assert!(!Path::new(&copy4).exists());
    let live = disk_xml(&v.ok(&["dumpxml", "xb"]), "vdd");
    assert!(!live.contains("<mirror"), "{live}");

    // A slow copy (1 MiB/s over 12 MiB), aborted: the disk keeps its image, the mirror goes.
    let copy3 = dir.join("copy3.qcow2").display().to_string();
    assert_eq!(
        v.ok(&["blockcopy", "xb", "vdc", &copy3, "1", "--transient-job"]),
        "Block Copy started\n"
    );
    let live = disk_xml(&v.ok(&["dumpxml", "xb"]), "vdc");
    assert!(
        live.contains(&format!(
            "<mirror type='file' file='{copy3}' format='qcow2' job='copy'>"
        )),
        "{live}"
    );
    assert_eq!(
        v.fails(&["blockjob", "xb", "vdc", "--pivot"]),
        "error: block copy still active: block job 'copy-vdc' not ready for pivot yet\n"
    );
    let raw = v.ok(&["blockjob", "xb", "vdc", "--raw"]);
    assert!(raw.starts_with(" type=Block Copy\n bandwidth=1\n"), "{raw}");
    // domstats --backing: vdc's chain, then its copy's target.
    let st = v.ok(&["domstats", "xb", "--block", "--backing"]);
    assert!(st.contains("  block.count=6\n"), "{st}");
    assert!(
        st.contains(&format!("  block.4.name=vdc\n  block.4.path={copy3}\n")),
        "{st}"
    );
    v.ok(&["blockjob", "xb", "vdc", "--abort"]);
    let live = disk_xml(&v.ok(&["dumpxml", "xb"]), "vdc");
    assert!(live.contains(&format!("<source file='{slow}'")), "{live}");
    assert!(!live.contains("<mirror"), "{live}");

    // A shallow copy pivoted by blockcopy itself: the copy shares vdc's backing image.
    let scopy = dir.join("scopy.qcow2").display().to_string();
    assert_eq!(
        v.ok(&[
            "blockcopy",
            "xb",
            "vdc",
            &scopy,
            "--shallow",
            "--transient-job",
            "--pivot",
            "--timeout",
            "300",
        ]),
        "\nSuccessfully pivoted\n"
    );
    assert_eq!(backing_of(&scopy), fill);
    let live = disk_xml(&v.ok(&["dumpxml", "xb"]), "vdc");
    assert!(live.contains(&format!("<source file='{scopy}'")), "{live}");
    assert!(live.contains(&format!("<source file='{fill}'")), "{live}");
    let config = disk_xml(&v.ok(&["dumpxml", "xb", "--inactive"]), "vdc");
    assert!(
        config.contains(&format!("<source file='{scopy}'")),
        "{config}"
    );
}
