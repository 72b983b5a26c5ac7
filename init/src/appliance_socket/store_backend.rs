//! What the appliance socket serves in the appliance: the store, checked
//! against everything below it, and a way to make a revision take effect.
//!
//! A change is validated first (a refused change changes nothing), then
//! committed on the revision the client based it on (a stale base is
//! refused), then applied. When the appliance cannot apply a revision
//! (lbd refuses its services), the previous document is committed again
//! as a new revision ("rolled back ...") and applied, and the client gets
//! the error: nothing a user types leaves the appliance without its last
//! working load balancer.

use appliance_api::{
    Change, ConfigView, DiffLine, Payload, Problem, Reply, Request, RevisionMeta, ValueView,
};
use appliance_store::{validate, Author, Diff, Document, Meta, Rules, Store};
use settings::{properties, Layer, MASK};

use super::Desired;

/// `changed_by` of a change that came through the socket.
pub const CHANGED_BY_API: &str = "api";
/// `changed_by` of the revision that undoes one the appliance could not apply.
pub const CHANGED_BY_ROLLBACK: &str = "rollback";

/// What a revision's effect was.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Effect {
    /// What took effect now.
    pub applied: Vec<String>,
    /// What waits for the next boot.
    pub pending: Vec<String>,
}

/// Makes documents take effect, and powers the appliance off or reboots
/// it. The appliance's implementation rewrites lbd's files and reloads it.
pub trait Apply: Send {
    /// Moves the running appliance from `before` to `after`; an error is
    /// the reason it could not (lbd's own message).
    fn apply(&mut self, before: &Document, after: &Document) -> Result<Effect, String>;
    /// lbd's hash of a password typed in clear: the store keeps no clear
    /// text password.
    fn hash_password(&mut self, password: &str) -> Result<String, String>;
    fn power(&mut self, action: Power);
    /// The newest `lines` lines of the appliance log with `filter` in
    /// them, oldest first (the web console's log view).
    fn log_tail(&mut self, lines: usize, filter: &str) -> Result<Vec<String>, String>;
}

/// Lines a log request gets when it names no number.
pub const DEFAULT_LOG_LINES: usize = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Power {
    Reboot,
    Off,
}

pub struct StoreBackend {
    store: Store,
    /// Every settings layer below the store's and the kernel command line
    /// above it, as read at boot.
    layers: Vec<Layer>,
    rules: Rules,
    node: String,
    apply: Box<dyn Apply>,
    /// Seconds since the epoch (passed in: tests use a fixed clock).
    clock: fn() -> u64,
}

impl StoreBackend {
    pub fn new(
        store: Store,
        layers: Vec<Layer>,
        rules: Rules,
        node: String,
        apply: Box<dyn Apply>,
        clock: fn() -> u64,
    ) -> Self {
        Self {
            store,
            layers,
            rules,
            node,
            apply,
            clock,
        }
    }

    fn author(&self, changed_by: &str) -> Author {
        Author {
            node: self.node.clone(),
            changed_by: changed_by.to_owned(),
            changed_at: (self.clock)(),
        }
    }

    fn view(&self) -> ConfigView {
        let current = self.store.current();
        let mut layers = self.layers.clone();
        layers.push(current.document.settings_layer());
        let merged = settings::merge(layers);
        let values = properties()
            .iter()
            .map(|p| {
                let origin = merged.origins.get(p.key);
                let raw = origin.map(|o| o.raw.trim()).unwrap_or_default();
                // lbd.config may carry TLS keys and hashes: never shown, as on
                // the consoles.
                let value = match (raw.is_empty(), p.masked()) {
                    (true, _) => String::new(),
                    (false, true) => MASK.to_owned(),
                    (false, false) => raw.to_owned(),
                };
                ValueView {
                    key: p.key.to_owned(),
                    value,
                    source: origin
                        .map(|o| o.source.to_string())
                        .unwrap_or_else(|| "default".into()),
                    label: p.label.to_owned(),
                    category: p.category.to_owned(),
                    description: p.description.to_owned(),
                    live: crate::live_apply::live(p.key),
                    secret: p.masked(),
                }
            })
            .collect();
        ConfigView {
            revision: current.meta.revision,
            values,
            services: current.document.services.clone(),
        }
    }

