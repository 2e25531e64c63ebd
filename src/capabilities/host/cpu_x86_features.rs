//! The x86 CPU features libvirt names, where each lives in CPUID (or an MSR), in libvirt's
//! order: the order a host CPU's features are listed in. The names and their order are
//! libvirt 9.0's; the locations are the processor vendors' documented CPUID bits.

/// A CPUID output register (or the low/high half of an MSR: `Eax`/`Edx`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reg {
    Eax,
    Ebx,
    Ecx,
    Edx,
}

/// Where a group of feature bits is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Location {
    /// CPUID leaf (EAX input), sub-leaf (ECX input), output register.
    Cpuid { leaf: u32, sub: u32, reg: Reg },
    /// Model-specific register: `Eax` is its low 32 bits, `Edx` its high 32 bits.
    Msr { index: u32, reg: Reg },
}

impl Location {
    const fn cpuid(leaf: u32, sub: u32, reg: Reg) -> Location {
        Location::Cpuid { leaf, sub, reg }
    }

    const fn msr(index: u32, reg: Reg) -> Location {
        Location::Msr { index, reg }
    }
}

/// Feature bits grouped by where they are read, as `(libvirt name, bit)`.
#[rustfmt::skip]
const GROUPS: &[(Location, &[(&str, u8)])] = &[
    (Location::cpuid(0x1, 0, Reg::Edx), &[
        ("fpu", 0), ("vme", 1), ("de", 2), ("pse", 3), ("tsc", 4), ("msr", 5), ("pae", 6),
        ("mce", 7), ("cx8", 8), ("apic", 9), ("sep", 11), ("mtrr", 12), ("pge", 13),
        ("mca", 14), ("cmov", 15), ("pat", 16), ("pse36", 17), ("pn", 18),
        ("clflush", 19), ("ds", 21), ("acpi", 22), ("mmx", 23), ("fxsr", 24), ("sse", 25),
        ("sse2", 26), ("ss", 27), ("ht", 28), ("tm", 29), ("ia64", 30), ("pbe", 31),
    ]),
    (Location::cpuid(0x1, 0, Reg::Ecx), &[
        ("pni", 0), ("pclmuldq", 1), ("dtes64", 2), ("monitor", 3), ("ds_cpl", 4),
        ("vmx", 5), ("smx", 6), ("est", 7), ("tm2", 8), ("ssse3", 9), ("cid", 10),
        ("fma", 12), ("cx16", 13), ("xtpr", 14), ("pdcm", 15), ("pcid", 17), ("dca", 18),
        ("sse4.1", 19), ("sse4.2", 20), ("x2apic", 21), ("movbe", 22), ("popcnt", 23),
        ("tsc-deadline", 24), ("aes", 25), ("xsave", 26), ("osxsave", 27), ("avx", 28),
        ("f16c", 29), ("rdrand", 30), ("hypervisor", 31),
    ]),
    (Location::cpuid(0x6, 0, Reg::Eax), &[
        ("arat", 2),
    ]),
    (Location::cpuid(0x7, 0, Reg::Ebx), &[
        ("fsgsbase", 0), ("tsc_adjust", 1), ("sgx", 2), ("bmi1", 3), ("hle", 4),
        ("avx2", 5), ("smep", 7), ("bmi2", 8), ("erms", 9), ("invpcid", 10), ("rtm", 11),
        ("cmt", 12), ("mpx", 14), ("avx512f", 16), ("avx512dq", 17), ("rdseed", 18),
        ("adx", 19), ("smap", 20), ("avx512ifma", 21), ("pcommit", 22),
        ("clflushopt", 23), ("clwb", 24), ("intel-pt", 25), ("avx512pf", 26),
        ("avx512er", 27), ("avx512cd", 28), ("sha-ni", 29), ("avx512bw", 30),
        ("avx512vl", 31),
    ]),
    (Location::cpuid(0x7, 0, Reg::Ecx), &[
        ("avx512vbmi", 1), ("umip", 2), ("pku", 3), ("ospke", 4), ("waitpkg", 5),
        ("avx512vbmi2", 6), ("gfni", 8), ("vaes", 9), ("vpclmulqdq", 10),
        ("avx512vnni", 11), ("avx512bitalg", 12), ("avx512-vpopcntdq", 14), ("la57", 16),
        ("rdpid", 22), ("bus-lock-detect", 24), ("cldemote", 25), ("movdiri", 27),
        ("movdir64b", 28), ("sgxlc", 30), ("pks", 31),
    ]),
    (Location::cpuid(0x7, 0, Reg::Edx), &[
        ("avx512-4vnniw", 2), ("avx512-4fmaps", 3), ("fsrm", 4),
        ("avx512-vp2intersect", 8), ("md-clear", 10), ("serialize", 14),
        ("tsx-ldtrk", 16), ("pconfig", 18), ("arch-lbr", 19), ("amx-bf16", 22),
        ("avx512-fp16", 23), ("amx-tile", 24), ("amx-int8", 25), ("spec-ctrl", 26),
        ("stibp", 27), ("arch-capabilities", 29), ("core-capability", 30), ("ssbd", 31),
    ]),
    (Location::cpuid(0x7, 1, Reg::Eax), &[
        ("avx-vnni", 4), ("avx512-bf16", 5),
    ]),
    (Location::cpuid(0xd, 1, Reg::Eax), &[
        ("xsaveopt", 0), ("xsavec", 1), ("xgetbv1", 2), ("xsaves", 3), ("xfd", 4),
    ]),
    (Location::cpuid(0xf, 1, Reg::Edx), &[
        ("mbm_total", 1), ("mbm_local", 2),
    ]),
    (Location::cpuid(0x12, 0, Reg::Eax), &[
        ("sgx1", 0), ("sgx2", 1),
    ]),
    (Location::cpuid(0x12, 0, Reg::Ebx), &[
        ("sgx-exinfo", 0),
    ]),
    (Location::cpuid(0x12, 1, Reg::Eax), &[
        ("sgx-debug", 1), ("sgx-mode64", 2), ("sgx-provisionkey", 4), ("sgx-tokenkey", 5),
        ("sgx-kss", 7),
    ]),
    (Location::cpuid(0x14, 0, Reg::Ecx), &[
        ("intel-pt-lip", 31),
    ]),
    (Location::cpuid(0x80000001, 0, Reg::Edx), &[
        ("syscall", 11), ("nx", 20), ("mmxext", 22), ("fxsr_opt", 25), ("pdpe1gb", 26),
        ("rdtscp", 27), ("lm", 29), ("3dnowext", 30), ("3dnow", 31),
    ]),
    (Location::cpuid(0x80000001, 0, Reg::Ecx), &[
        ("lahf_lm", 0), ("cmp_legacy", 1), ("svm", 2), ("extapic", 3), ("cr8legacy", 4),
        ("abm", 5), ("sse4a", 6), ("misalignsse", 7), ("3dnowprefetch", 8), ("osvw", 9),
        ("ibs", 10), ("xop", 11), ("skinit", 12), ("wdt", 13), ("lwp", 15), ("fma4", 16),
        ("tce", 17), ("cvt16", 18), ("nodeid_msr", 19), ("tbm", 21), ("topoext", 22),
        ("perfctr_core", 23), ("perfctr_nb", 24),
    ]),
    (Location::cpuid(0x80000007, 0, Reg::Edx), &[
        ("invtsc", 8),
    ]),
    (Location::cpuid(0x80000008, 0, Reg::Ebx), &[
        ("clzero", 0), ("xsaveerptr", 2), ("wbnoinvd", 9), ("ibpb", 12), ("ibrs", 14),
        ("amd-stibp", 15), ("amd-ssbd", 24), ("virt-ssbd", 25), ("amd-no-ssb", 26),
    ]),
    (Location::cpuid(0x8000000a, 0, Reg::Edx), &[
        ("npt", 0), ("lbrv", 1), ("svm-lock", 2), ("nrip-save", 3), ("tsc-scale", 4),
        ("vmcb-clean", 5), ("flushbyasid", 6), ("decodeassists", 7), ("pause-filter", 10),
        ("pfthreshold", 12), ("avic", 13), ("v-vmsave-vmload", 15), ("vgif", 16),
        ("svme-addr-chk", 28),
    ]),
    (Location::msr(0x10a, Reg::Eax), &[
        ("rdctl-no", 0), ("ibrs-all", 1), ("rsba", 2), ("skip-l1dfl-vmentry", 3),
        ("ssb-no", 4), ("mds-no", 5), ("pschange-mc-no", 6), ("tsx-ctrl", 7),
        ("taa-no", 8),
    ]),
    (Location::msr(0xcf, Reg::Eax), &[
        ("split-lock-detect", 5),
    ]),
];

