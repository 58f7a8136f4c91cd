//! Conversations between two of our own endpoints: X3DH both roles, ratchet turns, out-of-order
//! delivery, bounds, archived sessions, and the "unchanged on error" contract.

use proptest::prelude::*;

use super::*;
use crate::channels::whatsapp::crypto::{KeyPair, SeededEntropy};

struct Device {
    local: LocalIdentity,
    signed: KeyPair,
    signed_id: u32,
    one_time: Vec<(u32, KeyPair)>,
}

impl Device {
    fn new(rng: &SeededEntropy, reg: u32) -> Self {
        Self {
            local: LocalIdentity {
                key_pair: KeyPair::generate(rng),
                registration_id: reg,
            },
            signed: KeyPair::generate(rng),
            signed_id: 7,
            one_time: (1..=3).map(|i| (100 + i, KeyPair::generate(rng))).collect(),
        }
    }

    fn bundle(&self, rng: &SeededEntropy, with_one_time: bool) -> PreKeyBundle {
        PreKeyBundle {
            registration_id: self.local.registration_id,
            identity_key: self.local.key_pair.public,
            signed_pre_key_id: self.signed_id,
            signed_pre_key: self.signed.public,
            signed_pre_key_signature: self
                .local
                .key_pair
                .sign(&wire::serialize_public(&self.signed.public), rng)
                .to_vec(),
            pre_key: with_one_time.then(|| (self.one_time[0].0, self.one_time[0].1.public)),
        }
    }

    /// Receives either kind, loading prekeys like a store would.
    fn receive(
        &self,
        rec: &mut SessionRecord,
        kind: CiphertextType,
        bytes: &[u8],
        rng: &SeededEntropy,
    ) -> Result<Decrypted, SessionError> {
        match kind {
            CiphertextType::Whisper => rec.decrypt_msg(bytes, rng),
            CiphertextType::PreKey => {
                let m = PreKeySignalMessage::decode(bytes)?;
                let signed = (m.signed_pre_key_id == self.signed_id).then_some(&self.signed);
                let one_time = self
                    .one_time
                    .iter()
                    .find(|(id, _)| Some(*id) == m.pre_key_id)
                    .map(|(_, k)| k);
                rec.decrypt_pkmsg(&self.local, PreKeys { signed, one_time }, &m, rng)
            }
        }
    }
}

fn pair(with_one_time: bool) -> (Device, SessionRecord, Device, SessionRecord, SeededEntropy) {
    let rng = SeededEntropy::new(77);
    let alice = Device::new(&rng, 1111);
    let bob = Device::new(&rng, 2222);
    let mut a = SessionRecord::new();
    a.start_outgoing(&alice.local, &bob.bundle(&rng, with_one_time), &rng)
        .unwrap();
    (alice, a, bob, SessionRecord::new(), rng)
}

#[test]
fn conversation_with_ratchet_turns_both_roles() {
    for with_one_time in [true, false] {
        let (alice, mut a, bob, mut b, rng) = pair(with_one_time);
        assert!(a.is_pending_prekey());
        // Alice's messages stay pkmsg until Bob answers.
        let m1 = a.encrypt(b"one").unwrap();
        let m2 = a.encrypt(b"two").unwrap();
        assert_eq!(m1.0, CiphertextType::PreKey);
        assert_eq!(m2.0, CiphertextType::PreKey);
        let d1 = bob.receive(&mut b, m1.0, &m1.1, &rng).unwrap();
        assert_eq!(d1.plaintext, b"one");
        assert_eq!(d1.remote_identity, alice.local.key_pair.public);
        assert_eq!(d1.consumed_pre_key, with_one_time.then_some(101));
        // The second pkmsg reuses the session its base key names: no prekey needed or consumed.
        let d2 = b
            .decrypt_pkmsg(
                &bob.local,
                PreKeys::default(),
                &PreKeySignalMessage::decode(&m2.1).unwrap(),
                &rng,
            )
            .unwrap();
        assert_eq!(d2.plaintext, b"two");
        assert_eq!(d2.consumed_pre_key, None);
        assert_eq!(b.archived_sessions(), 0);
        // Several turns in both directions.
        for turn in 0..5u8 {
            for i in 0..3u8 {
                let (k, c) = b.encrypt(&[turn, i, 0xb0]).unwrap();
                assert_eq!(
                    k,
                    CiphertextType::Whisper,
                    "the responder never sends pkmsg"
                );
                assert_eq!(
                    alice.receive(&mut a, k, &c, &rng).unwrap().plaintext,
                    [turn, i, 0xb0]
                );
            }
            assert!(!a.is_pending_prekey(), "an answer confirms the session");
            for i in 0..2u8 {
                let (k, c) = a.encrypt(&[turn, i, 0xa0]).unwrap();
                assert_eq!(k, CiphertextType::Whisper);
                assert_eq!(
                    bob.receive(&mut b, k, &c, &rng).unwrap().plaintext,
                    [turn, i, 0xa0]
                );
            }
        }
    }
}

