//! The DM pairing challenge, pure: pending requests and approved senders of one channel as a
//! value; every operation takes the state (and the time, and a source of random indices) and
//! returns the new state.
//!
//! Upstream's rules (`pairing-store` in `openclaw@2026.9.6`, reference `agent.md` §1): codes are
//! 8 characters from [`CODE_ALPHABET`]; a request expires 1 h after it was created; at most
//! [`MAX_PENDING_PER_ACCOUNT`] requests are pending per channel account, and a new sender beyond
//! that is ignored (no code, no reply; the oldest is not dropped); a sender that already has a
//! pending request keeps its code and gets no second reply. Approving a code (case-insensitive)
//! removes the request and adds the sender to the account's allow list.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Pairing code alphabet (upstream `PAIRING_CODE_ALPHABET`: no `I`, `O`, `0`, `1`).
pub const CODE_ALPHABET: &[u8; 32] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
/// Pairing code length (upstream `PAIRING_CODE_LENGTH`).
pub const CODE_LENGTH: usize = 8;
/// A pending request expires this long after it was created (upstream: 1 h).
pub const PENDING_TTL_MS: u64 = 3_600_000;
/// Pending requests kept per channel account (upstream: 3).
pub const MAX_PENDING_PER_ACCOUNT: usize = 3;
/// How many random codes are tried before giving up on a unique one (upstream: 500).
const CODE_ATTEMPTS: usize = 500;

/// One pending pairing request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PairingRequest {
    /// The sender (for WhatsApp its E.164 number).
    pub id: String,
    /// The channel account the request came in on.
    pub account_id: String,
    /// The pairing code, upper case.
    pub code: String,
    /// When the request was created (Unix ms).
    pub created_at_ms: u64,
    /// When the sender last wrote (Unix ms).
    pub last_seen_at_ms: u64,
    /// Extra facts shown by `pairing list` (e.g. the sender's `name`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub meta: BTreeMap<String, String>,
}

/// The pairing state of one channel: pending requests and the approved senders per account.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingPairings {
    /// Pending requests, oldest first.
    #[serde(default)]
    pub requests: Vec<PairingRequest>,
    /// Approved senders by account id (the "allow store"; the config's `allowFrom` is separate).
    #[serde(default)]
    pub allow_from: BTreeMap<String, Vec<String>>,
}

/// What [`PendingPairings::upsert`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upsert {
    /// A new request was created: send the challenge with this code.
    Created {
        /// The new code.
        code: String,
    },
    /// The sender already had a pending request: no second reply.
    AlreadyPending {
        /// Its code.
        code: String,
    },
    /// The account already has [`MAX_PENDING_PER_ACCOUNT`] pending requests: ignored.
    Full,
}

/// Why an approval failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApproveError {
    /// No pending (unexpired) request has this code.
    #[error("No pending pairing request found for code \"{0}\".")]
    UnknownCode(String),
}

impl PendingPairings {
    /// Drops expired requests and, per account, all but the [`MAX_PENDING_PER_ACCOUNT`] most
    /// recently seen. Returns whether anything was removed.
    pub fn prune(&mut self, now_ms: u64) -> bool {
        let before = self.requests.len();
        self.requests.retain(|r| now_ms.saturating_sub(r.created_at_ms) <= PENDING_TTL_MS);
        let mut by_account: BTreeMap<&str, Vec<(u64, usize)>> = BTreeMap::new();
        for (i, r) in self.requests.iter().enumerate() {
            by_account.entry(r.account_id.as_str()).or_default().push((r.last_seen_at_ms, i));
        }
        let mut drop = Vec::new();
        for entries in by_account.values_mut() {
            if entries.len() > MAX_PENDING_PER_ACCOUNT {
                entries.sort();
                drop.extend(entries[..entries.len() - MAX_PENDING_PER_ACCOUNT].iter().map(|&(_, i)| i));
            }
        }
        if !drop.is_empty() {
            let mut i = 0;
            self.requests.retain(|_| {
                let keep = !drop.contains(&i);
                i += 1;
                keep
            });
        }
        self.requests.len() != before
    }

