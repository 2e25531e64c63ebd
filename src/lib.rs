//! domdriver: what libvirt's QEMU driver does, as a Rust library, without a daemon.
//!
//! Layers (see `../shared/ARCHITECTURE.md`): [`qmp`] talks to QEMU, [`capabilities`] probes the
//! host and every emulator, [`domain`] models domain XML, [`xml2argv`] turns a domain into a QEMU
//! command, and [`driver`] owns processes, files and state.

pub mod capabilities;
pub mod cli;
pub mod conformance;
pub mod domain;
pub mod driver;
pub mod fleet;
pub mod interface;
pub mod network;
pub mod nodedev;
pub mod nwfilter;
pub mod qmp;
pub mod runtime;
pub mod storage;
#[cfg(test)]
mod test_data;
pub mod timefmt;
pub mod xml2argv;
pub mod xmlfmt;

pub use driver::Connect;
