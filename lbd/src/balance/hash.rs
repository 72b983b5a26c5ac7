//! Consistent hashing for `balance = "source"`.
//!
//! Each server owns `weight x POINTS_PER_WEIGHT` points on a 64-bit ring,
//! placed by hashing its name and the point number, so the layout depends
//! only on names and weights (stable across restarts and reload order). A
//! client IP hashes to a position; the first point clockwise whose server is
//! eligible wins. A server going down moves only its own clients, and they
//! come back to it when it returns.

use std::net::IpAddr;

/// Points per unit of weight; 40 keeps the spread within a few percent.
const POINTS_PER_WEIGHT: u32 = 40;

/// The ring: sorted (position, server index).
#[derive(Debug, Clone, Default)]
pub struct Ring {
    points: Vec<(u64, usize)>,
}

impl Ring {
    pub fn new(names: &[&str], weights: &[u32]) -> Self {
        let mut points = Vec::new();
        for (i, (name, weight)) in names.iter().zip(weights).enumerate() {
            for p in 0..weight.saturating_mul(POINTS_PER_WEIGHT) {
                let mut bytes = name.as_bytes().to_vec();
                bytes.push(0);
                bytes.extend_from_slice(&p.to_le_bytes());
                points.push((hash_bytes(&bytes), i));
            }
        }
        points.sort_unstable();
        Self { points }
    }

    /// The server for `key`: first point at or after it whose server passes
    /// `eligible`, wrapping around. `None` when no point's server does.
    pub fn lookup(&self, key: u64, eligible: impl Fn(usize) -> bool) -> Option<usize> {
        if self.points.is_empty() {
            return None;
        }
        let start = self.points.partition_point(|(pos, _)| *pos < key);
        let n = self.points.len();
        (0..n)
            .map(|k| self.points[(start + k) % n].1)
            .find(|&i| eligible(i))
    }
}

/// Hash of a client address (v4-mapped v6 hashes like its v4 form).
pub fn hash_ip(ip: IpAddr) -> u64 {
    match ip {
        IpAddr::V4(v4) => hash_bytes(&v4.octets()),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => hash_bytes(&v4.octets()),
            None => hash_bytes(&v6.octets()),
        },
    }
}

/// FNV-1a then a splitmix finalizer: stable across builds and platforms
/// (std's hasher is not promised to be).
pub fn hash_bytes(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h = (h ^ (h >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    h ^ (h >> 31)
}
