use proptest::prelude::*;

use super::*;
use crate::vrrp::packet::{Advert, Auth, Version};

/// The first advert a real Keepalived 2.2.7 sent (captured with a raw
/// protocol-51 socket in the peer's namespace): `auth_type AH`,
/// `auth_pass secret`, VRID 42, priority 150, advert_int 1, unicast
/// 10.88.0.1 -> 10.88.0.2, VIP 10.88.0.100. IP ID 1, sequence number 1.
const KEEPALIVED_AH: [u8; 64] = [
    0x45, 0xc0, 0x00, 0x40, 0x00, 0x01, 0x00, 0x00, 0xff, 0x33, 0xa6, 0x17, //
    0x0a, 0x58, 0x00, 0x01, 0x0a, 0x58, 0x00, 0x02, 0x70, 0x04, 0x00, 0x00, //
    0x0a, 0x58, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x92, 0x40, 0xef, 0x1d, //
    0x22, 0xab, 0x35, 0x02, 0x4e, 0xec, 0xa6, 0xf5, 0x21, 0x2a, 0x96, 0x01, //
    0x02, 0x01, 0x3c, 0x17, 0x0a, 0x58, 0x00, 0x64, 0x00, 0x00, 0x00, 0x00, //
    0x00, 0x00, 0x00, 0x00,
];

fn src() -> Ipv4Addr {
    Ipv4Addr::new(10, 88, 0, 1)
}
fn dst() -> Ipv4Addr {
    Ipv4Addr::new(10, 88, 0, 2)
}
fn key() -> AhKey {
    AhKey::new("secret")
}

#[test]
fn opens_keepalived_advert() {
    let opened = open(&key(), &KEEPALIVED_AH, true).expect("Keepalived's ICV verifies");
    assert_eq!(opened.src, src());
    assert_eq!(opened.seq, 1);
    // What is left is a plain VRRP datagram the usual checks understand.
    let (ip, payload) = decode_ipv4(&opened.datagram).expect("ipv4");
    assert_eq!(ip.protocol, IPPROTO_VRRP);
    assert_eq!(ip.ttl, VRRP_TTL);
    assert_eq!(payload, &KEEPALIVED_AH[44..]);
    let advert = Advert::decode(payload, src().into(), dst().into()).expect("vrrp");
    assert_eq!(advert.auth, Auth::Ah);
    assert_eq!((advert.vrid, advert.priority), (42, 150));
}

/// Sealing the same message with the same ID and number gives
/// Keepalived's bytes exactly (our header checksum is the kernel's).
#[test]
fn seals_like_keepalived() {
    let advert = Advert {
        version: Version::V2,
        vrid: 42,
        priority: 150,
        advert_int_cs: 100,
        auth: Auth::Ah,
        addrs: vec![Ipv4Addr::new(10, 88, 0, 100).into()],
    };
    let vrrp = advert.encode(src().into(), dst().into()).expect("encode");
    let sealed = seal(
        &key(),
        &Seal {
            src: src(),
            dst: dst(),
            ip_id: 1,
            seq: 1,
            unicast: true,
            vrrp: &vrrp,
        },
    )
    .expect("seal");
    assert_eq!(sealed, KEEPALIVED_AH);
}

#[test]
fn multicast_covers_the_ttl() {
    let vrrp = &KEEPALIVED_AH[44..];
    let s = Seal {
        src: src(),
        dst: Ipv4Addr::new(224, 0, 0, 18),
        ip_id: 7,
        seq: 9,
        unicast: false,
        vrrp,
    };
    let mut sealed = seal(&key(), &s).expect("seal");
    assert_eq!(open(&key(), &sealed, false).expect("valid").seq, 9);
    // Unicast leaves the TTL out, multicast does not: the modes differ.
    assert!(matches!(
        open(&key(), &sealed, true),
        Err(AhError::Icv { .. })
    ));
    sealed[8] = 254;
    assert!(matches!(
        open(&key(), &sealed, false),
        Err(AhError::Icv { .. })
    ));
}

#[test]
fn mutable_fields_do_not_matter() {
    let mut d = KEEPALIVED_AH;
    d[1] = 0x00; // TOS
    d[6] = 0x40; // DF
    d[8] = 64; // TTL (unicast)
    d[10] = 0; // checksum
    assert!(open(&key(), &d, true).is_ok());
}

