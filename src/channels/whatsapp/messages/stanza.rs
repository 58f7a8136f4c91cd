//! Pure builders and parsers for the stanzas of the 1:1 message path (reference §6.2, §6.3):
//! incoming `<message>`, `<ack>`/`<receipt>` (delivery, read, retry with keys), usync device
//! queries, prekey bundle queries and the outgoing `<message><participants>` fan-out.

use crate::channels::whatsapp::binary::{Node, SERVER_JID};
use crate::channels::whatsapp::signal::PreKeyBundle;

/// A parsed JID: `user[:device]@server` (also `user.agent:device@server`, agent dropped).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Jid {
    /// The user part (digits for `s.whatsapp.net` and `lid`).
    pub user: String,
    /// The device (0 = the phone, or no device).
    pub device: u32,
    /// The server (`s.whatsapp.net`, `lid`, `g.us`, ...).
    pub server: String,
}

impl Jid {
    /// Parses `s`; `None` when it has no `@`.
    pub fn parse(s: &str) -> Option<Self> {
        let (left, server) = s.split_once('@')?;
        let (user, device) = match left.split_once(':') {
            Some((u, d)) => (u, d.parse().ok()?),
            None => (left, 0),
        };
        let user = user.split_once('.').map_or(user, |(u, _)| u);
        if user.is_empty() || server.is_empty() {
            return None;
        }
        Some(Self { user: user.to_owned(), device, server: server.to_owned() })
    }

    /// The user's JID without device (`user@server`): the chat of a 1:1 conversation.
    pub fn user_jid(&self) -> String {
        format!("{}@{}", self.user, self.server)
    }

    /// The device JID (`user:device@server`, or `user@server` for device 0).
    pub fn device_jid(&self) -> String {
        if self.device == 0 {
            self.user_jid()
        } else {
            format!("{}:{}@{}", self.user, self.device, self.server)
        }
    }

    /// This user's device `device`.
    pub fn with_device(&self, device: u32) -> Self {
        Self { device, ..self.clone() }
    }

    /// A 1:1 user (phone number or LID), not a group, broadcast or newsletter.
    pub fn is_user(&self) -> bool {
        self.server == "s.whatsapp.net" || self.server == "lid"
    }
}

/// One `<enc>` of an incoming message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enc {
    /// `pkmsg`, `msg` or `skmsg`.
    pub kind: String,
    /// The ciphertext.
    pub ciphertext: Vec<u8>,
}

/// The parts of an incoming `<message>` the message path uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingMessage {
    /// The message id.
    pub id: String,
    /// The sending device (the Signal session's address).
    pub from: Jid,
    /// The sender's other addressing (`sender_lid` or `sender_pn`), if the server gave it.
    pub alt: Option<Jid>,
    /// For a copy of our own message from our other device: the chat it was sent to.
    pub recipient: Option<String>,
    /// In a group: the participant device that sent it (the group is `from`).
    pub participant: Option<String>,
    /// The sender's push name.
    pub notify: Option<String>,
    /// Server timestamp (unix seconds).
    pub t: u64,
    /// Whether it came from the offline backlog.
    pub offline: bool,
    /// The ciphertexts, in order.
    pub encs: Vec<Enc>,
}

/// Why an incoming `<message>` cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StanzaError {
    /// A required attribute is missing or malformed.
    #[error("message stanza without a valid {0}")]
    Missing(&'static str),
}

/// Parses an incoming `<message>`.
pub fn parse_message(node: &Node) -> Result<IncomingMessage, StanzaError> {
    let id = node.get_attr("id").filter(|s| !s.is_empty()).ok_or(StanzaError::Missing("id"))?;
    let from = node.get_attr("from").and_then(Jid::parse).ok_or(StanzaError::Missing("from"))?;
    let alt = node
        .get_attr("sender_lid")
        .or_else(|| node.get_attr("sender_pn"))
        .or_else(|| node.get_attr("participant_lid"))
        .or_else(|| node.get_attr("participant_pn"))
        .and_then(Jid::parse);
    let encs = node
        .child_nodes()
        .iter()
        .filter(|n| n.tag == "enc")
        .filter_map(|n| {
            Some(Enc { kind: n.get_attr("type")?.to_owned(), ciphertext: n.content_bytes()?.to_vec() })
        })
        .collect();
    Ok(IncomingMessage {
        id: id.to_owned(),
        from,
        alt,
        recipient: node.get_attr("recipient").map(str::to_owned),
        participant: node.get_attr("participant").map(str::to_owned),
        notify: node.get_attr("notify").map(str::to_owned),
        t: node.get_attr("t").and_then(|t| t.parse().ok()).unwrap_or(0),
        offline: node.get_attr("offline").is_some(),
        encs,
    })
}

