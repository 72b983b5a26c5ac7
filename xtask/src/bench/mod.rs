//! Benchmarks: `cargo xtask bench <name>`. Not tests: they measure, side by
//! side with the peer (HAProxy, Keepalived) in the same run, and write
//! BENCHMARKS.md.
//!
//! - `lb`: lbd against HAProxy (lb.rs), in three network namespaces
//!   (netns.rs), with nginx and iperf3 behind (servers.rs), wrk and iperf3
//!   in front (load.rs), idle connections for RSS (idle.rs), and the table
//!   (report.rs, sysinfo.rs).
//! - `abuse`: lbd against HAProxy, proxied latency while another listener
//!   of the same proxy is abused: bad logins on the stats page, slow-header
//!   connections on another frontend (abuse/).
//! - `failover`: lbd against Keepalived, the VRRP failover outage a client
//!   pinging the VIP sees (failover/). Each bench rewrites only its own
//!   section of BENCHMARKS.md (report.rs: `write_section`).

mod abuse;
mod error;
mod failover;
mod idle;
mod lb;
mod load;
mod netns;
mod procs;
mod report;
mod servers;
mod sysinfo;

/// Runs the named benchmark.
pub fn run(args: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    match args.first().map(String::as_str) {
        Some("lb") => lb::run(&args[1..]),
        Some("abuse") => abuse::run(&args[1..]),
        Some("failover") => failover::run(&args[1..]),
        // The helpers the benches run inside their namespaces.
        Some(idle::SUBCOMMAND) => Ok(idle::client(&args[1..])?),
        Some(abuse::BAD_LOGINS_SUBCOMMAND) => Ok(abuse::bad_logins_client(&args[1..])?),
        Some(abuse::SLOW_HEADERS_SUBCOMMAND) => Ok(abuse::slow_headers_client(&args[1..])?),
        Some(failover::LISTEN_SUBCOMMAND) => Ok(failover::serve_backend(&args[1..])?),
        Some(failover::PROBE_SUBCOMMAND) => Ok(failover::probe(&args[1..])?),
        Some(failover::ADVERT_SUBCOMMAND) => Ok(failover::await_advert(&args[1..])?),
        other => Err(format!("unknown benchmark {other:?}; known: lb, abuse, failover").into()),
    }
}
