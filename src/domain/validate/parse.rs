//! What libvirt's parser refuses, checked on the XML tree before it becomes a `DomainDef`:
//! values outside a closed vocabulary, malformed numbers, missing required attributes.
//!
//! libvirt stops at the first error of its parse, which reads the document in a fixed order
//! (virDomainDefParseXML: type and OS, CPU, NUMA, features, lifecycle, clock, boot, then the
//! devices kind by kind), not in document order; this walk keeps that order.

use super::super::xml::XmlNode;
use super::vocab as v;
use super::{DomainError, parse_devices};

/// `XML error: ...` (libvirt's VIR_ERR_XML_ERROR).
pub(super) fn xml(msg: impl Into<String>) -> DomainError {
    DomainError::Xml(format!("XML error: {}", msg.into()))
}

/// `unsupported configuration: ...` (libvirt's VIR_ERR_CONFIG_UNSUPPORTED).
pub(super) fn unsupported(msg: impl Into<String>) -> DomainError {
    DomainError::Config(format!("unsupported configuration: {}", msg.into()))
}

/// libvirt's virXMLPropEnum: `values` is the enum; with `nonzero` its first value (the enum's
/// "unset") is refused too.
pub(super) fn prop(
    n: &XmlNode,
    attr: &str,
    values: &[&str],
    nonzero: bool,
) -> Result<Option<usize>, DomainError> {
    let Some(val) = n.attr(attr) else {
        return Ok(None);
    };
    match values.iter().position(|x| *x == val) {
        Some(i) if !(nonzero && i == 0) => Ok(Some(i)),
        _ => Err(xml(format!(
            "Invalid value for attribute '{attr}' in element '{}': '{val}'.",
            n.name
        ))),
    }
}

/// [`prop`] with VIR_XML_PROP_REQUIRED.
pub(crate) fn prop_required(
    n: &XmlNode,
    attr: &str,
    values: &[&str],
    nonzero: bool,
) -> Result<usize, DomainError> {
    match prop(n, attr, values, nonzero)? {
        Some(i) => Ok(i),
        None => Err(missing(n, attr)),
    }
}

pub(crate) fn missing(n: &XmlNode, attr: &str) -> DomainError {
    xml(format!(
        "Missing required attribute '{attr}' in element '{}'",
        n.name
    ))
}

/// libvirt's virXMLPropTristateSwitch: `on` or `off`.
pub(super) fn switch(n: &XmlNode, attr: &str, required: bool) -> Result<(), DomainError> {
    if required {
        prop_required(n, attr, v::SWITCH, true).map(|_| ())
    } else {
        prop(n, attr, v::SWITCH, true).map(|_| ())
    }
}

/// libvirt's virXMLPropTristateBool: `yes` or `no`.
pub(super) fn boolean(n: &XmlNode, attr: &str) -> Result<(), DomainError> {
    prop(n, attr, v::BOOL, true).map(|_| ())
}

/// libvirt's virXMLPropUInt (base 10).
pub(crate) fn uint(
    n: &XmlNode,
    attr: &str,
    required: bool,
    nonzero: bool,
) -> Result<Option<u32>, DomainError> {
    let Some(val) = n.attr(attr) else {
        return if required {
            Err(missing(n, attr))
        } else {
            Ok(None)
        };
    };
    // strtoul accepts surrounding blanks and a sign; a negative number is refused.
    let parsed = val
        .trim()
        .strip_prefix('+')
        .unwrap_or(val.trim())
        .parse::<u32>();
    let Ok(num) = parsed else {
        return Err(xml(format!(
            "Invalid value for attribute '{attr}' in element '{}': '{val}'. Expected non-negative integer value",
            n.name
        )));
    };
    if nonzero && num == 0 {
        return Err(xml(format!(
            "Invalid value for attribute '{attr}' in element '{}': Zero is not permitted",
            n.name
        )));
    }
    Ok(Some(num))
}

fn children<'a>(n: &'a XmlNode, name: &'a str) -> impl Iterator<Item = &'a XmlNode> + 'a {
    n.children.iter().filter(move |c| c.name == name)
}

