//! The whole receive path (open -> accept -> commit) for each mode, with
//! adverts sealed by a peer's [`Authenticator`].

use std::time::Duration;

use super::*;
use crate::vrrp::fsm::Input;
use crate::vrrp::packet::{Advert, Version, VRRP_TTL};
use crate::vrrp::receive::{accept, Dropped, Expect};

const NOW_NS: u64 = 1_767_225_600_000_000_000;

fn a() -> Ipv4Addr {
    Ipv4Addr::new(10, 0, 0, 1)
}
fn b() -> Ipv4Addr {
    Ipv4Addr::new(10, 0, 0, 2)
}

/// Node `me` of a unicast pair, with `extra` config lines.
fn instance(me: Ipv4Addr, peer: Ipv4Addr, extra: &str) -> Instance {
    toml::from_str(&format!(
        "interface = \"eth0\"\nvrid = 42\npriority = 100\nunicast_src_ip = \"{me}\"\n\
         unicast_peers = [\"{peer}\"]\nvirtual_ips = [\"10.0.0.100/24\"]\n{extra}"
    ))
    .expect("instance")
}

fn expect(cfg: &Instance, auth: &Authenticator, me: Ipv4Addr, peer: Ipv4Addr) -> Expect {
    Expect {
        version: if cfg.version == 2 {
            Version::V2
        } else {
            Version::V3
        },
        vrid: cfg.vrid,
        src: me.into(),
        peers: vec![peer.into()],
        addr_count: 1,
        auth: auth.expected(),
    }
}

/// What the sender's driver does for one advert to `dst`, then what the
/// kernel does for a protocol-112 payload (adds the IP header).
fn send(auth: &mut Authenticator, cfg: &Instance, src: Ipv4Addr, dst: Ipv4Addr) -> Vec<u8> {
    let advert = Advert {
        version: if cfg.version == 2 {
            Version::V2
        } else {
            Version::V3
        },
        vrid: cfg.vrid,
        priority: 150,
        advert_int_cs: 100,
        auth: auth.expected(),
        addrs: cfg.advertised_ips(),
    };
    let msg = advert.encode(src.into(), dst.into()).expect("encode");
    let stamp = auth.stamp(NOW_NS);
    match auth.seal(stamp, src, dst, msg).expect("seal") {
        Outgoing::Datagram(d) => d,
        Outgoing::Payload(p) => ip_header(src, dst, &p),
    }
}

fn ip_header(src: Ipv4Addr, dst: Ipv4Addr, payload: &[u8]) -> Vec<u8> {
    let total = u16::try_from(20 + payload.len()).expect("short");
    let mut d = vec![0x45, 0xc0];
    d.extend_from_slice(&total.to_be_bytes());
    d.extend_from_slice(&[0, 0, 0x40, 0, VRRP_TTL, IPPROTO_VRRP, 0, 0]);
    d.extend_from_slice(&src.octets());
    d.extend_from_slice(&dst.octets());
    d.extend_from_slice(payload);
    d
}

/// The receiver's path; `Ok` is what the FSM gets.
fn receive(auth: &mut Authenticator, expect: &Expect, datagram: &[u8]) -> Result<Input, String> {
    let opened = auth.open(datagram.to_vec()).map_err(|e| e.to_string())?;
    let input = accept(expect, &opened.datagram).map_err(|e| e.to_string())?;
    auth.commit(&opened, NOW_NS).map_err(|e| e.to_string())?;
    Ok(input)
}

fn advert_input() -> Input {
    Input::Advert {
        src: IpAddr::V4(a()),
        priority: 150,
        advert_int: Duration::from_secs(1),
    }
}

const HMAC: &str = "auth_type = \"hmac\"\nauth_key = \"0123456789abcdef-shared\"\n";
const AH: &str = "version = 2\nauth_type = \"ah\"\nauth_pass = \"secret\"\n";

#[test]
fn hmac_pair_accepts_then_refuses_the_replay() {
    let (ca, cb) = (instance(a(), b(), HMAC), instance(b(), a(), HMAC));
    let (mut sender, mut receiver) = (Authenticator::new(&ca), Authenticator::new(&cb));
    let e = expect(&cb, &receiver, b(), a());
    let first = send(&mut sender, &ca, a(), b());
    assert_eq!(receive(&mut receiver, &e, &first), Ok(advert_input()));
    let second = send(&mut sender, &ca, a(), b());
    assert_eq!(receive(&mut receiver, &e, &second), Ok(advert_input()));
    let replayed = receive(&mut receiver, &e, &first).expect_err("replay");
    assert!(replayed.contains("not above"), "{replayed}");
    assert!(receive(&mut receiver, &e, &second).is_err());
}

#[test]
fn hmac_wrong_key_and_plain_adverts_are_refused() {
    let cb = instance(b(), a(), HMAC);
    let mut receiver = Authenticator::new(&cb);
    let e = expect(&cb, &receiver, b(), a());
    let wrong = instance(
        a(),
        b(),
        "auth_type = \"hmac\"\nauth_key = \"another-16-chars-key\"\n",
    );
    let d = send(&mut Authenticator::new(&wrong), &wrong, a(), b());
    assert!(receive(&mut receiver, &e, &d)
        .expect_err("wrong key")
        .contains("fails the hmac check"));
    let plain = instance(a(), b(), "");
    let d = send(&mut Authenticator::new(&plain), &plain, a(), b());
    assert!(receive(&mut receiver, &e, &d).is_err());
}

