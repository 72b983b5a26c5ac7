//! Health-check tasks: one per checked server, owning that server's
//! [`CheckFsm`]; one agent task per server when the backend has `agent`.
//!
//! ```text
//!  agent task --(Forced up/down)--mpsc--+
//!                                       v
//!  timer --> probe() --> Outcome --> CheckFsm::handle --> StateChange -> ServerRt.up, log
//!                                                    `--> NextCheck   -> timer
//! ```
//! Servers in maint are not checked (as in HAProxy). Each task stops when
//! its generation's stop signal turns true (reload or shutdown).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::time::Instant;

use super::agent::{effective_weight, parse_agent};
use super::fsm::{spread, Action, CheckFsm, Health, Input, Timing};
use super::probe::{agent, http_request, probe, Outcome, ProbeSpec};
use super::tls::{check_client_config, server_name};
use crate::config::{Backend, CheckKind};
use crate::runtime::{AdminState, BackendRt, Event, Runtime, ServerRt};

/// Agent-only servers (no `check` table) still get an FSM for forced
/// states; it never probes, so its timing only shapes log durations.
const AGENT_ONLY_TIMING: Timing = Timing {
    inter: Duration::from_secs(2),
    fastinter: Duration::from_secs(2),
    downinter: Duration::from_secs(2),
    rise: 1,
    fall: 1,
    timeout: Duration::from_secs(2),
};

/// Starts check and agent tasks for every backend of `rt`.
pub fn spawn_all(rt: &Arc<Runtime>) {
    let stop = &rt.superseded.subscribe();
    let tls = match check_client_config() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "TLS client config for checks failed: TLS and HTTPS checks will fail");
            return;
        }
    };
    for backend in rt.backends.values() {
        let cfg = &backend.config;
        if cfg.check.is_none() && cfg.agent.is_none() {
            continue;
        }
        let checked: Vec<&Arc<ServerRt>> = backend
            .servers
            .iter()
            .filter(|s| s.checked || cfg.agent.is_some())
            .collect();
        let count = checked.len();
        for (i, server) in checked.into_iter().enumerate() {
            let (agent_tx, agent_rx) = mpsc::channel(4);
            let (spec, timing) = match &cfg.check {
                Some(c) if server.checked => (Some(spec_for(cfg, server)), Timing::from_config(c)),
                _ => (None, AGENT_ONLY_TIMING),
            };
            let delay = spread(i, count, timing.fastinter);
            let task = Task {
                backend: backend.clone(),
                server: server.clone(),
                events: rt.events.clone(),
                stop: stop.clone(),
            };
            tokio::spawn(check_loop(
                task.clone(),
                spec,
                timing,
                delay,
                tls.clone(),
                agent_rx,
            ));
            if let Some(a) = &cfg.agent {
                let inter = a.inter.map_or(Duration::from_secs(2), |d| d.0);
                let timeout = a.timeout.map_or(inter, |d| d.0);
                let port = a.port;
                let schedule = (inter, timeout, spread(i, count, inter));
                tokio::spawn(agent_loop(task, port, schedule, agent_tx));
            }
        }
    }
}

fn spec_for(cfg: &Backend, server: &ServerRt) -> ProbeSpec {
    let Some(c) = &cfg.check else {
        return ProbeSpec::Tcp;
    };
    let host = c.host.clone().unwrap_or_else(|| server.address.to_string());
    match c.kind {
        CheckKind::Tcp => ProbeSpec::Tcp,
        CheckKind::TlsHello => ProbeSpec::TlsHello {
            sni: server_name(c.host.as_deref(), &server.address),
        },
        CheckKind::Http | CheckKind::Https => ProbeSpec::Http {
            tls: (c.kind == CheckKind::Https)
                .then(|| server_name(c.host.as_deref(), &server.address)),
            request: http_request(
                c.method.as_deref().unwrap_or("GET"),
                c.path.as_deref().unwrap_or("/"),
                &host,
            ),
            expect: c.expect_status.clone().unwrap_or_default(),
        },
    }
}

/// Waits `d` or until stop; false when stopping.
async fn wait(d: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    if *stop.borrow() {
        return false;
    }
    tokio::select! {
        () = tokio::time::sleep(d) => true,
        _ = stop.changed() => !*stop.borrow(),
    }
}

fn apply(
    backend: &BackendRt,
    server: &ServerRt,
    events: &broadcast::Sender<Event>,
    actions: Vec<Action>,
) -> Option<Duration> {
    let mut next = None;
    for action in actions {
        match action {
            Action::StateChange {
                from,
                to,
                reason,
                after,
            } => {
                server.set_up(to == Health::Up);
                let after_ms = u64::try_from(after.as_millis()).unwrap_or(u64::MAX);
                let left = backend.usable_servers();
                match to {
                    Health::Down => {
                        tracing::warn!(server = %server.key(), ?from, ?to, %reason, after_ms, usable_left = left, "server is DOWN")
                    }
                    Health::Up => {
                        tracing::info!(server = %server.key(), ?from, ?to, %reason, after_ms, usable_left = left, "server is UP")
                    }
                }
                backend.wake_queue();
                let _ = events.send(Event::Health {
                    server: server.key(),
                    up: to == Health::Up,
                    reason,
                    after_ms,
                    usable_left: left,
                });
            }
            Action::NextCheck { after } => next = Some(after),
        }
    }
    next
}

