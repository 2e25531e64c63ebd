//! Comparing a CPU definition with the host's CPU, or with the CPU a hypervisor offers, as
//! libvirt's x86 CPU driver does (libvirt: qemuConnectCompareCPU,
//! qemuConnectCompareHypervisorCPU, virCPUCompareXML, virCPUx86Compare, x86Compute), on the
//! models and features of libvirt's CPU map that `capabilities::host` carries. Baselines
//! (virCPUBaseline, which decodes the common features into a model with libvirt's penalty
//! rules and QEMU's usable-model lists) are not computed: those functions answer libvirt's
//! "not supported" rather than a guess.

use super::{Connect, DriverError};
use crate::capabilities::host::HostCaps;
use crate::capabilities::host::cpu_x86_features::{FeatureSet, feature_index};
use crate::capabilities::host::cpu_x86_models::X86Model;
use crate::domain::xml::{XmlNode, parse_document};

/// `VIR_CONNECT_COMPARE_CPU_FAIL_INCOMPATIBLE`: an incompatible CPU is an error saying why.
pub const COMPARE_CPU_FAIL_INCOMPATIBLE: u32 = 1;
/// `VIR_CONNECT_COMPARE_CPU_VALIDATE_XML`: check the CPU XML against libvirt's `cpu.rng`.
pub const COMPARE_CPU_VALIDATE_XML: u32 = 2;
/// `VIR_CONNECT_BASELINE_CPU_EXPAND_FEATURES`.
pub const BASELINE_CPU_EXPAND_FEATURES: u32 = 1;
/// `VIR_CONNECT_BASELINE_CPU_MIGRATABLE`.
pub const BASELINE_CPU_MIGRATABLE: u32 = 2;

/// virCPUCompareResult, errors aside.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CpuCompareResult {
    Incompatible,
    Identical,
    Superset,
}

/// virCPUFeaturePolicy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Policy {
    Force,
    Require,
    Optional,
    Disable,
    Forbid,
}

/// The parts of a `<cpu>` the comparison reads (libvirt: virCPUDefParseXML).
#[derive(Debug, Clone, Default)]
struct CpuDef {
    /// A host CPU (it has `<arch>`), whose features have no policy.
    host: bool,
    arch: Option<String>,
    /// `match='strict'`.
    strict: bool,
    model: Option<String>,
    vendor: Option<String>,
    /// Features with their policy; a host CPU's are required.
    features: Vec<(String, Policy)>,
}

fn xml_err(msg: impl Into<String>) -> DriverError {
    DriverError::Xml(crate::domain::DomainError::Xml(msg.into()))
}

fn parse_cpu(xml: &str) -> Result<CpuDef, DriverError> {
    let root = parse_document(xml)?;
    if root.name != "cpu" {
        return Err(xml_err(format!(
            "XML error: expecting root element of 'cpu', not '{}'",
            root.name
        )));
    }
    cpu_from_node(&root)
}

fn text_of<'a>(n: &'a XmlNode, child: &str) -> Option<&'a str> {
    n.child(child)
        .map(|c| c.text.trim())
        .filter(|t| !t.is_empty())
}

fn cpu_from_node(root: &XmlNode) -> Result<CpuDef, DriverError> {
    let host = root.child("arch").is_some();
    let mut def = CpuDef {
        host,
        arch: text_of(root, "arch").map(str::to_string),
        strict: root.attr("match") == Some("strict"),
        model: text_of(root, "model").map(str::to_string),
        vendor: text_of(root, "vendor").map(str::to_string),
        features: Vec::new(),
    };
    if !host && def.vendor.is_some() && def.model.is_none() {
        return Err(DriverError::Unsupported(
            "CPU vendor specified without CPU model".into(),
        ));
    }
    for f in root.children.iter().filter(|c| c.name == "feature") {
        let Some(name) = f.attr("name") else {
            return Err(DriverError::Unsupported("Invalid CPU feature name".into()));
        };
        let policy = if host {
            Policy::Require
        } else {
            match f.attr("policy").unwrap_or("require") {
                "force" => Policy::Force,
                "require" => Policy::Require,
                "optional" => Policy::Optional,
                "disable" => Policy::Disable,
                "forbid" => Policy::Forbid,
                p => {
                    return Err(DriverError::Unsupported(format!(
                        "Invalid CPU feature policy '{p}'"
                    )));
                }
            }
        };
        if def.features.iter().any(|(n, _)| n == name) {
            return Err(DriverError::Unsupported(format!(
                "CPU feature '{name}' specified more than once"
            )));
        }
        def.features.push((name.to_string(), policy));
    }
    Ok(def)
}

