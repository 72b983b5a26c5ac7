//! Who a supervised process runs as: lbd parses untrusted HTTP, TLS, PROXY
//! and VRRP, so it runs under its own uid with only the capabilities its
//! job needs, set by init in the child between fork and exec.
//!
//! ```text
//! init (root, all caps)
//!   fork -> child: KEEPCAPS -> drop the bounding set to CAPS
//!          -> setgroups([]) -> setresgid(101) -> setresuid(101)
//!          -> capset(eff = prm = inh = CAPS) -> raise CAPS as ambient
//!          -> NO_NEW_PRIVS -> exec lbd: CapEff = CapPrm = CapAmb = CAPS
//! ```
//! Ambient capabilities are what survive exec for a non-root uid without
//! file capabilities (capabilities(7), "Transformation of capabilities
//! during execve()"); the bounding set and NO_NEW_PRIVS make sure nothing
//! lbd executes (a VRRP notify hook) can ever gain more.
//!
//! lbd needs: CAP_NET_BIND_SERVICE (listeners on :80 and :443),
//! CAP_NET_RAW (VRRP's raw IP socket, gratuitous ARP, ICMP checks) and
//! CAP_NET_ADMIN (adding and removing the virtual IPs over netlink,
//! SO_MARK and buffer sizes beyond the sysctl limits). Files it writes live
//! in directories init hands to its uid ([`crate::lbd_files`]).

use std::io;

/// lbd's user and group: fixed numbers, as the image has no user database
/// and only init (as root) needs to know them.
pub const LBD_UID: u32 = 101;
pub const LBD_GID: u32 = 101;

/// Capability numbers (linux/capability.h).
pub const CAP_NET_BIND_SERVICE: u32 = 10;
pub const CAP_NET_ADMIN: u32 = 12;
pub const CAP_NET_RAW: u32 = 13;

/// The highest capability number a 64-bit mask can name; the kernel's own
/// last one (`/proc/sys/kernel/cap_last_cap`) is lower, and dropping past
/// it answers EINVAL, which ends the loop.
const CAP_MAX: u32 = 63;

/// prctl(PR_CAP_AMBIENT) operations (linux/prctl.h), as its argument type.
const AMBIENT_RAISE: libc::c_ulong = 2;
const AMBIENT_CLEAR_ALL: libc::c_ulong = 4;

/// `_LINUX_CAPABILITY_VERSION_3`: 64-bit sets as two 32-bit words.
const CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// A set of capabilities as the kernel's 64-bit mask (bit n: capability n).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CapSet(pub u64);

impl CapSet {
    /// The set of `caps`; numbers above [`CAP_MAX`] are ignored (none
    /// exists).
    pub fn of(caps: &[u32]) -> Self {
        Self(
            caps.iter()
                .filter(|c| **c <= CAP_MAX)
                .fold(0, |mask, c| mask | (1u64 << c)),
        )
    }

    pub fn contains(self, cap: u32) -> bool {
        cap <= CAP_MAX && self.0 & (1u64 << cap) != 0
    }

    /// The capabilities in the set, lowest first.
    pub fn iter(self) -> impl Iterator<Item = u32> {
        (0..=CAP_MAX).filter(move |c| self.contains(*c))
    }

    /// The set as capset(2) version 3 takes it: low word first, the same
    /// mask for effective, permitted and inheritable (inheritable is what
    /// ambient capabilities must also be in).
    fn capset_data(self) -> [CapUserData; 2] {
        let word = |w: u64| CapUserData {
            effective: u32::try_from(w & 0xffff_ffff).expect("masked to 32 bits"),
            permitted: u32::try_from(w & 0xffff_ffff).expect("masked to 32 bits"),
            inheritable: u32::try_from(w & 0xffff_ffff).expect("masked to 32 bits"),
        };
        [word(self.0), word(self.0 >> 32)]
    }
}

/// The uid, gid and capabilities a service runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Credentials {
    pub uid: u32,
    pub gid: u32,
    pub caps: CapSet,
}

impl Credentials {
    /// lbd's: its own uid and group, the three network capabilities.
    pub fn lbd() -> Self {
        Self {
            uid: LBD_UID,
            gid: LBD_GID,
            caps: CapSet::of(&[CAP_NET_ADMIN, CAP_NET_RAW, CAP_NET_BIND_SERVICE]),
        }
    }
}

/// Who process `pid` runs as, from `/proc/PID/status`, for the console:
/// `uid 101, capabilities 0000000000003400`. Read after spawn returned,
/// which is after exec, so the privileges are the final ones.
pub fn running_as(pid: i32) -> Option<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    describe_status(&status)
}

/// The effective uid and capabilities in a `/proc/PID/status` text.
pub fn describe_status(status: &str) -> Option<String> {
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
    };
    // Uid: real, effective, saved, filesystem.
    let uid = field("Uid:")?.split_whitespace().nth(1)?;
    let caps = field("CapEff:")?;
    Some(format!("uid {uid}, capabilities {caps}"))
}

