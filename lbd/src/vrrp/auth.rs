//! One instance's advert authentication, between the driver's sockets and
//! [`super::receive::accept`]: pure (the clock is passed in).
//!
//! ```text
//!  send:  Advert::encode -> stamp (counter, once per advert) -> seal per
//!         destination -> Payload (VRRP socket) | Datagram (AH socket)
//!  recv:  datagram -> open (AH: ICV + strip; hmac: tag + strip) ->
//!         accept (TTL, peers, VRID, version, count, auth type) ->
//!         commit (anti-replay counter) -> Fsm
//! ```
//! The counter is checked only after `accept`: adverts of other VRIDs on
//! the same segment do not move this instance's counters.
//!
//! IPv6 (VRRP v3 only, so none or hmac): the kernel hands over the VRRP
//! message without the IP header, with source and destination beside it
//! ([`Datagram6`]); [`Authenticator::seal6`] and [`Authenticator::open6`]
//! tag and check the same trailer over those addresses.
//!
//! | auth       | sent as                 | a datagram is dropped when        |
//! |------------|-------------------------|-----------------------------------|
//! | none, pass | VRRP, protocol 112      | auth type or password differ      |
//! | ah         | IPv4 + AH, protocol 51  | not AH, bad ICV or SPI, replayed  |
//! | hmac       | VRRP v3 + trailer, 112  | bad or no tag, replayed, too old  |
//!
//! (IPv4 and IPv6 alike for hmac.)

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::ah::{self, AhCounter, AhError, AhKey, Seal};
use super::config::{AuthType, Instance};
use super::hmac_auth::{self, HmacError, HmacKey, ReplayGuard, Sequencer};
use super::packet::{decode_ipv4, Auth, DecodeError, IPPROTO_VRRP};
use super::socket6::Datagram6;

/// Authentication failures are logged at most this often per instance.
pub const LOG_EVERY: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error(transparent)]
    Ah(#[from] AhError),
    #[error(transparent)]
    Hmac(#[from] HmacError),
    #[error("advert: {0}")]
    Ipv4(#[from] DecodeError),
    #[error(
        "advert from {0} has no AH header but auth_type is \"ah\": set auth_type AH on \
         that peer too"
    )]
    NoAh(Ipv4Addr),
}

/// What to send, and on which socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outgoing {
    /// A VRRP message for the protocol-112 socket (the kernel adds the IP
    /// header).
    Payload(Vec<u8>),
    /// A whole IPv4 datagram for the AH socket.
    Datagram(Vec<u8>),
}

/// The anti-replay number of one advert (all its destinations share it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stamp {
    None,
    Ah(u32),
    Hmac(u64),
}

/// A received datagram whose integrity checked out: an IPv4 datagram
/// (`Vec<u8>`, header included) or an IPv6 message ([`Datagram6`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened<T = Vec<u8>> {
    /// A plain VRRP datagram, trailer or AH header removed, for `accept`
    /// (IPv4) or `accept_v6`.
    pub datagram: T,
    fresh: Fresh,
}

