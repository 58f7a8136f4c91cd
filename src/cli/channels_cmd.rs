//! `openclaw channels ...`: link (`login`), unlink (`logout`) and inspect (`status`) channel
//! accounts.
//!
//! Only WhatsApp exists so far. With `--json`, `login` prints one JSON object per line:
//! `{"event":"qr","qr":"...","expiresInMs":N}` for each code (or `{"event":"pairing-code",
//! "code":"XXXX-XXXX"}` with `--phone`), then `{"event":"linked","jid":"..."}` or
//! `{"event":"failed","reason":"...","nextAllowedAt":MS?}`.
//!
//! `login` runs under the link guard (session lock, persisted cooldown, attempt limits): exit 0
//! linked, 1 failed, 75 (EX_TEMPFAIL) when the guard refuses an attempt now; the message says
//! when the next one is allowed.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use tokio::sync::mpsc;

use crate::channels::whatsapp::client::{self, ClientConfig, Event, LinkOutcome, LogoutOutcome};
use crate::channels::whatsapp::supervisor::link::{LinkError, LinkGuard, guarded_link};
use crate::channels::whatsapp::supervisor::persist::{AccountFiles, LinkLimits, fmt_ms};
use crate::channels::whatsapp::supervisor::policy::Policy;
use crate::channels::whatsapp::supervisor::session_lock::{SessionLock, SessionLockError};
use crate::channels::whatsapp::supervisor::{creds_store, system_wall_clock};
use crate::channels::whatsapp::paircode::display;
use crate::channels::whatsapp::qr::render_terminal;
use crate::config::env::ProcessEnv;
use crate::config::model::whatsapp::check_account_id;
use crate::config::sources::{Layer, SourceRequest};
use crate::store::StateLayout;
use crate::store::layout::resolve_state_dir;

/// `openclaw channels` subcommands.
#[derive(Debug, Subcommand)]
pub enum ChannelsCommand {
    /// Link a channel account (WhatsApp: scan the QR code with the phone).
    Login(LoginArgs),
    /// Unlink a channel account: tell the server, then remove the stored credentials.
    Logout(LogoutArgs),
    /// Show each account's connection state (from the running gateway, else from disk).
    Status(StatusArgs),
    /// List the groups an account is in (JID, member count, subject), from the running gateway.
    Groups(crate::cli::channels_groups::GroupsArgs),
}

/// Arguments of `channels status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Only this channel.
    #[arg(long)]
    pub channel: Option<String>,
    /// Only this account.
    #[arg(long)]
    pub account: Option<String>,
    /// Ask the running gateway to ping WhatsApp over each live session and report the round trip.
    #[arg(long)]
    pub probe: bool,
    /// Also show the running gateway's last ignored group messages, each with the rule that
    /// dropped it and the config key to change ("why was this group message ignored").
    #[arg(long, short = 'v')]
    pub verbose: bool,
    /// Where the gateway is, the token, state dir, config, timeout and `--json`.
    #[command(flatten)]
    pub client: crate::cli::status_cmd::ClientArgs,
}

/// Exit code when the link guard refuses an attempt for now (EX_TEMPFAIL).
pub const EXIT_TRY_LATER: u8 = 75;

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

/// Arguments of `logout`: `login`'s without `--phone` (which only applies to linking).
#[derive(Debug, Args)]
pub struct LogoutArgs {
    /// The channel (only `whatsapp` for now).
    #[arg(long, default_value = "whatsapp")]
    pub channel: String,
    /// The account id. Default: `default`.
    #[arg(long)]
    pub account: Option<String>,
    /// The system config file (default: $OPENCLAW_CONFIG_PATH, else /etc/openclaw/openclaw.json
    /// if it exists).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print JSON lines instead of text.
    #[arg(long)]
    pub json: bool,
    /// State directory (default: $OPENCLAW_STATE_DIR, else ~/.openclaw).
    #[arg(long, value_name = "PATH")]
    pub state_dir: Option<PathBuf>,
}

impl From<&LogoutArgs> for LoginArgs {
    fn from(a: &LogoutArgs) -> Self {
        LoginArgs {
            channel: a.channel.clone(),
            account: a.account.clone(),
            config: a.config.clone(),
            json: a.json,
            state_dir: a.state_dir.clone(),
            phone: None,
        }
    }
}