    /// Records that `id` wrote on `account_id` without being allowed: creates a request with a
    /// fresh code unless one is pending or the account is full. `random_index(n)` must return a
    /// uniformly random index below `n`.
    pub fn upsert(
        &mut self,
        account_id: &str,
        id: &str,
        meta: BTreeMap<String, String>,
        now_ms: u64,
        random_index: &mut dyn FnMut(usize) -> usize,
    ) -> Upsert {
        self.prune(now_ms);
        if let Some(r) = self.requests.iter_mut().find(|r| r.id == id && r.account_id == account_id) {
            r.last_seen_at_ms = now_ms;
            if !meta.is_empty() {
                r.meta = meta;
            }
            return Upsert::AlreadyPending { code: r.code.clone() };
        }
        if self.requests.iter().filter(|r| r.account_id == account_id).count() >= MAX_PENDING_PER_ACCOUNT {
            return Upsert::Full;
        }
        let Some(code) = self.unique_code(random_index) else {
            return Upsert::Full;
        };
        self.requests.push(PairingRequest {
            id: id.to_string(),
            account_id: account_id.to_string(),
            code: code.clone(),
            created_at_ms: now_ms,
            last_seen_at_ms: now_ms,
            meta,
        });
        Upsert::Created { code }
    }

    fn unique_code(&self, random_index: &mut dyn FnMut(usize) -> usize) -> Option<String> {
        (0..CODE_ATTEMPTS).find_map(|_| {
            let code: String = (0..CODE_LENGTH)
                .map(|_| CODE_ALPHABET[random_index(CODE_ALPHABET.len()) % CODE_ALPHABET.len()] as char)
                .collect();
            (!self.requests.iter().any(|r| r.code.eq_ignore_ascii_case(&code))).then_some(code)
        })
    }

    /// Approves the pending request with `code` (case-insensitive; only among `account_id`'s
    /// requests when given): removes it and adds its sender to its account's allow list.
    /// Returns the approved request.
    pub fn approve(&mut self, code: &str, account_id: Option<&str>, now_ms: u64) -> Result<PairingRequest, ApproveError> {
        self.prune(now_ms);
        let wanted = code.trim();
        let idx = self
            .requests
            .iter()
            .position(|r| {
                !wanted.is_empty()
                    && r.code.eq_ignore_ascii_case(wanted)
                    && account_id.is_none_or(|a| r.account_id == a)
            })
            .ok_or_else(|| ApproveError::UnknownCode(wanted.to_string()))?;
        let req = self.requests.remove(idx);
        let list = self.allow_from.entry(req.account_id.clone()).or_default();
        if !list.contains(&req.id) {
            list.push(req.id.clone());
        }
        Ok(req)
    }

    /// Whether `id` is an approved sender of `account_id`.
    pub fn is_approved(&self, account_id: &str, id: &str) -> bool {
        self.allow_from.get(account_id).is_some_and(|l| l.iter().any(|e| e == id))
    }

    /// Pending requests of `account_id` (all accounts when `None`), oldest first, without the
    /// expired ones.
    pub fn pending(&self, account_id: Option<&str>, now_ms: u64) -> Vec<&PairingRequest> {
        let mut out: Vec<&PairingRequest> = self
            .requests
            .iter()
            .filter(|r| now_ms.saturating_sub(r.created_at_ms) <= PENDING_TTL_MS)
            .filter(|r| account_id.is_none_or(|a| r.account_id == a))
            .collect();
        out.sort_by(|a, b| (a.created_at_ms, &a.account_id, &a.id).cmp(&(b.created_at_ms, &b.account_id, &b.id)));
        out
    }
}

/// The one reply a new unknown sender gets (upstream `buildPairingReply`, with the WhatsApp id
/// line `Your WhatsApp phone number: <e164>`).
pub fn challenge_text(channel: &str, id_line: &str, code: &str) -> String {
    [
        "OpenClaw: access not configured.",
        "",
        id_line,
        "Pairing code:",
        "```",
        code,
        "```",
        "",
        "Ask the bot owner to approve with:",
        "```",
        &format!("openclaw pairing approve {channel} {code}"),
        "```",
    ]
    .join("\n")
}

