//! The guest's HMAT on the command line: `-numa hmat-lb` per interconnect, then
//! `-numa hmat-cache` per cell cache, which QEMU accepts only after the former (libvirt:
//! qemuBuildNumaHMATCommandLine, qemuBuildNumaCellCache).

use super::*;
use crate::domain::hmat::{CacheAssociativity, CachePolicy, Hmat, InterconnectKind};
use crate::domain::model::Cpu;

/// QEMU's name for the memory hierarchy level an interconnect measures; level 0 is the
/// memory itself (libvirt: qemuDomainMemoryHierarchy).
fn hierarchy(cache: u32) -> Option<&'static str> {
    ["memory", "first-level", "second-level", "third-level"]
        .get(cache as usize)
        .copied()
}

impl Builder<'_> {
    /// The domain's HMAT, read from its NUMA topology (parse has checked it).
    pub(super) fn hmat(&self) -> R<Hmat> {
        match &self.def.cpu {
            Some(cpu) => Hmat::of(cpu).map_err(|e| Xml2ArgvError::Internal(e.to_string())),
            None => Ok(Hmat::default()),
        }
    }

    pub(super) fn hmat_options(&mut self, hmat: &Hmat, cpu: &Cpu) {
        for l in &hmat.interconnects {
            let mut o = KvOpts::with_head("hmat-lb");
            o.kv("initiator", l.initiator).kv("target", l.target);
            // libvirt names four levels; a deeper one is written without a name, as there.
            o.kv("hierarchy", hierarchy(l.cache).unwrap_or(""));
            match l.kind {
                InterconnectKind::Latency => {
                    o.kv("data-type", format!("{}-latency", l.access.as_str()));
                    o.kv("latency", l.value);
                }
                InterconnectKind::Bandwidth => {
                    o.kv("data-type", format!("{}-bandwidth", l.access.as_str()));
                    o.kv("bandwidth", format!("{}K", l.value));
                }
            }
            self.opt("-numa", o.build());
        }
        for (i, caches) in hmat.caches.iter().enumerate() {
            let node = cpu.numa[i].id.unwrap_or(i as u32);
            for c in caches {
                let mut o = KvOpts::with_head("hmat-cache");
                o.kv("node-id", node)
                    .kv("size", format!("{}K", c.size_kib))
                    .kv("level", c.level);
                o.kv(
                    "associativity",
                    match c.associativity {
                        CacheAssociativity::None => "none",
                        CacheAssociativity::Direct => "direct",
                        CacheAssociativity::Full => "complex",
                    },
                );
                o.kv(
                    "policy",
                    match c.policy {
                        CachePolicy::None => "none",
                        CachePolicy::Writeback => "write-back",
                        CachePolicy::Writethrough => "write-through",
                    },
                );
                if c.line_bytes > 0 {
                    o.kv("line", c.line_bytes);
                }
                self.opt("-numa", o.build());
            }
        }
    }
}
