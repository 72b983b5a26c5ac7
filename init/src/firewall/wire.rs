//! Netlink framing for nfnetlink: message headers, attributes, and the
//! acknowledgements the kernel sends back.
//!
//! ```text
//! nlmsghdr (16 bytes, host byte order)        nfgenmsg (4 bytes)
//! +--------+------+-------+-----+-----+       +--------+---------+--------+
//! | len u32|type  |flags  |seq  |pid  |       |family  |version  |res_id  |
//! |        |u16   |u16    |u32  |u32  |       |u8      |u8 (= 0) |be16    |
//! +--------+------+-------+-----+-----+       +--------+---------+--------+
//! then attributes, each padded to 4 bytes:
//! +----------+----------+------------------+---------+
//! | len u16  | type u16 | payload          | padding |
//! +----------+----------+------------------+---------+
//! len counts header and payload, not padding; bit 15 of type marks a
//! nested attribute (NLA_F_NESTED). nf_tables numbers are big endian.
//! ```

/// `NETLINK_NETFILTER` message type of nf_tables: subsystem in the high byte.
const NFNL_SUBSYS_NFTABLES: u16 = 10;
/// `NLMSG_ERROR`: an acknowledgement or an error.
const NLMSG_ERROR: u16 = 2;
/// `NLM_F_REQUEST`.
pub(crate) const NLM_F_REQUEST: u16 = 0x01;
/// `NLM_F_ACK`: answer with an `NLMSG_ERROR` whose code is 0 on success.
pub(crate) const NLM_F_ACK: u16 = 0x04;
/// `NLM_F_CREATE`.
pub(crate) const NLM_F_CREATE: u16 = 0x400;
/// `NLM_F_APPEND`: add the rule at the end of the chain.
pub(crate) const NLM_F_APPEND: u16 = 0x800;
/// `NLM_F_CAPPED`: the error does not repeat our message's payload.
const NLM_F_CAPPED: u16 = 0x100;
/// `NLM_F_ACK_TLVS`: extended ack attributes follow.
const NLM_F_ACK_TLVS: u16 = 0x200;
/// `NLMSGERR_ATTR_MSG`: the kernel's text for the error.
const NLMSGERR_ATTR_MSG: u16 = 1;
/// `NLA_F_NESTED`.
const NLA_F_NESTED: u16 = 1 << 15;
const NLMSG_HDRLEN: usize = 16;
const NLA_HDRLEN: usize = 4;

/// `NFNL_MSG_BATCH_BEGIN` (`NLMSG_MIN_TYPE`).
pub(crate) const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
/// `NFNL_MSG_BATCH_END`.
pub(crate) const NFNL_MSG_BATCH_END: u16 = 0x11;

/// `nlmsg_type` of an nf_tables message (`NFT_MSG_*`).
pub(crate) const fn nft_type(msg: u16) -> u16 {
    (NFNL_SUBSYS_NFTABLES << 8) | msg
}

const fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// Builds one netlink message; lengths are patched in when each nest and
/// the message end. An attribute too long for its 16-bit length marks the
/// message as oversized instead of panicking.
pub(crate) struct MsgWriter {
    buf: Vec<u8>,
    oversized: bool,
}

impl MsgWriter {
    /// A message header plus `nfgenmsg`; for batch messages `res_id` names
    /// the subsystem, otherwise it is 0.
    pub(crate) fn new(msg_type: u16, flags: u16, seq: u32, family: u8, res_id: u16) -> Self {
        let mut buf = Vec::with_capacity(128);
        buf.extend_from_slice(&0u32.to_ne_bytes()); // length, patched in finish
        buf.extend_from_slice(&msg_type.to_ne_bytes());
        buf.extend_from_slice(&flags.to_ne_bytes());
        buf.extend_from_slice(&seq.to_ne_bytes());
        buf.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel fills it
        buf.push(family);
        buf.push(0); // NFNETLINK_V0
        buf.extend_from_slice(&res_id.to_be_bytes());
        Self {
            buf,
            oversized: false,
        }
    }

    /// An attribute with raw bytes.
    pub(crate) fn bytes(&mut self, attr: u16, payload: &[u8]) {
        let start = self.begin_attr(attr);
        self.buf.extend_from_slice(payload);
        self.end_attr(start);
    }

    /// A NUL-terminated string attribute (`NLA_STRING` as nf_tables reads
    /// it).
    pub(crate) fn str(&mut self, attr: u16, value: &str) {
        let start = self.begin_attr(attr);
        self.buf.extend_from_slice(value.as_bytes());
        self.buf.push(0);
        self.end_attr(start);
    }

    /// A big-endian 32-bit attribute (nf_tables' `NLA_U32` is network order).
    pub(crate) fn be32(&mut self, attr: u16, value: u32) {
        self.bytes(attr, &value.to_be_bytes());
    }

