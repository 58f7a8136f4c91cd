//! What each device uploaded with `<iq xmlns="encrypt" type="set">` (identity, signed prekey,
//! one-time prekeys), the `count` and `digest` answers, and the prekey-bundle answer to
//! `<iq xmlns="encrypt" type="get"><key><user jid/></key></iq>`. A one-time prekey is handed out
//! once. Shapes follow reference §6.1 and what Baileys' `parseAndInjectE2ESessions` reads.

use std::collections::VecDeque;

use super::super::binary::Node;
use super::super::crypto::{Entropy, KeyPair, xeddsa_verify};

/// A signed prekey as uploaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SignedPreKey {
    /// 24-bit id.
    pub id: u32,
    /// Public key (32 bytes, no `05` prefix).
    pub public: [u8; 32],
    /// XEdDSA signature by the identity over `05 || public`.
    pub signature: Vec<u8>,
}

/// One device's key material on the server.
#[derive(Debug, Clone)]
pub(super) struct Bundle {
    /// Signal registration id.
    pub registration_id: u32,
    /// Identity public key (32 bytes).
    pub identity: [u8; 32],
    /// Current signed prekey.
    pub signed: Option<SignedPreKey>,
    /// Whether the last signed prekey's signature verified.
    pub signed_valid: bool,
    /// One-time prekeys not handed out yet, in upload order.
    pub one_time: VecDeque<(u32, [u8; 32])>,
    /// One-time prekeys uploaded in total.
    pub uploaded: usize,
    /// One-time prekeys handed out in total.
    pub handed_out: usize,
    /// Device 0 (the mock phone) mints one-time prekeys on demand instead of running out.
    refill: Option<u32>,
    /// The device was told its count is low and has not uploaded since.
    low_notified: bool,
}

/// Below this many one-time prekeys the server tells the device (Baileys uploads more when told
/// a count under its `MIN_PREKEY_COUNT`, 5).
pub(super) const PREKEY_LOW: usize = 5;

/// What an upload iq carries (each part optional: a rotation carries only the signed prekey).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(super) struct Upload {
    /// `<registration>` (4 bytes BE).
    pub registration_id: Option<u32>,
    /// `<identity>` (32 bytes).
    pub identity: Option<[u8; 32]>,
    /// `<list><key>`s.
    pub one_time: Vec<(u32, [u8; 32])>,
    /// `<skey>` (also inside `<rotate>`).
    pub signed: Option<SignedPreKey>,
}

fn be(b: &[u8]) -> Option<u32> {
    (b.len() <= 4).then(|| b.iter().fold(0u32, |acc, x| (acc << 8) | u32::from(*x)))
}

fn u24(v: u32) -> Vec<u8> {
    v.to_be_bytes()[1..].to_vec()
}

fn key32(n: &Node, tag: &str) -> Option<[u8; 32]> {
    n.child(tag)?.content_bytes()?.try_into().ok()
}

fn parse_skey(n: &Node) -> Option<SignedPreKey> {
    Some(SignedPreKey {
        id: be(n.child("id")?.content_bytes()?)?,
        public: key32(n, "value")?,
        signature: n.child("signature")?.content_bytes()?.to_vec(),
    })
}

/// Parses an upload or rotation iq. Malformed keys are an error, not silently dropped.
pub(super) fn parse_upload(iq: &Node) -> Result<Upload, &'static str> {
    let mut u = Upload::default();
    if let Some(r) = iq.child("registration") {
        u.registration_id = Some(r.content_bytes().and_then(be).ok_or("bad registration")?);
    }
    if iq.child("identity").is_some() {
        u.identity = Some(key32(iq, "identity").ok_or("bad identity")?);
    }
    if let Some(list) = iq.child("list") {
        for k in list.child_nodes().iter().filter(|k| k.tag == "key") {
            let id = k.child("id").and_then(Node::content_bytes).and_then(be);
            let value = key32(k, "value");
            match (id, value) {
                (Some(id), Some(v)) => u.one_time.push((id, v)),
                _ => return Err("bad one-time prekey"),
            }
        }
    }
    let skey = iq
        .child("skey")
        .or_else(|| iq.child("rotate").and_then(|r| r.child("skey")));
    if let Some(s) = skey {
        u.signed = Some(parse_skey(s).ok_or("bad signed prekey")?);
    }
    if u == Upload::default() {
        return Err("empty upload");
    }
    Ok(u)
}

fn signed_valid(identity: &[u8; 32], s: &SignedPreKey) -> bool {
    xeddsa_verify(identity, &[&[5u8][..], &s.public].concat(), &s.signature)
}

