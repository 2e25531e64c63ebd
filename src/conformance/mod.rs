//! Conformance runners: replay libvirt's test inputs through our code and compare with
//! libvirt's expected outputs.

pub mod domcaps;
pub mod harness;
pub mod pools;
pub mod unmatched;
pub mod xml2argv;