#[test]
fn any_other_byte_changed_is_rejected() {
    let mutable = [1, 6, 7, 8, 10, 11];
    for at in 0..KEEPALIVED_AH.len() {
        if mutable.contains(&at) {
            continue;
        }
        let mut d = KEEPALIVED_AH;
        d[at] ^= 0x01;
        assert!(open(&key(), &d, true).is_err(), "byte {at} changed");
    }
}

#[test]
fn wrong_password_is_rejected() {
    assert_eq!(
        open(&AhKey::new("secreT"), &KEEPALIVED_AH, true),
        Err(AhError::Icv { src: src() })
    );
    // Keepalived keys with 8 bytes: a longer password is cut.
    assert_eq!(AhKey::new("secret99xyz"), AhKey::new("secret99"));
}

#[test]
fn one_error_per_structure_check() {
    let mut d = KEEPALIVED_AH;
    d[9] = 112;
    assert_eq!(open(&key(), &d, true), Err(AhError::NotAh(112)));
    assert_eq!(
        open(&key(), &KEEPALIVED_AH[..40], true),
        Err(AhError::Ipv4(DecodeError::Ipv4Header(
            "total length out of range"
        )))
    );
    let mut short = KEEPALIVED_AH[..40].to_vec();
    short[3] = 40;
    assert_eq!(
        open(&key(), &short, true),
        Err(AhError::TooShort { len: 20 })
    );
    let mut d = KEEPALIVED_AH;
    d[20] = 6;
    assert_eq!(open(&key(), &d, true), Err(AhError::NextHeader(6)));
    let mut d = KEEPALIVED_AH;
    d[21] = 3;
    assert_eq!(open(&key(), &d, true), Err(AhError::PayloadLen(3)));
}

#[test]
fn spi_must_be_the_source() {
    let s = Seal {
        src: src(),
        dst: dst(),
        ip_id: 3,
        seq: 3,
        unicast: true,
        vrrp: &KEEPALIVED_AH[44..],
    };
    let mut d = seal(&key(), &s).expect("seal");
    // A valid ICV over a wrong SPI: re-seal after editing the SPI.
    d[24..28].copy_from_slice(&[10, 88, 0, 9]);
    let digest = icv(&key(), &d[..20], &d[20..44], &d[44..], true)
        .finalize()
        .into_bytes();
    d[32..44].copy_from_slice(&digest[..ICV_LEN]);
    assert_eq!(
        open(&key(), &d, true),
        Err(AhError::Spi {
            spi: 0x0a58_0009,
            src: src()
        })
    );
}

#[test]
fn counter_is_shared_and_strictly_increasing() {
    let mut c = AhCounter::default();
    assert_eq!(c.next_send(), 1);
    assert_eq!(c.next_send(), 2);
    // A replay of our own or an older number is refused.
    assert_eq!(
        c.check(src(), 2),
        Err(AhError::Replayed {
            src: src(),
            seq: 2,
            last: 2
        })
    );
    // The peer (new master) goes on from the last number: accepted, and
    // our next advert continues above it.
    assert_eq!(c.check(src(), 40), Ok(()));
    assert!(c.check(src(), 40).is_err());
    assert_eq!(c.next_send(), 41);
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200), unicast: bool) {
        let _ = open(&key(), &bytes, unicast);
    }

    #[test]
    fn arbitrary_ipv4_ah_never_panics(tail in proptest::collection::vec(any::<u8>(), 0..120), ihl in 5u8..16) {
        let mut d = vec![0x40 | ihl, 0, 0, 0, 0, 0, 0, 0, 255, IPPROTO_AH, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2];
        d.extend_from_slice(&tail);
        let len = u16::try_from(d.len()).expect("short");
        d[2..4].copy_from_slice(&len.to_be_bytes());
        let _ = open(&key(), &d, true);
    }

    #[test]
    fn seal_then_open_round_trips(seq: u32, id in 1u16.., vrrp in proptest::collection::vec(any::<u8>(), 0..64), unicast: bool) {
        let s = Seal { src: src(), dst: dst(), ip_id: id, seq, unicast, vrrp: &vrrp };
        let d = seal(&key(), &s).expect("seal");
        let opened = open(&key(), &d, unicast).expect("open");
        prop_assert_eq!(opened.seq, seq);
        prop_assert_eq!(&opened.datagram[20..], &vrrp[..]);
    }
}
