//! The session a message belongs to (upstream `buildAgentPeerSessionKey`, reference `agent.md`
//! §1): one string key, lower case.
//!
//! | `session.dmScope` | direct chat key |
//! |---|---|
//! | `main` (default) | `agent:<agent>:<mainKey>` (one session for all DMs) |
//! | `per-peer` | `agent:<agent>:direct:<peer>` |
//! | `per-channel-peer` | `agent:<agent>:<channel>:direct:<peer>` |
//! | `per-account-channel-peer` | `agent:<agent>:<channel>:<account>:direct:<peer>` |
//!
//! Groups: `agent:<agent>:<channel>:group:<jid>`, plus `:thread:<channel>-account-<account>` for
//! an account other than `default`.


use super::{ChatKind, Inbound};

/// Upstream's default main session key (`session.mainKey`).
pub const DEFAULT_MAIN_KEY: &str = "main";
/// Upstream's default agent id.
pub const DEFAULT_AGENT_ID: &str = "main";

/// How direct chats map to sessions (`session.dmScope`; defined with the config).
pub use crate::config::model::session::DmScope;

/// The settings the key depends on.
#[derive(Debug, Clone, Copy)]
pub struct SessionKeyContext<'a> {
    /// The agent handling the message (`main` by default).
    pub agent_id: &'a str,
    /// `session.mainKey` (`main` by default).
    pub main_key: &'a str,
    /// `session.dmScope`.
    pub dm_scope: DmScope,
}

impl Default for SessionKeyContext<'_> {
    fn default() -> Self {
        Self { agent_id: DEFAULT_AGENT_ID, main_key: DEFAULT_MAIN_KEY, dm_scope: DmScope::Main }
    }
}

/// The session key of `msg`.
pub fn session_key(ctx: &SessionKeyContext<'_>, msg: &Inbound) -> String {
    let agent = ctx.agent_id.trim().to_lowercase();
    let channel = msg.channel.to_lowercase();
    let account = msg.account_id.to_lowercase();
    let key = match msg.chat_kind {
        ChatKind::Group => {
            let mut k = format!("agent:{agent}:{channel}:group:{}", msg.chat_id);
            if account != "default" {
                k.push_str(&format!(":thread:{channel}-account-{account}"));
            }
            k
        }
        ChatKind::Direct => {
            let peer = msg.peer_id();
            match ctx.dm_scope {
                DmScope::Main => format!("agent:{agent}:{}", ctx.main_key),
                DmScope::PerPeer => format!("agent:{agent}:direct:{peer}"),
                DmScope::PerChannelPeer => format!("agent:{agent}:{channel}:direct:{peer}"),
                DmScope::PerAccountChannelPeer => format!("agent:{agent}:{channel}:{account}:direct:{peer}"),
            }
        }
    };
    key.to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(kind: ChatKind, account: &str) -> Inbound {
        Inbound {
            channel: "whatsapp".into(),
            account_id: account.into(),
            sender_e164: Some("+15551234567".into()),
            sender_id: "15551234567@s.whatsapp.net".into(),
            chat_kind: kind,
            chat_id: if kind == ChatKind::Group { "120363@g.us".into() } else { "15551234567@s.whatsapp.net".into() },
            self_chat: false,
            from_me: false,
            mentioned: false,
            is_backlog: false,
            sender_name: None,
            text: String::new(),
        }
    }

    #[test]
    fn keys_per_dm_scope_as_upstream() {
        let m = msg(ChatKind::Direct, "default");
        let key = |scope| session_key(&SessionKeyContext { dm_scope: scope, ..Default::default() }, &m);
        assert_eq!(key(DmScope::Main), "agent:main:main");
        assert_eq!(key(DmScope::PerPeer), "agent:main:direct:+15551234567");
        assert_eq!(key(DmScope::PerChannelPeer), "agent:main:whatsapp:direct:+15551234567");
        assert_eq!(key(DmScope::PerAccountChannelPeer), "agent:main:whatsapp:default:direct:+15551234567");
        let custom = SessionKeyContext { agent_id: "Work", main_key: "home", dm_scope: DmScope::Main };
        assert_eq!(session_key(&custom, &m), "agent:work:home");
    }

    #[test]
    fn group_keys_name_the_group_and_a_non_default_account() {
        let ctx = SessionKeyContext::default();
        assert_eq!(session_key(&ctx, &msg(ChatKind::Group, "default")), "agent:main:whatsapp:group:120363@g.us");
        assert_eq!(
            session_key(&ctx, &msg(ChatKind::Group, "work")),
            "agent:main:whatsapp:group:120363@g.us:thread:whatsapp-account-work"
        );
    }

    #[test]
    fn dm_scope_parses_upstream_names() {
        let s: DmScope = serde_json::from_str("\"per-account-channel-peer\"").unwrap();
        assert_eq!(s, DmScope::PerAccountChannelPeer);
    }
}
