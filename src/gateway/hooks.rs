//! The hooks HTTP surface, upstream-compatible (`POST {hooks.path}/agent`, `/wake`), plus
//! `GET {hooks.path}/runs/{runId}`, and beyond upstream `POST {hooks.path}/send` (a message
//! without any LLM) with `GET {hooks.path}/send/{messageId}`. The work is done by
//! [`crate::app`]; this file maps HTTP to it. Order of checks: method → query token → throttle → auth →
//! route → body size → JSON → payload. Status codes and bodies follow upstream (reference §2.2).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use crate::agent::runs::{RunKind, RunRequest, SubmitError};
use crate::app::{DeliveryRequest, SendRequest};
use crate::gateway::ratelimit::FailureVerdict;
use crate::gateway::state::AppState;
use crate::gateway::token::tokens_equal;

/// Upstream's answer to a token in the query string (`src/gateway/server/hooks-request-handler.ts`).
pub const QUERY_TOKEN_MESSAGE: &str = "Hook token must be provided via Authorization: Bearer <token> or X-OpenClaw-Token header (query parameters are not allowed).";
/// Upstream's body-read timeout.
const BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// Once the drain starts, a body still being read gets this long to arrive before 503, so a
/// request in flight completes but a stalled body never holds up the exit.
pub const BODY_DRAIN_GRACE: Duration = Duration::from_secs(1);

fn text(status: StatusCode, body: &'static str) -> Response {
    (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response()
}

fn json_resp(status: StatusCode, v: Value) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json; charset=utf-8")], v.to_string()).into_response()
}

fn json_err(status: StatusCode, msg: impl Into<String>) -> Response {
    json_resp(status, json!({"ok": false, "error": msg.into()}))
}

