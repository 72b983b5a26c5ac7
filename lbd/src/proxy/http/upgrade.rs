//! Protocol upgrades (RFC 9110 7.8): which requests may become tunnels,
//! and the tunnel itself. A tunnel runs inside the client connection's
//! task, so it keeps the connection's maxconn slots and counts as open in
//! `show info` and for a graceful stop; it ends at the generation's
//! retire deadline like a mode tcp connection.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::header::{HeaderMap, CONNECTION, UPGRADE};
use hyper_util::rt::TokioIo;
use tokio::sync::watch;

use crate::proxy::copy::copy_bidirectional;
use crate::runtime::Lease;

/// Tunnels started on one client connection, run by the connection's task
/// once hyper hands the connection over.
pub type Tunnels = Arc<Mutex<Vec<Pin<Box<dyn Future<Output = ()> + Send>>>>>;

/// The protocol a request asks to upgrade to, when it carries
/// `Connection: upgrade` and an `Upgrade` header.
pub fn requested(headers: &HeaderMap) -> Option<String> {
    let connection_upgrade = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| {
            v.split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
        });
    if !connection_upgrade {
        return None;
    }
    headers
        .get(UPGRADE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// Whether `upgrade` (the header's value) names only allowed protocols
/// (`websocket`, `websocket/13`: the name before `/` is compared).
pub fn allowed(upgrade: &str, protocols: &[String]) -> bool {
    let mut offered = upgrade.split(',').map(str::trim).filter(|p| !p.is_empty());
    let mut any = false;
    let all = offered.all(|p| {
        any = true;
        let name = p.split('/').next().unwrap_or(p);
        protocols.iter().any(|a| a.eq_ignore_ascii_case(name))
    });
    any && all
}

/// After a 101, copies bytes between the two upgraded connections, holding
/// the server slot until the tunnel ends or `retire` turns true.
pub async fn tunnel(
    client: hyper::upgrade::OnUpgrade,
    server: hyper::upgrade::OnUpgrade,
    idle: Duration,
    lease: Lease,
    mut retire: watch::Receiver<bool>,
) {
    let (c, s) = match tokio::try_join!(client, server) {
        Ok(ok) => ok,
        Err(e) => {
            tracing::debug!(server = %lease.server.key(), error = %e, "upgrade failed");
            return;
        }
    };
    let copy = copy_bidirectional(TokioIo::new(c), TokioIo::new(s), idle);
    let retired = async {
        if retire.wait_for(|v| *v).await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        r = copy => {
            lease.server.bytes_in.fetch_add(r.client_to_server, Ordering::Relaxed);
            lease.server.bytes_out.fetch_add(r.server_to_client, Ordering::Relaxed);
        }
        () = retired => {
            tracing::info!(server = %lease.server.key(), term = "KD", "tunnel closed: deadline passed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_configured_protocols_may_upgrade() {
        let ws = vec!["websocket".to_string()];
        assert!(allowed("websocket", &ws));
        assert!(allowed("WebSocket", &ws));
        assert!(!allowed("h2c", &ws));
        assert!(
            !allowed("websocket, h2c", &ws),
            "every offer must be allowed"
        );
        assert!(!allowed("", &ws));
        assert!(allowed("h2c", &["h2c".to_string()]));
    }

    #[test]
    fn requested_needs_connection_upgrade() {
        let mut h = HeaderMap::new();
        h.insert(UPGRADE, "websocket".parse().expect("value"));
        assert_eq!(requested(&h), None);
        h.insert(CONNECTION, "keep-alive, Upgrade".parse().expect("value"));
        assert_eq!(requested(&h).as_deref(), Some("websocket"));
    }
}