#[test]
fn hmac_advert_is_refused_without_hmac() {
    let ca = instance(a(), b(), HMAC);
    let cb = instance(b(), a(), "");
    let receiver = Authenticator::new(&cb);
    let e = expect(&cb, &receiver, b(), a());
    let d = send(&mut Authenticator::new(&ca), &ca, a(), b());
    let opened = receiver.open(d).expect("plain mode passes through");
    assert!(matches!(
        accept(&e, &opened.datagram),
        Err(Dropped::Malformed(DecodeError::LengthMismatch { .. }))
    ));
}

#[test]
fn counters_of_another_vrid_do_not_interfere() {
    let ca = instance(a(), b(), AH);
    let cb = instance(b(), a(), AH);
    let mut other_vrid = ca.clone();
    other_vrid.vrid = 43;
    let mut receiver = Authenticator::new(&cb);
    let e = expect(&cb, &receiver, b(), a());
    // Another instance on the segment, same password, far ahead in
    // numbers: its advert is left to accept(), which drops it quietly,
    // and its number never counts.
    let mut other = Authenticator::new(&other_vrid);
    for _ in 0..5 {
        other.stamp(NOW_NS);
    }
    let ahead = send(&mut other, &other_vrid, a(), b());
    assert!(receive(&mut receiver, &e, &ahead).is_err());
    let ours = send(&mut Authenticator::new(&ca), &ca, a(), b());
    assert_eq!(receive(&mut receiver, &e, &ours), Ok(advert_input()));
}

#[test]
fn ah_pair_accepts_then_refuses_the_replay() {
    let (ca, cb) = (instance(a(), b(), AH), instance(b(), a(), AH));
    let (mut sender, mut receiver) = (Authenticator::new(&ca), Authenticator::new(&cb));
    assert!(sender.uses_ah());
    let e = expect(&cb, &receiver, b(), a());
    let first = send(&mut sender, &ca, a(), b());
    assert_eq!(first[9], ah::IPPROTO_AH);
    assert_eq!(receive(&mut receiver, &e, &first), Ok(advert_input()));
    let second = send(&mut sender, &ca, a(), b());
    assert_eq!(receive(&mut receiver, &e, &second), Ok(advert_input()));
    assert!(receive(&mut receiver, &e, &first)
        .expect_err("replay")
        .contains("not above"));
    // The receiver's next advert goes on above what it heard (Keepalived's
    // shared counter).
    assert_eq!(receiver.stamp(NOW_NS), Stamp::Ah(3));
}

#[test]
fn ah_refuses_plain_and_pass_adverts_and_wrong_password() {
    let cb = instance(b(), a(), AH);
    let mut receiver = Authenticator::new(&cb);
    let e = expect(&cb, &receiver, b(), a());
    // A protocol-112 advert claiming auth type 2 without any AH header.
    let forged = Advert {
        version: Version::V2,
        vrid: 42,
        priority: 200,
        advert_int_cs: 100,
        auth: Auth::Ah,
        addrs: cb.advertised_ips(),
    }
    .encode(a().into(), b().into())
    .expect("encode");
    assert_eq!(
        receiver.open(ip_header(a(), b(), &forged)),
        Err(AuthError::NoAh(a()))
    );
    let pass = instance(a(), b(), "version = 2\nauth_pass = \"secret\"\n");
    let d = send(&mut Authenticator::new(&pass), &pass, a(), b());
    assert!(receive(&mut receiver, &e, &d).is_err());
    let wrong = instance(
        a(),
        b(),
        "version = 2\nauth_type = \"ah\"\nauth_pass = \"other\"\n",
    );
    let d = send(&mut Authenticator::new(&wrong), &wrong, a(), b());
    assert!(receive(&mut receiver, &e, &d)
        .expect_err("wrong password")
        .contains("ICV"));
}

#[test]
fn pass_and_none_stay_as_they_were() {
    let pass = instance(a(), b(), "version = 2\nauth_pass = \"secret\"\n");
    let auth = Authenticator::new(&pass);
    assert_eq!(auth.expected(), Auth::pass("secret"));
    assert!(!auth.uses_ah());
    assert_eq!(
        Authenticator::new(&instance(a(), b(), "")).expected(),
        Auth::None
    );
}

#[test]
fn throttle_lets_one_line_through_per_period() {
    let start = Instant::now();
    let mut t = Throttle::new(LOG_EVERY);
    assert_eq!(t.allow(start), Some(0));
    assert_eq!(t.allow(start + Duration::from_secs(1)), None);
    assert_eq!(t.allow(start + Duration::from_secs(9)), None);
    assert_eq!(t.allow(start + LOG_EVERY), Some(2));
    assert_eq!(t.allow(start + LOG_EVERY), None);
}
