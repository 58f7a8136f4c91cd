//! Settings that are valid (upstream's) but have no effect in this gateway yet, because the
//! part of the gateway that would act on them has not landed: WhatsApp groups and media,
//! per-agent entries, some message decorations. Setting one is never silent: the
//! compiler warns once per section, listing what is set (issue 14, "no key silently ignored").
//!
//! Settings the gateway will not honour soon are errors instead (`semantic::unsupported_rules`).
//! `tests/config_schema_walk.rs` checks that every key of the schema is used by the gateway, an
//! error, or listed here. When a part lands, move its keys out of these lists and name the test
//! that shows their effect in the walk.

use super::diagnostic::Diagnostic;
use super::locate::Locator;
use super::path::KeyPath;

/// WhatsApp keys (on the channel root and on each account) without effect yet: media, per-chat
/// overrides and decorations. DM handling (`dmPolicy`, `allowFrom`, `defaultTo`,
/// `textChunkLimit`, `streaming`, `sendReadReceipts`, `replyToMode`, `streaming.chunkMode`) and
/// group gating (`groupPolicy`, `groupAllowFrom`, `groups.<jid>.requireMention`,
/// `historyLimit`, `mentionPatterns`) take effect and are not listed; a dotted entry names a key
/// below a WhatsApp key, `*` any map entry (block streaming and per-group prompts and tools are
/// not implemented).
pub const WHATSAPP_KEYS: &[&str] = &[
    "configWrites", "capabilities", "groups.*.systemPrompt", "groups.*.tools", "groups.*.toolsBySender", "direct", "dms",
    "dmHistoryLimit", "mediaMaxMb", "selfChatMode", "reactionLevel", "contextVisibility", "markdown",
    "responsePrefix", "heartbeatVisibility", "healthMonitor", "pluginHooks", "streaming.block",
];

/// WhatsApp keys of the channel root only without effect yet.
pub const WHATSAPP_ROOT_KEYS: &[&str] = &["actions"];

/// WhatsApp keys of an account only without effect yet.
pub const WHATSAPP_ACCOUNT_KEYS: &[&str] = &["name"];

/// Other keys without effect yet (dotted paths as the schema walk writes them: `*` is any map
/// entry, `[]` any array item), with the reason. Agent
/// turns use `agents.defaults` and `models.providers`; these are the parts they do not use.
pub const OTHER_KEYS: &[(&str, &str)] = &[
    ("messages.responsePrefix", "replies are sent without a prefix yet"),
    ("agents.entries", "only agents.defaults runs yet; there is no per-agent routing (the default entry's identity and groupChat.mentionPatterns do count as group mentions)"),
    ("models.mode", "the configured providers are used as they are"),
    ("models.providers.*.models.[].name", "models are named by their id"),
    ("models.providers.*.models.[].contextWindow", "history is bounded by message count, not by the context window, yet"),
];

/// Whether the part of a WhatsApp path below the channel root or an account (`rest`, dotted)
/// is one of the keys listed for `extra` (the root or the account list) or [`WHATSAPP_KEYS`].
fn whatsapp_listed(rest: &str, extra: &[&str]) -> bool {
    WHATSAPP_KEYS.iter().chain(extra).any(|k| rest == *k || rest.starts_with(&format!("{k}.")))
}

const WHATSAPP_WHY: &str = "this gateway answers WhatsApp DMs and groups but does not handle media or these per-chat settings yet";

/// Whether the schema key `pattern` (dotted, `*` for a map entry, `[]` for an array item, as the
/// schema walk writes it) is one of the keys listed here, or below one.
pub fn listed(pattern: &str) -> bool {
    let segs: Vec<&str> = pattern.split('.').collect();
    if OTHER_KEYS.iter().any(|(k, _)| pattern == *k || pattern.starts_with(&format!("{k}."))) {
        return true;
    }
    match segs.as_slice() {
        ["channels", "whatsapp", "accounts", "*", rest @ ..] if !rest.is_empty() => {
            whatsapp_listed(&rest.join("."), WHATSAPP_ACCOUNT_KEYS)
        }
        ["channels", "whatsapp", rest @ ..] if !rest.is_empty() && rest[0] != "accounts" => {
            whatsapp_listed(&rest.join("."), WHATSAPP_ROOT_KEYS)
        }
        _ => false,
    }
}

/// One warning per section for the keys of `value` (the merged config) listed here.
pub fn warnings(value: &serde_json::Value, loc: &Locator<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let root = KeyPath::root();
    let mut wa = Vec::new();
    if let Some(ch) = value.pointer("/channels/whatsapp") {
        let base = root.key("channels").key("whatsapp");
        let present = |obj: &serde_json::Value, at: &KeyPath, extra: &[&str], out: &mut Vec<KeyPath>| {
            for k in WHATSAPP_KEYS.iter().chain(extra) {
                out.extend(present_paths_at(at.clone(), obj, k));
            }
        };
        present(ch, &base, WHATSAPP_ROOT_KEYS, &mut wa);
        if let Some(accounts) = ch.get("accounts").and_then(|v| v.as_object()) {
            for (id, a) in accounts {
                present(a, &base.key("accounts").key(id), WHATSAPP_ACCOUNT_KEYS, &mut wa);
            }
        }
    }
    if !wa.is_empty() {
        out.push(warning("channels.whatsapp", &wa, WHATSAPP_WHY, loc));
    }
    for (key, why) in OTHER_KEYS {
        for path in present_paths(value, key) {
            let section = key.split('.').next().unwrap_or(key);
            out.push(warning(section, &[path], why, loc));
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

/// The concrete paths in `value` matching the dotted pattern `key` (`*`: every map entry, `[]`:
/// every array item).
fn present_paths(value: &serde_json::Value, key: &str) -> Vec<KeyPath> {
    present_paths_at(KeyPath::root(), value, key)
}

/// [`present_paths`] below `value` found at `at`.
fn present_paths_at<'a>(at: KeyPath, value: &'a serde_json::Value, key: &str) -> Vec<KeyPath> {
    let mut found: Vec<(KeyPath, &'a serde_json::Value)> = vec![(at, value)];
    for seg in key.split('.') {
        let mut next = Vec::new();
        for (path, v) in found {
            match (seg, v) {
                ("[]", serde_json::Value::Array(items)) => {
                    next.extend(items.iter().enumerate().map(|(i, x)| (path.index(i), x)));
                }
                ("*", serde_json::Value::Object(o)) => next.extend(o.iter().map(|(k, c)| (path.key(k), c))),
                (name, serde_json::Value::Object(o)) => next.extend(o.get(name).map(|c| (path.key(name), c))),
                _ => {}
            }
        }
        found = next;
    }
    found.into_iter().map(|(p, _)| p).collect()
}
