//! Byte-level tests: each expected message is written out by hand from
//! linux/netlink.h, linux/netfilter/nfnetlink.h and nf_tables.h, one
//! attribute per line. Header fields are host byte order (these tests run
//! on little-endian hosts); nf_tables' u32 attributes are big endian.

use super::*;
use crate::firewall::model::{build_ruleset, CtState, FirewallInput, Match, Verdict};

/// Parses "0a 00  ff" (whitespace ignored) into bytes.
fn hex(lines: &[&str]) -> Vec<u8> {
    let digits: String = lines.concat().split_whitespace().collect();
    (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).expect("test literal is hex"))
        .collect()
}

/// Splits a batch into its messages (by nlmsg_len).
fn messages(bytes: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while rest.len() >= 4 {
        let len = u32::from_ne_bytes([rest[0], rest[1], rest[2], rest[3]]);
        let len = usize::try_from(len).expect("fits");
        out.push(&rest[..len]);
        rest = &rest[len..];
    }
    assert!(rest.is_empty(), "batch ends on a message boundary");
    out
}

fn one_rule_ruleset(rule: Rule) -> Ruleset {
    Ruleset {
        table: "appliance".to_owned(),
        chains: vec![Chain {
            name: "input".to_owned(),
            hook: Hook::Input,
            priority: 0,
            policy: Verdict::Drop,
            rules: vec![rule],
        }],
    }
}

#[test]
#[cfg(target_endian = "little")]
fn batch_markers_table_and_chain_bytes() {
    let batch = encode(
        &one_rule_ruleset(Rule::accept(vec![Match::TcpDport(443)])),
        100,
    )
    .expect("encodes");
    let msgs = messages(&batch.bytes);
    assert_eq!(msgs.len(), 7, "begin, 3 table messages, chain, rule, end");

    let begin = hex(&[
        "14000000 1000 0100", // len 20, NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST
        "64000000 00000000",  // seq 100, port id 0
        "00 00 000a",         // AF_UNSPEC, NFNETLINK_V0, res_id = be16 10 (nf_tables)
    ]);
    assert_eq!(msgs[0], begin.as_slice());

    let new_table = hex(&[
        "24000000 000a 0504", // len 36, (10 << 8) | NFT_MSG_NEWTABLE, REQUEST|ACK|CREATE
        "65000000 00000000",  // seq 101
        "01 00 0000",         // NFPROTO_INET, V0, res_id 0
        "0e00 0100 6170706c69616e636500 0000", // NFTA_TABLE_NAME "appliance\0", 2 pad
    ]);
    assert_eq!(msgs[1], new_table.as_slice());

    let del_table = hex(&[
        "24000000 020a 0500", // NFT_MSG_DELTABLE, REQUEST|ACK (no CREATE)
        "66000000 00000000 01 00 0000",
        "0e00 0100 6170706c69616e636500 0000",
    ]);
    assert_eq!(msgs[2], del_table.as_slice());
    assert_eq!(&msgs[3][4..8], &hex(&["000a 0504"])[..], "NEWTABLE again");

    let chain = hex(&[
        "58000000 030a 0504", // len 88, NFT_MSG_NEWCHAIN, REQUEST|ACK|CREATE
        "68000000 00000000 01 00 0000",
        "0e00 0100 6170706c69616e636500 0000", // NFTA_CHAIN_TABLE "appliance"
        "0a00 0300 696e70757400 0000",         // NFTA_CHAIN_NAME "input\0", 2 pad
        "1400 0480",                           // NFTA_CHAIN_HOOK, nested, len 20
        "  0800 0100 00000001",                // NFTA_HOOK_HOOKNUM NF_INET_LOCAL_IN
        "  0800 0200 00000000",                // NFTA_HOOK_PRIORITY 0 (filter)
        "0800 0500 00000000",                  // NFTA_CHAIN_POLICY NF_DROP
        "0b00 0700 66696c74657200 00",         // NFTA_CHAIN_TYPE "filter\0", 1 pad
    ]);
    assert_eq!(msgs[4], chain.as_slice());

    let end = hex(&["14000000 1100 0100", "6a000000 00000000", "00 00 000a"]);
    assert_eq!(msgs[6], end.as_slice());
}

