//! The vSphere change rule: what keeps vCenter meaningful after day 1.
//!
//! The store outranks vSphere, so a value an admin set on the appliance
//! holds although the deploy wizard's value is still delivered at every
//! boot. But an admin who edits a vApp property in vCenter later means it:
//! a vSphere value that differs from the one delivered at the last boot
//! (recorded in `vsphere-seen.toml`) is a new write, so that key's stored
//! value is dropped and vSphere's stands, at this boot and after.
//!
//! ```text
//! delivered now   seen last boot   stored     -> in force
//! 10.0.0.6        10.0.0.6         10.0.0.5      10.0.0.5 (appliance)
//! 10.0.0.7        10.0.0.6         10.0.0.5      10.0.0.7 (vSphere; stored dropped)
//! (not delivered) 10.0.0.6         10.0.0.5      10.0.0.5 (no change seen)
//! anything        (no seen file)   10.0.0.5      10.0.0.5 (first boot: recorded only)
//! ```
//! A key missing this boot is not a change: a detached OVF environment CD
//! must not wipe the admin's values. An empty value is a change when the
//! last one was not (the admin cleared the field in vCenter).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::document::Document;
use crate::validate::ValidDocument;

/// `changed_by` of the revision the rule writes.
pub const CHANGED_BY: &str = "vsphere";

/// What vSphere delivered at a boot, by table key (guestinfo over the OVF
/// environment, as in the merge). The `vsphere-seen.toml` file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    #[serde(default)]
    pub values: BTreeMap<String, String>,
}

impl Seen {
    /// The vSphere layers' pairs as one map, later sources winning.
    pub fn from_layers(layers: &[settings::Layer]) -> Self {
        let mut sorted: Vec<&settings::Layer> = layers.iter().collect();
        sorted.sort_by_key(|l| l.source);
        let values = sorted
            .into_iter()
            .flat_map(|l| l.pairs.iter().cloned())
            .map(|(key, value)| {
                let recorded = recorded(&key, &value);
                (key, recorded)
            })
            .collect();
        Self { values }
    }
}

/// How a delivered value is kept in the seen file: a secret only as the
/// SHA-256 of its text, which tells a change as well as the secret itself
/// would, and leaves no password on the disk.
fn recorded(key: &str, value: &str) -> String {
    if settings::find(key).is_some_and(|p| p.password) && !value.trim().is_empty() {
        format!(
            "{DIGEST_PREFIX}{}",
            hex(&Sha256::digest(value.trim().as_bytes()))
        )
    } else {
        value.to_owned()
    }
}

const DIGEST_PREFIX: &str = "sha256:";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether the value seen before and the one delivered now are the same;
/// a seen file written before secrets were digested holds them in clear.
fn unchanged(key: &str, before: &str, now: &str) -> bool {
    before == now || recorded(key, before) == now
}

/// One stored value replaced because vSphere's changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Replaced {
    pub key: String,
    /// The stored value as it may be shown (secrets masked).
    pub stored: String,
}

impl fmt::Display for Replaced {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} changed in vSphere: the appliance's value {} is replaced",
            self.key, self.stored
        )
    }
}

/// What the rule decided, for the caller to write.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The new `vsphere-seen.toml`: the last one with this boot's values
    /// over it.
    pub seen: Seen,
    /// Every stored value dropped, for the log.
    pub replaced: Vec<Replaced>,
    /// The document to commit (by [`CHANGED_BY`], with [`Outcome::summary`])
    /// when a stored value was dropped; `None` when the store stays as is.
    pub document: Option<ValidDocument>,
    /// The revision's summary when there is a document to commit.
    pub summary: String,
}

/// Applies the rule to what vSphere `delivered` this boot, what it `seen`
/// at the last boot (`None`: no seen file, a first boot) and the `stored`
/// document. Pure: the caller reads and writes the files.
pub fn apply(delivered: &Seen, seen: Option<&Seen>, stored: &Document) -> Outcome {
    let mut next = seen.cloned().unwrap_or_default();
    next.values
        .extend(delivered.values.iter().map(|(k, v)| (k.clone(), v.clone())));
    let Some(seen) = seen else {
        return Outcome {
            seen: next,
            replaced: Vec::new(),
            document: None,
            summary: String::new(),
        };
    };
    let mut document = stored.clone();
    let mut replaced = Vec::new();
    for (key, now) in &delivered.values {
        let before = seen.values.get(key).map_or("", |v| v.trim());
        if unchanged(key, before, now.trim()) {
            continue;
        }
        if let Some(old) = document.settings.remove(key) {
            replaced.push(Replaced {
                key: key.clone(),
                stored: shown(key, &old),
            });
        }
    }
    if replaced.is_empty() {
        return Outcome {
            seen: next,
            replaced,
            document: None,
            summary: String::new(),
        };
    }
    let keys: Vec<&str> = replaced.iter().map(|r| r.key.as_str()).collect();
    let summary = format!(
        "{} changed in vSphere: the appliance's value{} replaced",
        keys.join(", "),
        if keys.len() == 1 { " is" } else { "s are" }
    );
    Outcome {
        seen: next,
        replaced,
        document: Some(ValidDocument::trusted(document)),
        summary,
    }
}

