use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use appliance_api::{Change, Payload, Reply, Request};
use appliance_store::{Rules, Store};
use settings::{Layer, Source};

use super::*;

/// Records what it was asked to apply; refuses documents whose services
/// have a frontend named "refused" (as lbd refuses a bind it cannot make).
#[derive(Clone, Default)]
struct Recorder {
    applied: Arc<Mutex<Vec<Document>>>,
    power: Arc<Mutex<Vec<Power>>>,
}

impl Apply for Recorder {
    fn apply(&mut self, _before: &Document, after: &Document) -> Result<Effect, String> {
        self.applied.lock().unwrap().push(after.clone());
        let refused = after
            .services
            .get("frontends")
            .and_then(|f| f.get("refused"))
            .is_some();
        if refused {
            return Err("binding 192.0.2.1:443: Cannot assign requested address".into());
        }
        Ok(Effect {
            applied: vec!["services reloaded".into()],
            pending: vec![],
        })
    }

    /// A stand-in for lbd's argon2 (a PHC-shaped string of the reversed
    /// password): the tests check where hashes go, not argon2.
    fn hash_password(&mut self, password: &str) -> Result<String, String> {
        Ok(format!(
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA${}",
            password.chars().rev().collect::<String>()
        ))
    }

    fn power(&mut self, action: Power) {
        self.power.lock().unwrap().push(action);
    }

    /// Lines "line 1" .. "line 5", filtered and cut as the log would be.
    fn log_tail(&mut self, lines: usize, filter: &str) -> Result<Vec<String>, String> {
        let all: Vec<String> = (1..=5)
            .map(|n| format!("line {n}"))
            .filter(|l| l.contains(filter))
            .collect();
        Ok(all[all.len().saturating_sub(lines)..].to_vec())
    }
}

const BASE: &str = "[global]\nmaxconn = 100\n[stats]\nbind = \"127.0.0.1:8404\"\n";

fn backend(dir: &std::path::Path, rec: &Recorder) -> StoreBackend {
    let store = Store::open(dir).unwrap().store;
    let vsphere = Layer::new(
        Source::OvfEnv,
        vec![("hostname".into(), "lb-vsphere".into())],
    );
    let rules = Rules {
        lower: vec![vsphere.clone()],
        lbd_base: vec![(PathBuf::from("lbd.toml"), BASE.into())],
    };
    StoreBackend::new(
        store,
        vec![vsphere],
        rules,
        "lb1".into(),
        Box::new(rec.clone()),
        || 1_764_700_000,
    )
}

fn set(pairs: &[(&str, &str)]) -> Change {
    Change {
        set: pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect(),
        ..Change::default()
    }
}

fn revision(b: &mut StoreBackend) -> u64 {
    match b.handle(Request::Get) {
        Reply::Ok {
            result: Payload::Config(v),
        } => v.revision,
        other => panic!("{other:?}"),
    }
}

fn value(b: &mut StoreBackend, key: &str) -> (String, String) {
    let Reply::Ok {
        result: Payload::Config(view),
    } = b.handle(Request::Get)
    else {
        panic!("get failed")
    };
    let v = view.values.into_iter().find(|v| v.key == key).unwrap();
    (v.value, v.source)
}

/// Input: a commit of hostname on the current revision.
/// Output: revision 1, applied, the value shown with source "appliance"
/// over vSphere's; the history lists it with a summary in words.
#[test]
fn a_commit_is_stored_applied_and_shown_with_its_source() {
    let dir = tempfile::tempdir().unwrap();
    let rec = Recorder::default();
    let mut b = backend(dir.path(), &rec);
    assert_eq!(
        value(&mut b, "hostname"),
        ("lb-vsphere".into(), "ovf-env".into())
    );
    let reply = b.handle(Request::Commit {
        base: 0,
        change: set(&[("hostname", "lb-store")]),
        summary: None,
        changed_by: None,
    });
    let Reply::Ok {
        result: Payload::Committed {
            revision, applied, ..
        },
    } = reply
    else {
        panic!("{reply:?}")
    };
    assert_eq!(revision.revision, 1);
    assert_eq!(applied, ["services reloaded"]);
    assert_eq!(
        value(&mut b, "hostname"),
        ("lb-store".into(), "appliance".into())
    );
    let Reply::Ok {
        result: Payload::History(h),
    } = b.handle(Request::History { limit: None })
    else {
        panic!()
    };
    assert_eq!(h[0].changed_by, CHANGED_BY_API);
    assert!(h[0].summary.contains("hostname"), "{:?}", h[0]);
}

