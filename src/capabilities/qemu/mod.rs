//! What one QEMU binary is and can do, probed over QMP.
//!
//! [`probe_sessions`] runs libvirt 9.0.0's probe conversation over any way of opening QEMU
//! sessions (a real binary via [`probe_binary`], or a recorded `.replies` file via
//! [`ReplaySessions`]); [`QemuCaps`] holds the facts, [`QemuCaps::to_xml`] writes them in
//! libvirt's `<qemuCaps>` cache format and [`format_guests`] derives the `<guest>` blocks of the
//! host capabilities document.

pub mod flags;
mod guests;
pub mod names;
mod probe;
pub mod schema;

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::xmlfmt::XmlWriter;

pub use guests::{
    GuestOptions, emulator_for, format_guest, format_guests, format_guests_for_host, host_arch,
    wordsize,
};
pub use probe::{
    BinarySessions, ProbeOptions, ReplaySessions, SessionOpener, capture_replies, kvm_usable,
    probe_binary, probe_replies, probe_sessions,
};

/// An accelerator QEMU can run guests with. Order is libvirt's output order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Accel {
    Kvm,
    Hvf,
    Tcg,
}

impl Accel {
    /// The name libvirt uses in `type=` attributes of the caps cache.
    pub fn as_str(self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Hvf => "hvf",
            Accel::Tcg => "tcg",
        }
    }
}

/// One `query-machines` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Machine {
    pub name: String,
    pub alias: Option<String>,
    pub max_cpus: u32,
    pub hotplug_cpus: bool,
    /// QEMU's own default (`is-default`), not necessarily libvirt's preferred (first) one.
    pub default: bool,
    /// QOM type name of the default CPU (`default-cpu-type`).
    pub default_cpu: Option<String>,
    pub numa_mem_supported: bool,
    pub default_ram_id: Option<String>,
    pub deprecated: bool,
}

/// Whether a CPU model can run on this host with this accelerator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CpuUsable {
    Yes,
    No,
    /// QEMU did not say (no `unavailable-features` in its reply).
    Unknown,
}

impl CpuUsable {
    pub fn as_str(self) -> &'static str {
        match self {
            CpuUsable::Yes => "yes",
            CpuUsable::No => "no",
            CpuUsable::Unknown => "unknown",
        }
    }
}

/// One `query-cpu-definitions` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuModel {
    pub name: String,
    pub typename: Option<String>,
    pub usable: CpuUsable,
    /// QEMU's names of the features that keep the model from being usable.
    pub blockers: Vec<String>,
    pub deprecated: bool,
}

/// The value of a host CPU model property.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CpuPropValue {
    Boolean(bool),
    String(String),
    Number(i64),
}

/// One property of the host CPU expansion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CpuProp {
    pub name: String,
    pub value: CpuPropValue,
    /// Whether the feature survives migration (x86 only; `None` when unknown).
    pub migratable: Option<bool>,
}

/// The host CPU as QEMU expands it (`host` under acceleration, `max` under TCG).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostCpu {
    pub model: String,
    /// Whether per-feature migratability was determined.
    pub migratability: bool,
    pub props: Vec<CpuProp>,
}

/// What QEMU reports for one accelerator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccelCaps {
    pub accel: Accel,
    pub host_cpu: Option<HostCpu>,
    /// `None` when QEMU has no `query-cpu-definitions` for this target.
    pub cpus: Option<Vec<CpuModel>>,
    /// libvirt's order: its preferred machine first, then QEMU's order; `none` dropped.
    pub machines: Vec<Machine>,
}

/// One `query-gic-capabilities` entry (ARM).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GicCap {
    pub version: u32,
    pub kernel: bool,
    pub emulated: bool,
}

/// AMD SEV platform data (`query-sev-capabilities`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SevCaps {
    pub cbitpos: u32,
    pub reduced_phys_bits: u32,
    pub pdh: String,
    pub cert_chain: String,
    pub cpu0_id: Option<String>,
}

/// One SGX EPC section (NUMA node, size in KiB).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SgxSection {
    pub node: u32,
    pub size: u64,
}

/// Intel SGX support (`query-sgx-capabilities`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SgxCaps {
    pub flc: bool,
    pub sgx1: bool,
    pub sgx2: bool,
    /// KiB.
    pub section_size: u64,
    pub sections: Vec<SgxSection>,
}

