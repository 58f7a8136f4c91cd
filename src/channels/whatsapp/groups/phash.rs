//! The participant list hash (`phash`, version 2) of a group `<message>`: which devices the
//! sender encrypted for, as a short digest. The server compares it with its own list of the
//! group's devices and, when they differ, returns its own hash in the `<ack>` (the sender then
//! knows its cached member or device list is stale and refetches it).
//!
//! Format (as public clients compute it; whatsmeow `participantListHashV2`): every device JID
//! written as `user.agent:device@server` (agent and device always present, `0` when absent),
//! sorted, concatenated, SHA-256, the first 6 bytes in unpadded standard base64, prefixed `2:`.

use base64::Engine;
use sha2::{Digest, Sha256};

/// `2:` + base64 (no padding) of the first 6 bytes of SHA-256 over the sorted, concatenated
/// device JIDs in `user.agent:device@server` form. `devices` may be in any order and in the
/// short form (`user:device@server` or `user@server`); each is normalized first.
pub fn participant_hash<S: AsRef<str>>(devices: &[S]) -> String {
    let mut list: Vec<String> = devices.iter().map(|d| ad_string(d.as_ref())).collect();
    list.sort();
    let digest = Sha256::digest(list.concat().as_bytes());
    format!(
        "2:{}",
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(&digest[..6])
    )
}

/// `user[.agent][:device]@server` → `user.agent:device@server` (missing parts are `0`). A string
/// without `@` is returned unchanged.
pub fn ad_string(jid: &str) -> String {
    let Some((local, server)) = jid.split_once('@') else {
        return jid.to_owned();
    };
    let (user_agent, device) = local.split_once(':').unwrap_or((local, "0"));
    let (user, agent) = user_agent.split_once('.').unwrap_or((user_agent, "0"));
    format!("{user}.{agent}:{device}@{server}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ad_string_fills_agent_and_device() {
        assert_eq!(
            ad_string("15550001111@s.whatsapp.net"),
            "15550001111.0:0@s.whatsapp.net"
        );
        assert_eq!(
            ad_string("100000000000001:7@lid"),
            "100000000000001.0:7@lid"
        );
        assert_eq!(
            ad_string("1555.1:3@s.whatsapp.net"),
            "1555.1:3@s.whatsapp.net"
        );
        assert_eq!(ad_string("nonsense"), "nonsense");
    }

    #[test]
    fn hash_is_order_independent_and_matches_a_hand_computed_digest() {
        let a = participant_hash(&["2@s.whatsapp.net", "1:7@s.whatsapp.net"]);
        let b = participant_hash(&["1.0:7@s.whatsapp.net", "2.0:0@s.whatsapp.net"]);
        assert_eq!(a, b);
        // sha256("1.0:7@s.whatsapp.net2.0:0@s.whatsapp.net"), first 6 bytes, base64: computed
        // independently with `printf %s … | sha256sum | cut -c1-12 | xxd -r -p | base64`.
        assert_eq!(a, "2:2TpQdcSA");
        assert_eq!(a.len(), 2 + 8, "6 bytes are 8 base64 characters");
        assert_ne!(a, participant_hash(&["2@s.whatsapp.net"]));
    }
}
