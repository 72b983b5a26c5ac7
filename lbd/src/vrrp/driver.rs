//! Runs one VRRP instance: the [`Fsm`] with its socket, timers, netlink
//! and gratuitous ARPs / unsolicited neighbour advertisements around it.
//! IPv4 (v2 and v3) and IPv6 (v3).
//!
//! ```text
//!   raw socket (112) -----+
//!   AH socket (proto 51) -+-> auth, accept() > Advert ----+
//!     (IPv4, or IPv6 with accept_v6)                      |
//!   deadlines (sleep_until) ----------> TimerExpired -----+--> Fsm::handle
//!   tracking watch (backend health) --> Tracking ---------+        |
//!   link poll (carrier, 100 ms) ------> Tracking fault ---+        |
//!   stop watch (SIGTERM) -------------> Shutdown ---------+        v
//!        SendAdvert -> socket; Add/RemoveVips -> netlink; Announce ->
//!        AF_PACKET GARPs and NAs; Set/CancelTimer -> deadlines;
//!        StateChange -> tracing + control-socket event
//! ```
//! `auth` is [`Authenticator`]: open (ICV / tag) before `accept`, the
//! anti-replay counter after it; the AH socket exists for `auth_type =
//! "ah"` only. Its counters belong to the instance and survive a re-attach.
//!
//! At start, VIPs of this instance left on the interface (a predecessor
//! killed with -9 leaves them, so two nodes would answer) are removed: the
//! instance holds none until it is master.
//!
//! An interface that does not exist yet, or has no usable address yet,
//! does not stop lbd: the instance starts in Fault, says why, and the link
//! poll retries [`attach`] until it works (and again if the interface is
//! re-created, since the sockets are bound to the old one).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use tokio::sync::{broadcast, watch};
use tokio::time::Instant;

use super::attach::{attach, version_of, Attached, Received};
use super::auth::{realtime_ns, Authenticator, Outgoing, Throttle, LOG_EVERY};
use super::config::{Cidr, Instance};
use super::fsm::{Action, Fsm, Input, Params, Timer};
use super::garp::frame;
use super::ndisc;
use super::netlink::{Netlink, NetlinkError};
use super::packet::Advert;
use super::receive::Dropped;
use super::socket::recv_if_any;
use super::track::Tracking;
use crate::runtime::events::Event;

/// Gratuitous ARPs (and NAs) per burst (Keepalived's `garp_master_repeat`).
const GARP_BURST: usize = 5;
/// How often the interface's carrier is read (a netlink link dump).
const LINK_POLL: std::time::Duration = std::time::Duration::from_millis(100);

#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error("vrrp.{instance}: {source}")]
    Netlink {
        instance: String,
        source: NetlinkError,
    },
    #[error(
        "vrrp.{instance}: no interface {interface:?} in this network namespace: the instance \
         waits in FAULT until it appears (check the name in `interface`)"
    )]
    NoSuchLink { instance: String, interface: String },
    #[error(
        "vrrp.{instance}: interface {interface} has no IPv4 address to send adverts from: \
         set unicast_src_ip or give the interface an address"
    )]
    NoSource { instance: String, interface: String },
    #[error(
        "vrrp.{instance}: interface {interface} has no usable IPv6 link-local address to send \
         adverts from (down, IPv6 disabled, or duplicate address detection still running): \
         bring it up with IPv6 enabled or set unicast_src_ip"
    )]
    NoSource6 { instance: String, interface: String },
    #[error(
        "vrrp.{instance}: unicast_src_ip {src} is not (yet) a usable address of interface \
         {interface}: add it to the interface or fix unicast_src_ip"
    )]
    SourceNotLocal {
        instance: String,
        interface: String,
        src: IpAddr,
    },
    #[error("vrrp.{instance}: opening the {what} socket (needs CAP_NET_RAW): {source}")]
    Socket {
        instance: String,
        what: &'static str,
        source: std::io::Error,
    },
}

impl DriverError {
    /// Errors that can heal by themselves (the interface or its address
    /// appears): the instance waits in Fault instead of stopping lbd.
    pub fn waits(&self) -> bool {
        matches!(
            self,
            DriverError::NoSuchLink { .. }
                | DriverError::NoSource { .. }
                | DriverError::NoSource6 { .. }
                | DriverError::SourceNotLocal { .. }
        )
    }
}

