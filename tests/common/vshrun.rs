//! Running `vsh` on an embedded connection from a test, and killing what a failed test left
//! running.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use domdriver::driver::status::{GuestStatus, is_same_live_process};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// Kills the named guests' QEMUs (under embed root `.0`) on drop if they still run.
pub struct Reaper(pub PathBuf, pub Vec<&'static str>);

impl Drop for Reaper {
    fn drop(&mut self) {
        for name in &self.1 {
            let status = self.0.join(format!("run/qemu/{name}.json"));
            if let Ok(Some(st)) = GuestStatus::read(name, &status)
                && is_same_live_process(st.pid, st.start_time)
            {
                let _ = kill(Pid::from_raw(st.pid), Signal::SIGKILL);
                let until = Instant::now() + Duration::from_secs(5);
                while is_same_live_process(st.pid, st.start_time) && Instant::now() < until {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
    }
}

/// `vsh -c qemu:///embed?root=ROOT`, with extra environment for every run, and optionally
/// run through a wrapper command (`ip netns exec NS`).
pub struct Vsh {
    pub root: PathBuf,
    pub env: Vec<(String, PathBuf)>,
    pub wrapper: Vec<String>,
}

impl Vsh {
    pub fn new(root: PathBuf) -> Vsh {
        Vsh {
            root,
            env: Vec::new(),
            wrapper: Vec::new(),
        }
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let vsh = env!("CARGO_BIN_EXE_vsh");
        let mut c = match self.wrapper.split_first() {
            Some((w, rest)) => {
                let mut c = Command::new(w);
                c.args(rest).arg(vsh);
                c
            }
            None => Command::new(vsh),
        };
        c.env_remove("VSH_DEFAULT_URI")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .arg("-c")
            .arg(format!("qemu:///embed?root={}", self.root.display()))
            .args(args);
        c
    }

    pub fn run(&self, args: &[&str]) -> (bool, String, String) {
        let o = self.cmd(args).output().unwrap();
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    }

    /// [`Vsh::run`] with a bound of `secs` (scaled): a command that hangs is killed by pid
    /// and fails the test.
    pub fn run_bounded(&self, args: &[&str], secs: u64) -> (bool, String, String) {
        use std::io::Read;
        use std::process::Stdio;
        let mut child = self
            .cmd(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let read = |mut r: Box<dyn Read + Send>| {
            std::thread::spawn(move || {
                let mut s = String::new();
                let _ = r.read_to_string(&mut s);
                s
            })
        };
        let t_out = read(Box::new(child.stdout.take().unwrap()));
        let t_err = read(Box::new(child.stderr.take().unwrap()));
        let until = Instant::now() + Duration::from_secs(secs * multiplier().max(1));
        let status = loop {
            if let Some(st) = child.try_wait().unwrap() {
                break st;
            }
            if Instant::now() >= until {
                let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
                let _ = child.wait();
                panic!("vsh {args:?} did not end in {secs} s (scaled)");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        (
            status.success(),
            t_out.join().unwrap(),
            t_err.join().unwrap(),
        )
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.run(args);
        assert!(ok, "vsh {args:?} failed: {err}");
        out
    }

    pub fn fails(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.run(args);
        assert!(!ok, "vsh {args:?} should fail, printed {out}");
        err
    }
}

/// `VSH_TIMEOUT_MULTIPLIER` (default 1), for waits on loaded machines.
pub fn multiplier() -> u64 {
    std::env::var("VSH_TIMEOUT_MULTIPLIER")
        .ok()
        .and_then(|m| m.parse().ok())
        .unwrap_or(1)
}

/// Wait until `f` holds, for at most `timeout`; a timeout fails the test naming `what`.
pub fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let until = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits up to `secs` (times [`multiplier`]) for `file` (a guest's serial log) to contain
/// `what`.
pub fn wait_for(file: &Path, what: &str, secs: u64) -> bool {
    let until = Instant::now() + Duration::from_secs(secs * multiplier());
    while Instant::now() < until {
        if std::fs::read_to_string(file).is_ok_and(|s| s.contains(what)) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}