    /// The current document with `change` made to it; passwords given in
    /// clear are stored as their hash.
    fn changed(&mut self, change: Change) -> Result<Document, Box<Reply>> {
        let mut doc = self.store.current().document.clone();
        for key in &change.unset {
            doc.settings.remove(key);
        }
        for (key, value) in change.set {
            if settings::find(&key).is_none() && !key.starts_with("sysctl.") {
                return Err(Box::new(Reply::Refused {
                    error: format!("unknown setting {key:?}"),
                    problems: vec![Problem {
                        key,
                        value,
                        message: "not a key of the settings table (lbd ctl config get lists them)"
                            .into(),
                    }],
                }));
            }
            let value = self.stored_form(&key, value)?;
            doc.settings.insert(key, value);
        }
        if let Some(services) = change.services {
            doc.services = services;
        }
        Ok(doc)
    }

    /// A login password (`admin.password`, `admin.readonly_password`)
    /// typed in clear becomes lbd's hash of it (checked first, so a
    /// refused password is not hashed). Other secrets stay as given: both
    /// nodes key their VRRP adverts with the VRRP key, lbd serves TLS with
    /// `console.key`.
    fn stored_form(&mut self, key: &str, value: String) -> Result<String, Box<Reply>> {
        let hashed = settings::find(key).is_some_and(|p| p.hashed);
        if !hashed || value.trim().is_empty() || settings::value::is_password_hash(&value) {
            return Ok(value);
        }
        let mut probe = self.layers.clone();
        probe.push(settings::Layer::new(
            settings::Source::Appliance,
            [(key.to_owned(), value.clone())].into_iter().collect(),
        ));
        if let Some(e) = settings::merge(probe)
            .errors
            .into_iter()
            .find(|e| e.key == key)
        {
            return Err(Box::new(Reply::Refused {
                error: format!("{key}: {}", e.message),
                problems: vec![Problem {
                    key: key.to_owned(),
                    value: MASK.to_owned(),
                    message: e.message,
                }],
            }));
        }
        self.apply.hash_password(&value).map_err(|e| {
            Box::new(Reply::refused(format!(
                "{key} could not be hashed, nothing was changed: {e}"
            )))
        })
    }

    /// The web console's pair as the document would have it: checked with
    /// the TLS stack here, which the store's rules do not link.
    fn check_console(&self, doc: &Document) -> Result<(), Box<Reply>> {
        let mut layers = self.layers.clone();
        layers.push(doc.settings_layer());
        let merged = settings::merge(layers);
        crate::console_tls::check_settings(&merged.settings).map_err(|message| {
            Box::new(Reply::Refused {
                error: format!("the change is refused, nothing was changed: {message}"),
                problems: vec![Problem {
                    key: "console.key".into(),
                    value: MASK.into(),
                    message,
                }],
            })
        })
    }

    /// Validates, commits on `base`, applies; rolls back when applying fails.
    fn commit(&mut self, base: u64, doc: Document, summary: Option<String>, by: &str) -> Reply {
        let before = self.store.current().document.clone();
        let valid = match validate(doc, &self.rules) {
            Ok(v) => v,
            Err(problems) => return refused_problems(problems),
        };
        if let Err(refused) = self.check_console(valid.document()) {
            return *refused;
        }
        let summary =
            summary.unwrap_or_else(|| appliance_store::diff(&before, valid.document()).summary());
        let after = valid.document().clone();
        let committed = match self.store.commit(base, valid, &self.author(by), &summary) {
            Ok(c) => c,
            Err(e) => return Reply::refused(e.to_string()),
        };
        self.finish(committed.meta, &before, &after)
    }

