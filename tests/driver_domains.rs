//! Persistent domains through the API, on real files under temp `qemu:///embed` roots: define,
//! look up, list, undefine; clashes and hostile names; failed writes; concurrent defines; and a
//! real QEMU (`-machine none`) started from a hand-written argv. Every QEMU a test starts is
//! killed by pid from a drop guard, also when the test fails.

#[path = "common/bootkit.rs"]
mod bootkit;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use domdriver::Connect;
use domdriver::domain::FormatFlags;
use domdriver::driver::DriverError;
use domdriver::driver::domain::ListFlags;
use domdriver::driver::process::State;
use domdriver::driver::status::{GuestStatus, is_same_live_process, proc_stat};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const QEMU: &str = "/usr/bin/qemu-system-x86_64";
const UUID_A: &str = "c7a5fdbd-edaf-9455-926a-d65c16db1809";
const UUID_B: &str = "11111111-2222-3333-4444-555555555555";
/// Turns `helper_define_under_fsize_limit` into the child process of another test.
const HELPER_ENV: &str = "DOMDRIVER_TEST_DEFINE_ROOT";

/// Kills a QEMU by pid on drop, if it is still the process that was started.
struct Reap {
    pid: i32,
    start_time: u64,
}

impl Drop for Reap {
    fn drop(&mut self) {
        if is_same_live_process(self.pid, self.start_time) {
            let _ = kill(Pid::from_raw(self.pid), Signal::SIGKILL);
        }
        let until = Instant::now() + Duration::from_secs(5);
        while is_same_live_process(self.pid, self.start_time) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A guard for the QEMU of running domain `name` under `root`.
fn reap(root: &Path, name: &str) -> Reap {
    let st = GuestStatus::read(name, &root.join(format!("run/qemu/{name}.json")))
        .unwrap()
        .expect("status file of a running domain");
    let start_time = proc_stat(st.pid)
        .ok()
        .flatten()
        .map_or(st.start_time, |s| s.start_time);
    Reap {
        pid: st.pid,
        start_time,
    }
}

/// A short temp root (the monitor socket path must fit in sun_path) and a connection to it.
fn root() -> (tempfile::TempDir, Connect) {
    let t = tempfile::Builder::new()
        .prefix("dd")
        .tempdir_in("/tmp")
        .unwrap();
    let c = open(t.path());
    (t, c)
}

fn open(root: &Path) -> Connect {
    Connect::open(Some(&format!("qemu:///embed?root={}", root.display()))).unwrap()
}

fn xml(name: &str, uuid: Option<&str>, mib: u64) -> String {
    let uuid = uuid.map_or(String::new(), |u| format!("<uuid>{u}</uuid>"));
    format!(
        "<domain type='qemu'><name>{name}</name>{uuid}<memory unit='MiB'>{mib}</memory>\
         <vcpu>1</vcpu><os><type arch='x86_64'>hvm</type></os></domain>"
    )
}

fn names(c: &Connect, f: ListFlags) -> Vec<String> {
    c.list_all_domains(f)
        .unwrap()
        .iter()
        .map(|d| d.name().to_string())
        .collect()
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files_under(&p));
            }
            out.push(p);
        }
    }
    out
}

const INACTIVE: FormatFlags = FormatFlags {
    inactive: true,
    secure: false,
};

