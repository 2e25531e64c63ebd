//! The host CPU as /proc/cpuinfo tells it: identity, and its flags under libvirt's feature
//! names. (On this machine CPUID describes the CPU instead: see `cpu_x86.rs`.) Also a choice
//! of a named model among those QEMU reports usable, for callers that have such a list.

use std::collections::BTreeSet;

use super::cpu_x86_features::feature_index;

/// What /proc/cpuinfo tells about the first processor (all processors of a host are the same
/// model for our purposes; libvirt also describes the host CPU as one definition).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CpuInfo {
    pub vendor_id: Option<String>,
    pub family: Option<u32>,
    pub model: Option<u32>,
    pub stepping: Option<u32>,
    pub microcode: Option<u64>,
    pub flags: Vec<String>,
    pub phys_addr_bits: Option<u32>,
}

/// Parse the first processor block of /proc/cpuinfo. Unknown or malformed lines are ignored:
/// the format varies per architecture and kernel version, and every field is optional.
pub fn parse_cpuinfo(text: &str) -> CpuInfo {
    let mut info = CpuInfo::default();
    let mut seen_processor = false;
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let key = key.trim();
        let value = value.trim();
        match key {
            "processor" => {
                // Only the first block: later ones repeat the same facts.
                if seen_processor {
                    break;
                }
                seen_processor = true;
            }
            "vendor_id" => info.vendor_id = Some(value.to_string()),
            "cpu family" => info.family = value.parse().ok(),
            "model" => info.model = value.parse().ok(),
            "stepping" => info.stepping = value.parse().ok(),
            "microcode" => {
                info.microcode = match value.strip_prefix("0x") {
                    Some(hex) => u64::from_str_radix(hex, 16).ok(),
                    None => value.parse().ok(),
                }
            }
            // aarch64 calls them "Features".
            "flags" | "Features" => {
                info.flags = value.split_whitespace().map(str::to_string).collect()
            }
            "address sizes" => {
                info.phys_addr_bits = value
                    .split(" bits physical")
                    .next()
                    .and_then(|b| b.trim().parse().ok())
            }
            _ => {}
        }
    }
    info
}

/// libvirt's vendor name for a CPUID vendor string.
pub fn vendor_name(vendor_id: &str) -> Option<&'static str> {
    match vendor_id {
        "GenuineIntel" => Some("Intel"),
        "AuthenticAMD" => Some("AMD"),
        "HygonGenuine" => Some("Hygon"),
        _ => None,
    }
}

/// Linux flag names whose libvirt (cpu_map) spelling differs. Linux flags spelled as a
/// libvirt feature is are that feature; the others (`rep_good`, `cpuid`, `xtopology`, ...)
/// are Linux-synthetic and have no libvirt name.
const RENAMED_FLAGS: &[(&str, &str)] = &[
    ("pclmulqdq", "pclmuldq"),
    ("sse4_1", "sse4.1"),
    ("sse4_2", "sse4.2"),
    ("dts", "ds"),
    ("tsc_deadline_timer", "tsc-deadline"),
    ("arch_capabilities", "arch-capabilities"),
    ("core_capabilities", "core-capability"),
    ("md_clear", "md-clear"),
    ("spec_ctrl", "spec-ctrl"),
    ("intel_stibp", "stibp"),
    ("intel_pt", "intel-pt"),
    ("cqm", "cmt"),
    ("sha_ni", "sha-ni"),
    ("avx512_vbmi2", "avx512vbmi2"),
    ("avx512_bitalg", "avx512bitalg"),
    ("avx512_vnni", "avx512vnni"),
    ("avx512_bf16", "avx512-bf16"),
    ("avx512_fp16", "avx512-fp16"),
    ("avx512_vpopcntdq", "avx512-vpopcntdq"),
    ("avx512_4vnniw", "avx512-4vnniw"),
    ("avx512_4fmaps", "avx512-4fmaps"),
    ("avx512_vp2intersect", "avx512-vp2intersect"),
    ("avx_vnni", "avx-vnni"),
    ("amx_bf16", "amx-bf16"),
    ("amx_tile", "amx-tile"),
    ("amx_int8", "amx-int8"),
    ("virt_ssbd", "virt-ssbd"),
    ("amd_ssbd", "amd-ssbd"),
    ("amd_stibp", "amd-stibp"),
    ("nrip_save", "nrip-save"),
    ("tsc_scale", "tsc-scale"),
    ("vmcb_clean", "vmcb-clean"),
    ("pausefilter", "pause-filter"),
    ("svm_lock", "svm-lock"),
    ("v_vmsave_vmload", "v-vmsave-vmload"),
    ("cr8_legacy", "cr8legacy"),
    ("bus_lock_detect", "bus-lock-detect"),
    ("split_lock_detect", "split-lock-detect"),
    ("arch_lbr", "arch-lbr"),
    ("tsxldtrk", "tsx-ldtrk"),
    ("sgx_lc", "sgxlc"),
];

