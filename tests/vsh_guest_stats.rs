//! `domstats`' QEMU-queried groups (iothread, dirtyrate, vm, perf, memory) and `domifstat`
//! on a tap NIC, through the real `vsh` binary against real TCG guests in temp
//! `qemu:///embed` roots. Every QEMU is killed by pid on drop; the tap is removed on drop.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use domdriver::driver::status::{GuestStatus, is_same_live_process};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const QEMU: &str = "/usr/bin/qemu-system-x86_64";

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

fn uri(root: &Path) -> String {
    format!("qemu:///embed?root={}", root.display())
}

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

/// Expect success with exactly `out` plus virsh's closing empty line, and a quiet stderr.
fn ok(root: &Path, args: &[&str], out: &str) {
    let (code, o, e) = vsh(root, args);
    assert_eq!(code, 0, "{args:?} failed: {e}");
    assert_eq!(o, format!("{out}\n"), "{args:?}");
    assert_eq!(e, "", "{args:?}");
}

fn out(root: &Path, args: &[&str]) -> String {
    let (code, o, e) = vsh(root, args);
    assert_eq!(code, 0, "{args:?} failed: {e}");
    o
}

fn fails(root: &Path, args: &[&str], err: &str) {
    let (code, o, e) = vsh(root, args);
    assert_ne!(code, 0, "{args:?} succeeded: {o}");
    assert_eq!(e, err, "{args:?}");
}

/// Output into a pipe whose reader is gone: exit quietly, no panic.
fn closed_stdout(root: &Path, args: &[&str]) {
    let o = Command::new(env!("CARGO_BIN_EXE_vsh"))
        .env_remove("VSH_DEFAULT_URI")
        .arg("-c")
        .arg(uri(root))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            drop(c.stdout.take());
            c.wait_with_output()
        })
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !err.contains("panicked") && !err.contains("Broken pipe"),
        "{args:?}: {err}"
    );
    assert_ne!(o.status.code(), Some(101), "{args:?}");
}

fn root() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("gs")
        .tempdir_in("/tmp")
        .unwrap()
}

#[test]
fn domstats_qemu_groups() {
    if !Path::new(QEMU).exists() {
        eprintln!("\n*** SKIPPED: {QEMU} is not installed ***\n");
        return;
    }
    let t = root();
    let r = t.path();
    let xml = r.join("vm.xml");
    std::fs::write(
        &xml,
        "<domain type='qemu'>
  <name>gs</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <iothreads>2</iothreads>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <memballoon model='none'/>
  </devices>
</domain>
",
    )
    .unwrap();
    let _reaper = Reaper {
        run: r.join("run/qemu"),
        name: "gs".into(),
    };
    out(r, &["define", &xml.display().to_string()]);
    // Inactive: the QEMU-queried groups have nothing to say.
    let groups = ["--perf", "--iothread", "--memory", "--dirtyrate", "--vm"];
    let mut args = vec!["domstats"];
    args.extend(groups);
    args.push("gs");
    ok(r, &args, "Domain: 'gs'\n");
    fails(
        r,
        &["domdirtyrate-calc", "gs"],
        "error: Requested operation is not valid: domain is not running\n",
    );

    ok(r, &["start", "gs"], "Domain 'gs' started\n");
    let poll = |id: u32| {
        format!(
            "  iothread.{id}.poll-max-ns=32768\n  iothread.{id}.poll-grow=0\n  iothread.{id}.poll-shrink=0\n"
        )
    };
    // In the order QEMU lists its IOThreads (its object tree's), as libvirt keeps it.
    let io = out(r, &["domstats", "--iothread", "gs"]);
    let head = "Domain: 'gs'\n  iothread.count=2\n";
    assert!(
        io == format!("{head}{}{}\n", poll(1), poll(2))
            || io == format!("{head}{}{}\n", poll(2), poll(1)),
        "{io}"
    );
    ok(
        r,
        &["domstats", "--dirtyrate", "--raw", "gs"],
        "Domain: 'gs'\n  dirtyrate.calc_status=0\n  dirtyrate.calc_start_time=0\n  dirtyrate.calc_period=0\n  dirtyrate.calc_mode=page-sampling\n",
    );
    // No perf events enabled, no resctrl monitors, and TCG has no `query-stats` data.
    ok(
        r,
        &["domstats", "--perf", "--memory", "--vm", "gs"],
        "Domain: 'gs'\n",
    );
    // All groups: the new ones follow block, in libvirt's order.
    let all = out(r, &["domstats", "gs"]);
    let at = |k: &str| all.find(k).unwrap_or_else(|| panic!("{k} missing: {all}"));
    assert!(
        at("  block.count=0\n") < at("  iothread.count=2\n"),
        "{all}"
    );
    assert!(
        at("  iothread.count=2\n") < at("  dirtyrate.calc_status=0\n"),
        "{all}"
    );
    let j: serde_json::Value =
        serde_json::from_str(&out(r, &["domstats", "--iothread", "gs", "--json"])).unwrap();
    assert_eq!(j[0]["stats"]["iothread.count"], 2, "{j}");
    ok(
        r,
        &[
            "domstats",
            "--dirtyrate",
            "--list-running",
            "--nowait",
            "--enforce",
        ],
        "Domain: 'gs'\n  dirtyrate.calc_status=0\n  dirtyrate.calc_start_time=0\n  dirtyrate.calc_period=0\n  dirtyrate.calc_mode=page-sampling\n",
    );

    let help = out(r, &["domstats", "--help"]);
    for o in groups.iter().chain(&["--nowait"]) {
        assert!(help.contains(&format!("    {o} ")), "{o}: {help}");
    }
    fails(
        r,
        &["domstats", "--dirtyrates", "gs"],
        "error: command 'domstats' doesn't support option --dirtyrates\n",
    );
    closed_stdout(r, &["domstats", "--iothread", "--dirtyrate", "gs"]);

    dirty_rate_calc(r);
    send_key_codesets(r);
    ok(r, &["destroy", "gs"], "Domain 'gs' destroyed\n");
}

