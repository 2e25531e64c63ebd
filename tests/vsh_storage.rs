//! The storage verbs through the real binary: dir pools that persist between runs of vsh,
//! their volumes (raw files, qcow2 through qemu-img, backing volumes), errors worded as
//! virsh's and libvirt's, and a TCG guest booting from a `<disk type='volume'>`.

#[path = "common/bootkit.rs"]
mod bootkit;
#[path = "common/guests.rs"]
mod guests;
#[path = "common/vshrun.rs"]
mod vshrun;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::time::{Duration, Instant};

use vshrun::{Reaper, Vsh};

fn vsh(d: &tempfile::TempDir) -> Vsh {
    Vsh::new(d.path().join("r"))
}

fn p(d: &tempfile::TempDir, name: &str) -> String {
    d.path().join(name).display().to_string()
}

#[test]
fn every_storage_verb_has_help() {
    let d = tempfile::tempdir().unwrap();
    let v = vsh(&d);
    for verb in [
        "pool-define",
        "pool-define-as",
        "pool-create",
        "pool-create-as",
        "pool-build",
        "pool-start",
        "pool-destroy",
        "pool-delete",
        "pool-undefine",
        "pool-list",
        "pool-info",
        "pool-dumpxml",
        "pool-uuid",
        "pool-name",
        "pool-refresh",
        "pool-autostart",
        "pool-edit",
        "pool-capabilities",
        "vol-create-as",
        "vol-create",
        "vol-create-from",
        "vol-clone",
        "vol-delete",
        "vol-list",
        "vol-info",
        "vol-dumpxml",
        "vol-path",
        "vol-name",
        "vol-key",
        "vol-pool",
        "vol-resize",
        "vol-upload",
        "vol-download",
        "vol-wipe",
    ] {
        let out = v.ok(&[verb, "--help"]);
        assert!(out.contains("  NAME\n"), "{verb}: {out}");
        assert!(out.contains(verb), "{verb}: {out}");
    }
    let help = v.ok(&["help", "pool"]);
    assert!(help.contains("Storage Pool"), "{help}");
    let help = v.ok(&["help", "volume"]);
    assert!(help.contains("vol-create-as"), "{help}");
}

