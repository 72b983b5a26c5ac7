//! Who may hold one of an admin listener's connections (the stats page,
//! the console).
//!
//! The page had 64 slots taken first come, first served: 64 sockets that
//! connect and send nothing locked every admin out (each idle one for as
//! long as the client liked, a slowloris one for the header timeout, and
//! the client simply reconnects). Now:
//! - a connection is *idle* while no request of it is being answered
//!   (waiting for headers counts: that is what an idle or slowloris
//!   client does); a *busy* one is inside the handler;
//! - a new connection is always accepted: when all slots are taken, the
//!   connection idle the longest is closed to make room;
//! - one source address holds at most [`MAX_PER_SOURCE`] slots: over
//!   that, its own longest-idle connection makes room (a single host
//!   cannot push everyone else's idle keep-alive connections out);
//! - only when every slot (of the whole listener, or of that source) is
//!   busy is the newcomer refused.
//!
//! Plain data behind a mutex, `now` passed in; the accept loop owns the
//! sockets and closes what [`Slots::admit`] evicts through its [`Notify`].

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::Notify;

/// Connections to one admin listener at once.
pub const MAX_CONNECTIONS: usize = 64;
/// Connections from one source address at once.
pub const MAX_PER_SOURCE: usize = 16;

/// Why a connection gets no slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("all {0} connections are busy answering requests")]
    Full(usize),
    #[error("all {max} connections of {peer} are busy answering requests")]
    SourceFull { peer: IpAddr, max: usize },
}

#[derive(Debug)]
struct Entry {
    source: IpAddr,
    /// Requests being answered now (HTTP/1.1 answers one at a time, but
    /// counting keeps this right whatever the connection does).
    busy: u32,
    /// When it last became idle (or connected).
    idle_since: Instant,
    close: Arc<Notify>,
}

#[derive(Debug, Default)]
struct Table {
    next_id: u64,
    entries: BTreeMap<u64, Entry>,
}

impl Table {
    /// The connection idle the longest among those `filter` selects.
    fn longest_idle(&self, filter: impl Fn(&Entry) -> bool) -> Option<u64> {
        self.entries
            .iter()
            .filter(|(_, e)| e.busy == 0 && filter(e))
            .min_by_key(|(id, e)| (e.idle_since, **id))
            .map(|(id, _)| *id)
    }

    fn evict(&mut self, id: u64) {
        if let Some(e) = self.entries.remove(&id) {
            // notify_one keeps the permit if the task is not waiting yet.
            e.close.notify_one();
        }
    }
}

/// The listener's slots; shared by the accept loop and its connections.
#[derive(Debug)]
pub struct Slots {
    max: usize,
    max_per_source: usize,
    table: Mutex<Table>,
}

/// One admitted connection's slot; freed on drop.
#[derive(Debug)]
pub struct Slot {
    slots: Arc<Slots>,
    id: u64,
    /// Notified when the slot is taken away: close the connection.
    pub close: Arc<Notify>,
}

impl Slots {
    pub fn new(max: usize, max_per_source: usize) -> Arc<Self> {
        Arc::new(Self {
            max,
            max_per_source,
            table: Mutex::new(Table::default()),
        })
    }

    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        // A panic elsewhere while holding the lock leaves plain counters:
        // still usable.
        self.table
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A slot for a new connection from `source`, making room by closing
    /// an idle connection if need be.
    pub fn admit(self: &Arc<Self>, source: IpAddr, now: Instant) -> Result<Slot, Refused> {
        let mut t = self.table();
        let from_source = t.entries.values().filter(|e| e.source == source).count();
        if from_source >= self.max_per_source {
            let id = t
                .longest_idle(|e| e.source == source)
                .ok_or(Refused::SourceFull {
                    peer: source,
                    max: self.max_per_source,
                })?;
            t.evict(id);
        }
        if t.entries.len() >= self.max {
            let id = t.longest_idle(|_| true).ok_or(Refused::Full(self.max))?;
            t.evict(id);
        }
        let id = t.next_id;
        t.next_id += 1;
        let close = Arc::new(Notify::new());
        t.entries.insert(
            id,
            Entry {
                source,
                busy: 0,
                idle_since: now,
                close: close.clone(),
            },
        );
        Ok(Slot {
            slots: self.clone(),
            id,
            close,
        })
    }