/// `struct __user_cap_header_struct`.
#[repr(C)]
struct CapUserHeader {
    version: u32,
    pid: libc::c_int,
}

/// `struct __user_cap_data_struct`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct CapUserData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Becomes `creds` for good. Runs in the forked child before exec: only
/// system calls, no allocation, no lock (init has threads, and a lock
/// another thread held at fork would never be released in the child).
/// Must start as root with the capabilities to give up.
pub fn drop_to(creds: Credentials) -> io::Result<()> {
    // Keep the permitted set across setresuid below; exec clears the flag.
    prctl(libc::PR_SET_KEEPCAPS, 1)?;
    // The bounding set first: dropping from it needs CAP_SETPCAP, which
    // goes away with the uid.
    for cap in 0..=CAP_MAX {
        if creds.caps.contains(cap) {
            continue;
        }
        match prctl(libc::PR_CAPBSET_DROP, libc::c_ulong::from(cap)) {
            Ok(()) => {}
            // Past the kernel's last capability.
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => break,
            Err(e) => return Err(e),
        }
    }
    // Groups, then gid, then uid: each later step gives up the privilege
    // the earlier ones need.
    nix::unistd::setgroups(&[])?;
    let gid = nix::unistd::Gid::from_raw(creds.gid);
    nix::unistd::setresgid(gid, gid, gid)?;
    let uid = nix::unistd::Uid::from_raw(creds.uid);
    nix::unistd::setresuid(uid, uid, uid)?;
    capset(creds.caps)?;
    prctl3(libc::PR_CAP_AMBIENT, AMBIENT_CLEAR_ALL, 0)?;
    for cap in creds.caps.iter() {
        prctl3(
            libc::PR_CAP_AMBIENT,
            AMBIENT_RAISE,
            libc::c_ulong::from(cap),
        )?;
    }
    prctl(libc::PR_SET_NO_NEW_PRIVS, 1)
}

fn capset(caps: CapSet) -> io::Result<()> {
    let mut header = CapUserHeader {
        version: CAPABILITY_VERSION_3,
        pid: 0,
    };
    let data = caps.capset_data();
    // SAFETY: `header` and `data` are live, correctly laid out (repr(C))
    // structs on this stack frame for the whole call; version 3 makes the
    // kernel read exactly two data structs, which `data` holds; pid 0 is
    // this process.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_capset,
            std::ptr::from_mut(&mut header),
            data.as_ptr(),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn prctl(option: libc::c_int, arg: libc::c_ulong) -> io::Result<()> {
    prctl3(option, arg, 0)
}

fn prctl3(option: libc::c_int, arg2: libc::c_ulong, arg3: libc::c_ulong) -> io::Result<()> {
    // SAFETY: the options used here (KEEPCAPS, CAPBSET_DROP, CAP_AMBIENT,
    // NO_NEW_PRIVS) take only integer arguments, no pointers; unused
    // arguments must be zero.
    let rc = unsafe { libc::prctl(option, arg2, arg3, 0 as libc::c_ulong, 0 as libc::c_ulong) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Input: lbd's credentials. Output: uid/gid 101 and exactly bits 10,
    /// 12 and 13 (0x3400, as /proc/PID/status prints CapEff), split into
    /// capset's low and high words.
    #[test]
    fn lbd_gets_exactly_three_network_capabilities() {
        let creds = Credentials::lbd();
        assert_eq!((creds.uid, creds.gid), (101, 101));
        assert_eq!(creds.caps, CapSet(0x3400));
        assert_eq!(creds.caps.iter().collect::<Vec<_>>(), [10, 12, 13]);
        let data = creds.caps.capset_data();
        let low = CapUserData {
            effective: 0x3400,
            permitted: 0x3400,
            inheritable: 0x3400,
        };
        let high = CapUserData {
            effective: 0,
            permitted: 0,
            inheritable: 0,
        };
        assert_eq!(data, [low, high]);
        assert!(!creds.caps.contains(21), "no CAP_SYS_ADMIN");
        assert!(!creds.caps.contains(64), "beyond the mask");
    }

    #[test]
    fn status_names_the_effective_uid_and_capabilities() {
        let status = "Name:\tlbd\nUid:\t101\t101\t101\t101\nGid:\t101\t101\t101\t101\n\
                      CapInh:\t0000000000003400\nCapEff:\t0000000000003400\n";
        assert_eq!(
            describe_status(status).as_deref(),
            Some("uid 101, capabilities 0000000000003400")
        );
        assert_eq!(describe_status("Name:\tx\n"), None);
        let me = running_as(i32::try_from(std::process::id()).expect("pid")).expect("own status");
        assert!(me.starts_with("uid "), "{me}");
    }

    /// Input: capabilities above 31. Output: they land in the high word.
    #[test]
    fn high_capabilities_use_the_second_word() {
        let set = CapSet::of(&[0, 40, 99]);
        assert_eq!(set.0, 1 | (1 << 40));
        let data = set.capset_data();
        assert_eq!(data[0].permitted, 1);
        assert_eq!(data[1].permitted, 1 << 8);
    }
}
