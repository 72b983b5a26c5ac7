//! SNTPv4 wire format (RFC 4330): the 48-byte client request, the checks on
//! a server reply, and the 64-bit NTP timestamp <-> Unix time conversion.
//! Pure functions: no sockets, no clock reads.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |LI | VN  |Mode |    Stratum    |     Poll      |   Precision   |  0
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                          Root Delay                           |  4
//! |                       Root Dispersion                         |  8
//! |                     Reference Identifier                      | 12
//! |                   Reference Timestamp (64)                    | 16
//! |                   Originate Timestamp (64)  = our T1          | 24
//! |                    Receive Timestamp (64)   = server's T2     | 32
//! |                    Transmit Timestamp (64)  = server's T3     | 40
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Every SNTP message without extension fields or authenticator.
pub const PACKET_LEN: usize = 48;
/// Seconds from the NTP epoch (1900-01-01) to the Unix epoch (1970-01-01).
pub const NTP_UNIX_OFFSET_SECS: i128 = 2_208_988_800;
const VERSION: u8 = 4;
const MODE_CLIENT: u8 = 3;
const MODE_SERVER: u8 = 4;
/// Leap indicator 3: the server's clock is not synchronised (RFC 4330 §4).
const LEAP_UNSYNCHRONISED: u8 = 3;
const ORIGINATE_AT: usize = 24;
const RECEIVE_AT: usize = 32;
const TRANSMIT_AT: usize = 40;
const NANOS_PER_SEC: i128 = 1_000_000_000;
/// One NTP era: 2^32 seconds, in 2^-32 s units.
const ERA: i128 = 1 << 64;

/// A raw NTP timestamp: seconds since 1900 in the high 32 bits, fraction of
/// a second in the low 32 (units of 2^-32 s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NtpTimestamp(pub u64);

impl NtpTimestamp {
    /// The wire form of `t`; times before 1970 map to the Unix epoch.
    pub fn from_system_time(t: SystemTime) -> Self {
        let since = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
        let secs = i128::from(since.as_secs()) + NTP_UNIX_OFFSET_SECS;
        let frac = (i128::from(since.subsec_nanos()) << 32) / NANOS_PER_SEC;
        // Seconds wrap modulo 2^32 (the era is implicit on the wire).
        let fixed = ((secs << 32) + frac).rem_euclid(ERA);
        Self(u64::try_from(fixed).expect("rem_euclid(2^64) fits in u64"))
    }

    /// Nanoseconds since the Unix epoch (negative before 1970), resolving
    /// the era as RFC 4330 §3 says: seconds with the top bit set are in
    /// 1968-2036 (era 0), the others in 2036-2104 (era 1).
    pub fn to_unix_ns(self) -> i128 {
        let mut fixed = i128::from(self.0);
        if self.0 >> 63 == 0 {
            fixed += ERA;
        }
        let unix_fixed = fixed - (NTP_UNIX_OFFSET_SECS << 32);
        // Floor keeps sub-nanosecond rounding consistent for every timestamp.
        (unix_fixed * NANOS_PER_SEC).div_euclid(1 << 32)
    }
}

/// Why a server reply was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("reply is {len} bytes, an SNTP reply has at least {PACKET_LEN}")]
    TooShort { len: usize },
    #[error("reply has mode {mode}, a server reply has mode 4")]
    NotServerMode { mode: u8 },
    #[error("reply has version {version}, expected 3 or 4")]
    BadVersion { version: u8 },
    #[error("kiss-o'-death {code:?}: the server asks us to stop or go elsewhere")]
    KissOfDeath { code: String },
    #[error("reply has stratum {stratum}, a usable server has 1 to 15")]
    BadStratum { stratum: u8 },
    #[error("server clock is not synchronised (leap indicator 3)")]
    Unsynchronised,
    #[error("originate timestamp {got:#018x} is not our transmit timestamp {sent:#018x}: stale or forged reply")]
    OriginateMismatch { sent: u64, got: u64 },
    #[error("reply has a zero transmit timestamp")]
    ZeroTransmit,
}

