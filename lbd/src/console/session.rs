//! Console sessions: plain data, `now` passed in.
//!
//! A session id is 32 random bytes (ring's CSPRNG) sent once in the
//! `lbd_session` cookie; the store keeps only its SHA-256, so a lookup's
//! timing or a memory dump does not give out live ids. Each session has
//! its own CSRF token. A session unused for `idle` is gone at its next
//! lookup; the store holds at most [`Sessions::MAX`], dropping the one
//! unused the longest to make room.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use ring::digest;
use ring::rand::{SecureRandom, SystemRandom};

use crate::config::Group;

/// A logged-in user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub user: String,
    pub group: Group,
    /// The token every change of this session must carry.
    pub csrf: String,
    /// SHA-256 of the user's password hash at login: a reload that changes
    /// the password ends the session.
    pub password_tag: Vec<u8>,
    last_seen: Instant,
}

impl Session {
    pub fn new(
        user: String,
        group: Group,
        csrf: String,
        password_tag: Vec<u8>,
        now: Instant,
    ) -> Self {
        Self {
            user,
            group,
            csrf,
            password_tag,
            last_seen: now,
        }
    }
}

/// No system randomness: no session can be made.
#[derive(Debug, thiserror::Error)]
#[error("no system randomness for a session id")]
pub struct NoRandom;

/// 32 bytes from the CSPRNG, hex.
pub fn secret(rng: &SystemRandom) -> Result<String, NoRandom> {
    let mut bytes = [0u8; 32];
    rng.fill(&mut bytes).map_err(|_| NoRandom)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// SHA-256 of `text` (session ids, password hashes).
pub fn tag(text: &str) -> Vec<u8> {
    digest::digest(&digest::SHA256, text.as_bytes())
        .as_ref()
        .to_vec()
}

/// Equal without telling how much of it matched.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The live sessions of one console.
#[derive(Debug, Default)]
pub struct Sessions {
    by_tag: HashMap<Vec<u8>, Session>,
}

impl Sessions {
    /// Sessions kept at most.
    pub const MAX: usize = 1024;

    /// Stores `session` under `id`.
    pub fn insert(&mut self, id: &str, session: Session, idle: Duration) {
        let now = session.last_seen;
        if self.by_tag.len() >= Self::MAX {
            self.by_tag
                .retain(|_, s| now.saturating_duration_since(s.last_seen) < idle);
        }
        if self.by_tag.len() >= Self::MAX {
            if let Some(oldest) = self
                .by_tag
                .iter()
                .min_by_key(|(_, s)| s.last_seen)
                .map(|(t, _)| t.clone())
            {
                self.by_tag.remove(&oldest);
            }
        }
        self.by_tag.insert(tag(id), session);
    }

    /// The session of `id` if used within `idle`; the use counts.
    pub fn touch(&mut self, id: &str, now: Instant, idle: Duration) -> Option<Session> {
        let key = tag(id);
        let session = self.by_tag.get_mut(&key)?;
        if now.saturating_duration_since(session.last_seen) >= idle {
            self.by_tag.remove(&key);
            return None;
        }
        session.last_seen = now;
        Some(session.clone())
    }

    /// Logout (or a session found stale).
    pub fn remove(&mut self, id: &str) -> Option<Session> {
        self.by_tag.remove(&tag(id))
    }

    pub fn len(&self) -> usize {
        self.by_tag.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_tag.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDLE: Duration = Duration::from_secs(60);

    fn session(user: &str, now: Instant) -> Session {
        Session::new(user.into(), Group::Admin, "t".into(), tag("hash"), now)
    }

    /// Input: a session used at 0 s and 50 s, then looked up at 100 s
    /// (50 s after its last use) and at 200 s. Output: alive at 100 s
    /// (each use restarts the idle clock), gone at 200 s and removed.
    #[test]
    fn use_restarts_the_idle_clock_and_expiry_removes() {
        let t0 = Instant::now();
        let mut s = Sessions::default();
        s.insert("id1", session("ops", t0), IDLE);
        assert!(s.touch("id1", t0 + Duration::from_secs(50), IDLE).is_some());
        assert!(s
            .touch("id1", t0 + Duration::from_secs(100), IDLE)
            .is_some());
        assert!(s
            .touch("id1", t0 + Duration::from_secs(200), IDLE)
            .is_none());
        assert!(s.is_empty());
    }

    #[test]
    fn unknown_and_removed_ids_find_nothing() {
        let t0 = Instant::now();
        let mut s = Sessions::default();
        s.insert("id1", session("ops", t0), IDLE);
        assert!(s.touch("id2", t0, IDLE).is_none());
        assert_eq!(s.remove("id1").map(|x| x.user), Some("ops".into()));
        assert!(s.touch("id1", t0, IDLE).is_none());
    }

    /// Input: MAX sessions, all fresh, then one more. Output: the one
    /// unused the longest is dropped, the newest is kept, the count stays.
    #[test]
    fn a_full_store_drops_the_longest_unused() {
        let t0 = Instant::now();
        let mut s = Sessions::default();
        for i in 0..Sessions::MAX {
            let at = t0 + Duration::from_millis(u64::try_from(i).unwrap_or(0));
            s.insert(&format!("id{i}"), session("u", at), IDLE);
        }
        let later = t0 + Duration::from_secs(5);
        s.insert("new", session("n", later), IDLE);
        assert_eq!(s.len(), Sessions::MAX);
        assert!(s.touch("id0", later, IDLE).is_none());
        assert!(s.touch("id1", later, IDLE).is_some());
        assert!(s.touch("new", later, IDLE).is_some());
    }

    #[test]
    fn secrets_are_64_hex_and_differ() {
        let rng = SystemRandom::new();
        let a = secret(&rng).expect("random");
        let b = secret(&rng).expect("random");
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn same_compares_whole_strings() {
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "ab"));
        assert!(!same("", "a"));
    }
}
