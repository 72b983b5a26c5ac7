//! A rule's matches as nf_tables expressions (the `NFTA_RULE_EXPRESSIONS`
//! list), following linux/netfilter/nf_tables.h.
//!
//! Every match loads a value into register 1 and compares it; the rule ends
//! with an `immediate` that writes the verdict register:
//!
//! ```text
//! tcp dport 443 accept
//!   [ meta load l4proto => reg 1 ]        dependency: the transport header is TCP
//!   [ cmp eq reg 1 0x06 ]
//!   [ payload load 2b @ transport header + 2 => reg 1 ]
//!   [ cmp eq reg 1 0x01bb ]               network byte order
//!   [ immediate reg 0 accept ]
//! ct state established,related
//!   [ ct load state => reg 1 ]            host-order u32 bit set
//!   [ bitwise reg 1 = (reg 1 & 0x06) ^ 0 ]
//!   [ cmp neq reg 1 0 ]
//! ```
//!
//! Payload matches first check the protocol they read (`meta nfproto` for
//! IPv4/IPv6 headers in the `inet` family, `meta l4proto` for transport
//! headers), as nft does, so `nft list` prints them back without the check.

use std::net::IpAddr;

use super::model::{Match, Rule, Verdict};
use super::wire::MsgWriter;

// enum nft_list_attributes, nft_expr_attributes, nft_data_attributes,
// nft_verdict_attributes.
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_EXPR_NAME: u16 = 1;
const NFTA_EXPR_DATA: u16 = 2;
const NFTA_DATA_VALUE: u16 = 1;
const NFTA_DATA_VERDICT: u16 = 2;
const NFTA_VERDICT_CODE: u16 = 1;
// enum nft_meta_attributes and nft_meta_keys.
const NFTA_META_DREG: u16 = 1;
const NFTA_META_KEY: u16 = 2;
const NFT_META_IIF: u32 = 4;
const NFT_META_IIFNAME: u32 = 6;
const NFT_META_NFPROTO: u32 = 15;
const NFT_META_L4PROTO: u32 = 16;
// enum nft_cmp_attributes and nft_cmp_ops.
const NFTA_CMP_SREG: u16 = 1;
const NFTA_CMP_OP: u16 = 2;
const NFTA_CMP_DATA: u16 = 3;
const NFT_CMP_EQ: u32 = 0;
const NFT_CMP_NEQ: u32 = 1;
// enum nft_payload_attributes and nft_payload_bases.
const NFTA_PAYLOAD_DREG: u16 = 1;
const NFTA_PAYLOAD_BASE: u16 = 2;
const NFTA_PAYLOAD_OFFSET: u16 = 3;
const NFTA_PAYLOAD_LEN: u16 = 4;
const NFT_PAYLOAD_NETWORK_HEADER: u32 = 1;
const NFT_PAYLOAD_TRANSPORT_HEADER: u32 = 2;
// enum nft_ct_attributes and nft_ct_keys.
const NFTA_CT_DREG: u16 = 1;
const NFTA_CT_KEY: u16 = 2;
const NFT_CT_STATE: u32 = 0;
// enum nft_bitwise_attributes.
const NFTA_BITWISE_SREG: u16 = 1;
const NFTA_BITWISE_DREG: u16 = 2;
const NFTA_BITWISE_LEN: u16 = 3;
const NFTA_BITWISE_MASK: u16 = 4;
const NFTA_BITWISE_XOR: u16 = 5;
// enum nft_immediate_attributes.
const NFTA_IMMEDIATE_DREG: u16 = 1;
const NFTA_IMMEDIATE_DATA: u16 = 2;
// enum nft_registers: the verdict register and the first 16-byte register.
const NFT_REG_VERDICT: u32 = 0;
const NFT_REG_1: u32 = 1;
// Verdicts (linux/netfilter.h) and protocol families (NFPROTO_*).
const NF_DROP: u32 = 0;
const NF_ACCEPT: u32 = 1;
const NFPROTO_IPV4: u8 = 2;
const NFPROTO_IPV6: u8 = 10;
const IPPROTO_ICMP: u8 = 1;
const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;
const IPPROTO_ICMPV6: u8 = 58;
/// The loopback device's index in every network namespace
/// (`LOOPBACK_IFINDEX` in the kernel).
const LOOPBACK_IFINDEX: u32 = 1;
/// Interface names are compared over the whole `IFNAMSIZ` buffer.
const IFNAMSIZ: usize = 16;

/// The verdict register's value for a chain policy (`NFTA_CHAIN_POLICY`).
pub(crate) fn verdict_code(verdict: Verdict) -> u32 {
    match verdict {
        Verdict::Accept => NF_ACCEPT,
        Verdict::Drop => NF_DROP,
    }
}

/// Writes the expressions of `rule` into the `NFTA_RULE_EXPRESSIONS` nest
/// being built.
pub(crate) fn write_rule(w: &mut MsgWriter, rule: &Rule) {
    let mut checked = Checked::default();
    for m in &rule.matches {
        write_match(w, m, &mut checked);
    }
    expr(w, "immediate", |w| {
        w.be32(NFTA_IMMEDIATE_DREG, NFT_REG_VERDICT);
        w.nest(NFTA_IMMEDIATE_DATA, |w| {
            w.nest(NFTA_DATA_VERDICT, |w| {
                w.be32(NFTA_VERDICT_CODE, verdict_code(rule.verdict));
            });
        });
    });
}

/// Protocol checks already made earlier in the rule, so `udp sport 67 udp
/// dport 68` checks `meta l4proto udp` once.
#[derive(Default)]
struct Checked {
    nfproto: Option<u8>,
    l4proto: Option<u8>,
}

