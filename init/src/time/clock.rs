//! Changing the system clock: a step (`clock_settime(CLOCK_REALTIME)`) or a
//! slew (`adjtime(3)`). Both need root or CAP_SYS_TIME. Behind the
//! [`ClockAdjust`] trait so tests decide step vs slew without touching the
//! host clock.

use std::io;

const NANOS_PER_SEC: i128 = 1_000_000_000;

/// What SNTP does to the clock; the real one is [`SystemClock`].
pub trait ClockAdjust {
    /// Jump the clock by `offset_ns` at once.
    fn step(&mut self, offset_ns: i64) -> io::Result<()>;
    /// Speed the clock up or slow it down until it has gained `offset_ns`.
    fn slew(&mut self, offset_ns: i64) -> io::Result<()>;
}

/// The kernel's CLOCK_REALTIME.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl ClockAdjust for SystemClock {
    fn step(&mut self, offset_ns: i64) -> io::Result<()> {
        let now = realtime_ns()?;
        set_realtime_ns(now + i128::from(offset_ns))
    }

    fn slew(&mut self, offset_ns: i64) -> io::Result<()> {
        adjtime(offset_ns)
    }
}

fn out_of_range(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, format!("{what} out of range"))
}

fn realtime_ns() -> io::Result<i128> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a live, writable timespec on our stack for the whole
    // call; clock_gettime only writes into it.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(i128::from(ts.tv_sec) * NANOS_PER_SEC + i128::from(ts.tv_nsec))
}

fn set_realtime_ns(ns: i128) -> io::Result<()> {
    let ts = libc::timespec {
        tv_sec: libc::time_t::try_from(ns.div_euclid(NANOS_PER_SEC))
            .map_err(|_| out_of_range("new time"))?,
        tv_nsec: libc::c_long::try_from(ns.rem_euclid(NANOS_PER_SEC))
            .map_err(|_| out_of_range("new time"))?,
    };
    // SAFETY: `ts` is a valid, normalised timespec (0 <= tv_nsec < 1e9) on
    // our stack that outlives the call; clock_settime only reads it.
    let rc = unsafe { libc::clock_settime(libc::CLOCK_REALTIME, &ts) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn adjtime(offset_ns: i64) -> io::Result<()> {
    let offset_us = i128::from(offset_ns) / 1000;
    let delta = libc::timeval {
        tv_sec: libc::time_t::try_from(offset_us.div_euclid(1_000_000))
            .map_err(|_| out_of_range("slew"))?,
        tv_usec: libc::suseconds_t::try_from(offset_us.rem_euclid(1_000_000))
            .map_err(|_| out_of_range("slew"))?,
    };
    // SAFETY: `delta` is a valid timeval on our stack that outlives the
    // call and is only read; a null `olddelta` asks for no previous value.
    let rc = unsafe { libc::adjtime(&delta, std::ptr::null_mut()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
