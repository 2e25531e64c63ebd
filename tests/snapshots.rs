//! Snapshots: the `domainsnapshot` XML model over libvirt's xml2xml data, and internal and
//! external snapshots of real TCG guests through the library and `vsh` (create, list,
//! revert, delete, metadata that outlives `vsh`), with the refusals libvirt makes.

#[path = "common/bootkit.rs"]
mod bootkit;
mod common;
#[path = "common/vshrun.rs"]
mod vshrun;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use domdriver::Connect;
use domdriver::domain::snapshot::{ParseFlags, parse};
use domdriver::driver::status::GuestStatus;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const QEMU: &str = "/usr/bin/qemu-system-x86_64";

fn vsh(uri: &str, args: &[&str]) -> (bool, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_vsh"))
        .env_remove("VSH_DEFAULT_URI")
        .env("TZ", "UTC")
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

/// `vsh ARGS` must succeed; its stdout.
fn ok(uri: &str, args: &[&str]) -> String {
    let (ok, out, err) = vsh(uri, args);
    assert!(ok, "vsh {args:?}: {err}");
    out
}

/// `vsh ARGS` must fail; its stderr.
fn fails(uri: &str, args: &[&str]) -> String {
    let (ok, out, err) = vsh(uri, args);
    assert!(!ok, "vsh {args:?} succeeded: {out}");
    err
}

fn qemu_img(args: &[&str]) -> String {
    let o = Command::new("qemu-img").args(args).output().unwrap();
    assert!(
        o.status.success(),
        "qemu-img {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The internal snapshot tags of a qcow2 image.
fn tags(image: &Path) -> Vec<String> {
    let out = qemu_img(&["snapshot", "-l", image.to_str().unwrap()]);
    out.lines()
        .skip(2)
        .filter_map(|l| l.split_whitespace().nth(1).map(String::from))
        .collect()
}

/// A shut-off domain on one disk of `format` (no OS: the offline cases never start it).
fn disk_domain(dir: &Path, name: &str, format: &str) -> String {
    let img = dir.join(format!("{name}.{format}"));
    qemu_img(&["create", "-q", "-f", format, img.to_str().unwrap(), "16M"]);
    let xml = dir.join(format!("{name}.xml"));
    std::fs::write(
        &xml,
        format!(
            "<domain type='qemu'><name>{name}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
<os><type arch='x86_64' machine='pc'>hvm</type></os>
<devices><emulator>{QEMU}</emulator>
<disk type='file' device='disk'><driver name='qemu' type='{format}'/><source file='{}'/><target dev='vda' bus='virtio'/></disk>
<memballoon model='none'/></devices></domain>",
            img.display()
        ),
    )
    .unwrap();
    xml.display().to_string()
}

/// `qemu-io -c CMD` on the qcow2 image `img`; its stdout.
fn io_at(img: &Path, cmd: &str) -> String {
    let o = Command::new("qemu-io")
        .args(["-f", "qcow2", "-c", cmd, img.to_str().unwrap()])
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The first disk's `<source file>` in a domain XML.
fn source_file(xml: &str) -> String {
    let a = xml.find("<source file='").unwrap() + "<source file='".len();
    let b = xml[a..].find('\'').unwrap() + a;
    xml[a..b].to_string()
}

/// `<creationTime>` of a formatted snapshot, if any.
fn creation_time(xml: &str) -> Option<i64> {
    let a = xml.find("<creationTime>")? + "<creationTime>".len();
    let b = xml[a..].find('<')? + a;
    xml[a..b].parse().ok()
}

/// libvirt's test fills in what the test harness (not the parser) adds: a fixed creation
/// time, the state of a running test domain and a domain holding only the test's UUID.
/// Those lines are left out of an in->out comparison.
fn harness_lines_dropped(xml: &str) -> String {
    let mut out = Vec::new();
    let lines: Vec<&str> = xml.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let l = lines[i].trim();
        if l == "<domain>"
            && lines.get(i + 2).map(|s| s.trim()) == Some("</domain>")
            && lines[i + 1].trim().starts_with("<uuid>")
        {
            i += 3;
            continue;
        }
        if !(l.starts_with("<creationTime>") || l.starts_with("<state>")) {
            out.push(lines[i]);
        }
        i += 1;
    }
    out.join("\n")
}

#[test]
fn libvirt_snapshot_xml2xml_corpus() {
    let base = common::testdata().join("tests");
    let ind = base.join("qemudomainsnapshotxml2xmlin");
    let outd = base.join("qemudomainsnapshotxml2xmlout");
    let mut names: Vec<_> = std::fs::read_dir(&outd)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".xml"))
        .collect();
    names.sort();
    let (mut redefine_same, mut redefine_total, mut inout_same, mut inout_total) = (0, 0, 0, 0);
    let mut differ = Vec::new();
    for n in &names {
        let expected = std::fs::read_to_string(outd.join(n)).unwrap();
        // An output with a state is a valid input of a redefine (libvirt requires state and
        // creation time there): parse and format must give it back.
        let redefinable = expected.contains("<state>");
        if redefinable {
            redefine_total += 1;
        }
        let flags = ParseFlags {
            redefine: true,
            internal: true,
            now: 0,
        };
        match parse(&expected, flags) {
            _ if !redefinable => {}
            Ok(d) if d.to_xml(true) == expected => redefine_same += 1,
            Ok(d) => differ.push(format!("redefine {n}:\n{}", d.to_xml(true))),
            Err(e) => differ.push(format!("redefine {n}: {e}")),
        }
        let inp = ind.join(n);
        if inp.exists() {
            inout_total += 1;
            let input = std::fs::read_to_string(&inp).unwrap();
            let now = creation_time(&expected).unwrap_or(0);
            match parse(
                &input,
                ParseFlags {
                    now,
                    ..Default::default()
                },
            ) {
                Ok(d)
                    if harness_lines_dropped(&d.to_xml(false))
                        == harness_lines_dropped(&expected) =>
                {
                    inout_same += 1
                }
                Ok(d) => differ.push(format!("in->out {n}:\n{}", d.to_xml(false))),
                Err(e) => differ.push(format!("in->out {n}: {e}")),
            }
        }
    }
    eprintln!(
        "snapshot xml2xml ({} expected outputs): {redefine_same}/{redefine_total} redefines round-trip identical; {inout_same}/{inout_total} inputs give libvirt's output",
        names.len()
    );
    for d in &differ {
        eprintln!("{d}");
    }
    // Inputs libvirt refuses.
    let input = std::fs::read_to_string(ind.join("disk-invalid.xml")).unwrap();
    assert!(parse(&input, ParseFlags::default()).is_err());
    assert_eq!(redefine_same, redefine_total, "{differ:#?}");
    assert_eq!(inout_same, inout_total, "{differ:#?}");
}

/// A snapshot-list table row: name, creation time (UTC here), state, optional parent.
fn rows(table: &str) -> Vec<Vec<String>> {
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines[0].split_whitespace().next(), Some("Name"), "{table}");
    assert!(lines[1].chars().all(|c| c == '-'), "{table}");
    let re =
        regex::Regex::new(r"^ (\S+) +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \+0000 +(\S+)(?: +(\S+))? *$")
            .unwrap();
    lines[2..]
        .iter()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let c = re
                .captures(l)
                .unwrap_or_else(|| panic!("row {l:?} in\n{table}"));
            c.iter()
                .skip(1)
                .flatten()
                .map(|m| m.as_str().to_string())
                .collect()
        })
        .collect()
}

