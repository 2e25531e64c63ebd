//! CPU checks: libvirt's qemuValidateDomainDefCpu (the parts that need no caps).

use super::{DomainError, config};
use crate::domain::model::DomainDef;

/// libvirt's qemuValidateDomainDefCpu: the host's own CPU needs an accelerator (KVM, HVF);
/// TCG has no host CPU to pass through.
pub(super) fn validate_cpu_mode(def: &DomainDef) -> Result<(), DomainError> {
    let Some(mode) = def.cpu.as_ref().and_then(|c| c.mode.as_deref()) else {
        return Ok(());
    };
    let accelerated = matches!(
        def.virt_type,
        crate::domain::VirtType::Kvm | crate::domain::VirtType::Hvf
    );
    if mode == "host-passthrough" && !accelerated {
        let host = crate::capabilities::qemu::host_arch();
        let guest = def.os.os_type.arch.as_deref().unwrap_or(host);
        return Err(config(format!(
            "CPU mode '{mode}' for {guest} {} domain on {host} host is not supported by hypervisor",
            def.virt_type
        )));
    }
    Ok(())
}
