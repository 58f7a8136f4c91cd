//! The receive path as a sans-IO core: an incoming `<message>` plus what the driver loaded from
//! the store → the [`Action`]s to run, **in order**: persist (session, consumed prekey, identity,
//! dedupe row in one transaction), emit the inbound message, then send the delivery receipt and
//! the ack. An undecryptable message yields a retry receipt (with our keys from count 2) and an
//! ack, and persists nothing. No sockets, files or clock reads here: time and randomness come in.

use crate::channels::whatsapp::binary::Node;
use crate::channels::whatsapp::crypto::{Entropy, KeyPair};
use crate::channels::whatsapp::proto;
use crate::channels::whatsapp::signal::sender_key::SenderKeyRecord;
use crate::channels::whatsapp::signal::{
    self, LocalIdentity, PreKeySignalMessage, PreKeys, SessionRecord, padding,
};
use prost::Message as _;
use crate::messaging::{ChatId, InboundMessage, MessageId};

use super::content::{self, Content};
use super::stanza::{self, IncomingMessage, Jid, RetryKeys};

/// Retry receipts sent per message before we give up on it (WhatsApp clients stop at 5).
pub const MAX_RETRIES: u32 = 5;

/// The pairwise ciphertext of a message, if it has one (`pkmsg` preferred over `msg`).
pub fn pairwise_enc(msg: &IncomingMessage) -> Option<&stanza::Enc> {
    msg.encs.iter().find(|e| e.kind == "pkmsg").or_else(|| msg.encs.iter().find(|e| e.kind == "msg"))
}

/// The one-time and signed prekey ids a `pkmsg` names, for the driver to load.
pub fn prekey_ids(msg: &IncomingMessage) -> Option<(Option<u32>, u32)> {
    let e = pairwise_enc(msg)?;
    if e.kind != "pkmsg" {
        return None;
    }
    let p = PreKeySignalMessage::decode(&e.ciphertext).ok()?;
    Some((p.pre_key_id, p.signed_pre_key_id))
}

/// The address the sending device's session is stored under: its LID device JID when the
/// server told us the LID (`sender_lid`), as Baileys 7 keys sessions, else the JID it came from.
pub fn session_address(msg: &IncomingMessage) -> String {
    match &msg.alt {
        Some(alt) if msg.from.server == "s.whatsapp.net" && alt.server == "lid" => alt.with_device(msg.from.device).device_jid(),
        _ => msg.from.device_jid(),
    }
}

/// What the driver loaded for one message.
#[derive(Default)]
pub struct Loaded {
    /// Whether `(remote, id)` was already processed.
    pub duplicate: bool,
    /// The stored session record of the sending device (decoded), if any.
    pub record: Option<SessionRecord>,
    /// Our signed prekey the `pkmsg` names.
    pub signed: Option<KeyPair>,
    /// Our one-time prekey the `pkmsg` names.
    pub one_time: Option<KeyPair>,
    /// How many retry receipts we already sent for this message.
    pub retries_sent: u32,
    /// Our keys for a retry receipt (the driver loads them when `retries_sent ≥ 1`).
    pub retry_keys: Option<RetryKeys>,
    /// Groups: the participant device's sender key in this group.
    pub sender_key: Option<SenderKeyRecord>,
    /// Groups: the participant's phone-number user JID, when a LID mapping knows it.
    pub sender_pn: Option<String>,
    /// Groups: the participant is this account (another of its devices).
    pub sender_is_me: bool,
}

/// Who we are, for building messages and receipts.
#[derive(Clone, Debug)]
pub struct Me {
    /// Channel account id (`default`).
    pub account_id: String,
    /// Our identity and registration id.
    pub local: LocalIdentity,
}

