//! Runs one VRRP instance: the [`Fsm`] with its socket, timers, netlink
//! and gratuitous ARPs around it. IPv4 only for now (v2 and v3).
//!
//! ```text
//!   raw socket (112) -----+
//!   AH socket (proto 51) -+-> auth, accept() > Advert ----+
//!   deadlines (sleep_until) ----------> TimerExpired -----+--> Fsm::handle
//!   tracking watch (backend health) --> Tracking ---------+        |
//!   link poll (carrier, 100 ms) ------> Tracking fault ---+        |
//!   stop watch (SIGTERM) -------------> Shutdown ---------+        v
//!        SendAdvert -> socket; Add/RemoveVips -> netlink; Announce ->
//!        AF_PACKET GARPs; Set/CancelTimer -> deadlines; StateChange ->
//!        tracing + control-socket event
//! ```
//! `auth` is [`Authenticator`]: open (ICV / tag) before `accept`, the
//! anti-replay counter after it; the AH socket exists for `auth_type =
//! "ah"` only.
//! At start, VIPs of this instance left on the interface (a predecessor
//! killed with -9 leaves them, so two nodes would answer) are removed: the
//! instance holds none until it is master.

use std::net::{IpAddr, Ipv4Addr};

use tokio::sync::{broadcast, watch};
use tokio::time::Instant;

use super::ah_socket::{recv_if_any, AhSocket};
use super::auth::{realtime_ns, Authenticator, Outgoing, Throttle, LOG_EVERY};
use super::config::{Cidr, Instance};
use super::fsm::{Action, Fsm, Input, Params, Timer};
use super::garp::{frame, GarpSocket};
use super::netlink::{Netlink, NetlinkError};
use super::packet::{Advert, Version};
use super::receive::{accept, Expect};
use super::socket::{VrrpSocket, VRRP_GROUP_V4};
use super::track::Tracking;
use crate::runtime::events::Event;

/// Gratuitous ARPs per burst (Keepalived's `garp_master_repeat`).
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
    #[error("vrrp.{instance}: no interface {interface:?} in this network namespace")]
    NoSuchLink { instance: String, interface: String },
    #[error(
        "vrrp.{instance}: interface {interface} has no IPv4 address to send adverts from: \
         set unicast_src_ip or give the interface an address"
    )]
    NoSource { instance: String, interface: String },
    #[error("vrrp.{instance}: IPv6 instances are not driven yet (adverts over IPv6 come next)")]
    Ipv6 { instance: String },
    #[error("vrrp.{instance}: opening the {what} socket (needs CAP_NET_RAW): {source}")]
    Socket {
        instance: String,
        what: &'static str,
        source: std::io::Error,
    },
}

/// One running instance.
pub struct Driver {
    name: String,
    cfg: Instance,
    ifindex: u32,
    mac: [u8; 6],
    src: Ipv4Addr,
    dests: Vec<Ipv4Addr>,
    expect: Expect,
    socket: VrrpSocket,
    /// `auth_type = "ah"` only: AH in, whole datagrams out.
    ah_socket: Option<AhSocket>,
    auth: Authenticator,
    auth_log: Throttle,
    garp: GarpSocket,
    netlink: Netlink,
    fsm: Fsm,
    deadlines: [Option<Instant>; 3],
    events: broadcast::Sender<Event>,
}

fn version_of(cfg: &Instance) -> Version {
    if cfg.version == 2 {
        Version::V2
    } else {
        Version::V3
    }
}

