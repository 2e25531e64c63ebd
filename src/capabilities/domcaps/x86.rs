//! The host-model CPU of an x86 guest: QEMU's expansion of the host (or of `max` under TCG)
//! described as the closest named model plus the features that differ.
//!
//! libvirt does this against its CPU map; we have no copy of that map, so the named models are
//! QEMU's own definitions (generated into `x86_models.rs` by `tools/gen-x86-models.py`) with
//! the few corrections in [`model_features`] where libvirt's models are known to differ.

use std::collections::BTreeSet;

use crate::capabilities::qemu::{CpuModel, CpuPropValue, HostCpu};

use super::x86_models::MODELS;

/// A named x86 model: its vendor as libvirt names it (generic models have none), its CPUID
/// signature and its features (libvirt names).
#[derive(Debug)]
pub struct X86Model {
    pub name: &'static str,
    pub vendor: Option<&'static str>,
    pub family: u32,
    pub model: u32,
    pub features: &'static [&'static str],
}

/// x86 features libvirt describes guests with, in the order libvirt lists them (by CPUID leaf,
/// register and bit, then MSR-based ones), as (libvirt name, QEMU property name). QEMU facts
/// not listed here (KVM paravirt bits, VMX controls, QEMU-only knobs) never appear in a CPU
/// definition.
pub const FEATURES: &[(&str, &str)] = &[
    // CPUID 1, EDX
    ("fpu", "fpu"),
    ("vme", "vme"),
    ("de", "de"),
    ("pse", "pse"),
    ("tsc", "tsc"),
    ("msr", "msr"),
    ("pae", "pae"),
    ("mce", "mce"),
    ("cx8", "cx8"),
    ("apic", "apic"),
    ("sep", "sep"),
    ("mtrr", "mtrr"),
    ("pge", "pge"),
    ("mca", "mca"),
    ("cmov", "cmov"),
    ("pat", "pat"),
    ("pse36", "pse36"),
    ("pn", "pn"),
    ("clflush", "clflush"),
    ("ds", "ds"),
    ("acpi", "acpi"),
    ("mmx", "mmx"),
    ("fxsr", "fxsr"),
    ("sse", "sse"),
    ("sse2", "sse2"),
    ("ss", "ss"),
    ("ht", "ht"),
    ("tm", "tm"),
    ("ia64", "ia64"),
    ("pbe", "pbe"),
    // CPUID 1, ECX
    ("pni", "pni"),
    ("pclmuldq", "pclmulqdq"),
    ("dtes64", "dtes64"),
    ("monitor", "monitor"),
    ("ds_cpl", "ds-cpl"),
    ("vmx", "vmx"),
    ("smx", "smx"),
    ("est", "est"),
    ("tm2", "tm2"),
    ("ssse3", "ssse3"),
    ("cid", "cid"),
    ("fma", "fma"),
    ("cx16", "cx16"),
    ("xtpr", "xtpr"),
    ("pdcm", "pdcm"),
    ("pcid", "pcid"),
    ("dca", "dca"),
    ("sse4.1", "sse4.1"),
    ("sse4.2", "sse4.2"),
    ("x2apic", "x2apic"),
    ("movbe", "movbe"),
    ("popcnt", "popcnt"),
    ("tsc-deadline", "tsc-deadline"),
    ("aes", "aes"),
    ("xsave", "xsave"),
    ("osxsave", "osxsave"),
    ("avx", "avx"),
    ("f16c", "f16c"),
    ("rdrand", "rdrand"),
    ("hypervisor", "hypervisor"),
    // CPUID 6, EAX
    ("arat", "arat"),
    // CPUID 7.0, EBX
    ("fsgsbase", "fsgsbase"),
    ("tsc_adjust", "tsc-adjust"),
    ("sgx", "sgx"),
    ("bmi1", "bmi1"),
    ("hle", "hle"),
    ("avx2", "avx2"),
    ("smep", "smep"),
    ("bmi2", "bmi2"),
    ("erms", "erms"),
    ("invpcid", "invpcid"),
    ("rtm", "rtm"),
    ("mpx", "mpx"),
    ("avx512f", "avx512f"),
    ("avx512dq", "avx512dq"),
    ("rdseed", "rdseed"),
    ("adx", "adx"),
    ("smap", "smap"),
    ("avx512ifma", "avx512ifma"),
    ("pcommit", "pcommit"),
    ("clflushopt", "clflushopt"),
    ("clwb", "clwb"),
    ("intel-pt", "intel-pt"),
    ("avx512pf", "avx512pf"),
    ("avx512er", "avx512er"),
    ("avx512cd", "avx512cd"),
    ("sha-ni", "sha-ni"),
    ("avx512bw", "avx512bw"),
    ("avx512vl", "avx512vl"),
    // CPUID 7.0, ECX
    ("avx512vbmi", "avx512vbmi"),
    ("umip", "umip"),
    ("pku", "pku"),
    ("ospke", "ospke"),
    ("waitpkg", "waitpkg"),
    ("avx512vbmi2", "avx512vbmi2"),
    ("gfni", "gfni"),
    ("vaes", "vaes"),
    ("vpclmulqdq", "vpclmulqdq"),
    ("avx512vnni", "avx512vnni"),
    ("avx512bitalg", "avx512bitalg"),
    ("avx512-vpopcntdq", "avx512-vpopcntdq"),
    ("la57", "la57"),
    ("rdpid", "rdpid"),
    ("cldemote", "cldemote"),
    ("movdiri", "movdiri"),
    ("movdir64b", "movdir64b"),
    ("sgxlc", "sgxlc"),
    ("pks", "pks"),
    // CPUID 7.0, EDX
    ("avx512-4vnniw", "avx512-4vnniw"),
    ("avx512-4fmaps", "avx512-4fmaps"),
    ("fsrm", "fsrm"),
    ("avx512-vp2intersect", "avx512-vp2intersect"),
    ("md-clear", "md-clear"),
    ("serialize", "serialize"),
    ("tsx-ldtrk", "tsx-ldtrk"),
    ("amx-bf16", "amx-bf16"),
    ("avx512-fp16", "avx512-fp16"),
    ("amx-tile", "amx-tile"),
    ("amx-int8", "amx-int8"),
    ("spec-ctrl", "spec-ctrl"),
    ("stibp", "stibp"),
    ("arch-capabilities", "arch-capabilities"),
    ("core-capability", "core-capability"),
    ("ssbd", "ssbd"),
    // CPUID 7.1, EAX
    ("avx-vnni", "avx-vnni"),
    ("avx512-bf16", "avx512-bf16"),
    // CPUID 0xD.1, EAX
    ("xsaveopt", "xsaveopt"),
    ("xsavec", "xsavec"),
    ("xgetbv1", "xgetbv1"),
    ("xsaves", "xsaves"),
    ("xfd", "xfd"),
    // CPUID 0x80000001, EDX
    ("syscall", "syscall"),
    ("nx", "nx"),
    ("mmxext", "mmxext"),
    ("fxsr_opt", "fxsr-opt"),
    ("pdpe1gb", "pdpe1gb"),
    ("rdtscp", "rdtscp"),
    ("lm", "lm"),
    ("3dnowext", "3dnowext"),
    ("3dnow", "3dnow"),
    // CPUID 0x80000001, ECX
    ("lahf_lm", "lahf-lm"),
    ("cmp_legacy", "cmp-legacy"),
    ("svm", "svm"),
    ("extapic", "extapic"),
    ("cr8legacy", "cr8legacy"),
    ("abm", "abm"),
    ("sse4a", "sse4a"),
    ("misalignsse", "misalignsse"),
    ("3dnowprefetch", "3dnowprefetch"),
    ("osvw", "osvw"),
    ("ibs", "ibs"),
    ("xop", "xop"),
    ("skinit", "skinit"),
    ("wdt", "wdt"),
    ("lwp", "lwp"),
    ("fma4", "fma4"),
    ("tce", "tce"),
    ("nodeid_msr", "nodeid-msr"),
    ("tbm", "tbm"),
    ("topoext", "topoext"),
    ("perfctr_core", "perfctr-core"),
    ("perfctr_nb", "perfctr-nb"),
    // CPUID 0x80000007, EDX
    ("invtsc", "invtsc"),
    // CPUID 0x80000008, EBX
    ("clzero", "clzero"),
    ("xsaveerptr", "xsaveerptr"),
    ("wbnoinvd", "wbnoinvd"),
    ("ibpb", "ibpb"),
    ("ibrs", "ibrs"),
    ("amd-stibp", "amd-stibp"),
    ("amd-ssbd", "amd-ssbd"),
    ("virt-ssbd", "virt-ssbd"),
    ("amd-no-ssb", "amd-no-ssb"),
    // CPUID 0x8000000A, EDX (SVM)
    ("npt", "npt"),
    ("lbrv", "lbrv"),
    ("svm-lock", "svm-lock"),
    ("nrip-save", "nrip-save"),
    ("tsc-scale", "tsc-scale"),
    ("vmcb-clean", "vmcb-clean"),
    ("flushbyasid", "flushbyasid"),
    ("decodeassists", "decodeassists"),
    ("pause-filter", "pause-filter"),
    ("pfthreshold", "pfthreshold"),
    ("avic", "avic"),
    ("v-vmsave-vmload", "v-vmsave-vmload"),
    ("vgif", "vgif"),
    ("svme-addr-chk", "svme-addr-chk"),
    // IA32_ARCH_CAPABILITIES MSR
    ("rdctl-no", "rdctl-no"),
    ("ibrs-all", "ibrs-all"),
    ("rsba", "rsba"),
    ("skip-l1dfl-vmentry", "skip-l1dfl-vmentry"),
    ("ssb-no", "ssb-no"),
    ("mds-no", "mds-no"),
    ("pschange-mc-no", "pschange-mc-no"),
    ("tsx-ctrl", "tsx-ctrl"),
    ("taa-no", "taa-no"),
    // IA32_CORE_CAPABILITY MSR
    ("split-lock-detect", "split-lock-detect"),
];

