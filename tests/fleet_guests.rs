//! `domdriver::fleet`: guests built in Rust, started through the driver, run under TCG.
//!
//! The emulator choice and the environment policy run real QEMU binaries; the guest tests boot
//! the boot kit's Debian kernel with a test script (on the kernel command line or on a 9p
//! share) and check what it did. Every guest is destroyed by its handle (by pid, through the
//! driver) when the test ends, passing or not.

#[path = "common/bootkit.rs"]
mod bootkit;

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::time::Duration;

use domdriver::Connect;
use domdriver::driver::ConnectOptions;
use domdriver::fleet::{GuestBuilder, SocketNet, StartedGuest};

const QEMU_X86: &str = "/usr/bin/qemu-system-x86_64";
const QEMU_ARM64: &str = "/usr/bin/qemu-system-aarch64";

/// How long a TCG guest may take to boot and run its script on a loaded 2-core machine.
const BOOT: Duration = Duration::from_secs(240);

fn have(bin: &str) -> bool {
    if Path::new(bin).exists() {
        return true;
    }
    eprintln!("\n*** SKIPPED: {bin} is not installed ***\n");
    false
}

/// A connection on an embedded root in `dir`, whose emulators are the given binaries only
/// (symlinked into a directory of their own, so probing stays cheap).
fn connect(dir: &Path, bins: &[&str], tweak: impl FnOnce(&mut ConnectOptions)) -> Connect {
    let bin_dir = dir.join("bin");
    std::fs::create_dir_all(&bin_dir).unwrap();
    for b in bins {
        let p = Path::new(b);
        symlink(p, bin_dir.join(p.file_name().unwrap())).unwrap();
    }
    let mut opts = ConnectOptions {
        emulator_dirs: vec![bin_dir],
        kvm_device: "/dev/null".into(),
        probe_timeout: Duration::from_secs(60),
        ..ConnectOptions::default()
    };
    tweak(&mut opts);
    let uri = format!("qemu:///embed?root={}", dir.join("root").display());
    Connect::open_with(Some(&uri), opts).unwrap()
}

/// The boot kit's guest running `script` from the kernel command line.
fn kit_guest(kit: &bootkit::LinuxKit, name: &str, script: &str) -> GuestBuilder {
    GuestBuilder::new(name)
        .arch("amd64")
        .kernel(&kit.kernel)
        .initrd(&kit.initrd)
        .cmdline(format!(
            "{} {}",
            kit.cmdline(),
            bootkit::run_cmdline(script)
        ))
        .memory_mib(256)
}

/// Wait for the script's end and return its output; panics with the console on failure.
fn run_to_end(g: &mut StartedGuest<'_>) -> String {
    g.expect(bootkit::RUN_BEGIN, BOOT)
        .unwrap_or_else(|e| panic!("{e}"));
    let out = g
        .expect(bootkit::RUN_END, BOOT)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        out.contains(&format!("{} rc=0", bootkit::RUN_END)),
        "script failed:\n{out}\nconsole:\n{}",
        g.console_output()
    );
    out
}

fn environ(pid: i32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/environ"))
        .unwrap()
        .split(|&b| b == 0)
        .filter(|v| !v.is_empty())
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect()
}

