//! What changed between two documents, per key: for the history page, the
//! diff shown before applying, and the summary of a vSphere revision.
//!
//! Settings compare by table key. Services compare by dotted path: tables
//! on both sides are walked into, so a new server is one entry
//! (`backends.horizon.servers.cs3` added) and a changed weight another
//! (`backends.horizon.servers.cs1.weight` changed); a table on one side
//! only is one entry, not one per key inside it (a table of named tables,
//! such as `frontends`, is one entry per name).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::document::Document;

/// One key's change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum Change<T> {
    Added { key: String, new: T },
    Changed { key: String, old: T, new: T },
    Removed { key: String, old: T },
}

impl<T> Change<T> {
    pub fn key(&self) -> &str {
        match self {
            Self::Added { key, .. } | Self::Changed { key, .. } | Self::Removed { key, .. } => key,
        }
    }
}

/// Every change from one document to another, keys in order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Diff {
    pub settings: Vec<Change<String>>,
    pub services: Vec<Change<toml::Value>>,
}

impl Diff {
    pub fn is_empty(&self) -> bool {
        self.settings.is_empty() && self.services.is_empty()
    }

    /// A sentence for a revision's summary in the admin's words: "server
    /// cs3 added to horizon; hostname changed". Repeats are said once.
    pub fn summary(&self) -> String {
        let mut phrases: Vec<String> = Vec::new();
        let settings = self.settings.iter().map(setting_phrase);
        let services = self.services.iter().map(service_phrase);
        for phrase in settings.chain(services) {
            if !phrases.contains(&phrase) {
                phrases.push(phrase);
            }
        }
        if phrases.is_empty() {
            return "no change".to_owned();
        }
        phrases.join("; ")
    }
}

fn verb<T>(change: &Change<T>) -> &'static str {
    match change {
        Change::Added { .. } => "added",
        Change::Changed { .. } => "changed",
        Change::Removed { .. } => "removed",
    }
}

fn setting_phrase(change: &Change<String>) -> String {
    let verb = match change {
        Change::Added { .. } => "set",
        Change::Changed { .. } => "changed",
        Change::Removed { .. } => "unset",
    };
    format!("{} {verb}", change.key())
}

/// lbd's tables by what an admin calls them: a change inside a server is
/// "server cs1 of horizon changed".
fn service_phrase(change: &Change<toml::Value>) -> String {
    let parts: Vec<&str> = change.key().split('.').collect();
    let verb = verb(change);
    match parts.as_slice() {
        ["backends", backend, "servers", server] => {
            let to = match change {
                Change::Added { .. } => "to",
                Change::Changed { .. } => "of",
                Change::Removed { .. } => "from",
            };
            format!("server {server} {verb} {to} {backend}")
        }
        ["backends", backend, "servers", server, ..] => {
            format!("server {server} of {backend} changed")
        }
        [kind @ ("backends" | "frontends"), name] => {
            format!("{} {name} {verb}", kind.trim_end_matches('s'))
        }
        [kind @ ("backends" | "frontends"), name, ..] => {
            format!("{} {name} changed", kind.trim_end_matches('s'))
        }
        _ => format!("{} {verb}", change.key()),
    }
}

/// The changes that turn `a` into `b`. Secrets (the table's password
/// keys) show as [`settings::MASK`]: that they changed, never what to.
pub fn diff(a: &Document, b: &Document) -> Diff {
    let keys: BTreeSet<&String> = a.settings.keys().chain(b.settings.keys()).collect();
    let settings = keys
        .into_iter()
        .filter_map(|key| change(key, a.settings.get(key), b.settings.get(key)))
        .map(mask_secret)
        .collect();
    let mut services = Vec::new();
    diff_tables("", &a.services, &b.services, &mut services);
    Diff { settings, services }
}

fn change<T: PartialEq + Clone>(key: &str, old: Option<&T>, new: Option<&T>) -> Option<Change<T>> {
    let key = key.to_owned();
    match (old, new) {
        (None, Some(new)) => Some(Change::Added {
            key,
            new: new.clone(),
        }),
        (Some(old), None) => Some(Change::Removed {
            key,
            old: old.clone(),
        }),
        (Some(old), Some(new)) if old != new => Some(Change::Changed {
            key,
            old: old.clone(),
            new: new.clone(),
        }),
        _ => None,
    }
}

fn mask_secret(change: Change<String>) -> Change<String> {
    let secret = settings::find(change.key()).is_some_and(|p| p.password);
    if !secret {
        return change;
    }
    let mask = || settings::MASK.to_owned();
    match change {
        Change::Added { key, .. } => Change::Added { key, new: mask() },
        Change::Changed { key, .. } => Change::Changed {
            key,
            old: mask(),
            new: mask(),
        },
        Change::Removed { key, .. } => Change::Removed { key, old: mask() },
    }
}

