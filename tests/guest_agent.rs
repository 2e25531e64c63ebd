//! The QEMU guest agent, for real: a TCG guest runs the host's qemu-ga (Debian's
//! qemu-guest-agent, added to the test initramfs) on its `org.qemu.guest_agent.0` channel.
//! Through `vsh`: the agent-lifecycle event, `await --condition guest-agent-available`,
//! `qemu-agent-command`, `domhostname`, `domtime`, `domifaddr --source agent`, a refused
//! `set-user-password`, and `shutdown --mode agent`. Refusals without an agent come from
//! paused guests. One booted guest serves every assertion.

#[path = "common/bootkit.rs"]
mod bootkit;
#[path = "common/vshrun.rs"]
mod vshrun;

use std::process::Stdio;
use std::time::Duration;

use vshrun::{Reaper, Vsh, multiplier};

fn xml(name: &str, kernel: &str, initrd: &str, cmdline: &str, agent: bool) -> String {
    let channel = if agent {
        "<channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>"
    } else {
        ""
    };
    format!(
        "<domain type='qemu'>
  <name>{name}</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>{kernel}</kernel>
    <initrd>{initrd}</initrd>
    <cmdline>{cmdline}</cmdline>
  </os>
  <features><acpi/></features>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <serial type='pty'><target port='0'/></serial>
    {channel}
    <memballoon model='none'/>
  </devices>
</domain>
"
    )
}

