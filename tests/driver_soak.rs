//! Start/destroy cycles of a small paused guest must not leak: descriptors, zombies, files in
//! the state/run/log dirs, and (within a small slack) memory. A short run here; the 200-cycle
//! runs are `#[ignore]`d (`cargo test --release --test driver_soak -- --ignored`) and in
//! `cargo bench --bench guests`.

#[path = "common/guests.rs"]
mod guests;

use std::path::Path;
use std::sync::Mutex;

/// The vsh soak makes this process a subreaper that reaps any child: the runs must not
/// overlap, or it would reap the library soak's QEMU behind its back.
static SERIAL: Mutex<()> = Mutex::new(());

const SHORT: usize = 15;
/// Allocator caches and the runtimes' first threads settle within this much (KiB).
const RSS_SLACK_KIB: u64 = 4096;

fn library(cycles: usize) {
    let _s = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    if !guests::have_qemu() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let rep = guests::soak_library(d.path(), cycles);
    eprintln!("library soak: {rep}");
    guests::assert_no_growth(&rep, RSS_SLACK_KIB);
    assert!(
        guests::processes_mentioning_after(
            &d.path().display().to_string(),
            std::time::Duration::from_secs(5)
        )
        .is_empty()
    );
}

fn vsh(cycles: usize) {
    let _s = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    if !guests::have_qemu() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let rep = guests::soak_vsh(Path::new(env!("CARGO_BIN_EXE_vsh")), d.path(), cycles);
    eprintln!("vsh soak: {rep}");
    guests::assert_no_growth(&rep, RSS_SLACK_KIB);
    assert!(
        guests::processes_mentioning_after(
            &d.path().display().to_string(),
            std::time::Duration::from_secs(5)
        )
        .is_empty()
    );
}

#[test]
fn library_start_destroy_cycles_leak_nothing() {
    library(SHORT);
}

#[test]
fn vsh_start_destroy_cycles_leak_nothing() {
    vsh(SHORT);
}

#[test]
#[ignore = "200 cycles, about a minute: run with --ignored"]
fn library_soak_200() {
    library(200);
}

#[test]
#[ignore = "200 cycles through vsh, a few minutes: run with --ignored"]
fn vsh_soak_200() {
    vsh(200);
}
