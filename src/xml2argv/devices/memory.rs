//! Memory modules: DIMMs, NVDIMMs and virtio-pmem, each a memory backend object and the device
//! that plugs it in (libvirt: qemuBuildMemoryDeviceCommandLine, qemuBuildMemoryBackendProps,
//! qemuBuildMemoryDeviceProps).

use super::*;
use crate::domain::devices::MemoryDevice;

/// Memory modules are sized in 2 MiB steps on x86, rather than the 1 MiB used elsewhere
/// (libvirt: qemuDomainGetMemoryModuleSizeAlignment).
const MODULE_ALIGN_KIB: u64 = 2048;

impl Builder<'_> {
    pub(super) fn memory_devices(&mut self) -> R {
        for m in &self.def.devices.memories {
            let alias = self.alias(&m.info)?;
            let model = m.model.as_deref().unwrap_or("dimm");
            let driver = match model {
                "dimm" => "pc-dimm",
                "nvdimm" => "nvdimm",
                "virtio-pmem" => "virtio-pmem-pci",
                other => {
                    return Err(unsupported(format!(
                        "memory device model '{other}' not supported yet"
                    )));
                }
            };
            let memdev = format!("mem{alias}");
            let (backend, context) = self.memory_backend(m, &memdev, &alias)?;
            if let Some(tc) = context {
                self.object(&tc);
            }
            self.object(&backend);
            let target = m.target.as_ref();
            let mut j = JsonOpts::new();
            j.s("driver", driver);
            if driver != "virtio-pmem-pci" {
                j.u("node", target.and_then(|t| t.node).unwrap_or(0) as u64);
            }
            if let Some(kib) = target.and_then(|t| t.label_size_kib) {
                j.u("label-size", kib * 1024);
            }
            if target.is_some_and(|t| t.readonly) {
                j.b("unarmed", true);
            }
            j.s("memdev", memdev).s("id", alias);
            match &m.info.address {
                Some(Address::Dimm { slot, base }) => {
                    j.u_opt("slot", slot.map(u64::from));
                    if let Some(b) = base {
                        let addr = parse_base(b).ok_or_else(|| {
                            Xml2ArgvError::Xml(format!("invalid DIMM base address '{b}'"))
                        })?;
                        j.u("addr", addr);
                    }
                }
                _ => self.info_props(&mut j, &m.info)?,
            }
            self.device(&j);
        }
        Ok(())
    }

    /// The backend of one module and, when its memory is preallocated on given host nodes,
    /// the thread context that preallocates it there.
    fn memory_backend(
        &self,
        m: &MemoryDevice,
        id: &str,
        alias: &str,
    ) -> R<(JsonOpts, Option<JsonOpts>)> {
        let source = m.source.as_ref();
        let target = m.target.as_ref();
        let kib = target.and_then(|t| t.size_kib).unwrap_or(0);
        let size = kib.div_ceil(MODULE_ALIGN_KIB) * MODULE_ALIGN_KIB * 1024;
        let node = target.and_then(|t| t.node);
        let hugepage = match source.and_then(|s| s.pagesize_kib) {
            Some(p) => Some(p).filter(|p| *p != 4),
            None => self.hugepage_kib(node),
        };
        let mb = self.def.memory_backing.as_ref();
        // The module's own access mode, else its guest node's, else the domain's.
        let cell_access = node.and_then(|n| {
            let cells = &self.def.cpu.as_ref()?.numa;
            let c = cells
                .iter()
                .enumerate()
                .find(|(i, c)| c.id.unwrap_or(*i as u32) == n)?;
            c.1.mem_access.as_deref()
        });
        let access = m
            .access
            .as_deref()
            .or(cell_access)
            .or(mb.and_then(|b| b.access_mode.as_deref()));
        let file_backed = mb.and_then(|b| b.source_type.as_deref()) == Some("file");
        let memfd = mb.and_then(|b| b.source_type.as_deref()) == Some("memfd");
        let nv_path = source.and_then(|s| s.path.as_deref());
        let pmem = source.is_some_and(|s| s.pmem);
        let mut j = JsonOpts::new();
        let mut prealloc = false;
        if let Some(path) = nv_path {
            j.s("qom-type", "memory-backend-file").s("id", id);
            j.s("mem-path", path);
            // An NVDIMM backed by real persistent memory needs no preallocation.
            prealloc = m.model.as_deref() == Some("nvdimm") && !pmem;
        } else if memfd {
            // libvirt: qemuBuildMemoryBackendProps' memfd case, huge pages or not.
            j.s("qom-type", "memory-backend-memfd").s("id", id);
            if let Some(p) = hugepage {
                self.memfd_hugetlb(&mut j, p)?;
                prealloc = true;
            }
        } else if let Some(p) = hugepage {
            j.s("qom-type", "memory-backend-file").s("id", id);
            j.s("mem-path", self.hugepage_dir(p)?);
            prealloc = true;
        } else if access.is_some() || file_backed {
            j.s("qom-type", "memory-backend-file").s("id", id);
            let short = self.ctx.short_name(self.def);
            j.s(
                "mem-path",
                format!("{}/{short}/{alias}", self.ctx.memory_backing_dir),
            );
        } else {
            j.s("qom-type", "memory-backend-ram").s("id", id);
        }
        if nv_path.is_none() && j.get_str("qom-type") == Some("memory-backend-file") {
            let discard = m.discard.as_deref().map(|d| d == "yes");
            let discard = discard.or(mb.is_some_and(|b| b.discard).then_some(true));
            super::machine::discard_data(&mut j, discard);
        }
        match access {
            Some("shared") => {
                j.b("share", true);
            }
            Some("private") => {
                j.b("share", false);
            }
            _ => {}
        }
        if prealloc {
            j.b("prealloc", true);
        }
        j.u("size", size);
        if let Some(a) = source.and_then(|s| s.alignsize_kib) {
            j.u("align", a * 1024);
        }
        if pmem {
            j.b("pmem", true);
        }
        let explicit = source.and_then(|s| s.nodemask.as_deref());
        let binding = self.host_binding(node, explicit)?;
        let context = self.bind_backend(&mut j, id, prealloc, binding);
        Ok((j, context))
    }
}

/// A DIMM base address as the XML writes it (`0x100000000`, or decimal).
fn parse_base(s: &str) -> Option<u64> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}
