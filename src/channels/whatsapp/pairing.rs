//! QR pairing (reference §3): the QR string, verification of `pair-success` (HMAC with the ADV
//! secret, the phone's account signature), our device signature and the `pair-device-sign` reply.
//! The phone's half (building `pair-success`, checking our reply) is here too, for the mock server.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use prost::Message;
use sha2::Sha256;

use super::binary::{Node, SERVER_JID};
use super::creds::{Account, Creds, Me};
use super::crypto::{Entropy, KeyPair, xeddsa_verify};
use super::proto::{
    AdvDeviceIdentity, AdvEncryptionType, AdvSignedDeviceIdentity, AdvSignedDeviceIdentityHmac,
};

/// Prefix of Baileys 7 / whatsmeow QR strings.
pub const QR_PREFIX: &str = "https://wa.me/settings/linked_devices#";
/// Our platform id in the QR string (1 = Chrome, matching `DeviceProps.platformType`).
pub const QR_PLATFORM_ID: &str = "1";
/// Account-signature prefix (E2EE accounts).
pub const ACCOUNT_SIG_PREFIX: [u8; 2] = [6, 0];
/// Device-signature prefix.
pub const DEVICE_SIG_PREFIX: [u8; 2] = [6, 1];
/// Prefix for hosted accounts (HMAC and account signature).
pub const HOSTED_PREFIX: [u8; 2] = [6, 5];

/// The phone's first ref is shown 60 s, each following one 20 s (reference §3.1).
pub fn ref_lifetime(index: usize) -> std::time::Duration {
    std::time::Duration::from_secs(if index == 0 { 60 } else { 20 })
}

/// `<prefix><ref>,<noise pub>,<identity pub>,<adv secret>,<platform>` (standard base64).
pub fn qr_string(reference: &str, creds: &Creds) -> String {
    format!(
        "{QR_PREFIX}{reference},{},{},{},{QR_PLATFORM_ID}",
        B64.encode(&creds.noise_key.public),
        B64.encode(&creds.signed_identity_key.public),
        B64.encode(&creds.adv_secret_key)
    )
}

/// The fields of a scanned QR string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QrData {
    /// The server's ref.
    pub reference: String,
    /// Companion noise public key.
    pub noise_pub: [u8; 32],
    /// Companion identity public key.
    pub identity_pub: [u8; 32],
    /// ADV secret.
    pub adv_secret: [u8; 32],
    /// Platform id, when present (absent in Baileys 6.x).
    pub platform: Option<String>,
}

/// Why a QR string or a pairing message was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PairError {
    /// The QR string is not in any known layout.
    #[error("malformed QR string")]
    BadQr,
    /// A required node or field is missing or malformed.
    #[error("malformed pair-success: {0}")]
    Malformed(&'static str),
    /// The HMAC with our ADV secret does not match.
    #[error("pair-success HMAC mismatch")]
    HmacMismatch,
    /// The phone's account signature does not verify.
    #[error("pair-success account signature invalid")]
    AccountSignature,
    /// The device signature in a reply does not verify (phone side).
    #[error("device signature invalid")]
    DeviceSignature,
}

fn b64_32(s: &str) -> Result<[u8; 32], PairError> {
    B64.decode(s.trim())
        .ok()
        .and_then(|v| <[u8; 32]>::try_from(v).ok())
        .ok_or(PairError::BadQr)
}

/// Parses a QR string: 5 fields with or without the wa.me prefix, or Baileys 6's 4 fields.
pub fn parse_qr(s: &str) -> Result<QrData, PairError> {
    let s = s.trim();
    let s = s.strip_prefix(QR_PREFIX).unwrap_or(s);
    let f: Vec<&str> = s.split(',').collect();
    if f.len() != 4 && f.len() != 5 {
        return Err(PairError::BadQr);
    }
    if f[0].is_empty() {
        return Err(PairError::BadQr);
    }
    Ok(QrData {
        reference: f[0].to_owned(),
        noise_pub: b64_32(f[1])?,
        identity_pub: b64_32(f[2])?,
        adv_secret: b64_32(f[3])?,
        platform: f.get(4).map(|p| (*p).to_owned()),
    })
}

type HmacSha256 = Hmac<Sha256>;

