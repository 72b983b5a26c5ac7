//! Real bytes next to decoded adverts. The checksums were worked out by
//! hand from the RFC diagrams (an independent script summing the same
//! fields), not by this codec.

use super::*;

fn v4(s: &str) -> IpAddr {
    IpAddr::V4(s.parse().expect("test address"))
}
fn v6(s: &str) -> IpAddr {
    IpAddr::V6(s.parse().expect("test address"))
}

/// v2, VRID 51, priority 100, one address 192.168.200.10, advert 1 s,
/// PASS "secret" (Keepalived's shape with `auth_type PASS`).
const V2_PASS: [u8; 20] = [
    0x21, 0x33, 0x64, 0x01, 0x01, 0x01, 0xb4, 0xca, 0xc0, 0xa8, 0xc8, 0x0a, 0x73, 0x65, 0x63, 0x72,
    0x65, 0x74, 0x00, 0x00,
];

fn v2_pass() -> Advert {
    Advert {
        version: Version::V2,
        vrid: 51,
        priority: 100,
        advert_int_cs: 100,
        auth: Auth::pass("secret"),
        addrs: vec![v4("192.168.200.10")],
    }
}

/// v2, VRID 7, priority 254, two addresses, advert 3 s, no auth.
const V2_NONE: [u8; 24] = [
    0x21, 0x07, 0xfe, 0x02, 0x00, 0x03, 0xca, 0xed, 0x0a, 0x01, 0x01, 0x01, 0x0a, 0x01, 0x01, 0x02,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
];

/// v3 over IPv4 from 10.0.0.1 to 224.0.0.18: VRID 1, priority 150, one
/// address 10.0.0.100, 100 cs; checksum over the pseudo-header.
const V3_V4: [u8; 12] = [
    0x31, 0x01, 0x96, 0x01, 0x00, 0x64, 0x43, 0xa5, 0x0a, 0x00, 0x00, 0x64,
];

/// v3 over IPv6 from fe80::a to ff02::12: VRID 2, priority 200, one
/// address 2001:db8::100, 10 cs.
const V3_V6: [u8; 24] = [
    0x31, 0x02, 0xc8, 0x01, 0x00, 0x0a, 0xda, 0x10, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00,
];

/// Recomputes the checksum after a test edits a field.
fn refresh_checksum(b: &mut [u8], version: Version, s: IpAddr, d: IpAddr) {
    b[6] = 0;
    b[7] = 0;
    let sum = message_checksum(version, b, s, d).expect("same family");
    b[6..8].copy_from_slice(&sum.to_be_bytes());
}

fn v4_pair() -> (IpAddr, IpAddr) {
    (v4("10.0.0.1"), v4("224.0.0.18"))
}

#[test]
fn v2_pass_round_trip() {
    let (s, d) = v4_pair();
    assert_eq!(Advert::decode(&V2_PASS, s, d), Ok(v2_pass()));
    assert_eq!(v2_pass().encode(s, d).as_deref(), Ok(&V2_PASS[..]));
}

#[test]
fn v2_none_two_addresses_round_trip() {
    let (s, d) = v4_pair();
    let advert = Advert {
        version: Version::V2,
        vrid: 7,
        priority: 254,
        advert_int_cs: 300,
        auth: Auth::None,
        addrs: vec![v4("10.1.1.1"), v4("10.1.1.2")],
    };
    assert_eq!(Advert::decode(&V2_NONE, s, d), Ok(advert.clone()));
    assert_eq!(advert.encode(s, d).as_deref(), Ok(&V2_NONE[..]));
}

#[test]
fn v2_checksum_ignores_ip_addresses() {
    // RFC 3768: no pseudo-header, so any src/dst decode the same bytes.
    assert!(Advert::decode(&V2_PASS, v4("1.2.3.4"), v4("5.6.7.8")).is_ok());
}

#[test]
fn v3_ipv4_round_trip() {
    let (s, d) = v4_pair();
    let advert = Advert {
        version: Version::V3,
        vrid: 1,
        priority: 150,
        advert_int_cs: 100,
        auth: Auth::None,
        addrs: vec![v4("10.0.0.100")],
    };
    assert_eq!(Advert::decode(&V3_V4, s, d), Ok(advert.clone()));
    assert_eq!(advert.encode(s, d).as_deref(), Ok(&V3_V4[..]));
}

#[test]
fn v3_ipv6_round_trip() {
    let (s, d) = (v6("fe80::a"), v6("ff02::12"));
    let advert = Advert {
        version: Version::V3,
        vrid: 2,
        priority: 200,
        advert_int_cs: 10,
        auth: Auth::None,
        addrs: vec![v6("2001:db8::100")],
    };
    assert_eq!(Advert::decode(&V3_V6, s, d), Ok(advert.clone()));
    assert_eq!(advert.encode(s, d).as_deref(), Ok(&V3_V6[..]));
}

