//! `dom-fd-associate` and disks whose source is an fd group (libvirt: virDomainFDAssociate,
//! qemuDomainPrepareStorageSourceFDs): the descriptors vsh inherited reach QEMU through the
//! guest's monitor as `-add-fd` sets, the guest reads and writes the file through them, and
//! the association lives as long as the connection (one vsh process). vDPA interfaces: the
//! device is opened at start, as libvirt's qemuVDPAConnect does, with libvirt's words when it
//! cannot be.

#[path = "common/bootkit.rs"]
mod bootkit;
#[path = "common/vshrun.rs"]
mod vshrun;

use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::Path;

use vshrun::wait_for;

const QEMU: &str = "/usr/bin/qemu-system-x86_64";

/// The fd number vsh inherits the image at.
const FD: i32 = 7;

/// What the image starts with, and what the guest writes at its second sector.
const MARKER: &str = "FDGROUP-IMAGE-MARKER";
const WRITTEN: &str = "GUEST-WROTE-THROUGH-FD";

/// The guest: print the image's first bytes, write the second sector, flush.
const GUEST: &str = "head -c 20 /dev/vda; echo; \
echo GUEST-WROTE-THROUGH-FD | dd of=/dev/vda bs=512 seek=1 conv=notrunc 2>/dev/null; \
sync; echo FD-DONE";

fn have_qemu() -> bool {
    let ok = Path::new(QEMU).exists();
    if !ok {
        eprintln!("\n*** SKIPPED: {QEMU} is not installed ***\n");
    }
    ok
}

/// A TCG guest with `devices`; with `kit`, it boots Linux and runs [`GUEST`].
fn domain(name: &str, kit: Option<&bootkit::LinuxKit>, serial: &Path, devices: &str) -> String {
    let os = kit.map(|k| k.os_xml(GUEST)).unwrap_or_default();
    format!(
        "<domain type='qemu'><name>{name}</name><memory unit='MiB'>256</memory>
  <os><type arch='x86_64' machine='pc'>hvm</type>{os}</os>
  <devices><emulator>{QEMU}</emulator>{devices}
    <serial type='file'><source path='{}'/><target port='0'/></serial>
    <memballoon model='none'/></devices></domain>",
        serial.display()
    )
}

/// A disk from fd group `group`; its path exists nowhere, so QEMU can only have the file
/// through the group.
fn fd_disk(group: &str) -> String {
    format!(
        "<disk type='file' device='disk'><driver name='qemu' type='raw'/>
      <source file='/nonexistent/fdgroup.img' fdgroup='{group}'/>
      <target dev='vda' bus='virtio'/></disk>"
    )
}

