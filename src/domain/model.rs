//! The domain definition and its non-device parts: memory, vCPUs, OS, features, CPU, clock,
//! lifecycle, power management and the `qemu:` namespace.

use uuid::Uuid;

use super::DomainError;
use super::address::{opt_uint, parse_uint};
use super::common::SecLabel;
use super::devices::{Devices, DiskSource};
use super::units::{MAX_MEMORY_KIB, parse_scaled_kib};
use super::xml::{Extra, Rd, XmlNode, parse_document};
use crate::xmlfmt::XmlWriter;

/// The libvirt namespace URI for `<qemu:...>` elements.
pub const QEMU_NS: &str = "http://libvirt.org/schemas/domain/qemu/1.0";

/// How to format a definition, mirroring libvirt's `VIR_DOMAIN_XML_*` flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FormatFlags {
    /// The persistent config: no runtime-only data such as the domain id.
    pub inactive: bool,
    /// Include secrets such as graphics passwords.
    pub secure: bool,
}

/// Memory amount in KiB, with its optional `dumpCore` attribute.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Memory {
    pub kib: u64,
    pub dump_core: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MaxMemory {
    pub kib: u64,
    pub slots: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HugePage {
    /// Page size in KiB.
    pub size_kib: u64,
    pub nodeset: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MemoryBacking {
    /// `Some(vec![])` is `<hugepages/>`: the default huge page size.
    pub hugepages: Option<Vec<HugePage>>,
    pub nosharepages: bool,
    pub locked: bool,
    pub source_type: Option<String>,
    pub access_mode: Option<String>,
    /// `<allocation mode='immediate|ondemand' threads='N'/>`.
    pub allocation_mode: Option<String>,
    pub allocation_threads: Option<u32>,
    pub discard: bool,
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Vcpu {
    pub count: u32,
    pub placement: Option<String>,
    pub cpuset: Option<String>,
    pub current: Option<u32>,
}

/// Per-device block I/O tuning in `<blkiotune>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BlkioDevice {
    pub path: String,
    pub weight: Option<u32>,
    pub read_iops_sec: Option<u64>,
    pub write_iops_sec: Option<u64>,
    pub read_bytes_sec: Option<u64>,
    pub write_bytes_sec: Option<u64>,
}

/// `<blkiotune>`: cgroup block I/O weight and per-device limits.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Blkiotune {
    pub weight: Option<u32>,
    pub devices: Vec<BlkioDevice>,
}

/// `<memtune>` limits, in KiB.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Memtune {
    pub hard_limit: Option<u64>,
    pub soft_limit: Option<u64>,
    pub min_guarantee: Option<u64>,
    pub swap_hard_limit: Option<u64>,
}

/// `<launchSecurity>`: AMD SEV, SEV-SNP, s390 protected virtualization.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LaunchSecurity {
    pub ltype: String,
    pub kernel_hashes: Option<String>,
    pub cbitpos: Option<String>,
    pub reduced_phys_bits: Option<String>,
    pub policy: Option<String>,
    pub dh_cert: Option<String>,
    pub session: Option<String>,
    pub extra: Extra,
}

/// One `<qemu:property name='..' type='string|signed|unsigned|bool|remove' value='..'/>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QemuProperty {
    pub name: String,
    pub ptype: String,
    pub value: Option<String>,
}

/// `<qemu:device alias='..'><qemu:frontend>properties</qemu:frontend></qemu:device>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QemuDeviceOverride {
    pub alias: String,
    /// `Some` when `<qemu:frontend>` is present.
    pub frontend: Option<Vec<QemuProperty>>,
}

/// `<qemu:capabilities>`: QEMU capability flags forced on or off.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QemuCapabilities {
    pub add: Vec<String>,
    pub del: Vec<String>,
}

/// One `<entry>` of a sysinfo block (or of an fwcfg sysinfo).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SysinfoEntry {
    pub name: Option<String>,
    pub file: Option<String>,
    pub value: String,
}

/// `<sysinfo type='smbios|fwcfg'>`: SMBIOS blocks (bios, system, baseBoard, chassis,
/// oemStrings) with their entries, or fw_cfg entries.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Sysinfo {
    pub stype: String,
    pub blocks: Vec<(String, Vec<SysinfoEntry>)>,
    /// Entries directly under `<sysinfo>` (fwcfg).
    pub entries: Vec<SysinfoEntry>,
}

/// Depth of the children of `<metadata>` in a domain document (`<domain><metadata><x>`).
const METADATA_DEPTH: usize = 2;

const SYSINFO_BLOCK_ORDER: &[&str] = &["bios", "system", "baseBoard", "chassis", "oemStrings"];

/// The entries libvirt knows in each SMBIOS block, in the order it writes them
/// (libvirt: virSysinfoParseBIOSDef, virSysinfoParseSystemDef, virSysinfoParseBaseBoardDef,
/// virSysinfoParseChassisDef).
const SMBIOS_FIELDS: &[(&str, &[&str])] = &[
    ("bios", &["vendor", "version", "date", "release"]),
    (
        "system",
        &[
            "manufacturer",
            "product",
            "version",
            "serial",
            "uuid",
            "sku",
            "family",
        ],
    ),
    (
        "baseBoard",
        &[
            "manufacturer",
            "product",
            "version",
            "serial",
            "asset",
            "location",
        ],
    ),
    (
        "chassis",
        &["manufacturer", "version", "serial", "asset", "sku"],
    ),
];

/// An SMBIOS block as libvirt stores it: one value per known field (its first entry), in
/// libvirt's order, empty values absent (read with virXPathString). Unknown blocks (oemStrings)
/// keep their entries.
fn smbios_fields(block: &str, es: &mut Vec<SysinfoEntry>) {
    let Some((_, fields)) = SMBIOS_FIELDS.iter().find(|(b, _)| *b == block) else {
        return;
    };
    *es = fields
        .iter()
        .filter_map(|f| {
            es.iter()
                .find(|e| e.name.as_deref() == Some(f))
                .filter(|e| !e.value.is_empty())
                .cloned()
        })
        .collect();
}

impl Sysinfo {
    fn parse(n: &XmlNode) -> Sysinfo {
        let entries = |n: &XmlNode| {
            n.children
                .iter()
                .filter(|e| e.name == "entry")
                .map(|e| SysinfoEntry {
                    name: e.attr("name").map(String::from),
                    file: e.attr("file").map(String::from),
                    value: e.text.clone(),
                })
                .collect::<Vec<_>>()
        };
        let stype = n.attr("type").unwrap_or("").to_string();
        let mut blocks: Vec<(String, Vec<SysinfoEntry>)> = n
            .children
            .iter()
            .filter(|c| c.name != "entry")
            .map(|c| (c.name.clone(), entries(c)))
            .collect();
        if stype == "smbios" {
            for (name, es) in blocks.iter_mut() {
                smbios_fields(name, es);
            }
            // libvirt keeps no block without a value.
            blocks.retain(|(_, es)| !es.is_empty());
        }
        Sysinfo {
            stype,
            blocks,
            entries: entries(n),
        }
    }

