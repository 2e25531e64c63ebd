//! vhost-user back-ends, mediated and SCSI host devices, guestfwd channels: what is wrong in
//! their definitions is an error naming it, and what only a real host can answer (a SCSI
//! generic node, a vhost-user-gpu helper) is refused when the caller has no answer, never
//! guessed.

mod common;

use domdriver::capabilities::qemu::{QemuCaps, probe_replies};
use domdriver::conformance::harness::{case_context, run_case};

fn x86() -> QemuCaps {
    let path = common::testdata().join("tests/qemucapabilitiesdata/caps_8.0.0.x86_64.replies");
    domdriver::runtime::block_on(probe_replies(&path, "/usr/bin/qemu-system-x86_64"))
        .expect("replay caps")
}

fn domain(devices: &str) -> String {
    format!(
        "<domain type='qemu'><name>t</name><memory>219136</memory><vcpu>1</vcpu>\
         <os><type arch='x86_64' machine='pc'>hvm</type></os>\
         <devices><emulator>/usr/bin/qemu-system-x86_64</emulator>{devices}</devices></domain>"
    )
}

/// The build's outcome in the test harness's context: `(ext, body)`.
fn build(devices: &str) -> (&'static str, String) {
    run_case("t", "x86_64", &domain(devices), &x86())
}

fn error(devices: &str) -> String {
    let (ext, body) = build(devices);
    assert_eq!(ext, "err", "{body}");
    body.trim_end().to_string()
}

/// The build's error in a context whose `adjust` takes away what the harness pretends.
fn error_in(devices: &str, adjust: impl FnOnce(&mut domdriver::xml2argv::LaunchContext)) -> String {
    let mut def = domdriver::domain::parse(&domain(devices)).expect("parse");
    domdriver::domain::prepare::assign_aliases(&mut def);
    let mut ctx = case_context("t", &def);
    adjust(&mut ctx);
    domdriver::xml2argv::build(&def, &x86(), &ctx)
        .unwrap_err()
        .to_string()
}

#[test]
fn vhost_user_disk_talks_to_its_socket() {
    let disk = "<disk type='vhostuser' device='disk'><driver name='qemu' type='raw'/>\
        <source type='unix' path='/tmp/vu.sock'><reconnect enabled='yes' timeout='5'/></source>\
        <target dev='vda' bus='virtio'/></disk>";
    let (ext, body) = build(disk);
    assert_eq!(ext, "args", "{body}");
    assert!(
        body.contains("-chardev socket,id=chr-vu-virtio-disk0,path=/tmp/vu.sock,reconnect=5"),
        "{body}"
    );
    assert!(body.contains("\"driver\":\"vhost-user-blk-pci\""), "{body}");
    assert!(
        body.contains("\"chardev\":\"chr-vu-virtio-disk0\""),
        "{body}"
    );
    // No block nodes: the back-end serves the image.
    assert!(!body.contains("-blockdev"), "{body}");
}

#[test]
fn vhost_user_disk_without_a_socket_path() {
    let disk = "<disk type='vhostuser' device='disk'><driver name='qemu' type='raw'/>\
        <source type='unix'/><target dev='vda' bus='virtio'/></disk>";
    let e = error(disk);
    assert!(
        e.ends_with("Missing source path attribute for char device"),
        "{e}"
    );
}

#[test]
fn vhost_user_gpu_needs_its_helper() {
    let video = "<video><driver name='vhostuser'/><model type='virtio' heads='1'/></video>";
    let (ext, body) = build(video);
    assert_eq!(ext, "args", "{body}");
    assert!(body.contains("\"driver\":\"vhost-user-vga\""), "{body}");
    let e = error_in(video, |c| c.bind_socket_fd = None);
    assert!(e.contains("vhost-user-gpu helper"), "{e}");
}

