//! The DHCP driver: owns the sockets and the clock, feeds the [`Fsm`], and
//! hands init the lease events to apply.
//!
//! ```text
//!  init poll loop                      DhcpClient
//!  ──────────────                      ──────────
//!  poll(fd(), next_deadline()) ──► on_readable(now) ─► raw::decode ─► Fsm::handle(Packet)
//!                              └─► on_timer(now) ─────────────────► Fsm::handle(Timer)
//!  shutdown ─────────────────────► release(now) ─────────────────► Fsm::handle(Release)
//!                                      │ Action::Send      -> packet socket (broadcast)
//!                                      │                     or UDP socket (to the server)
//!                                      │ Action::SetTimer  -> next_deadline()
//!                                      └ Configure/Deconfigure -> returned as Event
//!                                                         -> net::apply_lease / remove_lease
//! ```

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use super::fsm::{Action, Config, Destination, Fsm, Input, State};
use super::lease::Lease;
use super::raw;
use super::socket::{PacketSocket, RECV_LEN};
use crate::net::netlink::{Link, Netlink, NetlinkError};

/// A failed DHCP step, naming the interface.
#[derive(Debug, thiserror::Error)]
pub enum DhcpError {
    #[error("{ifname}: looking up the interface: {source}")]
    Lookup {
        ifname: String,
        source: NetlinkError,
    },
    #[error("{ifname}: has no Ethernet MAC address, DHCP needs one")]
    NoMac { ifname: String },
    #[error("{ifname}: opening the DHCP packet socket (needs CAP_NET_RAW): {source}")]
    OpenSocket { ifname: String, source: io::Error },
    #[error("{ifname}: sending DHCP {kind}: {source}")]
    Send {
        ifname: String,
        kind: String,
        source: io::Error,
    },
    #[error("{ifname}: receiving DHCP replies: {source}")]
    Recv { ifname: String, source: io::Error },
    #[error("{ifname}: waiting for DHCP replies: {source}")]
    Poll { ifname: String, source: io::Error },
}

/// What init must act on.
#[derive(Debug)]
pub enum Event {
    /// Apply this lease (`net::apply_lease`), resolv.conf, NTP, hostname.
    Configure(Lease),
    /// Remove this lease's address and route (`net::remove_lease`).
    Deconfigure(Lease),
    /// Something went wrong; the client keeps going (retransmissions).
    Failed(DhcpError),
}

/// A DHCP client on one interface.
pub struct DhcpClient {
    fsm: Fsm,
    ifname: String,
    socket: PacketSocket,
    unicast: Option<(Ipv4Addr, UdpSocket)>,
    origin: Instant,
    buf: Vec<u8>,
    last_error: Option<String>,
}

impl DhcpClient {
    /// A client for `link`, not started yet. `hostname` goes out as
    /// option 12.
    pub fn new(link: &Link, hostname: Option<&str>, now: Instant) -> Result<Self, DhcpError> {
        let mac = link.mac.ok_or_else(|| DhcpError::NoMac {
            ifname: link.name.clone(),
        })?;
        let socket = PacketSocket::open(link.index).map_err(|source| DhcpError::OpenSocket {
            ifname: link.name.clone(),
            source,
        })?;
        // RandomState's keys come from the OS (getrandom, which does not
        // block at early boot); mixing in the MAC keeps two clones of one
        // VM apart even if their entropy is poor that early.
        let seed = RandomState::new().hash_one(mac);
        let mut config = Config::new(mac, seed);
        config.hostname = hostname.map(str::to_owned);
        Ok(Self {
            fsm: Fsm::new(config),
            ifname: link.name.clone(),
            socket,
            unicast: None,
            origin: now,
            buf: vec![0; RECV_LEN],
            last_error: None,
        })
    }

    /// Sends the first DISCOVER.
    pub fn start(&mut self, now: Instant) -> Vec<Event> {
        self.run(now, Input::Start)
    }

    /// The fd to poll for `POLLIN`.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }

    /// When to call [`Self::on_timer`].
    pub fn next_deadline(&self) -> Option<Instant> {
        self.fsm.deadline().map(|d| self.origin + d)
    }

    /// The protocol state, for the status screen.
    pub fn state(&self) -> State {
        self.fsm.state()
    }

    /// The lease held, if any.
    pub fn lease(&self) -> Option<&Lease> {
        self.fsm.lease()
    }

