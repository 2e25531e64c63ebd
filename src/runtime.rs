//! The sync API (like the `virt` crate's) runs our async internals on a private runtime.

use std::future::Future;

/// Run `fut` to completion from synchronous code. When the caller is itself inside a tokio
/// runtime, blocking it would panic or deadlock, so the work moves to a scoped thread with a
/// runtime of its own.
pub fn block_on<F>(fut: F) -> F::Output
where
    F: Future + Send,
    F::Output: Send,
{
    fn run<F: Future>(fut: F) -> F::Output {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("cannot start the tokio runtime (out of threads or file descriptors?)")
            .block_on(fut)
    }
    if tokio::runtime::Handle::try_current().is_ok() {
        std::thread::scope(|s| s.spawn(|| run(fut)).join())
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
    } else {
        run(fut)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn works_inside_and_outside_a_runtime() {
        assert_eq!(super::block_on(async { 1 }), 1);
        let rt = tokio::runtime::Runtime::new().unwrap();
        assert_eq!(rt.block_on(async { super::block_on(async { 2 }) }), 2);
    }
}
