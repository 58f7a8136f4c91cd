//! The health and readiness documents (`GET /health`, `GET /ready`, WS `health`). No secrets.

use serde_json::{json, Value};

use crate::gateway::state::{AppState, Phase, VERSION};

/// `GET /health`: `{ok, status, version, uptimeMs, channels:[…]}` plus one key per channel
/// (`"whatsapp": {configured, linked, connected, phone, jid, accounts: {<id>: {…}}}`) so the
/// number a channel is linked as is one lookup away. `phone`/`jid` are the first linked
/// account's (the default one when linked).
pub fn health(st: &AppState) -> Value {
    let channels = st.channels.snapshot();
    let status = match st.phase() {
        Phase::Starting => "starting",
        Phase::Ready => "live",
        Phase::Draining => "draining",
    };
    let mut v = json!({
        "ok": true,
        "status": status,
        "version": VERSION,
        "uptimeMs": st.uptime_ms(),
    });
    let keyed = keyed_by_channel(&channels);
    v["channels"] = json!(channels);
    for (id, entry) in keyed.0 {
        if v.get(&id).is_none() {
            v[&id] = entry;
        }
    }
    v
}

/// `(map channel id → summary, channel order)`; each summary has `configured`, `linked`,
/// `connected` (any account), `phone`/`jid` (the first linked account's, preferring
/// `default`) and `accounts` keyed by account id.
fn keyed_by_channel(list: &[crate::channels::status::ChannelStatus]) -> (serde_json::Map<String, Value>, Vec<String>) {
    let mut by_channel = serde_json::Map::new();
    let mut order = Vec::new();
    for c in list {
        let entry = by_channel.entry(c.id.clone()).or_insert_with(|| {
            order.push(c.id.clone());
            json!({"configured": false, "linked": false, "connected": false, "phone": null, "jid": null, "accounts": {}})
        });
        entry["configured"] = json!(entry["configured"].as_bool().unwrap_or(false) || c.configured);
        entry["linked"] = json!(entry["linked"].as_bool().unwrap_or(false) || c.linked);
        entry["connected"] = json!(entry["connected"].as_bool().unwrap_or(false) || c.connected);
        if let Some(me) = &c.self_id
            && (entry["phone"].is_null() || c.account == "default")
        {
            entry["phone"] = json!(me.e164);
            entry["jid"] = json!(me.jid);
        }
        entry["accounts"][&c.account] = json!(c);
    }
    (by_channel, order)
}

/// The WS `health` payload: the `/health` fields plus upstream's keyed `channels` map
/// (`{<channel>: {accounts: {<account>: …}}}`) so upstream clients can render it.
pub fn health_rpc(st: &AppState) -> Value {
    let mut v = health(st);
    let list = st.channels.snapshot();
    let (by_channel, order) = keyed_by_channel(&list);
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
