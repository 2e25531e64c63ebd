//! A guest's power and lifecycle through `vsh`, on a real TCG guest running the host's
//! qemu-ga: `dompmsuspend mem` (the guest reaches S3, `pmsuspended (unknown)`, libvirt's
//! pm events) and `dompmwakeup`, `inject-nmi` (the guest kernel reports the NMI),
//! `set-lifecycle-action` (a live `on_reboot=destroy` makes the guest's own reboot end it),
//! and `send-process-signal`, which libvirt's QEMU driver refuses. Every refusal is
//! libvirt's, from guests that need not boot: one guest boots for the whole file.

#[path = "common/bootkit.rs"]
mod bootkit;
#[path = "common/vshrun.rs"]
mod vshrun;

use std::process::Stdio;
use std::time::{Duration, Instant};

use vshrun::{Reaper, Vsh, multiplier};

/// A guest booting `kit`'s kernel with `initrd`, its console in `dir/NAME.serial`, an agent
/// channel, and `extra` beside `<os>`.
fn xml(
    name: &str,
    kit: &bootkit::LinuxKit,
    initrd: &str,
    cmdline: &str,
    extra: &str,
    dir: &std::path::Path,
) -> String {
    format!(
        "<domain type='qemu'>
  <name>{name}</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>{}</kernel>
    <initrd>{initrd}</initrd>
    <cmdline>{cmdline}</cmdline>
  </os>
  <features><acpi/></features>
  {extra}
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <serial type='file'><source path='{}/{name}.serial'/><target port='0'/></serial>
    <channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>
    <memballoon model='none'/>
  </devices>
</domain>
",
        kit.kernel.display(),
        dir.display(),
    )
}

fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let until = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < until, "not within {timeout:?}: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn power_verbs_on_a_guest_with_an_agent() {
    let Some(kit) = bootkit::linux() else {
        return;
    };
    let tmp = tempfile::Builder::new()
        .prefix("dp")
        .tempdir_in("/tmp")
        .unwrap();
    let root = tmp.path().join("root");
    let initrd = bootkit::agent_initrd(&kit, tmp.path())
        .unwrap_or_else(|e| panic!("the guest agent's initramfs: {e}"));
    let initrd = initrd.display().to_string();
    let vsh = Vsh::new(root.clone());
    let _reaper = Reaper(root.clone(), vec!["pm", "idle"]);
    let serial = tmp.path().join("pm.serial");
    let define = |name: &str, cmdline: &str, extra: &str| {
        let f = tmp.path().join(format!("{name}.xml"));
        std::fs::write(&f, xml(name, &kit, &initrd, cmdline, extra, tmp.path())).unwrap();
        vsh.ok(&["define", f.to_str().unwrap()]);
    };
    let script = format!("ifconfig lo 127.0.0.1 up\n{}", bootkit::AGENT_START);
    let cmdline = format!("{} {}", kit.cmdline(), bootkit::run_cmdline(&script));
    define(
        "pm",
        &cmdline,
        "<pm><suspend-to-mem enabled='yes'/><suspend-to-disk enabled='no'/></pm>",
    );
    let wait = (180 * multiplier()).to_string();
    vsh.ok(&["start", "pm"]);

    // Refusals of the verbs' own arguments, and of what the domain or libvirt rules out.
    assert!(
        vsh.fails(&["dompmsuspend", "pm", "ram"])
            .contains("error: Invalid target")
    );
    let err = vsh.fails(&["dompmsuspend", "pm", "mem", "--duration", "5"]);
    assert!(
        err.contains("error: Domain 'pm' could not be suspended")
            && err.contains("error: invalid argument: Duration not supported. Use 0 for now"),
        "{err}"
    );
    let err = vsh.fails(&["dompmsuspend", "pm", "disk"]);
    assert!(
        err.contains("error: Operation not supported: S4 state is disabled for this domain"),
        "{err}"
    );
    let err = vsh.fails(&["dompmsuspend", "pm", "mem", "--duration", "x"]);
    assert!(
        err.contains("Numeric value 'x' for <duration> option is malformed or out of range"),
        "{err}"
    );
    let err = vsh.fails(&["set-lifecycle-action", "pm", "halt", "destroy"]);
    assert!(
        err.contains("error: Invalid lifecycle type 'halt'."),
        "{err}"
    );
    let err = vsh.fails(&["set-lifecycle-action", "pm", "reboot", "explode"]);
    assert!(
        err.contains("error: Invalid lifecycle action 'explode'."),
        "{err}"
    );
    let err = vsh.fails(&["set-lifecycle-action", "pm", "poweroff", "coredump-destroy"]);
    assert!(
        err.contains("error: Unable to change lifecycle action.")
            && err.contains(
                "error: unsupported configuration: Lifecycle event 'poweroff' doesn't support 'coredump-destroy' action"
            ),
        "{err}"
    );
    // libvirt's QEMU driver checks the definition as it would become (since libvirt 7.7).
    let err = vsh.fails(&["set-lifecycle-action", "pm", "poweroff", "preserve"]);
    assert!(
        err.contains(
            "error: unsupported configuration: qemu driver doesn't support the 'preserve' \
             action for 'on_reboot'/'on_poweroff'"
        ),
        "{err}"
    );
    let err = vsh.fails(&["set-lifecycle-action", "pm", "crash", "rename-restart"]);
    assert!(
        err.contains("doesn't support the 'rename-restart' action for"),
        "{err}"
    );
    vsh.ok(&[
        "set-lifecycle-action",
        "pm",
        "poweroff",
        "restart",
        "--config",
    ]);
    let err = vsh.fails(&[
        "set-lifecycle-action",
        "pm",
        "reboot",
        "destroy",
        "--config",
    ]);
    assert!(
        err.contains("doesn't support 'onReboot' set to 'destroy and 'onPoweroff' set to 'reboot'"),
        "{err}"
    );
    vsh.ok(&[
        "set-lifecycle-action",
        "pm",
        "poweroff",
        "destroy",
        "--config",
    ]);
    let err = vsh.fails(&[
        "set-lifecycle-action",
        "pm",
        "crash",
        "preserve",
        "--live",
        "--current",
    ]);
    assert!(
        err.contains("Options --current and --live are mutually exclusive"),
        "{err}"
    );
    for (args, want) in [
        (
            ["send-process-signal", "pm", "1", "term"],
            "error: this function is not supported by the connection driver: virDomainSendProcessSignal",
        ),
        (
            ["send-process-signal", "pm", "1", "sigfoo"],
            "error: malformed signal name: sigfoo",
        ),
        (
            ["send-process-signal", "pm", "0", "SIGKILL"],
            "error: invalid argument: pid_value in virDomainSendProcessSignal must not be zero",
        ),
        (
            ["send-process-signal", "pm", "x", "9"],
            "Numeric value 'x' for <pid> option is malformed or out of range",
        ),
    ] {
        let err = vsh.fails(&args);
        assert!(err.contains(want), "{args:?}: {err}");
    }
    // Waking a guest that is not suspended: QEMU's refusal, under virsh's line.
    let err = vsh.fails(&["dompmwakeup", "pm"]);
    assert!(
        err.contains("error: Domain 'pm' could not be woken up")
            && err.contains("guest is not in suspended state"),
        "{err}"
    );

    // A guest that does not run, and one without an agent listening yet: libvirt's words.
    define("idle", kit.cmdline(), "");
    let err = vsh.fails(&["inject-nmi", "idle"]);
    assert!(
        err.contains("error: Requested operation is not valid: domain is not running"),
        "{err}"
    );
    let err = vsh.fails(&[
        "set-lifecycle-action",
        "idle",
        "reboot",
        "destroy",
        "--live",
    ]);
    assert!(
        err.contains("error: Requested operation is not valid: domain is not running"),
        "{err}"
    );
    vsh.ok(&["set-lifecycle-action", "idle", "crash", "coredump-restart"]);
    assert!(
        vsh.ok(&["dumpxml", "idle"])
            .contains("<on_crash>coredump-restart</on_crash>")
    );
    vsh.ok(&["start", "--paused", "idle"]);
    let err = vsh.fails(&["dompmsuspend", "idle", "mem"]);
    assert!(
        err.contains("error: Requested operation is not valid: domain is not running"),
        "{err}"
    );
    vsh.ok(&["resume", "idle"]);
    let err = vsh.fails(&["dompmsuspend", "idle", "mem"]);
    assert!(
        err.contains("error: Guest agent is not responding: QEMU guest agent is not connected"),
        "{err}"
    );
    vsh.ok(&["destroy", "idle"]);

    // The agent suspends the guest to RAM; dompmwakeup wakes it. A subscriber sees libvirt's
    // pm and lifecycle events.
    let (ok, _, err) = vsh.run(&[
        "await",
        "pm",
        "--condition",
        "guest-agent-available",
        "--timeout",
        &wait,
    ]);
    assert!(
        ok,
        "the agent never answered: {err}\n{}",
        std::fs::read_to_string(&serial).unwrap_or_default()
    );
    let mut events = vsh
        .cmd(&["event", "pm", "--all", "--loop", "--timeout", &wait])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let t0 = Instant::now();
    let out = vsh.ok(&["dompmsuspend", "pm", "mem"]);
    eprintln!("FIGURE: dompmsuspend mem answered after {:?}", t0.elapsed());
    assert!(
        out.starts_with("Domain 'pm' successfully suspended\n"),
        "{out}"
    );
    assert_eq!(
        vsh.ok(&["domstate", "pm", "--reason"]).trim(),
        "pmsuspended (unknown)"
    );
    let err = vsh.fails(&["resume", "pm"]);
    assert!(
        err.contains("Requested operation is not valid: domain is pmsuspended"),
        "{err}"
    );
    let err = vsh.fails(&["suspend", "pm"]);
    assert!(
        err.contains("Requested operation is not valid: domain is pmsuspended"),
        "{err}"
    );
    let err = vsh.fails(&["domhostname", "pm"]);
    assert!(
        err.contains("Requested operation is not valid: domain is not running"),
        "{err}"
    );
    let out = vsh.ok(&["dompmwakeup", "pm"]);
    assert!(
        out.starts_with("Domain 'pm' successfully woken up\n"),
        "{out}"
    );
    assert_eq!(
        vsh.ok(&["domstate", "pm", "--reason"]).trim(),
        "running (event wakeup)"
    );
    // The agent answers again once the guest runs.
    let (ok, _, err) = vsh.run(&[
        "await",
        "pm",
        "--condition",
        "guest-agent-available",
        "--timeout",
        &wait,
    ]);
    assert!(ok, "{err}");
    std::thread::sleep(Duration::from_millis(300));
    let _ = events.kill();
    let out = events.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for line in [
        "event 'pm-suspend' for domain 'pm'",
        "event 'lifecycle' for domain 'pm': PMSuspended Memory",
        "event 'pm-wakeup' for domain 'pm'",
        "event 'lifecycle' for domain 'pm': Started Event wakeup",
    ] {
        assert!(text.contains(line), "no {line:?} in:\n{text}");
    }

    // An NMI reaches the guest kernel, which names it on the console and runs on.
    // Silent, but for the empty line virsh ends each command with.
    assert_eq!(vsh.ok(&["inject-nmi", "pm"]), "\n");
    wait_for("the guest reports the NMI", Duration::from_secs(60), || {
        std::fs::read_to_string(&serial)
            .unwrap_or_default()
            .contains("NMI received")
    });
    assert_eq!(vsh.ok(&["domstate", "pm"]).trim(), "running");

    // on_reboot changed live (and only live): QEMU turns the guest's own reboot into a
    // shutdown, and the monitor ends the guest.
    vsh.ok(&["set-lifecycle-action", "pm", "reboot", "destroy", "--live"]);
    assert!(
        vsh.ok(&["dumpxml", "pm"])
            .contains("<on_reboot>destroy</on_reboot>")
    );
    assert!(
        vsh.ok(&["dumpxml", "--inactive", "pm"])
            .contains("<on_reboot>restart</on_reboot>")
    );
    vsh.ok(&[
        "set-lifecycle-action",
        "pm",
        "poweroff",
        "restart",
        "--config",
    ]);
    assert!(
        vsh.ok(&["dumpxml", "--inactive", "pm"])
            .contains("<on_poweroff>restart</on_poweroff>")
    );
    assert!(
        vsh.ok(&["dumpxml", "pm"])
            .contains("<on_poweroff>destroy</on_poweroff>")
    );
    vsh.ok(&[
        "qemu-agent-command",
        "pm",
        r#"{"execute":"guest-exec","arguments":{"path":"/bin/busybox","arg":["reboot","-f"]}}"#,
    ]);
    vsh.ok(&[
        "await",
        "pm",
        "--condition",
        "domain-inactive",
        "--timeout",
        &wait,
    ]);
    assert_eq!(
        vsh.ok(&["domstate", "pm", "--reason"]).trim(),
        "shut off (shutdown)"
    );
}
