//! `vsh`: virsh-compatible verbs over domdriver, with no daemon. Everything is in
//! [`domdriver::cli`]; this is its `main`.

use std::process::ExitCode;

fn main() -> ExitCode {
    // Rust ignores SIGPIPE already; said here because the output writer relies on it: a
    // closed stdout is an EPIPE error, which ends output quietly (see cli::ctx::Out).
    // SAFETY: setting a signal disposition to SIG_IGN before any thread starts.
    unsafe {
        let _ = nix::sys::signal::signal(
            nix::sys::signal::Signal::SIGPIPE,
            nix::sys::signal::SigHandler::SigIgn,
        );
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    ExitCode::from(domdriver::cli::main(&args))
}
