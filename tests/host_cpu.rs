//! The x86 host `<cpu>`: libvirt's choice of a named model from its CPU map and the features
//! beyond it, checked on CPUs whose answer libvirt gave (its own test CPUs, the realclients2
//! host), and on this machine against what libvirtd wrote for a host of the same kind.

mod common;

use std::fs;
use std::path::PathBuf;

use domdriver::capabilities::host::cpu_x86_decode::{CpuSig, decode_host};
use domdriver::capabilities::host::cpu_x86_features::FeatureSet;
use domdriver::capabilities::host::cpu_x86_models::{Vendor, X86Model};
use domdriver::capabilities::host::{HostCaps, HostCpu, HostRoot, libvirt_features};

fn set(names: &str) -> FeatureSet {
    FeatureSet::from_names(names.split_whitespace()).unwrap_or_else(|f| panic!("unknown {f}"))
}

fn model(name: &str) -> FeatureSet {
    X86Model::find(name)
        .unwrap_or_else(|| panic!("no model {name}"))
        .features()
}

fn union(a: FeatureSet, b: FeatureSet) -> FeatureSet {
    let mut out = a;
    for i in 0..FeatureSet::CAPACITY {
        if b.contains(i) {
            out.insert(i);
        }
    }
    out
}

fn sig(family: u32, model: u32, stepping: u32) -> Option<CpuSig> {
    Some(CpuSig {
        family,
        model,
        stepping,
    })
}

/// libvirt's test CPU "EPYC 7601 32-Core": a first-generation EPYC (family 23 model 1), so
/// EPYC by signature; EPYC-IBPB would fit the signature too but needs `ibpb`, which this CPU
/// lacks.
#[test]
fn epyc_7601_is_epyc() {
    let extra = "monitor osxsave ht xsaves cmp_legacy extapic skinit wdt tce topoext \
                 perfctr_core perfctr_nb invtsc clzero xsaveerptr npt lbrv svm-lock nrip-save \
                 tsc-scale vmcb-clean flushbyasid decodeassists pause-filter pfthreshold avic \
                 v-vmsave-vmload vgif";
    let host = union(model("EPYC"), set(extra));
    let d = decode_host(host, Some(Vendor::Amd), sig(23, 1, 2)).expect("a model");
    assert_eq!(d.model, "EPYC");
    assert_eq!(d.vendor, Some(Vendor::Amd));
    assert_eq!(d.features, set(extra).minus(&model("EPYC")).names());
}

/// libvirt's test CPU "Core i7-8700" (family 6 model 158): Skylake-Client by signature, the
/// IBRS variant since it has `spec-ctrl`; the noTSX variant would leave `hle` and `rtm` over.
#[test]
fn core_i7_8700_is_skylake_client_ibrs() {
    let extra = "dtes64 monitor ds_cpl vmx smx est tm2 xtpr pdcm osxsave ds acpi ss ht tm pbe \
                 tsc_adjust sgx mpx clflushopt intel-pt sgxlc stibp ssbd xsaves pdpe1gb invtsc";
    let base = model("Skylake-Client-IBRS");
    let host = union(base, set(extra));
    let d = decode_host(host, Some(Vendor::Intel), sig(6, 158, 10)).expect("a model");
    assert_eq!(d.model, "Skylake-Client-IBRS");
    assert_eq!(d.features, set(extra).minus(&base).names());
    // The same CPU without a signature libvirt knows: still the closest fit by features.
    let d = decode_host(host, Some(Vendor::Intel), sig(6, 200, 0)).expect("a model");
    assert_eq!(d.model, "Skylake-Client-IBRS");
}