#[test]
fn offline_snapshots_listing_and_refusals() {
    let d = tempfile::Builder::new()
        .prefix("snoff")
        .tempdir_in("/tmp")
        .unwrap();
    let uri = format!("qemu:///embed?root={}", d.path().join("r").display());
    let xml = disk_domain(d.path(), "off", "qcow2");
    let img = d.path().join("off.qcow2");
    ok(&uri, &["define", &xml]);
    let io = |cmd: &str| io_at(&img, cmd);
    io("write -P 0x11 0 64k");

    // Internal snapshots of a shut-off guest: qemu-img's tags, a chain of parents.
    assert_eq!(
        ok(&uri, &["snapshot-create-as", "off", "s1", "the first"]),
        "Domain snapshot s1 created\n"
    );
    io("write -P 0x22 0 64k");
    ok(&uri, &["snapshot-create-as", "off", "--name", "s2"]);
    ok(&uri, &["snapshot-create-as", "off", "s3"]);
    assert_eq!(tags(&img), ["s1", "s2", "s3"]);
    let meta = d.path().join("r/lib/qemu/snapshot/off");
    let meta = if meta.is_dir() {
        meta
    } else {
        // Wherever the connection's lib dir is.
        walk_find(d.path(), "s1.xml")
            .unwrap()
            .parent()
            .unwrap()
            .to_path_buf()
    };
    for n in ["s1", "s2", "s3"] {
        let m = std::fs::metadata(meta.join(format!("{n}.xml"))).unwrap();
        assert_eq!(m.permissions().mode() & 0o777, 0o600);
    }
    let t = ok(&uri, &["snapshot-list", "off"]);
    assert_eq!(
        rows(&t),
        [["s1", "shutoff"], ["s2", "shutoff"], ["s3", "shutoff"]]
    );
    let t = ok(&uri, &["snapshot-list", "off", "--parent"]);
    assert_eq!(
        rows(&t),
        [
            vec!["s1", "shutoff"],
            vec!["s2", "shutoff", "s1"],
            vec!["s3", "shutoff", "s2"]
        ]
    );
    assert_eq!(
        ok(&uri, &["snapshot-list", "off", "--tree"]),
        "s1\n  |\n  +- s2\n      |\n      +- s3\n        \n\n"
    );
    assert_eq!(
        ok(&uri, &["snapshot-list", "off", "--name", "--leaves"]),
        "s3\n\n"
    );
    assert_eq!(
        ok(&uri, &["snapshot-list", "off", "--name", "--roots"]),
        "s1\n\n"
    );
    assert_eq!(
        ok(
            &uri,
            &[
                "snapshot-list",
                "off",
                "--name",
                "--from",
                "s1",
                "--descendants"
            ]
        ),
        "s2\ns3\n\n"
    );
    assert_eq!(ok(&uri, &["snapshot-current", "off", "--name"]), "s3\n");
    assert_eq!(
        ok(&uri, &["snapshot-current", "off", "s2"]),
        "Snapshot s2 set as current\n"
    );
    assert_eq!(ok(&uri, &["snapshot-current", "off", "--name"]), "s2\n");
    ok(&uri, &["snapshot-current", "off", "s3"]);
    assert_eq!(
        ok(&uri, &["snapshot-list", "off", "--current", "--name"]),
        "\n"
    );
    assert_eq!(ok(&uri, &["snapshot-parent", "off", "s2"]), "s1\n");
    assert_eq!(
        fails(&uri, &["snapshot-parent", "off", "s1"]),
        "error: snapshot 's1' has no parent\n"
    );
    assert_eq!(
        ok(&uri, &["snapshot-info", "off", "s2"]),
        "Name:           s2\nDomain:         off\nCurrent:        no\nState:          shutoff\n\
         Location:       internal\nParent:         s1\nChildren:       1\nDescendants:    1\n\
         Metadata:       yes\n\n"
    );
    let x = ok(&uri, &["snapshot-dumpxml", "off", "s1"]);
    assert!(x.contains("<description>the first</description>"), "{x}");
    assert!(x.contains("<disk name='vda' snapshot='internal'/>"), "{x}");
    assert!(x.contains("<name>off</name>"), "{x}");
    assert!(!x.contains("<active>"), "{x}");

    // Revert brings the disk's data back.
    ok(&uri, &["snapshot-revert", "off", "s1"]);
    assert!(io("read -P 0x11 0 64k").contains("read 65536/65536"));
    assert_eq!(ok(&uri, &["snapshot-current", "off", "--name"]), "s1\n");

    // Metadata is only files: a new connection (as any new vsh) sees the same.
    let conn = Connect::open(Some(&uri)).unwrap();
    let dom = conn.lookup_domain_by_name("off").unwrap();
    assert_eq!(dom.snapshot_num(0).unwrap(), 3);
    assert_eq!(dom.snapshot_current(0).unwrap().name(), "s1");
    let s2 = dom.snapshot_lookup_by_name("s2", 0).unwrap();
    assert_eq!(s2.parent().unwrap().name(), "s1");
    assert_eq!(s2.num_children(0).unwrap(), 1);
    assert!(!s2.is_current(0).unwrap());

    // Refusals.
    assert_eq!(
        fails(&uri, &["snapshot-create-as", "off", "s1"]),
        "error: operation failed: domain moment s1 already exists\n"
    );
    assert_eq!(
        fails(&uri, &["snapshot-info", "off", "nosuch"]),
        "error: Domain snapshot not found: no domain snapshot with matching name 'nosuch'\n"
    );
    assert_eq!(
        fails(&uri, &["snapshot-revert", "off", "nosuch"]),
        "error: Domain snapshot not found: no domain snapshot with matching name 'nosuch'\n"
    );
    assert_eq!(
        fails(&uri, &["snapshot-info", "off"]),
        "error: --snapshotname or --current is required\n"
    );
    assert_eq!(
        fails(&uri, &["undefine", "off"]),
        "error: Failed to undefine domain 'off'\n\
         error: Requested operation is not valid: cannot delete inactive domain with 3 snapshots\n"
    );
    // A corrupt file is skipped, as libvirt skips it when it loads the metadata.
    std::fs::write(meta.join("bad.xml"), "<domainsnapshot><name>bad</name>").unwrap();
    assert_eq!(
        ok(&uri, &["snapshot-list", "off", "--name"]),
        "s1\ns2\ns3\n\n"
    );
    assert_eq!(
        fails(&uri, &["snapshot-dumpxml", "off", "bad"]),
        "error: Domain snapshot not found: no domain snapshot with matching name 'bad'\n"
    );
    std::fs::remove_file(meta.join("bad.xml")).unwrap();

    // Deleting a snapshot with children moves them to its parent (libvirt's rule);
    // --children-only and --children take the subtree.
    assert_eq!(
        ok(&uri, &["snapshot-delete", "off", "s2"]),
        "Domain snapshot s2 deleted\n\n"
    );
    assert_eq!(ok(&uri, &["snapshot-parent", "off", "s3"]), "s1\n");
    assert_eq!(tags(&img), ["s1", "s3"]);
    assert_eq!(
        ok(&uri, &["snapshot-delete", "off", "s1", "--children-only"]),
        "Domain snapshot s1 children deleted\n\n"
    );
    assert_eq!(tags(&img), ["s1"]);
    ok(&uri, &["snapshot-create-as", "off", "s4"]);
    // --redefine puts metadata back from the XML; --current makes it current again.
    let f = d.path().join("s4.xml");
    std::fs::write(&f, ok(&uri, &["snapshot-dumpxml", "off", "s4"])).unwrap();
    ok(&uri, &["snapshot-delete", "off", "s4", "--metadata"]);
    assert_eq!(ok(&uri, &["snapshot-current", "off", "--name"]), "s1\n");
    let fs = f.to_str().unwrap();
    assert_eq!(
        ok(
            &uri,
            &["snapshot-create", "off", fs, "--redefine", "--current"]
        ),
        format!("Domain snapshot s4 created from '{fs}'\n")
    );
    assert_eq!(ok(&uri, &["snapshot-current", "off", "--name"]), "s4\n");
    assert_eq!(ok(&uri, &["snapshot-parent", "off", "s4"]), "s1\n");
    // snapshot-edit through the editor.
    let o = Command::new(env!("CARGO_BIN_EXE_vsh"))
        .env(
            "EDITOR",
            "sed -i 's|<name>s4</name>|<name>s4</name><description>edited</description>|'",
        )
        .args(["-c", &uri, "snapshot-edit", "off", "s4"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "Snapshot s4 edited.\n\n"
    );
    assert!(
        ok(&uri, &["snapshot-dumpxml", "off", "s4"]).contains("<description>edited</description>")
    );
    ok(&uri, &["snapshot-delete", "off", "--current", "--metadata"]);
    assert_eq!(tags(&img), ["s1", "s4"]);
    ok(&uri, &["snapshot-delete", "off", "s1", "--children"]);
    assert_eq!(tags(&img), ["s4"]);
    assert_eq!(ok(&uri, &["snapshot-list", "off", "--name"]), "\n");

    io("write -P 0x33 0 64k");
    ok(&uri, &["snapshot-create-as", "off", "pre"]);
    // Disk-only external snapshot of a shut-off guest: a new overlay, the config on it.
    let out = ok(&uri, &["snapshot-create-as", "off", "ext", "--disk-only"]);
    assert_eq!(out, "Domain snapshot ext created\n");
    let overlay = d.path().join("off.ext");
    let info = qemu_img(&["info", "-U", overlay.to_str().unwrap()]);
    assert!(
        info.contains(&format!("backing file: {}", img.display())),
        "{info}"
    );
    let dom_xml = ok(&uri, &["dumpxml", "off", "--inactive"]);
    assert!(
        dom_xml.contains(&format!("<source file='{}'/>", overlay.display())),
        "{dom_xml}"
    );
    assert!(dom_xml.contains("<backingStore type='file'>"), "{dom_xml}");
    // Reverting to it (libvirt 9.9+): the disk it was taken on gets a new overlay, named
    // after the time, and the overlay the guest ran on since goes.
    io_at(&overlay, "write -P 0x44 0 64k");
    assert_eq!(ok(&uri, &["snapshot-revert", "off", "ext"]), "\n");
    assert!(!overlay.exists());
    let dom_xml = ok(&uri, &["dumpxml", "off", "--inactive"]);
    let fresh = source_file(&dom_xml);
    assert!(
        fresh.starts_with(&format!("{}/off.", d.path().display())),
        "{dom_xml}"
    );
    let info = qemu_img(&["info", "-U", &fresh]);
    assert!(
        info.contains(&format!("backing file: {}", img.display())),
        "{info}"
    );
    assert!(io_at(Path::new(&fresh), "read -P 0x33 0 64k").contains("read 65536/65536"));
    let overlay = Path::new(&fresh).to_path_buf();
    assert_eq!(
        fails(&uri, &["snapshot-delete", "off", "ext"]),
        "error: Failed to delete snapshot ext\n\
         error: unsupported configuration: deletion of 1 external disk snapshots not supported yet\n"
    );
    // Reverting to a snapshot from before the overlay puts the config back on the base
    // image, as libvirt restores the snapshot's definition.
    ok(&uri, &["snapshot-revert", "off", "pre"]);
    let dom_xml = ok(&uri, &["dumpxml", "off", "--inactive"]);
    assert!(
        dom_xml.contains(&format!("<source file='{}'/>", img.display())),
        "{dom_xml}"
    );
    assert!(!dom_xml.contains("<backingStore"), "{dom_xml}");
    assert!(io("read -P 0x33 0 64k").contains("read 65536/65536"));
    let x = ok(&uri, &["snapshot-dumpxml", "off", "ext"]);
    assert!(x.contains("<state>shutoff</state>"), "{x}");
    assert!(
        x.contains(&format!(
            "<disk name='vda' snapshot='external' type='file'>\n      <driver type='qcow2'/>\n      <source file='{}'/>",
            overlay.display()
        )),
        "{x}"
    );
    // The overlay exists now: a second one of the same name is refused.
    assert_eq!(
        fails(
            &uri,
            &[
                "snapshot-create-as",
                "off",
                "--disk-only",
                "--diskspec",
                &format!("vda,file={}", overlay.display())
            ]
        ),
        format!(
            "error: unsupported configuration: external snapshot file for disk vda already exists and is not a block device: {}\n",
            overlay.display()
        )
    );

    // undefine --snapshots-metadata takes the metadata along.
    ok(&uri, &["undefine", "off", "--snapshots-metadata"]);
    assert!(!meta.exists());

    // A raw disk takes no internal snapshot.
    let raw = disk_domain(d.path(), "rawd", "raw");
    ok(&uri, &["define", &raw]);
    assert_eq!(
        fails(&uri, &["snapshot-create-as", "rawd", "r1"]),
        "error: unsupported configuration: internal snapshot for disk vda unsupported for storage type raw\n"
    );
    assert_eq!(ok(&uri, &["snapshot-list", "rawd", "--name"]), "\n");
    // Running, the same refusal (libvirt checks the disks before it stops the vCPUs); the
    // guest runs on. No OS: the firmware idles, which is all the check needs.
    if Path::new(QEMU).exists() {
        let _reap = vshrun::Reaper(d.path().join("r"), vec!["rawd"]);
        ok(&uri, &["start", "rawd"]);
        assert_eq!(
            fails(&uri, &["snapshot-create-as", "rawd", "r1"]),
            "error: unsupported configuration: internal snapshot for disk vda unsupported for storage type raw\n"
        );
        assert_eq!(ok(&uri, &["snapshot-list", "rawd", "--name"]), "\n");
        assert_eq!(ok(&uri, &["domstate", "rawd"]), "running\n\n");
        ok(&uri, &["destroy", "rawd"]);
    }
    // --print-xml builds virsh's document and creates nothing.
    assert_eq!(
        ok(
            &uri,
            &[
                "snapshot-create-as",
                "rawd",
                "n",
                "d<",
                "--print-xml",
                "--diskspec",
                "vda,snapshot=external,file=/x/y"
            ]
        ),
        "<domainsnapshot>\n  <name>n</name>\n  <description>d&lt;</description>\n  <disks>\n    \
         <disk name='vda' snapshot='external'>\n      <source file='/x/y'/>\n    </disk>\n  </disks>\n\
         </domainsnapshot>\n\n\n"
    );
}

fn walk_find(dir: &Path, name: &str) -> Option<std::path::PathBuf> {
    for e in std::fs::read_dir(dir).ok()? {
        let p = e.ok()?.path();
        if p.file_name().is_some_and(|n| n == name) {
            return Some(p);
        }
        if p.is_dir()
            && let Some(f) = walk_find(&p, name)
        {
            return Some(f);
        }
    }
    None
}

/// A Linux guest on a qcow2 disk whose console runs each line typed as a shell command.
fn live_xml(kit: &bootkit::LinuxKit, name: &str, disk: &Path) -> String {
    let script = "echo SHELL-READY; while read -r l; do eval \"$l\"; done < /dev/ttyS0";
    format!(
        "<domain type='qemu'>
  <name>{name}</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>{}</kernel>
    <initrd>{}</initrd>
    <cmdline>{} {}</cmdline>
  </os>
  <devices>
    <emulator>{QEMU}</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='{}'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <serial type='pty'><target port='0'/></serial>
    <memballoon model='none'/>
  </devices>
</domain>
",
        kit.kernel.display(),
        kit.initrd.display(),
        kit.cmdline(),
        bootkit::run_cmdline(script),
        disk.display(),
    )
}

/// One running guest through memory snapshots: a file written after the snapshot is gone
/// after reverting to it, the guest runs on (or stays paused when asked), the snapshot is
/// deleted from the image through QEMU, and a disk-only snapshot moves the guest's disk
/// onto a new overlay live.
#[test]
fn memory_snapshot_forgets_what_came_after() {
    if !Path::new(QEMU).exists() {
        eprintln!("\n*** SKIPPED: {QEMU} is not installed ***\n");
        return;
    }
    let Some(kit) = bootkit::linux() else { return };
    let d = tempfile::Builder::new()
        .prefix("snlive")
        .tempdir_in("/tmp")
        .unwrap();
    let root = d.path().join("r");
    let _reap = vshrun::Reaper(root.clone(), vec!["live"]);
    let uri = format!("qemu:///embed?root={}", root.display());
    let img = d.path().join("live.qcow2");
    qemu_img(&["create", "-q", "-f", "qcow2", img.to_str().unwrap(), "64M"]);
    let conn = Connect::open(Some(&uri)).unwrap();
    let dom = conn
        .define_domain_xml(&live_xml(&kit, "live", &img))
        .unwrap();
    dom.create().unwrap();
    let mut con = dom.console(None).unwrap();
    con.expect("SHELL-READY", Duration::from_secs(240)).unwrap();
    // Typed lines echo: each check prints a marker computed by the shell.
    let mut n = 0;
    let mut run = |con: &mut domdriver::driver::console::Console, cmd: &str| -> String {
        n += 1;
        con.send_line(&format!("{cmd}; echo M$(({n}*1000+1))-$?"))
            .unwrap();
        let m = con
            .expect_regex(
                &format!(r"M{}-(\d+)", n * 1000 + 1),
                Duration::from_secs(60),
            )
            .unwrap();
        m.text
    };
    run(&mut con, "echo before > /tmp/before");

    let t = Instant::now();
    assert_eq!(
        ok(&uri, &["snapshot-create-as", "live", "mem1"]),
        "Domain snapshot mem1 created\n"
    );
    let create_time = t.elapsed();
    assert_eq!(
        ok(&uri, &["domstate", "live", "--reason"]),
        "running (unpaused)\n\n"
    );
    let info = qemu_img(&["snapshot", "-l", "-U", img.to_str().unwrap()]);
    assert!(info.contains("mem1"), "{info}");
    let x = ok(&uri, &["snapshot-dumpxml", "live", "mem1"]);
    assert!(x.contains("<state>running</state>"), "{x}");
    assert!(x.contains("<memory snapshot='internal'/>"), "{x}");
    assert!(x.contains("\n  <inactiveDomain type='qemu'>\n"), "{x}");

    run(&mut con, "echo after > /tmp/after");
    assert!(run(&mut con, "test -e /tmp/after").ends_with("-0"));

    let t = Instant::now();
    assert_eq!(ok(&uri, &["snapshot-revert", "live", "mem1"]), "\n");
    let revert_time = t.elapsed();
    assert_eq!(
        ok(&uri, &["domstate", "live", "--reason"]),
        "running (from snapshot)\n\n"
    );
    // The guest is back where it was: /tmp/after never existed, /tmp/before did.
    let mut con = dom.console(None).unwrap();
    let r = run(&mut con, "test -e /tmp/after");
    assert!(r.ends_with("-1"), "{r}");
    assert!(run(&mut con, "test -e /tmp/before").ends_with("-0"));

    // Paused when asked; a second snapshot of the paused guest says so.
    ok(&uri, &["snapshot-revert", "live", "--current", "--paused"]);
    assert_eq!(
        ok(&uri, &["domstate", "live", "--reason"]),
        "paused (from snapshot)\n\n"
    );
    ok(&uri, &["snapshot-create-as", "live", "mem2"]);
    assert!(ok(&uri, &["snapshot-dumpxml", "live", "mem2"]).contains("<state>paused</state>"));
    assert_eq!(ok(&uri, &["domstate", "live"]), "paused\n\n");
    ok(&uri, &["snapshot-revert", "live", "mem1", "--running"]);
    assert_eq!(ok(&uri, &["domstate", "live"]), "running\n\n");
    let t = ok(&uri, &["snapshot-list", "live", "--parent"]);
    assert_eq!(
        rows(&t),
        [vec!["mem1", "running"], vec!["mem2", "paused", "mem1"]]
    );

    // Deleted through QEMU's job: the tag leaves the image.
    assert_eq!(
        ok(&uri, &["snapshot-delete", "live", "mem2"]),
        "Domain snapshot mem2 deleted\n\n"
    );
    let info = qemu_img(&["snapshot", "-l", "-U", img.to_str().unwrap()]);
    assert!(!info.contains("mem2") && info.contains("mem1"), "{info}");

    // A shut-off guest reverts to a memory snapshot by starting paused and loading it:
    // one QEMU, running from the snapshot.
    ok(&uri, &["destroy", "live"]);
    let t = Instant::now();
    ok(&uri, &["snapshot-revert", "live", "mem1"]);
    let cold_revert_time = t.elapsed();
    assert_eq!(
        ok(&uri, &["domstate", "live", "--reason"]),
        "running (from snapshot)\n\n"
    );
    let mut con = dom.console(None).unwrap();
    assert!(run(&mut con, "test -e /tmp/after").ends_with("-1"));
    assert!(run(&mut con, "test -e /tmp/before").ends_with("-0"));

    // Disk-only external snapshot, live: an overlay on top, the live XML on it.
    let overlay = d.path().join("live.ext1");
    ok(&uri, &["snapshot-create-as", "live", "ext1", "--disk-only"]);
    let q = ok(
        &uri,
        &[
            "qemu-monitor-command",
            "live",
            r#"{"execute":"query-block"}"#,
        ],
    );
    assert!(q.contains(overlay.to_str().unwrap()), "{q}");
    let live = ok(&uri, &["dumpxml", "live"]);
    assert!(
        live.contains(&format!("<source file='{}'", overlay.display())),
        "{live}"
    );
    let inactive = ok(&uri, &["dumpxml", "live", "--inactive"]);
    assert!(
        inactive.contains(&format!("<source file='{}'/>", overlay.display())),
        "{inactive}"
    );
    // An overlay that cannot be made changes nothing: same disk, no metadata.
    let e = fails(
        &uri,
        &[
            "snapshot-create-as",
            "live",
            "bad",
            "--disk-only",
            "--diskspec",
            "vda,file=/nonexistent/dir/x",
        ],
    );
    assert!(e.starts_with("error: operation failed: "), "{e}");
    let q = ok(
        &uri,
        &[
            "qemu-monitor-command",
            "live",
            r#"{"execute":"query-named-block-nodes"}"#,
        ],
    );
    assert!(!q.contains("nonexistent"), "{q}");
    assert_eq!(
        ok(&uri, &["snapshot-list", "live", "--name"]),
        "ext1\nmem1\n\n"
    );
    // The guest still runs and writes through the overlay.
    assert!(run(&mut con, "echo ok > /dev/null").ends_with("-0"));

    // Snapshot metadata outlives the guest's monitor: kill it, the next vsh adopts the
    // guest again and finds every snapshot.
    let st = GuestStatus::read("live", &root.join("run/qemu/live.json"))
        .unwrap()
        .unwrap();
    kill(Pid::from_raw(st.monitor_pid), Signal::SIGKILL).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        ok(&uri, &["snapshot-list", "live", "--name"]),
        "ext1\nmem1\n\n"
    );
    assert_eq!(ok(&uri, &["snapshot-current", "live", "--name"]), "ext1\n");

    // The disk now reads the overlay, which lacks mem1's state: reverting the running
    // guest fails and leaves it running as it was.
    let e = fails(&uri, &["snapshot-revert", "live", "mem1"]);
    assert!(
        e.starts_with("error: operation failed: job 'snapshot-load' failed: "),
        "{e}"
    );
    assert_eq!(ok(&uri, &["domstate", "live"]), "running\n\n");
    let mut con = dom.console(None).unwrap();
    assert!(run(&mut con, "test -e /tmp/before").ends_with("-0"));
    // --halt: the snapshot (internal, now in the overlay), then the guest is off.
    ok(&uri, &["snapshot-create-as", "live", "last", "--halt"]);
    assert_eq!(
        ok(&uri, &["domstate", "live", "--reason"]),
        "shut off (from snapshot)\n\n"
    );
    assert!(qemu_img(&["snapshot", "-l", overlay.to_str().unwrap()]).contains("last"));
    // The config reads the overlay, but a shut-off guest starts from the snapshot's own
    // definition (the base image, where mem1 is), which becomes its config again.
    ok(&uri, &["snapshot-revert", "live", "mem1"]);
    assert_eq!(ok(&uri, &["domstate", "live"]), "running\n\n");
    let inactive = ok(&uri, &["dumpxml", "live", "--inactive"]);
    assert!(
        inactive.contains(&format!("<source file='{}'/>", img.display())),
        "{inactive}"
    );
    assert!(!inactive.contains("<log "), "{inactive}");
    let mut con = dom.console(None).unwrap();
    assert!(run(&mut con, "test -e /tmp/after").ends_with("-1"));
    ok(&uri, &["destroy", "live"]);
    // A snapshot whose state the image lacks fails to revert and leaves the guest shut
    // off on its config, with no QEMU behind.
    let snap_xml = d.path().join("ghost.xml");
    std::fs::write(
        &snap_xml,
        ok(&uri, &["snapshot-dumpxml", "live", "mem1"])
            .replace("<name>mem1</name>", "<name>ghost</name>"),
    )
    .unwrap();
    ok(
        &uri,
        &[
            "snapshot-create",
            "live",
            snap_xml.to_str().unwrap(),
            "--redefine",
        ],
    );
    let e = fails(&uri, &["snapshot-revert", "live", "ghost"]);
    assert!(
        e.starts_with("error: operation failed: job 'snapshot-load' failed: "),
        "{e}"
    );
    assert_eq!(ok(&uri, &["domstate", "live"]), "shut off\n\n");
    assert!(!root.join("run/qemu/live.json").exists());
    assert_eq!(ok(&uri, &["dumpxml", "live", "--inactive"]), inactive);
    eprintln!(
        "snapshot of a running 256 MiB TCG guest: create {create_time:?}, revert {revert_time:?}, \
         revert of the shut-off guest {cold_revert_time:?}"
    );
}