#[test]
fn dir_pools_persist_between_runs() {
    let d = tempfile::tempdir().unwrap();
    let v = vsh(&d);
    let images = p(&d, "images");
    assert_eq!(
        v.ok(&["pool-define-as", "p1", "dir", "--target", &images]),
        "Pool p1 defined\n\n"
    );
    let list = v.ok(&["pool-list", "--all"]);
    assert!(list.contains(" p1     inactive   no"), "{list}");
    let info = v.ok(&["pool-info", "p1"]);
    assert!(info.contains("State:          inactive\n"), "{info}");
    assert!(info.contains("Persistent:     yes\n"), "{info}");
    assert!(!info.contains("Capacity"), "{info}");

    // No directory yet: libvirt's refresh cannot open it.
    let err = v.fails(&["pool-start", "p1"]);
    assert!(
        err.contains(&format!(
            "error: Failed to start pool p1\nerror: cannot open directory '{images}': No such file or directory"
        )),
        "{err}"
    );
    assert_eq!(v.ok(&["pool-build", "p1"]), "Pool p1 built\n\n");
    let md = std::fs::metadata(&images).unwrap();
    assert_eq!(md.permissions().mode() & 0o777, 0o711);
    assert_eq!(v.ok(&["pool-start", "p1"]), "Pool p1 started\n\n");
    let err = v.fails(&["pool-start", "p1"]);
    assert!(
        err.contains(
            "error: Requested operation is not valid: storage pool 'p1' is already active"
        ),
        "{err}"
    );

    let info = v.ok(&["pool-info", "p1", "--bytes"]);
    assert!(info.contains("State:          running\n"), "{info}");
    assert!(info.contains("Capacity:       "), "{info}");
    let list = v.ok(&["pool-list", "--details"]);
    assert!(
        list.contains(" Name   State     Autostart   Persistent   Capacity"),
        "{list}"
    );
    assert!(list.contains("running   no          yes"), "{list}");
    let json: serde_json::Value =
        serde_json::from_str(&v.ok(&["pool-list", "--all", "--json"])).unwrap();
    assert_eq!(json[0]["name"], "p1");
    assert_eq!(json[0]["type"], "dir");
    assert_eq!(json[0]["state"], "running");
    assert!(json[0]["capacity"].as_u64().unwrap() > 0);

    // The live XML has the directory's owner and mode, the config neither.
    let xml = v.ok(&["pool-dumpxml", "p1"]);
    assert!(
        xml.starts_with("<pool type='dir'>\n  <name>p1</name>\n"),
        "{xml}"
    );
    assert!(
        xml.contains(&format!(
            "  <target>\n    <path>{images}</path>\n    <permissions>\n      <mode>0711</mode>\n      <owner>{}</owner>\n",
            md.uid()
        )),
        "{xml}"
    );
    let inactive = v.ok(&["pool-dumpxml", "p1", "--inactive"]);
    assert!(!inactive.contains("<permissions>"), "{inactive}");
    assert!(
        inactive.contains("<capacity unit='bytes'>0</capacity>"),
        "{inactive}"
    );

    let uuid = v.ok(&["pool-uuid", "p1"]);
    let uuid = uuid.trim();
    assert_eq!(uuid.len(), 36);
    assert_eq!(v.ok(&["pool-name", uuid]), "p1\n\n");
    assert!(v.ok(&["pool-info", uuid]).contains("Name:           p1\n"));
    let err = v.fails(&["pool-name", "p1"]);
    assert!(err.contains("error: failed to get pool 'p1'"), "{err}");

    assert_eq!(
        v.ok(&["pool-autostart", "p1"]),
        "Pool p1 marked as autostarted\n\n"
    );
    assert!(
        v.ok(&["pool-list", "--autostart", "--name"])
            .starts_with("p1   ")
    );
    assert_eq!(v.ok(&["pool-list", "--no-autostart", "--name"]), "\n");
    assert_eq!(
        v.ok(&["pool-autostart", "p1", "--disable"]),
        "Pool p1 unmarked as autostarted\n\n"
    );

    let err = v.fails(&["pool-undefine", "p1"]);
    assert!(
        err.contains("error: Failed to undefine pool p1\nerror: Requested operation is not valid: storage pool 'p1' is still active"),
        "{err}"
    );
    let err = v.fails(&["pool-define-as", "p2", "dir", "--target", &images]);
    assert!(
        err.contains("error: Failed to define pool p2\nerror: operation failed: Storage source conflict with pool: 'p1'"),
        "{err}"
    );
    assert_eq!(v.ok(&["pool-refresh", "p1"]), "Pool p1 refreshed\n\n");

    // A transient pool is gone once destroyed.
    let t = p(&d, "t");
    std::fs::create_dir(&t).unwrap();
    assert_eq!(
        v.ok(&["pool-create-as", "t1", "dir", "--target", &t]),
        "Pool t1 created\n\n"
    );
    assert!(
        v.ok(&["pool-list", "--transient", "--name"])
            .starts_with("t1 ")
    );
    let err = v.fails(&["pool-autostart", "t1"]);
    assert!(
        err.contains("error: invalid argument: pool has no config file"),
        "{err}"
    );
    assert_eq!(v.ok(&["pool-destroy", "t1"]), "Pool t1 destroyed\n\n");
    let err = v.fails(&["pool-info", "t1"]);
    assert!(
        err.contains("error: failed to get pool 't1'\nerror: Storage pool not found: no storage pool with matching name 't1'"),
        "{err}"
    );

    // Only dir pools have a backend.
    let err = v.fails(&[
        "pool-define-as",
        "n1",
        "netfs",
        "--source-host",
        "h",
        "--source-path",
        "/x",
        "--target",
        "/mnt",
    ]);
    assert!(
        err.contains("error: Failed to define pool n1\nerror: internal error: missing backend for pool type 2 (netfs)"),
        "{err}"
    );
    let xml = v.ok(&[
        "pool-define-as",
        "n1",
        "netfs",
        "--source-host",
        "h",
        "--source-path",
        "/x",
        "--target",
        "/mnt",
        "--print-xml",
    ]);
    assert_eq!(
        xml,
        "<pool type='netfs'>\n  <name>n1</name>\n  <source>\n    <host name='h'/>\n    <dir path='/x'/>\n  </source>\n  <target>\n    <path>/mnt</path>\n  </target>\n</pool>\n\n"
    );
    let err = v.fails(&["pool-list", "--type", "dir,floppy"]);
    assert!(err.contains("error: Invalid pool type 'floppy'"), "{err}");
    let err = v.fails(&["pool-create", &p(&d, "nofile.xml")]);
    assert!(err.contains("Failed to open file"), "{err}");
    let caps = v.ok(&["pool-capabilities"]);
    assert!(caps.starts_with("<storagepoolCapabilities>\n  <pool type='dir' supported='yes'>\n    <volOptions>\n      <defaultFormat type='raw'/>\n"), "{caps}");
    assert!(caps.contains("  <pool type='fs' supported='no'>\n    <poolOptions>\n      <defaultFormat type='auto'/>\n"), "{caps}");

    // Stop, remove the directory, forget the pool.
    assert_eq!(v.ok(&["pool-destroy", "p1"]), "Pool p1 destroyed\n\n");
    let err = v.fails(&["pool-destroy", "p1"]);
    assert!(
        err.contains("error: Requested operation is not valid: storage pool 'p1' is not active"),
        "{err}"
    );
    assert_eq!(v.ok(&["pool-delete", "p1"]), "Pool p1 deleted\n\n");
    assert!(!std::path::Path::new(&images).exists());
    assert_eq!(
        v.ok(&["pool-undefine", "p1"]),
        "Pool p1 has been undefined\n\n"
    );
    assert_eq!(v.ok(&["pool-list", "--all", "--name"]), "\n");

    // A definition from a file, redefined with the same UUID; another UUID is refused.
    let f = p(&d, "pool.xml");
    std::fs::write(
        &f,
        format!("<pool type='dir'><name>p3</name><uuid>6e9b4d3f-4a1c-4b7f-8e52-1d3c8f0a2b21</uuid><target><path>{t}</path></target></pool>"),
    )
    .unwrap();
    assert_eq!(
        v.ok(&["pool-define", &f]),
        format!("Pool p3 defined from {f}\n\n")
    );
    assert_eq!(
        v.ok(&["pool-define", &f]),
        format!("Pool p3 defined from {f}\n\n")
    );
    std::fs::write(
        &f,
        format!("<pool type='dir'><name>p3</name><uuid>6e9b4d3f-4a1c-4b7f-8e52-1d3c8f0a2b22</uuid><target><path>{t}</path></target></pool>"),
    )
    .unwrap();
    let err = v.fails(&["pool-define", &f]);
    assert!(
        err.contains("error: operation failed: pool 'p3' already exists with uuid 6e9b4d3f-4a1c-4b7f-8e52-1d3c8f0a2b21"),
        "{err}"
    );
    std::fs::write(&f, "<pool type='dir'><name>p4</name></pool>").unwrap();
    let err = v.fails(&["pool-define", &f]);
    assert!(
        err.contains("error: XML error: missing storage pool target path"),
        "{err}"
    );
}

