//! The DHCPv4 client protocol (RFC 2131) as a pure state machine: an input
//! and `now` in, actions out. No sockets and no clock reads here; the
//! driver in [`super::client`] owns those.
//!
//! ```text
//!  Start --DISCOVER--> SELECTING --OFFER/REQUEST--> REQUESTING --ACK--> BOUND
//!    ^                  (retransmit 4,8..64 s)       (4 tries, NAK)      | T1
//!    |                                                                   v
//!    +---- NAK / lease expiry <-- REBINDING <--T2-- RENEWING <----------+
//!                                 (broadcast)       (unicast to server)
//!  Release (shutdown): RELEASE to the server, then RELEASED (no timers).
//! ```
//!
//! Times are `Duration`s since an origin the driver picks (its monotonic
//! clock), so replay tests pass exact times.

use std::net::Ipv4Addr;
use std::time::Duration;

use dhcproto::v4::{DhcpOption, Message, MessageType, Opcode, OptionCode};
use dhcproto::{Decodable, Decoder, Encodable};
use serde::{Deserialize, Serialize};

use super::lease::Lease;
use super::options::keep_known;

/// First retransmission delay (RFC 2131 section 4.1: 4 s, doubling).
pub const INITIAL_RETRANSMIT: Duration = Duration::from_secs(4);
/// Retransmission delay cap (RFC 2131 section 4.1: 64 s).
pub const MAX_RETRANSMIT: Duration = Duration::from_secs(64);
/// Randomisation of each delay, plus or minus (RFC 2131 section 4.1).
pub const RETRANSMIT_JITTER: Duration = Duration::from_secs(1);
/// REQUESTs sent in REQUESTING before starting over with a DISCOVER.
pub const REQUEST_ATTEMPTS: u32 = 4;
/// Shortest wait between retransmissions in RENEWING and REBINDING (RFC
/// 2131 section 4.4.5).
pub const MIN_RENEW_RETRANSMIT: Duration = Duration::from_secs(60);
/// Largest DHCP message we accept (option 57): an Ethernet MTU's worth.
pub const MAX_MESSAGE_SIZE: u16 = 1500;

/// Fixed facts about this client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The interface's MAC address (`chaddr` and the client identifier).
    pub mac: [u8; 6],
    /// Sent as option 12 so the server can register the name.
    pub hostname: Option<String>,
    /// First retransmission delay.
    pub initial_retransmit: Duration,
    /// Retransmission delay cap.
    pub max_retransmit: Duration,
    /// Random spread of each delay, plus or minus; zero in replay tests.
    pub jitter: Duration,
    /// Seed of the transaction ids and jitter.
    pub seed: u64,
}

impl Config {
    /// RFC 2131 timings for `mac`.
    pub fn new(mac: [u8; 6], seed: u64) -> Self {
        Self {
            mac,
            hostname: None,
            initial_retransmit: INITIAL_RETRANSMIT,
            max_retransmit: MAX_RETRANSMIT,
            jitter: RETRANSMIT_JITTER,
            seed,
        }
    }
}

/// RFC 2131 client states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum State {
    /// Not started.
    Init,
    /// DISCOVER sent, waiting for an OFFER.
    Selecting,
    /// REQUEST sent for an offer, waiting for the ACK.
    Requesting,
    /// Holding a lease until T1.
    Bound,
    /// Past T1: asking the leasing server to extend.
    Renewing,
    /// Past T2: asking any server to extend.
    Rebinding,
    /// Lease given back at shutdown; does nothing more.
    Released,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Input {
    /// Begin: send the first DISCOVER.
    Start,
    /// A UDP payload received on port 68.
    Packet(Vec<u8>),
    /// The timer set by the last [`Action::SetTimer`] fired.
    Timer,
    /// Shutdown: give the lease back.
    Release,
}

/// Where a message goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Destination {
    /// 255.255.255.255 from `source`, to every MAC.
    Broadcast,
    /// The leasing server, by the kernel's routing (RENEWING, RELEASE).
    Server(Ipv4Addr),
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    /// Send a DHCP message (the UDP payload) from port 68 to port 67.
    Send {
        /// DHCP message type, for logs.
        kind: String,
        /// IPv4 source address (0.0.0.0 until bound).
        source: Ipv4Addr,
        /// Where to.
        to: Destination,
        /// The encoded DHCP message.
        payload: Vec<u8>,
    },
    /// Call back with [`Input::Timer`] at this time; replaces any earlier one.
    SetTimer(Duration),
    /// Configure the interface from this lease (new, or changed on renewal).
    Configure(Lease),
    /// Remove this lease's address and routes (expired, NAKed, released).
    Deconfigure(Lease),
}