impl SgxCaps {
    /// `<sgx supported='yes'>...</sgx>`, the same in the caps document and in domain
    /// capabilities.
    pub fn format(&self, w: &mut XmlWriter) {
        w.elem("sgx").attr("supported", "yes").open();
        w.text_elem("flc", yes_no(self.flc));
        w.text_elem("sgx1", yes_no(self.sgx1));
        w.text_elem("sgx2", yes_no(self.sgx2));
        w.elem("section_size")
            .attr("unit", "KiB")
            .text(&self.section_size.to_string());
        if !self.sections.is_empty() {
            w.elem("sections").open();
            for sec in &self.sections {
                w.elem("section")
                    .attr("node", sec.node)
                    .attr("size", sec.size)
                    .attr("unit", "KiB")
                    .empty();
            }
            w.close();
        }
        w.close();
    }
}

/// Everything probed from one QEMU binary. Stored as JSON by the probe cache.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QemuCaps {
    pub emulator: String,
    /// major·1 000 000 + minor·1000 + micro.
    pub version: u64,
    pub package: Option<String>,
    /// libvirt's name for the target (from `query-target`, never from the file name).
    pub arch: String,
    /// `query-kvm` said present and enabled in the first session.
    pub kvm: bool,
    /// Per accelerator, in [`Accel`] order.
    pub accels: Vec<AccelCaps>,
    pub commands: BTreeSet<String>,
    pub qom_types: BTreeSet<String>,
    /// libvirt's capability flag names.
    pub flags: BTreeSet<String>,
    pub gic: Vec<GicCap>,
    pub sev: Option<SevCaps>,
    pub sgx: Option<SgxCaps>,
    /// libvirt's names of the Hyper-V enlightenments the host supports, in libvirt's order.
    pub hyperv: Option<Vec<String>>,
}

impl QemuCaps {
    pub fn accel(&self, a: Accel) -> Option<&AccelCaps> {
        self.accels.iter().find(|x| x.accel == a)
    }

    /// What the capabilities document needs of this emulator: identity, the accelerator
    /// flags, the machines of the accelerator it reports first and, for the host's own
    /// architecture, the CPU models (they name the host CPU model). Everything else (TCG CPU models, host CPU expansions, QOM
    /// types, commands, other flags) is most of the bytes and is left out, so that a warm
    /// `capabilities` reads little.
    pub fn guest_view(&self) -> QemuCaps {
        const GUEST_FLAGS: &[&str] = &["kvm", "tcg", "hvf"];
        let primary = self.primary_accel();
        QemuCaps {
            accels: self
                .accels
                .iter()
                .filter(|a| Some(a.accel) == primary || a.accel == Accel::Kvm)
                .map(|a| AccelCaps {
                    accel: a.accel,
                    host_cpu: None,
                    cpus: if self.arch == host_arch() {
                        a.cpus.clone()
                    } else {
                        None
                    },
                    machines: if Some(a.accel) == primary {
                        a.machines.clone()
                    } else {
                        Vec::new()
                    },
                })
                .collect(),
            commands: BTreeSet::new(),
            qom_types: BTreeSet::new(),
            flags: self
                .flags
                .iter()
                .filter(|f| GUEST_FLAGS.contains(&f.as_str()))
                .cloned()
                .collect(),
            ..self.clone()
        }
    }

    pub fn has_flag(&self, f: &str) -> bool {
        self.flags.contains(f)
    }

    /// The accelerator libvirt reports first: KVM when available, else HVF, else TCG.
    pub fn primary_accel(&self) -> Option<Accel> {
        if self.kvm && self.accel(Accel::Kvm).is_some() {
            Some(Accel::Kvm)
        } else if self.accel(Accel::Hvf).is_some() {
            Some(Accel::Hvf)
        } else if self.accel(Accel::Tcg).is_some() {
            Some(Accel::Tcg)
        } else {
            None
        }
    }

    /// Machines of the accelerator libvirt reports first ([`QemuCaps::primary_accel`]).
    pub fn primary_machines(&self) -> &[Machine] {
        self.primary_accel()
            .and_then(|a| self.accel(a))
            .map(|a| a.machines.as_slice())
            .unwrap_or(&[])
    }

