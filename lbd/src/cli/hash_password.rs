//! `lbd hash-password`: one line from stdin in, one PHC hash out on stdout.

use std::io::BufRead;
use std::process::ExitCode;

use super::CliError;

pub fn run() -> Result<ExitCode, CliError> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(CliError::ReadStdin)?;
    let password = line.trim_end_matches(['\r', '\n']);
    println!("{}", lbd::password::hash_password(password)?);
    Ok(ExitCode::SUCCESS)
}
