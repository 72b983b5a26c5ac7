//! Which received datagrams are adverts for this instance (RFC 5798 7.1,
//! RFC 3768 7.1), as a pure function: bytes in, an FSM input or the reason
//! the datagram is dropped out.

use std::net::IpAddr;
use std::time::Duration;

use super::fsm::Input;
use super::packet::{decode_ipv4, Advert, Auth, DecodeError, Version, IPPROTO_VRRP, VRRP_TTL};

/// What an advert must match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expect {
    pub version: Version,
    pub vrid: u8,
    /// Our own source: our multicast adverts are not input.
    pub src: IpAddr,
    /// Unicast peers; empty means any sender (multicast).
    pub peers: Vec<IpAddr>,
    /// Addresses we advertise; theirs must be as many.
    pub addr_count: usize,
    pub auth: Auth,
}

/// Why a datagram is not an advert for us.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Dropped {
    #[error("malformed: {0}")]
    Malformed(#[from] DecodeError),
    #[error("IP protocol {0} is not VRRP")]
    NotVrrp(u8),
    #[error("TTL {0} is not 255 (sent from off the segment)")]
    Ttl(u8),
    #[error("our own advert")]
    Own,
    #[error("sender {0} is not a configured unicast peer")]
    NotPeer(IpAddr),
    #[error("hop limit {0:?} is not 255 (sent from off the link, or not reported)")]
    HopLimit(Option<u8>),
    #[error("the kernel did not report the destination address (IPV6_PKTINFO)")]
    NoDestination,
    #[error("VRID {0} is another instance's")]
    OtherVrid(u8),
    #[error("VRRP version differs from ours")]
    Version,
    #[error("advert lists {got} addresses, we have {expected}")]
    AddressCount { expected: usize, got: usize },
    #[error("authentication does not match (auth_type / auth_pass, or their absence)")]
    Auth,
    #[error(
        "advert interval 0: no sender may advertise that (RFC 5798 5.2.7); a broken or \
         hostile peer"
    )]
    ZeroInterval,
}

/// Checks one datagram from the raw socket (IPv4 header included).
pub fn accept(expect: &Expect, datagram: &[u8]) -> Result<Input, Dropped> {
    let (ip, payload) = decode_ipv4(datagram)?;
    if ip.protocol != IPPROTO_VRRP {
        return Err(Dropped::NotVrrp(ip.protocol));
    }
    let src = IpAddr::V4(ip.src);
    if src == expect.src {
        return Err(Dropped::Own);
    }
    if !expect.peers.is_empty() && !expect.peers.contains(&src) {
        return Err(Dropped::NotPeer(src));
    }
    if ip.ttl != VRRP_TTL {
        return Err(Dropped::Ttl(ip.ttl));
    }
    let advert = Advert::decode(payload, src, IpAddr::V4(ip.dst))?;
    check(expect, src, &advert)
}

/// The checks on a decoded advert from `src`, IPv4 or IPv6 alike.
pub(super) fn check(expect: &Expect, src: IpAddr, advert: &Advert) -> Result<Input, Dropped> {
    if advert.vrid != expect.vrid {
        return Err(Dropped::OtherVrid(advert.vrid));
    }
    if advert.version != expect.version {
        return Err(Dropped::Version);
    }
    if advert.addrs.len() != expect.addr_count {
        return Err(Dropped::AddressCount {
            expected: expect.addr_count,
            got: advert.addrs.len(),
        });
    }
    if advert.auth != expect.auth {
        return Err(Dropped::Auth);
    }
    // A zero interval would make the backup's master-down interval just
    // its skew time: one advert, then a storm of elections.
    if advert.advert_int_cs == 0 {
        return Err(Dropped::ZeroInterval);
    }
    Ok(Input::Advert {
        src,
        priority: advert.priority,
        advert_int: Duration::from_millis(u64::from(advert.advert_int_cs) * 10),
    })
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    fn expect() -> Expect {
        Expect {
            version: Version::V2,
            vrid: 51,
            src: Ipv4Addr::new(10, 0, 0, 1).into(),
            peers: vec![Ipv4Addr::new(10, 0, 0, 2).into()],
            addr_count: 1,
            auth: Auth::pass("secret"),
        }
    }

    /// A v2 advert as the peer 10.0.0.2 sends it: IPv4 header (TTL 255,
    /// protocol 112) then VRID 51, priority 100, 192.168.200.10, PASS
    /// "secret" (the bytes of packet_tests' V2_PASS).
    fn datagram() -> Vec<u8> {
        let mut d = vec![
            0x45, 0xc0, 0x00, 0x28, 0x00, 0x00, 0x40, 0x00, 0xff, 0x70, 0x00, 0x00, 0x0a, 0x00,
            0x00, 0x02, 0x0a, 0x00, 0x00, 0x01,
        ];
        d.extend_from_slice(&[
            0x21, 0x33, 0x64, 0x01, 0x01, 0x01, 0xb4, 0xca, 0xc0, 0xa8, 0xc8, 0x0a, 0x73, 0x65,
            0x63, 0x72, 0x65, 0x74, 0x00, 0x00,
        ]);
        d
    }

    #[test]
    fn accepts_peer_advert() {
        assert_eq!(
            accept(&expect(), &datagram()),
            Ok(Input::Advert {
                src: "10.0.0.2".parse().expect("ip"),
                priority: 100,
                advert_int: Duration::from_secs(1),
            })
        );
    }

    #[test]
    fn drops_ttl_other_than_255() {
        let mut d = datagram();
        d[8] = 64;
        assert_eq!(accept(&expect(), &d), Err(Dropped::Ttl(64)));
    }

    #[test]
    fn drops_non_peer_and_own() {
        let mut d = datagram();
        d[15] = 3;
        assert_eq!(
            accept(&expect(), &d),
            Err(Dropped::NotPeer(Ipv4Addr::new(10, 0, 0, 3).into()))
        );
        d[15] = 1;
        assert_eq!(accept(&expect(), &d), Err(Dropped::Own));
    }

    #[test]
    fn drops_other_vrid_count_version_auth() {
        let d = datagram();
        let mut e = expect();
        e.vrid = 52;
        assert_eq!(accept(&e, &d), Err(Dropped::OtherVrid(51)));
        let mut e = expect();
        e.addr_count = 2;
        assert_eq!(
            accept(&e, &d),
            Err(Dropped::AddressCount {
                expected: 2,
                got: 1
            })
        );
        let mut e = expect();
        e.version = Version::V3;
        assert_eq!(accept(&e, &d), Err(Dropped::Version));
        let mut e = expect();
        e.auth = Auth::pass("other");
        assert_eq!(accept(&e, &d), Err(Dropped::Auth));
    }

    /// Input: the peer's advert with advert interval 0 (v2: the one-byte
    /// interval field, checksum fixed up by hand: 0xb4ca + 1).
    /// Output: dropped as ZeroInterval, not fed to the FSM.
    #[test]
    fn drops_advert_interval_zero() {
        let mut d = datagram();
        d[25] = 0x00;
        d[26] = 0xb4;
        d[27] = 0xcb;
        assert_eq!(accept(&expect(), &d), Err(Dropped::ZeroInterval));
    }

    #[test]
    fn drops_malformed_and_other_protocols() {
        let mut d = datagram();
        d[9] = 6;
        assert_eq!(accept(&expect(), &d), Err(Dropped::NotVrrp(6)));
        let mut d = datagram();
        d[25] ^= 1;
        assert!(matches!(
            accept(&expect(), &d),
            Err(Dropped::Malformed(DecodeError::BadChecksum { .. }))
        ));
    }
}