/// The transaction the driver commits before anything else.
#[derive(Debug, Clone)]
pub struct Persist {
    /// Dedupe key: the sender's user JID.
    pub remote: String,
    /// The message id.
    pub message_id: String,
    /// The session address (device JID) and its new record.
    pub session: Option<(String, SessionRecord)>,
    /// The one-time prekey consumed.
    pub consumed_prekey: Option<u32>,
    /// The sender device's identity key.
    pub identity: Option<(String, [u8; 32])>,
    /// PN ↔ LID learned from the stanza: `(pn user jid, lid user jid)`.
    pub lid_mapping: Option<(String, String)>,
    /// Groups: `(group, sender device, record)`, the participant's sender key after this message.
    pub sender_key: Option<(String, String, SenderKeyRecord)>,
    /// Whether `(remote, message_id)` is marked processed (false when the message still needs
    /// the sender's re-send: the pairwise part decrypted but the `skmsg` did not).
    pub mark_processed: bool,
}

/// One step for the driver, run in order.
#[derive(Debug, Clone)]
pub enum Action {
    /// Commit this; if the store says the id was a duplicate, skip the following `Emit`.
    Persist(Box<Persist>),
    /// Hand this to the inbound queue.
    Emit(Box<InboundMessage>),
    /// Write this stanza.
    Send(Node),
    /// Count a retry receipt sent for this message id.
    RetrySent(String),
    /// Log a dropped message (never its content).
    Drop {
        /// Why.
        why: String,
    },
}

/// The chat of a 1:1 message, as the user knows it (the phone-number JID when we have one).
fn chat_of(msg: &IncomingMessage) -> Jid {
    let user = msg.from.with_device(0);
    match &msg.alt {
        Some(alt) if user.server == "lid" && alt.server == "s.whatsapp.net" => alt.with_device(0),
        _ => user,
    }
}

fn e164(j: &Jid) -> Option<String> {
    (j.server == "s.whatsapp.net").then(|| format!("+{}", j.user))
}

fn delivery_actions(msg: &IncomingMessage) -> Vec<Action> {
    vec![
        Action::Send(stanza::receipt(&msg.from.device_jid(), msg.participant.as_deref(), std::slice::from_ref(&msg.id), None)),
    ]
}

