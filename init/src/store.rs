//! The appliance store at boot: its layer in the settings merge, after the
//! vSphere change rule.
//!
//! ```text
//! open the store (data partition)        damaged: fall back, report
//!   -> vSphere rule: delivered now vs vsphere-seen.toml vs stored document
//!   -> merge baked < ovf-env < guestinfo < appliance < cmdline
//!   -> commit the rule's revision (node = the merged hostname)
//!   -> write vsphere-seen.toml           only once that commit is durable
//! ```
//! The seen file is written last on purpose: if the commit fails, the
//! next boot sees the same vSphere change again and retries, instead of
//! letting the stored value win over what the admin typed in vCenter.
//! The document's services go to lbd in `crate::store_services`.
//! Nothing here stops the boot: without a store the appliance boots from
//! vSphere and the command line as before, and the console says why.

use std::path::Path;

use appliance_store::vsphere::{self, Seen};
use appliance_store::{Author, Document, Store};
use settings::{Layer, Merged, Source};

use crate::sources::SourceNote;

/// What the store gave this boot.
pub struct AtBoot {
    /// The settings in effect, every layer merged.
    pub merged: Merged,
    /// The store, for lbd's services layer and (next) the appliance
    /// socket; `None` without a data partition or when it did not open.
    pub store: Option<Store>,
    /// What to show on the console about the store.
    pub notes: Vec<SourceNote>,
}

/// Merges `layers` (every source but the store) with the store in `dir`
/// when there is one (`dir` is `None` without a data partition). `now` is
/// seconds since the epoch, for the revision the vSphere rule may write.
pub fn merge_with_store(layers: Vec<Layer>, dir: Option<&Path>, now: u64) -> AtBoot {
    let mut notes = Vec::new();
    let Some((dir, mut store)) = dir.and_then(|d| Some((d, open(d, &mut notes)?))) else {
        return without_store(layers, notes);
    };
    let (seen, problem) = store.seen();
    notes.extend(problem.map(|p| SourceNote::error(format!("appliance store: {p}"))));
    let vsphere_layers: Vec<Layer> = layers
        .iter()
        .filter(|l| matches!(l.source, Source::OvfEnv | Source::Guestinfo))
        .cloned()
        .collect();
    let delivered = Seen::from_layers(&vsphere_layers);
    let current = store.current().clone();
    let outcome = vsphere::apply(&delivered, seen.as_ref(), &current.document);
    for r in &outcome.replaced {
        notes.push(SourceNote::info(r.to_string()));
    }
    let document: &Document = outcome
        .document
        .as_ref()
        .map_or(&current.document, |d| d.document());
    let mut all = layers;
    all.push(document.settings_layer());
    let merged = settings::merge(all);
    let author = Author {
        node: merged.settings.hostname.clone(),
        changed_by: vsphere::CHANGED_BY.to_owned(),
        changed_at: now,
    };
    record(&mut store, outcome, seen.as_ref(), &author, &mut notes);
    let in_force = &store.current().document;
    let frontends = in_force
        .services
        .get("frontends")
        .and_then(toml::Value::as_table)
        .map_or(0, toml::Table::len);
    notes.push(SourceNote::info(format!(
        "appliance store {}: revision {}, {} settings, {frontends} frontends",
        dir.display(),
        store.current().meta.revision,
        in_force.settings.len(),
    )));
    AtBoot {
        merged,
        store: Some(store),
        notes,
    }
}

/// Opens the store; `None` (and a note) when it cannot be.
fn open(dir: &Path, notes: &mut Vec<SourceNote>) -> Option<Store> {
    match Store::open(dir) {
        Ok(opened) => {
            for p in &opened.problems {
                notes.push(SourceNote::error(format!("appliance store: {p}")));
            }
            Some(opened.store)
        }
        Err(e) => {
            notes.push(SourceNote::error(format!(
                "appliance store not opened, booting without it: {e}"
            )));
            None
        }
    }
}

/// Writes what the vSphere rule decided: its revision, then the seen
/// file, but the seen file only once the revision is durable (see the
/// module doc).
fn record(
    store: &mut Store,
    outcome: vsphere::Outcome,
    seen_before: Option<&Seen>,
    author: &Author,
    notes: &mut Vec<SourceNote>,
) {
    if let Some(valid) = outcome.document {
        let base = store.current().meta.revision;
        match store.commit(base, valid, author, &outcome.summary) {
            Ok(done) => {
                notes.push(SourceNote::info(format!(
                    "appliance store: revision {} by vsphere: {}",
                    done.meta.revision, done.meta.summary
                )));
                for w in &done.warnings {
                    notes.push(SourceNote::error(format!("appliance store: {w}")));
                }
            }
            Err(e) => {
                notes.push(SourceNote::error(format!(
                    "appliance store: the vSphere change is in force for this boot only: {e}"
                )));
                return;
            }
        }
    }
    if seen_before != Some(&outcome.seen) {
        if let Err(e) = store.write_seen(&outcome.seen) {
            notes.push(SourceNote::error(format!("appliance store: {e}")));
        }
    }
}

fn without_store(layers: Vec<Layer>, notes: Vec<SourceNote>) -> AtBoot {
    AtBoot {
        merged: settings::merge(layers),
        store: None,
        notes,
    }
}

