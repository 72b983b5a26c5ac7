//! The store on a real directory: commits, stale bases, history, restore,
//! pruning, power cuts after every step, damaged files.

use std::path::Path;

use crate::crash_fs::CrashFs;
use crate::diff::Change;
use crate::document::Document;
use crate::store::{
    Author, Store, StoreError, CURRENT_FILE, DAMAGED_FILE, HISTORY_DIR, HISTORY_KEPT, RESTORE_BY,
    SEEN_FILE,
};
use crate::validate::{validate, Rules, ValidDocument};
use crate::vsphere::Seen;

fn doc(pairs: &[(&str, &str)]) -> Document {
    Document {
        settings: pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        services: toml::Table::new(),
    }
}

fn valid(d: Document) -> ValidDocument {
    validate(d, &Rules::default()).expect("a valid test document")
}

fn author(by: &str, at: u64) -> Author {
    Author {
        node: "lb1".into(),
        changed_by: by.into(),
        changed_at: at,
    }
}

fn open(dir: &Path) -> Store {
    let opened = Store::open(dir).expect("opens");
    assert!(
        opened.problems.is_empty(),
        "{:?}",
        opened
            .problems
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
    );
    opened.store
}

/// A store holding revisions 1..=n, revision k setting hostname lb<k>.
fn store_with(dir: &Path, n: u64) -> Store {
    let mut store = open(dir);
    for k in 1..=n {
        let d = valid(doc(&[("hostname", &format!("lb{k}"))]));
        store
            .commit(
                k - 1,
                d,
                &author("api", 1000 + k),
                &format!("hostname lb{k}"),
            )
            .expect("commits");
    }
    store
}

#[test]
fn new_store_is_revision_zero_and_creates_its_directories() {
    // Input: a directory that does not exist. Output: it and history/ are
    // created, revision 0 with an empty document is in force, no problems.
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("config");
    let store = open(&dir);
    assert_eq!(store.current().meta.revision, 0);
    assert_eq!(store.current().document, Document::default());
    assert!(dir.join(HISTORY_DIR).is_dir());
    assert!(store.history().expect("history").is_empty());
}

#[test]
fn commit_is_in_force_after_reopening_with_its_metadata() {
    // Input: two commits (by api at 1001, 1002). Output: after reopening,
    // revision 2 with parent 1 is in force, revision 1 is in history/.
    let tmp = tempfile::tempdir().expect("tempdir");
    drop(store_with(tmp.path(), 2));
    let store = open(tmp.path());
    let meta = &store.current().meta;
    assert_eq!((meta.revision, meta.parent), (2, 1));
    assert_eq!(meta.node, "lb1");
    assert_eq!(meta.changed_by, "api");
    assert_eq!(meta.changed_at, 1002);
    assert_eq!(meta.summary, "hostname lb2");
    assert_eq!(store.current().document, doc(&[("hostname", "lb2")]));
    assert!(tmp.path().join(HISTORY_DIR).join("1.toml").is_file());
}

#[test]
fn stale_base_is_refused_naming_both_revisions() {
    // Input: the store is at 8; a change based on 7 arrives. Output:
    // refused with "based on revision 7, but the store is at 8", and
    // revision 8 is still in force.
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut store = store_with(tmp.path(), 8);
    let err = store
        .commit(7, valid(doc(&[])), &author("console", 2000), "late")
        .expect_err("stale");
    assert!(matches!(
        err,
        StoreError::Stale {
            base: 7,
            current: 8
        }
    ));
    assert_eq!(
        err.to_string(),
        "the change is based on revision 7, but the store is at 8: reload and apply again"
    );
    assert_eq!(store.current().meta.revision, 8);
    assert_eq!(open(tmp.path()).current().meta.revision, 8);
}

