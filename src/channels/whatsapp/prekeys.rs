//! One-time prekeys and the upload stanza (reference §6.1). Only generation and upload: the Signal
//! session layer is a separate issue.

use super::binary::{Node, SERVER_JID};
use super::creds::{Creds, PreKeys, StoredKeyPair};
use super::crypto::{Entropy, KeyPair};

/// How many prekeys to upload when the server has none (Baileys/whatsmeow use 812).
pub const INITIAL_PREKEY_COUNT: u32 = 812;
/// Upload more when the server holds fewer than this.
pub const MIN_PREKEY_COUNT: u32 = 5;

/// Generates `count` prekeys starting at `creds.next_pre_key_id`, adds them to `store`, and advances
/// the id. Returns the new ids.
pub fn generate(creds: &mut Creds, store: &mut PreKeys, count: u32, rng: &dyn Entropy) -> Vec<u32> {
    let start = creds.next_pre_key_id;
    let ids: Vec<u32> = (start..start + count).map(|i| i & 0xFF_FFFF).collect();
    for id in &ids {
        store.insert(*id, StoredKeyPair::from(&KeyPair::generate(rng)));
    }
    creds.next_pre_key_id = start + count;
    ids
}

fn u24(v: u32) -> Vec<u8> {
    v.to_be_bytes()[1..].to_vec()
}

/// `<iq xmlns="encrypt" type="get"><count/></iq>`.
pub fn count_query(id: &str) -> Node {
    Node::new("iq")
        .attr("id", id)
        .attr("xmlns", "encrypt")
        .attr("type", "get")
        .attr("to", SERVER_JID)
        .children(vec![Node::new("count")])
}

/// The upload iq for `ids` (taken from `store`) plus the signed prekey.
pub fn upload(id: &str, creds: &Creds, store: &PreKeys, ids: &[u32]) -> Node {
    let keys = ids
        .iter()
        .filter_map(|i| store.get(i).map(|k| (i, k)))
        .map(|(i, k)| {
            Node::new("key").children(vec![
                Node::new("id").bytes(u24(*i)),
                Node::new("value").bytes(k.public.clone()),
            ])
        })
        .collect();
    let spk = &creds.signed_pre_key;
    Node::new("iq")
        .attr("id", id)
        .attr("xmlns", "encrypt")
        .attr("type", "set")
        .attr("to", SERVER_JID)
        .children(vec![
            Node::new("registration").bytes(creds.registration_id.to_be_bytes().to_vec()),
            Node::new("type").bytes(vec![5]),
            Node::new("identity").bytes(creds.signed_identity_key.public.clone()),
            Node::new("list").children(keys),
            Node::new("skey").children(vec![
                Node::new("id").bytes(u24(spk.key_id)),
                Node::new("value").bytes(spk.key_pair.public.clone()),
                Node::new("signature").bytes(spk.signature.clone()),
            ]),
        ])
}

/// Server side: what an upload iq contains, with the signed prekey signature checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadSummary {
    /// Number of one-time prekeys.
    pub prekeys: usize,
    /// Whether the signed prekey's XEdDSA signature by the identity verifies.
    pub signed_prekey_valid: bool,
}

/// Parses an upload iq (used by the mock server). `None` if it is not one.
pub fn parse_upload(iq: &Node) -> Option<UploadSummary> {
    let identity: [u8; 32] = iq.child("identity")?.content_bytes()?.try_into().ok()?;
    let list = iq.child("list")?;
    let skey = iq.child("skey")?;
    let value = skey.child("value")?.content_bytes()?;
    let sig = skey.child("signature")?.content_bytes()?;
    let msg = [&[5u8][..], value].concat();
    Some(UploadSummary {
        prekeys: list.child_nodes().iter().filter(|k| k.tag == "key").count(),
        signed_prekey_valid: super::crypto::xeddsa_verify(&identity, &msg, sig),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channels::whatsapp::crypto::SeededEntropy;

    #[test]
    fn generated_upload_parses_with_valid_signed_prekey() {
        let rng = SeededEntropy::new(1);
        let mut c = Creds::generate(&rng);
        let mut store = PreKeys::new();
        let ids = generate(&mut c, &mut store, 30, &rng);
        assert_eq!(ids.first(), Some(&1));
        assert_eq!(c.next_pre_key_id, 31);
        let iq = upload("u1", &c, &store, &ids);
        assert_eq!(
            parse_upload(&iq),
            Some(UploadSummary {
                prekeys: 30,
                signed_prekey_valid: true
            })
        );
        assert_eq!(
            iq.child("list").unwrap().child_nodes()[0]
                .child("id")
                .unwrap()
                .content_bytes(),
            Some(&[0u8, 0, 1][..])
        );
    }
}