#[test]
#[cfg(target_endian = "little")]
fn tcp_dport_rule_bytes() {
    let batch = encode(
        &one_rule_ruleset(Rule::accept(vec![Match::TcpDport(443)])),
        1,
    )
    .expect("encodes");
    let rule = hex(&[
        "14010000 060a 050c", // len 276, NFT_MSG_NEWRULE, REQUEST|ACK|CREATE|APPEND
        "06000000 00000000 01 00 0000",
        "0e00 0100 6170706c69616e636500 0000", // NFTA_RULE_TABLE
        "0a00 0200 696e70757400 0000",         // NFTA_RULE_CHAIN "input"
        "e400 0480",                           // NFTA_RULE_EXPRESSIONS, len 228
        // [ meta load l4proto => reg 1 ]
        "  2400 0180",                     // NFTA_LIST_ELEM, len 36
        "    0900 0100 6d65746100 000000", // NFTA_EXPR_NAME "meta\0"
        "    1400 0280",                   // NFTA_EXPR_DATA, len 20
        "      0800 0100 00000001",        // NFTA_META_DREG NFT_REG_1
        "      0800 0200 00000010",        // NFTA_META_KEY NFT_META_L4PROTO (16)
        // [ cmp eq reg 1 0x06 ]
        "  2c00 0180",                 // len 44
        "    0800 0100 636d7000",      // "cmp\0"
        "    2000 0280",               // len 32
        "      0800 0100 00000001",    // NFTA_CMP_SREG reg 1
        "      0800 0200 00000000",    // NFTA_CMP_OP NFT_CMP_EQ
        "      0c00 0380",             // NFTA_CMP_DATA, len 12
        "        0500 0100 06 000000", // NFTA_DATA_VALUE IPPROTO_TCP, 3 pad
        // [ payload load 2b @ transport header + 2 => reg 1 ]
        "  3400 0180",                    // len 52
        "    0c00 0100 7061796c6f616400", // "payload\0"
        "    2400 0280",                  // len 36
        "      0800 0100 00000001",       // NFTA_PAYLOAD_DREG reg 1
        "      0800 0200 00000002",       // NFTA_PAYLOAD_BASE transport header
        "      0800 0300 00000002",       // NFTA_PAYLOAD_OFFSET 2 (dport)
        "      0800 0400 00000002",       // NFTA_PAYLOAD_LEN 2
        // [ cmp eq reg 1 0x01bb ]
        "  2c00 0180",
        "    0800 0100 636d7000",
        "    2000 0280",
        "      0800 0100 00000001",
        "      0800 0200 00000000",
        "      0c00 0380",
        "        0600 0100 01bb 0000", // 443 in network order, 2 pad
        // [ immediate reg 0 accept ]
        "  3000 0180",                             // len 48
        "    0e00 0100 696d6d65646961746500 0000", // "immediate\0"
        "    1c00 0280",                           // len 28
        "      0800 0100 00000000",                // NFTA_IMMEDIATE_DREG NFT_REG_VERDICT
        "      1000 0280",                         // NFTA_IMMEDIATE_DATA, len 16
        "        0c00 0280",                       // NFTA_DATA_VERDICT, len 12
        "          0800 0100 00000001",            // NFTA_VERDICT_CODE NF_ACCEPT
    ]);
    assert_eq!(messages(&batch.bytes)[5], rule.as_slice());
}

