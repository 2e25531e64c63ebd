//! Post-parse: the defaults, implicit devices and addresses libvirt's QEMU driver fills in
//! once it knows the emulator's capabilities, so that the definition says everything the
//! command line will be built from. Pure: no I/O, the caps and the host facts are inputs.
//!
//! The stages follow libvirt's post-parse order, because it is observable in the output (the
//! order in which implicit controllers appear in `<devices>`):
//! 1. domain-wide defaults (arch, emulator, machine, memory, boot, CPU) and their checks;
//! 2. default devices of the machine (USB, SATA, PCI root, balloon, PS/2 inputs, audio);
//! 3. per-device defaults (controller, video, serial, vsock models);
//! 4. implicit devices the configuration implies (console/serial pairing, controllers for
//!    disks, channels and smartcards) and non-PCI addresses;
//! 5. PCI addresses, adding root ports and bridges where the machine needs them.

mod aliases;
pub mod cpu_compare;
mod devices;
pub mod firmware;
pub mod inactive;
mod mac;
pub mod native;
mod numa;
pub mod pci;
mod pciassign;
pub mod usb;
pub mod volume;

pub use aliases::assign_aliases;
pub(crate) use devices::disk_index;

use crate::capabilities::qemu::{Accel, Machine, QemuCaps};

use super::DomainError;
use super::model::{Cpu, CpuModel, DomainDef, Features, VirtType};
use super::validate::emulator_runs;

/// Host and configuration facts `prepare` needs besides the caps.
#[derive(Debug, Clone, Default)]
pub struct PrepareOptions {
    /// Architecture of the host; the guest's when the XML names none.
    pub host_arch: String,
    /// Emulator path used when the XML names none (default: the one the caps were probed from).
    pub emulator: Option<String>,
    /// The ABI pinning of a production post-parse: a machine alias (`pc`, `q35`) replaced by
    /// the machine it stands for (libvirt: qemuCanonicalizeMachine, a no-op in its test
    /// harness, whose caps list no aliases) and USB ports written into the definition
    /// (libvirt: qemuDomainAssignUSBAddresses for a new definition). Off for conformance
    /// with libvirt's xml2xml outputs.
    pub canonicalize_machine: bool,
    /// qemu.conf's audio settings, which pick the default `<audio>` backend.
    pub audio: AudioConfig,
    /// The TPM versions the host's swtpm offers ("1.2", "2.0"; empty without a usable swtpm),
    /// libvirt's virTPMSwtpmSetupCapsGet: they pick an emulated TPM's default version and
    /// refuse a version swtpm cannot run. `None` when the caller models no host (then 2.0 is
    /// the default and nothing is refused); a production prepare always says.
    pub tpm_versions: Option<Vec<String>>,
    /// Where a read-only UEFI loader's varstore goes when the XML names none (libvirt's
    /// `nvram_dir`): the definition gets `DIR/NAME_VARS.fd`. `None` leaves it to the start.
    pub nvram_dir: Option<String>,
}

/// The qemu.conf knobs behind the default audio backend.
#[derive(Debug, Clone, Default)]
pub struct AudioConfig {
    /// `QEMU_AUDIO_DRV` from the environment libvirt runs QEMU with.
    pub env_driver: Option<String>,
    /// `vnc_allow_host_audio`.
    pub vnc_allow_host_audio: bool,
    /// `nographics_allow_host_audio`.
    pub nogfx_allow_host_audio: bool,
}

/// Machine facts derived once and passed to every stage.
#[derive(Debug, Clone)]
pub(crate) struct Ctx<'a> {
    pub caps: &'a QemuCaps,
    pub arch: String,
    pub q35: bool,
    pub i440fx: bool,
    pub arm_virt: bool,
    pub pseries: bool,
    /// RISC-V `virt`: PCIe like ARM's, without a GIC.
    pub riscv_virt: bool,
    /// s390x `s390-ccw-virtio`: virtio over channel I/O.
    pub s390: bool,
}