/// The fields of a checked server reply that the client uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reply {
    pub leap: u8,
    pub version: u8,
    pub stratum: u8,
    pub reference_id: [u8; 4],
    /// T2: when the request reached the server.
    pub receive: NtpTimestamp,
    /// T3: when the server sent the reply.
    pub transmit: NtpTimestamp,
}

/// The client request: LI 0, VN 4, mode 3, every other field zero but the
/// transmit timestamp, which the server echoes as originate (RFC 4330 §5).
pub fn encode_request(transmit: NtpTimestamp) -> [u8; PACKET_LEN] {
    let mut packet = [0u8; PACKET_LEN];
    packet[0] = (VERSION << 3) | MODE_CLIENT;
    packet[TRANSMIT_AT..TRANSMIT_AT + 8].copy_from_slice(&transmit.0.to_be_bytes());
    packet
}

fn timestamp_at(bytes: &[u8], at: usize) -> NtpTimestamp {
    let mut raw = [0u8; 8];
    raw.copy_from_slice(&bytes[at..at + 8]);
    NtpTimestamp(u64::from_be_bytes(raw))
}

/// Checks a server reply to the request sent with transmit timestamp `sent`
/// (RFC 4330 §5, the client's sanity checks).
pub fn decode_reply(bytes: &[u8], sent: NtpTimestamp) -> Result<Reply, DecodeError> {
    if bytes.len() < PACKET_LEN {
        return Err(DecodeError::TooShort { len: bytes.len() });
    }
    let leap = bytes[0] >> 6;
    let version = (bytes[0] >> 3) & 0b111;
    let mode = bytes[0] & 0b111;
    let stratum = bytes[1];
    let mut reference_id = [0u8; 4];
    reference_id.copy_from_slice(&bytes[12..16]);
    if mode != MODE_SERVER {
        return Err(DecodeError::NotServerMode { mode });
    }
    if !(3..=4).contains(&version) {
        return Err(DecodeError::BadVersion { version });
    }
    if stratum == 0 {
        // Stratum 0 is a kiss-o'-death; the reference id holds its ASCII code.
        let code = String::from_utf8_lossy(&reference_id).into_owned();
        return Err(DecodeError::KissOfDeath { code });
    }
    if stratum > 15 {
        return Err(DecodeError::BadStratum { stratum });
    }
    if leap == LEAP_UNSYNCHRONISED {
        return Err(DecodeError::Unsynchronised);
    }
    let originate = timestamp_at(bytes, ORIGINATE_AT);
    if originate != sent {
        return Err(DecodeError::OriginateMismatch {
            sent: sent.0,
            got: originate.0,
        });
    }
    let transmit = timestamp_at(bytes, TRANSMIT_AT);
    if transmit.0 == 0 {
        return Err(DecodeError::ZeroTransmit);
    }
    Ok(Reply {
        leap,
        version,
        stratum,
        reference_id,
        receive: timestamp_at(bytes, RECEIVE_AT),
        transmit,
    })
}

/// One measurement against one server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// How far our clock is behind the server's (add this to our clock).
    pub offset_ns: i64,
    /// Round-trip delay, network only (server processing time removed).
    pub delay: Duration,
    pub stratum: u8,
}