/// One feature's set, with libvirt's error for a name its map lacks. Names of libvirt's map
/// that ours does not carry (the VMX capability MSRs) cannot be compared: refused.
fn feature_set(name: &str) -> Result<FeatureSet, DriverError> {
    match feature_index(name) {
        Some(i) => {
            let mut s = FeatureSet::default();
            s.insert(i);
            Ok(s)
        }
        None if name.starts_with("vmx-") => Err(DriverError::NoSupport(format!(
            "comparing CPU feature '{name}' (a VMX capability)"
        ))),
        None => Err(DriverError::Internal(format!("Unknown CPU feature {name}"))),
    }
}

fn union(a: &FeatureSet, b: &FeatureSet) -> FeatureSet {
    let mut out = *a;
    for n in b.names() {
        if let Some(i) = feature_index(n) {
            out.insert(i);
        }
    }
    out
}

fn intersect(a: &FeatureSet, b: &FeatureSet) -> FeatureSet {
    a.minus(&a.minus(b))
}

/// The features of `cpu` with `policy`, or with `None` all it has as libvirt's host view
/// (model plus required and forced, minus disabled and forbidden) (libvirt:
/// x86ModelFromCPU).
fn model_from_cpu(cpu: &CpuDef, policy: Option<Policy>) -> Result<FeatureSet, DriverError> {
    if cpu.host && !matches!(policy, None | Some(Policy::Require)) {
        return Ok(FeatureSet::default());
    }
    let mut set = FeatureSet::default();
    if let Some(m) = &cpu.model
        && matches!(policy, None | Some(Policy::Require))
    {
        set = X86Model::find(m)
            .ok_or_else(|| DriverError::Internal(format!("Unknown CPU model {m}")))?
            .features();
    }
    for (name, fpol) in &cpu.features {
        match policy {
            None => match fpol {
                Policy::Optional => {}
                Policy::Force | Policy::Require => set = union(&set, &feature_set(name)?),
                Policy::Disable | Policy::Forbid => set = set.minus(&feature_set(name)?),
            },
            Some(p) if p == *fpol => set = union(&set, &feature_set(name)?),
            Some(_) => {}
        }
    }
    Ok(set)
}

/// `MSG: a, b` for the features of `set` (libvirt: virX86CpuIncompatible).
fn incompatible(msg: &str, set: &FeatureSet) -> String {
    format!("{msg}: {}", set.names().join(", "))
}

