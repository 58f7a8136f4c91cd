//! The `Message` protobuf inside a Signal plaintext ↔ channel-neutral bodies: what we surface,
//! what we ignore on purpose, and what we send: texts (`extendedTextMessage`, as WhatsApp clients
//! send text) and reactions (`reactionMessage`).

use prost::Message as _;

use crate::channels::whatsapp::proto::{self, message as m};
use crate::messaging::{InboundBody, MediaKind, MessageId, OutboundBody};

/// What a decrypted `Message` means for the message path.
#[derive(Debug, Clone, PartialEq)]
pub enum Content {
    /// Something to hand to the inbound queue, with the message it replies to, if any.
    Deliver {
        /// The body.
        body: InboundBody,
        /// The quoted message.
        reply_to: Option<MessageId>,
    },
    /// A copy of a message we sent from another of our devices to `destination`.
    SentByUs {
        /// The chat it went to.
        destination: String,
        /// What it said.
        inner: Box<Content>,
    },
    /// Handled without surfacing: revoke, ephemeral settings, key shares, sender-key
    /// distributions (groups are separate work), history sync notifications.
    Ignored {
        /// Why, for the debug log.
        why: &'static str,
    },
}

/// Why a plaintext is not a `Message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("plaintext is not a Message protobuf: {0}")]
pub struct ContentError(String);

fn quoted(ci: Option<&proto::ContextInfo>) -> Option<MessageId> {
    ci.and_then(|c| c.stanza_id.clone()).filter(|s| !s.is_empty()).map(MessageId::new)
}

/// Decodes an unpadded plaintext.
pub fn decode(plaintext: &[u8]) -> Result<Content, ContentError> {
    let msg = proto::Message::decode(plaintext).map_err(|e| ContentError(e.to_string()))?;
    Ok(classify(&msg))
}

/// Classifies a decoded `Message`.
pub fn classify(msg: &proto::Message) -> Content {
    let deliver = |body, reply_to| Content::Deliver { body, reply_to };
    if let Some(d) = &msg.device_sent_message {
        let inner = d.message.as_deref().map_or(Content::Ignored { why: "empty deviceSentMessage" }, classify);
        return Content::SentByUs { destination: d.destination_jid.clone().unwrap_or_default(), inner: Box::new(inner) };
    }
    if let Some(t) = &msg.conversation {
        return deliver(InboundBody::Text { text: t.clone() }, None);
    }
    if let Some(e) = &msg.extended_text_message {
        return deliver(InboundBody::Text { text: e.text.clone().unwrap_or_default() }, quoted(e.context_info.as_ref()));
    }
    if let Some(r) = &msg.reaction_message {
        let target = r.key.as_ref().and_then(|k| k.id.clone()).unwrap_or_default();
        return deliver(
            InboundBody::Reaction { target: MessageId::new(target), emoji: r.text.clone().unwrap_or_default() },
            None,
        );
    }
    let media = |kind, caption: Option<&String>, mime: Option<&String>, ci| {
        deliver(InboundBody::Media { kind, caption: caption.cloned(), mime: mime.cloned() }, quoted(ci))
    };
    if let Some(x) = &msg.image_message {
        return media(MediaKind::Image, x.caption.as_ref(), x.mimetype.as_ref(), x.context_info.as_ref());
    }
    if let Some(x) = &msg.video_message {
        return media(MediaKind::Video, x.caption.as_ref(), x.mimetype.as_ref(), x.context_info.as_ref());
    }
    if let Some(x) = &msg.audio_message {
        return media(MediaKind::Audio, None, x.mimetype.as_ref(), x.context_info.as_ref());
    }
    if let Some(x) = &msg.document_message {
        return media(MediaKind::Document, x.caption.as_ref(), x.mimetype.as_ref(), x.context_info.as_ref());
    }
    if let Some(x) = &msg.sticker_message {
        return media(MediaKind::Sticker, None, x.mimetype.as_ref(), x.context_info.as_ref());
    }
    if let Some(c) = &msg.contact_message {
        return deliver(InboundBody::Contact { display_name: c.display_name.clone() }, quoted(c.context_info.as_ref()));
    }
    if let Some(l) = &msg.location_message {
        return deliver(
            InboundBody::Location {
                latitude: l.degrees_latitude.unwrap_or(0.0),
                longitude: l.degrees_longitude.unwrap_or(0.0),
                name: l.name.clone(),
            },
            quoted(l.context_info.as_ref()),
        );
    }
    if let Some(p) = &msg.protocol_message {
        use m::protocol_message::Type;
        let why = match p.r#type.and_then(|t| Type::try_from(t).ok()) {
            Some(Type::Revoke) => "revoke (the agent keeps no message store to delete from)",
            Some(Type::EphemeralSetting | Type::EphemeralSyncResponse) => "ephemeral setting (we never persist texts)",
            Some(Type::HistorySyncNotification) => "history sync (not requested)",
            Some(Type::AppStateSyncKeyShare | Type::AppStateSyncKeyRequest) => "app state keys (no app state sync)",
            Some(Type::MessageEdit) => "edit (not surfaced yet)",
            None => "unknown protocol message",
        };
        return Content::Ignored { why };
    }
    if msg.sender_key_distribution_message.is_some() {
        return Content::Ignored { why: "sender key distribution alone (groups are separate work)" };
    }
    Content::Ignored { why: "no supported content" }
}

