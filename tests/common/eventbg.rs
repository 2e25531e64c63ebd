//! A `vsh` run in the background whose stdout lines are read as they come (the event
//! verbs' tests); killed on drop.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::vshrun::Vsh;

const T: Duration = Duration::from_secs(60);

pub struct Bg {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Bg {
    pub fn spawn(v: &Vsh, args: &[&str]) -> Bg {
        let mut child = v
            .cmd(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines() {
                let Ok(l) = l else { break };
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        Bg { child, lines }
    }

    /// Wait until its inotify watch exists.
    pub fn watching(&self) {
        let fd_dir = format!("/proc/{}/fd", self.child.id());
        let end = Instant::now() + T;
        while Instant::now() < end {
            if std::fs::read_dir(&fd_dir).is_ok_and(|rd| {
                rd.flatten().any(|e| {
                    std::fs::read_link(e.path())
                        .is_ok_and(|l| l.to_string_lossy().contains("inotify"))
                })
            }) {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("vsh {} did not watch", self.child.id());
    }

    pub fn line(&self) -> String {
        self.lines.recv_timeout(T).expect("a line")
    }

    pub fn finish(mut self) -> (bool, Vec<String>) {
        let st = self.child.wait().unwrap();
        let mut rest = Vec::new();
        while let Ok(l) = self.lines.recv_timeout(Duration::from_millis(500)) {
            rest.push(l);
        }
        (st.success(), rest)
    }
}

impl Drop for Bg {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
