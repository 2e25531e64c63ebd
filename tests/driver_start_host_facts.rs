//! What a start needs from the host and the caller, checked as libvirt checks it: guest
//! memory bound to a NUMA node the host lacks, huge pages of a size no hugetlbfs mount serves
//! (qemuBuildMemoryBackendProps), and a disk whose source is an fd group nobody passed
//! (qemuDomainPrepareStorageSourceFDs) are refused with libvirt's messages before any QEMU
//! runs.

use std::path::Path;
use std::time::Duration;

use domdriver::Connect;
use domdriver::capabilities::host::HostRoot;
use domdriver::driver::ConnectOptions;

fn have_qemu() -> bool {
    let ok = Path::new("/usr/bin/qemu-system-x86_64").exists();
    if !ok {
        eprintln!("\n*** SKIPPED: qemu-system-x86_64 is not installed ***\n");
    }
    ok
}

fn domain(name: &str, extra: &str) -> String {
    format!(
        "<domain type='qemu'>
  <name>{name}</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  {extra}
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <memballoon model='none'/>
  </devices>
</domain>
"
    )
}

/// A host whose /proc is this one's except for `mounts` (and /sys, /etc real).
fn host_with_mounts(dir: &Path, mounts: &str) -> HostRoot {
    let proc_dir = dir.join("proc");
    std::fs::create_dir_all(&proc_dir).unwrap();
    for entry in ["cpuinfo", "meminfo", "self", "sys", "stat", "uptime"] {
        std::os::unix::fs::symlink(Path::new("/proc").join(entry), proc_dir.join(entry)).unwrap();
    }
    std::fs::write(proc_dir.join("mounts"), mounts).unwrap();
    HostRoot::with_dirs(proc_dir, "/sys", "/etc")
}

/// Define `xml` on a connection over `host` and start it; the start error's text. Define
/// accepts it, as libvirtd's does: the host facts are the start's.
fn start_error(host: HostRoot, xml: &str) -> String {
    let d = tempfile::tempdir().unwrap();
    let opts = ConnectOptions {
        host_root: host,
        emulator_dirs: vec!["/usr/bin".into()],
        probe_timeout: Duration::from_secs(60),
        ..ConnectOptions::default()
    };
    let uri = format!("qemu:///embed?root={}", d.path().join("root").display());
    let conn = Connect::open_with(Some(&uri), opts).unwrap();
    let dom = conn.define_domain_xml(xml).unwrap();
    let err = dom.create().expect_err("start must be refused");
    assert!(!dom.is_active().unwrap(), "no guest may be left running");
    err.to_string()
}

#[test]
fn nodeset_the_host_lacks_is_refused_at_start() {
    if !have_qemu() {
        return;
    }
    let xml = domain(
        "numa999",
        "<numatune><memory mode='strict' nodeset='999'/></numatune>",
    );
    assert_eq!(
        start_error(HostRoot::real(), &xml),
        "unsupported configuration: NUMA node 999 is unavailable"
    );
    // A memnode's nodeset is checked as well (libvirt: virDomainNumatuneNodesetIsAvailable).
    let xml = domain(
        "memnode999",
        "<numatune><memnode cellid='0' mode='strict' nodeset='0,999'/></numatune>
  <cpu><numa><cell id='0' cpus='0' memory='65536' unit='KiB'/></numa></cpu>",
    );
    assert_eq!(
        start_error(HostRoot::real(), &xml),
        "unsupported configuration: NUMA node 999 is unavailable"
    );
}

#[test]
fn huge_page_size_without_a_mount_is_refused_at_start() {
    if !have_qemu() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let pages = "<memoryBacking><hugepages><page size='5' unit='MiB'/></hugepages></memoryBacking>";
    let host = host_with_mounts(
        &d.path().join("a"),
        "proc /proc proc rw 0 0\nhugetlbfs /dev/hugepages hugetlbfs rw,relatime,pagesize=2M 0 0\n",
    );
    assert_eq!(
        start_error(host, &domain("huge5m", pages)),
        "internal error: Unable to find any usable hugetlbfs mount for 5120 KiB"
    );
    // No hugetlbfs mounted at all: even the default size has nowhere to go.
    let host = host_with_mounts(&d.path().join("b"), "proc /proc proc rw 0 0\n");
    let pages = "<memoryBacking><hugepages/></memoryBacking>";
    assert_eq!(
        start_error(host, &domain("hugedefault", pages)),
        "internal error: hugetlbfs filesystem is not mounted or disabled by administrator config"
    );
}

