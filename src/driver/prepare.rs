//! The one production entry to libvirt's post-parse: define, create, domxml-to-native and
//! start all prepare a definition here, with the caps of the emulator it names (or the host's
//! choice for its arch), so that what `define` stores is what libvirtd would store and what
//! `start` runs is built from the same facts.

use super::{Connect, DriverError};
use crate::capabilities::qemu::{self, QemuCaps};
use crate::domain::{DomainDef, PrepareOptions, VirtType};

/// What the prepared definition is for. Every purpose gets the full post-parse and the ABI
/// update (a machine alias replaced by the machine it stands for, libvirt's
/// `qemuCanonicalizeMachine`, which its post-parse runs whenever the caps list aliases); they
/// differ in what the caller does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// `virsh define`: the result is the stored config.
    Define,
    /// `virsh create`: a transient domain, started right away.
    Create,
    /// `virsh domxml-to-native`: the command of a pretend start.
    Native,
    /// `virsh start` of a stored config.
    Start,
}

impl Connect {
    /// Post-parse `def` as libvirtd's QEMU driver does (defaults, implicit devices, addresses,
    /// CPU defaults, `<emulator>`, the canonical machine) against the probed caps of its
    /// emulator; returns the prepared definition (without aliases: those belong to a start)
    /// and the caps it was prepared with.
    pub fn prepare_domain(
        &self,
        def: DomainDef,
        purpose: Purpose,
    ) -> Result<(DomainDef, QemuCaps), DriverError> {
        self.prepare_domain_with(def, purpose, false)
    }

    /// [`Connect::prepare_domain`]; `reset_nvram` is `start --reset-nvram`, under which an
    /// existing varstore does not keep firmware selection from looking for its template.
    pub(crate) fn prepare_domain_with(
        &self,
        def: DomainDef,
        purpose: Purpose,
        reset_nvram: bool,
    ) -> Result<(DomainDef, QemuCaps), DriverError> {
        let mut def = def;
        if matches!(purpose, Purpose::Define | Purpose::Native) {
            // Both read the XML as a persistent config: what only a running domain has
            // (aliases, pty paths, generated interface names, picked ports) is dropped.
            crate::domain::prepare::inactive::drop_live_state(&mut def);
        }
        let caps = self.emulator_caps_for(&def)?;
        // swtpm is asked only when a TPM needs it; without swtpm no TPM version is offered,
        // and libvirtd refuses an emulated TPM at define.
        let emulated_tpm = def
            .devices
            .tpms
            .iter()
            .any(|t| t.backend_type.as_deref() == Some("emulator"));
        let opts = PrepareOptions {
            host_arch: qemu::host_arch().to_string(),
            emulator: None,
            canonicalize_machine: true,
            audio: Default::default(),
            tpm_versions: emulated_tpm.then(|| self.host_swtpm_versions().unwrap_or_default()),
            nvram_dir: Some(self.nvram_dir().display().to_string()),
        };
        let mut def = crate::domain::prepare(def, &caps, &opts)?;
        if purpose == Purpose::Define {
            self.pin_firmware(&mut def);
        } else {
            // What define could not pin is picked when the domain starts (its pretend
            // start for domxml-to-native included), and fails there as in libvirt 9.0.
            self.fill_firmware(&mut def, reset_nvram)?;
            // libvirt: qemuProcessUpdateGuestCPU, at start and in a pretend start.
            // CPUID is read only for a guest the check can concern: a named model on KVM.
            let named_model = def.cpu.as_ref().is_some_and(|c| c.model.is_some());
            let cpuid = if def.virt_type == VirtType::Kvm && named_model {
                crate::capabilities::host::this_cpu_features()
            } else {
                Vec::new()
            };
            crate::domain::prepare::cpu_compare::check_guest_cpu(&def, &caps, &cpuid)?;
        }
        if purpose == Purpose::Native {
            // libvirt: qemuConnectDomainXMLToNative turns the parsed interfaces into plain
            // TAP ones, then its pretend start assigns the addresses they lost.
            crate::domain::prepare::native::nets_as_ethernet(&mut def);
            crate::domain::prepare::assign_addresses(&mut def, &caps)?;
        }
        Ok((def, caps))
    }
}

impl Connect {
    /// Firmware chosen at define, as libvirt 9.2+ does it, so that the stored config names
    /// the loader and the varstore template every later start uses, whatever descriptors
    /// the host gains or loses meanwhile (libvirt: qemuFirmwareFillDomain from
    /// qemuDomainDefPostParse). The config is written as the started domain has it: the
    /// loader, the template and the varstore path (and SMM when the firmware needs it) in
    /// place of `firmware='efi'` and its wishes, which our libvirt 9.0 validation refuses
    /// beside a loader path. When nothing matches, the config keeps its wishes and the
    /// start reports libvirt's error, as libvirt 9.0 does (9.2 refuses the define).
    fn pin_firmware(&self, def: &mut DomainDef) {
        if def.os.firmware.is_none() {
            return;
        }
        let mut pinned = def.clone();
        if self.fill_firmware(&mut pinned, false).is_ok() {
            *def = pinned;
        }
    }

    /// Firmware autoselection against this host's descriptors (libvirt:
    /// qemuFirmwareFillDomain); the varstore goes into the connection's NVRAM directory.
    fn fill_firmware(&self, def: &mut DomainDef, reset_nvram: bool) -> Result<(), DriverError> {
        use crate::capabilities::domcaps::firmware;
        let wants = def.os.firmware.is_some()
            || def
                .os
                .loader
                .as_ref()
                .is_some_and(|l| l.ltype.as_deref() == Some("pflash"));
        if !wants {
            return Ok(());
        }
        let privileged = matches!(self.uri, super::ConnectUri::System);
        let (descriptors, warnings) = firmware::load(&firmware::default_dirs(privileged));
        self.warn(warnings);
        let nvram_dir = self.nvram_dir().display().to_string();
        let req = crate::domain::prepare::firmware::FirmwareRequest {
            descriptors: &descriptors,
            nvram_dir: &nvram_dir,
            nvram_exists: &|p| std::path::Path::new(p).exists(),
            reset_nvram,
        };
        crate::domain::prepare::firmware::fill(def, &req)?;
        Ok(())
    }
}