/// The message ids a `<receipt>` is about: its `id` and those of any `<list><item id>`.
pub fn receipt_ids(node: &Node) -> Vec<String> {
    let mut ids: Vec<String> = node.get_attr("id").map(str::to_owned).into_iter().collect();
    if let Some(list) = node.child("list") {
        ids.extend(list.child_nodes().iter().filter(|i| i.tag == "item").filter_map(|i| i.get_attr("id").map(str::to_owned)));
    }
    ids
}

/// `<ack class id to [type] [participant]>` for a stanza we received.
pub fn ack(class: &str, stanza: &Node) -> Node {
    let mut a = Node::new("ack")
        .attr("id", stanza.get_attr("id").unwrap_or_default())
        .attr("class", class)
        .attr("to", stanza.get_attr("from").unwrap_or(SERVER_JID));
    if let Some(t) = stanza.get_attr("type")
        && class != "message"
    {
        a = a.attr("type", t);
    }
    if let Some(p) = stanza.get_attr("participant") {
        a = a.attr("participant", p);
    }
    a
}

/// A delivery receipt (`type` absent) or a `read` receipt for `ids` sent by device `to`.
pub fn receipt(to: &str, participant: Option<&str>, ids: &[String], kind: Option<&str>) -> Node {
    let mut r = Node::new("receipt").attr("id", ids.first().cloned().unwrap_or_default()).attr("to", to);
    if let Some(k) = kind {
        r = r.attr("type", k);
    }
    if let Some(p) = participant {
        r = r.attr("participant", p);
    }
    if ids.len() > 1 {
        let items = ids[1..].iter().map(|i| Node::new("item").attr("id", i.clone())).collect();
        r = r.children(vec![Node::new("list").children(items)]);
    }
    r
}

/// The keys a retry receipt carries from count 2 on, so the sender can start a new session.
#[derive(Debug, Clone)]
pub struct RetryKeys {
    /// Our identity public key (32 bytes).
    pub identity: [u8; 32],
    /// A one-time prekey `(id, public)`.
    pub pre_key: (u32, [u8; 32]),
    /// The signed prekey `(id, public, signature)`.
    pub signed: (u32, [u8; 32], Vec<u8>),
    /// Our encoded `ADVSignedDeviceIdentity` (with the account signature key).
    pub device_identity: Vec<u8>,
}

fn u24(v: u32) -> Vec<u8> {
    v.to_be_bytes()[1..].to_vec()
}

/// A retry receipt as WhatsApp clients send it:
/// `<receipt id to type="retry" [participant]><retry count id t v="1"/><registration/>[<keys>]`.
pub fn retry_receipt(
    msg: &IncomingMessage,
    count: u32,
    registration_id: u32,
    now_s: u64,
    keys: Option<&RetryKeys>,
) -> Node {
    let mut r = Node::new("receipt")
        .attr("id", msg.id.clone())
        .attr("to", msg.from.device_jid())
        .attr("type", "retry");
    if let Some(p) = &msg.participant {
        r = r.attr("participant", p.clone());
    }
    let mut children = vec![
        Node::new("retry")
            .attr("count", count.to_string())
            .attr("id", msg.id.clone())
            .attr("t", now_s.to_string())
            .attr("v", "1"),
        Node::new("registration").bytes(registration_id.to_be_bytes().to_vec()),
    ];
    if let Some(k) = keys {
        children.push(Node::new("keys").children(vec![
            Node::new("type").bytes(vec![5]),
            Node::new("identity").bytes(k.identity.to_vec()),
            Node::new("key").children(vec![
                Node::new("id").bytes(u24(k.pre_key.0)),
                Node::new("value").bytes(k.pre_key.1.to_vec()),
            ]),
            Node::new("skey").children(vec![
                Node::new("id").bytes(u24(k.signed.0)),
                Node::new("value").bytes(k.signed.1.to_vec()),
                Node::new("signature").bytes(k.signed.2.clone()),
            ]),
            Node::new("device-identity").bytes(k.device_identity.clone()),
        ]));
    }
    r.children(children)
}