#[test]
fn mediated_device_needs_a_known_model() {
    let mdev = |model: &str| {
        format!(
            "<hostdev mode='subsystem' type='mdev' {model}><source>\
             <address uuid='53764d0e-85a0-42b4-af5c-2046b460b1dc'/></source></hostdev>"
        )
    };
    let (ext, body) = build(&mdev("model='vfio-pci'"));
    assert_eq!(ext, "args", "{body}");
    assert!(
        body.contains(
            "\"sysfsdev\":\"/sys/bus/mdev/devices/53764d0e-85a0-42b4-af5c-2046b460b1dc\""
        ),
        "{body}"
    );
    let e = error(&mdev("model='vfio-bogus'"));
    assert!(e.contains("vfio-bogus"), "{e}");
    let e = error(&mdev(""));
    assert!(e.contains("model"), "{e}");
}

#[test]
fn vhost_scsi_needs_protocol_and_wwpn() {
    let scsi_host = |src: &str| {
        format!("<hostdev mode='subsystem' type='scsi_host' managed='no'>{src}</hostdev>")
    };
    let (ext, body) = build(&scsi_host(
        "<source protocol='vhost' wwpn='naa.5123456789abcde0'/>",
    ));
    assert_eq!(ext, "args", "{body}");
    assert!(body.contains("\"driver\":\"vhost-scsi-pci\""), "{body}");
    let e = error(&scsi_host("<source protocol='vhost'/>"));
    assert!(e.contains("wwpn"), "{e}");
    let e = error(&scsi_host("<source wwpn='naa.5123456789abcde0'/>"));
    assert!(e.contains("protocol"), "{e}");
}

#[test]
fn local_scsi_hostdev_needs_the_hosts_answer() {
    let hostdev = "<controller type='scsi' index='0' model='virtio-scsi'/>\
        <hostdev mode='subsystem' type='scsi'><source><adapter name='scsi_host0'/>\
        <address bus='0' target='0' unit='0'/></source></hostdev>";
    let (ext, body) = build(hostdev);
    assert_eq!(ext, "args", "{body}");
    assert!(body.contains("\"filename\":\"/dev/sg0\""), "{body}");
    let e = error_in(hostdev, |c| c.scsi_generic_dev = None);
    assert!(e.contains("scsi_host0:0:0:0"), "{e}");
    let e = error(
        "<controller type='scsi' index='0' model='virtio-scsi'/>\
        <hostdev mode='subsystem' type='scsi'><source>\
        <address bus='0' target='0' unit='0'/></source></hostdev>",
    );
    assert!(e.contains("adapter"), "{e}");
}

#[test]
fn guestfwd_needs_an_address_and_port() {
    let chan =
        |target: &str| format!("<channel type='pty'><target type='guestfwd' {target}/></channel>");
    let (ext, body) = build(&chan("address='10.0.2.1' port='4600'"));
    assert_eq!(ext, "args", "{body}");
    assert!(
        body.contains("\"guestfwd\":[{\"str\":\"tcp:10.0.2.1:4600-chardev:charchannel0\"}]"),
        "{body}"
    );
    let e = error(&chan("port='4600'"));
    assert!(e.contains("address"), "{e}");
    let e = error(&chan("address='10.0.2.1'"));
    assert!(e.contains("port"), "{e}");
    let e = error(&chan("address='not-an-ip' port='4600'"));
    assert!(e.contains("not-an-ip"), "{e}");
}

#[test]
fn vhost_user_disk_is_not_hotplugged_without_its_chardev() {
    let disk = "<disk type='vhostuser' device='disk'><driver name='qemu' type='raw'/>\
        <source type='unix' path='/tmp/vu.sock'/><target dev='vda' bus='virtio'/></disk>";
    let mut def = domdriver::domain::parse(&domain(disk)).expect("parse");
    domdriver::domain::prepare::assign_aliases(&mut def);
    let ctx = case_context("t", &def);
    let e = domdriver::xml2argv::props::disk_props(
        &def,
        &x86(),
        &ctx,
        0,
        &[],
        domdriver::xml2argv::props::Plug::Hot,
    )
    .unwrap_err();
    assert!(e.to_string().contains("vhostuser disk"), "{e}");
}
