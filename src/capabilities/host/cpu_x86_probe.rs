//! Reading this machine's x86 CPU as libvirt does for the host `<cpu>`: CPUID itself (not
//! /proc/cpuinfo, which hides bits such as `osxsave`), the IA32_ARCH_CAPABILITIES MSR when
//! CPUID says it exists, and the TSC frequency KVM gives a vCPU.

use std::collections::BTreeSet;
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use super::cpu_x86_decode::CpuidData;
use super::cpu_x86_features::{Location, features};

const ARCH_CAPABILITIES_MSR: u32 = 0x10a;

/// The CPUID leaves (and sub-leaves) our feature table reads, with libvirt's rules for which
/// sub-leaves exist (libvirt: cpuidSet and its cpuidSetLeaf* helpers).
fn wanted_leaves() -> BTreeSet<(u32, u32)> {
    let mut leaves: BTreeSet<(u32, u32)> = [(0, 0), (1, 0), (0x8000_0000, 0)].into();
    for f in features() {
        if let Location::Cpuid { leaf, sub, .. } = f.location {
            leaves.insert((leaf, sub));
        }
    }
    leaves
}

/// Whether sub-leaf `sub` of `leaf` holds data, given what was read before it.
fn subleaf_valid(data: &CpuidData, leaf: u32, sub: u32) -> bool {
    use super::cpu_x86_features::Reg::*;
    match (leaf, sub) {
        (_, 0) => true,
        // Leaf 7: EAX of sub-leaf 0 is the last sub-leaf.
        (0x7, s) => s <= data.reg(0x7, 0, Eax),
        // Leaf 0xD: sub-leaves 0 and 1 always exist.
        (0xd, 1) => true,
        // Leaf 0xF (RDT monitoring): sub-leaf n when bit n of EDX of sub-leaf 0.
        (0xf, s) => s < 32 && data.reg(0xf, 0, Edx) & (1 << s) != 0,
        // Leaf 0x12 (SGX): only with SGX (leaf 7 EBX bit 2).
        (0x12, 1) => data.reg(0x7, 0, Ebx) & (1 << 2) != 0,
        // Leaf 0x14 (processor trace): EAX of sub-leaf 0 is the last sub-leaf.
        (0x14, s) => s <= data.reg(0x14, 0, Eax),
        _ => false,
    }
}

/// `(leaf, sub) -> [eax, ebx, ecx, edx]` for `wanted`, reading leaves up to the highest basic
/// and extended leaf the CPU reports, through `cpuid`.
pub fn read_cpuid_with(cpuid: &dyn Fn(u32, u32) -> [u32; 4]) -> CpuidData {
    let mut data = CpuidData::default();
    let max_basic = cpuid(0, 0)[0];
    let max_ext = cpuid(0x8000_0000, 0)[0];
    for (leaf, sub) in wanted_leaves() {
        let max = if leaf >= 0x8000_0000 {
            max_ext
        } else {
            max_basic
        };
        if leaf > max {
            continue;
        }
        // Leaf 0x12's sub-leaf 0 depends on SGX as sub-leaf 1 does.
        let valid = if leaf == 0x12 {
            subleaf_valid(&data, leaf, 1)
        } else {
            subleaf_valid(&data, leaf, sub)
        };
        if valid {
            data.leaves.insert((leaf, sub), cpuid(leaf, sub));
        }
    }
    data
}

#[cfg(target_arch = "x86_64")]
fn cpuid_instruction(leaf: u32, sub: u32) -> [u32; 4] {
    // SAFETY: CPUID exists on every x86_64 processor and only reads identification data.
    #[allow(unused_unsafe)]
    let r = unsafe { std::arch::x86_64::__cpuid_count(leaf, sub) };
    [r.eax, r.ebx, r.ecx, r.edx]
}

/// This machine's CPUID data and, where CPUID announces it, its IA32_ARCH_CAPABILITIES MSR
/// (read best effort: it needs root). `None` on a non-x86_64 build.
pub fn read_this_cpu(kvm_device: &Path) -> Option<CpuidData> {
    #[cfg(target_arch = "x86_64")]
    {
        let mut data = read_cpuid_with(&cpuid_instruction);
        let arch_caps = super::cpu_x86_features::feature_index("arch-capabilities")
            .is_some_and(|i| data.features().contains(i));
        if arch_caps && let Some(v) = read_msr(ARCH_CAPABILITIES_MSR, kvm_device) {
            data.msrs.insert(ARCH_CAPABILITIES_MSR, v);
        }
        Some(data)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = kvm_device;
        None
    }
}

/// An MSR of CPU 0: from the msr driver, else from KVM's list of feature MSRs
/// (libvirt: virHostCPUGetMSR).
fn read_msr(index: u32, kvm_device: &Path) -> Option<u64> {
    use std::os::unix::fs::FileExt;
    if let Ok(f) = File::open("/dev/cpu/0/msr") {
        let mut buf = [0u8; 8];
        return f
            .read_exact_at(&mut buf, u64::from(index))
            .ok()
            .map(|_| u64::from_le_bytes(buf));
    }
    kvm::feature_msr(kvm_device, index)
}

