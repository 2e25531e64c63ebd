//! Feature and timer checks that need no capabilities.

use super::{DomainError, arch, config, is_q35, is_x86, machine};
use crate::domain::model::DomainDef;

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
    }
    Ok(())
}