/// A started dir pool `p` over DIR/pool.
fn started_pool(d: &tempfile::TempDir, v: &Vsh) -> String {
    let dir = p(d, "pool");
    v.ok(&["pool-define-as", "p", "dir", "--target", &dir]);
    v.ok(&["pool-start", "p", "--build"]);
    dir
}

#[test]
fn volumes_are_files_in_the_pool() {
    let d = tempfile::tempdir().unwrap();
    let v = vsh(&d);
    let dir = started_pool(&d, &v);
    let a = format!("{dir}/a.img");

    assert_eq!(
        v.ok(&["vol-create-as", "p", "a.img", "1M"]),
        "Vol a.img created\n\n"
    );
    let md = std::fs::metadata(&a).unwrap();
    assert_eq!(md.len(), 1 << 20);
    // libvirt allocates a raw volume's capacity unless told less.
    assert!(md.blocks() * 512 >= 1 << 20);
    assert_eq!(md.permissions().mode() & 0o777, 0o600);
    let err = v.fails(&["vol-create-as", "p", "a.img", "1M"]);
    assert!(
        err.contains(
            "error: Failed to create vol a.img\nerror: storage volume 'a.img' exists already"
        ),
        "{err}"
    );
    let err = v.fails(&["vol-create-as", "p", "x", "1Q"]);
    assert!(err.contains("error: Malformed size 1Q"), "{err}");

    assert_eq!(
        v.ok(&["vol-create-as", "p", "b.qcow2", "10M", "--format", "qcow2"]),
        "Vol b.qcow2 created\n\n"
    );
    v.ok(&[
        "vol-create-as",
        "p",
        "c.qcow2",
        "20M",
        "--format",
        "qcow2",
        "--backing-vol",
        "b.qcow2",
        "--backing-vol-format",
        "qcow2",
    ]);
    let err = v.fails(&[
        "vol-create-as",
        "p",
        "r.img",
        "1M",
        "--backing-vol",
        "b.qcow2",
    ]);
    assert!(
        err.contains("error: Failed to create vol r.img\nerror: this function is not supported by the connection driver: backing storage not supported for raw volumes"),
        "{err}"
    );
    let err = v.fails(&[
        "vol-create-as",
        "p",
        "m.qcow2",
        "1M",
        "--format",
        "qcow2",
        "--backing-vol",
        "b.qcow2",
        "--prealloc-metadata",
    ]);
    assert!(
        err.contains(
            "error: unsupported configuration: metadata preallocation conflicts with backing store"
        ),
        "{err}"
    );
    let xml = v.ok(&["vol-dumpxml", "c.qcow2", "--pool", "p"]);
    assert!(
        xml.contains(&format!(
            "  <backingStore>\n    <path>{dir}/b.qcow2</path>\n    <format type='qcow2'/>\n    <permissions>\n      <mode>0600</mode>\n"
        )),
        "{xml}"
    );
    assert!(
        xml.contains("<capacity unit='bytes'>20971520</capacity>"),
        "{xml}"
    );
    assert!(xml.contains("    <format type='qcow2'/>\n"), "{xml}");
    assert!(xml.contains("    <compat>1.1</compat>\n"), "{xml}");

    let xml = v.ok(&["vol-dumpxml", &a]);
    assert!(
        xml.starts_with(&format!(
            "<volume type='file'>\n  <name>a.img</name>\n  <key>{a}</key>\n  <capacity unit='bytes'>1048576</capacity>\n"
        )),
        "{xml}"
    );
    assert!(
        xml.contains(&format!(
            "  <physical unit='bytes'>1048576</physical>\n  <target>\n    <path>{a}</path>\n    <format type='raw'/>\n    <permissions>\n      <mode>0600</mode>\n"
        )),
        "{xml}"
    );

    let list = v.ok(&["vol-list", "p"]);
    assert_eq!(
        list,
        format!(
            " Name      Path\n{}\n a.img     {dir}/a.img\n b.qcow2   {dir}/b.qcow2\n c.qcow2   {dir}/c.qcow2\n\n",
            "-".repeat(7 + 3 + dir.len() + 8 + 3)
        )
    );
    let list = v.ok(&["vol-list", "p", "--details"]);
    assert!(list.contains(" Type   Capacity    Allocation"), "{list}");
    assert!(list.contains(" file   10.00 MiB "), "{list}");
    let json: serde_json::Value =
        serde_json::from_str(&v.ok(&["vol-list", "p", "--json"])).unwrap();
    assert_eq!(json[1]["capacity"], 10 << 20);

    let info = v.ok(&["vol-info", "b.qcow2", "--pool", "p"]);
    assert!(
        info.starts_with("Name:           b.qcow2\nType:           file\nCapacity:       10.00 MiB\nAllocation:     "),
        "{info}"
    );
    let info = v.ok(&["vol-info", &a, "--bytes", "--physical"]);
    assert!(info.contains("Physical:       1048576 bytes\n"), "{info}");
    assert_eq!(
        v.ok(&["vol-path", "a.img", "--pool", "p"]),
        format!("{a}\n\n")
    );
    assert_eq!(
        v.ok(&["vol-key", "a.img", "--pool", "p"]),
        format!("{a}\n\n")
    );
    assert_eq!(v.ok(&["vol-name", &a]), "a.img\n\n");
    assert_eq!(v.ok(&["vol-pool", &a]), "p\n\n");
    let uuid = v.ok(&["pool-uuid", "p"]);
    assert_eq!(v.ok(&["vol-pool", &a, "--uuid"]), format!("{uuid}"));

    let err = v.fails(&["vol-info", "nosuch", "--pool", "p"]);
    assert!(
        err.contains("error: failed to get vol 'nosuch'\nerror: Storage volume not found: no storage vol with matching path 'nosuch'"),
        "{err}"
    );
    let err = v.fails(&["vol-info", "nosuch"]);
    assert!(
        err.contains("error: failed to get vol 'nosuch', specifying --pool might help"),
        "{err}"
    );
    let err = v.fails(&["vol-info", "a.img", "--pool", "nopool"]);
    assert!(err.contains("error: failed to get pool 'nopool'"), "{err}");

    // Upload, download, wipe.
    let src = p(&d, "hello.bin");
    std::fs::write(&src, b"hello").unwrap();
    v.ok(&[
        "vol-upload",
        "a.img",
        &src,
        "--pool",
        "p",
        "--offset",
        "512",
    ]);
    let out = p(&d, "out.bin");
    v.ok(&[
        "vol-download",
        "a.img",
        &out,
        "--pool",
        "p",
        "--offset",
        "512",
        "--length",
        "5",
    ]);
    assert_eq!(std::fs::read(&out).unwrap(), b"hello");
    v.ok(&["vol-download", "a.img", &out, "--pool", "p", "--sparse"]);
    assert_eq!(std::fs::metadata(&out).unwrap().len(), 1 << 20);
    assert_eq!(
        v.ok(&["vol-wipe", "a.img", "--pool", "p"]),
        "Vol a.img wiped\n\n"
    );
    v.ok(&["vol-download", "a.img", &out, "--pool", "p"]);
    assert!(std::fs::read(&out).unwrap().iter().all(|b| *b == 0));
    let err = v.fails(&["vol-wipe", "a.img", "--pool", "p", "--algorithm", "bogus"]);
    assert!(
        err.contains("error: Unsupported algorithm 'bogus'"),
        "{err}"
    );
    let err = v.fails(&["vol-wipe", "a.img", "--pool", "p", "--algorithm", "trim"]);
    assert!(
        err.contains("error: Failed to wipe vol a.img\nerror: argument unsupported: 'trim' algorithm not supported"),
        "{err}"
    );

    // Resize.
    assert_eq!(
        v.ok(&["vol-resize", "a.img", "2M", "--pool", "p"]),
        "Size of volume 'a.img' successfully changed to 2M\n\n"
    );
    assert_eq!(std::fs::metadata(&a).unwrap().len(), 2 << 20);
    let err = v.fails(&["vol-resize", "a.img", "1536K", "--pool", "p"]);
    assert!(
        err.contains("error: Failed to change size of volume 'a.img' to 1536K\nerror: invalid argument: Can't shrink capacity below current capacity unless shrink flag explicitly specified"),
        "{err}"
    );
    v.ok(&["vol-resize", "b.qcow2", "16M", "--pool", "p"]);
    assert!(
        v.ok(&["vol-info", "b.qcow2", "--pool", "p"])
            .contains("Capacity:       16.00 MiB")
    );

    // Clone, create from XML, create from another volume.
    assert_eq!(
        v.ok(&["vol-clone", "a.img", "a2.img", "--pool", "p"]),
        "Vol a2.img cloned from a.img\n\n"
    );
    assert_eq!(
        std::fs::metadata(format!("{dir}/a2.img")).unwrap().len(),
        2 << 20
    );
    let vx = p(&d, "vol.xml");
    std::fs::write(
        &vx,
        "<volume><name>e.raw</name><capacity unit='KiB'>64</capacity><allocation>0</allocation><target><format type='raw'/></target></volume>",
    )
    .unwrap();
    assert_eq!(
        v.ok(&["vol-create", "p", &vx]),
        format!("Vol e.raw created from {vx}\n\n")
    );
    assert_eq!(
        std::fs::metadata(format!("{dir}/e.raw")).unwrap().len(),
        64 << 10
    );
    std::fs::write(
        &vx,
        "<volume><name>f.raw</name><capacity>0</capacity><target><format type='raw'/></target></volume>",
    )
    .unwrap();
    assert_eq!(
        v.ok(&["vol-create-from", "p", &vx, "b.qcow2", "--inputpool", "p"]),
        "Vol f.raw created from input vol b.qcow2\n\n"
    );
    assert!(
        v.ok(&["vol-info", "f.raw", "--pool", "p"])
            .contains("Capacity:       16.00 MiB")
    );

    let err = v.fails(&["vol-delete", "a2.img", "--pool", "p", "--delete-snapshots"]);
    assert!(err.contains("error: Failed to delete vol a2.img"), "{err}");
    assert_eq!(
        v.ok(&["vol-delete", "a2.img", "--pool", "p"]),
        "Vol a2.img deleted\n\n"
    );
    assert!(!std::path::Path::new(&format!("{dir}/a2.img")).exists());

    // An inactive pool has no volumes to show.
    v.ok(&["pool-destroy", "p"]);
    let err = v.fails(&["vol-list", "p"]);
    assert!(
        err.contains("error: Failed to list storage volumes\nerror: Requested operation is not valid: storage pool 'p' is not active"),
        "{err}"
    );
    let err = v.fails(&["vol-info", "a.img", "--pool", "p"]);
    assert!(err.contains("error: pool 'p' is not active"), "{err}");
    let err = v.fails(&["vol-create-as", "p", "z", "1M"]);
    assert!(
        err.contains("error: Failed to create vol z\nerror: Requested operation is not valid: storage pool 'p' is not active"),
        "{err}"
    );
}

