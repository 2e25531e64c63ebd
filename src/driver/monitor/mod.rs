//! One monitor process per running guest, as podman's conmon is for containers: QEMU's
//! parent for the guest's whole life, the only client of QEMU's QMP socket, the server of a
//! control socket (0600, in the guest's run dir) that every operation on the guest goes
//! through, and the source of the guest's domain events. It reaps QEMU, records how the
//! guest ended (libvirt's state and reason, in the status file and the domain log), removes
//! what the run left behind, and exits. See [`launch`] for how it is started, [`proto`] for
//! the protocol, [`server`] for what it does.

pub mod client;
pub mod events;
pub mod hub;
pub mod launch;
pub mod proto;
pub mod server;

pub use client::MonitorClient;
pub use events::{DomainEvent, EventKind, Lifecycle};