/// A retry receipt someone sent for one of our messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryRequest {
    /// Our message id.
    pub id: String,
    /// The device that could not decrypt.
    pub from: Jid,
    /// Its retry count.
    pub count: u32,
    /// Its registration id, if given.
    pub registration_id: Option<u32>,
    /// A bundle to start a new session with (count ≥ 2).
    pub bundle: Option<PreKeyBundle>,
}

fn be_u32(b: &[u8]) -> Option<u32> {
    if b.is_empty() || b.len() > 4 {
        return None;
    }
    Some(b.iter().fold(0u32, |a, x| (a << 8) | u32::from(*x)))
}

fn key32(n: Option<&Node>) -> Option<[u8; 32]> {
    let b = n?.content_bytes()?;
    let b = if b.len() == 33 && b[0] == 5 { &b[1..] } else { b };
    b.try_into().ok()
}

/// Parses the key children shared by bundle answers and retry `<keys>` (registration separate).
fn parse_key_material(n: &Node, registration_id: u32) -> Option<PreKeyBundle> {
    let identity_key = key32(n.child("identity"))?;
    let skey = n.child("skey")?;
    let signed_pre_key_id = be_u32(skey.child("id")?.content_bytes()?)?;
    let signed_pre_key = key32(skey.child("value"))?;
    let signed_pre_key_signature = skey.child("signature")?.content_bytes()?.to_vec();
    let pre_key = n.child("key").and_then(|k| Some((be_u32(k.child("id")?.content_bytes()?)?, key32(k.child("value"))?)));
    Some(PreKeyBundle { registration_id, identity_key, signed_pre_key_id, signed_pre_key, signed_pre_key_signature, pre_key })
}

/// Parses a `<receipt type="retry">`.
pub fn parse_retry(node: &Node) -> Option<RetryRequest> {
    let retry = node.child("retry")?;
    let id = retry.get_attr("id").or_else(|| node.get_attr("id"))?.to_owned();
    let from = node.get_attr("participant").or_else(|| node.get_attr("from")).and_then(Jid::parse)?;
    let count = retry.get_attr("count").and_then(|c| c.parse().ok()).unwrap_or(1);
    let registration_id = node.child("registration").and_then(Node::content_bytes).and_then(be_u32);
    let bundle = node.child("keys").and_then(|k| parse_key_material(k, registration_id.unwrap_or(0)));
    Some(RetryRequest { id, from, count, registration_id, bundle })
}

/// A usync query for the device lists (and LIDs) of `users` (user JIDs).
pub fn usync_devices_query(users: &[String], sid: &str) -> Node {
    let list = users.iter().map(|u| Node::new("user").attr("jid", u.clone())).collect();
    Node::new("iq").attr("to", SERVER_JID).attr("type", "get").attr("xmlns", "usync").children(vec![
        Node::new("usync")
            .attr("sid", sid)
            .attr("mode", "query")
            .attr("last", "true")
            .attr("index", "0")
            .attr("context", "message")
            .children(vec![
                Node::new("query").children(vec![Node::new("devices").attr("version", "2"), Node::new("lid")]),
                Node::new("list").children(list),
            ]),
    ])
}

/// A usync `contact` query for a phone number (`+digits`): is it on WhatsApp?
pub fn usync_contact_query(phone_digits: &str, sid: &str) -> Node {
    Node::new("iq").attr("to", SERVER_JID).attr("type", "get").attr("xmlns", "usync").children(vec![
        Node::new("usync")
            .attr("sid", sid)
            .attr("mode", "query")
            .attr("last", "true")
            .attr("index", "0")
            .attr("context", "interactive")
            .children(vec![
                Node::new("query").children(vec![Node::new("contact"), Node::new("lid")]),
                Node::new("list").children(vec![
                    Node::new("user").children(vec![Node::new("contact").text(format!("+{phone_digits}"))]),
                ]),
            ]),
    ])
}

