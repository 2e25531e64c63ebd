//! Network and storage pool events without a daemon (libvirt:
//! virConnectNetworkEventRegisterAny, virConnectStoragePoolEventRegisterAny), seen as
//! secret events are ([`super::secret_events`]): every change of a network's or a pool's
//! state replaces or removes one file of its config dir or its run dir atomically, so
//! inotify watches on the two directories see each change as it happens.
//!
//! - `CONFIG/…/NAME.xml` appearing is `Defined` (also a redefinition), removed `Undefined`;
//! - `RUN/…/NAME.xml` appearing while the object was not active is `Started`, removed
//!   `Stopped`; appearing again while active is a pool's refresh (a pool's state file is
//!   rewritten only by a start and a refresh).
//!
//! A network's config rewritten by `net-update --config` or `net-metadata --config` is not a
//! definition (libvirt sends no lifecycle event for either): such a write renames a temp
//! file of its own prefix ([`config::CHANGE`]) into place, and the rename's two halves share
//! a cookie, so its arrival is skipped. What the files cannot show: a pool's
//! `Created`/`Deleted` (pool-build, pool-delete) change the pool's target, not the store.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};

use super::inotify_queue::InotifyQueue;
use super::{Connect, DriverError, config};

/// What happened (virNetworkEventLifecycleType, virStoragePoolEventLifecycleType, and the
/// pool's refresh event id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ObjectEventKind {
    Defined,
    Undefined,
    Started,
    Stopped,
    Refresh,
}

impl ObjectEventKind {
    /// The event id's name the event verbs take.
    pub fn event_name(self) -> &'static str {
        match self {
            ObjectEventKind::Refresh => "refresh",
            _ => "lifecycle",
        }
    }

    /// virsh's word for a lifecycle event.
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectEventKind::Defined => "Defined",
            ObjectEventKind::Undefined => "Undefined",
            ObjectEventKind::Started => "Started",
            ObjectEventKind::Stopped => "Stopped",
            ObjectEventKind::Refresh => "Refresh",
        }
    }
}

/// One event: the network's or pool's name and what happened.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ObjectEvent {
    pub name: String,
    #[serde(rename = "event")]
    pub kind: ObjectEventKind,
}

/// A subscription to the events of one kind of object; dropping it ends it.
pub struct ObjectEvents {
    queue: InotifyQueue<ObjectEvent>,
    state: WatchState,
}

/// What tells an [`ObjectEvents`]' file changes apart.
struct WatchState {
    config_wd: WatchDescriptor,
    run_wd: WatchDescriptor,
    /// Whether a rewritten run file is a refresh (pools) or nothing (networks).
    refreshes: bool,
    /// The names active now, as the run dir has told.
    active: HashSet<String>,
    /// Rename cookies of config changes that are not definitions, until their arrival.
    changes: HashSet<u32>,
}

const WATCH: AddWatchFlags = AddWatchFlags::IN_MOVED_TO
    .union(AddWatchFlags::IN_DELETE)
    .union(AddWatchFlags::IN_MOVED_FROM);

impl Connect {
    /// Network events from now on, of every network of this connection.
    pub fn network_events(&self) -> Result<ObjectEvents, DriverError> {
        ObjectEvents::new(self.networks_config_dir(), self.networks_run_dir(), false)
    }

    /// Storage pool events from now on, of every pool of this connection.
    pub fn storage_pool_events(&self) -> Result<ObjectEvents, DriverError> {
        ObjectEvents::new(self.storage_config_dir(), self.storage_run_dir(), true)
    }
}

impl ObjectEvents {
    fn new(config_dir: PathBuf, run_dir: PathBuf, refreshes: bool) -> Result<Self, DriverError> {
        let sys = |msg: String, e: nix::errno::Errno| DriverError::System { msg, err: e.into() };
        config::make_dir(&config_dir)?;
        config::make_dir(&run_dir)?;
        let inotify = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK)
            .map_err(|e| sys("cannot watch for events".into(), e))?;
        let watch = |d: &PathBuf| {
            inotify
                .add_watch(d, WATCH)
                .map_err(|e| sys(format!("cannot watch {}", d.display()), e))
        };
        let config_wd = watch(&config_dir)?;
        let run_wd = watch(&run_dir)?;
        // Read after the watch exists: a start racing with this is seen by one or the other.
        let active = config::config_names(&run_dir)?.into_iter().collect();
        Ok(ObjectEvents {
            queue: InotifyQueue::new(inotify),
            state: WatchState {
                config_wd,
                run_wd,
                refreshes,
                active,
                changes: HashSet::new(),
            },
        })
    }

    /// The next event, waiting up to `timeout`; `None` when none came in time.
    pub fn next_timeout(&mut self, timeout: Duration) -> Option<ObjectEvent> {
        let state = &mut self.state;
        self.queue.next_timeout(timeout, |ev, name| {
            state.event_of(ev.wd, name, ev.mask, ev.cookie)
        })
    }
}

impl WatchState {
    /// The event a change of file `name` in the watched dir `wd` stands for, if any.
    fn event_of(
        &mut self,
        wd: WatchDescriptor,
        name: &str,
        mask: AddWatchFlags,
        cookie: u32,
    ) -> Option<ObjectEvent> {
        if wd == self.config_wd {
            if mask.contains(AddWatchFlags::IN_MOVED_FROM)
                && name.starts_with(&format!(".{}-", config::CHANGE))
            {
                self.changes.insert(cookie);
                return None;
            }
            if mask.contains(AddWatchFlags::IN_MOVED_TO) && self.changes.remove(&cookie) {
                return None;
            }
        }
        let obj = name.strip_suffix(".xml")?;
        if obj.starts_with('.') {
            return None;
        }
        let appeared = mask.contains(AddWatchFlags::IN_MOVED_TO);
        let gone = mask.intersects(AddWatchFlags::IN_DELETE | AddWatchFlags::IN_MOVED_FROM);
        let kind = if wd == self.config_wd {
            match (appeared, gone) {
                (true, _) => ObjectEventKind::Defined,
                (_, true) => ObjectEventKind::Undefined,
                _ => return None,
            }
        } else if wd == self.run_wd {
            if appeared {
                if self.active.insert(obj.to_string()) {
                    ObjectEventKind::Started
                } else if self.refreshes {
                    ObjectEventKind::Refresh
                } else {
                    return None;
                }
            } else if gone {
                self.active.remove(obj);
                ObjectEventKind::Stopped
            } else {
                return None;
            }
        } else {
            return None;
        };
        Some(ObjectEvent {
            name: obj.to_string(),
            kind,
        })
    }
}
