//! `openclaw channels ...`: link (`login`) and unlink (`logout`) a channel account.
//!
//! Only WhatsApp exists so far. With `--json`, `login` prints one JSON object per line:
//! `{"event":"qr","qr":"...","expiresInMs":N}` for each code (or `{"event":"pairing-code",
//! "code":"XXXX-XXXX"}` with `--phone`), then `{"event":"linked","jid":"..."}` or
//! `{"event":"failed","reason":"..."}`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use tokio::sync::mpsc;

use crate::channels::whatsapp::client::{self, ClientConfig, Event, LinkOutcome, LogoutOutcome};
use crate::channels::whatsapp::creds::CredsStore;
use crate::channels::whatsapp::paircode::display;
use crate::channels::whatsapp::qr::render_terminal;
use crate::store::StateLayout;
use crate::store::layout::resolve_state_dir;

/// `openclaw channels` subcommands.
#[derive(Debug, Subcommand)]
pub enum ChannelsCommand {
    /// Link a channel account (WhatsApp: scan the QR code with the phone).
    Login(LoginArgs),
    /// Unlink a channel account: tell the server, then remove the stored credentials.
    Logout(LoginArgs),
}

/// Arguments shared by `login` and `logout`.
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The channel (only `whatsapp` for now).
    #[arg(long, default_value = "whatsapp")]
    pub channel: String,
    /// The account id (several WhatsApp numbers can be linked side by side).
    #[arg(long, default_value = "default")]
    pub account: String,
    /// Print JSON lines instead of text.
    #[arg(long)]
    pub json: bool,
    /// State directory (default: $OPENCLAW_STATE_DIR, else ~/.openclaw).
    #[arg(long, value_name = "PATH")]
    pub state_dir: Option<PathBuf>,
    /// Login only: link with a pairing code for this phone number (digits, with country code)
    /// instead of a QR code.
    #[arg(long, value_name = "NUMBER")]
    pub phone: Option<String>,
}

/// Runs a `channels` subcommand.
pub fn run(cmd: ChannelsCommand) -> ExitCode {
    let (args, is_login) = match &cmd {
        ChannelsCommand::Login(a) => (a, true),
        ChannelsCommand::Logout(a) => (a, false),
    };
    let json = args.json;
    let result = (|| -> anyhow::Result<ExitCode> {
        anyhow::ensure!(
            args.channel == "whatsapp",
            "unknown channel {:?}: only \"whatsapp\" can be linked",
            args.channel
        );
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .context("starting the async runtime")?;
        let cfg = whatsapp_config(args)?;
        if is_login {
            rt.block_on(login(cfg, json))
        } else {
            rt.block_on(logout(cfg, json))
        }
    })();
    match result {
        Ok(code) => code,
        Err(e) => {
            emit_failed(json, &format!("{e:#}"));
            ExitCode::FAILURE
        }
    }
}

fn whatsapp_config(args: &LoginArgs) -> anyhow::Result<ClientConfig> {
    anyhow::ensure!(
        !args.account.is_empty()
            && args
                .account
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
        "invalid account id {:?} (letters, digits, - and _ only)",
        args.account
    );
    let layout = StateLayout::new(resolve_state_dir(args.state_dir.as_deref()));
    let mut cfg = ClientConfig::from_environment(CredsStore::new(&layout, &args.account))
        .map_err(anyhow::Error::msg)?;
    if let Some(phone) = &args.phone {
        let digits: String = phone
            .chars()
            .filter(|c| !matches!(c, '+' | ' ' | '-'))
            .collect();
        anyhow::ensure!(
            (6..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()),
            "--phone {phone:?} is not a phone number with country code"
        );
        cfg.pair_phone = Some(digits);
    }
    Ok(cfg)
}

fn emit_failed(json: bool, reason: &str) {
    if json {
        println!(
            "{}",
            serde_json::json!({ "event": "failed", "reason": reason })
        );
    } else {
        eprintln!("openclaw channels: failed: {reason}");
    }
}

async fn login(cfg: ClientConfig, json: bool) -> anyhow::Result<ExitCode> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let printer = tokio::spawn(async move {
        while let Some(ev) = rx.recv().await {
            match ev {
                Event::Qr { qr, expires_in } if json => {
                    println!(
                        "{}",
                        serde_json::json!({ "event": "qr", "qr": qr, "expiresInMs": expires_in.as_millis() as u64 })
                    );
                }
                Event::Qr { qr, expires_in } => {
                    match render_terminal(&qr) {
                        Ok(t) => println!("{t}"),
                        Err(e) => eprintln!("(cannot draw the QR code: {e})"),
                    }
                    println!(
                        "Scan with WhatsApp on your phone: Settings → Linked devices → Link a device. \
                         This code is valid for {} s; a new one follows.",
                        expires_in.as_secs()
                    );
                }
                Event::PairingCode { code } if json => {
                    println!(
                        "{}",
                        serde_json::json!({ "event": "pairing-code", "code": display(&code) })
                    );
                }
                Event::PairingCode { code } => println!(
                    "On your phone: WhatsApp → Settings → Linked devices → Link a device → Link with phone number \
                     instead, then enter {}",
                    display(&code)
                ),
                Event::Paired { jid } if !json => println!("Paired as {jid}; logging in…"),
                _ => {}
            }
        }
    });
    let out = client::link(&cfg, &tx).await;
    drop(tx);
    let _ = printer.await;
    match out {
        Ok(LinkOutcome::Linked { jid }) => {
            if json {
                println!("{}", serde_json::json!({ "event": "linked", "jid": jid }));
            } else {
                let number = jid.split([':', '@']).next().unwrap_or_default();
                println!(
                    "Linked WhatsApp +{number} ({jid}). Credentials: {}",
                    cfg.store.dir().display()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Ok(LinkOutcome::Failed(reason)) => {
            let hint = if reason.is_logged_out() {
                "; run `openclaw channels logout --channel whatsapp` and link again"
            } else {
                ""
            };
            emit_failed(json, &format!("{reason}{hint}"));
            Ok(ExitCode::FAILURE)
        }
        Err(e) => {
            emit_failed(json, &e.to_string());
            Ok(ExitCode::FAILURE)
        }
    }
}

async fn logout(cfg: ClientConfig, json: bool) -> anyhow::Result<ExitCode> {
    let out = client::logout(&cfg).await?;
    let (event, text) = match &out {
        LogoutOutcome::Unlinked => ("unlinked", "Unlinked; credentials removed.".to_owned()),
        LogoutOutcome::NotLinked => (
            "not-linked",
            "Nothing to unlink: no linked WhatsApp account here.".to_owned(),
        ),
        LogoutOutcome::RemovedLocallyOnly(why) => (
            "removed-locally",
            format!(
                "Could not tell WhatsApp ({why}); local credentials removed. Remove the device on the phone too."
            ),
        ),
    };
    if json {
        println!("{}", serde_json::json!({ "event": event }));
    } else {
        println!("{text}");
    }
    Ok(ExitCode::SUCCESS)
}
