//! A running guest named `live` for the live-device tests (`live_devices2/3/4.rs`): `vsh`
//! runs on its embedded connection (bounded: a hung command fails the test), QMP through
//! `qemu-monitor-command`, and the state line its guest script prints on the serial console
//! (`STATE ...`), waited for with the test's scaled bounds.

#![allow(dead_code)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{guests, vshrun};

/// Fields drop in order: the reaper reads the guest's status in `dir`, so it goes first.
pub struct Live {
    pub _reap: vshrun::Reaper,
    pub vsh: vshrun::Vsh,
    pub dir: tempfile::TempDir,
}

/// How long one `vsh` command may take before the test fails (scaled).
const VSH_BOUND_SECS: u64 = 120;

impl Live {
    /// The guest `live` on the embedded connection rooted at `DIR/r`.
    pub fn new(dir: tempfile::TempDir) -> Live {
        let root = dir.path().join("r");
        Live {
            vsh: vshrun::Vsh::new(root.clone()),
            _reap: vshrun::Reaper(root, vec!["live"]),
            dir,
        }
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.vsh.run_bounded(args, VSH_BOUND_SECS);
        assert!(ok, "vsh {args:?} failed: {err}");
        out
    }

    pub fn fails(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.vsh.run_bounded(args, VSH_BOUND_SECS);
        assert!(!ok, "vsh {args:?} should fail, printed {out}");
        err
    }

    /// Write `text` to `name` in the test's dir; its path.
    pub fn file(&self, name: &str, text: &str) -> String {
        let p = self.path(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn qmp(&self, cmd: &str, args: &str) -> Value {
        let out = self.ok(&[
            "qemu-monitor-command",
            "live",
            &format!("{{\"execute\":\"{cmd}\",\"arguments\":{args}}}"),
        ]);
        serde_json::from_str::<Value>(&out).unwrap()["return"].clone()
    }

    /// The ids under `path` in QEMU's object tree.
    pub fn qom(&self, path: &str) -> Vec<String> {
        self.qmp("qom-list", &format!("{{\"path\":\"{path}\"}}"))
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|x| x["name"].as_str().map(str::to_string))
            .collect()
    }

    pub fn has_device(&self, id: &str) -> bool {
        self.qom("/machine/peripheral").iter().any(|x| x == id)
    }

    pub fn chardevs(&self) -> Vec<String> {
        self.qmp("query-chardev", "{}")
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|x| x["label"].as_str().map(str::to_string))
            .collect()
    }

    pub fn node_count(&self) -> usize {
        self.qmp("query-named-block-nodes", "{\"flat\":true}")
            .as_array()
            .map_or(0, |a| a.len())
    }

    /// The running helpers `name` the guest's monitor started (virtiofsd forks a worker:
    /// each counts).
    pub fn helpers(&self, name: &str) -> Vec<i32> {
        guests::pids_under(&self.vsh.root, name)
            .into_iter()
            .filter(|p| {
                std::fs::read_to_string(format!("/proc/{p}/comm"))
                    .is_ok_and(|c| c.starts_with(name))
            })
            .collect()
    }

    /// The last `STATE ...` line the guest's script printed on its console.
    pub fn state(&self) -> String {
        let log = self.vsh.root.join("log/qemu/console/live/serial0.log");
        std::fs::read_to_string(log)
            .unwrap_or_default()
            .lines()
            .rev()
            .find_map(|l| l.trim().strip_prefix("STATE ").map(str::to_string))
            .unwrap_or_default()
    }

    /// Wait (`secs`, scaled) until the guest's state satisfies `ok`.
    pub fn wait(&self, what: &str, ok: impl Fn(&str) -> bool, secs: u64) {
        let until = Instant::now() + Duration::from_secs(secs * vshrun::multiplier().max(1));
        while Instant::now() < until {
            if ok(&self.state()) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("guest never showed {what}; last: '{}'", self.state());
    }
}

/// Waits (30 s, scaled) for `ok` (a guest's unplug finishes when it acknowledges, maybe
/// after the call returned).
pub fn eventually(what: &str, mut ok: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(30 * vshrun::multiplier().max(1));
    while Instant::now() < until {
        if ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("never: {what}");
}