/// Seconds since the epoch for the store's revisions; 0 if the clock is
/// before 1970 (a revision's time is information, never a decision).
pub fn unix_time() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use appliance_store::{validate, Rules};

    fn layer(source: Source, pairs: &[(&str, &str)]) -> Layer {
        Layer::new(
            source,
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    /// A store whose revision 1 sets `pairs`, and whose seen file says
    /// vSphere delivered `seen` at the last boot.
    fn store_with(dir: &Path, pairs: &[(&str, &str)], seen: &[(&str, &str)]) {
        let mut store = Store::open(dir).expect("opens").store;
        let doc = Document {
            settings: layer(Source::Appliance, pairs).pairs.into_iter().collect(),
            services: toml::Table::new(),
        };
        let valid = validate(doc, &Rules::default()).expect("valid");
        let author = Author {
            node: "lb1".into(),
            changed_by: "console".into(),
            changed_at: 10,
        };
        store.commit(0, valid, &author, "set").expect("commits");
        let seen = Seen {
            values: layer(Source::OvfEnv, seen).pairs.into_iter().collect(),
        };
        store.write_seen(&seen).expect("seen");
    }

    #[test]
    fn unchanged_vsphere_value_lets_the_stored_one_win() {
        // Input: the store holds 10.0.0.5/24 and vrrp.priority 999 (bad);
        // vSphere delivers 10.0.0.6/24 and priority 120 as at the last
        // boot; the cmdline sets the MTU. Output: the address from the store
        // shown "(appliance)", priority 120 from ovf-env with an error
        // naming the key and source appliance, MTU from the cmdline; no new
        // revision.
        let tmp = tempfile::tempdir().expect("tempdir");
        store_with(
            tmp.path(),
            &[("network.ipv4", "10.0.0.5/24"), ("vrrp.priority", "150")],
            &[("network.ipv4", "10.0.0.6/24"), ("vrrp.priority", "120")],
        );
        // A commit refuses 999: it gets there as a hand edit (or a table
        // whose range narrowed since) would.
        let current = tmp.path().join(appliance_store::CURRENT_FILE);
        let text = std::fs::read_to_string(&current).expect("read");
        let edited = text.replace("\"vrrp.priority\" = \"150\"", "\"vrrp.priority\" = \"999\"");
        assert_ne!(text, edited);
        std::fs::write(&current, edited).expect("edit");
        let layers = vec![
            layer(
                Source::OvfEnv,
                &[("network.ipv4", "10.0.0.6/24"), ("vrrp.priority", "120")],
            ),
            layer(Source::Cmdline, &[("network.mtu", "9000")]),
        ];
        let boot = merge_with_store(layers, Some(tmp.path()), 100);
        let m = &boot.merged;
        assert_eq!(m.origins["network.ipv4"].source, Source::Appliance);
        assert!(m
            .render()
            .contains(&"network.ipv4 = 10.0.0.5/24 (appliance)".to_owned()));
        assert_eq!(m.settings.vrrp.priority, 120);
        assert_eq!(m.errors.len(), 1);
        assert_eq!(m.errors[0].key, "vrrp.priority");
        assert_eq!(m.errors[0].source, Source::Appliance);
        assert_eq!(m.origins["network.mtu"].source, Source::Cmdline);
        let store = Store::open(tmp.path()).expect("opens").store;
        assert_eq!(store.current().meta.revision, 1);
    }

    #[test]
    fn changed_vsphere_value_wins_is_logged_and_committed() {
        // Input: the store holds 10.0.0.5/24; vSphere delivered 10.0.0.6/24
        // last boot and 10.0.0.7/24 now. Output: 10.0.0.7/24 from ovf-env,
        // the console note in the admin's words, revision 2 by vsphere at
        // time 100 without the address, and the seen file records .7.
        let tmp = tempfile::tempdir().expect("tempdir");
        store_with(
            tmp.path(),
            &[("network.ipv4", "10.0.0.5/24")],
            &[("network.ipv4", "10.0.0.6/24")],
        );
        let layers = vec![layer(Source::OvfEnv, &[("network.ipv4", "10.0.0.7/24")])];
        let boot = merge_with_store(layers, Some(tmp.path()), 100);
        assert_eq!(boot.merged.origins["network.ipv4"].source, Source::OvfEnv);
        assert_eq!(boot.merged.origins["network.ipv4"].raw, "10.0.0.7/24");
        assert!(boot.notes.iter().any(|n| {
            !n.error
            && n.text
                == "network.ipv4 changed in vSphere: the appliance's value 10.0.0.5/24 is replaced"
        }));
        let store = Store::open(tmp.path()).expect("opens").store;
        let meta = &store.current().meta;
        assert_eq!((meta.revision, meta.changed_by.as_str()), (2, "vsphere"));
        assert_eq!(meta.changed_at, 100);
        assert!(store.current().document.settings.is_empty());
        let seen = store.seen().0.expect("seen file");
        assert_eq!(seen.values["network.ipv4"], "10.0.0.7/24");
    }

    #[test]
    fn no_data_partition_boots_without_the_store() {
        // Input: no store directory. Output: the merge of the other layers,
        // no notes, no services.
        let layers = vec![layer(Source::OvfEnv, &[("hostname", "lb-ovf")])];
        let boot = merge_with_store(layers, None, 0);
        assert_eq!(boot.merged.settings.hostname, "lb-ovf");
        assert!(boot.notes.is_empty() && boot.store.is_none());
    }

    #[test]
    fn unopenable_store_is_reported_and_the_boot_goes_on() {
        // Input: the store's directory is a regular file. Output: one
        // error note, and the other layers merged.
        let tmp = tempfile::tempdir().expect("tempdir");
        let file = tmp.path().join("config");
        std::fs::write(&file, "not a directory").expect("write");
        let layers = vec![layer(Source::OvfEnv, &[("hostname", "lb-ovf")])];
        let boot = merge_with_store(layers, Some(&file), 0);
        assert_eq!(boot.merged.settings.hostname, "lb-ovf");
        assert_eq!(boot.notes.len(), 1);
        assert!(boot.notes[0].error);
        assert!(boot.notes[0].text.contains("booting without it"));
    }
}
