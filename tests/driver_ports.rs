//! Automatic display ports on a real host: two VNC guests and one SPICE guest with
//! `autoport='yes'`, started at the same time from separate connections, each get a port of
//! their own that QEMU really listens on, with no TLS certificates anywhere (qemu.conf's
//! defaults: no SPICE TLS port, no x509 dir needed).

use std::io::Read;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use domdriver::Connect;
use domdriver::domain::FormatFlags;
use domdriver::driver::Dirs;
use domdriver::driver::status::{GuestStatus, is_same_live_process};

const QEMU: &str = "/usr/bin/qemu-system-x86_64";

/// Kills a guest's QEMU on drop, by the pid in its status file.
struct Reap(PathBuf, String);

impl Drop for Reap {
    fn drop(&mut self) {
        if let Ok(Some(st)) = GuestStatus::read(&self.1, &self.0)
            && is_same_live_process(st.pid, st.start_time)
        {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(st.pid),
                nix::sys::signal::SIGKILL,
            );
        }
    }
}

fn conn(root: &Path) -> Connect {
    let emu_dir = root.join("emulators");
    let _ = std::fs::create_dir(&emu_dir);
    let _ = std::os::unix::fs::symlink(QEMU, emu_dir.join("qemu-system-x86_64"));
    let opts = domdriver::driver::ConnectOptions {
        emulator_dirs: vec![emu_dir],
        probe_timeout: Duration::from_secs(120),
        ..Default::default()
    };
    let uri = format!("qemu:///embed?root={}", root.display());
    Connect::open_with(Some(&uri), opts).unwrap()
}

fn domain(name: &str, graphics: &str) -> String {
    format!(
        "<domain type='qemu'><name>{name}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>\
         <os><type arch='x86_64' machine='pc'>hvm</type></os>\
         <devices>{graphics}<memballoon model='none'/></devices></domain>"
    )
}

/// The `port` attribute of the live XML's `<graphics>`.
fn live_port(xml: &str) -> u16 {
    let g = &xml[xml.find("<graphics").expect("graphics")..];
    let g = &g[..g.find('>').unwrap()];
    let p = &g[g.find(" port=").expect("port") + 6..];
    let quote = p.chars().next().unwrap();
    let p = &p[1..];
    p[..p.find(quote).unwrap()]
        .parse()
        .unwrap_or_else(|_| panic!("numeric port in {g}"))
}

#[test]
fn autoport_guests_started_at_once_get_distinct_free_ports() {
    if !Path::new(QEMU).exists() {
        eprintln!("\n*** SKIPPED: {QEMU} is not installed ***\n");
        return;
    }
    let tmp = tempfile::Builder::new()
        .prefix("ports")
        .tempdir_in("/tmp")
        .unwrap();
    let dirs = Dirs::under(tmp.path());
    let guests = [
        (
            "vnc-a",
            "<graphics type='vnc' port='-1' autoport='yes' listen='127.0.0.1'/>",
        ),
        (
            "vnc-b",
            "<graphics type='vnc' autoport='yes' listen='127.0.0.1' keymap='en-us'/>",
        ),
        (
            "spice-c",
            "<graphics type='spice' autoport='yes' listen='127.0.0.1'/>",
        ),
    ];
    let _reap: Vec<Reap> = guests
        .iter()
        .map(|(n, _)| Reap(dirs.run.join(format!("{n}.json")), n.to_string()))
        .collect();
    // Probe once, so the starts below race each other and not the probe.
    let c = conn(tmp.path());
    for (name, g) in &guests {
        c.define_domain_xml(&domain(name, g)).unwrap();
    }
    let root = tmp.path().to_path_buf();
    let starts: Vec<_> = guests
        .iter()
        .map(|(name, _)| {
            let root = root.clone();
            let name = name.to_string();
            std::thread::spawn(move || {
                let c = conn(&root);
                let d = c.lookup_domain_by_name(&name).unwrap();
                d.create().map_err(|e| format!("{name}: {e}"))
            })
        })
        .collect();
    for s in starts {
        s.join().unwrap().unwrap();
    }
    let mut ports = Vec::new();
    for (name, _) in &guests {
        let d = c.lookup_domain_by_name(name).unwrap();
        assert!(d.is_active().unwrap(), "{name} runs");
        let xml = d
            .xml_desc(FormatFlags {
                inactive: false,
                secure: true,
            })
            .unwrap();
        let port = live_port(&xml);
        assert!(port >= 5900, "{name}: port {port} in libvirt's range");
        // No TLS: SPICE has no TLS port, so no certificate directory is needed.
        assert!(!xml.contains("tlsPort"), "{name}: {xml}");
        ports.push(port);
    }
    let mut distinct = ports.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), 3, "three different ports: {ports:?}");
    // QEMU listens on each: VNC greets with its RFB version.
    let mut s = TcpStream::connect(("127.0.0.1", ports[0])).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut hello = [0u8; 12];
    s.read_exact(&mut hello).unwrap();
    assert!(hello.starts_with(b"RFB "), "{hello:?}");
    TcpStream::connect(("127.0.0.1", ports[1])).unwrap();
    TcpStream::connect(("127.0.0.1", ports[2])).unwrap();
    // The start's reservations ended with it.
    let left: Vec<_> = std::fs::read_dir(dirs.run.join("ports"))
        .map(|r| r.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "reservations left: {left:?}");
    for (name, _) in &guests {
        c.lookup_domain_by_name(name).unwrap().destroy().unwrap();
    }
}