#[test]
fn disk_from_an_fd_group_nobody_passed_is_refused_at_start() {
    if !have_qemu() {
        return;
    }
    let xml = domain("fdgroup", "").replace(
        "<memballoon model='none'/>",
        "<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>
      <source file='/path/to/blah' fdgroup='testgroup2'/><target dev='vda' bus='virtio'/></disk>
    <memballoon model='none'/>",
    );
    assert_eq!(
        start_error(HostRoot::real(), &xml),
        "invalid argument: file descriptor group 'testgroup2' was not associated with the domain"
    );
}

/// File-backed RAM (`<access mode='shared'/>` without memfd) goes where the connection keeps
/// its state (libvirt's `memory_backing_dir`, per start `ID-NAME`), not libvirt's own path:
/// the guest starts, QEMU's RAM file is there, and the dir goes with the guest.
#[test]
fn file_backed_ram_lives_in_the_connections_memory_backing_dir() {
    if !have_qemu() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("root");
    let opts = ConnectOptions {
        emulator_dirs: vec!["/usr/bin".into()],
        probe_timeout: Duration::from_secs(60),
        ..ConnectOptions::default()
    };
    let uri = format!("qemu:///embed?root={}", root.display());
    let conn = Connect::open_with(Some(&uri), opts).unwrap();
    let xml = domain(
        "fileram",
        "<memoryBacking><access mode='shared'/></memoryBacking>",
    );
    let dom = conn.define_domain_xml(&xml).unwrap();
    dom.create().unwrap();
    let id = dom.id().unwrap().expect("a running guest has an id");
    let ram_dir = domdriver::driver::launch::ram_dir_of(&conn.dirs().lib, "fileram", id);
    let started = ram_dir.join("pc.ram").exists();
    dom.destroy().unwrap();
    assert!(started, "no RAM file in {}", ram_dir.display());
    assert!(
        !ram_dir.exists(),
        "{} outlived the guest",
        ram_dir.display()
    );
}

/// memfd memory from huge pages, as libvirt builds it (qemuBuildMemoryBackendProps' memfd
/// case): `memory-backend-memfd` with `hugetlb` and the page size, preallocated; a given size
/// needs no hugetlbfs mount (QEMU asks the kernel directly), the default size is the default
/// mount's and without any mount it is refused in libvirt's words. A size the kernel has no
/// pool for is refused by QEMU at start, as under libvirt, which checks no pools: no guest is
/// left. The host's pools are never touched.
#[test]
fn memfd_memory_from_huge_pages() {
    if !have_qemu() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let memfd =
        |pages: &str| format!("<memoryBacking>{pages}<source type='memfd'/></memoryBacking>");
    let native = |host: HostRoot, xml: &str| {
        let opts = ConnectOptions {
            host_root: host,
            emulator_dirs: vec!["/usr/bin".into()],
            probe_timeout: Duration::from_secs(60),
            ..ConnectOptions::default()
        };
        let uri = format!("qemu:///embed?root={}", d.path().join("root").display());
        let conn = Connect::open_with(Some(&uri), opts).unwrap();
        conn.domain_xml_to_native(xml)
            .map(|c| c.args.join(" "))
            .map_err(|e| e.to_string())
    };
    let none = host_with_mounts(&d.path().join("none"), "proc /proc proc rw 0 0\n");
    let no_mounts = || none.clone();
    let sized = memfd("<hugepages><page size='2' unit='MiB'/></hugepages>");
    let args = native(no_mounts(), &domain("memfd2m", &sized)).unwrap();
    assert!(
        args.contains(
            "-object {\"qom-type\":\"memory-backend-memfd\",\"id\":\"pc.ram\",\"hugetlb\":true,\
             \"hugetlbsize\":2097152,\"x-use-canonical-path-for-ramblock-id\":false,\
             \"prealloc\":true,\"size\":67108864}"
        ),
        "{args}"
    );
    let unsized_pages = memfd("<hugepages/>");
    let mounted = host_with_mounts(
        &d.path().join("mounted"),
        "proc /proc proc rw 0 0\nhugetlbfs /dev/hugepages hugetlbfs rw,relatime,pagesize=2M 0 0\n",
    );
    let args = native(mounted, &domain("memfddef", &unsized_pages)).unwrap();
    assert!(
        args.contains("\"hugetlb\":true,\"hugetlbsize\":2097152"),
        "{args}"
    );
    assert_eq!(
        native(no_mounts(), &domain("memfddef", &unsized_pages)).unwrap_err(),
        "internal error: hugetlbfs filesystem is not mounted or disabled by administrator config"
    );
    // x86 has no 16 MiB pages: the kernel refuses QEMU's memfd.
    let odd = memfd("<hugepages><page size='16' unit='MiB'/></hugepages>");
    let e = start_error(HostRoot::real(), &domain("memfd16m", &odd));
    assert!(e.contains("failed to create memfd"), "{e}");
}