/// A text as WhatsApp clients send it: `extendedTextMessage`.
pub fn text_message(text: &str) -> proto::Message {
    proto::Message {
        extended_text_message: Some(m::ExtendedTextMessage { text: Some(text.to_owned()), context_info: None }),
        ..Default::default()
    }
}

/// A reaction to message `target` of chat `chat` sent by the other side (`fromMe: false`;
/// `participant`: the reacted message's sender in a group). An empty `emoji` removes it.
pub fn reaction_message(chat: &str, participant: Option<&str>, target: &MessageId, emoji: &str, sent_at_ms: u64) -> proto::Message {
    proto::Message {
        reaction_message: Some(m::ReactionMessage {
            key: Some(proto::MessageKey {
                remote_jid: Some(chat.to_owned()),
                from_me: Some(false),
                id: Some(target.as_str().to_owned()),
                participant: participant.map(str::to_owned),
            }),
            text: Some(emoji.to_owned()),
            sender_timestamp_ms: Some(sent_at_ms as i64),
        }),
        ..Default::default()
    }
}

/// The `Message` of an outbound body for `chat` (1:1). `sent_at_ms` is the stored message's
/// creation time, so a re-send encodes the same content.
pub fn outbound_message(body: &OutboundBody, chat: &str, sent_at_ms: u64) -> proto::Message {
    match body {
        OutboundBody::Text { text } => text_message(text),
        OutboundBody::Reaction { target, emoji } => reaction_message(chat, None, target, emoji, sent_at_ms),
    }
}

/// The `<message type>` and the extra `<enc>` attributes WhatsApp clients use for `msg`:
/// `reaction` with `decrypt-fail="hide"` for reactions (so a device that cannot decrypt it shows
/// no placeholder), `text` otherwise. Facts from Baileys 7 (`getMessageType`, `relayMessage`).
pub fn stanza_kind(msg: &proto::Message) -> (&'static str, &'static [(&'static str, &'static str)]) {
    if msg.reaction_message.is_some() {
        ("reaction", &[("decrypt-fail", "hide")])
    } else {
        ("text", &[])
    }
}

