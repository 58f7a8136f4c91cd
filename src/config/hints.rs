//! Help for unknown keys: keys upstream OpenClaw knows that this gateway does not support yet,
//! keys people put in the wrong place, and "did you mean" suggestions.
//!
//! Upstream key lists come from `shared/reference/openclaw.md` §1 (OpenClaw 2026.9.6).

use super::path::KeyPath;

/// Upstream's root sections (reference §1, "Root sections").
const UPSTREAM_ROOT: &[&str] = &[
    "meta", "env", "wizard", "diagnostics", "logging", "update", "telemetry", "browser", "ui", "secrets", "auth",
    "accessGroups", "acp", "models", "nodeHost", "agents", "worktreeRoot", "worktreeAcceleration", "tools",
    "security", "bindings", "broadcast", "attachments", "messages", "tts", "commands", "approvals", "session",
    "cron", "transcripts", "hooks", "channels", "discovery", "talk", "gateway", "cloudWorkers", "desktop",
    "memory", "mcp", "skills", "plugins", "surfaces", "proxy",
];

/// Upstream keys per section that we do not model yet (reference §1.1–§1.5).
const UPSTREAM_SECTION_KEYS: &[(&str, &[&str])] = &[
    (
        "gateway",
        &[
            "publicOrigin", "trustedProxies", "allowRealIpFallback", "tailscale", "reload", "tls", "http",
            "cliAgents", "terminal", "tools", "push", "portals", "roles",
        ],
    ),
    ("gateway.auth", &["allowTailscale", "identityScopes", "trustedProxy"]),
    (
        "gateway.controlUi",
        &[
            "root", "dangerouslyAllowHostHeaderOriginFallback", "dangerouslyDisableDeviceAuth", "embedSandbox",
            "environment", "experimental", "github",
        ],
    ),
    ("gateway.remote", &["transport", "password", "tlsFingerprint"]),
    ("gateway.nodes", &["commands", "browser", "pluginTools", "allowSkills"]),
    ("gateway.nodes.pairing", &["autoApproveCidrs", "sshVerify"]),
    ("hooks", &["allowedSessionKeyPrefixes", "presets", "transformsDir", "gmail", "internal"]),
    (
        "channels",
        &[
            "telegram", "discord", "irc", "googlechat", "slack", "signal", "imessage", "matrix", "msteams",
        ],
    ),
    ("messages", &["statusReactions", "inbound", "queue"]),
    ("messages.groupChat", &["unmentionedInbound", "visibleReplies"]),
    ("agents", &["ownership", "list"]),
    ("models", &["catalogRefresh"]),
];

/// Keys that exist elsewhere: (where it was found, key, the hint).
const MISPLACED: &[(&str, &str, &str)] = &[
    (
        "channels.whatsapp",
        "requireMention",
        "requireMention exists per group only: channels.whatsapp.groups.<jid>.requireMention (or groups.\"*\" for all groups)",
    ),
    (
        "channels.whatsapp",
        "streamMode",
        "WhatsApp has no streamMode; reply streaming is channels.whatsapp.streaming.chunkMode (\"length\" or \"newline\") and streaming.block.enabled",
    ),
    (
        "channels.whatsapp",
        "chunkMode",
        "chunkMode moved under streaming: channels.whatsapp.streaming.chunkMode",
    ),
    (
        "channels.whatsapp",
        "blockStreaming",
        "block streaming moved under streaming: channels.whatsapp.streaming.block.enabled",
    ),
    (
        "channels.whatsapp",
        "ackReaction",
        "the ack reaction is shared by all channels: messages.ackReaction and messages.ackReactionScope",
    ),
    (
        "channels.whatsapp",
        "exposeErrorText",
        "exposeErrorText was removed upstream; delete the key",
    ),
    ("gateway", "token", "the gateway token lives at gateway.auth.token (better: gateway.auth.tokenFile)"),
    ("gateway", "password", "passwords are not supported by this gateway yet; use a token (gateway.auth.tokenFile)"),
    ("<root>", "token", "the gateway token lives at gateway.auth.token (better: gateway.auth.tokenFile)"),
];

/// Path with account ids and group ids collapsed, so `channels.whatsapp.accounts.work` matches
/// `channels.whatsapp` in the tables above.
fn section_of(path: &KeyPath) -> String {
    let s = path.to_string();
    if let Some(rest) = s.strip_prefix("channels.whatsapp.accounts") {
        // channels.whatsapp.accounts.<id> has the channel's keys.
        if !rest.is_empty() && !rest[1..].contains('.') && !rest[1..].contains('[') {
            return "channels.whatsapp".into();
        }
    }
    s
}

/// Whether `key` under `parent` is an upstream OpenClaw setting we do not support yet.
pub fn unsupported_upstream(parent: &KeyPath, key: &str) -> bool {
    if parent.is_root() {
        return UPSTREAM_ROOT.contains(&key);
    }
    let section = section_of(parent);
    UPSTREAM_SECTION_KEYS.iter().any(|(s, keys)| *s == section && keys.contains(&key))
}

/// A specific hint for a key people often put in the wrong place.
pub fn misplaced(parent: &KeyPath, key: &str) -> Option<&'static str> {
    let section = section_of(parent);
    MISPLACED.iter().find(|(s, k, _)| *s == section && *k == key).map(|(_, _, h)| *h)
}

/// The allowed key closest to `key`, if it is close enough to be a typo.
pub fn did_you_mean<'a>(key: &str, allowed: &'a [String]) -> Option<&'a str> {
    let lower = key.to_lowercase();
    allowed
        .iter()
        .map(|a| {
            let d = edit_distance(&lower, &a.to_lowercase());
            (d, a)
        })
        .filter(|(d, a)| *d <= (a.chars().count() / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, a)| a.as_str())
}

/// Edit distance over characters where a swap of two neighbours counts as one edit
/// (optimal string alignment), so `prot` is one edit from `port`.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for j in 0..=b.len() {
        d[0][j] = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        let allowed: Vec<String> = ["allowFrom", "dmPolicy", "groupPolicy"].iter().map(|s| s.to_string()).collect();
        assert_eq!(did_you_mean("alowFrom", &allowed), Some("allowFrom"));
        assert_eq!(did_you_mean("grouppolicy", &allowed), Some("groupPolicy"));
        assert_eq!(did_you_mean("zzz", &allowed), None);
        assert_eq!(edit_distance("prot", "port"), 1);
    }

    #[test]
    fn tables() {
        let wa = KeyPath::parse_dotted("channels.whatsapp").unwrap();
        assert!(misplaced(&wa, "streamMode").is_some());
        let acct = KeyPath::parse_dotted("channels.whatsapp.accounts.work").unwrap();
        assert!(misplaced(&acct, "requireMention").is_some());
        assert!(unsupported_upstream(&KeyPath::root(), "logging"));
        assert!(unsupported_upstream(&KeyPath::parse_dotted("channels").unwrap(), "telegram"));
        assert!(!unsupported_upstream(&KeyPath::root(), "bogus"));
    }
}
