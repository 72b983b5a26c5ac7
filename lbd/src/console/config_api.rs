//! The console's way into the appliance store (init's appliance socket,
//! through [`crate::appliance_bridge`]): settings with their sources, a
//! change's preview (diff) and commit, history, diff, restore, export,
//! import, the appliance log, reboot and power off.
//!
//! | path                          | method | what                       |
//! |-------------------------------|--------|----------------------------|
//! | `/api/v1/config`              | GET    | values, sources, services  |
//! | `/api/v1/config`              | POST   | commit on `base`           |
//! | `/api/v1/config/preview`      | POST   | check and diff, no change  |
//! | `/api/v1/config/history`      | GET    | revisions, newest first    |
//! | `/api/v1/config/diff`         | GET    | `?from=A&to=B`             |
//! | `/api/v1/config/restore`      | POST   | an earlier revision again  |
//! | `/api/v1/config/export`       | GET    | the desired state (TOML)   |
//! | `/api/v1/config/import`       | POST   | replace it with a document |
//! | `/api/v1/logs`                | GET    | `?lines=&filter=&level=`   |
//! | `/api/v1/power`               | POST   | reboot or power off        |
//!
//! The role and CSRF rules are checked by [`super::routes`] before a
//! change gets here; init checks every value again. The socket calls run
//! on the blocking pool with a deadline, never on the proxy's threads.

use appliance_api::{Change, ConfigView, DiffLine, Payload, Problem, Request};
use hyper::header::{HeaderValue, CONTENT_DISPOSITION};
use hyper::StatusCode;
use serde::{Deserialize, Serialize};

use super::caller::{Caller, Via};
use super::respond::{json, respond, Body};
use crate::appliance_bridge::{Bridge, BridgeError};
use crate::web::form::{field, parse_form};

/// Log lines a request gets when it names no number, and at most.
const DEFAULT_LOG_LINES: usize = 200;
const MAX_LOG_LINES: usize = 2000;
/// What the diff shows instead of a secret.
const HIDDEN: &str = "(hidden)";

type Answer = hyper::Response<Body>;

/// The API's error with the values init refused, each with its fix.
#[derive(Debug, Serialize)]
struct Refusal<'a> {
    error: &'a str,
    fix: &'a str,
    #[serde(skip_serializing_if = "<[Problem]>::is_empty")]
    problems: &'a [Problem],
}

fn refuse(status: StatusCode, error: &str, fix: &str, problems: &[Problem]) -> Answer {
    json(
        status,
        &Refusal {
            error,
            fix,
            problems,
        },
    )
}

fn bad_request(error: &str, fix: &str) -> Answer {
    refuse(StatusCode::BAD_REQUEST, error, fix, &[])
}

/// A request this module cannot take, before anything is asked of init.
#[derive(Debug)]
struct Bad {
    error: String,
    fix: String,
}

impl Bad {
    fn new(error: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            error: error.into(),
            fix: fix.into(),
        }
    }

    fn answer(self) -> Answer {
        bad_request(&self.error, &self.fix)
    }
}

/// What a failed socket call means to a client of the API.
fn bridge_error(e: BridgeError) -> Answer {
    let message = e.to_string();
    match by_value_key(e) {
        BridgeError::NoStore(_) => refuse(
            StatusCode::NOT_IMPLEMENTED,
            &message,
            "on a plain Linux host the console shows status and server actions only",
            &[],
        ),
        BridgeError::Busy => refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            &message,
            "try again in a moment",
            &[],
        ),
        BridgeError::Refused { error, problems } if stale(&error) => refuse(
            StatusCode::CONFLICT,
            &error,
            "someone else changed the configuration: reload it, look at the change, and apply yours again",
            &problems,
        ),
        BridgeError::Refused { error, problems } => refuse(
            StatusCode::BAD_REQUEST,
            &error,
            "correct the values named in problems; nothing was changed",
            &problems,
        ),
        BridgeError::Failed(_) => refuse(
            StatusCode::BAD_GATEWAY,
            &message,
            "the appliance did not answer in time: look at the log, then try again",
            &[],
        ),
    }
}

