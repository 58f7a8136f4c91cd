//! The WebSocket control protocol: challenge → connect (auth, device proof, pairing) → hello-ok →
//! request/response frames and events. Failures follow upstream (reference §3).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use serde_json::{json, Value};

use crate::agent::runs::{RunKind, RunRequest};
use crate::app::{DeliveryRequest, SendRequest};
use crate::gateway::devices::{scope_covered, DeviceInfo, DeviceStoreError, PairCheck, PendingRequest};
use crate::gateway::identity::{self, SignedFields};
use crate::gateway::protocol::{self, close, ConnectParams, ErrorShape, ReqFrame};
use crate::gateway::ratelimit::FailureVerdict;
use crate::gateway::settings::AuthMode;
use crate::gateway::state::{AppState, VERSION};
use crate::gateway::token::tokens_equal;
use crate::gateway::wsupgrade::{ControlSocket as WebSocket, ReadBudget};

/// Methods this gateway implements (advertised in `hello-ok.features.methods`).
pub const METHODS: &[&str] = &[
    "health",
    "status",
    "channels.status",
    "channels.groups",
    // The last routing decisions with their rule and fix (src/routing/decisions.rs).
    "channels.decisions",
    "send",
    "send.get",
    "agent",
    "agent.run.get",
    "runs.list",
    "wake",
    "logs.tail",
    "device.pair.list",
    "device.pair.approve",
    "device.pair.reject",
    "device.pair.remove",
    // Control UI linking (src/gateway/weblogin.rs).
    "web.login.start",
    "web.login.wait",
    "channels.logout",
];
/// Events this gateway emits.
pub const EVENTS: &[&str] = &["connect.challenge", "tick", "shutdown", "device.pair.requested", "device.pair.resolved"];

/// An authenticated connection.
#[derive(Debug, Clone)]
pub struct Session {
    /// Connection id.
    pub conn_id: u64,
    /// Role.
    pub role: String,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// Paired device, if one was presented.
    pub device_id: Option<String>,
    /// `client.id`.
    pub client_id: String,
}

/// A connect failure: the error for the `res` frame and how to close.
#[derive(Debug, Clone)]
pub struct ConnectFailure {
    /// The error.
    pub error: ErrorShape,
    /// Close code.
    pub close_code: u16,
    /// Close reason (≤ 123 bytes).
    pub close_reason: String,
}

fn fail(code: &str, message: &str, details: Value, close_code: u16) -> ConnectFailure {
    ConnectFailure { error: ErrorShape::new(code, message, Some(details)), close_code, close_reason: message.to_string() }
}

/// Replaces every quoted value in a decoder message with `"…"`: a misshapen `connect` may carry
/// the token where a number or object was expected, and the message is logged.
fn redact_quoted(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    let mut inside = false;
    for c in msg.chars() {
        if c == '"' {
            if inside {
                out.push_str("…\"");
            } else {
                out.push('"');
            }
            inside = !inside;
        } else if !inside {
            out.push(c);
        }
    }
    out
}

