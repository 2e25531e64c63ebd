//! The capabilities document (`virsh capabilities`): the host, then one `<guest>` per
//! architecture an installed emulator serves.

use super::host::HostCaps;
use super::qemu::{QemuCaps, format_guests};
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
    /// Name the host CPU model when probing could not read CPUID (a host described by its
    /// /proc files only): libvirt's choice among its named models, made from the features
    /// /proc/cpuinfo lists. A host probed on this machine has its model from CPUID already.
    pub fn settle_host_cpu_model(&mut self) {
        self.host.cpu.describe_x86_from_features();
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
