//! Fleets from a saved guest: one TCG guest boots to a marker and counts on its console with
//! an id drawn at boot, writing each count to its disk; it becomes a template, and clones
//! started from it count on from there with the same id (no boot), each on its own console
//! and its own overlay, the template's base disk untouched. The clones map the template's
//! RAM file copy-on-write: what one writes to its memory (a file in its tmpfs, on an NMI)
//! no other clone sees, nor one started later, and the file stays as saved. A guest without
//! a RAM file makes a template whose stream holds the RAM, and its clone runs on too. Error
//! cases: a guest that does not run, a name clash, missing, truncated, foreign and corrupt
//! template files. Every guest is destroyed through its handle (by pid, through the driver)
//! when the test ends.

#[path = "common/bootkit.rs"]
mod bootkit;

use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use domdriver::Connect;
use domdriver::driver::ConnectOptions;
use domdriver::fleet::{GuestBuilder, StartedGuest, Template};

const QEMU: &str = "/usr/bin/qemu-system-x86_64";
const BOOT: Duration = Duration::from_secs(240);
const TICKS: Duration = Duration::from_secs(60);

/// Count on the console (and on the disk's second sector) five times a second. Once the
/// guest has taken an NMI (`inject-nmi`), it writes `/mark` (its root is a tmpfs, in its
/// RAM), and from then on each count is preceded by `has-mark-N` while `/mark` is there.
const SCRIPT: &str = "nmis() { n=0; while read a b r; do [ \"$a\" = NMI: ] && n=$b; done \
    < /proc/interrupts; }; nmis; n0=$n; \
    id=$(cat /proc/sys/kernel/random/uuid); \
    echo disk-$id | dd of=/dev/vda conv=fsync 2>/dev/null; echo READY-$id; i=0; \
    while true; do i=$((i+1)); nmis; \
    if [ \"$n\" != \"$n0\" ] && [ ! -e /mark ]; then echo $id > /mark; fi; \
    if [ -e /mark ]; then echo has-mark-$i; fi; echo tick-$i-$id; \
    echo tick-$i-$id | dd of=/dev/vda bs=512 seek=1 conv=fsync 2>/dev/null; sleep 0.2; done";

fn connect(dir: &Path) -> Connect {
    let bin_dir = dir.join("bin");
    std::fs::create_dir_all(&bin_dir).unwrap();
    symlink(QEMU, bin_dir.join("qemu-system-x86_64")).unwrap();
    let opts = ConnectOptions {
        emulator_dirs: vec![bin_dir],
        kvm_device: "/dev/null".into(),
        probe_timeout: Duration::from_secs(60),
        ..ConnectOptions::default()
    };
    let uri = format!("qemu:///embed?root={}", dir.join("root").display());
    Connect::open_with(Some(&uri), opts).unwrap()
}

fn kit_guest(kit: &bootkit::LinuxKit, name: &str, disk: &Path) -> GuestBuilder {
    GuestBuilder::new(name)
        .arch("amd64")
        .kernel(&kit.kernel)
        .initrd(&kit.initrd)
        .cmdline(format!(
            "{} {}",
            kit.cmdline(),
            bootkit::run_cmdline(SCRIPT)
        ))
        .memory_mib(256)
        .disk_image(disk, "raw")
}

/// The complete ticks in `text`: (count, id).
fn ticks(text: &str) -> Vec<(u64, String)> {
    let re = regex::Regex::new(r"tick-(\d+)-([0-9a-f-]{36})\r?\n").unwrap();
    re.captures_iter(text)
        .map(|c| (c[1].parse().unwrap(), c[2].to_string()))
        .collect()
}

/// The first two 512-byte sectors of a disk image, as text up to each first newline.
fn sectors(raw: &[u8]) -> (String, String) {
    let line = |s: &[u8]| {
        let end = s.iter().position(|&b| b == b'\n').unwrap_or(0);
        String::from_utf8_lossy(&s[..end]).into_owned()
    };
    (line(&raw[..512]), line(&raw[512..1024]))
}