#[test]
fn arch_aliases_get_the_emulator_the_capabilities_list() {
    if !have(QEMU_X86) || !have(QEMU_ARM64) {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let conn = connect(d.path(), &[QEMU_ARM64, QEMU_X86], |_| {});
    let bin = d.path().join("bin");
    // A variant serving x86_64 too, found first: the plain qemu-system-x86_64 still wins, as
    // libvirt looks for that name.
    let variant = bin.join("qemu-system-a-variant");
    std::fs::write(&variant, format!("#!/bin/sh\nexec {QEMU_X86} \"$@\"\n")).unwrap();
    std::fs::set_permissions(
        &variant,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    for (alias, binary, machine) in [
        ("amd64", "qemu-system-x86_64", "-machine pc"),
        ("x86_64", "qemu-system-x86_64", "-machine pc"),
        ("arm64", "qemu-system-aarch64", "-machine virt"),
    ] {
        let xml = GuestBuilder::new("a").arch(alias).to_xml().unwrap();
        let cmd = conn.domain_xml_to_native(&xml).unwrap();
        assert_eq!(
            PathBuf::from(&cmd.binary),
            bin.join(binary),
            "{alias}: {xml}"
        );
        assert!(
            cmd.args.join(" ").contains(machine),
            "{alias}: {:?}",
            cmd.args
        );
    }
    // The capabilities document lists the same binaries.
    let caps = conn.capabilities().unwrap();
    assert!(
        caps.contains(&format!(
            "<emulator>{}</emulator>",
            bin.join("qemu-system-aarch64").display()
        )) && caps.contains(&format!(
            "<emulator>{}</emulator>",
            bin.join("qemu-system-x86_64").display()
        )) && !caps.contains("a-variant"),
        "{caps}"
    );
    // The variant was probed: it serves x86_64, it just is not the one chosen.
    let probed = conn.emulator_summaries();
    assert!(
        probed
            .emulators
            .iter()
            .any(|(p, c)| *p == variant && c.arch == "x86_64"),
        "{:?}",
        probed.warnings
    );
}

#[test]
fn arch_without_emulator_names_the_debian_package() {
    let d = tempfile::tempdir().unwrap();
    let conn = connect(d.path(), &[], |_| {});
    for (alias, want) in [
        (
            "amd64",
            "no emulator found for arch 'x86_64': install qemu-system-x86_64 (Debian package qemu-system-x86)",
        ),
        (
            "arm64",
            "no emulator found for arch 'aarch64': install qemu-system-aarch64 (Debian package qemu-system-arm)",
        ),
        (
            "ppc64el",
            "no emulator found for arch 'ppc64le': install qemu-system-ppc64le (Debian package qemu-system-ppc)",
        ),
        (
            "riscv64",
            "no emulator found for arch 'riscv64': install qemu-system-riscv64 (Debian package qemu-system-misc)",
        ),
    ] {
        let e = GuestBuilder::new(format!("g-{alias}"))
            .arch(alias)
            .start(&conn)
            .unwrap_err()
            .to_string();
        assert_eq!(e, format!("unsupported configuration: {want}"));
        // A guest that could not start is not left defined.
        assert!(conn.lookup_domain_by_name(&format!("g-{alias}")).is_err());
    }
}

#[test]
fn builder_errors_name_the_problem() {
    let d = tempfile::tempdir().unwrap();
    let cases = [
        (
            GuestBuilder::new("g").arch("vax"),
            "guest 'g': unknown architecture 'vax'",
        ),
        (
            GuestBuilder::new("g").kernel(d.path().join("nope")),
            "guest 'g': kernel ",
        ),
        (
            GuestBuilder::new("g").share_9p(d.path(), "", false),
            "guest 'g': 9p mount tag '' must be 1 to 31 bytes long",
        ),
        (
            GuestBuilder::new("g").vfat_dir(d.path().join("nope")),
            "guest 'g': vfat dir ",
        ),
        (GuestBuilder::new("g").cpus(0), "guest 'g': a guest needs"),
        (
            GuestBuilder::new("g").socket_net(SocketNet::Client { port: 0 }, "52:54:00:00:00:01"),
            "guest 'g': socket network of NIC 52:54:00:00:00:01: port 0",
        ),
        (
            GuestBuilder::new("g").socket_net(SocketNet::Client { port: 1 }, "nonsense"),
            "guest 'g': unable to parse mac address 'nonsense'",
        ),
        (
            GuestBuilder::new("g").socket_net(SocketNet::Server { port: 1 }, "01:00:5e:00:00:01"),
            "guest 'g': expected unicast mac address, found multicast '01:00:5e:00:00:01'",
        ),
    ];
    for (b, want) in cases {
        let e = b.build().unwrap_err().to_string();
        assert!(e.starts_with(want), "{e}");
    }
}

#[test]
fn unwritable_console_log_dir_is_reported_before_anything_starts() {
    let d = tempfile::tempdir().unwrap();
    let conn = connect(d.path(), &[], |_| {});
    let file = d.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let e = GuestBuilder::new("nolog")
        .serial_log(file.join("console.log"))
        .start(&conn)
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with(&format!("guest 'nolog': {}: ", file.display())),
        "{e}"
    );
    assert!(conn.lookup_domain_by_name("nolog").is_err());
}

#[test]
fn builder_renders_devices_and_passthrough() {
    if !have(QEMU_X86) {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let conn = connect(d.path(), &[QEMU_X86], |_| {});
    let share = d.path().join("share");
    std::fs::create_dir(&share).unwrap();
    let b = GuestBuilder::new("render")
        .arch("x86_64")
        .memory_mib(128)
        .cpus(2)
        .share_9p(&share, "hostshare", true)
        .vfat_dir(&share)
        .virtio_rng()
        .qemu_args(["-global", "kvm-pit.lost_tick_policy=discard"])
        .qemu_env("FLEET_DOMAIN_VAR", "a b")
        .serial_log(d.path().join("console.log"));
    let xml = b.to_xml().unwrap();
    for part in [
        "<filesystem type='mount' accessmode='passthrough'>",
        "<target dir='hostshare'/>",
        "<disk type='dir' device='disk'>",
        "<driver name='qemu' type='fat'/>",
        "<rng model='virtio'>",
        "<qemu:arg value='-global'/>",
        "<qemu:env name='FLEET_DOMAIN_VAR' value='a b'/>",
    ] {
        assert!(xml.contains(part), "{part} missing:\n{xml}");
    }
    let cmd = conn.domain_xml_to_native(&xml).unwrap();
    let args = cmd.args.join(" ");
    for part in [
        "-fsdev local,security_model=passthrough,id=fsdev-fs0,path=",
        ",readonly",
        "\"mount_tag\":\"hostshare\"",
        "\"driver\":\"vvfat\"",
        "virtio-rng-pci",
        "-smp 2",
        "-chardev file,id=charserial0,path=",
    ] {
        assert!(args.contains(part), "{part} missing: {args}");
    }
    // libvirt puts <qemu:arg>s after every device, just before -sandbox and -msg.
    let at = cmd.args.iter().position(|a| a == "-global").unwrap();
    assert_eq!(cmd.args[at + 1], "kvm-pit.lost_tick_policy=discard");
    assert!(
        cmd.args[at + 2..]
            .iter()
            .all(|a| !a.starts_with("-device") && !a.starts_with("-fsdev")),
        "{args}"
    );
    assert!(
        cmd.env
            .contains(&("FLEET_DOMAIN_VAR".to_string(), "a b".to_string())),
        "{:?}",
        cmd.env
    );
}

#[test]
fn connection_env_reaches_every_qemu_and_overrides_the_domain() {
    if !have(QEMU_X86) {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let conn = connect(d.path(), &[QEMU_X86], |o| {
        o.qemu_env = vec![
            ("FLEET_CONN_VAR".into(), "from-connection".into()),
            ("FLEET_BOTH".into(), "connection-wins".into()),
        ];
    });
    // No kernel: SeaBIOS finds nothing to boot and idles, which is all this needs.
    let g = GuestBuilder::new("envtest")
        .arch("x86_64")
        .memory_mib(64)
        .qemu_env("FLEET_BOTH", "domain")
        .qemu_env("FLEET_DOMAIN_VAR", "from-domain")
        .start(&conn)
        .unwrap();
    let pid = g.pid().expect("QEMU runs");
    let env = environ(pid);
    g.destroy().unwrap();
    for want in [
        "FLEET_CONN_VAR=from-connection",
        "FLEET_BOTH=connection-wins",
        "FLEET_DOMAIN_VAR=from-domain",
        "LC_ALL=C",
    ] {
        assert!(env.iter().any(|e| e == want), "{want} not in {env:?}");
    }
    assert!(!is_qemu(pid), "QEMU {pid} outlived destroy");
}

fn is_qemu(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.starts_with("qemu"))
}

#[test]
fn forbidden_domain_env_fails_to_start() {
    if !have(QEMU_X86) {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let conn = connect(d.path(), &[QEMU_X86], |o| {
        o.allow_domain_env = false;
        o.qemu_env = vec![("FLEET_CONN_VAR".into(), "set".into())];
    });
    let e = GuestBuilder::new("noenv")
        .arch("x86_64")
        .memory_mib(64)
        .qemu_env("LD_PRELOAD", "/tmp/evil.so")
        .start(&conn)
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "Requested operation is not valid: domain 'noenv' sets QEMU's environment (<qemu:env name='LD_PRELOAD'/>), which this connection forbids"
    );
    assert!(conn.lookup_domain_by_name("noenv").is_err());
    assert!(!d.path().join("root/run/noenv.json").exists());
    // domxml-to-native says the same, rather than showing a command that would not run.
    let xml = GuestBuilder::new("noenv")
        .arch("x86_64")
        .qemu_env("A", "b")
        .to_xml()
        .unwrap();
    assert!(conn.domain_xml_to_native(&xml).is_err());
    // Arguments alone are allowed, and the connection's variables still apply.
    let g = GuestBuilder::new("argsonly")
        .arch("x86_64")
        .memory_mib(64)
        .qemu_args(["-name", "argsonly-extra"])
        .start(&conn)
        .unwrap();
    let env = environ(g.pid().unwrap());
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", g.pid().unwrap())).unwrap();
    g.destroy().unwrap();
    assert!(env.iter().any(|e| e == "FLEET_CONN_VAR=set"), "{env:?}");
    assert!(
        String::from_utf8_lossy(&cmdline).contains("argsonly-extra"),
        "{cmdline:?}"
    );
}

#[test]
fn guest_writes_a_file_into_a_9p_share() {
    if !have(QEMU_X86) {
        return;
    }
    let Some(kit) = bootkit::linux() else { return };
    let d = tempfile::tempdir().unwrap();
    let conn = connect(d.path(), &[QEMU_X86], |_| {});
    // The script comes from the run share this time, not the command line.
    let run = d.path().join("run");
    let out = d.path().join("out");
    std::fs::create_dir_all(&run).unwrap();
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(
        run.join("run.sh"),
        "set -e\n\
         mkdir -p /mnt/out\n\
         mount -t 9p -o trans=virtio,version=9p2000.L out /mnt/out\n\
         echo written-by-the-guest > /mnt/out/result.txt\n\
         sync\n\
         umount /mnt/out\n\
         echo SCRIPT-DONE\n",
    )
    .unwrap();
    let mut g = GuestBuilder::new("ninep")
        .arch("amd64")
        .kernel(&kit.kernel)
        .initrd(&kit.initrd)
        .cmdline(kit.cmdline())
        .share_9p(&run, bootkit::RUN_TAG, true)
        .share_9p(&out, "out", false)
        .start(&conn)
        .unwrap();
    let log = run_to_end(&mut g);
    assert!(log.contains("SCRIPT-DONE"), "{log}");
    g.destroy().unwrap();
    assert_eq!(
        std::fs::read_to_string(out.join("result.txt")).unwrap(),
        "written-by-the-guest\n"
    );
}

#[test]
fn guest_reads_a_file_from_a_vfat_view() {
    if !have(QEMU_X86) {
        return;
    }
    let Some(kit) = bootkit::linux() else { return };
    let d = tempfile::tempdir().unwrap();
    let conn = connect(d.path(), &[QEMU_X86], |_| {});
    let view = d.path().join("view");
    std::fs::create_dir_all(&view).unwrap();
    std::fs::write(view.join("note.txt"), "vfat-content-4711\n").unwrap();
    let script = "mkdir -p /mnt/v && mount -t vfat -o ro /dev/vda1 /mnt/v && \
                  echo \"GOT:$(cat /mnt/v/note.txt)\" && umount /mnt/v";
    let mut g = kit_guest(&kit, "vfat", script)
        .vfat_dir(&view)
        .virtio_rng()
        .serial_log(d.path().join("vfat-console.log"))
        .start(&conn)
        .unwrap();
    let log = run_to_end(&mut g);
    assert!(log.contains("GOT:vfat-content-4711"), "{log}");
    assert_eq!(g.serial_log(), d.path().join("vfat-console.log"));
    // A second expect starts after the first match: the marker is not seen again.
    let e = g
        .expect(bootkit::RUN_END, Duration::from_millis(300))
        .unwrap_err()
        .to_string();
    assert!(e.contains("not seen on the console within"), "{e}");
}

#[test]
fn expect_reports_a_guest_that_exits() {
    if !have(QEMU_X86) {
        return;
    }
    let Some(kit) = bootkit::linux() else { return };
    let d = tempfile::tempdir().unwrap();
    let conn = connect(d.path(), &[QEMU_X86], |_| {});
    // QEMU killed behind the handle's back, as a crash would: expect says so at once
    // instead of waiting out its timeout.
    let mut g = kit_guest(&kit, "exits", "echo BYE").start(&conn).unwrap();
    g.expect("BYE", BOOT).unwrap_or_else(|e| panic!("{e}"));
    g.domain().destroy().unwrap();
    let e = g
        .expect("never printed", Duration::from_secs(30))
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("guest 'exits': QEMU exited before 'never printed' was seen"),
        "{e}"
    );
}

#[test]
fn aarch64_virt_guest_boots_a_debian_kernel_to_its_console() {
    if !have(QEMU_ARM64) {
        return;
    }
    let Some(kernel) = bootkit::arm64_kernel() else {
        return;
    };
    let d = tempfile::tempdir().unwrap();
    let conn = connect(d.path(), &[QEMU_ARM64], |_| {});
    let b = GuestBuilder::new("arm64")
        .arch("arm64")
        .machine("virt")
        .cpu_model("cortex-a57")
        .memory_mib(512)
        .kernel(&kernel);
    let b = b
        .clone()
        .cmdline(format!("{} panic=-1", b.console_arg().unwrap()));
    let xml = b.to_xml_for(&conn).unwrap();
    assert!(
        xml.contains("<type arch='aarch64' machine='virt'>hvm</type>"),
        "{xml}"
    );
    assert!(
        xml.contains("<cmdline>console=ttyAMA0 panic=-1</cmdline>"),
        "{xml}"
    );
    let mut g = b.start(&conn).unwrap();
    let pid = g.pid().unwrap();
    let cmdline = String::from_utf8_lossy(&std::fs::read(format!("/proc/{pid}/cmdline")).unwrap())
        .replace('\0', " ");
    assert!(cmdline.contains("-cpu cortex-a57"), "{cmdline}");
    let out = g
        .expect("Linux version", BOOT)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(out.contains("Booting Linux on physical CPU"), "{out}");
    // The boot goes on: the kernel finds the Cortex-A57 and its serial port.
    g.expect("ttyAMA0", BOOT).unwrap_or_else(|e| panic!("{e}"));
    g.destroy().unwrap();
    assert!(!is_qemu(pid), "QEMU {pid} outlived destroy");
}

/// A TCP or UDP port on 127.0.0.1 that was free a moment ago.
fn free_port(udp: bool) -> u16 {
    if udp {
        std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    } else {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }
}

/// Guest `a` (192.168.77.1) brings up its NIC; guest `b` (192.168.77.2) pings it. The
/// addresses live on the guests' own virtual link, which QEMU carries over 127.0.0.1.
fn ping_pair(tag: &str, a_net: SocketNet, b_net: SocketNet) {
    let Some(kit) = bootkit::linux() else { return };
    let d = tempfile::tempdir().unwrap();
    let conn = connect(d.path(), &[QEMU_X86], |_| {});
    // Both NIC drivers of the kit: virtio_net on one side, e1000 on the other.
    let mut a = kit_guest(
        &kit,
        &format!("{tag}-a"),
        "ip link set eth0 up && ip addr add 192.168.77.1/24 dev eth0 && echo NET-READY",
    )
    .socket_net_model(a_net, "52:54:00:77:00:01", "virtio")
    .start(&conn)
    .unwrap();
    let mut b = kit_guest(
        &kit,
        &format!("{tag}-b"),
        "ip link set eth0 up && ip addr add 192.168.77.2/24 dev eth0 && \
         for i in $(seq 90); do ping -c 1 -W 1 192.168.77.1 >/dev/null && break; done; \
         ping -c 2 192.168.77.1",
    )
    .socket_net_model(b_net, "52:54:00:77:00:02", "e1000")
    .start(&conn)
    .unwrap();
    a.expect("NET-READY", BOOT)
        .unwrap_or_else(|e| panic!("{e}"));
    let out = run_to_end(&mut b);
    assert!(
        out.contains("2 packets transmitted, 2 packets received"),
        "{out}"
    );
    let (pa, pb) = (a.pid().unwrap(), b.pid().unwrap());
    b.destroy().unwrap();
    a.destroy().unwrap();
    assert!(!is_qemu(pa) && !is_qemu(pb));
}

#[test]
fn two_guests_ping_over_a_loopback_server_client_socket() {
    if !have(QEMU_X86) {
        return;
    }
    let port = free_port(false);
    ping_pair(
        "tcp",
        SocketNet::Server { port },
        SocketNet::Client { port },
    );
}

#[test]
fn two_guests_ping_over_loopback_udp_sockets() {
    if !have(QEMU_X86) {
        return;
    }
    let (pa, pb) = (free_port(true), free_port(true));
    ping_pair(
        "udp",
        SocketNet::Udp {
            port: pb,
            local_port: pa,
        },
        SocketNet::Udp {
            port: pa,
            local_port: pb,
        },
    );
}