/// Input: two editors read revision 0; both commit on it.
/// Output: the second is refused naming both revisions; nothing changed.
#[test]
fn a_stale_base_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = backend(dir.path(), &Recorder::default());
    let first = b.handle(Request::Commit {
        base: 0,
        change: set(&[("hostname", "lb-a")]),
        summary: None,
        changed_by: None,
    });
    assert!(matches!(first, Reply::Ok { .. }), "{first:?}");
    let Reply::Refused { error, .. } = b.handle(Request::Commit {
        base: 0,
        change: set(&[("hostname", "lb-b")]),
        summary: None,
        changed_by: None,
    }) else {
        panic!("stale base accepted")
    };
    assert!(
        error.contains("based on revision 0") && error.contains("at 1"),
        "{error}"
    );
    assert_eq!(value(&mut b, "hostname").0, "lb-a");
}

/// Input: a bad address and an unknown key. Output: refused with the
/// field's problem; the store stays at revision 0 and nothing is applied.
#[test]
fn bad_values_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let rec = Recorder::default();
    let mut b = backend(dir.path(), &rec);
    let Reply::Refused { problems, .. } = b.handle(Request::Commit {
        base: 0,
        change: set(&[("network.dns", "10.0.0.300")]),
        summary: None,
        changed_by: None,
    }) else {
        panic!("bad address accepted")
    };
    assert_eq!(problems[0].key, "settings.network.dns");
    let Reply::Refused { error, .. } = b.handle(Request::Validate {
        change: set(&[("netwrk.dns", "10.0.0.3")]),
    }) else {
        panic!("unknown key accepted")
    };
    assert!(error.contains("netwrk.dns"), "{error}");
    assert_eq!(revision(&mut b), 0);
    assert!(rec.applied.lock().unwrap().is_empty());
}

/// Input: services that the appliance cannot apply (lbd refuses them).
/// Output: refused with lbd's reason; a rollback revision restores the
/// previous document, and it is applied again.
#[test]
fn a_revision_that_cannot_be_applied_is_rolled_back() {
    let dir = tempfile::tempdir().unwrap();
    let rec = Recorder::default();
    let mut b = backend(dir.path(), &rec);
    let services: toml::Table = toml::from_str(
        "[frontends.refused]\nbind = [\"192.0.2.1:443\"]\ndefault_backend = \"web\"\n[backends.web.servers.a]\naddress = \"192.0.2.10:443\"\n",
    )
    .unwrap();
    let Reply::Refused { error, .. } = b.handle(Request::Commit {
        base: 0,
        change: Change {
            services: Some(services),
            ..Change::default()
        },
        summary: None,
        changed_by: None,
    }) else {
        panic!("an unappliable revision was accepted")
    };
    assert!(error.contains("Cannot assign requested address"), "{error}");
    assert!(error.contains("rolled back"), "{error}");
    assert_eq!(revision(&mut b), 2);
    let Reply::Ok {
        result: Payload::History(h),
    } = b.handle(Request::History { limit: None })
    else {
        panic!()
    };
    assert_eq!(h[0].changed_by, CHANGED_BY_ROLLBACK);
    let applied = rec.applied.lock().unwrap();
    assert_eq!(applied.len(), 2);
    assert!(applied[1].services.is_empty());
}

/// Input: two commits, then a restore of the first.
/// Output: a third revision equal to the first; diff names the key.
#[test]
fn history_diff_and_restore() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = backend(dir.path(), &Recorder::default());
    for (base, name) in [(0, "lb-1"), (1, "lb-2")] {
        let r = b.handle(Request::Commit {
            base,
            change: set(&[("hostname", name)]),
            summary: None,
            changed_by: None,
        });
        assert!(matches!(r, Reply::Ok { .. }), "{r:?}");
    }
    let Reply::Ok {
        result: Payload::Diff(lines),
    } = b.handle(Request::Diff { from: 1, to: 2 })
    else {
        panic!()
    };
    assert_eq!(lines[0].key, "hostname");
    assert_eq!(lines[0].after.as_deref(), Some("lb-2"));
    let r = b.handle(Request::Restore {
        revision: 1,
        base: 2,
        changed_by: None,
    });
    assert!(matches!(r, Reply::Ok { .. }), "{r:?}");
    assert_eq!(value(&mut b, "hostname").0, "lb-1");
    assert_eq!(revision(&mut b), 3);
}