/// A stored value for the log: secrets masked, one line.
fn shown(key: &str, raw: &str) -> String {
    match settings::find(key) {
        Some(p) if p.password => settings::MASK.to_owned(),
        _ => raw.trim().replace(['\n', '\r'], " "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(pairs: &[(&str, &str)]) -> Seen {
        Seen {
            values: pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    fn stored(pairs: &[(&str, &str)]) -> Document {
        Document {
            settings: seen(pairs).values,
            services: toml::Table::new(),
        }
    }

    #[test]
    fn unchanged_vsphere_value_leaves_the_store_in_force() {
        // Input: vSphere delivers 10.0.0.6/24 as at the last boot; the store
        // holds 10.0.0.5/24. Output: nothing replaced, nothing to commit,
        // the seen file stays the same.
        let now = seen(&[("network.ipv4", "10.0.0.6/24")]);
        let out = apply(
            &now,
            Some(&now),
            &stored(&[("network.ipv4", "10.0.0.5/24")]),
        );
        assert!(out.replaced.is_empty());
        assert_eq!(out.document, None);
        assert_eq!(out.seen, now);
    }

    #[test]
    fn changed_vsphere_value_replaces_the_stored_one() {
        // Input: vSphere now delivers 10.0.0.7/24, last boot 10.0.0.6/24;
        // the store holds 10.0.0.5/24 and a hostname. Output: the stored
        // address is dropped (the hostname stays), logged in the admin's
        // words, and the new seen value is 10.0.0.7/24.
        let now = seen(&[("network.ipv4", "10.0.0.7/24"), ("hostname", "lb1")]);
        let last = seen(&[("network.ipv4", "10.0.0.6/24"), ("hostname", "lb1")]);
        let store = stored(&[("network.ipv4", "10.0.0.5/24"), ("hostname", "lb-a")]);
        let out = apply(&now, Some(&last), &store);
        assert_eq!(
            out.replaced
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            ["network.ipv4 changed in vSphere: the appliance's value 10.0.0.5/24 is replaced"]
        );
        let doc = out.document.expect("a new revision").into_document();
        assert_eq!(doc.settings, stored(&[("hostname", "lb-a")]).settings);
        assert_eq!(
            out.summary,
            "network.ipv4 changed in vSphere: the appliance's value is replaced"
        );
        assert_eq!(out.seen, now);
    }

    #[test]
    fn secrets_are_seen_as_digests_and_still_tell_a_change() {
        // Input: vSphere delivers an admin password, the same again at the
        // next boot, then another; also a seen file of an older version
        // holding the password in clear. Output: the seen file holds no
        // password, only `sha256:`; the same password is no change (from
        // either seen file), a new one replaces the stored hash.
        let layer = |pw: &str| {
            settings::Layer::new(
                settings::Source::OvfEnv,
                [("admin.password".to_owned(), pw.to_owned())]
                    .into_iter()
                    .collect(),
            )
        };
        let first = Seen::from_layers(&[layer("vsphere-pw-1")]);
        let recorded = &first.values["admin.password"];
        assert!(recorded.starts_with("sha256:") && !recorded.contains("vsphere-pw"));
        let store = stored(&[("admin.password", "$argon2id$stored")]);
        let again = Seen::from_layers(&[layer("vsphere-pw-1")]);
        assert_eq!(apply(&again, Some(&first), &store).document, None);
        let old_file = seen(&[("admin.password", "vsphere-pw-1")]);
        assert_eq!(apply(&again, Some(&old_file), &store).document, None);
        let changed = Seen::from_layers(&[layer("vsphere-pw-2")]);
        let out = apply(&changed, Some(&first), &store);
        assert_eq!(out.replaced.len(), 1);
        assert_eq!(out.replaced[0].stored, settings::MASK);
    }

    #[test]
    fn first_boot_records_and_drops_nothing() {
        // Input: no seen file, vSphere delivers a priority, the store holds
        // another. Output: nothing replaced, the seen file records 100.
        let now = seen(&[("vrrp.priority", "100")]);
        let out = apply(&now, None, &stored(&[("vrrp.priority", "200")]));
        assert!(out.replaced.is_empty());
        assert_eq!(out.document, None);
        assert_eq!(out.seen, now);
    }

    #[test]
    fn a_key_not_delivered_is_no_change_and_stays_seen() {
        // Input: this boot vSphere delivers nothing (the CD was detached);
        // last boot it gave the DNS server. Output: the stored DNS stays,
        // and the seen file still remembers the last delivered value.
        let last = seen(&[("network.dns", "192.0.2.53")]);
        let out = apply(
            &Seen::default(),
            Some(&last),
            &stored(&[("network.dns", "192.0.2.54")]),
        );
        assert_eq!(out.document, None);
        assert_eq!(out.seen, last);
    }

    #[test]
    fn cleared_in_vcenter_is_a_change_and_secrets_are_masked() {
        // Input: the admin cleared the password field in vCenter (empty now,
        // a value last boot); the store holds another password. Output: the
        // stored one is dropped and the log line masks it.
        let out = apply(
            &seen(&[("admin.password", "")]),
            Some(&seen(&[("admin.password", "old-secret")])),
            &stored(&[("admin.password", "store-secret")]),
        );
        assert_eq!(
            out.replaced[0].to_string(),
            "admin.password changed in vSphere: the appliance's value ******** is replaced"
        );
        assert!(out.document.is_some());
    }

    #[test]
    fn guestinfo_wins_over_the_ovf_environment_in_what_was_seen() {
        // Input: ovf-env and guestinfo both give the hostname. Output: the
        // seen value is guestinfo's, as the merge would use it.
        let layers = [
            settings::Layer::new(
                settings::Source::Guestinfo,
                vec![("hostname".into(), "gi".into())],
            ),
            settings::Layer::new(
                settings::Source::OvfEnv,
                vec![("hostname".into(), "ovf".into())],
            ),
        ];
        assert_eq!(Seen::from_layers(&layers), seen(&[("hostname", "gi")]));
    }
}