    /// A nested attribute whose content `fill` writes.
    pub(crate) fn nest(&mut self, attr: u16, fill: impl FnOnce(&mut Self)) {
        let start = self.begin_attr(attr | NLA_F_NESTED);
        fill(self);
        self.end_attr(start);
    }

    fn begin_attr(&mut self, attr: u16) -> usize {
        let start = self.buf.len();
        self.buf.extend_from_slice(&0u16.to_ne_bytes());
        self.buf.extend_from_slice(&attr.to_ne_bytes());
        start
    }

    fn end_attr(&mut self, start: usize) {
        let len = self.buf.len() - start;
        let len = u16::try_from(len).unwrap_or_else(|_| {
            self.oversized = true;
            0
        });
        self.buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
        self.buf.resize(align4(self.buf.len()), 0);
    }

    /// The finished message, or `None` when an attribute was too long.
    pub(crate) fn finish(mut self) -> Option<Vec<u8>> {
        let len = u32::try_from(self.buf.len()).ok()?;
        self.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        (!self.oversized).then_some(self.buf)
    }
}

/// One `NLMSG_ERROR` from the kernel: `errno` 0 acknowledges the message
/// with sequence number `seq`, a negative one rejects it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ack {
    pub seq: u32,
    pub errno: i32,
    /// The kernel's extended ack text, when it gave one.
    pub message: Option<String>,
}

/// A reply that is not a well-formed netlink message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Shorter than its header or its declared length.
    #[error("truncated netlink message at byte {offset}")]
    Truncated { offset: usize },
}

/// The acknowledgements in one datagram; other message types (none are
/// expected for a batch) are skipped.
pub(crate) fn parse_acks(datagram: &[u8]) -> Result<Vec<Ack>, DecodeError> {
    let mut acks = Vec::new();
    let mut offset = 0;
    while offset < datagram.len() {
        let truncated = DecodeError::Truncated { offset };
        let header = datagram
            .get(offset..offset + NLMSG_HDRLEN)
            .ok_or(truncated)?;
        let len = usize::try_from(read_u32(header, 0)).map_err(|_| truncated)?;
        let msg = datagram
            .get(offset..offset + len)
            .filter(|_| len >= NLMSG_HDRLEN)
            .ok_or(truncated)?;
        if read_u16(msg, 4) == NLMSG_ERROR {
            acks.push(parse_error(msg, read_u16(msg, 6)).ok_or(truncated)?);
        }
        offset += align4(len);
    }
    Ok(acks)
}

/// `struct nlmsgerr`: `int error`, then our original header (and its
/// payload unless capped), then extended ack attributes.
fn parse_error(msg: &[u8], flags: u16) -> Option<Ack> {
    let errno = i32::from_ne_bytes(msg.get(16..20)?.try_into().ok()?);
    let original = msg.get(20..20 + NLMSG_HDRLEN)?;
    let seq = read_u32(original, 8);
    let message = if flags & NLM_F_ACK_TLVS != 0 {
        let tlv_start = if errno == 0 || flags & NLM_F_CAPPED != 0 {
            20 + NLMSG_HDRLEN
        } else {
            20 + align4(usize::try_from(read_u32(original, 0)).ok()?)
        };
        msg.get(tlv_start..).and_then(ext_ack_message)
    } else {
        None
    };
    Some(Ack {
        seq,
        errno,
        message,
    })
}

fn ext_ack_message(mut tlvs: &[u8]) -> Option<String> {
    while tlvs.len() >= NLA_HDRLEN {
        let len = usize::from(read_u16(tlvs, 0));
        let body = tlvs.get(NLA_HDRLEN..len)?;
        if read_u16(tlvs, 2) & !NLA_F_NESTED == NLMSGERR_ATTR_MSG {
            let text = body.split(|&b| b == 0).next().unwrap_or_default();
            return Some(String::from_utf8_lossy(text).into_owned());
        }
        tlvs = tlvs.get(align4(len.max(NLA_HDRLEN))..)?;
    }
    None
}

/// Callers check the length first.
fn read_u16(b: &[u8], at: usize) -> u16 {
    u16::from_ne_bytes([b[at], b[at + 1]])
}