/// The client.
#[derive(Debug, Clone)]
pub struct Fsm {
    config: Config,
    state: State,
    rng: u64,
    xid: u32,
    /// When the current exchange began (for the `secs` field).
    started: Duration,
    /// When the last REQUEST went out (the lease counts from there).
    sent_at: Duration,
    delay: Duration,
    attempts: u32,
    offer: Option<(Ipv4Addr, Ipv4Addr)>,
    lease: Option<Lease>,
    deadline: Option<Duration>,
}

impl Fsm {
    /// A client in [`State::Init`].
    pub fn new(config: Config) -> Self {
        // xorshift must not start at zero.
        let rng = config.seed | 1;
        Self {
            delay: config.initial_retransmit,
            config,
            state: State::Init,
            rng,
            xid: 0,
            started: Duration::ZERO,
            sent_at: Duration::ZERO,
            attempts: 0,
            offer: None,
            lease: None,
            deadline: None,
        }
    }

    /// Current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The lease held, if any.
    pub fn lease(&self) -> Option<&Lease> {
        self.lease.as_ref()
    }

    /// When [`Input::Timer`] is due.
    pub fn deadline(&self) -> Option<Duration> {
        self.deadline
    }

    /// Feeds one input; returns what to do, in order.
    pub fn handle(&mut self, now: Duration, input: Input) -> Vec<Action> {
        let mut out = Vec::new();
        match input {
            Input::Start => {
                if matches!(self.state, State::Init | State::Released) {
                    self.discover(now, &mut out);
                }
            }
            Input::Timer => {
                if self.deadline.is_some_and(|d| now >= d) {
                    self.on_timer(now, &mut out);
                }
            }
            Input::Packet(bytes) => self.on_packet(now, &bytes, &mut out),
            Input::Release => self.release(&mut out),
        }
        out
    }

    fn on_timer(&mut self, now: Duration, out: &mut Vec<Action>) {
        match self.state {
            State::Init | State::Released => self.deadline = None,
            State::Selecting => {
                self.back_off();
                self.send(now, MessageType::Discover, out);
                self.retransmit_timer(now, out);
            }
            State::Requesting => {
                if self.attempts >= REQUEST_ATTEMPTS {
                    self.discover(now, out);
                } else {
                    self.back_off();
                    self.send(now, MessageType::Request, out);
                    self.retransmit_timer(now, out);
                }
            }
            State::Bound | State::Renewing | State::Rebinding => self.lease_timer(now, out),
        }
    }

    /// T1, T2, expiry and the retransmissions between them.
    fn lease_timer(&mut self, now: Duration, out: &mut Vec<Action>) {
        let Some(lease) = self.lease.clone() else {
            self.discover(now, out);
            return;
        };
        if lease.expires_at().is_some_and(|e| now >= e) {
            self.lease = None;
            out.push(Action::Deconfigure(lease));
            self.discover(now, out);
            return;
        }
        let (t2, expiry) = (lease.rebind_at(), lease.expires_at());
        let (state, until) = if t2.is_some_and(|t| now >= t) {
            (State::Rebinding, expiry)
        } else {
            (State::Renewing, t2)
        };
        if state != self.state {
            // Entering RENEWING or REBINDING starts a new exchange.
            self.new_exchange(now);
        }
        self.state = state;
        self.send(now, MessageType::Request, out);
        // RFC 2131 4.4.5: half the time left, at least 60 s, never past
        // the next state change.
        let next = until.map(|u| {
            let half = u.saturating_sub(now) / 2;
            (now + half.max(MIN_RENEW_RETRANSMIT)).min(u)
        });
        self.set_deadline(next, out);
    }