/// One feature: its libvirt name and the bit that says the CPU has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct X86Feature {
    pub name: &'static str,
    pub location: Location,
    pub bit: u8,
}

/// Every feature, in libvirt's order.
pub fn features() -> impl Iterator<Item = X86Feature> {
    GROUPS.iter().flat_map(|(location, bits)| {
        bits.iter().map(move |(name, bit)| X86Feature {
            name,
            location: *location,
            bit: *bit,
        })
    })
}

/// Number of features; a [`FeatureSet`] holds up to [`FeatureSet::CAPACITY`].
pub fn feature_count() -> usize {
    GROUPS.iter().map(|(_, b)| b.len()).sum()
}

/// The position of feature `name` in libvirt's order.
pub fn feature_index(name: &str) -> Option<usize> {
    features().position(|f| f.name == name)
}

/// A set of features, by position in libvirt's order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FeatureSet([u64; 4]);

impl FeatureSet {
    pub const CAPACITY: usize = 256;

    pub fn insert(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }

    pub fn remove(&mut self, i: usize) {
        self.0[i / 64] &= !(1 << (i % 64));
    }

    pub fn contains(&self, i: usize) -> bool {
        self.0[i / 64] & (1 << (i % 64)) != 0
    }

    /// Features of `self` not in `other`.
    pub fn minus(&self, other: &FeatureSet) -> FeatureSet {
        let mut out = *self;
        for (o, x) in out.0.iter_mut().zip(other.0) {
            *o &= !x;
        }
        out
    }

