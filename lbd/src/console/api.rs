//! Server actions of the API:
//!
//! - `POST /api/v1/servers/{backend}/{server}` with `{"state": "drain"}`,
//!   `{"weight": 5}` or both;
//! - `POST /api/v1/servers` with `{"changes": [{"server": "web/a",
//!   "state": "maint"}, ...]}`: every change is checked first, and none is
//!   applied if one is wrong.
//!
//! The answer is the changed servers' rows as `GET /api/v1/status` shows
//! them. The state file is written on the blocking pool, not on the
//! threads that proxy.

use std::sync::Arc;

use hyper::StatusCode;
use serde::{Deserialize, Serialize};

use super::respond::{error, json, Body};
use crate::config::validate::MAX_WEIGHT;
use crate::daemon::Daemon;
use crate::report::ServerRow;
use crate::runtime::AdminState;

/// The admin states, as the API spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Wanted {
    Ready,
    Drain,
    Maint,
}

impl From<Wanted> for AdminState {
    fn from(w: Wanted) -> Self {
        match w {
            Wanted::Ready => Self::Ready,
            Wanted::Drain => Self::Drain,
            Wanted::Maint => Self::Maint,
        }
    }
}

/// What one server should become.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Change {
    pub state: Option<Wanted>,
    pub weight: Option<u32>,
    /// Health checks on (`true`) or off (HAProxy's `disable health`:
    /// no probes, the server counts as up) until turned on or a restart.
    pub check: Option<bool>,
}

/// One change of a batch, naming its server as `backend/server`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Named {
    pub server: String,
    #[serde(flatten)]
    pub change: Change,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Batch {
    pub changes: Vec<Named>,
}

#[derive(Debug, Serialize)]
pub struct Applied {
    pub servers: Vec<ServerRow>,
}

/// Changes in one request at most.
const MAX_CHANGES: usize = 256;

fn bad(message: &str, fix: &str) -> hyper::Response<Body> {
    error(StatusCode::BAD_REQUEST, message, fix)
}

/// A body that is not the JSON expected: what was wrong, and the fix.
#[derive(Debug)]
pub struct BadBody {
    pub error: String,
    pub fix: &'static str,
}

impl BadBody {
    pub fn response(&self) -> hyper::Response<Body> {
        bad(&self.error, self.fix)
    }
}

/// Parses the body of a one-server request.
pub fn one(key: String, body: &[u8]) -> Result<Vec<Named>, BadBody> {
    let change: Change = serde_json::from_slice(body).map_err(|e| BadBody {
        error: format!("reading the change: {e}"),
        fix: r#"send JSON like {"state": "drain"} (ready, drain or maint) or {"weight": 5}"#,
    })?;
    Ok(vec![Named {
        server: key,
        change,
    }])
}

/// Parses the body of a batch request.
pub fn batch(body: &[u8]) -> Result<Vec<Named>, BadBody> {
    let batch: Batch = serde_json::from_slice(body).map_err(|e| BadBody {
        error: format!("reading the changes: {e}"),
        fix: r#"send JSON like {"changes": [{"server": "web/a", "state": "maint"}]}"#,
    })?;
    Ok(batch.changes)
}

/// Checks every change against the running config, then applies them.
pub async fn apply(daemon: Arc<Daemon>, user: &str, changes: Vec<Named>) -> hyper::Response<Body> {
    if changes.is_empty() || changes.len() > MAX_CHANGES {
        return bad(
            &format!("{} changes in one request", changes.len()),
            &format!("send 1 to {MAX_CHANGES} changes"),
        );
    }
    let rt = daemon.runtime();
    for c in &changes {
        if rt.server(&c.server).is_none() {
            return error(
                StatusCode::NOT_FOUND,
                &format!("no server {}", c.server),
                "name it backend/server as GET /api/v1/status lists it",
            );
        }
        if c.change.state.is_none() && c.change.weight.is_none() && c.change.check.is_none() {
            return bad(
                &format!("nothing to change for {}", c.server),
                r#"give "state" (ready, drain or maint), "weight", "check" (true or false), or several"#,
            );
        }
        if c.change.check.is_some() && rt.server(&c.server).is_some_and(|(_, s)| !s.checked) {
            return bad(
                &format!("{} has no health check to turn on or off", c.server),
                "give its backend a [backends.NAME.check] first",
            );
        }
        if let Some(w) = c.change.weight.filter(|w| *w > MAX_WEIGHT) {
            return bad(
                &format!("weight {w} for {} is out of range", c.server),
                &format!("use a weight from 0 to {MAX_WEIGHT}"),
            );
        }
    }
    let keys: Vec<String> = changes.iter().map(|c| c.server.clone()).collect();
    let worker = daemon.clone();
    let applied = tokio::task::spawn_blocking(move || {
        for c in &changes {
            if let Some(state) = c.change.state {
                worker.admin.set_state(&rt, &c.server, state.into())?;
            }
            if let Some(weight) = c.change.weight {
                worker.admin.set_weight(&rt, &c.server, weight)?;
            }
            if let (Some(on), Some((_, server))) = (c.change.check, rt.server(&c.server)) {
                server.set_checks_off(!on);
            }
        }
        Ok::<_, crate::admin::AdminError>(())
    })
    .await;
    match applied {
        Ok(Ok(())) => {
            tracing::info!(%user, servers = ?keys, "console server action");
            let rows = crate::report::stat(&daemon.runtime(), &daemon.listeners)
                .servers
                .into_iter()
                .filter(|r| keys.contains(&format!("{}/{}", r.backend, r.server)))
                .collect();
            json(StatusCode::OK, &Applied { servers: rows })
        }
        Ok(Err(e)) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &e.to_string(),
            "check that the state file's directory is writable",
        ),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("applying the change: {e}"),
            "report this as a bug",
        ),
    }
}
