//! Whether the host can accelerate guests: a usable /dev/kvm, or Hypervisor.framework on macOS.

use std::path::Path;

/// The KVM API version every released kernel reports; anything else is not a KVM we know.
const KVM_API_VERSION: i32 = 12;

// KVM_GET_API_VERSION is _IO(KVMIO=0xAE, 0x00).
nix::ioctl_none!(kvm_get_api_version, 0xAE, 0x00);

/// Why KVM can or cannot be used, for capabilities and for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvmStatus {
    Usable,
    Unusable(String),
}

impl KvmStatus {
    pub fn usable(&self) -> bool {
        matches!(self, KvmStatus::Usable)
    }
}

/// Open `dev` (normally /dev/kvm) read-write and ask for the API version, as QEMU will.
pub fn kvm_status(dev: &Path) -> KvmStatus {
    use std::os::fd::AsRawFd;
    let f = match std::fs::OpenOptions::new().read(true).write(true).open(dev) {
        Ok(f) => f,
        Err(e) => return KvmStatus::Unusable(format!("cannot open {}: {e}", dev.display())),
    };
    // SAFETY: the fd is open for the duration of the call and KVM_GET_API_VERSION takes no
    // argument; on a non-KVM device the kernel returns ENOTTY, which we report.
    match unsafe { kvm_get_api_version(f.as_raw_fd()) } {
        Ok(KVM_API_VERSION) => KvmStatus::Usable,
        Ok(v) => KvmStatus::Unusable(format!(
            "{} reports KVM API version {v}, expected {KVM_API_VERSION}",
            dev.display()
        )),
        Err(e) => KvmStatus::Unusable(format!("{} is not a KVM device: {e}", dev.display())),
    }
}

/// Whether Hypervisor.framework is available (`sysctl kern.hv_support` is 1).
pub fn hvf_supported() -> bool {
    #[cfg(target_os = "macos")]
    {
        std::process::Command::new("/usr/sbin/sysctl")
            .args(["-n", "kern.hv_support"])
            .output()
            .map(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).trim() == "1")
            .unwrap_or(false)
    }
    #[cfg(not(target_os = "macos"))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_kvm_devices_are_unusable_with_a_reason() {
        match kvm_status(Path::new("/dev/null")) {
            KvmStatus::Unusable(why) => assert!(why.contains("/dev/null"), "{why}"),
            KvmStatus::Usable => panic!("/dev/null is not KVM"),
        }
        match kvm_status(Path::new("/nonexistent/kvm")) {
            KvmStatus::Unusable(why) => assert!(why.contains("cannot open"), "{why}"),
            KvmStatus::Usable => panic!(),
        }
    }
}