    fn on_packet(&mut self, now: Duration, bytes: &[u8], out: &mut Vec<Action>) {
        let Some(msg) = keep_known(bytes).and_then(|b| Message::from_bytes(&b).ok()) else {
            return;
        };
        // hlen before `chaddr()`, which slices by it; Ethernet's is 6.
        if msg.opcode() != Opcode::BootReply
            || msg.xid() != self.xid
            || msg.hlen() != 6
            || msg.chaddr() != self.config.mac
        {
            return;
        }
        let Some(kind) = msg.opts().msg_type() else {
            return;
        };
        match (self.state, kind) {
            (State::Selecting, MessageType::Offer) => {
                let Some(server) = server_id(&msg) else {
                    return;
                };
                if msg.yiaddr().is_unspecified() {
                    return;
                }
                self.offer = Some((msg.yiaddr(), server));
                self.state = State::Requesting;
                self.attempts = 0;
                self.delay = self.config.initial_retransmit;
                self.send(now, MessageType::Request, out);
                self.retransmit_timer(now, out);
            }
            (State::Requesting | State::Renewing | State::Rebinding, MessageType::Ack) => {
                let fallback = self
                    .offer
                    .map(|(_, s)| s)
                    .or(self.lease.as_ref().map(|l| l.server));
                let Some(new) = Lease::from_ack(&msg, self.sent_at, fallback) else {
                    return;
                };
                let old = self.lease.replace(new.clone());
                match old {
                    Some(old) if old.same_config(&new) => {}
                    Some(old) => {
                        if old.cidr() != new.cidr() {
                            out.push(Action::Deconfigure(old));
                        }
                        out.push(Action::Configure(new.clone()));
                    }
                    None => out.push(Action::Configure(new.clone())),
                }
                self.state = State::Bound;
                self.offer = None;
                self.set_deadline(new.renew_at(), out);
            }
            (State::Requesting | State::Renewing | State::Rebinding, MessageType::Nak) => {
                if let Some(old) = self.lease.take() {
                    out.push(Action::Deconfigure(old));
                }
                self.discover(now, out);
            }
            _ => {}
        }
    }

    fn release(&mut self, out: &mut Vec<Action>) {
        if let (Some(lease), State::Bound | State::Renewing | State::Rebinding) =
            (self.lease.take(), self.state)
        {
            self.xid = self.next_xid();
            let mut msg = self.message(MessageType::Release, lease.address);
            msg.opts_mut()
                .insert(DhcpOption::ServerIdentifier(lease.server));
            if let Ok(payload) = msg.to_vec() {
                out.push(Action::Send {
                    kind: "RELEASE".to_owned(),
                    source: lease.address,
                    to: Destination::Server(lease.server),
                    payload,
                });
            }
            out.push(Action::Deconfigure(lease));
        }
        self.state = State::Released;
        self.deadline = None;
    }

    fn discover(&mut self, now: Duration, out: &mut Vec<Action>) {
        self.state = State::Selecting;
        self.offer = None;
        self.new_exchange(now);
        self.send(now, MessageType::Discover, out);
        self.retransmit_timer(now, out);
    }

    fn new_exchange(&mut self, now: Duration) {
        self.xid = self.next_xid();
        self.started = now;
        self.attempts = 0;
        self.delay = self.config.initial_retransmit;
    }

    fn back_off(&mut self) {
        self.delay = (self.delay * 2).min(self.config.max_retransmit);
    }

    fn retransmit_timer(&mut self, now: Duration, out: &mut Vec<Action>) {
        let delay = self.jittered(self.delay);
        self.set_deadline(Some(now + delay), out);
    }

    fn set_deadline(&mut self, at: Option<Duration>, out: &mut Vec<Action>) {
        self.deadline = at;
        if let Some(at) = at {
            out.push(Action::SetTimer(at));
        }
    }

    fn send(&mut self, now: Duration, kind: MessageType, out: &mut Vec<Action>) {
        self.attempts += 1;
        let (ciaddr, to) = match (self.state, &self.lease) {
            (State::Renewing, Some(l)) => (l.address, Destination::Server(l.server)),
            (State::Rebinding, Some(l)) => (l.address, Destination::Broadcast),
            _ => (Ipv4Addr::UNSPECIFIED, Destination::Broadcast),
        };
        let mut msg = self.message(kind, ciaddr);
        let secs = now.saturating_sub(self.started).as_secs();
        msg.set_secs(u16::try_from(secs).unwrap_or(u16::MAX));
        if let (MessageType::Request, State::Requesting, Some((addr, server))) =
            (kind, self.state, self.offer)
        {
            msg.opts_mut().insert(DhcpOption::RequestedIpAddress(addr));
            msg.opts_mut().insert(DhcpOption::ServerIdentifier(server));
        }
        if kind == MessageType::Request {
            self.sent_at = now;
        }
        // Encoding our own well-formed message does not fail; if it ever
        // did, the retransmission timer still runs.
        if let Ok(payload) = msg.to_vec() {
            out.push(Action::Send {
                kind: kind_name(kind).to_owned(),
                source: ciaddr,
                to,
                payload,
            });
        }
    }