impl Bundle {
    /// A bundle for a device that registered with `identity`.
    pub fn new(identity: [u8; 32]) -> Self {
        Self {
            registration_id: 0,
            identity,
            signed: None,
            signed_valid: false,
            one_time: VecDeque::new(),
            uploaded: 0,
            handed_out: 0,
            refill: None,
            low_notified: false,
        }
    }

    /// The mock phone's bundle: its identity is the account key; it signs a prekey and mints
    /// one-time prekeys whenever one is handed out (their private halves are dropped: the mock
    /// never decrypts).
    pub fn for_phone(identity: &KeyPair, rng: &dyn Entropy) -> Self {
        let spk = KeyPair::generate(rng);
        let sig = identity.sign(&[&[5u8][..], &spk.public].concat(), rng);
        let reg =
            u32::from(u16::from_be_bytes(super::super::crypto::random_bytes(rng)) & 0x3FFF) + 1;
        Self {
            registration_id: reg,
            identity: identity.public,
            signed: Some(SignedPreKey {
                id: 1,
                public: spk.public,
                signature: sig.to_vec(),
            }),
            signed_valid: true,
            one_time: VecDeque::new(),
            uploaded: 0,
            handed_out: 0,
            refill: Some(1),
            low_notified: false,
        }
    }

    /// Applies an upload. The identity cannot change (a new identity is a new registration).
    pub fn apply(&mut self, u: Upload) -> Result<(), &'static str> {
        if u.identity.is_some_and(|i| i != self.identity) {
            return Err("identity differs from the registration");
        }
        if let Some(r) = u.registration_id {
            self.registration_id = r;
        }
        if let Some(s) = u.signed {
            self.signed_valid = signed_valid(&self.identity, &s);
            self.signed = Some(s);
        }
        self.uploaded += u.one_time.len();
        if !u.one_time.is_empty() {
            self.low_notified = false;
        }
        for k in u.one_time {
            if !self.one_time.iter().any(|(id, _)| *id == k.0) {
                self.one_time.push_back(k);
            }
        }
        Ok(())
    }

    /// `<count value>`: one-time prekeys the server still holds.
    pub fn available(&self) -> usize {
        self.one_time.len()
    }

    /// The count to announce in a prekey-low `<notification type="encrypt">`, once per drop
    /// below [`PREKEY_LOW`] (again only after an upload). Never for the phone, which refills.
    pub fn low_notice(&mut self) -> Option<usize> {
        if self.refill.is_some() || self.low_notified || self.one_time.len() >= PREKEY_LOW {
            return None;
        }
        self.low_notified = true;
        Some(self.one_time.len())
    }

    /// Forgets all but the last `leave` one-time prekeys (a test hook: as if they were used).
    pub fn drain(&mut self, leave: usize) {
        while self.one_time.len() > leave {
            self.one_time.pop_front();
            self.handed_out += 1;
        }
    }

    /// The `<user jid>` node of a bundle answer, taking (and forgetting) one one-time prekey.
    /// `None` when the device has no signed prekey yet.
    pub fn take_user_node(&mut self, jid: &str, rng: &dyn Entropy) -> Option<Node> {
        let signed = self.signed.clone()?;
        if self.one_time.is_empty()
            && let Some(next) = self.refill.as_mut()
        {
            self.one_time
                .push_back((*next & 0xFF_FFFF, KeyPair::generate(rng).public));
            *next += 1;
        }
        let one = self.one_time.pop_front();
        if one.is_some() {
            self.handed_out += 1;
        }
        let mut children = vec![
            Node::new("registration").bytes(self.registration_id.to_be_bytes().to_vec()),
            Node::new("type").bytes(vec![5]),
            Node::new("identity").bytes(self.identity.to_vec()),
            Node::new("skey").children(vec![
                Node::new("id").bytes(u24(signed.id)),
                Node::new("value").bytes(signed.public.to_vec()),
                Node::new("signature").bytes(signed.signature),
            ]),
        ];
        if let Some((id, public)) = one {
            children.push(Node::new("key").children(vec![
                Node::new("id").bytes(u24(id)),
                Node::new("value").bytes(public.to_vec()),
            ]));
        }
        Some(Node::new("user").attr("jid", jid).children(children))
    }

    /// `<digest>`: what the server holds for this device (Baileys re-uploads if it is missing).
    pub fn digest_node(&self) -> Node {
        let mut c = vec![
            Node::new("registration").bytes(self.registration_id.to_be_bytes().to_vec()),
            Node::new("type").bytes(vec![5]),
            Node::new("identity").bytes(self.identity.to_vec()),
        ];
        if let Some(s) = &self.signed {
            c.push(Node::new("skey").children(vec![
                Node::new("id").bytes(u24(s.id)),
                Node::new("value").bytes(s.public.to_vec()),
                Node::new("signature").bytes(s.signature.clone()),
            ]));
        }
        c.push(
            Node::new("list").children(
                self.one_time
                    .iter()
                    .map(|(id, _)| Node::new("id").bytes(u24(*id)))
                    .collect(),
            ),
        );
        Node::new("digest").children(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channels::whatsapp::creds::{Creds, PreKeys};
    use crate::channels::whatsapp::crypto::SeededEntropy;
    use crate::channels::whatsapp::prekeys;

    fn uploaded(n: u32) -> (Creds, Bundle) {
        let rng = SeededEntropy::new(9);
        let mut c = Creds::generate(&rng);
        let mut store = PreKeys::new();
        let ids = prekeys::generate(&mut c, &mut store, n, &rng);
        let iq = prekeys::upload("u", &c, &store, &ids);
        let identity: [u8; 32] = c.signed_identity_key.public.clone().try_into().unwrap();
        let mut b = Bundle::new(identity);
        b.apply(parse_upload(&iq).unwrap()).unwrap();
        (c, b)
    }

    #[test]
    fn one_time_prekeys_are_handed_out_once_then_the_bundle_has_none() {
        let rng = SeededEntropy::new(1);
        let (c, mut b) = uploaded(2);
        assert!(b.signed_valid);
        assert_eq!(b.registration_id, c.registration_id);
        assert_eq!(b.available(), 2);
        let first = b.take_user_node("1@lid", &rng).unwrap();
        let second = b.take_user_node("1@lid", &rng).unwrap();
        let third = b.take_user_node("1@lid", &rng).unwrap();
        let id = |n: &Node| {
            n.child("key")
                .map(|k| k.child("id").unwrap().content_bytes().unwrap().to_vec())
        };
        assert_eq!(id(&first), Some(vec![0, 0, 1]));
        assert_eq!(id(&second), Some(vec![0, 0, 2]));
        assert_eq!(
            id(&third),
            None,
            "no one-time prekey left: signed prekey only"
        );
        assert_eq!(b.handed_out, 2);
        assert_eq!(
            b.low_notice(),
            Some(0),
            "below the threshold: tell the device once"
        );
        assert_eq!(b.low_notice(), None);
        assert_eq!(
            third.child("identity").unwrap().content_bytes().unwrap(),
            &b.identity[..]
        );
        assert_eq!(
            third
                .child("registration")
                .unwrap()
                .content_bytes()
                .unwrap()
                .len(),
            4
        );
    }

    #[test]
    fn rotation_replaces_the_signed_prekey_and_a_foreign_identity_is_refused() {
        let (_, mut b) = uploaded(1);
        let rot = Node::new("iq").children(vec![Node::new("rotate").children(vec![
            Node::new("skey").children(vec![
                Node::new("id").bytes(vec![0, 0, 2]),
                Node::new("value").bytes(vec![7; 32]),
                Node::new("signature").bytes(vec![0; 64]),
            ]),
        ])]);
        b.apply(parse_upload(&rot).unwrap()).unwrap();
        assert_eq!(b.signed.as_ref().unwrap().id, 2);
        assert!(!b.signed_valid, "a zero signature does not verify");
        let foreign = Node::new("iq").children(vec![Node::new("identity").bytes(vec![1; 32])]);
        assert!(b.apply(parse_upload(&foreign).unwrap()).is_err());
        assert!(parse_upload(&Node::new("iq")).is_err());
        let bad = Node::new("iq").children(vec![Node::new("list").children(vec![
            Node::new("key").children(vec![Node::new("id").bytes(vec![1])]),
        ])]);
        assert!(parse_upload(&bad).is_err());
    }

    #[test]
    fn the_phone_mints_one_time_prekeys_and_signs_its_prekey() {
        let rng = SeededEntropy::new(2);
        let phone = KeyPair::generate(&rng);
        let mut b = Bundle::for_phone(&phone, &rng);
        assert!(signed_valid(&phone.public, b.signed.as_ref().unwrap()));
        let a = b.take_user_node("1@s.whatsapp.net", &rng).unwrap();
        let c = b.take_user_node("1@s.whatsapp.net", &rng).unwrap();
        let v = |n: &Node| {
            n.child("key")
                .unwrap()
                .child("value")
                .unwrap()
                .content_bytes()
                .unwrap()
                .to_vec()
        };
        assert_ne!(v(&a), v(&c), "a one-time prekey is never handed out twice");
    }
}