    /// Applies a committed revision, or undoes it.
    fn finish(&mut self, meta: Meta, before: &Document, after: &Document) -> Reply {
        match self.apply.apply(before, after) {
            Ok(effect) => Reply::Ok {
                result: Payload::Committed {
                    revision: meta_view(&meta),
                    applied: effect.applied,
                    pending: effect.pending,
                },
            },
            Err(why) => {
                let undo = self.rollback(&meta, before, &why);
                Reply::refused(format!(
                    "revision {} could not be applied: {why}; {undo}",
                    meta.revision
                ))
            }
        }
    }

    fn rollback(&mut self, failed: &Meta, before: &Document, why: &str) -> String {
        let summary = format!("rolled back revision {}: {why}", failed.revision);
        let valid = match validate(before.clone(), &self.rules) {
            Ok(v) => v,
            Err(p) => return format!("the previous document no longer validates ({p}): revision {} stays stored, not applied", failed.revision),
        };
        let author = self.author(CHANGED_BY_ROLLBACK);
        match self.store.commit(failed.revision, valid, &author, &summary) {
            Ok(c) => {
                let after = self.store.current().document.clone();
                let failed_doc = self
                    .store
                    .get(failed.revision)
                    .map(|r| r.document)
                    .unwrap_or_default();
                match self.apply.apply(&failed_doc, &after) {
                    Ok(_) => format!(
                        "rolled back to the previous document as revision {}",
                        c.meta.revision
                    ),
                    Err(e) => format!(
                        "rolled back as revision {}, but applying it failed too: {e}",
                        c.meta.revision
                    ),
                }
            }
            Err(e) => format!("rolling back failed: {e}"),
        }
    }
}

impl Desired for StoreBackend {
    fn handle(&mut self, request: Request) -> Reply {
        match request {
            Request::Get => ok(Payload::Config(self.view())),
            Request::Validate { change } => match self.changed(change) {
                Err(reply) => *reply,
                Ok(doc) => match validate(doc, &self.rules) {
                    Ok(_) => ok(Payload::Valid),
                    Err(problems) => refused_problems(problems),
                },
            },
            Request::Commit {
                base,
                change,
                summary,
                changed_by,
            } => match self.changed(change) {
                Err(reply) => *reply,
                Ok(doc) => {
                    let by = author_name(changed_by.as_deref(), CHANGED_BY_API);
                    self.commit(base, doc, summary, &by)
                }
            },
            Request::History { limit } => match self.store.history() {
                Ok(metas) => ok(Payload::History(
                    metas
                        .iter()
                        .take(limit.unwrap_or(usize::MAX))
                        .map(meta_view)
                        .collect(),
                )),
                Err(e) => Reply::refused(e.to_string()),
            },
            Request::Diff { from, to } => match self.store.diff(from, to) {
                Ok(diff) => ok(Payload::Diff(diff_lines(&diff))),
                Err(e) => Reply::refused(e.to_string()),
            },
            Request::Restore {
                revision,
                base,
                changed_by,
            } => {
                let before = self.store.current().document.clone();
                let by = author_name(changed_by.as_deref(), appliance_store::RESTORE_BY);
                let author = self.author(&by);
                match self.store.restore(revision, base, &self.rules, &author) {
                    Ok(c) => {
                        let after = self.store.current().document.clone();
                        self.finish(c.meta, &before, &after)
                    }
                    Err(e) => Reply::refused(e.to_string()),
                }
            }
            Request::Export { include_vrrp_key } => ok(Payload::Exported {
                document: export(&self.store.current().document, include_vrrp_key),
            }),
            Request::Import {
                base,
                document,
                changed_by,
            } => match import(&document) {
                Ok(doc) => self.commit(
                    base,
                    doc,
                    Some("imported a document".into()),
                    &author_name(changed_by.as_deref(), CHANGED_BY_API),
                ),
                Err(e) => Reply::refused(e),
            },
            Request::Logs { lines, filter } => {
                let lines = lines.unwrap_or(DEFAULT_LOG_LINES);
                match self
                    .apply
                    .log_tail(lines, filter.as_deref().unwrap_or_default())
                {
                    Ok(lines) => ok(Payload::Logs(lines)),
                    Err(e) => Reply::refused(e),
                }
            }
            Request::Reboot => {
                self.apply.power(Power::Reboot);
                ok(Payload::Accepted)
            }
            Request::PowerOff => {
                self.apply.power(Power::Off);
                ok(Payload::Accepted)
            }
        }
    }
}

