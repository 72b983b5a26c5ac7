//! Which messages from the raw IPv6 socket are adverts for this instance
//! (RFC 5798 7.1), as a pure function. The kernel strips the IPv6 header,
//! so hop limit and destination come from ancillary data
//! ([`super::socket6`]); a message without them is dropped, since neither
//! the hop limit nor the checksum (over the pseudo-header with the
//! destination) can be checked. Then the same checks as IPv4
//! ([`super::receive::check`]).

use std::net::IpAddr;

use super::fsm::Input;
use super::packet::{Advert, VRRP_TTL};
use super::receive::{check, Dropped, Expect};
use super::socket6::Datagram6;

/// Checks one message from the raw IPv6 socket.
pub fn accept_v6(expect: &Expect, datagram: &Datagram6) -> Result<Input, Dropped> {
    let src = IpAddr::V6(datagram.src);
    if src == expect.src {
        return Err(Dropped::Own);
    }
    if !expect.peers.is_empty() && !expect.peers.contains(&src) {
        return Err(Dropped::NotPeer(src));
    }
    if datagram.hop_limit != Some(VRRP_TTL) {
        return Err(Dropped::HopLimit(datagram.hop_limit));
    }
    let dst = datagram.dst.ok_or(Dropped::NoDestination)?;
    let advert = Advert::decode(&datagram.payload, src, IpAddr::V6(dst))?;
    check(expect, src, &advert)
}

#[cfg(test)]
mod tests {
    use std::net::Ipv6Addr;
    use std::time::Duration;

    use super::*;
    use crate::vrrp::packet::{Auth, DecodeError, Version};
    use crate::vrrp::socket6::VRRP_GROUP_V6;

    const OURS: &str = "fe80::1";
    const PEER: &str = "fe80::2";

    fn ip(text: &str) -> Ipv6Addr {
        text.parse().expect("ip")
    }

    fn expect(peers: &[&str]) -> Expect {
        Expect {
            version: Version::V3,
            vrid: 42,
            src: IpAddr::V6(ip(OURS)),
            peers: peers.iter().map(|p| IpAddr::V6(ip(p))).collect(),
            addr_count: 1,
            auth: Auth::None,
        }
    }

    /// A v3 advert from fe80::2 to ff02::12: VRID 42, priority 100,
    /// 100 cs, one address fd00::100. Header 0x31 0x2a 0x64 0x01, interval
    /// 0x0064, checksum over the IPv6 pseudo-header (worked out by hand:
    /// 0x6e4f), then the address.
    fn datagram() -> Datagram6 {
        let mut payload = vec![0x31, 0x2a, 0x64, 0x01, 0x00, 0x64, 0x6e, 0x4f];
        payload.extend_from_slice(&ip("fd00::100").octets());
        Datagram6 {
            src: ip(PEER),
            dst: Some(VRRP_GROUP_V6),
            hop_limit: Some(255),
            payload,
        }
    }

    #[test]
    fn accepts_multicast_advert() {
        assert_eq!(
            accept_v6(&expect(&[]), &datagram()),
            Ok(Input::Advert {
                src: IpAddr::V6(ip(PEER)),
                priority: 100,
                advert_int: Duration::from_secs(1),
            })
        );
    }

    #[test]
    fn drops_hop_limit_other_than_255_or_missing() {
        let mut d = datagram();
        d.hop_limit = Some(254);
        assert_eq!(
            accept_v6(&expect(&[]), &d),
            Err(Dropped::HopLimit(Some(254)))
        );
        d.hop_limit = None;
        assert_eq!(accept_v6(&expect(&[]), &d), Err(Dropped::HopLimit(None)));
    }

    #[test]
    fn drops_own_and_non_peer() {
        let mut d = datagram();
        d.src = ip(OURS);
        assert_eq!(accept_v6(&expect(&[]), &d), Err(Dropped::Own));
        let d = datagram();
        assert_eq!(
            accept_v6(&expect(&["fe80::3"]), &d),
            Err(Dropped::NotPeer(IpAddr::V6(ip(PEER))))
        );
        assert!(accept_v6(&expect(&["fe80::3", PEER]), &d).is_ok());
    }

    /// The checksum covers the destination: the same bytes sent to another
    /// address (or with no destination reported) are not accepted.
    #[test]
    fn checksum_uses_the_reported_destination() {
        let mut d = datagram();
        d.dst = Some(ip("fe80::1"));
        assert!(matches!(
            accept_v6(&expect(&[]), &d),
            Err(Dropped::Malformed(DecodeError::BadChecksum { .. }))
        ));
        d.dst = None;
        assert_eq!(accept_v6(&expect(&[]), &d), Err(Dropped::NoDestination));
    }

    /// Input: the advert with interval 0 (checksum raised by the 0x64 taken
    /// out of the sum: 0x6e4f + 0x64).
    /// Output: dropped as ZeroInterval.
    #[test]
    fn drops_advert_interval_zero() {
        let mut d = datagram();
        d.payload[4..8].copy_from_slice(&[0x00, 0x00, 0x6e, 0xb3]);
        assert_eq!(accept_v6(&expect(&[]), &d), Err(Dropped::ZeroInterval));
    }

    #[test]
    fn drops_other_vrid_and_count() {
        let d = datagram();
        let mut e = expect(&[]);
        e.vrid = 43;
        assert_eq!(accept_v6(&e, &d), Err(Dropped::OtherVrid(42)));
        let mut e = expect(&[]);
        e.addr_count = 2;
        assert_eq!(
            accept_v6(&e, &d),
            Err(Dropped::AddressCount {
                expected: 2,
                got: 1
            })
        );
    }
}
