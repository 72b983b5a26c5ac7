pub mod build;
pub mod inspect;
pub mod run;

/// Any subcommand's failure, already worded for the user.
pub type CliResult = Result<(), Box<dyn std::error::Error>>;
