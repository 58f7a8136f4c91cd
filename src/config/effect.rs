//! Settings that are valid (upstream's) but have no effect in this gateway yet, because the
//! part of the gateway that would act on them has not landed: WhatsApp message handling, agent
//! execution against LLM providers, message decorations. Setting one is never silent: the
//! compiler warns once per section, listing what is set (issue 14, "no key silently ignored").
//!
//! Settings the gateway will not honour soon are errors instead (`semantic::unsupported_rules`).
//! `tests/config_schema_walk.rs` checks that every key of the schema is used by the gateway, an
//! error, or listed here. When a part lands, move its keys out of these lists and name the test
//! that shows their effect in the walk.

use super::diagnostic::Diagnostic;
use super::locate::Locator;
use super::path::KeyPath;

/// WhatsApp keys (on the channel root and on each account) without effect yet: they steer
/// message handling, which this gateway does not do yet (it links accounts and keeps their
/// sessions).
pub const WHATSAPP_KEYS: &[&str] = &[
    "configWrites", "capabilities", "dmPolicy", "allowFrom", "defaultTo", "groupPolicy", "groupAllowFrom",
    "groups", "direct", "dms", "historyLimit", "dmHistoryLimit", "textChunkLimit", "streaming", "mediaMaxMb",
    "sendReadReceipts", "selfChatMode", "replyToMode", "reactionLevel", "mentionPatterns", "contextVisibility",
    "markdown", "responsePrefix", "heartbeatVisibility", "healthMonitor", "pluginHooks",
];

/// WhatsApp keys of the channel root only without effect yet.
pub const WHATSAPP_ROOT_KEYS: &[&str] = &["actions"];

/// WhatsApp keys of an account only without effect yet.
pub const WHATSAPP_ACCOUNT_KEYS: &[&str] = &["name"];

/// Whole sections without effect yet (agents do not run against providers yet).
pub const SECTIONS: &[(&str, &str)] = &[
    ("messages", "message decorations apply once the gateway handles messages"),
    ("agents", "agent runs are accepted but not executed against a provider yet"),
    ("models", "agent runs are accepted but not executed against a provider yet"),
];

const WHATSAPP_WHY: &str = "this gateway links WhatsApp accounts and keeps their sessions but does not handle messages yet";

/// Whether the schema key `pattern` (dotted, `*` for a map entry, `[]` for an array item, as the
/// schema walk writes it) is one of the keys listed here, or below one.
pub fn listed(pattern: &str) -> bool {
    let segs: Vec<&str> = pattern.split('.').collect();
    if SECTIONS.iter().any(|(s, _)| segs.first() == Some(s)) {
        return true;
    }
    match segs.as_slice() {
        ["channels", "whatsapp", "accounts", "*", k, ..] => {
            WHATSAPP_KEYS.contains(k) || WHATSAPP_ACCOUNT_KEYS.contains(k)
        }
        ["channels", "whatsapp", k, ..] => WHATSAPP_KEYS.contains(k) || WHATSAPP_ROOT_KEYS.contains(k),
        _ => false,
    }
}

/// One warning per section for the keys of `value` (the merged config) listed here.
pub fn warnings(value: &serde_json::Value, loc: &Locator<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let root = KeyPath::root();
    let mut wa = Vec::new();
    if let Some(ch) = value.pointer("/channels/whatsapp").and_then(|v| v.as_object()) {
        let base = root.key("channels").key("whatsapp");
        for k in ch.keys() {
            if WHATSAPP_KEYS.contains(&k.as_str()) || WHATSAPP_ROOT_KEYS.contains(&k.as_str()) {
                wa.push(base.key(k));
            }
        }
        if let Some(accounts) = ch.get("accounts").and_then(|v| v.as_object()) {
            for (id, a) in accounts {
                for k in a.as_object().map(|o| o.keys().collect::<Vec<_>>()).unwrap_or_default() {
                    if WHATSAPP_KEYS.contains(&k.as_str()) || WHATSAPP_ACCOUNT_KEYS.contains(&k.as_str()) {
                        wa.push(base.key("accounts").key(id).key(k));
                    }
                }
            }
        }
    }
    if !wa.is_empty() {
        out.push(warning("channels.whatsapp", &wa, WHATSAPP_WHY, loc));
    }
    for (section, why) in SECTIONS {
        if let Some(obj) = value.get(*section).and_then(|v| v.as_object())
            && !obj.is_empty()
        {
            let keys: Vec<KeyPath> = obj.keys().map(|k| root.key(section).key(k)).collect();
            out.push(warning(section, &keys, why, loc));
        }
    }
    out
}

fn warning(section: &str, keys: &[KeyPath], why: &str, loc: &Locator<'_>) -> Diagnostic {
    const SHOWN: usize = 6;
    let mut list: Vec<String> = keys.iter().take(SHOWN).map(ToString::to_string).collect();
    if keys.len() > SHOWN {
        list.push(format!("and {} more", keys.len() - SHOWN));
    }
    let path = KeyPath::parse_dotted(section).unwrap_or_default();
    let d = Diagnostic::warning(
        "no-effect-yet",
        &path,
        format!("{} {} no effect yet: {why}", list.join(", "), if keys.len() == 1 { "has" } else { "have" }),
    )
    .hint("they are accepted for compatibility with upstream OpenClaw and take effect when that part of the gateway lands");
    loc.at_key(d, &keys[0])
}