/// Runs a `channels` subcommand.
pub fn run(cmd: ChannelsCommand) -> ExitCode {
    let logout_args;
    let (args, is_login) = match &cmd {
        ChannelsCommand::Login(a) => (a, true),
        ChannelsCommand::Logout(a) => {
            logout_args = LoginArgs::from(a);
            (&logout_args, false)
        }
        ChannelsCommand::Status(a) => return status(a),
        ChannelsCommand::Groups(a) => return crate::cli::channels_groups::run(a),
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
        // Login and logout pick the account (`--account`, else `defaultAccount`) and its
        // `authDir` the same way; login also insists that it is declared.
        let (account, auth_dir) = configured_account(args, is_login)?;
        let (cfg, layout) = whatsapp_config(args, &account, auth_dir.as_deref())?;
        if is_login {
            let guard = LinkGuard {
                files: AccountFiles::new(&layout, &account),
                limits: LinkLimits::default(),
                cooldown: Policy::default().auth_cooldown,
                wall: system_wall_clock(),
            };
            rt.block_on(login(cfg, guard, json))
        } else {
            rt.block_on(logout(cfg, json, args, &account))
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

/// The account to link or unlink and its `authDir`, from `--account` and the config. Before
/// linking (`must_be_declared`) the channel (and the account, when accounts are listed) must be
/// declared in the config, or the gateway would never run the number being linked.
fn configured_account(args: &LoginArgs, must_be_declared: bool) -> anyhow::Result<(String, Option<String>)> {
    let request = SourceRequest { config: args.config.clone(), state_dir: args.state_dir.clone(), no_state: false };
    let c = crate::config::compile(&crate::config::Options { request }, &ProcessEnv)?;
    let Some(out) = &c.output else {
        for d in c.errors() {
            eprintln!("{d}");
        }
        anyhow::bail!("the config is invalid; fix it first (`openclaw config check` lists the errors)");
    };
    let Some(wa) = &out.config.channels.whatsapp else {
        if !must_be_declared {
            let account = args.account.clone().unwrap_or_else(|| crate::config::model::whatsapp::DEFAULT_ACCOUNT_ID.into());
            return Ok((account, None));
        }
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
    if must_be_declared && !wa.accounts.is_empty() && !wa.accounts.contains_key(&account) {
        let ids: Vec<&str> = wa.accounts.keys().map(String::as_str).collect();
        anyhow::bail!(
            "account {account:?} is not in channels.whatsapp.accounts ({}); add it there first",
            ids.join(", ")
        );
    }
    let auth_dir = wa.account(&account).auth_dir;
    Ok((account, auth_dir))
}

fn whatsapp_config(args: &LoginArgs, account: &str, auth_dir: Option<&str>) -> anyhow::Result<(ClientConfig, StateLayout)> {
    check_account_id(account).map_err(anyhow::Error::msg)?;
    let layout = StateLayout::new(resolve_state_dir(args.state_dir.as_deref()));
    let store = creds_store(&layout, account, auth_dir).map_err(anyhow::Error::msg)?;
    let mut cfg = ClientConfig::from_environment(store).map_err(anyhow::Error::msg)?;
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
    Ok((cfg, layout))
}

fn emit_refused(json: bool, reason: &str, next_allowed_ms: Option<u64>) {
    if json {
        println!(
            "{}",
            serde_json::json!({ "event": "failed", "reason": reason, "nextAllowedAt": next_allowed_ms })
        );
    } else {
        eprintln!("openclaw channels: {reason}");
    }
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

async fn login(cfg: ClientConfig, guard: LinkGuard, json: bool) -> anyhow::Result<ExitCode> {
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
                    if let Some(warning) = crate::cli::whatsapp_cmd::qr_fit_warning(&qr) {
                        eprintln!("{warning}");
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
    let out = guarded_link(&cfg, &guard, &tx).await;
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
        Ok(LinkOutcome::Failed(reason)) if reason.is_logged_out() => {
            let until = guard.files.cooldown((guard.wall)()).map(|c| c.until_ms);
            let text = format!(
                "WhatsApp refused the link ({reason}); this usually means too many link attempts. \
                 No new attempt before {} so the number is not blocked longer",
                until.map(fmt_ms).unwrap_or_else(|| "the cooldown ends".into())
            );
            emit_refused(json, &text, until);
            Ok(ExitCode::FAILURE)
        }
        Ok(LinkOutcome::Failed(reason)) => {
            emit_failed(json, &reason.to_string());
            Ok(ExitCode::FAILURE)
        }
        Err(LinkError::Refused(r)) => {
            emit_refused(json, &r.to_string(), Some(r.next_allowed_ms()));
            Ok(ExitCode::from(EXIT_TRY_LATER))
        }
        Err(LinkError::Busy(SessionLockError::Held { pid })) => {
            let who = pid.map(|p| format!(" (pid {p})")).unwrap_or_default();
            emit_failed(
                json,
                &format!(
                    "another process{who} uses this account's session, usually the running gateway with the account already linked; \
                     `openclaw channels status` shows its state (to relink, stop the gateway and run `openclaw channels logout` first)"
                ),
            );
            Ok(ExitCode::FAILURE)
        }
        Err(e) => {
            emit_failed(json, &e.to_string());
            Ok(ExitCode::FAILURE)
        }
    }
}

async fn logout(cfg: ClientConfig, json: bool, args: &LoginArgs, account: &str) -> anyhow::Result<ExitCode> {
    let _session = match SessionLock::try_acquire(cfg.store.dir()) {
        Ok(l) => l,
        // Usually the running gateway: it logs the account out itself (its supervisor owns
        // the session), so nobody has to stop it.
        Err(SessionLockError::Held { pid }) => return logout_through_gateway(args, account, pid, json).await,
        Err(e) => return Err(e.into()),
    };
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

/// Logout while another process holds the account's session: asks this state dir's running
/// gateway (`channels.logout`, which goes through the account's supervisor); without one, says
/// which process holds the session.
async fn logout_through_gateway(args: &LoginArgs, account: &str, pid: Option<u32>, json: bool) -> anyhow::Result<ExitCode> {
    let holder = pid.map(|p| format!(" (pid {p})")).unwrap_or_default();
    let client = crate::cli::status_cmd::ClientArgs {
        url: None,
        token: None,
        state_dir: args.state_dir.clone(),
        config: args.config.clone(),
        timeout: 40_000,
        json,
    };
    let t = crate::cli::status_cmd::target(&client)?;
    let Some((mut c, _)) = crate::cli::status_cmd::try_open(&t, client.timeout).await? else {
        anyhow::bail!(
            "another process{holder} holds this account's session and no gateway of state dir {} answers at {}: \
             finish or stop that process (an `openclaw channels login`?), then log out again",
            t.state_dir.display(),
            t.url
        );
    };
    let r = c
        .request("channels.logout", serde_json::json!({ "channel": "whatsapp", "accountId": account }))
        .await
        .map_err(|e| anyhow::anyhow!("the running gateway{holder} could not log the account out: {e}"))?;
    c.close().await;
    let event = match (r["cleared"].as_bool(), r["toldWhatsApp"].as_bool()) {
        (Some(false), _) => "not-linked",
        (_, Some(false)) => "removed-locally",
        _ => "unlinked",
    };
    if json {
        println!("{}", serde_json::json!({ "event": event, "via": "gateway", "backup": r["backup"] }));
    } else {
        println!("{} (done by the running gateway{holder})", r["message"].as_str().unwrap_or("Logged out."));
    }
    Ok(ExitCode::SUCCESS)
}

/// `openclaw channels status`: the running gateway's view (with `--probe`, a live ping per
/// account); without a gateway, what the state dir says (linked, cooldown, link guard).
fn status(a: &StatusArgs) -> ExitCode {
    let json = a.client.json;
    let r = crate::cli::status_cmd::block_on(async {
        let t = crate::cli::status_cmd::target(&a.client)?;
        let live = match crate::cli::status_cmd::try_open(&t, a.client.timeout).await? {
            Some((mut c, _)) => {
                let v = c
                    .request("channels.status", serde_json::json!({ "probe": a.probe }))
                    .await
                    .map_err(|e| anyhow::anyhow!("channels.status: {e}"))?;
                // An older gateway without `channels.decisions`: status still shows, the list says so.
                let decisions = if a.verbose { group_decisions(&mut c, a).await.ok() } else { None };
                c.close().await;
                Some((v, decisions))
            }
            None => None,
        };
        let running = live.is_some();
        let (live, decisions) = match live {
            Some((v, d)) => (Some(v), d),
            None => (None, None),
        };
        anyhow::ensure!(
            running || !a.probe,
            "cannot probe: no gateway is running for state dir {} (start it with `openclaw gateway`)",
            t.state_dir.display()
        );
        let list: Vec<serde_json::Value> = match live {
            Some(v) => v["channels"].as_array().cloned().unwrap_or_default(),
            None => offline_status(&a.client)?,
        };
        let list: Vec<serde_json::Value> = list
            .into_iter()
            .filter(|c| a.channel.as_deref().is_none_or(|ch| c["id"] == ch))
            .filter(|c| a.account.as_deref().is_none_or(|ac| c["account"] == ac))
            .collect();
        if json {
            let mut doc = serde_json::json!({ "gateway": { "running": running, "pid": t.pid }, "channels": list });
            if let Some(d) = &decisions {
                doc["groupDecisions"] = serde_json::Value::Array(d.clone());
            }
            println!("{}", serde_json::to_string_pretty(&doc)?);
        } else {
            print_status(running, &list);
            if a.verbose {
                match &decisions {
                    Some(d) => print_group_decisions(running, d),
                    None if running => println!("Ignored group messages: unknown (this gateway does not report its decisions)"),
                    None => print_group_decisions(false, &[]),
                }
            }
        }
        Ok(())
    })
    .and_then(|r| r);
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Ignored group messages shown by `channels status --verbose`.
const VERBOSE_DECISIONS: usize = 5;

/// The running gateway's last ignored group messages (`channels.decisions`), newest first.
async fn group_decisions(c: &mut crate::gateway::client::Conn, a: &StatusArgs) -> anyhow::Result<Vec<serde_json::Value>> {
    let mut params = serde_json::json!({ "kind": "group", "droppedOnly": true, "limit": VERBOSE_DECISIONS });
    if let Some(ch) = &a.channel {
        params["channel"] = ch.clone().into();
    }
    if let Some(acc) = &a.account {
        params["accountId"] = acc.clone().into();
    }
    let v = c.request("channels.decisions", params).await.map_err(|e| anyhow::anyhow!("channels.decisions: {e}"))?;
    Ok(v["decisions"].as_array().cloned().unwrap_or_default())
}

/// "Why was this group message ignored": one block per decision, with the fix.
fn print_group_decisions(running: bool, list: &[serde_json::Value]) {
    if !running {
        println!("Ignored group messages: unknown (the gateway is not running; it keeps them in memory)");
        return;
    }
    if list.is_empty() {
        println!("Ignored group messages: none since the gateway started");
        return;
    }
    println!("Ignored group messages (last {}, newest first):", list.len());
    let now = crate::agent::runs::unix_ms();
    for d in list {
        println!(
            "  {} {}/{} group {} from {}: {}",
            d["atMs"].as_u64().map(|t| crate::cli::human::when(now, t)).unwrap_or_default(),
            d["channel"].as_str().unwrap_or("?"),
            d["accountId"].as_str().unwrap_or("?"),
            d["chat"].as_str().unwrap_or("?"),
            d["sender"].as_str().unwrap_or("?"),
            d["reason"].as_str().unwrap_or("?"),
        );
        if let Some(fix) = d["fix"].as_str() {
            println!("    to have it answered: {fix}");
        }
    }
}

/// What the state dir says about each configured account when no gateway runs.
fn offline_status(a: &crate::cli::status_cmd::ClientArgs) -> anyhow::Result<Vec<serde_json::Value>> {
    use crate::channels::status::{ChannelStatus, ConnectionState};
    let settings = crate::cli::gateway_cmd::load_settings(&crate::cli::gateway_cmd::GatewayArgs {
        state_dir: a.state_dir.clone(),
        config: a.config.clone(),
        ..Default::default()
    })?;
    let layout = &settings.state;
    let now = crate::agent::runs::unix_ms();
    let mut out = Vec::new();
    for acc in &settings.whatsapp {
        let store = match creds_store(layout, &acc.id, acc.auth_dir.as_deref()) {
            Ok(s) => s,
            Err(e) => {
                let mut s = ChannelStatus::new("whatsapp", &acc.id, ConnectionState::Unsupported { reason: e.clone() });
                s.detail = format!("not started: {e}");
                out.push(serde_json::to_value(&s)?);
                continue;
            }
        };
        let files = AccountFiles::new(layout, &acc.id);
        let me = store.load().ok().flatten().and_then(|c| c.me);
        let linked = me.is_some();
        let cooldown = files.cooldown(now);
        let cooldown_until = cooldown.as_ref().map(|c| c.until_ms);
        let state = match (acc.enabled, cooldown, linked) {
            (false, _, _) => ConnectionState::Disabled,
            (true, Some(c), _) => ConnectionState::CoolingDown { until_ms: c.until_ms, reason: c.reason },
            (true, None, false) if SessionLock::is_held(store.dir()) => {
                ConnectionState::Pairing { pid: SessionLock::holder(store.dir()) }
            }
            (true, None, false) => ConnectionState::NotLinked,
            (true, None, true) => ConnectionState::Stopped,
        };
        let mut s = ChannelStatus::new("whatsapp", &acc.id, state);
        s.linked = linked;
        s.set_self(me.as_ref().and_then(crate::channels::status::SelfId::from_whatsapp_me));
        s.cooldown_until = cooldown_until;
        s.link_allowed_at = files.link_allowed_at(now, &LinkLimits::default());
        s.detail = match &s.state {
            ConnectionState::Stopped => "linked; the gateway is not running".into(),
            other => other.describe(fmt_ms),
        };
        out.push(serde_json::to_value(&s)?);
    }
    Ok(out)
}

fn print_status(running: bool, list: &[serde_json::Value]) {
    if !running {
        println!("Gateway: not running (state read from disk)");
    }
    if list.is_empty() {
        println!("No channel accounts are configured (add channels.whatsapp to the config).");
    }
    for c in list {
        let probe = match (&c["probe"]["ok"], &c["probe"]["rttMs"], &c["probe"]["error"]) {
            (serde_json::Value::Bool(true), rtt, _) => format!(" [probe: {rtt} ms]"),
            (serde_json::Value::Bool(false), _, e) => format!(" [probe failed: {}]", e.as_str().unwrap_or("?")),
            _ => String::new(),
        };
        println!(
            "{} {}{}: {}{}",
            c["id"].as_str().unwrap_or("?"),
            c["account"].as_str().unwrap_or("?"),
            match (c["self"]["e164"].as_str(), c["self"]["jid"].as_str()) {
                (Some(p), Some(j)) => format!(" ({p}, {j})"),
                _ => String::new(),
            },
            crate::cli::human::annotate(c["detail"].as_str().unwrap_or(""), crate::agent::runs::unix_ms()),
            probe
        );
        if let Some(d) = c["lastDisconnect"].as_object() {
            println!(
                "  last disconnect: {} at {}",
                d.get("reason").and_then(|v| v.as_str()).unwrap_or("?"),
                d.get("atMs").and_then(|v| v.as_u64()).map(|t| crate::cli::human::when(crate::agent::runs::unix_ms(), t)).unwrap_or_default()
            );
        }
        if let Some(t) = c["linkAllowedAt"].as_u64() {
            println!("  next link attempt allowed at {}", crate::cli::human::when(crate::agent::runs::unix_ms(), t));
        }
        if running {
            println!(
                "  {} connection attempts, {} logins, {} crashes since the gateway started",
                c["attempts"], c["connects"], c["crashes"]
            );
            println!(
                "  {} messages received, {} sent since the gateway started",
                c["messagesReceived"].as_u64().unwrap_or(0),
                c["messagesSent"].as_u64().unwrap_or(0)
            );
        }
    }
}
