//! `openclaw config ...`: check, compile, explain, schema.

use std::process::ExitCode;

use clap::Subcommand;

/// `openclaw config` subcommands.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate the merged configuration and print every diagnostic.
    Check,
}

/// Runs a `config` subcommand.
pub fn run(cmd: ConfigCommand) -> ExitCode {
    match cmd {
        ConfigCommand::Check => {
            eprintln!("openclaw config check: not implemented yet");
            ExitCode::from(2)
        }
    }
}
