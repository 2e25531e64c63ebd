//! Live guests, the device kinds beyond disks and interfaces: random number generators,
//! watchdogs, SCSI controllers, virtio-serial channels, network (NBD) and USB disks, and
//! libvirt's refusals (controllers it does not hotplug, host devices without VFIO, 9p).
//! One booted TCG guest serves every in-guest assertion; its script prints what it sees in
//! /sys whenever that changes. Also: the properties each kind gets on the command line are
//! the ones hotplug sends.

#[path = "common/bootkit.rs"]
mod bootkit;
mod common;
#[path = "common/guests.rs"]
mod guests;
#[path = "common/live.rs"]
mod live;
#[path = "common/vshrun.rs"]
mod vshrun;

use live::{Live, eventually};

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use domdriver::capabilities::qemu::probe_replies;
use domdriver::conformance::harness::{harness_context, prepare_options};
use domdriver::xml2argv::props;
use serde_json::Value;

const QEMU: &str = "/usr/bin/qemu-system-x86_64";

// ---- the same properties cold and hot ---------------------------------------------------

const COLD: &str = "<domain type='qemu'><name>cold</name><memory>219136</memory><vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices><emulator>/usr/bin/qemu-system-x86_64</emulator>
    <controller type='scsi' index='0' model='virtio-scsi'><driver queues='2'/></controller>
    <controller type='virtio-serial' index='0' ports='8'/>
    <channel type='unix'><source mode='bind' path='/var/lib/c.sock'/>
      <target type='virtio' name='org.test.0'/></channel>
    <watchdog model='i6300esb' action='poweroff'/>
    <rng model='virtio'><rate period='2000' bytes='1234'/><backend model='random'>/dev/urandom</backend></rng>
    <rng model='virtio'><backend model='builtin'/><alias name='ua-r'/></rng>
    <memballoon model='none'/>
  </devices></domain>";

/// Each kind's `-object`, `-device` and `-chardev` on the command line are what its props
/// function gives: hotplug sends exactly those.
#[test]
fn more_kinds_cold_and_hot_agree() {
    let path = common::testdata().join("tests/qemucapabilitiesdata/caps_8.0.0.x86_64.replies");
    let caps = domdriver::runtime::block_on(probe_replies(&path, QEMU)).expect("replay caps");
    let def = domdriver::domain::parse(COLD).unwrap();
    let mut def =
        domdriver::domain::prepare(def, &caps, &prepare_options("cold", "x86_64")).unwrap();
    domdriver::domain::prepare::assign_aliases(&mut def);
    let ctx = harness_context(&def);
    let args = domdriver::xml2argv::build(&def, &caps, &ctx).unwrap().args;
    let has = |opt: &str, v: &Value| {
        let text = serde_json::to_string(v).unwrap();
        args.windows(2).any(|w| w[0] == opt && w[1] == text)
    };
    for i in 0..def.devices.rngs.len() {
        let p = props::rng_props(&def, &caps, &ctx, i).unwrap();
        assert!(has("-object", &p.object), "rng {i}: {}", p.object);
        assert!(has("-device", &p.device), "rng {i}: {}", p.device);
        assert!(p.chardev.is_none());
    }
    let r0 = props::rng_props(&def, &caps, &ctx, 0).unwrap();
    assert_eq!(r0.object["filename"], "/dev/urandom");
    assert_eq!(r0.device["max-bytes"], 1234);
    let r1 = props::rng_props(&def, &caps, &ctx, 1).unwrap();
    assert_eq!(r1.object["qom-type"], "rng-builtin");
    assert_eq!(r1.device["id"], "ua-r");
    let w = props::watchdog_props(&def, &caps, &ctx, 0).unwrap();
    assert!(has("-device", &w), "{w}");
    assert_eq!(w["driver"], "i6300esb");
    assert!(
        args.windows(2)
            .any(|a| a[0] == "-watchdog-action" && a[1] == "poweroff")
    );
    assert_eq!(props::watchdog_action("dump"), "pause");
    let mut devices = 0;
    for i in 0..def.devices.controllers.len() {
        if let Some(d) = props::controller_props(&def, &caps, &ctx, i).unwrap() {
            assert!(has("-device", &d), "controller {i}: {d}");
            devices += 1;
        }
    }
    // virtio-scsi, virtio-serial and the implicit USB controller; the PCI root and IDE
    // are the machine's own.
    assert_eq!(devices, 3);
    let c = props::channel_props(&def, &caps, &ctx, 0).unwrap();
    assert!(has("-device", &c.device), "{}", c.device);
    assert_eq!(c.device["name"], "org.test.0");
    // The chardev: the same socket, listening, not waiting, as on the command line.
    assert_eq!(c.chardev["id"], "charchannel0");
    let data = &c.chardev["backend"]["data"];
    assert_eq!(c.chardev["backend"]["type"], "socket");
    assert_eq!(data["addr"]["data"]["path"], "/var/lib/c.sock");
    assert_eq!(
        (data["server"].clone(), data["wait"].clone()),
        (true.into(), false.into())
    );
    // libvirt's test harness hands QEMU the listening socket as a descriptor, which the
    // command line names instead of the path.
    let cold = args
        .windows(2)
        .find(|a| a[0] == "-chardev" && a[1].starts_with("socket,id=charchannel0,"))
        .map(|a| a[1].clone())
        .unwrap_or_default();
    assert!(
        cold.ends_with(",server=on,wait=off")
            && (cold.contains("path=/var/lib/c.sock") || cold.contains(",fd=")),
        "{cold}"
    );
    // An index that is not there is an error, not a panic.
    assert!(props::rng_props(&def, &caps, &ctx, 9).is_err());
    assert!(props::watchdog_props(&def, &caps, &ctx, 9).is_err());
    assert!(props::controller_props(&def, &caps, &ctx, 99).is_err());
    assert!(props::channel_props(&def, &caps, &ctx, 9).is_err());
}

