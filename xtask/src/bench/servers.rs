//! Config files and start commands for the backend (nginx, iperf3 -s) and
//! the two proxies (lbd, HAProxy), all in the bench's temp dir: our own
//! instances with our own pid files, never the system's services.
//!
//! lbd is this tree's release build, and with `--lbd-before PATH` also an
//! older binary, same config.
//!
//! Both proxies get the same job: mode tcp, frontend :80 to nginx and
//! :5201 to iperf3, one thread, connect 5s / client 50s / server 50s /
//! queue 10s, maxconn 20000, no logs. Everything else is each one's default
//! (lbd splices after 128 KiB by default; HAProxy does not splice unless
//! told to).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::error::BenchError;
use super::netns::{Ns, Topology, BACKEND_ADDR, PROXY_FRONT_ADDR};
use super::procs::{comm, listening_ports, Daemon};

pub const HTTP_PORT: u16 = 80;
pub const IPERF_PORT: u16 = 5201;
/// The static file wrk fetches.
pub const FILE_PATH: &str = "/index.html";
pub const FILE_BODY: &str = "<html><body>lbd bench: a small static file.</body></html>\n";
/// CPU of the backend and the load generators.
pub const LOAD_CPU: &str = "0";
/// CPU of the proxy.
pub const PROXY_CPU: &str = "1";
/// maxconn of both proxies unless the open-file limit is lower (lbd's
/// default).
const MAXCONN: u64 = 20000;
/// Descriptors a proxy needs besides two per connection (listeners, epoll,
/// pipes, HAProxy's own reserve).
const SPARE_FDS: u64 = 128;
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// Open files for the processes that hold the idle connections, and the
/// maxconn that fits in them (HAProxy refuses to start when 2 x maxconn
/// descriptors do not fit).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limits {
    pub nofile: u64,
    pub maxconn: u64,
}

impl Limits {
    /// Room for `idle` proxied connections (two descriptors each) if the
    /// hard limit may be raised (root with CAP_SYS_RESOURCE), else the hard
    /// limit we have, with maxconn cut to fit.
    pub fn probe(idle: usize) -> Limits {
        let wanted = 2 * idle as u64 + 2 * SPARE_FDS;
        let raised = Command::new("prlimit")
            .arg(format!("--nofile={wanted}:{wanted}"))
            .arg("true")
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        // Lowering always works: a failure means `wanted` is above the
        // hard limit and we may not raise it.
        let nofile = if raised {
            wanted
        } else {
            hard_nofile().unwrap_or(1024)
        };
        Limits::for_nofile(nofile)
    }

    fn for_nofile(nofile: u64) -> Limits {
        Limits {
            nofile,
            maxconn: MAXCONN.min(nofile.saturating_sub(SPARE_FDS) / 2),
        }
    }

    /// How many idle connections fit under maxconn.
    pub fn idle(&self, wanted: usize) -> usize {
        let room = usize::try_from(self.maxconn.saturating_sub(16)).unwrap_or(usize::MAX);
        wanted.min(room)
    }

    pub fn prlimit(&self) -> String {
        format!("--nofile={0}:{0}", self.nofile)
    }
}

/// The hard RLIMIT_NOFILE of this process, from /proc/self/limits.
fn hard_nofile() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    parse_hard_nofile(&limits)
}

fn parse_hard_nofile(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    match line.split_whitespace().nth(4)? {
        "unlimited" => Some(u64::MAX),
        n => n.parse().ok(),
    }
}

/// A proxy under test. The order is the order of the runs in a round and
/// of the table's columns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Proxy {
    Lbd,
    /// An older lbd binary (`--lbd-before PATH`), to show a change did not
    /// make lbd slower, in the same run.
    LbdBefore,
    Haproxy,
}

impl Proxy {
    /// The proxies of one round: lbd, the older lbd when given, HAProxy.
    pub fn lineup(with_before: bool) -> Vec<Proxy> {
        if with_before {
            vec![Proxy::Lbd, Proxy::LbdBefore, Proxy::Haproxy]
        } else {
            vec![Proxy::Lbd, Proxy::Haproxy]
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Proxy::Lbd => "lbd",
            Proxy::LbdBefore => "lbd before",
            Proxy::Haproxy => "HAProxy",
        }
    }

    /// Stem of the files a run writes (config, log, socket).
    pub fn file_stem(self) -> &'static str {
        match self {
            Proxy::Lbd => "lbd",
            Proxy::LbdBefore => "lbd-before",
            Proxy::Haproxy => "haproxy",
        }
    }
}

/// The lbd binaries under test: this tree's release build and, with
/// `--lbd-before`, an older one.
#[derive(Clone, Debug)]
pub struct LbdBinaries {
    pub current: PathBuf,
    pub before: Option<PathBuf>,
}

