//! Is this VMware? Asked before the backdoor is used, because `in` on the
//! backdoor port faults on any other machine.
//!
//! Two independent signs, either is enough: the hypervisor CPUID leaf
//! 0x40000000 says `VMwareVMware` (checked only when CPUID.1:ECX bit 31,
//! "hypervisor present", is set: on bare metal leaf 0x40000000 returns
//! unrelated data), or the firmware's DMI system vendor is `VMware, Inc.`.

use std::path::Path;

/// The DMI system vendor as the kernel exposes it.
pub const DMI_SYS_VENDOR: &str = "/sys/class/dmi/id/sys_vendor";
/// The vendor string VMware's firmware reports.
pub const VMWARE_DMI_VENDOR: &str = "VMware, Inc.";
/// EBX, ECX, EDX of CPUID leaf 0x40000000 on VMware.
pub const VMWARE_CPUID_SIGNATURE: &[u8; 12] = b"VMwareVMware";
/// The hypervisor CPUID leaf.
const HYPERVISOR_LEAF: u32 = 0x4000_0000;
/// CPUID.1:ECX bit 31: running under a hypervisor.
const HYPERVISOR_PRESENT_BIT: u32 = 1 << 31;

/// What showed this is VMware.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Evidence {
    /// CPUID leaf 0x40000000 is `VMwareVMware`.
    Cpuid,
    /// `/sys/class/dmi/id/sys_vendor` is `VMware, Inc.`.
    DmiSysVendor,
}

/// Detects VMware on this machine.
pub fn detect() -> Option<Evidence> {
    let dmi = std::fs::read_to_string(Path::new(DMI_SYS_VENDOR)).ok();
    decide(hypervisor_signature(), dmi.as_deref())
}

/// The decision, from the CPUID signature (if a hypervisor is present) and
/// the DMI vendor (if readable).
pub fn decide(cpuid_signature: Option<[u8; 12]>, dmi_vendor: Option<&str>) -> Option<Evidence> {
    if cpuid_signature.as_ref() == Some(VMWARE_CPUID_SIGNATURE) {
        Some(Evidence::Cpuid)
    } else if dmi_vendor.map(str::trim) == Some(VMWARE_DMI_VENDOR) {
        Some(Evidence::DmiSysVendor)
    } else {
        None
    }
}

/// The 12-byte hypervisor signature, `None` without a hypervisor.
#[cfg(target_arch = "x86_64")]
pub fn hypervisor_signature() -> Option<[u8; 12]> {
    use std::arch::x86_64::__cpuid;
    // `unused_unsafe`: `__cpuid` is a safe function on newer toolchains and
    // an unsafe one on the workspace's minimum (1.85).
    #[allow(unused_unsafe)]
    // SAFETY: CPUID exists on every x86_64 CPU and only writes the four
    // result registers.
    let features = unsafe { __cpuid(1) };
    if features.ecx & HYPERVISOR_PRESENT_BIT == 0 {
        return None;
    }
    #[allow(unused_unsafe)]
    // SAFETY: as above; leaf 0x40000000 is defined when the hypervisor bit
    // is set.
    let leaf = unsafe { __cpuid(HYPERVISOR_LEAF) };
    let mut sig = [0u8; 12];
    sig[0..4].copy_from_slice(&leaf.ebx.to_le_bytes());
    sig[4..8].copy_from_slice(&leaf.ecx.to_le_bytes());
    sig[8..12].copy_from_slice(&leaf.edx.to_le_bytes());
    Some(sig)
}

/// No CPUID off x86_64.
#[cfg(not(target_arch = "x86_64"))]
pub fn hypervisor_signature() -> Option<[u8; 12]> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpuid_signature_is_enough() {
        assert_eq!(decide(Some(*b"VMwareVMware"), None), Some(Evidence::Cpuid));
    }

    #[test]
    fn dmi_vendor_is_enough_with_trailing_newline() {
        assert_eq!(
            decide(None, Some("VMware, Inc.\n")),
            Some(Evidence::DmiSysVendor)
        );
        assert_eq!(
            decide(Some(*b"KVMKVMKVM\0\0\0"), Some("VMware, Inc.")),
            Some(Evidence::DmiSysVendor)
        );
    }

    #[test]
    fn other_hypervisors_are_not_vmware() {
        assert_eq!(decide(Some(*b"KVMKVMKVM\0\0\0"), Some("QEMU\n")), None);
        assert_eq!(decide(Some(*b"Microsoft Hv"), None), None);
        assert_eq!(decide(None, None), None);
        assert_eq!(decide(None, Some("VMware")), None);
    }
}