// ---- a running guest --------------------------------------------------------------------

/// The guest's script: print the block devices, the hardware RNGs and the virtio ports
/// whenever they change.
const WATCH: &str = r#"prev=""; while :; do s="BLK=$(ls /sys/block | tr "\n" ,) RNG=$(cat /sys/class/misc/hw_random/rng_available 2>/dev/null) PORTS=$(for p in /sys/class/virtio-ports/*/name; do [ -f $p ] && cat $p; done | tr "\n" ,)"; if [ "$s" != "$prev" ]; then echo "STATE $s"; prev=$s; fi; sleep 0.3; done"#;

/// `qemu-nbd` serving a scratch image on a unix socket, killed by pid on drop.
struct Nbd(Child);

impl Drop for Nbd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn boot(devices: &str, with_os: bool) -> Option<Live> {
    if !Path::new(QEMU).exists() {
        eprintln!("\n*** SKIPPED: {QEMU} is not installed ***\n");
        return None;
    }
    let dir = tempfile::Builder::new()
        .prefix("lm")
        .tempdir_in("/tmp")
        .unwrap();
    let os = if with_os {
        let kit = bootkit::linux()?;
        let cmdline = format!("{} {}", kit.cmdline(), bootkit::run_cmdline(WATCH));
        format!(
            "<kernel>{}</kernel><initrd>{}</initrd><cmdline>{cmdline}</cmdline>",
            kit.kernel.display(),
            kit.initrd.display()
        )
    } else {
        String::new()
    };
    let g = Live::new(dir);
    let xml = g.file(
        "live.xml",
        &format!(
            "<domain type='qemu'><name>live</name><memory unit='MiB'>256</memory><vcpu>1</vcpu>
  <features><acpi/></features>
  <os><type arch='x86_64' machine='pc'>hvm</type>{os}</os>
  <devices><emulator>{QEMU}</emulator>{devices}
    <serial type='pty'><target port='0'/></serial><memballoon model='none'/>
  </devices></domain>"
        ),
    );
    g.ok(&["define", &xml]);
    g.ok(&["start", "live"]);
    Some(g)
}

