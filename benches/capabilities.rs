//! Capabilities speed: cold and warm `vsh capabilities` against the time QEMU itself needs.
//!
//! Baseline: every installed emulator started the way our probe starts it, sent the exact
//! commands our probe sends (recorded first), pipelined, all emulators in parallel; the clock
//! stops when the last reply arrives. That is the floor any prober pays. Cold `vsh
//! capabilities` runs with an empty cache; warm reuses it. Run with
//! `cargo bench --bench capabilities`.

use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use domdriver::capabilities::{accel, emulators, qemu};
use domdriver::qmp::Conversation;

/// Commands of each QEMU session, in order (a session starts at `qmp_capabilities`).
fn sessions(conv: &Conversation) -> Vec<Vec<String>> {
    let mut out: Vec<Vec<String>> = Vec::new();
    for ex in &conv.exchanges {
        if ex.name() == "qmp_capabilities" || out.is_empty() {
            out.push(Vec::new());
        }
        out.last_mut().unwrap().push(ex.command.to_string());
    }
    out
}

/// One QEMU session: start, pipeline `commands`, wait for as many replies, kill.
fn bare_session(emulator: &Path, accel: &str, commands: &[String]) {
    let (ours, theirs) = UnixStream::pair().expect("socketpair");
    let fd = theirs.as_raw_fd();
    let mut cmd = Command::new(emulator);
    cmd.args([
        "-S",
        "-no-user-config",
        "-nodefaults",
        "-nographic",
        "-machine",
    ])
    .arg(format!("none,accel={accel}"))
    .arg("-chardev")
    .arg(format!("socket,id=qmp,fd={fd},server=off"))
    .args(["-mon", "chardev=qmp,mode=control"])
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    // SAFETY: between fork and exec only fcntl is called, which is async-signal-safe; `fd`
    // is the socketpair end QEMU talks QMP on, open in the child until exec.
    unsafe {
        cmd.pre_exec(move || {
            let borrowed = std::os::fd::BorrowedFd::borrow_raw(fd);
            nix::fcntl::fcntl(
                borrowed,
                nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
            )
            .map_err(std::io::Error::from)?;
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("spawn QEMU");
    drop(theirs);
    let mut w = ours.try_clone().unwrap();
    let mut r = BufReader::new(ours);
    let mut line = String::new();
    r.read_line(&mut line).unwrap(); // greeting
    let mut all = String::new();
    for c in commands {
        all.push_str(c);
        all.push('\n');
    }
    w.write_all(all.as_bytes()).unwrap();
    let mut replies = 0;
    while replies < commands.len() {
        line.clear();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        if line.contains("\"return\"") || line.contains("\"error\"") {
            replies += 1;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn vsh_capabilities(root: &Path) -> Duration {
    let t = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_vsh"))
        .arg("-c")
        .arg(format!("qemu:///embed?root={}", root.display()))
        .arg("capabilities")
        .stderr(Stdio::null())
        .output()
        .expect("run vsh");
    let took = t.elapsed();
    assert!(out.status.success(), "vsh capabilities failed");
    took
}

fn main() {
    let paths = emulators::find();
    if paths.is_empty() {
        eprintln!("no qemu-system-* installed: nothing to measure");
        return;
    }
    let kvm = accel::kvm_status(Path::new("/dev/kvm")).usable();
    let rt = tokio::runtime::Runtime::new().unwrap();

    // Record what our probe sends to each binary (also warms the page cache for all).
    let mut plans: Vec<(PathBuf, Vec<Vec<String>>)> = Vec::new();
    for p in &paths {
        let conv = Arc::new(Mutex::new(Conversation::default()));
        let opts = qemu::ProbeOptions {
            timeout: Duration::from_secs(30),
            kvm,
            record: Some(conv.clone()),
        };
        let _ = rt.block_on(qemu::probe_binary(p, &opts));
        let conv = conv.lock().unwrap().clone();
        plans.push((p.clone(), sessions(&conv)));
    }
    let total_cmds: usize = plans.iter().flat_map(|(_, s)| s.iter().map(Vec::len)).sum();

    let rounds = 5;
    let mut bare = Vec::new();
    for _ in 0..rounds {
        let t = Instant::now();
        std::thread::scope(|s| {
            for (p, sess) in &plans {
                s.spawn(move || {
                    for (i, cmds) in sess.iter().enumerate() {
                        let accel = if i == 0 && kvm { "kvm:tcg" } else { "tcg" };
                        bare_session(p, accel, cmds);
                    }
                });
            }
        });
        bare.push(t.elapsed());
    }

    let mut cold = Vec::new();
    for _ in 0..rounds {
        let d = tempfile::tempdir().unwrap();
        cold.push(vsh_capabilities(d.path()));
    }
    let d = tempfile::tempdir().unwrap();
    vsh_capabilities(d.path());
    let warm: Vec<Duration> = (0..50).map(|_| vsh_capabilities(d.path())).collect();

    let (b, c, w) = (median(bare), median(cold), median(warm));
    println!(
        "emulators: {} ({total_cmds} QMP commands in all), KVM usable: {kvm}",
        paths.len()
    );
    println!(
        "bare QEMU, all in parallel (median of {rounds}): {:>8.1} ms",
        b.as_secs_f64() * 1e3
    );
    println!(
        "cold vsh capabilities (median of {rounds}):      {:>8.1} ms  ({:.2}x bare)",
        c.as_secs_f64() * 1e3,
        c.as_secs_f64() / b.as_secs_f64()
    );
    println!(
        "warm vsh capabilities (median of 50):      {:>8.2} ms",
        w.as_secs_f64() * 1e3
    );
}
