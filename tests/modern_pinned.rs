//! What a modern guest keeps stable across starts: its UEFI firmware chosen at define (as
//! libvirt 9.2+ does) and written into the config, its TPM state encrypted with a
//! passphrase from the secrets store (handed to swtpm through a pipe), and its virtiofs
//! daemon given the socket the monitor bound (`--fd`). Real OVMF descriptors, swtpm,
//! virtiofsd and QEMU; no guest OS boots (SeaBIOS or OVMF idles), so each start is quick.
//!
//! `vsh` runs are bounded (killed by pid after a deadline), their output goes through
//! files, and every QEMU, monitor and helper under a test's root is killed by pid at the
//! end, also when the test fails.

#[path = "common/guests.rs"]
mod guests;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use domdriver::Connect;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const QEMU: &str = "/usr/bin/qemu-system-x86_64";
const CODE: &str = "/usr/share/OVMF/OVMF_CODE_4M.fd";
const TEMPLATE: &str = "/usr/share/OVMF/OVMF_VARS_4M.fd";
const CHOSEN: &str = "60-edk2-x86_64.json";

fn tmp() -> tempfile::TempDir {
    // Short path: socket paths must fit in sun_path.
    tempfile::Builder::new()
        .prefix("mp")
        .tempdir_in("/tmp")
        .unwrap()
}

/// Kills every QEMU, monitor and helper under the root at the end.
struct Cleanup(PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for what in ["domdriver-monitor", "qemu-system", "swtpm", "virtiofsd"] {
            for pid in guests::pids_under(&self.0, what) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
    }
}

fn scaled(d: Duration) -> Duration {
    domdriver::fleet::scaled(d)
}

/// `vsh` on the embedded root with `XDG_CONFIG_HOME=xdg`, killed after a deadline:
/// (success, stdout, stderr).
fn vsh(root: &Path, xdg: &Path, args: &[&str]) -> (bool, String, String) {
    vsh_env(root, &[("XDG_CONFIG_HOME", xdg)], args)
}

