//! `lbd check` of `[vrrp.NAME]`'s authentication keys (`auth_type`,
//! `auth_pass`, `auth_key`); see `lbd/CONFIG.md`, "Advert authentication".

use super::validate::problem;
use super::{AuthType, Instance, MIN_AUTH_KEY_LEN};
use crate::validate::Problem;

/// `auth_type` against `version`, `auth_pass` and `auth_key`.
pub(super) fn validate(name: &str, vi: &Instance, out: &mut Vec<Problem>) {
    match vi.auth_type {
        Some(kind @ (AuthType::Pass | AuthType::Ah)) => {
            let word = if kind == AuthType::Pass { "pass" } else { "ah" };
            if vi.version != 2 {
                out.push(problem(
                    name,
                    "auth_type",
                    format!(
                        "\"{word}\" is VRRP v2 authentication (for a Keepalived peer): set \
                         version = 2, or use auth_type = \"hmac\" between two lbd nodes"
                    ),
                ));
            }
            if vi.auth_pass.is_none() {
                out.push(problem(
                    name,
                    "auth_pass",
                    format!(
                        "auth_type = \"{word}\" needs auth_pass, the password the Keepalived \
                         peer has (1 to 8 characters)"
                    ),
                ));
            }
        }
        Some(AuthType::Hmac) => {
            if vi.version != 3 {
                out.push(problem(
                    name,
                    "auth_type",
                    "\"hmac\" is lbd-to-lbd only and runs over VRRP v3: set version = 3 \
                     (v2 is for Keepalived peers, which cannot check it; use \"ah\" with them)",
                ));
            }
            if vi.auth_pass.is_some() {
                out.push(problem(
                    name,
                    "auth_pass",
                    "auth_type = \"hmac\" uses auth_key, not auth_pass: remove auth_pass",
                ));
            }
            match &vi.auth_key {
                None => out.push(problem(
                    name,
                    "auth_key",
                    format!(
                        "auth_type = \"hmac\" needs auth_key: a shared secret of at least {} \
                         characters that both lbd nodes must have (e.g. the output of \
                         `openssl rand -hex 16`)",
                        MIN_AUTH_KEY_LEN
                    ),
                )),
                Some(key) if key.len() < MIN_AUTH_KEY_LEN => out.push(problem(
                    name,
                    "auth_key",
                    format!(
                        "is {} characters: use a random shared secret of at least {} (e.g. \
                         `openssl rand -hex 16`), the same on both lbd nodes",
                        key.len(),
                        MIN_AUTH_KEY_LEN
                    ),
                )),
                Some(_) => {}
            }
        }
        None => {}
    }
    if vi.auth_key.is_some() && vi.auth_type != Some(AuthType::Hmac) {
        out.push(problem(
            name,
            "auth_key",
            "is the secret of auth_type = \"hmac\": set auth_type = \"hmac\" or remove it",
        ));
    }
}