fn truncate_reason(s: &str) -> String {
    let mut end = s.len().min(123);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

/// Runs one WebSocket connection to completion. `budget` limits what the client may send before
/// `connect` succeeds; it is lifted after `hello-ok`.
pub async fn serve(mut ws: WebSocket, st: Arc<AppState>, peer: SocketAddr, budget: Arc<ReadBudget>) {
    let conn_id = st.next_conn_id();
    let nonce = uuid::Uuid::new_v4().to_string();
    let ts = (st.clock)();
    let challenge = protocol::event("connect.challenge", json!({"nonce": nonce, "ts": ts, "capabilities": []}));
    if ws.send(Message::Text(challenge.into())).await.is_err() {
        return;
    }
    let first = tokio::time::timeout(Duration::from_millis(st.handshake_timeout_ms), next_text(&mut ws)).await;
    let text = match first {
        Err(_) => {
            tracing::info!(conn = conn_id, peer = %peer, "handshake timeout");
            close_with(&mut ws, close::NORMAL, "handshake timeout").await;
            return;
        }
        Ok(None) => {
            if budget.exhausted() {
                tracing::info!(conn = conn_id, peer = %peer, "pre-connect size limit exceeded; closing");
                close_with(&mut ws, close::TOO_BIG, "message too big").await;
            }
            return;
        }
        Ok(Some(t)) => t,
    };
    let invalid_first = || fail("INVALID_REQUEST", "invalid handshake: first request must be connect", json!({}), close::POLICY);
    let frame: Option<ReqFrame> = if text.len() > protocol::MAX_PRECONNECT_BYTES { None } else { serde_json::from_str(&text).ok() };
    let (req_id, outcome) = match frame {
        Some(f) if f.kind == "req" && f.method == "connect" => {
            let outcome = match serde_json::from_value::<ConnectParams>(f.params.clone()) {
                Ok(p) => authenticate(&st, &p, &nonce, peer),
                Err(e) => Err(fail("INVALID_REQUEST", &format!("invalid connect params: {}", redact_quoted(&e.to_string())), json!({}), close::POLICY)),
            };
            (f.id, outcome.map(|s| (s, f.params)))
        }
        Some(f) => (f.id, Err(invalid_first())),
        None => (Value::Null, Err(invalid_first())),
    };
    let (session, hello) = match outcome {
        Ok(((session, device_token), params)) => {
            let hello = hello_ok(&st, &session, device_token.as_deref(), conn_id);
            tracing::info!(conn = conn_id, peer = %peer, client = %session.client_id, role = %session.role,
                device = session.device_id.as_deref().unwrap_or("-"), "control client connected");
            let _ = params;
            (session, hello)
        }
        Err(f) => {
            tracing::warn!(conn = conn_id, peer = %peer, code = %f.error.code, reason = %f.error.message, "connect refused");
            let _ = ws.send(Message::Text(protocol::res_err(&req_id, &f.error).into())).await;
            close_with(&mut ws, f.close_code, &f.close_reason).await;
            return;
        }
    };
    let session = Session { conn_id, ..session };
    budget.lift();
    if ws.send(Message::Text(protocol::res_ok(&req_id, hello).into())).await.is_err() {
        return;
    }
    let mut shutdown = st.shutdown.clone();
    let mut events = st.events.subscribe();
    let mut tick = tokio::time::interval(Duration::from_millis(protocol::TICK_INTERVAL_MS));
    tick.tick().await;
    // Web-login calls wait up to a minute for the phone: they run in their own tasks and
    // answer through here, so the connection keeps serving requests, events and ticks.
    let (late_tx, mut late_rx) = tokio::sync::mpsc::channel::<String>(MAX_WEB_LOGIN_IN_FLIGHT);
    let in_flight = Arc::new(tokio::sync::Semaphore::new(MAX_WEB_LOGIN_IN_FLIGHT));
    loop {
        tokio::select! {
            msg = ws.next() => {
                let Some(Ok(msg)) = msg else { break };
                let text = match msg {
                    Message::Text(t) => t.to_string(),
                    Message::Close(_) => break,
                    _ => continue,
                };
                let reply = match serde_json::from_str::<ReqFrame>(&text) {
                    Ok(f) if f.kind == "req" && f.method == "channels.status" && f.params["probe"] == true => {
                        match channels_status_probed(&st, &session).await {
                            Ok(v) => protocol::res_ok(&f.id, v),
                            Err(e) => protocol::res_err(&f.id, &e),
                        }
                    }
                    Ok(f) if f.kind == "req" && crate::gateway::weblogin::METHODS.contains(&f.method.as_str()) => {
                        let permit = in_flight.clone().try_acquire_owned();
                        match (need(&session, "operator.admin"), permit) {
                            (Err(e), _) => protocol::res_err(&f.id, &e),
                            (Ok(()), Err(_)) => protocol::res_err(&f.id, &ErrorShape::new(
                                "UNAVAILABLE",
                                format!("{MAX_WEB_LOGIN_IN_FLIGHT} web.login/channels.logout calls are already waiting on this connection"),
                                None,
                            )),
                            (Ok(()), Ok(permit)) => {
                                let (st, tx) = (st.clone(), late_tx.clone());
                                tokio::spawn(async move {
                                    let reply = match crate::gateway::weblogin::handle(&st, &f.method, &f.params).await {
                                        Ok(v) => protocol::res_ok(&f.id, v),
                                        Err(e) => protocol::res_err(&f.id, &e),
                                    };
                                    // The connection may be gone by now: nothing to answer then.
                                    let _ = tx.send(reply).await;
                                    drop(permit);
                                });
                                continue;
                            }
                        }
                    }
                    Ok(f) if f.kind == "req" && matches!(f.method.as_str(), "send" | "send.get" | "agent" | "channels.groups") => {
                        match dispatch_app(&st, &session, &f.method, &f.params).await {
                            Ok(v) => protocol::res_ok(&f.id, v),
                            Err(e) => protocol::res_err(&f.id, &e),
                        }
                    }
                    Ok(f) if f.kind == "req" => match dispatch(&st, &session, &f.method, &f.params) {
                        Ok(v) => protocol::res_ok(&f.id, v),
                        Err(e) => protocol::res_err(&f.id, &e),
                    },
                    Ok(f) => protocol::res_err(&f.id, &ErrorShape::new("INVALID_REQUEST", "expected a req frame", None)),
                    Err(e) => protocol::res_err(&Value::Null, &ErrorShape::new("INVALID_REQUEST", format!("invalid frame: {e}"), None)),
                };
                if ws.send(Message::Text(reply.into())).await.is_err() { break; }
            }
            Some(reply) = late_rx.recv() => {
                if ws.send(Message::Text(reply.into())).await.is_err() { break; }
            }
            ev = events.recv() => {
                match ev {
                    Ok((scope, frame)) if has_scope(&session, scope) => {
                        if ws.send(Message::Text(frame.into())).await.is_err() { break; }
                    }
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => {}
                }
            }
            _ = tick.tick() => {
                let ev = protocol::event("tick", json!({"ts": (st.clock)()}));
                if ws.send(Message::Text(ev.into())).await.is_err() { break; }
            }
            _ = shutdown.changed() => {
                let ev = protocol::event("shutdown", json!({"reason": "gateway stopping", "restartExpectedMs": Value::Null}));
                let _ = ws.send(Message::Text(ev.into())).await;
                close_with(&mut ws, close::RESTART, "gateway stopping").await;
                break;
            }
        }
    }
    tracing::debug!(conn = conn_id, "control client disconnected");
}

/// Web-login calls (`web.login.*`, `channels.logout`) one connection may have waiting at once.
const MAX_WEB_LOGIN_IN_FLIGHT: usize = 4;

async fn next_text(ws: &mut WebSocket) -> Option<String> {
    while let Some(Ok(m)) = ws.next().await {
        match m {
            Message::Text(t) => return Some(t.to_string()),
            Message::Binary(b) => return Some(String::from_utf8_lossy(&b).into_owned()),
            Message::Close(_) => return None,
            _ => {}
        }
    }
    None
}

async fn close_with(ws: &mut WebSocket, code: u16, reason: &str) {
    let _ = ws.send(Message::Close(Some(CloseFrame { code: code.into(), reason: truncate_reason(reason).into() }))).await;
}

fn rate_limited() -> ConnectFailure {
    fail(
        "INVALID_REQUEST",
        "unauthorized: too many failed authentication attempts (retry later)",
        json!({"code": "AUTH_RATE_LIMITED", "authReason": "rate_limited"}),
        close::POLICY,
    )
}

/// Decides a `connect`: returns the session and, when a device is paired, its device token.
pub fn authenticate(
    st: &AppState,
    p: &ConnectParams,
    nonce: &str,
    peer: SocketAddr,
) -> Result<(Session, Option<String>), ConnectFailure> {
    if !(p.min_protocol <= protocol::PROTOCOL_VERSION && protocol::PROTOCOL_VERSION <= p.max_protocol) {
        return Err(fail(
            "INVALID_REQUEST",
            "protocol mismatch",
            json!({"code": "PROTOCOL_MISMATCH", "expectedProtocol": protocol::PROTOCOL_VERSION}),
            close::PROTOCOL,
        ));
    }
    let role = p.role.clone().unwrap_or_else(|| "operator".into());
    let auth = p.auth.clone().unwrap_or_default();
    let shared = auth.token.as_deref().or(auth.password.as_deref()).filter(|t| !t.is_empty());
    let device_token = auth.device_token.as_deref().filter(|t| !t.is_empty());
    let now = (st.clock)();

    // Throttled addresses are refused before any credential is compared (the right one too).
    if st.ws_limiter.throttled(peer.ip(), Instant::now()).is_some() {
        return Err(rate_limited());
    }
    let shared_ok = match (st.settings.auth_mode, &st.token, shared) {
        (AuthMode::None, _, _) => true,
        (AuthMode::Token, Some(expected), Some(given)) => tokens_equal(expected.expose(), given),
        _ => false,
    };
    let device_token_ok = match (&p.device, device_token) {
        (Some(d), Some(t)) => st.devices().verify_token(&d.id, t),
        _ => false,
    };
    if !shared_ok && !device_token_ok {
        let throttled = matches!(st.ws_limiter.failure(peer.ip(), Instant::now()), FailureVerdict::Throttled { .. });
        if throttled {
            return Err(rate_limited());
        }
        if shared.is_some() {
            return Err(fail(
                "INVALID_REQUEST",
                "unauthorized: gateway token mismatch (use this gateway's gateway.auth.token or pair the device)",
                json!({"code": "AUTH_TOKEN_MISMATCH", "authReason": "token_mismatch", "canRetryWithDeviceToken": false,
                       "recommendedNextStep": "update_auth_credentials"}),
                close::POLICY,
            ));
        }
        if device_token.is_some() {
            return Err(fail(
                "INVALID_REQUEST",
                "unauthorized: device token mismatch (rotate/reissue device token)",
                json!({"code": "AUTH_DEVICE_TOKEN_MISMATCH", "authReason": "device_token_mismatch"}),
                close::POLICY,
            ));
        }
        if p.device.is_none() {
            return Err(fail("NOT_PAIRED", "device identity required", json!({"code": "DEVICE_IDENTITY_REQUIRED"}), close::POLICY));
        }
        return Err(fail(
            "INVALID_REQUEST",
            "unauthorized: gateway token missing (set gateway.auth.token on the client or pair the device)",
            json!({"code": "AUTH_TOKEN_MISSING", "authReason": "token_missing"}),
            close::POLICY,
        ));
    }

    let Some(dev) = &p.device else {
        // Shared token without a device identity: trusted as the token holder (upstream grants admin).
        let scopes = if p.scopes.is_empty() { vec!["operator.admin".to_string()] } else { p.scopes.clone() };
        return Ok((Session { conn_id: 0, role, scopes, device_id: None, client_id: p.client.id.clone() }, None));
    };

    // Device proof: the client signs with the token it sent (shared or device token), or none.
    let family = p.client.device_family.clone().unwrap_or_default();
    let candidates: Vec<&str> = [shared, device_token, Some("")].into_iter().flatten().collect();
    let mut last_err = identity::IdentityError::Signature;
    let mut verified = false;
    for tok in candidates {
        let fields = SignedFields {
            device_id: &dev.id,
            client_id: &p.client.id,
            client_mode: &p.client.mode,
            role: &role,
            scopes: &p.scopes,
            signed_at_ms: dev.signed_at,
            token: tok,
            nonce: &dev.nonce,
            platform: &p.client.platform,
            device_family: &family,
        };
        match identity::verify(&dev.public_key, &dev.signature, nonce, &fields) {
            Ok(()) => {
                verified = true;
                break;
            }
            Err(e) => last_err = e,
        }
    }
    if !verified {
        let (msg, code) = match last_err {
            identity::IdentityError::IdMismatch => ("device identity mismatch", "DEVICE_AUTH_DEVICE_ID_MISMATCH"),
            identity::IdentityError::Nonce => ("device nonce mismatch", "DEVICE_AUTH_NONCE_MISMATCH"),
            identity::IdentityError::PublicKey => ("device public key invalid", "DEVICE_AUTH_PUBLIC_KEY_INVALID"),
            identity::IdentityError::Signature => ("device signature invalid", "DEVICE_AUTH_SIGNATURE_INVALID"),
        };
        return Err(fail("INVALID_REQUEST", msg, json!({"code": code}), close::POLICY));
    }

    let info = DeviceInfo {
        device_id: dev.id.to_ascii_lowercase(),
        public_key: dev.public_key.clone(),
        platform: p.client.platform.clone(),
        device_family: family.clone(),
        client_id: p.client.id.clone(),
        client_mode: p.client.mode.clone(),
        display_name: p.client.display_name.clone(),
    };
    let mut store = st.devices();
    let store_err = |e: crate::gateway::devices::DeviceStoreError| {
        tracing::error!(error = %e, "device store write failed");
        fail("UNAVAILABLE", "device store unavailable", json!({"code": "DEVICE_STORE_UNAVAILABLE"}), close::POLICY)
    };
    match store.check(&info.device_id, &role, &p.scopes) {
        PairCheck::Paired => {}
        PairCheck::NotPaired if st.settings.auto_approve_local && peer.ip().is_loopback() => {
            store.pair(info.clone(), &role, &p.scopes, "auto-local", now).map_err(store_err)?;
            tracing::info!(device = %info.device_id, role = %role, "device pairing auto-approved (local)");
        }
        check => {
            let reason = match check {
                PairCheck::Upgrade(r) => r,
                _ => "not-paired",
            };
            let req = store
                .request(info.clone(), &role, &p.scopes, reason, Some(peer.ip().to_string()), now)
                .map_err(store_err)?;
            tracing::info!(device = %info.device_id, requestId = %req.request_id, reason, "device pairing requested");
            st.emit("operator.pairing", "device.pair.requested", json!({
                "requestId": req.request_id, "deviceId": info.device_id, "clientId": info.client_id,
                "platform": info.platform, "role": role, "scopes": p.scopes, "reason": reason,
                "remoteAddr": req.remote_addr, "expiresAtMs": req.expires_at_ms,
            }));
            let message = match reason {
                "role-upgrade" => "pairing required: role upgrade needs approval",
                "scope-upgrade" => "pairing required: scope upgrade needs approval",
                _ => "pairing required: device is not approved yet",
            };
            return Err(ConnectFailure {
                error: ErrorShape::new(
                    "NOT_PAIRED",
                    message,
                    Some(json!({
                        "code": "PAIRING_REQUIRED",
                        "reason": reason,
                        "requestId": req.request_id,
                        "remediationHint": "Approve this device from the pending pairing requests.",
                        "deviceId": info.device_id,
                        "requestedRole": role,
                        "requestedScopes": p.scopes,
                    })),
                ),
                close_code: close::POLICY,
                close_reason: format!("{message} (requestId: {})", req.request_id),
            });
        }
    }
    let token = match device_token.filter(|_| device_token_ok) {
        Some(t) => t.to_string(),
        None => store.issue_token(&info.device_id, now).map_err(store_err)?,
    };
    let scopes = if p.scopes.is_empty() {
        store.paired().iter().find(|d| d.info.device_id == info.device_id).map(|d| d.scopes.clone()).unwrap_or_default()
    } else {
        p.scopes.clone()
    };
    Ok((Session { conn_id: 0, role, scopes, device_id: Some(info.device_id), client_id: p.client.id.clone() }, Some(token)))
}

fn hello_ok(st: &AppState, s: &Session, device_token: Option<&str>, conn_id: u64) -> Value {
    let mut auth = json!({
        "method": if s.device_id.is_some() { "device" } else { "token" },
        "role": s.role,
        "scopes": s.scopes,
    });
    if let Some(t) = device_token {
        auth["deviceToken"] = json!(t);
        auth["issuedAtMs"] = json!((st.clock)());
    }
    json!({
        "type": "hello-ok",
        "protocol": protocol::PROTOCOL_VERSION,
        "server": {"version": VERSION, "buildId": format!("openclaw-rs-{VERSION}"), "bootId": st.boot_id, "connId": conn_id.to_string()},
        "features": {"methods": METHODS, "events": EVENTS, "capabilities": []},
        "snapshot": {
            "health": crate::gateway::health::health_rpc(st),
            "uptimeMs": st.uptime_ms(),
            "stateVersion": 0,
            "stateDir": st.settings.state.root(),
            "configPath": st.settings.config_paths.last(),
            "authMode": match st.settings.auth_mode { AuthMode::Token => "token", AuthMode::None => "none" },
            "presence": [],
        },
        "auth": auth,
        "policy": {
            "maxPayload": protocol::MAX_PAYLOAD_BYTES,
            "maxBufferedBytes": 2 * protocol::MAX_PAYLOAD_BYTES,
            "tickIntervalMs": protocol::TICK_INTERVAL_MS,
        },
    })
}

fn has_scope(s: &Session, needed: &str) -> bool {
    scope_covered(&s.scopes, needed) || (needed == "operator.read" && scope_covered(&s.scopes, "operator.write"))
}

fn need(s: &Session, scope: &str) -> Result<(), ErrorShape> {
    if has_scope(s, scope) {
        Ok(())
    } else {
        Err(ErrorShape::new("FORBIDDEN", format!("missing scope: {scope}"), Some(json!({"code": "MISSING_SCOPE", "scope": scope}))))
    }
}

/// Whether `s` may approve `req`: never its own device's request, and never a role or scope
/// the approver does not hold itself (`operator.admin` holds every one). Otherwise a device with
/// only `operator.pairing` could approve its own (or a second key's) request for `operator.admin`.
fn may_approve(s: &Session, req: &PendingRequest) -> Result<(), ErrorShape> {
    let forbidden = |msg: String, code: &str| ErrorShape::new("FORBIDDEN", msg, Some(json!({"code": code, "requestId": req.request_id})));
    if s.device_id.as_deref().is_some_and(|d| d.eq_ignore_ascii_case(&req.info.device_id)) {
        return Err(forbidden("a device cannot approve its own pairing request".into(), "SELF_APPROVAL"));
    }
    if has_scope(s, "operator.admin") {
        return Ok(());
    }
    if req.role != "operator" {
        return Err(forbidden(format!("approving role {} needs operator.admin", req.role), "ROLE_NOT_HELD"));
    }
    if let Some(missing) = req.scopes.iter().find(|sc| !has_scope(s, sc)) {
        return Err(forbidden(format!("cannot grant scope {missing}: the approver does not hold it"), "SCOPE_NOT_HELD"));
    }
    Ok(())
}

fn bad(msg: impl Into<String>) -> ErrorShape {
    ErrorShape::new("INVALID_REQUEST", msg, None)
}

fn str_param<'a>(p: &'a Value, k: &str) -> Option<&'a str> {
    p.get(k).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty())
}

