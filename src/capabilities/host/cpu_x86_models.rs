//! The named x86 CPU models libvirt describes a host CPU with: each model's vendor, the
//! CPUID signatures of the processors it was modelled on, and its features. These are the
//! facts of libvirt 9.0's CPU map (models it may use for a host), written as differences
//! from an earlier model where that is shorter. The order is the map's: oldest first, and
//! the decoder tries the newest first.
//!
//! QEMU's definitions of the same names (`domcaps/x86_models.rs`) are not these: libvirt's
//! lists differ for most models (QEMU has since added `vme`, `arat`, `xsaveopt`, `f16c`,
//! `rdrand`, `abm`, `pku`, ... to its definitions; libvirt kept `monitor` in the Core models
//! and `rdtscp` in Opteron_G2), and a host decoded with QEMU's lists gets other models.

use std::sync::OnceLock;

use super::cpu_x86_features::FeatureSet;

/// CPU vendors libvirt knows, with the CPUID vendor strings that identify them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vendor {
    Intel,
    Amd,
    Hygon,
}

impl Vendor {
    pub const ALL: [Vendor; 3] = [Vendor::Intel, Vendor::Amd, Vendor::Hygon];

    /// libvirt's name (`<vendor>`).
    pub fn name(self) -> &'static str {
        match self {
            Vendor::Intel => "Intel",
            Vendor::Amd => "AMD",
            Vendor::Hygon => "Hygon",
        }
    }

    /// The 12-character string CPUID leaf 0 returns in EBX, EDX, ECX.
    pub fn cpuid_string(self) -> &'static str {
        match self {
            Vendor::Intel => "GenuineIntel",
            Vendor::Amd => "AuthenticAMD",
            Vendor::Hygon => "HygonGenuine",
        }
    }

    pub fn from_cpuid_string(s: &str) -> Option<Vendor> {
        Vendor::ALL.into_iter().find(|v| v.cpuid_string() == s)
    }

    pub fn from_name(s: &str) -> Option<Vendor> {
        Vendor::ALL.into_iter().find(|v| v.name() == s)
    }
}

/// A processor a model stands for: family, model and, when only some steppings are meant,
/// their inclusive range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signature {
    pub family: u32,
    pub model: u32,
    pub steppings: Option<(u32, u32)>,
}

const fn sig(family: u32, model: u32, steppings: Option<(u32, u32)>) -> Signature {
    Signature {
        family,
        model,
        steppings,
    }
}

impl Signature {
    pub fn matches(&self, family: u32, model: u32, stepping: u32) -> bool {
        self.family == family
            && self.model == model
            && self
                .steppings
                .is_none_or(|(lo, hi)| (lo..=hi).contains(&stepping))
    }
}

/// A named model. Its features are those of `like` (a model listed earlier), plus `add`,
/// minus `drop` (space-separated libvirt feature names).
#[derive(Debug)]
pub struct X86Model {
    pub name: &'static str,
    pub vendor: Option<Vendor>,
    pub signatures: &'static [Signature],
    like: Option<&'static str>,
    add: &'static str,
    drop: &'static str,
}

