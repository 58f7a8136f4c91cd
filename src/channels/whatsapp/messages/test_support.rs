//! Fixtures shared by the message path's tests: our account's credentials and the prekey bundle
//! a contact fetches to start a session with us.

use std::sync::Arc;

use crate::channels::whatsapp::binary::Node;
use crate::channels::whatsapp::creds::{Creds, Me};
use crate::channels::whatsapp::crypto::{SeededEntropy, SharedEntropy};
use crate::channels::whatsapp::signal::PreKeyBundle;

/// Fresh credentials for our account `15550004444:7`, generated from `seed`, and that entropy.
pub(crate) fn our_creds(seed: u64) -> (SharedEntropy, Creds) {
    let rng: SharedEntropy = Arc::new(SeededEntropy::new(seed));
    let mut creds = Creds::generate(rng.as_ref());
    creds.me = Some(Me { id: "15550004444:7@s.whatsapp.net".into(), lid: None, name: None });
    (rng, creds)
}

/// Our bundle as the server hands it to a contact, with the one-time prekey `pre_key` if any.
pub(crate) fn our_bundle(creds: &Creds, pre_key: Option<(u32, [u8; 32])>) -> PreKeyBundle {
    PreKeyBundle {
        registration_id: creds.registration_id,
        identity_key: creds.identity().public,
        signed_pre_key_id: creds.signed_pre_key.key_id,
        signed_pre_key: creds.signed_pre_key.key_pair.public.clone().try_into().unwrap(),
        signed_pre_key_signature: creds.signed_pre_key.signature.clone(),
        pre_key,
    }
}

/// A `<message>` from the contact's device `15550003333:7` (LID `999:7`) carrying one `<enc>`
/// of `kind` (`pkmsg`, `msg`, …) with ciphertext `ct`.
pub(crate) fn contact_message(id: &str, kind: &str, ct: Vec<u8>) -> Node {
    Node::new("message")
        .attr("from", "15550003333:7@s.whatsapp.net")
        .attr("sender_lid", "999:7@lid")
        .attr("id", id)
        .attr("type", "text")
        .attr("t", "100")
        .children(vec![Node::new("enc").attr("v", "2").attr("type", kind).bytes(ct)])
}