impl Sample {
    /// offset = ((T2 - T1) + (T3 - T4)) / 2 and
    /// delay = (T4 - T1) - (T3 - T2) (RFC 4330 §5). A negative delay (clock
    /// granularity, or the server fuzzing its low bits) counts as zero.
    pub fn new(sent: NtpTimestamp, reply: &Reply, received: NtpTimestamp) -> Self {
        let t1 = sent.to_unix_ns();
        let t2 = reply.receive.to_unix_ns();
        let t3 = reply.transmit.to_unix_ns();
        let t4 = received.to_unix_ns();
        let offset = ((t2 - t1) + (t3 - t4)) / 2;
        let delay = (t4 - t1) - (t3 - t2);
        Self {
            offset_ns: i64::try_from(offset).unwrap_or(if offset < 0 {
                i64::MIN
            } else {
                i64::MAX
            }),
            delay: Duration::from_nanos(u64::try_from(delay.max(0)).unwrap_or(u64::MAX)),
            stratum: reply.stratum,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-01-01T00:00:00Z as Unix seconds.
    const UNIX_2026: u64 = 1_767_225_600;
    const HALF: u64 = 0x8000_0000;

    fn ts(unix_secs: u64, frac: u64) -> NtpTimestamp {
        NtpTimestamp(((unix_secs + 2_208_988_800) << 32) | frac)
    }

    /// A reply by hand: LI 0, VN 4, mode 4, stratum 2, poll 6, precision
    /// -20, reference id 192.0.2.1, originate = our T1.
    fn reply_bytes(t1: NtpTimestamp, t2: NtpTimestamp, t3: NtpTimestamp) -> [u8; PACKET_LEN] {
        let mut b = [0u8; PACKET_LEN];
        b[0] = 0b00_100_100;
        b[1] = 2;
        b[2] = 6;
        b[3] = 0xec;
        b[12..16].copy_from_slice(&[192, 0, 2, 1]);
        b[16..24].copy_from_slice(&t2.0.to_be_bytes());
        b[24..32].copy_from_slice(&t1.0.to_be_bytes());
        b[32..40].copy_from_slice(&t2.0.to_be_bytes());
        b[40..48].copy_from_slice(&t3.0.to_be_bytes());
        b
    }

    #[test]
    fn request_bytes() {
        let t1 = NtpTimestamp(0xecd5_a1b0_8000_0000);
        let mut expected = [0u8; PACKET_LEN];
        expected[0] = 0x23; // LI 0, VN 4, mode 3
        expected[40..48].copy_from_slice(&[0xec, 0xd5, 0xa1, 0xb0, 0x80, 0, 0, 0]);
        assert_eq!(encode_request(t1), expected);
    }

    #[test]
    fn timestamp_round_trip_and_eras() {
        let t = UNIX_EPOCH + Duration::new(UNIX_2026, 500_000_000);
        let n = NtpTimestamp::from_system_time(t);
        assert_eq!(n, ts(UNIX_2026, HALF));
        assert_eq!(
            n.to_unix_ns(),
            i128::from(UNIX_2026) * 1_000_000_000 + 500_000_000
        );
        // 2040 is past the 2036 wrap: seconds restart near zero (era 1).
        let unix_2040: u64 = 2_208_988_800;
        let n2040 = NtpTimestamp::from_system_time(UNIX_EPOCH + Duration::from_secs(unix_2040));
        assert_eq!(n2040.0 >> 32, (unix_2040 + 2_208_988_800) - (1 << 32));
        assert_eq!(n2040.to_unix_ns(), i128::from(unix_2040) * 1_000_000_000);
    }

    /// Our clock 3.5 s behind: T1 = 0, T2 = 3.5 + 0.001, T3 = T2 + 0.25
    /// (server processing), T4 = T1 + 0.002 + 0.25. Offset +3.5 s, delay 2 ms.
    #[test]
    fn offset_and_delay_exact() {
        let t1 = ts(UNIX_2026, 0);
        let ms = (1u64 << 32) / 1000 + 1; // 1 ms rounded up in 2^-32 s
        let t2 = ts(UNIX_2026 + 3, HALF + ms);
        let t3 = ts(UNIX_2026 + 3, HALF + HALF / 2 + ms);
        let t4 = ts(UNIX_2026, HALF / 2 + 2 * ms);
        let reply = decode_reply(&reply_bytes(t1, t2, t3), t1).expect("valid reply");
        assert_eq!(reply.stratum, 2);
        assert_eq!(reply.reference_id, [192, 0, 2, 1]);
        let sample = Sample::new(t1, &reply, t4);
        assert_eq!(sample.offset_ns, 3_500_000_000);
        let delay_ns = i128::try_from(sample.delay.as_nanos()).expect("small");
        assert!((delay_ns - 2_000_000).abs() <= 1, "delay {delay_ns} ns");
    }

    #[test]
    fn negative_offset() {
        let t1 = ts(UNIX_2026 + 10, 0);
        let t2 = ts(UNIX_2026, 0);
        let reply = decode_reply(&reply_bytes(t1, t2, t2), t1).expect("valid reply");
        let sample = Sample::new(t1, &reply, ts(UNIX_2026 + 10, 0));
        assert_eq!(sample.offset_ns, -10_000_000_000);
        assert_eq!(sample.delay, Duration::ZERO);
    }

    fn good() -> ([u8; PACKET_LEN], NtpTimestamp) {
        let t1 = ts(UNIX_2026, 0);
        (reply_bytes(t1, ts(UNIX_2026, 1), ts(UNIX_2026, 2)), t1)
    }

    #[test]
    fn version_3_accepted() {
        let (mut b, t1) = good();
        b[0] = 0b00_011_100;
        assert_eq!(decode_reply(&b, t1).map(|r| r.version), Ok(3));
    }

    #[test]
    fn rejects_short() {
        let (b, t1) = good();
        assert_eq!(
            decode_reply(&b[..47], t1),
            Err(DecodeError::TooShort { len: 47 })
        );
    }

    #[test]
    fn rejects_client_mode() {
        let (mut b, t1) = good();
        b[0] = 0x23;
        assert_eq!(
            decode_reply(&b, t1),
            Err(DecodeError::NotServerMode { mode: 3 })
        );
    }

    #[test]
    fn rejects_version_2() {
        let (mut b, t1) = good();
        b[0] = 0b00_010_100;
        assert_eq!(
            decode_reply(&b, t1),
            Err(DecodeError::BadVersion { version: 2 })
        );
    }

    #[test]
    fn rejects_kiss_of_death() {
        let (mut b, t1) = good();
        b[0] = 0b11_100_100;
        b[1] = 0;
        b[12..16].copy_from_slice(b"RATE");
        let code = "RATE".to_owned();
        assert_eq!(decode_reply(&b, t1), Err(DecodeError::KissOfDeath { code }));
    }

    #[test]
    fn rejects_stratum_16() {
        let (mut b, t1) = good();
        b[1] = 16;
        assert_eq!(
            decode_reply(&b, t1),
            Err(DecodeError::BadStratum { stratum: 16 })
        );
    }

    #[test]
    fn rejects_unsynchronised() {
        let (mut b, t1) = good();
        b[0] |= 0b11_000_000;
        assert_eq!(decode_reply(&b, t1), Err(DecodeError::Unsynchronised));
    }

    #[test]
    fn rejects_originate_mismatch() {
        let (b, t1) = good();
        let sent = NtpTimestamp(t1.0 + 1);
        let expected = DecodeError::OriginateMismatch {
            sent: sent.0,
            got: t1.0,
        };
        assert_eq!(decode_reply(&b, sent), Err(expected));
    }

    #[test]
    fn rejects_zero_transmit() {
        let (mut b, t1) = good();
        b[40..48].fill(0);
        assert_eq!(decode_reply(&b, t1), Err(DecodeError::ZeroTransmit));
    }

    /// Random lengths and bytes (xorshift, fixed seed so failures replay):
    /// decoding returns, never panics, and accepts only mode-4 packets.
    #[test]
    fn random_bytes_never_panic() {
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            let len = usize::try_from(next() % 64).expect("< 64");
            let mut bytes: Vec<u8> = (0..len).map(|_| next().to_be_bytes()[0]).collect();
            let sent = NtpTimestamp(next());
            if len >= PACKET_LEN && next() % 2 == 0 {
                // Echo our timestamp so the later checks and Sample run too.
                bytes[ORIGINATE_AT..ORIGINATE_AT + 8].copy_from_slice(&sent.0.to_be_bytes());
            }
            if let Ok(reply) = decode_reply(&bytes, sent) {
                assert_eq!(bytes[0] & 0b111, MODE_SERVER);
                let _ = Sample::new(sent, &reply, NtpTimestamp(next()));
            }
            let _ = NtpTimestamp(next()).to_unix_ns();
        }
    }
}