#[rustfmt::skip]
pub static MODELS: &[X86Model] = &[
    X86Model { name: "486", vendor: None, signatures: &[],
        like: None,
        add: "fpu vme pse",
        drop: "" },
    X86Model { name: "pentium", vendor: None, signatures: &[],
        like: None,
        add: "fpu vme de pse tsc msr mce cx8 mmx",
        drop: "" },
    X86Model { name: "pentium2", vendor: None, signatures: &[],
        like: None,
        add: "fpu vme de pse tsc msr pae mce cx8 sep mtrr pge mca cmov pat pse36 mmx fxsr",
        drop: "" },
    X86Model { name: "pentium3", vendor: None, signatures: &[],
        like: Some("pentium2"),
        add: "sse",
        drop: "" },
    X86Model { name: "pentiumpro", vendor: None, signatures: &[],
        like: Some("pentium3"),
        add: "apic sse2",
        drop: "vme mtrr mca pse36" },
    X86Model { name: "coreduo", vendor: Some(Vendor::Intel), signatures: &[],
        like: Some("pentium3"),
        add: "apic clflush sse2 pni monitor nx",
        drop: "pse36" },
    X86Model { name: "n270", vendor: Some(Vendor::Intel), signatures: &[],
        like: Some("coreduo"),
        add: "ssse3",
        drop: "" },
    X86Model { name: "core2duo", vendor: Some(Vendor::Intel), signatures: &[],
        like: Some("n270"),
        add: "pse36 syscall lm",
        drop: "" },
    X86Model { name: "qemu32", vendor: None, signatures: &[],
        like: Some("pentiumpro"),
        add: "pni",
        drop: "" },
    X86Model { name: "kvm32", vendor: None, signatures: &[],
        like: Some("qemu32"),
        add: "mtrr mca pse36 clflush",
        drop: "" },
    X86Model { name: "qemu64", vendor: None, signatures: &[],
        like: Some("kvm32"),
        add: "cx16 syscall nx lm svm",
        drop: "" },
    X86Model { name: "kvm64", vendor: None, signatures: &[],
        like: Some("qemu64"),
        add: "",
        drop: "svm" },
    X86Model { name: "Conroe", vendor: Some(Vendor::Intel), signatures: &[sig(6, 15, None), sig(6, 22, None)],
        like: Some("core2duo"),
        add: "lahf_lm",
        drop: "vme monitor" },
    X86Model { name: "Penryn", vendor: Some(Vendor::Intel), signatures: &[sig(6, 23, None), sig(6, 29, None)],
        like: Some("Conroe"),
        add: "cx16 sse4.1",
        drop: "" },
    X86Model { name: "Nehalem", vendor: Some(Vendor::Intel), signatures: &[sig(6, 26, None), sig(6, 30, None), sig(6, 31, None), sig(6, 46, None)],
        like: Some("Penryn"),
        add: "sse4.2 popcnt",
        drop: "" },
    X86Model { name: "Nehalem-IBRS", vendor: Some(Vendor::Intel), signatures: &[sig(6, 26, None), sig(6, 30, None), sig(6, 31, None), sig(6, 46, None)],
        like: Some("Nehalem"),
        add: "spec-ctrl",
        drop: "" },
    X86Model { name: "Westmere", vendor: Some(Vendor::Intel), signatures: &[sig(6, 44, None), sig(6, 47, None), sig(6, 37, None)],
        like: Some("Nehalem"),
        add: "aes",
        drop: "" },
    X86Model { name: "Westmere-IBRS", vendor: Some(Vendor::Intel), signatures: &[sig(6, 44, None)],
        like: Some("Nehalem-IBRS"),
        add: "aes",
        drop: "" },
    X86Model { name: "SandyBridge", vendor: Some(Vendor::Intel), signatures: &[sig(6, 42, None), sig(6, 45, None)],
        like: Some("Westmere"),
        add: "pclmuldq x2apic tsc-deadline xsave avx rdtscp",
        drop: "" },
    X86Model { name: "SandyBridge-IBRS", vendor: Some(Vendor::Intel), signatures: &[sig(6, 42, None), sig(6, 45, None)],
        like: Some("SandyBridge"),
        add: "spec-ctrl",
        drop: "" },
    X86Model { name: "IvyBridge", vendor: Some(Vendor::Intel), signatures: &[sig(6, 58, None), sig(6, 62, None)],
        like: Some("SandyBridge"),
        add: "vme f16c rdrand fsgsbase smep erms",
        drop: "" },
    X86Model { name: "IvyBridge-IBRS", vendor: Some(Vendor::Intel), signatures: &[sig(6, 58, None), sig(6, 62, None)],
        like: Some("IvyBridge"),
        add: "spec-ctrl",
        drop: "" },
    X86Model { name: "Haswell-noTSX", vendor: Some(Vendor::Intel), signatures: &[sig(6, 60, None), sig(6, 63, None), sig(6, 69, None), sig(6, 70, None)],
        like: Some("SandyBridge"),
        add: "fma pcid movbe fsgsbase bmi1 avx2 smep bmi2 erms invpcid",
        drop: "" },
    X86Model { name: "Haswell-noTSX-IBRS", vendor: Some(Vendor::Intel), signatures: &[sig(6, 60, None), sig(6, 63, None), sig(6, 69, None), sig(6, 70, None)],
        like: Some("Haswell-noTSX"),
        add: "spec-ctrl",
        drop: "" },
    X86Model { name: "Haswell", vendor: Some(Vendor::Intel), signatures: &[sig(6, 60, None), sig(6, 63, None), sig(6, 69, None), sig(6, 70, None)],
        like: Some("Haswell-noTSX"),
        add: "hle rtm",
        drop: "" },
    X86Model { name: "Haswell-IBRS", vendor: Some(Vendor::Intel), signatures: &[sig(6, 60, None), sig(6, 63, None), sig(6, 69, None), sig(6, 70, None)],
        like: Some("Haswell"),
        add: "spec-ctrl",
        drop: "" },
    X86Model { name: "Broadwell-noTSX", vendor: Some(Vendor::Intel), signatures: &[sig(6, 61, None), sig(6, 71, None), sig(6, 79, None), sig(6, 86, None)],
        like: Some("Haswell-noTSX"),
        add: "rdseed adx smap 3dnowprefetch",
        drop: "" },
    X86Model { name: "Broadwell-noTSX-IBRS", vendor: Some(Vendor::Intel), signatures: &[sig(6, 61, None), sig(6, 71, None), sig(6, 79, None), sig(6, 86, None)],
        like: Some("Broadwell-noTSX"),
        add: "spec-ctrl",
        drop: "" },
    X86Model { name: "Broadwell", vendor: Some(Vendor::Intel), signatures: &[sig(6, 61, None), sig(6, 71, None), sig(6, 79, None), sig(6, 86, None)],
        like: Some("Broadwell-noTSX"),
        add: "hle rtm",
        drop: "" },
    X86Model { name: "Broadwell-IBRS", vendor: Some(Vendor::Intel), signatures: &[sig(6, 61, None), sig(6, 71, None), sig(6, 79, None), sig(6, 86, None)],
        like: Some("Broadwell"),
        add: "spec-ctrl",
        drop: "" },
    X86Model { name: "Skylake-Client", vendor: Some(Vendor::Intel), signatures: &[sig(6, 94, None), sig(6, 78, None), sig(6, 142, None), sig(6, 158, None)],
        like: Some("Broadwell"),
        add: "vme f16c rdrand arat mpx xsaveopt xsavec xgetbv1 abm",
        drop: "" },
    X86Model { name: "Skylake-Client-IBRS", vendor: Some(Vendor::Intel), signatures: &[sig(6, 94, None), sig(6, 78, None), sig(6, 142, None), sig(6, 158, None)],
        like: Some("Skylake-Client"),
        add: "spec-ctrl",
        drop: "" },
    X86Model { name: "Skylake-Client-noTSX-IBRS", vendor: Some(Vendor::Intel), signatures: &[sig(6, 94, None), sig(6, 78, None), sig(6, 142, None), sig(6, 158, None)],
        like: Some("Skylake-Client-IBRS"),
        add: "",
        drop: "hle rtm" },
    X86Model { name: "Skylake-Server", vendor: Some(Vendor::Intel), signatures: &[sig(6, 85, Some((0, 4)))],
        like: Some("Skylake-Client"),
        add: "avx512f avx512dq clwb avx512cd avx512bw avx512vl pdpe1gb",
        drop: "" },
    X86Model { name: "Skylake-Server-IBRS", vendor: Some(Vendor::Intel), signatures: &[sig(6, 85, Some((0, 4)))],
        like: Some("Skylake-Server"),
        add: "spec-ctrl",
        drop: "" },
    X86Model { name: "Skylake-Server-noTSX-IBRS", vendor: Some(Vendor::Intel), signatures: &[sig(6, 85, Some((0, 4)))],
        like: Some("Skylake-Server-IBRS"),
        add: "",
        drop: "hle rtm" },
    X86Model { name: "Cascadelake-Server", vendor: Some(Vendor::Intel), signatures: &[sig(6, 85, Some((5, 7)))],
        like: Some("Skylake-Server-IBRS"),
        add: "clflushopt avx512vnni ssbd",
        drop: "" },
    X86Model { name: "Cascadelake-Server-noTSX", vendor: Some(Vendor::Intel), signatures: &[sig(6, 85, Some((5, 7)))],
        like: Some("Cascadelake-Server"),
        add: "",
        drop: "hle rtm" },
    X86Model { name: "Icelake-Client", vendor: Some(Vendor::Intel), signatures: &[sig(6, 126, None)],
        like: Some("Skylake-Client-IBRS"),
        add: concat!(
            "avx512vbmi umip pku avx512vbmi2 gfni vaes vpclmulqdq avx512vnni avx512bitalg ",
            "avx512-vpopcntdq ssbd wbnoinvd",
        ),
        drop: "" },
    X86Model { name: "Icelake-Client-noTSX", vendor: Some(Vendor::Intel), signatures: &[sig(6, 126, None)],
        like: Some("Icelake-Client"),
        add: "",
        drop: "hle rtm" },
    X86Model { name: "Icelake-Server", vendor: Some(Vendor::Intel), signatures: &[sig(6, 106, None)],
        like: Some("Icelake-Client"),
        add: "avx512f avx512dq clflushopt clwb avx512cd avx512bw avx512vl la57 pdpe1gb",
        drop: "" },
    X86Model { name: "Icelake-Server-noTSX", vendor: Some(Vendor::Intel), signatures: &[sig(6, 106, None)],
        like: Some("Icelake-Server"),
        add: "",
        drop: "hle rtm" },
    X86Model { name: "Cooperlake", vendor: Some(Vendor::Intel), signatures: &[sig(6, 85, Some((10, 11)))],
        like: Some("Cascadelake-Server"),
        add: concat!(
            "pku stibp arch-capabilities avx512-bf16 rdctl-no ibrs-all skip-l1dfl-vmentry mds-no ",
            "pschange-mc-no taa-no",
        ),
        drop: "mpx" },
    X86Model { name: "Snowridge", vendor: Some(Vendor::Intel), signatures: &[sig(6, 134, None)],
        like: Some("IvyBridge-IBRS"),
        add: concat!(
            "movbe arat rdseed smap clflushopt clwb sha-ni umip gfni cldemote movdiri movdir64b ",
            "arch-capabilities core-capability ssbd xsaveopt xsavec xgetbv1 pdpe1gb 3dnowprefetch ",
            "split-lock-detect",
        ),
        drop: "avx f16c" },
    X86Model { name: "athlon", vendor: Some(Vendor::Amd), signatures: &[],
        like: Some("pentium3"),
        add: "apic sse2 mmxext 3dnowext 3dnow",
        drop: "mca" },
    X86Model { name: "phenom", vendor: Some(Vendor::Amd), signatures: &[],
        like: Some("qemu64"),
        add: "monitor mmxext fxsr_opt 3dnowext 3dnow",
        drop: "cx16" },
    X86Model { name: "Opteron_G1", vendor: Some(Vendor::Amd), signatures: &[sig(15, 6, None)],
        like: Some("kvm64"),
        add: "",
        drop: "cx16" },
    X86Model { name: "Opteron_G2", vendor: Some(Vendor::Amd), signatures: &[sig(15, 6, None)],
        like: Some("qemu64"),
        add: "rdtscp lahf_lm",
        drop: "" },
    X86Model { name: "Opteron_G3", vendor: Some(Vendor::Amd), signatures: &[sig(15, 6, None)],
        like: Some("Opteron_G2"),
        add: "popcnt abm sse4a misalignsse",
        drop: "" },
    X86Model { name: "Opteron_G4", vendor: Some(Vendor::Amd), signatures: &[sig(21, 1, None)],
        like: Some("Opteron_G3"),
        add: "pclmuldq ssse3 sse4.1 sse4.2 aes xsave avx pdpe1gb 3dnowprefetch xop fma4",
        drop: "" },
    X86Model { name: "Opteron_G5", vendor: Some(Vendor::Amd), signatures: &[sig(21, 2, None)],
        like: Some("Opteron_G4"),
        add: "fma f16c tbm",
        drop: "" },
    X86Model { name: "EPYC", vendor: Some(Vendor::Amd), signatures: &[sig(23, 1, None)],
        like: Some("Opteron_G5"),
        add: concat!(
            "vme movbe rdrand arat fsgsbase bmi1 avx2 smep bmi2 rdseed adx smap clflushopt sha-ni ",
            "xsaveopt xsavec xgetbv1 mmxext fxsr_opt cr8legacy osvw",
        ),
        drop: "xop fma4 tbm" },
    X86Model { name: "EPYC-IBPB", vendor: Some(Vendor::Amd), signatures: &[sig(23, 1, None)],
        like: Some("EPYC"),
        add: "ibpb",
        drop: "" },
    X86Model { name: "EPYC-Rome", vendor: Some(Vendor::Amd), signatures: &[sig(23, 49, None)],
        like: Some("EPYC-IBPB"),
        add: "clwb umip rdpid perfctr_core clzero xsaveerptr wbnoinvd amd-stibp npt nrip-save",
        drop: "" },
    X86Model { name: "EPYC-Milan", vendor: Some(Vendor::Amd), signatures: &[sig(25, 1, None)],
        like: Some("EPYC-Rome"),
        add: "pcid erms invpcid pku fsrm xsaves ibrs amd-ssbd svme-addr-chk",
        drop: "" },
    X86Model { name: "Dhyana", vendor: Some(Vendor::Hygon), signatures: &[sig(24, 0, None)],
        like: None,
        add: concat!(
            "fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx ",
            "fxsr sse sse2 pni ssse3 fma cx16 sse4.1 sse4.2 movbe popcnt xsave avx f16c rdrand arat ",
            "fsgsbase bmi1 avx2 smep bmi2 rdseed adx smap clflushopt xsaveopt xsavec xgetbv1 ",
            "syscall nx mmxext fxsr_opt pdpe1gb rdtscp lm lahf_lm svm cr8legacy abm sse4a ",
            "misalignsse 3dnowprefetch osvw ibpb",
        ),
        drop: "" },
];