/// libvirt: x86Compute without a guest CPU to fill in.
fn compute(host: &CpuDef, cpu: &CpuDef) -> Result<(CpuCompareResult, Option<String>), DriverError> {
    use CpuCompareResult::*;
    if let Some(a) = &cpu.arch
        && !matches!(a.as_str(), "x86_64" | "i686")
    {
        return Ok((
            Incompatible,
            Some(format!("CPU arch {a} does not match host arch")),
        ));
    }
    if let Some(v) = &cpu.vendor
        && host.vendor.as_deref() != Some(v.as_str())
    {
        return Ok((
            Incompatible,
            Some(format!(
                "host CPU vendor does not match required CPU vendor {v}"
            )),
        ));
    }
    let host_model = model_from_cpu(host, None)?;
    let force = model_from_cpu(cpu, Some(Policy::Force))?;
    let mut require = model_from_cpu(cpu, Some(Policy::Require))?;
    let optional = model_from_cpu(cpu, Some(Policy::Optional))?;
    let disable = model_from_cpu(cpu, Some(Policy::Disable))?;
    let forbid = model_from_cpu(cpu, Some(Policy::Forbid))?;

    let provided = intersect(&forbid, &host_model);
    if !provided.is_empty() {
        return Ok((
            Incompatible,
            Some(incompatible(
                "Host CPU provides forbidden features",
                &provided,
            )),
        ));
    }
    require = require.minus(&force).minus(&optional).minus(&disable);
    let missing = require.minus(&host_model);
    if !missing.is_empty() {
        return Ok((
            Incompatible,
            Some(incompatible(
                "Host CPU does not provide required features",
                &missing,
            )),
        ));
    }
    let diff = host_model
        .minus(&optional)
        .minus(&require)
        .minus(&disable)
        .minus(&force);
    if diff.is_empty() {
        return Ok((Identical, None));
    }
    if !cpu.host && cpu.strict {
        return Ok((
            Incompatible,
            Some(incompatible(
                "Host CPU does not strictly match guest CPU: Extra features",
                &diff,
            )),
        ));
    }
    Ok((Superset, None))
}

/// libvirt: virCPUCompareXML then virCPUx86Compare, against `host` (`None`: no model known).
fn compare_xml(
    arch: &str,
    host: Option<&CpuDef>,
    xml: &str,
    flags: u32,
) -> Result<CpuCompareResult, DriverError> {
    if flags & COMPARE_CPU_VALIDATE_XML != 0 {
        super::schema::validate_xml_against(xml, "cpu.rng")?;
    }
    let cpu = parse_cpu(xml)?;
    if !matches!(arch, "x86_64" | "i686") {
        return Err(DriverError::NoSupport(format!(
            "cannot compare CPUs of {arch} architecture"
        )));
    }
    let fail = flags & COMPARE_CPU_FAIL_INCOMPATIBLE != 0;
    let Some(host) = host.filter(|h| h.model.is_some()) else {
        if fail {
            return Err(DriverError::CpuIncompatible(Some(
                "unknown host CPU".into(),
            )));
        }
        return Ok(CpuCompareResult::Incompatible);
    };
    let (res, why) = compute(host, &cpu)?;
    if res == CpuCompareResult::Incompatible && fail {
        return Err(DriverError::CpuIncompatible(why));
    }
    Ok(res)
}

impl Connect {
    /// The host CPU as the capabilities describe it: model, vendor and the features beyond
    /// the model (libvirt: virQEMUDriverGetHostCPU).
    fn host_cpu_def(&self) -> Result<(String, Option<CpuDef>), DriverError> {
        let mut host = HostCaps::probe(&self.opts.host_root)?;
        host.cpu.describe_x86_from_features();
        let cpu = &host.cpu;
        let def = cpu.model.as_ref().map(|m| CpuDef {
            host: true,
            arch: Some(cpu.arch.clone()),
            strict: false,
            model: Some(m.clone()),
            vendor: cpu.vendor.clone(),
            features: cpu
                .features
                .iter()
                .map(|f| (f.clone(), Policy::Require))
                .collect(),
        });
        Ok((cpu.arch.clone(), def))
    }

    /// `virConnectCompareCPU`: how the CPU `xml` describes relates to the host's CPU.
    pub fn compare_cpu(&self, xml: &str, flags: u32) -> Result<CpuCompareResult, DriverError> {
        super::hotplug::check_flags(
            flags,
            COMPARE_CPU_FAIL_INCOMPATIBLE | COMPARE_CPU_VALIDATE_XML,
            "qemuConnectCompareCPU",
        )?;
        let (arch, host) = self.host_cpu_def()?;
        compare_xml(&arch, host.as_ref(), xml, flags)
    }

