//! `Connect::domain_capabilities` (`virsh domcapabilities`): pick the emulator, probe it (or
//! take it from the probe cache), gather the host facts, and format.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{Connect, DriverError};
use crate::capabilities::domcaps::{self, DomCapsError, HostFacts, firmware};
use crate::capabilities::{inventory, qemu};

// KVM_CHECK_EXTENSION is _IO(KVMIO=0xAE, 0x03) with the capability number as its argument.
nix::ioctl_write_int_bad!(kvm_check_extension, nix::request_code_none!(0xAE, 0x03));
const KVM_CAP_NR_VCPUS: i32 = 9;
const KVM_CAP_MAX_VCPUS: i32 = 66;

/// How many vCPUs KVM allows per guest, as libvirt asks: the maximum, else the recommended
/// number, else `None` (no KVM, or it would not say).
pub fn kvm_max_vcpus(dev: &Path) -> Option<u32> {
    use std::os::fd::AsRawFd;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(dev)
        .ok()?;
    for cap in [KVM_CAP_MAX_VCPUS, KVM_CAP_NR_VCPUS] {
        // SAFETY: the fd stays open during the call; KVM_CHECK_EXTENSION takes an int by
        // value and only returns a number (ENOTTY on a device that is not KVM).
        if let Ok(n) = unsafe { kvm_check_extension(f.as_raw_fd(), cap) }
            && n > 0
        {
            return u32::try_from(n).ok();
        }
    }
    None
}

/// The TPM versions the installed swtpm offers; `None` when swtpm (and its setup tool, which
/// libvirt needs as well) is not installed.
pub fn swtpm_versions(dirs: &[PathBuf]) -> Option<Vec<String>> {
    let find = |n: &str| dirs.iter().map(|d| d.join(n)).find(|p| p.is_file());
    let swtpm = find("swtpm")?;
    find("swtpm_setup")?;
    let out = std::process::Command::new(&swtpm)
        .args(["socket", "--print-capabilities"])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let feats: Vec<&str> = v["features"]
        .as_array()
        .map(|a| a.iter().filter_map(|x| x.as_str()).collect())
        .unwrap_or_default();
    // swtpm before 0.7 did not list versions; it ran TPM 1.2 and (with --tpm2) 2.0.
    if !feats.iter().any(|f| f.starts_with("tpm-")) {
        return Some(vec!["1.2".into(), "2.0".into()]);
    }
    Some(
        [("tpm-1.2", "1.2"), ("tpm-2.0", "2.0")]
            .iter()
            .filter(|(f, _)| feats.contains(f))
            .map(|(_, v)| v.to_string())
            .collect(),
    )
}

/// VFIO assignment needs the VFIO container device and at least one IOMMU group.
pub fn vfio_usable() -> bool {
    Path::new("/dev/vfio/vfio").exists()
        && std::fs::read_dir("/sys/kernel/iommu_groups")
            .map(|mut d| d.next().is_some())
            .unwrap_or(false)
}

/// SEV's ASID range from CPUID 0x8000001F (ECX: highest ASID, EDX: lowest SEV-only ASID).
pub fn sev_asids() -> Option<(u32, u32)> {
    #[cfg(target_arch = "x86_64")]
    {
        #[allow(unused_unsafe)]
        // SAFETY: CPUID exists on every x86_64 CPU; leaves beyond the maximum just read zeros.
        let (max_ext, r) = unsafe {
            (
                std::arch::x86_64::__cpuid(0x8000_0000).eax,
                std::arch::x86_64::__cpuid_count(0x8000_001F, 0),
            )
        };
        if max_ext >= 0x8000_001F {
            return Some((r.ecx, r.edx));
        }
    }
    None
}

/// s390 hosts whose firmware runs protected (secure execution) guests.
fn s390_secure_guest() -> bool {
    std::fs::read_to_string("/sys/firmware/uv/prot_virt_host")
        .map(|s| s.trim() == "1")
        .unwrap_or(false)
}

impl Connect {
    /// The TPM versions this host's swtpm offers, looked up in the emulator dirs and `PATH`;
    /// `None` without swtpm.
    pub fn host_swtpm_versions(&self) -> Option<Vec<String>> {
        let mut tool_dirs = self.opts.emulator_dirs.clone();
        tool_dirs.extend(
            std::env::var_os("PATH")
                .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
                .unwrap_or_default(),
        );
        swtpm_versions(&tool_dirs)
    }

