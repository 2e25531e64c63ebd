//! Naming an x86 host CPU as libvirt does: the named model that fits the CPU best, plus the
//! features the CPU has beyond it.
//!
//! libvirt: x86Decode, x86DecodeUseCandidate, x86DataToCPU (src/cpu/cpu_x86.c). For a host
//! CPU a model fits only when the CPU has every feature of it; among fitting models one
//! standing for the host's own processor (family/model signature) wins, and otherwise the
//! one leaving the fewest features over. The models are tried newest first, so on a tie the
//! newest stays.

use std::collections::BTreeMap;

use super::cpu_x86_features::{FeatureSet, Location, Reg, features};
use super::cpu_x86_models::{MODELS, Vendor, X86Model};

/// What CPUID (and the MSRs read with it) said: `(leaf, sub-leaf) -> [eax, ebx, ecx, edx]`,
/// and `MSR index -> value`. Leaves not read are absent, which reads as all zeros.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CpuidData {
    pub leaves: BTreeMap<(u32, u32), [u32; 4]>,
    pub msrs: BTreeMap<u32, u64>,
}

/// Family, model and stepping as libvirt computes them from CPUID leaf 1 (the extended
/// family and model are always added, which is what the vendors' rules give for every
/// processor libvirt has a model for).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuSig {
    pub family: u32,
    pub model: u32,
    pub stepping: u32,
}

impl CpuSig {
    /// libvirt: virCPUx86SignatureFromCPUID.
    pub fn from_leaf1_eax(eax: u32) -> CpuSig {
        CpuSig {
            family: ((eax >> 20) & 0xff) + ((eax >> 8) & 0xf),
            model: ((eax >> 12) & 0xf0) + ((eax >> 4) & 0xf),
            stepping: eax & 0xf,
        }
    }
}

impl CpuidData {
    /// Register `reg` of `(leaf, sub)`, zero when not read.
    pub fn reg(&self, leaf: u32, sub: u32, reg: Reg) -> u32 {
        self.leaves.get(&(leaf, sub)).map_or(0, |r| r[reg as usize])
    }

    fn msr_half(&self, index: u32, reg: Reg) -> u32 {
        let v = self.msrs.get(&index).copied().unwrap_or(0);
        match reg {
            Reg::Edx => (v >> 32) as u32,
            _ => v as u32,
        }
    }

    /// The named features the data has.
    pub fn features(&self) -> FeatureSet {
        let mut set = FeatureSet::default();
        for (i, f) in features().enumerate() {
            let word = match f.location {
                Location::Cpuid { leaf, sub, reg } => self.reg(leaf, sub, reg),
                Location::Msr { index, reg } => self.msr_half(index, reg),
            };
            if word & (1 << f.bit) != 0 {
                set.insert(i);
            }
        }
        set
    }

    /// The vendor named by leaf 0 (EBX, EDX, ECX spell it).
    pub fn vendor(&self) -> Option<Vendor> {
        let r = self.leaves.get(&(0, 0))?;
        let mut s = Vec::with_capacity(12);
        for w in [r[1], r[3], r[2]] {
            s.extend_from_slice(&w.to_le_bytes());
        }
        Vendor::from_cpuid_string(std::str::from_utf8(&s).ok()?)
    }

    /// The signature in leaf 1, `None` when leaf 1 was not read.
    pub fn signature(&self) -> Option<CpuSig> {
        self.leaves
            .get(&(1, 0))
            .map(|r| CpuSig::from_leaf1_eax(r[0]))
    }
}

/// A host CPU as libvirt describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedHostCpu {
    pub model: &'static str,
    pub vendor: Option<Vendor>,
    /// Features the CPU has beyond the model, in libvirt's order.
    pub features: Vec<&'static str>,
}

/// Intel processors whose TSX is broken: their `hle`/`rtm` bits do not count
/// (libvirt: x86DataFilterTSX).
fn drop_broken_tsx(features: &mut FeatureSet, vendor: Option<Vendor>, sig: Option<CpuSig>) {
    let (Some(Vendor::Intel), Some(s)) = (vendor, sig) else {
        return;
    };
    if s.family == 6 && ((s.model == 63 && s.stepping < 4) || matches!(s.model, 60 | 69 | 70)) {
        for name in ["hle", "rtm"] {
            if let Some(i) = super::cpu_x86_features::feature_index(name) {
                features.remove(i);
            }
        }
    }
}