/// One running instance.
pub struct Driver {
    name: String,
    cfg: Instance,
    /// `None` while waiting for the interface (the instance is in Fault).
    io: Option<Attached>,
    /// Why the last attach failed, logged once per distinct reason.
    waiting: Option<String>,
    auth: Authenticator,
    auth_log: Throttle,
    netlink: Netlink,
    fsm: Fsm,
    deadlines: [Option<Instant>; 3],
    events: broadcast::Sender<Event>,
}

impl Driver {
    /// Opens sockets, finds the interface and removes stale VIPs. A
    /// missing interface or address is logged and waited for (the
    /// instance starts in Fault); other failures are errors.
    pub fn open(
        name: &str,
        cfg: &Instance,
        events: broadcast::Sender<Event>,
    ) -> Result<Self, DriverError> {
        if cfg.auth().is_none() && !cfg.virtual_ips.is_empty() {
            // Keepalived says nothing here; an admin who forgot the secret
            // should hear it once at start, not find out from an incident.
            tracing::warn!(
                instance = name,
                "vrrp instance runs without authentication: any host on the segment can \
                 send adverts and take its virtual IPs; set auth_type = \"hmac\" with an \
                 auth_key on both nodes (on the appliance: vrrp.auth)"
            );
        }
        let mut netlink = Netlink::open().map_err(|source| DriverError::Netlink {
            instance: name.to_string(),
            source,
        })?;
        let mut waiting = None;
        let io = match attach(name, cfg, &mut netlink) {
            Ok(io) => Some(io),
            Err(e) if e.waits() => {
                tracing::warn!(instance = name, interface = %cfg.interface, error = %e,
                    "vrrp instance starts in FAULT");
                waiting = Some(e.to_string());
                None
            }
            Err(e) => return Err(e),
        };
        let unknown = if cfg.is_ipv4() {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        } else {
            IpAddr::V6(Ipv6Addr::UNSPECIFIED)
        };
        let params = Params {
            version: version_of(cfg),
            priority: cfg.priority,
            advert_int: cfg.advert_interval(),
            preempt: cfg.preempts(),
            preempt_delay: cfg.preempt_delay.map(|d| d.0).unwrap_or_default(),
            primary_addr: io.as_ref().map_or(unknown, |io| io.src),
            announce_repeat: Some(cfg.garp_delay.0),
            announce_refresh: cfg.garp_refresh.map(|d| d.0),
            sole_peer: cfg
                .unicast_peers
                .iter()
                .filter(|p| p.is_ipv4() == cfg.is_ipv4())
                .count()
                == 1,
        };
        Ok(Self {
            name: name.to_string(),
            cfg: cfg.clone(),
            io,
            waiting,
            auth: Authenticator::new(cfg),
            auth_log: Throttle::new(LOG_EVERY),
            netlink,
            fsm: Fsm::new(params),
            deadlines: [None; 3],
            events,
        })
    }