/// `domdirtyrate-calc` on running guest `gs`: QEMU's measure shows in `domstats
/// --dirtyrate` once done; virsh's and libvirt's errors.
fn dirty_rate_calc(r: &Path) {
    fails(
        r,
        &["domdirtyrate-calc", "gs", "--seconds", "0"],
        "error: unsupported configuration: seconds=0 is invalid, please choose value within [1, 60].\n",
    );
    fails(
        r,
        &["domdirtyrate-calc", "gs", "--mode", "nope"],
        "error: Unknown calculation mode 'nope'\n",
    );
    fails(
        r,
        &["domdirtyrate-calc", "gs", "--mode", "dirty-ring"],
        "error: Operation not supported: dirty-ring calculation mode requires dirty-ring feature enabled.\n",
    );
    assert!(out(r, &["domdirtyrate-calc", "--help"]).contains("--seconds"));
    ok(
        r,
        &[
            "domdirtyrate-calc",
            "gs",
            "--seconds",
            "1",
            "--mode",
            "page-sampling",
        ],
        "Start to calculate domain's memory dirty rate successfully.\n",
    );
    // Measured (status 2) after its second; the wait is bounded, not timed.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let st = out(r, &["domstats", "--dirtyrate", "gs"]);
        if st.contains("  dirtyrate.calc_status=2\n") {
            assert!(st.contains("  dirtyrate.calc_period=1\n"), "{st}");
            assert!(st.contains("  dirtyrate.megabytes_per_second="), "{st}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never measured: {st}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// `send-key` in each of virsh's codesets, by number and by name where the codeset has
/// names, on running guest `gs`; virsh's and libvirt's errors.
fn send_key_codesets(r: &Path) {
    for (codeset, key) in [
        ("linux", "KEY_A"),
        ("linux", "30"),
        ("xt", "0x1e"),
        ("atset1", "30"),
        ("atset2", "28"),
        ("atset3", "034"),
        ("os_x", "ANSI_A"),
        ("os_x", "0"),
        ("xt_kbd", "0x11d"),
        ("usb", "4"),
        ("win32", "VK_A"),
        ("win32", "0x41"),
        ("qnum", "0x9d"),
        ("rfb", "30"),
    ] {
        ok(r, &["send-key", "gs", "--codeset", codeset, key], "");
    }
    ok(
        r,
        &[
            "send-key",
            "gs",
            "--holdtime",
            "20",
            "KEY_LEFTCTRL",
            "KEY_LEFTALT",
            "KEY_F1",
        ],
        "",
    );
    fails(
        r,
        &["send-key", "gs", "--codeset", "usb", "KEY_A"],
        "error: invalid keycode: 'KEY_A'\n",
    );
    fails(
        r,
        &["send-key", "gs", "--codeset", "atset1", "0xfff"],
        "error: internal error: cannot translate keycode 4095 of atset1 codeset to qnum keycode\n",
    );
    fails(
        r,
        &["send-key", "gs", "--codeset", "ebcdic", "1"],
        "error: unknown codeset: 'ebcdic'\n",
    );
    let many: Vec<String> = (2..19).map(|k| k.to_string()).collect();
    let mut args = vec!["send-key", "gs"];
    args.extend(many.iter().map(String::as_str));
    fails(r, &args, "error: too many keycodes\n");
    let help = out(r, &["send-key", "--help"]);
    assert!(help.contains("--codeset <string>"), "{help}");
    closed_stdout(r, &["send-key", "gs", "KEY_A"]);
}

/// A persistent tap device made with `ip`, deleted on drop.
struct Tap(String);

impl Tap {
    fn create(name: &str) -> Option<Tap> {
        if !Path::new("/dev/net/tun").exists() {
            return None;
        }
        let made = Command::new("ip")
            .args(["tuntap", "add", "dev", name, "mode", "tap"])
            .stderr(Stdio::null())
            .status()
            .ok()?
            .success();
        made.then(|| Tap(name.to_string()))
    }

    fn counters(&self) -> Vec<i64> {
        [
            "rx_bytes",
            "rx_packets",
            "rx_errors",
            "rx_dropped",
            "tx_bytes",
            "tx_packets",
            "tx_errors",
            "tx_dropped",
        ]
        .iter()
        .map(|f| {
            let p = format!("/sys/class/net/{}/statistics/{f}", self.0);
            std::fs::read_to_string(p).unwrap().trim().parse().unwrap()
        })
        .collect()
    }
}

impl Drop for Tap {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.0])
            .stderr(Stdio::null())
            .status();
    }
}