/// Run libvirt's parse-time checks on a `<domain>` element.
pub fn check(root: &XmlNode) -> Result<(), DomainError> {
    if root.name != "domain" {
        return Ok(());
    }
    check_caps(root)?;
    if let Some(cpu) = root.child("cpu") {
        check_cpu(cpu)?;
    }
    check_numatune(root)?;
    if let Some(f) = root.child("features") {
        check_features(f)?;
    }
    check_lifecycle(root)?;
    if let Some(c) = root.child("clock") {
        check_clock(c)?;
    }
    if let Some(os) = root.child("os") {
        check_boot(os)?;
    }
    if let Some(d) = root.child("devices") {
        parse_devices::check(d)?;
    }
    Ok(())
}

/// libvirt: virDomainDefParseCaps. The domain type, the OS type and the architecture.
fn check_caps(root: &XmlNode) -> Result<(), DomainError> {
    if let Some(t) = root.attr("type")
        && !v::VIRT_TYPES.contains(&t)
    {
        return Err(unsupported(format!("invalid domain type {t}")));
    }
    let os_type = root.child("os").and_then(|os| os.child("type"));
    match os_type {
        None if root.child("bootloader").is_none() => {
            return Err(xml("an os <type> must be specified"));
        }
        None => {}
        Some(t) => {
            let kind = t.text.as_str();
            if !v::OS_TYPES.contains(&kind) {
                return Err(unsupported(format!("unknown OS type '{kind}'")));
            }
            if let Some(arch) = t.attr("arch")
                && !v::ARCHES.contains(&arch)
            {
                return Err(unsupported(format!("Unknown architecture {arch}")));
            }
        }
    }
    Ok(())
}

/// libvirt: virCPUDefParseXML for a guest CPU.
fn check_cpu(cpu: &XmlNode) -> Result<(), DomainError> {
    let mode = match cpu.attr("mode") {
        Some(m) if !v::CPU_MODES.contains(&m) => {
            return Err(unsupported(format!("Invalid mode attribute '{m}'")));
        }
        Some(m) => m,
        None => "custom",
    };
    if cpu.attr("migratable").is_some() {
        switch(cpu, "migratable", false)?;
        if !matches!(mode, "host-passthrough" | "maximum") {
            return Err(unsupported(
                "Attribute migratable is only allowed for 'host-passthrough' / 'maximum' CPU mode",
            ));
        }
    }
    prop(cpu, "match", v::CPU_MATCHES, false)?;
    prop(cpu, "check", v::CPU_CHECKS, false)?;
    let model = cpu.child("model");
    if !matches!(mode, "host-passthrough" | "maximum")
        && let Some(m) = model
    {
        if m.attr("fallback")
            .is_some_and(|f| !v::CPU_FALLBACKS.contains(&f))
        {
            return Err(unsupported("Invalid fallback attribute"));
        }
        if let Some(id) = m.attr("vendor_id") {
            if id.len() != 12 {
                return Err(xml("vendor_id must be exactly 12 characters long"));
            }
            if id.contains(',') {
                return Err(xml("vendor id is invalid"));
            }
        }
    }
    let has_model = model.is_some_and(|m| !m.text.is_empty());
    if cpu.child("vendor").is_some() && !has_model {
        return Err(xml("CPU vendor specified without CPU model"));
    }
    if let Some(t) = cpu.child("topology") {
        uint(t, "sockets", true, true)?;
        uint(t, "dies", false, true)?;
        uint(t, "cores", true, true)?;
        uint(t, "threads", true, true)?;
    }
    let features: Vec<&XmlNode> = children(cpu, "feature").collect();
    if !features.is_empty() && !has_model && mode == "custom" {
        return Err(xml("Non-empty feature list specified without CPU model"));
    }
    for (i, f) in features.iter().enumerate() {
        if f.attr("policy")
            .is_some_and(|p| !v::CPU_FEATURE_POLICIES.contains(&p))
        {
            return Err(unsupported("Invalid CPU feature policy"));
        }
        let name = f.attr("name").unwrap_or("");
        if name.is_empty() {
            return Err(xml("Invalid CPU feature name"));
        }
        if features[..i].iter().any(|g| g.attr("name") == Some(name)) {
            return Err(xml(format!(
                "CPU feature '{name}' specified more than once"
            )));
        }
    }
    let caches: Vec<&XmlNode> = children(cpu, "cache").collect();
    if caches.len() > 1 {
        return Err(xml("at most one CPU cache element may be specified"));
    }
    if let Some(c) = caches.first() {
        prop_required(c, "mode", v::CPU_CACHE_MODES, false)?;
    }
    if let Some(m) = cpu.child("maxphysaddr") {
        prop_required(m, "mode", v::CPU_MAXPHYSADDR_MODES, false)?;
    }
    Ok(())
}

