pub mod build;
pub mod inspect;
pub mod lock;
pub mod run;

/// Any subcommand's failure, already worded for the user.
pub type CliResult = Result<(), Box<dyn std::error::Error>>;

/// Downloads, apt lists and extracted kernels, relative to the current
/// directory (the repository root).
pub const DEFAULT_CACHE: &str = ".cache";