/// A model standing for the CPU's own signature wins over one leaving fewer features over.
#[test]
fn signature_beats_fewer_features() {
    // Cascadelake steppings (5-7) of family 6 model 85, with everything Cooperlake and
    // Cascadelake-Server have (Cooperlake lacks Cascadelake's `mpx`).
    let host = union(model("Cooperlake"), model("Cascadelake-Server"));
    let d = decode_host(host, Some(Vendor::Intel), sig(6, 85, 7)).expect("a model");
    assert_eq!(d.model, "Cascadelake-Server");
    assert!(d.features.contains(&"avx512-bf16"), "{:?}", d.features);
    // Without a signature the model with the fewest features over wins.
    let d = decode_host(host, Some(Vendor::Intel), None).expect("a model");
    assert_eq!(d.model, "Cooperlake");
    assert_eq!(d.features, ["mpx"]);
}

/// Models of another vendor are never used; generic ones are.
#[test]
fn vendor_must_match() {
    let host = model("EPYC-Milan");
    for v in [Vendor::Intel, Vendor::Hygon] {
        let d = decode_host(host, Some(v), None).expect("a model");
        let mv = X86Model::find(d.model).unwrap().vendor;
        assert!(mv.is_none() || mv == Some(v), "{v:?}: {}", d.model);
    }
    let d = decode_host(host, Some(Vendor::Amd), None).expect("a model");
    assert_eq!((d.model, d.features.len()), ("EPYC-Milan", 0));
}

/// Broken TSX on early Haswells (family 6 model 60): `hle`/`rtm` do not count, so the
/// noTSX model is chosen and they are not listed.
#[test]
fn broken_tsx_is_ignored() {
    let host = model("Haswell");
    let d = decode_host(host, Some(Vendor::Intel), sig(6, 60, 3)).expect("a model");
    assert_eq!((d.model, d.features.len()), ("Haswell-noTSX", 0));
    let d = decode_host(host, Some(Vendor::Intel), sig(6, 63, 4)).expect("a model");
    assert_eq!(d.model, "Haswell");
}

/// The host `<cpu>` libvirtd 9.0 wrote on the realclients2 host.
struct Recorded {
    block: String,
    model: String,
    vendor: String,
    sig: (u32, u32, u32),
    features: Vec<String>,
}

fn attr(line: &str, name: &str) -> Option<String> {
    let rest = line.split(&format!("{name}='")).nth(1)?;
    Some(rest.split('\'').next()?.to_string())
}

fn recorded() -> Recorded {
    let path: PathBuf = common::testdata()
        .parent()
        .expect("shared dir")
        .join("realclients2/host-capabilities.xml");
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let start = text.find("<cpu>").expect("<cpu>");
    let end = text.find("</cpu>").expect("</cpu>") + "</cpu>".len();
    let block = text[start..end].to_string();
    let text_of = |tag: &str| {
        let open = format!("<{tag}>");
        let s = block.find(&open).expect(tag) + open.len();
        block[s..s + block[s..].find('<').unwrap()].to_string()
    };
    let sig_line = block
        .lines()
        .find(|l| l.contains("<signature"))
        .expect("sig");
    let num = |n: &str| attr(sig_line, n).unwrap().parse::<u32>().unwrap();
    Recorded {
        model: text_of("model"),
        vendor: text_of("vendor"),
        sig: (num("family"), num("model"), num("stepping")),
        features: block
            .lines()
            .filter(|l| l.trim_start().starts_with("<feature "))
            .map(|l| attr(l, "name").unwrap())
            .collect(),
        block,
    }
}

/// Decoding the realclients2 host's CPU (its model's features plus those listed) gives
/// libvirtd's answer: the same model and the same features, in the same order.
#[test]
fn realclients2_host_decodes_as_libvirtd() {
    let r = recorded();
    let listed = FeatureSet::from_names(r.features.iter().map(String::as_str)).unwrap();
    let host = union(model(&r.model), listed);
    let d = decode_host(
        host,
        Vendor::from_name(&r.vendor),
        sig(r.sig.0, r.sig.1, r.sig.2),
    )
    .expect("a model");
    assert_eq!(d.model, r.model);
    assert_eq!(d.features, r.features);
}