/// A checksum of the whole file (FNV-1a over its bytes).
fn checksum(path: &Path) -> u64 {
    use std::io::Read;
    let mut f = std::fs::File::open(path).unwrap();
    let mut buf = vec![0u8; 1 << 20];
    let mut h: u64 = 0xcbf29ce484222325;
    loop {
        let n = f.read(&mut buf).unwrap();
        if n == 0 {
            return h;
        }
        for b in &buf[..n] {
            h = (h ^ u64::from(*b)).wrapping_mul(0x100000001b3);
        }
    }
}

/// What the clone's overlay holds, read while it runs (`-U`: QEMU holds the write lock).
fn overlay_sectors(overlay: &Path, out: &Path) -> (String, String) {
    let st = Command::new("qemu-img")
        .args(["convert", "-U", "-f", "qcow2", "-O", "raw"])
        .arg(overlay)
        .arg(out)
        .status()
        .unwrap();
    assert!(st.success());
    sectors(&std::fs::read(out).unwrap())
}

fn wait_ticks(g: &mut StartedGuest<'_>, n: usize) {
    for _ in 0..n {
        g.expect("tick-", TICKS).unwrap_or_else(|e| panic!("{e}"));
    }
}

#[test]
fn clones_carry_on_from_the_saved_guest() {
    if !Path::new(QEMU).exists() {
        eprintln!("\n*** SKIPPED: {QEMU} is not installed ***\n");
        return;
    }
    let Some(kit) = bootkit::linux() else { return };
    let d = tempfile::Builder::new()
        .prefix("fc")
        .tempdir_in("/tmp")
        .unwrap();
    let conn = connect(d.path());
    let disk = d.path().join("disk.raw");
    std::fs::write(&disk, vec![0u8; 1 << 20]).unwrap();
    let tdir = d.path().join("template");

    // A guest that does not run makes no template, and leaves no state file.
    let g = kit_guest(&kit, "stopped", &disk).start(&conn).unwrap();
    g.domain().destroy().unwrap();
    let err = g.save_template(&tdir).unwrap_err().to_string();
    assert_eq!(
        err,
        "Requested operation is not valid: domain is not running"
    );
    assert!(!tdir.join("state.save").exists());
    assert!(!tdir.join("ram").exists());
    assert!(conn.lookup_domain_by_name("stopped").is_err());
    assert!(!conn.dirs().lib.join("fleet-ram/stopped.ram").exists());

    let mut g = kit_guest(&kit, "base", &disk).start(&conn).unwrap();
    let ready = g.expect("READY-", BOOT).unwrap_or_else(|e| panic!("{e}"));
    assert!(ready.contains(bootkit::GUEST_MARKER), "{ready}");
    wait_ticks(&mut g, 3);
    let t = g.save_template(&tdir).unwrap();
    let before = std::fs::read_to_string(conn.dirs().log.join("base.console.log")).unwrap();
    let (last, id) = ticks(&before).last().cloned().unwrap();
    assert!(
        conn.lookup_domain_by_name("base").is_err(),
        "base undefined"
    );
    let base = tdir.join("base-vda.raw");
    let base_bytes = std::fs::read(&base).unwrap();
    let (s0, s1) = sectors(&base_bytes);
    assert_eq!(s0, format!("disk-{id}"));
    // The save may fall between a count's echo and its write to the disk.
    assert!(
        s1 == format!("tick-{last}-{id}") || s1 == format!("tick-{}-{id}", last - 1),
        "{s1} after tick-{last}"
    );
    assert!(std::fs::metadata(&base).unwrap().permissions().readonly());
    // The user's own disk image stays theirs.
    assert_eq!(std::fs::read(&disk).unwrap(), base_bytes);
    // The guest's RAM file is the template's now, private to us; the stream left it out.
    let ram = tdir.join("ram");
    assert_eq!(t.ram_file(), Some(ram.as_path()));
    let meta = std::fs::metadata(&ram).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777,
        0o600
    );
    assert_eq!(meta.len(), 256 << 20);
    let image_len = std::fs::metadata(tdir.join("state.save")).unwrap().len();
    assert!(image_len < 32 << 20, "{image_len} bytes: RAM in the stream");
    assert!(!conn.dirs().lib.join("fleet-ram/base.ram").exists());
    let ram_sum = checksum(&ram);

    // The template again, from its directory: the same guest.
    let t2 = Template::open(&tdir).unwrap();
    assert_eq!(t2.definition(), t.definition());

    let mut clones: Vec<StartedGuest<'_>> = (0..3)
        .map(|i| t.clone_guest(&conn, &format!("c{i}")).unwrap())
        .collect();
    for c in &mut clones {
        wait_ticks(c, 3);
        let out = c.console_output();
        assert!(
            !out.contains("READY-"),
            "{}: booted again:\n{out}",
            c.name()
        );
        assert!(!out.contains(bootkit::GUEST_MARKER), "{}:\n{out}", c.name());
        let seen = ticks(&out);
        // The line being written at the save may be split between the two logs.
        assert!(
            seen[0].0 == last + 1 || seen[0].0 == last + 2,
            "{}: first tick {} after {last}:\n{out}",
            c.name(),
            seen[0].0
        );
        assert!(seen.iter().all(|(_, i)| *i == id), "{}:\n{out}", c.name());
    }
    let uuids: std::collections::HashSet<_> = clones.iter().map(|c| c.domain().uuid()).collect();
    assert_eq!(uuids.len(), 3);
    // A clone of a name in use is refused, and the running clone is untouched.
    let err = t.clone_guest(&conn, "c1").unwrap_err().to_string();
    assert!(
        err.starts_with("operation failed: domain 'c1' already exists with uuid "),
        "{err}"
    );
    wait_ticks(&mut clones[1], 1);

    // A clone's memory is its own: c1 writes /mark into its tmpfs; c0 and c2 go on without.
    clones[1].domain().inject_nmi(0).unwrap();
    clones[1]
        .expect("has-mark-", TICKS)
        .unwrap_or_else(|e| panic!("{e}"));
    wait_ticks(&mut clones[1], 1);
    for i in [0, 2] {
        wait_ticks(&mut clones[i], 3);
        let out = clones[i].console_output();
        assert!(!out.contains("has-mark"), "c{i}:\n{out}");
    }

    // Each clone writes its overlay; the base stays as saved.
    let lib = conn.dirs().lib.join("fleet-clones");
    let (s0, s1) = overlay_sectors(&lib.join("c1/vda.qcow2"), &d.path().join("c1.raw"));
    assert_eq!(s0, format!("disk-{id}"));
    let n: u64 = s1
        .strip_prefix("tick-")
        .and_then(|r| r.split('-').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{s1}"));
    assert!(n > last, "{s1}");
    assert_eq!(std::fs::read(&base).unwrap(), base_bytes);

    // Consoles are independent: with c0 gone, its log stops while the others go on.
    let c0 = clones.remove(0);
    let c0_log = c0.serial_log().to_path_buf();
    c0.destroy().unwrap();
    assert!(!lib.join("c0").exists(), "overlays go with the clone");
    let len = std::fs::metadata(&c0_log).unwrap().len();
    for c in &mut clones {
        wait_ticks(c, 2);
    }
    assert_eq!(std::fs::metadata(&c0_log).unwrap().len(), len);

    // The name is free again once the clone is gone; this clone, started after c1 wrote
    // its mark, starts from the template's memory, without it.
    let mut again = t.clone_guest(&conn, "c0").unwrap();
    wait_ticks(&mut again, 3);
    let out = again.console_output();
    assert!(!out.contains("has-mark"), "{out}");
    drop(again);
    drop(clones);
    assert_eq!(
        checksum(&ram),
        ram_sum,
        "a clone wrote the template's RAM file"
    );

    // Bad templates are refused before QEMU starts.
    let bad = d.path().join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    let err = Template::open(&bad).unwrap_err().to_string();
    assert!(err.starts_with("cannot open saved image"), "{err}");
    std::fs::write(bad.join("state.save"), b"short").unwrap();
    let err = Template::open(&bad).unwrap_err().to_string();
    assert_eq!(err, "operation failed: failed to read qemu header");
    std::fs::write(bad.join("state.save"), "not a save image ".repeat(20)).unwrap();
    let err = Template::open(&bad).unwrap_err().to_string();
    assert_eq!(err, "invalid argument: image magic is incorrect");
    // A template whose base disk is gone.
    let image = std::fs::read(tdir.join("state.save")).unwrap();
    let moved = d.path().join("moved");
    std::fs::create_dir_all(&moved).unwrap();
    std::fs::write(moved.join("state.save"), &image).unwrap();
    std::fs::set_permissions(&base, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    std::fs::rename(&base, d.path().join("away.raw")).unwrap();
    let err = Template::open(&moved).unwrap_err().to_string();
    assert!(
        err.contains("template base disk") && err.contains("is missing"),
        "{err}"
    );
    std::fs::rename(d.path().join("away.raw"), &base).unwrap();
    // A template whose RAM file is short.
    std::fs::write(moved.join("ram"), b"short").unwrap();
    let err = Template::open(&moved).unwrap_err().to_string();
    assert!(
        err.contains("template RAM file") && err.contains("holds 5 bytes"),
        "{err}"
    );
    std::fs::remove_file(moved.join("ram")).unwrap();
    // A whole header and XML with a corrupt migration stream: QEMU refuses it, and the
    // failed clone leaves no domain and no overlay behind.
    let mut corrupt = image.clone();
    let at = corrupt.len() / 2;
    corrupt.truncate(at);
    std::fs::write(moved.join("state.save"), &corrupt).unwrap();
    let tc = Template::open(&moved).unwrap();
    let err = tc.clone_guest(&conn, "broken").unwrap_err().to_string();
    assert!(err.contains("load of migration failed"), "{err}");
    assert!(conn.lookup_domain_by_name("broken").is_err());
    assert!(!lib.join("broken").exists());

    // Without a RAM file, the template's stream holds the RAM (saved here mid-boot), and
    // its clone loads it and boots on.
    let g = kit_guest(&kit, "second", &disk)
        .template_ram(false)
        .start(&conn)
        .unwrap();
    assert!(!conn.dirs().lib.join("fleet-ram/second.ram").exists());
    let tdir2 = d.path().join("template2");
    let t2 = g.save_template(&tdir2).unwrap();
    assert_eq!(t2.ram_file(), None);
    assert!(!tdir2.join("ram").exists());
    let mut c = t2.clone_guest(&conn, "streamed").unwrap();
    c.expect("READY-", BOOT).unwrap_or_else(|e| panic!("{e}"));
    wait_ticks(&mut c, 1);
    drop(c);

    // A directory that holds a template already is not overwritten.
    let g = kit_guest(&kit, "third", &disk).start(&conn).unwrap();
    let err = g.save_template(&tdir).unwrap_err().to_string();
    assert!(err.contains("holds a template already"), "{err}");
    assert_eq!(std::fs::read(tdir.join("state.save")).unwrap(), image);
    assert_eq!(checksum(&ram), ram_sum);
    assert!(!conn.dirs().lib.join("fleet-ram/third.ram").exists());
}

#[test]
fn disk_images_are_checked_and_follow_the_vfat_dirs() {
    let d = tempfile::tempdir().unwrap();
    let img = d.path().join("a.qcow2");
    std::fs::write(&img, b"").unwrap();
    let missing = d.path().join("none.raw");
    let err = GuestBuilder::new("g")
        .arch("x86_64")
        .disk_image(&missing, "raw")
        .to_xml()
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        format!("guest 'g': disk image {} is not a file", missing.display())
    );
    let err = GuestBuilder::new("g")
        .arch("x86_64")
        .disk_image(&img, "vmdk")
        .to_xml()
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        format!(
            "guest 'g': disk image {}: format 'vmdk' is neither raw nor qcow2",
            img.display()
        )
    );
    let xml = GuestBuilder::new("g")
        .arch("x86_64")
        .vfat_dir(d.path())
        .disk_image(&img, "qcow2")
        .to_xml()
        .unwrap();
    let at = xml
        .find(&format!("<source file='{}'/>", img.display()))
        .unwrap();
    let disk = &xml[xml[..at].rfind("<disk").unwrap()..];
    let disk = &disk[..disk.find("</disk>").unwrap()];
    assert!(
        disk.contains("<driver name='qemu' type='qcow2'/>"),
        "{disk}"
    );
    assert!(disk.contains("<target dev='vdb' bus='virtio'/>"), "{disk}");
    assert!(!disk.contains("<readonly/>"), "{disk}");
}
