//! The appliance's web console and API (`[console]`, HTTPS on :5480, as
//! vCenter's VAMI): a login form with sessions, a live dashboard, and the
//! JSON API `/api/v1/...` the dashboard itself uses (scripts use it with
//! HTTP Basic). Users and roles are `[stats.users]` (admin, read-only).
//!
//! - [`tls`]: the certificate, reloaded with the config; [`accept`]: the
//!   accept loop (plain HTTP on the same port gets [`redirect`]ed);
//! - [`routes`]: requests, the CSRF and role rules; [`caller`]: session
//!   cookie or Basic; [`session`]: the session store (pure);
//! - [`status`] and [`api`]: `GET /api/v1/status`, server actions;
//! - [`config_api`]: the appliance store (settings, services, history,
//!   export/import, logs, power) through init's socket;
//! - [`pages`]: HTML, CSS, script and OpenAPI from the binary;
//!   [`respond`]: answers with the security headers.
//!
//! The listen address is taken at start; certificate, users and the idle
//! timeout follow reloads. Password checks share the stats page's gate:
//! off the proxy's threads, one at a time, slowed per source.

pub mod accept;
pub mod api;
pub mod caller;
pub mod config_api;
pub mod pages;
pub mod redirect;
pub mod respond;
pub mod routes;
pub mod session;
pub mod status;
pub mod tls;

use std::sync::Arc;

use self::routes::Console;
use self::tls::{ConsoleTlsError, TlsHandle};
use crate::daemon::Daemon;
use crate::proxy::listen::{bind, ListenError};
use crate::web::auth::Auth;

/// Errors starting the console.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("{0}")]
    Tls(#[from] ConsoleTlsError),
    #[error("console listener (console.bind): {0}")]
    Listen(#[from] ListenError),
}

/// Loads the certificate, binds `console.bind` and serves in the
/// background; the handle takes new certificates at reload.
pub fn start(
    config: &crate::config::Console,
    daemon: Arc<Daemon>,
    auth: Arc<Auth>,
) -> Result<TlsHandle, ConsoleError> {
    let tls = TlsHandle::new(tls::load(config)?);
    let listener = bind(config.bind)?;
    let console = Arc::new(Console::new(daemon, auth));
    tokio::spawn(accept::accept_loop(listener, console, tls.clone()));
    tracing::info!(addr = %config.bind, "console listening");
    Ok(tls)
}
