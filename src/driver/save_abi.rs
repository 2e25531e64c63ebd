//! The part of libvirt's ABI stability check (virDomainDefCheckABIStabilityFlags) that a
//! save image's new XML must pass (`save-image-define`, `managedsave-define`, the `-edit`
//! verbs): what QEMU's migration stream depends on (machine, memory, vCPUs, the number of
//! devices of each kind) stays; host-side details (file paths, names of backends) may change.
//! Each refusal is libvirt's message, checked in libvirt's order.

use crate::domain::DomainDef;

use super::DriverError;

fn refuse(what: &str, new: impl std::fmt::Display, old: impl std::fmt::Display) -> DriverError {
    DriverError::Unsupported(format!(
        "Target domain {what} {new} does not match source {old}"
    ))
}

/// `new` may replace `old` in a save image.
pub fn check(old: &DomainDef, new: &DomainDef) -> Result<(), DriverError> {
    if old.virt_type != new.virt_type {
        return Err(refuse("virt type", new.virt_type, old.virt_type));
    }
    if old.uuid != new.uuid {
        return Err(refuse("uuid", new.uuid.to_string(), old.uuid.to_string()));
    }
    if old.memory.kib != new.memory.kib {
        return Err(refuse("max memory", new.memory.kib, old.memory.kib));
    }
    if old.vcpu.count != new.vcpu.count {
        return Err(refuse("vCPU max", new.vcpu.count, old.vcpu.count));
    }
    let (o, n) = (&old.os.os_type, &new.os.os_type);
    if o.kind != n.kind {
        return Err(refuse("OS type", &n.kind, &o.kind));
    }
    let s = |v: &Option<String>| v.clone().unwrap_or_default();
    if o.arch.is_some() && n.arch.is_some() && o.arch != n.arch {
        return Err(refuse("architecture", s(&n.arch), s(&o.arch)));
    }
    if o.machine.is_some() && n.machine.is_some() && o.machine != n.machine {
        return Err(refuse("machine type", s(&n.machine), s(&o.machine)));
    }
    let (od, nd) = (&old.devices, &new.devices);
    let counts = [
        ("disk count", od.disks.len(), nd.disks.len()),
        (
            "controller count",
            od.controllers.len(),
            nd.controllers.len(),
        ),
        (
            "filesystem count",
            od.filesystems.len(),
            nd.filesystems.len(),
        ),
        ("net card count", od.interfaces.len(), nd.interfaces.len()),
        ("input device count", od.inputs.len(), nd.inputs.len()),
        ("sound card count", od.sounds.len(), nd.sounds.len()),
        ("video card count", od.videos.len(), nd.videos.len()),
        ("host device count", od.hostdevs.len(), nd.hostdevs.len()),
        ("smartcard count", od.smartcards.len(), nd.smartcards.len()),
        ("serial port count", od.serials.len(), nd.serials.len()),
        (
            "parallel port count",
            od.parallels.len(),
            nd.parallels.len(),
        ),
        ("channel count", od.channels.len(), nd.channels.len()),
        ("console count", od.consoles.len(), nd.consoles.len()),
    ];
    for (what, o, n) in counts {
        if o != n {
            return Err(refuse(what, n, o));
        }
    }
    Ok(())
}
