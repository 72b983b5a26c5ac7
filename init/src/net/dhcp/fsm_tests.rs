//! Replay tests of the DHCP client machine: inputs at exact times, the
//! actions compared. Server replies are built from the client's own
//! requests (same xid and chaddr), as a server would.

use std::net::Ipv4Addr;
use std::time::Duration;

use dhcproto::v4::{DhcpOption, Message, MessageType, Opcode, OptionCode};
use dhcproto::{Decodable, Encodable};

use super::*;

const MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const ADDR: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 50);
const SERVER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const DNS: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 53);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn s(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn fsm() -> Fsm {
    let mut config = Config::new(MAC, 42);
    config.jitter = Duration::ZERO;
    config.hostname = Some("lb1.example.com".to_owned());
    Fsm::new(config)
}

/// The one message an action list sends, decoded, with where it goes.
fn sent(actions: &[Action]) -> (Message, Ipv4Addr, Destination) {
    let sends: Vec<_> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Send {
                source,
                to,
                payload,
                ..
            } => Some((payload, *source, *to)),
            _ => None,
        })
        .collect();
    assert_eq!(sends.len(), 1, "expected one send in {actions:?}");
    let (payload, source, to) = sends[0];
    let msg = Message::from_bytes(payload).expect("client sends valid DHCP");
    (msg, source, to)
}

fn timers(actions: &[Action]) -> Vec<Duration> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::SetTimer(t) => Some(*t),
            _ => None,
        })
        .collect()
}

/// A server reply to `request` of type `kind` offering `ADDR`.
fn reply(request: &Message, kind: MessageType, lease_secs: u32) -> Input {
    let mut m = Message::new_with_id(
        request.xid(),
        Ipv4Addr::UNSPECIFIED,
        if kind == MessageType::Nak {
            Ipv4Addr::UNSPECIFIED
        } else {
            ADDR
        },
        SERVER,
        Ipv4Addr::UNSPECIFIED,
        &request.chaddr()[..6],
    );
    m.set_opcode(Opcode::BootReply);
    let o = m.opts_mut();
    o.insert(DhcpOption::MessageType(kind));
    o.insert(DhcpOption::ServerIdentifier(SERVER));
    if kind != MessageType::Nak {
        o.insert(DhcpOption::AddressLeaseTime(lease_secs));
        o.insert(DhcpOption::SubnetMask(Ipv4Addr::new(255, 255, 255, 0)));
        o.insert(DhcpOption::Router(vec![SERVER]));
        o.insert(DhcpOption::DomainNameServer(vec![DNS]));
        o.insert(DhcpOption::NtpServers(vec![SERVER]));
        o.insert(DhcpOption::Hostname("lb1".to_owned()));
        o.insert(DhcpOption::DomainName("example.com".to_owned()));
    }
    Input::Packet(m.to_vec().expect("test reply encodes"))
}

/// Start at 0, OFFER and ACK at `at`: returns the machine, bound with a
/// lease of `lease_secs` that started at `at`.
fn bound(at: Duration, lease_secs: u32) -> Fsm {
    let mut c = fsm();
    let (discover, ..) = sent(&c.handle(Duration::ZERO, Input::Start));
    let (request, ..) = sent(&c.handle(at, reply(&discover, MessageType::Offer, lease_secs)));
    c.handle(at, reply(&request, MessageType::Ack, lease_secs));
    assert_eq!(c.state(), State::Bound);
    c
}

fn opt(msg: &Message, code: OptionCode) -> Option<&DhcpOption> {
    msg.opts().get(code)
}

