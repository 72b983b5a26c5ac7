//! The licence rule: the project is `Apache-2.0 OR MIT`, so every crate
//! linked into its programs must let us ship it under both, which the
//! permissive licences below do. Copyleft (GPL, AGPL, LGPL) is refused
//! unless the expression offers an allowed alternative (`MIT OR GPL-3.0`).
//! MPL-2.0 is left out on purpose: no crate needs it today, and its
//! file-level copyleft obliges source offers an appliance image does not
//! make; adding it should be a decision, not a default.

use super::spdx::{self, ParseError};

/// Licence ids (and `id WITH exception`) a linked crate may carry.
pub const ALLOWED: &[&str] = &[
    "MIT",
    "MIT-0",
    "Apache-2.0",
    "Apache-2.0 WITH LLVM-exception",
    "BSD-2-Clause",
    "BSD-3-Clause",
    "ISC",
    "Zlib",
    "0BSD",
    "CC0-1.0",
    "Unlicense",
    "Unicode-3.0",
    "Unicode-DFS-2016",
];

/// Why a crate's licence fails the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("no `license` in its Cargo.toml (only a licence file, which this check cannot read)")]
    Missing,
    #[error("licence {expression:?} does not parse: {source}")]
    Unparsable {
        expression: String,
        source: ParseError,
    },
    #[error("licence {expression:?} is not compatible with Apache-2.0 OR MIT (allowed: {})", ALLOWED.join(", "))]
    NotAllowed { expression: String },
}

/// Judges one crate's `license` field.
pub fn check(licence: Option<&str>) -> Result<(), Refusal> {
    let expression = licence.ok_or(Refusal::Missing)?;
    let expr = spdx::parse(expression).map_err(|source| Refusal::Unparsable {
        expression: expression.to_owned(),
        source,
    })?;
    if expr.permits(&|id| ALLOWED.contains(&id)) {
        Ok(())
    } else {
        Err(Refusal::NotAllowed {
            expression: expression.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permissive_licences_and_their_combinations_pass() {
        for ok in [
            "MIT OR Apache-2.0",
            "MIT/Apache-2.0",
            "Apache-2.0 / MIT",
            "(MIT OR Apache-2.0) AND Unicode-3.0",
            "Apache-2.0 AND ISC",
            "Apache-2.0 WITH LLVM-exception OR Apache-2.0 OR MIT",
            "Unlicense OR MIT",
            "BSD-3-Clause",
        ] {
            assert_eq!(check(Some(ok)), Ok(()), "{ok}");
        }
    }

    #[test]
    fn a_gpl_crate_fails_unless_an_allowed_alternative_is_offered() {
        for bad in [
            "GPL-3.0-or-later",
            "GPL-2.0+",
            "LGPL-2.1-only",
            "AGPL-3.0",
            "MIT AND GPL-3.0",
            "GPL-2.0 WITH Classpath-exception-2.0",
            "(MIT OR GPL-3.0) AND LGPL-3.0",
            "MPL-2.0",
        ] {
            assert!(
                matches!(check(Some(bad)), Err(Refusal::NotAllowed { .. })),
                "{bad} passed"
            );
        }
        assert_eq!(check(Some("MIT OR GPL-3.0")), Ok(()));
        assert_eq!(check(Some("GPL-3.0-or-later OR Apache-2.0")), Ok(()));
    }

    #[test]
    fn missing_or_malformed_licences_fail_with_the_reason() {
        assert_eq!(check(None), Err(Refusal::Missing));
        let err = check(Some("MIT OR")).unwrap_err();
        assert!(err.to_string().contains("does not parse"), "{err}");
    }
}