    /// The last failure (send, receive), for the console.
    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }

    /// The interface name.
    pub fn ifname(&self) -> &str {
        &self.ifname
    }

    /// Reads every queued frame and feeds the DHCP replies to the machine.
    pub fn on_readable(&mut self, now: Instant) -> Vec<Event> {
        let mut events = Vec::new();
        loop {
            let n = match self.socket.recv(&mut self.buf) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    events.push(Event::Failed(DhcpError::Recv {
                        ifname: self.ifname.clone(),
                        source,
                    }));
                    break;
                }
            };
            let Some(frame) = self.buf.get(..n) else {
                break;
            };
            // Frames that are not DHCP replies to port 68 are dropped here.
            if let Ok(payload) = raw::decode(frame) {
                let input = Input::Packet(payload.to_vec());
                events.extend(self.run(now, input));
            }
        }
        self.drain_unicast();
        self.note_failures(&events);
        events
    }

    fn note_failures(&mut self, events: &[Event]) {
        if let Some(Event::Failed(e)) = events.iter().rev().find(|e| matches!(e, Event::Failed(_)))
        {
            self.last_error = Some(e.to_string());
        }
    }

    /// Fires the timer if it is due.
    pub fn on_timer(&mut self, now: Instant) -> Vec<Event> {
        self.run(now, Input::Timer)
    }

    /// Gives the lease back (shutdown); the client does nothing afterwards.
    pub fn release(&mut self, now: Instant) -> Vec<Event> {
        self.run(now, Input::Release)
    }

    fn run(&mut self, now: Instant, input: Input) -> Vec<Event> {
        let at = now.saturating_duration_since(self.origin);
        let mut events = Vec::new();
        for action in self.fsm.handle(at, input) {
            match action {
                Action::Send {
                    kind,
                    source,
                    to,
                    payload,
                } => {
                    if let Err(e) = self.send(source, to, &payload) {
                        events.push(Event::Failed(DhcpError::Send {
                            ifname: self.ifname.clone(),
                            kind,
                            source: e,
                        }));
                    }
                }
                Action::SetTimer(_) => {}
                Action::Configure(lease) => events.push(Event::Configure(lease)),
                Action::Deconfigure(lease) => {
                    self.unicast = None;
                    events.push(Event::Deconfigure(lease));
                }
            }
        }
        self.note_failures(&events);
        events
    }

    fn send(&mut self, source: Ipv4Addr, to: Destination, payload: &[u8]) -> io::Result<()> {
        match to {
            Destination::Broadcast => {
                let packet = raw::encode(source, Ipv4Addr::BROADCAST, payload);
                self.socket.send_broadcast(&packet)
            }
            Destination::Server(server) => {
                let socket = self.unicast_socket(source)?;
                socket
                    .send_to(payload, SocketAddrV4::new(server, raw::SERVER_PORT))
                    .map(drop)
            }
        }
    }

    /// A UDP socket on our leased address, port 68: the kernel routes the
    /// unicast REQUEST and RELEASE to the server, and replies to port 68
    /// find a socket (no ICMP port unreachable). The replies themselves are
    /// read on the packet socket; this one is drained and ignored.
    fn unicast_socket(&mut self, source: Ipv4Addr) -> io::Result<&UdpSocket> {
        if self.unicast.as_ref().is_none_or(|(a, _)| *a != source) {
            let socket = UdpSocket::bind(SocketAddrV4::new(source, raw::CLIENT_PORT))?;
            socket.set_nonblocking(true)?;
            self.unicast = Some((source, socket));
        }
        match &self.unicast {
            Some((_, s)) => Ok(s),
            None => Err(io::Error::from(io::ErrorKind::NotConnected)),
        }
    }

    fn drain_unicast(&mut self) {
        if let Some((_, socket)) = &self.unicast {
            let mut scratch = [0u8; 64];
            while socket.recv(&mut scratch).is_ok() {}
        }
    }
}

/// Boot's blocking helper: runs a client on `ifname` until it holds a lease
/// or `timeout` passes. Returns the client (keep it in the poll loop: it
/// renews the lease, or keeps looking for one) and the lease to apply, or
/// `None` when none came in time ([`DhcpClient::last_error`] says if
/// something failed; a later [`Event::Configure`] brings the lease).
/// Errors only when the client cannot start.
pub fn acquire_lease(
    ifname: &str,
    hostname: Option<&str>,
    timeout: Duration,
) -> Result<(DhcpClient, Option<Lease>), DhcpError> {
    let link = Netlink::open()
        .and_then(|mut nl| nl.link(ifname))
        .map_err(|source| DhcpError::Lookup {
            ifname: ifname.to_owned(),
            source,
        })?;
    let start = Instant::now();
    let end = start + timeout;
    let mut client = DhcpClient::new(&link, hostname, start)?;
    let mut events = client.start(start);
    loop {
        for event in events.drain(..) {
            match event {
                Event::Configure(lease) => return Ok((client, Some(lease))),
                Event::Deconfigure(_) | Event::Failed(_) => {}
            }
        }
        let now = Instant::now();
        if now >= end {
            return Ok((client, None));
        }
        let wake = client.next_deadline().map_or(end, |d| d.min(end));
        let wait = wake.saturating_duration_since(now);
        let ms = u16::try_from(wait.as_millis().saturating_add(1)).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(client.fd(), PollFlags::POLLIN)];
        let ready = match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(n) => n > 0,
            Err(nix::errno::Errno::EINTR) => false,
            Err(e) => {
                return Err(DhcpError::Poll {
                    ifname: ifname.to_owned(),
                    source: e.into(),
                })
            }
        };
        let now = Instant::now();
        if ready {
            events = client.on_readable(now);
        }
        if client.next_deadline().is_some_and(|d| now >= d) {
            events.extend(client.on_timer(now));
        }
    }
}
