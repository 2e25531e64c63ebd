//! Host checks before QEMU starts: a missing shared directory or a taken listen port is
//! refused with the directory or address named, and no QEMU is left behind.

use std::net::TcpListener;
use std::path::Path;

use domdriver::Connect;

fn have_qemu() -> bool {
    let ok = Path::new("/usr/bin/qemu-system-x86_64").exists();
    if !ok {
        eprintln!("\n*** SKIPPED: qemu-system-x86_64 is not installed ***\n");
    }
    ok
}

fn domain(name: &str, devices: &str) -> String {
    format!(
        "<domain type='qemu'>
  <name>{name}</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
{devices}
    <memballoon model='none'/>
  </devices>
</domain>
"
    )
}

/// Define `xml` in a fresh embed root and start it; the start error's text.
fn start_error(xml: &str) -> String {
    let d = tempfile::tempdir().unwrap();
    let uri = format!("qemu:///embed?root={}", d.path().join("root").display());
    let conn = Connect::open(Some(&uri)).unwrap();
    let dom = conn.define_domain_xml(xml).unwrap();
    let err = dom.create().expect_err("start must be refused");
    assert!(!dom.is_active().unwrap(), "no guest may be left running");
    err.to_string()
}

/// Start a guest whose `element` (given the path) names a directory that does not exist; the
/// error must name that directory and say why.
fn missing_dir_error(name: &str, element: impl Fn(&str) -> String) -> String {
    let d = tempfile::tempdir().unwrap();
    let missing = d.path().join("no-such-dir").display().to_string();
    let err = start_error(&domain(name, &element(&missing)));
    assert!(err.contains(&missing), "{err}");
    assert!(err.contains("No such file or directory"), "{err}");
    err
}

#[test]
fn missing_filesystem_source_is_named() {
    if !have_qemu() {
        return;
    }
    let err = missing_dir_error("fsmissing", |dir| {
        format!(
            "<filesystem type='mount' accessmode='mapped'><source dir='{dir}'/><target dir='share'/></filesystem>"
        )
    });
    assert!(err.contains("filesystem source"), "{err}");
}

#[test]
fn filesystem_source_that_is_a_file_is_refused() {
    if !have_qemu() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let file = d.path().join("plain-file");
    std::fs::write(&file, b"x").unwrap();
    let xml = domain(
        "fsfile",
        &format!(
            "<filesystem type='mount'><source dir='{}'/><target dir='share'/></filesystem>",
            file.display()
        ),
    );
    let err = start_error(&xml);
    assert!(
        err.contains(&format!("'{}' is not a directory", file.display())),
        "{err}"
    );
}

#[test]
fn missing_vvfat_directory_is_named() {
    if !have_qemu() {
        return;
    }
    let err = missing_dir_error("vvfatmissing", |dir| {
        format!(
            "<disk type='dir' device='floppy'><driver name='qemu' type='fat'/><source dir='{dir}'/><target dev='fda' bus='fdc'/><readonly/></disk>"
        )
    });
    assert!(err.contains("disk 'fda'"), "{err}");
}

#[test]
fn server_port_in_use_is_named() {
    if !have_qemu() {
        return;
    }
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let xml = domain(
        "portbusy",
        &format!(
            "<interface type='server'><source address='127.0.0.1' port='{port}'/><model type='virtio'/></interface>"
        ),
    );
    let err = start_error(&xml);
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
    assert!(err.contains("interface 0"), "{err}");
    drop(taken);
}