    /// The caps document in libvirt's `<qemuCaps>` cache format (cache-invalidation stamps
    /// are written as 0, the host microcode version is omitted).
    pub fn to_xml(&self) -> String {
        let mut w = XmlWriter::new();
        w.elem("qemuCaps").open();
        w.text_elem("emulator", &self.emulator);
        w.text_elem("qemuctime", "0");
        w.text_elem("selfctime", "0");
        w.text_elem("selfvers", "0");
        for f in self.ordered_flags() {
            w.elem("flag").attr("name", f).empty();
        }
        w.text_elem("version", &self.version.to_string());
        w.text_elem("kvmVersion", "0");
        if let Some(p) = &self.package {
            w.text_elem("package", p);
        }
        w.text_elem("arch", &self.arch);
        for a in &self.accels {
            format_accel(&mut w, a);
        }
        for g in &self.gic {
            w.elem("gic")
                .attr("version", g.version)
                .attr("kernel", yes_no(g.kernel))
                .attr("emulated", yes_no(g.emulated))
                .empty();
        }
        if let Some(s) = &self.sev {
            w.elem("sev").open();
            w.text_elem("cbitpos", &s.cbitpos.to_string());
            w.text_elem("reducedPhysBits", &s.reduced_phys_bits.to_string());
            w.text_elem("pdh", &s.pdh);
            w.text_elem("certChain", &s.cert_chain);
            if let Some(c) = &s.cpu0_id {
                w.text_elem("cpu0Id", c);
            }
            w.close();
        }
        if let Some(s) = &self.sgx {
            s.format(&mut w);
        }
        if let Some(h) = &self.hyperv {
            w.elem("hypervCapabilities").attr("supported", "yes").open();
            for c in h {
                w.elem("cap").attr("name", c).empty();
            }
            w.close();
        }
        w.close();
        w.finish()
    }

    /// Flags in libvirt's declaration order (known names first, then any others by name),
    /// so our document lists them the way libvirt's does.
    pub fn ordered_flags(&self) -> Vec<&str> {
        let mut known: Vec<(usize, &str)> = self
            .flags
            .iter()
            .map(|f| {
                let pos = FLAG_ORDER
                    .iter()
                    .position(|k| k == f)
                    .unwrap_or(FLAG_ORDER.len());
                (pos, f.as_str())
            })
            .collect();
        known.sort();
        known.into_iter().map(|(_, f)| f).collect()
    }
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

fn format_accel(w: &mut XmlWriter, a: &AccelCaps) {
    let t = a.accel.as_str();
    if let Some(h) = &a.host_cpu {
        w.elem("hostCPU")
            .attr("type", t)
            .attr("model", &h.model)
            .attr("migratability", yes_no(h.migratability))
            .open();
        for p in &h.props {
            let (ty, val) = match &p.value {
                CpuPropValue::Boolean(b) => ("boolean", b.to_string()),
                CpuPropValue::String(s) => ("string", s.clone()),
                CpuPropValue::Number(n) => ("number", n.to_string()),
            };
            w.elem("property")
                .attr("name", &p.name)
                .attr("type", ty)
                .attr("value", val)
                .attr_opt("migratable", p.migratable.map(yes_no))
                .empty();
        }
        w.close();
    }
    for c in a.cpus.iter().flatten() {
        let e = w
            .elem("cpu")
            .attr("type", t)
            .attr("name", &c.name)
            .attr_opt("typename", c.typename.as_deref())
            .attr_opt(
                "usable",
                (c.usable != CpuUsable::Unknown).then(|| c.usable.as_str()),
            )
            .attr_opt("deprecated", c.deprecated.then_some("yes"));
        if c.blockers.is_empty() {
            e.empty();
        } else {
            e.open();
            for b in &c.blockers {
                w.elem("blocker").attr("name", b).empty();
            }
            w.close();
        }
    }
    for m in &a.machines {
        w.elem("machine")
            .attr("type", t)
            .attr("name", &m.name)
            .attr_opt("alias", m.alias.as_deref())
            .attr_opt("hotplugCpus", m.hotplug_cpus.then_some("yes"))
            .attr("maxCpus", m.max_cpus)
            .attr_opt("default", m.default.then_some("yes"))
            .attr_opt("defaultCPU", m.default_cpu.as_deref())
            .attr_opt("numaMemSupported", m.numa_mem_supported.then_some("yes"))
            .attr_opt("defaultRAMid", m.default_ram_id.as_deref())
            .attr_opt("deprecated", m.deprecated.then_some("yes"))
            .empty();
    }
}

/// libvirt's name for a QEMU target architecture (`query-target`'s `arch`), or `None` when
/// libvirt has no name for it.
pub fn arch_from_qemu(target: &str) -> Option<&'static str> {
    Some(match target {
        "i386" => "i686",
        "arm" => "armv7l",
        "or32" | "or1k" => "or32",
        "hppa" => "parisc",
        other => ARCHES.iter().find(|(a, _)| *a == other)?.0,
    })
}

