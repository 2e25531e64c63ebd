//! The wait the file-watching event sources share ([`super::secret_events`],
//! [`super::object_events`]): an inotify instance on a store's directories, and the events
//! its last read gave beyond the one returned.

use std::collections::VecDeque;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::inotify::{Inotify, InotifyEvent};

pub(super) struct InotifyQueue<E> {
    pub(super) inotify: Inotify,
    pending: VecDeque<E>,
}

impl<E> InotifyQueue<E> {
    pub(super) fn new(inotify: Inotify) -> Self {
        InotifyQueue {
            inotify,
            pending: VecDeque::new(),
        }
    }

    /// The next event, waiting up to `timeout`; `None` when none came in time. `event_of`
    /// says which event a change of a named file stands for, if any (nameless changes, of
    /// the directories themselves, are none).
    pub(super) fn next_timeout(
        &mut self,
        timeout: Duration,
        mut event_of: impl FnMut(&InotifyEvent, &str) -> Option<E>,
    ) -> Option<E> {
        let end = Instant::now() + timeout;
        loop {
            if let Some(e) = self.pending.pop_front() {
                return Some(e);
            }
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            let ms = u16::try_from(left.as_millis().max(1)).unwrap_or(u16::MAX);
            let mut fds = [PollFd::new(self.inotify.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::from(ms)) {
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(_) => return None,
            }
            while let Ok(evs) = self.inotify.read_events() {
                if evs.is_empty() {
                    break;
                }
                for ev in evs {
                    let Some(name) = ev.name.as_ref().and_then(|n| n.to_str()) else {
                        continue;
                    };
                    if let Some(e) = event_of(&ev, name) {
                        self.pending.push_back(e);
                    }
                }
            }
        }
    }
}