/// libvirt feature names for a list of Linux cpuinfo flags, in cpuinfo order, deduplicated.
///
/// `invtsc` has no flag of its own: Linux reports that CPUID bit as the pair
/// `constant_tsc` + `nonstop_tsc`, so it is derived from both.
pub fn libvirt_features(flags: &[String]) -> Vec<String> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    let has = |f: &str| flags.iter().any(|x| x == f);
    for flag in flags {
        let name = if let Some((_, lv)) = RENAMED_FLAGS.iter().find(|(l, _)| l == flag) {
            Some(*lv)
        } else if feature_index(flag).is_some() {
            // The same spelling in Linux and in libvirt.
            Some(flag.as_str())
        } else if flag == "nonstop_tsc" && has("constant_tsc") {
            Some("invtsc")
        } else {
            None
        };
        if let Some(n) = name
            && seen.insert(n.to_string())
        {
            out.push(n.to_string());
        }
    }
    out
}

/// libvirt's architecture name for a `uname -m` machine string.
pub fn libvirt_arch(machine: &str) -> String {
    match machine {
        "i386" | "i486" | "i586" | "i686" | "x86" => "i686".into(),
        "amd64" | "x86_64" => "x86_64".into(),
        "arm64" | "aarch64" => "aarch64".into(),
        "powerpc64" => "ppc64".into(),
        "powerpc64le" => "ppc64le".into(),
        other => other.into(),
    }
}

/// Named x86 CPU models, oldest first within each vendor. A later entry is assumed to be a
/// better (more capable) choice when QEMU reports both usable.
const INTEL_GENERATIONS: &[&str] = &[
    "486",
    "pentium",
    "pentium2",
    "pentium3",
    "coreduo",
    "core2duo",
    "Conroe",
    "Penryn",
    "Nehalem",
    "Westmere",
    "SandyBridge",
    "IvyBridge",
    "Haswell",
    "Broadwell",
    "Skylake-Client",
    "Skylake-Server",
    "Cascadelake-Server",
    "Icelake-Client",
    "Icelake-Server",
    "Cooperlake",
    "SapphireRapids",
    "GraniteRapids",
];

const AMD_GENERATIONS: &[&str] = &[
    "Opteron_G1",
    "Opteron_G2",
    "Opteron_G3",
    "Opteron_G4",
    "Opteron_G5",
    "EPYC",
    "EPYC-Rome",
    "EPYC-Milan",
    "EPYC-Genoa",
];

const HYGON_GENERATIONS: &[&str] = &["Dhyana"];

/// Variant suffixes in increasing preference: a `-noTSX` model lacks features the plain one
/// has, and `-IBRS`/`-IBPB` add the speculation-control feature to their base.
const VARIANTS: &[&str] = &["-noTSX", "-noTSX-IBRS", "", "-IBRS", "-IBPB"];

