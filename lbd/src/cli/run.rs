//! `lbd run`: set up logging and the tokio runtime, then serve.

use std::path::PathBuf;
use std::process::ExitCode;

use std::time::Duration;

use lbd::config::LogTarget;
use lbd::log_queue::{LogQueue, Sink, QUEUE_LINES};
use lbd::syslog::Syslog;

use super::CliError;

/// Environment variable with a tracing filter, e.g. `LBD_LOG=debug`.
const LOG_ENV: &str = "LBD_LOG";
/// How long lbd waits at exit for its last log lines to be written.
const EXIT_FLUSH: Duration = Duration::from_secs(1);

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
    let queue = match syslog {
        // syslog stamps the time itself.
        Some(s) => {
            let queue =
                LogQueue::start(Sink::Syslog(s), QUEUE_LINES).map_err(CliError::LogThread)?;
            builder.without_time().with_writer(queue.clone()).init();
            queue
        }
        None => {
            let sink = Sink::Stream(Box::new(std::io::stderr()));
            let queue = LogQueue::start(sink, QUEUE_LINES).map_err(CliError::LogThread)?;
            builder.with_writer(queue.clone()).init();
            queue
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(CliError::Tokio)?;
    let served = runtime.block_on(lbd::daemon::run(config));
    // The last lines say why lbd stopped; a reader that stopped reading
    // gets them only if it catches up within this.
    queue.flush(EXIT_FLUSH);
    served?;
    Ok(ExitCode::SUCCESS)
}
