//! The guest's NICs and addresses as vCenter wants them: `GuestNicProto`
//! version 3 from open-vm-tools' `lib/guestRpc/nicinfo.x`, XDR-encoded
//! (RFC 4506: every item a multiple of 4 bytes, big-endian; strings and
//! opaques are a length then the bytes, zero-padded to 4; an optional
//! `T *x` is a 4-byte "present" flag, then `T` if 1; an array `T x<N>` is a
//! count, then the items).
//!
//! ```text
//! GuestNicProto   u32 ver = 3 (NIC_INFO_V3)
//!                 u32 1                      NicInfoV3 *nicInfoV3: present
//! NicInfoV3       u32 n                      GuestNicV3 nics<16>
//!                   GuestNicV3 x n
//!                 u32 0                      InetCidrRouteEntry routes<100>: none
//!                 u32 0 x 4                  dnsConfigInfo, winsConfigInfo,
//!                                            dhcpConfigInfov4, dhcpConfigInfov6: absent
//! GuestNicV3      u32 17, "00:50:56:..", 000 string macAddress<18>, padded to 20
//!                 u32 m                      IpAddressEntry ips<2048>
//!                   IpAddressEntry x m
//!                 u32 0 x 4                  dns, wins, dhcp v4, dhcp v6: absent
//! IpAddressEntry  u32 1 (IPv4) or 2 (IPv6)   InetAddressType
//!                 u32 4 or 16, address bytes InetAddress (opaque<255>), no pad needed
//!                 u32 prefix length          InetAddressPrefixLength
//!                 u32 0                      IpAddressOrigin *: absent
//!                 u32 0                      IpAddressStatus *: absent
//! ```
//!
//! open-vm-tools on Linux leaves origin and status absent too
//! (`GuestInfoAddIpAddress(nic, addr, bits, NULL, NULL)`), writes the MAC
//! as lowercase `%02x:` pairs and skips loopback addresses.

use std::net::IpAddr;

use super::report::GuestNic;

/// `NicInfoVersion::NIC_INFO_V3`.
const NIC_INFO_V3: u32 = 3;
/// `InetAddressType::IAT_IPV4`.
const IAT_IPV4: u32 = 1;
/// `InetAddressType::IAT_IPV6`.
const IAT_IPV6: u32 = 2;
/// `NICINFO_MAX_NICS`: the host rejects more.
pub const MAX_NICS: usize = 16;
/// `NICINFO_MAX_IPS` with `INFO_IPADDRESS_V3`.
pub const MAX_IPS_V3: usize = 2048;
/// `INFO_IPADDRESS_V2_MAX_IPS`: the limit when falling back to
/// `INFO_IPADDRESS_V2` on older hosts.
pub const MAX_IPS_V2: usize = 64;

/// An XDR stream being written.
#[derive(Debug, Default)]
struct Xdr(Vec<u8>);

impl Xdr {
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }

    /// A count or length; every caller bounds it far below `u32::MAX`.
    fn len(&mut self, n: usize) {
        self.u32(u32::try_from(n).expect("XDR lengths here are bounded by the nicinfo.x limits"));
    }

    /// Variable-length opaque or string: length, bytes, zero pad to 4.
    fn opaque(&mut self, bytes: &[u8]) {
        self.len(bytes.len());
        self.0.extend_from_slice(bytes);
        let pad = (4 - bytes.len() % 4) % 4;
        self.0.extend(std::iter::repeat_n(0, pad));
    }

    /// An optional-data item that is absent.
    fn absent(&mut self) {
        self.u32(0);
    }
}

/// The MAC as open-vm-tools writes it: `00:50:56:99:c0:4c`.
pub fn mac_text(mac: [u8; 6]) -> String {
    let [a, b, c, d, e, f] = mac;
    format!("{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{f:02x}")
}

/// Whether an address is worth reporting (open-vm-tools drops loopback).
fn reportable(addr: &IpAddr) -> bool {
    !addr.is_loopback() && !addr.is_unspecified()
}