#[test]
fn discover_offer_request_ack() {
    // Input: Start at 0; an OFFER at 100 ms; the ACK at 200 ms.
    // Output: DISCOVER broadcast with timer 4 s; REQUEST broadcast for the
    // offered address and server with timer 4.1 s; Configure with the
    // options and a timer at T1 = 1800 s after the REQUEST went out.
    let mut c = fsm();
    let a = c.handle(Duration::ZERO, Input::Start);
    let (discover, source, to) = sent(&a);
    assert_eq!(discover.opts().msg_type(), Some(MessageType::Discover));
    assert_eq!(
        (source, to),
        (Ipv4Addr::UNSPECIFIED, Destination::Broadcast)
    );
    assert_eq!(&discover.chaddr()[..6], &MAC);
    assert_eq!(
        opt(&discover, OptionCode::ClientIdentifier),
        Some(&DhcpOption::ClientIdentifier(vec![1, 2, 0, 0, 0, 0, 1]))
    );
    assert_eq!(
        opt(&discover, OptionCode::Hostname),
        Some(&DhcpOption::Hostname("lb1".to_owned()))
    );
    assert_eq!(timers(&a), vec![s(4)]);
    assert_eq!(c.state(), State::Selecting);

    let a = c.handle(ms(100), reply(&discover, MessageType::Offer, 3600));
    let (request, source, to) = sent(&a);
    assert_eq!(request.opts().msg_type(), Some(MessageType::Request));
    assert_eq!(request.xid(), discover.xid(), "same exchange");
    assert_eq!(
        (source, to),
        (Ipv4Addr::UNSPECIFIED, Destination::Broadcast)
    );
    assert_eq!(request.ciaddr(), Ipv4Addr::UNSPECIFIED);
    assert_eq!(
        opt(&request, OptionCode::RequestedIpAddress),
        Some(&DhcpOption::RequestedIpAddress(ADDR))
    );
    assert_eq!(
        opt(&request, OptionCode::ServerIdentifier),
        Some(&DhcpOption::ServerIdentifier(SERVER))
    );
    assert_eq!(timers(&a), vec![ms(4100)]);
    assert_eq!(c.state(), State::Requesting);

    let a = c.handle(ms(200), reply(&request, MessageType::Ack, 3600));
    let expected = Lease {
        address: ADDR,
        prefix: 24,
        routers: vec![SERVER],
        dns: vec![DNS],
        ntp: vec![SERVER],
        hostname: Some("lb1".to_owned()),
        domain: Some("example.com".to_owned()),
        search: Vec::new(),
        mtu: None,
        server: SERVER,
        start: ms(100),
        length: Some(s(3600)),
        t1: Some(s(1800)),
        t2: Some(s(3150)),
    };
    assert_eq!(
        a,
        vec![
            Action::Configure(expected.clone()),
            Action::SetTimer(ms(1_800_100))
        ]
    );
    assert_eq!(c.state(), State::Bound);
    assert_eq!(c.lease(), Some(&expected));
}

#[test]
fn discover_backs_off_to_64_seconds() {
    // Input: Start at 0, then each timer as it falls due, no server.
    // Output: DISCOVERs with the same xid at 0, 4, 12, 28, 60, 124 s
    // (delays 4, 8, 16, 32, 64, 64), `secs` counting up; a timer that
    // fires early does nothing.
    let mut c = fsm();
    let (first, ..) = sent(&c.handle(Duration::ZERO, Input::Start));
    assert!(
        c.handle(s(3), Input::Timer).is_empty(),
        "early timer is ignored"
    );
    let mut at = s(4);
    for next in [12, 28, 60, 124, 188] {
        let a = c.handle(at, Input::Timer);
        let (d, ..) = sent(&a);
        assert_eq!(d.xid(), first.xid());
        assert_eq!(u64::from(d.secs()), at.as_secs());
        assert_eq!(timers(&a), vec![s(next)]);
        at = s(next);
    }
}

#[test]
fn unanswered_requests_start_over() {
    // Input: an OFFER at 0, then the REQUEST timers at 4, 12 and 28 s.
    // Output: REQUEST again at 4 and 12 s; at 28 s, after four REQUESTs,
    // a DISCOVER with a new xid and the backoff back at 4 s.
    let mut c = fsm();
    let (discover, ..) = sent(&c.handle(Duration::ZERO, Input::Start));
    sent(&c.handle(Duration::ZERO, reply(&discover, MessageType::Offer, 600)));
    for (at, next) in [(4, 12), (12, 28)] {
        let a = c.handle(s(at), Input::Timer);
        assert_eq!(sent(&a).0.opts().msg_type(), Some(MessageType::Request));
        assert_eq!(timers(&a), vec![s(next)]);
    }
    let a = c.handle(s(28), Input::Timer);
    assert_eq!(c.state(), State::Requesting, "fourth REQUEST still waits");
    assert_eq!(sent(&a).0.opts().msg_type(), Some(MessageType::Request));
    let a = c.handle(s(60), Input::Timer);
    let (d, ..) = sent(&a);
    assert_eq!(d.opts().msg_type(), Some(MessageType::Discover));
    assert_ne!(d.xid(), discover.xid());
    assert_eq!(timers(&a), vec![s(64)]);
    assert_eq!(c.state(), State::Selecting);
}

