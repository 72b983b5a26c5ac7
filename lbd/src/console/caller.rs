//! Who is asking: a session cookie, HTTP Basic, or nobody.
//!
//! Basic is for scripts. It needs no CSRF token because the console never
//! asks a browser for Basic credentials (no `WWW-Authenticate` challenge
//! is ever sent), so a browser has none for this origin to attach to a
//! forged cross-site request; and a change sent with Basic must be
//! `application/json`, which a cross-site form cannot send and a
//! cross-site `fetch()` can only send after a CORS preflight the console
//! never grants. API tokens that an admin creates and revokes can come
//! later on the same seam.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use hyper::header::{HeaderMap, AUTHORIZATION, COOKIE};

use super::session::{tag, Session, Sessions};
use crate::config::Group;
use crate::web::auth::{Auth, Users};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "lbd_session";

/// How the caller proved who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    /// A browser session; its changes carry `csrf`.
    Session {
        id: String,
        csrf: String,
    },
    Basic,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub user: String,
    pub group: Group,
    pub via: Via,
}

/// Basic credentials that were sent but are wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadCredentials;

/// The value of cookie `name`, from any `Cookie` header.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// Looks up the caller. Basic credentials, when sent, decide alone: wrong
/// ones are an error, not a fall-back to the cookie.
pub async fn identify(
    headers: &HeaderMap,
    auth: &Auth,
    sessions: &std::sync::Mutex<Sessions>,
    users: &Users,
    idle: Duration,
    source: IpAddr,
) -> Result<Option<Caller>, BadCredentials> {
    if let Some(header) = headers.get(AUTHORIZATION) {
        let header = header.to_str().ok();
        return match auth.check(users, source, header).await {
            Some(u) => Ok(Some(Caller {
                user: u.name,
                group: u.group,
                via: Via::Basic,
            })),
            None => Err(BadCredentials),
        };
    }
    let Some(id) = cookie(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    let Ok(mut store) = sessions.lock() else {
        return Ok(None);
    };
    let Some(session) = store.touch(&id, Instant::now(), idle) else {
        return Ok(None);
    };
    match still_valid(&session, users) {
        Some(group) => Ok(Some(Caller {
            user: session.user,
            group,
            via: Via::Session {
                id,
                csrf: session.csrf,
            },
        })),
        None => {
            // Removed by a reload, or its password changed: logged out.
            store.remove(&id);
            Ok(None)
        }
    }
}

/// The user's group now, if the user still exists with the password it
/// logged in with.
fn still_valid(session: &Session, users: &Users) -> Option<Group> {
    let user = users.get(&session.user)?;
    (tag(&user.password_hash) == session.password_tag).then_some(user.group)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.append(COOKIE, HeaderValue::from_static("a=1; lbd_sessionx=no"));
        h.append(COOKIE, HeaderValue::from_static("b=2;lbd_session=abc; c=3"));
        assert_eq!(cookie(&h, SESSION_COOKIE).as_deref(), Some("abc"));
        assert_eq!(cookie(&HeaderMap::new(), SESSION_COOKIE), None);
    }
}
