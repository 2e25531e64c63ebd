//! Feature and timer checks that need no capabilities.

use super::{DomainError, arch, config, is_arm_virt, is_q35, is_x86, machine};
use crate::domain::model::{DomainDef, Timer, VirtType};

pub(super) fn validate_features(def: &DomainDef) -> Result<(), DomainError> {
    let tseg = def
        .features
        .as_ref()
        .and_then(|f| f.smm.as_ref())
        .and_then(|s| s.tseg_kib);
    if tseg.is_some() && !is_q35(def) {
        return Err(config("SMM TSEG is only supported with q35 machine type"));
    }
    Ok(())
}

pub(super) fn validate_timers(def: &DomainDef) -> Result<(), DomainError> {
    let Some(clock) = &def.clock else {
        return Ok(());
    };
    for t in &clock.timers {
        // These timers are paravirtual x86 clocks; other architectures have no such device.
        // Before post-parse the arch may be unknown: prepare fills it and checks again.
        if matches!(t.name.as_str(), "tsc" | "kvmclock" | "hypervclock")
            && !arch(def).is_empty()
            && !is_x86(def)
        {
            return Err(config(format!(
                "Configuring the '{}' timer is not supported for virtType={} arch={} machine={} guests",
                t.name,
                def.virt_type,
                arch(def),
                machine(def)
            )));
        }
        if t.name == "armvtimer" {
            validate_armvtimer(def, t)?;
        }
    }
    Ok(())
}

/// libvirt: qemuValidateDomainDefClockTimers, its armvtimer case (the emulator's
/// `kvm-no-adjvtime` property is checked with the caps). The machine may still be unset
/// before post-parse; prepare fills it and checks again.
fn validate_armvtimer(def: &DomainDef, t: &Timer) -> Result<(), DomainError> {
    let arm = matches!(arch(def), "aarch64" | "armv7l" | "armv6l");
    if def.virt_type != VirtType::Kvm || !arm || !(machine(def).is_empty() || is_arm_virt(def)) {
        return Err(config(format!(
            "Configuring the '{}' timer is not supported for virtType={} arch={} machine={} guests",
            t.name,
            def.virt_type,
            arch(def),
            machine(def)
        )));
    }
    if t.present.as_deref() == Some("no") {
        return Err(config(format!("The '{}' timer can't be disabled", t.name)));
    }
    match t.tickpolicy.as_deref() {
        None | Some("delay") | Some("discard") => Ok(()),
        Some(other) => Err(config(format!(
            "The '{}' timer does not support tickpolicy '{other}'",
            t.name
        ))),
    }
}