#[test]
fn history_is_newest_first_and_restore_makes_a_new_revision() {
    // Input: revisions 1..=3, then a restore of 1 based on 3. Output:
    // revision 4 (parent 3, by "restore") holds revision 1's document;
    // the history lists 4, 3, 2, 1; get(2) gives revision 2; the diff from
    // 3 to 4 is the hostname change.
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut store = store_with(tmp.path(), 3);
    let done = store
        .restore(1, 3, &Rules::default(), &author(RESTORE_BY, 3000))
        .expect("restores");
    assert_eq!((done.meta.revision, done.meta.parent), (4, 3));
    assert_eq!(done.meta.changed_by, RESTORE_BY);
    assert_eq!(done.meta.summary, "restored revision 1 (hostname lb1)");
    assert_eq!(store.current().document, doc(&[("hostname", "lb1")]));
    let revisions: Vec<u64> = store
        .history()
        .expect("history")
        .iter()
        .map(|m| m.revision)
        .collect();
    assert_eq!(revisions, [4, 3, 2, 1]);
    assert_eq!(
        store.get(2).expect("revision 2").document,
        doc(&[("hostname", "lb2")])
    );
    let diff = store.diff(3, 4).expect("diff");
    assert_eq!(
        diff.settings,
        [Change::Changed {
            key: "hostname".into(),
            old: "lb3".into(),
            new: "lb1".into()
        }]
    );
    assert!(matches!(
        store.get(99),
        Err(StoreError::NoSuchRevision { revision: 99 })
    ));
}

#[test]
fn restore_of_revision_zero_undoes_every_change() {
    // Input: revisions 1..=2, then a restore of 0 (the store before its
    // first change, never written). Output: revision 3 with an empty
    // document, its summary saying so.
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut store = store_with(tmp.path(), 2);
    let done = store
        .restore(0, 2, &Rules::default(), &author(RESTORE_BY, 3000))
        .expect("restores");
    assert_eq!(done.meta.revision, 3);
    assert_eq!(
        done.meta.summary,
        "restored revision 0 (as deployed, nothing stored on the appliance)"
    );
    assert_eq!(store.current().document, Document::default());
}

#[test]
fn restore_of_a_revision_that_no_longer_validates_is_refused() {
    // Input: revision 1 sets static networking; today's rules give no
    // address anywhere. Output: the restore is refused with the key, and
    // revision 2 stays in force.
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut store = open(tmp.path());
    let with_ip = Rules {
        lower: vec![settings::Layer::new(
            settings::Source::OvfEnv,
            vec![("network.ipv4".into(), "10.0.0.5/24".into())],
        )],
        lbd_base: Vec::new(),
    };
    let d = validate(doc(&[("network.mode", "static")]), &with_ip).expect("valid");
    store.commit(0, d, &author("api", 1), "static").expect("1");
    store
        .commit(1, valid(doc(&[])), &author("api", 2), "dhcp")
        .expect("2");
    let err = store
        .restore(1, 2, &Rules::default(), &author(RESTORE_BY, 3))
        .expect_err("refused");
    assert!(err.to_string().contains("settings.network.ipv4"), "{err}");
    assert_eq!(store.current().meta.revision, 2);
}

#[test]
fn history_is_pruned_to_the_last_hundred() {
    // Input: HISTORY_KEPT + 5 commits. Output: history/ holds exactly the
    // HISTORY_KEPT revisions before the current one; the oldest five are
    // gone and asking for one says so.
    let tmp = tempfile::tempdir().expect("tempdir");
    let n = u64::try_from(HISTORY_KEPT).expect("small") + 6;
    let store = store_with(tmp.path(), n);
    let files = std::fs::read_dir(tmp.path().join(HISTORY_DIR))
        .expect("history dir")
        .count();
    assert_eq!(files, HISTORY_KEPT);
    let history = store.history().expect("history");
    assert_eq!(history.len(), HISTORY_KEPT + 1);
    assert_eq!(history[0].revision, n);
    assert_eq!(history[HISTORY_KEPT].revision, 6);
    assert!(matches!(
        store.get(5),
        Err(StoreError::NoSuchRevision { revision: 5 })
    ));
}

/// Commits revision 3 on top of 1..=2 with the power cut after `steps`
/// steps; returns whether the commit returned Ok, and leaves the disk as
/// the cut left it (losing what was not durable if `lose_unsynced`).
fn commit_with_power_cut(dir: &Path, steps: usize, lose_unsynced: bool) -> bool {
    drop(store_with(dir, 2));
    let opened = Store::open_with(CrashFs::new(usize::MAX), dir).expect("opens");
    let mut store = opened.store;
    store.fs_mut().allow(steps);
    let d = valid(doc(&[("hostname", "lb3")]));
    let ok = store
        .commit(2, d, &author("api", 1003), "hostname lb3")
        .is_ok();
    store.into_fs().power_cut(lose_unsynced);
    ok
}