/// The target name QEMU binaries use for a libvirt architecture (`qemu-system-<this>`).
pub fn arch_to_qemu(arch: &str) -> &str {
    match arch {
        "i686" => "i386",
        "armv6l" | "armv7l" => "arm",
        "or32" => "or32",
        other => other,
    }
}

/// libvirt's architectures in its enumeration order, with their word size.
pub(crate) const ARCHES: &[(&str, u32)] = &[
    ("alpha", 64),
    ("armv6l", 32),
    ("armv7l", 32),
    ("armv7b", 32),
    ("aarch64", 64),
    ("cris", 32),
    ("i686", 32),
    ("itanium", 64),
    ("lm32", 32),
    ("loongarch64", 64),
    ("m68k", 32),
    ("microblaze", 32),
    ("microblazeel", 32),
    ("mips", 32),
    ("mipsel", 32),
    ("mips64", 64),
    ("mips64el", 64),
    ("or32", 32),
    ("parisc", 32),
    ("parisc64", 64),
    ("ppc", 32),
    ("ppcle", 32),
    ("ppc64", 64),
    ("ppc64le", 64),
    ("ppcemb", 32),
    ("riscv32", 32),
    ("riscv64", 64),
    ("s390", 32),
    ("s390x", 64),
    ("sh4", 32),
    ("sh4eb", 32),
    ("sparc", 32),
    ("sparc64", 64),
    ("unicore32", 32),
    ("x86_64", 64),
    ("xtensa", 32),
    ("xtensaeb", 32),
];

