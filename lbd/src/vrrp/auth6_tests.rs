//! The IPv6 receive path (open6 -> accept_v6 -> commit) with adverts
//! sealed by a peer's [`Authenticator`]: hmac over link-local sources and
//! ff02::12, as the kernel hands them over (no IP header, addresses and
//! hop limit beside the payload).

use std::time::Duration;

use super::*;
use crate::vrrp::fsm::Input;
use crate::vrrp::packet::{Advert, DecodeError, Version, VRRP_TTL};
use crate::vrrp::receive::{Dropped, Expect};
use crate::vrrp::receive6::accept_v6;
use crate::vrrp::socket6::VRRP_GROUP_V6;

const NOW_NS: u64 = 1_767_225_600_000_000_000;
const HMAC: &str = "auth_type = \"hmac\"\nauth_key = \"0123456789abcdef-shared\"\n";

fn a() -> Ipv6Addr {
    "fe80::1".parse().expect("ip")
}
fn b() -> Ipv6Addr {
    "fe80::2".parse().expect("ip")
}

/// An IPv6 multicast instance with `extra` config lines.
fn instance(extra: &str) -> Instance {
    toml::from_str(&format!(
        "interface = \"eth0\"\nvrid = 42\npriority = 100\n\
         virtual_ips = [\"fd00::100/64\"]\n{extra}"
    ))
    .expect("instance")
}

fn expect(auth: &Authenticator, me: Ipv6Addr) -> Expect {
    Expect {
        version: Version::V3,
        vrid: 42,
        src: me.into(),
        peers: Vec::new(),
        addr_count: 1,
        auth: auth.expected(),
    }
}

/// What the sender's driver does for one advert to ff02::12, then what
/// the receiving kernel reports.
fn send(auth: &mut Authenticator, cfg: &Instance, src: Ipv6Addr) -> Datagram6 {
    let dst = VRRP_GROUP_V6;
    let advert = Advert {
        version: Version::V3,
        vrid: cfg.vrid,
        priority: 150,
        advert_int_cs: 100,
        auth: auth.expected(),
        addrs: cfg.advertised_ips(),
    };
    let msg = advert.encode(src.into(), dst.into()).expect("encode");
    let stamp = auth.stamp(NOW_NS);
    let Outgoing::Payload(payload) = auth.seal6(stamp, src, dst, msg) else {
        panic!("IPv6 adverts go out on the VRRP socket");
    };
    Datagram6 {
        src,
        dst: Some(dst),
        hop_limit: Some(VRRP_TTL),
        payload,
    }
}

/// The receiver's path; `Ok` is what the FSM gets.
fn receive(auth: &mut Authenticator, expect: &Expect, d: &Datagram6) -> Result<Input, String> {
    let opened = auth.open6(d.clone()).map_err(|e| e.to_string())?;
    let input = accept_v6(expect, &opened.datagram).map_err(|e| e.to_string())?;
    auth.commit(&opened, NOW_NS).map_err(|e| e.to_string())?;
    Ok(input)
}

fn advert_input() -> Input {
    Input::Advert {
        src: IpAddr::V6(a()),
        priority: 150,
        advert_int: Duration::from_secs(1),
    }
}

/// Input: two hmac adverts from fe80::1, then the first again.
/// Output: both accepted in order, the replay refused.
#[test]
fn hmac_v6_pair_accepts_then_refuses_the_replay() {
    let cfg = instance(HMAC);
    let (mut sender, mut receiver) = (Authenticator::new(&cfg), Authenticator::new(&cfg));
    let e = expect(&receiver, b());
    let first = send(&mut sender, &cfg, a());
    assert_eq!(first.payload.len(), 8 + 16 + hmac_auth::TRAILER_LEN);
    assert_eq!(receive(&mut receiver, &e, &first), Ok(advert_input()));
    let second = send(&mut sender, &cfg, a());
    assert_eq!(receive(&mut receiver, &e, &second), Ok(advert_input()));
    let replayed = receive(&mut receiver, &e, &first).expect_err("replay");
    assert!(replayed.contains("not above"), "{replayed}");
}

/// Input: adverts with another key, without hmac, altered on the way, and
/// replayed from another source address.
/// Output: each refused by the tag check.
#[test]
fn hmac_v6_refuses_wrong_key_plain_altered_and_moved_adverts() {
    let cfg = instance(HMAC);
    let mut receiver = Authenticator::new(&cfg);
    let e = expect(&receiver, b());
    let wrong = instance("auth_type = \"hmac\"\nauth_key = \"another-16-chars-key\"\n");
    let d = send(&mut Authenticator::new(&wrong), &wrong, a());
    let err = receive(&mut receiver, &e, &d).expect_err("wrong key");
    assert!(err.contains("fails the hmac check"), "{err}");

    let plain = instance("");
    let d = send(&mut Authenticator::new(&plain), &plain, a());
    assert!(receive(&mut receiver, &e, &d).is_err(), "plain advert");

    let mut d = send(&mut Authenticator::new(&cfg), &cfg, a());
    d.payload[2] = 254; // priority raised on the way
    let err = receive(&mut receiver, &e, &d).expect_err("altered");
    assert!(err.contains("fails the hmac check"), "{err}");

    let mut d = send(&mut Authenticator::new(&cfg), &cfg, a());
    d.src = "fe80::3".parse().expect("ip");
    let err = receive(&mut receiver, &e, &d).expect_err("other source");
    assert!(err.contains("fails the hmac check"), "{err}");
}

/// Input: an hmac advert at a node without hmac.
/// Output: dropped as a length mismatch (the trailer is not an address).
#[test]
fn hmac_v6_advert_is_refused_without_hmac() {
    let cfg = instance(HMAC);
    let plain = instance("");
    let receiver = Authenticator::new(&plain);
    let d = send(&mut Authenticator::new(&cfg), &cfg, a());
    let opened = receiver.open6(d).expect("plain mode passes through");
    assert!(matches!(
        accept_v6(&expect(&receiver, b()), &opened.datagram),
        Err(Dropped::Malformed(DecodeError::LengthMismatch { .. }))
    ));
}

/// Input: an hmac advert whose destination the kernel did not report.
/// Output: passed through unchecked, then dropped by accept_v6.
#[test]
fn hmac_v6_without_destination_is_dropped() {
    let cfg = instance(HMAC);
    let mut receiver = Authenticator::new(&cfg);
    let e = expect(&receiver, b());
    let mut d = send(&mut Authenticator::new(&cfg), &cfg, a());
    d.dst = None;
    let err = receive(&mut receiver, &e, &d).expect_err("no destination");
    assert!(err.contains("did not report the destination"), "{err}");
}