#[test]
fn renew_rebind_expire() {
    // Input: bound at 0 with a 1000 s lease (T1 500, T2 875), no server
    // answers afterwards; each timer as it falls due.
    // Output: RENEWING at 500 s, REQUEST unicast to the server from our
    // address, retransmitted at half the time left to T2 but at least
    // 60 s apart; REBINDING at 875 s with broadcasts and a new xid; at
    // 1000 s Deconfigure and a fresh DISCOVER.
    let mut c = bound(Duration::ZERO, 1000);
    assert_eq!(c.deadline(), Some(s(500)));
    let a = c.handle(s(500), Input::Timer);
    let (renew, source, to) = sent(&a);
    assert_eq!(c.state(), State::Renewing);
    assert_eq!((source, to), (ADDR, Destination::Server(SERVER)));
    assert_eq!(renew.ciaddr(), ADDR);
    assert_eq!(opt(&renew, OptionCode::RequestedIpAddress), None);
    assert_eq!(opt(&renew, OptionCode::ServerIdentifier), None);
    assert_eq!(timers(&a), vec![ms(687_500)]);
    for (at, next) in [(687_500, 781_250), (781_250, 841_250), (841_250, 875_000)] {
        let a = c.handle(ms(at), Input::Timer);
        let (m, _, to) = sent(&a);
        assert_eq!((m.xid(), to), (renew.xid(), Destination::Server(SERVER)));
        assert_eq!(timers(&a), vec![ms(next)]);
    }
    let a = c.handle(s(875), Input::Timer);
    let (rebind, source, to) = sent(&a);
    assert_eq!(c.state(), State::Rebinding);
    assert_eq!((source, to), (ADDR, Destination::Broadcast));
    assert_ne!(rebind.xid(), renew.xid());
    assert_eq!(timers(&a), vec![ms(937_500)]);
    let a = c.handle(ms(937_500), Input::Timer);
    assert_eq!(timers(&a), vec![ms(997_500)]);
    let a = c.handle(ms(997_500), Input::Timer);
    assert_eq!(timers(&a), vec![s(1000)]);
    let a = c.handle(s(1000), Input::Timer);
    assert!(
        matches!(&a[0], Action::Deconfigure(l) if l.address == ADDR),
        "{a:?}"
    );
    assert_eq!(sent(&a).0.opts().msg_type(), Some(MessageType::Discover));
    assert_eq!(c.state(), State::Selecting);
    assert_eq!(c.lease(), None);
}

#[test]
fn renewal_ack_extends_without_reconfiguring() {
    // Input: bound at 0 for 1000 s; RENEWING at 500 s; the same lease
    // ACKed at 501 s.
    // Output: no Configure (nothing changed), the timer at the new T1 =
    // 500 + 500 s (the lease counts from the REQUEST).
    let mut c = bound(Duration::ZERO, 1000);
    let (renew, ..) = sent(&c.handle(s(500), Input::Timer));
    let a = c.handle(s(501), reply(&renew, MessageType::Ack, 1000));
    assert_eq!(a, vec![Action::SetTimer(s(1000))]);
    assert_eq!(c.state(), State::Bound);
}

#[test]
fn nak_while_renewing_drops_the_lease() {
    // Input: bound at 0; RENEWING at 500 s; a NAK at 501 s.
    // Output: Deconfigure, then a DISCOVER (new exchange).
    let mut c = bound(Duration::ZERO, 1000);
    let (renew, ..) = sent(&c.handle(s(500), Input::Timer));
    let a = c.handle(s(501), reply(&renew, MessageType::Nak, 0));
    assert!(matches!(&a[0], Action::Deconfigure(_)), "{a:?}");
    assert_eq!(sent(&a).0.opts().msg_type(), Some(MessageType::Discover));
    assert_eq!(c.state(), State::Selecting);
}

#[test]
fn nak_while_requesting_starts_over() {
    // Input: OFFER at 0, NAK at 1 s.
    // Output: DISCOVER, nothing to deconfigure.
    let mut c = fsm();
    let (discover, ..) = sent(&c.handle(Duration::ZERO, Input::Start));
    let (request, ..) = sent(&c.handle(Duration::ZERO, reply(&discover, MessageType::Offer, 600)));
    let a = c.handle(s(1), reply(&request, MessageType::Nak, 0));
    assert!(!a.iter().any(|x| matches!(x, Action::Deconfigure(_))));
    assert_eq!(sent(&a).0.opts().msg_type(), Some(MessageType::Discover));
}

