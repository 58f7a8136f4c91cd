//! Linking a WhatsApp account from the Control UI: upstream's `web.login.start` /
//! `web.login.wait` methods (and `channels.logout`). `start` begins a guarded link (the same
//! session lock, cooldown and attempt limits as `openclaw channels login`) in a task of the
//! gateway and answers with the first QR code as an SVG data URL; `wait` answers when the code
//! rotates, the phone scanned it (`connected: true`) or the link failed (with the reason in
//! words). The account's supervisor picks the new credentials up by itself. `channels.logout`
//! of a running account goes through its supervisor ([`crate::channels::whatsapp::supervisor::AccountHandle::logout`]):
//! WhatsApp is told over the live session, the credentials are moved aside, the state turns
//! `loggedOut`.

// ErrorShape is the protocol's error frame, returned by value as in `control.rs`.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};

use crate::channels::whatsapp::client::{self, ClientConfig, Event, LinkOutcome, LogoutOutcome};
use crate::channels::whatsapp::supervisor::link::{LinkError, LinkGuard, guarded_link};
use crate::channels::whatsapp::supervisor::persist::{AccountFiles, LinkLimits, fmt_ms};
use crate::channels::whatsapp::supervisor::policy::Policy;
use crate::channels::whatsapp::supervisor::session_lock::{SessionLock, SessionLockError};
use crate::channels::whatsapp::supervisor::run::LogoutResult;
use crate::channels::whatsapp::supervisor::{creds_store, system_wall_clock};
use crate::gateway::protocol::ErrorShape;
use crate::gateway::state::AppState;

/// Methods handled here (asynchronous: they wait for the phone).
pub const METHODS: &[&str] = &["web.login.start", "web.login.wait", "channels.logout"];

/// Longest a `web.login.*` call waits.
const MAX_WAIT_MS: u64 = 60_000;

/// How a link ended.
#[derive(Debug, Clone)]
enum Outcome {
    Linked { jid: String },
    Failed { message: String, next_allowed_ms: Option<u64> },
}

/// One link in progress (or just finished) for an account.
struct Login {
    qr: watch::Receiver<Option<String>>,
    done: watch::Receiver<Option<Outcome>>,
}

/// The links in progress of one gateway (in its [`AppState`]), by credentials directory.
#[derive(Default)]
pub struct WebLogins(Mutex<HashMap<PathBuf, Arc<Login>>>);

impl WebLogins {
    fn get(&self, dir: &std::path::Path) -> Option<Arc<Login>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).get(dir).cloned()
    }

    fn insert(&self, dir: PathBuf, l: Arc<Login>) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).insert(dir, l);
    }
}

fn bad(msg: impl Into<String>) -> ErrorShape {
    ErrorShape::new("INVALID_REQUEST", msg, None)
}

fn unavailable(msg: impl Into<String>, details: Value) -> ErrorShape {
    ErrorShape::new("UNAVAILABLE", msg, Some(details))
}

/// The QR payload as the `<img>` source upstream's UI shows.
pub fn qr_data_url(qr: &str) -> Option<String> {
    let svg = crate::channels::whatsapp::qr::render_svg(qr).ok()?;
    Some(format!("data:image/svg+xml;base64,{}", base64::engine::general_purpose::STANDARD.encode(svg)))
}

fn account_of(st: &AppState, p: &Value) -> Result<(String, Option<String>), ErrorShape> {
    if let Some(ch) = p.get("channel").and_then(Value::as_str)
        && ch != "whatsapp"
    {
        return Err(bad(format!("channel {ch:?} cannot be linked here (only whatsapp)")));
    }
    let wanted = p.get("accountId").and_then(Value::as_str);
    let accounts = &st.settings.whatsapp;
    let acc = match wanted {
        Some(id) => accounts.iter().find(|a| a.id == id),
        None => accounts.iter().find(|a| a.id == "default").or(accounts.first()),
    };
    match acc {
        Some(a) => Ok((a.id.clone(), a.auth_dir.clone())),
        None if accounts.is_empty() => Err(unavailable(
            "WhatsApp is not declared in the config, so the gateway would never run a linked number: add channels.whatsapp (NixOS: services.openclaw.settings.channels.whatsapp), then restart",
            json!({"code": "CHANNEL_NOT_CONFIGURED"}),
        )),
        None => Err(bad(format!("account {:?} is not in channels.whatsapp.accounts", wanted.unwrap_or_default()))),
    }
}

fn outcome_json(o: &Outcome) -> Value {
    match o {
        Outcome::Linked { jid } => {
            let number = jid.split([':', '@']).next().unwrap_or_default();
            json!({"connected": true, "message": format!("Linked as +{number}"), "jid": jid, "phone": format!("+{number}")})
        }
        Outcome::Failed { message, next_allowed_ms } => json!({
            "connected": false,
            "message": message,
            "nextAllowedAt": next_allowed_ms,
        }),
    }
}

fn scan_message() -> &'static str {
    "Scan this QR code with WhatsApp on the phone: Settings → Linked devices → Link a device."
}