fn hmac(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut m = match HmacSha256::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC accepts any key length"),
    };
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().to_vec()
}

/// The result of a verified `pair-success`.
#[derive(Debug, Clone)]
pub struct Paired {
    /// Our new identity (`me.id`, `me.lid`).
    pub me: Me,
    /// The signed account identity (with our device signature), to store.
    pub account: Account,
    /// The phone's platform name.
    pub platform: Option<String>,
    /// The reply to send (`pair-device-sign`).
    pub reply: Node,
}

/// Verifies a `<iq><pair-success>…</pair-success></iq>` against our creds, signs our device
/// signature and builds the reply. Never panics on malformed input.
pub fn handle_pair_success(
    iq: &Node,
    creds: &Creds,
    rng: &dyn Entropy,
) -> Result<Paired, PairError> {
    let ps = iq
        .child("pair-success")
        .ok_or(PairError::Malformed("pair-success"))?;
    let msg_id = iq.get_attr("id").ok_or(PairError::Malformed("iq id"))?;
    let di = ps
        .child("device-identity")
        .and_then(Node::content_bytes)
        .ok_or(PairError::Malformed("device-identity"))?;
    let device = ps.child("device").ok_or(PairError::Malformed("device"))?;
    let jid = device
        .get_attr("jid")
        .ok_or(PairError::Malformed("device jid"))?;
    let lid = device.get_attr("lid").map(str::to_owned);
    let platform = ps
        .child("platform")
        .and_then(|p| p.get_attr("name"))
        .map(str::to_owned);

    let wrapped = AdvSignedDeviceIdentityHmac::decode(di)
        .map_err(|_| PairError::Malformed("device-identity proto"))?;
    let details = wrapped
        .details
        .ok_or(PairError::Malformed("hmac details"))?;
    let mac = wrapped.hmac.ok_or(PairError::Malformed("hmac"))?;
    let hosted = wrapped.account_type == Some(AdvEncryptionType::Hosted as i32);
    let prefix: &[u8] = if hosted { &HOSTED_PREFIX } else { &[] };
    let expected = hmac(&creds.adv_secret_key, &[prefix, &details]);
    if !subtle_eq(&expected, &mac) {
        return Err(PairError::HmacMismatch);
    }

    let signed = AdvSignedDeviceIdentity::decode(details.as_slice())
        .map_err(|_| PairError::Malformed("signed identity"))?;
    let inner = signed
        .details
        .clone()
        .ok_or(PairError::Malformed("identity details"))?;
    let acc_key: [u8; 32] = signed
        .account_signature_key
        .as_deref()
        .and_then(|k| k.try_into().ok())
        .ok_or(PairError::Malformed("accountSignatureKey"))?;
    let acc_sig = signed
        .account_signature
        .clone()
        .ok_or(PairError::Malformed("accountSignature"))?;
    let identity = creds.identity();
    let acc_prefix = if hosted {
        HOSTED_PREFIX
    } else {
        ACCOUNT_SIG_PREFIX
    };
    let msg = [&acc_prefix[..], &inner, &identity.public].concat();
    if !xeddsa_verify(&acc_key, &msg, &acc_sig) {
        return Err(PairError::AccountSignature);
    }
    let key_index = AdvDeviceIdentity::decode(inner.as_slice())
        .map_err(|_| PairError::Malformed("device identity"))?
        .key_index
        .unwrap_or(0);

    let dev_msg = [&DEVICE_SIG_PREFIX[..], &inner, &identity.public, &acc_key].concat();
    let device_signature = identity.sign(&dev_msg, rng).to_vec();
    // The reply omits accountSignatureKey, as Baileys and whatsmeow do (reference §3.3).
    let reply_identity = AdvSignedDeviceIdentity {
        details: Some(inner.clone()),
        account_signature_key: None,
        account_signature: Some(acc_sig.clone()),
        device_signature: Some(device_signature.clone()),
    };
    let reply = Node::new("iq")
        .attr("to", SERVER_JID)
        .attr("type", "result")
        .attr("id", msg_id)
        .children(vec![Node::new("pair-device-sign").children(vec![
                Node::new("device-identity")
                    .attr("key-index", key_index.to_string())
                    .bytes(reply_identity.encode_to_vec()),
            ])]);
    Ok(Paired {
        me: Me {
            id: jid.to_owned(),
            lid,
            name: None,
        },
        account: Account {
            details: inner,
            account_signature_key: acc_key.to_vec(),
            account_signature: acc_sig,
            device_signature,
        },
        platform,
        reply,
    })
}