/// The same host known only by /proc/cpuinfo (its flags under libvirt's names) gets the same
/// model; cpuinfo does not show `osxsave`, so that one is missing from the list.
#[test]
fn realclients2_host_from_cpuinfo_flags() {
    let r = recorded();
    // Linux spellings of the recorded features plus the model's; Linux-only flags are ignored.
    let linux = |f: &str| match f {
        "pclmuldq" => "pclmulqdq".to_string(),
        "sse4.1" => "sse4_1".to_string(),
        "sse4.2" => "sse4_2".to_string(),
        "tsc-deadline" => "tsc_deadline_timer".to_string(),
        "cr8legacy" => "cr8_legacy".to_string(),
        "invtsc" => "nonstop_tsc".to_string(),
        other => other.replace('-', "_"),
    };
    let mut flags: Vec<String> = vec!["constant_tsc".into(), "rep_good".into()];
    flags.extend(model(&r.model).names().into_iter().map(linux));
    flags.extend(
        r.features
            .iter()
            .filter(|f| *f != "osxsave")
            .map(|f| linux(f)),
    );
    let mut cpu = HostCpu {
        arch: "x86_64".into(),
        model: None,
        vendor: Some(r.vendor.clone()),
        microcode: None,
        signature: None,
        tsc: None,
        topology: None,
        max_phys_addr_bits: None,
        features: libvirt_features(&flags),
        page_sizes_kib: vec![],
    };
    cpu.describe_x86_from_features();
    assert_eq!(cpu.model.as_deref(), Some(r.model.as_str()));
    let expected: Vec<&String> = r.features.iter().filter(|f| *f != "osxsave").collect();
    assert_eq!(cpu.features.iter().collect::<Vec<_>>(), expected);
}

/// This machine, probed as `vsh capabilities` probes it. On a host of the realclients2 kind
/// (same vendor, family, model and stepping) the `<cpu>` must be libvirtd's, but for the TSC
/// frequency, which is this machine's own. On another host the model must still explain the
/// features: the host has all of the model's, and none listed is the model's.
#[cfg(target_arch = "x86_64")]
#[test]
fn this_host_cpu() {
    let r = recorded();
    let caps = HostCaps::probe(&HostRoot::real()).expect("probe this machine");
    let cpu = &caps.cpu;
    let name = cpu.model.as_deref().expect("a model for this CPU");
    let listed = FeatureSet::from_names(cpu.features.iter().map(String::as_str)).unwrap();
    assert!(
        listed.minus(&model(name)).len() == listed.len(),
        "a listed feature is one of {name}'s: {:?}",
        cpu.features
    );
    let same_kind = cpu.vendor.as_deref() == Some(r.vendor.as_str())
        && cpu
            .signature
            .is_some_and(|s| (s.family, s.model, s.stepping) == r.sig);
    let xml = caps.host_xml();
    let ours = &xml[xml.find("<cpu>").unwrap()..xml.find("</cpu>").unwrap() + 6];
    if same_kind {
        let strip = |b: &str| {
            b.lines()
                .map(str::trim)
                .filter(|l| !l.starts_with("<counter ") && !l.starts_with("<topology "))
                .collect::<Vec<_>>()
                .join("\n")
        };
        assert_eq!(strip(ours), strip(&r.block));
    } else {
        eprintln!(
            "this host ({:?} {:?}) is not the realclients2 kind: compared on recorded data only; \
             named {name} with {} features over",
            cpu.vendor,
            cpu.signature,
            cpu.features.len()
        );
    }
    // Naming is stable: decoding what we describe gives the same description.
    let again = decode_host(
        union(model(name), listed),
        cpu.vendor.as_deref().and_then(Vendor::from_name),
        cpu.signature.map(|s| CpuSig {
            family: s.family,
            model: s.model,
            stepping: s.stepping,
        }),
    )
    .expect("a model");
    assert_eq!(again.model, name);
    assert_eq!(again.features, cpu.features);
}
