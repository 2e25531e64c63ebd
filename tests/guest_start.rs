//! `Domain::create` end to end: domain XML → prepare → xml2argv → a real guest under TCG.

#[path = "common/bootkit.rs"]
mod bootkit;

use std::path::Path;
use std::time::{Duration, Instant};

use domdriver::Connect;
use domdriver::capabilities::host::HostRoot;
use domdriver::driver::ConnectOptions;
use domdriver::driver::domain::ListFlags;

fn wait_for(path: &Path, marker: &str, limit: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if std::fs::read_to_string(path).is_ok_and(|s| s.contains(marker)) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

#[test]
fn define_start_and_destroy_a_linux_guest() {
    if !Path::new("/usr/bin/qemu-system-x86_64").exists() {
        eprintln!("\n*** SKIPPED: qemu-system-x86_64 is not installed ***\n");
        return;
    }
    let Some(kit) = bootkit::linux() else {
        return;
    };
    let d = tempfile::tempdir().unwrap();
    let serial = d.path().join("serial.log");
    let xml = format!(
        "<domain type='qemu'>
  <name>kit</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>{}</kernel>
    <initrd>{}</initrd>
    <cmdline>{}</cmdline>
  </os>
  <devices>
    <serial type='file'>
      <source path='{}'/>
      <target port='0'/>
    </serial>
    <memballoon model='none'/>
  </devices>
</domain>
",
        kit.kernel.display(),
        kit.initrd.display(),
        kit.cmdline(),
        serial.display()
    );
    let uri = format!("qemu:///embed?root={}", d.path().join("root").display());
    let conn = Connect::open(Some(&uri)).unwrap();
    let dom = conn.define_domain_xml(&xml).unwrap();
    dom.create().unwrap();
    let up = wait_for(&serial, bootkit::GUEST_MARKER, Duration::from_secs(120));
    let state = dom.state().unwrap().to_string();
    let live = dom
        .xml_desc(domdriver::domain::FormatFlags {
            inactive: false,
            secure: true,
        })
        .unwrap();
    let listed = conn.list_all_domains(ListFlags(1)).unwrap().len();
    dom.destroy().unwrap();
    assert!(up, "guest never printed its marker");
    assert_eq!(state, "running (booted)");
    assert!(live.contains("<domain type='qemu' id='1'>"), "{live}");
    assert_eq!(listed, 1);
    assert_eq!(dom.state().unwrap().to_string(), "shut off (destroyed)");
    // The guest's log starts with the command line xml2argv built.
    let log = std::fs::read_to_string(d.path().join("root/log/qemu/kit.log")).unwrap();
    assert!(log.contains("-name guest=kit,debug-threads=on"), "{log}");
    assert!(log.contains("-kernel "), "{log}");
}

#[test]
fn kvm_domain_without_kvm_is_refused() {
    if !Path::new("/usr/bin/qemu-system-x86_64").exists() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let opts = ConnectOptions {
        host_root: HostRoot::real(),
        emulator_dirs: vec!["/usr/bin".into()],
        kvm_device: "/dev/null".into(),
        probe_timeout: Duration::from_secs(30),
        ..ConnectOptions::default()
    };
    let uri = format!("qemu:///embed?root={}", d.path().display());
    let conn = Connect::open_with(Some(&uri), opts).unwrap();
    // libvirt refuses this at define already (qemuValidateDomainDef): the emulator's caps,
    // probed without a usable /dev/kvm, list no kvm domain type.
    let e = conn
        .define_domain_xml(
            "<domain type='kvm'><name>k</name><memory>65536</memory><os><type arch='x86_64'>hvm</type></os></domain>",
        )
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "unsupported configuration: Emulator '/usr/bin/qemu-system-x86_64' does not support virt type 'kvm'"
    );
    assert!(conn.lookup_domain_by_name("k").is_err());
}

#[test]
fn arch_nobody_installed_names_the_package() {
    let d = tempfile::tempdir().unwrap();
    let opts = ConnectOptions {
        host_root: HostRoot::real(),
        emulator_dirs: vec![d.path().join("empty")],
        kvm_device: "/dev/null".into(),
        probe_timeout: Duration::from_secs(5),
        ..ConnectOptions::default()
    };
    let uri = format!("qemu:///embed?root={}", d.path().display());
    let conn = Connect::open_with(Some(&uri), opts).unwrap();
    // define runs the post-parse against the emulator's caps, as libvirtd does, so the
    // missing emulator is reported there already.
    let e = match conn.define_domain_xml(
        "<domain type='qemu'><name>a</name><memory>65536</memory><os><type arch='aarch64' machine='virt'>hvm</type></os></domain>",
    ) {
        Ok(_) => panic!("define accepted a domain no emulator runs"),
        Err(e) => e.to_string(),
    };
    assert_eq!(
        e,
        "unsupported configuration: no emulator found for arch 'aarch64': install qemu-system-aarch64 (Debian package qemu-system-arm)"
    );
}