/// `domifstat` and `domstats --interface` on an `<interface type='ethernet'>` whose tap the
/// host made: the counters are the host's, not swapped (libvirt swaps only where the host
/// device is the guest's peer, not for ethernet and direct, which share the host's view).
#[test]
fn domifstat_on_a_tap() {
    if !Path::new(QEMU).exists() {
        eprintln!("\n*** SKIPPED: {QEMU} is not installed ***\n");
        return;
    }
    let name = format!("vshtap{}", std::process::id() % 100_000);
    let Some(tap) = Tap::create(&name) else {
        eprintln!("\n*** SKIPPED: cannot create tap device {name} ***\n");
        return;
    };
    let t = root();
    let r = t.path();
    let mac = "52:54:00:ab:cd:ef";
    let xml = format!(
        "<domain type='qemu'>
  <name>tapvm</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
    <emulator>{QEMU}</emulator>
    <interface type='ethernet'>
      <mac address='{mac}'/>
      <target dev='{name}' managed='no'/>
      <model type='e1000'/>
    </interface>
    <memballoon model='none'/>
  </devices>
</domain>
"
    );
    let _reaper = Reaper {
        run: r.join("run/qemu"),
        name: "tapvm".into(),
    };
    let conn = domdriver::driver::Connect::open(Some(&uri(r))).unwrap();
    let dom = conn.define_domain_xml(&xml).unwrap();
    // The process layer hands QEMU no tap fd yet, so QEMU opens the existing tap by name.
    let args: Vec<String> = [
        "-machine",
        "pc,accel=tcg",
        "-m",
        "64",
        "-nodefaults",
        "-display",
        "none",
        "-netdev",
        &format!("tap,id=hostnet0,ifname={name},script=no,downscript=no"),
        "-device",
        &format!("e1000,netdev=hostnet0,id=net0,mac={mac}"),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    dom.start_with_command(QEMU, args, Vec::new()).unwrap();
    // An up link makes the host send IPv6 neighbour discovery into the tap: traffic to count.
    let _ = Command::new("ip")
        .args(["link", "set", &name, "up"])
        .status();
    let until = Instant::now() + Duration::from_secs(10);
    while tap.counters()[5] == 0 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(100));
    }

    let render = |dev: &str, c: &[i64]| {
        let labels = [
            "rx_bytes",
            "rx_packets",
            "rx_errs",
            "rx_drop",
            "tx_bytes",
            "tx_packets",
            "tx_errs",
            "tx_drop",
        ];
        labels
            .iter()
            .zip(c)
            .map(|(l, v)| format!("{dev} {l} {v}\n"))
            .collect::<String>()
    };
    // The counters move while we read them: retry until a reading is stable around vsh's.
    for dev in [name.as_str(), mac] {
        let mut last = String::new();
        let matched = (0..20).any(|_| {
            let before = tap.counters();
            let got = out(r, &["domifstat", "tapvm", dev]);
            let after = tap.counters();
            last = got.clone();
            before == after && got == format!("{}\n", render(dev, &before))
        });
        assert!(matched, "domifstat {dev}: {last} vs {:?}", tap.counters());
    }
    let st = out(r, &["domstats", "--interface", "tapvm"]);
    assert!(
        st.starts_with(&format!(
            "Domain: 'tapvm'\n  net.count=1\n  net.0.name={name}\n  net.0.rx.bytes="
        )),
        "{st}"
    );
    let j: serde_json::Value =
        serde_json::from_str(&out(r, &["domifstat", "tapvm", &name, "--json"])).unwrap();
    assert!(j["tx_packets"].as_i64().unwrap() > 0, "{j}");
    fails(
        r,
        &["domifstat", "tapvm", "vnet999"],
        "error: Failed to get interface stats tapvm vnet999\nerror: invalid argument: 'vnet999' is not a known interface\n",
    );
    let help = out(r, &["domifstat", "--help"]);
    assert!(
        help.contains("NAME") && help.contains("domifstat"),
        "{help}"
    );
    closed_stdout(r, &["domifstat", "tapvm", &name]);
    dom.destroy().unwrap();
}