/// Every model's features, resolved once.
fn resolved() -> &'static [FeatureSet] {
    static SETS: OnceLock<Vec<FeatureSet>> = OnceLock::new();
    SETS.get_or_init(|| {
        let mut sets: Vec<FeatureSet> = Vec::with_capacity(MODELS.len());
        for m in MODELS {
            let mut set = match m.like {
                Some(base) => {
                    let i = MODELS[..sets.len()]
                        .iter()
                        .position(|b| b.name == base)
                        .unwrap_or_else(|| {
                            panic!("{}: base {base} is not listed before it", m.name)
                        });
                    sets[i]
                }
                None => FeatureSet::default(),
            };
            let add = FeatureSet::from_names(m.add.split_whitespace())
                .unwrap_or_else(|f| panic!("{}: unknown feature {f}", m.name));
            let drop = FeatureSet::from_names(m.drop.split_whitespace())
                .unwrap_or_else(|f| panic!("{}: unknown feature {f}", m.name));
            for i in 0..FeatureSet::CAPACITY {
                if add.contains(i) {
                    set.insert(i);
                }
                if drop.contains(i) {
                    set.remove(i);
                }
            }
            sets.push(set);
        }
        sets
    })
}

impl X86Model {
    /// The model's features.
    pub fn features(&self) -> FeatureSet {
        // Names are unique (checked by a test), so the name finds this model's entry.
        let i = MODELS
            .iter()
            .position(|m| m.name == self.name)
            .expect("a model of MODELS");
        resolved()[i]
    }