impl LbdBinaries {
    /// The binary `proxy` runs; None for HAProxy (or a missing before).
    pub fn for_proxy(&self, proxy: Proxy) -> Option<&Path> {
        match proxy {
            Proxy::Lbd => Some(&self.current),
            Proxy::LbdBefore => self.before.as_deref(),
            Proxy::Haproxy => None,
        }
    }

    pub fn lineup(&self) -> Vec<Proxy> {
        Proxy::lineup(self.before.is_some())
    }
}

/// The kernel's name of a process running `program`: the file name cut to
/// 15 bytes (TASK_COMM_LEN - 1), what /proc/PID/comm shows.
fn comm_of(program: &Path) -> String {
    let name = program
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    name.bytes().take(15).map(char::from).collect::<String>()
}

/// Checks that `path` is an lbd that runs (`PATH --version`), for
/// `--lbd-before`.
pub fn check_lbd_binary(flag: &str, path: &Path) -> Result<(), BenchError> {
    let out = Command::new(path)
        .arg("--version")
        .output()
        .map_err(|source| BenchError::Io {
            what: format!(
                "{flag} {}: running it with --version (give the path of an lbd binary, e.g. a copy of target/release/lbd)",
                path.display()
            ),
            source,
        })?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() || !text.starts_with("lbd") {
        return Err(BenchError::CommandFailed {
            command: format!("{} --version (from {flag})", path.display()),
            status: out.status.to_string(),
            stderr: format!(
                "want a line starting with 'lbd', got {:?}; give the path of an lbd binary",
                text.trim()
            ),
        });
    }
    Ok(())
}

pub fn write(path: &Path, text: &str) -> Result<(), BenchError> {
    std::fs::write(path, text).map_err(|source| BenchError::Write {
        path: path.to_path_buf(),
        source,
    })
}

fn wait_listening(d: &mut Daemon, ports: &[u16]) -> Result<(), BenchError> {
    let until = format!("listen on port(s) {ports:?}");
    d.wait_until(&until, START_TIMEOUT, |pid| {
        let open = listening_ports(pid);
        ports.iter().all(|p| open.contains(p))
    })
}

/// nginx serving FILE_PATH on BACKEND_ADDR:80, one process on LOAD_CPU.
pub fn start_nginx(topo: &Topology, dir: &Path, limits: Limits) -> Result<Daemon, BenchError> {
    let www = dir.join("www");
    std::fs::create_dir_all(&www).map_err(|source| BenchError::Write {
        path: www.clone(),
        source,
    })?;
    write(&www.join(FILE_PATH.trim_start_matches('/')), FILE_BODY)?;
    let d = dir.display();
    let nofile = limits.nofile;
    // keepalive_requests: nginx would otherwise close a keep-alive
    // connection after 1000 requests and wrk would measure reconnects.
    let conf = format!(
        "user root;
worker_processes 1;
daemon off;
master_process off;
worker_rlimit_nofile {nofile};
pid {d}/nginx.pid;
error_log {d}/nginx-error.log warn;
events {{ worker_connections 30000; }}
http {{
    access_log off;
    keepalive_requests 100000000;
    keepalive_timeout 300s;
    client_body_temp_path {d}/nginx-body;
    server {{
        listen {BACKEND_ADDR}:{HTTP_PORT} backlog=4096;
        root {d}/www;
    }}
}}
"
    );
    let path = dir.join("nginx.conf");
    write(&path, &conf)?;
    let mut cmd = topo.exec(Ns::Backend);
    cmd.args(["prlimit", &limits.prlimit()])
        .args(["taskset", "-c", LOAD_CPU, "nginx", "-p"])
        .arg(dir)
        .arg("-e")
        .arg(dir.join("nginx-error.log"))
        .arg("-c")
        .arg(&path);
    let mut nginx = Daemon::spawn("nginx", cmd, &dir.join("nginx.log"))?;
    wait_listening(&mut nginx, &[HTTP_PORT])?;
    Ok(nginx)
}

/// iperf3 server on BACKEND_ADDR:5201, on LOAD_CPU.
pub fn start_iperf3(topo: &Topology, dir: &Path) -> Result<Daemon, BenchError> {
    let mut cmd = topo.exec(Ns::Backend);
    cmd.args([
        "taskset",
        "-c",
        LOAD_CPU,
        "iperf3",
        "-s",
        "-B",
        BACKEND_ADDR,
        "-p",
    ])
    .arg(IPERF_PORT.to_string());
    let mut iperf = Daemon::spawn("iperf3 -s", cmd, &dir.join("iperf3-server.log"))?;
    wait_listening(&mut iperf, &[IPERF_PORT])?;
    Ok(iperf)
}

