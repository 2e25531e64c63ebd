//! libvirt's `domainsnapshot` XML (docs/formatsnapshot.rst): typed model, parse and format.
//! Pure data, no I/O. The domain inside a snapshot is kept as a tree and re-formatted by the
//! domain formatter when it parses as a domain (libvirt formats its parsed definition).

mod format;
mod model;
mod parse;

pub use model::{Location, SnapshotDef, SnapshotDisk, SnapshotState};
pub use parse::{ParseFlags, parse};
