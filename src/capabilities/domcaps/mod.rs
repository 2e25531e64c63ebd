//! Domain capabilities (`virsh domcapabilities`): what a guest of one emulator, architecture,
//! machine type and virtualization type can be given, in libvirt's `<domainCapabilities>`
//! format.
//!
//! [`resolve`] turns the caller's optional choices into a concrete (arch, virt type, machine)
//! the way libvirt does, with libvirt's errors; [`build`] is a pure function of the emulator's
//! caps, that choice and a few host facts ([`HostFacts`]); [`DomainCaps::to_xml`] writes it.

pub mod firmware;
pub mod x86;
mod x86_models;

use crate::capabilities::qemu::{Accel, AccelCaps, CpuPropValue, CpuUsable, QemuCaps, SgxCaps};
use crate::xmlfmt::XmlWriter;

/// Errors in libvirt's words (as virsh prints them after `error: `).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomCapsError {
    #[error("invalid argument: unknown virttype: {0}")]
    UnknownVirtType(String),
    #[error("invalid argument: unknown architecture: {0}")]
    UnknownArch(String),
    #[error("invalid argument: unable to find any emulator to serve '{0}' architecture")]
    NoEmulator(String),
    #[error(
        "invalid argument: architecture from emulator '{emulator_arch}' doesn't match given architecture '{arch}'"
    )]
    ArchMismatch { emulator_arch: String, arch: String },
    #[error("invalid argument: KVM is not supported by '{0}' on this host")]
    KvmUnsupported(String),
    #[error("invalid argument: HVF is not supported by '{0}' on this host")]
    HvfUnsupported(String),
    #[error("invalid argument: the machine '{machine}' is not supported by emulator '{emulator}'")]
    MachineUnsupported { machine: String, emulator: String },
    #[error("Cannot check QEMU binary {path}: {reason}")]
    CannotCheck { path: String, reason: String },
    #[error("internal error: Failed to start QEMU binary {path} for probing: {reason}")]
    ProbeFailed { path: String, reason: String },
}

/// libvirt's virtualization types (`virDomainVirtType`), all of which it accepts as input.
use crate::domain::validate::vocab::VIRT_TYPES;

/// Check a virt type name as libvirt does before anything else.
pub fn check_virttype(v: &str) -> Result<(), DomCapsError> {
    if VIRT_TYPES.contains(&v) {
        Ok(())
    } else {
        Err(DomCapsError::UnknownVirtType(v.to_string()))
    }
}

/// Check an architecture name.
pub fn check_arch(a: &str) -> Result<(), DomCapsError> {
    if crate::capabilities::qemu::wordsize(a).is_some() {
        Ok(())
    } else {
        Err(DomCapsError::UnknownArch(a.to_string()))
    }
}

/// The emulator binary libvirt looks for when none is named: `qemu-system-<target>`, or for a
/// 32-bit guest of a 64-bit family the 64-bit binary.
pub fn emulator_names(arch: &str) -> Vec<String> {
    let mut v = vec![format!(
        "qemu-system-{}",
        crate::capabilities::qemu::arch_to_qemu(arch)
    )];
    match arch {
        "i686" => v.push("qemu-system-x86_64".into()),
        "armv6l" | "armv7l" => v.push("qemu-system-aarch64".into()),
        "ppc64le" => v.push("qemu-system-ppc64".into()),
        _ => {}
    }
    v
}

/// What the caller's choices come to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub arch: String,
    /// libvirt's name (`kvm`, `qemu`, `hvf`, ...).
    pub virttype: String,
    pub accel: Accel,
    /// Canonical machine type; `None` only when the emulator has no machine types at all.
    pub machine: Option<String>,
}

/// Arch pairs one emulator serves both of.
fn arch_compatible(requested: &str, emulator: &str) -> bool {
    requested == emulator
        || matches!(
            (requested, emulator),
            ("x86_64", "i686")
                | ("i686", "x86_64")
                | ("armv7l", "aarch64")
                | ("aarch64", "armv7l")
                | ("ppc64", "ppc64le")
                | ("ppc64le", "ppc64")
        )
}