#[test]
fn define_lookup_list_undefine_round_trip() {
    let (t, c) = root();
    let a = c
        .define_domain_xml(&xml("alpha", Some(UUID_A), 128))
        .unwrap();
    assert_eq!(a.name(), "alpha");
    assert_eq!(a.uuid_string(), UUID_A);
    // No <uuid>: one is generated and kept.
    let b = c.define_domain_xml(&xml("Beta", None, 64)).unwrap();
    let b_uuid = b.uuid_string();
    assert_ne!(b_uuid, UUID_A);

    let cfg = t.path().join("etc/qemu");
    assert_eq!(mode(&cfg), 0o700);
    assert_eq!(mode(&cfg.join("alpha.xml")), 0o600);
    let saved = std::fs::read_to_string(cfg.join("Beta.xml")).unwrap();
    assert!(saved.contains(&format!("<uuid>{b_uuid}</uuid>")), "{saved}");

    // A second connection sees the same, by name and by UUID (in any spelling).
    let c2 = open(t.path());
    assert_eq!(
        c2.lookup_domain_by_name("Beta").unwrap().uuid_string(),
        b_uuid
    );
    assert_eq!(
        c2.lookup_domain_by_uuid(&UUID_A.to_uppercase())
            .unwrap()
            .name(),
        "alpha"
    );
    let d = c2.lookup_domain_by_name("alpha").unwrap();
    assert!(!d.is_active().unwrap());
    assert!(d.is_persistent().unwrap());
    assert_eq!(d.id().unwrap(), None);
    assert_eq!(d.state().unwrap().to_string(), "shut off (unknown)");
    let info = d.info().unwrap();
    assert_eq!(
        (
            info.state,
            info.max_mem,
            info.memory,
            info.nr_virt_cpu,
            info.cpu_time
        ),
        (State::Shutoff, 131072, 131072, 1, 0)
    );
    let x = d.xml_desc(INACTIVE).unwrap();
    assert!(x.contains("<memory unit='KiB'>131072</memory>"), "{x}");
    assert_eq!(d.xml_desc(FormatFlags::default()).unwrap(), x);

    // virsh's order: case-insensitive by name for inactive domains.
    assert_eq!(names(&c, ListFlags::ALL), ["alpha", "Beta"]);
    assert_eq!(names(&c, ListFlags::INACTIVE), ["alpha", "Beta"]);
    assert_eq!(names(&c, ListFlags::PERSISTENT), ["alpha", "Beta"]);
    assert_eq!(names(&c, ListFlags::SHUTOFF), ["alpha", "Beta"]);
    assert!(names(&c, ListFlags::ACTIVE).is_empty());
    assert!(names(&c, ListFlags::TRANSIENT).is_empty());
    assert!(names(&c, ListFlags::RUNNING | ListFlags::PAUSED).is_empty());

    // Redefining with the same name and UUID replaces the config.
    c.define_domain_xml(&xml("alpha", Some(UUID_A), 256))
        .unwrap();
    assert!(
        d.xml_desc(INACTIVE)
            .unwrap()
            .contains("<memory unit='KiB'>262144</memory>")
    );

    d.undefine().unwrap();
    assert!(!cfg.join("alpha.xml").exists());
    assert_eq!(names(&c, ListFlags::ALL), ["Beta"]);
    assert_eq!(
        c.lookup_domain_by_name("alpha").unwrap_err().to_string(),
        "Domain not found: no domain with matching name 'alpha'"
    );
    assert_eq!(
        c.lookup_domain_by_uuid(UUID_A).unwrap_err().to_string(),
        format!("Domain not found: no domain with matching uuid '{UUID_A}'")
    );
    // The stale handle says so, naming its UUID.
    assert_eq!(
        d.state().unwrap_err().to_string(),
        format!("Domain not found: no domain with matching uuid '{UUID_A}' (alpha)")
    );
    assert_eq!(
        d.undefine().unwrap_err().to_string(),
        format!("Domain not found: no domain with matching uuid '{UUID_A}' (alpha)")
    );
    assert_eq!(
        c.lookup_domain_by_uuid("not-a-uuid")
            .unwrap_err()
            .to_string(),
        "invalid argument: uuidstr in virDomainLookupByUUIDString must be a valid UUID"
    );
    assert_eq!(
        c.lookup_domain_by_id(1).unwrap_err().to_string(),
        "Domain not found: no domain with matching id 1"
    );
    assert_eq!(
        c.list_all_domains(ListFlags(1 << 12))
            .unwrap_err()
            .to_string(),
        "invalid argument: unsupported flags (0x1000) in function list_all_domains"
    );
}