/// An rng, a virtio-serial port and an NBD disk appear in the guest and go again on
/// detach, each with its backend freed; the watchdog, a SCSI controller and a USB disk
/// reach QEMU and the live XML; every refusal leaves the guest as it was.
#[test]
fn rng_channel_nbd_disk_watchdog_and_controllers() {
    let Some(g) = boot("<controller type='virtio-serial' index='0'/>", true) else {
        return;
    };
    g.wait(
        "the first state",
        |s| s.starts_with("BLK= ") && s.ends_with("PORTS="),
        120,
    );

    // rng: the object, the device, the guest's hw_random; `--config` too.
    let rng = g.file(
        "rng.xml",
        "<rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>",
    );
    assert_eq!(
        g.ok(&["attach-device", "live", &rng, "--live", "--config"]),
        "Device attached successfully\n\n"
    );
    g.wait("virtio_rng", |s| s.contains("RNG=virtio_rng"), 60);
    assert!(g.qom("/objects").contains(&"objrng0".to_string()));
    let xml = g.ok(&["dumpxml", "live"]);
    assert!(xml.contains("<alias name='rng0'/>"), "{xml}");
    assert!(
        g.ok(&["dumpxml", "live", "--inactive"])
            .contains("/dev/urandom")
    );

    // A virtio-serial port with a unix chardev, on the guest's controller.
    let sock = g.dir.path().join("c.sock").display().to_string();
    let chan = g.file(
        "chan.xml",
        &format!(
            "<channel type='unix'><source mode='bind' path='{sock}'/>\
             <target type='virtio' name='org.test.0'/></channel>"
        ),
    );
    g.ok(&["attach-device", "live", &chan]);
    g.wait("the port", |s| s.contains("PORTS=org.test.0,"), 60);
    assert!(g.chardevs().contains(&"charchannel0".to_string()));
    assert!(Path::new(&sock).exists());
    let xml = g.ok(&["dumpxml", "live"]);
    assert!(
        xml.contains("<address type='virtio-serial' controller='0' bus='0' port='1'/>"),
        "{xml}"
    );

    // An NBD disk over a unix socket, served by qemu-nbd.
    let img = g.dir.path().join("n.qcow2");
    assert!(
        Command::new("qemu-img")
            .args(["create", "-q", "-f", "qcow2"])
            .arg(&img)
            .arg("16M")
            .status()
            .unwrap()
            .success()
    );
    let nbd_sock = g.dir.path().join("nbd.sock");
    let _nbd = Nbd(Command::new("qemu-nbd")
        .args(["--persistent", "-f", "qcow2", "--socket"])
        .arg(&nbd_sock)
        .arg(&img)
        .stdin(Stdio::null())
        .spawn()
        .unwrap());
    let until = Instant::now() + Duration::from_secs(10);
    while !nbd_sock.exists() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(50));
    }
    let nbd = g.file(
        "nbd.xml",
        &format!(
            "<disk type='network' device='disk'><driver name='qemu' type='raw'/>\
             <source protocol='nbd'><host transport='unix' socket='{}'/></source>\
             <target dev='vdb' bus='virtio'/></disk>",
            nbd_sock.display()
        ),
    );
    g.ok(&["attach-device", "live", &nbd]);
    g.wait("vda", |s| s.contains("BLK=vda,"), 60);
    let nodes = g.qmp("query-named-block-nodes", "{\"flat\":true}");
    assert!(nodes.to_string().contains("\"drv\":\"nbd\""), "{nodes}");

    // The watchdog: its action set, then the device.
    let wd = g.file("wd.xml", "<watchdog model='i6300esb' action='poweroff'/>");
    g.ok(&["attach-device", "live", &wd]);
    assert!(
        g.qom("/machine/peripheral")
            .contains(&"watchdog0".to_string())
    );
    let e = g.fails(&["attach-device", "live", &wd]);
    assert!(
        e.contains("Requested operation is not valid: domain already has a watchdog"),
        "{e}"
    );
    let ib = g.file("ib.xml", "<watchdog model='ib700'/>");
    let e = g.fails(&["detach-device", "live", &ib]);
    assert!(e.contains("no matching watchdog was found"), "{e}");

    // A SCSI controller (QEMU side only: the test kernel has no virtio-scsi driver).
    let scsi = g.file("scsi.xml", "<controller type='scsi' model='virtio-scsi'/>");
    g.ok(&["attach-device", "live", &scsi]);
    assert!(g.qom("/machine/peripheral").contains(&"scsi0".to_string()));
    let e = g.fails(&[
        "attach-device",
        "live",
        &g.file("scsi0.xml", "<controller type='scsi' index='0'/>"),
    ]);
    assert!(
        e.contains("operation failed: target scsi:0 already exists"),
        "{e}"
    );

    // A USB disk on the machine's USB controller.
    let usb_img = g.dir.path().join("u.img");
    std::fs::File::create(&usb_img)
        .unwrap()
        .set_len(1 << 20)
        .unwrap();
    let usb = g.file(
        "usb.xml",
        &format!(
            "<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='{}'/>\
             <target dev='sdb' bus='usb'/></disk>",
            usb_img.display()
        ),
    );
    g.ok(&["attach-device", "live", &usb]);
    let xml = g.ok(&["dumpxml", "live"]);
    assert!(xml.contains("<target dev='sdb' bus='usb'/>"), "{xml}");
    assert!(
        g.qmp("query-block", "{}")
            .to_string()
            .contains(&usb_img.display().to_string())
    );

    // Refusals, each leaving nothing behind.
    let e = g.fails(&[
        "attach-device",
        "live",
        &g.file("vs.xml", "<controller type='virtio-serial' index='1'/>"),
    ]);
    assert!(
        e.contains("Operation not supported: 'virtio-serial' controller cannot be hot plugged."),
        "{e}"
    );
    let e = g.fails(&[
        "attach-device",
        "live",
        &g.file(
            "p9.xml",
            "<filesystem type='mount'><source dir='/tmp'/><target dir='t'/></filesystem>",
        ),
    ]);
    assert!(
        e.contains("Operation not supported: only virtiofs filesystems can be hotplugged"),
        "{e}"
    );
    if !Path::new("/dev/vfio/vfio").exists() {
        let e = g.fails(&[
            "attach-device",
            "live",
            &g.file(
                "hd.xml",
                "<hostdev mode='subsystem' type='pci' managed='yes'><source>\
             <address domain='0' bus='1' slot='0' function='0'/></source></hostdev>",
            ),
        ]);
        assert!(
            e.contains(
                "unsupported configuration: host doesn't support passthrough of host PCI devices"
            ),
            "{e}"
        );
    }
    // A backend QEMU refuses: the object is taken back with the failed device.
    let objects = g.qom("/objects");
    let bad = g.file(
        "bad.xml",
        "<rng model='virtio'><backend model='random'>/nonexistent/rng</backend></rng>",
    );
    let e = g.fails(&["attach-device", "live", &bad]);
    assert!(e.contains("unable to execute QEMU command"), "{e}");
    assert_eq!(g.qom("/objects"), objects);
    // A chardev QEMU cannot open: none is left.
    let chars = g.chardevs();
    let bad = g.file(
        "badc.xml",
        "<channel type='unix'><source mode='connect' path='/nonexistent/s'/>\
        <target type='virtio' name='org.test.1'/></channel>",
    );
    let e = g.fails(&["attach-device", "live", &bad]);
    assert!(
        e.contains("unable to execute QEMU command 'chardev-add'"),
        "{e}"
    );
    assert_eq!(g.chardevs(), chars);
    let e = g.fails(&[
        "detach-device",
        "live",
        &g.file(
            "r2.xml",
            "<rng model='virtio'><backend model='builtin'/></rng>",
        ),
    ]);
    assert!(
        e.contains(
            "device not found: model 'random' RNG device not present in domain configuration"
        ),
        "{e}"
    );

    // Detach: each goes from the guest and its backend with it.
    g.ok(&["detach-device", "live", &rng, "--live", "--config"]);
    g.wait("no rng", |s| !s.contains("virtio_rng"), 60);
    eventually("objrng0 freed", || {
        !g.qom("/objects").contains(&"objrng0".to_string())
    });
    assert!(!g.ok(&["dumpxml", "live", "--inactive"]).contains("<rng"));
    g.ok(&["detach-device", "live", &chan]);
    g.wait("no port", |s| s.ends_with("PORTS="), 60);
    eventually("charchannel0 freed", || {
        !g.chardevs().contains(&"charchannel0".to_string())
    });
    g.ok(&["detach-device", "live", &nbd]);
    g.wait("no disk", |s| s.starts_with("BLK= "), 60);
    eventually("the nbd nodes freed", || {
        !g.qmp("query-named-block-nodes", "{\"flat\":true}")
            .to_string()
            .contains("nbd")
    });
    g.ok(&["detach-device", "live", &scsi]);
    eventually("the controller gone", || {
        !g.ok(&["dumpxml", "live"]).contains("model='virtio-scsi'")
    });
    g.ok(&["detach-device", "live", &wd]);
    eventually("the watchdog gone", || {
        !g.qom("/machine/peripheral")
            .contains(&"watchdog0".to_string())
    });
    g.ok(&["detach-device", "live", &usb]);
    eventually("the usb disk gone", || {
        !g.ok(&["domblklist", "live"]).contains("sdb")
    });
    g.ok(&["destroy", "live"]);
}

/// A channel needs a virtio-serial controller: libvirt adds none to a running guest.
#[test]
fn channel_without_a_virtio_serial_controller() {
    let Some(g) = boot("", false) else { return };
    let chan = g.file(
        "chan.xml",
        "<channel type='unix'><source mode='bind' path='/tmp/never.sock'/>\
         <target type='virtio' name='org.test.0'/></channel>",
    );
    let e = g.fails(&["attach-device", "live", &chan]);
    assert!(
        e.contains("internal error: no virtio-serial controllers are available"),
        "{e}"
    );
    assert!(!g.ok(&["dumpxml", "live"]).contains("virtio-serial"));
    let e = g.fails(&["detach-device", "live", &chan]);
    assert!(
        e.contains("chr type 'channel' device not present in domain configuration"),
        "{e}"
    );
    g.ok(&["destroy", "live"]);
}