#[test]
fn a_guest_agent_answers_through_vsh() {
    let Some(kit) = bootkit::linux() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let initrd = bootkit::agent_initrd(&kit, tmp.path())
        .unwrap_or_else(|e| panic!("the guest agent's initramfs: {e}"));
    let vsh = Vsh::new(root.clone());
    let _reaper = Reaper(root.clone(), vec!["ga", "noagent", "quiet"]);
    let script = format!(
        "hostname agentguest\nifconfig lo 127.0.0.1 up\n{}",
        bootkit::AGENT_START
    );
    let cmdline = format!("{} {}", kit.cmdline(), bootkit::run_cmdline(&script));
    let define = |name: &str, agent: bool, cmdline: &str| {
        let f = tmp.path().join(format!("{name}.xml"));
        let text = xml(
            name,
            &kit.kernel.display().to_string(),
            &initrd.display().to_string(),
            cmdline,
            agent,
        );
        std::fs::write(&f, text).unwrap();
        vsh.ok(&["define", f.to_str().unwrap()]);
    };
    define("ga", true, &cmdline);

    // Without an agent: libvirt's refusals, from guests killed as soon as they answered.
    define("noagent", false, kit.cmdline());
    vsh.ok(&["start", "--paused", "noagent"]);
    let err = vsh.fails(&["domhostname", "noagent"]);
    assert!(
        err.contains("error: Requested operation is not valid: domain is not running"),
        "{err}"
    );
    vsh.ok(&["resume", "noagent"]);
    let err = vsh.fails(&[
        "qemu-agent-command",
        "noagent",
        r#"{"execute":"guest-ping"}"#,
    ]);
    assert!(
        err.contains("error: argument unsupported: QEMU guest agent is not configured"),
        "{err}"
    );
    define("quiet", true, kit.cmdline());
    vsh.ok(&["start", "quiet"]);
    let err = vsh.fails(&["domhostname", "quiet"]);
    assert!(
        err.contains("Guest agent is not responding: QEMU guest agent is not connected"),
        "{err}"
    );
    let err = vsh.fails(&[
        "await",
        "quiet",
        "--condition",
        "guest-agent-available",
        "--timeout",
        "1",
    ]);
    assert!(
        err.contains("timed out waiting for condition 'guest-agent-available'"),
        "{err}"
    );
    let err = vsh.fails(&["qemu-agent-command", "quiet", "{not json"]);
    assert!(
        err.contains("error: internal error: cannot parse json {not json"),
        "{err}"
    );
    vsh.ok(&["destroy", "noagent"]);
    vsh.ok(&["destroy", "quiet"]);

    // The agent-lifecycle event, seen by a subscriber from before the start.
    let wait = (120 * multiplier()).to_string();
    let events = vsh
        .cmd(&[
            "event",
            "ga",
            "--event",
            "agent-lifecycle",
            "--timeout",
            &wait,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    vsh.ok(&["start", "ga"]);
    let (ok, _, err) = vsh.run(&[
        "await",
        "ga",
        "--condition",
        "guest-agent-available",
        "--timeout",
        &wait,
    ]);
    if !ok {
        let log = std::fs::read_to_string(root.join("log/qemu/console/ga/serial0.log"))
            .unwrap_or_default();
        panic!("the agent never answered: {err}\nconsole:\n{log}");
    }
    let out = events.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(
            "event 'agent-lifecycle' for domain 'ga': state: 'connected' reason: 'channel event'"
        ),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );

    assert_eq!(
        vsh.ok(&["qemu-agent-command", "ga", r#"{"execute":"guest-ping"}"#]),
        "{\"return\":{}}\n\n"
    );
    assert_eq!(vsh.ok(&["domhostname", "ga"]), "agentguest\n\n");
    let info = vsh.ok(&["guestinfo", "ga", "--hostname", "--timezone"]);
    assert!(
        info.contains("hostname            : agentguest\n"),
        "{info}"
    );
    assert!(info.contains("timezone.offset     : "), "{info}");
    let info = vsh.ok(&["guestinfo", "ga"]);
    assert!(info.contains("os.kernel-release   : 6."), "{info}");
    assert!(info.contains("hostname            : agentguest"), "{info}");
    let time = vsh.ok(&["domtime", "ga"]);
    let secs: i64 = time
        .trim()
        .strip_prefix("Time: ")
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{time}"));
    let host = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!((secs - host).abs() < 120, "guest {secs}, host {host}");
    // The guest runs from its initramfs: the agent reports no disk-backed filesystem.
    let fs = vsh.ok(&["domfsinfo", "ga"]);
    assert!(
        fs == "No filesystems are mounted in the domain\n" || fs.starts_with(" Mountpoint"),
        "{fs}"
    );
    let fs_json: serde_json::Value =
        serde_json::from_str(&vsh.ok(&["domfsinfo", "ga", "--json"])).unwrap();
    assert!(fs_json.is_array(), "{fs_json}");
    let addrs = vsh.ok(&["domifaddr", "ga", "--source", "agent"]);
    assert!(
        addrs.contains("lo") && addrs.contains("127.0.0.1/8"),
        "{addrs}"
    );
    // No chpasswd in the guest: the agent's own error, passed on.
    let err = vsh.fails(&["set-user-password", "ga", "root", "secret"]);
    assert!(
        err.contains(
            "error: internal error: unable to execute QEMU agent command 'guest-set-user-password'"
        ),
        "{err}"
    );

    // Filesystems, the guest's vCPUs and SSH keys (tests/vsh_tuning.rs has the rest of
    // these verbs' table; their errors without an agent are the agent's own).
    let froze = vsh.ok(&["domfsfreeze", "ga"]);
    let n = froze
        .strip_prefix("Froze ")
        .and_then(|r| r.strip_suffix(" filesystem(s)\n\n"))
        .unwrap_or_else(|| panic!("{froze}"));
    assert_eq!(
        vsh.ok(&["domfsthaw", "ga"]),
        format!("Thawed {n} filesystem(s)\n\n")
    );
    assert_eq!(
        vsh.fails(&["domfsthaw", "ga", "/"]),
        "error: Unable to thaw filesystems\nerror: argument unsupported: specifying mountpoints is not supported\n"
    );
    vsh.ok(&["domfstrim", "ga"]);
    assert_eq!(
        vsh.fails(&["domfstrim", "ga", "--mountpoint", "/"]),
        "error: Unable to invoke fstrim\nerror: argument unsupported: Specifying mount point is not supported for now\n"
    );
    let vcpus = vsh.ok(&["guestvcpus", "ga"]);
    assert!(
        vcpus.starts_with("vcpus          : 0\nonline         : 0\nofflinable     : "),
        "{vcpus}"
    );
    vsh.ok(&["guestvcpus", "ga", "0", "--enable"]);
    assert_eq!(
        vsh.fails(&["guestvcpus", "ga", "5", "--enable"]),
        "error: invalid argument: guest is missing vCPUs '5'\n"
    );
    if !vcpus.trim_end().ends_with(": 0") {
        assert_eq!(
            vsh.fails(&["guestvcpus", "ga", "0", "--disable"]),
            "error: invalid argument: vCPU '0' is not offlinable\n"
        );
    }
    assert_eq!(
        vsh.fails(&["guestvcpus", "ga", "--enable"]),
        "error: Option --cpulist is required by option --enable\n"
    );
    assert_eq!(
        vsh.fails(&["guestvcpus", "ga", "0"]),
        "error: One of options --enable or --disable is required by option --cpulist\n"
    );
    assert_eq!(
        vsh.fails(&["guestvcpus", "ga", "0", "--enable", "--disable"]),
        "error: Options --enable and --disable are mutually exclusive\n"
    );
    let (ok, _, err) = vsh.run(&["get-user-sshkeys", "ga", "root"]);
    assert!(
        ok || err.contains("unable to execute QEMU agent command 'guest-ssh-get-authorized-keys'"),
        "{err}"
    );
    assert_eq!(
        vsh.fails(&["set-user-sshkeys", "ga", "root", "--remove"]),
        "error: Option --file is required by option --remove\n"
    );
    assert_eq!(
        vsh.fails(&["set-user-sshkeys", "ga", "root"]),
        "error: Option --file is required\n"
    );
    assert!(
        vsh.fails(&["set-user-sshkeys", "ga", "root", "/nonexistent/keys"])
            .starts_with("error: Failed to open file '/nonexistent/keys'")
    );

    // The agent powers the guest off.
    vsh.ok(&["shutdown", "ga", "--mode", "agent"]);
    vsh.ok(&[
        "await",
        "ga",
        "--condition",
        "domain-inactive",
        "--timeout",
        &wait,
    ]);
    assert_eq!(vsh.ok(&["domstate", "ga"]).trim(), "shut off");
}