/// `<counter name='tsc' frequency= scaling=/>`: the TSC frequency KVM gives a new vCPU and
/// whether KVM can scale it (libvirt: virHostCPUGetTscInfo). `None` when KVM cannot say.
pub fn tsc_info(kvm_device: &Path) -> Option<(u64, bool)> {
    kvm::tsc_info(kvm_device)
}

mod kvm {
    use super::*;

    // KVM ioctls: _IO(KVMIO=0xAE, nr) unless noted.
    nix::ioctl_write_int_bad!(kvm_create_vm, nix::request_code_none!(0xAE, 0x01));
    nix::ioctl_write_int_bad!(kvm_check_extension, nix::request_code_none!(0xAE, 0x03));
    nix::ioctl_write_int_bad!(kvm_create_vcpu, nix::request_code_none!(0xAE, 0x41));
    nix::ioctl_none_bad!(kvm_get_tsc_khz, nix::request_code_none!(0xAE, 0xa3));
    // KVM_GET_MSRS is _IOWR(KVMIO, 0x88, struct kvm_msrs), whose fixed part is 8 bytes.
    nix::ioctl_readwrite_bad!(
        kvm_get_msrs,
        nix::request_code_readwrite!(0xAE, 0x88, 8),
        KvmMsrs
    );

    const KVM_CAP_TSC_CONTROL: i32 = 60;

    /// `struct kvm_msrs` with room for one `struct kvm_msr_entry`.
    #[repr(C)]
    pub struct KvmMsrs {
        nmsrs: u32,
        pad: u32,
        index: u32,
        reserved: u32,
        data: u64,
    }

    fn open(dev: &Path) -> Option<File> {
        File::options().read(true).write(true).open(dev).ok()
    }

    fn owned(fd: i32) -> OwnedFd {
        // SAFETY: `fd` was just returned by a successful KVM ioctl and nothing else owns it.
        unsafe { OwnedFd::from_raw_fd(fd) }
    }

    pub fn tsc_info(dev: &Path) -> Option<(u64, bool)> {
        let kvm = open(dev)?;
        // SAFETY: KVM_CREATE_VM takes the machine type (0) by value; the fd stays open.
        let vm = owned(unsafe { kvm_create_vm(kvm.as_raw_fd(), 0) }.ok()?);
        // SAFETY: KVM_CREATE_VCPU takes the vCPU id by value; the VM fd stays open.
        let vcpu = owned(unsafe { kvm_create_vcpu(vm.as_raw_fd(), 0) }.ok()?);
        // SAFETY: KVM_GET_TSC_KHZ takes no argument and returns the frequency.
        let khz = unsafe { kvm_get_tsc_khz(vcpu.as_raw_fd()) }.ok()?;
        // SAFETY: KVM_CHECK_EXTENSION takes the capability number by value.
        let scaling = unsafe { kvm_check_extension(kvm.as_raw_fd(), KVM_CAP_TSC_CONTROL) }.ok()?;
        let khz = u64::try_from(khz).ok().filter(|k| *k > 0)?;
        Some((khz * 1000, scaling > 0))
    }

    pub fn feature_msr(dev: &Path, index: u32) -> Option<u64> {
        let kvm = open(dev)?;
        let mut msrs = KvmMsrs {
            nmsrs: 1,
            pad: 0,
            index,
            reserved: 0,
            data: 0,
        };
        // SAFETY: `msrs` is a kvm_msrs header followed by exactly `nmsrs` (1) entries and
        // outlives the call; the fd stays open.
        let n = unsafe { kvm_get_msrs(kvm.as_raw_fd(), &mut msrs) }.ok()?;
        (n == 1).then_some(msrs.data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_only_existing_leaves() {
        // A CPU with basic leaves up to 7 (leaf 7 has sub-leaf 1) and extended up to 0x80000001.
        let fake = |leaf: u32, sub: u32| -> [u32; 4] {
            match (leaf, sub) {
                (0, 0) => [7, 0, 0, 0],
                (7, 0) => [1, 0, 0, 0],
                (0x8000_0000, 0) => [0x8000_0001, 0, 0, 0],
                _ => [leaf, sub, 0, 0],
            }
        };
        let d = read_cpuid_with(&fake);
        assert!(d.leaves.contains_key(&(7, 1)));
        assert!(d.leaves.contains_key(&(0x8000_0001, 0)));
        assert!(
            !d.leaves.contains_key(&(0xd, 1)),
            "beyond the last basic leaf"
        );
        assert!(!d.leaves.contains_key(&(0x8000_0008, 0)));
        assert!(!d.leaves.contains_key(&(0x12, 0)), "no SGX");
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn this_cpu_has_a_vendor_and_basic_features() {
        let d = read_this_cpu(Path::new("/dev/null")).expect("x86_64");
        assert!(d.signature().is_some());
        let f = d.features().names();
        assert!(f.contains(&"fpu") && f.contains(&"sse2"), "{f:?}");
    }
}