/// libvirt: virDomainNumatuneParseXML. `<memnode>` binds guest NUMA cells, so it needs them.
fn check_numatune(root: &XmlNode) -> Result<(), DomainError> {
    let Some(nt) = root.child("numatune") else {
        return Ok(());
    };
    if let Some(m) = nt.child("memory") {
        if let Some(mode) = m.attr("mode")
            && !v::NUMATUNE_MODES.contains(&mode)
        {
            return Err(unsupported(format!(
                "Unsupported NUMA memory tuning mode '{mode}'"
            )));
        }
        if let Some(p) = m.attr("placement")
            && !v::NUMATUNE_PLACEMENTS[1..].contains(&p)
        {
            return Err(unsupported(format!(
                "Unsupported NUMA memory placement mode '{p}'"
            )));
        }
    }
    let memnodes: Vec<&XmlNode> = children(nt, "memnode").collect();
    if memnodes.is_empty() {
        return Ok(());
    }
    let auto = nt.child("memory").and_then(|m| m.attr("placement")) == Some("auto");
    if auto {
        return Err(unsupported(
            "Per-node binding is not compatible with automatic NUMA placement.",
        ));
    }
    let cells = root
        .child("cpu")
        .and_then(|c| c.child("numa"))
        .map_or(0, |n| children(n, "cell").count());
    if cells == 0 {
        return Err(xml(
            "Element 'memnode' is invalid without any guest NUMA cells",
        ));
    }
    Ok(())
}

/// libvirt: virDomainFeaturesDefParse and its per-feature parsers.
fn check_features(features: &XmlNode) -> Result<(), DomainError> {
    for f in &features.children {
        if !v::FEATURES.contains(&f.name.as_str()) {
            return Err(unsupported(format!("unexpected feature '{}'", f.name)));
        }
        match f.name.as_str() {
            "apic" => switch(f, "eoi", false)?,
            "msrs" => {
                prop_required(f, "unknown", v::MSRS_UNKNOWN, false)?;
            }
            "hyperv" => check_hyperv(f)?,
            "kvm" => check_kvm(f)?,
            "vmcoreinfo" | "hap" | "pmu" | "pvspinlock" | "vmport" | "smm" => {
                switch(f, "state", false)?
            }
            "gic" => {
                prop(f, "version", v::GIC_VERSIONS, true)?;
            }
            "ioapic" => {
                prop(f, "driver", v::IOAPIC_DRIVERS, true)?;
            }
            "hpt" => {
                prop(f, "resizing", v::HPT_RESIZINGS, true)?;
            }
            "cfpc" => {
                prop(f, "value", v::CFPC_VALUES, true)?;
            }
            "sbbc" => {
                prop(f, "value", v::SBBC_VALUES, true)?;
            }
            "ibs" => {
                prop(f, "value", v::IBS_VALUES, true)?;
            }
            "htm" | "nested-hv" | "ccf-assist" => switch(f, "state", true)?,
            _ => {}
        }
    }
    Ok(())
}

