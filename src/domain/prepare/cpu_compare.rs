//! A custom guest CPU checked against the host CPU at start, as libvirt's QEMU driver does
//! with `check='partial'` (its default for custom CPUs): the features the guest's model and
//! `<feature policy='require'>` ask for must be ones the host CPU has, a `forbid` feature
//! must not be there, a named vendor must be the host's, and `match='strict'` wants nothing
//! more. "The host CPU" is QEMU's expansion of it for the accelerator the guest runs on.
//!
//! Under KVM libvirt's host CPU is the CPUID of the machine plus every feature QEMU's
//! expansion of `host` turns on (libvirt: virQEMUCapsInitHostCPUModel's "full" CPU); a
//! guest running under TCG is compared only when its CPU is not custom (TCG emulates
//! whatever a custom model asks), and only on x86 do models carry features to compare here.

use std::collections::BTreeSet;

use crate::capabilities::domcaps::x86;
use crate::capabilities::qemu::QemuCaps;
use crate::domain::DomainError;
use crate::domain::VirtType;
use crate::domain::model::DomainDef;

/// libvirt: qemuProcessUpdateGuestCPU (its virCPUCompare step) and x86Compute. `Ok` when
/// there is nothing to compare (no custom model, another arch, no host CPU facts).
/// `host_cpuid` is what the CPUID instruction says of this machine (libvirt names).
pub fn check_guest_cpu(
    def: &DomainDef,
    caps: &QemuCaps,
    host_cpuid: &[&str],
) -> Result<(), DomainError> {
    let Some(cpu) = def.cpu.as_ref() else {
        return Ok(());
    };
    let custom = matches!(cpu.mode.as_deref(), None | Some("custom"));
    if !custom || cpu.check.as_deref() != Some("partial") || def.virt_type == VirtType::Qemu {
        return Ok(());
    }
    let Some(model) = cpu.model.as_ref().map(|m| m.name.as_str()) else {
        return Ok(());
    };
    let arch = def.os.os_type.arch.as_deref().unwrap_or_default();
    if !matches!(arch, "x86_64" | "i686") {
        return Ok(());
    }
    let Some(host) = caps
        .accel(crate::xml2argv::accel_of(def))
        .and_then(|a| a.host_cpu.as_ref())
    else {
        return Ok(());
    };
    let Some(model_features) = x86::named_model_features(model) else {
        // An unknown model is refused elsewhere, with its own message.
        return Ok(());
    };
    let mut host_features = x86::host_features(host);
    if def.virt_type == VirtType::Kvm {
        host_features.extend(
            host_cpuid
                .iter()
                .filter_map(|f| x86::feature_position(f).map(|i| x86::FEATURES[i].0)),
        );
    }
    let with = |policy: &str| -> BTreeSet<&str> {
        cpu.features
            .iter()
            .filter(|f| f.policy.as_deref().unwrap_or("require") == policy)
            .map(|f| f.name.as_str())
            .collect()
    };
    let incompatible = |what: &str, names: Vec<&str>| {
        let mut names = names;
        names.sort_by_key(|n| x86::feature_position(n).unwrap_or(usize::MAX));
        DomainError::CpuIncompatible(format!(
            "the CPU is incompatible with host CPU: {what}: {}",
            names.join(", ")
        ))
    };

    if let Some(vendor) = cpu.vendor.as_deref()
        && x86::host_vendor(host) != Some(vendor)
    {
        return Err(DomainError::CpuIncompatible(format!(
            "the CPU is incompatible with host CPU: host CPU vendor does not match required \
             CPU vendor {vendor}"
        )));
    }
    let forbidden: Vec<&str> = with("forbid")
        .into_iter()
        .filter(|f| host_features.contains(f))
        .collect();
    if !forbidden.is_empty() {
        return Err(incompatible(
            "Host CPU provides forbidden features",
            forbidden,
        ));
    }
    // The model's features less those forced, made optional or disabled, plus the required.
    let (force, optional, disable) = (with("force"), with("optional"), with("disable"));
    let mut required: BTreeSet<&str> = model_features.iter().copied().collect();
    required.extend(with("require"));
    required.retain(|f| !force.contains(f) && !optional.contains(f) && !disable.contains(f));
    let missing: Vec<&str> = required
        .iter()
        .copied()
        .filter(|f| !host_features.contains(f))
        .collect();
    if !missing.is_empty() {
        return Err(incompatible(
            "Host CPU does not provide required features",
            missing,
        ));
    }
    if cpu.match_.as_deref() == Some("strict") {
        let extra: Vec<&str> = host_features
            .iter()
            .copied()
            .filter(|f| {
                !required.contains(f)
                    && !force.contains(f)
                    && !optional.contains(f)
                    && !disable.contains(f)
            })
            .collect();
        if !extra.is_empty() {
            return Err(incompatible(
                "Host CPU does not strictly match guest CPU: Extra features",
                extra,
            ));
        }
    }
    Ok(())
}