/// `vsh` with `file` open at [`FD`]: one process, so one connection, for all of `line`.
fn vsh_with_fd(vsh: &vshrun::Vsh, line: &str, file: &std::fs::File) -> (bool, String, String) {
    let mut cmd = vsh.cmd(&[line]);
    let fd = file.as_raw_fd();
    // SAFETY: dup2 on integers in the forked child before exec (async-signal-safe).
    unsafe {
        cmd.pre_exec(move || {
            if nix::libc::dup2(fd, FD) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let o = cmd.output().unwrap();
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn fd_groups_reach_the_guest_for_as_long_as_the_connection() {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("r");
    let _reap = vshrun::Reaper(root.clone(), vec!["fdg"]);
    let vsh = vshrun::Vsh::new(root);
    let serial = dir.path().join("serial.log");
    let image = dir.path().join("disk.img");
    let mut data = MARKER.as_bytes().to_vec();
    data.resize(1 << 20, 0);
    std::fs::write(&image, &data).unwrap();

    // The verb and its refusals, in virsh's words.
    let help = vsh.ok(&["dom-fd-associate", "--help"]);
    assert!(help.contains("associate a FD with a domain"), "{help}");
    for opt in [
        "--name",
        "--pass-fds",
        "--seclabel-writable",
        "--seclabel-restore",
    ] {
        assert!(help.contains(opt), "{opt}: {help}");
    }
    assert_eq!(
        vsh.fails(&[
            "dom-fd-associate",
            "nosuch",
            "--name",
            "g",
            "--pass-fds",
            "0"
        ]),
        "error: failed to get domain 'nosuch'\n\
         error: Domain not found: no domain with matching name 'nosuch'\n"
    );
    let kit = bootkit::linux();
    let x = dir.path().join("fdg.xml");
    std::fs::write(&x, domain("fdg", kit.as_ref(), &serial, &fd_disk("grp"))).unwrap();
    vsh.ok(&["define", &x.display().to_string()]);
    assert_eq!(
        vsh.fails(&["dom-fd-associate", "fdg", "--name", "g", "--pass-fds", "99"]),
        "error: Cannot duplicate FD 99: Bad file descriptor\n"
    );
    assert_eq!(
        vsh.fails(&[
            "dom-fd-associate",
            "fdg",
            "--name",
            "g",
            "--pass-fds",
            "0,x"
        ]),
        "error: Unable to parse FD number 'x'\n"
    );
    assert_eq!(
        vsh.fails(&["dom-fd-associate", "fdg", "g"]),
        "error: command 'dom-fd-associate' requires --pass-fds option\n"
    );

    // Not associated: refused before any QEMU runs. An association of another vsh process
    // is gone with it, and one under another name does not serve.
    let not_associated = "error: Failed to start domain 'fdg'\n\
        error: invalid argument: file descriptor group 'grp' was not associated with the domain\n";
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&image)
        .unwrap();
    let (ok, _, _) = vsh_with_fd(&vsh, &format!("dom-fd-associate fdg grp {FD}"), &f);
    assert!(ok);
    assert_eq!(vsh.fails(&["start", "fdg"]), not_associated);
    let (ok, _, err) = vsh_with_fd(
        &vsh,
        &format!("dom-fd-associate fdg --name other --pass-fds {FD}; start fdg"),
        &f,
    );
    assert!(!ok);
    assert_eq!(err, not_associated);
    assert_eq!(vsh.ok(&["domstate", "fdg"]), "shut off\n\n");

    // Associated in the same vsh: the guest starts with the file QEMU never opened by path.
    let (ok, out, err) = vsh_with_fd(
        &vsh,
        &format!("dom-fd-associate fdg --name grp --pass-fds {FD} --seclabel-writable; start fdg"),
        &f,
    );
    assert!(ok, "{err}");
    assert_eq!(out, "\nDomain 'fdg' started\n\n");
    drop(f);
    let blocks = vsh.ok(&[
        "qemu-monitor-command",
        "fdg",
        "{\"execute\":\"query-block\"}",
    ]);
    let v: serde_json::Value = serde_json::from_str(&blocks).unwrap();
    let vda = v["return"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| {
            b["qdev"]
                .as_str()
                .is_some_and(|q| q.contains("virtio-disk0"))
        })
        .unwrap_or_else(|| panic!("no virtio-disk0: {blocks}"));
    assert_eq!(vda["inserted"]["file"], "/dev/fdset/0", "{blocks}");
    assert_eq!(vda["inserted"]["ro"], false, "{blocks}");
    // QEMU holds the test's file (by descriptor: its path is nowhere on its command line).
    let status = std::fs::read_to_string(dir.path().join("r/run/qemu/fdg.json")).unwrap();
    let pid = serde_json::from_str::<serde_json::Value>(&status).unwrap()["pid"]
        .as_i64()
        .unwrap();
    let held = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .any(|e| std::fs::read_link(e.path()).is_ok_and(|l| l == image));
    assert!(held, "QEMU does not hold {}", image.display());
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(!String::from_utf8_lossy(&cmdline).contains(&image.display().to_string()));

    // The guest reads the image and writes to it through the passed descriptor.
    if kit.is_some() {
        assert!(
            wait_for(&serial, "FD-DONE", 180),
            "the guest never finished: {}",
            std::fs::read_to_string(&serial).unwrap_or_default()
        );
        let console = std::fs::read_to_string(&serial).unwrap();
        assert!(console.contains(MARKER), "{console}");
        let now = std::fs::read(&image).unwrap();
        assert_eq!(&now[512..512 + WRITTEN.len()], WRITTEN.as_bytes());
    }
    // Hotplug of such a disk is refused (its descriptors cannot reach QEMU yet), QEMU
    // untouched.
    let hot = dir.path().join("hot.xml");
    std::fs::write(&hot, fd_disk("grp").replace("'vda'", "'vdb'")).unwrap();
    let hot = hot.display().to_string();
    let (ok, _, err) = vsh_with_fd(
        &vsh,
        &format!("dom-fd-associate fdg grp {FD}; attach-device fdg {hot} --live"),
        &std::fs::File::open(&image).unwrap(),
    );
    assert!(!ok);
    assert_eq!(
        err,
        format!(
            "error: Failed to attach device from {hot}\n\
             error: unsupported configuration: hotplug of a disk from a file descriptor group \
             is not supported yet\n"
        )
    );
    vsh.ok(&["destroy", "fdg"]);
}

#[test]
fn vdpa_devices_are_opened_at_start() {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("r");
    let _reap = vshrun::Reaper(root.clone(), vec!["vdpa", "vdpa2"]);
    let vsh = vshrun::Vsh::new(root);
    let serial = dir.path().join("serial.log");
    let nic = |dev: &str| {
        format!(
            "<interface type='vdpa'><mac address='52:54:00:aa:bb:03'/><source dev='{dev}'/>\
             <model type='virtio'/></interface>"
        )
    };
    let missing = "/dev/vhost-vdpa-77";
    assert!(!Path::new(missing).exists());
    let x = dir.path().join("vdpa.xml");
    std::fs::write(&x, domain("vdpa", None, &serial, &nic(missing))).unwrap();
    let x = x.display().to_string();
    vsh.ok(&["define", &x]);
    let open_failed =
        "error: Unable to open '/dev/vhost-vdpa-77' for vdpa device: No such file or directory\n";
    assert_eq!(
        vsh.fails(&["start", "vdpa"]),
        format!("error: Failed to start domain 'vdpa'\n{open_failed}")
    );
    assert_eq!(vsh.ok(&["domstate", "vdpa"]), "shut off\n\n");
    // libvirt opens whatever the path names, read-write, without checking that it is a vDPA
    // device: QEMU gets it in an fd set and tells (its query of the device fails on a
    // plain file, which shows the descriptor reached it).
    let other = dir.path().join("not-vdpa");
    std::fs::write(&other, "").unwrap();
    let y = dir.path().join("other.xml");
    std::fs::write(
        &y,
        domain("vdpa2", None, &serial, &nic(&other.display().to_string())),
    )
    .unwrap();
    vsh.ok(&["define", &y.display().to_string()]);
    let e = vsh.fails(&["start", "vdpa2"]);
    assert!(
        e.contains("\"vhostdev\":\"/dev/fdset/0\"")
            && e.contains("Fail to query features from vhost-vDPA device"),
        "{e}"
    );
    assert_eq!(vsh.ok(&["domstate", "vdpa2"]), "shut off\n\n");
}