/// First of the MSR-based features in [`FEATURES`]: QEMUs that cannot say which features are
/// unavailable cannot be trusted with these either, so libvirt drops them then.
const FIRST_MSR_FEATURE: &str = "rdctl-no";

/// A host-model CPU: a named model, its vendor, and per feature whether it is required on top
/// of the model or disabled from it, in [`FEATURES`] order (required ones first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedCpu {
    pub model: String,
    pub vendor: Option<String>,
    pub features: Vec<(String, &'static str)>,
}

fn libvirt_name(qemu: &str) -> Option<&'static str> {
    FEATURES.iter().find(|(_, q)| *q == qemu).map(|(l, _)| *l)
}

fn position(name: &str) -> usize {
    FEATURES
        .iter()
        .position(|(l, _)| *l == name)
        .unwrap_or(FEATURES.len())
}

/// Features of a named model as libvirt's CPU map has them, where that differs from QEMU's
/// current definition: QEMU models list `monitor` (KVM hides it, so libvirt's models never had
/// it) and `hypervisor` (set at run time, part of no model); libvirt's Skylake-era Intel models
/// keep `mpx`, which later QEMUs dropped; its first Opteron generations have no `vme`, its
/// EPYC and EPYC-IBPB no `npt`, and its EPYC-Rome neither `xsaves` nor `topoext`, all of which
/// QEMU has since added to its definitions; its phenom, modelled on the real K10 processor,
/// has `misalignsse`, `3dnowprefetch` and `osvw`, which QEMU's leaves out.
fn model_features(m: &X86Model) -> BTreeSet<&'static str> {
    let drop: &[&str] = match m.name {
        "Opteron_G1" | "Opteron_G2" | "Opteron_G3" => &["vme"],
        "EPYC" | "EPYC-IBPB" => &["npt"],
        "EPYC-Rome" => &["xsaves", "topoext"],
        _ => &[],
    };
    let mut f: BTreeSet<&'static str> = m
        .features
        .iter()
        .copied()
        .filter(|f| !matches!(*f, "monitor" | "hypervisor") && !drop.contains(f))
        .collect();
    if m.name == "phenom" {
        f.extend(["misalignsse", "3dnowprefetch", "osvw"]);
    }
    if m.name.starts_with("Skylake-")
        || m.name.starts_with("Cascadelake-")
        || m.name.starts_with("Icelake-")
    {
        f.insert("mpx");
    }
    f
}