/// init names a refused setting `settings.KEY`; the API's values are
/// `KEY`, so a page can put the message next to the field.
fn by_value_key(e: BridgeError) -> BridgeError {
    match e {
        BridgeError::Refused { error, problems } => BridgeError::Refused {
            error,
            problems: problems
                .into_iter()
                .map(|p| Problem {
                    key: p
                        .key
                        .strip_prefix("settings.")
                        .map_or(p.key.clone(), str::to_owned),
                    ..p
                })
                .collect(),
        },
        other => other,
    }
}

/// init's words for a change based on an older revision than the store's.
fn stale(error: &str) -> bool {
    error.contains("but the store is at")
}

/// Who the history names for a change: the user and the way in.
pub fn changed_by(caller: &Caller) -> String {
    match caller.via {
        Via::Session { .. } => format!("{} (web console)", caller.user),
        Via::Basic => format!("{} (api)", caller.user),
    }
}

/// GET requests under `/api/v1/config` and `/api/v1/logs`; `None` for
/// any other path.
pub async fn get(bridge: &Bridge, path: &str, query: Option<&str>) -> Option<Answer> {
    let query = parse_form(query.unwrap_or(""));
    let answer = match path {
        "/api/v1/config" => match bridge.ask(Request::Get).await {
            Ok(Payload::Config(view)) => json(StatusCode::OK, &view),
            other => unexpected(other),
        },
        "/api/v1/config/history" => {
            let limit = match number(&query, "limit") {
                Ok(n) => n,
                Err(bad) => return Some(bad.answer()),
            };
            match bridge.ask(Request::History { limit }).await {
                Ok(Payload::History(revisions)) => json(
                    StatusCode::OK,
                    &serde_json::json!({ "revisions": revisions }),
                ),
                other => unexpected(other),
            }
        }
        "/api/v1/config/diff" => {
            let (from, to) =
                match (number(&query, "from"), number(&query, "to")) {
                    (Ok(Some(from)), Ok(Some(to))) => (from as u64, to as u64),
                    _ => return Some(bad_request(
                        "from and to must be revision numbers",
                        "give ?from=REVISION&to=REVISION (GET /api/v1/config/history lists them)",
                    )),
                };
            match bridge.ask(Request::Diff { from, to }).await {
                Ok(Payload::Diff(diff)) => json(StatusCode::OK, &Diffed::new(diff)),
                other => unexpected(other),
            }
        }
        "/api/v1/config/export" => export(bridge, &query).await,
        "/api/v1/logs" => logs(bridge, &query).await,
        _ => return None,
    };
    Some(answer)
}

/// Changes (POST) under `/api/v1/config` and `/api/v1/power`; `None` for
/// any other path.
pub async fn post(bridge: &Bridge, caller: &Caller, path: &str, body: &[u8]) -> Option<Answer> {
    let by = changed_by(caller);
    let answer = match path {
        "/api/v1/config" => {
            commit_with(bridge, body, |b: CommitBody| Request::Commit {
                base: b.base,
                change: Change {
                    set: b.set,
                    unset: b.unset,
                    services: b.services,
                },
                summary: b.summary.filter(|s| !s.trim().is_empty()),
                changed_by: Some(by),
            })
            .await
        }
        "/api/v1/config/preview" => match parse::<ChangeBody>(body) {
            Ok(b) => preview(bridge, b.into_change()).await,
            Err(bad) => bad.answer(),
        },
        "/api/v1/config/restore" => {
            commit_with(bridge, body, |b: RestoreBody| Request::Restore {
                revision: b.revision,
                base: b.base,
                changed_by: Some(by),
            })
            .await
        }
        "/api/v1/config/import" => {
            commit_with(bridge, body, |b: ImportBody| Request::Import {
                base: b.base,
                document: b.document,
                changed_by: Some(by),
            })
            .await
        }
        "/api/v1/power" => match parse::<PowerBody>(body) {
            Ok(b) => power(bridge, caller, b.action).await,
            Err(bad) => bad.answer(),
        },
        _ => return None,
    };
    Some(answer)
}

