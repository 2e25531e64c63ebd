//! Checks libvirt makes on a definition, with libvirt's messages, in libvirt's order:
//! - [`check_parse`]: what libvirt's parser refuses (closed vocabularies, numbers, required
//!   attributes), run on the XML tree before it becomes a [`DomainDef`];
//! - [`validate`]: the checks that need no host or QEMU capabilities;
//! - [`validate_with_caps`]: the checks libvirt's QEMU driver makes against the emulator's
//!   capabilities (qemuValidateDomainDef), at define as at start.
//!
//! libvirt runs these after parsing (and after its post-parse defaults); the messages are
//! libvirt's, so the conformance runner can compare them with its `.err` files. Checks that
//! depend on assigned addresses will fire once the defaults stage fills addresses in.

mod caps;
mod cpu;
mod devices;
mod disk;
mod features;
mod memory;
mod os;
pub(crate) mod parse;
mod parse_devices;
mod tpm;
pub(crate) mod vocab;

pub(crate) use caps::emulator_runs;
pub use caps::validate_with_caps;
pub use parse::check as check_parse;
pub use tpm::validate_tpm_versions;

use super::DomainError;
use super::model::DomainDef;

pub(super) fn config(msg: impl Into<String>) -> DomainError {
    DomainError::Config(format!("unsupported configuration: {}", msg.into()))
}

/// A message libvirt reports without a category prefix.
pub(super) fn detail(msg: impl Into<String>) -> DomainError {
    DomainError::Xml(msg.into())
}

/// Validate a definition. Returns the first problem found, in libvirt's order of checks.
pub fn validate(def: &DomainDef) -> Result<(), DomainError> {
    caps::validate_domain_qemu(def)?;
    os::validate_os(def)?;
    features::validate_features(def)?;
    features::validate_timers(def)?;
    validate_lifecycle(def)?;
    let pseries = arch(def).starts_with("ppc64") && machine(def).starts_with("pseries");
    for disk in &def.devices.disks {
        if pseries && disk.device.as_deref() == Some("floppy") {
            return Err(config(
                "PowerPC pseries machines do not support floppy device",
            ));
        }
        disk::validate_disk(disk)?;
    }
    disk::check_duplicate_drive_addresses(def)?;
    super::netcheck::validate_interfaces(def)?;
    devices::validate_controllers(def)?;
    devices::validate_inputs(def)?;
    devices::validate_graphics(def)?;
    devices::validate_hostdevs(def)?;
    devices::validate_panics(def)?;
    devices::validate_iommu(def)?;
    cpu::validate_cpu_mode(def)?;
    memory::validate_hugepages(def)?;
    memory::validate_virtiofs_memory(def)?;
    Ok(())
}

/// libvirt: qemuValidateLifecycleAction (since libvirt 7.7). The QEMU driver has no meaning
/// for `rename-restart` (a Xen action), nor for `preserve` after a poweroff or reboot (QEMU
/// cannot keep a guest that powered off), and cannot turn a poweroff into a restart while a
/// reboot becomes a shutdown.
fn validate_lifecycle(def: &DomainDef) -> Result<(), DomainError> {
    lifecycle_actions_valid(
        def.on_poweroff.as_deref(),
        def.on_reboot.as_deref(),
        def.on_crash.as_deref(),
    )
    .map_err(config)
}

/// The checks of [`validate_lifecycle`] on the three actions (absent: the default), shared
/// with `set-lifecycle-action`, which checks the definition as it would become.
pub fn lifecycle_actions_valid(
    poweroff: Option<&str>,
    reboot: Option<&str>,
    crash: Option<&str>,
) -> Result<(), String> {
    if [poweroff, reboot, crash].contains(&Some("rename-restart")) {
        return Err(
            "qemu driver doesn't support the 'rename-restart' action for \
                    'on_reboot'/'on_poweroff'/'on_crash'"
                .into(),
        );
    }
    if [poweroff, reboot].contains(&Some("preserve")) {
        return Err(
            "qemu driver doesn't support the 'preserve' action for 'on_reboot'/'on_poweroff'"
                .into(),
        );
    }
    if poweroff == Some("restart") && reboot == Some("destroy") {
        return Err(
            "qemu driver doesn't support 'onReboot' set to 'destroy and 'onPoweroff' \
                    set to 'reboot'"
                .into(),
        );
    }
    Ok(())
}

pub(super) fn machine(def: &DomainDef) -> &str {
    def.os.os_type.machine.as_deref().unwrap_or("")
}

/// The guest's architecture; without one in the XML, libvirt's parser takes the host's.
pub(super) fn arch(def: &DomainDef) -> &str {
    def.os
        .os_type
        .arch
        .as_deref()
        .unwrap_or(crate::capabilities::qemu::host_arch())
}

pub(super) fn is_q35(def: &DomainDef) -> bool {
    let m = machine(def);
    m == "q35" || m.starts_with("pc-q35")
}

pub(super) fn is_arm_virt(def: &DomainDef) -> bool {
    let m = machine(def);
    matches!(arch(def), "aarch64" | "armv7l") && (m == "virt" || m.starts_with("virt-"))
}

pub(super) fn is_x86(def: &DomainDef) -> bool {
    matches!(arch(def), "x86_64" | "i686")
}
