//! Firmware autoselection at start: libvirt 9.0's qemuFirmwareFillDomain. `<os firmware='efi'>`
//! (or `'bios'`) with its `<firmware><feature/>` wishes picks the first matching QEMU firmware
//! descriptor (file-name order, see `capabilities::domcaps::firmware::load`) and writes the loader, the varstore
//! template and the NVRAM path into the definition, turning SMM on when the firmware needs it.
//! A read-only UEFI loader named by path without a template (the old style) is looked up the
//! same way, to find its template, and may find none.
//!
//! Pure: the descriptors and whether the NVRAM file exists come from the caller (the driver
//! reads the host's, libvirt's test harness its `qemufirmwaredata`).

use super::DomainError;
use crate::capabilities::domcaps::firmware::Descriptor;
use crate::domain::model::{DomainDef, Loader, Nvram, Smm};

/// What a start asks of firmware selection.
pub struct FirmwareRequest<'a> {
    /// The descriptors, in the order `firmware::load` returns them.
    pub descriptors: &'a [Descriptor],
    /// Where a guest's varstore lives by default (`NAME_VARS.fd` in it).
    pub nvram_dir: &'a str,
    /// Whether a local NVRAM file exists already (an old-style loader keeps its varstore).
    pub nvram_exists: &'a dyn Fn(&str) -> bool,
    /// `start --reset-nvram`: the varstore is recreated, so the template must be known.
    pub reset_nvram: bool,
}

/// libvirt: qemuFirmwareFillDomain.
pub fn fill(def: &mut DomainDef, req: &FirmwareRequest<'_>) -> Result<(), DomainError> {
    let need_result = match def.os.firmware.as_deref() {
        Some(_) => true,
        None => {
            // The old style: a read-only pflash loader by path whose template is unknown
            // and whose varstore does not exist yet.
            let Some(l) = &def.os.loader else {
                return Ok(());
            };
            let old_style_ro_uefi =
                l.ltype.as_deref() == Some("pflash") && l.readonly.as_deref() == Some("yes");
            let template = def.os.nvram.as_ref().and_then(|n| n.template.as_ref());
            if !old_style_ro_uefi || template.is_some() {
                return Ok(());
            }
            if let Some(nv) = &def.os.nvram {
                if nv.source.as_ref().is_some_and(|s| s.protocol.is_some()) {
                    if req.reset_nvram {
                        return Err(DomainError::Config(
                            "Operation not supported: resetting of nvram is not supported with network backed nvram"
                                .into(),
                        ));
                    }
                    return Ok(());
                }
                if let Some(p) = &nv.path
                    && !req.reset_nvram
                    && (req.nvram_exists)(p)
                {
                    return Ok(());
                }
            }
            false
        }
    };
    let Some(chosen) = req.descriptors.iter().find(|d| matches(def, d)) else {
        if need_result {
            return Err(DomainError::Config(format!(
                "operation failed: Unable to find any firmware to satisfy '{}'",
                def.os.firmware.as_deref().unwrap_or_default()
            )));
        }
        return Ok(());
    };
    enable(def, chosen, req.nvram_dir)?;
    // The started domain has its firmware named: what asked for it is spent, and a live
    // definition naming both would not read back.
    def.os.firmware = None;
    def.os.firmware_features = None;
    Ok(())
}

/// The descriptor's interface for what the domain asks: its `firmware` attribute, or for an
/// old-style loader the loader's type.
fn wanted_interface(def: &DomainDef) -> Option<&'static str> {
    match def.os.firmware.as_deref() {
        Some("efi") => Some("uefi"),
        Some("bios") => Some("bios"),
        Some(_) => None,
        None => match def.os.loader.as_ref()?.ltype.as_deref() {
            Some("pflash") => Some("uefi"),
            Some("rom") => Some("bios"),
            _ => None,
        },
    }
}

