//! Live guests: devices, media, memory and vCPUs changed on a running TCG guest through
//! `vsh` (and so the Rust API and the guest's monitor), checked from QEMU's side (QMP) and
//! from inside the guest, whose test script prints what it sees in /sys whenever it changes.
//! One guest serves every assertion that does not disturb the others, to keep the run short.
//! Also: the properties a device gets on the command line are the ones hotplug sends.

#[path = "common/bootkit.rs"]
mod bootkit;
mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use domdriver::capabilities::qemu::{QemuCaps, probe_replies};
use domdriver::conformance::harness::{harness_context, prepare_options};
use domdriver::driver::status::{GuestStatus, is_same_live_process};
use domdriver::xml2argv::props::{self, Plug};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;

const QEMU: &str = "/usr/bin/qemu-system-x86_64";

fn mult() -> u64 {
    std::env::var("VSH_TIMEOUT_MULTIPLIER")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
        .max(1)
}

// ---- the same properties cold and hot ---------------------------------------------------

fn replay_caps() -> QemuCaps {
    let path = common::testdata().join("tests/qemucapabilitiesdata/caps_8.0.0.x86_64.replies");
    domdriver::runtime::block_on(probe_replies(&path, QEMU)).expect("replay caps")
}

const COLD: &str = "<domain type='qemu'><name>cold</name><memory>219136</memory><vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='hd'/></os>
  <devices><emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2' cache='none'/>
      <source file='/var/lib/a.qcow2'/><target dev='vda' bus='virtio'/><serial>S1</serial></disk>
    <disk type='file' device='disk'><driver name='qemu' type='raw'/>
      <source file='/var/lib/b.img'/><target dev='sda' bus='scsi'/><alias name='ua-b'/></disk>
    <disk type='file' device='cdrom'><source file='/var/lib/c.iso'/><target dev='hdc' bus='ide'/><readonly/></disk>
    <controller type='scsi' model='virtio-scsi'/>
    <interface type='user'><mac address='52:54:00:aa:bb:cc'/><model type='virtio'/></interface>
    <interface type='user'><model type='e1000'/><alias name='ua-net'/></interface>
    <memballoon model='none'/>
  </devices></domain>";

/// Each device's `-blockdev`s, `-netdev` and `-device` on the command line are what
/// `disk_props`/`net_props` give for it: hotplug sends exactly those. Hot differs from cold
/// only where libvirt's does: the boot index `<os><boot dev>` hands out at a start.
#[test]
fn cold_and_hot_properties_agree() {
    let caps = replay_caps();
    let def = domdriver::domain::parse(COLD).unwrap();
    let mut def =
        domdriver::domain::prepare(def, &caps, &prepare_options("cold", "x86_64")).unwrap();
    domdriver::domain::prepare::assign_aliases(&mut def);
    let ctx = harness_context(&def);
    let args = domdriver::xml2argv::build(&def, &caps, &ctx).unwrap().args;
    let pairs: Vec<(String, String)> = args
        .windows(2)
        .map(|w| (w[0].clone(), w[1].clone()))
        .collect();
    let has = |opt: &str, v: &Value| {
        let text = serde_json::to_string(v).unwrap();
        pairs.iter().any(|(o, a)| o == opt && *a == text)
    };
    let nodes = props::cold_node_numbers(&def);
    for (i, n) in nodes.iter().enumerate() {
        let p = props::disk_props(&def, &caps, &ctx, i, n, Plug::Cold).unwrap();
        for l in &p.layers {
            assert!(has("-blockdev", &l.storage), "disk {i}: {}", l.storage);
            assert!(has("-blockdev", &l.format), "disk {i}: {}", l.format);
        }
        assert!(has("-device", &p.device), "disk {i}: {}", p.device);
        let mut hot = props::disk_props(&def, &caps, &ctx, i, n, Plug::Hot).unwrap();
        assert_eq!(hot.layers, p.layers);
        let mut cold_dev = p.device.clone();
        cold_dev.as_object_mut().unwrap().remove("bootindex");
        hot.device.as_object_mut().unwrap().remove("bootindex");
        assert_eq!(hot.device, cold_dev, "disk {i}");
    }
    // The first disk boots (`<boot dev='hd'/>`) when cold only.
    let first = props::disk_props(&def, &caps, &ctx, 0, &nodes[0], Plug::Cold).unwrap();
    assert_eq!(first.device["bootindex"], 1);
    let first_hot = props::disk_props(&def, &caps, &ctx, 0, &nodes[0], Plug::Hot).unwrap();
    assert!(first_hot.device.get("bootindex").is_none());
    assert_eq!(first.device["id"], "virtio-disk0");
    let scsi = props::disk_props(&def, &caps, &ctx, 1, &nodes[1], Plug::Hot).unwrap();
    assert_eq!(scsi.device["id"], "ua-b");
    assert_eq!(scsi.device["driver"], "scsi-hd");
    for i in 0..def.devices.interfaces.len() {
        let cold = props::net_props(&def, &caps, &ctx, i, Plug::Cold).unwrap();
        let hot = props::net_props(&def, &caps, &ctx, i, Plug::Hot).unwrap();
        assert!(has("-netdev", &cold.netdev), "net {i}: {}", cold.netdev);
        assert!(has("-device", &cold.device), "net {i}: {}", cold.device);
        assert_eq!(cold, hot, "net {i}");
    }
    let n1 = props::net_props(&def, &caps, &ctx, 1, Plug::Hot).unwrap();
    assert_eq!(n1.netdev["id"], "hostua-net");
    assert_eq!(n1.device["netdev"], "hostua-net");
    // An index that is not there is an error, not a panic.
    assert!(props::disk_props(&def, &caps, &ctx, 9, &[], Plug::Hot).is_err());
    assert!(props::net_props(&def, &caps, &ctx, 9, Plug::Hot).is_err());
}

