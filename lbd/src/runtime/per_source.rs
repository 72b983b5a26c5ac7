//! `maxconn_per_source`: open connections per client IP address of one
//! frontend (HAProxy admins write this as a stick table with
//! `src_conn_cur`).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Open connections per source address, and the limit.
#[derive(Debug)]
pub struct SourceLimit {
    limit: u32,
    open: Mutex<HashMap<IpAddr, u32>>,
}

/// One connection counted against its source; uncounted on drop.
#[derive(Debug)]
pub struct SourceSlot {
    owner: Arc<SourceLimit>,
    ip: IpAddr,
}

impl SourceLimit {
    pub fn new(limit: u32) -> Arc<Self> {
        Arc::new(Self {
            limit,
            open: Mutex::new(HashMap::new()),
        })
    }

    /// Counts a new connection from `ip`; `None` when `ip` is at the limit.
    pub fn enter(self: &Arc<Self>, ip: IpAddr) -> Option<SourceSlot> {
        let ip = ip.to_canonical();
        let mut open = self.open.lock().ok()?;
        let count = open.entry(ip).or_insert(0);
        if *count >= self.limit {
            return None;
        }
        *count += 1;
        Some(SourceSlot {
            owner: self.clone(),
            ip,
        })
    }

    /// Connections open from `ip` now.
    pub fn open(&self, ip: IpAddr) -> u32 {
        self.open
            .lock()
            .map_or(0, |o| o.get(&ip.to_canonical()).copied().unwrap_or(0))
    }
}

impl Drop for SourceSlot {
    fn drop(&mut self) {
        if let Ok(mut open) = self.owner.open.lock() {
            if let Some(count) = open.get_mut(&self.ip) {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    // Forget idle sources so the map holds only open ones.
                    open.remove(&self.ip);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_per_address_and_freed_on_drop() {
        let limit = SourceLimit::new(2);
        let a: IpAddr = "192.0.2.1".parse().expect("literal");
        let b: IpAddr = "192.0.2.2".parse().expect("literal");
        let first = limit.enter(a).expect("1st");
        let _second = limit.enter(a).expect("2nd");
        assert!(limit.enter(a).is_none(), "3rd from a is over the limit");
        let _other = limit.enter(b).expect("b has its own count");
        drop(first);
        assert_eq!(limit.open(a), 1);
        assert!(limit.enter(a).is_some(), "a slot came back");
        // IPv4-mapped IPv6 is the same client.
        let mapped: IpAddr = "::ffff:192.0.2.2".parse().expect("literal");
        assert_eq!(limit.open(mapped), 1);
    }
}