    /// The host facts domain capabilities need.
    pub fn domcaps_host_facts(&self) -> HostFacts {
        let privileged = matches!(self.uri, super::ConnectUri::System);
        let (descs, warnings) = firmware::load(&firmware::default_dirs(privileged));
        self.warn(warnings);
        let arch = qemu::host_arch().to_string();
        HostFacts {
            secure_guest: arch.starts_with("s390") && s390_secure_guest(),
            arch,
            kvm_max_vcpus: kvm_max_vcpus(&self.opts.kvm_device),
            tpm_versions: self.host_swtpm_versions(),
            vfio: vfio_usable(),
            force_vfio_backend: false,
            sev_asids: sev_asids(),
            host_cpu_model: None,
            firmware: descs,
            loader_values: None,
        }
    }

    /// Full caps of one emulator binary, from the probe cache or probed now.
    fn emulator_caps(&self, path: &Path) -> Result<qemu::QemuCaps, DomCapsError> {
        let shown = path.display().to_string();
        if let Err(e) = std::fs::metadata(path) {
            return Err(DomCapsError::CannotCheck {
                path: shown,
                reason: errno_text(&e),
            });
        }
        let (ctx, probe_opts) = self.stamp_context();
        let inv = inventory::collect(
            &[path.to_path_buf()],
            Some(&self.probe_cache()),
            &ctx,
            self.opts.probe_timeout + Duration::from_secs(2),
            |p| {
                let o = probe_opts.clone();
                async move { qemu::probe_binary(&p, &o).await }
            },
            (inventory::FULL, &qemu::QemuCaps::clone),
        );
        match inv.emulators.into_iter().next() {
            Some((_, c)) => Ok(c),
            None if inv.warnings.is_empty() => Err(DomCapsError::ProbeFailed {
                path: shown.clone(),
                reason: "unknown error".into(),
            }),
            None => {
                // The inventory words its warnings for a list of emulators ("PATH: left out:
                // why"); here the path is already in the message.
                let prefix = format!("{shown}: ");
                let reason = inv
                    .warnings
                    .iter()
                    .map(|w| {
                        let w = w.strip_prefix(&prefix).unwrap_or(w);
                        w.strip_prefix("left out: ").unwrap_or(w).to_string()
                    })
                    .collect::<Vec<_>>()
                    .join("; ");
                Err(DomCapsError::ProbeFailed {
                    path: shown,
                    reason,
                })
            }
        }
    }

    /// libvirt's domain capabilities XML (`virsh domcapabilities`). Missing arguments default
    /// as libvirt's do: the host architecture, its emulator, the emulator's default machine,
    /// and KVM when the emulator can use it, else plain QEMU.
    pub fn domain_capabilities(
        &self,
        emulatorbin: Option<&str>,
        arch: Option<&str>,
        machine: Option<&str>,
        virttype: Option<&str>,
    ) -> Result<String, DriverError> {
        if let Some(v) = virttype {
            domcaps::check_virttype(v)?;
        }
        if let Some(a) = arch {
            domcaps::check_arch(a)?;
        }
        let want_arch = arch.unwrap_or(qemu::host_arch());
        let (binary, caps) = self.domcaps_emulator(emulatorbin, arch)?;
        let shown = binary.display().to_string();
        let r = domcaps::resolve(&caps, &shown, want_arch, virttype, machine)?;
        let facts = self.domcaps_host_facts();
        Ok(domcaps::build(&caps, &shown, &r, &facts).to_xml())
    }

    /// The emulator domain capabilities describe, with its caps: `emulatorbin`, else the one
    /// serving `arch` (default: the host's) found first in the emulator dirs
    /// (libvirt: virQEMUCapsCacheLookupDefault).
    pub(crate) fn domcaps_emulator(
        &self,
        emulatorbin: Option<&str>,
        arch: Option<&str>,
    ) -> Result<(PathBuf, qemu::QemuCaps), DriverError> {
        let want_arch = arch.unwrap_or(qemu::host_arch());
        let binary = match emulatorbin {
            Some(b) => PathBuf::from(b),
            None => domcaps::emulator_names(want_arch)
                .iter()
                .find_map(|n| {
                    self.opts
                        .emulator_dirs
                        .iter()
                        .map(|d| d.join(n))
                        .find(|p| p.is_file())
                })
                .ok_or_else(|| DomCapsError::NoEmulator(arch.unwrap_or("(null)").to_string()))?,
        };
        let caps = self.emulator_caps(&binary)?;
        Ok((binary, caps))
    }
}

/// An I/O error as C's strerror words it ("No such file or directory"), as libvirt prints it.
fn errno_text(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => nix::errno::Errno::from_raw(n).desc().to_string(),
        None => e.to_string(),
    }
}