/// `Haswell-v2` style names are versioned aliases of a base model; libvirt reports the base.
fn is_versioned_alias(name: &str) -> bool {
    name.rsplit_once("-v")
        .is_some_and(|(_, v)| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
}

/// Rank of a model name: (vendor, generation index, variant index).
fn model_rank(name: &str) -> Option<(&'static str, usize, usize)> {
    if is_versioned_alias(name) {
        return None;
    }
    let tables: [(&'static str, &[&str]); 3] = [
        ("Intel", INTEL_GENERATIONS),
        ("AMD", AMD_GENERATIONS),
        ("Hygon", HYGON_GENERATIONS),
    ];
    for (vendor, gens) in tables {
        for (gi, base) in gens.iter().enumerate() {
            for (vi, suffix) in VARIANTS.iter().enumerate() {
                if name.len() == base.len() + suffix.len()
                    && name.starts_with(base)
                    && name.ends_with(suffix)
                {
                    return Some((vendor, gi, vi));
                }
            }
        }
    }
    None
}

/// Choose the host CPU model to report among models QEMU says are usable on this host: the
/// newest known generation (then the most capable variant), preferring models of the host's
/// vendor. `None` for non-x86 architectures and when no usable model is known to us.
pub fn pick_host_cpu_model(
    usable: &[&str],
    arch: &str,
    host_vendor: Option<&str>,
) -> Option<String> {
    if !matches!(arch, "x86_64" | "i686") {
        return None;
    }
    let ranked: Vec<(&str, (&str, usize, usize))> = usable
        .iter()
        .filter_map(|m| model_rank(m).map(|r| (*m, r)))
        .collect();
    let best = |only_vendor: Option<&str>| {
        ranked
            .iter()
            .filter(|(_, (v, _, _))| only_vendor.is_none_or(|ov| ov == *v))
            .max_by_key(|(_, (_, g, var))| (*g, *var))
            .map(|(m, _)| m.to_string())
    };
    host_vendor
        .and_then(|v| best(Some(v)))
        .or_else(|| best(None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_newest_usable_of_host_vendor() {
        let usable = [
            "qemu64",
            "Nehalem",
            "Westmere-IBRS",
            "Haswell-noTSX",
            "Haswell-v2",
            "Skylake-Client-noTSX-IBRS",
            "Opteron_G3",
            "EPYC-Rome",
            "Broadwell-noTSX",
        ];
        assert_eq!(
            pick_host_cpu_model(&usable, "x86_64", Some("Intel")).as_deref(),
            Some("Skylake-Client-noTSX-IBRS")
        );
        assert_eq!(
            pick_host_cpu_model(&usable, "x86_64", Some("AMD")).as_deref(),
            Some("EPYC-Rome")
        );
        // Unknown vendor: newest of any vendor by generation index.
        assert!(pick_host_cpu_model(&usable, "x86_64", None).is_some());
        // Vendor has nothing usable: fall back to what is there.
        assert_eq!(
            pick_host_cpu_model(&["Nehalem"], "x86_64", Some("AMD")).as_deref(),
            Some("Nehalem")
        );
    }

    #[test]
    fn variants_and_aliases() {
        assert_eq!(
            pick_host_cpu_model(
                &["Haswell", "Haswell-noTSX", "Haswell-IBRS"],
                "x86_64",
                Some("Intel")
            )
            .as_deref(),
            Some("Haswell-IBRS")
        );
        assert_eq!(
            pick_host_cpu_model(&["EPYC", "EPYC-IBPB", "EPYC-v3"], "x86_64", Some("AMD"))
                .as_deref(),
            Some("EPYC-IBPB")
        );
        assert_eq!(
            pick_host_cpu_model(&["Haswell-v4", "qemu64"], "x86_64", None),
            None
        );
        assert_eq!(pick_host_cpu_model(&["cortex-a57"], "aarch64", None), None);
        assert_eq!(pick_host_cpu_model(&[], "x86_64", Some("Intel")), None);
    }

    #[test]
    fn maps_linux_flags() {
        let flags: Vec<String> = "fpu sse4_1 pclmulqdq constant_tsc rep_good nonstop_tsc md_clear arch_capabilities vmx tsc_adjust pdpe1gb hypervisor fpu"
            .split(' ')
            .map(String::from)
            .collect();
        assert_eq!(
            libvirt_features(&flags),
            vec![
                "fpu",
                "sse4.1",
                "pclmuldq",
                "invtsc",
                "md-clear",
                "arch-capabilities",
                "vmx",
                "tsc_adjust",
                "pdpe1gb",
                "hypervisor"
            ]
        );
    }

    #[test]
    fn renamed_flags_are_libvirt_features() {
        for (linux, lv) in RENAMED_FLAGS {
            assert!(
                feature_index(lv).is_some(),
                "{linux} -> {lv}: not a libvirt feature"
            );
        }
        let flags: Vec<String> = ["cr8_legacy", "avx512_vnni", "rep_good", "sse4a"]
            .map(String::from)
            .to_vec();
        assert_eq!(
            libvirt_features(&flags),
            ["cr8legacy", "avx512vnni", "sse4a"]
        );
    }

    #[test]
    fn parses_cpuinfo() {
        let text = "processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 142\nmodel name\t: Intel(R) Core(TM)\nstepping\t: 12\nmicrocode\t: 0xec\nflags\t\t: fpu vmx\naddress sizes\t: 39 bits physical, 48 bits virtual\n\nprocessor\t: 1\nvendor_id\t: Other\n";
        let c = parse_cpuinfo(text);
        assert_eq!(c.vendor_id.as_deref(), Some("GenuineIntel"));
        assert_eq!(
            (c.family, c.model, c.stepping),
            (Some(6), Some(142), Some(12))
        );
        assert_eq!(c.microcode, Some(236));
        assert_eq!(c.flags, vec!["fpu", "vmx"]);
        assert_eq!(c.phys_addr_bits, Some(39));
        assert_eq!(libvirt_arch("i586"), "i686");
    }
}
