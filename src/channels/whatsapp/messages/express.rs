//! The consumer's express claim: the usual DM reply is claimed and encrypted in the same
//! transaction that stores it ([`Outbox::enqueue_reply_unsynced`]), then handed to the consumer,
//! which sends it without another trip to the store. One synced commit covers the reply, its
//! claim and the advanced sessions before it leaves, as `Consumer::claim_and_encrypt` does.

use std::sync::{Arc, Mutex, Weak};

use crate::channels::whatsapp::account::store::Ops;
use crate::messaging::outbox::Express;
use crate::messaging::Outbox;

use super::driver::{Claimed, DmKeys, Messaging};

/// The express claim of one consumer, installed on the account's outbox while it lives.
pub(super) struct ExpressClaim {
    outbox: Outbox,
    hook: Express,
    ready: Arc<Mutex<Option<Claimed>>>,
}

impl ExpressClaim {
    /// Installs the express claim of a consumer encrypting with `keys` for `m`'s account.
    pub(super) fn install(m: &Arc<Messaging>, keys: DmKeys) -> Self {
        let ready: Arc<Mutex<Option<Claimed>>> = Arc::default();
        let (weak, slot, account) = (Arc::downgrade(m), ready.clone(), m.account_id.clone());
        let hook: Express = Arc::new(move |tx: &rusqlite::Transaction<'_>, now: u64| claim(&weak, &slot, &keys, &account, &Ops::new(tx), now));
        m.outbox.set_express(hook.clone());
        Self { outbox: m.outbox.clone(), hook, ready }
    }

    /// The message claimed and prepared for this consumer, if any.
    pub(super) fn take(&self) -> Option<Claimed> {
        self.ready.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

impl Drop for ExpressClaim {
    fn drop(&mut self) {
        self.outbox.clear_express(&self.hook);
        if let Some((rec, _)) = self.take() {
            // Claimed (`sending`) but never sent: the next connection holds it until its
            // backlog shows whether it arrived, then sends it with the same id.
            tracing::warn!(id = %rec.message.id, "a claimed reply was not sent before the connection ended; it is re-sent after the next connect");
        }
    }
}

/// Inside the reply's transaction: claims the account's next message and encrypts it when it
/// is the usual DM ([`DmKeys::claim_next`], as the consumer's own claim). Nothing when the
/// consumer has not yet taken the previous one, or when the ratchet lock is held (a receive or
/// a long-way send is between its load and its commit; they run their store steps on this
/// same thread, so the lock cannot be waited for here). The lock is released before the
/// commit, which is safe: store jobs run one at a time on this thread, so no other load can
/// come between this encryption and its commit.
fn claim(m: &Weak<Messaging>, ready: &Arc<Mutex<Option<Claimed>>>, keys: &DmKeys, account: &str, ops: &Ops<'_>, now: u64) -> Option<Box<dyn FnOnce() + Send>> {
    let m = m.upgrade()?;
    if ready.lock().unwrap_or_else(|e| e.into_inner()).is_some() {
        return None;
    }
    let _ratchets = m.ratchets.try_lock().ok()?;
    let (expired, claimed) = match keys.claim_next(ops, account, now) {
        Ok(x) => x,
        Err(e) => {
            // Rolled back with the savepoint: the consumer claims it itself.
            tracing::warn!(account = %account, "express claim failed; the consumer sends it: {e}");
            return None;
        }
    };
    let (rec, encrypted) = claimed?;
    if !expired.is_empty() {
        tracing::warn!(account = %account, count = expired.len(), "outbound messages expired unsent");
    }
    let ready = ready.clone();
    Some(Box::new(move || *ready.lock().unwrap_or_else(|e| e.into_inner()) = Some((rec, encrypted))))
}
