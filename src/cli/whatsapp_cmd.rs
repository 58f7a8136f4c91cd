//! `openclaw whatsapp pair | status | send`: the runbook names (seed 003) for
//! `channels login --channel whatsapp`, `channels status --channel whatsapp` and
//! `message send --channel whatsapp`. Each takes the same flags as the command it stands for.

use std::process::ExitCode;

use clap::{Args, Subcommand};

use crate::cli::channels_cmd::{self, ChannelsCommand, LoginArgs, StatusArgs};
use crate::cli::message_cmd::{self, MessageCommand, SendArgs};

/// `openclaw whatsapp` subcommands.
#[derive(Debug, Subcommand)]
pub enum WhatsappCommand {
    /// Link a WhatsApp number by QR code or pairing code (= `channels login --channel whatsapp`).
    #[command(alias = "login", alias = "link")]
    Pair(PairArgs),
    /// The WhatsApp accounts' connection state and number (= `channels status --channel whatsapp`).
    Status(StatusArgs),
    /// Send a WhatsApp message (= `message send --channel whatsapp`).
    Send(SendArgs),
}

/// `whatsapp pair` flags: `channels login`'s, the channel fixed to WhatsApp.
#[derive(Debug, Args)]
pub struct PairArgs {
    /// The flags of `channels login`.
    #[command(flatten)]
    pub login: LoginArgs,
}

/// Runs `openclaw whatsapp ...` by running the command it is an alias of.
pub fn run(cmd: WhatsappCommand) -> ExitCode {
    match cmd {
        WhatsappCommand::Pair(mut a) => {
            a.login.channel = "whatsapp".into();
            channels_cmd::run(ChannelsCommand::Login(a.login))
        }
        WhatsappCommand::Status(mut a) => {
            a.channel = Some("whatsapp".into());
            channels_cmd::run(ChannelsCommand::Status(a))
        }
        WhatsappCommand::Send(mut a) => {
            a.channel = Some("whatsapp".into());
            message_cmd::run(MessageCommand::Send(a))
        }
    }
}

/// Lines of text printed with each terminal QR code (instructions and the code's validity).
const QR_TEXT_ROWS: usize = 2;

/// When the terminal on stdout is known and too small for `qr`'s code, the sentence that says
/// how big it must be; `None` when it fits or the size is unknown.
pub fn qr_fit_warning(qr: &str) -> Option<String> {
    let (cols, rows) = crate::cli::human::terminal_size()?;
    qr_fit_message(qr, cols, rows)
}

/// [`qr_fit_warning`] for a given terminal size (pure).
pub fn qr_fit_message(qr: &str, cols: usize, rows: usize) -> Option<String> {
    let (need_cols, qr_rows) = crate::channels::whatsapp::qr::terminal_size(qr).ok()?;
    let need_rows = qr_rows + QR_TEXT_ROWS;
    (cols < need_cols || rows < need_rows).then(|| {
        format!(
            "The QR code needs a terminal of at least {need_cols} columns × {need_rows} rows; this one is {cols} × {rows}. \
             Enlarge the window (or make the font smaller) until the whole code shows, or link from the Control UI \
             (`openclaw dashboard` prints its address), or with a pairing code: `openclaw channels login --phone <number>`."
        )
    })
}