#[test]
fn v3_reserved_bits_ignored() {
    let mut bytes = V3_V4;
    bytes[4] |= 0xf0;
    let (s, d) = v4_pair();
    refresh_checksum(&mut bytes, Version::V3, s, d);
    assert_eq!(
        Advert::decode(&bytes, s, d).map(|a| a.advert_int_cs),
        Ok(100)
    );
}

#[test]
fn pass_keeps_first_eight_characters() {
    assert_eq!(Auth::pass("0123456789"), Auth::Pass(*b"01234567"));
    assert_eq!(Auth::pass("ab"), Auth::Pass(*b"ab\0\0\0\0\0\0"));
}

// One test per decode error.

#[test]
fn error_too_short() {
    let (s, d) = v4_pair();
    assert_eq!(
        Advert::decode(&V3_V4[..7], s, d),
        Err(DecodeError::TooShort { len: 7 })
    );
}

#[test]
fn error_bad_version() {
    let mut b = V3_V4;
    b[0] = 0x41;
    let (s, d) = v4_pair();
    assert_eq!(Advert::decode(&b, s, d), Err(DecodeError::BadVersion(4)));
}

#[test]
fn error_bad_type() {
    let mut b = V3_V4;
    b[0] = 0x32;
    let (s, d) = v4_pair();
    assert_eq!(Advert::decode(&b, s, d), Err(DecodeError::BadType(2)));
}

#[test]
fn error_v2_over_ipv6() {
    assert_eq!(
        Advert::decode(&V2_PASS, v6("fe80::a"), v6("ff02::12")),
        Err(DecodeError::V2OverIpv6)
    );
}

#[test]
fn error_no_addresses() {
    let mut b = V3_V4;
    b[3] = 0;
    let (s, d) = v4_pair();
    assert_eq!(Advert::decode(&b, s, d), Err(DecodeError::NoAddresses));
}

#[test]
fn error_length_mismatch() {
    let mut b = V3_V4;
    b[3] = 2;
    let (s, d) = v4_pair();
    assert_eq!(
        Advert::decode(&b, s, d),
        Err(DecodeError::LengthMismatch {
            expected: 16,
            got: 12
        })
    );
}

#[test]
fn error_bad_checksum() {
    let mut b = V3_V4;
    b[2] = 151;
    let (s, d) = v4_pair();
    assert!(matches!(
        Advert::decode(&b, s, d),
        Err(DecodeError::BadChecksum { got: 0x43a5, .. })
    ));
    // v3 over the wrong pseudo-header (another destination) fails too.
    assert!(matches!(
        Advert::decode(&V3_V4, s, v4("10.0.0.2")),
        Err(DecodeError::BadChecksum { .. })
    ));
}

#[test]
fn error_unsupported_auth_type() {
    let mut b = V2_PASS;
    b[4] = 3;
    let (s, d) = v4_pair();
    // Keep the checksum right so the auth check is what fails.
    refresh_checksum(&mut b, Version::V2, s, d);
    assert_eq!(
        Advert::decode(&b, s, d),
        Err(DecodeError::UnsupportedAuthType(3))
    );
}

/// The VRRP message inside Keepalived's AH advert (captured from
/// Keepalived 2.2.7: VRID 42, priority 150, 1 s, 10.88.0.100): auth type
/// 2 and 8 zero auth bytes; the ICV lives in the AH header.
#[test]
fn v2_ah_message_round_trips() {
    let bytes: [u8; 20] = [
        0x21, 0x2a, 0x96, 0x01, 0x02, 0x01, 0x3c, 0x17, 0x0a, 0x58, 0x00, 0x64, 0, 0, 0, 0, 0, 0,
        0, 0,
    ];
    let (s, d) = (v4("10.88.0.1"), v4("10.88.0.2"));
    let advert = Advert::decode(&bytes, s, d).expect("decodes");
    assert_eq!(advert.auth, Auth::Ah);
    assert_eq!(advert.priority, 150);
    assert_eq!(advert.encode(s, d).expect("encodes"), bytes);
}

#[test]
fn error_mixed_families() {
    assert_eq!(
        Advert::decode(&V3_V4, v4("10.0.0.1"), v6("ff02::12")),
        Err(DecodeError::MixedFamilies)
    );
}

