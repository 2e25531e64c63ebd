//! Secret events without a daemon (libvirt: virConnectSecretEventRegisterAny): the secret
//! store is a directory ([`Connect::secrets_dir`]), and every define, undefine and value
//! change of any process using it replaces or removes one file there atomically, so an
//! inotify watch on the directory sees each one as it happens. A definition file appearing is
//! libvirt's `Defined` (also for a redefinition), one removed `Undefined`, a value file
//! appearing `value-changed`.

use std::time::Duration;

use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};

use super::inotify_queue::InotifyQueue;
use super::{Connect, DriverError};

/// What happened to a secret (virSecretEventID, and the lifecycle's virSecretEventLifecycleType).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SecretEventKind {
    Defined,
    Undefined,
    ValueChanged,
}

impl SecretEventKind {
    /// The event id's name `secret-event --event` takes.
    pub fn event_name(self) -> &'static str {
        match self {
            SecretEventKind::Defined | SecretEventKind::Undefined => "lifecycle",
            SecretEventKind::ValueChanged => "value-changed",
        }
    }
}

/// One event: the secret's UUID and what happened.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SecretEvent {
    pub uuid: String,
    #[serde(rename = "event")]
    pub kind: SecretEventKind,
}

/// A subscription to the secret events of a connection; dropping it ends it.
pub struct SecretEvents(InotifyQueue<SecretEvent>);

/// The event a file name in the store stands for, if any.
fn event_of(name: &str, mask: AddWatchFlags) -> Option<SecretEvent> {
    let (stem, ext) = name.rsplit_once('.')?;
    let uuid = uuid::Uuid::parse_str(stem).ok()?.hyphenated().to_string();
    // The store renames a finished file into place; the temp file's close, which comes
    // after the rename under the new name, is not a second change.
    let appeared = mask.contains(AddWatchFlags::IN_MOVED_TO);
    let gone = mask.intersects(AddWatchFlags::IN_DELETE | AddWatchFlags::IN_MOVED_FROM);
    let kind = match ext {
        "xml" if appeared => SecretEventKind::Defined,
        "xml" if gone => SecretEventKind::Undefined,
        "base64" if appeared => SecretEventKind::ValueChanged,
        _ => return None,
    };
    Some(SecretEvent { uuid, kind })
}

impl Connect {
    /// Secret events from now on, of every secret of this connection.
    pub fn secret_events(&self) -> Result<SecretEvents, DriverError> {
        let dir = self.secrets_dir();
        super::config::make_dir(&dir)?;
        let sys = |msg: &str, e: nix::errno::Errno| DriverError::System {
            msg: msg.to_string(),
            err: e.into(),
        };
        let inotify = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK)
            .map_err(|e| sys("cannot watch the secret store", e))?;
        inotify
            .add_watch(
                &dir,
                AddWatchFlags::IN_MOVED_TO
                    | AddWatchFlags::IN_DELETE
                    | AddWatchFlags::IN_MOVED_FROM,
            )
            .map_err(|e| sys(&format!("cannot watch {}", dir.display()), e))?;
        Ok(SecretEvents(InotifyQueue::new(inotify)))
    }
}

impl SecretEvents {
    /// The next event, waiting up to `timeout`; `None` when none came in time.
    pub fn next_timeout(&mut self, timeout: Duration) -> Option<SecretEvent> {
        self.0
            .next_timeout(timeout, |ev, name| event_of(name, ev.mask))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const U: &str = "0a81f5b2-8403-7b23-c8d6-21ccc2f80d6f";

    #[test]
    fn file_changes_as_events() {
        let ev = |n: &str, m| event_of(n, m).map(|e| e.kind);
        assert_eq!(
            ev(&format!("{U}.xml"), AddWatchFlags::IN_MOVED_TO),
            Some(SecretEventKind::Defined)
        );
        assert_eq!(
            ev(&format!("{U}.xml"), AddWatchFlags::IN_DELETE),
            Some(SecretEventKind::Undefined)
        );
        assert_eq!(
            ev(&format!("{U}.base64"), AddWatchFlags::IN_MOVED_TO),
            Some(SecretEventKind::ValueChanged)
        );
        assert_eq!(ev(&format!("{U}.base64"), AddWatchFlags::IN_DELETE), None);
        assert_eq!(ev(&format!("{U}.xml"), AddWatchFlags::IN_CLOSE_WRITE), None);
        assert_eq!(ev(".define-1-2-3", AddWatchFlags::IN_MOVED_FROM), None);
        assert_eq!(
            event_of(
                &format!("{}.xml", U.to_uppercase()),
                AddWatchFlags::IN_MOVED_TO
            )
            .unwrap()
            .uuid,
            U
        );
    }
}