/// Longest `changed_by` kept in the history.
const MAX_AUTHOR: usize = 64;

/// The history's `changed_by` for a client's claim: `fallback` when it
/// gives none (or only blanks); control characters become spaces and the
/// name is cut to [`MAX_AUTHOR`] characters, so a client cannot forge
/// lines on the console or bloat the store.
fn author_name(claimed: Option<&str>, fallback: &str) -> String {
    let cleaned: String = claimed
        .unwrap_or_default()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_AUTHOR)
        .collect();
    let cleaned = cleaned.trim();
    if cleaned.is_empty() {
        fallback.to_owned()
    } else {
        cleaned.to_owned()
    }
}

fn ok(result: Payload) -> Reply {
    Reply::Ok { result }
}

fn refused_problems(problems: appliance_store::Problems) -> Reply {
    Reply::Refused {
        error: format!("the change is refused, nothing was changed: {problems}"),
        problems: problems
            .0
            .into_iter()
            .map(|p| Problem {
                key: p.key,
                value: p.value,
                message: p.message,
            })
            .collect(),
    }
}

fn meta_view(m: &Meta) -> RevisionMeta {
    RevisionMeta {
        revision: m.revision,
        parent: (m.parent > 0).then_some(m.parent),
        node: m.node.clone(),
        changed_at: m.changed_at,
        changed_by: m.changed_by.clone(),
        summary: m.summary.clone(),
    }
}

fn diff_lines(diff: &Diff) -> Vec<DiffLine> {
    use appliance_store::Change as C;
    let setting = |c: &C<String>| match c {
        C::Added { key, new } => (key.clone(), None, Some(new.clone())),
        C::Changed { key, old, new } => (key.clone(), Some(old.clone()), Some(new.clone())),
        C::Removed { key, old } => (key.clone(), Some(old.clone()), None),
    };
    let service = |c: &C<toml::Value>| match c {
        C::Added { key, new } => (format!("services.{key}"), None, Some(new.to_string())),
        C::Changed { key, old, new } => (
            format!("services.{key}"),
            Some(old.to_string()),
            Some(new.to_string()),
        ),
        C::Removed { key, old } => (format!("services.{key}"), Some(old.to_string()), None),
    };
    diff.settings
        .iter()
        .map(setting)
        .chain(diff.services.iter().map(service))
        .map(|(key, before, after)| DiffLine { key, before, after })
        .collect()
}

/// The keys whose value is a secret that an export leaves out unless asked.
const VRRP_KEY: &str = "vrrp.auth";

/// The document as one TOML file. Passwords leave as their hashes, never
/// in clear text (a stored clear one is left out with a comment saying
/// so); the VRRP key only when asked.
fn export(doc: &Document, include_vrrp_key: bool) -> String {
    let mut out = doc.clone();
    let mut left_out = Vec::new();
    for p in properties().iter().filter(|p| p.password) {
        if p.key == VRRP_KEY && include_vrrp_key {
            continue;
        }
        let hashed = out
            .settings
            .get(p.key)
            .is_some_and(|v| settings::value::is_password_hash(v));
        if p.key != VRRP_KEY && hashed {
            continue;
        }
        if out.settings.remove(p.key).is_some() {
            left_out.push(p.key);
        }
    }
    let mut text = String::from("# The appliance's desired state (lbd ctl config export).\n");
    for key in left_out {
        text.push_str(&format!(
            "# {key} is not exported: set it again after importing{}\n",
            if key == VRRP_KEY {
                " (or export with --include-vrrp-key)"
            } else {
                ""
            }
        ));
    }
    text.push_str(&toml::to_string(&out).unwrap_or_default());
    text
}

fn import(text: &str) -> Result<Document, String> {
    toml::from_str(text).map_err(|e| {
        format!(
            "the document is not an export of lbd ctl config export: {}",
            e.to_string().trim_end()
        )
    })
}

#[cfg(test)]
#[path = "store_backend_tests.rs"]
mod tests;