/// With KVM, QEMU has statistics of its own: `--vm` lists them as `vm.NAME.TYPE`, `--vcpu`
/// adds `vcpu.N.NAME.TYPE`, and `--cpu-total` the halt-polling times. Skipped without a
/// usable /dev/kvm.
#[test]
fn domstats_hypervisor_stats_with_kvm() {
    let kvm_usable = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok();
    if !Path::new(QEMU).exists() || !kvm_usable {
        eprintln!("\n*** SKIPPED: no QEMU or no usable /dev/kvm ***\n");
        return;
    }
    let t = root();
    let r = t.path();
    let xml = r.join("vm.xml");
    std::fs::write(
        &xml,
        format!(
            "<domain type='kvm'><name>kv</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>\
             <os><type arch='x86_64' machine='pc'>hvm</type></os>\
             <devices><emulator>{QEMU}</emulator><memballoon model='none'/></devices></domain>"
        ),
    )
    .unwrap();
    let _reaper = Reaper {
        run: r.join("run/qemu"),
        name: "kv".into(),
    };
    out(r, &["define", &xml.display().to_string()]);
    ok(r, &["start", "kv"], "Domain 'kv' started\n");
    let typed = |l: &str, prefix: &str| {
        let Some((k, v)) = l.trim_start().split_once('=') else {
            return false;
        };
        k.starts_with(prefix)
            && [".sum", ".cur", ".max"].iter().any(|s| k.ends_with(s))
            && (v.parse::<u64>().is_ok() || v == "yes" || v == "no")
    };
    let vm = out(r, &["domstats", "--vm", "kv"]);
    let lines: Vec<&str> = vm.lines().skip(1).filter(|l| !l.is_empty()).collect();
    assert!(!lines.is_empty(), "{vm}");
    assert!(lines.iter().all(|l| typed(l, "vm.")), "{vm}");
    let cpu = out(r, &["domstats", "--cpu-total", "kv"]);
    assert!(cpu.contains("  cpu.haltpoll.success.time="), "{cpu}");
    assert!(cpu.contains("  cpu.haltpoll.fail.time="), "{cpu}");
    let vcpu = out(r, &["domstats", "--vcpu", "kv"]);
    assert!(
        vcpu.lines().any(|l| typed(l, "vcpu.0.")),
        "no hypervisor vCPU stats: {vcpu}"
    );
    ok(r, &["destroy", "kv"], "Domain 'kv' destroyed\n");
}
