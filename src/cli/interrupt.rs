//! Ctrl-C while a verb waits (`event`, `await`): as virsh's vshEventStart, the wait stops and
//! the verb reports it, instead of the process dying mid-output.

use std::sync::atomic::{AtomicBool, Ordering};

use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigint(_: nix::libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// SIGINT caught while this lives; the previous disposition comes back on drop.
pub struct CatchInterrupt {
    old: Option<SigAction>,
}

impl CatchInterrupt {
    pub fn install() -> CatchInterrupt {
        INTERRUPTED.store(false, Ordering::SeqCst);
        let act = SigAction::new(
            SigHandler::Handler(on_sigint),
            SaFlags::SA_RESTART,
            SigSet::empty(),
        );
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe, and
        // the previous action is restored on drop.
        let old = unsafe { sigaction(Signal::SIGINT, &act) }.ok();
        CatchInterrupt { old }
    }

    /// Whether Ctrl-C came since [`CatchInterrupt::install`].
    pub fn interrupted(&self) -> bool {
        INTERRUPTED.load(Ordering::SeqCst)
    }
}

impl Drop for CatchInterrupt {
    fn drop(&mut self) {
        if let Some(old) = self.old.take() {
            // SAFETY: puts back the action that was in place before install().
            let _ = unsafe { sigaction(Signal::SIGINT, &old) };
        }
    }
}