fn read_u32(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// nlmsghdr and nfgenmsg.
    const FIXED_LEN: usize = NLMSG_HDRLEN + 4;

    #[test]
    fn header_and_attribute_padding() {
        let mut w = MsgWriter::new(nft_type(0), NLM_F_REQUEST | NLM_F_ACK, 7, 1, 0);
        w.str(1, "ab");
        w.nest(2, |w| w.be32(1, 0x0102_0304));
        let msg = w.finish().expect("small message");
        let mut expected = Vec::new();
        // nlmsghdr: 40 = 16 header + 4 nfgenmsg + 8 string attr + 12 nest.
        expected.extend_from_slice(&40u32.to_ne_bytes());
        expected.extend_from_slice(&0x0a00u16.to_ne_bytes()); // nf_tables, NEWTABLE
        expected.extend_from_slice(&5u16.to_ne_bytes()); // REQUEST | ACK
        expected.extend_from_slice(&7u32.to_ne_bytes()); // seq
        expected.extend_from_slice(&0u32.to_ne_bytes()); // port id
        expected.extend_from_slice(&[1, 0, 0, 0]); // NFPROTO_INET, V0, res_id 0
                                                   // "ab\0": len 7 (4 + 3), type 1, one byte of padding.
        expected.extend_from_slice(&7u16.to_ne_bytes());
        expected.extend_from_slice(&1u16.to_ne_bytes());
        expected.extend_from_slice(b"ab\0\0");
        // Nest: len 12, type 2 | NLA_F_NESTED, holding len 8, type 1, be32.
        expected.extend_from_slice(&12u16.to_ne_bytes());
        expected.extend_from_slice(&0x8002u16.to_ne_bytes());
        expected.extend_from_slice(&8u16.to_ne_bytes());
        expected.extend_from_slice(&1u16.to_ne_bytes());
        expected.extend_from_slice(&[1, 2, 3, 4]);
        assert_eq!(msg, expected);
        assert_eq!(msg.len(), FIXED_LEN + 8 + 12);
    }

    #[test]
    fn oversized_attribute_is_refused_not_truncated() {
        let mut w = MsgWriter::new(nft_type(6), NLM_F_REQUEST, 1, 1, 0);
        w.bytes(1, &vec![0u8; 70_000]);
        assert!(w.finish().is_none());
    }

    fn error_msg(errno: i32, seq: u32, flags: u16, tail: &[u8]) -> Vec<u8> {
        let mut m = Vec::new();
        let len = u32::try_from(16 + 4 + 16 + tail.len()).expect("small");
        m.extend_from_slice(&len.to_ne_bytes());
        m.extend_from_slice(&NLMSG_ERROR.to_ne_bytes());
        m.extend_from_slice(&flags.to_ne_bytes());
        m.extend_from_slice(&seq.to_ne_bytes());
        m.extend_from_slice(&4242u32.to_ne_bytes());
        m.extend_from_slice(&errno.to_ne_bytes());
        // The original header: length 20 (header + nfgenmsg), type, flags, seq.
        m.extend_from_slice(&20u32.to_ne_bytes());
        m.extend_from_slice(&nft_type(6).to_ne_bytes());
        m.extend_from_slice(&0u16.to_ne_bytes());
        m.extend_from_slice(&seq.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        m.extend_from_slice(tail);
        m
    }

    #[test]
    fn acks_and_errors_in_one_datagram() {
        let mut datagram = error_msg(0, 3, NLM_F_CAPPED, &[]);
        // A capped error with an extended ack text "bad\0" (attr len 8).
        let mut tlv = Vec::new();
        tlv.extend_from_slice(&8u16.to_ne_bytes());
        tlv.extend_from_slice(&NLMSGERR_ATTR_MSG.to_ne_bytes());
        tlv.extend_from_slice(b"bad\0");
        datagram.extend(error_msg(-22, 4, NLM_F_CAPPED | NLM_F_ACK_TLVS, &tlv));
        let acks = parse_acks(&datagram).expect("well formed");
        assert_eq!(
            acks,
            [
                Ack {
                    seq: 3,
                    errno: 0,
                    message: None
                },
                Ack {
                    seq: 4,
                    errno: -22,
                    message: Some("bad".to_owned())
                },
            ]
        );
    }

    #[test]
    fn uncapped_error_skips_the_echoed_payload() {
        // Uncapped: the original message (20 bytes) is echoed, then TLVs.
        let mut tail = vec![1, 0, 0, 0]; // the echoed nfgenmsg
        tail.extend_from_slice(&8u16.to_ne_bytes());
        tail.extend_from_slice(&NLMSGERR_ATTR_MSG.to_ne_bytes());
        tail.extend_from_slice(b"no\0\0");
        let msg = error_msg(-2, 9, NLM_F_ACK_TLVS, &tail);
        let acks = parse_acks(&msg).expect("well formed");
        assert_eq!(acks[0].message.as_deref(), Some("no"));
        assert_eq!(acks[0].errno, -2);
    }

    #[test]
    fn truncated_replies_are_errors() {
        let msg = error_msg(0, 1, 0, &[]);
        assert_eq!(
            parse_acks(&msg[..10]),
            Err(DecodeError::Truncated { offset: 0 })
        );
        assert_eq!(
            parse_acks(&msg[..30]),
            Err(DecodeError::Truncated { offset: 0 })
        );
        let mut zero_len = msg.clone();
        zero_len[0..4].copy_from_slice(&0u32.to_ne_bytes());
        assert!(parse_acks(&zero_len).is_err());
    }
}