    /// `virConnectCompareHypervisorCPU`: how the CPU `xml` describes relates to the CPU the
    /// emulator offers on this host (its host-model CPU for `virttype`). Only x86 compares;
    /// an emulator with no host-model CPU for `virttype` is refused as libvirt refuses it.
    pub fn compare_hypervisor_cpu(
        &self,
        emulator: Option<&str>,
        arch: Option<&str>,
        machine: Option<&str>,
        virttype: Option<&str>,
        xml: &str,
        flags: u32,
    ) -> Result<CpuCompareResult, DriverError> {
        super::hotplug::check_flags(
            flags,
            COMPARE_CPU_FAIL_INCOMPATIBLE | COMPARE_CPU_VALIDATE_XML,
            "qemuConnectCompareHypervisorCPU",
        )?;
        let caps = self.domain_capabilities(emulator, arch, machine, virttype)?;
        let doc = parse_document(&caps)?;
        let binary = text_of(&doc, "path").unwrap_or_default().to_string();
        let vt = text_of(&doc, "domain").unwrap_or("qemu").to_string();
        let doc_arch = text_of(&doc, "arch").unwrap_or_default().to_string();
        let mode = doc.child("cpu").and_then(|c| {
            c.children.iter().find(|m| {
                m.name == "mode"
                    && m.attr("name") == Some("host-model")
                    && m.attr("supported") == Some("yes")
            })
        });
        // libvirt: the host-model CPU QEMU reported, usable only with fallback 'forbid'.
        let Some(mode) = mode.filter(|m| {
            m.child("model")
                .is_some_and(|x| x.attr("fallback") == Some("forbid"))
        }) else {
            return Err(DriverError::OperationUnsupported(format!(
                "QEMU '{binary}' does not support reporting CPU model for virttype '{vt}'"
            )));
        };
        if !matches!(doc_arch.as_str(), "x86_64" | "i686") {
            return Err(DriverError::OperationUnsupported(format!(
                "comparing with the hypervisor CPU is not supported for arch {doc_arch}"
            )));
        }
        let mut hv = cpu_from_node(mode)?;
        // The host-model CPU is a guest CPU whose features the hypervisor provides: the
        // required ones are what it has, the disabled ones what it lacks.
        hv.host = false;
        compare_xml(&doc_arch, Some(&hv), xml, flags)
    }

    /// `virConnectBaselineCPU`: not computed here (see the module doc).
    pub fn baseline_cpu(&self, xmls: &[String], flags: u32) -> Result<String, DriverError> {
        super::hotplug::check_flags(
            flags,
            BASELINE_CPU_EXPAND_FEATURES | BASELINE_CPU_MIGRATABLE,
            "qemuConnectBaselineCPU",
        )?;
        for x in xmls {
            parse_cpu(x)?;
        }
        Err(DriverError::NoSupport("virConnectBaselineCPU".into()))
    }