/// `GuestNicProto` version 3 for these NICs: at most [`MAX_NICS`] NICs
/// and `max_ips` addresses each, loopback addresses and all-zero MACs
/// skipped. No routes, DNS, WINS or DHCP sections.
pub fn encode_nic_info_v3(nics: &[GuestNic], max_ips: usize) -> Vec<u8> {
    let nics: Vec<&GuestNic> = nics
        .iter()
        .filter(|n| n.mac != [0; 6])
        .take(MAX_NICS)
        .collect();
    let mut x = Xdr::default();
    x.u32(NIC_INFO_V3);
    x.u32(1);
    x.len(nics.len());
    for nic in nics {
        x.opaque(mac_text(nic.mac).as_bytes());
        let addrs: Vec<_> = nic
            .addrs
            .iter()
            .filter(|(a, _)| reportable(a))
            .take(max_ips)
            .collect();
        x.len(addrs.len());
        for (addr, prefix_len) in addrs {
            match addr {
                IpAddr::V4(v4) => {
                    x.u32(IAT_IPV4);
                    x.opaque(&v4.octets());
                }
                IpAddr::V6(v6) => {
                    x.u32(IAT_IPV6);
                    x.opaque(&v6.octets());
                }
            }
            x.u32(u32::from(*prefix_len));
            x.absent(); // ipAddressOrigin
            x.absent(); // ipAddressStatus
        }
        for _ in 0..4 {
            x.absent(); // dnsConfigInfo, winsConfigInfo, dhcpConfigInfov4/v6
        }
    }
    x.len(0); // routes
    for _ in 0..4 {
        x.absent(); // dnsConfigInfo, winsConfigInfo, dhcpConfigInfov4/v6
    }
    x.0
}