fn subtle_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Phone side: builds the `pair-success` iq for a scanned QR. `forge_account_signature` makes the
/// account signature random (to prove the client rejects it).
#[allow(clippy::too_many_arguments)]
pub fn build_pair_success(
    qr: &QrData,
    phone_identity: &KeyPair,
    jid: &str,
    lid: &str,
    key_index: u32,
    now_unix: u64,
    forge_account_signature: bool,
    rng: &dyn Entropy,
) -> Node {
    let inner = AdvDeviceIdentity {
        raw_id: Some(u32::from_be_bytes(super::crypto::random_bytes(rng))),
        timestamp: Some(now_unix),
        key_index: Some(key_index),
        account_type: Some(AdvEncryptionType::E2ee as i32),
        device_type: Some(AdvEncryptionType::E2ee as i32),
    }
    .encode_to_vec();
    let msg = [&ACCOUNT_SIG_PREFIX[..], &inner, &qr.identity_pub].concat();
    let account_signature = if forge_account_signature {
        super::crypto::random_bytes::<64>(rng).to_vec()
    } else {
        phone_identity.sign(&msg, rng).to_vec()
    };
    let signed = AdvSignedDeviceIdentity {
        details: Some(inner),
        account_signature_key: Some(phone_identity.public.to_vec()),
        account_signature: Some(account_signature),
        device_signature: None,
    }
    .encode_to_vec();
    let mac = hmac(&qr.adv_secret, &[&signed]);
    let wrapped = AdvSignedDeviceIdentityHmac {
        details: Some(signed),
        hmac: Some(mac),
        account_type: Some(0),
    };
    let id: [u8; 4] = super::crypto::random_bytes(rng);
    Node::new("iq")
        .attr("from", "s.whatsapp.net")
        .attr("type", "set")
        .attr("id", hex::encode(id))
        .children(vec![Node::new("pair-success").children(vec![
                Node::new("device-identity")
                    .attr("key-index", key_index.to_string())
                    .bytes(wrapped.encode_to_vec()),
                Node::new("platform").attr("name", "android"),
                Node::new("device").attr("jid", jid).attr("lid", lid),
            ])])
}

/// What the phone side learns from a valid `pair-device-sign` reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceSignCheck {
    /// Whether the companion stripped `accountSignatureKey` (Baileys/whatsmeow do).
    pub account_key_stripped: bool,
}