/// How good a model is as a description: lower is better.
#[derive(Debug, Clone, Copy)]
struct Score {
    total: usize,
    penalty: usize,
}

impl Score {
    /// libvirt 9.0 weighs disabled features more than added ones, with a penalty growing by
    /// one per disabled feature (2, 3, 4, ...). Its loop bounds itself by the number of
    /// features still counted as enabled, so only the first half (rounded up) of the disabled
    /// features, which come last, is ever penalized; we reproduce what it computes.
    fn of(require: usize, disable: usize) -> Score {
        let total = require + disable;
        let mut enabled = total;
        let mut penalty = 0;
        let mut step = 2;
        let mut i = 0;
        while i < enabled {
            if i >= require {
                enabled -= 1;
                penalty += step;
                step += 1;
            }
            i += 1;
        }
        Score {
            total: enabled + penalty,
            penalty,
        }
    }
}

/// Describe `host` as libvirt does: among the named models QEMU also knows (`qemu_models`, with
/// their blockers), of the host's vendor or of none, pick the one needing the fewest feature
/// changes (see [`Score`]), preferring models whose signature matches the host's. `drop_msr` removes
/// MSR-based features from the result. `None` when nothing fits.
pub fn decode_host(host: &HostCpu, qemu_models: &[CpuModel], drop_msr: bool) -> Option<DecodedCpu> {
    let mut have: BTreeSet<&'static str> = BTreeSet::new();
    let mut vendor = None;
    let (mut family, mut model) = (0i64, 0i64);
    for p in &host.props {
        match &p.value {
            CpuPropValue::Boolean(true) => {
                if let Some(n) = libvirt_name(&p.name) {
                    have.insert(n);
                }
            }
            CpuPropValue::String(s) if p.name == "vendor" => {
                vendor = match s.as_str() {
                    "GenuineIntel" => Some("Intel"),
                    "AuthenticAMD" => Some("AMD"),
                    "HygonGenuine" => Some("Hygon"),
                    _ => None,
                };
            }
            CpuPropValue::Number(n) if p.name == "family" => family = *n,
            CpuPropValue::Number(n) if p.name == "model" => model = *n,
            _ => {}
        }
    }
    // Generic models (no vendor) stand for no particular processor: they have no signature.
    let sig_matches = |m: &X86Model| {
        m.vendor.is_some()
            && family != 0
            && i64::from(m.family) == family
            && i64::from(m.model) == model
    };

    struct Best<'a> {
        model: &'a X86Model,
        require: Vec<&'static str>,
        disable: Vec<&'static str>,
    }
    let mut best: Option<Best> = None;
    // Newest models first, so that among equally good fits the newest wins.
    for cand in MODELS.iter().rev() {
        let Some(qm) = qemu_models.iter().find(|q| q.name == cand.name) else {
            continue;
        };
        if let (Some(v), Some(cv)) = (vendor, cand.vendor)
            && v != cv
        {
            continue;
        }
        let mut mf = model_features(cand);
        // QEMU's definition of the model is what a guest gets: a feature QEMU says blocks the
        // model here belongs to it even where the named model's own list lacks it.
        for b in &qm.blockers {
            if let Some(n) = libvirt_name(b)
                && !have.contains(n)
            {
                mf.insert(n);
            }
        }
        let require: Vec<_> = have.difference(&mf).copied().collect();
        let disable: Vec<_> = mf.difference(&have).copied().collect();
        let score = Score::of(require.len(), disable.len());
        let take = match &best {
            None => true,
            Some(b) => {
                if sig_matches(b.model) && !sig_matches(cand) {
                    false
                } else if !sig_matches(b.model) && sig_matches(cand) {
                    true
                } else {
                    let cur = Score::of(b.require.len(), b.disable.len());
                    score.total < cur.total
                        || (score.total == cur.total && score.penalty < cur.penalty)
                }
            }
        };
        if take {
            best = Some(Best {
                model: cand,
                require,
                disable,
            });
        }
    }
    let b = best?;
    let msr_from = position(FIRST_MSR_FEATURE);
    let mut features = Vec::new();
    for (list, policy) in [(&b.require, "require"), (&b.disable, "disable")] {
        let mut l: Vec<&str> = list
            .iter()
            .copied()
            .filter(|f| !drop_msr || position(f) < msr_from)
            .collect();
        l.sort_by_key(|f| position(f));
        features.extend(l.into_iter().map(|f| (f.to_string(), policy)));
    }
    Some(DecodedCpu {
        model: b.model.name.to_string(),
        vendor: vendor.map(str::to_string),
        features,
    })
}

