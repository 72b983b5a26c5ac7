//! guestinfo_get against the hypervisor double.

use super::*;
use crate::vmware::channel::{subtype, ChannelError, Step, MAX_MESSAGE_BYTES};
use crate::vmware::double::FakeHypervisor;

const OVF_ENV: &str = include_str!("../../../settings/test_data/ovf_env/vcenter.xml");

#[test]
fn reads_a_variable_and_closes_the_channel() {
    let mut host = FakeHypervisor::with_guestinfo(&[("guestinfo.ovfEnv", OVF_ENV)]);
    let got = guestinfo_get(&mut host, "ovfEnv").expect("read");
    assert_eq!(got.as_deref(), Some(OVF_ENV));
    assert_eq!(host.messages, vec![b"info-get guestinfo.ovfEnv".to_vec()]);
    assert_eq!(host.open_channels(), 0);
    assert!(host.violations.is_empty(), "{:?}", host.violations);
}

#[test]
fn prefix_is_optional_and_odd_lengths_and_unicode_survive() {
    let mut host = FakeHypervisor::with_guestinfo(&[("guestinfo.appliance.hostname", "lb-ü")]);
    assert_eq!(
        guestinfo_get(&mut host, "guestinfo.appliance.hostname")
            .expect("read")
            .as_deref(),
        Some("lb-ü")
    );
    assert_eq!(
        guestinfo_get(&mut host, "appliance.hostname")
            .expect("read")
            .as_deref(),
        Some("lb-ü")
    );
}

#[test]
fn missing_variable_is_none() {
    let mut host = FakeHypervisor::default();
    assert_eq!(
        guestinfo_get(&mut host, "appliance.hostname").expect("read"),
        None
    );
    assert_eq!(host.open_channels(), 0);
}

#[test]
fn empty_value_is_some_empty() {
    let mut host = FakeHypervisor::with_guestinfo(&[("guestinfo.x", "")]);
    assert_eq!(
        guestinfo_get(&mut host, "x").expect("read"),
        Some(String::new())
    );
}

#[test]
fn other_zero_reply_is_an_error_with_the_hosts_words() {
    let mut host = FakeHypervisor {
        reply_override: Some(b"0 Permission denied".to_vec()),
        ..FakeHypervisor::default()
    };
    let err = guestinfo_get(&mut host, "x").expect_err("refused");
    assert_eq!(
        err,
        GuestinfoError::Refused {
            key: "x".to_owned(),
            message: "Permission denied".to_owned()
        }
    );
}

#[test]
fn reply_without_status_prefix_is_malformed() {
    for reply in [&b"hello"[..], b"1", b"", b"2 x"] {
        let mut host = FakeHypervisor {
            reply_override: Some(reply.to_vec()),
            ..FakeHypervisor::default()
        };
        let err = guestinfo_get(&mut host, "x").expect_err("malformed");
        assert!(
            matches!(
                &err,
                GuestinfoError::Rpci {
                    source: RpciError::Malformed { .. },
                    ..
                }
            ),
            "{reply:?}: {err}"
        );
        assert_eq!(host.open_channels(), 0, "closed after a bad reply");
    }
}

#[test]
fn not_utf8_is_an_error() {
    let mut host = FakeHypervisor {
        reply_override: Some(b"1 \xff\xfe".to_vec()),
        ..FakeHypervisor::default()
    };
    assert_eq!(
        guestinfo_get(&mut host, "x"),
        Err(GuestinfoError::NotUtf8 {
            key: "x".to_owned()
        })
    );
}

#[test]
fn bad_keys_make_no_call() {
    let mut host = FakeHypervisor::default();
    for key in ["", "guestinfo.", "a b", "a\nb", "x\0"] {
        let err = guestinfo_get(&mut host, key).expect_err("bad key");
        assert!(matches!(err, GuestinfoError::BadKey { .. }), "{key:?}");
    }
    assert!(host.calls.is_empty());
}

#[test]
fn survives_a_checkpoint_on_both_legs() {
    let mut host = FakeHypervisor {
        cpt_on_send_chunk: Some(3),
        cpt_on_recv_chunk: Some(5),
        ..FakeHypervisor::with_guestinfo(&[("guestinfo.ovfEnv", OVF_ENV)])
    };
    assert_eq!(
        guestinfo_get(&mut host, "ovfEnv").expect("read").as_deref(),
        Some(OVF_ENV)
    );
    assert_eq!(host.count(subtype::SENDSIZE), 2);
    assert_eq!(host.count(subtype::RECVSIZE), 2);
    assert!(host.violations.is_empty(), "{:?}", host.violations);
}

#[test]
fn value_over_64_kib_is_refused() {
    let big = "x".repeat(MAX_MESSAGE_BYTES);
    let mut host = FakeHypervisor::with_guestinfo(&[("guestinfo.big", &big)]);
    let err = guestinfo_get(&mut host, "big").expect_err("reply is 64 KiB + 2");
    assert!(
        matches!(
            err,
            GuestinfoError::Rpci {
                source: RpciError::Channel {
                    source: ChannelError::TooLong {
                        step: Step::RecvSize,
                        ..
                    },
                    ..
                },
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(host.open_channels(), 0);
}

#[test]
fn host_without_message_command_fails_cleanly() {
    // QEMU's vmport answers the backdoor but not command 0x1E.
    let mut host = FakeHypervisor {
        refuse_open: true,
        ..FakeHypervisor::default()
    };
    let err = guestinfo_get(&mut host, "ovfEnv").expect_err("no RPCI");
    assert!(
        matches!(
            err,
            GuestinfoError::Rpci {
                source: RpciError::Channel {
                    source: ChannelError::Refused {
                        step: Step::Open,
                        ..
                    },
                    ..
                },
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("guestinfo.ovfEnv"), "{err}");
}

#[test]
fn only_ever_reads() {
    let mut host = FakeHypervisor::with_guestinfo(&[("guestinfo.a", "1")]);
    for key in ["a", "b", "ovfEnv"] {
        let _ = guestinfo_get(&mut host, key);
    }
    assert!(
        host.messages
            .iter()
            .all(|m| m.starts_with(b"info-get guestinfo.")),
        "{:?}",
        host.messages
    );
}
