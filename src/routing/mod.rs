//! Routing, pure: what happens to an inbound message before any agent sees it.
//!
//! Over a channel-neutral [`Inbound`] description this layer decides, with upstream OpenClaw's
//! semantics (reference `agent.md` §1):
//!
//! - [`policy`]: admit, drop or challenge a sender (`dmPolicy`, `allowFrom`, self-chat,
//!   `groupPolicy`/`groupAllowFrom`), each [`Decision`] naming the [`Rule`] that made it;
//! - [`pairing`]: the pairing challenge (codes, the 3-pending cap, 1 h expiry, the reply text),
//!   with the pending-request state as an input and the new state as an output;
//! - [`session_key`]: the session a message belongs to, per `session.dmScope`;
//! - [`chunk`]: splitting a reply at `textChunkLimit` by `length` or `newline`, counting UTF-16
//!   code units like upstream and never splitting a character;
//! - [`markdown`]: Markdown adapted to WhatsApp's formatting;
//! - [`mention`]: whether a group message mentions the assistant (mentions, replies to us,
//!   mention patterns, our number in the text);
//! - [`group_history`]: unanswered group messages kept as context for the next turn there;
//! - [`decisions`]: the last routing decisions per account, explained for people ("why was
//!   this group message ignored", with the config key to change).
//!
//! Nothing here opens a socket, reads a file or the clock: time and randomness are inputs.

pub mod chunk;
pub mod decisions;
pub mod group_history;
pub mod markdown;
pub mod mention;
pub mod pairing;
pub mod policy;
pub mod session_key;

use crate::config::model::whatsapp::ChunkMode;

pub use pairing::{PairingRequest, PendingPairings};
pub use policy::{decide, AccessContext, Decision, Rule};
pub use session_key::{session_key, DmScope, SessionKeyContext};

/// Whether a message was sent in a one-to-one chat or a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChatKind {
    /// A direct (one-to-one) chat.
    Direct,
    /// A group chat.
    Group,
}

/// A channel-neutral description of one inbound message: what routing needs, nothing more.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inbound {
    /// The channel id, e.g. `whatsapp`.
    pub channel: String,
    /// The channel account that received it, e.g. `default`.
    pub account_id: String,
    /// The sender's E.164 number (`+15551234567`), when known. In a direct chat this is the
    /// other party (the chat's peer) even for a message the account sent itself, and the
    /// account's own number in the self chat.
    pub sender_e164: Option<String>,
    /// The sender's channel address (for WhatsApp its JID), used when no number is known.
    pub sender_id: String,
    /// Direct or group.
    pub chat_kind: ChatKind,
    /// The chat's address: the sender for a direct chat, the group JID for a group.
    pub chat_id: String,
    /// The chat is the account's chat with itself ("message yourself").
    pub self_chat: bool,
    /// The message was sent by the linked account itself (from another device).
    pub from_me: bool,
    /// In a group: the message mentions the assistant (or replies to it).
    pub mentioned: bool,
    /// The message predates the connection (older than connect time − 30 s): upstream answers
    /// no pairing challenge to such a backlog.
    pub is_backlog: bool,
    /// The sender's display name, if the channel gave one.
    pub sender_name: Option<String>,
    /// The text.
    pub text: String,
}

impl Inbound {
    /// The peer id used for allowlists, pairing and session keys: the E.164 number if known,
    /// else the channel address.
    pub fn peer_id(&self) -> &str {
        self.sender_e164.as_deref().unwrap_or(&self.sender_id)
    }
}

/// Logs a decision at debug level with the rule that made it (the text of [`Rule`]'s
/// `Display`). The gateway calls this for every inbound message.
pub fn log_decision(msg: &Inbound, decision: &Decision) {
    tracing::debug!(
        channel = %msg.channel,
        account = %msg.account_id,
        peer = %msg.peer_id(),
        chat = ?msg.chat_kind,
        admitted = decision.admitted(),
        rule = ?decision.rule,
        "inbound: {}",
        decision.rule
    );
}

/// A reply ready to send on WhatsApp: Markdown adapted ([`markdown::to_whatsapp`]), then split
/// at `limit` UTF-16 units by `mode` ([`chunk::chunk_text`]). In order; empty for an empty reply.
pub fn prepare_whatsapp_reply(text: &str, limit: usize, mode: ChunkMode) -> Vec<String> {
    chunk::chunk_text(&markdown::to_whatsapp(text), limit, mode)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_9000_character_markdown_reply_is_three_ordered_whatsapp_messages() {
        // Length mode breaks at the last newline of a window first (upstream), so a heading
        // followed by a blank line would be a message of its own; here the text runs on.
        let text = format!("**Title** {}", "word ".repeat(1_800));
        let parts = prepare_whatsapp_reply(&text, chunk::DEFAULT_LIMIT, ChunkMode::Length);
        assert_eq!(parts.len(), 3);
        assert!(parts[0].starts_with("*Title* word"));
        assert!(parts.iter().all(|p| chunk::utf16_len(p) <= chunk::DEFAULT_LIMIT));
        assert_eq!(parts.concat().matches("word").count(), 1_800);
    }
}