    /// `virConnectBaselineHypervisorCPU`: not computed here (see the module doc).
    #[allow(clippy::too_many_arguments)]
    pub fn baseline_hypervisor_cpu(
        &self,
        emulator: Option<&str>,
        arch: Option<&str>,
        machine: Option<&str>,
        virttype: Option<&str>,
        xmls: &[String],
        flags: u32,
    ) -> Result<String, DriverError> {
        super::hotplug::check_flags(
            flags,
            BASELINE_CPU_EXPAND_FEATURES | BASELINE_CPU_MIGRATABLE,
            "qemuConnectBaselineHypervisorCPU",
        )?;
        for x in xmls {
            parse_cpu(x)?;
        }
        // The emulator must exist and serve the arch, as libvirt checks before computing.
        self.domain_capabilities(emulator, arch, machine, virttype)?;
        Err(DriverError::NoSupport(
            "virConnectBaselineHypervisorCPU".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host() -> CpuDef {
        parse_cpu(
            "<cpu><arch>x86_64</arch><model>Haswell-noTSX</model><vendor>Intel</vendor>\
             <feature name='vmx'/><feature name='invtsc'/></cpu>",
        )
        .unwrap()
    }

    fn cmp(xml: &str, flags: u32) -> Result<CpuCompareResult, DriverError> {
        compare_xml("x86_64", Some(&host()), xml, flags)
    }

    #[test]
    fn compare_as_libvirt() {
        use CpuCompareResult::*;
        // The host itself.
        let same = "<cpu><arch>x86_64</arch><model>Haswell-noTSX</model>\
                    <feature name='vmx'/><feature name='invtsc'/></cpu>";
        assert_eq!(cmp(same, 0).unwrap(), Identical);
        // An older model: the host has more.
        assert_eq!(
            cmp("<cpu match='exact'><model>Westmere</model></cpu>", 0).unwrap(),
            Superset
        );
        // A newer one lacks features.
        assert_eq!(
            cmp("<cpu><model>Skylake-Client</model></cpu>", 0).unwrap(),
            Incompatible
        );
        let e = cmp(
            "<cpu><model>Haswell-noTSX</model><feature policy='require' name='avx512f'/></cpu>",
            COMPARE_CPU_FAIL_INCOMPATIBLE,
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            e,
            "the CPU is incompatible with host CPU: Host CPU does not provide required features: avx512f"
        );
        let e = cmp(
            "<cpu><model>Westmere</model><feature policy='forbid' name='vmx'/></cpu>",
            COMPARE_CPU_FAIL_INCOMPATIBLE,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.ends_with("Host CPU provides forbidden features: vmx"),
            "{e}"
        );
        let e = cmp(
            "<cpu match='strict'><model>Westmere</model></cpu>",
            COMPARE_CPU_FAIL_INCOMPATIBLE,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("Host CPU does not strictly match guest CPU: Extra features: "),
            "{e}"
        );
        let e = cmp(
            "<cpu><model>Westmere</model><vendor>AMD</vendor></cpu>",
            COMPARE_CPU_FAIL_INCOMPATIBLE,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.ends_with("host CPU vendor does not match required CPU vendor AMD"),
            "{e}"
        );
        let e = cmp("<cpu><model>Nosuch</model></cpu>", 0)
            .unwrap_err()
            .to_string();
        assert_eq!(e, "internal error: Unknown CPU model Nosuch");
        let e = cmp(
            "<cpu><model>Westmere</model><feature name='nosuch'/></cpu>",
            0,
        )
        .unwrap_err()
        .to_string();
        assert_eq!(e, "internal error: Unknown CPU feature nosuch");
        // A feature the model has, disabled: no longer required, and the host's having it
        // is accounted for (libvirt subtracts disabled features from the difference too).
        assert_eq!(
            cmp(
                "<cpu><model>Haswell-noTSX</model><feature name='vmx'/><feature name='invtsc'/>\
                 <feature policy='disable' name='avx2'/></cpu>",
                0
            )
            .unwrap(),
            Identical
        );
    }

    #[test]
    fn unknown_host_cpu() {
        assert_eq!(
            compare_xml("x86_64", None, "<cpu><model>486</model></cpu>", 0).unwrap(),
            CpuCompareResult::Incompatible
        );
        let e = compare_xml(
            "x86_64",
            None,
            "<cpu><model>486</model></cpu>",
            COMPARE_CPU_FAIL_INCOMPATIBLE,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "the CPU is incompatible with host CPU: unknown host CPU"
        );
        let e = compare_xml("aarch64", None, "<cpu><model>486</model></cpu>", 0).unwrap_err();
        assert_eq!(
            e.to_string(),
            "this function is not supported by the connection driver: cannot compare CPUs of aarch64 architecture"
        );
    }
}