#[test]
fn name_and_uuid_clashes_are_refused_as_libvirt_does() {
    let (t, c) = root();
    c.define_domain_xml(&xml("vm", Some(UUID_A), 128)).unwrap();
    let before = std::fs::read(t.path().join("etc/qemu/vm.xml")).unwrap();

    let e = c
        .define_domain_xml(&xml("vm", Some(UUID_B), 64))
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("operation failed: domain 'vm' already exists with uuid {UUID_A}")
    );
    // Without a <uuid> a new one is generated, so the name clashes too.
    let e = c.define_domain_xml(&xml("vm", None, 64)).unwrap_err();
    assert!(e.to_string().contains("already exists with uuid"), "{e}");
    let e = c
        .define_domain_xml(&xml("other", Some(UUID_A), 64))
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("operation failed: domain 'vm' is already defined with uuid {UUID_A}")
    );
    assert_eq!(
        std::fs::read(t.path().join("etc/qemu/vm.xml")).unwrap(),
        before
    );
    assert!(!t.path().join("etc/qemu/other.xml").exists());
    // XML errors are the parser's, libvirt's wording.
    let e = c.define_domain_xml("<domain type='qemu'>").unwrap_err();
    assert!(matches!(e, DriverError::Xml(_)), "{e:?}");
}

#[test]
fn hostile_names_are_refused_before_any_file_is_created() {
    let (t, c) = root();
    let long = "x".repeat(300);
    let cases: [(&str, &str); 6] = [
        ("../x", "XML error: name ../x cannot contain '/'"),
        ("a/b", "XML error: name a/b cannot contain '/'"),
        (".", "XML error: name . cannot start with '.'"),
        ("..", "XML error: name .. cannot start with '.'"),
        ("", "XML error: missing domain name information"),
        (&long, "longer than the 247 a file name allows"),
    ];
    for (name, msg) in cases {
        let e = c.define_domain_xml(&xml(name, None, 64)).unwrap_err();
        assert!(e.to_string().contains(msg), "{name:?}: {e}");
        let e = c.lookup_domain_by_name(name).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("Domain not found: no domain with matching name '{name}'")
        );
    }
    let e = c.define_domain_xml(&xml("a&#10;b", None, 64)).unwrap_err();
    assert_eq!(e.to_string(), "invalid char in name: \\n");
    assert!(
        files_under(t.path()).is_empty(),
        "{:?}",
        files_under(t.path())
    );
}

#[test]
fn unwritable_config_dir_is_reported() {
    // The config dir's parent is a file: mkdir fails even for root.
    let (t, c) = root();
    std::fs::write(t.path().join("etc"), "not a dir").unwrap();
    let e = c.define_domain_xml(&xml("vm", None, 64)).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "cannot create directory '{}/etc/qemu': Not a directory",
            t.path().display()
        )
    );
}

/// Runs only as the child of `a_failed_write_leaves_the_old_config_intact`: defines a domain
/// under RLIMIT_FSIZE, so that writing its config fails with EFBIG.
#[test]
fn helper_define_under_fsize_limit() {
    let Some(root) = std::env::var_os(HELPER_ENV) else {
        return;
    };
    let c = open(Path::new(&root));
    // SAFETY: plain syscalls with a valid struct; SIGXFSZ ignored so that write returns
    // EFBIG instead of killing the process.
    unsafe {
        nix::sys::signal::signal(Signal::SIGXFSZ, nix::sys::signal::SigHandler::SigIgn).unwrap();
        let lim = nix::libc::rlimit {
            rlim_cur: 100,
            rlim_max: 100,
        };
        assert_eq!(nix::libc::setrlimit(nix::libc::RLIMIT_FSIZE, &lim), 0);
    }
    match c.define_domain_xml(&xml("vm", Some(UUID_A), 512)) {
        Ok(_) => println!("RESULT ok"),
        Err(e) => println!("RESULT {e}"),
    }
}

