//! Host facts for `<capabilities><host>`, read from a configurable /proc and /sys root.
//!
//! Probing is a function of the files under [`HostRoot`] (plus the overrides in
//! [`ProbeOptions`]), so the same code runs against this machine and against libvirt's fake
//! sysfs trees. Facts that need QEMU (the host CPU model) are filled in by the caller.

mod cache;
mod cpu;
mod cpu_x86;
pub mod cpu_x86_decode;
pub mod cpu_x86_features;
pub mod cpu_x86_models;
mod cpu_x86_probe;
mod format;
mod hugetlbfs;
mod numa;
mod sysfs;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use cache::{
    CacheBank, CacheControl, CacheType, HostCache, MemBwControl, MemBwNode, MemoryBandwidth,
    ResctrlMonitor, probe_cache,
};
pub use cpu::{
    CpuInfo, libvirt_arch, libvirt_features, parse_cpuinfo, pick_host_cpu_model, vendor_name,
};
pub use hugetlbfs::{HugetlbfsMount, host_numa_nodes, hugetlbfs_mounts};
pub use numa::{
    AccessType, CacheAssociativity, CachePolicy, CellCpu, CpuPlacement, Distance, Interconnect,
    InterconnectKind, MemorySideCache, NumaCell, NumaMemorySource, NumaTopology, PageCount,
    SysfsNumaMemory, cpu_placement, has_numa, online_cpus, probe_numa, summarize_topology,
    system_page_kib,
};

use super::CapsError;
use sysfs::{list_dir_opt, read_opt};

/// Where host facts are read from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostRoot {
    /// procfs (`/proc`): cpuinfo, meminfo.
    pub proc_dir: PathBuf,
    /// sysfs (`/sys`): DMI, hugepages, power, IOMMU groups.
    pub sys_dir: PathBuf,
    /// `/sys/devices/system`: cpu and node topology. Separate because libvirt's fake trees
    /// provide only this subtree.
    pub system_dir: PathBuf,
    /// `/sys/fs/resctrl`.
    pub resctrl_dir: PathBuf,
    /// `/etc`, for the machine-id fallback of the host UUID.
    pub etc_dir: PathBuf,
}

impl HostRoot {
    /// This machine.
    pub fn real() -> Self {
        Self::with_dirs("/proc", "/sys", "/etc")
    }

    /// A fake root laid out like a real one: `ROOT/proc`, `ROOT/sys`, `ROOT/etc`.
    pub fn fake(root: impl AsRef<Path>) -> Self {
        let root = root.as_ref();
        Self::with_dirs(root.join("proc"), root.join("sys"), root.join("etc"))
    }

    /// Explicit procfs, sysfs and /etc directories; the rest is derived from `sys`.
    pub fn with_dirs(
        proc: impl Into<PathBuf>,
        sys: impl Into<PathBuf>,
        etc: impl Into<PathBuf>,
    ) -> Self {
        let sys_dir: PathBuf = sys.into();
        Self {
            proc_dir: proc.into(),
            system_dir: sys_dir.join("devices/system"),
            resctrl_dir: sys_dir.join("fs/resctrl"),
            sys_dir,
            etc_dir: etc.into(),
        }
    }

    /// Read cpu and node topology from `dir` instead of `SYS/devices/system`.
    pub fn with_system_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.system_dir = dir.into();
        self
    }

    /// Read resctrl from `dir` instead of `SYS/fs/resctrl`.
    pub fn with_resctrl_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.resctrl_dir = dir.into();
        self
    }
}

/// `<signature family= model= stepping=/>`: the CPUID display family/model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuSignature {
    pub family: u32,
    pub model: u32,
    pub stepping: u32,
}

/// `<counter name='tsc' .../>`: only known with KVM's help, so filled by the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TscCounter {
    pub frequency: u64,
    pub scaling: Option<bool>,
}

