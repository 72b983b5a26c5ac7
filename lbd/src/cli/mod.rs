//! One module per subcommand, each with a `run()`.

pub mod check;
pub mod config;
pub mod ctl;
pub mod hash_password;
pub mod run;

/// Errors of the command-line front end.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("reading password from stdin: {0}")]
    ReadStdin(std::io::Error),
    #[error("starting tokio: {0}")]
    Tokio(std::io::Error),
    #[error("starting the log-writer thread: {0}")]
    LogThread(std::io::Error),
    #[error("{0}")]
    Daemon(#[from] lbd::daemon::DaemonError),
    #[error("{0}")]
    Ctl(#[from] lbd::control::client::ClientError),
    #[error("{0}")]
    Password(#[from] lbd::password::PasswordError),
    #[error("{0}")]
    Config(#[from] config::ConfigCliError),
}
