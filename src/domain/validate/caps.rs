//! The checks libvirt's QEMU driver makes against the emulator's capabilities when a domain
//! is defined (qemuValidateDomainDef runs at define as at start), in its order.

use super::{DomainError, config};
use crate::capabilities::qemu::{Accel, QemuCaps};
use crate::domain::model::{DomainDef, VirtType};

/// Architectures one emulator binary runs guests for (prepare picks by it, validation checks
/// by it).
pub(crate) fn emulator_runs(caps_arch: &str, arch: &str) -> bool {
    caps_arch == arch
        || matches!(
            (caps_arch, arch),
            ("x86_64", "i686") | ("aarch64", "armv7l") | ("ppc64", "ppc64le") | ("ppc64", "ppc")
        )
}

/// libvirt: virQEMUCapsIsVirtTypeSupported. `qemu` is TCG; `kvm` and `hvf` need that
/// accelerator in the emulator; no other domain type runs on QEMU.
fn accel_for(caps: &QemuCaps, virt_type: VirtType) -> Option<Accel> {
    let (accel, flag) = match virt_type {
        VirtType::Qemu => (Accel::Tcg, "tcg"),
        VirtType::Kvm => (Accel::Kvm, "kvm"),
        VirtType::Hvf => (Accel::Hvf, "hvf"),
        _ => return None,
    };
    let has = caps.has_flag(flag)
        || caps.accel(accel).is_some()
        || (accel == Accel::Kvm && caps.kvm)
        // Emulators probed without accelerator flags still run TCG.
        || (accel == Accel::Tcg && caps.flags.iter().all(|f| f != "kvm" && f != "hvf"));
    has.then_some(accel)
}

fn is_x86(arch: &str) -> bool {
    matches!(arch, "x86_64" | "i686")
}

/// libvirt: qemuDomainMachineHasBuiltinIDE.
fn has_builtin_ide(machine: &str, arch: &str) -> bool {
    let i440fx = is_x86(arch)
        && (machine == "pc"
            || machine.starts_with("pc-0.")
            || machine.starts_with("pc-1.")
            || machine.starts_with("pc-i440fx-")
            || machine.starts_with("rhel"));
    i440fx || matches!(machine, "malta" | "sun4u" | "g3beige")
}

/// Validate `def` against the emulator's capabilities, as libvirt's qemuValidateDomainDef
/// and the caps-dependent parts of its device validation do. Returns the first problem.
pub fn validate_with_caps(def: &DomainDef, caps: &QemuCaps) -> Result<(), DomainError> {
    let emulator = def.devices.emulator.as_deref().unwrap_or(&caps.emulator);
    let arch = def.os.os_type.arch.as_deref().unwrap_or(&caps.arch);
    let machine = def.os.os_type.machine.as_deref().unwrap_or("");
    if def.os.os_type.kind != "hvm" {
        return Err(config(format!(
            "Emulator '{emulator}' does not support os type '{}'",
            def.os.os_type.kind
        )));
    }
    if !emulator_runs(&caps.arch, arch) {
        return Err(config(format!(
            "Emulator '{emulator}' does not support arch '{arch}'"
        )));
    }
    let Some(accel) = accel_for(caps, def.virt_type) else {
        return Err(config(format!(
            "Emulator '{emulator}' does not support virt type '{}'",
            def.virt_type
        )));
    };
    let machines = match caps.accel(accel) {
        Some(a) if !a.machines.is_empty() => &a.machines[..],
        _ => caps.primary_machines(),
    };
    let found = machines
        .iter()
        .find(|m| m.name == machine || m.alias.as_deref() == Some(machine));
    if !machine.is_empty() && found.is_none() {
        return Err(config(format!(
            "Emulator '{emulator}' does not support machine type '{machine}'"
        )));
    }
    // A QEMU driver fact, kept with the caps checks so the generic model can hold it.
    if def
        .memtune
        .as_ref()
        .is_some_and(|m| m.min_guarantee.is_some())
    {
        return Err(config("Parameter 'min_guarantee' not supported by QEMU."));
    }
    if def.os.bios_useserial.as_deref() == Some("yes") {
        if !is_x86(arch) {
            return Err(config(
                "BIOS serial console only supported on x86 architectures",
            ));
        }
        if def.devices.serials.is_empty() {
            return Err(DomainError::Xml(
                "XML error: need at least one serial port to use BIOS serial output".into(),
            ));
        }
    }
    validate_memory_hotplug(def, arch)?;
    let max_cpus = found.map_or(0, |m| m.max_cpus);
    if max_cpus > 0 && def.vcpu.count > max_cpus {
        return Err(config(format!(
            "Maximum CPUs greater than specified machine type limit {max_cpus}"
        )));
    }
    validate_ide(def, arch, machine)?;
    validate_timers_with_caps(def, caps)?;
    validate_vdpa(def, caps)?;
    Ok(())
}

