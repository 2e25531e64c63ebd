//! A guest started again while the monitor of its last run is still finishing: the old
//! monitor must leave the new run's status file, sockets and helpers alone. The old monitor
//! is held with SIGSTOP while its QEMU is killed and the guest is started again, then let go.

#[path = "common/vshrun.rs"]
mod vshrun;

use std::time::{Duration, Instant};

use domdriver::driver::status::GuestStatus;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const XML: &str = "<domain type='qemu'><name>s</name><memory unit='MiB'>64</memory>\
    <os><type arch='x86_64' machine='pc'>hvm</type></os>\
    <devices><emulator>/usr/bin/qemu-system-x86_64</emulator><memballoon model='none'/></devices></domain>";

fn status(root: &std::path::Path) -> Option<GuestStatus> {
    GuestStatus::read("s", &root.join("run/qemu/s.json"))
        .ok()
        .flatten()
}

#[test]
fn an_old_monitor_leaves_the_next_run_alone() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("root");
    let vsh = vshrun::Vsh::new(root.clone());
    let _reaper = vshrun::Reaper(root.clone(), vec!["s"]);
    let f = d.path().join("s.xml");
    std::fs::write(&f, XML).unwrap();
    vsh.ok(&["define", f.to_str().unwrap()]);
    vsh.ok(&["start", "--paused", "s"]);
    let first = status(&root).expect("status of the first run");
    let old_monitor = Pid::from_raw(first.monitor_pid);
    kill(old_monitor, Signal::SIGSTOP).unwrap();
    kill(Pid::from_raw(first.pid), Signal::SIGKILL).unwrap();
    let until = Instant::now() + Duration::from_secs(10);
    while domdriver::driver::status::is_same_live_process(first.pid, first.start_time) {
        assert!(Instant::now() < until, "QEMU {} did not die", first.pid);
        std::thread::sleep(Duration::from_millis(20));
    }
    let started = vsh.run(&["start", "--paused", "s"]);
    // Let the old monitor finish whatever happened, before asserting anything.
    kill(old_monitor, Signal::SIGCONT).unwrap();
    assert!(started.0, "second start: {}", started.2);
    let second = status(&root).expect("status of the second run");
    assert_ne!(second.pid, first.pid);
    let until = Instant::now() + Duration::from_secs(10);
    while std::path::Path::new(&format!("/proc/{}", first.monitor_pid)).exists() {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", first.monitor_pid))
            .unwrap_or_default();
        // A zombie (reaped by whoever adopted it) counts as gone.
        if stat.contains(") Z ") {
            break;
        }
        assert!(Instant::now() < until, "the old monitor did not finish");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The second run's files are all there and it answers.
    assert_eq!(status(&root).map(|s| s.pid), Some(second.pid));
    assert_eq!(vsh.ok(&["domstate", "s"]).trim(), "paused");
    vsh.ok(&["destroy", "s"]);
    assert_eq!(vsh.ok(&["domstate", "s"]).trim(), "shut off");
}
