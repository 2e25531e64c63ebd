//! The CPU model names a guest of an architecture may ask for (`virsh cpu-models`;
//! libvirt: qemuConnectGetCPUModelNames, virCPUGetModels).
//!
//! libvirt lists the models of its own CPU map. This driver has no CPU map of its own: the
//! names come from the probed emulator of that architecture (`query-cpu-definitions`),
//! without QEMU's versioned aliases (`-vN`) and its `host`, `max` and `base` pseudo models,
//! which are no models of libvirt's map.

use super::{Connect, DriverError};
use crate::capabilities::qemu;

/// Architectures libvirt 9.0 has a CPU driver for (libvirt: src/cpu/cpu.c drivers).
fn has_cpu_driver(arch: &str) -> bool {
    matches!(
        arch,
        "i686"
            | "x86_64"
            | "ppc64"
            | "ppc64le"
            | "s390"
            | "s390x"
            | "armv6l"
            | "armv7l"
            | "armv7b"
            | "aarch64"
    )
}

/// Whether QEMU's model `name` is one libvirt's map would list.
fn is_map_model(name: &str) -> bool {
    if matches!(name, "host" | "max" | "base") {
        return false;
    }
    let versioned = name
        .rsplit_once("-v")
        .is_some_and(|(_, n)| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()));
    !versioned
}

impl Connect {
    /// `virConnectGetCPUModelNames`: the CPU models known for `arch`; empty when any model
    /// is accepted (no list to check against).
    pub fn cpu_model_names(&self, arch: &str, flags: u32) -> Result<Vec<String>, DriverError> {
        super::hotplug::check_flags(flags, 0, "qemuConnectGetCPUModelNames")?;
        if !qemu::ARCHES.iter().any(|(a, _)| *a == arch) {
            return Err(DriverError::InvalidArg(format!(
                "cannot find architecture {arch}"
            )));
        }
        if !has_cpu_driver(arch) {
            return Err(DriverError::NoSupport(format!(
                "'{arch}' architecture is not supported by CPU driver"
            )));
        }
        let probe = crate::domain::parse_unprepared(&format!(
            "<domain type='qemu'><name>cpu-models</name><memory>1024</memory>\
             <os><type arch='{arch}'>hvm</type></os></domain>"
        ))?;
        let caps = self.emulator_caps_for(&probe)?;
        let mut names: Vec<String> = caps
            .accels
            .iter()
            .filter_map(|a| a.cpus.as_ref())
            .flatten()
            .map(|c| c.name.clone())
            .filter(|n| is_map_model(n))
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_models_only() {
        assert!(is_map_model("Skylake-Client"));
        assert!(is_map_model("qemu64"));
        assert!(is_map_model("Skylake-Client-IBRS"));
        assert!(!is_map_model("Skylake-Client-v1"));
        assert!(!is_map_model("host"));
        assert!(!is_map_model("max"));
        assert!(has_cpu_driver("x86_64"));
        assert!(!has_cpu_driver("mips"));
    }
}