// ---- a running guest --------------------------------------------------------------------

/// Kills, on drop, the QEMU of the guest should a test fail half-way.
struct Reaper {
    status: PathBuf,
}

impl Drop for Reaper {
    fn drop(&mut self) {
        let Ok(Some(st)) = GuestStatus::read("live", &self.status) else {
            return;
        };
        if is_same_live_process(st.pid, st.start_time) {
            let _ = kill(Pid::from_raw(st.pid), Signal::SIGKILL);
            let until = Instant::now() + Duration::from_secs(5);
            while is_same_live_process(st.pid, st.start_time) && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

/// The guest's script: bring hotplugged CPUs online and print the block devices and online
/// CPUs whenever they change.
const WATCH: &str = r#"prev=""; while :; do for c in /sys/devices/system/cpu/cpu[1-9]*/online; do [ -f $c ] && [ "$(cat $c)" = 0 ] && echo 1 > $c; done; s="BLK=$(ls /sys/block | tr "\n" ,) CPU=$(cat /sys/devices/system/cpu/online)"; if [ "$s" != "$prev" ]; then echo "STATE $s"; prev=$s; fi; sleep 0.3; done"#;

struct Live {
    _dir: tempfile::TempDir,
    root: PathBuf,
    uri: String,
    files: PathBuf,
    _reap: Reaper,
}

impl Live {
    fn vsh(&self, args: &[&str]) -> (bool, String, String) {
        let o = Command::new(env!("CARGO_BIN_EXE_vsh"))
            .args(["-c", &self.uri])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    }

    fn ok(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.vsh(args);
        assert!(ok, "vsh {args:?}: {err}");
        out
    }

    fn fails(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.vsh(args);
        assert!(!ok, "vsh {args:?} succeeded: {out}");
        err
    }

    fn qmp(&self, cmd: &str) -> Value {
        let out = self.ok(&[
            "qemu-monitor-command",
            "live",
            &format!("{{\"execute\":\"{cmd}\"}}"),
        ]);
        serde_json::from_str::<Value>(&out).unwrap()["return"].clone()
    }

    fn file(&self, name: &str) -> String {
        self.files.join(name).display().to_string()
    }

    fn console(&self) -> String {
        std::fs::read_to_string(self.root.join("log/qemu/console/live/serial0.log"))
            .unwrap_or_default()
    }

    /// The last state the guest printed.
    fn guest_state(&self) -> String {
        self.console()
            .lines()
            .rev()
            .find_map(|l| l.trim().strip_prefix("STATE ").map(str::to_string))
            .unwrap_or_default()
    }

    fn wait_guest(&self, want: &str, secs: u64) {
        let until = Instant::now() + Duration::from_secs(secs * mult());
        while Instant::now() < until {
            if self.guest_state() == want {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "guest never showed '{want}'; last: '{}'",
            self.guest_state()
        );
    }

    fn live_xml(&self) -> String {
        self.ok(&["dumpxml", "live"])
    }

    fn node_names(&self) -> Vec<String> {
        let out = self.ok(&[
            "qemu-monitor-command",
            "live",
            r#"{"execute":"query-named-block-nodes","arguments":{"flat":true}}"#,
        ]);
        let v: Value = serde_json::from_str(&out).unwrap();
        let mut n: Vec<String> = v["return"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|x| x["node-name"].as_str().map(str::to_string))
            .collect();
        n.sort();
        n
    }

    fn medium(&self, qdev: &str) -> Option<String> {
        self.qmp("query-block")
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["qdev"].as_str().is_some_and(|q| q.contains(qdev)))
            .and_then(|b| b["inserted"]["file"].as_str().map(str::to_string))
    }
}

fn boot() -> Option<Live> {
    if !Path::new(QEMU).exists() {
        eprintln!("\n*** SKIPPED: {QEMU} is not installed ***\n");
        return None;
    }
    let kit = bootkit::linux()?;
    let dir = tempfile::Builder::new()
        .prefix("ld")
        .tempdir_in("/tmp")
        .unwrap();
    let root = dir.path().join("r");
    let files = dir.path().join("f");
    std::fs::create_dir_all(&files).unwrap();
    for (name, size) in [
        ("a.iso", 1u64 << 20),
        ("b.iso", 2 << 20),
        ("r.img", 8 << 20),
    ] {
        let f = std::fs::File::create(files.join(name)).unwrap();
        f.set_len(size).unwrap();
    }
    let img = files.join("d.qcow2");
    let st = Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2"])
        .arg(&img)
        .arg("64M")
        .status()
        .unwrap();
    assert!(st.success());
    let uri = format!("qemu:///embed?root={}", root.display());
    let cmdline = format!("{} {}", kit.cmdline(), bootkit::run_cmdline(WATCH));
    let xml = format!(
        "<domain type='qemu'><name>live</name><memory unit='MiB'>256</memory>
  <vcpu current='1'>2</vcpu><features><acpi/></features>
  <os><type arch='x86_64' machine='pc'>hvm</type><kernel>{}</kernel><initrd>{}</initrd>
    <cmdline>{cmdline}</cmdline></os>
  <devices><emulator>{QEMU}</emulator>
    <disk type='file' device='cdrom'><source file='{}'/><target dev='hdc' bus='ide'/><readonly/></disk>
    <serial type='pty'><target port='0'/></serial>
    <memballoon model='virtio'/>
  </devices></domain>",
        kit.kernel.display(),
        kit.initrd.display(),
        files.join("a.iso").display(),
    );
    let xml_path = files.join("live.xml");
    std::fs::write(&xml_path, xml).unwrap();
    let live = Live {
        _reap: Reaper {
            status: root.join("run/qemu/live.json"),
        },
        _dir: dir,
        root,
        uri,
        files,
    };
    live.ok(&["define", &xml_path.display().to_string()]);
    live.ok(&["start", "live"]);
    live.wait_guest("BLK= CPU=0", 120);
    Some(live)
}

#[test]
fn live_guest_devices_media_memory_and_vcpus() {
    let Some(g) = boot() else { return };
    let disk = g.file("d.qcow2");
    let nodes_before = g.node_names();

    // A disk attached to the running guest: QEMU has it, the guest sees it, the live XML
    // and domblklist show it with libvirt's alias and a PCI slot.
    let out = g.ok(&["attach-disk", "live", &disk, "vdb", "--subdriver", "qcow2"]);
    assert_eq!(out, "Disk attached successfully\n\n");
    g.wait_guest("BLK=vda, CPU=0", 60);
    let xml = g.live_xml();
    assert!(xml.contains("<alias name='virtio-disk1'/>"), "{xml}");
    assert!(xml.contains("<address type='pci'"), "{xml}");
    assert!(
        g.ok(&["domblklist", "live"])
            .contains(&format!(" vdb      {disk}"))
    );
    assert_eq!(g.node_names().len(), nodes_before.len() + 2);

    // Error cases, each leaving the guest as it was.
    let e = g.fails(&["attach-disk", "live", &disk, "vdb", "--subdriver", "qcow2"]);
    assert_eq!(
        e,
        "error: Failed to attach disk\nerror: operation failed: target vdb already exists\n"
    );
    let missing = g.file("missing.qcow2");
    let e = g.fails(&[
        "attach-disk",
        "live",
        &missing,
        "vde",
        "--subdriver",
        "qcow2",
    ]);
    assert!(
        e.starts_with("error: Failed to attach disk\nerror: internal error: unable to execute QEMU command 'blockdev-add': "),
        "{e}"
    );
    let bad = g.file("bad.xml");
    std::fs::write(&bad, "<disk type='file'").unwrap();
    let e = g.fails(&["attach-device", "live", &bad]);
    assert!(
        e.starts_with(&format!(
            "error: Failed to attach device from {bad}\nerror: XML error: "
        )),
        "{e}"
    );
    std::fs::write(&bad, "<controller type='usb'/>").unwrap();
    let e = g.fails(&["attach-device", "live", &bad]);
    assert!(
        e.ends_with(
            "error: Operation not supported: live attach of device 'controller' is not supported\n"
        ),
        "{e}"
    );
    let e = g.fails(&["detach-disk", "live", "vdz"]);
    assert_eq!(
        e,
        "error: No disk found whose source path or target is vdz\n"
    );
    std::fs::write(
        &bad,
        "<disk type='file'><source file='/x'/><target dev='vdz' bus='virtio'/></disk>",
    )
    .unwrap();
    let e = g.fails(&["detach-device", "live", &bad]);
    assert_eq!(
        e,
        format!(
            "error: Failed to detach device from {bad}\nerror: device not found: disk vdz not found\n"
        )
    );
    let e = g.fails(&["detach-device-alias", "live", "ua-nothing"]);
    assert!(
        e.ends_with("error: device not found: no device found with alias ua-nothing\n"),
        "{e}"
    );

    // The failed attaches left nothing behind in QEMU.
    let with_vdb = g.node_names();
    assert_eq!(with_vdb.len(), nodes_before.len() + 2, "{with_vdb:?}");

    // A user alias is kept; a second device with it is refused.
    let raw = g.file("r.img");
    g.ok(&["attach-disk", "live", &raw, "vdc", "--alias", "ua-scratch"]);
    assert!(g.live_xml().contains("<alias name='ua-scratch'/>"));
    g.wait_guest("BLK=vda,vdb, CPU=0", 60);
    let e = g.fails(&["attach-disk", "live", &raw, "vdd", "--alias", "ua-scratch"]);
    assert_eq!(
        e,
        "error: Failed to attach disk\nerror: XML error: non unique alias detected: ua-scratch\n"
    );
    g.ok(&["detach-device-alias", "live", "ua-scratch"]);

    // Detach: the guest lets it go, QEMU drops the device and its nodes, the XML follows.
    let out = g.ok(&["detach-disk", "live", "vdb"]);
    assert_eq!(out, "Disk detached successfully\n\n");
    g.wait_guest("BLK= CPU=0", 60);
    assert!(!g.ok(&["domblklist", "live"]).contains("vdb"));
    let until = Instant::now() + Duration::from_secs(10 * mult());
    while g.node_names() != nodes_before && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(g.node_names(), nodes_before);

    // CD-ROM media: swapped, ejected, inserted, with virsh's words.
    let (a, b) = (g.file("a.iso"), g.file("b.iso"));
    assert_eq!(g.medium("ide0-1-0").as_deref(), Some(a.as_str()));
    let out = g.ok(&["change-media", "live", "hdc", &b, "--update"]);
    assert_eq!(out, "Successfully updated media.\n\n");
    assert_eq!(g.medium("ide0-1-0").as_deref(), Some(b.as_str()));
    assert!(
        g.ok(&["domblklist", "live"])
            .contains(&format!(" hdc      {b}"))
    );
    assert_eq!(
        g.ok(&["change-media", "live", "hdc", "--eject"]),
        "Successfully ejected media.\n\n"
    );
    assert_eq!(g.medium("ide0-1-0"), None);
    let e = g.fails(&["change-media", "live", "hdc", "--eject"]);
    assert_eq!(e, "error: The disk device 'hdc' doesn't have media\n");
    g.ok(&["change-media", "live", "hdc", &a, "--insert"]);
    assert_eq!(g.medium("ide0-1-0").as_deref(), Some(a.as_str()));

    // vCPUs: one more online, in QEMU and in the guest.
    g.ok(&["setvcpus", "live", "2", "--live"]);
    assert_eq!(g.qmp("query-cpus-fast").as_array().unwrap().len(), 2);
    g.wait_guest("BLK= CPU=0-1", 60);
    assert!(
        g.live_xml().contains("<vcpu placement='static'>2</vcpu>"),
        "{}",
        g.live_xml()
    );
    let e = g.fails(&["setvcpus", "live", "3", "--live"]);
    assert_eq!(
        e,
        "error: invalid argument: requested vcpus is greater than max allowable vcpus for the live domain: 3 > 2\n"
    );

    // Memory: the balloon's target, and the live XML's current memory; the guest's balloon
    // driver gives the memory back.
    g.ok(&["setmem", "live", "200M", "--live"]);
    assert!(
        g.live_xml()
            .contains("<currentMemory unit='KiB'>204800</currentMemory>")
    );
    let until = Instant::now() + Duration::from_secs(30 * mult());
    loop {
        let actual = g.qmp("query-balloon")["actual"]
            .as_u64()
            .unwrap_or(u64::MAX);
        if actual <= 200 << 20 {
            break;
        }
        assert!(
            Instant::now() < until,
            "the balloon stayed at {actual} bytes"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let e = g.fails(&["setmem", "live", "1G", "--live"]);
    assert_eq!(
        e,
        "error: invalid argument: cannot set memory higher than max memory\n"
    );
    let e = g.fails(&["setmaxmem", "live", "300M", "--live"]);
    assert!(e.ends_with("error: Requested operation is not valid: cannot resize the maximum memory on an active domain\n"), "{e}");

    // A NIC of type user: attached with a fresh alias, listed, detached by MAC.
    let out = g.ok(&[
        "attach-interface",
        "live",
        "user",
        "-",
        "--model",
        "virtio",
        "--mac",
        "52:54:00:12:34:56",
    ]);
    assert_eq!(out, "Interface attached successfully\n\n");
    assert!(g.live_xml().contains("<alias name='net0'/>"));
    assert!(g.ok(&["domiflist", "live"]).contains("52:54:00:12:34:56"));
    let e = g.fails(&[
        "detach-interface",
        "live",
        "user",
        "--mac",
        "52:54:00:00:00:01",
    ]);
    assert_eq!(
        e,
        "error: No interface with MAC address 52:54:00:00:00:01 was found\n"
    );
    g.ok(&[
        "detach-interface",
        "live",
        "user",
        "--mac",
        "52:54:00:12:34:56",
    ]);
    let until = Instant::now() + Duration::from_secs(10 * mult());
    while g.ok(&["domiflist", "live"]).contains("52:54:00:12:34:56") && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!g.ok(&["domiflist", "live"]).contains("52:54:00:12:34:56"));

    // --persistent changes both definitions, --config only the stored one.
    g.ok(&[
        "attach-disk",
        "live",
        &disk,
        "vdb",
        "--subdriver",
        "qcow2",
        "--persistent",
    ]);
    assert!(
        g.ok(&["domblklist", "live", "--inactive"])
            .contains(" vdb ")
    );
    let e = g.fails(&["attach-disk", "live", &disk, "vdb", "--config"]);
    assert_eq!(
        e,
        "error: Failed to attach disk\nerror: Requested operation is not valid: target vdb already exists.\n"
    );
    g.ok(&["detach-disk", "live", "vdb", "--config"]);
    assert!(
        !g.ok(&["domblklist", "live", "--inactive"])
            .contains(" vdb ")
    );
    assert!(g.ok(&["domblklist", "live"]).contains(" vdb "));

    // One MAC for both definitions when none is given.
    g.ok(&[
        "attach-interface",
        "live",
        "user",
        "-",
        "--model",
        "virtio",
        "--persistent",
    ]);
    let mac_of = |out: String| {
        out.lines()
            .find(|l| l.contains(" user "))
            .and_then(|l| l.split_whitespace().last().map(str::to_string))
            .unwrap_or_else(|| panic!("{out}"))
    };
    let live_mac = mac_of(g.ok(&["domiflist", "live"]));
    assert_eq!(mac_of(g.ok(&["domiflist", "live", "--inactive"])), live_mac);
    assert!(live_mac.starts_with("52:54:00:"), "{live_mac}");
    g.ok(&["detach-interface", "live", "user", "--persistent"]);
    assert!(
        !g.ok(&["domiflist", "live", "--inactive"])
            .contains(" user ")
    );

    // A guest that does not answer the unplug (paused): as libvirt, the detach succeeds
    // after its 5 s wait with the device still there; QEMU's DEVICE_DELETED, once the guest
    // runs again, removes it from the live XML.
    g.ok(&["suspend", "live"]);
    let t = Instant::now();
    g.ok(&["detach-disk", "live", "vdb"]);
    assert!(
        t.elapsed() >= Duration::from_millis(4900),
        "{:?}",
        t.elapsed()
    );
    assert!(g.ok(&["domblklist", "live"]).contains(" vdb "));
    g.ok(&["resume", "live"]);
    let until = Instant::now() + Duration::from_secs(30 * mult());
    while g.ok(&["domblklist", "live"]).contains(" vdb ") && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(!g.ok(&["domblklist", "live"]).contains(" vdb "));
    g.wait_guest("BLK= CPU=0-1", 60);

    g.ok(&["destroy", "live"]);
}

/// A running guest without an OS (QEMU takes `device_add` on its own, and unplugs what
/// needs no guest's consent), with `devices` besides the defaults.
fn bare_guest(devices: &str) -> Option<Live> {
    if !Path::new(QEMU).exists() {
        eprintln!("\n*** SKIPPED: {QEMU} is not installed ***\n");
        return None;
    }
    let dir = tempfile::Builder::new()
        .prefix("lp")
        .tempdir_in("/tmp")
        .unwrap();
    let root = dir.path().join("r");
    let img = dir.path().join("r.img");
    std::fs::File::create(&img)
        .unwrap()
        .set_len(1 << 20)
        .unwrap();
    let xml = dir.path().join("g.xml");
    std::fs::write(
        &xml,
        format!(
            "<domain type='qemu'><name>live</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
  <features><acpi/></features><os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices><emulator>{QEMU}</emulator>{devices}<memballoon model='none'/></devices></domain>"
        ),
    )
    .unwrap();
    let g = Live {
        _reap: Reaper {
            status: root.join("run/qemu/live.json"),
        },
        uri: format!("qemu:///embed?root={}", root.display()),
        root,
        files: dir.path().to_path_buf(),
        _dir: dir,
    };
    g.ok(&["define", &xml.display().to_string()]);
    g.ok(&["start", "live"]);
    Some(g)
}

/// A SCSI disk on the guest's virtio-scsi controller, and two NICs on a socket network (one
/// listening, one connecting to it) whose ends QEMU connects.
#[test]
fn scsi_disk_and_socket_network() {
    let Some(g) = bare_guest("<controller type='scsi' model='virtio-scsi'/>") else {
        return;
    };
    let img = g.file("r.img");
    g.ok(&["attach-disk", "live", &img, "sda", "--targetbus", "scsi"]);
    let xml = g.live_xml();
    assert!(xml.contains("<alias name='scsi0-0-0-0'/>"), "{xml}");
    assert!(
        xml.contains("<address type='drive' controller='0' bus='0' target='0' unit='0'/>"),
        "{xml}"
    );
    assert_eq!(g.node_names().len(), 2);
    // blockresize grows the image (default unit KiB, as virsh's).
    assert_eq!(
        g.ok(&["blockresize", "live", "sda", "2048"]),
        "Block device 'sda' is resized\n\n"
    );
    assert_eq!(std::fs::metadata(&img).unwrap().len(), 2 << 20);
    let e = g.fails(&["blockresize", "live", "sdz", "2M"]);
    assert_eq!(
        e,
        "error: Failed to resize block device 'sdz'\nerror: invalid argument: disk 'sdz' was not found in the domain\n"
    );
    // SCSI unplug needs no guest: gone at once, nodes too.
    assert_eq!(
        g.ok(&["detach-disk", "live", "sda"]),
        "Disk detached successfully\n\n"
    );
    assert!(!g.ok(&["domblklist", "live"]).contains("sda"));
    assert!(g.node_names().is_empty());

    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let server = g.file("server.xml");
    std::fs::write(
        &server,
        format!("<interface type='server'><source address='127.0.0.1' port='{port}'/><model type='virtio'/></interface>"),
    )
    .unwrap();
    let client = g.file("client.xml");
    std::fs::write(
        &client,
        format!("<interface type='client'><source address='127.0.0.1' port='{port}'/><model type='e1000'/></interface>"),
    )
    .unwrap();
    assert_eq!(
        g.ok(&["attach-device", "live", &server]),
        "Device attached successfully\n\n"
    );
    g.ok(&["attach-device", "live", &client, "--live"]);
    // QEMU accepts the connection in its main loop: give it a moment.
    let until = Instant::now() + Duration::from_secs(5 * mult());
    let mut info = String::new();
    while Instant::now() < until {
        info = g.ok(&["qemu-monitor-command", "live", "--hmp", "info network"]);
        if info.contains("connection from") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        info.contains("hostnet0: index=0,type=socket,socket: connection from 127.0.0.1"),
        "{info}"
    );
    assert!(
        info.contains(&format!(
            "hostnet1: index=0,type=socket,socket: connect to 127.0.0.1:{port}"
        )),
        "{info}"
    );
    let xml = g.live_xml();
    assert!(
        xml.contains("<alias name='net0'/>") && xml.contains("<alias name='net1'/>"),
        "{xml}"
    );
    g.ok(&["destroy", "live"]);
}

/// A guest whose PCI bus is full gets libvirt's refusal, and nothing is added. The guest
/// needs no OS: QEMU takes `device_add` on its own.
#[test]
fn no_free_pci_slot() {
    let Some(g) = bare_guest("") else { return };
    let img = g.file("r.img");
    let mut refused = None;
    for n in 0..40 {
        let target = format!(
            "vd{}{}",
            (b'a' + (n / 26) as u8) as char,
            (b'a' + (n % 26) as u8) as char
        );
        let (ok, _, err) = g.vsh(&[
            "attach-disk",
            "live",
            &img,
            &target,
            "--live",
            "--mode",
            "readonly",
        ]);
        if !ok {
            refused = Some((n, err));
            break;
        }
    }
    let (n, err) = refused.expect("the bus never filled up");
    assert!(n > 20, "only {n} disks fit: {err}");
    assert_eq!(
        err,
        "error: Failed to attach disk\nerror: internal error: No more available PCI slots\n"
    );
    let listed = g.ok(&["domblklist", "live"]).lines().count();
    assert_eq!(
        listed,
        3 + n as usize,
        "header, rule, {n} disks and a blank line"
    );
    // The refused attach added no node in QEMU.
    assert_eq!(g.node_names().len(), 2 * n as usize);

    g.ok(&["destroy", "live"]);
}

// ---- a guest that rejects the unplug (scripted QMP peer) ---------------------------------

/// What libvirt says when the guest refuses to let a device go: QEMU reports
/// DEVICE_UNPLUG_GUEST_ERROR, which x86 guests never send on demand, so a scripted QMP peer
/// stands in for QEMU (and a `sleep`, killed by pid on drop, for its process), as in
/// tests/driver_faults.rs. The device stays in the live XML.
#[test]
fn guest_rejecting_the_unplug() {
    use std::io::{BufRead, BufReader, Write};
    use std::os::unix::net::UnixListener;

    use domdriver::Connect;
    use domdriver::driver::Dirs;
    use domdriver::driver::status::proc_stat;
    use serde_json::json;

    const UUID: &str = "0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d";
    let xml = format!(
        "<domain type='qemu' id='1'><name>rej</name><uuid>{UUID}</uuid><memory unit='MiB'>64</memory>\
         <os><type arch='x86_64' machine='pc'>hvm</type></os><devices>\
         <disk type='file' device='disk'><source file='/x.img'/><target dev='vdb' bus='virtio'/>\
         <alias name='virtio-disk1'/></disk></devices></domain>"
    );
    let tmp = tempfile::Builder::new()
        .prefix("lr")
        .tempdir_in("/tmp")
        .unwrap();
    let uri = format!("qemu:///embed?root={}", tmp.path().display());
    let dirs = Dirs::under(tmp.path());
    let guest_dir = dirs.run.join("domain-rej");
    std::fs::create_dir_all(&guest_dir).unwrap();
    let monitor = guest_dir.join("monitor.sock");
    let listener = UnixListener::bind(&monitor).unwrap();
    struct Sleep(std::process::Child);
    impl Drop for Sleep {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let sleep = Sleep(common::spawn_execd(Command::new("sleep").arg("300")));
    let pid = sleep.0.id() as i32;
    GuestStatus {
        name: "rej".into(),
        uuid: UUID.into(),
        pid,
        start_time: proc_stat(pid).unwrap().unwrap().start_time,
        monitor,
        reason: "booted".into(),
        paused: false,
        xml: xml.clone(),
        emulator: "sleep".into(),
        ..Default::default()
    }
    .write(&dirs.run.join("rej.json"))
    .unwrap();
    // QEMU's side: answer what the adopting monitor and the detach ask; refuse the unplug.
    let peer = std::thread::spawn(move || {
        let (s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut r = BufReader::new(s.try_clone().unwrap());
        let mut w = s;
        let mut send = |v: Value| {
            let _ = w.write_all(format!("{v}\r\n").as_bytes());
        };
        send(
            json!({"QMP": {"version": {"qemu": {"major": 7, "minor": 2, "micro": 0},
            "package": ""}, "capabilities": []}}),
        );
        let mut asked = Vec::new();
        let mut line = String::new();
        while matches!(r.read_line(&mut line), Ok(n) if n > 0) {
            let v: Value = serde_json::from_str(&line).unwrap();
            line.clear();
            let cmd = v["execute"].as_str().unwrap_or("").to_string();
            let ret = match cmd.as_str() {
                "query-status" => json!({"status": "running", "running": true}),
                "query-block" | "query-named-block-nodes" | "query-chardev" => json!([]),
                _ => json!({}),
            };
            send(json!({"return": ret, "id": v["id"]}));
            if cmd == "device_del" {
                send(json!({"event": "DEVICE_UNPLUG_GUEST_ERROR",
                    "data": {"device": "virtio-disk1", "path": "/machine/peripheral/virtio-disk1"},
                    "timestamp": {"seconds": 1, "microseconds": 2}}));
            }
            asked.push(cmd);
        }
        asked
    });
    let conn = Connect::open(Some(&uri)).unwrap();
    let dom = conn.lookup_domain_by_name("rej").unwrap();
    let disk = "<disk type='file'><source file='/x.img'/><target dev='vdb' bus='virtio'/></disk>";
    let t = Instant::now();
    let e = dom
        .detach_device_flags(disk, domdriver::driver::hotplug::AFFECT_LIVE)
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "operation failed: unplug of device was rejected by the guest"
    );
    assert!(t.elapsed() < Duration::from_secs(4), "{:?}", t.elapsed());
    let live = dom
        .xml_desc(domdriver::domain::FormatFlags {
            inactive: false,
            secure: true,
        })
        .unwrap();
    assert!(live.contains("<target dev='vdb' bus='virtio'/>"), "{live}");
    drop(sleep);
    drop(dom);
    drop(conn);
    let asked = peer.join().unwrap();
    assert!(asked.contains(&"device_del".to_string()), "{asked:?}");
    // Nothing was freed for a device the guest kept.
    assert!(!asked.contains(&"blockdev-del".to_string()), "{asked:?}");
}