impl<T> Opened<T> {
    /// The same check result around another form of the datagram.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Opened<U> {
        Opened {
            datagram: f(self.datagram),
            fresh: self.fresh,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fresh {
    None,
    Ah { src: Ipv4Addr, seq: u32 },
    Hmac { src: IpAddr, vrid: u8, counter: u64 },
}

enum Kind {
    Plain,
    Ah {
        key: AhKey,
        counter: AhCounter,
        ip_id: u16,
    },
    Hmac {
        key: HmacKey,
        sequencer: Sequencer,
        guard: ReplayGuard,
    },
}

/// Per-instance state: keys and counters.
pub struct Authenticator {
    kind: Kind,
    /// Unicast peers configured (AH leaves the TTL out of its ICV then).
    unicast: bool,
    /// What `accept` expects in the VRRP header.
    expected: Auth,
    /// Adverts of other VRIDs (other instances on the segment, maybe with
    /// other keys) pass unchecked for `accept` to drop quietly.
    vrid: u8,
}

impl Authenticator {
    pub fn new(cfg: &Instance) -> Self {
        let pass = cfg.auth_pass.as_deref().unwrap_or_default();
        let (kind, expected) = match cfg.auth() {
            None => (Kind::Plain, Auth::None),
            Some(AuthType::Pass) => (Kind::Plain, Auth::pass(pass)),
            Some(AuthType::Ah) => (
                Kind::Ah {
                    key: AhKey::new(pass),
                    counter: AhCounter::default(),
                    ip_id: 0,
                },
                Auth::Ah,
            ),
            Some(AuthType::Hmac) => (
                Kind::Hmac {
                    key: HmacKey::new(cfg.auth_key.as_deref().unwrap_or_default()),
                    sequencer: Sequencer::default(),
                    guard: ReplayGuard::default(),
                },
                Auth::None,
            ),
        };
        Self {
            kind,
            unicast: !cfg.unicast_peers.is_empty(),
            expected,
            vrid: cfg.vrid,
        }
    }

    /// The auth field adverts carry and must carry.
    pub fn expected(&self) -> Auth {
        self.expected
    }

    /// Adverts go out and come in over the AH socket.
    pub fn uses_ah(&self) -> bool {
        matches!(self.kind, Kind::Ah { .. })
    }

    /// Numbers the next advert; `now_ns` is CLOCK_REALTIME.
    pub fn stamp(&mut self, now_ns: u64) -> Stamp {
        match &mut self.kind {
            Kind::Plain => Stamp::None,
            Kind::Ah { counter, .. } => Stamp::Ah(counter.next_send()),
            Kind::Hmac { sequencer, .. } => Stamp::Hmac(sequencer.next(now_ns)),
        }
    }

    /// Wraps an encoded VRRP message for `dst`.
    pub fn seal(
        &mut self,
        stamp: Stamp,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        msg: Vec<u8>,
    ) -> Result<Outgoing, AuthError> {
        let unicast = self.unicast;
        match (&mut self.kind, stamp) {
            (Kind::Ah { key, ip_id, .. }, Stamp::Ah(seq)) => {
                // Zero is "kernel, pick an ID": skip it.
                *ip_id = ip_id.wrapping_add(1).max(1);
                let seal = Seal {
                    src,
                    dst,
                    ip_id: *ip_id,
                    seq,
                    unicast,
                    vrrp: &msg,
                };
                Ok(Outgoing::Datagram(ah::seal(key, &seal)?))
            }
            (Kind::Hmac { key, .. }, Stamp::Hmac(counter)) => Ok(Outgoing::Payload(
                hmac_auth::seal(key, src.into(), dst.into(), &msg, counter),
            )),
            _ => Ok(Outgoing::Payload(msg)),
        }
    }

    /// Checks and strips the authentication of a received datagram (IPv4
    /// header included). No state changes: see [`Self::commit`].
    pub fn open(&self, datagram: Vec<u8>) -> Result<Opened, AuthError> {
        match &self.kind {
            Kind::Plain => Ok(Opened {
                datagram,
                fresh: Fresh::None,
            }),
            Kind::Ah { key, .. } => {
                let (ip, payload) = decode_ipv4(&datagram)?;
                if payload.get(ip_vrid_at(ip.protocol)) != Some(&self.vrid) {
                    return Ok(Opened {
                        datagram,
                        fresh: Fresh::None,
                    });
                }
                if ip.protocol == IPPROTO_VRRP {
                    return Err(AuthError::NoAh(ip.src));
                }
                let opened = ah::open(key, &datagram, self.unicast)?;
                Ok(Opened {
                    datagram: opened.datagram,
                    fresh: Fresh::Ah {
                        src: opened.src,
                        seq: opened.seq,
                    },
                })
            }
            Kind::Hmac { key, .. } => {
                let (ip, payload) = decode_ipv4(&datagram)?;
                if ip.protocol != IPPROTO_VRRP || payload.get(1) != Some(&self.vrid) {
                    // Not ours to judge: accept() names it.
                    return Ok(Opened {
                        datagram,
                        fresh: Fresh::None,
                    });
                }
                let (src, dst) = (IpAddr::V4(ip.src), IpAddr::V4(ip.dst));
                let verified = hmac_auth::verify(key, src, dst, payload)?;
                // decode_ipv4 checked the header length.
                let ihl = usize::from(datagram[0] & 0x0f) * 4;
                let mut plain = datagram.get(..ihl).unwrap_or_default().to_vec();
                let total = u16::try_from(ihl + verified.msg.len()).unwrap_or(u16::MAX);
                plain[2..4].copy_from_slice(&total.to_be_bytes());
                plain.extend_from_slice(verified.msg);
                Ok(Opened {
                    datagram: plain,
                    fresh: Fresh::Hmac {
                        src,
                        vrid: verified.msg.get(1).copied().unwrap_or_default(),
                        counter: verified.counter,
                    },
                })
            }
        }
    }

    /// Wraps an encoded VRRP message for IPv6 destination `dst`: the hmac
    /// trailer, or nothing (pass and AH are VRRP v2, which is IPv4 only).
    pub fn seal6(&self, stamp: Stamp, src: Ipv6Addr, dst: Ipv6Addr, msg: Vec<u8>) -> Outgoing {
        match (&self.kind, stamp) {
            (Kind::Hmac { key, .. }, Stamp::Hmac(counter)) => {
                Outgoing::Payload(hmac_auth::seal(key, src.into(), dst.into(), &msg, counter))
            }
            _ => Outgoing::Payload(msg),
        }
    }

    /// Checks and strips the hmac trailer of a message from the IPv6
    /// socket. The tag covers the destination: a message whose
    /// destination the kernel did not report passes unchecked, for
    /// `accept_v6` to drop (it cannot check the checksum either).
    pub fn open6(&self, datagram: Datagram6) -> Result<Opened<Datagram6>, AuthError> {
        let plain = |datagram| Opened {
            datagram,
            fresh: Fresh::None,
        };
        let Kind::Hmac { key, .. } = &self.kind else {
            return Ok(plain(datagram));
        };
        let (Some(dst), Some(&vrid)) = (datagram.dst, datagram.payload.get(1)) else {
            return Ok(plain(datagram));
        };
        if vrid != self.vrid {
            // Not ours to judge: accept_v6() names it.
            return Ok(plain(datagram));
        }
        let src = IpAddr::V6(datagram.src);
        let verified = hmac_auth::verify(key, src, IpAddr::V6(dst), &datagram.payload)?;
        let (len, counter) = (verified.msg.len(), verified.counter);
        let mut stripped = datagram;
        stripped.payload.truncate(len);
        Ok(Opened {
            datagram: stripped,
            fresh: Fresh::Hmac { src, vrid, counter },
        })
    }

    /// The anti-replay check of an advert `accept` took, at `now_ns`
    /// (CLOCK_REALTIME): remembers its number or refuses it.
    pub fn commit<T>(&mut self, opened: &Opened<T>, now_ns: u64) -> Result<(), AuthError> {
        match (&mut self.kind, opened.fresh) {
            (Kind::Ah { counter, .. }, Fresh::Ah { src, seq }) => Ok(counter.check(src, seq)?),
            (Kind::Hmac { guard, .. }, Fresh::Hmac { src, vrid, counter }) => {
                Ok(guard.check(src, vrid, counter, now_ns)?)
            }
            _ => Ok(()),
        }
    }
}

/// Where the VRID is in the IP payload: after the AH header for AH.
fn ip_vrid_at(protocol: u8) -> usize {
    if protocol == ah::IPPROTO_AH {
        ah::AH_LEN + 1
    } else {
        1
    }
}

/// CLOCK_REALTIME in nanoseconds (0 before 1970).
pub fn realtime_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Lets one log line through per `every`, counting the others.
#[derive(Debug, Clone)]
pub struct Throttle {
    every: Duration,
    last: Option<Instant>,
    suppressed: u64,
}

impl Throttle {
    pub fn new(every: Duration) -> Self {
        Self {
            every,
            last: None,
            suppressed: 0,
        }
    }

    /// `Some(n)`: log now, `n` lines were suppressed since the last one.
    pub fn allow(&mut self, now: Instant) -> Option<u64> {
        match self.last {
            Some(last) if now.saturating_duration_since(last) < self.every => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }
}

#[cfg(test)]
#[path = "auth_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "auth6_tests.rs"]
mod tests6;