/// Name a host CPU with these features, vendor and signature. `None` when no model fits
/// (libvirt then reports "Cannot find suitable CPU model for given data").
pub fn decode_host(
    features: FeatureSet,
    vendor: Option<Vendor>,
    sig: Option<CpuSig>,
) -> Option<DecodedHostCpu> {
    let mut have = features;
    drop_broken_tsx(&mut have, vendor, sig);
    let sig_matches =
        |m: &X86Model| sig.is_some_and(|s| m.matches_signature(s.family, s.model, s.stepping));

    let mut best: Option<(&X86Model, FeatureSet)> = None;
    for cand in MODELS.iter().rev() {
        if let (Some(v), Some(cv)) = (vendor, cand.vendor)
            && v != cv
        {
            continue;
        }
        let model = cand.features();
        // A host CPU is never described as a model minus features.
        if !model.minus(&have).is_empty() {
            continue;
        }
        let extra = have.minus(&model);
        let take = match &best {
            None => true,
            Some((cur, cur_extra)) => {
                if sig_matches(cur) != sig_matches(cand) {
                    sig_matches(cand)
                } else {
                    extra.len() < cur_extra.len()
                }
            }
        };
        if take {
            best = Some((cand, extra));
        }
    }
    best.map(|(m, extra)| DecodedHostCpu {
        model: m.name,
        vendor,
        features: extra.names(),
    })
}

/// [`decode_host`] for CPUID data.
pub fn decode_cpuid(data: &CpuidData) -> Option<DecodedHostCpu> {
    decode_host(data.features(), data.vendor(), data.signature())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(names: &str) -> FeatureSet {
        FeatureSet::from_names(names.split_whitespace()).unwrap()
    }

    #[test]
    fn signature_from_cpuid() {
        // AMD family 19h (25) model 11h stepping 1.
        let s = CpuSig::from_leaf1_eax(0x00a1_0f11);
        assert_eq!((s.family, s.model, s.stepping), (25, 17, 1));
        // Intel family 6 model 85 stepping 7.
        let s = CpuSig::from_leaf1_eax(0x0005_0657);
        assert_eq!((s.family, s.model, s.stepping), (6, 85, 7));
    }

    #[test]
    fn vendor_and_bits_from_cpuid() {
        let mut d = CpuidData::default();
        // "AuthenticAMD": EBX "Auth", EDX "enti", ECX "cAMD".
        d.leaves
            .insert((0, 0), [0x10, 0x6874_7541, 0x444d_4163, 0x6974_6e65]);
        d.leaves.insert((1, 0), [0x00a1_0f11, 0, 1 << 31, 1]);
        d.leaves.insert((0x8000_0007, 0), [0, 0, 0, 1 << 8]);
        d.msrs.insert(0x10a, 1 | (1 << 33));
        assert_eq!(d.vendor(), Some(Vendor::Amd));
        assert_eq!(
            d.features().names(),
            vec!["fpu", "hypervisor", "invtsc", "rdctl-no"]
        );
        assert_eq!(d.signature().map(|s| s.model), Some(17));
    }

    #[test]
    fn broken_tsx_is_dropped() {
        let mut f = set("hle rtm fpu");
        drop_broken_tsx(
            &mut f,
            Some(Vendor::Intel),
            Some(CpuSig {
                family: 6,
                model: 63,
                stepping: 2,
            }),
        );
        assert_eq!(f.names(), vec!["fpu"]);
        let mut f = set("hle rtm");
        drop_broken_tsx(
            &mut f,
            Some(Vendor::Intel),
            Some(CpuSig {
                family: 6,
                model: 63,
                stepping: 4,
            }),
        );
        assert_eq!(f.len(), 2);
    }

    #[test]
    fn nothing_fits_nothing() {
        assert_eq!(decode_host(set("fpu"), None, None), None);
    }
}
