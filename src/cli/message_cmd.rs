//! `openclaw message send`: upstream's command for sending a message through a channel. WhatsApp
//! sending is not built yet (issue 10); the command exists so runbooks and `openclaw whatsapp send`
//! fail with a clear sentence and a non-zero exit instead of "unrecognized subcommand".

use std::process::ExitCode;

use clap::{Args, Subcommand};

/// Exit code of a command that exists but is not available yet (EX_UNAVAILABLE).
pub const EXIT_NOT_AVAILABLE: u8 = 69;

/// The sentence printed by `message send` until sending exists.
pub const NOT_AVAILABLE: &str = "not available yet: WhatsApp message sending is being built (issue 10)";

/// `openclaw message` subcommands.
#[derive(Debug, Subcommand)]
pub enum MessageCommand {
    /// Send a message through a channel (not available yet: issue 10).
    Send(SendArgs),
}

/// Upstream's `message send` flags (accepted so a runbook's line parses; nothing is sent).
#[derive(Debug, Clone, Args)]
pub struct SendArgs {
    /// The channel (only `whatsapp`).
    #[arg(long, default_value = "whatsapp")]
    pub channel: String,
    /// The account id.
    #[arg(long)]
    pub account: Option<String>,
    /// Recipient (phone number with country code, or a JID).
    #[arg(short = 't', long)]
    pub target: Option<String>,
    /// The text to send.
    #[arg(short = 'm', long)]
    pub message: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `openclaw message ...`: always refuses for now, with [`NOT_AVAILABLE`].
pub fn run(cmd: MessageCommand) -> ExitCode {
    match cmd {
        MessageCommand::Send(a) => {
            if a.json {
                println!("{}", serde_json::json!({"ok": false, "error": NOT_AVAILABLE}));
            } else {
                eprintln!("error: {NOT_AVAILABLE}");
            }
            ExitCode::from(EXIT_NOT_AVAILABLE)
        }
    }
}