fn diff_tables(prefix: &str, a: &toml::Table, b: &toml::Table, out: &mut Vec<Change<toml::Value>>) {
    let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    for key in keys {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        let empty = toml::Table::new();
        match (a.get(key), b.get(key)) {
            (Some(toml::Value::Table(ta)), Some(toml::Value::Table(tb))) => {
                diff_tables(&path, ta, tb, out);
            }
            (None, Some(toml::Value::Table(tb))) if is_collection(tb) => {
                diff_tables(&path, &empty, tb, out);
            }
            (Some(toml::Value::Table(ta)), None) if is_collection(ta) => {
                diff_tables(&path, ta, &empty, out);
            }
            (old, new) => out.extend(change(&path, old, new)),
        }
    }
}

/// A table of named tables (`frontends`, `servers`): a one-sided one is
/// reported per entry, so removing the last frontend reads
/// `frontends.old` removed, not `frontends` removed.
fn is_collection(table: &toml::Table) -> bool {
    !table.is_empty() && table.values().all(toml::Value::is_table)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(settings: &[(&str, &str)], services: &str) -> Document {
        Document {
            settings: settings
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            services: toml::from_str(services).expect("literal"),
        }
    }

    #[test]
    fn per_key_changes_in_settings_and_services() {
        // Input: a has hostname lb1 and dns, b has hostname lb2 and mtu;
        // b adds server cs3, changes cs1's weight and removes frontend old.
        // Output: one change per key, in key order; the new server is one
        // entry holding its whole table.
        let a = doc(
            &[("hostname", "lb1"), ("network.dns", "192.0.2.53")],
            "[backends.h.servers.cs1]\nweight = 1\n[frontends.old]\nmode = \"tcp\"\n",
        );
        let b = doc(
            &[("hostname", "lb2"), ("network.mtu", "9000")],
            "[backends.h.servers.cs1]\nweight = 2\n[backends.h.servers.cs3]\naddress = \"10.0.0.13:443\"\n",
        );
        let d = diff(&a, &b);
        let keys: Vec<&str> = d.settings.iter().map(Change::key).collect();
        assert_eq!(keys, ["hostname", "network.dns", "network.mtu"]);
        assert!(
            matches!(&d.settings[0], Change::Changed { old, new, .. } if old == "lb1" && new == "lb2")
        );
        assert!(matches!(&d.settings[1], Change::Removed { .. }));
        assert!(matches!(&d.settings[2], Change::Added { .. }));
        let keys: Vec<&str> = d.services.iter().map(Change::key).collect();
        assert_eq!(
            keys,
            [
                "backends.h.servers.cs1.weight",
                "backends.h.servers.cs3",
                "frontends.old"
            ]
        );
        assert!(
            matches!(&d.services[1], Change::Added { new: toml::Value::Table(t), .. } if t.contains_key("address"))
        );
        assert!(matches!(&d.services[2], Change::Removed { .. }));
    }

    #[test]
    fn summary_speaks_of_servers_backends_and_settings() {
        // Input: the diff of the first test (hostname changed, DNS removed,
        // MTU set, cs1's weight changed, cs3 added, frontend old removed).
        // Output: one sentence naming each in the admin's words.
        let a = doc(
            &[("hostname", "lb1"), ("network.dns", "192.0.2.53")],
            "[backends.h.servers.cs1]\nweight = 1\n[frontends.old]\nmode = \"tcp\"\n",
        );
        let b = doc(
            &[("hostname", "lb2"), ("network.mtu", "9000")],
            "[backends.h.servers.cs1]\nweight = 2\n[backends.h.servers.cs3]\naddress = \"10.0.0.13:443\"\n",
        );
        assert_eq!(
            diff(&a, &b).summary(),
            "hostname changed; network.dns unset; network.mtu set; server cs1 of h changed; \
             server cs3 added to h; frontend old removed"
        );
        assert_eq!(diff(&a, &a).summary(), "no change");
    }

    #[test]
    fn changed_secret_shows_masked() {
        // Input: the admin password changes from one value to another.
        // Output: one Changed entry whose old and new are the mask.
        let d = diff(
            &doc(&[("admin.password", "old-secret")], ""),
            &doc(&[("admin.password", "new-secret")], ""),
        );
        assert_eq!(
            d.settings,
            [Change::Changed {
                key: "admin.password".into(),
                old: settings::MASK.into(),
                new: settings::MASK.into(),
            }]
        );
    }

    #[test]
    fn same_document_has_no_changes() {
        // Input: one document twice. Output: an empty diff.
        let a = doc(&[("hostname", "lb1")], "[global]\nmaxconn = 5\n");
        assert!(diff(&a, &a).is_empty());
    }
}