/// The accelerator caps a virt type uses (anything but KVM and HVF runs under TCG).
pub fn accel_for(virttype: &str) -> Accel {
    match virttype {
        "kvm" => Accel::Kvm,
        "hvf" => Accel::Hvf,
        _ => Accel::Tcg,
    }
}

/// The virt type an emulator offers by default: KVM when it was probed with KVM working, else
/// HVF, else plain QEMU.
pub fn default_virttype(caps: &QemuCaps) -> &'static str {
    if caps.kvm && caps.accel(Accel::Kvm).is_some() {
        "kvm"
    } else if caps.accel(Accel::Hvf).is_some() {
        "hvf"
    } else {
        "qemu"
    }
}

/// Settle arch, virt type and machine for `caps` (the emulator at `emulator`). `arch` is the
/// requested one or the host's; `virttype` and `machine` are the caller's, if given.
pub fn resolve(
    caps: &QemuCaps,
    emulator: &str,
    arch: &str,
    virttype: Option<&str>,
    machine: Option<&str>,
) -> Result<Resolved, DomCapsError> {
    resolve_with(caps, emulator, arch, virttype, machine, false)
}

/// [`resolve`], optionally (`forced`) taking the virt type as given even when the emulator was
/// probed without it, as libvirt's own tests do (a virt type without caps of its own then uses
/// the TCG ones).
pub fn resolve_with(
    caps: &QemuCaps,
    emulator: &str,
    arch: &str,
    virttype: Option<&str>,
    machine: Option<&str>,
    forced: bool,
) -> Result<Resolved, DomCapsError> {
    if let Some(v) = virttype {
        check_virttype(v)?;
    }
    check_arch(arch)?;
    if !arch_compatible(arch, &caps.arch) {
        return Err(DomCapsError::ArchMismatch {
            emulator_arch: caps.arch.clone(),
            arch: arch.to_string(),
        });
    }
    let offered = default_virttype(caps);
    let virttype = match virttype {
        None | Some("none") => offered,
        Some(v) => v,
    };
    if !forced && virttype == "kvm" && offered != "kvm" {
        return Err(DomCapsError::KvmUnsupported(emulator.to_string()));
    }
    if !forced && virttype == "hvf" && offered != "hvf" {
        return Err(DomCapsError::HvfUnsupported(emulator.to_string()));
    }
    let mut accel = accel_for(virttype);
    if caps.accel(accel).is_none() {
        accel = Accel::Tcg;
    }
    let machines = caps
        .accel(accel)
        .map(|a| a.machines.as_slice())
        .unwrap_or(&[]);
    let machine = match machine {
        Some(m) => {
            let canonical = machines
                .iter()
                .find(|x| x.alias.as_deref() == Some(m))
                .map(|x| x.name.as_str())
                .unwrap_or(m);
            if !machines.iter().any(|x| x.name == canonical) {
                return Err(DomCapsError::MachineUnsupported {
                    machine: canonical.to_string(),
                    emulator: emulator.to_string(),
                });
            }
            Some(canonical.to_string())
        }
        None => machines.first().map(|m| m.name.clone()),
    };
    Ok(Resolved {
        arch: arch.to_string(),
        virttype: virttype.to_string(),
        accel,
        machine,
    })
}

/// Facts about the host (or, in conformance runs, libvirt's test fixtures) that domain
/// capabilities depend on besides the emulator.
#[derive(Debug, Clone, Default)]
pub struct HostFacts {
    /// libvirt name of the host architecture.
    pub arch: String,
    /// What KVM allows per guest (`KVM_CAP_MAX_VCPUS`); `None` when unknown (no clamp).
    pub kvm_max_vcpus: Option<u32>,
    /// TPM versions swtpm offers ("1.2", "2.0"); `None` when there is no usable swtpm.
    pub tpm_versions: Option<Vec<String>>,
    /// VFIO device assignment works (IOMMU groups and /dev/vfio/vfio).
    pub vfio: bool,
    /// Report the VFIO PCI backend whatever the emulator says (libvirt's tests do).
    pub force_vfio_backend: bool,
    /// SEV ASID range from CPUID 0x8000001F: (ECX = highest ASID, EDX = lowest SEV-only ASID).
    pub sev_asids: Option<(u32, u32)>,
    /// The kernel can run protected (secure execution) guests.
    pub secure_guest: bool,
    /// The host CPU model for architectures where libvirt describes host-model by the host's
    /// own CPU rather than QEMU's expansion (e.g. ppc64).
    pub host_cpu_model: Option<String>,
    /// Firmware descriptors, highest precedence first merged ([`firmware::load`]).
    pub firmware: Vec<firmware::Descriptor>,
    /// Loader paths to report instead of the descriptors' executables that exist.
    pub loader_values: Option<Vec<String>>,
}

