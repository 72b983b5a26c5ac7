//! lbd-to-lbd advert authentication (`auth_type = "hmac"`): pure, bytes in
//! and out, clock passed in, never panics on input.
//!
//! ```text
//!  IP header (the kernel's: protocol 112, TTL 255)
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |   the VRRP v3 message, unchanged (checksum as RFC 5798)       |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |   counter (64 bits, big endian): ns since the epoch at start, |
//! |   then max(now, previous + 1) per advert                      |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |   tag: HMAC-SHA256 truncated to 128 bits (16 bytes) over      |
//! |   LABEL | address length | IP src | IP dst | message | counter |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! - The label separates this use of `auth_key` from any other; the IP
//!   addresses bind the advert to its sender and its receiver (an advert
//!   to one peer cannot be replayed to another, nor from another source).
//! - The trailer makes the datagram 24 bytes longer than its address count
//!   says: a VRRP receiver without hmac (lbd or Keepalived) drops it as a
//!   length mismatch, and with hmac a plain advert fails the tag check.
//! - Anti-replay ([`ReplayGuard`]): per sender and VRID, the highest
//!   counter accepted; anything not above it is dropped, so adverts of a
//!   dead master replayed on the segment cannot keep the backup passive.
//! - First contact: a receiver that has just started knows no highest
//!   counter yet. An advert whose counter is older than
//!   [`FIRST_CONTACT_MAX_AGE`] by the receiver's clock is then dropped, so
//!   a replay of adverts captured long ago cannot hold a restarted backup
//!   either (a replay attacker can only play back the last
//!   [`FIRST_CONTACT_MAX_AGE`] of captured adverts, once). This, and a
//!   restarted sender, need the nodes' clocks in sync (NTP).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Counter and tag after the VRRP message.
pub const TRAILER_LEN: usize = COUNTER_LEN + TAG_LEN;
const COUNTER_LEN: usize = 8;
/// HMAC-SHA256-128.
const TAG_LEN: usize = 16;
/// Domain separation: what the key signs here, and the format version.
const LABEL: &[u8] = b"lbd VRRP advert HMAC-SHA256-128 v1";
/// The shortest `auth_key` `lbd check` accepts.
pub use lbd_config::vrrp::MIN_AUTH_KEY_LEN as MIN_KEY_LEN;
/// Oldest counter accepted from a sender not heard since start.
pub const FIRST_CONTACT_MAX_AGE: Duration = Duration::from_secs(600);

type HmacSha256 = Hmac<Sha256>;

/// The shared secret (`auth_key`); never printed.
#[derive(Clone)]
pub struct HmacKey(Vec<u8>);

impl HmacKey {
    pub fn new(secret: &str) -> Self {
        Self(secret.as_bytes().to_vec())
    }

    fn mac(&self, src: IpAddr, dst: IpAddr, msg: &[u8], counter: u64) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.0).expect("HMAC takes keys of any length");
        mac.update(LABEL);
        match (src, dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                mac.update(&[4]);
                mac.update(&s.octets());
                mac.update(&d.octets());
            }
            (s, d) => {
                mac.update(&[16]);
                mac.update(&to_v6(s));
                mac.update(&to_v6(d));
            }
        }
        mac.update(msg);
        mac.update(&counter.to_be_bytes());
        mac
    }
}

fn to_v6(a: IpAddr) -> [u8; 16] {
    match a {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

impl std::fmt::Debug for HmacKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HmacKey(..)")
    }
}

