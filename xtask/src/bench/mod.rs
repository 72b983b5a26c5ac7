//! Benchmarks: `cargo xtask bench <name>`. Not tests: they measure, side by
//! side with the peer (HAProxy, Keepalived) in the same run, and write
//! BENCHMARKS.md.

/// Runs the named benchmark.
pub fn run(args: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    Err(format!("unknown benchmark {:?}", args.first()).into())
}
