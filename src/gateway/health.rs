//! The health and readiness documents (`GET /health`, `GET /ready`, WS `health`). No secrets.

use serde_json::{json, Value};

use crate::gateway::state::{AppState, Phase, VERSION};

/// `GET /health`: `{ok, status, version, uptimeMs, channels:[…]}`.
pub fn health(st: &AppState) -> Value {
    let channels = st.channels.snapshot();
    let status = match st.phase() {
        Phase::Starting => "starting",
        Phase::Ready => "live",
        Phase::Draining => "draining",
    };
    json!({
        "ok": true,
        "status": status,
        "version": VERSION,
        "uptimeMs": st.uptime_ms(),
        "channels": channels,
    })
}

/// The WS `health` payload: the `/health` fields plus upstream's keyed `channels` map
/// (`{<channel>: {accounts: {<account>: …}}}`) so upstream clients can render it.
pub fn health_rpc(st: &AppState) -> Value {
    let mut v = health(st);
    let list = st.channels.snapshot();
    let mut by_channel = serde_json::Map::new();
    let mut order = Vec::new();
    for c in &list {
        let entry = by_channel.entry(c.id.clone()).or_insert_with(|| {
            order.push(c.id.clone());
            json!({"configured": false, "linked": false, "connected": false, "accounts": {}})
        });
        entry["configured"] = json!(entry["configured"].as_bool().unwrap_or(false) || c.configured);
        entry["linked"] = json!(entry["linked"].as_bool().unwrap_or(false) || c.linked);
        entry["connected"] = json!(entry["connected"].as_bool().unwrap_or(false) || c.connected);
        entry["accounts"][&c.account] = json!(c);
    }
    v["channelList"] = v["channels"].take();
    v["channels"] = Value::Object(by_channel);
    v["channelOrder"] = json!(order);
    v["ts"] = json!((st.clock)());
    v["durationMs"] = json!(0);
    v
}

/// `GET /ready`: `(ready, body)`; 503 while starting or draining.
pub fn ready(st: &AppState) -> (bool, Value) {
    let phase = st.phase();
    let failing: Vec<&str> = match phase {
        Phase::Starting => vec!["starting"],
        Phase::Ready => vec![],
        Phase::Draining => vec!["draining"],
    };
    (phase == Phase::Ready, json!({"ready": phase == Phase::Ready, "failing": failing, "uptimeMs": st.uptime_ms()}))
}