/// Wait (scaled) for `needle` in file `path`.
fn wait_for(path: &str, needle: &str, secs: u64) -> bool {
    let until = Instant::now() + Duration::from_secs(secs * vshrun::multiplier().max(1));
    while Instant::now() < until {
        if std::fs::read_to_string(path).is_ok_and(|s| s.contains(needle)) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

fn volume_guest(name: &str, pool: &str, vol: &str, serial: &str) -> String {
    format!(
        "<domain type='qemu'><name>{name}</name><uuid>{uuid}</uuid><memory unit='MiB'>32</memory><vcpu>1</vcpu>\
         <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='hd'/></os>\
         <features><acpi/></features>\
         <devices><emulator>{}</emulator>\
         <disk type='volume' device='disk'><driver name='qemu' type='raw'/>\
         <source pool='{pool}' volume='{vol}'/><target dev='hda' bus='ide'/></disk>\
         <serial type='file'><source path='{serial}'/><target port='0'/></serial>\
         <memballoon model='none'/></devices></domain>",
        guests::QEMU,
        uuid = if name == "novm" {
            "1d6d7c1a-5b0e-4d6b-8f7e-2a9b3c4d5e60"
        } else {
            "1d6d7c1a-5b0e-4d6b-8f7e-2a9b3c4d5e61"
        }
    )
}

#[test]
fn a_guest_boots_from_a_volume() {
    if !guests::have_qemu() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let v = vsh(&d);
    let _reap = Reaper(d.path().join("r"), vec!["volvm", "novm"]);
    started_pool(&d, &v);
    v.ok(&["vol-create-as", "p", "boot.img", "1M"]);
    let sector = p(&d, "sector.bin");
    std::fs::write(&sector, bootkit::boot_sector()).unwrap();
    v.ok(&["vol-upload", "boot.img", &sector, "--pool", "p"]);

    let serial = p(&d, "serial.log");
    let x = p(&d, "vm.xml");
    std::fs::write(&x, volume_guest("volvm", "p", "boot.img", &serial)).unwrap();
    v.ok(&["define", &x]);
    let y = p(&d, "novm.xml");
    std::fs::write(&y, volume_guest("novm", "nopool", "boot.img", &serial)).unwrap();
    v.ok(&["define", &y]);

    // libvirt's refusals: an unknown pool, an inactive one, an unknown volume.
    let err = v.fails(&["start", "novm"]);
    assert!(
        err.contains("error: Storage pool not found: no storage pool with matching name 'nopool'"),
        "{err}"
    );
    v.ok(&["pool-destroy", "p"]);
    let err = v.fails(&["start", "volvm"]);
    assert!(
        err.contains("error: unsupported configuration: storage pool 'p' containing volume 'boot.img' is not active"),
        "{err}"
    );
    v.ok(&["pool-start", "p"]);
    std::fs::write(&y, volume_guest("novm", "p", "nosuch.img", &serial)).unwrap();
    v.ok(&["define", &y]);
    let err = v.fails(&["start", "novm"]);
    assert!(
        err.contains(
            "error: Storage volume not found: no storage vol with matching name 'nosuch.img'"
        ),
        "{err}"
    );

    // The BIOS boots the volume's sector, which writes its marker on the serial port.
    let (ok, _, err) = v.run_bounded(&["start", "volvm"], 120);
    assert!(ok, "{err}");
    assert!(
        wait_for(&serial, bootkit::BOOT_SECTOR_MARKER, 60),
        "no marker: {:?}",
        std::fs::read_to_string(&serial)
    );
    let blk = v.ok(&["domblklist", "volvm"]);
    assert!(blk.contains("/pool/boot.img"), "{blk}");

    // A hotplugged volume disk is resolved the same way.
    let dev = p(&d, "disk.xml");
    let disk = |vol: &str| {
        format!(
            "<disk type='volume' device='disk'><driver name='qemu' type='raw'/>\
             <source pool='p' volume='{vol}'/><target dev='vdb' bus='virtio'/></disk>"
        )
    };
    std::fs::write(&dev, disk("nosuch.img")).unwrap();
    let (ok, _, err) = v.run_bounded(&["attach-device", "volvm", &dev], 120);
    assert!(!ok);
    assert!(
        err.contains(
            "error: Storage volume not found: no storage vol with matching name 'nosuch.img'"
        ),
        "{err}"
    );
    v.ok(&["vol-create-as", "p", "data.img", "1M"]);
    std::fs::write(&dev, disk("data.img")).unwrap();
    let (ok, _, err) = v.run_bounded(&["attach-device", "volvm", &dev], 120);
    assert!(ok, "{err}");
    let blk = v.ok(&["domblklist", "volvm"]);
    assert!(blk.contains("/pool/data.img"), "{blk}");
    v.ok(&["destroy", "volvm"]);
}

#[test]
fn readonly_refuses_pool_changes() {
    let d = tempfile::tempdir().unwrap();
    let v = vsh(&d);
    let mut c = v.cmd(&[]);
    let o = c
        .args(["-r", "pool-define-as", "p", "dir", "--target", "/x"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        "error: Failed to define pool p\nerror: operation forbidden: read only access prevents virStoragePoolDefineXML\n"
    );
    // Reading is allowed.
    let o = v
        .cmd(&[])
        .args(["-r", "pool-list", "--all"])
        .output()
        .unwrap();
    assert!(o.status.success());
}

#[test]
fn pool_edit_defines_what_the_editor_wrote() {
    let d = tempfile::tempdir().unwrap();
    let v = vsh(&d);
    let t = p(&d, "t");
    v.ok(&["pool-define-as", "pe", "dir", "--target", &t]);
    let run = |editor: &str| {
        let o = v
            .cmd(&["pool-edit", "pe"])
            .env_remove("VISUAL")
            .env("EDITOR", editor)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let (ok, out, err) = run("true");
    assert!(ok, "{err}");
    assert_eq!(out, "Pool pe XML configuration not changed.\n\n");
    let (ok, out, err) = run("sed -i 's#<path>.*</path>#<path>/srv/x</path>#'");
    assert!(ok, "{err}");
    assert_eq!(out, "Pool pe XML configuration edited.\n\n");
    assert!(
        v.ok(&["pool-dumpxml", "pe"])
            .contains("<path>/srv/x</path>")
    );
    let err = v.fails(&["pool-edit", "nosuch"]);
    assert!(
        err.contains("error: failed to get pool 'nosuch'\nerror: Storage pool not found: no storage pool with matching name 'nosuch'"),
        "{err}"
    );
}
