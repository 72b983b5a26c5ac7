//! The appliance store's services at boot: the lbd layer of the newest
//! revision whose services lbd loads (written for lbd by `crate::lbd_files`).
//!
//! MANAGEMENT.md: a stored revision that fails validation is skipped for
//! the last good one, and nothing a user typed may leave the appliance
//! without the last working load balancer. A layer lbd refuses would stop
//! lbd altogether (it loads all its files or none), so the check here is
//! lbd's own loader over the files lbd gets before it.

use std::path::PathBuf;

use appliance_store::{validate, Document, Problems, Rules, Store};

use crate::console::Consoles;

/// Which revision's services lbd runs with.
#[derive(Debug, Clone, PartialEq)]
pub struct Chosen {
    /// The revision they come from, `None` when no revision's load.
    pub revision: Option<u64>,
    /// The layer (empty: lbd runs its base config alone).
    pub services: toml::Table,
    /// Each newer revision skipped, and why.
    pub skipped: Vec<(u64, Problems)>,
}

/// The services of the newest revision (the one in force first, then the
/// history) that lbd loads on top of `base`, lbd's files before them.
pub fn choose(store: &Store, base: &[(PathBuf, String)]) -> Chosen {
    let rules = Rules {
        lower: Vec::new(),
        lbd_base: base.to_vec(),
    };
    let mut skipped = Vec::new();
    // history() lists the revision in force first; an empty store lists
    // nothing, and its (empty) services need no check.
    let revisions = store.history().unwrap_or_default();
    for meta in revisions {
        let Ok(revision) = store.get(meta.revision) else {
            continue;
        };
        let only_services = Document {
            settings: Default::default(),
            services: revision.document.services,
        };
        match validate(only_services, &rules) {
            Ok(valid) => {
                return Chosen {
                    revision: Some(meta.revision),
                    services: valid.into_document().services,
                    skipped,
                }
            }
            Err(problems) => skipped.push((meta.revision, problems)),
        }
    }
    Chosen {
        revision: None,
        services: toml::Table::new(),
        skipped,
    }
}

/// The store's services lbd runs with (after choosing them, on top of
/// `base`, lbd's files below them), and on the console what was skipped.
pub fn add(
    consoles: &mut Consoles,
    store: Option<&Store>,
    base: &[(PathBuf, String)],
) -> toml::Table {
    let Some(store) = store else {
        return toml::Table::new();
    };
    let chosen = choose(store, base);
    for (revision, problems) in &chosen.skipped {
        consoles.line(&format!(
            "init: error: the services of store revision {revision} are skipped: lbd would refuse them:"
        ));
        for p in &problems.0 {
            consoles.line(&format!("init:   {p}"));
        }
    }
    if let Some(revision) = chosen.revision.filter(|_| !chosen.skipped.is_empty()) {
        consoles.line(&format!(
            "init: lbd runs the services of store revision {revision}, the newest it loads"
        ));
    }
    chosen.services
}

#[cfg(test)]
mod tests {
    use super::*;
    use appliance_store::Author;

    const BASE: &str = "[backends.horizon]\nbalance = \"source\"\n";

    fn commit(store: &mut Store, services: &str) {
        let doc = Document {
            settings: Default::default(),
            services: toml::from_str(services).expect("literal"),
        };
        let base = vec![(PathBuf::from("base.toml"), BASE.to_owned())];
        let rules = Rules {
            lower: Vec::new(),
            lbd_base: base,
        };
        let valid = validate(doc, &rules).expect("valid");
        let author = Author {
            node: "lb1".into(),
            changed_by: "api".into(),
            changed_at: 1,
        };
        let at = store.current().meta.revision;
        store
            .commit(at, valid, &author, "services")
            .expect("commits");
    }

    #[test]
    fn the_revision_in_force_is_used_when_lbd_loads_it() {
        // Input: revision 1 adds server cs1 to horizon. Output: revision
        // 1's services, nothing skipped.
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut store = Store::open(tmp.path()).expect("opens").store;
        commit(
            &mut store,
            "[backends.horizon.servers.cs1]\naddress = \"10.0.0.11:443\"\n",
        );
        let base = vec![(PathBuf::from("base.toml"), BASE.to_owned())];
        let chosen = choose(&store, &base);
        assert_eq!(chosen.revision, Some(1));
        assert!(chosen.services.contains_key("backends"));
        assert!(chosen.skipped.is_empty());
    }

    #[test]
    fn a_revision_lbd_refuses_is_skipped_for_the_last_good_one() {
        // Input: revision 1 has server cs1 (good); revision 2 has cs2,
        // edited on disk to lose its address (as a hand edit, or a base
        // config that changed since, would make it fail). Output: revision
        // 2 skipped with lbd's error, revision 1's services chosen.
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut store = Store::open(tmp.path()).expect("opens").store;
        commit(
            &mut store,
            "[backends.horizon.servers.cs1]\naddress = \"10.0.0.11:443\"\n",
        );
        commit(
            &mut store,
            "[backends.horizon.servers.cs2]\naddress = \"10.0.0.12:443\"\n",
        );
        let current = tmp.path().join(appliance_store::CURRENT_FILE);
        let text = std::fs::read_to_string(&current).expect("read");
        let edited = text.replace("address = \"10.0.0.12:443\"", "weight = 3");
        assert_ne!(text, edited);
        std::fs::write(&current, edited).expect("edit");
        let store = Store::open(tmp.path()).expect("opens").store;

        let base = vec![(PathBuf::from("base.toml"), BASE.to_owned())];
        let chosen = choose(&store, &base);
        assert_eq!(chosen.revision, Some(1));
        assert_eq!(chosen.skipped.len(), 1);
        assert_eq!(chosen.skipped[0].0, 2);
        assert!(
            chosen.skipped[0]
                .1
                .to_string()
                .contains("missing field `address`"),
            "{}",
            chosen.skipped[0].1
        );
        let servers = &chosen.services["backends"]["horizon"]["servers"];
        assert!(servers.get("cs1").is_some() && servers.get("cs2").is_none());
    }

    #[test]
    fn an_empty_store_adds_nothing() {
        // Input: a new store. Output: no revision, no services, no skips.
        let tmp = tempfile::tempdir().expect("tempdir");
        let store = Store::open(tmp.path()).expect("opens").store;
        let chosen = choose(&store, &[]);
        assert_eq!(chosen.revision, None);
        assert!(chosen.services.is_empty() && chosen.skipped.is_empty());
    }
}