fn write_match(w: &mut MsgWriter, m: &Match, checked: &mut Checked) {
    match m {
        Match::CtState(states) => {
            expr(w, "ct", |w| {
                w.be32(NFTA_CT_DREG, NFT_REG_1);
                w.be32(NFTA_CT_KEY, NFT_CT_STATE);
            });
            expr(w, "bitwise", |w| {
                w.be32(NFTA_BITWISE_SREG, NFT_REG_1);
                w.be32(NFTA_BITWISE_DREG, NFT_REG_1);
                w.be32(NFTA_BITWISE_LEN, 4);
                w.nest(NFTA_BITWISE_MASK, |w| {
                    w.bytes(NFTA_DATA_VALUE, &states.0.to_ne_bytes());
                });
                w.nest(NFTA_BITWISE_XOR, |w| {
                    w.bytes(NFTA_DATA_VALUE, &0u32.to_ne_bytes());
                });
            });
            cmp(w, NFT_CMP_NEQ, &0u32.to_ne_bytes());
        }
        Match::Loopback => {
            meta(w, NFT_META_IIF);
            cmp(w, NFT_CMP_EQ, &LOOPBACK_IFINDEX.to_ne_bytes());
        }
        Match::IifName(name) => {
            meta(w, NFT_META_IIFNAME);
            let mut padded = name.as_bytes().to_vec();
            padded.resize(padded.len().max(IFNAMSIZ), 0);
            cmp(w, NFT_CMP_EQ, &padded);
        }
        Match::L4Proto(proto) => {
            meta(w, NFT_META_L4PROTO);
            cmp(w, NFT_CMP_EQ, &[*proto]);
            checked.l4proto = Some(*proto);
        }
        Match::IcmpType(t) => transport(w, checked, IPPROTO_ICMP, 0, &[*t]),
        Match::Icmpv6Type(t) => transport(w, checked, IPPROTO_ICMPV6, 0, &[*t]),
        Match::TcpDport(port) => transport(w, checked, IPPROTO_TCP, 2, &port.to_be_bytes()),
        Match::UdpSport(port) => transport(w, checked, IPPROTO_UDP, 0, &port.to_be_bytes()),
        Match::UdpDport(port) => transport(w, checked, IPPROTO_UDP, 2, &port.to_be_bytes()),
        Match::Saddr(addr) => address(w, checked, addr, AddrField::Source),
        Match::Daddr(addr) => address(w, checked, addr, AddrField::Destination),
    }
}

#[derive(Clone, Copy)]
enum AddrField {
    Source,
    Destination,
}

/// `ip saddr` is at offset 12 of the IPv4 header, `ip daddr` at 16;
/// `ip6 saddr` at 8 of the IPv6 header, `ip6 daddr` at 24.
fn address(w: &mut MsgWriter, checked: &mut Checked, addr: &IpAddr, field: AddrField) {
    let (family, offset, bytes): (u8, u32, Vec<u8>) = match (addr, field) {
        (IpAddr::V4(a), AddrField::Source) => (NFPROTO_IPV4, 12, a.octets().to_vec()),
        (IpAddr::V4(a), AddrField::Destination) => (NFPROTO_IPV4, 16, a.octets().to_vec()),
        (IpAddr::V6(a), AddrField::Source) => (NFPROTO_IPV6, 8, a.octets().to_vec()),
        (IpAddr::V6(a), AddrField::Destination) => (NFPROTO_IPV6, 24, a.octets().to_vec()),
    };
    if checked.nfproto != Some(family) {
        meta(w, NFT_META_NFPROTO);
        cmp(w, NFT_CMP_EQ, &[family]);
        checked.nfproto = Some(family);
    }
    payload(w, NFT_PAYLOAD_NETWORK_HEADER, offset, &bytes);
}

/// A transport header field, after checking the transport protocol.
fn transport(w: &mut MsgWriter, checked: &mut Checked, proto: u8, offset: u32, value: &[u8]) {
    if checked.l4proto != Some(proto) {
        meta(w, NFT_META_L4PROTO);
        cmp(w, NFT_CMP_EQ, &[proto]);
        checked.l4proto = Some(proto);
    }
    payload(w, NFT_PAYLOAD_TRANSPORT_HEADER, offset, value);
}

/// Loads `value.len()` bytes at `base + offset` and compares them.
fn payload(w: &mut MsgWriter, base: u32, offset: u32, value: &[u8]) {
    // Values are at most 16 bytes (an IPv6 address).
    let len = u32::try_from(value.len()).unwrap_or(u32::MAX);
    expr(w, "payload", |w| {
        w.be32(NFTA_PAYLOAD_DREG, NFT_REG_1);
        w.be32(NFTA_PAYLOAD_BASE, base);
        w.be32(NFTA_PAYLOAD_OFFSET, offset);
        w.be32(NFTA_PAYLOAD_LEN, len);
    });
    cmp(w, NFT_CMP_EQ, value);
}

fn meta(w: &mut MsgWriter, key: u32) {
    expr(w, "meta", |w| {
        w.be32(NFTA_META_DREG, NFT_REG_1);
        w.be32(NFTA_META_KEY, key);
    });
}

fn cmp(w: &mut MsgWriter, op: u32, value: &[u8]) {
    expr(w, "cmp", |w| {
        w.be32(NFTA_CMP_SREG, NFT_REG_1);
        w.be32(NFTA_CMP_OP, op);
        w.nest(NFTA_CMP_DATA, |w| w.bytes(NFTA_DATA_VALUE, value));
    });
}

/// One element of the expression list: its name and its attributes.
fn expr(w: &mut MsgWriter, name: &str, data: impl FnOnce(&mut MsgWriter)) {
    w.nest(NFTA_LIST_ELEM, |w| {
        w.str(NFTA_EXPR_NAME, name);
        w.nest(NFTA_EXPR_DATA, data);
    });
}
