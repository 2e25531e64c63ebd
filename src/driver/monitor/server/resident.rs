//! The monitor's resident set once the guest runs.
//!
//! Starting a guest runs most of the monitor's code once (the launch, QMP's greeting, the
//! init commands) and the kernel maps the executable's pages around every fault, so by the
//! time the guest runs nearly all of the monitor's text (2.7 MB) is resident, though the
//! guest's long life needs only the event loop's small part of it. Those pages are clean
//! and backed by the executable's file: dropping their mappings costs nothing, and a page
//! the monitor executes again comes back from the page cache, byte for byte the same.

use std::ffi::c_void;
use std::ptr::NonNull;

use nix::sys::mman::{MmapAdvise, madvise};

/// One executable, file-backed mapping of this process, from a `/proc/self/maps` line.
fn code_range(line: &str) -> Option<(usize, usize)> {
    let mut f = line.split_whitespace();
    let range = f.next()?;
    let perms = f.next()?;
    let (_offset, _dev, inode) = (f.next()?, f.next()?, f.next()?);
    let path = f.next()?;
    // Text only: never written, so never copied on write, so always the file's bytes.
    // Writable or relocated (RELRO) mappings hold private data and are left alone.
    if perms != "r-xp" || inode == "0" || !path.starts_with('/') {
        return None;
    }
    let (start, end) = range.split_once('-')?;
    let start = usize::from_str_radix(start, 16).ok()?;
    let end = usize::from_str_radix(end, 16).ok()?;
    (end > start).then_some((start, end - start))
}

/// Drop the resident pages of this process's code (the executable's and its libraries').
pub(super) fn drop_startup_code() {
    let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
        return;
    };
    for (start, len) in maps.lines().filter_map(code_range) {
        let Some(addr) = NonNull::new(start as *mut c_void) else {
            continue;
        };
        // SAFETY: the range is a whole private, read-only, executable mapping of a file
        // (see `code_range`), whose pages were never written; MADV_DONTNEED only unmaps
        // them, and the next access maps the same bytes from the page cache again. No
        // memory the program owns changes.
        let _ = unsafe { madvise(addr, len, MmapAdvise::MADV_DONTNEED) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_file_backed_text_is_dropped() {
        let text = "55d0c0a00000-55d0c0d00000 r-xp 00010000 08:01 1234 /usr/bin/m";
        assert_eq!(code_range(text), Some((0x55d0c0a00000, 0x300000)));
        for other in [
            "55d0c0d00000-55d0c0e00000 r--p 00310000 08:01 1234 /usr/bin/m",
            "55d0c0e00000-55d0c0e10000 rw-p 00400000 08:01 1234 /usr/bin/m",
            "7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0 [stack]",
            "7ffd00030000-7ffd00032000 r-xp 00000000 00:00 0 [vdso]",
            "7f0000000000-7f0000001000 r-xp 00000000 00:00 0",
        ] {
            assert_eq!(code_range(other), None, "{other}");
        }
    }

    #[test]
    fn the_process_runs_on_after_its_code_is_dropped() {
        drop_startup_code();
        // Code and data still work: the pages come back from the file.
        let v: Vec<String> = (0..1000).map(|i| i.to_string()).collect();
        assert_eq!(v.concat().len(), 2890);
    }
}