    pub fn len(&self) -> usize {
        self.0.iter().map(|w| w.count_ones() as usize).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|w| *w == 0)
    }

    /// The set of the named features; `Err` names the first unknown one.
    pub fn from_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<FeatureSet, String> {
        let mut s = FeatureSet::default();
        for n in names {
            s.insert(feature_index(n).ok_or_else(|| n.to_string())?);
        }
        Ok(s)
    }

    /// The names of the features in the set, in libvirt's order.
    pub fn names(&self) -> Vec<&'static str> {
        features()
            .enumerate()
            .filter(|(i, _)| self.contains(*i))
            .map(|(_, f)| f.name)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_consistent() {
        assert!(feature_count() <= FeatureSet::CAPACITY);
        let mut seen = std::collections::HashSet::new();
        let mut bits = std::collections::HashSet::new();
        for f in features() {
            assert!(seen.insert(f.name), "{} listed twice", f.name);
            assert!(f.bit < 32);
            assert!(
                bits.insert((f.location, f.bit)),
                "{}: bit used twice",
                f.name
            );
        }
        // Bits ascend within each register, as libvirt lists them.
        for (_, b) in GROUPS {
            assert!(b.windows(2).all(|w| w[0].1 < w[1].1));
        }
    }

    #[test]
    fn sets() {
        let s = FeatureSet::from_names(["sse2", "fpu", "invtsc"]).unwrap();
        assert_eq!(s.names(), vec!["fpu", "sse2", "invtsc"]);
        let t = FeatureSet::from_names(["fpu"]).unwrap();
        assert_eq!(s.minus(&t).names(), vec!["sse2", "invtsc"]);
        assert_eq!(s.len(), 3);
        assert!(t.minus(&s).is_empty());
        assert_eq!(FeatureSet::from_names(["fpu", "nope"]), Err("nope".into()));
    }
}
