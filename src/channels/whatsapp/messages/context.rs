//! What a decrypted `Message` says beyond its body: the `contextInfo` (mentions, the quoted
//! message's sender) and a sender-key distribution for a group. Pure.

use prost::Message as _;

use crate::channels::whatsapp::proto::{self, message as m};
use crate::messaging::ChatId;

/// The parts of a message's `contextInfo` the routing layer uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Context {
    /// `contextInfo.mentionedJid`, in order (PN or LID JIDs).
    pub mentions: Vec<ChatId>,
    /// `contextInfo.participant`: who wrote the quoted message.
    pub quoted_sender: Option<ChatId>,
}

/// A sender-key distribution carried by a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Distribution {
    /// The group it is for (`…@g.us`), as the sender named it.
    pub group: String,
    /// The `axolotlSenderKeyDistributionMessage` bytes (`0x33 ‖ protobuf`).
    pub bytes: Vec<u8>,
}

fn context_info(msg: &proto::Message) -> Option<&proto::ContextInfo> {
    if let Some(d) = &msg.device_sent_message {
        return d.message.as_deref().and_then(context_info);
    }
    msg.extended_text_message
        .as_ref()
        .and_then(|x| x.context_info.as_ref())
        .or_else(|| msg.image_message.as_ref().and_then(|x| x.context_info.as_ref()))
        .or_else(|| msg.video_message.as_ref().and_then(|x| x.context_info.as_ref()))
        .or_else(|| msg.audio_message.as_ref().and_then(|x| x.context_info.as_ref()))
        .or_else(|| msg.document_message.as_ref().and_then(|x| x.context_info.as_ref()))
        .or_else(|| msg.sticker_message.as_ref().and_then(|x| x.context_info.as_ref()))
        .or_else(|| msg.contact_message.as_ref().and_then(|x| x.context_info.as_ref()))
        .or_else(|| msg.location_message.as_ref().and_then(|x| x.context_info.as_ref()))
}

/// The message's mentions and quoted sender (empty when it has no `contextInfo`).
pub fn context(msg: &proto::Message) -> Context {
    let Some(ci) = context_info(msg) else { return Context::default() };
    Context {
        mentions: ci.mentioned_jid.iter().filter(|j| !j.is_empty()).map(|j| ChatId::new(j.clone())).collect(),
        quoted_sender: ci.participant.clone().filter(|p| !p.is_empty()).map(ChatId::new),
    }
}

/// The sender-key distribution the message carries, if any.
pub fn distribution(msg: &proto::Message) -> Option<Distribution> {
    let d = msg.sender_key_distribution_message.as_ref()?;
    Some(Distribution {
        group: d.group_id.clone().unwrap_or_default(),
        bytes: d.axolotl_sender_key_distribution_message.clone()?,
    })
}

/// Whether the message carries nothing but a sender-key distribution (what a group sender puts
/// in the pairwise part next to the `skmsg`).
pub fn is_distribution_only(msg: &proto::Message) -> bool {
    msg.sender_key_distribution_message.is_some()
        && proto::Message { sender_key_distribution_message: None, ..msg.clone() }
            == proto::Message::default()
}

/// The message that hands our sender key for `group` to a participant device.
pub fn distribution_message(group: &str, skdm: Vec<u8>) -> proto::Message {
    proto::Message {
        sender_key_distribution_message: Some(m::SenderKeyDistributionMessage {
            group_id: Some(group.to_owned()),
            axolotl_sender_key_distribution_message: Some(skdm),
        }),
        ..Default::default()
    }
}

/// A text that quotes `stanza_id` by `participant` (group replies), optionally mentioning JIDs.
pub fn quoting_text(text: &str, stanza_id: Option<&str>, participant: Option<&str>) -> proto::Message {
    let context_info = stanza_id.map(|id| proto::ContextInfo {
        stanza_id: Some(id.to_owned()),
        participant: participant.map(str::to_owned),
        // The quoted body is not kept (we store no message texts); clients show the quote by id.
        quoted_message: Some(proto::Message { conversation: Some(String::new()), ..Default::default() }.encode_to_vec()),
        ..Default::default()
    });
    proto::Message {
        extended_text_message: Some(m::ExtendedTextMessage { text: Some(text.to_owned()), context_info }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mentions_and_quoted_sender_come_from_context_info_also_inside_device_sent() {
        let mut msg = quoting_text("hi @1", Some("Q1"), Some("1@s.whatsapp.net"));
        if let Some(e) = msg.extended_text_message.as_mut()
            && let Some(ci) = e.context_info.as_mut()
        {
            ci.mentioned_jid = vec!["1@s.whatsapp.net".into(), "77@lid".into(), String::new()];
        }
        let back = proto::Message::decode(msg.encode_to_vec().as_slice()).unwrap();
        let c = context(&back);
        assert_eq!(c.mentions, vec![ChatId::new("1@s.whatsapp.net"), ChatId::new("77@lid")]);
        assert_eq!(c.quoted_sender, Some(ChatId::new("1@s.whatsapp.net")));
        let ds = super::super::content::device_sent("g@g.us", &back);
        assert_eq!(context(&ds), c);
        assert_eq!(context(&super::super::content::text_message("x")), Context::default());
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_messages_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            if let Ok(m) = proto::Message::decode(bytes.as_slice()) {
                let c = context(&m);
                proptest::prop_assert!(c.mentions.iter().all(|j| !j.as_str().is_empty()));
                let _ = distribution(&m);
                let _ = is_distribution_only(&m);
            }
        }
    }

    #[test]
    fn a_distribution_alone_is_recognised() {
        let d = distribution_message("1-2@g.us", vec![0x33, 1]);
        let back = proto::Message::decode(d.encode_to_vec().as_slice()).unwrap();
        assert_eq!(distribution(&back), Some(Distribution { group: "1-2@g.us".into(), bytes: vec![0x33, 1] }));
        assert!(is_distribution_only(&back));
        let mut with_text = back.clone();
        with_text.conversation = Some("hi".into());
        assert!(!is_distribution_only(&with_text));
        assert_eq!(distribution(&super::super::content::text_message("x")), None);
    }
}