/// Handles one of [`METHODS`] (the caller checked the session's scopes).
pub async fn handle(st: &AppState, method: &str, p: &Value) -> Result<Value, ErrorShape> {
    let timeout = Duration::from_millis(p.get("timeoutMs").and_then(Value::as_u64).unwrap_or(20_000).min(MAX_WAIT_MS));
    match method {
        "web.login.start" => start(st, p, timeout).await,
        "web.login.wait" => wait(st, p, timeout).await,
        _ => logout(st, p).await,
    }
}

async fn start(st: &AppState, p: &Value, timeout: Duration) -> Result<Value, ErrorShape> {
    let (account, auth_dir) = account_of(st, p)?;
    let store = creds_store(&st.settings.state, &account, auth_dir.as_deref()).map_err(|e| bad(&e))?;
    let force = p.get("force").and_then(Value::as_bool).unwrap_or(false);
    let key = store.dir().to_path_buf();
    let existing = st.web_logins.get(&key);
    let login = match existing {
        Some(l) if l.done.borrow().is_none() => l,
        _ => {
            let linked = tokio::task::spawn_blocking({
                let store = store.clone();
                move || store.load().ok().flatten().and_then(|c| c.me)
            })
            .await
            .ok()
            .flatten();
            if let (Some(me), false) = (&linked, force) {
                return Ok(outcome_json(&Outcome::Linked { jid: me.id.clone() }));
            }
            let cfg = ClientConfig::from_environment(store.clone()).map_err(|e| unavailable(e, json!({})))?;
            let guard = LinkGuard {
                files: AccountFiles::new(&st.settings.state, &account),
                limits: LinkLimits::default(),
                cooldown: Policy::default().auth_cooldown,
                wall: system_wall_clock(),
            };
            let l = Arc::new(spawn_link(cfg, guard));
            st.web_logins.insert(key, l.clone());
            tracing::info!(channel = "whatsapp", %account, "link started from the Control UI");
            l
        }
    };
    let mut qr = login.qr.clone();
    let mut done = login.done.clone();
    let _ = tokio::time::timeout(timeout, async {
        tokio::select! {
            // A closed QR channel (the link ended) disables this branch; `done` then answers.
            Ok(_) = qr.wait_for(Option::is_some) => {}
            _ = done.wait_for(Option::is_some) => {}
        }
    })
    .await;
    if let Some(o) = login.done.borrow().clone() {
        return Ok(outcome_json(&o));
    }
    match login.qr.borrow().clone() {
        Some(q) => Ok(json!({"connected": false, "qrDataUrl": qr_data_url(&q), "message": scan_message()})),
        None => Ok(json!({"connected": false, "message": "still waiting for WhatsApp to send a QR code; call web.login.start again"})),
    }
}

fn spawn_link(cfg: ClientConfig, guard: LinkGuard) -> Login {
    let (qr_tx, qr_rx) = watch::channel(None);
    let (done_tx, done_rx) = watch::channel(None);
    tokio::spawn(async move {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let forward = tokio::spawn(async move {
            while let Some(ev) = rx.recv().await {
                if let Event::Qr { qr, .. } = ev {
                    let _ = qr_tx.send(Some(qr));
                }
            }
        });
        let out = guarded_link(&cfg, &guard, &tx).await;
        drop(tx);
        let _ = forward.await;
        let outcome = match out {
            Ok(LinkOutcome::Linked { jid }) => Outcome::Linked { jid },
            Ok(LinkOutcome::Failed(reason)) if reason.is_logged_out() => {
                let until = guard.files.cooldown((guard.wall)()).map(|c| c.until_ms);
                Outcome::Failed {
                    message: format!(
                        "WhatsApp refused the link ({reason}); this usually means too many link attempts. No new attempt before {} so the number is not blocked longer.",
                        until.map(fmt_ms).unwrap_or_else(|| "the cooldown ends".into())
                    ),
                    next_allowed_ms: until,
                }
            }
            Ok(LinkOutcome::Failed(reason)) => Outcome::Failed { message: format!("the link failed: {reason}"), next_allowed_ms: None },
            Err(LinkError::Refused(r)) => Outcome::Failed {
                message: format!("{r}. Links are limited so WhatsApp does not block the number; the page counts down to the next allowed attempt."),
                next_allowed_ms: Some(r.next_allowed_ms()),
            },
            Err(LinkError::Busy(SessionLockError::Held { pid })) => Outcome::Failed {
                message: format!(
                    "another process{} uses this account's session (an `openclaw channels login` in a terminal?); finish or stop it first",
                    pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
                ),
                next_allowed_ms: None,
            },
            Err(e) => Outcome::Failed { message: e.to_string(), next_allowed_ms: None },
        };
        match &outcome {
            Outcome::Linked { jid } => tracing::info!(channel = "whatsapp", %jid, "linked from the Control UI"),
            Outcome::Failed { message, .. } => tracing::warn!(channel = "whatsapp", reason = %message, "link from the Control UI failed"),
        }
        let _ = done_tx.send(Some(outcome));
    });
    Login { qr: qr_rx, done: done_rx }
}