#[test]
fn release_on_shutdown() {
    // Input: bound at 0; Release at 10 s.
    // Output: RELEASE unicast to the server from our address with the
    // server id, Deconfigure; RELEASED with no timer; a later timer or
    // packet does nothing.
    let mut c = bound(Duration::ZERO, 1000);
    let a = c.handle(s(10), Input::Release);
    let (release, source, to) = sent(&a);
    assert_eq!(release.opts().msg_type(), Some(MessageType::Release));
    assert_eq!((source, to), (ADDR, Destination::Server(SERVER)));
    assert_eq!(release.ciaddr(), ADDR);
    assert_eq!(
        opt(&release, OptionCode::ServerIdentifier),
        Some(&DhcpOption::ServerIdentifier(SERVER))
    );
    assert!(matches!(a.last(), Some(Action::Deconfigure(_))));
    assert_eq!((c.state(), c.deadline()), (State::Released, None));
    assert!(c.handle(s(500), Input::Timer).is_empty());
    // Without a lease there is nothing to give back.
    let mut idle = fsm();
    sent(&idle.handle(Duration::ZERO, Input::Start));
    assert!(idle.handle(s(1), Input::Release).is_empty());
    assert_eq!(idle.state(), State::Released);
}

#[test]
fn replies_that_are_not_ours_are_ignored() {
    // Input: in SELECTING, an OFFER with another xid, another chaddr, a
    // BOOTREQUEST, one without server id, an ACK, and garbage.
    // Output: nothing, still SELECTING.
    let mut c = fsm();
    let (discover, ..) = sent(&c.handle(Duration::ZERO, Input::Start));
    let tweak = |f: &dyn Fn(&mut Message)| {
        let Input::Packet(bytes) = reply(&discover, MessageType::Offer, 600) else {
            unreachable!("reply builds packets")
        };
        let mut m = Message::from_bytes(&bytes).expect("decodes");
        f(&mut m);
        Input::Packet(m.to_vec().expect("encodes"))
    };
    let inputs = vec![
        tweak(&|m| {
            m.set_xid(m.xid().wrapping_add(1));
        }),
        tweak(&|m| {
            m.set_chaddr(&[2, 0, 0, 0, 0, 2]);
        }),
        tweak(&|m| {
            m.set_opcode(Opcode::BootRequest);
        }),
        tweak(&|m| {
            m.opts_mut().remove(OptionCode::ServerIdentifier);
        }),
        reply(&discover, MessageType::Ack, 600),
        Input::Packet(vec![0xff; 7]),
        Input::Packet(Vec::new()),
    ];
    for input in inputs {
        assert!(c.handle(ms(10), input.clone()).is_empty(), "{input:?}");
    }
    assert_eq!(c.state(), State::Selecting);
}

#[test]
fn jitter_stays_within_a_second() {
    // Input: Start with the RFC's +-1 s jitter, for several seeds.
    // Output: first timer between 3 and 5 s.
    for seed in 1..20 {
        let mut c = Fsm::new(Config::new(MAC, seed));
        let t = timers(&c.handle(Duration::ZERO, Input::Start));
        assert!(t[0] >= s(3) && t[0] <= s(5), "seed {seed}: {t:?}");
    }
}

#[test]
fn infinite_lease_sets_no_timer() {
    // Input: OFFER and ACK at 0 with lease time 0xffffffff.
    // Output: Configure with no length, T1 or T2, and no timer: BOUND for
    // good (RFC 2132 section 9.2).
    let mut c = fsm();
    let (discover, ..) = sent(&c.handle(Duration::ZERO, Input::Start));
    let (request, ..) = sent(&c.handle(
        Duration::ZERO,
        reply(&discover, MessageType::Offer, u32::MAX),
    ));
    let a = c.handle(ms(5), reply(&request, MessageType::Ack, u32::MAX));
    assert!(
        matches!(&a[..], [Action::Configure(l)] if l.length.is_none() && l.t1.is_none()),
        "{a:?}"
    );
    assert_eq!((c.state(), c.deadline()), (State::Bound, None));
}

#[test]
fn renewal_with_a_new_address_reconfigures() {
    // Input: bound at 0 for 1000 s; RENEWING at 500 s; an ACK at 501 s
    // for another address.
    // Output: Deconfigure the old lease, Configure the new one, timer at
    // its T1 (500 + 500 s).
    let mut c = bound(Duration::ZERO, 1000);
    let (renew, ..) = sent(&c.handle(s(500), Input::Timer));
    let Input::Packet(bytes) = reply(&renew, MessageType::Ack, 1000) else {
        unreachable!("reply builds packets")
    };
    let mut m = Message::from_bytes(&bytes).expect("decodes");
    let other = Ipv4Addr::new(192, 0, 2, 51);
    m.set_yiaddr(other);
    let a = c.handle(s(501), Input::Packet(m.to_vec().expect("encodes")));
    assert!(
        matches!(&a[0], Action::Deconfigure(l) if l.address == ADDR),
        "{a:?}"
    );
    assert!(
        matches!(&a[1], Action::Configure(l) if l.address == other),
        "{a:?}"
    );
    assert_eq!(a[2], Action::SetTimer(s(1000)));
    assert_eq!(a.len(), 3);
}