impl Driver {
    /// Opens sockets, finds the interface and removes stale VIPs.
    pub fn open(
        name: &str,
        cfg: &Instance,
        events: broadcast::Sender<Event>,
    ) -> Result<Self, DriverError> {
        let instance = name.to_string();
        let nl_err = |source| DriverError::Netlink {
            instance: instance.clone(),
            source,
        };
        if !cfg.is_ipv4() {
            return Err(DriverError::Ipv6 { instance });
        }
        let mut netlink = Netlink::open().map_err(nl_err)?;
        let link = netlink
            .link(&cfg.interface)
            .map_err(nl_err)?
            .ok_or_else(|| DriverError::NoSuchLink {
                instance: instance.clone(),
                interface: cfg.interface.clone(),
            })?;
        let present = netlink.list(link.index).map_err(nl_err)?;
        let is_vip = |a: IpAddr| cfg.virtual_ips.iter().any(|c| c.addr == a);
        for stale in present.iter().filter(|c| is_vip(c.addr)) {
            tracing::warn!(instance = name, vip = %stale, "removing a VIP left by a previous run");
            netlink.delete(link.index, *stale).map_err(nl_err)?;
        }
        let src = match cfg.unicast_src_ip {
            Some(IpAddr::V4(a)) => Some(a),
            _ => present.iter().find_map(|c| match c.addr {
                IpAddr::V4(a) if !is_vip(c.addr) => Some(a),
                _ => None,
            }),
        }
        .ok_or_else(|| DriverError::NoSource {
            instance: instance.clone(),
            interface: cfg.interface.clone(),
        })?;
        let peers: Vec<Ipv4Addr> = cfg
            .unicast_peers
            .iter()
            .filter_map(|p| match p {
                IpAddr::V4(a) => Some(*a),
                IpAddr::V6(_) => None,
            })
            .collect();
        let multicast = peers.is_empty();
        let socket =
            VrrpSocket::open(&cfg.interface, link.index, src, multicast).map_err(|source| {
                DriverError::Socket {
                    instance: instance.clone(),
                    what: "raw VRRP",
                    source,
                }
            })?;
        let garp = GarpSocket::open(link.index).map_err(|source| DriverError::Socket {
            instance: instance.clone(),
            what: "AF_PACKET",
            source,
        })?;
        let version = version_of(cfg);
        let auth = Authenticator::new(cfg);
        let ah_socket = auth
            .uses_ah()
            .then(|| AhSocket::open(&cfg.interface, link.index, src, multicast))
            .transpose()
            .map_err(|source| DriverError::Socket {
                instance: instance.clone(),
                what: "raw AH",
                source,
            })?;
        let params = Params {
            version,
            priority: cfg.priority,
            advert_int: cfg.advert_interval(),
            preempt: cfg.preempts(),
            preempt_delay: cfg.preempt_delay.map(|d| d.0).unwrap_or_default(),
            primary_addr: IpAddr::V4(src),
            announce_repeat: Some(cfg.garp_delay.0),
            announce_refresh: cfg.garp_refresh.map(|d| d.0),
        };
        Ok(Self {
            name: instance,
            expect: Expect {
                version,
                vrid: cfg.vrid,
                src,
                peers: peers.clone(),
                addr_count: cfg.advertised_ips().len(),
                auth: auth.expected(),
            },
            dests: if multicast {
                vec![VRRP_GROUP_V4]
            } else {
                peers
            },
            cfg: cfg.clone(),
            ifindex: link.index,
            mac: link.mac,
            src,
            socket,
            ah_socket,
            auth,
            auth_log: Throttle::new(LOG_EVERY),
            garp,
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
                received = self.socket.recv() => match received {
                    Ok(datagram) => self.admit(datagram),
                    Err(error) => {
                        tracing::warn!(instance = %self.name, %error, "receiving VRRP");
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    }
                },
                received = recv_if_any(&mut self.ah_socket) => match received {
                    Ok(datagram) => self.admit(datagram),
                    Err(error) => {
                        tracing::warn!(instance = %self.name, %error, "receiving AH");
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
                    let up = match self.netlink.link(&self.cfg.interface) {
                        Ok(link) => link.is_some_and(|l| l.up),
                        Err(error) => {
                            tracing::warn!(instance = %self.name, %error, "reading link state");
                            link_up
                        }
                    };
                    if up != link_up {
                        tracing::info!(instance = %self.name, interface = %self.cfg.interface, up, "link state");
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
    /// carrier puts the instance in Fault.
    fn track(&mut self, backends: Tracking, link_up: bool) {
        self.feed(Input::Tracking {
            penalty: backends.penalty,
            fault: backends.fault || !link_up,
        });
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
                });
            }
        }
    }

    fn send_advert(&mut self, priority: u8) {
        let advert = Advert {
            version: self.expect.version,
            vrid: self.cfg.vrid,
            priority,
            advert_int_cs: u16::try_from(self.cfg.advert_interval().as_millis() / 10)
                .unwrap_or(u16::MAX),
            auth: self.expect.auth,
            addrs: self.cfg.advertised_ips(),
        };
        let stamp = self.auth.stamp(realtime_ns());
        for dst in &self.dests {
            let sent = advert
                .encode(IpAddr::V4(self.src), IpAddr::V4(*dst))
                .map_err(|e| e.to_string())
                .and_then(|bytes| {
                    self.auth
                        .seal(stamp, self.src, *dst, bytes)
                        .map_err(|e| e.to_string())
                })
                .and_then(|out| self.transmit(*dst, &out).map_err(|e| e.to_string()));
            if let Err(error) = sent {
                tracing::warn!(instance = %self.name, %dst, %error, "sending advert");
            }
        }
    }

    fn transmit(&self, dst: Ipv4Addr, out: &Outgoing) -> std::io::Result<()> {
        match (out, &self.ah_socket) {
            (Outgoing::Payload(msg), _) => self.socket.send(dst, msg),
            (Outgoing::Datagram(datagram), Some(ah)) => ah.send(dst, datagram),
            (Outgoing::Datagram(_), None) => Err(std::io::Error::other("no AH socket")),
        }
    }

    /// One received datagram: authentication, the usual checks, then the
    /// anti-replay counter, then the FSM. Authentication failures are
    /// warnings (rate-limited): a peer with another key, or an attack.
    fn admit(&mut self, datagram: Vec<u8>) {
        let checked = self.auth.open(datagram).map_err(|e| (true, e.to_string()));
        let accepted = checked.and_then(|opened| {
            let input = accept(&self.expect, &opened.datagram).map_err(|e| {
                let auth = matches!(e, super::receive::Dropped::Auth);
                (auth, e.to_string())
            })?;
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
        let vips: Vec<Cidr> = self.cfg.virtual_ips.clone();
        for vip in vips {
            let done = if add {
                self.netlink.add(self.ifindex, vip)
            } else {
                self.netlink.delete(self.ifindex, vip)
            };
            match done {
                Ok(()) => tracing::info!(instance = %self.name, %vip, add, "virtual IP"),
                Err(error) => tracing::error!(instance = %self.name, %vip, %error, "virtual IP"),
            }
        }
    }

    fn announce(&mut self) {
        for vip in &self.cfg.virtual_ips {
            let IpAddr::V4(v4) = vip.addr else {
                // Unsolicited neighbour advertisements: next step.
                continue;
            };
            let f = frame(self.mac, v4);
            for _ in 0..GARP_BURST {
                if let Err(error) = self.garp.send(&f) {
                    tracing::warn!(instance = %self.name, %vip, %error, "gratuitous ARP");
                    break;
                }
            }
        }
    }
}

fn timer_index(timer: Timer) -> usize {
    match timer {
        Timer::Advert => 0,
        Timer::MasterDown => 1,
        Timer::Announce => 2,
    }
}