    pub fn find(name: &str) -> Option<&'static X86Model> {
        MODELS.iter().find(|m| m.name == name)
    }

    /// Features QEMU took out of its version of the model after libvirt's map listed them
    /// (the map's `removed='yes'`): a guest of this model gets them explicitly disabled, so
    /// that it looks the same to both (libvirt: virCPUx86DisableRemovedFeatures).
    pub fn removed_features(&self) -> &'static [&'static str] {
        match self.name {
            "Dhyana" | "EPYC" | "EPYC-IBPB" | "Opteron_G3" => &["monitor"],
            "Icelake-Client"
            | "Icelake-Client-noTSX"
            | "Icelake-Server"
            | "Icelake-Server-noTSX" => &["intel-pt"],
            _ => &[],
        }
    }

    /// Whether the model stands for the processor with this signature.
    pub fn matches_signature(&self, family: u32, model: u32, stepping: u32) -> bool {
        self.signatures
            .iter()
            .any(|s| s.matches(family, model, stepping))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn models_resolve() {
        let names: Vec<&str> = MODELS.iter().map(|m| m.name).collect();
        for (i, m) in MODELS.iter().enumerate() {
            assert!(!names[..i].contains(&m.name), "{} listed twice", m.name);
            assert!(!m.features().is_empty(), "{}", m.name);
        }
        let kvm64 = X86Model::find("kvm64").unwrap().features();
        assert_eq!(kvm64.len(), 26);
        assert_eq!(
            kvm64.names().join(" "),
            "fpu de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx \
             fxsr sse sse2 pni cx16 syscall nx lm"
        );
        assert_eq!(X86Model::find("EPYC-Milan").unwrap().features().len(), 85);
        assert_eq!(
            X86Model::find("Icelake-Server").unwrap().features().len(),
            85
        );
        assert!(X86Model::find("cpu64-rhel6").is_none());
    }

    #[test]
    fn signatures_and_vendors() {
        let sky = X86Model::find("Skylake-Server").unwrap();
        assert!(sky.matches_signature(6, 85, 4));
        assert!(!sky.matches_signature(6, 85, 5));
        assert!(
            X86Model::find("Cascadelake-Server")
                .unwrap()
                .matches_signature(6, 85, 7)
        );
        assert_eq!(Vendor::from_cpuid_string("AuthenticAMD"), Some(Vendor::Amd));
        assert_eq!(Vendor::from_name("Hygon"), Some(Vendor::Hygon));
        assert_eq!(Vendor::from_cpuid_string("GenuineIotel"), None);
    }
}
