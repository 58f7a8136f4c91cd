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
use crate::config::env::ProcessEnv;
use crate::config::model::whatsapp::DEFAULT_ACCOUNT_ID;
use crate::config::sources::{Layer, SourceRequest};
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
    /// The account id (several WhatsApp numbers can be linked side by side). Default: the
    /// config's channels.whatsapp.defaultAccount, else `default`.
    #[arg(long)]
    pub account: Option<String>,
    /// The system config file (default: $OPENCLAW_CONFIG_PATH, else /etc/openclaw/openclaw.json
    /// if it exists); `login` checks there that the channel is declared.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
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
        let account = if is_login {
            declared_account(args)?
        } else {
            args.account.clone().unwrap_or_else(|| DEFAULT_ACCOUNT_ID.to_string())
        };
        let cfg = whatsapp_config(args, &account)?;
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

/// Before linking: the channel (and the account, when accounts are listed) must be declared in
/// the config, or the gateway would never run the number being linked. Returns the account id.
fn declared_account(args: &LoginArgs) -> anyhow::Result<String> {
    let request = SourceRequest { config: args.config.clone(), state_dir: args.state_dir.clone(), no_state: false };
    let c = crate::config::compile(&crate::config::Options { request }, &ProcessEnv)?;
    let Some(out) = &c.output else {
        for d in c.errors() {
            eprintln!("{d}");
        }
        anyhow::bail!("the config is invalid; fix it first (`openclaw config check` lists the errors)");
    };
    let Some(wa) = &out.config.channels.whatsapp else {
        let target = c
            .sources
            .iter()
            .find(|s| s.layer == Layer::System)
            .map(|s| s.path.clone())
            .or_else(|| c.inputs.state_dir.as_ref().map(|d| StateLayout::new(d).config_file()))
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "the config".into());
        anyhow::bail!(
            "WhatsApp is not declared in the config, so the gateway would never run this number: add channels.whatsapp to {target} (NixOS: services.openclaw.settings.channels.whatsapp), then log in again"
        );
    };
    let account = args.account.clone().unwrap_or_else(|| wa.default_account_id());
    if !wa.accounts.is_empty() && !wa.accounts.contains_key(&account) {
        let ids: Vec<&str> = wa.accounts.keys().map(String::as_str).collect();
        anyhow::bail!(
            "account {account:?} is not in channels.whatsapp.accounts ({}); add it there first",
            ids.join(", ")
        );
    }
    Ok(account)
}

fn whatsapp_config(args: &LoginArgs, account: &str) -> anyhow::Result<ClientConfig> {
    anyhow::ensure!(
        !account.is_empty() && account.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
        "invalid account id {account:?} (letters, digits, - and _ only)"
    );
    let layout = StateLayout::new(resolve_state_dir(args.state_dir.as_deref()));
    let mut cfg = ClientConfig::from_environment(CredsStore::new(&layout, account))
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