/// One user of a usync answer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UsyncUser {
    /// The user JID as answered.
    pub jid: String,
    /// Device ids, when the `devices` protocol answered.
    pub devices: Option<Vec<u32>>,
    /// The LID (`user@lid`), when known.
    pub lid: Option<String>,
    /// `contact` protocol: `in` (on WhatsApp) or `out`.
    pub contact: Option<String>,
}

/// Parses a usync `<iq type="result">`.
pub fn parse_usync(iq: &Node) -> Vec<UsyncUser> {
    let Some(list) = iq.child("usync").and_then(|u| u.child("list")) else {
        return Vec::new();
    };
    list.child_nodes()
        .iter()
        .filter(|u| u.tag == "user")
        .map(|u| UsyncUser {
            jid: u.get_attr("jid").unwrap_or_default().to_owned(),
            devices: u.child("devices").and_then(|d| d.child("device-list")).map(|dl| {
                dl.child_nodes()
                    .iter()
                    .filter(|d| d.tag == "device")
                    .filter_map(|d| d.get_attr("id")?.parse().ok())
                    .collect()
            }),
            lid: u.child("lid").and_then(|l| l.get_attr("val")).map(str::to_owned),
            contact: u.child("contact").and_then(|c| c.get_attr("type")).map(str::to_owned),
        })
        .collect()
}

/// `<iq xmlns="encrypt" type="get"><key><user jid/>…</key></iq>`: bundles for device JIDs.
pub fn bundle_query(devices: &[String]) -> Node {
    let users = devices.iter().map(|d| Node::new("user").attr("jid", d.clone())).collect();
    Node::new("iq")
        .attr("to", SERVER_JID)
        .attr("type", "get")
        .attr("xmlns", "encrypt")
        .children(vec![Node::new("key").children(users)])
}

/// Parses a bundle answer: `(device JID, bundle)` for every device that had keys.
pub fn parse_bundles(iq: &Node) -> Vec<(String, PreKeyBundle)> {
    let Some(list) = iq.child("list") else {
        return Vec::new();
    };
    list.child_nodes()
        .iter()
        .filter(|u| u.tag == "user")
        .filter_map(|u| {
            let jid = u.get_attr("jid")?.to_owned();
            let reg = be_u32(u.child("registration")?.content_bytes()?)?;
            Some((jid, parse_key_material(u, reg)?))
        })
        .collect()
}

/// One device's ciphertext in an outgoing message.
#[derive(Debug, Clone)]
pub struct DeviceEnc {
    /// The device JID.
    pub jid: String,
    /// `pkmsg` or `msg`.
    pub kind: &'static str,
    /// The ciphertext.
    pub ciphertext: Vec<u8>,
}

/// The outgoing 1:1 message: `<message to id type="text"><participants><to jid><enc v="2">`
/// for every device, plus `<device-identity>` when any part is a `pkmsg`.
pub fn outgoing_message(to: &str, id: &str, encs: &[DeviceEnc], device_identity: Option<&[u8]>) -> Node {
    let parts = encs
        .iter()
        .map(|e| {
            Node::new("to").attr("jid", e.jid.clone()).children(vec![
                Node::new("enc").attr("v", "2").attr("type", e.kind).bytes(e.ciphertext.clone()),
            ])
        })
        .collect();
    let mut children = vec![Node::new("participants").children(parts)];
    if encs.iter().any(|e| e.kind == "pkmsg")
        && let Some(di) = device_identity
    {
        children.push(Node::new("device-identity").bytes(di.to_vec()));
    }
    Node::new("message").attr("to", to).attr("id", id).attr("type", "text").children(children)
}