/// What every check or agent task of one server holds.
#[derive(Clone)]
struct Task {
    backend: Arc<BackendRt>,
    server: Arc<ServerRt>,
    events: broadcast::Sender<Event>,
    stop: watch::Receiver<bool>,
}

async fn check_loop(
    task: Task,
    spec: Option<ProbeSpec>,
    timing: Timing,
    delay: Duration,
    tls: Arc<ClientConfig>,
    mut forced: mpsc::Receiver<Input>,
) {
    let Task {
        backend,
        server,
        events,
        mut stop,
    } = task;
    let mut fsm = if server.inherited || !server.checked {
        let health = if server.is_up() {
            Health::Up
        } else {
            Health::Down
        };
        CheckFsm::with_health(timing, Instant::now(), health)
    } else {
        CheckFsm::new(timing, Instant::now())
    };
    let mut next = delay;
    loop {
        let deadline = Instant::now() + next;
        // Wait for the next check, an agent verdict, or stop.
        let input = loop {
            if *stop.borrow() {
                return;
            }
            tokio::select! {
                () = tokio::time::sleep_until(deadline), if spec.is_some() => break None,
                Some(input) = forced.recv() => break Some(input),
                _ = stop.changed() => {}
            }
        };
        let input = match (input, &spec) {
            (Some(forced), _) => forced,
            (None, Some(_)) if server.checks_off() => {
                server.set_last_check("not checked: checks off".into());
                next = timing.inter;
                if server.is_up() {
                    continue;
                }
                // As HAProxy's `disable health`: an unchecked server is up.
                Input::Forced {
                    health: Health::Up,
                    reason: "health checks turned off".into(),
                }
            }
            (None, Some(spec)) => {
                if server.admin() == AdminState::Maint {
                    server.set_last_check("not checked: maint".into());
                    next = timing.inter;
                    continue;
                }
                let outcome = match server.addr() {
                    Some(a) => {
                        probe(
                            spec,
                            SocketAddr::new(a.ip(), server.check_port),
                            timing.timeout,
                            &tls,
                        )
                        .await
                    }
                    None => Outcome {
                        ok: false,
                        reason: format!("unresolved: {}", server.address),
                    },
                };
                server.record_check(outcome.ok, &outcome.reason);
                tracing::debug!(server = %server.key(), ok = outcome.ok, reason = %outcome.reason, "check");
                if outcome.ok {
                    Input::Passed {
                        reason: outcome.reason,
                    }
                } else {
                    Input::Failed {
                        reason: outcome.reason,
                    }
                }
            }
            (None, None) => continue,
        };
        let forced_input = matches!(input, Input::Forced { .. });
        if let Some(after) = apply(
            &backend,
            &server,
            &events,
            fsm.handle(Instant::now(), input),
        ) {
            // A forced verdict does not move the probe schedule.
            if !forced_input {
                next = after;
            } else {
                next = deadline.saturating_duration_since(Instant::now());
            }
        }
    }
}

/// `schedule` is (inter, timeout, first delay).
async fn agent_loop(
    task: Task,
    port: u16,
    schedule: (Duration, Duration, Duration),
    forced: mpsc::Sender<Input>,
) {
    let Task {
        backend,
        server,
        events,
        mut stop,
    } = task;
    let (inter, timeout, delay) = schedule;
    if !wait(delay, &mut stop).await {
        return;
    }
    loop {
        let reply = match server.addr() {
            Some(a) => agent(SocketAddr::new(a.ip(), port), timeout).await,
            None => Err(format!("unresolved: {}", server.address)),
        };
        match reply {
            Ok(line) => {
                let reply = parse_agent(&line);
                if !reply.unknown.is_empty() {
                    tracing::debug!(server = %server.key(), words = ?reply.unknown, "agent: unknown words ignored");
                }
                if let Some(w) = reply.weight {
                    let new = effective_weight(w, server.config_weight);
                    if new != server.weight() {
                        tracing::info!(server = %server.key(), old = server.weight(), new, "agent set weight");
                        server.set_weight(new);
                        backend.reweighted();
                        let _ = events.send(Event::Weight {
                            server: server.key(),
                            weight: new,
                            by: "agent".into(),
                        });
                    }
                }
                if let Some(a) = reply.admin {
                    if a != server.agent_admin() {
                        tracing::info!(server = %server.key(), state = a.as_str(), "agent set admin state");
                        server.set_agent_admin(a);
                        backend.wake_queue();
                        let _ = events.send(Event::Admin {
                            server: server.key(),
                            state: a.as_str().into(),
                            by: "agent".into(),
                        });
                    }
                }
                if let Some(h) = reply.health {
                    let reason = format!("agent: {}", line.trim());
                    let _ = forced.send(Input::Forced { health: h, reason }).await;
                }
            }
            // HAProxy: an unreachable agent changes nothing; the regular
            // check judges connectivity.
            Err(e) => tracing::debug!(server = %server.key(), error = %e, "agent unreachable"),
        }
        if !wait(inter, &mut stop).await {
            return;
        }
    }
}