/// The address vCenter shows in its IP column (`guestinfo.ip`): the first
/// IPv4 address that is not loopback or link-local, else the first such
/// IPv6 address, in NIC order.
pub fn primary_ip(nics: &[GuestNic]) -> Option<IpAddr> {
    let all = || nics.iter().flat_map(|n| n.addrs.iter().map(|(a, _)| *a));
    let usable = |a: &IpAddr| {
        reportable(a)
            && match a {
                IpAddr::V4(v4) => !v4.is_link_local(),
                IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) != 0xfe80,
            }
    };
    all()
        .find(|a| a.is_ipv4() && usable(a))
        .or_else(|| all().find(|a| a.is_ipv6() && usable(a)))
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;

    fn nic(mac: [u8; 6], addrs: &[(IpAddr, u8)]) -> GuestNic {
        GuestNic {
            name: "eth0".to_owned(),
            mac,
            addrs: addrs.to_vec(),
        }
    }

    #[test]
    fn one_nic_one_ipv4_and_one_ipv6_by_hand() {
        // Worked out word by word from nicinfo.x (see the module diagram).
        let v6: Ipv6Addr = "2001:db8::5".parse().expect("literal");
        let nics = [nic(
            [0x00, 0x50, 0x56, 0x99, 0xc0, 0x4c],
            &[
                (IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10)), 24),
                (IpAddr::V6(v6), 64),
            ],
        )];
        #[rustfmt::skip]
        let want: Vec<u8> = [
            &[0, 0, 0, 3][..],             // ver = NIC_INFO_V3
            &[0, 0, 0, 1],                 // nicInfoV3 present
            &[0, 0, 0, 1],                 // nics<>: 1
            &[0, 0, 0, 17],                // macAddress: 17 bytes
            b"00:50:56:99:c0:4c", &[0, 0, 0], // + 3 bytes pad
            &[0, 0, 0, 2],                 // ips<>: 2
            &[0, 0, 0, 1],                 //   IAT_IPV4
            &[0, 0, 0, 4], &[192, 0, 2, 10], // InetAddress, 4 bytes
            &[0, 0, 0, 24],                //   prefix 24
            &[0, 0, 0, 0], &[0, 0, 0, 0],  //   origin, status absent
            &[0, 0, 0, 2],                 //   IAT_IPV6
            &[0, 0, 0, 16],
            &[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5],
            &[0, 0, 0, 64],                //   prefix 64
            &[0, 0, 0, 0], &[0, 0, 0, 0],  //   origin, status absent
            &[0; 16],                      // nic: dns, wins, dhcp4, dhcp6 absent
            &[0, 0, 0, 0],                 // routes<>: 0
            &[0; 16],                      // top: dns, wins, dhcp4, dhcp6 absent
        ]
        .concat();
        let got = encode_nic_info_v3(&nics, MAX_IPS_V3);
        assert_eq!(got, want);
        assert_eq!(got.len(), 4 * 3 + 4 + 20 + 4 + 24 + 36 + 16 + 4 + 16);
    }

    #[test]
    fn no_nics_is_the_empty_list() {
        let got = encode_nic_info_v3(&[], MAX_IPS_V3);
        #[rustfmt::skip]
        let want: Vec<u8> = [
            &[0, 0, 0, 3][..], &[0, 0, 0, 1], &[0, 0, 0, 0], // v3, present, 0 nics
            &[0, 0, 0, 0], &[0; 16],                      // 0 routes, 4 absent
        ]
        .concat();
        assert_eq!(got, want);
    }

    #[test]
    fn loopback_zero_mac_and_limits_are_applied() {
        let lo = nic([0; 6], &[(IpAddr::V4(Ipv4Addr::LOCALHOST), 8)]);
        let many: Vec<(IpAddr, u8)> = (0..70u8)
            .map(|i| (IpAddr::V4(Ipv4Addr::new(10, 0, 0, i)), 24))
            .chain([(IpAddr::V6(Ipv6Addr::LOCALHOST), 128)])
            .collect();
        let eth = nic([2, 0, 0, 0, 0, 1], &many);
        let mut nics = vec![lo, eth.clone()];
        nics.extend(std::iter::repeat_n(eth, 20));
        let got = encode_nic_info_v3(&nics, MAX_IPS_V2);
        // 16 NICs (the zero-MAC one skipped), each with 64 IPv4 entries of
        // 24 bytes: header 12, per NIC MAC 24 + count 4 + 64 * 24 + 16,
        // tail 20. The first NIC's address count sits after its MAC.
        assert_eq!(&got[8..12], &[0, 0, 0, 16]);
        assert_eq!(&got[12..16], &[0, 0, 0, 17]);
        assert_eq!(&got[36..40], &[0, 0, 0, 64]);
        assert_eq!(got.len(), 12 + 16 * (24 + 4 + 64 * 24 + 16) + 20);
    }

    #[test]
    fn primary_ip_prefers_routable_ipv4() {
        let ll6: Ipv6Addr = "fe80::1".parse().expect("literal");
        let g6: Ipv6Addr = "2001:db8::1".parse().expect("literal");
        let a = nic(
            [2, 0, 0, 0, 0, 1],
            &[
                (IpAddr::V6(ll6), 64),
                (IpAddr::V6(g6), 64),
                (IpAddr::V4(Ipv4Addr::new(169, 254, 1, 1)), 16),
            ],
        );
        let b = nic(
            [2, 0, 0, 0, 0, 2],
            &[(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)), 24)],
        );
        assert_eq!(
            primary_ip(&[a.clone(), b]),
            Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)))
        );
        assert_eq!(primary_ip(&[a]), Some(IpAddr::V6(g6)));
        assert_eq!(primary_ip(&[]), None);
    }

    #[test]
    fn mac_is_lowercase_colon_pairs() {
        assert_eq!(
            mac_text([0, 0x50, 0x56, 0xAB, 0xCD, 0xEF]),
            "00:50:56:ab:cd:ef"
        );
    }
}