#[test]
fn out_of_order_across_a_ratchet_turn() {
    let (_alice, mut a, bob, mut b, rng) = pair(true);
    let first = a.encrypt(b"hello").unwrap();
    bob.receive(&mut b, first.0, &first.1, &rng).unwrap();
    let r = b.encrypt(b"reply").unwrap();
    a.decrypt_msg(&r.1, &rng).unwrap();
    // Alice sends 5 on her new chain; Bob gets 4, 1, 0 first.
    let sent: Vec<_> = (0..5u8).map(|i| a.encrypt(&[i]).unwrap().1).collect();
    for i in [4usize, 1, 0] {
        assert_eq!(b.decrypt_msg(&sent[i], &rng).unwrap().plaintext, [i as u8]);
    }
    assert_eq!(b.skipped_keys(), 2);
    // Bob answers (Alice turns her ratchet), Alice sends on a newer chain; the stragglers of
    // the old chain still decrypt afterwards.
    let r2 = b.encrypt(b"r2").unwrap();
    a.decrypt_msg(&r2.1, &rng).unwrap();
    let newer = a.encrypt(b"newer").unwrap();
    assert_eq!(b.decrypt_msg(&newer.1, &rng).unwrap().plaintext, b"newer");
    assert_eq!(b.decrypt_msg(&sent[3], &rng).unwrap().plaintext, [3]);
    assert_eq!(b.decrypt_msg(&sent[2], &rng).unwrap().plaintext, [2]);
    assert_eq!(b.skipped_keys(), 0);
    // Replays are refused with a typed error and change nothing.
    let before = b.clone();
    assert_eq!(
        b.decrypt_msg(&sent[2], &rng),
        Err(SessionError::Duplicate(2))
    );
    assert_eq!(b, before);
}

