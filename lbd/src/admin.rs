//! Operator actions shared by the control socket and the stats page: set a
//! server's admin state or weight, persist it, and apply persisted state to
//! a (new) runtime at start and reload.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::config::validate::MAX_WEIGHT;
use crate::runtime::{AdminState, Event, Listeners, Runtime};
use crate::state::{StateError, StateFile};

/// Errors of operator actions.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("no server `{key}`: write backend/server as shown by `show stat`")]
    UnknownServer { key: String },
    #[error("no frontend `{name}`: write its name as shown by `show stat`")]
    UnknownFrontend { name: String },
    #[error("weight {weight} out of range: use 0..={MAX_WEIGHT}")]
    WeightRange { weight: u32 },
    #[error("applied, but not persisted: {0}")]
    Persist(#[from] StateError),
}

/// Holds the state file and applies changes to the current runtime.
#[derive(Debug)]
pub struct Admin {
    path: PathBuf,
    state: Mutex<StateFile>,
}

impl Admin {
    /// Loads the state file. A corrupt file is reported and treated as empty
    /// so the balancer still starts.
    pub fn open(path: PathBuf) -> Self {
        let state = StateFile::load(&path).unwrap_or_else(|e| {
            tracing::error!(error = %e, "state file ignored");
            StateFile::default()
        });
        Self {
            path,
            state: Mutex::new(state),
        }
    }

    /// Applies persisted admin states and weights to `rt`'s servers.
    pub fn apply_to(&self, rt: &Runtime) {
        let Ok(state) = self.state.lock() else { return };
        for (key, s) in &state.servers {
            match rt.server(key) {
                Some((backend, server)) => {
                    server.set_admin(s.admin);
                    if let Some(w) = s.weight {
                        server.set_weight(w);
                        backend.reweighted();
                    }
                    tracing::info!(server = %key, admin = s.admin.as_str(), weight = ?s.weight, "admin state restored");
                }
                None => {
                    tracing::warn!(server = %key, "state file names a server not in the config; kept")
                }
            }
        }
    }

    /// Applies persisted disabled frontends (kept for frontends not in
    /// this config, in case a later reload brings them back).
    pub fn apply_frontends(&self, rt: &Runtime, listeners: &Listeners) {
        let Ok(state) = self.state.lock() else { return };
        for name in &state.disabled_frontends {
            listeners.set_disabled(name, true);
            if rt.frontends.contains_key(name) {
                tracing::warn!(frontend = %name, "frontend disabled by an operator earlier: not accepting (enable frontend {name})");
            }
        }
    }

    /// Disables or enables `frontend`, persists it.
    pub fn set_frontend_disabled(
        &self,
        rt: &Runtime,
        listeners: &Listeners,
        name: &str,
        disabled: bool,
    ) -> Result<(), AdminError> {
        if !rt.frontends.contains_key(name) {
            return Err(AdminError::UnknownFrontend { name: name.into() });
        }
        listeners.set_disabled(name, disabled);
        self.persist(|s| s.set_frontend_disabled(name, disabled))
    }

    /// Sets `backend/server` to `admin`, persists it.
    pub fn set_state(&self, rt: &Runtime, key: &str, admin: AdminState) -> Result<(), AdminError> {
        let (backend, server) = rt
            .server(key)
            .ok_or_else(|| AdminError::UnknownServer { key: key.into() })?;
        let old = server.admin();
        server.set_admin(admin);
        backend.wake_queue();
        tracing::info!(server = %key, old = old.as_str(), new = admin.as_str(), "admin state set");
        let _ = rt.events.send(Event::Admin {
            server: key.into(),
            state: admin.as_str().into(),
            by: "operator".into(),
        });
        self.persist(|s| s.set_admin(key, admin))
    }

    /// Sets the weight of `backend/server`, persists it.
    pub fn set_weight(&self, rt: &Runtime, key: &str, weight: u32) -> Result<(), AdminError> {
        if weight > MAX_WEIGHT {
            return Err(AdminError::WeightRange { weight });
        }
        let (backend, server) = rt
            .server(key)
            .ok_or_else(|| AdminError::UnknownServer { key: key.into() })?;
        let old = server.weight();
        server.set_weight(weight);
        backend.reweighted();
        tracing::info!(server = %key, old, new = weight, "weight set");
        let _ = rt.events.send(Event::Weight {
            server: key.into(),
            weight,
            by: "operator".into(),
        });
        let keep = (weight != server.config_weight).then_some(weight);
        self.persist(|s| s.set_weight(key, keep))
    }

    fn persist(&self, change: impl FnOnce(&mut StateFile)) -> Result<(), AdminError> {
        let mut state = self.state.lock().map_err(|_| {
            AdminError::Persist(StateError::Write {
                path: self.path.clone(),
                source: std::io::Error::other("state lock poisoned"),
            })
        })?;
        change(&mut state);
        state.save(&self.path)?;
        Ok(())
    }

    /// Shared handle.
    pub fn shared(path: PathBuf) -> Arc<Self> {
        Arc::new(Self::open(path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime() -> Runtime {
        let text = "[backends.b.servers.s1]\naddress = \"127.0.0.1:1\"\nweight = 3\n\
                    [backends.b.servers.s2]\naddress = \"127.0.0.1:2\"\n";
        let config =
            crate::config::load_texts(vec![("t.toml".into(), text.into())]).expect("valid");
        Runtime::new(config, 1)
    }

    #[test]
    fn maint_survives_a_new_runtime() {
        // Input: set maint and weight on one runtime, then a fresh runtime
        // (restart or reload) loads the same file. Output: same state.
        let dir = std::env::temp_dir().join(format!("lbd-admin-{}", std::process::id()));
        let path = dir.join("state.json");
        let _ = std::fs::remove_dir_all(&dir);
        let rt = runtime();
        let admin = Admin::open(path.clone());
        admin
            .set_state(&rt, "b/s1", AdminState::Maint)
            .expect("set");
        admin.set_weight(&rt, "b/s2", 9).expect("set");
        assert!(!rt.server("b/s1").expect("s1").1.in_service());

        let fresh = runtime();
        Admin::open(path).apply_to(&fresh);
        let (_, s1) = fresh.server("b/s1").expect("s1");
        let (_, s2) = fresh.server("b/s2").expect("s2");
        assert_eq!(s1.admin(), AdminState::Maint);
        assert_eq!(s1.weight(), 3);
        assert_eq!(s2.weight(), 9);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn unknown_server_and_bad_weight_are_refused() {
        let rt = runtime();
        let admin = Admin::open(std::env::temp_dir().join("lbd-admin-unused/state.json"));
        assert!(matches!(
            admin.set_state(&rt, "b/nope", AdminState::Drain),
            Err(AdminError::UnknownServer { .. })
        ));
        assert!(matches!(
            admin.set_weight(&rt, "b/s1", 999),
            Err(AdminError::WeightRange { .. })
        ));
    }
}
