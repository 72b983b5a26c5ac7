//! The messages, as they travel (one JSON object per line).
//!
//! ```text
//! client -> {"op":"commit","base":7,"change":{"set":{"service.1.servers":"10.0.0.11,10.0.0.12"}},"summary":"..."}
//! init   <- {"status":"ok","result":{"committed":{"revision":8,...}}}
//! init   <- {"status":"refused","error":"based on revision 7, but the store is at 8: ...","problems":[]}
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What a client asks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// The desired state in effect: every setting with its source, and the
    /// stored services.
    Get,
    /// Check a change without storing it.
    Validate {
        change: Change,
    },
    /// Store a change as a new revision on top of `base`, and apply it.
    Commit {
        base: u64,
        change: Change,
        /// A sentence for the history ("server cs3 added to horizon");
        /// the server writes one when it is missing.
        #[serde(default)]
        summary: Option<String>,
        /// Who asks, for the history ("admin (web console)"); the server
        /// writes "api" when it is missing.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        changed_by: Option<String>,
    },
    /// Revisions, newest first.
    History {
        #[serde(default)]
        limit: Option<usize>,
    },
    /// What changed from one revision to another.
    Diff {
        from: u64,
        to: u64,
    },
    /// Make an earlier revision's document current again (a new revision).
    Restore {
        revision: u64,
        base: u64,
        /// Who asks, for the history; the server writes "restore" when
        /// it is missing.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        changed_by: Option<String>,
    },
    /// The stored desired state as one TOML document (password hashes,
    /// never clear text; the VRRP key only when asked).
    Export {
        #[serde(default)]
        include_vrrp_key: bool,
    },
    /// Replace the stored desired state with an exported document.
    Import {
        base: u64,
        document: String,
        /// Who asks, for the history ("admin (web console)"); the server
        /// writes "api" when it is missing.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        changed_by: Option<String>,
    },
    /// The newest lines of the appliance log (what the consoles showed),
    /// oldest first, with `filter` in them when given (ignoring case).
    Logs {
        #[serde(default)]
        lines: Option<usize>,
        #[serde(default)]
        filter: Option<String>,
    },
    Reboot,
    PowerOff,
}

/// A change to the desired state: settings to set or clear, and the
/// services layer to replace.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Change {
    /// `key = value` by the settings table's keys.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub set: BTreeMap<String, String>,
    /// Keys whose stored value goes (the lower sources' value stands).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unset: Vec<String>,
    /// A new services layer (lbd config tables), replacing the stored one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub services: Option<toml::Table>,
}

/// What init answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case", deny_unknown_fields)]
pub enum Reply {
    Ok {
        result: Payload,
    },
    /// The request was understood and refused: a bad value, a stale base,
    /// a revision that does not exist. Nothing changed.
    Refused {
        error: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        problems: Vec<Problem>,
    },
}

/// The result of a request that succeeded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Payload {
    Config(ConfigView),
    Valid,
    Committed {
        revision: RevisionMeta,
        /// What took effect now ("network.dns", "services reloaded").
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        applied: Vec<String>,
        /// What takes effect at the next boot.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pending: Vec<String>,
    },
    History(Vec<RevisionMeta>),
    Diff(Vec<DiffLine>),
    Exported {
        document: String,
    },
    Logs(Vec<String>),
    /// Reboot or power off has begun.
    Accepted,
}

/// One refused value: the key, what was given, why and the fix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Problem {
    pub key: String,
    pub value: String,
    pub message: String,
}

/// The desired state in effect.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigView {
    /// The store's current revision: the `base` of the next change.
    pub revision: u64,
    pub values: Vec<ValueView>,
    #[serde(default)]
    pub services: toml::Table,
}

/// One setting in effect: secrets are masked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValueView {
    pub key: String,
    pub value: String,
    /// "default", "appliance.toml", "ovf-env", "guestinfo", "appliance",
    /// "cmdline".
    pub source: String,
    /// The deploy wizard's label, category and description of the key.
    #[serde(default)]
    pub label: String,
    #[serde(default)]
    pub category: String,
    #[serde(default)]
    pub description: String,
    /// A change takes effect at once (else at the next boot).
    #[serde(default)]
    pub live: bool,
    /// A secret: `value` is masked, and a new one is typed, never shown.
    #[serde(default)]
    pub secret: bool,
}

/// One revision's metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevisionMeta {
    pub revision: u64,
    pub parent: Option<u64>,
    pub node: String,
    /// Seconds since the epoch.
    pub changed_at: u64,
    pub changed_by: String,
    pub summary: String,
}

/// One key that differs between two revisions (`None`: absent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiffLine {
    pub key: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

impl Reply {
    pub fn refused(error: impl Into<String>) -> Self {
        Reply::Refused {
            error: error.into(),
            problems: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Input: a commit as `lbd ctl config set` sends it.
    /// Output: the documented line, and the same value back.
    #[test]
    fn a_commit_travels_as_one_json_line() {
        let mut change = Change::default();
        change
            .set
            .insert("service.1.servers".into(), "10.0.0.11,10.0.0.12".into());
        let req = Request::Commit {
            base: 7,
            change,
            summary: None,
            changed_by: None,
        };
        let line = serde_json::to_string(&req).unwrap();
        assert_eq!(
            line,
            r#"{"op":"commit","base":7,"change":{"set":{"service.1.servers":"10.0.0.11,10.0.0.12"}},"summary":null}"#
        );
        assert_eq!(serde_json::from_str::<Request>(&line).unwrap(), req);
    }

    #[test]
    fn unknown_operations_and_fields_are_errors() {
        assert!(serde_json::from_str::<Request>(r#"{"op":"format_disk"}"#).is_err());
        // A misspelt argument is an error, not a silent default.
        assert!(
            serde_json::from_str::<Request>(r#"{"op":"commit","bsae":1,"change":{}}"#).is_err()
        );
        assert!(serde_json::from_str::<Request>(
            r#"{"op":"commit","base":1,"change":{"sett":{}}}"#
        )
        .is_err());
        let reply = Reply::refused("based on revision 7, but the store is at 8");
        let line = serde_json::to_string(&reply).unwrap();
        assert_eq!(serde_json::from_str::<Reply>(&line).unwrap(), reply);
    }
}
