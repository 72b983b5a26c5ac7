//! `lbd run`: set up logging and the tokio runtime, then serve.

use std::path::PathBuf;
use std::process::ExitCode;

use lbd::config::LogTarget;
use lbd::syslog::Syslog;

use super::CliError;

/// Environment variable with a tracing filter, e.g. `LBD_LOG=debug`.
const LOG_ENV: &str = "LBD_LOG";

pub fn run(config: Vec<PathBuf>) -> Result<ExitCode, CliError> {
    let filter = tracing_subscriber::EnvFilter::try_from_env(LOG_ENV)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // The log target is read before the daemon loads the config for real;
    // a config error is then reported on stderr.
    let syslog = match lbd::config::load_files(&config) {
        Ok(c) if c.global.log == LogTarget::Syslog => {
            match Syslog::connect(&c.global.syslog_socket) {
                Ok(s) => Some(s),
                Err(e) => {
                    eprintln!(
                        "lbd: syslog socket {}: {e}; logging to stderr",
                        c.global.syslog_socket.display()
                    );
                    None
                }
            }
        }
        _ => None,
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false);
    match syslog {
        // syslog stamps the time itself.
        Some(s) => builder.without_time().with_writer(s).init(),
        None => builder.with_writer(std::io::stderr).init(),
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(CliError::Tokio)?;
    runtime.block_on(lbd::daemon::run(config))?;
    Ok(ExitCode::SUCCESS)
}