/// Why an advert fails hmac authentication.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HmacError {
    #[error("advert of {len} bytes from {src} is too short to carry the hmac trailer")]
    TooShort { src: IpAddr, len: usize },
    #[error(
        "advert from {src} fails the hmac check: a plain advert (that node has no \
         auth_type = \"hmac\"), another auth_key, or altered on the way"
    )]
    BadTag { src: IpAddr },
    #[error(
        "advert from {src} (VRID {vrid}) carries counter {counter}, not above {highest} \
         already accepted ({behind_ms} ms behind): a replayed advert, or {src} restarted \
         with its clock set back; keep both nodes' clocks in sync (NTP): its adverts are \
         dropped until its clock passes the old value"
    )]
    Replayed {
        src: IpAddr,
        vrid: u8,
        counter: u64,
        highest: u64,
        behind_ms: u64,
    },
    #[error(
        "first advert from {src} (VRID {vrid}) since start is {age_s} s old by our clock \
         (more than {max_s} s): a replay of old adverts, or {src}'s clock is behind ours; \
         keep both nodes' clocks in sync (NTP)"
    )]
    TooOld {
        src: IpAddr,
        vrid: u8,
        age_s: u64,
        max_s: u64,
    },
}

/// Appends the trailer to an encoded VRRP message.
pub fn seal(key: &HmacKey, src: IpAddr, dst: IpAddr, msg: &[u8], counter: u64) -> Vec<u8> {
    let tag = key.mac(src, dst, msg, counter).finalize().into_bytes();
    let mut out = Vec::with_capacity(msg.len() + TRAILER_LEN);
    out.extend_from_slice(msg);
    out.extend_from_slice(&counter.to_be_bytes());
    out.extend_from_slice(&tag[..TAG_LEN]);
    out
}

/// A payload whose tag verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified<'a> {
    /// The VRRP message, trailer removed (decode it as usual).
    pub msg: &'a [u8],
    pub counter: u64,
}

/// Checks the tag of an IP payload (constant time). The counter is the
/// caller's check ([`ReplayGuard::check`]) once the advert is known to be
/// for the instance.
pub fn verify<'a>(
    key: &HmacKey,
    src: IpAddr,
    dst: IpAddr,
    payload: &'a [u8],
) -> Result<Verified<'a>, HmacError> {
    let split = payload
        .len()
        .checked_sub(TRAILER_LEN)
        .ok_or(HmacError::TooShort {
            src,
            len: payload.len(),
        })?;
    let (msg, trailer) = payload.split_at(split);
    let (counter_bytes, tag) = trailer.split_at(COUNTER_LEN);
    let mut c = [0u8; COUNTER_LEN];
    c.copy_from_slice(counter_bytes);
    let counter = u64::from_be_bytes(c);
    key.mac(src, dst, msg, counter)
        .verify_truncated_left(tag)
        .map_err(|_| HmacError::BadTag { src })?;
    Ok(Verified { msg, counter })
}

/// The sender's counter: strictly increasing, near the wall clock.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sequencer {
    last: u64,
}

impl Sequencer {
    /// The counter for the advert sent at `now_ns` (CLOCK_REALTIME).
    pub fn next(&mut self, now_ns: u64) -> u64 {
        self.last = now_ns.max(self.last.saturating_add(1));
        self.last
    }
}

/// The receiver's highest counter per sender and VRID.
#[derive(Debug, Clone, Default)]
pub struct ReplayGuard {
    highest: BTreeMap<(IpAddr, u8), u64>,
}

impl ReplayGuard {
    /// Accepts `counter` from `src` for `vrid` at `now_ns` (our clock) and
    /// remembers it, or says why not.
    pub fn check(
        &mut self,
        src: IpAddr,
        vrid: u8,
        counter: u64,
        now_ns: u64,
    ) -> Result<(), HmacError> {
        match self.highest.get(&(src, vrid)) {
            Some(&highest) if counter <= highest => Err(HmacError::Replayed {
                src,
                vrid,
                counter,
                highest,
                behind_ms: (highest - counter) / 1_000_000,
            }),
            None if now_ns.saturating_sub(counter) > nanos(FIRST_CONTACT_MAX_AGE) => {
                Err(HmacError::TooOld {
                    src,
                    vrid,
                    age_s: (now_ns - counter) / 1_000_000_000,
                    max_s: FIRST_CONTACT_MAX_AGE.as_secs(),
                })
            }
            _ => {
                self.highest.insert((src, vrid), counter);
                Ok(())
            }
        }
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
#[path = "hmac_auth_tests.rs"]
mod tests;