impl<'a> Ctx<'a> {
    fn new(caps: &'a QemuCaps, arch: &str, machine: &str) -> Ctx<'a> {
        let name = machine;
        Ctx {
            caps,
            arch: arch.to_string(),
            q35: name == "q35" || name.starts_with("pc-q35"),
            i440fx: name == "pc" || name.starts_with("pc-i440fx") || name.starts_with("pc-0."),
            arm_virt: (name == "virt" || name.starts_with("virt-"))
                && matches!(arch, "aarch64" | "armv7l"),
            riscv_virt: (name == "virt" || name.starts_with("virt-")) && arch.starts_with("riscv"),
            s390: name.starts_with("s390-ccw"),
            pseries: name == "pseries" || name.starts_with("pseries-"),
        }
    }

    pub fn x86(&self) -> bool {
        matches!(self.arch.as_str(), "x86_64" | "i686")
    }
    pub fn has(&self, flag: &str) -> bool {
        self.caps.has_flag(flag)
    }
}

fn unsupported(msg: String) -> DomainError {
    DomainError::Config(format!("unsupported configuration: {msg}"))
}

/// The machines of the accelerator this domain runs with (KVM for `type='kvm'`, TCG else).
fn machines_for(caps: &QemuCaps, virt_type: VirtType) -> &[Machine] {
    let accel = if virt_type == VirtType::Kvm {
        Accel::Kvm
    } else {
        Accel::Tcg
    };
    match caps.accel(accel) {
        Some(a) if !a.machines.is_empty() => &a.machines,
        _ => caps.primary_machines(),
    }
}

/// Apply libvirt's capability-dependent post-parse defaults, implicit devices and addresses.
pub fn prepare(
    mut def: DomainDef,
    caps: &QemuCaps,
    opts: &PrepareOptions,
) -> Result<DomainDef, DomainError> {
    // 1. Domain-wide defaults.
    let arch = def
        .os
        .os_type
        .arch
        .get_or_insert_with(|| {
            if opts.host_arch.is_empty() {
                caps.arch.clone()
            } else {
                opts.host_arch.clone()
            }
        })
        .clone();
    let emulator = def
        .devices
        .emulator
        .get_or_insert_with(|| {
            opts.emulator
                .clone()
                .unwrap_or_else(|| caps.emulator.clone())
        })
        .clone();
    if !emulator_runs(&caps.arch, &arch) {
        return Err(unsupported(format!(
            "Emulator '{emulator}' does not support arch '{arch}'"
        )));
    }
    let machines = machines_for(caps, def.virt_type);
    let machine = match def.os.os_type.machine.clone() {
        Some(m) => {
            let found = machines
                .iter()
                .find(|x| x.name == m || x.alias.as_deref() == Some(m.as_str()));
            match found {
                Some(f) => f.clone(),
                None => {
                    // libvirt's sentence, then what the emulator offers instead.
                    let accel = if def.virt_type == VirtType::Kvm {
                        Accel::Kvm
                    } else {
                        Accel::Tcg
                    };
                    return Err(unsupported(format!(
                        "Emulator '{emulator}' does not support machine type '{m}'; supported machine types: {}",
                        caps.machine_list(accel)
                    )));
                }
            }
        }
        None => {
            let Some(first) = machines.first() else {
                return Err(unsupported(format!(
                    "Emulator '{emulator}' does not support any machine type"
                )));
            };
            def.os.os_type.machine = Some(first.name.clone());
            first.clone()
        }
    };
    if opts.canonicalize_machine {
        def.os.os_type.machine = Some(machine.name.clone());
    }
    if machine.max_cpus > 0 && def.vcpu.count > machine.max_cpus {
        return Err(unsupported(format!(
            "Maximum CPUs greater than specified machine type limit {}",
            machine.max_cpus
        )));
    }
    let ctx = Ctx::new(caps, &arch, &machine.name);

    domain_defaults(&mut def, &ctx, &machine);
    numa::rectify_cpus(&mut def);
    devices::default_devices(&mut def, &ctx, opts)?;
    devices::device_defaults(&mut def, &ctx);
    tpm_default_versions(&mut def, opts.tpm_versions.as_deref());
    mac::assign_macs(&mut def);
    devices::implicit_devices(&mut def, &ctx)?;
    if opts.canonicalize_machine {
        usb::add_usb_hubs(&mut def);
        usb::assign_usb_ports(&mut def);
    }
    pciassign::assign(&mut def, &ctx)?;
    check_loader(&def)?;
    if let Some(dir) = &opts.nvram_dir {
        firmware::name_varstore(&mut def, dir);
    }
    // libvirt validates after its post-parse: the caps checks first, then the checks that
    // need no caps, again on what the defaults and addresses made of it (two implicit drive
    // addresses may collide, for instance).
    super::validate::validate_with_caps(&def, caps)?;
    if let Some(versions) = &opts.tpm_versions {
        super::validate::validate_tpm_versions(&def, versions)?;
    }
    super::validate::validate(&def)?;
    Ok(def)
}

/// An emulated TPM without a version gets one, as TPM 1.2 and 2.0 are not compatible: 2.0 for
/// the CRB and sPAPR interfaces, which only exist for it, and otherwise 2.0 when swtpm runs it,
/// else 1.2 (libvirt: qemuDomainTPMDefPostParse).
fn tpm_default_versions(def: &mut DomainDef, versions: Option<&[String]>) {
    let swtpm_2_0 = versions.is_none_or(|v| v.iter().any(|x| x == "2.0"));
    for t in &mut def.devices.tpms {
        if t.backend_type.as_deref() != Some("emulator") || t.version.is_some() {
            continue;
        }
        let crb_or_spapr = matches!(t.model.as_deref(), Some("tpm-crb" | "tpm-spapr"));
        let v = if crb_or_spapr || swtpm_2_0 {
            "2.0"
        } else {
            "1.2"
        };
        t.version = Some(v.to_string());
    }
}

/// The address pass of a start over a definition `prepare` already went through: devices
/// that lost their address since (`domxml-to-native`'s interfaces) get one, the others keep
/// theirs, and a device that finds no free slot brings the controller it needs (libvirt:
/// qemuDomainAssignAddresses, run again by qemuProcessPrepareDomain).
pub fn assign_addresses(def: &mut DomainDef, caps: &QemuCaps) -> Result<(), DomainError> {
    let arch = def
        .os
        .os_type
        .arch
        .clone()
        .unwrap_or_else(|| caps.arch.clone());
    let machine = def.os.os_type.machine.clone().unwrap_or_default();
    // The machine's canonical name, as `prepare` resolved it (an alias stays in the
    // definition when the ABI update is off).
    let machine = machines_for(caps, def.virt_type)
        .iter()
        .find(|x| x.name == machine || x.alias.as_deref() == Some(machine.as_str()))
        .map_or(machine, |m| m.name.clone());
    let ctx = Ctx::new(caps, &arch, &machine);
    pciassign::assign(def, &ctx)
}

/// Without firmware autoselection the loader must be named: nothing else would say which
/// firmware to load (libvirt: virDomainDefOSValidate, a VIR_ERR_XML_DETAIL without prefix).
fn check_loader(def: &DomainDef) -> Result<(), DomainError> {
    let os = &def.os;
    if os.firmware.is_none()
        && os
            .loader
            .as_ref()
            .is_some_and(|l| l.path.as_deref().is_none_or(str::is_empty))
    {
        return Err(DomainError::Xml(
            "no loader path specified and firmware auto selection disabled".to_string(),
        ));
    }
    Ok(())
}

/// Memory, boot order and CPU defaults.
fn domain_defaults(def: &mut DomainDef, ctx: &Ctx<'_>, machine: &Machine) {
    if def.current_memory.is_none() {
        def.current_memory = Some(def.memory.kib);
    }
    // Without any boot device, libvirt boots from the first disk; per-device boot orders
    // replace the `<boot dev>` list entirely.
    if def.os.os_type.kind == "hvm" && def.os.boot_devs.is_empty() && !has_device_boot(def) {
        def.os.boot_devs.push("hd".to_string());
    }
    // Enrolled keys only make sense with Secure Boot, so asking for them implies it.
    if let Some(ff) = def.os.firmware_features.as_mut()
        && ff.iter().any(|(n, e)| n == "enrolled-keys" && e == "yes")
        && !ff.iter().any(|(n, _)| n == "secure-boot")
    {
        ff.push(("secure-boot".to_string(), "yes".to_string()));
    }
    if ctx.arm_virt {
        // The virt machine always has a GIC; libvirt writes down the version it picks.
        let f = def.features.get_or_insert_with(Features::default);
        if f.gic.as_ref().is_none_or(|g| g.is_none()) {
            f.gic = Some(Some(default_gic_version(ctx, def.virt_type)));
        }
    }
    cpu_defaults(def, ctx, machine);
    numa_cell_ids(def);
}

/// NUMA cells as libvirt stores them: each has its id, its place when not given (libvirt:
/// virDomainNumaDefParseXML), which libvirt always writes.
fn numa_cell_ids(def: &mut DomainDef) {
    if let Some(cpu) = def.cpu.as_mut() {
        for (i, cell) in cpu.numa.iter_mut().enumerate() {
            cell.id.get_or_insert(i as u32);
        }
    }
}

/// GIC version for a virt guest: under KVM the one the host kernel provides, under TCG
/// QEMU's emulated v2.
fn default_gic_version(ctx: &Ctx<'_>, virt_type: VirtType) -> String {
    let kvm = ctx
        .caps
        .gic
        .iter()
        .filter(|g| g.kernel)
        .map(|g| g.version)
        .max();
    match kvm {
        Some(v) if virt_type == VirtType::Kvm => v.to_string(),
        _ => "2".to_string(),
    }
}

fn has_device_boot(def: &DomainDef) -> bool {
    let d = &def.devices;
    d.disks.iter().any(|x| x.info.boot.is_some())
        || d.interfaces.iter().any(|x| x.info.boot.is_some())
        || d.hostdevs.iter().any(|x| x.info.boot.is_some())
        || d.redirdevs.iter().any(|x| x.info.boot.is_some())
        || d.filesystems.iter().any(|x| x.info.boot.is_some())
}

/// The machine's default CPU model written out, so the definition does not change meaning
/// when a later QEMU changes its default.
fn cpu_defaults(def: &mut DomainDef, ctx: &Ctx<'_>, machine: &Machine) {
    // On ARM under KVM the default CPU is the host's, which has no model name to write down.
    let arm = matches!(ctx.arch.as_str(), "aarch64" | "armv7l");
    let ppc = ctx.arch.starts_with("ppc");
    if ctx.s390 && def.virt_type == VirtType::Kvm && def.cpu.is_none() {
        // Under KVM an s390 guest gets the host's model, checked as far as possible.
        def.cpu = Some(Cpu {
            mode: Some("host-model".to_string()),
            check: Some("partial".to_string()),
            ..Default::default()
        });
        return;
    }
    if !(ctx.x86() || ppc || ctx.s390 || (arm && def.virt_type != VirtType::Kvm)) {
        return;
    }
    if let Some(cpu) = def.cpu.as_mut()
        && cpu.mode.as_deref() == Some("host-model")
    {
        // A host-model CPU is checked against the host's as far as QEMU can tell.
        cpu.check.get_or_insert_with(|| "partial".to_string());
        if let Some(m) = cpu.model.as_mut() {
            m.fallback.get_or_insert_with(|| "allow".to_string());
        }
    }
    if let Some(cpu) = def.cpu.as_mut()
        && cpu.mode.as_deref() == Some("host-passthrough")
    {
        // The host's own CPU: nothing to compare.
        cpu.check.get_or_insert_with(|| "none".to_string());
    }
    if let Some(cpu) = def.cpu.as_mut()
        && matches!(cpu.mode.as_deref(), Some("host-passthrough" | "maximum"))
        && cpu.migratable.is_none()
        && ctx.has("cpu.migratable")
    {
        // libvirt: qemuDomainDefCPUPostParse. Where QEMU has the switch, its default (hide
        // the host features that block migration) is written down.
        cpu.migratable = Some("on".to_string());
    }
    if let Some(t) = def.cpu.as_mut().and_then(|c| c.topology.as_mut()) {
        // One die per socket unless said otherwise (libvirt: virCPUDefParseXML).
        t.dies.get_or_insert(1);
    }
    if let Some(cpu) = def.cpu.as_mut()
        && cpu.model.is_some()
        && cpu.mode.as_deref().is_none_or(|m| m == "custom")
    {
        // A named model is a custom CPU; without KVM there is nothing to check it against.
        cpu.mode.get_or_insert_with(|| "custom".to_string());
        cpu.match_.get_or_insert_with(|| "exact".to_string());
        // libvirt: qemuDomainDefCPUPostParse. Under KVM the model is compared with the host
        // CPU as far as QEMU reports it; under TCG there is nothing to compare with.
        let check = if def.virt_type == VirtType::Kvm {
            "partial"
        } else {
            "none"
        };
        cpu.check.get_or_insert_with(|| check.to_string());
        if let Some(m) = cpu.model.as_mut() {
            m.fallback.get_or_insert_with(|| "allow".to_string());
        }
    }
    let needs_model = match &def.cpu {
        None => true,
        Some(c) => c.model.is_none() && c.mode.as_deref().is_none_or(|m| m == "custom"),
    };
    if !needs_model {
        return;
    }
    let Some(qom) = machine.default_cpu.as_deref() else {
        return;
    };
    // default-cpu-type is a QOM type; the model is the CPU definition with that type name,
    // or the type name without its `-ARCH-cpu` suffix.
    let model = ctx
        .caps
        .accels
        .iter()
        .filter_map(|a| a.cpus.as_ref())
        .flatten()
        .find(|c| c.typename.as_deref() == Some(qom))
        .map(|c| c.name.clone())
        .unwrap_or_else(|| {
            qom.strip_suffix("-cpu")
                .and_then(|s| s.rsplit_once('-').map(|(m, _)| m.to_string()))
                .unwrap_or_else(|| qom.to_string())
        });
    let cpu = def.cpu.get_or_insert_with(Cpu::default);
    cpu.mode = Some("custom".to_string());
    cpu.match_ = Some("exact".to_string());
    cpu.check = Some("none".to_string());
    cpu.model = Some(CpuModel {
        name: model,
        fallback: Some("forbid".to_string()),
        vendor_id: None,
    });
}