/// libvirt: qemuValidateDomainDeviceDefNetwork, its vDPA checks.
fn validate_vdpa(def: &DomainDef, caps: &QemuCaps) -> Result<(), DomainError> {
    for n in def.devices.interfaces.iter().filter(|n| n.itype == "vdpa") {
        if !caps.has_flag("netdev.vhost-vdpa") {
            return Err(config(
                "vDPA devices are not supported with this QEMU binary",
            ));
        }
        if let Some(m) = n.model.as_deref().filter(|m| *m != "virtio") {
            return Err(config(format!(
                "invalid model for interface of type 'vdpa': '{m}' - must be 'virtio'"
            )));
        }
    }
    Ok(())
}

/// libvirt: qemuValidateDomainDefClockTimers, the part that needs the emulator's properties.
fn validate_timers_with_caps(def: &DomainDef, caps: &QemuCaps) -> Result<(), DomainError> {
    let timers = def.clock.as_ref().map_or(&[][..], |c| &c.timers[..]);
    if timers.iter().any(|t| t.name == "armvtimer") && !caps.has_flag("cpu.kvm-no-adjvtime") {
        return Err(config(
            "Configuring the 'armvtimer' timer is not supported with this QEMU binary",
        ));
    }
    Ok(())
}

/// The parts of libvirt's qemuValidateDomainDef that need no caps, in its order. They run
/// with the checks of [`super::validate`], before the generic ones, as libvirt runs the
/// driver's domain check before its generic checks.
pub(super) fn validate_domain_qemu(def: &DomainDef) -> Result<(), DomainError> {
    let arch = super::arch(def);
    let machine = super::machine(def);
    let acpi = def.features.as_ref().is_some_and(|f| f.acpi);
    let old_style_uefi = def
        .os
        .loader
        .as_ref()
        .is_some_and(|l| l.ltype.as_deref() == Some("pflash"));
    let uefi = def.os.firmware.as_deref() == Some("efi") || old_style_uefi;
    if uefi && is_x86(arch) && !acpi {
        return Err(config("UEFI requires ACPI on this architecture"));
    }
    if acpi && arch == "aarch64" && !uefi {
        return Err(config("ACPI requires UEFI on this architecture"));
    }
    let pm_set = def
        .pm
        .as_ref()
        .is_some_and(|p| p.suspend_to_mem.is_some() || p.suspend_to_disk.is_some());
    if pm_set && !is_x86(arch) {
        return Err(config("setting ACPI S3/S4 not supported"));
    }
    validate_vcpu_topology(def)?;
    validate_features(def, arch, machine)?;
    Ok(())
}

/// libvirt: qemuDomainDefValidateMemoryHotplug (as of 9.0).
fn validate_memory_hotplug(def: &DomainDef, arch: &str) -> Result<(), DomainError> {
    let nmems = def.devices.memories.len();
    let slots = def.max_memory.as_ref().and_then(|m| m.slots).unwrap_or(0);
    let hotplug = def.max_memory.as_ref().is_some_and(|m| m.kib > 0) || slots > 0;
    if !hotplug {
        if nmems > 0 {
            return Err(config(
                "cannot use/hotplug a memory device when domain 'maxMemory' is not defined",
            ));
        }
        return Ok(());
    }
    let cells = def.cpu.as_ref().map_or(0, |c| c.numa.len());
    if !arch.starts_with("ppc64") && cells == 0 {
        return Err(config(
            "At least one numa node has to be configured when enabling memory hotplug",
        ));
    }
    if nmems > slots as usize {
        return Err(config(format!(
            "memory device count '{nmems}' exceeds slots count '{slots}'"
        )));
    }
    Ok(())
}