/// The copy of `msg` for our own other devices.
pub fn device_sent(destination: &str, msg: &proto::Message) -> proto::Message {
    proto::Message {
        device_sent_message: Some(Box::new(m::DeviceSentMessage {
            destination_jid: Some(destination.to_owned()),
            message: Some(Box::new(msg.clone())),
            phash: None,
        })),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue11_ack_reaction_encodes_as_reaction_message_with_the_key_of_the_contacts_message() {
        let body = OutboundBody::Reaction { target: MessageId::new("3EB0ABC"), emoji: "👀".into() };
        let msg = outbound_message(&body, "15550001111@s.whatsapp.net", 1_700_000_000_123);
        let bytes = msg.encode_to_vec();
        let back = proto::Message::decode(bytes.as_slice()).unwrap();
        let r = back.reaction_message.as_ref().unwrap();
        let k = r.key.as_ref().unwrap();
        assert_eq!(k.remote_jid.as_deref(), Some("15550001111@s.whatsapp.net"));
        assert_eq!((k.from_me, k.id.as_deref(), k.participant.as_deref()), (Some(false), Some("3EB0ABC"), None));
        assert_eq!((r.text.as_deref(), r.sender_timestamp_ms), (Some("👀"), Some(1_700_000_000_123)));
        assert!(back.extended_text_message.is_none() && back.conversation.is_none());
        assert_eq!(stanza_kind(&back), ("reaction", &[("decrypt-fail", "hide")][..]));
        // Our decoder reads it back as the same reaction.
        assert_eq!(classify(&back), Content::Deliver { body: InboundBody::Reaction { target: MessageId::new("3EB0ABC"), emoji: "👀".into() }, reply_to: None });
        let text = outbound_message(&OutboundBody::Text { text: "hi".into() }, "x", 0);
        assert_eq!(text, text_message("hi"));
        assert_eq!(stanza_kind(&text).0, "text");
        let g = reaction_message("123@g.us", Some("1555@s.whatsapp.net"), &MessageId::new("M"), "", 5);
        assert_eq!(g.reaction_message.unwrap().key.unwrap().participant.as_deref(), Some("1555@s.whatsapp.net"));
    }

    #[test]
    fn texts_reactions_media_and_protocol_messages_classify() {
        let t = text_message("hi").encode_to_vec();
        assert_eq!(decode(&t).unwrap(), Content::Deliver { body: InboundBody::Text { text: "hi".into() }, reply_to: None });
        let c = proto::Message { conversation: Some("yo".into()), ..Default::default() };
        assert!(matches!(classify(&c), Content::Deliver { body: InboundBody::Text { .. }, .. }));
        let r = proto::Message {
            reaction_message: Some(m::ReactionMessage {
                key: Some(proto::MessageKey { id: Some("M1".into()), ..Default::default() }),
                text: Some("👍".into()),
                sender_timestamp_ms: None,
            }),
            ..Default::default()
        };
        assert_eq!(
            classify(&r),
            Content::Deliver { body: InboundBody::Reaction { target: MessageId::new("M1"), emoji: "👍".into() }, reply_to: None }
        );
        let img = proto::Message {
            image_message: Some(m::ImageMessage { caption: Some("cap".into()), mimetype: Some("image/jpeg".into()), context_info: None }),
            ..Default::default()
        };
        assert!(matches!(classify(&img), Content::Deliver { body: InboundBody::Media { kind: MediaKind::Image, .. }, .. }));
        let revoke = proto::Message {
            protocol_message: Some(m::ProtocolMessage { key: None, r#type: Some(0), ephemeral_expiration: None }),
            ..Default::default()
        };
        assert!(matches!(classify(&revoke), Content::Ignored { .. }));
        let ds = device_sent("1@s.whatsapp.net", &text_message("x"));
        match classify(&ds) {
            Content::SentByUs { destination, inner } => {
                assert_eq!(destination, "1@s.whatsapp.net");
                assert!(matches!(*inner, Content::Deliver { .. }));
            }
            other => panic!("{other:?}"),
        }
        assert!(decode(&[0xff, 0xff, 0xff]).is_err());
    }
}