#[test]
fn a_failed_write_leaves_the_old_config_intact() {
    let (t, c) = root();
    c.define_domain_xml(&xml("vm", Some(UUID_A), 128)).unwrap();
    let path = t.path().join("etc/qemu/vm.xml");
    let before = std::fs::read(&path).unwrap();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "helper_define_under_fsize_limit",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(HELPER_ENV, t.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let result = text
        .lines()
        .find_map(|l| l.split_once("RESULT ").map(|(_, r)| r))
        .unwrap_or_else(|| {
            panic!(
                "helper said: {text}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    assert_eq!(
        result,
        format!("cannot write file '{}': File too large", path.display())
    );
    assert_eq!(std::fs::read(&path).unwrap(), before);
    // No temp file is left behind.
    let left: Vec<_> = files_under(&t.path().join("etc/qemu"))
        .into_iter()
        .filter(|p| !p.ends_with(".domains.lock") && *p != path)
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn corrupt_configs_are_skipped_with_a_warning() {
    let (t, c) = root();
    c.define_domain_xml(&xml("good", None, 64)).unwrap();
    std::fs::write(t.path().join("etc/qemu/bad.xml"), "<domain").unwrap();
    std::fs::write(
        t.path().join("etc/qemu/liar.xml"),
        xml("someone-else", None, 64),
    )
    .unwrap();
    std::fs::write(t.path().join("etc/qemu/binary.xml"), [0xff, 0xfe]).unwrap();
    assert_eq!(names(&c, ListFlags::ALL), ["good"]);
    let w = c.take_warnings();
    assert_eq!(w.len(), 3, "{w:?}");
    assert!(
        w.iter().any(|w| w.ends_with("binary.xml' is not UTF-8")),
        "{w:?}"
    );
    assert!(w.iter().any(|w| w.contains("bad.xml: skipped")), "{w:?}");
    assert!(
        w.iter()
            .any(|w| w.contains("liar.xml: skipped: it defines domain 'someone-else'")),
        "{w:?}"
    );
    // Defining over a corrupt config replaces it.
    c.define_domain_xml(&xml("bad", None, 64)).unwrap();
    assert_eq!(names(&c, ListFlags::ALL), ["bad", "good"]);
}

#[test]
fn concurrent_defines_of_one_name_one_wins() {
    let (t, _c) = root();
    for round in 0..10 {
        let name = format!("race{round}");
        let barrier = Arc::new(Barrier::new(2));
        let threads: Vec<_> = [UUID_A, UUID_B]
            .into_iter()
            .map(|uuid| {
                let (root, barrier, name) = (t.path().to_path_buf(), barrier.clone(), name.clone());
                std::thread::spawn(move || {
                    let c = open(&root);
                    barrier.wait();
                    c.define_domain_xml(&xml(&name, Some(uuid), 64))
                        .map(|d| d.uuid_string())
                        .map_err(|e| e.to_string())
                })
            })
            .collect();
        let results: Vec<_> = threads.into_iter().map(|h| h.join().unwrap()).collect();
        let wins: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(wins.len(), 1, "{results:?}");
        let loss = results.iter().find_map(|r| r.as_ref().err()).unwrap();
        assert_eq!(
            *loss,
            format!(
                "operation failed: domain '{name}' already exists with uuid {}",
                wins[0]
            )
        );
        // The winner's config is the one on disk.
        let c = open(t.path());
        assert_eq!(
            c.lookup_domain_by_name(&name).unwrap().uuid_string(),
            *wins[0]
        );
        c.lookup_domain_by_name(&name).unwrap().undefine().unwrap();
    }
}

fn idle_args(name: &str) -> Vec<String> {
    [
        "-name",
        &format!("guest={name},debug-threads=on"),
        "-no-user-config",
        "-nodefaults",
        "-nic",
        "none",
        "-display",
        "none",
        "-machine",
        "none",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn not_running(e: DriverError) {
    assert_eq!(
        e.to_string(),
        "Requested operation is not valid: domain is not running"
    );
}

#[test]
fn operations_on_a_shut_off_domain_are_refused() {
    let (_t, c) = root();
    let d = c.define_domain_xml(&xml("off", None, 64)).unwrap();
    not_running(d.destroy().unwrap_err());
    not_running(d.suspend().unwrap_err());
    not_running(d.resume().unwrap_err());
    not_running(d.shutdown().unwrap_err());
    not_running(d.reboot().unwrap_err());
    not_running(d.shutdown_and_wait(Duration::from_secs(1)).unwrap_err());
}

#[test]
fn start_with_command_list_suspend_resume_destroy_and_reattach() {
    let (t, c) = root();
    let d = c.define_domain_xml(&xml("vm1", Some(UUID_A), 64)).unwrap();
    c.define_domain_xml(&xml("idle", None, 64)).unwrap();
    let mut args = idle_args("vm1");
    args.push("-S".into());
    d.start_with_command(QEMU, args, Vec::new()).unwrap();
    let _guard = reap(t.path(), "vm1");

    // Started with -S: paused, as `virsh start --paused`.
    assert_eq!(d.state().unwrap().to_string(), "paused (user)");
    assert!(d.is_active().unwrap());
    assert_eq!(d.id().unwrap(), Some(1));
    assert_eq!(names(&c, ListFlags::ACTIVE), ["vm1"]);
    assert_eq!(names(&c, ListFlags::ALL), ["vm1", "idle"]);
    assert_eq!(names(&c, ListFlags::PAUSED), ["vm1"]);
    assert_eq!(c.lookup_domain_by_id(1).unwrap().name(), "vm1");
    let live = d.xml_desc(FormatFlags::default()).unwrap();
    assert!(live.starts_with("<domain type='qemu' id='1'>"), "{live}");
    // The config has no domain id (its `<audio id='1'>` is another id).
    let inactive = d.xml_desc(INACTIVE).unwrap();
    assert!(inactive.starts_with("<domain type='qemu'>"), "{inactive}");
    let e = d
        .start_with_command(QEMU, idle_args("vm1"), Vec::new())
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "Requested operation is not valid: domain is already running"
    );

    d.resume().unwrap();
    assert_eq!(d.state().unwrap().to_string(), "running (unpaused)");
    d.suspend().unwrap();
    assert_eq!(d.state().unwrap().to_string(), "paused (user)");
    d.resume().unwrap();
    // Resuming a running domain is a no-op, as in libvirt.
    d.resume().unwrap();
    assert_eq!(d.state().unwrap().to_string(), "running (unpaused)");
    let info = d.info().unwrap();
    assert_eq!((info.state, info.max_mem), (State::Running, 65536));

    // Redefining while it runs changes the next boot only.
    c.define_domain_xml(&xml("vm1", Some(UUID_A), 96)).unwrap();
    assert!(
        d.xml_desc(FormatFlags::default())
            .unwrap()
            .contains("<memory unit='KiB'>65536</memory>")
    );
    assert!(
        d.xml_desc(INACTIVE)
            .unwrap()
            .contains("<memory unit='KiB'>98304</memory>")
    );

    // Another connection (as another vsh process would) finds it running and destroys it.
    let c2 = open(t.path());
    let d2 = c2.lookup_domain_by_name("vm1").unwrap();
    assert!(d2.is_active().unwrap());
    assert_eq!(d2.state().unwrap().to_string(), "running (unpaused)");
    d2.destroy().unwrap();
    assert_eq!(d.state().unwrap().to_string(), "shut off (destroyed)");
    assert_eq!(d.id().unwrap(), None);
    assert!(names(&c, ListFlags::ACTIVE).is_empty());
    not_running(d.destroy().unwrap_err());

    // The next start gets the next id, and forgets why it stopped.
    d.start_with_command(QEMU, idle_args("vm1"), Vec::new())
        .unwrap();
    let _guard2 = reap(t.path(), "vm1");
    assert_eq!(d.id().unwrap(), Some(2));
    assert_eq!(d.state().unwrap().to_string(), "running (booted)");
    d.destroy().unwrap();
}

#[test]
fn undefining_a_running_domain_makes_it_transient() {
    let (t, c) = root();
    let d = c.define_domain_xml(&xml("tr", None, 64)).unwrap();
    d.start_with_command(QEMU, idle_args("tr"), Vec::new())
        .unwrap();
    let _guard = reap(t.path(), "tr");
    d.undefine().unwrap();
    assert!(d.is_active().unwrap());
    assert!(!d.is_persistent().unwrap());
    assert_eq!(names(&c, ListFlags::TRANSIENT), ["tr"]);
    assert!(names(&c, ListFlags::PERSISTENT).is_empty());
    // The live XML still describes it, also when the inactive one is asked for.
    assert!(d.xml_desc(INACTIVE).unwrap().contains("<name>tr</name>"));
    let e = d.undefine().unwrap_err();
    assert_eq!(
        e.to_string(),
        "Requested operation is not valid: cannot undefine transient domain"
    );
    // Defining it again (same name and UUID) makes it persistent again.
    c.define_domain_xml(&d.xml_desc(INACTIVE).unwrap()).unwrap();
    assert!(d.is_persistent().unwrap());
    d.undefine().unwrap();
    // A transient domain is gone once it stops.
    d.destroy().unwrap();
    assert!(c.lookup_domain_by_name("tr").is_err());
    assert!(names(&c, ListFlags::ALL).is_empty());
}

#[test]
fn a_guest_that_died_behind_our_back_is_crashed() {
    let (t, c) = root();
    let d = c.define_domain_xml(&xml("dies", None, 64)).unwrap();
    d.start_with_command(QEMU, idle_args("dies"), Vec::new())
        .unwrap();
    drop(reap(t.path(), "dies"));
    assert_eq!(d.state().unwrap().to_string(), "shut off (crashed)");
    assert!(!d.is_active().unwrap());
    not_running(d.suspend().unwrap_err());
}

#[test]
fn a_qemu_that_fails_to_start_leaves_the_domain_shut_off() {
    let (_t, c) = root();
    let d = c.define_domain_xml(&xml("bad", None, 64)).unwrap();
    let e = d
        .start_with_command("/nonexistent/qemu", Vec::new(), Vec::new())
        .unwrap_err();
    assert!(
        e.to_string().contains("cannot execute /nonexistent/qemu"),
        "{e}"
    );
    assert_eq!(d.state().unwrap().to_string(), "shut off (unknown)");
}

#[test]
fn a_guest_started_by_the_process_layer_alone_is_transient() {
    use domdriver::driver::lock::GuestLock;
    use domdriver::driver::process::{Guest, LaunchSpec};
    let (t, c) = root();
    let mut argv = vec![QEMU.to_string()];
    argv.extend(idle_args("bare"));
    // No live XML in its status file.
    let g = Guest::start(c.dirs(), LaunchSpec::new("bare", UUID_B, argv)).unwrap();
    drop(g);
    let _guard = reap(t.path(), "bare");
    let d = c.lookup_domain_by_uuid(UUID_B).unwrap();
    assert_eq!(d.name(), "bare");
    assert!(d.is_active().unwrap() && !d.is_persistent().unwrap());
    assert_eq!(d.id().unwrap(), None);
    assert_eq!(
        d.xml_desc(FormatFlags::default()).unwrap_err().to_string(),
        "internal error: the status file of running domain 'bare' holds no definition"
    );
    let info = d.info().unwrap();
    assert_eq!((info.state, info.max_mem), (State::Running, 0));
    // Its name is taken by a running domain with another UUID.
    let e = c
        .define_domain_xml(&xml("bare", Some(UUID_A), 64))
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("operation failed: domain 'bare' already exists with uuid {UUID_B}")
    );
    // The lock guards only starts (and adoptions): operations go through the guest's
    // monitor, which serialises them.
    let lock = GuestLock::try_acquire(&c.dirs().run, "bare", "test").unwrap();
    d.suspend().unwrap();
    assert_eq!(d.state().unwrap().to_string(), "paused (user)");
    drop(lock);
    d.destroy().unwrap();
    assert!(c.lookup_domain_by_name("bare").is_err());
}

#[test]
fn shutdown_and_reboot_of_a_guest_without_acpi() {
    let (t, c) = root();
    let d = c.define_domain_xml(&xml("noacpi", None, 64)).unwrap();
    d.start_with_command(QEMU, idle_args("noacpi"), Vec::new())
        .unwrap();
    let _guard = reap(t.path(), "noacpi");
    // The request is made and returns, as virsh shutdown does; nothing powers off here.
    d.shutdown().unwrap();
    assert_eq!(d.state().unwrap().to_string(), "running (booted)");
    let e = d.shutdown_and_wait(Duration::from_millis(500)).unwrap_err();
    assert!(
        e.to_string()
            .contains("the guest did not shut down within 500ms"),
        "{e}"
    );
    let e = d.reboot_within(Duration::from_millis(500)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "Timed out during operation: domain 'noacpi' did not power off within 500ms to reboot"
    );
    d.destroy().unwrap();
    assert_eq!(d.state().unwrap().to_string(), "shut off (destroyed)");
}

#[test]
fn a_corrupt_status_file_is_skipped_with_a_warning() {
    let (t, c) = root();
    c.define_domain_xml(&xml("vm", None, 64)).unwrap();
    std::fs::create_dir_all(t.path().join("run/qemu")).unwrap();
    std::fs::write(t.path().join("run/qemu/vm.json"), "{garbage").unwrap();
    std::fs::write(t.path().join("run/qemu/ghost.json"), "{garbage").unwrap();
    assert_eq!(names(&c, ListFlags::ALL), ["vm"]);
    // Only the status files' warnings count: a probe under load may add its own about
    // binaries of architectures libvirt does not know.
    let w: Vec<String> = c
        .take_warnings()
        .into_iter()
        .filter(|w| !w.contains("is not an architecture libvirt knows"))
        .collect();
    assert_eq!(w.len(), 2, "{w:?}");
    assert!(w.iter().all(|w| w.contains(".json: skipped: ")), "{w:?}");
    assert_eq!(
        c.lookup_domain_by_name("vm")
            .unwrap()
            .state()
            .unwrap()
            .to_string(),
        "shut off (unknown)"
    );
}

/// Wait until the serial log holds `marker` `count` times.
fn wait_marker(serial: &Path, marker: &str, count: usize) {
    let until = Instant::now() + Duration::from_secs(180);
    loop {
        let text = std::fs::read_to_string(serial).unwrap_or_default();
        if text.matches(marker).count() >= count {
            return;
        }
        assert!(
            Instant::now() < until,
            "no {marker} (x{count}) on the serial console; it says:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn linux_guest_acpi_reboot_and_shutdown() {
    let Some(kit) = bootkit::linux() else { return };
    let (t, c) = root();
    let d = c.define_domain_xml(&xml("lin", None, 256)).unwrap();
    let serial = t.path().join("serial.log");
    let args = |no_shutdown: bool| {
        let mut a: Vec<String> = [
            "-name",
            "guest=lin",
            "-nodefaults",
            "-nic",
            "none",
            "-display",
            "none",
            "-machine",
            "pc",
            "-accel",
            "tcg",
            "-m",
            "256",
            "-kernel",
            &kit.kernel.display().to_string(),
            "-initrd",
            &kit.initrd.display().to_string(),
            "-append",
            kit.cmdline(),
            "-chardev",
            &format!("file,id=charserial0,path={}", serial.display()),
            "-device",
            "isa-serial,chardev=charserial0,id=serial0",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if no_shutdown {
            a.push("-no-shutdown".into());
        }
        a
    };

    // As libvirt runs QEMU (-no-shutdown): reboot is power off, reset, resume.
    d.start_with_command(QEMU, args(true), Vec::new()).unwrap();
    let guard = reap(t.path(), "lin");
    wait_marker(&serial, bootkit::GUEST_MARKER, 1);
    d.reboot().unwrap();
    wait_marker(&serial, bootkit::GUEST_MARKER, 2);
    // libvirt's qemuProcessFakeReboot resumes with reason `booted`.
    assert_eq!(d.state().unwrap().to_string(), "running (booted)");
    let end = d.shutdown_and_wait(Duration::from_secs(120)).unwrap();
    assert_eq!(end.to_string(), "shut off (shutdown)");
    assert_eq!(d.state().unwrap().to_string(), "shut off (shutdown)");
    drop(guard);

    // Without -no-shutdown QEMU exits once the guest powered off: the request alone is
    // enough, and nobody mistakes that exit for a crash.
    std::fs::remove_file(&serial).unwrap();
    d.start_with_command(QEMU, args(false), Vec::new()).unwrap();
    let _guard = reap(t.path(), "lin");
    wait_marker(&serial, bootkit::GUEST_MARKER, 1);
    d.shutdown().unwrap();
    let until = Instant::now() + Duration::from_secs(120);
    while d.is_active().unwrap() {
        assert!(Instant::now() < until, "the guest did not power off");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(d.state().unwrap().to_string(), "shut off (shutdown)");
}