#[test]
fn a_power_cut_after_any_step_leaves_the_old_or_the_new_revision() {
    // Input: a commit of revision 3 on a store at 2, the power cut after
    // step 0, 1, ... of it, with what was not yet durable kept or lost.
    // Output: every time, reopening reports no problem and has revision 2
    // or 3 in force with its own document; revision 3 whenever the commit
    // had returned Ok; history/ keeps revision 1 (and 2 under 3); a next
    // commit on the revision in force works.
    let count = {
        let tmp = tempfile::tempdir().expect("tempdir");
        drop(store_with(tmp.path(), 2));
        let opened = Store::open_with(CrashFs::new(usize::MAX), tmp.path()).expect("opens");
        let mut store = opened.store;
        let before = store.fs_mut().steps_taken;
        let d = valid(doc(&[("hostname", "lb3")]));
        store
            .commit(2, d, &author("api", 1003), "x")
            .expect("commits");
        store.into_fs().steps_taken - before
    };
    assert!(count >= 8, "two atomic writes of four steps: {count}");
    let mut seen_old = false;
    let mut seen_new = false;
    for steps in 0..=count {
        for lose in [false, true] {
            let tmp = tempfile::tempdir().expect("tempdir");
            let ok = commit_with_power_cut(tmp.path(), steps, lose);
            let mut store = open(tmp.path());
            let current = store.current().clone();
            match current.meta.revision {
                2 => {
                    assert!(!ok, "step {steps}: Ok but revision 2 after the cut");
                    assert_eq!(current.document, doc(&[("hostname", "lb2")]));
                    seen_old = true;
                }
                3 => {
                    assert_eq!(current.document, doc(&[("hostname", "lb3")]));
                    assert_eq!(current.meta.parent, 2);
                    assert!(store.get(2).is_ok(), "step {steps}: revision 2 lost");
                    seen_new = true;
                }
                other => panic!("step {steps} lose {lose}: revision {other} in force"),
            }
            assert!(store.get(1).is_ok(), "step {steps}: revision 1 lost");
            let base = current.meta.revision;
            store
                .commit(base, valid(doc(&[])), &author("api", 2000), "after")
                .expect("a commit after the cut");
        }
    }
    assert!(seen_old && seen_new, "the cuts covered both outcomes");
}

#[test]
fn damaged_current_falls_back_to_the_newest_good_history_revision() {
    // Input: revisions 1..=3, then current.toml overwritten with garbage
    // and history/2.toml truncated. Output: opening reports both, keeps
    // the garbage as current.toml.damaged, puts revision 1 in force (the
    // newest that reads) and rewrites current.toml with it; revision 1 and
    // the damaged revision 2's file are still on disk; a next boot is clean.
    let tmp = tempfile::tempdir().expect("tempdir");
    drop(store_with(tmp.path(), 3));
    let current = tmp.path().join(CURRENT_FILE);
    std::fs::write(&current, "revision = \"three\"\n[[[").expect("damage");
    let two = tmp.path().join(HISTORY_DIR).join("2.toml");
    let text = std::fs::read(&two).expect("read");
    std::fs::write(&two, &text[..text.len() / 3]).expect("truncate");

    let opened = Store::open(tmp.path()).expect("opens anyway");
    let problems: Vec<String> = opened.problems.iter().map(ToString::to_string).collect();
    assert_eq!(problems.len(), 2, "{problems:#?}");
    assert!(
        problems[0].contains("2.toml is damaged and skipped"),
        "{problems:#?}"
    );
    assert!(
        problems[1].contains("current.toml is damaged") && problems[1].contains("revision 1"),
        "{problems:#?}"
    );
    assert_eq!(opened.store.current().meta.revision, 1);
    assert_eq!(
        std::fs::read_to_string(tmp.path().join(DAMAGED_FILE)).expect("kept"),
        "revision = \"three\"\n[[["
    );
    assert!(two.exists());
    drop(opened);
    let store = open(tmp.path());
    assert_eq!(store.current().document, doc(&[("hostname", "lb1")]));
}