/// Sockets per NUMA node, dies per socket, cores per die, threads per core.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuTopology {
    pub sockets: u32,
    pub dies: u32,
    pub cores: u32,
    pub threads: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostCpu {
    /// libvirt architecture name (`x86_64`, `aarch64`, ...).
    pub arch: String,
    /// Named model from libvirt's CPU map: set by probing this machine (CPUID), else by
    /// [`HostCpu::describe_x86_from_features`] or [`pick_host_cpu_model`].
    pub model: Option<String>,
    pub vendor: Option<String>,
    pub microcode: Option<u64>,
    pub signature: Option<CpuSignature>,
    pub tsc: Option<TscCounter>,
    pub topology: Option<CpuTopology>,
    pub max_phys_addr_bits: Option<u32>,
    /// libvirt feature names: once a model is named, only those beyond the model (as libvirt
    /// shows them); before that, every feature /proc/cpuinfo lists.
    pub features: Vec<String>,
    /// Page sizes (KiB) the host supports, smallest first.
    pub page_sizes_kib: Vec<u64>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PowerManagement {
    pub suspend_mem: bool,
    pub suspend_disk: bool,
    pub suspend_hybrid: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigrationFeatures {
    pub live: bool,
    pub uri_transports: Vec<String>,
}

impl MigrationFeatures {
    /// What libvirt's QEMU driver advertises.
    pub fn qemu() -> Self {
        Self {
            live: true,
            uri_transports: vec!["tcp".into(), "rdma".into()],
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecModel {
    pub model: String,
    pub doi: String,
    /// `(virt type, label)` pairs.
    pub base_labels: Vec<(String, String)>,
}

impl SecModel {
    /// What libvirt reports when no security driver is active.
    pub fn none() -> Self {
        Self {
            model: "none".into(),
            doi: "0".into(),
            base_labels: Vec::new(),
        }
    }
}

/// Everything `<capabilities><host>` says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostCaps {
    pub uuid: Option<String>,
    pub cpu: HostCpu,
    pub power_management: PowerManagement,
    pub iommu: bool,
    /// `None` prints no `<migration_features>` at all.
    pub migration: Option<MigrationFeatures>,
    pub numa: Option<NumaTopology>,
    pub cache: Option<HostCache>,
    pub memory_bandwidth: Option<MemoryBandwidth>,
    pub secmodels: Vec<SecModel>,
}

/// Overrides for facts the caller knows better than the files do.
#[derive(Default)]
pub struct ProbeOptions<'a> {
    /// libvirt arch name; default: `SYS/kernel/arch` style detection, then the build target.
    pub arch: Option<String>,
    /// Host UUID (libvirt's `host_uuid` setting); default: DMI, then machine-id.
    pub host_uuid: Option<String>,
    /// Per-node memory, pages and distances; default: [`SysfsNumaMemory`].
    pub numa_memory: Option<&'a dyn NumaMemorySource>,
}

/// The x86 features (libvirt names) the CPUID instruction reports on this machine, as
/// libvirt's virCPUGetHost reads them; empty on other architectures.
pub fn this_cpu_features() -> Vec<&'static str> {
    cpu_x86_probe::read_this_cpu(Path::new("/dev/kvm"))
        .map(|d| d.features().names())
        .unwrap_or_default()
}

impl HostCaps {
    /// Probe `root` with no overrides.
    pub fn probe(root: &HostRoot) -> Result<HostCaps, CapsError> {
        Self::probe_with(root, &ProbeOptions::default())
    }

    /// Probe `root`. Facts that may legitimately be absent (DMI, cpuinfo fields, power
    /// states, hugepages, resctrl) are skipped when their files are missing; a file that
    /// exists but cannot be read or parsed is an error naming it.
    pub fn probe_with(root: &HostRoot, opts: &ProbeOptions<'_>) -> Result<HostCaps, CapsError> {
        let arch = match &opts.arch {
            Some(a) => a.clone(),
            None => detect_arch(root)?,
        };
        let cpuinfo = read_opt(&root.proc_dir.join("cpuinfo"))?
            .map(|t| parse_cpuinfo(&t))
            .unwrap_or_default();
        let numa = probe_numa(root, opts.numa_memory.unwrap_or(&SysfsNumaMemory))?;
        let online = if root.system_dir.join("cpu").is_dir() {
            online_cpus(root)?
        } else {
            Default::default()
        };
        let (sockets, dies, cores, threads) = summarize_topology(&numa.cells, &online);
        let (cache, memory_bandwidth) = probe_cache(root)?;

        let x86 = matches!(arch.as_str(), "x86_64" | "i686");
        let signature = match (x86, cpuinfo.family, cpuinfo.model, cpuinfo.stepping) {
            (true, Some(family), Some(model), Some(stepping)) => Some(CpuSignature {
                family,
                model,
                stepping,
            }),
            _ => None,
        };
        let mut page_sizes_kib = vec![system_page_kib(root)];
        page_sizes_kib.extend(
            numa::hugepages_in(&root.sys_dir.join("kernel/mm/hugepages"), false)?
                .into_iter()
                .map(|p| p.size_kib),
        );
        let mut cpu = HostCpu {
            arch,
            model: None,
            vendor: cpuinfo
                .vendor_id
                .as_deref()
                .and_then(vendor_name)
                .map(str::to_string),
            microcode: cpuinfo.microcode.filter(|_| x86),
            signature,
            tsc: None,
            topology: (!numa.cells.is_empty()).then_some(CpuTopology {
                sockets,
                dies,
                cores,
                threads,
            }),
            max_phys_addr_bits: cpuinfo.phys_addr_bits,
            features: libvirt_features(&cpuinfo.flags),
            page_sizes_kib,
        };
        // CPUID describes the CPU this program runs on: the host's only when the root is this
        // machine's own /proc. libvirt reads the host CPU that way (virCPUx86GetHost).
        if root.proc_dir == Path::new("/proc") && cpu.arch == super::qemu::host_arch() {
            cpu.describe_this_x86_cpu(Path::new("/dev/kvm"));
        }
        Ok(HostCaps {
            uuid: match &opts.host_uuid {
                Some(u) => Some(u.clone()),
                None => Some(host_uuid(root)?),
            },
            cpu,
            power_management: power_management(root)?,
            iommu: list_dir_opt(&root.sys_dir.join("kernel/iommu_groups"))?
                .is_some_and(|e| !e.is_empty()),
            migration: Some(MigrationFeatures::qemu()),
            numa: Some(numa),
            cache,
            memory_bandwidth,
            secmodels: vec![SecModel::none()],
        })
    }

    /// Choose and store the host CPU model among models QEMU reports usable.
    pub fn set_cpu_model_from_usable(&mut self, usable: &[&str]) {
        self.cpu.model = pick_host_cpu_model(usable, &self.cpu.arch, self.cpu.vendor.as_deref());
    }

    /// The `<host>...</host>` element as libvirt formats it.
    pub fn format_host(&self, w: &mut crate::xmlfmt::XmlWriter) {
        format::format_host(self, w);
    }

    /// `format_host` as a standalone string (no indentation).
    pub fn host_xml(&self) -> String {
        let mut w = crate::xmlfmt::XmlWriter::new();
        self.format_host(&mut w);
        w.finish()
    }
}

/// The running kernel's machine name (`/proc/sys/kernel/arch`, Linux ≥ 4.x), else the
/// architecture this library was built for (they only differ under emulation).
fn detect_arch(root: &HostRoot) -> Result<String, CapsError> {
    let machine = read_opt(&root.proc_dir.join("sys/kernel/arch"))?
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    Ok(libvirt_arch(&machine))
}

/// libvirt rejects DMI UUIDs whose bytes are all equal: firmware fills unset ones with
/// 0x00 or 0xff.
fn plausible_uuid(u: &uuid::Uuid) -> bool {
    let b = u.as_bytes();
    b.iter().any(|x| *x != b[0])
}

/// DMI product UUID, then `/etc/machine-id`, then a UUID derived from the host name, so
/// that the value is stable across probes of the same machine.
pub(crate) fn host_uuid(root: &HostRoot) -> Result<String, CapsError> {
    for rel in [
        "devices/virtual/dmi/id/product_uuid",
        "class/dmi/id/product_uuid",
    ] {
        let path = root.sys_dir.join(rel);
        // product_uuid is root-only on most systems; unreadable means "try the next source".
        if let Ok(Some(s)) = read_opt(&path)
            && let Ok(u) = uuid::Uuid::parse_str(s.trim())
            && plausible_uuid(&u)
        {
            return Ok(u.hyphenated().to_string());
        }
    }
    if let Ok(Some(s)) = read_opt(&root.etc_dir.join("machine-id"))
        && let Ok(u) = uuid::Uuid::try_parse(s.trim())
        && plausible_uuid(&u)
    {
        return Ok(u.hyphenated().to_string());
    }
    let name = read_opt(&root.proc_dir.join("sys/kernel/hostname"))
        .ok()
        .flatten()
        .unwrap_or_default();
    Ok(derived_uuid(name.trim()).hyphenated().to_string())
}

/// A version-4-shaped UUID from FNV-1a hashes of `seed`: stable, not secret.
fn derived_uuid(seed: &str) -> uuid::Uuid {
    let mut bytes = [0u8; 16];
    for (half, chunk) in bytes.chunks_mut(8).enumerate() {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ half as u64;
        for b in seed.bytes().chain(std::iter::once(half as u8)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x100_0000_01b3);
        }
        chunk.copy_from_slice(&h.to_le_bytes());
    }
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

/// Suspend targets from `/sys/power/state` (`mem`, `disk`) and `/sys/power/disk` (hybrid is
/// the `suspend` disk mode). libvirt asks pm-utils or logind; the kernel files are what
/// those consult, minus policy.
fn power_management(root: &HostRoot) -> Result<PowerManagement, CapsError> {
    let state = read_opt(&root.sys_dir.join("power/state"))?.unwrap_or_default();
    let disk = read_opt(&root.sys_dir.join("power/disk"))?.unwrap_or_default();
    let has = |text: &str, word: &str| {
        text.split_whitespace()
            .any(|w| w.trim_matches(|c| c == '[' || c == ']') == word)
    };
    let suspend_disk = has(&state, "disk");
    Ok(PowerManagement {
        suspend_mem: has(&state, "mem"),
        suspend_disk,
        suspend_hybrid: suspend_disk && has(&state, "mem") && has(&disk, "suspend"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_uuid_is_stable_and_valid() {
        let a = derived_uuid("host-a");
        assert_eq!(a, derived_uuid("host-a"));
        assert_ne!(a, derived_uuid("host-b"));
        assert_eq!(a.get_version_num(), 4);
    }

    #[test]
    fn real_host_probe() {
        let caps = HostCaps::probe(&HostRoot::real()).expect("probing this machine");
        let numa = caps.numa.as_ref().expect("cells");
        assert!(!numa.cells.is_empty());
        assert!(numa.cells.iter().map(|c| c.cpus.len()).sum::<usize>() >= 1);
        assert!(caps.cpu.page_sizes_kib.first().is_some_and(|p| *p >= 4));
        let xml = caps.host_xml();
        assert!(
            xml.starts_with("<host>\n") && xml.ends_with("</host>\n"),
            "{xml}"
        );
        // Well-formed: quick-xml reads it to the end without error.
        let mut r = quick_xml::Reader::from_str(&xml);
        let mut depth = 0i32;
        loop {
            match r.read_event() {
                Ok(quick_xml::events::Event::Start(_)) => depth += 1,
                Ok(quick_xml::events::Event::End(_)) => depth -= 1,
                Ok(quick_xml::events::Event::Eof) => break,
                Ok(_) => {}
                Err(e) => panic!("malformed host XML: {e}\n{xml}"),
            }
        }
        assert_eq!(depth, 0);
    }
}
