//! The channel against the hypervisor double.

use super::*;
use crate::vmware::double::{FakeHypervisor, MAX_CHANNELS};

/// A host whose every RPCI reply is `reply`.
fn echo_host(reply: &[u8]) -> FakeHypervisor {
    FakeHypervisor {
        reply_override: Some(reply.to_vec()),
        ..FakeHypervisor::default()
    }
}

#[test]
fn open_gives_channel_and_cookies_and_close_frees_it() {
    // Input: two opens, then closes. Output: distinct channel ids and
    // non-zero cookies; both channels free again after close.
    let mut host = FakeHypervisor::default();
    let a = Channel::open(&mut host, PROTO_RPCI).expect("open a");
    let b = Channel::open(&mut host, PROTO_TCLO).expect("open b");
    assert_ne!(a.id(), b.id());
    assert!(a.cookie_high != 0 && a.cookie_low != 0);
    assert_ne!((a.cookie_high, a.cookie_low), (b.cookie_high, b.cookie_low));
    assert_eq!(host.open_channels(), 2);
    a.close(&mut host).expect("close a");
    b.close(&mut host).expect("close b");
    assert_eq!(host.open_channels(), 0);
    assert!(host.violations.is_empty(), "{:?}", host.violations);
}

#[test]
fn wrong_cookies_are_refused() {
    let mut host = FakeHypervisor::default();
    let ch = Channel::open(&mut host, PROTO_RPCI).expect("open");
    let forged = Channel {
        cookie_low: ch.cookie_low ^ 1,
        ..ch
    };
    let err = forged
        .send(&mut host, b"info-get guestinfo.x")
        .expect_err("forged cookies");
    assert!(
        matches!(
            err,
            ChannelError::Refused {
                step: Step::SendSize,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(host.violations.len(), 1);
}

#[test]
fn falls_back_to_no_cookies_on_an_old_host() {
    let mut host = FakeHypervisor {
        cookies_supported: false,
        ..FakeHypervisor::with_guestinfo(&[("guestinfo.a", "b")])
    };
    let ch = Channel::open(&mut host, PROTO_RPCI).expect("open without cookies");
    assert_eq!((ch.cookie_high, ch.cookie_low), (0, 0));
    assert_eq!(
        host.count(subtype::OPEN),
        2,
        "cookie open refused, then plain open"
    );
    ch.send(&mut host, b"info-get guestinfo.a").expect("send");
    assert_eq!(
        ch.receive(&mut host).expect("receive"),
        Some(b"1 b".to_vec())
    );
    assert!(host.violations.is_empty(), "{:?}", host.violations);
}

#[test]
fn no_free_channel_fails_open() {
    let mut host = FakeHypervisor::default();
    for _ in 0..MAX_CHANNELS {
        Channel::open(&mut host, PROTO_RPCI).expect("a free channel");
    }
    let err = Channel::open(&mut host, PROTO_RPCI).expect_err("all taken");
    assert_eq!(
        err,
        ChannelError::Refused {
            step: Step::Open,
            channel: 0,
            status: 0
        }
    );
}

#[test]
fn lengths_not_a_multiple_of_four_are_chunked_exactly() {
    // Input: messages and replies of 0 to 9 bytes. Output: the host gets
    // each message byte for byte in ceil(len/4) SENDPAYLOAD calls, and the
    // guest gets each reply byte for byte in ceil(len/4) RECVPAYLOAD calls.
    for len in 0..10_usize {
        let msg: Vec<u8> = (0..len)
            .map(|i| b'a' + u8::try_from(i).expect("small"))
            .collect();
        let mut host = echo_host(&msg);
        let ch = Channel::open(&mut host, PROTO_RPCI).expect("open");
        ch.send(&mut host, &msg).expect("send");
        assert_eq!(host.messages, vec![msg.clone()], "len {len}");
        assert_eq!(
            host.count(subtype::SENDPAYLOAD),
            len.div_ceil(4),
            "len {len}"
        );
        let reply = ch.receive(&mut host).expect("receive");
        assert_eq!(reply, Some(msg.clone()), "len {len}");
        assert_eq!(
            host.count(subtype::RECVPAYLOAD),
            len.div_ceil(4),
            "len {len}"
        );
        assert_eq!(host.count(subtype::RECVSTATUS), 1);
        ch.close(&mut host).expect("close");
        assert!(
            host.violations.is_empty(),
            "len {len}: {:?}",
            host.violations
        );
    }
}

#[test]
fn checkpoint_during_send_restarts_from_sendsize() {
    // Input: a 10-byte message, the VM checkpointed at the third chunk.
    // Output: SENDSIZE twice, 3 payload calls (the third refused with CPT)
    // then 3 again, and the message arrives once and intact.
    let mut host = FakeHypervisor {
        cpt_on_send_chunk: Some(2),
        ..echo_host(b"1 ")
    };
    let ch = Channel::open(&mut host, PROTO_RPCI).expect("open");
    ch.send(&mut host, b"0123456789")
        .expect("send survives the checkpoint");
    assert_eq!(host.count(subtype::SENDSIZE), 2);
    assert_eq!(host.count(subtype::SENDPAYLOAD), 3 + 3);
    assert_eq!(host.messages, vec![b"0123456789".to_vec()]);
    assert!(host.violations.is_empty(), "{:?}", host.violations);
}

#[test]
fn checkpoint_during_receive_restarts_from_recvsize() {
    let mut host = FakeHypervisor {
        cpt_on_recv_chunk: Some(1),
        ..echo_host(b"1 hello world")
    };
    let ch = Channel::open(&mut host, PROTO_RPCI).expect("open");
    ch.send(&mut host, b"x").expect("send");
    assert_eq!(
        ch.receive(&mut host).expect("receive"),
        Some(b"1 hello world".to_vec())
    );
    assert_eq!(host.count(subtype::RECVSIZE), 2);
    assert!(host.violations.is_empty(), "{:?}", host.violations);
}

#[test]
fn endless_checkpoints_give_up() {
    let mut host = FakeHypervisor {
        cpt_always: true,
        ..FakeHypervisor::default()
    };
    let ch = Channel::open(&mut host, PROTO_RPCI).expect("open");
    let err = ch.send(&mut host, b"abc").expect_err("never completes");
    assert!(
        matches!(
            err,
            ChannelError::Checkpoints {
                step: Step::SendPayload,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(host.count(subtype::SENDSIZE), MAX_CHECKPOINT_RETRIES);
}

#[test]
fn nothing_to_receive_is_none() {
    let mut host = FakeHypervisor::default();
    let ch = Channel::open(&mut host, PROTO_RPCI).expect("open");
    assert_eq!(ch.receive(&mut host).expect("receive"), None);
    assert_eq!(host.count(subtype::RECVPAYLOAD), 0);
}

#[test]
fn sixty_four_kib_cap_both_ways() {
    let mut host = echo_host(b"1 ");
    let ch = Channel::open(&mut host, PROTO_RPCI).expect("open");
    let calls_before = host.calls.len();
    let err = ch
        .send(&mut host, &vec![b'x'; MAX_MESSAGE_BYTES + 1])
        .expect_err("too long");
    assert_eq!(
        err,
        ChannelError::TooLong {
            step: Step::SendSize,
            len: MAX_MESSAGE_BYTES + 1
        }
    );
    assert_eq!(
        host.calls.len(),
        calls_before,
        "refused before any backdoor call"
    );
    ch.send(&mut host, &vec![b'x'; MAX_MESSAGE_BYTES])
        .expect("exactly 64 KiB is fine");
    assert_eq!(
        ch.receive(&mut host).expect("receive"),
        Some(b"1 ".to_vec())
    );

    host.reply_override = Some(vec![b'y'; MAX_MESSAGE_BYTES + 1]);
    ch.send(&mut host, b"x").expect("send");
    let err = ch.receive(&mut host).expect_err("reply too long");
    assert_eq!(
        err,
        ChannelError::TooLong {
            step: Step::RecvSize,
            len: MAX_MESSAGE_BYTES + 1
        }
    );
    // One payload call for the 2-byte reply, none for the long one.
    assert_eq!(host.count(subtype::RECVPAYLOAD), 1);
}

#[test]
fn many_lengths_and_checkpoint_positions_round_trip() {
    // Input: message lengths around chunk and size boundaries, each with no
    // checkpoint, one at the first chunk and one at the last chunk, on the
    // send and the receive leg. Output: the host gets the message and the
    // guest the reply (the same bytes) intact, with no protocol violation.
    let lengths = [
        0,
        1,
        2,
        3,
        4,
        5,
        7,
        8,
        9,
        13,
        4095,
        4096,
        4097,
        MAX_MESSAGE_BYTES - 1,
        MAX_MESSAGE_BYTES,
    ];
    for len in lengths {
        let msg: Vec<u8> = (0..len)
            .map(|i| u8::try_from(i % 251).expect("below 251"))
            .collect();
        let last = len.div_ceil(4).saturating_sub(1);
        for cpt in [None, Some(0), Some(last)] {
            let mut host = FakeHypervisor {
                cpt_on_send_chunk: cpt,
                cpt_on_recv_chunk: cpt,
                ..echo_host(&msg)
            };
            let ch = Channel::open(&mut host, PROTO_RPCI).expect("open");
            ch.send(&mut host, &msg).expect("send");
            let got = ch.receive(&mut host).expect("receive");
            ch.close(&mut host).expect("close");
            assert_eq!(host.messages.len(), 1, "len {len} cpt {cpt:?}");
            assert!(
                host.messages[0] == msg,
                "len {len} cpt {cpt:?}: message differs"
            );
            assert!(
                got.as_deref() == Some(&msg[..]),
                "len {len} cpt {cpt:?}: reply differs"
            );
            assert!(
                host.violations.is_empty(),
                "len {len} cpt {cpt:?}: {:?}",
                host.violations
            );
        }
    }
}