/// A reported enumeration: `<enum name='..'>` with its values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enum {
    pub name: &'static str,
    pub values: Vec<String>,
}

fn en(name: &'static str, values: &[&str]) -> Enum {
    Enum {
        name,
        values: values.iter().map(|s| s.to_string()).collect(),
    }
}

/// A device (or memoryBacking) entry: supported or not, and its enums.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub name: &'static str,
    pub supported: bool,
    pub enums: Vec<Enum>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loader {
    pub values: Vec<String>,
    pub types: Vec<String>,
    pub readonly: Vec<String>,
    pub secure: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostModel {
    pub model: String,
    /// `forbid` when QEMU described the CPU, `allow` when it came from the host.
    pub fallback: &'static str,
    pub vendor: Option<String>,
    /// (name, `require` | `disable`).
    pub features: Vec<(String, &'static str)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomModel {
    pub name: String,
    pub usable: CpuUsable,
    pub deprecated: bool,
    pub vendor: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CpuCaps {
    /// `Some(hostPassthroughMigratable values)` when supported.
    pub host_passthrough: Option<Vec<String>>,
    /// `Some(maximumMigratable values)` when supported.
    pub maximum: Option<Vec<String>>,
    pub host_model: Option<HostModel>,
    /// `None` when the mode is unsupported.
    pub custom: Option<Vec<CustomModel>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SevDomCaps {
    pub cbitpos: u32,
    pub reduced_phys_bits: u32,
    pub max_guests: u32,
    pub max_es_guests: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Features {
    /// Supported GIC versions; `None`/empty: unsupported.
    pub gic: Vec<u32>,
    pub vmcoreinfo: bool,
    pub genid: bool,
    pub backing_store_input: bool,
    pub backup: bool,
    /// Reported for s390 only.
    pub s390_pv: Option<bool>,
    pub sev: Option<SevDomCaps>,
    pub sgx: Option<SgxCaps>,
    /// Hyper-V enlightenments; `None`: not reported at all.
    pub hyperv: Option<Vec<String>>,
}

/// The domain capabilities document, as data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainCaps {
    pub path: String,
    pub domain: String,
    pub machine: Option<String>,
    pub arch: String,
    pub max_vcpus: Option<u32>,
    pub iothreads: bool,
    pub firmware: Vec<String>,
    pub loader: Loader,
    pub cpu: CpuCaps,
    pub memory_backing: Device,
    pub devices: Vec<Device>,
    pub features: Features,
}

fn is_x86(arch: &str) -> bool {
    matches!(arch, "x86_64" | "i686")
}

fn is_ppc64(arch: &str) -> bool {
    matches!(arch, "ppc64" | "ppc64le")
}

/// Whether a guest of `guest` arch runs natively (with hardware acceleration) on `host`.
pub fn guest_is_native(host: &str, guest: &str) -> bool {
    host == guest
        || (host == "x86_64" && guest == "i686")
        || (host == "aarch64" && guest == "armv7l")
        || (is_ppc64(host) && is_ppc64(guest))
}

fn is_i440fx(machine: &str, arch: &str) -> bool {
    is_x86(arch)
        && (machine == "pc"
            || machine.starts_with("pc-0.")
            || machine.starts_with("pc-1.")
            || machine.starts_with("pc-i440fx-")
            || machine.starts_with("rhel"))
}

fn is_pseries(machine: &str, arch: &str) -> bool {
    is_ppc64(arch) && (machine == "pseries" || machine.starts_with("pseries-"))
}

fn is_arm_virt(machine: &str, arch: &str) -> bool {
    matches!(arch, "aarch64" | "armv7l" | "armv6l")
        && (machine == "virt" || machine.starts_with("virt-"))
}

/// Build the domain capabilities of `caps` for the settled choice `r` on a host described by
/// `host`. `path` is the emulator path reported.
pub fn build(caps: &QemuCaps, path: &str, r: &Resolved, host: &HostFacts) -> DomainCaps {
    let flag = |f: &str| caps.has_flag(f);
    let empty = AccelCaps {
        accel: r.accel,
        host_cpu: None,
        cpus: None,
        machines: Vec::new(),
    };
    let accel = caps.accel(r.accel).unwrap_or(&empty);
    let machine = r.machine.as_deref().unwrap_or("");
    let arch = r.arch.as_str();

    // The virt type's own machine list, even when its caps were borrowed from TCG.
    let mut max_vcpus = caps
        .accel(accel_for(&r.virttype))
        .map(|a| a.machines.as_slice())
        .unwrap_or(&[])
        .iter()
        .find(|m| m.name == machine)
        .map(|m| m.max_cpus)
        .unwrap_or(0);
    if r.virttype == "kvm"
        && let Some(k) = host.kvm_max_vcpus
    {
        max_vcpus = max_vcpus.min(k);
    }

    // OS and firmware.
    let fw = firmware::supported(&host.firmware, machine, arch);
    let mut firmware = Vec::new();
    if fw.bios {
        firmware.push("bios".to_string());
    }
    if fw.efi {
        firmware.push("efi".to_string());
    }
    let loader_values = match &host.loader_values {
        Some(v) => v.clone(),
        None => fw
            .executables
            .iter()
            .filter(|p| std::path::Path::new(p).exists())
            .cloned()
            .collect(),
    };
    let loader = Loader {
        values: loader_values,
        types: vec!["rom".into(), "pflash".into()],
        readonly: vec!["yes".into(), "no".into()],
        secure: if fw.secure {
            vec!["yes".into(), "no".into()]
        } else {
            vec!["no".into()]
        },
    };

    let cpu = cpu_caps(caps, accel, r, host);

    let mut mem = vec!["file", "anonymous"];
    if flag("memory-backend-memfd") {
        mem.push("memfd");
    }
    let memory_backing = Device {
        name: "memoryBacking",
        supported: true,
        enums: vec![en("sourceType", &mem)],
    };

    let transitional = flag("virtio-pci-non-transitional");
    let virtio_models: &[&str] = if transitional {
        &["virtio", "virtio-transitional", "virtio-non-transitional"]
    } else {
        &["virtio"]
    };

    // disk
    let pseries = is_pseries(machine, arch);
    let mut disk_dev = vec!["disk", "cdrom"];
    if !pseries {
        disk_dev.push("floppy");
    }
    disk_dev.push("lun");
    let mut bus = Vec::new();
    if is_i440fx(machine, arch) || matches!(machine, "malta" | "sun4u" | "g3beige") {
        bus.push("ide");
    }
    if !pseries {
        bus.push("fdc");
    }
    bus.extend(["scsi", "virtio"]);
    if flag("usb-storage") {
        bus.push("usb");
    }
    if flag("ich9-ahci") {
        bus.push("sata");
    }
    let disk = Device {
        name: "disk",
        supported: true,
        enums: vec![
            en("diskDevice", &disk_dev),
            en("bus", &bus),
            en("model", virtio_models),
        ],
    };

    let mut gtypes = Vec::new();
    for (f, v) in [
        ("sdl", "sdl"),
        ("vnc", "vnc"),
        ("spice", "spice"),
        ("egl-headless", "egl-headless"),
        ("display-dbus", "dbus"),
    ] {
        if flag(f) {
            gtypes.push(v);
        }
    }
    let graphics = Device {
        name: "graphics",
        supported: true,
        enums: vec![en("type", &gtypes)],
    };

    let mut vtypes = Vec::new();
    for (f, v) in [
        ("VGA", "vga"),
        ("cirrus-vga", "cirrus"),
        ("vmware-svga", "vmvga"),
        ("qxl", "qxl"),
        ("virtio-gpu", "virtio"),
        ("", "none"),
        ("bochs-display", "bochs"),
        ("ramfb", "ramfb"),
    ] {
        if f.is_empty() || flag(f) {
            vtypes.push(v);
        }
    }
    let video = Device {
        name: "video",
        supported: true,
        enums: vec![en("modelType", &vtypes)],
    };

    let mut subsys = Vec::new();
    if flag("usb-hub") || flag("qemu-xhci") || flag("piix3-usb-uhci") || flag("usb-storage") {
        subsys.push("usb");
    }
    subsys.extend(["pci", "scsi"]);
    let pci_backend: &[&str] = if host.force_vfio_backend || (host.vfio && flag("vfio-pci")) {
        &["default", "vfio"]
    } else {
        &[]
    };
    let hostdev = Device {
        name: "hostdev",
        supported: true,
        enums: vec![
            en("mode", &["subsystem"]),
            en(
                "startupPolicy",
                &["default", "mandatory", "requisite", "optional"],
            ),
            en("subsysType", &subsys),
            en("capsType", &[]),
            en("pciBackend", pci_backend),
        ],
    };

    let rng_models: &[&str] = if flag("virtio-rng") {
        virtio_models
    } else {
        &[]
    };
    let mut rng_back = Vec::new();
    for (f, v) in [
        ("rng-random", "random"),
        ("rng-egd", "egd"),
        ("rng-builtin", "builtin"),
    ] {
        if flag(f) {
            rng_back.push(v);
        }
    }
    let rng = Device {
        name: "rng",
        supported: true,
        enums: vec![en("model", rng_models), en("backendModel", &rng_back)],
    };

    let mut fs = vec!["path", "handle"];
    if flag("vhost-user-fs") {
        fs.push("virtiofs");
    }
    let filesystem = Device {
        name: "filesystem",
        supported: true,
        enums: vec![en("driverType", &fs)],
    };

    let tpm = tpm_caps(caps, host);

    let redirdev = Device {
        name: "redirdev",
        supported: flag("usb-redir"),
        enums: vec![en("bus", &["usb"])],
    };

    let mut chan = vec!["pty", "unix"];
    if flag("spice") {
        chan.push("spicevmc");
    }
    let channel = Device {
        name: "channel",
        supported: true,
        enums: vec![en("type", &chan)],
    };

    let features = Features {
        gic: if is_arm_virt(machine, arch) {
            caps.gic
                .iter()
                .filter(|g| match r.virttype.as_str() {
                    "kvm" => g.kernel,
                    "qemu" => g.emulated,
                    _ => true,
                })
                .map(|g| g.version)
                .collect()
        } else {
            Vec::new()
        },
        vmcoreinfo: flag("vmcoreinfo"),
        genid: flag("vmgenid"),
        backing_store_input: true,
        backup: flag("incremental-backup"),
        s390_pv: matches!(caps.arch.as_str(), "s390x" | "s390").then(|| {
            flag("confidential-guest-support") && flag("s390-pv-guest") && host.secure_guest
        }),
        sev: caps.sev.as_ref().map(|s| {
            let (max_guests, max_es_guests) = match host.sev_asids {
                Some((max, min)) if max != 0 && min != 0 && max >= min => (max - min + 1, min - 1),
                _ => (0, 0),
            };
            SevDomCaps {
                cbitpos: s.cbitpos,
                reduced_phys_bits: s.reduced_phys_bits,
                max_guests,
                max_es_guests,
            }
        }),
        sgx: caps.sgx.clone(),
        hyperv: caps.hyperv.clone(),
    };

    DomainCaps {
        path: path.to_string(),
        domain: r.virttype.clone(),
        machine: r.machine.clone(),
        arch: r.arch.clone(),
        max_vcpus: (max_vcpus > 0).then_some(max_vcpus),
        iothreads: flag("iothread"),
        firmware,
        loader,
        cpu,
        memory_backing,
        devices: vec![
            disk, graphics, video, hostdev, rng, filesystem, tpm, redirdev, channel,
        ],
        features,
    }
}

fn tpm_caps(caps: &QemuCaps, host: &HostFacts) -> Device {
    let unsupported = Device {
        name: "tpm",
        supported: false,
        enums: Vec::new(),
    };
    let Some(versions) = &host.tpm_versions else {
        return unsupported;
    };
    let mut models = Vec::new();
    for (f, v) in [
        ("tpm-tis", "tpm-tis"),
        ("tpm-crb", "tpm-crb"),
        ("tpm-spapr", "tpm-spapr"),
        ("spapr-tpm-proxy", "spapr-tpm-proxy"),
    ] {
        if caps.has_flag(f) {
            models.push(v);
        }
    }
    // Without a frontend no guest could use a TPM.
    if models.is_empty() {
        return unsupported;
    }
    let mut back = Vec::new();
    if caps.has_flag("tpm-passthrough") {
        back.push("passthrough");
    }
    if caps.has_flag("tpm-emulator") {
        back.extend(["emulator", "external"]);
    }
    let vers: Vec<&str> = ["1.2", "2.0"]
        .into_iter()
        .filter(|v| versions.iter().any(|x| x == v))
        .collect();
    Device {
        name: "tpm",
        supported: true,
        enums: vec![
            en("model", &models),
            en("backendModel", &back),
            en("backendVersion", &vers),
        ],
    }
}

fn cpu_caps(caps: &QemuCaps, accel: &AccelCaps, r: &Resolved, host: &HostFacts) -> CpuCaps {
    let machine = r.machine.as_deref().unwrap_or("");
    let arch = caps.arch.as_str();
    let native = guest_is_native(&host.arch, arch);
    // s390 KVM guests of the old s390-virtio machines can have no CPU model but the host's.
    let old_s390 =
        arch.starts_with("s390") && r.virttype == "kvm" && machine.starts_with("s390-virtio");

    let host_passthrough = (matches!(r.virttype.as_str(), "kvm" | "hvf") && native).then(|| {
        let mut v = Vec::new();
        if caps.has_flag("cpu.migratable") {
            v.push("on".to_string());
        }
        v.push("off".to_string());
        v
    });
    let maximum =
        (!old_s390 && caps.has_flag("cpu-max")).then(|| vec!["on".to_string(), "off".to_string()]);

    let host_model = if old_s390 || !native {
        None
    } else if is_x86(arch) {
        accel.host_cpu.as_ref().and_then(|h| {
            let d = x86::decode_host(
                h,
                accel.cpus.as_deref().unwrap_or(&[]),
                !caps.has_flag("cpu-unavailable-features"),
            )?;
            Some(HostModel {
                model: d.model,
                fallback: "forbid",
                vendor: d.vendor,
                features: d.features,
            })
        })
    } else if arch.starts_with("s390") {
        accel.host_cpu.as_ref().map(|h| HostModel {
            model: h.model.clone(),
            fallback: "forbid",
            vendor: None,
            features: h
                .props
                .iter()
                .filter_map(|p| match p.value {
                    CpuPropValue::Boolean(b) => {
                        Some((p.name.clone(), if b { "require" } else { "disable" }))
                    }
                    _ => None,
                })
                .collect(),
        })
    } else {
        host.host_cpu_model.as_ref().map(|m| HostModel {
            model: m.clone(),
            fallback: "allow",
            vendor: None,
            features: Vec::new(),
        })
    };

    let custom = if old_s390 {
        None
    } else {
        accel.cpus.as_ref().filter(|c| !c.is_empty()).map(|cpus| {
            cpus.iter()
                .filter(|c| c.name != "host")
                .filter(|c| {
                    if is_x86(arch) {
                        x86::is_known_model(&c.name)
                    } else if is_ppc64(arch) {
                        PPC64_MODELS.iter().any(|(n, _)| *n == c.name)
                    } else {
                        true
                    }
                })
                .map(|c| CustomModel {
                    name: c.name.clone(),
                    usable: c.usable,
                    deprecated: c.deprecated,
                    vendor: if is_x86(arch) {
                        x86::model_vendor(&c.name).map(str::to_string)
                    } else if is_ppc64(arch) {
                        PPC64_MODELS
                            .iter()
                            .find(|(n, _)| *n == c.name)
                            .map(|(_, v)| v.to_string())
                    } else {
                        None
                    },
                })
                .collect()
        })
    };

    CpuCaps {
        host_passthrough,
        maximum,
        host_model,
        custom,
    }
}

/// The ppc64 models libvirt describes guests with, and their vendors.
const PPC64_MODELS: &[(&str, &str)] = &[
    ("POWER6", "IBM"),
    ("POWER7", "IBM"),
    ("POWER8", "IBM"),
    ("POWER9", "IBM"),
    ("POWER10", "IBM"),
    ("POWERPC_e5500", "Freescale"),
    ("POWERPC_e6500", "Freescale"),
];

fn write_enum(w: &mut XmlWriter, e: &Enum) {
    let el = w.elem("enum").attr("name", e.name);
    if e.values.is_empty() {
        el.empty();
        return;
    }
    el.open();
    for v in &e.values {
        w.text_elem("value", v);
    }
    w.close();
}

fn write_enum_values(w: &mut XmlWriter, name: &'static str, values: &[String]) {
    write_enum(
        w,
        &Enum {
            name,
            values: values.to_vec(),
        },
    );
}

fn write_device(w: &mut XmlWriter, d: &Device) {
    if !d.supported {
        w.elem(d.name).attr("supported", "no").empty();
        return;
    }
    w.elem(d.name).attr("supported", "yes").open();
    for e in &d.enums {
        write_enum(w, e);
    }
    w.close();
}

fn write_flag(w: &mut XmlWriter, name: &str, on: bool) {
    w.elem(name)
        .attr("supported", if on { "yes" } else { "no" })
        .empty();
}

impl DomainCaps {
    /// The `<domainCapabilities>` document, formatted as libvirt does.
    pub fn to_xml(&self) -> String {
        let mut w = XmlWriter::new();
        w.elem("domainCapabilities").open();
        w.text_elem("path", &self.path);
        w.text_elem("domain", &self.domain);
        if let Some(m) = &self.machine {
            w.text_elem("machine", m);
        }
        w.text_elem("arch", &self.arch);
        if let Some(v) = self.max_vcpus {
            w.elem("vcpu").attr("max", v).empty();
        }
        write_flag(&mut w, "iothreads", self.iothreads);

        w.elem("os").attr("supported", "yes").open();
        write_enum_values(&mut w, "firmware", &self.firmware);
        w.elem("loader").attr("supported", "yes").open();
        for v in &self.loader.values {
            w.text_elem("value", v);
        }
        write_enum_values(&mut w, "type", &self.loader.types);
        write_enum_values(&mut w, "readonly", &self.loader.readonly);
        write_enum_values(&mut w, "secure", &self.loader.secure);
        w.close();
        w.close();

        self.write_cpu(&mut w);
        write_device(&mut w, &self.memory_backing);
        w.elem("devices").open();
        for d in &self.devices {
            write_device(&mut w, d);
        }
        w.close();
        self.write_features(&mut w);
        w.close();
        w.finish()
    }

    fn write_cpu(&self, w: &mut XmlWriter) {
        let c = &self.cpu;
        w.elem("cpu").open();
        for (mode, en_name, vals) in [
            (
                "host-passthrough",
                "hostPassthroughMigratable",
                &c.host_passthrough,
            ),
            ("maximum", "maximumMigratable", &c.maximum),
        ] {
            match vals {
                Some(v) => {
                    w.elem("mode")
                        .attr("name", mode)
                        .attr("supported", "yes")
                        .open();
                    write_enum_values(w, en_name, v);
                    w.close();
                }
                None => w
                    .elem("mode")
                    .attr("name", mode)
                    .attr("supported", "no")
                    .empty(),
            }
        }
        match &c.host_model {
            Some(h) => {
                w.elem("mode")
                    .attr("name", "host-model")
                    .attr("supported", "yes")
                    .open();
                w.elem("model").attr("fallback", h.fallback).text(&h.model);
                if let Some(v) = &h.vendor {
                    w.text_elem("vendor", v);
                }
                for (name, policy) in &h.features {
                    w.elem("feature")
                        .attr("policy", policy)
                        .attr("name", name)
                        .empty();
                }
                w.close();
            }
            None => w
                .elem("mode")
                .attr("name", "host-model")
                .attr("supported", "no")
                .empty(),
        }
        match &c.custom {
            Some(models) if !models.is_empty() => {
                w.elem("mode")
                    .attr("name", "custom")
                    .attr("supported", "yes")
                    .open();
                for m in models {
                    w.elem("model")
                        .attr("usable", m.usable.as_str())
                        .attr_opt("deprecated", m.deprecated.then_some("yes"))
                        .attr("vendor", m.vendor.as_deref().unwrap_or("unknown"))
                        .text(&m.name);
                }
                w.close();
            }
            _ => w
                .elem("mode")
                .attr("name", "custom")
                .attr("supported", "no")
                .empty(),
        }
        w.close();
    }

    fn write_features(&self, w: &mut XmlWriter) {
        let f = &self.features;
        w.elem("features").open();
        if f.gic.is_empty() {
            write_flag(w, "gic", false);
        } else {
            w.elem("gic").attr("supported", "yes").open();
            let v: Vec<String> = f.gic.iter().map(|g| g.to_string()).collect();
            write_enum_values(w, "version", &v);
            w.close();
        }
        write_flag(w, "vmcoreinfo", f.vmcoreinfo);
        write_flag(w, "genid", f.genid);
        write_flag(w, "backingStoreInput", f.backing_store_input);
        write_flag(w, "backup", f.backup);
        if let Some(pv) = f.s390_pv {
            write_flag(w, "s390-pv", pv);
        }
        match &f.sev {
            Some(s) => {
                w.elem("sev").attr("supported", "yes").open();
                w.text_elem("cbitpos", &s.cbitpos.to_string());
                w.text_elem("reducedPhysBits", &s.reduced_phys_bits.to_string());
                w.text_elem("maxGuests", &s.max_guests.to_string());
                w.text_elem("maxESGuests", &s.max_es_guests.to_string());
                w.close();
            }
            None => write_flag(w, "sev", false),
        }
        match &f.sgx {
            Some(s) => s.format(w),
            None => write_flag(w, "sgx", false),
        }
        if let Some(h) = &f.hyperv {
            w.elem("hyperv").attr("supported", "yes").open();
            write_enum_values(w, "features", h);
            w.close();
        }
        w.close();
    }
}

/// The facts libvirt's own domain capabilities tests run with (its `domaincapstest`): fixed
/// loader paths, VFIO forced on, SEV ASIDs from a fake CPUID, secure guests possible, a
/// POWER8 host for ppc64, TPM versions by QEMU generation, and the firmware descriptors of its
/// `qemufirmwaredata` tree.
pub fn libvirt_test_facts(
    arch: &str,
    version: &str,
    firmware: Vec<firmware::Descriptor>,
) -> HostFacts {
    // By the QEMU generation the case is named for (its recording may be of a snapshot).
    let tpm: &[&str] = if ["3.", "4.", "5."].iter().any(|p| version.starts_with(p)) {
        &["1.2"]
    } else if version.starts_with("6.") {
        &["1.2", "2.0"]
    } else {
        &["2.0"]
    };
    HostFacts {
        arch: arch.to_string(),
        kvm_max_vcpus: None,
        tpm_versions: Some(tpm.iter().map(|s| s.to_string()).collect()),
        vfio: true,
        force_vfio_backend: true,
        sev_asids: Some((509, 451)),
        secure_guest: true,
        host_cpu_model: is_ppc64(arch).then(|| "POWER8".to_string()),
        firmware,
        loader_values: Some(vec![
            "/usr/share/AAVMF/AAVMF_CODE.fd".into(),
            "/usr/share/AAVMF/AAVMF32_CODE.fd".into(),
            "/usr/share/OVMF/OVMF_CODE.fd".into(),
        ]),
    }
}