/// Phone/server side: verifies the companion's device signature in a `pair-device-sign` reply.
pub fn verify_pair_device_sign(
    reply: &Node,
    companion_identity: &[u8; 32],
    phone_identity_pub: &[u8; 32],
) -> Result<DeviceSignCheck, PairError> {
    let di = reply
        .child("pair-device-sign")
        .and_then(|p| p.child("device-identity"))
        .and_then(Node::content_bytes)
        .ok_or(PairError::Malformed("pair-device-sign"))?;
    let signed =
        AdvSignedDeviceIdentity::decode(di).map_err(|_| PairError::Malformed("signed identity"))?;
    let inner = signed.details.ok_or(PairError::Malformed("details"))?;
    let sig = signed
        .device_signature
        .ok_or(PairError::Malformed("deviceSignature"))?;
    let msg = [
        &DEVICE_SIG_PREFIX[..],
        &inner,
        companion_identity,
        phone_identity_pub,
    ]
    .concat();
    if !xeddsa_verify(companion_identity, &msg, &sig) {
        return Err(PairError::DeviceSignature);
    }
    Ok(DeviceSignCheck {
        account_key_stripped: signed.account_signature_key.is_none(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channels::whatsapp::binary::{marshal, unpack};
    use crate::channels::whatsapp::crypto::SeededEntropy;

    #[test]
    fn qr_round_trip_and_layouts() {
        let rng = SeededEntropy::new(1);
        let c = Creds::generate(&rng);
        let s = qr_string("2@ref", &c);
        let q = parse_qr(&s).unwrap();
        assert_eq!(q.reference, "2@ref");
        assert_eq!(q.noise_pub.to_vec(), c.noise_key.public);
        assert_eq!(q.platform.as_deref(), Some("1"));
        let four = s
            .strip_prefix(QR_PREFIX)
            .unwrap()
            .rsplit_once(',')
            .unwrap()
            .0
            .to_owned();
        assert_eq!(parse_qr(&four).unwrap().platform, None);
        assert_eq!(parse_qr("x,y"), Err(PairError::BadQr));
        assert_eq!(parse_qr("r,AAAA,BBBB,CCCC"), Err(PairError::BadQr));
    }

    #[test]
    fn pair_success_verifies_and_reply_is_accepted_by_the_phone() {
        let rng = SeededEntropy::new(2);
        let c = Creds::generate(&rng);
        let phone = KeyPair::generate(&rng);
        let q = parse_qr(&qr_string("r1", &c)).unwrap();
        let iq = build_pair_success(
            &q,
            &phone,
            "15550001234:7@s.whatsapp.net",
            "99:7@lid",
            3,
            1,
            false,
            &rng,
        );
        // Through the wire codec, as it would arrive.
        let iq = unpack(&marshal(&iq)).unwrap();
        let p = handle_pair_success(&iq, &c, &rng).unwrap();
        assert_eq!(p.me.id, "15550001234:7@s.whatsapp.net");
        assert_eq!(p.me.lid.as_deref(), Some("99:7@lid"));
        assert_eq!(p.reply.get_attr("id"), iq.get_attr("id"));
        let check = verify_pair_device_sign(&p.reply, &q.identity_pub, &phone.public).unwrap();
        assert!(check.account_key_stripped);
        assert_eq!(
            p.reply
                .child("pair-device-sign")
                .unwrap()
                .child("device-identity")
                .unwrap()
                .get_attr("key-index"),
            Some("3")
        );
    }

    #[test]
    fn forged_pair_success_is_rejected() {
        let rng = SeededEntropy::new(3);
        let c = Creds::generate(&rng);
        let phone = KeyPair::generate(&rng);
        let q = parse_qr(&qr_string("r1", &c)).unwrap();
        let forged = build_pair_success(
            &q,
            &phone,
            "1:7@s.whatsapp.net",
            "2:7@lid",
            1,
            1,
            true,
            &rng,
        );
        assert_eq!(
            handle_pair_success(&forged, &c, &rng).unwrap_err(),
            PairError::AccountSignature
        );
        // Right signature, wrong ADV secret (HMAC).
        let mut q2 = q.clone();
        q2.adv_secret = [9; 32];
        let bad_mac = build_pair_success(
            &q2,
            &phone,
            "1:7@s.whatsapp.net",
            "2:7@lid",
            1,
            1,
            false,
            &rng,
        );
        assert_eq!(
            handle_pair_success(&bad_mac, &c, &rng).unwrap_err(),
            PairError::HmacMismatch
        );
        assert!(matches!(
            handle_pair_success(&Node::new("iq").attr("id", "1"), &c, &rng),
            Err(PairError::Malformed(_))
        ));
    }
}

#[cfg(test)]
mod props {
    use proptest::prelude::*;

    use super::*;
    use crate::channels::whatsapp::crypto::SeededEntropy;

    proptest! {
        #[test]
        fn pairing_parsers_never_panic(data in proptest::collection::vec(any::<u8>(), 0..300), s in ".{0,200}") {
            let rng = SeededEntropy::new(1);
            let creds = Creds::generate(&rng);
            let iq = Node::new("iq").attr("id", "1").children(vec![Node::new("pair-success").children(vec![
                Node::new("device-identity").bytes(data.clone()),
                Node::new("device").attr("jid", s.clone()),
            ])]);
            let _ = handle_pair_success(&iq, &creds, &rng);
            let reply = Node::new("iq").children(vec![Node::new("pair-device-sign")
                .children(vec![Node::new("device-identity").bytes(data)])]);
            let _ = verify_pair_device_sign(&reply, &[1; 32], &[2; 32]);
            let _ = parse_qr(&s);
        }
    }
}