/// Decides what to do with `msg`. `now_s` is the wall clock in unix seconds.
pub fn process(me: &Me, msg: &IncomingMessage, loaded: Loaded, now_s: u64, rng: &dyn Entropy) -> Vec<Action> {
    let chat = chat_of(msg);
    if super::group_inbound::is_group(msg) {
        return super::group_inbound::process(me, msg, loaded, now_s, rng);
    }
    if msg.participant.is_some() || !msg.from.is_user() {
        // Groups and broadcasts are separate work: acknowledged so the server stops resending.
        return vec![Action::Drop { why: "group or broadcast message (not supported yet)".into() }];
    }
    if loaded.duplicate {
        let mut a = vec![Action::Drop { why: "duplicate message id (already processed)".into() }];
        a.extend(delivery_actions(msg));
        return a;
    }
    let Some(enc) = pairwise_enc(msg) else {
        return vec![Action::Drop { why: "no pkmsg/msg ciphertext".into() }];
    };
    let mut record = loaded.record.unwrap_or_default();
    let decrypted = if enc.kind == "pkmsg" {
        PreKeySignalMessage::decode(&enc.ciphertext).map_err(signal::SessionError::from).and_then(|p| {
            record.decrypt_pkmsg(&me.local, PreKeys { signed: loaded.signed.as_ref(), one_time: loaded.one_time.as_ref() }, &p, rng)
        })
    } else {
        record.decrypt_msg(&enc.ciphertext, rng)
    };
    let d = match decrypted {
        Ok(d) => d,
        Err(e) if e.is_duplicate() => {
            // Already decrypted once (a replay, or a re-delivery under another id): nothing to
            // retry; acknowledged and dropped.
            return vec![Action::Drop { why: format!("replayed {} ({e})", enc.kind) }];
        }
        Err(e) => {
            if loaded.retries_sent >= MAX_RETRIES {
                return vec![Action::Drop { why: format!("undecryptable after {MAX_RETRIES} retries: {e}") }];
            }
            let count = loaded.retries_sent + 1;
            let keys = if count >= 2 { loaded.retry_keys.as_ref() } else { None };
            return vec![
                Action::Drop { why: format!("undecryptable {} ({e}); retry receipt {count}", enc.kind) },
                Action::Send(stanza::retry_receipt(msg, count, me.local.registration_id, now_s, keys)),
                Action::RetrySent(msg.id.clone()),
            ];
        }
    };
    let lid_mapping = match (&msg.alt, msg.from.server.as_str()) {
        (Some(alt), "s.whatsapp.net") if alt.server == "lid" => Some((msg.from.user_jid(), alt.user_jid())),
        (Some(alt), "lid") if alt.server == "s.whatsapp.net" => Some((alt.user_jid(), msg.from.user_jid())),
        _ => None,
    };
    let persist = Persist {
        remote: chat.user_jid(),
        message_id: msg.id.clone(),
        session: Some((session_address(msg), record)),
        consumed_prekey: d.consumed_pre_key,
        identity: Some((session_address(msg), d.remote_identity)),
        lid_mapping,
        sender_key: None,
        mark_processed: true,
    };
    let mut actions = vec![Action::Persist(Box::new(persist))];
    let decoded = padding::unpad(&d.plaintext)
        .map_err(|e| e.to_string())
        .and_then(|p| proto::Message::decode(p).map_err(|e| format!("plaintext is not a Message protobuf: {e}")));
    let ctx = decoded.as_ref().map(super::context::context).unwrap_or_default();
    let content = decoded.map(|m| content::classify(&m));
    let (content, from_me, chat_id) = match content {
        Ok(Content::SentByUs { destination, inner }) => (*inner, true, destination),
        Ok(c) => (c, false, chat.user_jid()),
        Err(e) => {
            // Decrypted but not a message: the ratchet advanced, so commit and ack; nothing to show.
            actions.push(Action::Drop { why: format!("decrypted payload unusable: {e}") });
            actions.extend(delivery_actions(msg));
            return actions;
        }
    };
    match content {
        Content::Deliver { body, reply_to } => {
            actions.push(Action::Emit(Box::new(InboundMessage {
                channel: "whatsapp".into(),
                account_id: me.account_id.clone(),
                chat: ChatId::new(chat_id),
                sender: ChatId::new(chat.user_jid()),
                sender_e164: e164(&chat),
                sender_name: msg.notify.clone(),
                id: MessageId::new(msg.id.clone()),
                timestamp_ms: msg.t.saturating_mul(1000),
                is_group: false,
                from_me,
                reply_to,
                reply_to_sender: ctx.quoted_sender,
                mentions: ctx.mentions,
                body,
            })));
        }
        Content::SentByUs { .. } => actions.push(Action::Drop { why: "nested deviceSentMessage".into() }),
        Content::Ignored { why } => actions.push(Action::Drop { why: format!("ignored on purpose: {why}") }),
    }
    actions.extend(delivery_actions(msg));
    actions
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channels::whatsapp::crypto::SeededEntropy;
    use crate::channels::whatsapp::signal::PreKeyBundle;

    struct Party {
        me: Me,
        signed: KeyPair,
        signed_sig: Vec<u8>,
        one_time: KeyPair,
    }

    fn party(seed: u64, reg: u32) -> Party {
        let rng = SeededEntropy::new(seed);
        let id = KeyPair::generate(&rng);
        let signed = KeyPair::generate(&rng);
        let mut m = vec![5u8];
        m.extend_from_slice(&signed.public);
        let signed_sig = id.sign(&m, &rng).to_vec();
        Party {
            me: Me { account_id: "default".into(), local: LocalIdentity { key_pair: id, registration_id: reg } },
            signed,
            signed_sig,
            one_time: KeyPair::generate(&rng),
        }
    }

    fn bundle(p: &Party) -> PreKeyBundle {
        PreKeyBundle {
            registration_id: p.me.local.registration_id,
            identity_key: p.me.local.key_pair.public,
            signed_pre_key_id: 1,
            signed_pre_key: p.signed.public,
            signed_pre_key_signature: p.signed_sig.clone(),
            pre_key: Some((9, p.one_time.public)),
        }
    }

    fn stanza(kind: &str, ct: Vec<u8>, id: &str) -> IncomingMessage {
        IncomingMessage {
            id: id.into(),
            from: Jid::parse("15550003333:7@s.whatsapp.net").unwrap(),
            alt: Jid::parse("999:7@lid"),
            recipient: None,
            participant: None,
            notify: Some("Bob".into()),
            t: 100,
            offline: false,
            encs: vec![stanza::Enc { kind: kind.into(), ciphertext: ct }],
        }
    }

    #[test]
    fn a_pkmsg_then_a_msg_decrypt_persist_emit_then_receipt_in_that_order() {
        let rng = SeededEntropy::new(7);
        let us = party(1, 11);
        let bob = party(2, 22);
        let mut bob_rec = SessionRecord::new();
        bob_rec.start_outgoing(&bob.me.local, &bundle(&us), &rng).unwrap();
        let (ty, ct) = bob_rec.encrypt(&padding::pad(&content::text_message("hello").encode_to_vec(), &rng)).unwrap();
        let m = stanza(ty.as_str(), ct, "M1");
        assert_eq!(prekey_ids(&m), Some((Some(9), 1)));
        let loaded = Loaded { signed: Some(us.signed.clone()), one_time: Some(us.one_time.clone()), ..Default::default() };
        let actions = process(&us.me, &m, loaded, 5, &rng);
        let kinds: Vec<&str> = actions
            .iter()
            .map(|a| match a {
                Action::Persist(_) => "persist",
                Action::Emit(_) => "emit",
                Action::Send(_) => "send",
                Action::RetrySent(_) => "retry",
                Action::Drop { .. } => "drop",
            })
            .collect();
        assert_eq!(kinds, ["persist", "emit", "send"]);
        let Action::Persist(p) = &actions[0] else { unreachable!() };
        assert_eq!(p.consumed_prekey, Some(9));
        assert_eq!(p.lid_mapping, Some(("15550003333@s.whatsapp.net".into(), "999@lid".into())));
        let Action::Emit(e) = &actions[1] else { unreachable!() };
        assert_eq!(e.body.text(), Some("hello"));
        assert_eq!(e.sender_e164.as_deref(), Some("+15550003333"));
        assert_eq!(e.timestamp_ms, 100_000);
        let stored = p.session.as_ref().unwrap().1.clone();
        // A garbage msg on that session: retry receipt 1 without keys, nothing persisted.
        let bad = stanza("msg", vec![0x33, 1, 2, 3], "M2");
        let a = process(&us.me, &bad, Loaded { record: Some(stored.clone()), ..Default::default() }, 5, &rng);
        assert!(a.iter().all(|a| !matches!(a, Action::Persist(_) | Action::Emit(_))));
        let retry = a.iter().find_map(|a| if let Action::Send(n) = a { Some(n) } else { None }).unwrap();
        assert_eq!(retry.get_attr("type"), Some("retry"));
        assert!(retry.child("keys").is_none());
        // The same garbage again after 5 retries: a logged drop, no receipt.
        let a = process(&us.me, &bad, Loaded { record: Some(stored.clone()), retries_sent: MAX_RETRIES, ..Default::default() }, 5, &rng);
        assert!(matches!(a.as_slice(), [Action::Drop { .. }]));
        // A duplicate id is acknowledged again, not emitted.
        let a = process(&us.me, &m, Loaded { duplicate: true, ..Default::default() }, 5, &rng);
        assert!(a.iter().any(|a| matches!(a, Action::Send(_))) && !a.iter().any(|a| matches!(a, Action::Emit(_))));
    }

    proptest::proptest! {
        #[test]
        fn garbage_ciphertexts_never_panic_and_never_persist(kind in proptest::sample::select(vec!["msg", "pkmsg", "skmsg"]), ct in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..120)) {
            let rng = SeededEntropy::new(3);
            let us = party(1, 11);
            let m = stanza(kind, ct, "G");
            let a = process(&us.me, &m, Loaded { signed: Some(us.signed.clone()), ..Default::default() }, 5, &rng);
            proptest::prop_assert!(a.iter().all(|a| !matches!(a, Action::Persist(_) | Action::Emit(_))));
        }
    }
}
