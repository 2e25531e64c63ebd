//! The read verbs through the real `vsh` binary, against temp `qemu:///embed` roots: virsh's
//! text, the `--json` forms, `--help`, libvirt's errors and a closed stdout. Runtime data
//! comes from one real TCG guest (SeaBIOS with an empty raw disk, VGA, VNC on loopback, a
//! pty console), shared by the assertions that need it; its QEMU is killed by pid on drop.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use domdriver::driver::status::{GuestStatus, is_same_live_process};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const QEMU: &str = "/usr/bin/qemu-system-x86_64";
const UUID: &str = "1b4e28ba-2fa1-11d2-883f-0016d3cca427";

/// Kills, on drop, the QEMU of guest `name` under `root` if it still runs.
struct Reaper {
    run: std::path::PathBuf,
    name: String,
}

impl Drop for Reaper {
    fn drop(&mut self) {
        let path = self.run.join(format!("{}.json", self.name));
        let Ok(Some(st)) = GuestStatus::read(&self.name, &path) else {
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

fn root() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("rv")
        .tempdir_in("/tmp")
        .unwrap()
}

fn uri(root: &Path) -> String {
    format!("qemu:///embed?root={}", root.display())
}

/// Run vsh on `root`: (exit code, stdout, stderr).
fn vsh(root: &Path, args: &[&str]) -> (i32, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_vsh"))
        .env_remove("VSH_DEFAULT_URI")
        .env_remove("LIBVIRT_DEFAULT_URI")
        .env_remove("VIRSH_DEFAULT_CONNECT_URI")
        .arg("-c")
        .arg(uri(root))
        .args(args)
        .output()
        .expect("vsh runs");
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Expect success with exactly `out` (plus virsh's closing empty line) and a quiet stderr.
fn ok(root: &Path, args: &[&str], out: &str) {
    let (code, o, e) = vsh(root, args);
    assert_eq!(code, 0, "{args:?} failed: {e}");
    assert_eq!(o, format!("{out}\n"), "{args:?}");
    assert_eq!(e, "", "{args:?}");
}

/// Expect success; the output without virsh's closing empty line.
fn out(root: &Path, args: &[&str]) -> String {
    let (code, o, e) = vsh(root, args);
    assert_eq!(code, 0, "{args:?} failed: {e}");
    o.strip_suffix('\n').unwrap_or(&o).to_string()
}

/// Expect failure with exactly `err` on stderr.
fn fails(root: &Path, args: &[&str], err: &str) {
    let (code, o, e) = vsh(root, args);
    assert_ne!(code, 0, "{args:?} succeeded: {o}");
    assert_eq!(e, err, "{args:?}");
}

/// `--json`: one JSON document.
fn json(root: &Path, args: &[&str]) -> serde_json::Value {
    let mut a = args.to_vec();
    a.push("--json");
    let o = out(root, &a);
    serde_json::from_str(&o).unwrap_or_else(|e| panic!("{a:?}: {e}: {o}"))
}

/// The verb's help: virsh's sections, and the verb named.
fn has_help(root: &Path, verb: &str) {
    let (code, o, e) = vsh(root, &[verb, "--help"]);
    assert_eq!(code, 0, "{verb} --help: {e}");
    assert!(o.contains("NAME") && o.contains(verb), "{verb} --help: {o}");
}

/// Output into a pipe whose reader is gone: no panic, no 'Broken pipe' noise.
fn closed_stdout(root: &Path, args: &[&str]) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_vsh"))
        .env_remove("VSH_DEFAULT_URI")
        .arg("-c")
        .arg(uri(root))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = child.wait().unwrap();
    assert_ne!(status.code(), Some(101), "{args:?} panicked: {err}");
    assert!(
        !err.contains("panicked") && !err.contains("Broken pipe"),
        "{args:?}: {err}"
    );
}

/// A free TCP port on the loopback at or above 5900 (VNC's base).
fn free_vnc_port() -> u16 {
    for p in (5990..6500).step_by(7) {
        if std::net::TcpListener::bind(("127.0.0.1", p)).is_ok() {
            return p;
        }
    }
    panic!("no free port for VNC");
}

fn guest_xml(dir: &Path, name: &str, vnc_port: u16) -> String {
    let disk = dir.join("disk.raw");
    std::fs::write(&disk, vec![0u8; 1 << 20]).unwrap();
    format!(
        "<domain type='qemu'>
  <name>{name}</name>
  <uuid>{UUID}</uuid>
  <title>Read verbs</title>
  <description>A guest for the read verbs</description>
  <memory unit='MiB'>96</memory>
  <vcpu placement='static' current='1'>2</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
    <emulator>{QEMU}</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='{}'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <disk type='file' device='cdrom'>
      <target dev='sda' bus='sata'/>
      <readonly/>
    </disk>
    <interface type='user'>
      <mac address='52:54:00:12:34:56'/>
      <model type='e1000'/>
    </interface>
    <serial type='pty'><target port='0'/></serial>
    <console type='pty'><target type='serial' port='0'/></console>
    <graphics type='vnc' port='{vnc_port}' autoport='no' listen='127.0.0.1'/>
    <video><model type='vga'/></video>
    <memballoon model='virtio'/>
  </devices>
</domain>
",
        disk.display()
    )
}

#[test]
fn host_verbs() {
    let t = root();
    let r = t.path();
    let info = out(r, &["nodeinfo"]);
    let labels = [
        "CPU model:",
        "CPU(s):",
        "CPU frequency:",
        "CPU socket(s):",
        "Core(s) per socket:",
        "Thread(s) per core:",
        "NUMA cell(s):",
        "Memory size:",
    ];
    for (line, label) in info.lines().zip(labels) {
        assert!(line.starts_with(&format!("{label:<20} ")), "{line}");
    }
    assert_eq!(info.lines().count(), 8, "{info}");
    let j = json(r, &["nodeinfo"]);
    assert!(j["cpus"].as_u64().unwrap() >= 1);
    let mem = out(r, &["nodememstats"]);
    let fields: Vec<&str> = mem
        .lines()
        .map(|l| l.split(':').next().unwrap().trim())
        .collect();
    assert_eq!(fields, ["total", "free", "buffers", "cached"]);
    assert!(
        mem.lines()
            .all(|l| l.ends_with(" KiB") && l.len() == 7 + 2 + 20 + 4),
        "{mem}"
    );
    assert!(json(r, &["nodememstats"])["total"].as_u64().unwrap() > 0);
    let cpu = out(r, &["nodecpustats"]);
    let labels: Vec<&str> = cpu
        .lines()
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(labels, ["user:", "system:", "idle:", "iowait:"]);
    assert!(out(r, &["nodecpustats", "--cpu", "0"]).starts_with("user:"));
    let pct = out(r, &["nodecpustats", "--percent"]);
    assert!(
        pct.starts_with("usage:") && pct.lines().all(|l| l.ends_with('%')),
        "{pct}"
    );
    fails(
        r,
        &["nodecpustats", "--cpu", "99999"],
        "error: Unable to get node cpu stats\nerror: invalid argument: Invalid cpuNum in virHostCPUGetStatsLinux\n",
    );
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    ok(r, &["hostname"], &format!("{}\n", host.trim()));
    if Path::new("/sys/class/dmi/id").is_dir() {
        let s = out(r, &["sysinfo"]);
        assert!(
            s.starts_with("<sysinfo type='smbios'>\n") && s.ends_with("</sysinfo>\n"),
            "{s}"
        );
    }
    for v in [
        "nodeinfo",
        "nodememstats",
        "nodecpustats",
        "hostname",
        "sysinfo",
    ] {
        has_help(r, v);
        closed_stdout(r, &[v]);
    }
}

#[test]
fn inactive_domain_verbs() {
    let t = root();
    let r = t.path();
    let f = r.join("vm.xml");
    std::fs::write(&f, guest_xml(r, "vm1", 5999)).unwrap();
    let f = f.display().to_string();
    // --validate against libvirt's schema: a good document passes, a bad one names why.
    ok(
        r,
        &["define", "--validate", &f],
        &format!("Domain 'vm1' defined from {f}\n"),
    );
    let bad = r.join("bad.xml");
    std::fs::write(&bad, "<domain type='qemu'><name>b</name><memory>1024</memory><os><type>hvm</type></os><bogus/></domain>").unwrap();
    let (code, _, e) = vsh(r, &["define", "--validate", &bad.display().to_string()]);
    assert_ne!(code, 0);
    assert!(
        e.contains(
            "error: XML document failed to validate against schema: Unable to validate doc against "
        ) && e.contains("bogus"),
        "{e}"
    );

    // list, in each layout.
    ok(r, &["list", "--all", "--name"], "vm1\n");
    ok(r, &["list", "--all", "--uuid"], &format!("{UUID}\n"));
    ok(
        r,
        &["list", "--all", "--uuid", "--name"],
        &format!("{UUID} vm1\n"),
    );
    ok(r, &["list", "--id"], "");
    ok(r, &["list", "--inactive", "--id", "--name"], "- vm1\n");
    ok(
        r,
        &["list", "--all", "--title"],
        &format!(
            " Id   Name   State      Title\n{}\n -    vm1    shut off   Read verbs\n",
            "-".repeat(36)
        ),
    );
    ok(
        r,
        &["list", "--all", "--uuid", "--table"],
        &format!(
            " Id   Name   State      UUID\n{}\n -    vm1    shut off   {UUID}\n",
            "-".repeat(62)
        ),
    );
    ok(r, &["list", "--state-shutoff", "--name"], "vm1\n");
    ok(r, &["list", "--all", "--transient", "--name"], "");
    ok(r, &["list", "--all", "--persistent", "--name"], "vm1\n");
    ok(r, &["list", "--state-running", "--name"], "");
    fails(
        r,
        &["list", "--table", "--name"],
        "error: Options --table and --name are mutually exclusive\n",
    );
    let j = json(r, &["list", "--all"]);
    assert_eq!(j[0]["name"], "vm1");
    assert_eq!(j[0]["title"], "Read verbs");
    assert_eq!(j[0]["persistent"], true);

    // ids and names.
    ok(r, &["domid", "vm1"], "-\n");
    ok(r, &["domid", UUID], "-\n");
    ok(r, &["domname", UUID], "vm1\n");
    ok(r, &["domuuid", "vm1"], &format!("{UUID}\n"));
    assert_eq!(json(r, &["domuuid", "vm1"])["uuid"], UUID);
    fails(
        r,
        &["domuuid", "nope"],
        "error: failed to get domain 'nope'\nerror: Domain not found: no domain with matching name 'nope'\n",
    );

    // devices.
    let disk = r.join("disk.raw").display().to_string();
    ok(
        r,
        &["domblklist", "vm1"],
        &format!(
            " Target   Source\n{}\n vda      {disk}\n sda      -\n",
            "-".repeat(6 + 3 + disk.len().max(6) + 3)
        ),
    );
    let details = out(r, &["domblklist", "vm1", "--details"]);
    assert!(
        details.starts_with(" Type   Device   Target   Source\n"),
        "{details}"
    );
    assert!(
        details.contains(&format!(" file   disk     vda      {disk}\n")),
        "{details}"
    );
    assert!(
        details.contains(" file   cdrom    sda      -\n"),
        "{details}"
    );
    assert_eq!(json(r, &["domblklist", "vm1"])[0]["source"], disk.as_str());
    ok(
        r,
        &["domiflist", "vm1"],
        &format!(
            " Interface   Type   Source   Model   MAC\n{}\n -           user   -        e1000   52:54:00:12:34:56\n",
            "-".repeat(56)
        ),
    );
    let alloc = {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(&disk).unwrap().blocks() * 512
    };
    ok(
        r,
        &["domblkinfo", "vm1", "vda"],
        &format!("Capacity:       1048576\nAllocation:     {alloc}\nPhysical:       1048576\n"),
    );
    let human = out(r, &["domblkinfo", "vm1", "vda", "--human"]);
    assert!(human.starts_with("Capacity:       1.000 MiB\n"), "{human}");
    let all = out(r, &["domblkinfo", "vm1", "--all"]);
    assert!(
        all.contains(" sda      -          -            -\n") || all.contains(" sda "),
        "{all}"
    );
    assert_eq!(json(r, &["domblkinfo", "vm1", "vda"])["capacity"], 1048576);
    fails(
        r,
        &["domblkinfo", "vm1", "vdz"],
        "error: invalid argument: invalid path vdz not assigned to domain\n",
    );
    fails(
        r,
        &["domblkinfo", "vm1"],
        "error: command 'domblkinfo' requires <device> option\n",
    );

    // vCPUs of an inactive domain: the config only.
    ok(
        r,
        &["vcpucount", "vm1"],
        "maximum      config         2\ncurrent      config         1\n",
    );
    ok(r, &["vcpucount", "vm1", "--maximum", "--config"], "2\n");
    ok(r, &["vcpucount", "vm1", "--active"], "1\n");
    fails(
        r,
        &["vcpucount", "vm1", "--live"],
        "error: Requested operation is not valid: domain is not running\n",
    );
    let vi = out(r, &["vcpuinfo", "vm1"]);
    assert!(vi.starts_with("VCPU:           0\nCPU:            N/A\nState:          N/A\nCPU time        N/A\nCPU Affinity:   y"), "{vi}");

    // Title, description and metadata of the config.
    ok(r, &["desc", "vm1"], "A guest for the read verbs");
    ok(r, &["desc", "vm1", "--title"], "Read verbs");
    ok(
        r,
        &["desc", "vm1", "--config", "New", "words"],
        "Domain description updated successfully\n",
    );
    ok(r, &["desc", "vm1"], "New words");
    ok(
        r,
        &["desc", "vm1", "--title", ""],
        "Domain title updated successfully\n",
    );
    ok(r, &["desc", "vm1", "--title"], "No title for domain: vm1");
    assert_eq!(json(r, &["desc", "vm1"]), serde_json::json!("New words"));
    fails(
        r,
        &["desc", "vm1", "--live", "x"],
        "error: Failed to set new domain description\nerror: Requested operation is not valid: domain is not running\n",
    );
    ok(
        r,
        &[
            "metadata",
            "vm1",
            "http://example.org/app/",
            "--key",
            "app",
            "--set",
            "<data a='1'>v</data>",
        ],
        "Metadata modified\n",
    );
    ok(
        r,
        &["metadata", "vm1", "http://example.org/app/"],
        "<app:data xmlns:app=\"http://example.org/app/\" a=\"1\">v</app:data>\n",
    );
    fails(
        r,
        &[
            "metadata",
            "vm1",
            "http://example.org/app/",
            "--set",
            "<x/>",
        ],
        "error: namespace key is required when modifying metadata\n",
    );
    ok(
        r,
        &["metadata", "vm1", "http://example.org/app/", "--remove"],
        "Metadata removed\n",
    );
    fails(
        r,
        &["metadata", "vm1", "http://example.org/app/"],
        "error: metadata not found: Requested metadata element is not present\n",
    );

    // dumpxml --xpath.
    ok(
        r,
        &["dumpxml", "vm1", "--xpath", "//disk/target/@dev"],
        " dev=\"vda\"\n dev=\"sda\"\n",
    );
    ok(
        r,
        &["dumpxml", "vm1", "--xpath", "/domain/name"],
        "<name>vm1</name>\n",
    );
    ok(
        r,
        &["dumpxml", "vm1", "--xpath", "//interface/mac", "--wrap"],
        "<nodes>\n  <mac address=\"52:54:00:12:34:56\"/>\n</nodes>",
    );
    fails(
        r,
        &["dumpxml", "vm1", "--xpath", "count(//disk)"],
        "error: internal error: Incorrect xpath 'count(//disk)'\n",
    );

    // Runtime verbs refuse an inactive domain with libvirt's message.
    let not_running = "Requested operation is not valid: domain is not running";
    fails(
        r,
        &["domblkstat", "vm1", "vda"],
        &format!(
            "error: Failed to get block stats for domain 'vm1' device 'vda'\nerror: {not_running}\n"
        ),
    );
    fails(
        r,
        &["domifstat", "vm1", "52:54:00:12:34:56"],
        &format!(
            "error: Failed to get interface stats vm1 52:54:00:12:34:56\nerror: {not_running}\n"
        ),
    );
    fails(
        r,
        &["dommemstat", "vm1"],
        &format!("error: Failed to get memory statistics for domain vm1\nerror: {not_running}\n"),
    );
    fails(
        r,
        &["domifaddr", "vm1"],
        &format!("error: Failed to query for interfaces addresses\nerror: {not_running}\n"),
    );
    fails(r, &["vncdisplay", "vm1"], "error: Domain is not running\n");
    fails(r, &["domdisplay", "vm1"], "error: Domain is not running\n");
    fails(
        r,
        &["ttyconsole", "vm1"],
        &format!("error: {not_running}\n"),
    );
    fails(
        r,
        &["reset", "vm1"],
        &format!("error: Failed to reset domain 'vm1'\nerror: {not_running}\n"),
    );
    fails(
        r,
        &["qemu-monitor-command", "vm1", "query-status"],
        &format!("error: {not_running}\n"),
    );
    fails(
        r,
        &["send-key", "vm1", "KEY_A"],
        &format!("error: {not_running}\n"),
    );
    fails(
        r,
        &["send-key", "vm1", "KEY_NOPE"],
        "error: invalid keycode: 'KEY_NOPE'\n",
    );
    fails(
        r,
        &["send-key", "vm1", "--codeset", "morse", "1"],
        "error: unknown codeset: 'morse'\n",
    );
    fails(
        r,
        &["screenshot", "vm1", "/tmp/x.ppm"],
        &format!("error: could not take a screenshot of vm1\nerror: {not_running}\n"),
    );
    let st = out(r, &["domstats", "vm1"]);
    assert!(st.starts_with("Domain: 'vm1'\n  state.state=5\n  state.reason=0\n  balloon.current=98304\n  balloon.maximum=98304\n  vcpu.current=1\n  vcpu.maximum=2\n  block.count=2\n  block.0.name=vda\n"), "{st}");
    assert_eq!(
        json(r, &["domstats", "--state"])[0]["stats"]["state.state"],
        5
    );
    ok(r, &["domstats", "--state", "--list-running"], "");

    // Unknown domains, help and closed stdout for every verb.
    let verbs: &[&[&str]] = &[
        &["domblklist"],
        &["domiflist"],
        &["domblkinfo", "--all"],
        &["domblkstat"],
        &["domifstat", "x"],
        &["dommemstat"],
        &["vcpucount"],
        &["vcpuinfo"],
        &["domdisplay"],
        &["vncdisplay"],
        &["ttyconsole"],
        &["domifaddr"],
        &["desc"],
        &["metadata", "http://x/"],
        &["qemu-monitor-command", "x"],
        &["send-key", "KEY_A"],
        &["screenshot"],
        &["reset"],
        &["domid"],
        &["domname"],
        &["domuuid"],
        &["domstats"],
    ];
    for v in verbs {
        let mut a = vec![v[0], "nosuch"];
        a.extend(&v[1..]);
        let (code, _, e) = vsh(r, &a);
        assert_ne!(code, 0, "{a:?}");
        assert!(
            e.starts_with("error: failed to get domain 'nosuch'\n"),
            "{a:?}: {e}"
        );
        has_help(r, v[0]);
    }
    for v in [
        &["list", "--all"][..],
        &["domblklist", "vm1"],
        &["domiflist", "vm1"],
        &["domblkinfo", "vm1", "--all"],
        &["vcpucount", "vm1"],
        &["vcpuinfo", "vm1"],
        &["desc", "vm1"],
        &["domid", "vm1"],
        &["domname", UUID],
        &["domuuid", "vm1"],
        &["domstats"],
        &["dumpxml", "vm1", "--xpath", "//disk"],
    ] {
        closed_stdout(r, v);
    }
}

#[test]
fn running_guest_verbs() {
    if !Path::new(QEMU).exists() {
        eprintln!("\n*** SKIPPED: {QEMU} is not installed ***\n");
        return;
    }
    let t = root();
    let r = t.path();
    let port = free_vnc_port();
    let f = r.join("vm.xml");
    std::fs::write(&f, guest_xml(r, "vm2", port)).unwrap();
    let _reaper = Reaper {
        run: r.join("run/qemu"),
        name: "vm2".into(),
    };
    let f = f.display().to_string();
    out(r, &["define", &f]);
    ok(r, &["start", "vm2"], "Domain 'vm2' started\n");
    let id = out(r, &["domid", "vm2"]);
    let id = id.trim().to_string();
    assert!(id.parse::<u32>().is_ok(), "{id}");
    ok(r, &["domname", &id], "vm2\n");
    ok(r, &["domuuid", &id], &format!("{UUID}\n"));
    ok(r, &["list", "--id"], &format!("{id}\n"));
    ok(r, &["list", "--state-running", "--name"], "vm2\n");
    ok(r, &["list", "--state-shutoff", "--name"], "");

    // Block statistics from QEMU.
    let bs = out(r, &["domblkstat", "vm2", "vda"]);
    let names: Vec<&str> = bs.lines().map(|l| l.split(' ').nth(1).unwrap()).collect();
    assert_eq!(
        names,
        [
            "rd_req",
            "rd_bytes",
            "wr_req",
            "wr_bytes",
            "flush_operations",
            "rd_total_times",
            "wr_total_times",
            "flush_total_times"
        ],
        "{bs}"
    );
    assert!(bs.lines().all(|l| l.starts_with("vda ")), "{bs}");
    let human = out(r, &["domblkstat", "vm2", "vda", "--human"]);
    assert!(
        human.starts_with("Device: vda\n number of read operations:      "),
        "{human}"
    );
    assert!(out(r, &["domblkstat", "vm2"]).starts_with(" rd_req "));
    assert!(json(r, &["domblkstat", "vm2", "vda"])["rd_req"].is_i64());
    fails(
        r,
        &["domblkstat", "vm2", "vdz"],
        "error: Failed to get block stats for domain 'vm2' device 'vdz'\nerror: invalid argument: invalid path: vdz\n",
    );
    // A user-mode NIC has no host device to count on.
    fails(
        r,
        &["domifstat", "vm2", "52:54:00:12:34:56"],
        "error: Failed to get interface stats vm2 52:54:00:12:34:56\nerror: internal error: /proc/net/dev: Interface not found\n",
    );
    fails(
        r,
        &["domifstat", "vm2", "eth9"],
        "error: Failed to get interface stats vm2 eth9\nerror: invalid argument: 'eth9' is not a known interface\n",
    );

    // Memory: the balloon's size and QEMU's resident set.
    let ms = out(r, &["dommemstat", "vm2"]);
    assert!(ms.starts_with("actual 98304\n"), "{ms}");
    assert!(ms.lines().last().unwrap().starts_with("rss "), "{ms}");
    assert_eq!(json(r, &["dommemstat", "vm2"])["actual"], 98304);

    // vCPUs: one thread online of two.
    ok(
        r,
        &["vcpucount", "vm2"],
        "maximum      config         2\nmaximum      live           2\ncurrent      config         1\ncurrent      live           1\n",
    );
    ok(r, &["vcpucount", "vm2", "--maximum", "--live"], "2\n");
    let vi = out(r, &["vcpuinfo", "vm2"]);
    let lines: Vec<&str> = vi.lines().collect();
    assert_eq!(lines[0], "VCPU:           0", "{vi}");
    assert!(lines[1].starts_with("CPU:            "), "{vi}");
    assert_eq!(lines[2], "State:          running", "{vi}");
    assert!(
        lines.last().unwrap().starts_with("CPU Affinity:   "),
        "{vi}"
    );
    assert_eq!(json(r, &["vcpuinfo", "vm2"])[0]["state"], "running");

    // domstats, every group and one.
    let st = out(r, &["domstats", "vm2"]);
    for k in [
        "  state.state=1\n",
        "  state.reason=1\n",
        "  cpu.time=",
        "  balloon.current=98304\n",
        "  vcpu.current=1\n",
        "  vcpu.0.state=1\n",
        "  vcpu.0.time=",
        "  net.count=1\n",
        "  block.count=2\n",
        "  block.0.name=vda\n",
        "  block.0.rd.reqs=",
        // The image's virtual size, then its size on the host.
        "  block.0.capacity=1048576\n  block.0.physical=",
    ] {
        assert!(st.contains(k), "{k:?} missing: {st}");
    }
    ok(
        r,
        &["domstats", "--state", "vm2"],
        "Domain: 'vm2'\n  state.state=1\n  state.reason=1\n",
    );
    ok(
        r,
        &["domstats", "--state", "--raw", "--list-running"],
        "Domain: 'vm2'\n  state.state=1\n  state.reason=1\n",
    );

    // Where the display and console are.
    ok(
        r,
        &["vncdisplay", "vm2"],
        &format!("127.0.0.1:{}\n", port - 5900),
    );
    ok(
        r,
        &["domdisplay", "vm2"],
        &format!("vnc://127.0.0.1:{}\n", port - 5900),
    );
    fails(
        r,
        &["domdisplay", "vm2", "--type", "spice"],
        "error: No graphical display found\n",
    );
    let tty = out(r, &["ttyconsole", "vm2"]);
    assert!(tty.starts_with("/dev/pts/"), "{tty}");
    let xml = out(r, &["dumpxml", "vm2", "--xpath", "//serial/source/@path"]);
    assert_eq!(xml, format!(" path=\"{}\"\n", tty.trim()));

    // Addresses: the neighbour table knows none for a user-mode NIC; no agent channel.
    let head = format!(
        " Name       MAC address          Protocol     Address\n{}\n",
        "-".repeat(79)
    );
    ok(r, &["domifaddr", "vm2", "--source", "arp"], &head);
    ok(r, &["domifaddr", "vm2"], &head);
    fails(
        r,
        &["domifaddr", "vm2", "--source", "agent"],
        "error: Failed to query for interfaces addresses\nerror: argument unsupported: QEMU guest agent is not configured\n",
    );
    fails(
        r,
        &["domifaddr", "vm2", "--source", "dns"],
        "error: Unknown data source 'dns'\n",
    );

    // The monitor, as virsh users reach it.
    let qs = out(r, &["qemu-monitor-command", "vm2", "query-status"]);
    let v: serde_json::Value = serde_json::from_str(qs.trim()).unwrap();
    assert_eq!(v["return"]["status"], "running", "{qs}");
    assert!(qs.starts_with("{\"return\": {"), "{qs}");
    let pretty = out(
        r,
        &[
            "qemu-monitor-command",
            "vm2",
            "--pretty",
            r#"{"execute":"query-status"}"#,
        ],
    );
    assert!(pretty.starts_with("{\n  \"return\": {\n"), "{pretty}");
    let rv = out(
        r,
        &[
            "qemu-monitor-command",
            "vm2",
            "--return-value",
            "query-status",
        ],
    );
    assert!(
        rv.starts_with("{\"") && rv.contains("\"status\":\"running\""),
        "{rv}"
    );
    let hmp = out(
        r,
        &["qemu-monitor-command", "vm2", "--hmp", "info", "status"],
    );
    assert!(hmp.contains("VM status: running"), "{hmp}");
    let bad = out(r, &["qemu-monitor-command", "vm2", "no-such-command"]);
    assert!(
        bad.contains("\"error\": {\"class\": \"CommandNotFound\""),
        "{bad}"
    );
    fails(
        r,
        &["qemu-monitor-command", "vm2", "--hmp", "--pretty", "info"],
        "error: Options --hmp and --pretty are mutually exclusive\n",
    );

    // Keys, a screenshot, a reset.
    ok(r, &["send-key", "vm2", "KEY_LEFTCTRL", "KEY_A"], "");
    ok(r, &["send-key", "vm2", "--holdtime", "50", "28"], "");
    let shot = r.join("shot.ppm").display().to_string();
    ok(
        r,
        &["screenshot", "vm2", &shot],
        &format!("Screenshot saved to {shot}, with type of image/x-portable-pixmap\n"),
    );
    let img = std::fs::read(&shot).unwrap();
    assert!(img.starts_with(b"P6\n"), "{:?}", &img[..8.min(img.len())]);
    ok(r, &["reset", "vm2"], "Domain 'vm2' was reset\n");

    // The live definition's description, apart from the config's.
    ok(
        r,
        &["desc", "vm2", "--live", "Live", "note"],
        "Domain description updated successfully\n",
    );
    ok(r, &["desc", "vm2"], "Live note");
    ok(
        r,
        &["desc", "vm2", "--config"],
        "A guest for the read verbs",
    );

    for v in [
        &["domblkstat", "vm2", "vda"][..],
        &["dommemstat", "vm2"],
        &["vcpuinfo", "vm2"],
        &["domstats", "vm2"],
        &["vncdisplay", "vm2"],
        &["domdisplay", "vm2"],
        &["ttyconsole", "vm2"],
        &["domifaddr", "vm2"],
        &["qemu-monitor-command", "vm2", "query-status"],
    ] {
        closed_stdout(r, v);
    }
    ok(r, &["destroy", "vm2"], "Domain 'vm2' destroyed\n");
}