#[test]
fn names_from_the_server_must_be_host_names() {
    // Input: an ACK whose host name carries a newline and whose domain
    // name is fine but upper case.
    // Output: the lease has no host name and the domain in lower case.
    let mut c = fsm();
    let (discover, ..) = sent(&c.handle(Duration::ZERO, Input::Start));
    let (request, ..) = sent(&c.handle(Duration::ZERO, reply(&discover, MessageType::Offer, 600)));
    let Input::Packet(bytes) = reply(&request, MessageType::Ack, 600) else {
        unreachable!("reply builds packets")
    };
    let mut m = Message::from_bytes(&bytes).expect("decodes");
    m.opts_mut()
        .insert(DhcpOption::Hostname("evil\nnameserver 6.6.6.6".to_owned()));
    m.opts_mut()
        .insert(DhcpOption::DomainName("Example.COM".to_owned()));
    c.handle(ms(1), Input::Packet(m.to_vec().expect("encodes")));
    let lease = c.lease().expect("bound");
    assert_eq!(lease.hostname, None);
    assert_eq!(lease.domain.as_deref(), Some("example.com"));
}

#[test]
fn mangled_replies_never_panic() {
    // Input: 6000 valid replies (an OFFER in SELECTING, an ACK in
    // REQUESTING, an ACK in RENEWING) with 1 to 8 random bytes changed,
    // random options of the kinds the client reads, random truncations.
    // Output: no panic (the ACKs reach `Lease::from_ack` and the option
    // decoders).
    let packet = |i: Input| match i {
        Input::Packet(bytes) => bytes,
        other => unreachable!("reply builds packets, not {other:?}"),
    };
    let mut selecting = fsm();
    let (discover, ..) = sent(&selecting.handle(Duration::ZERO, Input::Start));
    let offer = packet(reply(&discover, MessageType::Offer, 600));
    let mut requesting = selecting.clone();
    let (request, ..) = sent(&requesting.handle(Duration::ZERO, Input::Packet(offer.clone())));
    let ack = packet(reply(&request, MessageType::Ack, 600));
    let mut renewing = bound(Duration::ZERO, 1000);
    let (renew, ..) = sent(&renewing.handle(s(500), Input::Timer));
    let renew_ack = packet(reply(&renew, MessageType::Ack, 1000));
    let cases = [(selecting, offer), (requesting, ack), (renewing, renew_ack)];
    let mut rng: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut configured = 0;
    for round in 0..6000u64 {
        let (machine, base) = &cases[usize::try_from(round % 3).unwrap_or(0)];
        let mut c = machine.clone();
        let mut bytes = base.clone();
        for _ in 0..=(next() % 8) {
            let i = usize::try_from(next() % bytes.len() as u64).unwrap_or(0);
            bytes[i] = next().to_le_bytes()[0];
        }
        if next() % 2 == 0 {
            // A random option of a kind the client reads, before the end
            // option: random lengths and contents reach each decoder.
            let codes = [1u8, 3, 6, 12, 15, 26, 42, 51, 53, 54, 58, 59, 119];
            let code = codes[usize::try_from(next() % 13).unwrap_or(0)];
            let len = next().to_le_bytes()[0] % 24;
            let mut tlv = vec![code, len];
            tlv.extend((0..len).map(|_| next().to_le_bytes()[0]));
            let end = bytes.len() - 1;
            bytes.splice(end..end, tlv);
        }
        if next() % 4 == 0 {
            bytes.truncate(usize::try_from(next() % bytes.len() as u64).unwrap_or(0));
        }
        let actions = c.handle(ms(round), Input::Packet(bytes.clone()));
        if actions.iter().any(|a| matches!(a, Action::Configure(_))) {
            configured += 1;
        }
        let _ = super::super::raw::decode(&bytes);
        c.handle(s(600), Input::Timer);
    }
    // Not all mangled packets were thrown out early: many reached a lease.
    assert!(
        configured > 500,
        "only {configured} rounds produced a lease"
    );
}