#[test]
fn missing_current_with_history_falls_back_and_says_so() {
    // Input: revisions 1..=2, then current.toml deleted. Output: revision
    // 1 in force, one problem saying current.toml is missing.
    let tmp = tempfile::tempdir().expect("tempdir");
    drop(store_with(tmp.path(), 2));
    std::fs::remove_file(tmp.path().join(CURRENT_FILE)).expect("rm");
    let opened = Store::open(tmp.path()).expect("opens");
    assert_eq!(opened.problems.len(), 1);
    assert!(matches!(
        opened.problems[0],
        StoreError::MissingCurrent { fallback: 1, .. }
    ));
    assert_eq!(opened.store.current().meta.revision, 1);
}

#[test]
fn seen_file_round_trips_and_a_damaged_one_counts_as_none() {
    // Input: no seen file, then one written, then garbage. Output: None
    // without a problem, the written values, then None with a problem.
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut store = open(tmp.path());
    assert!(matches!(store.seen(), (None, None)));
    let seen = Seen {
        values: [("network.ipv4".to_owned(), "10.0.0.6/24".to_owned())].into(),
    };
    store.write_seen(&seen).expect("writes");
    assert_eq!(store.seen().0, Some(seen));
    std::fs::write(tmp.path().join(SEEN_FILE), "values = 3").expect("damage");
    let (none, problem) = store.seen();
    assert_eq!(none, None);
    assert!(matches!(problem, Some(StoreError::DamagedSeen { .. })));
}

#[test]
fn a_power_cut_while_recording_vsphere_leaves_the_old_or_the_new_seen_file() {
    // Input: a seen file with 10.0.0.6/24, replaced by one with
    // 10.0.0.7/24 with the power cut after each of the four steps, with
    // unsynced data kept or lost. Output: reopening reads one of the two,
    // never a damaged file; the new one whenever the write returned Ok.
    let old = Seen {
        values: [("network.ipv4".to_owned(), "10.0.0.6/24".to_owned())].into(),
    };
    let new = Seen {
        values: [("network.ipv4".to_owned(), "10.0.0.7/24".to_owned())].into(),
    };
    for steps in 0..=4 {
        for lose in [false, true] {
            let tmp = tempfile::tempdir().expect("tempdir");
            open(tmp.path()).write_seen(&old).expect("first seen");
            let mut store = Store::open_with(CrashFs::new(usize::MAX), tmp.path())
                .expect("opens")
                .store;
            store.fs_mut().allow(steps);
            let ok = store.write_seen(&new).is_ok();
            store.into_fs().power_cut(lose);
            let (seen, problem) = open(tmp.path()).seen();
            assert!(problem.is_none(), "step {steps} lose {lose}: {problem:?}");
            let seen = seen.expect("a seen file");
            assert!(seen == old || seen == new, "step {steps}: {seen:?}");
            if ok {
                assert_eq!(seen, new, "step {steps}: Ok but the old file");
            }
        }
    }
}

#[test]
fn leftover_temp_files_are_removed_at_open() {
    // Input: a store at revision 1 with current.toml.tmp and
    // history/1.toml.tmp left by a cut write. Output: both are gone after
    // opening, revision 1 is in force, no problem reported.
    let tmp = tempfile::tempdir().expect("tempdir");
    drop(store_with(tmp.path(), 1));
    let temps = [
        tmp.path().join("current.toml.tmp"),
        tmp.path().join(HISTORY_DIR).join("1.toml.tmp"),
    ];
    for t in &temps {
        std::fs::write(t, "half a revis").expect("write");
    }
    let store = open(tmp.path());
    assert_eq!(store.current().meta.revision, 1);
    assert!(temps.iter().all(|t| !t.exists()));
}

#[test]
fn history_leaves_out_a_damaged_file_and_keeps_the_rest() {
    // Input: revisions 1..=3, history/1.toml overwritten with garbage.
    // Output: history lists 3 and 2; get(1) says the file is damaged.
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = store_with(tmp.path(), 3);
    std::fs::write(tmp.path().join(HISTORY_DIR).join("1.toml"), "garbage").expect("damage");
    let revisions: Vec<u64> = store
        .history()
        .expect("history")
        .iter()
        .map(|m| m.revision)
        .collect();
    assert_eq!(revisions, [3, 2]);
    assert!(matches!(
        store.get(1),
        Err(StoreError::DamagedHistory { .. })
    ));
}
