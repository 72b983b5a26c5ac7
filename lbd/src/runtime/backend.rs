//! A backend at run time: its servers, its balancer, and the queue of
//! connections waiting for a free server slot.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

use super::server::ServerRt;
use crate::balance::{splitmix64, Balancer, Candidate};
use crate::config::{Backend, Mode, SendProxy};

/// Why no server could be had.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AcquireError {
    #[error("no server is up and ready")]
    NoServer,
    #[error("all servers stayed full for the queue timeout")]
    QueueTimeout,
}

/// Resolved timeouts of one backend (config, else defaults).
#[derive(Debug, Clone, Copy)]
pub struct BackendTimeouts {
    pub connect: Duration,
    pub server: Duration,
    pub queue: Duration,
    /// Replaces client and server inactivity timeouts in tunnels.
    pub tunnel: Option<Duration>,
}

impl BackendTimeouts {
    /// Inactivity limit of a tunnel, and whether it is charged to the
    /// client side in the log (`cD`) rather than the server side (`sD`).
    pub fn tunnel_idle(&self, client: Duration) -> (Duration, bool) {
        match self.tunnel {
            Some(t) => (t, false),
            None => (client.min(self.server), client <= self.server),
        }
    }
}

/// One backend's shared state.
#[derive(Debug)]
pub struct BackendRt {
    pub name: String,
    pub mode: Mode,
    pub send_proxy: SendProxy,
    pub timeouts: BackendTimeouts,
    pub config: Backend,
    pub servers: Vec<Arc<ServerRt>>,
    balancer: Mutex<Balancer>,
    freed: Notify,
    random_state: AtomicU64,
}

/// A slot on a server, released (and queue woken) on drop.
#[derive(Debug)]
pub struct Lease {
    pub server: Arc<ServerRt>,
    backend: Arc<BackendRt>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.server.active.fetch_sub(1, Ordering::Relaxed);
        self.backend.freed.notify_waiters();
    }
}

impl BackendRt {
    /// `prev` is the backend of the same name in the previous generation.
    pub fn new(
        name: &str,
        config: &Backend,
        timeouts: BackendTimeouts,
        seed: u64,
        prev: Option<&BackendRt>,
    ) -> Self {
        let checked = config.check.is_some();
        let servers: Vec<Arc<ServerRt>> = config
            .servers
            .iter()
            .map(|(sname, s)| {
                let old = prev
                    .and_then(|p| p.server(sname))
                    .filter(|o| o.address == s.address)
                    .map(|o| o.as_ref());
                Arc::new(ServerRt::new(name, sname, s, checked && s.check, old))
            })
            .collect();
        let names: Vec<&str> = config.servers.keys().map(String::as_str).collect();
        let weights: Vec<u32> = config.servers.values().map(|s| s.weight).collect();
        Self {
            name: name.to_string(),
            mode: config.mode,
            send_proxy: config.send_proxy,
            timeouts,
            config: config.clone(),
            servers,
            balancer: Mutex::new(Balancer::new(config.balance, &names, &weights)),
            freed: Notify::new(),
            random_state: AtomicU64::new(seed),
        }
    }

    pub fn server(&self, name: &str) -> Option<&Arc<ServerRt>> {
        self.servers.iter().find(|s| s.name == name)
    }

    /// Servers in service (up and ready), normal and backup.
    pub fn usable_servers(&self) -> usize {
        self.servers
            .iter()
            .filter(|s| s.in_service() && s.weight() > 0)
            .count()
    }

    /// Rebuilds weight-dependent balancer state after `set weight`.
    pub fn reweighted(&self) {
        let names: Vec<&str> = self.servers.iter().map(|s| s.name.as_str()).collect();
        let weights: Vec<u32> = self.servers.iter().map(|s| s.weight()).collect();
        if let Ok(mut b) = self.balancer.lock() {
            b.reweight(&names, &weights);
        }
        self.freed.notify_waiters();
    }

    /// Wakes queued connections after a server came up or changed state.
    pub fn wake_queue(&self) {
        self.freed.notify_waiters();
    }

