//! The capabilities document (`virsh capabilities`): the host, then one `<guest>` per
//! architecture an installed emulator serves.

use super::host::{HostCaps, closest_model_from_features};
use super::qemu::{Accel, CpuUsable, QemuCaps, format_guests};
use crate::xmlfmt::XmlWriter;

/// Everything the capabilities document is made of.
#[derive(Debug, Clone)]
pub struct Capabilities {
    pub host: HostCaps,
    /// Probed emulators, in discovery order (the first serving an arch wins).
    pub emulators: Vec<QemuCaps>,
    pub kvm_usable: bool,
    pub hvf_usable: bool,
}

impl Capabilities {
    /// Fill the host CPU model from the host-arch emulator's CPU models under KVM: a model
    /// counts when KVM can run it, or when everything blocking it is a feature the host CPU
    /// itself has (CPUID, via /proc/cpuinfo). The second rule matters under nested
    /// virtualisation, where the outer hypervisor hides features from KVM and "usable" would
    /// leave only a Pentium-era model for a current CPU.
    ///
    /// Without KVM the model is named from the host's CPUID features alone, among the models
    /// the host-arch emulator knows.
    pub fn settle_host_cpu_model(&mut self) {
        if self.host.cpu.model.is_some() {
            return;
        }
        let arch = self.host.cpu.arch.clone();
        let kvm = self
            .emulators
            .iter()
            .find(|c| c.arch == arch && c.kvm)
            .and_then(|c| c.accel(Accel::Kvm))
            .filter(|_| self.kvm_usable);
        let Some(kvm) = kvm else {
            if matches!(arch.as_str(), "x86_64" | "i686") {
                let known: Option<Vec<&str>> = self
                    .emulators
                    .iter()
                    .find(|c| c.arch == arch)
                    .and_then(|c| c.accel(Accel::Tcg))
                    .and_then(|a| a.cpus.as_ref())
                    .map(|cpus| cpus.iter().map(|m| m.name.as_str()).collect());
                self.host.cpu.model = closest_model_from_features(
                    &self.host.cpu.features,
                    self.host.cpu.vendor.as_deref(),
                    known.as_deref(),
                );
            }
            return;
        };
        let host: std::collections::HashSet<String> = self
            .host
            .cpu
            .features
            .iter()
            .map(|h| normalize_feature(h))
            .collect();
        let host_has = |qemu_name: &str| host.contains(&normalize_feature(qemu_name));
        let candidates: Vec<&str> = kvm
            .cpus
            .iter()
            .flatten()
            .filter(|m| {
                m.usable == CpuUsable::Yes
                    || (m.usable == CpuUsable::No && m.blockers.iter().all(|b| host_has(b)))
            })
            .map(|m| m.name.as_str())
            .collect();
        self.host.set_cpu_model_from_usable(&candidates);
    }

    /// The document, formatted as libvirt formats it.
    pub fn to_xml(&self) -> String {
        let mut w = XmlWriter::new();
        w.elem("capabilities").open();
        w.blank();
        self.host.format_host(&mut w);
        w.blank();
        format_guests(&self.emulators, self.kvm_usable, self.hvf_usable, &mut w);
        w.close();
        w.finish()
    }
}

/// QEMU and libvirt spell a few CPU features differently (`pclmulqdq` vs `pclmuldq`,
/// `sse4.1` vs `sse4_1`, `-` vs `_`); compare them in one spelling.
fn normalize_feature(name: &str) -> String {
    let n = name.replace(['_', '.'], "-");
    match n.as_str() {
        "pclmulqdq" => "pclmuldq".to_string(),
        _ => n,
    }
}