    /// Open connections (for tests and logs).
    pub fn open(&self) -> usize {
        self.table().entries.len()
    }
}

impl Slot {
    /// A request of this connection is being answered: not evictable.
    pub fn busy(&self) {
        if let Some(e) = self.slots.table().entries.get_mut(&self.id) {
            e.busy += 1;
        }
    }

    /// Its answer is written; idle again from `now`.
    pub fn idle(&self, now: Instant) {
        if let Some(e) = self.slots.table().entries.get_mut(&self.id) {
            e.busy = e.busy.saturating_sub(1);
            if e.busy == 0 {
                e.idle_since = now;
            }
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.slots.table().entries.remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, last])
    }

    /// Input: a full listener of idle connections, then one more.
    /// Output: the newcomer gets a slot; the longest-idle one is told to
    /// close and its slot is gone.
    #[test]
    fn a_newcomer_evicts_the_longest_idle_connection() {
        let slots = Slots::new(3, 3);
        let t0 = Instant::now();
        let held: Vec<Slot> = (0..3)
            .map(|i| {
                slots
                    .admit(ip(i + 1), t0 + Duration::from_secs(u64::from(i)))
                    .expect("room")
            })
            .collect();
        let newcomer = slots.admit(ip(9), t0 + Duration::from_secs(10));
        assert!(newcomer.is_ok());
        assert_eq!(slots.open(), 3);
        // The first (idle since t0) was evicted: its notification is
        // pending, the others' are not.
        let evicted = notified_now(&held[0].close);
        assert!(evicted, "the longest-idle connection is closed");
        assert!(!notified_now(&held[1].close));
        assert!(!notified_now(&held[2].close));
    }

    /// Input: a full listener whose connections are all answering, then
    /// one more; then one of them goes idle.
    /// Output: refused while all are busy; admitted once one is idle.
    #[test]
    fn busy_connections_are_never_evicted() {
        let slots = Slots::new(2, 2);
        let t0 = Instant::now();
        let a = slots.admit(ip(1), t0).expect("room");
        let b = slots.admit(ip(2), t0).expect("room");
        a.busy();
        b.busy();
        assert_eq!(slots.admit(ip(3), t0).map(|_| ()), Err(Refused::Full(2)));
        b.idle(t0 + Duration::from_secs(1));
        assert!(slots.admit(ip(3), t0).is_ok());
        assert!(notified_now(&b.close));
        assert!(!notified_now(&a.close));
    }

    /// Input: one source at its cap, then another connection from it and
    /// one from elsewhere.
    /// Output: the source's own oldest idle connection makes room; the
    /// other source takes a free slot without evicting anyone.
    #[test]
    fn one_source_only_pushes_out_its_own_connections() {
        let slots = Slots::new(10, 2);
        let t0 = Instant::now();
        let other = slots.admit(ip(7), t0).expect("room");
        let first = slots
            .admit(ip(1), t0 + Duration::from_secs(1))
            .expect("room");
        let second = slots
            .admit(ip(1), t0 + Duration::from_secs(2))
            .expect("room");
        let _third = slots
            .admit(ip(1), t0 + Duration::from_secs(3))
            .expect("room");
        assert!(notified_now(&first.close), "its own oldest is closed");
        assert!(
            !notified_now(&other.close),
            "the other source keeps its slot"
        );
        second.busy();
        let _fourth = slots.admit(ip(1), t0).expect("the third was idle");
        let _fresh = slots.admit(ip(8), t0).expect("free slots left");
        assert!(!notified_now(&other.close));
    }

    /// Input: a source whose connections are all busy.
    /// Output: its next one is refused, naming the source.
    #[test]
    fn a_source_with_only_busy_connections_is_refused() {
        let slots = Slots::new(10, 1);
        let t0 = Instant::now();
        let s = slots.admit(ip(1), t0).expect("room");
        s.busy();
        let err = slots.admit(ip(1), t0).map(|_| ()).expect_err("refused");
        assert!(err.to_string().contains("192.0.2.1"), "{err}");
        drop(s);
        assert!(slots.admit(ip(1), t0).is_ok(), "freed on drop");
    }

    /// Whether `notify` holds a permit now (without waiting).
    fn notified_now(notify: &Notify) -> bool {
        let fut = notify.notified();
        tokio::pin!(fut);
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        std::future::Future::poll(fut.as_mut(), &mut cx).is_ready()
    }
}