    /// Runs until `stop` turns true, then stops gracefully (priority 0,
    /// VIPs removed) and returns.
    pub async fn run(
        mut self,
        mut stop: watch::Receiver<bool>,
        mut tracking: watch::Receiver<Tracking>,
    ) {
        let mut backends = *tracking.borrow_and_update();
        let mut link_up = true;
        self.track(backends, link_up);
        self.feed(Input::Startup);
        let mut link_poll = tokio::time::interval(LINK_POLL);
        link_poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let next = self.deadlines.iter().flatten().min().copied();
            tokio::select! {
                received = receive(&mut self.io) => match received {
                    Ok(received) => self.admit(received),
                    Err(error) => {
                        tracing::warn!(instance = %self.name, %error, "receiving VRRP");
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    }
                },
                () = tokio::time::sleep_until(next.unwrap_or_else(Instant::now)), if next.is_some() => {
                    self.fire_due();
                }
                changed = tracking.changed() => {
                    if changed.is_err() { continue; }
                    backends = *tracking.borrow_and_update();
                    self.track(backends, link_up);
                }
                _ = link_poll.tick() => {
                    let attached = self.io.is_some();
                    let up = self.poll_link(link_up);
                    if up != link_up {
                        tracing::info!(instance = %self.name, interface = %self.cfg.interface, up, "link state");
                    }
                    if up != link_up || self.io.is_some() != attached {
                        link_up = up;
                        self.track(backends, link_up);
                    }
                }
                _ = stop.changed() => break,
            }
        }
        self.feed(Input::Shutdown);
    }

    /// Backend tracking plus the interface's carrier: a link without
    /// carrier, or an interface not attached yet, puts the instance in
    /// Fault.
    fn track(&mut self, backends: Tracking, link_up: bool) {
        self.feed(Input::Tracking {
            penalty: backends.penalty,
            fault: backends.fault || !link_up || self.io.is_none(),
        });
    }

    /// Reads the link's carrier; attaches when the interface (re)appears.
    fn poll_link(&mut self, was_up: bool) -> bool {
        let link = match self.netlink.link(&self.cfg.interface) {
            Ok(link) => link,
            Err(error) => {
                tracing::warn!(instance = %self.name, %error, "reading link state");
                return was_up;
            }
        };
        if let (Some(io), Some(l)) = (&self.io, &link) {
            if io.ifindex != l.index {
                tracing::warn!(instance = %self.name, interface = %self.cfg.interface,
                    "interface re-created: reopening the sockets");
                self.io = None;
            }
        }
        if self.io.is_none() && link.is_some() {
            self.try_attach();
        }
        link.is_some_and(|l| l.up)
    }

    fn try_attach(&mut self) {
        match attach(&self.name, &self.cfg, &mut self.netlink) {
            Ok(io) => {
                tracing::info!(instance = %self.name, interface = %self.cfg.interface,
                    src = %io.src, "vrrp instance attached to its interface");
                self.fsm.set_primary_addr(io.src);
                self.io = Some(io);
                self.waiting = None;
            }
            Err(e) => {
                let why = e.to_string();
                if self.waiting.as_ref() != Some(&why) {
                    tracing::warn!(instance = %self.name, interface = %self.cfg.interface,
                        error = %why, "vrrp instance stays in FAULT");
                    self.waiting = Some(why);
                }
            }
        }
    }

    fn fire_due(&mut self) {
        let now = Instant::now();
        for timer in [Timer::Advert, Timer::MasterDown, Timer::Announce] {
            let slot = &mut self.deadlines[timer_index(timer)];
            if slot.is_some_and(|at| at <= now) {
                *slot = None;
                self.feed(Input::TimerExpired(timer));
            }
        }
    }

    fn feed(&mut self, input: Input) {
        let now = Instant::now();
        tracing::trace!(instance = %self.name, ?input, "vrrp input");
        for action in self.fsm.handle(now, input) {
            self.apply(now, action);
        }
    }

    fn apply(&mut self, now: Instant, action: Action) {
        match action {
            Action::SendAdvert { priority } => self.send_advert(priority),
            Action::AddVips => self.vips(true),
            Action::RemoveVips => self.vips(false),
            Action::Announce => self.announce(),
            Action::SetTimer { timer, after } => {
                self.deadlines[timer_index(timer)] = Some(now + after);
            }
            Action::CancelTimer { timer } => self.deadlines[timer_index(timer)] = None,
            Action::StateChange { from, to, reason } => {
                tracing::info!(instance = %self.name, ?from, ?to, ?reason,
                    priority = self.fsm.effective_priority(), "vrrp state change");
                let _ = self.events.send(Event::Vrrp {
                    instance: self.name.clone(),
                    from,
                    to,
                    reason,
                    priority: self.fsm.effective_priority(),
                });
            }
        }
    }

    fn send_advert(&mut self, priority: u8) {
        let Some(io) = &self.io else {
            return;
        };
        let advert = Advert {
            version: io.expect.version,
            vrid: self.cfg.vrid,
            priority,
            advert_int_cs: u16::try_from(self.cfg.advert_interval().as_millis() / 10)
                .unwrap_or(u16::MAX),
            auth: io.expect.auth,
            addrs: self.cfg.advertised_ips(),
        };
        let stamp = self.auth.stamp(realtime_ns());
        for dst in &io.dests {
            let sent = advert
                .encode(io.src, *dst)
                .map_err(|e| e.to_string())
                .and_then(|bytes| match (io.src, *dst) {
                    (IpAddr::V4(s), IpAddr::V4(d)) => self
                        .auth
                        .seal(stamp, s, d, bytes)
                        .map_err(|e| e.to_string()),
                    (IpAddr::V6(s), IpAddr::V6(d)) => Ok(self.auth.seal6(stamp, s, d, bytes)),
                    _ => Err("source and destination of different IP families".to_string()),
                })
                .and_then(|out| transmit(io, *dst, &out).map_err(|e| e.to_string()));
            if let Err(error) = sent {
                tracing::warn!(instance = %self.name, %dst, %error, "sending advert");
            }
        }
    }

    /// One received message: authentication, the usual checks, then the
    /// anti-replay counter, then the FSM. Authentication failures are
    /// warnings (rate-limited): a peer with another key, or an attack.
    fn admit(&mut self, received: Received) {
        let Some(io) = &self.io else {
            return;
        };
        let opened = match received {
            Received::V4(datagram) => self.auth.open(datagram).map(|o| o.map(Received::V4)),
            Received::V6(datagram) => self.auth.open6(datagram).map(|o| o.map(Received::V6)),
        };
        let accepted = opened
            .map_err(|e| (true, e.to_string()))
            .and_then(|opened| {
                let input = io
                    .accept(&opened.datagram)
                    .map_err(|e| (matches!(e, Dropped::Auth), e.to_string()))?;
                self.auth
                    .commit(&opened, realtime_ns())
                    .map_err(|e| (true, e.to_string()))?;
                Ok(input)
            });
        match accepted {
            Ok(input) => self.feed(input),
            Err((false, reason)) => {
                tracing::debug!(instance = %self.name, %reason, "advert dropped");
            }
            Err((true, reason)) => {
                if let Some(suppressed) = self.auth_log.allow(Instant::now().into_std()) {
                    tracing::warn!(instance = %self.name, %reason, suppressed,
                        "advert dropped: authentication");
                }
            }
        }
    }

    fn vips(&mut self, add: bool) {
        let Some(ifindex) = self.io.as_ref().map(|io| io.ifindex) else {
            return;
        };
        let vips: Vec<Cidr> = self.cfg.virtual_ips.clone();
        for vip in vips {
            let done = if add {
                self.netlink.add(ifindex, vip)
            } else {
                self.netlink.delete(ifindex, vip)
            };
            match done {
                Ok(()) => tracing::info!(instance = %self.name, %vip, add, "virtual IP"),
                Err(error) => tracing::error!(instance = %self.name, %vip, %error, "virtual IP"),
            }
        }
    }

    fn announce(&mut self) {
        let Some(io) = &self.io else {
            return;
        };
        for vip in &self.cfg.virtual_ips {
            let f = match vip.addr {
                IpAddr::V4(v4) => frame(io.mac, v4).to_vec(),
                // From the link-local address (Keepalived does the same);
                // without one, from the VIP itself, an address we now hold.
                IpAddr::V6(v6) => ndisc::frame(io.mac, io.link_local.unwrap_or(v6), v6).to_vec(),
            };
            for _ in 0..GARP_BURST {
                if let Err(error) = io.garp.send(&f) {
                    tracing::warn!(instance = %self.name, %vip, %error, "gratuitous ARP / NA");
                    break;
                }
            }
        }
    }
}

/// The next message from the VRRP or the AH socket; never ready while
/// not attached.
async fn receive(io: &mut Option<Attached>) -> std::io::Result<Received> {
    match io {
        Some(io) => tokio::select! {
            r = io.transport.recv() => r,
            r = recv_if_any(&mut io.ah_socket) => r.map(Received::V4),
        },
        None => std::future::pending().await,
    }
}

/// Sends one sealed advert on the socket it is meant for.
fn transmit(io: &Attached, dst: IpAddr, out: &Outgoing) -> std::io::Result<()> {
    match (out, &io.ah_socket, dst) {
        (Outgoing::Payload(msg), _, _) => io.transport.send(dst, msg),
        (Outgoing::Datagram(datagram), Some(ah), IpAddr::V4(d)) => ah.send(d, datagram),
        (Outgoing::Datagram(_), _, _) => Err(std::io::Error::other("no AH socket")),
    }
}

fn timer_index(timer: Timer) -> usize {
    match timer {
        Timer::Advert => 0,
        Timer::MasterDown => 1,
        Timer::Announce => 2,
    }
}