#[test]
fn encode_errors() {
    let (s, d) = v4_pair();
    let mut a = v2_pass();
    a.advert_int_cs = 150;
    assert_eq!(a.encode(s, d), Err(EncodeError::V2Interval(150)));
    let mut a = v2_pass();
    a.version = Version::V3;
    assert_eq!(a.encode(s, d), Err(EncodeError::V3Auth));
    a.auth = Auth::None;
    a.advert_int_cs = 4096;
    assert_eq!(a.encode(s, d), Err(EncodeError::V3Interval(4096)));
    a.advert_int_cs = 100;
    a.addrs.clear();
    assert_eq!(a.encode(s, d), Err(EncodeError::AddressCount(0)));
    a.addrs = vec![v6("2001:db8::1")];
    assert_eq!(a.encode(s, d), Err(EncodeError::MixedFamilies));
    let mut a = v2_pass();
    a.addrs = vec![v6("2001:db8::1")];
    assert_eq!(
        a.encode(v6("fe80::1"), v6("ff02::12")),
        Err(EncodeError::V2Ipv6)
    );
}

/// A 20-byte IPv4 header (TTL 255, protocol 112, 10.0.0.1 -> 224.0.0.18)
/// in front of the v3 advert above.
#[test]
fn ipv4_header_split() {
    let mut dgram = vec![
        0x45, 0xc0, 0x00, 0x20, 0x00, 0x00, 0x40, 0x00, 0xff, 0x70, 0x00, 0x00, 0x0a, 0x00, 0x00,
        0x01, 0xe0, 0x00, 0x00, 0x12,
    ];
    dgram.extend_from_slice(&V3_V4);
    let (h, payload) = decode_ipv4(&dgram).expect("valid datagram");
    assert_eq!(
        h,
        Ipv4Header {
            src: "10.0.0.1".parse().expect("addr"),
            dst: "224.0.0.18".parse().expect("addr"),
            ttl: 255,
            protocol: IPPROTO_VRRP
        }
    );
    assert_eq!(payload, &V3_V4[..]);
    assert!(decode_ipv4(&dgram[..30]).is_err());
    assert!(decode_ipv4(&[]).is_err());
    dgram[0] = 0x44;
    assert!(decode_ipv4(&dgram).is_err());
}

proptest::proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..80)) {
        let (s, d) = v4_pair();
        let _ = Advert::decode(&bytes, s, d);
        let _ = Advert::decode(&bytes, v6("fe80::1"), v6("ff02::12"));
        let _ = decode_ipv4(&bytes);
    }

    #[test]
    fn encode_decode_round_trip(vrid in 1u8..=255, prio in 0u8..=255, cs in 1u16..=4095,
                                n in 1usize..8) {
        let (s, d) = v4_pair();
        let addrs: Vec<IpAddr> = (0..n).map(|i| IpAddr::V4(Ipv4Addr::new(10, 9, 0, u8::try_from(i).expect("n < 8")))).collect();
        let a = Advert { version: Version::V3, vrid, priority: prio, advert_int_cs: cs, auth: Auth::None, addrs };
        let bytes = a.encode(s, d).expect("valid advert");
        proptest::prop_assert_eq!(Advert::decode(&bytes, s, d), Ok(a));
    }
}

/// Captured from Keepalived 2.2.7 (Debian 12) with a raw socket in the
/// peer's namespace: `vrrp_instance` with `virtual_router_id 42`,
/// `priority 100`, `advert_int 1`, `auth_type PASS`, `auth_pass secret`,
/// `unicast_src_ip 10.77.0.2`, peer 10.77.0.1, VIP 10.77.0.100/24.
/// The IPv4 header (TTL 255, protocol 112) is kept as received.
const KEEPALIVED_V2_DATAGRAM: [u8; 40] = [
    0x45, 0xc0, 0x00, 0x28, 0x00, 0x01, 0x00, 0x00, 0xff, 0x70, 0xa6, 0x08, 0x0a, 0x4d, 0x00, 0x02,
    0x0a, 0x4d, 0x00, 0x01, 0x21, 0x2a, 0x64, 0x01, 0x01, 0x01, 0x32, 0xd6, 0x0a, 0x4d, 0x00, 0x64,
    0x73, 0x65, 0x63, 0x72, 0x65, 0x74, 0x00, 0x00,
];

#[test]
fn keepalived_v2_capture_decodes_and_encodes_identically() {
    let (ip, payload) = decode_ipv4(&KEEPALIVED_V2_DATAGRAM).expect("IPv4");
    assert_eq!((ip.ttl, ip.protocol), (255, IPPROTO_VRRP));
    let (s, d) = (IpAddr::V4(ip.src), IpAddr::V4(ip.dst));
    let advert = Advert {
        version: Version::V2,
        vrid: 42,
        priority: 100,
        advert_int_cs: 100,
        auth: Auth::pass("secret"),
        addrs: vec![v4("10.77.0.100")],
    };
    assert_eq!(Advert::decode(payload, s, d), Ok(advert.clone()));
    // What lbd sends in the same role is byte-for-byte Keepalived's.
    assert_eq!(advert.encode(s, d).as_deref(), Ok(payload));
}