/// libvirt: qemuValidateDomainVCpuTopology (the machine's limit is checked with the caps)
/// and virDomainDefGetVcpusTopology.
fn validate_vcpu_topology(def: &DomainDef) -> Result<(), DomainError> {
    let current = def.vcpu.current.unwrap_or(def.vcpu.count);
    if current == 0 {
        return Err(config("Domain requires at least 1 vCPU"));
    }
    if let Some(t) = def.cpu.as_ref().and_then(|c| c.topology.as_ref()) {
        let total = u64::from(t.sockets)
            * u64::from(t.dies.unwrap_or(1))
            * u64::from(t.cores)
            * u64::from(t.threads);
        if total != u64::from(def.vcpu.count) {
            return Err(config("CPU topology doesn't match maximum vcpu count"));
        }
    }
    Ok(())
}

/// libvirt: qemuValidateDomainDefFeatures, the architecture and machine checks.
fn validate_features(def: &DomainDef, arch: &str, machine: &str) -> Result<(), DomainError> {
    let Some(f) = &def.features else {
        return Ok(());
    };
    let not_for = |name: &str| {
        config(format!(
            "The '{name}' feature is not supported for architecture '{arch}' or machine type '{machine}'"
        ))
    };
    if f.ioapic.is_some() && !is_x86(arch) {
        return Err(not_for("ioapic"));
    }
    let arm_virt =
        matches!(arch, "aarch64" | "armv7l") && (machine == "virt" || machine.starts_with("virt-"));
    if f.gic.is_some() && !arm_virt {
        return Err(not_for("gic"));
    }
    if f.apic.as_ref().is_some_and(|eoi| eoi.is_some()) && !is_x86(arch) {
        return Err(config(format!(
            "The 'eoi' attribute of the 'apic' feature is not supported for architecture '{arch}' or machine type '{machine}'"
        )));
    }
    if f.pvspinlock.is_some() && !is_x86(arch) {
        return Err(not_for("pvspinlock"));
    }
    if f.hyperv.is_some() && !is_x86(arch) && !arm_virt {
        return Err(config(format!(
            "Hyperv features are not supported for architecture '{arch}' or machine type '{machine}'"
        )));
    }
    if f.pmu.as_ref().is_some_and(|s| s.as_deref() == Some("off")) && arch.starts_with("ppc64") {
        return Err(config(format!(
            "PMU is always enabled for architecture '{arch}'"
        )));
    }
    if f.tcg.is_some() && def.virt_type != VirtType::Qemu {
        return Err(config(format!(
            "TCG features are incompatible with domain type '{}'",
            def.virt_type
        )));
    }
    Ok(())
}

/// libvirt: qemuValidateDomainDeviceDefControllerIDE. IDE disks imply the controller their
/// drive address names (the first one when they have none), as libvirt's post-parse adds it.
fn validate_ide(def: &DomainDef, arch: &str, machine: &str) -> Result<(), DomainError> {
    let mut indexes: Vec<u32> = def
        .devices
        .controllers
        .iter()
        .filter(|c| c.ctype == "ide")
        .map(|c| c.index.unwrap_or(0))
        .collect();
    for d in &def.devices.disks {
        if d.target.bus.as_deref() == Some("ide") {
            let idx = match &d.info.address {
                Some(crate::domain::address::Address::Drive { controller, .. }) => *controller,
                _ => 0,
            };
            indexes.push(idx);
        }
    }
    let builtin = has_builtin_ide(machine, arch);
    for idx in indexes {
        if idx == 0 && builtin {
            continue;
        }
        return Err(config(if builtin {
            "Only a single IDE controller is supported for this machine type"
        } else {
            "IDE controllers are unsupported for this QEMU binary or machine type"
        }));
    }
    Ok(())
}