    /// Takes a slot on a server now, if one is free.
    pub fn try_acquire(
        self: &Arc<Self>,
        client: Option<IpAddr>,
        exclude: Option<&str>,
    ) -> Option<Lease> {
        let candidates: Vec<Candidate> = self
            .servers
            .iter()
            .map(|s| Candidate {
                weight: s.weight(),
                eligible: s.has_slot() && exclude != Some(s.name.as_str()),
                backup: s.backup,
                active: s.active(),
            })
            .collect();
        let mut state = self.random_state.fetch_add(1, Ordering::Relaxed);
        let random = splitmix64(&mut state);
        let mut balancer = self.balancer.lock().ok()?;
        let index = balancer.pick(&candidates, client, random)?;
        let server = self.servers.get(index)?.clone();
        // Counted while the balancer lock is held, so two picks cannot both
        // take a server's last slot.
        server.active.fetch_add(1, Ordering::Relaxed);
        server.total.fetch_add(1, Ordering::Relaxed);
        drop(balancer);
        Some(Lease {
            server,
            backend: self.clone(),
        })
    }

    /// Takes a slot, waiting in the queue up to the queue timeout while all
    /// servers in service are full.
    pub async fn acquire(
        self: &Arc<Self>,
        client: Option<IpAddr>,
        exclude: Option<&str>,
    ) -> Result<Lease, AcquireError> {
        let deadline = tokio::time::Instant::now() + self.timeouts.queue;
        loop {
            let notified = self.freed.notified();
            tokio::pin!(notified);
            // Registered before the pick so a release in between is not lost.
            notified.as_mut().enable();
            if let Some(lease) = self.try_acquire(client, exclude) {
                return Ok(lease);
            }
            if self.usable_servers() == 0 {
                return Err(AcquireError::NoServer);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Err(AcquireError::QueueTimeout);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn one_server_backend(maxconn: u32) -> Arc<BackendRt> {
        let text = format!(
            "[backends.b.servers.s]\naddress = \"127.0.0.1:9\"\nmaxconn = {maxconn}\n\
             [defaults.timeout]\nqueue = \"10s\"\n"
        );
        let config: Config =
            crate::config::load_texts(vec![("t.toml".into(), text)]).expect("valid");
        let rt = crate::runtime::Runtime::new(config, 1);
        rt.backends["b"].clone()
    }

    #[tokio::test(start_paused = true)]
    async fn queued_connection_gets_the_slot_when_freed() {
        // Input: maxconn 1, slot taken, a second acquire waits; the first
        // lease drops. Output: the waiter gets the server.
        let be = one_server_backend(1);
        let first = be.acquire(None, None).await.expect("free slot");
        let waiter = tokio::spawn({
            let be = be.clone();
            async move { be.acquire(None, None).await.map(|l| l.server.name.clone()) }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(first);
        assert_eq!(waiter.await.expect("join"), Ok("s".to_string()));
    }

    #[tokio::test(start_paused = true)]
    async fn queue_times_out_when_nothing_frees() {
        let be = one_server_backend(1);
        let _held = be.acquire(None, None).await.expect("free slot");
        let second = be.acquire(None, None).await;
        assert_eq!(second.map(|_| ()), Err(AcquireError::QueueTimeout));
    }

    #[test]
    fn tunnel_timeout_replaces_client_and_server() {
        let s = Duration::from_secs;
        let mut t = BackendTimeouts {
            connect: s(5),
            server: s(30),
            queue: s(10),
            tunnel: None,
        };
        assert_eq!(t.tunnel_idle(s(20)), (s(20), true));
        assert_eq!(t.tunnel_idle(s(40)), (s(30), false));
        t.tunnel = Some(s(3600));
        assert_eq!(t.tunnel_idle(s(20)), (s(3600), false));
    }

    #[tokio::test]
    async fn no_server_in_service_fails_at_once() {
        let be = one_server_backend(1);
        be.servers[0].set_admin(super::super::AdminState::Maint);
        assert_eq!(
            be.acquire(None, None).await.map(|_| ()),
            Err(AcquireError::NoServer)
        );
    }
}
