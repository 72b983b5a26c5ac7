//! The VMware backdoor: one `in eax, dx` on port 0x5658 with the magic in
//! EAX, every general register carrying data both ways.
//!
//! ```text
//!        in                              out
//! EAX    0x564D5868 (magic)              (command specific)
//! EBX    argument (size, 4 bytes, flags) value (size, 4 bytes)
//! ECX    subtype << 16 | command         status << 16 | ...
//! EDX    channel << 16 | 0x5658 (port)   channel / message type << 16
//! ESI    cookie high                     cookie high (OPEN)
//! EDI    cookie low                      cookie low (OPEN)
//! ```
//!
//! [`Backdoor`] is the seam: [`VmwareBackdoor`] executes the instruction,
//! the tests use an in-process double of the hypervisor.

use super::detect::{detect, Evidence};

/// EAX for every backdoor call.
pub const BDOOR_MAGIC: u32 = 0x564D_5868;
/// The low-bandwidth backdoor I/O port (DX).
pub const BDOOR_PORT: u16 = 0x5658;
/// Command MESSAGE (ECX low 16 bits): the guest/host message channels.
pub const BDOOR_CMD_MESSAGE: u16 = 0x1E;

/// The registers of one backdoor call, in and out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Registers {
    /// EAX.
    pub eax: u32,
    /// EBX.
    pub ebx: u32,
    /// ECX.
    pub ecx: u32,
    /// EDX.
    pub edx: u32,
    /// ESI.
    pub esi: u32,
    /// EDI.
    pub edi: u32,
}

/// The upper 16 bits of a register (status, channel id, message type).
pub fn high16(reg: u32) -> u16 {
    let [a, b, _, _] = reg.to_be_bytes();
    u16::from_be_bytes([a, b])
}

/// A register made of two 16-bit halves.
pub fn halves(high: u16, low: u16) -> u32 {
    (u32::from(high) << 16) | u32::from(low)
}

/// One backdoor call: registers in, registers out.
pub trait Backdoor {
    /// Performs one call.
    fn call(&mut self, regs: Registers) -> Registers;
}

/// The real backdoor. It exists only once VMware has been detected: the
/// instruction faults (SIGSEGV) anywhere else.
#[derive(Debug)]
pub struct VmwareBackdoor {
    evidence: Evidence,
}

impl VmwareBackdoor {
    /// The backdoor, if this machine is VMware (CPUID or DMI).
    pub fn detect() -> Option<Self> {
        detect().map(|evidence| Self { evidence })
    }

    /// What showed this is VMware.
    pub fn evidence(&self) -> Evidence {
        self.evidence
    }
}

impl Backdoor for VmwareBackdoor {
    #[cfg(target_arch = "x86_64")]
    fn call(&mut self, regs: Registers) -> Registers {
        let Registers {
            mut eax,
            mut ebx,
            mut ecx,
            mut edx,
            mut esi,
            mut edi,
        } = regs;
        // SAFETY: `VmwareBackdoor` is only built after `detect()` found
        // VMware, where the hypervisor traps `in` on port 0x5658 from any
        // privilege level instead of raising #GP. The instruction touches no
        // memory. rbx and rbp cannot be asm operands (LLVM reserves them), so
        // they are saved in scratch registers, rbx is loaded with the EBX
        // argument and read back after the call, and both are restored
        // before the block ends; `out(reg)` operands never share a register
        // with inputs, so the saves cannot clobber an argument.
        unsafe {
            std::arch::asm!(
                "mov {saved_bx:r}, rbx",
                "mov {saved_bp:r}, rbp",
                "mov ebx, {bx:e}",
                "in eax, dx",
                "mov {bx:e}, ebx",
                "mov rbp, {saved_bp:r}",
                "mov rbx, {saved_bx:r}",
                saved_bx = out(reg) _,
                saved_bp = out(reg) _,
                bx = inout(reg) ebx,
                inout("eax") eax,
                inout("ecx") ecx,
                inout("edx") edx,
                inout("esi") esi,
                inout("edi") edi,
                options(nostack),
            );
        }
        Registers {
            eax,
            ebx,
            ecx,
            edx,
            esi,
            edi,
        }
    }

    #[cfg(not(target_arch = "x86_64"))]
    fn call(&mut self, regs: Registers) -> Registers {
        // No backdoor off x86_64: every call fails (status 0).
        Registers { ecx: 0, ..regs }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halves_round_trip() {
        let r = halves(0x0013, BDOOR_PORT);
        assert_eq!(r, 0x0013_5658);
        assert_eq!(high16(r), 0x0013);
        assert_eq!(high16(0xFFFF_0000), 0xFFFF);
    }
}
