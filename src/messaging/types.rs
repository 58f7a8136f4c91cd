//! The message types every channel and the agent share.

use serde::{Deserialize, Serialize};

/// A conversation on a channel, in the channel's own address form (for WhatsApp a JID such as
/// `15550001@s.whatsapp.net`, `…@lid` or `…@g.us`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ChatId(String);

impl ChatId {
    /// Wraps a channel address.
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// The address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ChatId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A message id as the channel knows it. For outbound messages it is chosen before the message is
/// stored and is the idempotency key of the send: a re-send after a crash carries the same id and
/// content, and receiving clients key messages by (chat, sender, id), so it is seen once (see
/// [`crate::messaging::outbox`], "Crash recovery").
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MessageId(String);

impl MessageId {
    /// Wraps an id.
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for MessageId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a reply or a send should go, as a request names it (before the channel resolves `to`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    /// Channel id (`whatsapp`).
    pub channel: String,
    /// The account of that channel; `None` means the channel's default account.
    pub account_id: Option<String>,
    /// The recipient as given: an E.164 number or a channel address.
    pub to: String,
}

/// Kinds of media, carried as typed placeholders until media support lands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaKind {
    /// A picture.
    Image,
    /// A video.
    Video,
    /// A voice note or audio file.
    Audio,
    /// A document.
    Document,
    /// A sticker.
    Sticker,
}

/// What an inbound message says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum InboundBody {
    /// Plain or extended text.
    Text {
        /// The text.
        text: String,
    },
    /// A reaction to an earlier message; an empty `emoji` removes it.
    Reaction {
        /// The message reacted to.
        target: MessageId,
        /// The emoji.
        emoji: String,
    },
    /// Media, as a placeholder with its caption.
    Media {
        /// What kind.
        kind: MediaKind,
        /// The caption, if any.
        caption: Option<String>,
        /// The MIME type, if known.
        mime: Option<String>,
    },
    /// A shared contact card.
    Contact {
        /// Its display name.
        display_name: Option<String>,
    },
    /// A shared location.
    Location {
        /// Degrees north.
        latitude: f64,
        /// Degrees east.
        longitude: f64,
        /// Its name, if any.
        name: Option<String>,
    },
    /// Something this gateway does not handle yet, named for the logs.
    Unsupported {
        /// The channel's name for the kind.
        kind: String,
    },
}

impl InboundBody {
    /// The text an agent would read: the text, or a media caption.
    pub fn text(&self) -> Option<&str> {
        match self {
            Self::Text { text } => Some(text),
            Self::Media { caption, .. } => caption.as_deref(),
            _ => None,
        }
    }
}

/// A message received on a channel, after decryption and decoding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InboundMessage {
    /// Channel id (`whatsapp`).
    pub channel: String,
    /// The account that received it.
    pub account_id: String,
    /// The conversation (for a DM the peer, for a group the group).
    pub chat: ChatId,
    /// Who sent it (in a DM equal to `chat`).
    pub sender: ChatId,
    /// The sender's phone number in E.164, when the channel knows it.
    pub sender_e164: Option<String>,
    /// The sender's display name, when given.
    pub sender_name: Option<String>,
    /// The channel's id of the message.
    pub id: MessageId,
    /// When it was sent (unix ms, sender's clock as the channel reports it).
    pub timestamp_ms: u64,
    /// True in group chats.
    pub is_group: bool,
    /// True when sent by the account itself (from another of its devices).
    pub from_me: bool,
    /// The message it quotes, if any.
    pub reply_to: Option<MessageId>,
    /// Who wrote the message it quotes (WhatsApp: `contextInfo.participant`), when given. A
    /// group reply to one of the account's own messages counts as a mention.
    #[serde(default)]
    pub reply_to_sender: Option<ChatId>,
    /// The addresses the message mentions (WhatsApp: `contextInfo.mentionedJid`, PN or LID
    /// JIDs), in order; empty when none.
    #[serde(default)]
    pub mentions: Vec<ChatId>,
    /// What it says.
    pub body: InboundBody,
}

/// What an outbound message says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum OutboundBody {
    /// Text.
    Text {
        /// The text.
        text: String,
    },
    /// A reaction to a message; an empty `emoji` removes it.
    Reaction {
        /// The message reacted to.
        target: MessageId,
        /// The emoji.
        emoji: String,
    },
}

/// A message to send through a channel account (what the [`crate::messaging::Outbox`] stores).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutboundMessage {
    /// The message id, chosen before storing; the idempotency key of the send.
    pub id: MessageId,
    /// Channel id.
    pub channel: String,
    /// The sending account.
    pub account_id: String,
    /// The resolved conversation.
    pub chat: ChatId,
    /// The message it quotes, if any.
    pub reply_to: Option<MessageId>,
    /// What it says.
    pub body: OutboundBody,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_shapes_are_stable() {
        let m = OutboundMessage {
            id: MessageId::new("3EB0AA"),
            channel: "whatsapp".into(),
            account_id: "default".into(),
            chat: ChatId::new("15550001@s.whatsapp.net"),
            reply_to: None,
            body: OutboundBody::Text { text: "hi".into() },
        };
        let v = serde_json::to_value(&m).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"id": "3EB0AA", "channel": "whatsapp", "accountId": "default", "chat": "15550001@s.whatsapp.net",
                               "replyTo": null, "body": {"type": "text", "text": "hi"}})
        );
        assert_eq!(serde_json::from_value::<OutboundMessage>(v).unwrap(), m);
        let b = InboundBody::Media { kind: MediaKind::Image, caption: Some("look".into()), mime: None };
        assert_eq!(b.text(), Some("look"));
        assert_eq!(InboundBody::Reaction { target: MessageId::new("x"), emoji: "👍".into() }.text(), None);
    }
}
