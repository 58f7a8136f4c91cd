//! The receive path of a group message as a sans-IO core (issue 12 item 1): a
//! `<message from=group participant=device>` with an optional pairwise `pkmsg`/`msg` (which may
//! carry the participant's sender-key distribution, or the whole message on a retry) and an
//! optional `skmsg` → ordered [`Action`]s, like [`super::inbound::process`]: persist (pairwise
//! session, consumed prekey, identity, the participant's sender key, dedupe row — one
//! transaction), emit, receipt. An `skmsg` we cannot decrypt (no key yet, bad signature, too far
//! ahead) gets a retry receipt to that participant; a pairwise part that did decrypt is still
//! committed then, but the message id is not marked processed so the sender's answer (same id)
//! is handled.

use crate::channels::whatsapp::crypto::Entropy;
use crate::channels::whatsapp::proto;
use crate::channels::whatsapp::signal::sender_key::{SenderKeyDistribution, SenderKeyError};
use crate::channels::whatsapp::signal::{self, PreKeySignalMessage, PreKeys, padding};
use crate::messaging::{ChatId, InboundMessage, MessageId};

use super::content::{self, Content};
use super::context;
use super::inbound::{Action, Loaded, MAX_RETRIES, Me, Persist, pairwise_enc};
use super::stanza::{self, IncomingMessage, Jid};

/// Whether `msg` is a group message this path handles.
pub fn is_group(msg: &IncomingMessage) -> bool {
    msg.from.server == "g.us" && msg.participant.is_some()
}

/// The participant device that sent a group message.
pub fn participant(msg: &IncomingMessage) -> Option<Jid> {
    msg.participant.as_deref().and_then(Jid::parse).filter(Jid::is_user)
}

/// Where the participant device's pairwise session is stored: its LID device JID when the
/// server named it (`participant_lid`), else the participant JID (as in the 1:1 path).
pub fn session_address(msg: &IncomingMessage) -> Option<String> {
    let p = participant(msg)?;
    Some(match &msg.alt {
        Some(alt) if p.server == "s.whatsapp.net" && alt.server == "lid" => alt.with_device(p.device).device_jid(),
        _ => p.device_jid(),
    })
}

/// The key a participant's sender key is stored under in the group: its device JID as the
/// group addresses it (LID in LID groups, PN in PN groups).
pub fn sender_key_address(msg: &IncomingMessage) -> Option<String> {
    participant(msg).map(|p| p.device_jid())
}

fn e164(j: &Jid) -> Option<String> {
    (j.server == "s.whatsapp.net").then(|| format!("+{}", j.user))
}

fn receipt(msg: &IncomingMessage) -> Action {
    Action::Send(stanza::receipt(&msg.from.user_jid(), msg.participant.as_deref(), std::slice::from_ref(&msg.id), None))
}

fn retry(me: &Me, msg: &IncomingMessage, loaded: &Loaded, now_s: u64, why: String) -> Vec<Action> {
    if loaded.retries_sent >= MAX_RETRIES {
        return vec![Action::Drop { why: format!("undecryptable after {MAX_RETRIES} retries: {why}") }];
    }
    let count = loaded.retries_sent + 1;
    let keys = if count >= 2 { loaded.retry_keys.as_ref() } else { None };
    vec![
        Action::Drop { why: format!("{why}; retry receipt {count}") },
        Action::Send(stanza::retry_receipt(msg, count, me.local.registration_id, now_s, keys)),
        Action::RetrySent(msg.id.clone()),
    ]
}

fn decode_plain(plain: &[u8]) -> Result<proto::Message, String> {
    use prost::Message as _;
    let p = padding::unpad(plain).map_err(|e| e.to_string())?;
    proto::Message::decode(p).map_err(|e| format!("plaintext is not a Message protobuf: {e}"))
}