/// libvirt: virDomainFeaturesHyperVDefParse.
fn check_hyperv(h: &XmlNode) -> Result<(), DomainError> {
    prop(h, "mode", v::HYPERV_MODES, true)?;
    for f in &h.children {
        if !v::HYPERV_FEATURES.contains(&f.name.as_str()) {
            return Err(unsupported(format!(
                "unsupported HyperV Enlightenment feature: {}",
                f.name
            )));
        }
        switch(f, "state", true)?;
        if f.attr("state") != Some("on") {
            continue;
        }
        match f.name.as_str() {
            "stimer" => {
                for c in &f.children {
                    if c.name != "direct" {
                        return Err(unsupported(format!(
                            "unsupported Hyper-V stimer feature: {}",
                            c.name
                        )));
                    }
                    switch(c, "state", true)?;
                }
            }
            "spinlocks" => {
                let retries = uint(f, "retries", true, false)?.unwrap_or(0);
                if retries < 0xFFF {
                    return Err(xml("HyperV spinlock retry count must be at least 4095"));
                }
            }
            "vendor_id" => {
                let Some(value) = f.attr("value") else {
                    return Err(xml(
                        "missing 'value' attribute for HyperV feature 'vendor_id'",
                    ));
                };
                if value.len() > 12 {
                    return Err(xml(
                        "HyperV vendor_id value must not be more than 12 characters.",
                    ));
                }
                if value.contains(',') {
                    return Err(xml("HyperV vendor_id value is invalid"));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// libvirt: virDomainFeaturesKVMDefParse.
fn check_kvm(k: &XmlNode) -> Result<(), DomainError> {
    for f in &k.children {
        if !v::KVM_FEATURES.contains(&f.name.as_str()) {
            return Err(unsupported(format!("unsupported KVM feature: {}", f.name)));
        }
        switch(f, "state", true)?;
        if f.name == "dirty-ring" && f.attr("state") == Some("on") {
            let size = uint(f, "size", true, false)?.unwrap_or(0);
            if !size.is_power_of_two() || !(1024..=65536).contains(&size) {
                return Err(xml(
                    "dirty ring must be power of 2 and ranges [1024, 65536]",
                ));
            }
        }
    }
    Ok(())
}

/// libvirt: virDomainDefLifecycleParse.
fn check_lifecycle(root: &XmlNode) -> Result<(), DomainError> {
    for name in ["on_reboot", "on_poweroff", "on_crash"] {
        if let Some(n) = root.child(name) {
            let action = n.text.as_str();
            if !v::LIFECYCLE_ACTIONS.contains(&action) {
                return Err(unsupported(format!("unknown {name} action: {action}")));
            }
        }
    }
    if let Some(n) = root.child("on_lockfailure") {
        let action = n.text.as_str();
        if !v::LOCK_FAILURE_ACTIONS.contains(&action) {
            return Err(unsupported(format!(
                "unknown on_lockfailure action: {action}"
            )));
        }
    }
    Ok(())
}

/// libvirt: virDomainDefClockParse and virDomainTimerDefParseXML.
fn check_clock(clock: &XmlNode) -> Result<(), DomainError> {
    if let Some(o) = clock.attr("offset")
        && !v::CLOCK_OFFSETS.contains(&o)
    {
        return Err(unsupported(format!("unknown clock offset '{o}'")));
    }
    for t in children(clock, "timer") {
        prop_required(t, "name", v::TIMER_NAMES, false)?;
        boolean(t, "present")?;
        prop(t, "tickpolicy", v::TIMER_TICKPOLICIES, true)?;
        prop(t, "track", v::TIMER_TRACKS, true)?;
        prop(t, "mode", v::TIMER_MODES, true)?;
    }
    Ok(())
}

/// libvirt: virDomainDefParseBootOptions: loader, firmware and `<boot dev>`.
fn check_boot(os: &XmlNode) -> Result<(), DomainError> {
    if let Some(fw) = os.attr("firmware")
        && !v::FIRMWARES[1..].contains(&fw)
    {
        return Err(unsupported(format!("unknown firmware value {fw}")));
    }
    if let Some(l) = os.child("loader") {
        boolean(l, "readonly")?;
        boolean(l, "secure")?;
        prop(l, "type", v::LOADER_TYPES, true)?;
        boolean(l, "stateless")?;
    }
    for b in children(os, "boot") {
        prop_required(b, "dev", v::BOOT_DEVS, false)?;
    }
    Ok(())
}