/// Input: an admin password typed in clear and a VRRP key, committed,
/// then exported twice; the plain export imported back.
/// Output: the store holds the password's hash, never the password; the
/// exports carry the hash and the key only with the flag; the import
/// keeps the hash (it is not hashed again).
#[test]
fn exports_carry_password_hashes_and_the_vrrp_key_only_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = backend(dir.path(), &Recorder::default());
    let r = b.handle(Request::Commit {
        base: 0,
        change: set(&[
            ("admin.password", "very-secret-pw"),
            ("vrrp.auth", "0123456789abcdef-key"),
            ("hostname", "lb-x"),
        ]),
        summary: None,
        changed_by: None,
    });
    assert!(matches!(r, Reply::Ok { .. }), "{r:?}");
    let hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$wp-terces-yrev";
    let current = std::fs::read_to_string(dir.path().join("current.toml")).unwrap();
    assert!(!current.contains("very-secret-pw"), "{current}");
    assert!(current.contains(hash), "{current}");
    assert_eq!(value(&mut b, "admin.password").0, settings::MASK);
    let export = |b: &mut StoreBackend, flag| match b.handle(Request::Export {
        include_vrrp_key: flag,
    }) {
        Reply::Ok {
            result: Payload::Exported { document },
        } => document,
        other => panic!("{other:?}"),
    };
    let plain = export(&mut b, false);
    assert!(
        !plain.contains("very-secret-pw") && !plain.contains("0123456789abcdef-key"),
        "{plain}"
    );
    assert!(plain.contains(hash), "{plain}");
    let with_key = export(&mut b, true);
    assert!(with_key.contains("0123456789abcdef-key"), "{with_key}");
    assert!(!with_key.contains("very-secret-pw"), "{with_key}");
    let r = b.handle(Request::Import {
        base: 1,
        document: plain,
        changed_by: None,
    });
    assert!(matches!(r, Reply::Ok { .. }), "{r:?}");
    assert_eq!(value(&mut b, "hostname").0, "lb-x");
    let current = std::fs::read_to_string(dir.path().join("current.toml")).unwrap();
    assert!(current.contains(hash), "{current}");
}

/// Input: an admin password with a control character.
/// Output: refused with the setting's own reason, nothing hashed or stored.
#[test]
fn a_bad_password_is_refused_before_hashing() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = backend(dir.path(), &Recorder::default());
    let r = b.handle(Request::Commit {
        base: 0,
        change: set(&[("admin.password", "bad\u{7}pw")]),
        summary: None,
        changed_by: None,
    });
    let Reply::Refused { error, problems } = r else {
        panic!("{r:?}")
    };
    assert!(error.contains("control character"), "{error}");
    assert_eq!(problems[0].value, settings::MASK);
    assert_eq!(revision(&mut b), 0);
}

#[test]
fn reboot_and_power_off_are_handed_on() {
    let dir = tempfile::tempdir().unwrap();
    let rec = Recorder::default();
    let mut b = backend(dir.path(), &rec);
    assert!(matches!(b.handle(Request::PowerOff), Reply::Ok { .. }));
    assert_eq!(*rec.power.lock().unwrap(), [Power::Off]);
}

/// Input: a commit whose client names itself with a newline and 200
/// characters, one that gives no name, then a restore of the first
/// naming "admin (web console)".
/// Output: the history keeps a one-line name of at most 64 characters,
/// "api" for the nameless one, and the restore's own name.
#[test]
fn the_client_names_who_changed_it_in_one_short_line() {
    let dir = tempfile::tempdir().unwrap();
    let rec = Recorder::default();
    let mut b = backend(dir.path(), &rec);
    let claim = format!("ops\nFAKE LINE{}", "x".repeat(200));
    let r = b.handle(Request::Commit {
        base: 0,
        change: set(&[("hostname", "lb-named")]),
        summary: None,
        changed_by: Some(claim),
    });
    assert!(matches!(r, Reply::Ok { .. }), "{r:?}");
    let r = b.handle(Request::Commit {
        base: 1,
        change: set(&[("hostname", "lb-two")]),
        summary: None,
        changed_by: None,
    });
    assert!(matches!(r, Reply::Ok { .. }), "{r:?}");
    let r = b.handle(Request::Restore {
        revision: 1,
        base: 2,
        changed_by: Some("admin (web console)".into()),
    });
    let Reply::Ok {
        result: Payload::History(h),
    } = b.handle(Request::History { limit: None })
    else {
        panic!("{r:?}")
    };
    assert_eq!(h[0].changed_by, "admin (web console)", "{h:?}");
    assert_eq!(h[1].changed_by, CHANGED_BY_API, "{h:?}");
    let named = &h[2].changed_by;
    assert!(named.starts_with("ops FAKE LINE"), "{named}");
    assert!(
        !named.contains('\n') && named.chars().count() == 64,
        "{named}"
    );
}