fn too_many(retry_after_secs: u64) -> Response {
    let mut r = text(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests");
    if let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string()) {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

fn method_not_allowed(allow: &'static str) -> Response {
    let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed");
    r.headers_mut().insert(header::ALLOW, HeaderValue::from_static(allow));
    r
}

/// The presented token: `Authorization: Bearer …` or `X-OpenClaw-Token`.
fn presented_token(headers: &HeaderMap) -> Option<&str> {
    if let Some(v) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let v = v.trim();
        if v.len() > 7 && v[..7].eq_ignore_ascii_case("bearer ") {
            return Some(v[7..].trim());
        }
    }
    headers.get("x-openclaw-token").and_then(|v| v.to_str().ok()).map(str::trim)
}

/// Percent-decodes a query key (`%74oken` is `token`); invalid escapes stay as they are.
fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (b[i], b.get(i + 1).copied().and_then(hex), b.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b'+', _, _) => {
                out.push(b' ');
                i += 1;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// True when the query names a token parameter, after percent-decoding the key (as upstream's
/// `URLSearchParams` does).
fn query_has_token(query: Option<&str>) -> bool {
    query.is_some_and(|q| q.split('&').any(|kv| {
        let k = percent_decode(kv.split('=').next().unwrap_or(""));
        let k = String::from_utf8_lossy(&k);
        let k = k.trim();
        k.eq_ignore_ascii_case("token") || k.eq_ignore_ascii_case("hooktoken")
    }))
}

enum Route<'a> {
    Agent,
    Wake,
    Send,
    Run(&'a str),
    SendStatus(&'a str),
    Unknown,
}

/// Handles every request under `hooks.path`.
pub async fn handle(
    State(st): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    let base = st.settings.hooks.path.as_str();
    let path = req.uri().path().to_string();
    let sub = path.strip_prefix(base).unwrap_or("");
    let route = match sub {
        "/agent" => Route::Agent,
        "/wake" => Route::Wake,
        "/send" => Route::Send,
        s if s.starts_with("/runs/") && s.len() > 6 && !s[6..].contains('/') => Route::Run(&s[6..]),
        s if s.starts_with("/send/") && s.len() > 6 && !s[6..].contains('/') => Route::SendStatus(&s[6..]),
        _ => Route::Unknown,
    };
    let method = req.method().clone();
    match route {
        Route::Run(_) | Route::SendStatus(_) if method != Method::GET => return method_not_allowed("GET"),
        Route::Agent | Route::Wake | Route::Send | Route::Unknown if method != Method::POST => return method_not_allowed("POST"),
        _ => {}
    }
    if query_has_token(req.uri().query()) {
        return text(StatusCode::BAD_REQUEST, QUERY_TOKEN_MESSAGE);
    }
    if let Some(retry_after_secs) = st.hooks_limiter.throttled(peer.ip(), Instant::now()) {
        return too_many(retry_after_secs);
    }
    let ok = match (&st.hooks_token, presented_token(req.headers())) {
        (Some(expected), Some(given)) => tokens_equal(expected.expose(), given),
        _ => false,
    };
    if !ok {
        return match st.hooks_limiter.failure(peer.ip(), Instant::now()) {
            FailureVerdict::Unauthorized => {
                tracing::warn!(peer = %peer.ip(), path = %path, "hook rejected: bad or missing token");
                text(StatusCode::UNAUTHORIZED, "Unauthorized")
            }
            FailureVerdict::Throttled { retry_after_secs } => too_many(retry_after_secs),
        };
    }
    match route {
        Route::Run(id) => {
            return match st.runs.get_async(id).await {
                Ok(Some(r)) => json_resp(StatusCode::OK, json!({"ok": true, "run": r})),
                Ok(None) => json_err(StatusCode::NOT_FOUND, "unknown runId (never accepted, or no longer retained)"),
                Err(e) => json_err(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
            };
        }
        Route::SendStatus(id) => {
            return match st.app.send_outcome(id).await {
                Ok(Some(r)) => json_resp(StatusCode::OK, json!({"ok": true, "messageId": id, "state": r.state.as_str(), "message": r})),
                Ok(None) => json_err(StatusCode::NOT_FOUND, "unknown message id (never accepted, or no longer retained)"),
                Err(e) => json_err(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
            };
        }
        Route::Unknown => return text(StatusCode::NOT_FOUND, "Not Found"),
        _ => {}
    }
    let (parts, body) = req.into_parts();
    let body = match read_body(body, &parts.headers, st.settings.hooks.max_body_bytes, st.shutdown.clone()).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let payload: Value = match serde_json::from_slice(&body) {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) => return json_err(StatusCode::BAD_REQUEST, "body must be a JSON object"),
        Err(e) => return json_err(StatusCode::BAD_REQUEST, format!("invalid JSON: {e}")),
    };
    match route {
        Route::Agent => agent(&st, &parts.headers, &payload).await,
        Route::Send => send(&st, &parts.headers, &payload).await,
        _ => wake(&st, &parts.headers, &payload).await,
    }
}

/// Reads the body within `limit` bytes and [`BODY_TIMEOUT`]; once a drain starts, the read
/// gets [`BODY_DRAIN_GRACE`] more before 503, so a stalled body never holds up the SIGTERM drain.
async fn read_body(
    body: Body,
    headers: &HeaderMap,
    limit: usize,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> Result<axum::body::Bytes, Response> {
    let too_large = || json_err(StatusCode::PAYLOAD_TOO_LARGE, "payload too large");
    if let Some(len) = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok())
        && len > limit {
            return Err(too_large());
        }
    let draining = async move {
        let _ = shutdown.wait_for(|s| *s).await;
        tokio::time::sleep(BODY_DRAIN_GRACE).await;
    };
    let read = tokio::time::timeout(BODY_TIMEOUT, axum::body::to_bytes(body, limit));
    let result = tokio::select! {
        r = read => r,
        _ = draining => return Err(json_err(StatusCode::SERVICE_UNAVAILABLE, "the gateway is shutting down")),
    };
    match result {
        Ok(Ok(b)) => Ok(b),
        Ok(Err(_)) => Err(too_large()),
        Err(_) => Err(json_err(StatusCode::REQUEST_TIMEOUT, "request body timeout")),
    }
}

fn str_field<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.get(k).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty())
}

fn idempotency_key<'a>(headers: &'a HeaderMap, payload: &'a Value) -> Option<&'a str> {
    headers
        .get("idempotency-key")
        .or_else(|| headers.get("x-openclaw-idempotency-key"))
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .or_else(|| str_field(payload, "idempotencyKey"))
}

async fn submit(st: &AppState, req: RunRequest, key: Option<&str>) -> Result<String, Response> {
    match st.runs.submit_async(req, key).await {
        Ok(s) => Ok(s.run_id),
        Err(SubmitError::Busy) => Err(json_err(StatusCode::SERVICE_UNAVAILABLE, "run queue is full; retry shortly")),
        Err(SubmitError::Closed) => Err(json_err(StatusCode::SERVICE_UNAVAILABLE, "the gateway is shutting down")),
        Err(e @ SubmitError::Invalid(_)) => Err(json_err(StatusCode::BAD_REQUEST, e.to_string())),
        Err(e @ SubmitError::Store(_)) => Err(json_err(StatusCode::SERVICE_UNAVAILABLE, e.to_string())),
    }
}

fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// `POST {hooks.path}/send {channel, to, message, account?}`: 202 with the message id once it
/// is in the outbox; 4xx with the reason when it cannot be delivered.
async fn send(st: &AppState, headers: &HeaderMap, p: &Value) -> Response {
    let req = SendRequest {
        channel: str_field(p, "channel").unwrap_or("").to_string(),
        account_id: str_field(p, "account").or_else(|| str_field(p, "accountId")).map(str::to_string),
        to: str_field(p, "to").unwrap_or("").to_string(),
        message: str_field(p, "message").unwrap_or("").to_string(),
        idempotency_key: idempotency_key(headers, p).map(str::to_string),
    };
    match st.app.send_text(&req).await {
        Ok(a) => {
            let mut v = json!({"ok": true});
            if let (Some(o), Value::Object(m)) = (v.as_object_mut(), json!(a)) {
                o.extend(m);
            }
            json_resp(StatusCode::ACCEPTED, v)
        }
        Err(e) => json_resp(status(e.http_status()), json!({"ok": false, "error": e.to_string(), "code": e.code()})),
    }
}

/// Why a `/hooks/agent` body that sets `sessionKey` is refused.
pub const SESSION_KEY_REFUSED: &str = "choosing the session from a hook request needs hooks.allowRequestSessionKey, \
     which this gateway does not support yet; remove sessionKey to use the default session (hooks.defaultSessionKey)";

async fn agent(st: &AppState, headers: &HeaderMap, p: &Value) -> Response {
    let Some(message) = str_field(p, "message") else {
        return json_err(StatusCode::BAD_REQUEST, "message required");
    };
    let agent_id = str_field(p, "agentId").map(str::to_string);
    if let (Some(id), Some(allowed)) = (&agent_id, &st.settings.hooks.allowed_agent_ids)
        && !allowed.iter().any(|a| a == "*" || a == id) {
            return json_err(StatusCode::BAD_REQUEST, format!("agentId {id:?} is not in hooks.allowedAgentIds"));
        }
    // Upstream lets a hook body pick its session only under `hooks.allowRequestSessionKey`
    // (default false), which this gateway does not support yet: refuse rather than honour it.
    if p.get("sessionKey").is_some_and(|v| !v.is_null()) {
        return json_err(StatusCode::BAD_REQUEST, SESSION_KEY_REFUSED);
    }
    let session_key = st.settings.hooks.default_session_key.clone();
    // Upstream: anything but `deliver: false` delivers. The target is resolved before answering.
    let dreq = DeliveryRequest {
        deliver: p.get("deliver") != Some(&Value::Bool(false)),
        channel: str_field(p, "channel").map(str::to_string),
        to: str_field(p, "to").map(str::to_string),
        account_id: str_field(p, "accountId").map(str::to_string),
        session_key: session_key.clone(),
    };
    let delivery = match st.app.resolve_delivery(&dreq).await {
        Ok(d) => d,
        Err(e) => {
            tracing::info!(error = %e, "hook agent refused: no deliverable target");
            return json_resp(
                status(e.http_status()),
                json!({"ok": false, "error": e.to_string(), "hint": crate::app::delivery::HINT}),
            );
        }
    };
    let req = RunRequest {
        kind: RunKind::Agent,
        message: message.to_string(),
        agent_id,
        session_key,
        delivery,
        origin: "hook",
    };
    match submit(st, req, idempotency_key(headers, p)).await {
        Ok(run_id) => json_resp(StatusCode::OK, json!({"ok": true, "runId": run_id})),
        Err(r) => r,
    }
}

async fn wake(st: &AppState, headers: &HeaderMap, p: &Value) -> Response {
    let Some(text_) = str_field(p, "text") else {
        return json_err(StatusCode::BAD_REQUEST, "text required");
    };
    let mode = match str_field(p, "mode").unwrap_or("now") {
        m @ ("now" | "next-heartbeat") => m,
        _ => return json_err(StatusCode::BAD_REQUEST, "mode must be \"now\" or \"next-heartbeat\""),
    };
    let req = RunRequest {
        kind: RunKind::Wake,
        message: text_.to_string(),
        agent_id: None,
        session_key: None,
        delivery: None,
        origin: "hook",
    };
    match submit(st, req, idempotency_key(headers, p)).await {
        Ok(run_id) => json_resp(StatusCode::OK, json!({"ok": true, "mode": mode, "eventOutcome": "queued", "runId": run_id})),
        Err(r) => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_extraction() {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer abc"));
        assert_eq!(presented_token(&h), Some("abc"));
        let mut h = HeaderMap::new();
        h.insert("x-openclaw-token", HeaderValue::from_static("xyz"));
        assert_eq!(presented_token(&h), Some("xyz"));
        assert!(query_has_token(Some("a=1&token=x")));
        assert!(!query_has_token(Some("tokens=1")));
        assert!(query_has_token(Some("%74oken=x")));
        assert!(query_has_token(Some("a=1&hook%54oken=x")));
        assert!(!query_has_token(Some("%7")));
    }
}
