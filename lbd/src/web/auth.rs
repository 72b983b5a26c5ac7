//! Password checks for the stats page and the console (Basic auth, the
//! console's login form) and CSRF tokens for the stats page's forms.
//!
//! Passwords are argon2id hashes in the config. Verifying one costs tens of
//! milliseconds by design, so it goes through the [`LoginGate`] (off the
//! runtime's threads, one at a time, slowed per source after failures),
//! and a self-refreshing page asks every few seconds, so a successful
//! check is remembered by a SHA-256 of the Authorization header together
//! with the stored hash (a changed password hash in a reload invalidates
//! it).
//!
//! CSRF: admin forms carry HMAC-SHA256(process secret, user name); a POST
//! without the right token is refused, so another site cannot make an
//! admin's browser act.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use base64::Engine;
use ring::{digest, hmac, rand};

use super::login_gate::LoginGate;
use crate::config::{Group, StatsUser};

/// `[stats.users]`: the users of the stats page and the console.
pub type Users = std::collections::BTreeMap<String, StatsUser>;

/// Cached successful logins kept at most.
const CACHE_LIMIT: usize = 64;

/// Who is asking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub group: Group,
}

/// Auth state shared by the stats page and the console.
pub struct Auth {
    cache: Mutex<HashMap<Vec<u8>, User>>,
    csrf_key: hmac::Key,
    gate: LoginGate,
}

/// Errors creating the CSRF key.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("no system randomness for the CSRF key")]
    Random,
}

impl Auth {
    pub fn new() -> Result<Self, AuthError> {
        let rng = rand::SystemRandom::new();
        let csrf_key =
            hmac::Key::generate(hmac::HMAC_SHA256, &rng).map_err(|_| AuthError::Random)?;
        Ok(Self {
            cache: Mutex::new(HashMap::new()),
            csrf_key,
            gate: LoginGate::default(),
        })
    }

    /// Checks an `Authorization` header value from `source` against the
    /// configured users. `None`: missing, malformed or wrong credentials.
    pub async fn check(&self, users: &Users, source: IpAddr, header: Option<&str>) -> Option<User> {
        let header = header?;
        let encoded = header
            .strip_prefix("Basic ")
            .or_else(|| header.strip_prefix("basic "))?;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (name, password) = text.split_once(':')?;
        let Some(user) = users.get(name) else {
            // Same cost as a known name: timing must not tell which exist.
            return self.login(users, source, name, password).await;
        };
        let mut ctx = digest::Context::new(&digest::SHA256);
        ctx.update(header.as_bytes());
        ctx.update(&[0]);
        ctx.update(user.password_hash.as_bytes());
        let key = ctx.finish().as_ref().to_vec();
        let cached = User {
            name: name.to_string(),
            group: user.group,
        };
        if let Ok(cache) = self.cache.lock() {
            if cache.get(&key) == Some(&cached) {
                return Some(cached);
            }
        }
        let found = self.login(users, source, name, password).await?;
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= CACHE_LIMIT {
                cache.clear();
            }
            cache.insert(key, found.clone());
        }
        Some(found)
    }

    /// Checks `name` and `password` (a login form) through the gate, never
    /// cached: off the runtime's threads, slowed per source after failures,
    /// an unknown name costing the same as a known one.
    pub async fn login(
        &self,
        users: &Users,
        source: IpAddr,
        name: &str,
        password: &str,
    ) -> Option<User> {
        let hash = users.get(name).map(|u| u.password_hash.clone());
        let group = users.get(name).map(|u| u.group);
        if !self.gate.verify(source, password.to_string(), hash).await {
            return None;
        }
        Some(User {
            name: name.to_string(),
            group: group?,
        })
    }

    /// The CSRF token for `user`'s forms.
    pub fn csrf_token(&self, user: &str) -> String {
        let tag = hmac::sign(&self.csrf_key, user.as_bytes());
        tag.as_ref().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Constant-time check of a submitted token.
    pub fn csrf_ok(&self, user: &str, token: &str) -> bool {
        let Some(bytes) = decode_hex(token) else {
            return false;
        };
        hmac::verify(&self.csrf_key, user.as_bytes(), &bytes).is_ok()
    }
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if s.len() & 1 == 1 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Stats, StatsUser};

    fn stats(hash: &str) -> Stats {
        let mut s: Stats = toml::from_str("").expect("defaults");
        s.users.insert(
            "ops".into(),
            StatsUser {
                password_hash: hash.into(),
                group: Group::Admin,
            },
        );
        s
    }

    fn basic(user: &str, pw: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pw}"))
        )
    }

    /// Each attempt from its own address, so the per-source slowdown after
    /// a failure does not stretch the test.
    fn from(n: u8) -> IpAddr {
        IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, n))
    }

    #[tokio::test]
    async fn basic_auth_accepts_only_the_right_password() {
        let hash = crate::password::hash_password("pw").expect("hash");
        let s = stats(&hash);
        let auth = Auth::new().expect("auth");
        assert_eq!(
            auth.check(&s.users, from(1), Some(&basic("ops", "pw")))
                .await
                .map(|u| u.group),
            Some(Group::Admin)
        );
        // Cached path gives the same answer.
        assert!(auth
            .check(&s.users, from(1), Some(&basic("ops", "pw")))
            .await
            .is_some());
        assert!(auth
            .check(&s.users, from(2), Some(&basic("ops", "wrong")))
            .await
            .is_none());
        assert!(auth
            .check(&s.users, from(3), Some(&basic("nobody", "pw")))
            .await
            .is_none());
        assert!(auth
            .check(&s.users, from(4), Some("Basic !!!"))
            .await
            .is_none());
        assert!(auth
            .check(&s.users, from(4), Some("Bearer x"))
            .await
            .is_none());
        assert!(auth.check(&s.users, from(4), None).await.is_none());
        // A new hash for the same user invalidates the cached login.
        let other = stats(&crate::password::hash_password("new").expect("hash"));
        assert!(auth
            .check(&other.users, from(5), Some(&basic("ops", "pw")))
            .await
            .is_none());
    }

    #[test]
    fn csrf_tokens_are_per_user_and_checked() {
        let auth = Auth::new().expect("auth");
        let t = auth.csrf_token("ops");
        assert!(auth.csrf_ok("ops", &t));
        assert!(!auth.csrf_ok("viewer", &t));
        assert!(!auth.csrf_ok("ops", "00"));
        assert!(!auth.csrf_ok("ops", "zz"));
        assert!(!auth.csrf_ok("ops", ""));
        let other = Auth::new().expect("auth");
        assert!(
            !other.csrf_ok("ops", &t),
            "tokens do not survive a restart's new key"
        );
    }
}