fn lbd_config(dir: &Path, stem: &str, maxconn: u64, splice: Option<bool>) -> String {
    let splice = splice.map_or(String::new(), |on| format!("splice = {on}\n"));
    let mut conf = format!(
        "{}{splice}
[defaults.timeout]
connect = \"5s\"
client = \"50s\"
server = \"50s\"
queue = \"10s\"
",
        lbd_global(dir, stem, maxconn)
    );
    for (name, port, frontend_max) in frontends(maxconn) {
        conf.push_str(&format!(
            "
[frontends.{name}]
bind = [\"{PROXY_FRONT_ADDR}:{port}\"]
mode = \"tcp\"
default_backend = \"{name}\"
maxconn = {frontend_max}

[backends.{name}]
mode = \"tcp\"

[backends.{name}.servers.s1]
address = \"{BACKEND_ADDR}:{port}\"
"
        ));
    }
    conf
}

/// Connections iperf3's frontend keeps (8 streams and the control one).
const IPERF_MAXCONN: u64 = 12;

/// Both proxies' frontends, each with its own maxconn adding up to the
/// global one: the idle-connection row fills the http frontend to
/// `Limits::idle`, and lbd (like HAProxy with `maxconn` per frontend) does
/// not let one frontend take the share of another.
pub fn frontends(maxconn: u64) -> [(&'static str, u16, u64); 2] {
    let iperf = IPERF_MAXCONN.min(maxconn / 2).max(1);
    [
        ("http", HTTP_PORT, maxconn.saturating_sub(iperf).max(1)),
        ("iperf", IPERF_PORT, iperf),
    ]
}

/// lbd's `[global]` table: its socket and state file in the bench's dir,
/// one pair per lbd binary (`stem`), and maxconn.
pub fn lbd_global(dir: &Path, stem: &str, maxconn: u64) -> String {
    let d = dir.display();
    format!(
        "[global]
control_socket = \"{d}/{stem}.sock\"
state_file = \"{d}/{stem}-state.json\"
maxconn = {maxconn}
"
    )
}

fn haproxy_config(maxconn: u64) -> String {
    let mut conf = format!(
        "global
    nbthread 1
    maxconn {maxconn}

defaults
    mode tcp
    timeout connect 5s
    timeout client 50s
    timeout server 50s
    timeout queue 10s
"
    );
    for (name, port, frontend_max) in frontends(maxconn) {
        conf.push_str(&format!(
            "
frontend {name}
    bind {PROXY_FRONT_ADDR}:{port}
    maxconn {frontend_max}
    default_backend {name}

backend {name}
    server s1 {BACKEND_ADDR}:{port}
"
        ));
    }
    conf
}

/// `bench lb`'s proxy: mode tcp to nginx and iperf3 (see the module doc).
pub fn start_proxy(
    topo: &Topology,
    dir: &Path,
    proxy: Proxy,
    bins: &LbdBinaries,
    limits: Limits,
    lbd_splice: Option<bool>,
) -> Result<Daemon, BenchError> {
    let config = match proxy {
        Proxy::Haproxy => haproxy_config(limits.maxconn),
        Proxy::Lbd | Proxy::LbdBefore => {
            lbd_config(dir, proxy.file_stem(), limits.maxconn, lbd_splice)
        }
    };
    let run = ProxyRun {
        topo,
        dir,
        proxy,
        bins,
        limits,
    };
    run.spawn(&config, &[HTTP_PORT, IPERF_PORT])
}

/// What starting any proxy of any bench takes.
pub struct ProxyRun<'a> {
    pub topo: &'a Topology,
    pub dir: &'a Path,
    pub proxy: Proxy,
    pub bins: &'a LbdBinaries,
    pub limits: Limits,
}

impl ProxyRun<'_> {
    /// Writes `config` (lbd TOML or haproxy.cfg, as `proxy` takes), starts
    /// the proxy in the proxy namespace on PROXY_CPU with the open-file
    /// limit of `limits`, and waits until it listens on `ports`.
    pub fn spawn(&self, config: &str, ports: &[u16]) -> Result<Daemon, BenchError> {
        let (proxy, dir) = (self.proxy, self.dir);
        let stem = proxy.file_stem();
        let mut cmd = self.topo.exec(Ns::Proxy);
        cmd.args(["prlimit", &self.limits.prlimit()])
            .args(["taskset", "-c", PROXY_CPU]);
        let expected_comm = match self.bins.for_proxy(proxy) {
            Some(bin) => {
                let path = dir.join(format!("{stem}.toml"));
                write(&path, config)?;
                // Logs off: one line per connection is lbd's info level.
                cmd.env("LBD_LOG", "error")
                    .arg(bin)
                    .arg("run")
                    .arg("-c")
                    .arg(&path);
                comm_of(bin)
            }
            None => {
                let path = dir.join(format!("{stem}.cfg"));
                write(&path, config)?;
                // -db: stay in the foreground, one process; no `log` line: no logs.
                cmd.args(["haproxy", "-db", "-f"]).arg(&path);
                "haproxy".to_string()
            }
        };
        let log = dir.join(format!("{stem}.log"));
        let mut d = Daemon::spawn(proxy.label(), cmd, &log)?;
        wait_listening(&mut d, ports)?;
        // prlimit, taskset and `ip netns exec` all exec: the pid is the proxy's.
        let name = comm(d.pid());
        if name != expected_comm {
            return Err(BenchError::NotReady {
                what: proxy.label().into(),
                until: format!(
                    "be the process we measure (pid {} is {name:?}, not {expected_comm:?})",
                    d.pid()
                ),
                seconds: 0,
                log: d.log_tail(),
            });
        }
        Ok(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_proxies_get_the_same_timeouts_and_frontends() {
        let lbd = lbd_config(Path::new("/tmp/x"), "lbd", 9000, None);
        let hap = haproxy_config(9000);
        for t in ["connect", "client", "server", "queue"] {
            assert!(hap.contains(&format!("timeout {t} ")), "{t}");
            assert!(lbd.contains(&format!("\n{t} = ")), "{t}");
        }
        for port in [HTTP_PORT, IPERF_PORT] {
            let bind = format!("{PROXY_FRONT_ADDR}:{port}");
            let server = format!("{BACKEND_ADDR}:{port}");
            assert!(lbd.contains(&bind) && hap.contains(&bind));
            assert!(lbd.contains(&server) && hap.contains(&server));
        }
        assert!(hap.contains("nbthread 1") && !hap.contains("\n    log"));
        assert!(hap.contains("maxconn 9000") && lbd.contains("maxconn = 9000"));
        // The http frontend holds the idle-connection row's connections.
        let idle = Limits::for_nofile(2 * 9000 + SPARE_FDS).idle(usize::MAX) as u64;
        assert!(idle <= 9000 - IPERF_MAXCONN, "{idle}");
        assert!(hap.contains("maxconn 8988") && lbd.contains("maxconn = 8988"));
        assert!(hap.contains("maxconn 12\n") && lbd.contains("maxconn = 12\n"));
        assert!(!lbd.contains("splice"));
        assert!(lbd_config(Path::new("/x"), "lbd", 1, Some(false)).contains("\nsplice = false\n"));
        assert!(lbd_config(Path::new("/x"), "lbd-before", 1, None)
            .contains("control_socket = \"/x/lbd-before.sock\""));
    }

    #[test]
    fn comm_is_the_file_name_cut_to_15_bytes() {
        assert_eq!(comm_of(Path::new("/tmp/lbd-before")), "lbd-before");
        assert_eq!(comm_of(Path::new("target/release/lbd")), "lbd");
        assert_eq!(
            comm_of(Path::new("/x/lbd-before-issue-13")),
            "lbd-before-issu"
        );
    }

    #[test]
    fn the_older_lbd_runs_between_lbd_and_haproxy() {
        let bins = LbdBinaries {
            current: "target/release/lbd".into(),
            before: None,
        };
        assert_eq!(bins.lineup(), vec![Proxy::Lbd, Proxy::Haproxy]);
        let bins = LbdBinaries {
            before: Some("/tmp/lbd-before".into()),
            ..bins
        };
        assert_eq!(
            bins.lineup(),
            vec![Proxy::Lbd, Proxy::LbdBefore, Proxy::Haproxy]
        );
        assert_eq!(
            bins.for_proxy(Proxy::LbdBefore),
            Some(Path::new("/tmp/lbd-before"))
        );
        assert_eq!(bins.for_proxy(Proxy::Haproxy), None);
    }

    #[test]
    fn maxconn_fits_the_open_file_limit() {
        // HAProxy needs two descriptors per connection plus its reserve.
        let l = Limits::for_nofile(20000);
        assert_eq!(l.maxconn, 9936);
        assert!(2 * l.maxconn + SPARE_FDS <= 20000);
        assert_eq!(l.idle(10_000), 9920);
        assert_eq!(Limits::for_nofile(1 << 20).maxconn, MAXCONN);
        assert_eq!(Limits::for_nofile(1 << 20).idle(10_000), 10_000);
    }

    #[test]
    fn hard_limit_is_the_second_number() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units\nMax open files            1024                 20000                files\n";
        assert_eq!(parse_hard_nofile(limits), Some(20000));
        assert_eq!(
            parse_hard_nofile("Max open files  unlimited  unlimited  files"),
            Some(u64::MAX)
        );
    }
}
