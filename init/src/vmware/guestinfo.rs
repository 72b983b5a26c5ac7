//! Reading guestinfo variables (`info-get guestinfo.<key>`). The guest
//! never writes them: vSphere 8.0U3 refuses some guest `info-set` calls,
//! and the admin's values must stay the admin's.

use std::fmt;

use super::backdoor::Backdoor;
use super::rpci::{quote, rpci_call, RpciError};

/// The host's error text for a variable that is not set.
pub const NO_VALUE: &[u8] = b"No value found";
/// Every guestinfo variable starts with this.
pub const PREFIX: &str = "guestinfo.";

/// Reading a guestinfo variable failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GuestinfoError {
    /// The key cannot be put into an `info-get` command.
    BadKey {
        /// The key as given.
        key: String,
    },
    /// The RPCI call failed.
    Rpci {
        /// The variable.
        key: String,
        /// What failed.
        source: RpciError,
    },
    /// The host answered `0 <error>` with something else than "no value".
    Refused {
        /// The variable.
        key: String,
        /// The host's error text.
        message: String,
    },
    /// The value is not UTF-8.
    NotUtf8 {
        /// The variable.
        key: String,
    },
}

impl fmt::Display for GuestinfoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadKey { key } => write!(
                f,
                "guestinfo key {key:?} is not valid: give the name after `guestinfo.`, \
                 without spaces or control characters"
            ),
            Self::Rpci { key, source } => write!(f, "reading guestinfo.{key}: {source}"),
            Self::Refused { key, message } => {
                write!(f, "reading guestinfo.{key}: the host said {message:?}")
            }
            Self::NotUtf8 { key } => {
                write!(f, "reading guestinfo.{key}: the value is not UTF-8 text")
            }
        }
    }
}

impl std::error::Error for GuestinfoError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Rpci { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Reads `guestinfo.<key>` (give `key` without the prefix, e.g. `ovfEnv`
/// or `appliance.hostname`); `None` if the variable is not set.
pub fn guestinfo_get(bd: &mut impl Backdoor, key: &str) -> Result<Option<String>, GuestinfoError> {
    let key = key.strip_prefix(PREFIX).unwrap_or(key);
    if key.is_empty() || key.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(GuestinfoError::BadKey {
            key: key.to_owned(),
        });
    }
    let command = format!("info-get {PREFIX}{key}");
    let reply = rpci_call(bd, command.as_bytes()).map_err(|source| GuestinfoError::Rpci {
        key: key.to_owned(),
        source,
    })?;
    if !reply.ok {
        if reply.body == NO_VALUE {
            return Ok(None);
        }
        return Err(GuestinfoError::Refused {
            key: key.to_owned(),
            message: quote(&reply.body),
        });
    }
    String::from_utf8(reply.body)
        .map(Some)
        .map_err(|_| GuestinfoError::NotUtf8 {
            key: key.to_owned(),
        })
}

#[cfg(test)]
#[path = "guestinfo_tests.rs"]
mod tests;
