//! `vsh` domain verbs as a user runs them, against temp `qemu:///embed` roots: output, exit
//! status and `error:` lines, compared with virsh's. Running domains are started through the
//! library (there is no `start` verb until xml2argv lands) and driven by the `vsh` binary, a
//! separate process, as a second virsh would. Every QEMU is killed by pid on drop.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use domdriver::Connect;
use domdriver::driver::status::{GuestStatus, is_same_live_process, proc_stat};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const QEMU: &str = "/usr/bin/qemu-system-x86_64";
const UUID: &str = "c7a5fdbd-edaf-9455-926a-d65c16db1809";

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

fn reap(root: &Path, name: &str) -> Reap {
    let st = GuestStatus::read(name, &root.join(format!("run/qemu/{name}.json")))
        .unwrap()
        .expect("status file");
    let start_time = proc_stat(st.pid)
        .ok()
        .flatten()
        .map_or(st.start_time, |s| s.start_time);
    Reap {
        pid: st.pid,
        start_time,
    }
}

fn root() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("dv")
        .tempdir_in("/tmp")
        .unwrap()
}

fn uri(root: &Path) -> String {
    format!("qemu:///embed?root={}", root.display())
}

/// Run vsh on `root`; (exit ok, stdout, stderr).
fn vsh(root: &Path, args: &[&str]) -> (bool, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_vsh"))
        .env_remove("VSH_DEFAULT_URI")
        .arg("-c")
        .arg(uri(root))
        .args(args)
        .output()
        .expect("vsh runs");
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Run vsh and expect success with exactly `out` on stdout and nothing on stderr.
fn ok(root: &Path, args: &[&str], out: &str) {
    let (good, o, e) = vsh(root, args);
    assert!(good, "{args:?} failed: {e}");
    // virsh ends every command with an empty line.
    assert_eq!(o, format!("{out}\n"), "{args:?}");
    assert_eq!(e, "", "{args:?}");
}

/// Run vsh and expect failure with exactly `err` on stderr and on stdout only the empty line
/// virsh ends every command with.
fn fails(root: &Path, args: &[&str], err: &str) {
    let (good, o, e) = vsh(root, args);
    assert!(!good, "{args:?} succeeded: {o}");
    assert_eq!(e, err, "{args:?}");
    assert_eq!(o, "\n", "{args:?}");
}

/// Run vsh and expect its arguments refused before any command ran: exactly `err` on stderr
/// and nothing on stdout (virsh prints its empty line only after a command that ran).
fn bad_args(root: &Path, args: &[&str], err: &str) {
    let (good, o, e) = vsh(root, args);
    assert!(!good, "{args:?} succeeded: {o}");
    assert_eq!(e, err, "{args:?}");
    assert_eq!(o, "", "{args:?}");
}

fn write_xml(dir: &Path, file: &str, name: &str, uuid: &str) -> String {
    let p = dir.join(file);
    std::fs::write(
        &p,
        format!(
            "<domain type='qemu'>\n  <name>{name}</name>\n  <uuid>{uuid}</uuid>\n  \
             <memory unit='MiB'>128</memory>\n  <currentMemory unit='MiB'>64</currentMemory>\n  \
             <vcpu>2</vcpu>\n  <os><type arch='x86_64'>hvm</type></os>\n</domain>\n"
        ),
    )
    .unwrap();
    p.display().to_string()
}

const EMPTY_TABLE: &str = " Id   Name   State\n--------------------\n";

#[test]
fn define_list_dominfo_domstate_dumpxml_undefine() {
    let t = root();
    let r = t.path();
    ok(r, &["list", "--all"], EMPTY_TABLE);
    let f = write_xml(r, "vm.xml", "vm1", UUID);
    ok(
        r,
        &["define", &f],
        &format!("Domain 'vm1' defined from {f}\n"),
    );
    let f2 = write_xml(
        r,
        "long.xml",
        "a-much-longer-name",
        "11111111-2222-3333-4444-555555555555",
    );
    ok(
        r,
        &["define", "--file", &f2],
        &format!("Domain 'a-much-longer-name' defined from {f2}\n"),
    );
    // virsh's vshTable: widths from the widest cell; running domains only by default.
    ok(r, &["list"], EMPTY_TABLE);
    let all = " Id   Name                 State\n\
               -------------------------------------\n \
               -    a-much-longer-name   shut off\n \
               -    vm1                  shut off\n";
    ok(r, &["list", "--all"], all);
    ok(r, &["list", "--inactive"], all);
    ok(
        r,
        &["dominfo", "vm1"],
        &format!(
            "Id:             -\n\
             Name:           vm1\n\
             UUID:           {UUID}\n\
             OS Type:        hvm\n\
             State:          shut off\n\
             CPU(s):         2\n\
             Max memory:     131072 KiB\n\
             Used memory:    65536 KiB\n\
             Persistent:     yes\n\
             Autostart:      disable\n\
             Managed save:   no\n\
             Security model: none\n\
             Security DOI:   0\n"
        ),
    );
    ok(r, &["domstate", "vm1"], "shut off\n");
    ok(r, &["domstate", "vm1", "--reason"], "shut off (unknown)\n");
    // By UUID too, as virsh looks domains up.
    ok(r, &["domstate", "--domain", UUID], "shut off\n");
    let (good, xml, _) = vsh(r, &["dumpxml", "vm1", "--inactive"]);
    assert!(good);
    assert!(
        xml.starts_with("<domain type='qemu'>\n  <name>vm1</name>\n"),
        "{xml}"
    );
    // The document's own newline, then the empty line ending every virsh command.
    assert!(
        xml.ends_with("</domain>\n\n") && !xml.ends_with("\n\n\n"),
        "{xml}"
    );
    ok(r, &["undefine", "vm1"], "Domain 'vm1' has been undefined\n");
    ok(
        r,
        &["undefine", "a-much-longer-name"],
        "Domain 'a-much-longer-name' has been undefined\n",
    );
    ok(r, &["list", "--all"], EMPTY_TABLE);
}

#[test]
fn errors_as_virsh_prints_them() {
    let t = root();
    let r = t.path();
    let missing = r.join("nope.xml").display().to_string();
    fails(
        r,
        &["define", &missing],
        &format!("error: Failed to open file '{missing}': No such file or directory\n"),
    );
    bad_args(
        r,
        &["define"],
        "error: command 'define' requires <file> option\n",
    );
    let f = write_xml(r, "vm.xml", "vm1", UUID);
    ok(
        r,
        &["define", &f],
        &format!("Domain 'vm1' defined from {f}\n"),
    );
    let other = write_xml(
        r,
        "other.xml",
        "vm1",
        "11111111-2222-3333-4444-555555555555",
    );
    fails(
        r,
        &["define", &other],
        &format!(
            "error: Failed to define domain from {other}\n\
             error: operation failed: domain 'vm1' already exists with uuid {UUID}\n"
        ),
    );
    let hostile = write_xml(r, "h.xml", "../x", "22222222-2222-3333-4444-555555555555");
    fails(
        r,
        &["define", &hostile],
        &format!(
            "error: Failed to define domain from {hostile}\n\
             error: XML error: name ../x cannot contain '/'\n"
        ),
    );
    for verb in ["dominfo", "domstate", "dumpxml", "undefine", "destroy"] {
        fails(
            r,
            &[verb, "nosuch"],
            "error: failed to get domain 'nosuch'\n\
             error: Domain not found: no domain with matching name 'nosuch'\n",
        );
    }
    for verb in ["destroy", "suspend", "resume", "shutdown", "reboot"] {
        fails(
            r,
            &[verb, "vm1"],
            &format!(
                "error: Failed to {verb} domain 'vm1'\n\
                 error: Requested operation is not valid: domain is not running\n"
            ),
        );
    }
    bad_args(
        r,
        &["list", "--bogus"],
        "error: command 'list' doesn't support option --bogus\n",
    );
    bad_args(
        r,
        &["domstate"],
        "error: command 'domstate' requires <domain> option\n",
    );
}

#[test]
fn running_domain_seen_and_driven_by_another_process() {
    let t = root();
    let r = t.path();
    let f = write_xml(r, "vm.xml", "vm1", UUID);
    ok(
        r,
        &["define", &f],
        &format!("Domain 'vm1' defined from {f}\n"),
    );
    let c = Connect::open(Some(&uri(r))).unwrap();
    let d = c.lookup_domain_by_name("vm1").unwrap();
    let args: Vec<String> = [
        "-name",
        "guest=vm1",
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
    .collect();
    d.start_with_command(QEMU, args, Vec::new()).unwrap();
    let _guard = reap(r, "vm1");

    ok(
        r,
        &["list"],
        " Id   Name   State\n----------------------\n 1    vm1    running\n",
    );
    ok(r, &["domstate", "vm1", "--reason"], "running (booted)\n");
    // By id, as virsh accepts.
    ok(r, &["domstate", "1"], "running\n");
    let (good, info, _) = vsh(r, &["dominfo", "vm1"]);
    assert!(good);
    assert!(
        info.starts_with("Id:             1\nName:           vm1\n"),
        "{info}"
    );
    assert!(info.contains("State:          running\n"), "{info}");
    let (good, xml, _) = vsh(r, &["dumpxml", "vm1"]);
    assert!(
        good && xml.starts_with("<domain type='qemu' id='1'>"),
        "{xml}"
    );

    ok(r, &["suspend", "vm1"], "Domain 'vm1' suspended\n");
    ok(r, &["domstate", "vm1", "--reason"], "paused (user)\n");
    ok(
        r,
        &["list", "--all"],
        " Id   Name   State\n---------------------\n 1    vm1    paused\n",
    );
    ok(r, &["resume", "vm1"], "Domain 'vm1' resumed\n");
    ok(r, &["domstate", "vm1", "--reason"], "running (unpaused)\n");
    ok(r, &["destroy", "vm1"], "Domain 'vm1' destroyed\n");
    ok(
        r,
        &["domstate", "vm1", "--reason"],
        "shut off (destroyed)\n",
    );
    ok(r, &["list"], EMPTY_TABLE);
    // The library handle sees what the other process did.
    assert!(!d.is_active().unwrap());
}

#[test]
fn skipped_files_are_warned_about() {
    let t = root();
    let r = t.path();
    let f = write_xml(r, "vm.xml", "vm1", UUID);
    ok(
        r,
        &["define", &f],
        &format!("Domain 'vm1' defined from {f}\n"),
    );
    let bad = r.join("etc/qemu/bad.xml");
    std::fs::write(&bad, "<domain").unwrap();
    let (good, out, err) = vsh(r, &["list", "--all"]);
    assert!(good, "{err}");
    assert_eq!(
        out,
        " Id   Name   State\n-----------------------\n -    vm1    shut off\n\n"
    );
    assert!(
        err.starts_with(&format!("warning: {}: skipped: ", bad.display())),
        "{err}"
    );
}

#[test]
fn two_vsh_processes_defining_one_name_one_wins() {
    let t = root();
    let r = t.path();
    let a = write_xml(r, "a.xml", "race", UUID);
    let b = write_xml(r, "b.xml", "race", "11111111-2222-3333-4444-555555555555");
    let spawn = |f: &str| {
        Command::new(env!("CARGO_BIN_EXE_vsh"))
            .env_remove("VSH_DEFAULT_URI")
            .args(["-c", &uri(r), "define", f])
            .output()
            .unwrap()
    };
    let (ra, rb) = std::thread::scope(|s| {
        let ha = s.spawn(|| spawn(&a));
        let hb = s.spawn(|| spawn(&b));
        (ha.join().unwrap(), hb.join().unwrap())
    });
    assert_ne!(ra.status.success(), rb.status.success(), "{ra:?}\n{rb:?}");
    let loser = if ra.status.success() { &rb } else { &ra };
    let err = String::from_utf8_lossy(&loser.stderr);
    assert!(
        err.contains("error: operation failed: domain 'race' already exists with uuid"),
        "{err}"
    );
}
