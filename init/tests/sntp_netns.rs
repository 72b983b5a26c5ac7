//! The SNTP client against a real NTP server: Debian's chronyd on
//! 127.0.0.1 at a free port, with its own config, pid file and drift file
//! in a temp dir, and `-x` so it never touches the host clock. The test
//! never changes the host clock either: the step/slew decision is checked
//! with a fake [`ClockAdjust`].
//!
//! Needs root and chrony (`apt-get install -y chrony`).

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use init::time::{
    query, sync_with, Adjustment, ClockAdjust, Sample, SntpError, SyncPolicy, SAMPLES_PER_SERVER,
};
use settings::value::MaxStep;

const CHRONYD: &str = "chronyd";
const QUERY_TIMEOUT: Duration = Duration::from_secs(1);
/// chronyd needs a moment to bind and to turn on its local reference; we
/// retry the query (each bounded by QUERY_TIMEOUT) rather than sleep.
const READY_ATTEMPTS: u32 = 30;

/// A chronyd serving its local clock at stratum 8, killed on drop.
struct Chronyd {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Drop for Chronyd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_udp_port() -> u16 {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("binding a probe socket on loopback");
    socket.local_addr().expect("local address").port()
}

fn write_config(dir: &Path, port: u16) -> io::Result<std::path::PathBuf> {
    let conf = dir.join("chrony.conf");
    let d = dir.display();
    std::fs::write(
        &conf,
        format!(
            "port {port}\nbindaddress 127.0.0.1\ncmdport 0\nlocal stratum 8\nallow all\n\
             pidfile {d}/chronyd.pid\ndriftfile {d}/drift\n"
        ),
    )?;
    Ok(conf)
}

impl Chronyd {
    fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir for chronyd");
        let port = free_udp_port();
        let conf = write_config(dir.path(), port).expect("writing chrony.conf");
        let child = Command::new(CHRONYD)
            .args(["-d", "-x", "-u", "root", "-f"])
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting chronyd: apt-get install -y chrony");
        Self {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            _dir: dir,
        }
    }

    /// The first good sample; panics with the last error if none comes.
    fn sample(&mut self) -> Sample {
        let mut last = None;
        for _ in 0..READY_ATTEMPTS {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("chronyd exited early: {status}");
            }
            match query(self.addr, QUERY_TIMEOUT) {
                Ok(sample) => return sample,
                Err(e) => last = Some(e),
            }
            // Refused (not bound yet) returns at once: give chronyd a beat.
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("chronyd at {} never answered: {last:?}", self.addr);
    }
}

fn policy() -> SyncPolicy {
    SyncPolicy {
        timeout_per_query: QUERY_TIMEOUT,
        samples_per_server: SAMPLES_PER_SERVER,
        max_step: MaxStep::Seconds(settings::DEFAULT_NTP_MAX_STEP_S),
    }
}

/// Records what SNTP asked of the clock instead of doing it.
#[derive(Default)]
struct FakeClock {
    calls: Vec<(Adjustment, i64)>,
}

impl ClockAdjust for FakeClock {
    fn step(&mut self, offset_ns: i64) -> io::Result<()> {
        self.calls.push((Adjustment::Stepped, offset_ns));
        Ok(())
    }
    fn slew(&mut self, offset_ns: i64) -> io::Result<()> {
        self.calls.push((Adjustment::Slewed, offset_ns));
        Ok(())
    }
}

#[test]
fn query_against_chronyd() {
    let mut server = Chronyd::start();
    let sample = server.sample();
    // Same host clock on both sides: the offset is tiny, the delay small.
    assert!(
        sample.offset_ns.unsigned_abs() < 1_000_000_000,
        "offset {} ns",
        sample.offset_ns
    );
    assert!(sample.delay < QUERY_TIMEOUT, "delay {:?}", sample.delay);
    assert_eq!(
        sample.stratum, 8,
        "chronyd serves its local clock at stratum 8"
    );
}