    fn message(&self, kind: MessageType, ciaddr: Ipv4Addr) -> Message {
        let mut msg = blank_message();
        msg.set_xid(self.xid)
            .set_ciaddr(ciaddr)
            .set_chaddr(&self.config.mac)
            .set_opcode(Opcode::BootRequest);
        let opts = msg.opts_mut();
        opts.insert(DhcpOption::MessageType(kind));
        let mut client_id = vec![1];
        client_id.extend_from_slice(&self.config.mac);
        opts.insert(DhcpOption::ClientIdentifier(client_id));
        if kind != MessageType::Release {
            opts.insert(DhcpOption::ParameterRequestList(vec![
                OptionCode::SubnetMask,
                OptionCode::Router,
                OptionCode::DomainNameServer,
                OptionCode::Hostname,
                OptionCode::DomainName,
                OptionCode::InterfaceMtu,
                OptionCode::NtpServers,
                OptionCode::AddressLeaseTime,
                OptionCode::Renewal,
                OptionCode::Rebinding,
                OptionCode::DomainSearch,
            ]));
            opts.insert(DhcpOption::MaxMessageSize(MAX_MESSAGE_SIZE));
            if let Some(name) = &self.config.hostname {
                // The short name: option 12 is a host name, not an FQDN.
                let short = name.split('.').next().unwrap_or(name);
                opts.insert(DhcpOption::Hostname(short.to_owned()));
            }
        }
        msg
    }

    fn next_random(&mut self) -> u64 {
        // xorshift64: enough for transaction ids and jitter.
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }

    fn next_xid(&mut self) -> u32 {
        let [a, b, c, d, ..] = self.next_random().to_be_bytes();
        u32::from_be_bytes([a, b, c, d])
    }

    fn jittered(&mut self, delay: Duration) -> Duration {
        let spread = u64::try_from(self.config.jitter.as_millis()).unwrap_or(u64::MAX);
        if spread == 0 {
            return delay;
        }
        let r = self.next_random() % (2 * spread + 1);
        let base = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis((base + r).saturating_sub(spread).max(1))
    }
}

/// An empty BOOTREQUEST, decoded from bytes. Not `Message::new_with_id`:
/// dhcproto's `Default` draws a random xid from `rand`, whose getrandom(2)
/// blocks until the kernel's RNG is seeded, which at early boot on a VM
/// without RDRAND (QEMU TCG) takes minutes. PID 1 must not wait for that.
fn blank_message() -> Message {
    // op=1 htype=1 hlen=6, zeros up to the options, magic cookie, END.
    let mut bytes = [0u8; 241];
    bytes[..3].copy_from_slice(&[1, 1, 6]);
    bytes[236..240].copy_from_slice(&[99, 130, 83, 99]);
    bytes[240] = 255;
    Message::decode(&mut Decoder::new(&bytes)).expect("a fixed, well-formed BOOTP header decodes")
}

fn server_id(msg: &Message) -> Option<Ipv4Addr> {
    match msg.opts().get(OptionCode::ServerIdentifier) {
        Some(DhcpOption::ServerIdentifier(ip)) if !ip.is_unspecified() => Some(*ip),
        _ => None,
    }
}

fn kind_name(kind: MessageType) -> &'static str {
    match kind {
        MessageType::Discover => "DISCOVER",
        MessageType::Request => "REQUEST",
        MessageType::Release => "RELEASE",
        _ => "OTHER",
    }
}

#[cfg(test)]
#[path = "fsm_tests.rs"]
mod tests;

#[cfg(test)]
mod blank_message_tests {
    use super::*;

    /// The template decodes to an empty BOOTREQUEST with no random xid.
    #[test]
    fn blank_message_is_an_empty_bootrequest() {
        let m = blank_message();
        assert_eq!(m.xid(), 0);
        assert_eq!(m.opcode(), Opcode::BootRequest);
        assert!(m.opts().iter().next().is_none());
    }
}
