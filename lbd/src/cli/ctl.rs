//! `lbd ctl`: a one-shot client of the control socket.

use std::path::Path;
use std::process::ExitCode;

use super::CliError;

pub fn run(socket: &Path, command: &str) -> Result<ExitCode, CliError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(CliError::Tokio)?;
    runtime.block_on(lbd::control::client::run(socket, command))?;
    Ok(ExitCode::SUCCESS)
}