/// A commit, restore or import: `body` read as `T`, made into the
/// request by `make`, and init's answer.
async fn commit_with<T: serde::de::DeserializeOwned>(
    bridge: &Bridge,
    body: &[u8],
    make: impl FnOnce(T) -> Request,
) -> Answer {
    match parse::<T>(body) {
        Ok(b) => committed(bridge.ask(make(b)).await),
        Err(bad) => bad.answer(),
    }
}

/// Whether `path` is one of this module's.
pub fn owns(path: &str) -> bool {
    path == "/api/v1/config"
        || path.starts_with("/api/v1/config/")
        || path == "/api/v1/logs"
        || path == "/api/v1/power"
}

/// A change: settings to set or clear, and a whole new services layer.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChangeBody {
    #[serde(default)]
    set: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    unset: Vec<String>,
    #[serde(default)]
    services: Option<toml::Table>,
}

impl ChangeBody {
    fn into_change(self) -> Change {
        Change {
            set: self.set,
            unset: self.unset,
            services: self.services,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CommitBody {
    base: u64,
    #[serde(default)]
    set: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    unset: Vec<String>,
    #[serde(default)]
    services: Option<toml::Table>,
    #[serde(default)]
    summary: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RestoreBody {
    revision: u64,
    base: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportBody {
    base: u64,
    document: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum PowerAction {
    Reboot,
    Poweroff,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PowerBody {
    action: PowerAction,
}

/// The body as `T`, or a 400 that quotes serde's reason.
fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Bad> {
    serde_json::from_slice(body).map_err(|e| {
        Bad::new(
            format!("the request body is not what this call takes: {e}"),
            "see /api/v1/openapi.json for the fields",
        )
    })
}

/// An optional number in the query.
fn number(query: &[(String, String)], name: &str) -> Result<Option<usize>, Bad> {
    match field(query, name) {
        None | Some("") => Ok(None),
        Some(text) => text.parse().map(Some).map_err(|_| {
            Bad::new(
                format!("{name} is not a number: {text:?}"),
                format!("give {name}=N, or leave it out"),
            )
        }),
    }
}

/// Any answer other than the expected payload.
fn unexpected(reply: Result<Payload, BridgeError>) -> Answer {
    match reply {
        Err(e) => bridge_error(e),
        Ok(other) => refuse(
            StatusCode::BAD_GATEWAY,
            &format!("the appliance answered {other:?} where it should not"),
            "report this as a bug, with the appliance log",
            &[],
        ),
    }
}

/// A commit, restore or import that went through: the new revision, what
/// took effect and what waits for the next boot.
fn committed(reply: Result<Payload, BridgeError>) -> Answer {
    match reply {
        Ok(Payload::Committed {
            revision,
            applied,
            pending,
        }) => {
            tracing::info!(
                revision = revision.revision,
                by = %revision.changed_by,
                summary = %revision.summary,
                "appliance configuration changed"
            );
            json(
                StatusCode::OK,
                &serde_json::json!({ "revision": revision, "applied": applied, "pending": pending }),
            )
        }
        other => unexpected(other),
    }
}

/// Diff lines, and which keys apply live.
#[derive(Debug, Serialize)]
struct Diffed {
    diff: Vec<DiffLine>,
}

impl Diffed {
    fn new(diff: Vec<DiffLine>) -> Self {
        Self { diff }
    }
}

/// What the preview says: the lines that would change and when each
/// takes effect.
#[derive(Debug, Serialize)]
struct Preview {
    base: u64,
    diff: Vec<DiffLine>,
    live: Vec<String>,
    next_boot: Vec<String>,
}

/// Checks `change` with init (nothing is stored) and shows what it would
/// change against the revision in force.
async fn preview(bridge: &Bridge, change: Change) -> Answer {
    let view = match bridge.ask(Request::Get).await {
        Ok(Payload::Config(view)) => view,
        other => return unexpected(other),
    };
    match bridge
        .ask(Request::Validate {
            change: change.clone(),
        })
        .await
    {
        Ok(Payload::Valid) => {}
        other => return unexpected(other),
    }
    json(StatusCode::OK, &preview_of(&view, &change))
}

/// The diff of `change` on `view` (pure: the tests call it).
fn preview_of(view: &ConfigView, change: &Change) -> Preview {
    let mut diff = Vec::new();
    let (mut live, mut next_boot) = (Vec::new(), Vec::new());
    let mut when = |key: &str| {
        let is_live = view
            .values
            .iter()
            .find(|v| v.key == key)
            .map_or(key.starts_with("sysctl."), |v| v.live);
        if is_live {
            live.push(key.to_owned());
        } else {
            next_boot.push(key.to_owned());
        }
    };
    for (key, after) in &change.set {
        let current = view.values.iter().find(|v| &v.key == key);
        let secret = current.is_some_and(|v| v.secret);
        let before = current.map(|v| v.value.clone()).filter(|v| !v.is_empty());
        if !secret && before.as_deref() == Some(after.as_str()) {
            continue;
        }
        let shown = |v: String| if secret { HIDDEN.to_owned() } else { v };
        diff.push(DiffLine {
            key: key.clone(),
            before: before.map(shown),
            after: Some(shown(after.clone())),
        });
        when(key);
    }
    for key in &change.unset {
        let current = view.values.iter().find(|v| &v.key == key);
        if current.is_some_and(|v| v.source != "appliance") {
            continue;
        }
        let secret = current.is_some_and(|v| v.secret);
        diff.push(DiffLine {
            key: key.clone(),
            before: current.map(|v| v.value.clone()).map(|v| {
                if secret {
                    HIDDEN.to_owned()
                } else {
                    v
                }
            }),
            after: None,
        });
        when(key);
    }
    if let Some(services) = &change.services {
        let (before, after) = (flatten(&view.services), flatten(services));
        let keys: std::collections::BTreeSet<&String> = before.keys().chain(after.keys()).collect();
        for key in keys {
            let (b, a) = (before.get(key), after.get(key));
            if b != a {
                diff.push(DiffLine {
                    key: key.clone(),
                    before: b.cloned(),
                    after: a.cloned(),
                });
            }
        }
        if diff.iter().any(|d| d.key.starts_with("services.")) {
            live.push("services".into());
        }
    }
    Preview {
        base: view.revision,
        diff,
        live,
        next_boot,
    }
}

/// `services.frontends.web.bind = ["10.0.0.10:443"]`-style lines, one
/// per leaf (arrays of scalars stay one line); private keys hidden.
fn flatten(table: &toml::Table) -> std::collections::BTreeMap<String, String> {
    fn walk(
        prefix: &str,
        value: &toml::Value,
        out: &mut std::collections::BTreeMap<String, String>,
    ) {
        match value {
            toml::Value::Table(t) => {
                for (k, v) in t {
                    walk(&format!("{prefix}.{k}"), v, out);
                }
            }
            other => {
                let text = other.to_string();
                let secret = text.contains("PRIVATE KEY")
                    || prefix.ends_with("password_hash")
                    || prefix.ends_with("auth_pass")
                    || prefix.ends_with("auth_key");
                out.insert(
                    prefix.to_owned(),
                    if secret { HIDDEN.to_owned() } else { text },
                );
            }
        }
    }
    let mut out = std::collections::BTreeMap::new();
    for (k, v) in table {
        walk(&format!("services.{k}"), v, &mut out);
    }
    out
}

/// The stored desired state as a TOML download.
async fn export(bridge: &Bridge, query: &[(String, String)]) -> Answer {
    let include_vrrp_key = matches!(field(query, "vrrp_key"), Some("1" | "true"));
    match bridge.ask(Request::Export { include_vrrp_key }).await {
        Ok(Payload::Exported { document }) => {
            let mut r = respond(StatusCode::OK, "application/toml; charset=utf-8", document);
            attachment(&mut r, "appliance-config.toml");
            r
        }
        other => unexpected(other),
    }
}

fn attachment(r: &mut Answer, name: &'static str) {
    let value = format!(
        "attachment; filename=\"{}-{name}\"",
        file_safe(&crate::web::hostname())
    );
    if let Ok(v) = HeaderValue::from_str(&value) {
        r.headers_mut().insert(CONTENT_DISPOSITION, v);
    }
}

/// A host name as a file name: letters, digits, `-` and `.` only.
fn file_safe(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.'))
        .collect()
}

/// Which lines a level filter keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    All,
    /// Warnings and errors.
    Warn,
    Error,
}

impl Level {
    fn parse(text: Option<&str>) -> Result<Self, Bad> {
        match text.unwrap_or("") {
            "" | "all" => Ok(Self::All),
            "warn" | "warning" => Ok(Self::Warn),
            "error" => Ok(Self::Error),
            other => Err(Bad::new(
                format!("level {other:?} is not one of all, warn, error"),
                "give level=all, level=warn (warnings and errors) or level=error",
            )),
        }
    }

    /// lbd's lines carry tracing's level word (`WARN`, `ERROR`); init's
    /// say `error:` or `warning:` after its name. A field called "error"
    /// in an info line is not an error.
    fn keeps(self, line: &str) -> bool {
        let error = line.contains(" ERROR ") || line.contains(" error: ");
        let warning = line.contains(" WARN ") || line.contains(" warning: ");
        match self {
            Self::All => true,
            Self::Error => error,
            Self::Warn => error || warning,
        }
    }
}

/// The newest log lines, filtered by text and level; as JSON or a download.
async fn logs(bridge: &Bridge, query: &[(String, String)]) -> Answer {
    let lines = match number(query, "lines") {
        Ok(n) => n.unwrap_or(DEFAULT_LOG_LINES).clamp(1, MAX_LOG_LINES),
        Err(bad) => return bad.answer(),
    };
    let level = match Level::parse(field(query, "level")) {
        Ok(l) => l,
        Err(bad) => return bad.answer(),
    };
    let filter = field(query, "filter")
        .map(str::to_owned)
        .filter(|f| !f.is_empty());
    // A level filter keeps few lines: ask for the most and keep the newest.
    let asked = if level == Level::All {
        lines
    } else {
        MAX_LOG_LINES
    };
    let found = match bridge
        .ask(Request::Logs {
            lines: Some(asked),
            filter,
        })
        .await
    {
        Ok(Payload::Logs(found)) => found,
        other => return unexpected(other),
    };
    let mut kept: Vec<String> = found.into_iter().filter(|l| level.keeps(l)).collect();
    let drop = kept.len().saturating_sub(lines);
    kept.drain(..drop);
    if matches!(field(query, "download"), Some("1" | "true")) {
        let mut text = kept.join("\n");
        text.push('\n');
        let mut r = respond(StatusCode::OK, "text/plain; charset=utf-8", text);
        attachment(&mut r, "appliance.log");
        return r;
    }
    json(StatusCode::OK, &serde_json::json!({ "lines": kept }))
}

async fn power(bridge: &Bridge, caller: &Caller, action: PowerAction) -> Answer {
    let (request, word) = match action {
        PowerAction::Reboot => (Request::Reboot, "reboot"),
        PowerAction::Poweroff => (Request::PowerOff, "poweroff"),
    };
    tracing::warn!(user = %caller.user, action = word, "appliance power action from the console");
    match bridge.ask(request).await {
        Ok(Payload::Accepted) => json(
            StatusCode::ACCEPTED,
            &serde_json::json!({ "accepted": word }),
        ),
        other => unexpected(other),
    }
}

#[cfg(test)]
#[path = "config_api_tests.rs"]
mod tests;