/// Decides what to do with a group message. `loaded.record` is the participant device's
/// pairwise session, `loaded.sender_key` its sender key in this group.
pub fn process(me: &Me, msg: &IncomingMessage, loaded: Loaded, now_s: u64, rng: &dyn Entropy) -> Vec<Action> {
    let (Some(sender), Some(sk_addr), Some(addr)) = (participant(msg), sender_key_address(msg), session_address(msg)) else {
        return vec![Action::Drop { why: "group message without a valid participant".into() }];
    };
    if loaded.duplicate {
        return vec![Action::Drop { why: "duplicate message id (already processed)".into() }, receipt(msg)];
    }
    let group = msg.from.user_jid();
    let mut persist = Persist {
        remote: group.clone(),
        message_id: msg.id.clone(),
        session: None,
        consumed_prekey: None,
        identity: None,
        lid_mapping: match &msg.alt {
            Some(alt) if sender.server == "s.whatsapp.net" && alt.server == "lid" => Some((sender.user_jid(), alt.user_jid())),
            Some(alt) if sender.server == "lid" && alt.server == "s.whatsapp.net" => Some((alt.user_jid(), sender.user_jid())),
            _ => None,
        },
        sender_key: None,
        mark_processed: true,
    };
    let mut sender_key = loaded.sender_key.clone().unwrap_or_default();
    let mut sender_key_changed = false;
    let mut message: Option<proto::Message> = None;
    let mut notes: Vec<Action> = Vec::new();

    if let Some(enc) = pairwise_enc(msg) {
        let mut record = loaded.record.clone().unwrap_or_default();
        let decrypted = if enc.kind == "pkmsg" {
            PreKeySignalMessage::decode(&enc.ciphertext).map_err(signal::SessionError::from).and_then(|p| {
                record.decrypt_pkmsg(&me.local, PreKeys { signed: loaded.signed.as_ref(), one_time: loaded.one_time.as_ref() }, &p, rng)
            })
        } else {
            record.decrypt_msg(&enc.ciphertext, rng)
        };
        match decrypted {
            Ok(d) => {
                persist.session = Some((addr.clone(), record));
                persist.consumed_prekey = d.consumed_pre_key;
                persist.identity = Some((addr.clone(), d.remote_identity));
                match decode_plain(&d.plaintext) {
                    Ok(m) => {
                        if let Some(dist) = context::distribution(&m) {
                            match SenderKeyDistribution::decode(&dist.bytes) {
                                Ok(skdm) => {
                                    sender_key.process_distribution(&skdm);
                                    sender_key_changed = true;
                                }
                                Err(e) => notes.push(Action::Drop { why: format!("malformed sender key distribution: {e}") }),
                            }
                        }
                        if !context::is_distribution_only(&m) {
                            message = Some(m);
                        }
                    }
                    Err(e) => notes.push(Action::Drop { why: format!("pairwise payload unusable: {e}") }),
                }
            }
            Err(e) if e.is_duplicate() => {
                notes.push(Action::Drop { why: format!("replayed {} ({e})", enc.kind) });
            }
            Err(e) => {
                // Without this part we may lack the sender key too: ask for the message again.
                return retry(me, msg, &loaded, now_s, format!("undecryptable group {} ({e})", enc.kind));
            }
        }
    }

    if let Some(enc) = msg.encs.iter().find(|e| e.kind == "skmsg")
        && message.is_none()
    {
        let mut next = sender_key.clone();
        match next.decrypt(&enc.ciphertext) {
            Ok(plain) => {
                sender_key = next;
                sender_key_changed = true;
                match decode_plain(&plain) {
                    Ok(m) => message = Some(m),
                    Err(e) => notes.push(Action::Drop { why: format!("group payload unusable: {e}") }),
                }
            }
            Err(SenderKeyError::Duplicate(i)) => notes.push(Action::Drop { why: format!("replayed skmsg (iteration {i})") }),
            Err(e) => {
                let why = format!("undecryptable skmsg ({e})");
                let mut a = Vec::new();
                if persist.session.is_some() || sender_key_changed {
                    // The pairwise part advanced the ratchet (or brought a key): keep it, but
                    // leave the id unprocessed so the sender's re-send is handled.
                    persist.mark_processed = false;
                    persist.sender_key = sender_key_changed.then(|| (group.clone(), sk_addr.clone(), sender_key.clone()));
                    a.push(Action::Persist(Box::new(persist)));
                }
                a.extend(retry(me, msg, &loaded, now_s, why));
                return a;
            }
        }
    }

    persist.sender_key = sender_key_changed.then(|| (group.clone(), sk_addr.clone(), sender_key));
    let mut actions = vec![Action::Persist(Box::new(persist))];
    actions.extend(notes);
    match message {
        Some(m) => {
            let ctx = context::context(&m);
            match content::classify(&m) {
                Content::Deliver { body, reply_to } => {
                    let sender_user = sender.with_device(0);
                    let sender_e164 = e164(&sender_user)
                        .or_else(|| msg.alt.as_ref().and_then(e164))
                        .or_else(|| loaded.sender_pn.as_deref().and_then(Jid::parse).and_then(|j| e164(&j)));
                    actions.push(Action::Emit(Box::new(InboundMessage {
                        channel: "whatsapp".into(),
                        account_id: me.account_id.clone(),
                        chat: ChatId::new(group),
                        sender: ChatId::new(sender_user.user_jid()),
                        sender_e164,
                        sender_name: msg.notify.clone(),
                        id: MessageId::new(msg.id.clone()),
                        timestamp_ms: msg.t.saturating_mul(1000),
                        is_group: true,
                        from_me: loaded.sender_is_me,
                        reply_to,
                        reply_to_sender: ctx.quoted_sender,
                        mentions: ctx.mentions,
                        body,
                    })));
                }
                Content::SentByUs { .. } => actions.push(Action::Drop { why: "deviceSentMessage in a group".into() }),
                Content::Ignored { why } => actions.push(Action::Drop { why: format!("ignored on purpose: {why}") }),
            }
        }
        None if msg.encs.iter().any(|e| e.kind == "skmsg") => {}
        None => actions.push(Action::Drop { why: "sender key distribution only".into() }),
    }
    actions.push(receipt(msg));
    actions
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channels::whatsapp::crypto::{KeyPair, SeededEntropy};
    use crate::channels::whatsapp::signal::sender_key::SenderKeyRecord;
    use crate::channels::whatsapp::signal::{LocalIdentity, PreKeyBundle, SessionRecord};
    use prost::Message as _;

    fn me(rng: &SeededEntropy) -> (Me, KeyPair, Vec<u8>) {
        let id = KeyPair::generate(rng);
        let signed = KeyPair::generate(rng);
        let mut m = vec![5u8];
        m.extend_from_slice(&signed.public);
        let sig = id.sign(&m, rng).to_vec();
        (Me { account_id: "default".into(), local: LocalIdentity { key_pair: id, registration_id: 11 } }, signed, sig)
    }

    fn group_stanza(id: &str, encs: Vec<(&str, Vec<u8>)>) -> IncomingMessage {
        IncomingMessage {
            id: id.into(),
            from: Jid::parse("120363001@g.us").unwrap(),
            alt: Jid::parse("15550003333:4@s.whatsapp.net"),
            recipient: None,
            participant: Some("999:4@lid".into()),
            notify: Some("Ann".into()),
            t: 7,
            offline: false,
            encs: encs.into_iter().map(|(k, c)| stanza::Enc { kind: k.into(), ciphertext: c }).collect(),
        }
    }

    fn kinds(a: &[Action]) -> Vec<&'static str> {
        a.iter()
            .map(|a| match a {
                Action::Persist(_) => "persist",
                Action::Emit(_) => "emit",
                Action::Send(_) => "send",
                Action::RetrySent(_) => "retry",
                Action::Drop { .. } => "drop",
            })
            .collect()
    }

    /// The participant's first message: a pkmsg with its SKDM and an skmsg with the text (with a
    /// mention and a quote); then an skmsg alone; an skmsg from an unknown key gets a retry.
    #[test]
    fn issue12_item1_skdm_then_skmsg_decrypt_and_emit_a_group_message() {
        let rng = SeededEntropy::new(5);
        let (us, signed, sig) = me(&rng);
        let bundle = PreKeyBundle {
            registration_id: 11,
            identity_key: us.local.key_pair.public,
            signed_pre_key_id: 1,
            signed_pre_key: signed.public,
            signed_pre_key_signature: sig,
            pre_key: None,
        };
        let ann = LocalIdentity { key_pair: KeyPair::generate(&rng), registration_id: 3 };
        let mut pairwise = SessionRecord::new();
        pairwise.start_outgoing(&ann, &bundle, &rng).unwrap();
        let mut ann_key = SenderKeyRecord::new_own(&rng);
        let skdm = context::distribution_message("120363001@g.us", ann_key.distribution().unwrap().encode());
        let (ty, ct) = pairwise.encrypt(&padding::pad(&skdm.encode_to_vec(), &rng)).unwrap();
        assert_eq!(ty.as_str(), "pkmsg");
        let mut text = context::quoting_text("hey @bot", Some("Q0"), Some("111@lid"));
        text.extended_text_message.as_mut().unwrap().context_info.as_mut().unwrap().mentioned_jid = vec!["222@lid".into()];
        let sk1 = ann_key.encrypt(&padding::pad(&text.encode_to_vec(), &rng), &rng).unwrap();
        let m1 = group_stanza("G1", vec![("pkmsg", ct), ("skmsg", sk1)]);
        let loaded = Loaded { signed: Some(signed.clone()), ..Default::default() };
        let a = process(&us, &m1, loaded, 9, &rng);
        assert_eq!(kinds(&a), ["persist", "emit", "send"]);
        let Action::Persist(p) = &a[0] else { unreachable!() };
        assert_eq!(p.session.as_ref().unwrap().0, "999:4@lid");
        assert!(p.mark_processed);
        let (g, s, stored_key) = p.sender_key.clone().unwrap();
        assert_eq!((g.as_str(), s.as_str()), ("120363001@g.us", "999:4@lid"));
        let Action::Emit(e) = &a[1] else { unreachable!() };
        assert!(e.is_group);
        assert_eq!(e.chat.as_str(), "120363001@g.us");
        assert_eq!(e.sender.as_str(), "999@lid");
        assert_eq!(e.sender_e164.as_deref(), Some("+15550003333"));
        assert_eq!(e.body.text(), Some("hey @bot"));
        assert_eq!(e.mentions, vec![ChatId::new("222@lid")]);
        assert_eq!(e.reply_to.as_ref().map(MessageId::as_str), Some("Q0"));
        assert_eq!(e.reply_to_sender.as_ref().map(ChatId::as_str), Some("111@lid"));
        let Action::Send(r) = &a[2] else { unreachable!() };
        assert_eq!((r.get_attr("to"), r.get_attr("participant")), (Some("120363001@g.us"), Some("999:4@lid")));

        // The next message: skmsg only, with the stored key (an iteration skipped on the way).
        ann_key.encrypt(b"skipped", &rng).unwrap();
        let sk3 = ann_key.encrypt(&padding::pad(&content::text_message("second").encode_to_vec(), &rng), &rng).unwrap();
        let m2 = group_stanza("G2", vec![("skmsg", sk3.clone())]);
        let a = process(&us, &m2, Loaded { sender_key: Some(stored_key.clone()), ..Default::default() }, 9, &rng);
        assert_eq!(kinds(&a), ["persist", "emit", "send"]);
        let Action::Emit(e) = &a[1] else { unreachable!() };
        assert_eq!(e.body.text(), Some("second"));
        assert!(e.mentions.is_empty() && e.reply_to_sender.is_none());

        // No key for this sender: a retry receipt to the participant, nothing persisted.
        let a = process(&us, &m2, Loaded::default(), 9, &rng);
        assert_eq!(kinds(&a), ["drop", "send", "retry"]);
        let Action::Send(r) = &a[1] else { unreachable!() };
        assert_eq!((r.get_attr("type"), r.get_attr("participant")), (Some("retry"), Some("999:4@lid")));
    }

    proptest::proptest! {
        #[test]
        fn garbage_group_ciphertexts_never_panic_never_emit(kinds in proptest::collection::vec(proptest::sample::select(vec!["msg", "pkmsg", "skmsg"]), 0..3), ct in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..150)) {
            let rng = SeededEntropy::new(3);
            let (us, signed, _) = me(&rng);
            let with_key = SenderKeyRecord::new_own(&rng);
            let mut theirs = SenderKeyRecord::new();
            theirs.process_distribution(&with_key.distribution().unwrap());
            let m = group_stanza("X", kinds.iter().map(|k| (*k, ct.clone())).collect());
            let a = process(&us, &m, Loaded { signed: Some(signed), sender_key: Some(theirs), ..Default::default() }, 1, &rng);
            proptest::prop_assert!(a.iter().all(|a| !matches!(a, Action::Emit(_))));
        }
    }
}
