//! Names the emulator must know before any option is written: a CPU model it does not list
//! would only fail once QEMU starts, with QEMU's message and none of the alternatives.

use super::{Xml2ArgvError, accel_of};
use crate::capabilities::qemu::QemuCaps;
use crate::capabilities::qemu::names::list_for_message;
use crate::domain::DomainDef;

/// A custom CPU model must be one of the emulator's, for the accelerator the domain uses.
pub(crate) fn cpu_model(def: &DomainDef, caps: &QemuCaps) -> Result<(), Xml2ArgvError> {
    let Some(cpu) = &def.cpu else {
        return Ok(());
    };
    if cpu.mode.as_deref().is_some_and(|m| m != "custom") {
        return Ok(());
    }
    let Some(model) = &cpu.model else {
        return Ok(());
    };
    let accel = accel_of(def);
    if caps.knows_cpu_model(accel, &model.name) {
        return Ok(());
    }
    let emulator = def.devices.emulator.as_deref().unwrap_or(&caps.emulator);
    let usable = caps.usable_cpu_models(accel).unwrap_or_default();
    Err(Xml2ArgvError::Unsupported(format!(
        "CPU model '{}' is not known to emulator '{emulator}' for virt type '{}'; usable models: {}",
        model.name,
        def.virt_type,
        list_for_message(usable)
    )))
}