#[test]
#[cfg(target_endian = "little")]
fn ct_state_and_loopback_expression_bytes() {
    let rule = Rule::accept(vec![Match::CtState(CtState(6)), Match::Loopback]);
    let batch = encode(&one_rule_ruleset(rule), 1).expect("encodes");
    let msg = messages(&batch.bytes)[5];
    let exprs = &msg[20 + 16 + 12 + 4..];
    let ct_bitwise_cmp = hex(&[
        // [ ct load state => reg 1 ]
        "2000 0180 0700 0100 637400 00 1400 0280",
        "  0800 0100 00000001", // NFTA_CT_DREG reg 1
        "  0800 0200 00000000", // NFTA_CT_KEY NFT_CT_STATE
        // [ bitwise reg 1 = (reg 1 & 0x00000006) ^ 0 ]
        "4400 0180 0c00 0100 62697477697365 00", // "bitwise\0", len 68
        "3400 0280",
        "  0800 0100 00000001",           // NFTA_BITWISE_SREG
        "  0800 0200 00000001",           // NFTA_BITWISE_DREG
        "  0800 0300 00000004",           // NFTA_BITWISE_LEN 4
        "  0c00 0480 0800 0100 06000000", // MASK: host-order u32 established|related
        "  0c00 0580 0800 0100 00000000", // XOR 0
        // [ cmp neq reg 1 0 ]
        "2c00 0180 0800 0100 636d7000 2000 0280",
        "  0800 0100 00000001 0800 0200 00000001", // NFT_CMP_NEQ
        "  0c00 0380 0800 0100 00000000",
        // [ meta load iif => reg 1 ]
        "2400 0180 0900 0100 6d65746100 000000 1400 0280",
        "  0800 0100 00000001 0800 0200 00000004", // NFT_META_IIF
        // [ cmp eq reg 1 0x00000001 ]  loopback's ifindex, host order
        "2c00 0180 0800 0100 636d7000 2000 0280",
        "  0800 0100 00000001 0800 0200 00000000",
        "  0c00 0380 0800 0100 01000000",
    ]);
    assert_eq!(&exprs[..ct_bitwise_cmp.len()], ct_bitwise_cmp.as_slice());
}

#[test]
fn every_rule_is_labelled_with_its_text_and_sequence() {
    let input = FirewallInput {
        tcp_ports: vec![443],
        ..FirewallInput::default()
    };
    let rs = build_ruleset(&input);
    let batch = encode(&rs, 10).expect("encodes");
    let rules: usize = rs.chains.iter().map(|c| c.rules.len()).sum();
    assert_eq!(batch.acked.len(), 3 + rs.chains.len() + rules);
    assert_eq!(batch.begin_seq, 10);
    let seqs: Vec<u32> = batch.acked.iter().map(|(s, _)| *s).collect();
    let expected: Vec<u32> = (11..11 + u32::try_from(seqs.len()).expect("small")).collect();
    assert_eq!(seqs, expected);
    assert!(batch
        .acked
        .iter()
        .any(|(_, what)| what.ends_with("of chain input (tcp dport 443 accept)")));
    assert_eq!(batch.acked[3].1, "chain input (hook input)");
    // The sequence numbers in the bytes match the labels.
    let msgs = messages(&batch.bytes);
    for (msg, (seq, _)) in msgs[1..msgs.len() - 1].iter().zip(&batch.acked) {
        assert_eq!(u32::from_ne_bytes([msg[8], msg[9], msg[10], msg[11]]), *seq);
    }
}

#[test]
fn ipv6_saddr_checks_the_family_once() {
    let addr = "2001:db8::2".parse().expect("literal");
    let rule = Rule::accept(vec![Match::Saddr(addr), Match::Daddr(addr)]);
    let batch = encode(&one_rule_ruleset(rule), 1).expect("encodes");
    let msg = messages(&batch.bytes)[5];
    let count = |needle: &[u8]| msg.windows(needle.len()).filter(|w| *w == needle).count();
    // One meta nfproto (key 15) despite two address matches.
    assert_eq!(count(&hex(&["0800 0200 0000000f"])), 1);
    // Offsets 8 (saddr) and 24 (daddr), each 16 bytes long.
    assert_eq!(count(&hex(&["0800 0300 00000008"])), 1);
    assert_eq!(count(&hex(&["0800 0300 00000018"])), 1);
    assert_eq!(count(&hex(&["0800 0400 00000010"])), 2);
    assert_eq!(count(&hex(&["20010db8 00000000 00000000 00000002"])), 2);
}

#[test]
fn oversized_names_are_an_error_naming_the_part() {
    let mut rs = one_rule_ruleset(Rule::accept(vec![Match::Loopback]));
    rs.chains[0].name = "c".repeat(70_000);
    let err = encode(&rs, 1).expect_err("a 70000-byte name does not fit");
    assert!(err.to_string().contains("chain ccc"), "{err}");
}