/// The id line of the challenge for `channel`.
pub fn id_line(channel: &str, peer_id: &str) -> String {
    match channel {
        "whatsapp" => format!("Your WhatsApp phone number: {peer_id}"),
        other => format!("Your {other} id: {peer_id}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counter() -> impl FnMut(usize) -> usize {
        let mut n = 0usize;
        move |m| {
            n += 1;
            n % m
        }
    }

    #[test]
    fn codes_use_the_alphabet_and_length() {
        let mut s = PendingPairings::default();
        let Upsert::Created { code } = s.upsert("default", "+1555", BTreeMap::new(), 0, &mut counter()) else {
            panic!("expected a new request")
        };
        assert_eq!(code.len(), CODE_LENGTH);
        assert!(code.bytes().all(|b| CODE_ALPHABET.contains(&b)), "{code}");
        assert_eq!(code, "BCDEFGHJ");
    }

    #[test]
    fn same_sender_keeps_its_code_and_gets_no_second_reply() {
        let mut s = PendingPairings::default();
        let first = s.upsert("default", "+1", BTreeMap::new(), 0, &mut counter());
        let Upsert::Created { code } = first else { panic!() };
        assert_eq!(s.upsert("default", "+1", BTreeMap::new(), 10, &mut counter()), Upsert::AlreadyPending { code });
        assert_eq!(s.requests[0].last_seen_at_ms, 10);
    }

    #[test]
    fn a_fourth_sender_is_ignored_and_the_oldest_kept() {
        let mut s = PendingPairings::default();
        let mut rng = counter();
        for (i, id) in ["+1", "+2", "+3"].iter().enumerate() {
            assert!(matches!(s.upsert("default", id, BTreeMap::new(), i as u64, &mut rng), Upsert::Created { .. }));
        }
        assert_eq!(s.upsert("default", "+4", BTreeMap::new(), 5, &mut rng), Upsert::Full);
        assert_eq!(s.requests.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["+1", "+2", "+3"]);
        // Another account has its own three.
        assert!(matches!(s.upsert("work", "+4", BTreeMap::new(), 5, &mut rng), Upsert::Created { .. }));
    }

    #[test]
    fn requests_expire_after_one_hour() {
        let mut s = PendingPairings::default();
        let mut rng = counter();
        for id in ["+1", "+2", "+3"] {
            s.upsert("default", id, BTreeMap::new(), 0, &mut rng);
        }
        assert_eq!(s.pending(None, PENDING_TTL_MS).len(), 3, "exactly 1 h is still pending");
        assert!(s.pending(None, PENDING_TTL_MS + 1).is_empty());
        assert!(matches!(
            s.upsert("default", "+4", BTreeMap::new(), PENDING_TTL_MS + 1, &mut rng),
            Upsert::Created { .. }
        ));
        assert_eq!(s.requests.len(), 1);
    }

    #[test]
    fn approve_is_case_insensitive_and_fills_the_allow_store() {
        let mut s = PendingPairings::default();
        let Upsert::Created { code } = s.upsert("default", "+1555", BTreeMap::new(), 0, &mut counter()) else {
            panic!()
        };
        assert_eq!(s.approve("nope", None, 1), Err(ApproveError::UnknownCode("nope".into())));
        assert!(s.approve(&code, Some("work"), 1).is_err(), "another account's code");
        let req = s.approve(&code.to_lowercase(), Some("default"), 1).unwrap();
        assert_eq!(req.id, "+1555");
        assert!(s.is_approved("default", "+1555"));
        assert!(!s.is_approved("work", "+1555"));
        assert!(s.requests.is_empty());
        assert!(s.approve(&code, None, 2).is_err(), "a code is used once");
    }

    #[test]
    fn an_expired_code_cannot_be_approved() {
        let mut s = PendingPairings::default();
        let Upsert::Created { code } = s.upsert("default", "+1", BTreeMap::new(), 0, &mut counter()) else { panic!() };
        assert!(s.approve(&code, None, PENDING_TTL_MS + 1).is_err());
        assert!(!s.is_approved("default", "+1"));
    }

    #[test]
    fn codes_are_unique_among_pending() {
        let mut s = PendingPairings::default();
        // A generator that repeats the same code twice, then moves on.
        let mut calls = 0usize;
        let mut rng = move |m: usize| {
            calls += 1;
            if calls <= 16 { 0 } else { calls % m }
        };
        let a = s.upsert("default", "+1", BTreeMap::new(), 0, &mut rng);
        let b = s.upsert("default", "+2", BTreeMap::new(), 0, &mut rng);
        assert_eq!(a, Upsert::Created { code: "AAAAAAAA".into() });
        assert!(matches!(b, Upsert::Created { code } if code != "AAAAAAAA"));
    }

    #[test]
    fn challenge_text_is_upstreams() {
        let text = challenge_text("whatsapp", &id_line("whatsapp", "+15550001111"), "ABCD2345");
        assert_eq!(
            text,
            "OpenClaw: access not configured.\n\nYour WhatsApp phone number: +15550001111\nPairing code:\n```\nABCD2345\n```\n\nAsk the bot owner to approve with:\n```\nopenclaw pairing approve whatsapp ABCD2345\n```"
        );
    }
}
