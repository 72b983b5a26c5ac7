//! `lbd`: load balancer daemon and its tools.
//!
//! - `lbd run -c FILE [-c FILE...]`: serve (logs to stderr).
//! - `lbd check -c FILE [-c FILE...]`: validate; every error with file:line.
//! - `lbd ctl [--socket PATH] <command>`: talk to a running lbd.
//! - `lbd ctl config ...`: the appliance's stored settings and services
//!   (through init's appliance socket).
//! - `lbd hash-password`: read a password on stdin, print its argon2id hash.
//!
//! Files are layered in order: later files win key by key.

mod cli;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "lbd", version, about = "Load balancer daemon")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check config files and print every error with file and line.
    Check {
        /// Config file; repeat to layer (later wins).
        #[arg(short = 'c', long = "config", required = true)]
        config: Vec<PathBuf>,
    },
    /// Serve: proxy, check, answer the control socket. Logs go to stderr.
    Run {
        /// Config file; repeat to layer (later wins).
        #[arg(short = 'c', long = "config", required = true)]
        config: Vec<PathBuf>,
    },
    /// Send one command to a running lbd (try `help`); prints JSON.
    /// `config ...` talks to the appliance's store instead (try `config`),
    /// `appliance reboot|poweroff` to init.
    Ctl {
        /// Control socket path.
        #[arg(long, default_value = lbd::config::DEFAULT_CONTROL_SOCKET)]
        socket: PathBuf,
        /// The appliance socket, for `lbd ctl config ...`.
        #[arg(long, default_value = appliance_api::SOCKET)]
        appliance_socket: PathBuf,
        /// The command words, e.g. `show stat` or `set server b/s state drain`.
        #[arg(required = true, trailing_var_arg = true)]
        command: Vec<String>,
    },
    /// Read a password from stdin and print its hash for `password_hash`.
    HashPassword,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check { config } => cli::check::run(&config),
        Command::Run { config } => cli::run::run(config),
        Command::Ctl {
            appliance_socket,
            command,
            ..
        } if command.first().is_some_and(|w| w == "config") => {
            cli::config::run(&appliance_socket, &command[1..]).map_err(Into::into)
        }
        Command::Ctl {
            appliance_socket,
            command,
            ..
        } if command.first().is_some_and(|w| w == "appliance") => {
            cli::config::run_appliance(&appliance_socket, &command[1..]).map_err(Into::into)
        }
        Command::Ctl {
            socket, command, ..
        } => cli::ctl::run(&socket, &command.join(" ")),
        Command::HashPassword => cli::hash_password::run(),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("lbd: {e}");
            ExitCode::FAILURE
        }
    }
}