/// Status document (`status` method; also what `openclaw status` prints). Tokens as fingerprints.
pub fn status(st: &AppState) -> Value {
    let now = (st.clock)();
    let devices = st.devices();
    json!({
        "version": VERSION,
        "pid": std::process::id(),
        "uptimeMs": st.uptime_ms(),
        "bootId": st.boot_id,
        "listen": st.local_addr.to_string(),
        "stateDir": st.settings.state.root(),
        "configPaths": st.settings.config_paths,
        "auth": {
            "mode": match st.settings.auth_mode { AuthMode::Token => "token", AuthMode::None => "none" },
            "tokenFingerprint": st.token.as_ref().map(|t| t.fingerprint()),
        },
        "hooks": {
            "enabled": st.settings.hooks.enabled,
            "path": st.settings.hooks.path,
            "tokenFingerprint": st.hooks_token.as_ref().map(|t| t.fingerprint()),
        },
        "runs": st.runs.counters(),
        "devices": {"paired": devices.paired().len(), "pending": devices.pending(now).len()},
        "channels": st.channels.snapshot(),
        // Upstream-shaped fields its `openclaw status` reads (no sessions exist yet).
        "sessions": {"count": 0, "byAgent": [], "recent": []},
        "channelSummary": [],
    })
}

/// How long `channels.status {probe: true}` waits for each account's ping.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// `channels.status` with `probe: true`: every connected account pings the server over its live
/// session; each entry gets `probe: {ok, rttMs}` or `probe: {ok: false, error}`.
async fn channels_status_probed(st: &AppState, s: &Session) -> Result<Value, ErrorShape> {
    need(s, "operator.read")?;
    let mut list = Vec::new();
    for c in st.channels.snapshot() {
        let probe = match (c.id.as_str(), st.whatsapp.get(&c.account)) {
            ("whatsapp", Some(h)) => match h.probe(PROBE_TIMEOUT).await {
                Ok(rtt) => json!({"ok": true, "rttMs": rtt.as_millis() as u64}),
                Err(e) => json!({"ok": false, "error": e}),
            },
            _ => json!({"ok": false, "error": "this channel cannot be probed"}),
        };
        let mut v = serde_json::to_value(st.channels.get(&c.id, &c.account).unwrap_or(c)).unwrap_or(Value::Null);
        v["probe"] = probe;
        list.push(v);
    }
    Ok(json!({"channels": list, "probed": true}))
}