#[test]
fn issue10_item1_counter_ten_thousand_ahead_is_refused_without_growth() {
    let (_alice, mut a, bob, mut b, rng) = pair(true);
    let first = a.encrypt(b"x").unwrap();
    bob.receive(&mut b, first.0, &first.1, &rng).unwrap();
    // Forge Alice's chain 10,000 ahead by really advancing her sender (valid MAC).
    let mut far = a.clone();
    for _ in 0..10_000 {
        far.encrypt(b"").unwrap();
    }
    let (_, c) = far.encrypt(b"far").unwrap();
    let m = PreKeySignalMessage::decode(&c).unwrap();
    let before = b.clone();
    let err = b.decrypt_msg(m.message.as_bytes(), &rng).unwrap_err();
    assert!(
        matches!(
            err,
            SessionError::TooFarAhead {
                counter: 10_001,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(b, before, "a refused message leaves the record as it was");
    assert_eq!(b.skipped_keys(), 0);
    // Up to the bound works, and holds at most the bound of skipped keys.
    let mut near = a.clone();
    for _ in 0..1_990 {
        near.encrypt(b"").unwrap();
    }
    let (_, c) = near.encrypt(b"near").unwrap();
    let m = PreKeySignalMessage::decode(&c).unwrap();
    assert_eq!(
        b.decrypt_msg(m.message.as_bytes(), &rng).unwrap().plaintext,
        b"near"
    );
    assert_eq!(b.skipped_keys(), 1_990);
    assert!(b.to_bytes().len() < 200_000);
}

#[test]
fn failures_leave_the_record_unchanged() {
    let (alice, mut a, bob, mut b, rng) = pair(true);
    let first = a.encrypt(b"hello").unwrap();
    // Wrong prekeys: typed errors, nothing stored.
    let m = PreKeySignalMessage::decode(&first.1).unwrap();
    assert_eq!(
        b.decrypt_pkmsg(&bob.local, PreKeys::default(), &m, &rng),
        Err(SessionError::MissingSignedPreKey(7))
    );
    assert_eq!(
        b.decrypt_pkmsg(
            &bob.local,
            PreKeys {
                signed: Some(&bob.signed),
                one_time: None
            },
            &m,
            &rng
        ),
        Err(SessionError::MissingPreKey(101))
    );
    // A prekey that is not the one the sender used: bad MAC.
    let wrong = &bob.one_time[1].1;
    assert_eq!(
        b.decrypt_pkmsg(
            &bob.local,
            PreKeys {
                signed: Some(&bob.signed),
                one_time: Some(wrong)
            },
            &m,
            &rng
        ),
        Err(SessionError::BadMac)
    );
    assert_eq!(b, SessionRecord::new());
    bob.receive(&mut b, first.0, &first.1, &rng).unwrap();
    let (_, reply) = b.encrypt(b"r").unwrap();
    alice
        .receive(&mut a, CiphertextType::Whisper, &reply, &rng)
        .unwrap();
    let (_, good) = a.encrypt(b"good").unwrap();
    let before = b.clone();
    // Tampered body, tampered MAC, truncated, garbage.
    let mut t = good.clone();
    let n = t.len();
    t[n - 12] ^= 1;
    assert!(b.decrypt_msg(&t, &rng).is_err());
    let mut t = good.clone();
    t[n - 1] ^= 1;
    assert_eq!(b.decrypt_msg(&t, &rng), Err(SessionError::BadMac));
    assert!(matches!(
        b.decrypt_msg(&good[..5], &rng),
        Err(SessionError::Wire(_))
    ));
    assert!(b.decrypt_msg(&[0x33; 60], &rng).is_err());
    assert_eq!(b, before);
    assert_eq!(b.decrypt_msg(&good, &rng).unwrap().plaintext, b"good");
    // Encrypting without a session is a typed error.
    assert_eq!(
        SessionRecord::new().encrypt(b"x"),
        Err(SessionError::NoSession)
    );
}

#[test]
fn bad_bundle_signature_is_refused() {
    let rng = SeededEntropy::new(5);
    let alice = Device::new(&rng, 1);
    let bob = Device::new(&rng, 2);
    let mut bundle = bob.bundle(&rng, true);
    bundle.signed_pre_key_signature[3] ^= 1;
    let mut a = SessionRecord::new();
    assert_eq!(
        a.start_outgoing(&alice.local, &bundle, &rng),
        Err(SessionError::BadSignedPreKeySignature)
    );
    assert!(!a.has_current_session());
}

#[test]
fn crossed_session_starts_use_archived_sessions() {
    // Both sides start a session at once; each side's later pkmsg replaces the current one,
    // and messages on the replaced sessions still decrypt.
    let (alice, mut a, bob, mut b, rng) = pair(true);
    b.start_outgoing(&bob.local, &alice.bundle(&rng, true), &rng)
        .unwrap();
    let from_a = a.encrypt(b"from a").unwrap();
    let from_b = b.encrypt(b"from b").unwrap();
    let from_b_2 = b.encrypt(b"from b 2").unwrap();
    assert_eq!(
        bob.receive(&mut b, from_a.0, &from_a.1, &rng)
            .unwrap()
            .plaintext,
        b"from a"
    );
    assert_eq!(b.archived_sessions(), 1);
    assert_eq!(
        alice
            .receive(&mut a, from_b.0, &from_b.1, &rng)
            .unwrap()
            .plaintext,
        b"from b"
    );
    assert_eq!(a.archived_sessions(), 1);
    // Alice's current session is now Bob's; her first one is archived but still decrypts.
    let again = b.encrypt(b"on a's session").unwrap();
    assert_eq!(again.0, CiphertextType::Whisper);
    let d = alice.receive(&mut a, again.0, &again.1, &rng).unwrap();
    assert_eq!(d.plaintext, b"on a's session");
    assert!(d.archived_session);
    assert_eq!(
        alice
            .receive(&mut a, from_b_2.0, &from_b_2.1, &rng)
            .unwrap()
            .plaintext,
        b"from b 2"
    );
    // And the conversation goes on from Alice's current (Bob-initiated) session.
    let (k, c) = a.encrypt(b"onwards").unwrap();
    assert_eq!(
        bob.receive(&mut b, k, &c, &rng).unwrap().plaintext,
        b"onwards"
    );
}

#[test]
fn record_blob_round_trips_mid_conversation() {
    let (alice, mut a, bob, mut b, rng) = pair(true);
    let first = a.encrypt(b"1").unwrap();
    let skipped = a.encrypt(b"2").unwrap();
    let third = a.encrypt(b"3").unwrap();
    bob.receive(&mut b, first.0, &first.1, &rng).unwrap();
    bob.receive(&mut b, third.0, &third.1, &rng).unwrap();
    let blob = b.to_bytes();
    assert_eq!(blob[0], record::RECORD_FORMAT_VERSION);
    let mut b2 = SessionRecord::from_bytes(&blob).unwrap();
    assert_eq!(b2, b);
    assert_eq!(
        bob.receive(&mut b2, skipped.0, &skipped.1, &rng)
            .unwrap()
            .plaintext,
        b"2"
    );
    let (k, c) = b2.encrypt(b"back").unwrap();
    let mut a2 = SessionRecord::from_bytes(&a.to_bytes()).unwrap();
    assert_eq!(
        alice.receive(&mut a2, k, &c, &rng).unwrap().plaintext,
        b"back"
    );
    assert_eq!(
        SessionRecord::from_bytes(&[]),
        Err(RecordError::Version(None))
    );
    assert_eq!(
        SessionRecord::from_bytes(&[9, 1]),
        Err(RecordError::Version(Some(9)))
    );
    assert!(matches!(
        SessionRecord::from_bytes(&[1, 0x0a, 0x02, 0x0a, 0x00]),
        Err(RecordError::Malformed(_))
    ));
}

/// Bob with an established session, built once (curve arithmetic is slow in debug builds).
fn established_bob() -> &'static (Device, SessionRecord) {
    static BOB: std::sync::OnceLock<(Device, SessionRecord)> = std::sync::OnceLock::new();
    BOB.get_or_init(|| {
        let (_alice, mut a, bob, mut b, rng) = pair(true);
        let first = a.encrypt(b"hi").unwrap();
        bob.receive(&mut b, first.0, &first.1, &rng).unwrap();
        (bob, b)
    })
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic_or_change_a_record(data in proptest::collection::vec(any::<u8>(), 0..200)) {
        let (bob, established) = established_bob();
        let rng = SeededEntropy::new(1);
        let mut b = established.clone();
        let before = b.clone();
        let _ = b.decrypt_msg(&data, &rng);
        if let Ok(m) = PreKeySignalMessage::decode(&data) {
            let _ = b.decrypt_pkmsg(&bob.local, PreKeys { signed: Some(&bob.signed), one_time: None }, &m, &rng);
        }
        prop_assert_eq!(&b, &before);
        let _ = SessionRecord::from_bytes(&data);
    }
}

#[test]
fn peer_reinstall_with_new_identity_is_a_change_the_caller_sees() {
    let (alice, mut a, bob, mut b, rng) = pair(true);
    let first = a.encrypt(b"before").unwrap();
    let d = bob.receive(&mut b, first.0, &first.1, &rng).unwrap();
    assert_eq!(
        identity::decide(None, &d.remote_identity),
        TrustDecision::New
    );
    let stored = d.remote_identity;
    // Alice reinstalls: new identity, new session from Bob's bundle (without a one-time prekey this time).
    let alice2 = Device::new(&rng, 3333);
    let mut a2 = SessionRecord::new();
    a2.start_outgoing(&alice2.local, &bob.bundle(&rng, false), &rng)
        .unwrap();
    let hello = a2.encrypt(b"new phone").unwrap();
    let d = bob.receive(&mut b, hello.0, &hello.1, &rng).unwrap();
    assert_eq!(d.plaintext, b"new phone");
    assert_eq!(
        identity::decide(Some(&stored), &d.remote_identity),
        TrustDecision::Changed {
            previous: alice.local.key_pair.public
        }
    );
    assert_eq!(b.remote_identity(), Some(alice2.local.key_pair.public));
    assert_eq!(b.archived_sessions(), 1);
    // Bob answers on the new session only.
    let (k, c) = b.encrypt(b"hi new phone").unwrap();
    assert_eq!(
        alice2.receive(&mut a2, k, &c, &rng).unwrap().plaintext,
        b"hi new phone"
    );
    assert!(
        alice.receive(&mut a, k, &c, &rng).is_err(),
        "the old install cannot read it"
    );
}