/// `vsh` on the embedded root with `env`, killed after a deadline.
fn vsh_env(root: &Path, env: &[(&str, &Path)], args: &[&str]) -> (bool, String, String) {
    let out = root.with_extension("out");
    let err = root.with_extension("err");
    let mut child = Command::new(env!("CARGO_BIN_EXE_vsh"))
        .env_remove("VSH_DEFAULT_URI")
        .envs(env.iter().copied())
        .arg("-c")
        .arg(format!("qemu:///embed?root={}", root.display()))
        .args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let until = Instant::now() + scaled(Duration::from_secs(120));
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > until {
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
            let _ = child.wait();
            panic!("vsh {args:?} did not end in time");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (
        status.success(),
        std::fs::read_to_string(&out).unwrap_or_default(),
        std::fs::read_to_string(&err).unwrap_or_default(),
    )
}

fn ok(root: &Path, xdg: &Path, args: &[&str]) -> String {
    let (ok, out, err) = vsh(root, xdg, args);
    assert!(ok, "vsh {args:?} failed: {err}");
    out
}

fn fails(root: &Path, xdg: &Path, args: &[&str]) -> String {
    let (ok, out, err) = vsh(root, xdg, args);
    assert!(!ok, "vsh {args:?} should fail, printed {out}");
    err
}

fn efi_xml(name: &str) -> String {
    format!(
        "<domain type='qemu'><name>{name}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>\
         <os firmware='efi'><type arch='x86_64' machine='q35'>hvm</type>\
         <firmware><feature enabled='no' name='secure-boot'/></firmware></os>\
         <features><acpi/></features><devices><emulator>{QEMU}</emulator>\
         <memballoon model='none'/></devices></domain>"
    )
}

#[test]
fn firmware_chosen_at_define_is_what_every_start_uses() {
    if !Path::new("/usr/share/qemu/firmware").join(CHOSEN).exists() {
        eprintln!("SKIP: no OVMF descriptors (Debian's ovmf)");
        return;
    }
    let t = tmp();
    let root = t.path().join("r");
    let xdg = t.path().join("x");
    std::fs::create_dir_all(xdg.join("qemu/firmware")).unwrap();
    let _c = Cleanup(t.path().to_path_buf());
    let file = t.path().join("pin.xml");
    std::fs::write(&file, efi_xml("pin")).unwrap();
    ok(&root, &xdg, &["define", file.to_str().unwrap()]);

    // The stored config names the loader and the template; the varstore comes at start.
    let store = root.join("lib/qemu/nvram/pin_VARS.fd");
    let inactive = ok(&root, &xdg, &["dumpxml", "--inactive", "pin"]);
    assert!(
        inactive.contains(&format!(
            "<loader readonly='yes' type='pflash'>{CODE}</loader>"
        )),
        "{inactive}"
    );
    assert!(
        inactive.contains(&format!(
            "<nvram template='{TEMPLATE}'>{}</nvram>",
            store.display()
        )),
        "{inactive}"
    );
    assert!(!store.exists());

    // The descriptor that was chosen goes away: the guest still starts on the same files.
    std::fs::write(xdg.join("qemu/firmware").join(CHOSEN), "").unwrap();
    ok(&root, &xdg, &["start", "--paused", "pin"]);
    let live = ok(&root, &xdg, &["dumpxml", "pin"]);
    assert!(live.contains(CODE), "{live}");
    assert_eq!(
        std::fs::read(&store).unwrap(),
        std::fs::read(TEMPLATE).unwrap()
    );
    ok(&root, &xdg, &["destroy", "pin"]);

    // A domain defined now finds nothing to pin: it keeps its wishes, and its start
    // reports libvirt's error.
    std::fs::write(&file, efi_xml("late")).unwrap();
    ok(&root, &xdg, &["define", file.to_str().unwrap()]);
    let inactive = ok(&root, &xdg, &["dumpxml", "--inactive", "late"]);
    assert!(inactive.contains("<os firmware='efi'>"), "{inactive}");
    assert!(!inactive.contains("<loader"), "{inactive}");
    let err = fails(&root, &xdg, &["start", "late"]);
    assert!(
        err.contains("error: operation failed: Unable to find any firmware to satisfy 'efi'"),
        "{err}"
    );
    // With the descriptor back, the same config starts (picked at start, as libvirt 9.0).
    std::fs::remove_file(xdg.join("qemu/firmware").join(CHOSEN)).unwrap();
    ok(&root, &xdg, &["start", "--paused", "late"]);
    ok(&root, &xdg, &["destroy", "late"]);

    // A pinned config read back and defined again stays the same.
    std::fs::write(&file, ok(&root, &xdg, &["dumpxml", "--inactive", "pin"])).unwrap();
    ok(&root, &xdg, &["define", file.to_str().unwrap()]);
    assert_eq!(
        ok(&root, &xdg, &["dumpxml", "--inactive", "pin"]),
        std::fs::read_to_string(&file).unwrap()
    );
    ok(&root, &xdg, &["undefine", "--nvram", "pin"]);
    assert!(!store.exists());
    ok(&root, &xdg, &["undefine", "--nvram", "late"]);
}

const SECRET: &str = "5a1e2c4d-6b7f-4a8e-9c0d-1e2f3a4b5c6d";
const DOM_UUID: &str = "8e3a1c2b-4d5f-4e6a-9b7c-0d1e2f3a4b5c";

fn conn(root: &Path) -> Connect {
    let emu_dir = root.join("emulators");
    std::fs::create_dir_all(&emu_dir).unwrap();
    let _ = std::os::unix::fs::symlink(QEMU, emu_dir.join("qemu-system-x86_64"));
    let opts = domdriver::driver::ConnectOptions {
        emulator_dirs: vec![emu_dir],
        probe_timeout: Duration::from_secs(120),
        ..Default::default()
    };
    let uri = format!("qemu:///embed?root={}", root.display());
    Connect::open_with(Some(&uri), opts).unwrap()
}

fn plain_xml(name: &str, devices: &str) -> String {
    format!(
        "<domain type='qemu'><name>{name}</name><uuid>{DOM_UUID}</uuid>\
         <memory unit='MiB'>64</memory><vcpu>1</vcpu>\
         <memoryBacking><source type='memfd'/><access mode='shared'/></memoryBacking>\
         <os><type arch='x86_64' machine='pc'>hvm</type></os><features><acpi/></features>\
         <devices><controller type='usb' model='none'/>{devices}\
         <memballoon model='none'/></devices></domain>"
    )
}

fn cmdline(pid: i32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .unwrap_or_default()
        .split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The helper `what` under `root` (its own process, not QEMU naming its socket).
fn helper(root: &Path, what: &str) -> Option<i32> {
    guests::pids_under(root, what).into_iter().find(|p| {
        std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.starts_with(what))
    })
}

fn wait_gone(root: &Path, what: &str) {
    let until = Instant::now() + Duration::from_secs(5);
    while helper(root, what).is_some() {
        assert!(Instant::now() < until, "{what} outlived its guest");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn tpm_state_is_encrypted_with_the_secret_given_by_pipe() {
    let t = tmp();
    let root = t.path();
    let _c = Cleanup(root.to_path_buf());
    let c = conn(root);
    let tpm = format!(
        "<tpm model='tpm-crb'><backend type='emulator' version='2.0'>\
         <encryption secret='{SECRET}'/></backend></tpm>"
    );

    // libvirt's errors, before anything runs: no such secret, a secret of another usage,
    // one without a value.
    let d = c.define_domain_xml(&plain_xml("enc", &tpm)).unwrap();
    let e = d.create().unwrap_err().to_string();
    assert_eq!(
        e,
        format!("Secret not found: no secret with matching uuid '{SECRET}'")
    );
    let vol = c
        .define_secret_xml(&format!(
            "<secret ephemeral='no' private='yes'><uuid>{SECRET}</uuid>\
             <usage type='volume'><volume>/x.img</volume></usage></secret>"
        ))
        .unwrap();
    vol.set_value(b"one").unwrap();
    let e = d.create().unwrap_err().to_string();
    assert_eq!(
        e,
        format!(
            "invalid argument: secret with uuid {SECRET} is of type 'volume' not expected 'vtpm' type"
        )
    );
    vol.undefine().unwrap();
    let s = c
        .define_secret_xml(&format!(
            "<secret ephemeral='no' private='yes'><uuid>{SECRET}</uuid>\
             <usage type='vtpm'><name>enc-tpm</name></usage></secret>"
        ))
        .unwrap();
    let e = d.create().unwrap_err().to_string();
    assert_eq!(
        e,
        format!("Secret not found: secret '{SECRET}' does not have a value")
    );
    assert!(guests::pids_under(root, "qemu-system").is_empty());
    assert!(helper(root, "swtpm").is_none());

    // With its value: swtpm_setup and swtpm read it from a pipe, never from their argv.
    let pass = "a passphrase only the store knows";
    s.set_value(pass.as_bytes()).unwrap();
    d.create().unwrap();
    let pid = helper(root, "swtpm").expect("swtpm runs");
    let argv = cmdline(pid);
    assert!(
        argv.contains("--key pwdfd=3,mode=aes-256-cbc --migration-key pwdfd=4,mode=aes-256-cbc"),
        "{argv}"
    );
    assert!(!argv.contains(pass), "{argv}");
    let log = std::fs::read_to_string(root.join("log/qemu/enc.log")).unwrap();
    assert!(
        log.contains("--pwdfile-fd 3 --cipher aes-256-cbc"),
        "swtpm_setup without the key: {log}"
    );
    assert!(!log.contains(pass));
    // What swtpm holds is the pipe, drained: the value is nowhere but in the store.
    let fd3 = std::fs::read_link(format!("/proc/{pid}/fd/3")).unwrap_or_default();
    assert!(fd3.display().to_string().starts_with("pipe:"), "{fd3:?}");
    let state = root.join(format!("lib/qemu/swtpm/{DOM_UUID}/tpm2/tpm2-00.permall"));
    assert!(state.is_file());
    d.destroy().unwrap();
    wait_gone(root, "swtpm");

    // The state is bound to the passphrase: another one cannot open it, the right one can.
    s.set_value(b"another passphrase").unwrap();
    let e = d.create().unwrap_err().to_string();
    eprintln!("start with the wrong passphrase: {e}");
    assert!(guests::pids_under(root, "qemu-system").is_empty());
    wait_gone(root, "swtpm");
    s.set_value(pass.as_bytes()).unwrap();
    d.create().unwrap();
    d.destroy().unwrap();
    wait_gone(root, "swtpm");
    d.undefine().unwrap();
}

#[test]
fn virtiofsd_is_handed_the_socket_the_monitor_bound() {
    let t = tmp();
    let root = t.path();
    let _c = Cleanup(root.to_path_buf());
    let c = conn(root);
    let share = root.join("share");
    std::fs::create_dir(&share).unwrap();
    let fs = format!(
        "<filesystem type='mount' accessmode='passthrough'><driver type='virtiofs'/>\
         <source dir='{}'/><target dir='tag'/></filesystem>",
        share.display()
    );
    let d = c.define_domain_xml(&plain_xml("vfs", &fs)).unwrap();
    d.create().unwrap();
    let pid = helper(root, "virtiofsd").expect("virtiofsd runs");
    let argv = cmdline(pid);
    assert!(argv.contains(" --fd=3 "), "{argv}");
    assert!(!argv.contains("--socket-path"), "{argv}");
    let path = std::fs::read_dir(root.join("lib/qemu"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("domain-"))
        .flat_map(|e| std::fs::read_dir(e.path()).unwrap().flatten())
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with("-fs.sock"))
        .expect("the vhost-user socket");
    // The socket at that path, bound by the monitor before the daemon ran, serves QEMU
    // through the daemon (its sandboxed worker took the one connection and closed the
    // listener).
    let listening = std::fs::read_to_string("/proc/net/unix")
        .unwrap()
        .lines()
        .find(|l| l.ends_with(&*path.to_string_lossy()))
        .and_then(|l| l.split_whitespace().nth(6).map(String::from))
        .unwrap_or_else(|| {
            let all = std::fs::read_to_string("/proc/net/unix").unwrap();
            let ours: Vec<&str> = all.lines().filter(|l| l.contains("fs.sock")).collect();
            panic!("no socket at {}: {ours:?}", path.display())
        });
    let holds = guests::pids_under(root, "virtiofsd").into_iter().any(|p| {
        std::fs::read_dir(format!("/proc/{p}/fd"))
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| {
                std::fs::read_link(e.path())
                    .is_ok_and(|l| l.display().to_string() == format!("socket:[{listening}]"))
            })
    });
    assert!(holds, "no virtiofsd holds the socket {listening}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{}", path.display());
    // QEMU is connected: the device is there.
    let q = d
        .qemu_monitor_command(
            r#"{"execute":"qom-list","arguments":{"path":"/machine/peripheral"}}"#,
            false,
        )
        .unwrap();
    assert!(q.contains("fs0"), "{q}");
    d.destroy().unwrap();
    wait_gone(root, "virtiofsd");
    assert!(!path.exists(), "{} left behind", path.display());
    d.undefine().unwrap();
}

/// A stand-in for a swtpm tool that prints `caps` as its capabilities.
fn fake_tool(dir: &Path, name: &str, caps: &str) {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\necho '{caps}'\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn tpm_encryption_needs_tools_that_take_the_passphrase_by_fd() {
    let t = tmp();
    // A dir inside the temp dir: `vsh` leaves its output beside the root.
    let root = &t.path().join("r");
    std::fs::create_dir(root).unwrap();
    let _c = Cleanup(root.to_path_buf());
    let c = conn(root);
    let s = c
        .define_secret_xml(&format!(
            "<secret ephemeral='no' private='yes'><uuid>{SECRET}</uuid>\
             <usage type='vtpm'><name>t</name></usage></secret>"
        ))
        .unwrap();
    s.set_value(b"pass").unwrap();
    let tpm = format!(
        "<tpm model='tpm-crb'><backend type='emulator' version='2.0'>\
         <encryption secret='{SECRET}'/></backend></tpm>"
    );
    c.define_domain_xml(&plain_xml("caps", &tpm)).unwrap();
    let tools = root.join("tools");
    std::fs::create_dir(&tools).unwrap();
    let env = [("DOMDRIVER_HELPER_PATH", tools.as_path())];
    let with = r#"{ "type": "swtpm", "features": [ "tpm-2.0", "cmdarg-pwd-fd" ] }"#;
    let without = r#"{ "type": "swtpm", "features": [ "tpm-2.0" ] }"#;
    // swtpm_setup is asked first, as it runs first; then swtpm.
    fake_tool(&tools, "swtpm", with);
    fake_tool(&tools, "swtpm_setup", without);
    let (ok, _, err) = vsh_env(root, &env, &["start", "caps"]);
    assert!(!ok);
    assert!(
        err.contains(&format!(
            "error: argument unsupported: {}/swtpm_setup does not support passing a passphrase using a file descriptor",
            tools.display()
        )),
        "{err}"
    );
    fake_tool(&tools, "swtpm", without);
    fake_tool(
        &tools,
        "swtpm_setup",
        r#"{ "type": "swtpm_setup", "features": [ "cmdarg-pwdfile-fd" ] }"#,
    );
    let (ok, _, err) = vsh_env(root, &env, &["start", "caps"]);
    assert!(!ok);
    assert!(
        err.contains(&format!(
            "error: argument unsupported: {}/swtpm does not support passing passphrase via file descriptor",
            tools.display()
        )),
        "{err}"
    );
    assert!(guests::pids_under(root, "qemu-system").is_empty());
}

/// `<active_pcr_banks>`: swtpm_setup `--reconfigure` sets them on every start, before swtpm
/// runs, with the passphrase by pipe when the state is encrypted (libvirt:
/// qemuTPMEmulatorReconfigure); banks are kept in libvirt's order and unknown ones refused.
#[test]
fn pcr_banks_are_reconfigured_on_every_start_of_an_encrypted_tpm() {
    let t = tmp();
    let root = t.path();
    let _c = Cleanup(root.to_path_buf());
    let c = conn(root);
    let tpm = |banks: &str| {
        format!(
            "<tpm model='tpm-crb'><backend type='emulator' version='2.0'>\
             <encryption secret='{SECRET}'/><active_pcr_banks>{banks}</active_pcr_banks>\
             </backend></tpm>"
        )
    };
    let e = c
        .define_domain_xml(&plain_xml("pcr", &tpm("<sha256/><sha7/>")))
        .unwrap_err()
        .to_string();
    assert_eq!(e, "unsupported configuration: Unsupported PCR banks 'sha7'");

    let s = c
        .define_secret_xml(&format!(
            "<secret ephemeral='no' private='yes'><uuid>{SECRET}</uuid>\
             <usage type='vtpm'><name>pcr-tpm</name></usage></secret>"
        ))
        .unwrap();
    let pass = "the pcr test's passphrase";
    s.set_value(pass.as_bytes()).unwrap();
    let d = c
        .define_domain_xml(&plain_xml("pcr", &tpm("<sha256/><sha1/>")))
        .unwrap();
    let xml = d.xml_desc(Default::default()).unwrap();
    assert!(
        xml.contains("<active_pcr_banks>\n          <sha1/>\n          <sha256/>"),
        "{xml}"
    );
    let swtpm_log = root.join("log/qemu/pcr-swtpm.log");
    let activated = |banks: &str| {
        std::fs::read_to_string(&swtpm_log)
            .unwrap_or_default()
            .matches(&format!("Successfully activated PCR banks {banks} among"))
            .count()
    };

    // First start: manufactured, then reconfigured, both with the key by pipe.
    d.create().unwrap();
    let log = std::fs::read_to_string(root.join("log/qemu/pcr.log")).unwrap();
    assert!(
        log.contains("--tpm2 --pwdfile-fd 3 --cipher aes-256-cbc --tpm-state"),
        "{log}"
    );
    assert!(
        log.contains("--pcr-banks sha1,sha256 --reconfigure"),
        "{log}"
    );
    assert!(!log.contains(pass));
    assert_eq!(activated("sha1,sha256"), 1);
    d.destroy().unwrap();
    wait_gone(root, "swtpm");

    // Another set of banks: the existing state is reconfigured at the next start (the
    // manufacture logged sha256 alone once already: swtpm_setup's default).
    let before = activated("sha256");
    let d = c
        .define_domain_xml(&plain_xml("pcr", &tpm("<sha256/>")))
        .unwrap();
    d.create().unwrap();
    assert_eq!(activated("sha256"), before + 1);
    d.destroy().unwrap();
    wait_gone(root, "swtpm");

    // A passphrase that does not open the state: swtpm_setup 0.7 then waits forever for
    // the swtpm it started, which gave up; it is killed at the helpers' deadline and the
    // start fails naming it, with nothing left running.
    s.set_value(b"not the passphrase").unwrap();
    let e = d.create().unwrap_err().to_string();
    assert!(
        e.contains("swtpm_setup --reconfigure'") && e.contains("pcr-swtpm.log' for details."),
        "{e}"
    );
    assert!(guests::pids_under(root, "qemu-system").is_empty());
    assert!(helper(root, "swtpm").is_none());
    d.undefine().unwrap();
}