/// `<presence type="available|unavailable">` or `<chatstate to><composing/|paused/>`.
pub fn chatstate(to: &str, composing: bool) -> Node {
    Node::new("chatstate")
        .attr("to", to)
        .children(vec![Node::new(if composing { "composing" } else { "paused" })])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn jids_parse_with_devices_and_agents() {
        let j = Jid::parse("15550001111:7@s.whatsapp.net").unwrap();
        assert_eq!((j.user.as_str(), j.device, j.server.as_str()), ("15550001111", 7, "s.whatsapp.net"));
        assert_eq!(j.user_jid(), "15550001111@s.whatsapp.net");
        assert_eq!(j.device_jid(), "15550001111:7@s.whatsapp.net");
        assert_eq!(Jid::parse("123.1:2@lid").unwrap().device_jid(), "123:2@lid");
        assert!(Jid::parse("nope").is_none());
        assert!(Jid::parse("1:x@s.whatsapp.net").is_none());
        assert!(!Jid::parse("1-2@g.us").unwrap().is_user());
    }

    #[test]
    fn retry_receipt_carries_keys_only_when_given() {
        let m = IncomingMessage {
            id: "ABC".into(),
            from: Jid::parse("1:7@s.whatsapp.net").unwrap(),
            alt: None,
            recipient: None,
            participant: None,
            notify: None,
            t: 1,
            offline: false,
            encs: vec![],
        };
        let r = retry_receipt(&m, 1, 0x01020304, 9, None);
        assert_eq!(r.get_attr("type"), Some("retry"));
        assert_eq!(r.get_attr("to"), Some("1:7@s.whatsapp.net"));
        assert_eq!(r.child("retry").unwrap().get_attr("count"), Some("1"));
        assert_eq!(r.child("registration").unwrap().content_bytes(), Some(&[1u8, 2, 3, 4][..]));
        assert!(r.child("keys").is_none());
        let keys = RetryKeys {
            identity: [1; 32],
            pre_key: (5, [2; 32]),
            signed: (1, [3; 32], vec![4; 64]),
            device_identity: vec![9],
        };
        let r2 = retry_receipt(&m, 2, 7, 9, Some(&keys)).attr("from", "1:7@s.whatsapp.net");
        let parsed = parse_retry(&r2).unwrap();
        assert_eq!(parsed.count, 2);
        let b = parsed.bundle.unwrap();
        assert_eq!((b.registration_id, b.identity_key, b.pre_key), (7, [1; 32], Some((5, [2; 32]))));
        assert_eq!((b.signed_pre_key_id, b.signed_pre_key_signature.len()), (1, 64));
    }

    #[test]
    fn issue10_receipt_ids_include_the_list_items() {
        let r = Node::new("receipt").attr("id", "M1").children(vec![Node::new("list").children(vec![
            Node::new("item").attr("id", "M2"),
            Node::new("item").attr("id", "M3"),
        ])]);
        assert_eq!(receipt_ids(&r), vec!["M1", "M2", "M3"]);
        assert!(receipt_ids(&Node::new("receipt")).is_empty());
    }

    #[test]
    fn outgoing_message_adds_device_identity_only_with_a_pkmsg() {
        let e = |k| DeviceEnc { jid: "1:2@s.whatsapp.net".into(), kind: k, ciphertext: vec![1] };
        let m = outgoing_message("1@s.whatsapp.net", "X", &[e("msg")], Some(&[7]));
        assert!(m.child("device-identity").is_none());
        let m = outgoing_message("1@s.whatsapp.net", "X", &[e("msg"), e("pkmsg")], Some(&[7]));
        assert_eq!(m.child("device-identity").unwrap().content_bytes(), Some(&[7u8][..]));
        assert_eq!(m.child("participants").unwrap().child_nodes().len(), 2);
    }

    proptest! {
        #[test]
        fn parsers_never_panic(id in ".{0,8}", from in ".{0,24}", bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            let n = Node::new("message").attr("id", id).attr("from", from.clone()).children(vec![
                Node::new("enc").attr("type", "msg").bytes(bytes.clone()),
                Node::new("retry").attr("count", "x"),
                Node::new("keys").children(vec![Node::new("identity").bytes(bytes.clone())]),
                Node::new("registration").bytes(bytes.clone()),
            ]);
            let _ = parse_message(&n);
            let _ = parse_retry(&n);
            let _ = parse_usync(&n);
            let _ = parse_bundles(&Node::new("iq").children(vec![Node::new("list").children(vec![n])]));
            let _ = Jid::parse(&from);
        }
    }
}
