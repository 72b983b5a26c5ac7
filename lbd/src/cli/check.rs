//! `lbd check`: load and validate; print a summary or every error.

use std::path::PathBuf;
use std::process::ExitCode;

use super::CliError;

pub fn run(paths: &[PathBuf]) -> Result<ExitCode, CliError> {
    match lbd::config::load_files(paths) {
        Ok(config) => {
            for w in lbd::config::validate::warnings(&config) {
                eprintln!("warning: {}: {}", w.key.join("."), w.message);
            }
            let servers: usize = config.backends.values().map(|b| b.servers.len()).sum();
            println!(
                "config OK: {} frontends, {} backends, {} servers",
                config.frontends.len(),
                config.backends.len(),
                servers
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(errors) => {
            for e in &errors.0 {
                eprintln!("{e}");
            }
            eprintln!("config has {} error(s)", errors.0.len());
            Ok(ExitCode::from(1))
        }
    }
}