/// libvirt's vendor for a named x86 model (`None` for generic models and unknown names).
pub fn model_vendor(name: &str) -> Option<&'static str> {
    MODELS
        .iter()
        .find(|m| m.name == name)
        .and_then(|m| m.vendor)
}

/// Whether libvirt knows an x86 model by this name (it lists only those as custom models).
pub fn is_known_model(name: &str) -> bool {
    MODELS.iter().any(|m| m.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_weigh_disabled_features() {
        // No disabled features: the plain count.
        let s = Score::of(16, 0);
        assert_eq!((s.total, s.penalty), (16, 0));
        // One disabled feature costs 2.
        let s = Score::of(38, 1);
        assert_eq!((s.total, s.penalty), (40, 2));
        // Ten disabled: the first five are penalized 2+3+4+5+6.
        let s = Score::of(18, 10);
        assert_eq!((s.total, s.penalty), (43, 20));
    }

    #[test]
    fn feature_table_is_consistent() {
        let mut seen = BTreeSet::new();
        for (l, q) in FEATURES {
            assert!(seen.insert(*l), "{l} listed twice");
            assert_eq!(libvirt_name(q), Some(*l));
        }
        for m in MODELS {
            for f in m.features {
                assert!(seen.contains(f), "{}: unknown feature {f}", m.name);
            }
        }
        assert_eq!(model_vendor("EPYC-Rome"), Some("AMD"));
        assert_eq!(model_vendor("qemu64"), None);
        assert!(is_known_model("Skylake-Client-IBRS"));
        assert!(!is_known_model("Skylake-Client-v2"));
    }
}