fn send_error(e: &crate::app::SendOpError) -> ErrorShape {
    let code = if e.http_status() == 400 { "INVALID_REQUEST" } else { "UNAVAILABLE" };
    ErrorShape {
        code: code.into(),
        message: e.to_string(),
        details: Some(json!({"code": e.code()})),
        retryable: Some(false),
    }
}

/// The channel a request names, else the only configured one.
fn channel_or_only(st: &AppState, p: &Value) -> Option<String> {
    str_param(p, "channel").map(str::to_string).or_else(|| match st.app.config().channels().as_slice() {
        [only] => Some(only.to_string()),
        _ => None,
    })
}

/// The methods served by the operations layer ([`crate::app`]): `send`, `send.get`, `agent`,
/// `channels.groups`.
pub async fn dispatch_app(st: &AppState, s: &Session, method: &str, p: &Value) -> Result<Value, ErrorShape> {
    match method {
        "send" => {
            need(s, "operator.write")?;
            let req = SendRequest {
                channel: channel_or_only(st, p).unwrap_or_default(),
                account_id: str_param(p, "accountId").map(str::to_string),
                to: str_param(p, "to").unwrap_or("").to_string(),
                message: str_param(p, "message").unwrap_or("").to_string(),
                idempotency_key: str_param(p, "idempotencyKey").map(str::to_string),
            };
            st.app.send_text(&req).await.map(|a| json!(a)).map_err(|e| send_error(&e))
        }
        "channels.groups" => {
            need(s, "operator.read")?;
            let channel = channel_or_only(st, p).unwrap_or_default();
            st.app.list_groups(&channel, str_param(p, "accountId")).await.map(|g| json!(g)).map_err(|e| send_error(&e))
        }
        "send.get" => {
            need(s, "operator.read")?;
            let id = str_param(p, "messageId").ok_or_else(|| bad("messageId required"))?;
            match st.app.send_outcome(id).await.map_err(|e| send_error(&e))? {
                Some(r) => Ok(json!({"messageId": id, "state": r.state.as_str(), "message": r})),
                None => Err(bad(format!("unknown messageId: {id}"))),
            }
        }
        _ => {
            need(s, "operator.write")?;
            let message = str_param(p, "message").ok_or_else(|| bad("message required"))?;
            let session_key = str_param(p, "sessionKey").map(Into::into);
            let dreq = DeliveryRequest {
                deliver: p.get("deliver").and_then(Value::as_bool) == Some(true),
                channel: if str_param(p, "to").is_some() { channel_or_only(st, p) } else { str_param(p, "channel").map(Into::into) },
                to: str_param(p, "to").map(Into::into),
                account_id: str_param(p, "accountId").map(Into::into),
                session_key: session_key.clone(),
            };
            let delivery = st.app.resolve_delivery(&dreq).await.map_err(|e| ErrorShape {
                code: if e.http_status() == 400 { "INVALID_REQUEST".into() } else { "UNAVAILABLE".into() },
                message: e.to_string(),
                details: Some(json!({"hint": crate::app::delivery::HINT})),
                retryable: Some(false),
            })?;
            let req = RunRequest {
                kind: RunKind::Agent,
                message: message.into(),
                agent_id: str_param(p, "agentId").map(Into::into),
                session_key,
                delivery,
                origin: "ws",
            };
            let sub = st.runs.submit_async(req, str_param(p, "idempotencyKey")).await.map_err(|e| submit_error(&e))?;
            Ok(json!({"runId": sub.run_id, "status": "accepted"}))
        }
    }
}