/// Input: a host name, then chronyd. Output: the name is skipped with
/// "not resolved", chronyd answers all four queries over real UDP, they
/// agree, the small offset is slewed (fake clock).
#[test]
fn sync_with_chronyd_slews_small_offset() {
    let mut server = Chronyd::start();
    server.sample(); // wait until it serves time
    let servers = vec!["ntp.example.org".to_owned(), server.addr.to_string()];
    let mut clock = FakeClock::default();
    let report = sync_with(&servers, &policy(), &mut clock, query).expect("sync");
    assert_eq!(report.agreeing.len(), 1);
    assert_eq!(report.agreeing[0].server, server.addr);
    assert_eq!(report.agreeing[0].answered, 4);
    assert_eq!(report.adjustment, Adjustment::Slewed);
    assert_eq!(clock.calls, vec![(Adjustment::Slewed, report.offset_ns)]);
    assert_eq!(report.skipped.len(), 1);
    let skipped = report.skipped[0].to_string();
    assert!(skipped.contains("ntp.example.org") && skipped.contains("not resolved"));
    let line = report.to_string();
    assert!(line.starts_with(&format!("time: synchronised with {} (offset ", server.addr)));
    assert!(
        line.ends_with("1 of 1 servers agree, 4 of 4 samples): slewed"),
        "{line}"
    );
}

fn fake_sample(offset_ns: i64) -> Sample {
    Sample {
        offset_ns,
        delay: Duration::from_micros(1200),
        stratum: 2,
    }
}

/// Input: offsets around the 0.5 s threshold. Output: larger ones stepped,
/// the rest (0.5 s exactly included) slewed, by exactly the offset.
#[test]
fn step_or_slew_decision() {
    let cases = [
        (3_512_000_000, Adjustment::Stepped),
        (-600_000_000, Adjustment::Stepped),
        (500_000_001, Adjustment::Stepped),
        (500_000_000, Adjustment::Slewed),
        (-200_000_000, Adjustment::Slewed),
        (0, Adjustment::Slewed),
    ];
    for (offset_ns, expected) in cases {
        let mut clock = FakeClock::default();
        let servers = vec!["192.0.2.123".to_owned()];
        let report = sync_with(&servers, &policy(), &mut clock, |addr, _| {
            assert_eq!(addr, SocketAddr::from(([192, 0, 2, 123], 123)));
            Ok(fake_sample(offset_ns))
        })
        .expect("sync");
        assert_eq!(report.adjustment, expected, "offset {offset_ns}");
        assert_eq!(clock.calls, vec![(expected, offset_ns)]);
    }
}

#[test]
fn report_line() {
    let mut clock = FakeClock::default();
    let servers = vec!["192.0.2.123".to_owned()];
    let report = sync_with(&servers, &policy(), &mut clock, |_, _| {
        Ok(fake_sample(3_512_000_000))
    })
    .expect("sync");
    assert_eq!(
        report.to_string(),
        "time: synchronised with 192.0.2.123 (offset +3.512 s, delay 1.2 ms; \
         1 of 1 servers agree, 4 of 4 samples): STEPPED"
    );
}

/// Input: a server that fails, then one that answers. Output: the second
/// is used and the first failure is kept, naming its server.
#[test]
fn falls_through_to_next_server() {
    let mut clock = FakeClock::default();
    let servers = vec!["192.0.2.1".to_owned(), "[2001:db8::2]:1123".to_owned()];
    let report = sync_with(&servers, &policy(), &mut clock, |addr, timeout| {
        if addr.is_ipv4() {
            Err(SntpError::Timeout {
                server: addr,
                timeout,
            })
        } else {
            Ok(fake_sample(-1_000_000))
        }
    })
    .expect("sync");
    assert_eq!(report.agreeing[0].server.to_string(), "[2001:db8::2]:1123");
    assert_eq!(report.skipped.len(), 1);
    assert!(report.skipped[0].to_string().contains("192.0.2.1:123"));
    assert_eq!(clock.calls, vec![(Adjustment::Slewed, -1_000_000)]);
}

#[test]
fn no_servers_and_all_failing() {
    let mut clock = FakeClock::default();
    let none = sync_with(&[], &policy(), &mut clock, |_, _| unreachable!());
    assert!(matches!(none, Err(SntpError::NoServers)));
    let names = vec!["pool.ntp.org".to_owned()];
    let err = sync_with(&names, &policy(), &mut clock, |_, _| unreachable!())
        .expect_err("host names are not resolved");
    assert!(
        err.to_string().contains("pool.ntp.org: not resolved"),
        "{err}"
    );
    assert!(clock.calls.is_empty());
}

/// A UDP socket that reads nothing and answers nothing: the query ends
/// with a timeout error that names the server.
#[test]
fn silent_server_times_out() {
    let silent = UdpSocket::bind("127.0.0.1:0").expect("binding the silent server");
    let addr = silent.local_addr().expect("local address");
    let err = query(addr, Duration::from_millis(300)).expect_err("nobody answers");
    assert!(
        matches!(err, SntpError::Timeout { server, .. } if server == addr),
        "{err:?}"
    );
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
}
