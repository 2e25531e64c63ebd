//! The x86 host `<cpu>` as libvirt writes it: a named model from its CPU map, the vendor,
//! the CPUID signature and the features beyond the model (libvirt: virCPUx86GetHost).

use std::path::Path;

use super::cpu_x86_decode::{CpuSig, CpuidData, decode_cpuid, decode_host};
use super::cpu_x86_features::{FeatureSet, feature_index};
use super::cpu_x86_models::Vendor;
use super::{CpuSignature, HostCpu, TscCounter};

impl HostCpu {
    /// Describe the CPU from its CPUID data: the model libvirt would pick, the vendor and
    /// signature CPUID gives, and only the features beyond the model. `tsc` is the TSC
    /// frequency and scaling, asked for only when the CPU has an invariant TSC, as libvirt
    /// asks only then. When no model fits, the model stays unset and the features as they were.
    pub fn describe_x86(&mut self, data: &CpuidData, tsc: &dyn Fn() -> Option<(u64, bool)>) {
        if let Some(s) = data.signature() {
            self.signature = Some(CpuSignature {
                family: s.family,
                model: s.model,
                stepping: s.stepping,
            });
        }
        if let Some(v) = data.vendor() {
            self.vendor = Some(v.name().to_string());
        }
        if let Some(d) = decode_cpuid(data) {
            self.model = Some(d.model.to_string());
            self.features = d.features.iter().map(|f| f.to_string()).collect();
        }
        let invtsc = feature_index("invtsc").is_some_and(|i| data.features().contains(i));
        if invtsc && let Some((frequency, scaling)) = tsc() {
            self.tsc = Some(TscCounter {
                frequency,
                scaling: Some(scaling),
            });
        }
    }

    /// [`HostCpu::describe_x86`] for this machine's own CPU, read with the CPUID instruction;
    /// KVM (`kvm_device`) gives the TSC frequency. Does nothing on non-x86_64 builds.
    pub fn describe_this_x86_cpu(&mut self, kvm_device: &Path) {
        if let Some(data) = super::cpu_x86_probe::read_this_cpu(kvm_device) {
            self.describe_x86(&data, &|| super::cpu_x86_probe::tsc_info(kvm_device));
        }
    }

    /// Name the model from the features already listed (libvirt names, e.g. from
    /// /proc/cpuinfo), for a host whose CPUID cannot be read; keeps only the features beyond
    /// the model. Nothing changes when no model fits or a model is set already.
    pub fn describe_x86_from_features(&mut self) {
        if self.model.is_some() || !matches!(self.arch.as_str(), "x86_64" | "i686") {
            return;
        }
        let set = FeatureSet::from_names(
            self.features
                .iter()
                .map(String::as_str)
                .filter(|f| feature_index(f).is_some()),
        )
        .unwrap_or_default();
        let vendor = self.vendor.as_deref().and_then(Vendor::from_name);
        let sig = self.signature.map(|s| CpuSig {
            family: s.family,
            model: s.model,
            stepping: s.stepping,
        });
        if let Some(d) = decode_host(set, vendor, sig) {
            self.model = Some(d.model.to_string());
            self.features = d.features.iter().map(|f| f.to_string()).collect();
        }
    }
}