/// libvirt 9.0.0's flag declaration order (the order of `<flag>` lines in its documents),
/// for the names libvirt 9.0.0 still sets.
#[rustfmt::skip]
const FLAG_ORDER: &[&str] = &[
    "kvm", "sdl", "no-hpet", "spice", "hda-duplex", "ccid-emulated", "ccid-passthru",
    "piix3-usb-uhci", "piix4-usb-uhci", "usb-ehci", "ich9-usb-ehci1", "vt82c686b-usb-uhci",
    "pci-ohci", "usb-redir", "usb-hub", "ich9-ahci", "no-acpi", "virtio-blk-pci.scsi",
    "scsi-disk.channel", "scsi-block", "hda-micro", "nec-usb-xhci", "lsi", "virtio-scsi-pci",
    "disable-s3", "disable-s4", "usb-redir.filter", "ide-drive.wwn", "scsi-disk.wwn",
    "seccomp-sandbox", "vnc", "s390-sclp", "qxl", "VGA", "cirrus-vga", "vmware-svga",
    "usb-serial", "virtio-rng", "rng-random", "rng-egd", "virtio-ccw", "megasas",
    "tpm-passthrough", "nvram", "tpm-tis", "pci-bridge", "vfio-pci", "dmi-to-pci-bridge",
    "usb-storage", "usb-storage.removable", "virtio-mmio", "ich9-intel-hda",
    "kvm-pit-lost-tick-policy", "pvpanic", "enable-fips", "usb-kbd", "usb-audio",
    "rtc-reset-reinjection", "iothread", "migrate-rdma", "aes-key-wrap", "VGA.vgamem_mb",
    "dea-key-wrap", "vmware-svga.vgamem_mb", "qxl.vgamem_mb", "pc-dimm", "machine-vmport-opt",
    "pci-serial", "aarch64-off", "gpex-pcihost", "ioh3420", "x3130-upstream",
    "xio3130-downstream", "rtl8139", "e1000", "virtio-net", "gic-version", "virtio-gpu",
    "virtio-gpu.virgl", "virtio-keyboard", "virtio-mouse", "virtio-tablet", "virtio-input-host",
    "ich9-disable-s3", "ich9-disable-s4", "virtio-balloon-pci.deflate-on-oom", "mptsas1068",
    "spice-gl", "qxl.vram64_size_mb", "pxb", "pxb-pcie", "intel-iommu", "query-hotpluggable-cpus",
    "virtio-vga", "ivshmem-plain", "ivshmem-doorbell", "vhost-scsi", "query-cpu-model-expansion",
    "spice-rendernode", "nvdimm", "pcie-root-port", "query-cpu-definitions", "loadparm",
    "cpu-cache", "qemu-xhci", "spapr-pci-host-bridge", "intel-iommu.intremap",
    "spapr-pci-host-bridge.numa_node", "intel-iommu.caching-mode", "intel-iommu.eim",
    "intel-iommu.device-iotlb", "chardev-reconnect", "vxhs", "sclplmconsole", "spapr-vty",
    "vmcoreinfo", "virtio-gpu-ccw", "pl011", "isa-serial", "virtio-keyboard-ccw",
    "pcie-pci-bridge", "virtio-mouse-ccw", "virtio-tablet-ccw", "nbd-tls", "tpm-crb",
    "pr-manager-helper", "vfio-ccw", "screendump_device", "hda-output", "vmgenid", "vhost-vsock",
    "tpm-emulator", "machine.pseries.cap-hpt-max-page-size", "mch", "machine.pseries.cap-htm",
    "mch.extended-tseg-mbytes", "sev-guest", "egl-headless", "vfio-pci.display", "vfio-ap",
    "zpci", "memory-backend-memfd", "memory-backend-memfd.hugetlb", "iothread.poll-max-ns",
    "machine.pseries.cap-nested-hv", "egl-headless.rendernode", "memory-backend-file.pmem",
    "nvdimm.unarmed", "virtio-pci-non-transitional", "machine.virt.iommu", "nbd-bitmap",
    "x86-max-cpu", "cpu-unavailable-features", "canonical-cpu-features", "bochs-display",
    "migration-file-drop-cache", "dbus-vmstate", "vhost-user-gpu", "query-cpu-model-baseline",
    "vhost-user-vga", "query-cpu-model-comparison", "incremental-backup",
    "machine.pseries.cap-ccf-assist", "ramfb", "arm-max-cpu", "drive-nvme", "smp-dies", "i8042",
    "rng-builtin", "cpu.kvm-no-adjvtime", "tpm-spapr", "vhost-user-fs",
    "query-named-block-nodes.flat", "blockdev-snapshot.allow-write-only-overlay",
    "blockdev-reopen", "fsdev.multidevs", "pcie-root-port.hotplug", "aio.io_uring",
    "machine.pseries.cap-cfpc", "machine.pseries.cap-sbbc", "machine.pseries.cap-ibs", "tcg",
    "virtio-blk-pci.scsi.default.disabled", "pvscsi", "spapr-tpm-proxy", "cpu.migratable",
    "intel-iommu.aw-bits", "numa.hmat", "usb-host.hostdevice",
    "virtio-balloon.free-page-reporting", "block-export-add", "netdev.vhost-vdpa", "ncr53c90",
    "dc390", "am53c974", "virtio-pmem-pci", "vhost-user-fs.bootindex", "vhost-user-blk",
    "cpu-max", "memory-backend-file.x-use-canonical-path-for-ramblock-id",
    "migration-param.block-bitmap-mapping", "vnc-power-control", "object.qapified",
    "rotation-rate", "compat-deprecated", "acpi-index", "input-linux", "virtio-gpu-gl-pci",
    "virtio-vga-gl", "confidential-guest-support", "s390-pv-guest", "set-action",
    "virtio-blk.queue-size", "virtio-mem-pci", "memory-backend-file.reserve",
    "piix4.acpi-root-pci-hotplug", "netdev.json", "query-dirty-rate", "rbd-encryption",
    "sev-guest-kernel-hashes", "sev-inject-launch-secret", "device.json+hotplug",
    "virtio-mem-pci.prealloc", "calc-dirty-rate", "dirtyrate-param.mode",
    "blockdev.nbd.tls-hostname", "memory-backend-file.prealloc-threads", "virtio-iommu-pci",
    "virtio-iommu.boot-bypass", "virtio-net.rss", "chardev.qemu-vdagent", "display-dbus",
    "iothread.thread-pool-max", "usb-host.guest-resets-all", "migration.blocked-reasons",
    "sgx-epc", "query-stats", "query-stats-schemas", "thread-context", "screenshot-format-png",
    "machine-hpet", "netdev.stream",
];