    fn to_node(&self) -> XmlNode {
        let entry = |e: &SysinfoEntry| {
            XmlNode::new("entry")
                .ao("name", e.name.as_ref())
                .ao("file", e.file.as_ref())
                .t(&e.value)
        };
        let mut blocks = self.blocks.clone();
        blocks.sort_by_key(|(name, _)| {
            SYSINFO_BLOCK_ORDER
                .iter()
                .position(|o| o == name)
                .unwrap_or(SYSINFO_BLOCK_ORDER.len())
        });
        XmlNode::new("sysinfo")
            .a("type", &self.stype)
            .cs(blocks
                .iter()
                .map(|(name, es)| XmlNode::new(name).cs(es.iter().map(entry))))
            .cs(self.entries.iter().map(entry))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IoThread {
    pub id: u32,
    pub thread_pool_min: Option<i64>,
    pub thread_pool_max: Option<i64>,
    /// `<poll>` and anything else.
    pub extra: Extra,
}

/// `<numatune>`: host NUMA policy for guest memory.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Numatune {
    pub memory: Option<NumatuneMemory>,
    pub memnodes: Vec<MemNode>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NumatuneMemory {
    pub mode: Option<String>,
    pub nodeset: Option<String>,
    pub placement: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MemNode {
    pub cellid: u32,
    pub mode: Option<String>,
    pub nodeset: Option<String>,
}

/// `<vcpu id='..' enabled='yes|no' hotpluggable='yes|no' order='..'/>` inside `<vcpus>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VcpuInfo {
    pub id: u32,
    pub enabled: Option<String>,
    pub hotpluggable: Option<String>,
    pub order: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VcpuPin {
    pub vcpu: u32,
    pub cpuset: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Cputune {
    pub shares: Option<String>,
    pub period: Option<String>,
    pub quota: Option<String>,
    pub vcpupin: Vec<VcpuPin>,
    pub emulatorpin: Option<String>,
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OsType {
    pub arch: Option<String>,
    pub machine: Option<String>,
    /// `hvm`, `linux`, `exe`, ...
    pub kind: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Loader {
    pub readonly: Option<String>,
    pub secure: Option<String>,
    pub ltype: Option<String>,
    pub stateless: Option<String>,
    pub format: Option<String>,
    pub path: Option<String>,
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Nvram {
    pub template: Option<String>,
    pub ntype: Option<String>,
    pub format: Option<String>,
    pub path: Option<String>,
    /// Network or block backed NVRAM.
    pub source: Option<DiskSource>,
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Os {
    pub firmware: Option<String>,
    pub os_type: OsType,
    /// `<firmware><feature enabled='yes' name='secure-boot'/></firmware>`: (name, enabled).
    pub firmware_features: Option<Vec<(String, String)>>,
    pub loader: Option<Loader>,
    pub nvram: Option<Nvram>,
    pub kernel: Option<String>,
    pub initrd: Option<String>,
    pub cmdline: Option<String>,
    pub dtb: Option<String>,
    /// `<acpi><table type='slic'>path</table></acpi>`: (type, path).
    pub acpi_tables: Option<Vec<(String, String)>>,
    pub boot_devs: Vec<String>,
    pub bootmenu_enable: Option<String>,
    pub bootmenu_timeout: Option<String>,
    pub smbios_mode: Option<String>,
    pub bios_useserial: Option<String>,
    pub bios_reboot_timeout: Option<String>,
    pub extra: Extra,
}

/// One sub-feature of `<hyperv>` or `<kvm>`: `<relaxed state='on'/>`,
/// `<spinlocks state='on' retries='4095'/>`, `<vendor_id state='on' value='KVM Hv'/>`,
/// `<stimer state='on'><direct state='on'/></stimer>`, `<dirty-ring state='on' size='4096'/>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SubFeature {
    pub name: String,
    pub state: Option<String>,
    pub retries: Option<u32>,
    pub value: Option<String>,
    /// `size` of kvm's dirty-ring.
    pub size: Option<u32>,
    /// Nested sub-features such as stimer's `<direct>`, as (name, state).
    pub children: Vec<(String, Option<String>)>,
    pub extra: Extra,
}

/// A feature element with sub-features, like `<hyperv mode='custom'>` or `<kvm>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FeatureGroup {
    pub mode: Option<String>,
    /// Sub-features in document order (libvirt's own output has them in its fixed order).
    pub items: Vec<SubFeature>,
}

impl FeatureGroup {
    /// State of a sub-feature (`on`/`off`), if present.
    pub fn state(&self, name: &str) -> Option<&str> {
        self.items
            .iter()
            .find(|n| n.name == name)
            .and_then(|n| n.state.as_deref())
    }

    fn parse(n: &XmlNode) -> Result<FeatureGroup, DomainError> {
        let mut items = Vec::new();
        for c in &n.children {
            let rd = Rd::new(c);
            let mut f = SubFeature {
                name: c.name.clone(),
                state: rd.attr("state"),
                retries: opt_uint(&rd, "retries")?,
                value: rd.attr("value"),
                size: opt_uint(&rd, "size")?,
                ..Default::default()
            };
            for sub in &c.children {
                f.children
                    .push((sub.name.clone(), sub.attr("state").map(String::from)));
            }
            let mut extra = rd.extra();
            // Nested elements are all typed above.
            extra.children.clear();
            f.extra = extra;
            items.push(f);
        }
        Ok(FeatureGroup {
            mode: n.attr("mode").map(String::from),
            items,
        })
    }

    fn to_node(&self, name: &str) -> XmlNode {
        let mut n = XmlNode::new(name)
            .ao("mode", self.mode.as_ref())
            .cs(self.items.iter().map(|f| {
                XmlNode::new(&f.name)
                    .ao("state", f.state.as_ref())
                    .ao("retries", f.retries)
                    .ao("value", f.value.as_ref())
                    .ao("size", f.size)
                    .extra_attrs(&f.extra)
                    .cs(f
                        .children
                        .iter()
                        .map(|(n, st)| XmlNode::new(n).ao("state", st.as_ref())))
            }));
        // libvirt opens the hyperv element whenever it has a mode, children or not.
        n.open_empty = name == "hyperv" && self.mode.is_some();
        n
    }
}

/// pSeries hash page table settings.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Hpt {
    pub resizing: Option<String>,
    pub maxpagesize_kib: Option<u64>,
}

/// `<smm state='on'><tseg unit='MiB'>48</tseg></smm>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Smm {
    pub state: Option<String>,
    /// Extended TSEG size, in KiB.
    pub tseg_kib: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Features {
    pub acpi: bool,
    /// `<apic/>`; the inner value is its `eoi` attribute.
    pub apic: Option<Option<String>>,
    pub pae: bool,
    pub hap: Option<Option<String>>,
    pub pvspinlock: Option<Option<String>>,
    pub hyperv: Option<FeatureGroup>,
    pub kvm: Option<FeatureGroup>,
    pub pmu: Option<Option<String>>,
    pub vmport: Option<Option<String>>,
    /// `<gic/>`; the inner value is its `version`.
    pub gic: Option<Option<String>>,
    pub smm: Option<Smm>,
    /// `<ioapic driver='kvm|qemu'/>`.
    pub ioapic: Option<Option<String>>,
    /// `<hpt resizing='..'><maxpagesize unit='KiB'>N</maxpagesize></hpt>` (pseries).
    pub hpt: Option<Hpt>,
    /// `<tcg>`; the inner value is its `<tb-cache>` size in KiB.
    pub tcg: Option<Option<u64>>,
    /// Features we keep verbatim (htm, msrs, nested-hv, ...).
    pub others: Vec<XmlNode>,
}

/// libvirt writes features in the order of its feature enum (the parser's vocabulary),
/// whatever the input order.
use super::validate::vocab::FEATURES as FEATURE_ORDER;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CpuModel {
    pub name: String,
    pub fallback: Option<String>,
    pub vendor_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CpuTopology {
    pub sockets: u32,
    pub dies: Option<u32>,
    pub cores: u32,
    pub threads: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CpuFeature {
    pub policy: Option<String>,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NumaCell {
    pub id: Option<u32>,
    pub cpus: Option<String>,
    pub memory_kib: u64,
    pub discard: Option<String>,
    pub mem_access: Option<String>,
    /// `<distances><sibling id='..' value='..'/></distances>`: (cell id, distance).
    pub distances: Vec<(u32, u32)>,
    /// `<cache>` (HMAT), kept verbatim.
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Cpu {
    pub mode: Option<String>,
    pub match_: Option<String>,
    pub check: Option<String>,
    pub migratable: Option<String>,
    pub model: Option<CpuModel>,
    pub vendor: Option<String>,
    pub topology: Option<CpuTopology>,
    /// `<cache level='3' mode='emulate|passthrough|disable'/>`.
    pub cache_level: Option<String>,
    pub cache_mode: Option<String>,
    /// `<maxphysaddr mode='emulate|passthrough' bits='46'/>`.
    pub maxphysaddr_mode: Option<String>,
    pub maxphysaddr_bits: Option<u32>,
    pub features: Vec<CpuFeature>,
    pub numa: Vec<NumaCell>,
    /// `<interconnects>` inside `<numa>`, kept verbatim.
    pub numa_extra: Extra,
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Timer {
    pub name: String,
    pub present: Option<String>,
    pub tickpolicy: Option<String>,
    pub track: Option<String>,
    pub frequency: Option<String>,
    pub mode: Option<String>,
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Clock {
    pub offset: Option<String>,
    pub adjustment: Option<String>,
    pub basis: Option<String>,
    pub start: Option<String>,
    pub timezone: Option<String>,
    pub timers: Vec<Timer>,
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Pm {
    pub suspend_to_mem: Option<String>,
    pub suspend_to_disk: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QemuEnv {
    pub name: String,
    pub value: Option<String>,
}

/// `<qemu:commandline>`: extra arguments and environment for QEMU.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QemuCommandline {
    pub args: Vec<String>,
    pub env: Vec<QemuEnv>,
}

/// The domain type (`<domain type=...>`), libvirt's virDomainVirtType: every hypervisor
/// libvirt knows, so that the XML of another driver parses and is refused by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum VirtType {
    /// libvirt's unset value, which the XML may still name.
    #[default]
    None,
    Qemu,
    Kqemu,
    Kvm,
    Xen,
    Lxc,
    Uml,
    Openvz,
    Test,
    Vmware,
    Hyperv,
    Vbox,
    Phyp,
    Parallels,
    Bhyve,
    Vz,
    Hvf,
}

impl VirtType {
    const ALL: [VirtType; 17] = [
        VirtType::None,
        VirtType::Qemu,
        VirtType::Kqemu,
        VirtType::Kvm,
        VirtType::Xen,
        VirtType::Lxc,
        VirtType::Uml,
        VirtType::Openvz,
        VirtType::Test,
        VirtType::Vmware,
        VirtType::Hyperv,
        VirtType::Vbox,
        VirtType::Phyp,
        VirtType::Parallels,
        VirtType::Bhyve,
        VirtType::Vz,
        VirtType::Hvf,
    ];

    /// The XML name.
    pub fn as_str(self) -> &'static str {
        match self {
            VirtType::None => "none",
            VirtType::Qemu => "qemu",
            VirtType::Kqemu => "kqemu",
            VirtType::Kvm => "kvm",
            VirtType::Xen => "xen",
            VirtType::Lxc => "lxc",
            VirtType::Uml => "uml",
            VirtType::Openvz => "openvz",
            VirtType::Test => "test",
            VirtType::Vmware => "vmware",
            VirtType::Hyperv => "hyperv",
            VirtType::Vbox => "vbox",
            VirtType::Phyp => "phyp",
            VirtType::Parallels => "parallels",
            VirtType::Bhyve => "bhyve",
            VirtType::Vz => "vz",
            VirtType::Hvf => "hvf",
        }
    }

    /// The type an XML name stands for; `None` (the Rust one) for a name libvirt does not
    /// know.
    pub fn from_name(name: &str) -> Option<VirtType> {
        Self::ALL.into_iter().find(|t| t.as_str() == name)
    }
}

impl std::fmt::Display for VirtType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A whole `<domain>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DomainDef {
    pub virt_type: VirtType,
    pub id: Option<i32>,
    pub name: String,
    pub uuid: Uuid,
    /// `Some("")` for `<genid/>` (generate one), otherwise the given UUID.
    pub genid: Option<String>,
    pub title: Option<String>,
    pub description: Option<String>,
    /// The children of `<metadata>`, as libvirt re-serializes them (libxml2 style), indented
    /// for their place in the domain document (depth 2), lines ended by '\n'. libxml2 puts
    /// the indentation before tags only, never inside text, so the text must not be indented
    /// again when formatting.
    pub metadata: Option<String>,
    /// Namespace declarations `<metadata>` is written with: those its content uses that were
    /// declared on an ancestor (libvirt keeps the node, libxml2 re-declares them on it).
    pub metadata_ns: Vec<(String, String)>,
    pub max_memory: Option<MaxMemory>,
    pub memory: Memory,
    pub current_memory: Option<u64>,
    pub blkiotune: Option<Blkiotune>,
    pub memtune: Option<Memtune>,
    pub memory_backing: Option<MemoryBacking>,
    pub vcpu: Vcpu,
    /// `<vcpus>`: per-vCPU hotplug state.
    pub vcpus: Option<Vec<VcpuInfo>>,
    pub iothreads: Option<u32>,
    /// `Some` when `<iothreadids>` is present.
    pub iothreadids: Option<Vec<IoThread>>,
    /// `<defaultiothread thread_pool_min='..' thread_pool_max='..'/>`: (min, max).
    pub defaultiothread: Option<(Option<i64>, Option<i64>)>,
    pub cputune: Option<Cputune>,
    pub numatune: Option<Numatune>,
    /// `<resource><partition>/machine</partition></resource>` and the rest of it.
    pub resource_partition: Option<String>,
    pub resource_extra: Option<Extra>,
    pub sysinfo: Vec<Sysinfo>,
    pub bootloader: Option<String>,
    pub bootloader_args: Option<String>,
    pub os: Os,
    pub idmap: Option<XmlNode>,
    pub features: Option<Features>,
    pub cpu: Option<Cpu>,
    pub clock: Option<Clock>,
    pub on_poweroff: Option<String>,
    pub on_reboot: Option<String>,
    pub on_crash: Option<String>,
    pub on_lockfailure: Option<String>,
    pub pm: Option<Pm>,
    /// `<perf><event name='..' enabled='yes|no'/></perf>`: (name, enabled).
    pub perf: Option<Vec<(String, String)>>,
    pub devices: Devices,
    pub seclabels: Vec<SecLabel>,
    /// `<keywrap>` ciphers: (name, state).
    pub keywrap: Option<Vec<(String, String)>>,
    pub launch_security: Option<LaunchSecurity>,
    pub qemu_commandline: Option<QemuCommandline>,
    pub qemu_capabilities: Option<QemuCapabilities>,
    /// `<qemu:override>`: per-device QEMU property overrides.
    pub qemu_override: Option<Vec<QemuDeviceOverride>>,
    /// `<qemu:deprecation behavior='...'/>`.
    pub qemu_deprecation: Option<String>,
    /// Top-level elements we do not model.
    pub extra: Extra,
}

fn xml_err(msg: impl Into<String>) -> DomainError {
    DomainError::Xml(format!("XML error: {}", msg.into()))
}

/// `<memory unit='..'>N</memory>`-style element into KiB.
fn scaled_elem(node: &XmlNode, rd: &Rd<'_>) -> Result<u64, DomainError> {
    let unit = rd.attr("unit");
    parse_scaled_kib(&node.text, unit.as_deref(), "KiB", MAX_MEMORY_KIB)
}

fn opt_state(rd: &Rd<'_>, name: &str, attr: &str) -> Option<Option<String>> {
    rd.child(name).map(|n| n.attr(attr).map(String::from))
}

fn parse_uuid(s: &str, what: &str) -> Result<Uuid, DomainError> {
    Uuid::parse_str(s.trim()).map_err(|_| xml_err(format!("malformed {what} element")))
}

/// The SMBIOS system UUID and the domain's must agree; without `<uuid>` the domain takes the
/// system's (libvirt: virDomainDefParseXML's sysinfo check).
fn sysinfo_uuid(d: &mut DomainDef, has_uuid: bool) -> Result<(), DomainError> {
    let sys = d
        .sysinfo
        .iter()
        .filter(|s| s.stype == "smbios")
        .flat_map(|s| s.blocks.iter())
        .filter(|(b, _)| b == "system")
        .flat_map(|(_, es)| es.iter())
        .find(|e| e.name.as_deref() == Some("uuid"))
        .map(|e| e.value.clone());
    let Some(text) = sys else {
        return Ok(());
    };
    let u =
        Uuid::parse_str(text.trim()).map_err(|_| xml_err("malformed <sysinfo> uuid element"))?;
    if !has_uuid {
        d.uuid = u;
    } else if u != d.uuid {
        return Err(DomainError::Config(
            "unsupported configuration: UUID mismatch between <uuid> and <sysinfo>".to_string(),
        ));
    }
    Ok(())
}

impl DomainDef {
    /// Parse a `<domain>` document.
    pub fn from_xml(xml: &str) -> Result<DomainDef, DomainError> {
        let root = parse_document(xml)?;
        Self::from_node(&root)
    }

    pub fn from_node(root: &XmlNode) -> Result<DomainDef, DomainError> {
        // The qemu namespace is identified by its URI; documents may bind it to any prefix.
        let prefix = root
            .attrs
            .iter()
            .find(|(k, v)| k.starts_with("xmlns:") && v == QEMU_NS)
            .map(|(k, _)| k["xmlns:".len()..].to_string());
        if let Some(p) = prefix.filter(|p| p != "qemu") {
            let mut renamed = root.clone();
            rename_prefix(&mut renamed, &format!("{p}:"));
            return Self::from_node_inner(&renamed);
        }
        Self::from_node_inner(root)
    }

    fn from_node_inner(root: &XmlNode) -> Result<DomainDef, DomainError> {
        if root.name != "domain" {
            return Err(xml_err(format!(
                "unexpected root element <{}>, expecting <domain>",
                root.name
            )));
        }
        let rd = Rd::new(root);
        let virt_type = rd
            .attr("type")
            .ok_or_else(|| xml_err("missing domain type attribute"))?;
        let mut d = DomainDef {
            // libvirt: virDomainDefParseCaps
            virt_type: VirtType::from_name(&virt_type).ok_or_else(|| {
                DomainError::Config(format!(
                    "unsupported configuration: invalid domain type {virt_type}"
                ))
            })?,
            ..Default::default()
        };
        // Namespace declarations are regenerated from content when formatting.
        for (k, _) in &root.attrs {
            if k.starts_with("xmlns") {
                rd.attr(k);
            }
        }
        if let Some(id) = rd.attr("id") {
            d.id = Some(
                id.parse()
                    .map_err(|_| xml_err(format!("invalid domain id '{id}'")))?,
            );
        }
        d.name = rd
            .child_text("name")
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| xml_err("missing domain name information"))?;
        d.uuid = match rd.child_text("uuid") {
            Some(u) => parse_uuid(&u, "uuid")?,
            None => Uuid::new_v4(),
        };
        d.genid = rd.child_text("genid").map(|s| s.trim().to_string());
        d.title = rd.child_text_nonempty("title");
        if d.title.as_deref().is_some_and(|t| t.contains('\n')) {
            return Err(xml_err("Domain title can't contain newlines"));
        }
        d.description = rd.child_text_nonempty("description");
        if let Some(m) = rd.child("metadata") {
            let mut s = String::new();
            for c in &m.children {
                c.to_libxml_string(METADATA_DEPTH, &mut s);
            }
            d.metadata = Some(s);
            d.metadata_ns = super::xml::inherited_namespaces(m, &root.attrs);
        }
        if let Some(n) = rd.child("maxMemory") {
            let mrd = Rd::new(n);
            d.max_memory = Some(MaxMemory {
                kib: scaled_elem(n, &mrd)?,
                slots: opt_uint(&mrd, "slots")?,
            });
        }
        match rd.child("memory") {
            Some(n) => {
                let mrd = Rd::new(n);
                d.memory = Memory {
                    kib: scaled_elem(n, &mrd)?,
                    dump_core: mrd.attr("dumpCore"),
                };
            }
            None => {
                if rd.node.child("numa").is_none() && rd.node.child("cpu").is_none() {
                    return Err(xml_err("missing memory element"));
                }
            }
        }
        if let Some(n) = rd.child("currentMemory") {
            d.current_memory = Some(scaled_elem(n, &Rd::new(n))?);
        }
        if let Some(b) = rd.child("blkiotune") {
            let num = |n: &XmlNode, name: &str| -> Result<Option<u64>, DomainError> {
                n.child(name)
                    .map(|c| {
                        c.text.trim().parse::<u64>().map_err(|_| {
                            xml_err(format!("invalid value '{}' for blkiotune {name}", c.text))
                        })
                    })
                    .transpose()
            };
            let small = |v: Option<u64>, name: &str| -> Result<Option<u32>, DomainError> {
                v.map(|v| {
                    u32::try_from(v)
                        .map_err(|_| xml_err(format!("invalid value '{v}' for blkiotune {name}")))
                })
                .transpose()
            };
            let mut bt = Blkiotune {
                weight: small(num(b, "weight")?, "weight")?,
                devices: Vec::new(),
            };
            for dev in b.children.iter().filter(|c| c.name == "device") {
                bt.devices.push(BlkioDevice {
                    path: dev
                        .child("path")
                        .map(|p| p.text.trim().to_string())
                        .unwrap_or_default(),
                    weight: small(num(dev, "weight")?, "weight")?,
                    read_iops_sec: num(dev, "read_iops_sec")?,
                    write_iops_sec: num(dev, "write_iops_sec")?,
                    read_bytes_sec: num(dev, "read_bytes_sec")?,
                    write_bytes_sec: num(dev, "write_bytes_sec")?,
                });
            }
            d.blkiotune = Some(bt);
        }
        if let Some(mt) = rd.child("memtune") {
            let mrd = Rd::new(mt);
            let lim = |name: &str| -> Result<Option<u64>, DomainError> {
                match mrd.child(name) {
                    Some(n) => {
                        let unit = n.attr("unit");
                        parse_scaled_kib(&n.text, unit, "KiB", MAX_MEMORY_KIB).map(Some)
                    }
                    None => Ok(None),
                }
            };
            d.memtune = Some(Memtune {
                hard_limit: lim("hard_limit")?,
                soft_limit: lim("soft_limit")?,
                min_guarantee: lim("min_guarantee")?,
                swap_hard_limit: lim("swap_hard_limit")?,
            });
        }
        d.memory_backing = rd
            .child("memoryBacking")
            .map(parse_memory_backing)
            .transpose()?;
        if let Some(n) = rd.child("vcpu") {
            let vrd = Rd::new(n);
            d.vcpu = Vcpu {
                count: parse_uint(&n.text, "vcpu", "vcpu")?,
                placement: vrd.attr("placement"),
                cpuset: vrd.attr("cpuset"),
                current: opt_uint(&vrd, "current")?,
            };
        } else {
            d.vcpu.count = 1;
        }
        if let Some(vs) = rd.child("vcpus") {
            let mut v = Vec::new();
            for c in &vs.children {
                let crd = Rd::new(c);
                v.push(VcpuInfo {
                    id: opt_uint(&crd, "id")?
                        .ok_or_else(|| xml_err("missing vcpu id in <vcpus>"))?,
                    enabled: crd.attr("enabled"),
                    hotpluggable: crd.attr("hotpluggable"),
                    order: opt_uint(&crd, "order")?,
                });
            }
            d.vcpus = Some(v);
        }
        d.iothreads = rd
            .child_text("iothreads")
            .map(|t| parse_uint(&t, "iothreads", "iothreads"))
            .transpose()?;
        if let Some(ids) = rd.child("iothreadids") {
            let mut v = Vec::new();
            for t in &ids.children {
                let trd = Rd::new(t);
                let int = |a: &str| -> Result<Option<i64>, DomainError> {
                    trd.attr(a)
                        .map(|s| {
                            s.parse::<i64>().map_err(|_| {
                                xml_err(format!("invalid value '{s}' for iothread '{a}'"))
                            })
                        })
                        .transpose()
                };
                v.push(IoThread {
                    id: opt_uint(&trd, "id")?
                        .ok_or_else(|| xml_err("Missing 'id' attribute in <iothread> element"))?,
                    thread_pool_min: int("thread_pool_min")?,
                    thread_pool_max: int("thread_pool_max")?,
                    extra: trd.extra(),
                });
            }
            d.iothreadids = Some(v);
        }
        if let Some(n) = rd.child("defaultiothread") {
            let int = |a: &str| -> Result<Option<i64>, DomainError> {
                n.attr(a)
                    .map(|s| {
                        s.parse::<i64>().map_err(|_| {
                            xml_err(format!("invalid value '{s}' for defaultiothread '{a}'"))
                        })
                    })
                    .transpose()
            };
            d.defaultiothread = Some((int("thread_pool_min")?, int("thread_pool_max")?));
        }
        if d.vcpu.placement.is_none() {
            let auto = rd
                .node
                .child("numatune")
                .and_then(|n| n.child("memory"))
                .and_then(|m| m.attr("placement"))
                == Some("auto");
            d.vcpu.placement = Some(if auto { "auto" } else { "static" }.to_string());
        }
        if d.vcpu.current == Some(d.vcpu.count) {
            d.vcpu.current = None;
        }
        // An empty `<cputune/>` tunes nothing, and libvirt writes none back.
        d.cputune = rd
            .child("cputune")
            .map(parse_cputune)
            .transpose()?
            .filter(|c| *c != Cputune::default());
        if let Some(nt) = rd.child("numatune") {
            let nrd = Rd::new(nt);
            let mut t = Numatune::default();
            if let Some(m) = nrd.child("memory") {
                t.memory = Some(NumatuneMemory {
                    mode: m.attr("mode").map(String::from),
                    nodeset: m.attr("nodeset").map(String::from),
                    placement: m.attr("placement").map(String::from),
                });
            }
            for mn in nrd.children("memnode") {
                let mrd = Rd::new(mn);
                t.memnodes.push(MemNode {
                    cellid: opt_uint(&mrd, "cellid")?.ok_or_else(|| {
                        xml_err("Missing required cellid attribute in memnode element")
                    })?,
                    mode: mrd.attr("mode"),
                    nodeset: mrd.attr("nodeset"),
                });
            }
            d.numatune = Some(t);
        }
        if let Some(r) = rd.child("resource") {
            let rrd = Rd::new(r);
            d.resource_partition = rrd.child_text("partition");
            d.resource_extra = Some(rrd.extra());
        }
        d.sysinfo = rd
            .children("sysinfo")
            .into_iter()
            .map(Sysinfo::parse)
            .collect();
        sysinfo_uuid(&mut d, rd.child("uuid").is_some())?;
        d.bootloader = rd.child_text("bootloader");
        d.bootloader_args = rd.child_text("bootloader_args");
        d.os = match rd.child("os") {
            Some(n) => parse_os(n)?,
            None => return Err(xml_err("missing <os> element")),
        };
        d.idmap = rd.child_node("idmap");
        d.features = rd.child("features").map(parse_features).transpose()?;
        d.cpu = rd.child("cpu").map(parse_cpu).transpose()?;
        // libvirt's parser fills in these defaults itself, so every formatted domain has them.
        let mut clock = rd.child("clock").map(parse_clock).unwrap_or_default();
        clock.offset.get_or_insert_with(|| "utc".to_string());
        d.clock = Some(clock);
        let action = |name: &str, default: &str| {
            Some(
                rd.child_text(name)
                    .map(|s| s.trim().to_string())
                    .unwrap_or_else(|| default.to_string()),
            )
        };
        d.on_poweroff = action("on_poweroff", "destroy");
        d.on_reboot = action("on_reboot", "restart");
        d.on_crash = action("on_crash", "destroy");
        d.on_lockfailure = rd.child_text("on_lockfailure");
        if let Some(n) = rd.child("pm") {
            let prd = Rd::new(n);
            d.pm = Some(Pm {
                suspend_to_mem: prd
                    .child("suspend-to-mem")
                    .and_then(|c| c.attr("enabled").map(String::from)),
                suspend_to_disk: prd
                    .child("suspend-to-disk")
                    .and_then(|c| c.attr("enabled").map(String::from)),
            });
        }
        d.perf = rd.child("perf").map(|p| {
            p.children
                .iter()
                .filter(|e| e.name == "event")
                .map(|e| {
                    (
                        e.attr("name").unwrap_or("").to_string(),
                        e.attr("enabled").unwrap_or("").to_string(),
                    )
                })
                .collect()
        });
        if let Some(n) = rd.child("devices") {
            d.devices = Devices::parse(n)?;
        }
        if !d.os.boot_devs.is_empty() && d.devices.has_boot_order() {
            return Err(DomainError::Config(
                "unsupported configuration: per-device boot elements cannot be used together with os/boot elements"
                    .to_string(),
            ));
        }
        d.seclabels = rd
            .children("seclabel")
            .into_iter()
            .map(SecLabel::parse)
            .collect();
        d.keywrap = rd.child("keywrap").map(|k| {
            k.children
                .iter()
                .map(|c| {
                    (
                        c.attr("name").unwrap_or("").to_string(),
                        c.attr("state").unwrap_or("").to_string(),
                    )
                })
                .collect()
        });
        if let Some(ls) = rd.child("launchSecurity") {
            let lrd = Rd::new(ls);
            d.launch_security = Some(LaunchSecurity {
                ltype: lrd.attr("type").unwrap_or_default(),
                kernel_hashes: lrd.attr("kernelHashes"),
                cbitpos: lrd.child_text("cbitpos"),
                reduced_phys_bits: lrd.child_text("reducedPhysBits"),
                policy: lrd.child_text("policy"),
                dh_cert: lrd.child_text("dhCert"),
                session: lrd.child_text("session"),
                extra: lrd.extra(),
            });
        }
        if let Some(n) = rd.child("qemu:commandline") {
            let mut cl = QemuCommandline::default();
            for c in &n.children {
                match c.name.as_str() {
                    "qemu:arg" => cl.args.push(c.attr("value").unwrap_or("").to_string()),
                    "qemu:env" => {
                        let name = c.attr("name").unwrap_or("").to_string();
                        if name.is_empty() {
                            return Err(xml_err("No qemu environment name specified"));
                        }
                        cl.env.push(QemuEnv {
                            name,
                            value: c.attr("value").map(String::from),
                        });
                    }
                    _ => {}
                }
            }
            d.qemu_commandline = Some(cl);
        }
        d.qemu_capabilities = rd.child("qemu:capabilities").map(|c| {
            let caps = |kind: &str| {
                c.children
                    .iter()
                    .filter(|e| e.name == kind)
                    .map(|e| e.attr("capability").unwrap_or("").to_string())
                    .collect()
            };
            QemuCapabilities {
                add: caps("qemu:add"),
                del: caps("qemu:del"),
            }
        });
        d.qemu_override = rd.child("qemu:override").map(|o| {
            o.children
                .iter()
                .filter(|c| c.name == "qemu:device")
                .map(|dev| QemuDeviceOverride {
                    alias: dev.attr("alias").unwrap_or("").to_string(),
                    frontend: dev.child("qemu:frontend").map(|f| {
                        f.children
                            .iter()
                            .filter(|p| p.name == "qemu:property")
                            .map(|p| QemuProperty {
                                name: p.attr("name").unwrap_or("").to_string(),
                                ptype: p.attr("type").unwrap_or("").to_string(),
                                value: p.attr("value").map(String::from),
                            })
                            .collect()
                    }),
                })
                .collect()
        });
        d.qemu_deprecation = rd
            .child("qemu:deprecation")
            .map(|n| n.attr("behavior").unwrap_or("").to_string());
        d.extra = rd.extra();
        Ok(d)
    }

    /// Format as libvirt does.
    pub fn to_xml(&self, flags: FormatFlags) -> String {
        let mut w = XmlWriter::new();
        let has_qemu_ns = self.qemu_commandline.is_some()
            || self.qemu_capabilities.is_some()
            || self.qemu_override.is_some()
            || self.qemu_deprecation.is_some();
        w.elem("domain")
            .attr("type", self.virt_type.as_str())
            .attr_opt("id", self.id.filter(|_| !flags.inactive))
            .attr_opt("xmlns:qemu", has_qemu_ns.then_some(QEMU_NS))
            .open();
        w.text_elem("name", &self.name);
        w.text_elem("uuid", &self.uuid.hyphenated().to_string());
        match self.genid.as_deref() {
            Some("") => w.elem("genid").empty(),
            Some(g) => w.text_elem("genid", g),
            None => {}
        }
        if let Some(t) = &self.title {
            w.text_elem("title", t);
        }
        if let Some(t) = &self.description {
            w.text_elem("description", t);
        }
        if let Some(m) = &self.metadata {
            if m.is_empty() {
                w.elem("metadata").empty();
            } else if self.metadata_ns.is_empty() {
                w.elem("metadata").open();
                w.raw(m);
                w.close();
            } else {
                // The declarations the content uses from `<domain>`, as libxml2 writes a
                // copied node: on the copy's root, double-quoted (libvirt copies the node).
                let mut tag = String::from("  <metadata");
                for (k, v) in &self.metadata_ns {
                    tag.push_str(&format!(" {k}=\"{}\"", super::xml::escape_attr_dq(v)));
                }
                tag.push_str(">\n");
                w.raw(&tag);
                w.raw(m);
                w.raw("  </metadata>\n");
            }
        }
        if let Some(m) = &self.max_memory {
            w.elem("maxMemory")
                .attr_opt("slots", m.slots)
                .attr("unit", "KiB")
                .text(&m.kib.to_string());
        }
        w.elem("memory")
            .attr_opt("dumpCore", self.memory.dump_core.as_ref())
            .attr("unit", "KiB")
            .text(&self.memory.kib.to_string());
        if let Some(c) = self.current_memory {
            w.elem("currentMemory")
                .attr("unit", "KiB")
                .text(&c.to_string());
        }
        let mut nodes: Vec<XmlNode> = Vec::new();
        nodes.extend(self.blkiotune.as_ref().map(|b| {
            let num = |name: &str, v: Option<u64>| v.map(|v| XmlNode::new(name).t(v));
            XmlNode::new("blkiotune")
                .co(num("weight", b.weight.map(u64::from)))
                .cs(b.devices.iter().map(|d| {
                    XmlNode::new("device")
                        .c(XmlNode::new("path").t(&d.path))
                        .co(num("weight", d.weight.map(u64::from)))
                        .co(num("read_iops_sec", d.read_iops_sec))
                        .co(num("write_iops_sec", d.write_iops_sec))
                        .co(num("read_bytes_sec", d.read_bytes_sec))
                        .co(num("write_bytes_sec", d.write_bytes_sec))
                }))
        }));
        nodes.extend(self.memtune.as_ref().map(|m| {
            let lim =
                |name: &str, v: Option<u64>| v.map(|k| XmlNode::new(name).a("unit", "KiB").t(k));
            XmlNode::new("memtune")
                .co(lim("hard_limit", m.hard_limit))
                .co(lim("soft_limit", m.soft_limit))
                .co(lim("min_guarantee", m.min_guarantee))
                .co(lim("swap_hard_limit", m.swap_hard_limit))
        }));
        nodes.extend(self.memory_backing.as_ref().map(memory_backing_node));
        nodes.push(
            XmlNode::new("vcpu")
                .ao("placement", self.vcpu.placement.as_ref())
                .ao("cpuset", self.vcpu.cpuset.as_ref())
                .ao("current", self.vcpu.current)
                .t(self.vcpu.count),
        );
        nodes.extend(self.vcpus.as_ref().map(|v| {
            XmlNode::new("vcpus").cs(v.iter().map(|c| {
                XmlNode::new("vcpu")
                    .a("id", c.id)
                    .ao("enabled", c.enabled.as_ref())
                    .ao("hotpluggable", c.hotpluggable.as_ref())
                    .ao("order", c.order)
            }))
        }));
        nodes.extend(self.iothreads.map(|n| XmlNode::new("iothreads").t(n)));
        nodes.extend(self.iothreadids.as_ref().map(|ids| {
            XmlNode::new("iothreadids").cs(ids.iter().map(|t| {
                XmlNode::new("iothread")
                    .a("id", t.id)
                    .ao("thread_pool_min", t.thread_pool_min)
                    .ao("thread_pool_max", t.thread_pool_max)
                    .extra_attrs(&t.extra)
                    .extra_children(&t.extra)
            }))
        }));
        nodes.extend(self.defaultiothread.map(|(min, max)| {
            XmlNode::new("defaultiothread")
                .ao("thread_pool_min", min)
                .ao("thread_pool_max", max)
        }));
        nodes.extend(self.cputune.as_ref().map(cputune_node));
        nodes.extend(self.numatune.as_ref().map(|nt| {
            XmlNode::new("numatune")
                .co(nt.memory.as_ref().map(|m| {
                    XmlNode::new("memory")
                        .ao("mode", m.mode.as_ref())
                        .ao("nodeset", m.nodeset.as_ref())
                        .ao("placement", m.placement.as_ref())
                }))
                .cs(nt.memnodes.iter().map(|m| {
                    XmlNode::new("memnode")
                        .a("cellid", m.cellid)
                        .ao("mode", m.mode.as_ref())
                        .ao("nodeset", m.nodeset.as_ref())
                }))
        }));
        nodes.extend(self.resource_extra.as_ref().map(|e| {
            XmlNode::new("resource")
                .extra_attrs(e)
                .co(self
                    .resource_partition
                    .as_ref()
                    .map(|p| XmlNode::new("partition").t(p)))
                .extra_children(e)
        }));
        nodes.extend(self.sysinfo.iter().map(Sysinfo::to_node));
        nodes.extend(
            self.bootloader
                .as_ref()
                .map(|b| XmlNode::new("bootloader").t(b)),
        );
        nodes.extend(
            self.bootloader_args
                .as_ref()
                .map(|b| XmlNode::new("bootloader_args").t(b)),
        );
        nodes.push(os_node(&self.os));
        nodes.extend(self.idmap.clone());
        nodes.extend(self.features.as_ref().map(features_node));
        nodes.extend(self.cpu.as_ref().map(cpu_node));
        nodes.extend(self.clock.as_ref().map(clock_node));
        for (name, v) in [
            ("on_poweroff", &self.on_poweroff),
            ("on_reboot", &self.on_reboot),
            ("on_crash", &self.on_crash),
            ("on_lockfailure", &self.on_lockfailure),
        ] {
            nodes.extend(v.as_ref().map(|v| XmlNode::new(name).t(v)));
        }
        if let Some(pm) = &self.pm {
            nodes.push(
                XmlNode::new("pm")
                    .co(pm
                        .suspend_to_mem
                        .as_ref()
                        .map(|e| XmlNode::new("suspend-to-mem").a("enabled", e)))
                    .co(pm
                        .suspend_to_disk
                        .as_ref()
                        .map(|e| XmlNode::new("suspend-to-disk").a("enabled", e))),
            );
        }
        nodes.extend(self.perf.as_ref().map(|events| {
            XmlNode::new("perf").cs(events
                .iter()
                .map(|(n, e)| XmlNode::new("event").a("name", n).a("enabled", e)))
        }));
        nodes.push(self.devices.to_node(flags));
        nodes.extend(self.seclabels.iter().map(SecLabel::to_node));
        nodes.extend(self.keywrap.as_ref().map(|k| {
            XmlNode::new("keywrap").cs(k
                .iter()
                .map(|(name, state)| XmlNode::new("cipher").a("name", name).a("state", state)))
        }));
        nodes.extend(self.launch_security.as_ref().map(|l| {
            let text = |name: &str, v: &Option<String>| v.as_ref().map(|v| XmlNode::new(name).t(v));
            XmlNode::new("launchSecurity")
                .a("type", &l.ltype)
                .ao("kernelHashes", l.kernel_hashes.as_ref())
                .extra_attrs(&l.extra)
                .co(text("cbitpos", &l.cbitpos))
                .co(text("reducedPhysBits", &l.reduced_phys_bits))
                .co(text("policy", &l.policy))
                .co(text("dhCert", &l.dh_cert))
                .co(text("session", &l.session))
                .extra_children(&l.extra)
        }));
        nodes.extend(self.extra.children.iter().cloned());
        if let Some(cl) = &self.qemu_commandline {
            nodes.push(
                XmlNode::new("qemu:commandline")
                    .cs(cl
                        .args
                        .iter()
                        .map(|a| XmlNode::new("qemu:arg").a("value", a)))
                    .cs(cl.env.iter().map(|e| {
                        XmlNode::new("qemu:env")
                            .a("name", &e.name)
                            .ao("value", e.value.as_ref())
                    })),
            );
        }
        nodes.extend(self.qemu_capabilities.as_ref().map(|c| {
            XmlNode::new("qemu:capabilities")
                .cs(c
                    .add
                    .iter()
                    .map(|n| XmlNode::new("qemu:add").a("capability", n)))
                .cs(c
                    .del
                    .iter()
                    .map(|n| XmlNode::new("qemu:del").a("capability", n)))
        }));
        nodes.extend(self.qemu_override.as_ref().map(|devs| {
            XmlNode::new("qemu:override").cs(devs.iter().map(|d| {
                XmlNode::new("qemu:device")
                    .a("alias", &d.alias)
                    .co(d.frontend.as_ref().map(|props| {
                        XmlNode::new("qemu:frontend").cs(props.iter().map(|p| {
                            XmlNode::new("qemu:property")
                                .a("name", &p.name)
                                .a("type", &p.ptype)
                                .ao("value", p.value.as_ref())
                        }))
                    }))
            }))
        }));
        nodes.extend(
            self.qemu_deprecation
                .as_ref()
                .map(|b| XmlNode::new("qemu:deprecation").a("behavior", b)),
        );
        for n in &nodes {
            n.write(&mut w);
        }
        w.close();
        w.finish()
    }
}

fn rename_prefix(n: &mut XmlNode, prefix: &str) {
    for c in &mut n.children {
        if let Some(local) = c.name.strip_prefix(prefix) {
            c.name = format!("qemu:{local}");
        }
        rename_prefix(c, prefix);
    }
}

fn parse_memory_backing(n: &XmlNode) -> Result<MemoryBacking, DomainError> {
    let rd = Rd::new(n);
    let mut mb = MemoryBacking::default();
    if let Some(h) = rd.child("hugepages") {
        let mut pages = Vec::new();
        for p in &h.children {
            let prd = Rd::new(p);
            let size = prd.attr("size").unwrap_or_default();
            let unit = prd.attr("unit");
            pages.push(HugePage {
                size_kib: parse_scaled_kib(&size, unit.as_deref(), "KiB", MAX_MEMORY_KIB)?,
                nodeset: prd.attr("nodeset"),
            });
        }
        mb.hugepages = Some(pages);
    }
    mb.nosharepages = rd.child("nosharepages").is_some();
    mb.locked = rd.child("locked").is_some();
    mb.source_type = rd
        .child("source")
        .and_then(|s| s.attr("type").map(String::from));
    mb.access_mode = rd
        .child("access")
        .and_then(|s| s.attr("mode").map(String::from));
    if let Some(a) = rd.child("allocation") {
        let ard = Rd::new(a);
        mb.allocation_mode = Some(ard.attr("mode").unwrap_or_default());
        mb.allocation_threads = opt_uint(&ard, "threads")?;
    }
    mb.discard = rd.child("discard").is_some();
    mb.extra = rd.extra();
    Ok(mb)
}

fn memory_backing_node(mb: &MemoryBacking) -> XmlNode {
    let mut n = XmlNode::new("memoryBacking");
    if let Some(pages) = &mb.hugepages {
        n = n.c(XmlNode::new("hugepages").cs(pages.iter().map(|p| {
            XmlNode::new("page")
                .a("size", p.size_kib)
                .a("unit", "KiB")
                .ao("nodeset", p.nodeset.as_ref())
        })));
    }
    if mb.nosharepages {
        n = n.c(XmlNode::new("nosharepages"));
    }
    if mb.locked {
        n = n.c(XmlNode::new("locked"));
    }
    n = n
        .co(mb
            .source_type
            .as_ref()
            .map(|t| XmlNode::new("source").a("type", t)))
        .co(mb
            .access_mode
            .as_ref()
            .map(|t| XmlNode::new("access").a("mode", t)))
        .co(mb.allocation_mode.as_ref().map(|m| {
            XmlNode::new("allocation")
                .ao("mode", Some(m).filter(|m| !m.is_empty()))
                .ao("threads", mb.allocation_threads)
        }));
    if mb.discard {
        n = n.c(XmlNode::new("discard"));
    }
    n.extra_children(&mb.extra)
}

fn parse_cputune(n: &XmlNode) -> Result<Cputune, DomainError> {
    let rd = Rd::new(n);
    let mut ct = Cputune {
        shares: rd.child_text("shares"),
        period: rd.child_text("period"),
        quota: rd.child_text("quota"),
        ..Default::default()
    };
    for p in rd.children("vcpupin") {
        let prd = Rd::new(p);
        ct.vcpupin.push(VcpuPin {
            vcpu: opt_uint(&prd, "vcpu")?.ok_or_else(|| xml_err("missing vcpu id in vcpupin"))?,
            cpuset: prd.attr("cpuset").unwrap_or_default(),
        });
    }
    ct.emulatorpin = rd
        .child("emulatorpin")
        .and_then(|e| e.attr("cpuset").map(String::from));
    ct.extra = rd.extra();
    Ok(ct)
}

fn cputune_node(ct: &Cputune) -> XmlNode {
    XmlNode::new("cputune")
        .co(ct.shares.as_ref().map(|v| XmlNode::new("shares").t(v)))
        .co(ct.period.as_ref().map(|v| XmlNode::new("period").t(v)))
        .co(ct.quota.as_ref().map(|v| XmlNode::new("quota").t(v)))
        // The other periods and quotas, kept as read, go before the pins as libvirt
        // writes them (libvirt: virDomainCputuneDefFormat).
        .cs(ct
            .extra
            .children
            .iter()
            .filter(|c| is_cputune_bw(c))
            .cloned())
        .cs(ct.vcpupin.iter().map(|p| {
            XmlNode::new("vcpupin")
                .a("vcpu", p.vcpu)
                .a("cpuset", &p.cpuset)
        }))
        .co(ct
            .emulatorpin
            .as_ref()
            .map(|c| XmlNode::new("emulatorpin").a("cpuset", c)))
        .cs(ct
            .extra
            .children
            .iter()
            .filter(|c| !is_cputune_bw(c))
            .cloned())
}

/// `<cputune>`'s period and quota elements other than the vCPUs', in libvirt's order.
pub const CPUTUNE_BW: &[&str] = &[
    "global_period",
    "global_quota",
    "emulator_period",
    "emulator_quota",
    "iothread_period",
    "iothread_quota",
];

fn is_cputune_bw(n: &XmlNode) -> bool {
    CPUTUNE_BW.contains(&n.name.as_str())
}

fn parse_os(n: &XmlNode) -> Result<Os, DomainError> {
    let rd = Rd::new(n);
    let mut os = Os {
        firmware: rd.attr("firmware"),
        ..Default::default()
    };
    if let Some(t) = rd.child("type") {
        let trd = Rd::new(t);
        os.os_type = OsType {
            arch: trd.attr("arch"),
            machine: trd.attr("machine"),
            kind: t.text.trim().to_string(),
        };
    } else {
        return Err(xml_err("an os <type> must be specified"));
    }
    if let Some(f) = rd.child("firmware") {
        os.firmware_features = Some(
            f.children
                .iter()
                .filter(|c| c.name == "feature")
                .map(|c| {
                    (
                        c.attr("name").unwrap_or("").to_string(),
                        c.attr("enabled").unwrap_or("").to_string(),
                    )
                })
                .collect(),
        );
    }
    if let Some(l) = rd.child("loader") {
        let lrd = Rd::new(l);
        os.loader = Some(Loader {
            readonly: lrd.attr("readonly"),
            secure: lrd.attr("secure"),
            ltype: lrd.attr("type"),
            stateless: lrd.attr("stateless"),
            format: lrd.attr("format"),
            path: Some(l.text.trim().to_string()).filter(|s| !s.is_empty()),
            extra: lrd.extra(),
        });
    }
    if let Some(nv) = rd.child("nvram") {
        let nrd = Rd::new(nv);
        os.nvram = Some(Nvram {
            template: nrd.attr("template"),
            ntype: nrd.attr("type"),
            format: nrd.attr("format"),
            path: Some(nv.text.trim().to_string()).filter(|s| !s.is_empty()),
            source: nrd.child("source").map(DiskSource::parse).transpose()?,
            extra: nrd.extra(),
        });
    }
    os.kernel = rd.child_text_nonempty("kernel");
    os.initrd = rd.child_text_nonempty("initrd");
    os.cmdline = rd.child_text_nonempty("cmdline");
    os.dtb = rd.child_text("dtb");
    os.acpi_tables = rd.child("acpi").map(|a| {
        a.children
            .iter()
            .filter(|t| t.name == "table")
            .map(|t| {
                (
                    t.attr("type").unwrap_or("").to_string(),
                    t.text.trim().to_string(),
                )
            })
            .collect()
    });
    for b in rd.children("boot") {
        os.boot_devs.push(b.attr("dev").unwrap_or("").to_string());
    }
    if let Some(b) = rd.child("bootmenu") {
        os.bootmenu_enable = b.attr("enable").map(String::from);
        os.bootmenu_timeout = b.attr("timeout").map(String::from);
        if let Some(t) = &os.bootmenu_timeout
            && t.parse::<u16>().is_err()
        {
            return Err(DomainError::Config(
                "unsupported configuration: invalid value for boot menu timeout, must be in range [0,65535]"
                    .to_string(),
            ));
        }
    }
    os.smbios_mode = rd
        .child("smbios")
        .and_then(|s| s.attr("mode").map(String::from));
    if let Some(b) = rd.child("bios") {
        os.bios_useserial = b.attr("useserial").map(String::from);
        os.bios_reboot_timeout = b.attr("rebootTimeout").map(String::from);
    }
    os.extra = rd.extra();
    Ok(os)
}

fn os_node(os: &Os) -> XmlNode {
    let text = |name: &str, v: &Option<String>| v.as_ref().map(|v| XmlNode::new(name).t(v));
    let mut n = XmlNode::new("os")
        .ao("firmware", os.firmware.as_ref())
        .c(XmlNode::new("type")
            .ao("arch", os.os_type.arch.as_ref())
            .ao("machine", os.os_type.machine.as_ref())
            .t(&os.os_type.kind));
    if let Some(ff) = &os.firmware_features {
        n = n.c(
            XmlNode::new("firmware").cs(ff.iter().map(|(name, enabled)| {
                XmlNode::new("feature")
                    .a("enabled", enabled)
                    .a("name", name)
            })),
        );
    }
    if let Some(l) = &os.loader {
        n = n.c(XmlNode::new("loader")
            .ao("readonly", l.readonly.as_ref())
            .ao("secure", l.secure.as_ref())
            .ao("type", l.ltype.as_ref())
            .ao("stateless", l.stateless.as_ref())
            .ao("format", l.format.as_ref())
            .extra_attrs(&l.extra)
            .t(l.path.clone().unwrap_or_default()));
    }
    if let Some(nv) = &os.nvram {
        n = n.c(XmlNode::new("nvram")
            .ao("template", nv.template.as_ref())
            .ao("type", nv.ntype.as_ref())
            .ao("format", nv.format.as_ref())
            .extra_attrs(&nv.extra)
            .co(nv.source.as_ref().map(DiskSource::to_node))
            .t(nv.path.clone().unwrap_or_default()));
    }
    n = n
        .co(text("kernel", &os.kernel))
        .co(text("initrd", &os.initrd))
        .co(text("cmdline", &os.cmdline))
        .co(text("dtb", &os.dtb))
        .co(os.acpi_tables.as_ref().map(|tables| {
            XmlNode::new("acpi").cs(tables
                .iter()
                .map(|(ty, path)| XmlNode::new("table").a("type", ty).t(path)))
        }))
        .cs(os
            .boot_devs
            .iter()
            .map(|d| XmlNode::new("boot").a("dev", d)));
    if os.bootmenu_enable.is_some() || os.bootmenu_timeout.is_some() {
        n = n.c(XmlNode::new("bootmenu")
            .ao("enable", os.bootmenu_enable.as_ref())
            .ao("timeout", os.bootmenu_timeout.as_ref()));
    }
    n.co(os
        .smbios_mode
        .as_ref()
        .map(|m| XmlNode::new("smbios").a("mode", m)))
        .co(
            if os.bios_useserial.is_some() || os.bios_reboot_timeout.is_some() {
                Some(
                    XmlNode::new("bios")
                        .ao("useserial", os.bios_useserial.as_ref())
                        .ao("rebootTimeout", os.bios_reboot_timeout.as_ref()),
                )
            } else {
                None
            },
        )
        .extra_children(&os.extra)
}

/// `<hyperv>` as libvirt stores it: mode `custom` unless named, and a switched-off
/// enlightenment keeps no parameters (libvirt reads `retries`/`value` only when it is on).
fn hyperv_defaults(mut g: FeatureGroup) -> FeatureGroup {
    g.mode.get_or_insert_with(|| "custom".to_string());
    for f in &mut g.items {
        if f.state.as_deref() != Some("on") {
            f.retries = None;
            f.value = None;
        }
    }
    g
}

fn parse_features(n: &XmlNode) -> Result<Features, DomainError> {
    let rd = Rd::new(n);
    let mut f = Features {
        acpi: rd.child("acpi").is_some(),
        apic: opt_state(&rd, "apic", "eoi"),
        pae: rd.child("pae").is_some(),
        hap: opt_state(&rd, "hap", "state"),
        pvspinlock: opt_state(&rd, "pvspinlock", "state"),
        hyperv: rd
            .child("hyperv")
            .map(FeatureGroup::parse)
            .transpose()?
            .map(hyperv_defaults),
        kvm: rd.child("kvm").map(FeatureGroup::parse).transpose()?,
        pmu: opt_state(&rd, "pmu", "state"),
        vmport: opt_state(&rd, "vmport", "state"),
        gic: opt_state(&rd, "gic", "version"),
        smm: None,
        hpt: None,
        tcg: None,
        ioapic: opt_state(&rd, "ioapic", "driver"),
        others: Vec::new(),
    };
    if let Some(n) = rd.child("smm") {
        let tseg_kib = match n.child("tseg") {
            // The tseg size defaults to MiB, unlike most sizes.
            Some(t) => Some(parse_scaled_kib(
                &t.text,
                t.attr("unit"),
                "MiB",
                MAX_MEMORY_KIB,
            )?),
            None => None,
        };
        if tseg_kib.is_some_and(|k| k % 1024 != 0) {
            return Err(DomainError::Config(
                "unsupported configuration: SMM TSEG size must be divisible by 1 MiB".to_string(),
            ));
        }
        f.smm = Some(Smm {
            // `<smm/>` turns SMM on.
            state: Some(n.attr("state").unwrap_or("on").to_string()),
            tseg_kib,
        });
    }
    if let Some(h) = rd.child("hpt") {
        let maxpagesize_kib = match h.child("maxpagesize") {
            Some(m) => Some(parse_scaled_kib(
                &m.text,
                m.attr("unit"),
                "KiB",
                MAX_MEMORY_KIB,
            )?),
            None => None,
        };
        f.hpt = Some(Hpt {
            resizing: h.attr("resizing").map(String::from),
            maxpagesize_kib,
        });
    }
    if let Some(t) = rd.child("tcg") {
        f.tcg = Some(match t.child("tb-cache") {
            Some(c) => Some(parse_scaled_kib(
                &c.text,
                c.attr("unit"),
                "KiB",
                MAX_MEMORY_KIB,
            )?),
            None => None,
        });
    }
    f.others = rd.extra().children;
    Ok(f)
}

fn features_node(f: &Features) -> XmlNode {
    let st = |name: &str, attr: &str, v: &Option<Option<String>>| {
        v.as_ref().map(|s| XmlNode::new(name).ao(attr, s.as_ref()))
    };
    let group = |name: &str, g: &Option<FeatureGroup>| g.as_ref().map(|g| g.to_node(name));
    let mut items: Vec<XmlNode> = Vec::new();
    if f.acpi {
        items.push(XmlNode::new("acpi"));
    }
    items.extend(st("apic", "eoi", &f.apic));
    if f.pae {
        items.push(XmlNode::new("pae"));
    }
    items.extend(st("hap", "state", &f.hap));
    items.extend(group("hyperv", &f.hyperv));
    items.extend(group("kvm", &f.kvm));
    items.extend(st("pvspinlock", "state", &f.pvspinlock));
    items.extend(st("pmu", "state", &f.pmu));
    items.extend(st("vmport", "state", &f.vmport));
    items.extend(st("gic", "version", &f.gic));
    items.extend(f.smm.as_ref().map(|s| {
        XmlNode::new("smm").ao("state", s.state.as_ref()).co(s
            .tseg_kib
            .map(|k| XmlNode::new("tseg").a("unit", "MiB").t(k / 1024)))
    }));
    items.extend(st("ioapic", "driver", &f.ioapic));
    items.extend(f.tcg.map(|t| {
        XmlNode::new("tcg").co(t.map(|k| XmlNode::new("tb-cache").a("unit", "KiB").t(k)))
    }));
    items.extend(f.hpt.as_ref().map(|h| {
        XmlNode::new("hpt").ao("resizing", h.resizing.as_ref()).co(h
            .maxpagesize_kib
            .map(|k| XmlNode::new("maxpagesize").a("unit", "KiB").t(k)))
    }));
    items.extend(f.others.iter().cloned());
    let rank = |n: &XmlNode| {
        FEATURE_ORDER
            .iter()
            .position(|o| *o == n.name)
            .unwrap_or(FEATURE_ORDER.len())
    };
    items.sort_by_key(rank);
    XmlNode::new("features").cs(items)
}

fn parse_cpu(n: &XmlNode) -> Result<Cpu, DomainError> {
    let rd = Rd::new(n);
    let mut cpu = Cpu {
        mode: rd.attr("mode"),
        match_: rd.attr("match"),
        check: rd.attr("check"),
        migratable: rd.attr("migratable"),
        ..Default::default()
    };
    if let Some(m) = rd.child("model") {
        cpu.model = Some(CpuModel {
            name: m.text.trim().to_string(),
            fallback: m.attr("fallback").map(String::from),
            vendor_id: m.attr("vendor_id").map(String::from),
        });
        // A host-model/passthrough CPU keeps `<model>` only for a name or vendor_id: libvirt
        // stores the fallback apart and writes the element only with a model.
        if cpu.mode.as_deref().is_some_and(|m| m != "custom")
            && cpu
                .model
                .as_ref()
                .is_some_and(|m| m.name.is_empty() && m.vendor_id.is_none())
        {
            cpu.model = None;
        }
    }
    cpu.vendor = rd.child_text("vendor");
    if let Some(t) = rd.child("topology") {
        let trd = Rd::new(t);
        let need = |a: &str| {
            opt_uint(&trd, a)?
                .ok_or_else(|| xml_err(format!("missing '{a}' attribute in CPU topology")))
        };
        cpu.topology = Some(CpuTopology {
            sockets: need("sockets")?,
            dies: opt_uint(&trd, "dies")?,
            cores: need("cores")?,
            threads: need("threads")?,
        });
    }
    if let Some(c) = rd.child("cache") {
        cpu.cache_level = c.attr("level").map(String::from);
        cpu.cache_mode = Some(c.attr("mode").unwrap_or("").to_string());
    }
    if let Some(m) = rd.child("maxphysaddr") {
        let mrd = Rd::new(m);
        cpu.maxphysaddr_mode = Some(mrd.attr("mode").unwrap_or_default());
        cpu.maxphysaddr_bits = opt_uint(&mrd, "bits")?;
    }
    for f in rd.children("feature") {
        let name = f
            .attr("name")
            .ok_or_else(|| xml_err("Invalid CPU feature name"))?;
        cpu.features.push(CpuFeature {
            policy: f.attr("policy").map(String::from),
            name: name.to_string(),
        });
    }
    if let Some(numa) = rd.child("numa") {
        let nrd = Rd::new(numa);
        for c in nrd.children("cell") {
            let crd = Rd::new(c);
            let unit = crd.attr("unit");
            let mem = crd
                .attr("memory")
                .ok_or_else(|| xml_err("Missing 'memory' attribute in NUMA cell"))?;
            let mut distances = Vec::new();
            if let Some(ds) = crd.child("distances") {
                for sib in &ds.children {
                    let srd = Rd::new(sib);
                    distances.push((
                        opt_uint(&srd, "id")?.unwrap_or(0),
                        opt_uint(&srd, "value")?.unwrap_or(0),
                    ));
                }
            }
            cpu.numa.push(NumaCell {
                distances,
                id: opt_uint(&crd, "id")?,
                cpus: crd.attr("cpus"),
                memory_kib: parse_scaled_kib(&mem, unit.as_deref(), "KiB", MAX_MEMORY_KIB)?,
                discard: crd.attr("discard"),
                mem_access: crd.attr("memAccess"),
                extra: crd.extra(),
            });
        }
        cpu.numa_extra = nrd.extra();
        // The HMAT is kept as written; its values are checked here, as libvirt parses them.
        super::hmat::Hmat::of(&cpu)?;
    }
    cpu.extra = rd.extra();
    Ok(cpu)
}

fn cpu_node(cpu: &Cpu) -> XmlNode {
    let mut n = XmlNode::new("cpu")
        .ao("mode", cpu.mode.as_ref())
        .ao("match", cpu.match_.as_ref())
        .ao("check", cpu.check.as_ref())
        .ao("migratable", cpu.migratable.as_ref())
        .extra_attrs(&cpu.extra);
    if let Some(m) = &cpu.model {
        n = n.c(XmlNode::new("model")
            .ao("fallback", m.fallback.as_ref())
            .ao("vendor_id", m.vendor_id.as_ref())
            .t(&m.name));
    }
    n = n.co(cpu.vendor.as_ref().map(|v| XmlNode::new("vendor").t(v)));
    if let Some(t) = &cpu.topology {
        n = n.c(XmlNode::new("topology")
            .a("sockets", t.sockets)
            .ao("dies", t.dies)
            .a("cores", t.cores)
            .a("threads", t.threads));
    }
    n = n
        .co(cpu.cache_mode.as_ref().map(|m| {
            XmlNode::new("cache")
                .ao("level", cpu.cache_level.as_ref())
                .a("mode", m)
        }))
        .co(cpu.maxphysaddr_mode.as_ref().map(|m| {
            XmlNode::new("maxphysaddr")
                .a("mode", m)
                .ao("bits", cpu.maxphysaddr_bits)
        }))
        .cs(cpu.features.iter().map(|f| {
            XmlNode::new("feature")
                .ao("policy", f.policy.as_ref())
                .a("name", &f.name)
        }));
    if !cpu.numa.is_empty() || !cpu.numa_extra.is_empty() {
        n = n.c(XmlNode::new("numa")
            .cs(cpu.numa.iter().map(|c| {
                XmlNode::new("cell")
                    .ao("id", c.id)
                    .ao("cpus", c.cpus.as_ref())
                    .a("memory", c.memory_kib)
                    .a("unit", "KiB")
                    .ao("discard", c.discard.as_ref())
                    .ao("memAccess", c.mem_access.as_ref())
                    .extra_attrs(&c.extra)
                    .co((!c.distances.is_empty()).then(|| {
                        XmlNode::new("distances").cs(c
                            .distances
                            .iter()
                            .map(|(id, v)| XmlNode::new("sibling").a("id", id).a("value", v)))
                    }))
                    .extra_children(&c.extra)
            }))
            .extra_children(&cpu.numa_extra));
    }
    n.extra_children(&cpu.extra)
}

fn parse_clock(n: &XmlNode) -> Clock {
    let rd = Rd::new(n);
    let mut c = Clock {
        offset: rd.attr("offset"),
        adjustment: rd.attr("adjustment"),
        // A variable clock counts from UTC unless said (libvirt writes the basis down).
        basis: rd.attr("basis").or_else(|| {
            (rd.attr("offset").as_deref() == Some("variable")).then(|| "utc".to_string())
        }),
        start: rd.attr("start"),
        timezone: rd.attr("timezone"),
        ..Default::default()
    };
    for t in rd.children("timer") {
        let trd = Rd::new(t);
        c.timers.push(Timer {
            name: trd.attr("name").unwrap_or_default(),
            present: trd.attr("present"),
            tickpolicy: trd.attr("tickpolicy"),
            track: trd.attr("track"),
            frequency: trd.attr("frequency"),
            mode: trd.attr("mode"),
            extra: trd.extra(),
        });
    }
    c.extra = rd.extra();
    c
}

fn clock_node(c: &Clock) -> XmlNode {
    XmlNode::new("clock")
        .ao("offset", c.offset.as_ref())
        .ao("adjustment", c.adjustment.as_ref())
        .ao("basis", c.basis.as_ref())
        .ao("start", c.start.as_ref())
        .ao("timezone", c.timezone.as_ref())
        .extra_attrs(&c.extra)
        .cs(c.timers.iter().map(|t| {
            XmlNode::new("timer")
                .a("name", &t.name)
                .ao("present", t.present.as_ref())
                .ao("tickpolicy", t.tickpolicy.as_ref())
                .ao("track", t.track.as_ref())
                .ao("frequency", t.frequency.as_ref())
                .ao("mode", t.mode.as_ref())
                .extra_attrs(&t.extra)
                .extra_children(&t.extra)
        }))
        .extra_children(&c.extra)
}