async fn wait(st: &AppState, p: &Value, timeout: Duration) -> Result<Value, ErrorShape> {
    let (account, auth_dir) = account_of(st, p)?;
    let store = creds_store(&st.settings.state, &account, auth_dir.as_deref()).map_err(|e| bad(&e))?;
    let login = st.web_logins.get(store.dir());
    let Some(login) = login else {
        return Err(bad("no link in progress for this account: call web.login.start first"));
    };
    let current = p.get("currentQrDataUrl").and_then(Value::as_str).map(str::to_string);
    let mut qr = login.qr.clone();
    let mut done = login.done.clone();
    let changed = |q: &Option<String>| q.as_deref().and_then(qr_data_url) != current;
    let _ = tokio::time::timeout(timeout, async {
        tokio::select! {
            Ok(_) = qr.wait_for(|q| q.is_some() && changed(q)) => {}
            _ = done.wait_for(Option::is_some) => {}
        }
    })
    .await;
    if let Some(o) = login.done.borrow().clone() {
        return Ok(outcome_json(&o));
    }
    let q = login.qr.borrow().clone();
    Ok(json!({
        "connected": false,
        "message": scan_message(),
        "qrDataUrl": q.as_deref().and_then(qr_data_url),
    }))
}

/// How long `channels.logout` waits for the account's supervisor (its live logout waits at
/// most [`crate::channels::whatsapp::supervisor::run::LOGOUT_ANSWER_TIMEOUT`] for WhatsApp).
const LOGOUT_TIMEOUT: Duration = Duration::from_secs(30);

async fn logout(st: &AppState, p: &Value) -> Result<Value, ErrorShape> {
    let (account, auth_dir) = account_of(st, p)?;
    let store = creds_store(&st.settings.state, &account, auth_dir.as_deref()).map_err(|e| bad(&e))?;
    let enabled = st.settings.whatsapp.iter().any(|a| a.id == account && a.enabled);
    // A running account is logged out by its supervisor, the owner of its session.
    if let Some(h) = st.whatsapp.get(&account).filter(|_| enabled) {
        let r = h.logout(LOGOUT_TIMEOUT).await.map_err(|e| unavailable(format!("logout failed: {e}"), json!({"code": "LOGOUT_FAILED"})))?;
        tracing::info!(channel = "whatsapp", %account, outcome = ?r, "logout requested over the control protocol");
        return Ok(supervised_logout_json(&r));
    }
    let _session = match SessionLock::try_acquire(store.dir()) {
        Ok(l) => l,
        Err(SessionLockError::Held { pid }) => {
            return Err(unavailable(
                format!(
                    "another process{} holds this account's session (a link in progress?); finish or stop it, then log out again",
                    pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
                ),
                json!({"code": "SESSION_IN_USE"}),
            ));
        }
        Err(e) => return Err(unavailable(e.to_string(), json!({}))),
    };
    let cfg = ClientConfig::from_environment(store).map_err(|e| unavailable(e, json!({})))?;
    let out = client::logout(&cfg).await.map_err(|e| unavailable(e.to_string(), json!({})))?;
    tracing::info!(channel = "whatsapp", %account, outcome = ?out, "logout from the Control UI");
    Ok(match out {
        LogoutOutcome::Unlinked => json!({"cleared": true, "message": "Unlinked; credentials removed."}),
        LogoutOutcome::NotLinked => json!({"cleared": false, "message": "Nothing to unlink: the account is not linked."}),
        LogoutOutcome::RemovedLocallyOnly(why) => json!({"cleared": true, "message": format!("Could not tell WhatsApp ({why}); local credentials removed. Remove the device on the phone too.")}),
    })
}

/// The answer to `channels.logout` after the supervisor logged the account out: upstream's
/// `cleared`, plus `loggedOut`, whether WhatsApp was told and where the old credentials went.
fn supervised_logout_json(r: &LogoutResult) -> Value {
    let kept = |b: &Option<PathBuf>| b.as_ref().map(|p| p.display().to_string());
    match r {
        LogoutResult::Unlinked { backup } => json!({
            "cleared": true, "loggedOut": true, "toldWhatsApp": true, "backup": kept(backup),
            "message": format!("Unlinked: WhatsApp removed this device; the old credentials were moved to {}. Link again to use WhatsApp here.", kept(backup).unwrap_or_else(|| "a backup folder".into())),
        }),
        LogoutResult::RemovedLocallyOnly { why, backup } => json!({
            "cleared": true, "loggedOut": true, "toldWhatsApp": false, "backup": kept(backup),
            "message": format!("Could not tell WhatsApp ({why}); the credentials were moved to {} all the same. Remove the device on the phone too: Settings → Linked devices.", kept(backup).unwrap_or_else(|| "a backup folder".into())),
        }),
        LogoutResult::NotLinked => json!({"cleared": false, "loggedOut": false, "message": "Nothing to unlink: the account is not linked."}),
    }
}