/// Input: a log request for 2 lines, and one filtered to "3".
/// Output: the newest two lines, oldest first; the one matching line.
#[test]
fn logs_are_answered_from_the_appliance_log() {
    let dir = tempfile::tempdir().unwrap();
    let rec = Recorder::default();
    let mut b = backend(dir.path(), &rec);
    let logs = |b: &mut StoreBackend, lines, filter: Option<&str>| match b.handle(Request::Logs {
        lines,
        filter: filter.map(str::to_owned),
    }) {
        Reply::Ok {
            result: Payload::Logs(l),
        } => l,
        other => panic!("{other:?}"),
    };
    assert_eq!(logs(&mut b, Some(2), None), ["line 4", "line 5"]);
    assert_eq!(logs(&mut b, None, Some("3")), ["line 3"]);
}

/// Input: a read-only password and a console key committed in clear.
/// Output: the password is stored as lbd's hash, the key as given (lbd
/// serves TLS with it, a hash would be useless); both masked in the view.
#[test]
fn only_login_passwords_are_hashed() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = backend(dir.path(), &Recorder::default());
    let pair = rcgen::KeyPair::generate().expect("key");
    let cert = rcgen::CertificateParams::new(vec!["lb".to_string()])
        .expect("params")
        .self_signed(&pair)
        .expect("cert")
        .pem();
    let key = pair.serialize_pem();
    let r = b.handle(Request::Commit {
        base: 0,
        change: set(&[
            ("admin.readonly_password", "look-dont-touch"),
            ("console.certificate", &cert),
            ("console.key", &key),
        ]),
        summary: None,
        changed_by: None,
    });
    assert!(matches!(r, Reply::Ok { .. }), "{r:?}");
    let current = std::fs::read_to_string(dir.path().join("current.toml")).unwrap();
    assert!(!current.contains("look-dont-touch"), "{current}");
    assert!(current.contains("$argon2id$"), "{current}");
    let stored: toml::Table = toml::from_str(&current).unwrap();
    let text = toml::to_string(&stored).unwrap();
    assert!(
        text.contains("BEGIN PRIVATE KEY"),
        "the key as given: {text}"
    );
    assert_eq!(value(&mut b, "admin.readonly_password").0, settings::MASK);
    assert_eq!(value(&mut b, "console.key").0, settings::MASK);
}

/// Input: a console certificate with another pair's key, then the
/// certificate alone. Output: both refused naming the settings, nothing
/// committed; the matching pair is committed.
#[test]
fn a_console_pair_that_does_not_match_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = backend(dir.path(), &Recorder::default());
    let pair = || {
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = rcgen::CertificateParams::new(vec!["lb".to_string()])
            .expect("params")
            .self_signed(&key)
            .expect("cert");
        (cert.pem(), key.serialize_pem())
    };
    let ((cert, key), (_, other)) = (pair(), pair());
    for change in [
        vec![
            ("console.certificate", cert.as_str()),
            ("console.key", &other),
        ],
        vec![("console.certificate", cert.as_str())],
    ] {
        let r = b.handle(Request::Commit {
            base: 0,
            change: set(&change),
            summary: None,
            changed_by: None,
        });
        let Reply::Refused { error, problems } = r else {
            panic!("{r:?}")
        };
        assert!(error.contains("console.key"), "{error}");
        assert_eq!(problems[0].value, settings::MASK);
        assert_eq!(revision(&mut b), 0);
    }
    let r = b.handle(Request::Commit {
        base: 0,
        change: set(&[("console.certificate", &cert), ("console.key", &key)]),
        summary: None,
        changed_by: None,
    });
    assert!(matches!(r, Reply::Ok { .. }), "{r:?}");
}
