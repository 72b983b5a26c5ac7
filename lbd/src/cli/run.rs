//! `lbd run`: set up logging and the tokio runtime, then serve.

use std::path::PathBuf;
use std::process::ExitCode;

use super::CliError;

/// Environment variable with a tracing filter, e.g. `LBD_LOG=debug`.
const LOG_ENV: &str = "LBD_LOG";

pub fn run(config: Vec<PathBuf>) -> Result<ExitCode, CliError> {
    let filter = tracing_subscriber::EnvFilter::try_from_env(LOG_ENV)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(CliError::Tokio)?;
    runtime.block_on(lbd::daemon::run(config))?;
    Ok(ExitCode::SUCCESS)
}
