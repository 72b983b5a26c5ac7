//! Server selection as pure code: a snapshot of the servers in, an index out.
//!
//! The caller builds one [`Candidate`] per server (in config order, which is
//! name order) from live counters and calls [`Balancer::pick`]. Only servers
//! that are up, in admin state ready, with weight > 0 and a free slot under
//! their `maxconn` are eligible. Normal servers are used while any is
//! eligible; otherwise the backup servers, balanced by the same algorithm
//! (HAProxy's `option allbackups`: sharing the load is what admins want
//! from two backups).

mod hash;
mod wrr;

use std::net::IpAddr;

use crate::config::Balance;

pub use hash::{hash_ip, Ring};
pub use wrr::{SmoothWrr, StaticRr};

/// One server as the balancer sees it at the moment of a pick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    /// Current weight (0 takes no new connections).
    pub weight: u32,
    /// Up, admin-ready, and under its maxconn.
    pub eligible: bool,
    pub backup: bool,
    /// Connections open now (for leastconn).
    pub active: u32,
}

/// The algorithm and its state for one backend.
#[derive(Debug, Clone)]
pub struct Balancer {
    algorithm: Balance,
    smooth: SmoothWrr,
    static_rr: StaticRr,
    ring: Ring,
    /// Rotates the start of leastconn ties so equal servers share the load.
    next_tie: usize,
}

impl Balancer {
    /// `names` and `weights` are the configured servers in order; the ring
    /// for `source` and the static-rr sequence are built from them.
    pub fn new(algorithm: Balance, names: &[&str], weights: &[u32]) -> Self {
        Self {
            algorithm,
            smooth: SmoothWrr::new(names.len()),
            static_rr: StaticRr::new(weights),
            ring: Ring::new(names, weights),
            next_tie: 0,
        }
    }

    /// Rebuilds weight-dependent state after a runtime weight change
    /// (`source` remaps as little as the new weights allow; static-rr keeps
    /// its load-time sequence, as in HAProxy).
    pub fn reweight(&mut self, names: &[&str], weights: &[u32]) {
        self.ring = Ring::new(names, weights);
    }

    /// Picks a server index, or `None` when no server is eligible.
    /// `client` feeds `source`; `random` (any u64) feeds `random`.
    pub fn pick(
        &mut self,
        servers: &[Candidate],
        client: Option<IpAddr>,
        random: u64,
    ) -> Option<usize> {
        let any_normal = servers.iter().any(|s| usable(s) && !s.backup);
        let in_pool = |s: &Candidate| usable(s) && s.backup != any_normal;
        if !servers.iter().any(in_pool) {
            return None;
        }
        match self.algorithm {
            Balance::Roundrobin => self.smooth.pick(servers, in_pool),
            Balance::StaticRr => self.static_rr.pick(servers, in_pool),
            Balance::Leastconn => self.leastconn(servers, in_pool),
            Balance::First => servers.iter().position(in_pool),
            Balance::Source => {
                let key = client.map_or(0, hash_ip);
                self.ring
                    .lookup(key, |i| servers.get(i).is_some_and(in_pool))
            }
            Balance::Random => weighted_random(servers, in_pool, random),
        }
    }

    fn leastconn(
        &mut self,
        servers: &[Candidate],
        in_pool: impl Fn(&Candidate) -> bool,
    ) -> Option<usize> {
        let n = servers.len();
        let mut best: Option<usize> = None;
        for k in 0..n {
            let i = (self.next_tie + k) % n;
            let s = &servers[i];
            if !in_pool(s) {
                continue;
            }
            // Compare active/weight without division: a.active * b.weight < b.active * a.weight.
            let better = match best {
                None => true,
                Some(b) => {
                    let b = &servers[b];
                    u64::from(s.active) * u64::from(b.weight)
                        < u64::from(b.active) * u64::from(s.weight)
                }
            };
            if better {
                best = Some(i);
            }
        }
        if let Some(b) = best {
            self.next_tie = (b + 1) % n;
        }
        best
    }
}

fn usable(s: &Candidate) -> bool {
    s.eligible && s.weight > 0
}

fn weighted_random(
    servers: &[Candidate],
    in_pool: impl Fn(&Candidate) -> bool,
    random: u64,
) -> Option<usize> {
    let total: u64 = servers
        .iter()
        .filter(|s| in_pool(s))
        .map(|s| u64::from(s.weight))
        .sum();
    if total == 0 {
        return None;
    }
    let mut point = random % total;
    for (i, s) in servers.iter().enumerate() {
        if !in_pool(s) {
            continue;
        }
        let w = u64::from(s.weight);
        if point < w {
            return Some(i);
        }
        point -= w;
    }
    None
}

/// splitmix64: a cheap, well-mixed step for the `random` algorithm's numbers.
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests;