/// libvirt: qemuFirmwareMatchDomain.
fn matches(def: &DomainDef, fw: &Descriptor) -> bool {
    let Some(want) = wanted_interface(def) else {
        return false;
    };
    let loader = def.os.loader.as_ref();
    if def.os.firmware.is_none() {
        // An old-style loader only finds the descriptor of its own executable.
        let named = loader.and_then(|l| l.path.as_deref());
        if fw.mapping.device != "flash" || fw.executable() != named {
            return false;
        }
    }
    if !fw.interface_types.iter().any(|i| i == want) {
        return false;
    }
    let arch = def.os.os_type.arch.as_deref().unwrap_or_default();
    let machine = def.os.os_type.machine.as_deref().unwrap_or_default();
    if !fw.serves(machine, arch) {
        return false;
    }
    let has = |f: &str| fw.features.iter().any(|x| x == f);
    let pm = def.pm.as_ref();
    if pm.and_then(|p| p.suspend_to_mem.as_deref()) == Some("yes") && !has("acpi-s3") {
        return false;
    }
    if pm.and_then(|p| p.suspend_to_disk.as_deref()) == Some("yes") && !has("acpi-s4") {
        return false;
    }
    for (name, enabled) in def.os.firmware_features.iter().flatten() {
        let offered = match name.as_str() {
            "secure-boot" => has("secure-boot"),
            "enrolled-keys" => has("enrolled-keys"),
            _ => continue,
        };
        if (enabled == "yes") != offered {
            return false;
        }
    }
    if loader.and_then(|l| l.secure.as_deref()) == Some("yes") && !has("requires-smm") {
        return false;
    }
    if fw.mapping.device == "flash" {
        // A stateless loader wants a firmware without varstore; anything else the split
        // layout libvirt manages (a combined image would be shared by every guest).
        let stateless = loader.and_then(|l| l.stateless.as_deref()) == Some("yes");
        let mode = fw.mapping.mode.as_deref().unwrap_or("split");
        if mode != if stateless { "stateless" } else { "split" } {
            return false;
        }
    }
    if let Some(sec) = &def.launch_security
        && sec.ltype == "sev"
    {
        if !has("amd-sev") {
            return false;
        }
        // Bit 2 of the policy asks for SEV-ES.
        let policy = sec.policy.as_deref().and_then(parse_policy).unwrap_or(0);
        if policy & (1 << 2) != 0 && !has("amd-sev-es") {
            return false;
        }
    }
    true
}

fn parse_policy(s: &str) -> Option<u64> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

/// libvirt: qemuFirmwareEnableFeatures.
fn enable(def: &mut DomainDef, fw: &Descriptor, nvram_dir: &str) -> Result<(), DomainError> {
    match fw.mapping.device.as_str() {
        "flash" => {
            let exe = fw.mapping.executable.clone().unwrap_or_default();
            if exe.format != "raw" {
                return Err(DomainError::Config(format!(
                    "Operation not supported: unsupported flash format '{}'",
                    exe.format
                )));
            }
            let stateless = fw.mapping.mode.as_deref() == Some("stateless");
            let loader = def.os.loader.get_or_insert_with(Loader::default);
            loader.ltype = Some("pflash".into());
            loader.readonly = Some("yes".into());
            loader.path = Some(exe.filename);
            if stateless {
                loader.stateless = Some("yes".into());
            } else {
                let template = fw.mapping.nvram_template.clone().unwrap_or_default();
                if template.format != "raw" {
                    return Err(DomainError::Config(format!(
                        "Operation not supported: unsupported nvram template format '{}'",
                        template.format
                    )));
                }
                let name = def.name.clone();
                let nv = def.os.nvram.get_or_insert_with(Nvram::default);
                nv.template = Some(template.filename);
                if nv.path.is_none() && nv.source.is_none() {
                    nv.path = Some(format!("{nvram_dir}/{name}_VARS.fd"));
                }
            }
        }
        "memory" => {
            let loader = def.os.loader.get_or_insert_with(Loader::default);
            loader.ltype = Some("rom".into());
            loader.path = fw.mapping.filename.clone();
        }
        _ => {}
    }
    if fw.features.iter().any(|f| f == "requires-smm") {
        let features = def.features.get_or_insert_with(Default::default);
        match features.smm.as_ref().and_then(|s| s.state.as_deref()) {
            Some("off") => {
                return Err(DomainError::Config(
                    "Requested operation is not valid: domain has SMM turned off but chosen firmware requires it"
                        .into(),
                ));
            }
            Some(_) => {}
            None => {
                let tseg_kib = features.smm.as_ref().and_then(|s| s.tseg_kib);
                features.smm = Some(Smm {
                    state: Some("on".into()),
                    tseg_kib,
                });
            }
        }
        // Writes to the varstore must go through SMM, or the guest could bypass Secure Boot.
        if let Some(l) = def.os.loader.as_mut()
            && l.secure.is_none()
        {
            l.secure = Some("yes".into());
        }
    }
    Ok(())
}

/// A read-only UEFI loader named by path without a varstore gets one in `nvram_dir`, at
/// define already, so the config says where the guest's variables live.
// libvirt: qemuDomainNVRAMPathGenerate
pub(super) fn name_varstore(def: &mut DomainDef, nvram_dir: &str) {
    let os = &mut def.os;
    let old_style_ro_uefi = os.loader.as_ref().is_some_and(|l| {
        l.ltype.as_deref() == Some("pflash")
            && l.readonly.as_deref() == Some("yes")
            && l.stateless.as_deref() != Some("yes")
    });
    if os.firmware.is_none() && old_style_ro_uefi && os.nvram.is_none() {
        os.nvram = Some(Nvram {
            path: Some(format!("{nvram_dir}/{}_VARS.fd", def.name)),
            ..Default::default()
        });
    }
}