/// Runs one method for an authenticated session.
pub fn dispatch(st: &AppState, s: &Session, method: &str, p: &Value) -> Result<Value, ErrorShape> {
    match method {
        "health" => {
            need(s, "operator.read")?;
            Ok(crate::gateway::health::health_rpc(st))
        }
        "status" => {
            need(s, "operator.read")?;
            Ok(status(st))
        }
        "channels.status" => {
            need(s, "operator.read")?;
            Ok(json!({"channels": st.channels.snapshot()}))
        }
        "channels.decisions" => {
            need(s, "operator.read")?;
            let kind = match str_param(p, "kind") {
                None => None,
                Some("group") => Some(crate::routing::ChatKind::Group),
                Some("direct") => Some(crate::routing::ChatKind::Direct),
                Some(_) => return Err(bad("kind must be \"group\" or \"direct\"")),
            };
            let filter = crate::routing::decisions::DecisionFilter {
                channel: str_param(p, "channel"),
                account: str_param(p, "accountId"),
                kind,
                dropped_only: p.get("droppedOnly").and_then(Value::as_bool) == Some(true),
            };
            let limit = p.get("limit").and_then(Value::as_u64).unwrap_or(20).min(1000) as usize;
            Ok(json!({"decisions": st.app.recent_decisions(&filter, limit)}))
        }
        "logs.tail" => {
            need(s, "operator.read")?;
            let limit = p.get("limit").and_then(Value::as_u64).unwrap_or(200).min(2000) as usize;
            let cursor = p.get("cursor").and_then(Value::as_u64);
            let (lines, cursor) = st.logs.tail(limit, cursor);
            Ok(json!({"lines": lines, "cursor": cursor}))
        }
        "agent.run.get" => {
            need(s, "operator.read")?;
            let id = str_param(p, "runId").ok_or_else(|| bad("runId required"))?;
            st.runs.get(id).map(|r| json!(r)).ok_or_else(|| bad(format!("unknown runId: {id}")))
        }
        "runs.list" => {
            need(s, "operator.read")?;
            let limit = p.get("limit").and_then(Value::as_u64).unwrap_or(50).min(500) as usize;
            Ok(json!({"runs": st.runs.list(limit, str_param(p, "origin"))}))
        }
        "wake" => {
            need(s, "operator.write")?;
            let text = str_param(p, "text").ok_or_else(|| bad("text required"))?;
            // The same modes as the hook (`POST {hooks.path}/wake`).
            let mode = match str_param(p, "mode").unwrap_or("now") {
                m @ ("now" | "next-heartbeat") => m,
                _ => return Err(bad("mode must be \"now\" or \"next-heartbeat\"")),
            };
            let req = RunRequest { kind: RunKind::Wake, message: text.into(), agent_id: None, session_key: None, delivery: None, origin: "ws" };
            let sub = st.runs.submit(req, None).map_err(|e| submit_error(&e))?;
            Ok(json!({"ok": true, "mode": mode, "eventOutcome": "queued", "runId": sub.run_id}))
        }
        "device.pair.list" => {
            need(s, "operator.pairing").or_else(|_| need(s, "operator.read"))?;
            let now = (st.clock)();
            let mut store = st.devices();
            if let Err(e) = store.expire(now) {
                tracing::warn!(error = %e, "could not drop expired device pairing requests from disk");
            }
            let paired: Vec<Value> = store
                .paired()
                .iter()
                .map(|d| {
                    let mut v = json!(d);
                    if let Some(obj) = v.as_object_mut() {
                        obj.remove("tokenSha256");
                        obj.insert("role".into(), json!(d.roles.first()));
                    }
                    v
                })
                .collect();
            Ok(json!({"pending": store.pending(now), "paired": paired}))
        }
        "device.pair.approve" | "device.pair.reject" => {
            need(s, "operator.pairing")?;
            let id = str_param(p, "requestId").ok_or_else(|| bad("requestId required"))?;
            let now = (st.clock)();
            let mut store = st.devices();
            if method == "device.pair.approve" {
                let req = store.pending_request(id, now).ok_or_else(|| bad(DeviceStoreError::UnknownRequest(id.into()).to_string()))?;
                may_approve(s, req)?;
                let d = store.approve(id, "control", now).map_err(|e| bad(e.to_string()))?;
                tracing::info!(device = %d.info.device_id, requestId = %id, "device pairing approved");
                st.emit("operator.pairing", "device.pair.resolved", json!({"requestId": id, "deviceId": d.info.device_id, "decision": "approved"}));
                Ok(json!({"requestId": id, "device": {"deviceId": d.info.device_id, "roles": d.roles, "scopes": d.scopes}}))
            } else {
                let r = store.reject(id, now).map_err(|e| bad(e.to_string()))?;
                tracing::info!(device = %r.info.device_id, requestId = %id, "device pairing rejected");
                st.emit("operator.pairing", "device.pair.resolved", json!({"requestId": id, "deviceId": r.info.device_id, "decision": "rejected"}));
                Ok(json!({"requestId": id, "deviceId": r.info.device_id}))
            }
        }
        "device.pair.remove" => {
            need(s, "operator.pairing")?;
            let id = str_param(p, "deviceId").ok_or_else(|| bad("deviceId required"))?;
            let d = st.devices().revoke(id).map_err(|e| bad(e.to_string()))?;
            tracing::info!(device = %d.info.device_id, "device pairing revoked");
            Ok(json!({"deviceId": d.info.device_id, "removed": true}))
        }
        other => Err(bad(format!("unknown method: {other}"))),
    }
}
/// A refused run submission: bad input is the caller's (`INVALID_REQUEST`, like the hooks' 400),
/// anything else is the gateway's (`UNAVAILABLE`).
fn submit_error(e: &crate::agent::runs::SubmitError) -> ErrorShape {
    let code = if matches!(e, crate::agent::runs::SubmitError::Invalid(_)) { "INVALID_REQUEST" } else { "UNAVAILABLE" };
    ErrorShape::new(code, e.to_string(), None)
}

