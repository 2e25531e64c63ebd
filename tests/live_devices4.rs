//! Live guests, what crosses into the guest: packets over hotplugged NICs (a passt port
//! forward from the host's loopback to a listener in the guest, and a user NIC the guest
//! reaches the host's loopback through), a USB disk on a running guest's xHCI controller,
//! virtiofs shares served by a virtiofsd the user started (cold and hotplugged: nobody
//! here starts or stops it), and libvirt's refusal to unplug a vCPU the guest booted with.
//! One booted TCG guest serves every in-guest assertion; its script (on a 9p share, so it
//! may be long) prints what it sees whenever that changes.

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

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

const QEMU: &str = "/usr/bin/qemu-system-x86_64";
const VIRTIOFSD: &str = "/usr/lib/qemu/virtiofsd";

/// The port the guest's listener takes (a passt port forward leads there).
const GUEST_PORT: u16 = 7777;

/// The guest's script. It loads the USB modules, serves `GUEST_PORT` (each line it reads
/// is logged and answered `GUEST-GOT-<line>`), takes a DHCP lease on each NIC that
/// appears; on a slirp NIC (10.0.2.15) it sends `GUEST-SLIRP` to the host's loopback
/// through the gateway, at the port the test wrote in `/run-share/port`. It mounts the
/// virtiofs tags `coldext` and `hotext` when they appear (reads `h.txt`, writes `g.txt`).
const SCRIPT: &str = r#"#!/bin/sh
for m in $(cat /etc/modules-extra); do case $m in *i6300esb*|*watchdog*) ;; *) insmod $m 2>/dev/null;; esac; done
mkdir -p /mnt/c /mnt/h
printf '#!/bin/sh\n[ "$1" = bound ] && ip addr add $ip/$mask dev $interface && [ -n "$router" ] && ip route add default via $router dev $interface\nexit 0\n' > /tmp/u
printf '#!/bin/sh\nread l\necho "$l" >> /tmp/nc.log\necho "GUEST-GOT-$l"\n' > /tmp/srv
chmod +x /tmp/u /tmp/srv
nc -ll -p 7777 -e /tmp/srv &
c=""; h=""; sent=""; prev=""
while :; do
  if [ -z "$c" ] && mount -t virtiofs coldext /mnt/c 2>/dev/null; then
    c=$(cat /mnt/c/h.txt); echo guest-cold > /mnt/c/g.txt; sync; umount /mnt/c
  fi
  if [ "$(ls /sys/bus/virtio/drivers/virtiofs | grep -c virtio)" -ge 2 ]; then
    if [ -z "$h" ] && mount -t virtiofs hotext /mnt/h 2>/dev/null; then
      h=$(cat /mnt/h/h.txt); echo guest-hot > /mnt/h/g.txt; sync; umount /mnt/h
    fi
  else
    h=""
  fi
  ips=""
  for i in /sys/class/net/eth*; do
    [ -e "$i" ] || continue
    d=${i##*/}
    a=$(ip -4 -o addr show dev $d | awk '{print $4}')
    if [ -z "$a" ]; then
      ip link set $d up
      udhcpc -i $d -s /tmp/u -q -n -t 6 >/dev/null 2>&1
      a=$(ip -4 -o addr show dev $d | awk '{print $4}')
    fi
    ips="$ips$d=$a;"
    case "$a" in
      10.0.2.15/*) if [ -z "$sent" ] && [ -s /run-share/port ]; then
          echo GUEST-SLIRP | nc -w 5 10.0.2.2 $(cat /run-share/port) >/dev/null 2>&1 && sent=ok
        fi ;;
    esac
  done
  [ -z "$ips" ] && sent=""
  s="BLK=$(ls /sys/block | tr '\n' ,) CPU=$(cat /sys/devices/system/cpu/online) NET=$ips SENT=$sent NC=$(tail -n 1 /tmp/nc.log 2>/dev/null) COLD=$c HOT=$h"
  if [ "$s" != "$prev" ]; then echo "STATE $s"; prev=$s; fi
  sleep 0.3
done
"#;

/// A process the test started, killed by pid (and reaped) when dropped.
struct Started(Child);

impl Started {
    fn pid(&self) -> i32 {
        self.0.id() as i32
    }

    /// Its exit status if it ended (reaped), else `None`.
    fn ended(&mut self) -> Option<ExitStatus> {
        self.0.try_wait().ok().flatten()
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(self.pid()),
                nix::sys::signal::Signal::SIGKILL,
            );
            let _ = self.0.wait();
        }
    }
}

/// A virtiofsd the user starts, serving `dir` on `socket`; waits (bounded) for its socket.
fn user_virtiofsd(socket: &Path, dir: &Path, log: &Path) -> Started {
    let log = std::fs::File::create(log).unwrap();
    let child = Command::new(VIRTIOFSD)
        .arg(format!("--socket-path={}", socket.display()))
        .arg("-o")
        .arg(format!("source={}", dir.display()))
        .arg("-o")
        .arg("cache=none")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let d = Started(child);
    let until = Instant::now() + Duration::from_secs(10);
    while !socket.exists() {
        assert!(Instant::now() < until, "virtiofsd never made {socket:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    d
}

/// A TCP port free on the host's loopback now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The host side of a port forward: connect to 127.0.0.1:`port`, send a line, read the
/// guest's answer. Retried (bounded) while the guest's side is not up yet: passt accepts
/// and then closes when nothing in the guest listens.
fn host_to_guest(port: u16, line: &str) -> String {
    let until = Instant::now() + Duration::from_secs(60 * vshrun::multiplier().max(1));
    let mut last = String::new();
    while Instant::now() < until {
        if let Ok(mut s) =
            TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(2))
        {
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            if s.write_all(format!("{line}\n").as_bytes()).is_ok() {
                let mut answer = String::new();
                if BufReader::new(&s).read_line(&mut answer).is_ok() && !answer.is_empty() {
                    return answer.trim().to_string();
                }
            }
            last = "connected, no answer".into();
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    panic!("no answer through 127.0.0.1:{port}: {last}");
}

/// The guest's line on `listener` (non-blocking accept, bounded).
fn guest_to_host(listener: &TcpListener) -> String {
    listener.set_nonblocking(true).unwrap();
    let until = Instant::now() + Duration::from_secs(90 * vshrun::multiplier().max(1));
    while Instant::now() < until {
        match listener.accept() {
            Ok((s, peer)) => {
                assert!(peer.ip().is_loopback(), "{peer}");
                s.set_nonblocking(false).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                let mut line = String::new();
                let _ = BufReader::new(s).read_line(&mut line);
                return line.trim().to_string();
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
    panic!("the guest never connected to the host");
}

/// Seven spare root ports; an xHCI controller; the script's 9p share; a virtiofs share
/// served by a virtiofsd the test started; two boot vCPUs.
fn boot(cold_socket: &Path, dir: tempfile::TempDir) -> Option<Live> {
    let kit = bootkit::linux()?;
    let run = dir.path().join("run");
    std::fs::create_dir_all(&run).unwrap();
    std::fs::write(run.join("run.sh"), SCRIPT).unwrap();
    let g = Live::new(dir);
    let ports: String = (1..=7)
        .map(|i| format!("<controller type='pci' index='{i}' model='pcie-root-port'/>"))
        .collect();
    let xml = g.file(
        "live.xml",
        &format!(
            "<domain type='qemu'><name>live</name><memory unit='MiB'>256</memory>
  <vcpu>2</vcpu>
  <memoryBacking><source type='memfd'/><access mode='shared'/></memoryBacking>
  <features><acpi/></features>
  <os><type arch='x86_64' machine='q35'>hvm</type><kernel>{}</kernel><initrd>{}</initrd>
    <cmdline>{}</cmdline></os>
  <devices><emulator>{QEMU}</emulator>
    <controller type='usb' model='qemu-xhci'/>{ports}
    <filesystem type='mount' accessmode='passthrough'><source dir='{}'/>
      <target dir='{}'/><readonly/></filesystem>
    <filesystem type='mount'><driver type='virtiofs'/><source socket='{}'/>
      <target dir='coldext'/></filesystem>
    <serial type='pty'><target port='0'/></serial><memballoon model='none'/>
  </devices></domain>",
            kit.kernel.display(),
            kit.initrd.display(),
            kit.cmdline(),
            run.display(),
            bootkit::RUN_TAG,
            cold_socket.display(),
        ),
    );
    g.ok(&["define", &xml]);
    g.ok(&["start", "live"]);
    Some(g)
}

fn skip() -> bool {
    for p in [QEMU, VIRTIOFSD] {
        if !Path::new(p).exists() {
            eprintln!("\n*** SKIPPED: {p} is not installed ***\n");
            return true;
        }
    }
    false
}

#[test]
fn traffic_usb_disks_and_user_virtiofsd_on_a_live_guest() {
    if skip() {
        return;
    }
    let dir = tempfile::Builder::new()
        .prefix("l4")
        .tempdir_in("/tmp")
        .unwrap();
    // The user's daemon for the cold share, started before the guest.
    let cold = dir.path().join("cold");
    std::fs::create_dir(&cold).unwrap();
    std::fs::write(cold.join("h.txt"), "host-cold\n").unwrap();
    let cold_sock = dir.path().join("cold.sock");
    let mut cold_daemon = user_virtiofsd(&cold_sock, &cold, &dir.path().join("cold.log"));
    let Some(g) = boot(&cold_sock, dir) else {
        return;
    };
    let t0 = Instant::now();
    g.wait("the first state", |s| s.starts_with("BLK= CPU=0-1 "), 300);
    eprintln!("FIGURE: guest up in {:?}", t0.elapsed());

    // The cold share: the guest reads and writes through the user's virtiofsd, and the
    // guest's monitor started no virtiofsd of its own.
    g.wait("the cold share", |s| s.ends_with("COLD=host-cold HOT="), 60);
    eventually("the guest's file on the cold share", || {
        std::fs::read_to_string(cold.join("g.txt")).is_ok_and(|t| t == "guest-cold\n")
    });
    assert!(g.helpers("virtiofsd").is_empty());
    assert!(cold_daemon.ended().is_none(), "the user's virtiofsd ended");
    let xml = g.ok(&["dumpxml", "live"]);
    assert!(
        xml.contains(&format!("<source socket='{}'/>", cold_sock.display())),
        "{xml}"
    );

    // libvirt passes over the vCPUs a guest booted with: none of them can go.
    let e = g.fails(&["setvcpus", "live", "1", "--live"]);
    assert_eq!(
        e,
        "error: unsupported configuration: failed to find appropriate hotpluggable vcpus to reach the desired target vcpu count\n"
    );

    hot_user_virtiofsd(&g);
    passt_port_forward(&g);
    slirp_to_host(&g);
    usb_disk(&g);

    let _ = g.vsh.run_bounded(&["destroy", "live"], 120);
    // The user's daemon saw its client go and ended by itself: no signal from us.
    eventually("the cold virtiofsd ended", || cold_daemon.ended().is_some());
    let st = cold_daemon.ended().unwrap();
    assert_eq!(st.signal(), None, "{st:?}");
}

/// A share hotplugged onto the user's running virtiofsd: attached, used by the guest and
/// detached, with the daemon never started nor signalled by the monitor.
fn hot_user_virtiofsd(g: &Live) {
    let hot = g.dir.path().join("hot");
    std::fs::create_dir(&hot).unwrap();
    std::fs::write(hot.join("h.txt"), "host-hot\n").unwrap();
    let sock = g.dir.path().join("hot.sock");
    let mut daemon = user_virtiofsd(&sock, &hot, &g.dir.path().join("hot.log"));
    let fs_xml = g.file(
        "hotfs.xml",
        &format!(
            "<filesystem type='mount'><driver type='virtiofs'/><source socket='{}'/>\
             <target dir='hotext'/></filesystem>",
            sock.display()
        ),
    );
    // A socket nobody serves: QEMU's refusal as libvirt words it, and nothing left.
    let bad = g.file(
        "badfs.xml",
        &format!(
            "<filesystem type='mount'><driver type='virtiofs'/><source socket='{}'/>\
             <target dir='nobody'/></filesystem>",
            g.dir.path().join("nobody.sock").display()
        ),
    );
    let e = g.fails(&["attach-device", "live", &bad]);
    assert!(
        e.starts_with(&format!("error: Failed to attach device from {bad}\n"))
            && e.contains("internal error: unable to execute QEMU command 'chardev-add'"),
        "{e}"
    );
    assert!(!g.ok(&["dumpxml", "live"]).contains("nobody"));

    assert_eq!(
        g.ok(&["attach-device", "live", &fs_xml]),
        "Device attached successfully\n\n"
    );
    assert!(g.helpers("virtiofsd").is_empty(), "the monitor started one");
    g.wait("the hot share", |s| s.ends_with("HOT=host-hot"), 60);
    eventually("the guest's file on the hot share", || {
        std::fs::read_to_string(hot.join("g.txt")).is_ok_and(|t| t == "guest-hot\n")
    });
    let xml = g.ok(&["dumpxml", "live"]);
    assert!(
        xml.contains(&format!("<source socket='{}'/>", sock.display())),
        "{xml}"
    );

    g.ok(&["detach-device", "live", &fs_xml]);
    g.wait("the hot share gone", |s| s.ends_with("HOT="), 60);
    eventually("hotext gone from the live XML", || {
        !g.ok(&["dumpxml", "live"]).contains("hotext")
    });
    // QEMU let go of the socket; the daemon ends by itself (the C virtiofsd does), never
    // by a signal of ours.
    eventually("the hot virtiofsd ended", || daemon.ended().is_some());
    assert_eq!(daemon.ended().unwrap().signal(), None);
}

/// A passt NIC plugged live with a port forward: the host's 127.0.0.1:P reaches the
/// guest's listener, and the answer comes back.
fn passt_port_forward(g: &Live) {
    if Command::new("passt").arg("--version").output().is_err() {
        eprintln!("NOTE: passt is not installed: no port forward over a hotplugged NIC");
        return;
    }
    let port = free_port();
    let xml = g.file(
        "passt.xml",
        &format!(
            "<interface type='user'><backend type='passt'/><model type='virtio'/>\
             <mac address='52:54:00:00:0c:01'/>\
             <portForward proto='tcp' address='127.0.0.1'>\
             <range start='{port}' to='{GUEST_PORT}'/></portForward></interface>"
        ),
    );
    g.ok(&["attach-device", "live", &xml]);
    assert_eq!(g.helpers("passt").len(), 1);
    g.wait(
        "a lease from passt",
        |s| s.contains(" NET=eth0=") && !s.contains("NET=eth0=;"),
        120,
    );
    let t = Instant::now();
    let answer = host_to_guest(port, "HOST-PING");
    eprintln!(
        "FIGURE: first answer through the port forward after {:?}",
        t.elapsed()
    );
    assert_eq!(answer, "GUEST-GOT-HOST-PING");
    g.wait(
        "the guest's log of the line",
        |s| s.contains("NC=HOST-PING "),
        30,
    );
    g.ok(&["detach-device", "live", &xml]);
    eventually("passt stopped", || g.helpers("passt").is_empty());
    g.wait("no NIC", |s| s.contains(" NET= "), 60);
    // Nothing listens on the port any more.
    eventually("the forward closed", || {
        TcpStream::connect(("127.0.0.1", port)).is_err()
    });
}

/// A user (slirp) NIC plugged live: the guest reaches a listener on the host's loopback
/// through the gateway.
fn slirp_to_host(g: &Live) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::fs::write(g.path("run").join("port"), port.to_string()).unwrap();
    let out = g.ok(&[
        "attach-interface",
        "live",
        "user",
        "-",
        "--model",
        "virtio",
        "--mac",
        "52:54:00:00:0c:02",
    ]);
    assert_eq!(out, "Interface attached successfully\n\n");
    let t = Instant::now();
    assert_eq!(guest_to_host(&listener), "GUEST-SLIRP");
    eprintln!(
        "FIGURE: the guest's line reached the host {:?} after attach",
        t.elapsed()
    );
    g.wait("sent", |s| s.contains("SENT=ok"), 30);
    g.ok(&[
        "detach-interface",
        "live",
        "user",
        "--mac",
        "52:54:00:00:0c:02",
    ]);
    g.wait("no NIC", |s| s.contains(" NET= "), 60);
}

/// A USB disk on the running guest's xHCI controller: the guest sees a new SCSI disk,
/// and it goes with the detach.
fn usb_disk(g: &Live) {
    let img = g.dir.path().join("usb.img");
    std::fs::File::create(&img)
        .unwrap()
        .set_len(8 << 20)
        .unwrap();
    let img = img.display().to_string();
    assert_eq!(
        g.ok(&["attach-disk", "live", &img, "sda", "--targetbus", "usb"]),
        "Disk attached successfully\n\n"
    );
    g.wait("the USB disk", |s| s.starts_with("BLK=sda,"), 120);
    let xml = g.ok(&["dumpxml", "live"]);
    assert!(xml.contains("<target dev='sda' bus='usb'/>"), "{xml}");
    assert!(
        xml.contains("<address type='usb' bus='0' port='1'/>"),
        "{xml}"
    );
    let bl = g.ok(&["domblklist", "live"]);
    assert!(bl.contains(" sda ") && bl.contains(&img), "{bl}");
    g.ok(&["detach-disk", "live", "sda"]);
    g.wait("the USB disk gone", |s| s.starts_with("BLK= "), 60);
    eventually("sda gone from the live XML", || {
        !g.ok(&["domblklist", "live"]).contains(" sda ")
    });
}

/// A USB disk for a running guest without a USB controller: libvirt's refusal, nothing
/// reaches the guest. The guest never needs to boot (paused from the start).
#[test]
fn a_usb_disk_needs_a_usb_controller() {
    if skip() {
        return;
    }
    let dir = tempfile::Builder::new()
        .prefix("l4u")
        .tempdir_in("/tmp")
        .unwrap();
    let root = dir.path().join("r");
    let v = vshrun::Vsh::new(root.clone());
    let _reap = vshrun::Reaper(root, vec!["nousb"]);
    let xml = dir.path().join("nousb.xml");
    std::fs::write(
        &xml,
        format!(
            "<domain type='qemu'><name>nousb</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
  <os><type arch='x86_64' machine='q35'>hvm</type></os>
  <devices><emulator>{QEMU}</emulator><controller type='usb' model='none'/>
    <controller type='pci' index='1' model='pcie-root-port'/>
    <memballoon model='none'/></devices></domain>"
        ),
    )
    .unwrap();
    let img = dir.path().join("u.img");
    std::fs::File::create(&img)
        .unwrap()
        .set_len(1 << 20)
        .unwrap();
    let ok = |args: &[&str]| {
        let (ok, out, err) = v.run_bounded(args, 120);
        assert!(ok, "vsh {args:?}: {err}");
        out
    };
    ok(&["define", &xml.display().to_string()]);
    ok(&["start", "--paused", "nousb"]);
    let (done, _, err) = v.run_bounded(
        &[
            "attach-disk",
            "nousb",
            &img.display().to_string(),
            "sda",
            "--targetbus",
            "usb",
        ],
        120,
    );
    // libvirt 9.0 gives a USB disk no USB address when the guest has no USB bus
    // (virDomainUSBAddressEnsure without an address set), and QEMU refuses the device.
    assert!(!done);
    assert_eq!(
        err,
        "error: Failed to attach disk\nerror: internal error: unable to execute QEMU command \
         'device_add': No 'usb-bus' bus found for device 'usb-storage'\n"
    );
    assert!(!ok(&["domblklist", "nousb"]).contains(" sda "));
    // The disk's nodes, added before the device, were taken back.
    let nodes = ok(&[
        "qemu-monitor-command",
        "nousb",
        "{\"execute\":\"query-named-block-nodes\"}",
    ]);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&nodes).unwrap()["return"],
        serde_json::json!([]),
        "{nodes}"
    );
    ok(&["destroy", "nousb"]);
}

/// A share on the user's own virtiofsd: QEMU's chardev connects to the user's socket, on
/// the command line and in hotplug alike, and no virtiofsd is planned for it (libvirt:
/// qemuDomainGetVHostUserFSSocketPath, qemuVirtioFSStart skipping `fs->sock`).
#[test]
fn a_user_socket_is_used_as_given() {
    use domdriver::capabilities::qemu::probe_replies;
    use domdriver::conformance::harness::{harness_context, prepare_options};
    let path = common::testdata().join("tests/qemucapabilitiesdata/caps_8.0.0.x86_64.replies");
    let caps = domdriver::runtime::block_on(probe_replies(&path, QEMU)).expect("replay caps");
    let xml = "<domain type='qemu'><name>ext</name><memory>219136</memory><vcpu>1</vcpu>
  <memoryBacking><source type='memfd'/><access mode='shared'/></memoryBacking>
  <os><type arch='x86_64' machine='q35'>hvm</type></os>
  <devices><emulator>/usr/bin/qemu-system-x86_64</emulator>
    <filesystem type='mount'><driver type='virtiofs'/>
      <source socket='/run/user/share.sock'/><target dir='ext'/></filesystem>
    <memballoon model='none'/>
  </devices></domain>";
    let def = domdriver::domain::parse(xml).unwrap();
    let mut def =
        domdriver::domain::prepare(def, &caps, &prepare_options("ext", "x86_64")).unwrap();
    domdriver::domain::prepare::assign_aliases(&mut def);
    let ctx = harness_context(&def);
    let args = domdriver::xml2argv::build(&def, &caps, &ctx).unwrap().args;
    assert!(
        args.windows(2).any(|w| w[0] == "-chardev"
            && w[1] == "socket,id=chr-vu-fs0,path=/run/user/share.sock"),
        "{args:?}"
    );
    let p = domdriver::xml2argv::props::filesystem_props(&def, &caps, &ctx, 0).unwrap();
    assert_eq!(
        p.chardev["backend"]["data"]["addr"]["data"]["path"],
        "/run/user/share.sock"
    );
    // No daemon of ours for it; the same share by directory gets one.
    let root = tempfile::tempdir().unwrap();
    let conn = domdriver::driver::Connect::open(Some(&format!(
        "qemu:///embed?root={}",
        root.path().display()
    )))
    .unwrap();
    assert!(conn.plan_helpers(&def, &ctx).unwrap().specs.is_empty());
    if Path::new(VIRTIOFSD).exists() {
        let mut by_dir = def.clone();
        let src = by_dir.devices.filesystems[0].source.as_mut().unwrap();
        src.socket = None;
        src.dir = Some("/srv/share".into());
        assert_eq!(conn.plan_helpers(&by_dir, &ctx).unwrap().specs.len(), 1);
    }
    // libvirt's parser wants a source (directory or socket) and a target.
    let no_target = xml.replace("<target dir='ext'/>", "");
    assert_eq!(
        domdriver::domain::parse(&no_target)
            .unwrap_err()
            .to_string(),
        "missing target information for device /run/user/share.sock"
    );
    let no_source = xml.replace("<source socket='/run/user/share.sock'/>", "");
    assert_eq!(
        domdriver::domain::parse(&no_source)
            .unwrap_err()
            .to_string(),
        "missing source information for device ext"
    );
    // The domain's own dumpxml keeps the socket, and the XML round-trips.
    let out = def.to_xml(domdriver::domain::FormatFlags {
        inactive: true,
        secure: true,
    });
    assert!(
        out.contains("<source socket='/run/user/share.sock'/>"),
        "{out}"
    );
}
