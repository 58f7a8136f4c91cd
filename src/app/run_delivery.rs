//! A run's `delivered` means WhatsApp acknowledged it: following the outbox outcome of a
//! `sending` run's reply parts (issue 11, "runs that tell the truth").
//!
//! The run executor stores the reply's parts in the account's outbox and the run becomes
//! `sending`. The run registry then calls [`App::follow_run_delivery`], which reads the parts'
//! outbox records until [`judge`] settles them:
//!
//! - every part `sent` (the server acknowledged it) → `delivered`;
//! - a part `failed` or `expired` → `failed` with that part's reason;
//! - parts still `pending`/`sending` (also while the account is disconnected) → keep waiting, the
//!   run stays `sending` with its `deliveryDeadlineMs` visible, until the deadline plus
//!   [`DEADLINE_GRACE_MS`] passes (the driver expires messages only while connected, so a
//!   run whose account never came back fails here with the reason).
//!
//! Runs left `sending` at a restart are followed again by the new process (the parts are in the
//! account's persistent outbox).

use std::time::Duration;

use crate::agent::runs::RunRecord;
use crate::messaging::{MessageId, OutboxRecord, OutboxState};

use super::App;

/// How long after the parts' deadline a run still waits for the driver to settle them.
pub const DEADLINE_GRACE_MS: u64 = 60_000;
/// The longest pause between two reads of the outbox while following a run.
pub const MAX_POLL: Duration = Duration::from_secs(1);

/// What the parts' outbox records say about the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every part was acknowledged.
    Delivered,
    /// A part failed or expired, or can no longer be found; the text says which and why.
    Failed(String),
    /// Some parts are still waiting to be sent.
    Waiting,
}

/// Judges a run's parts (pure): `parts[i]` is part `i`'s outbox record, `None` when the outbox
/// does not know it. `deadline_ms` is the parts' outbox deadline.
pub fn judge(parts: &[(MessageId, Option<OutboxRecord>)], deadline_ms: u64, now_ms: u64) -> Verdict {
    let n = parts.len();
    let mut waiting = None;
    for (i, (id, rec)) in parts.iter().enumerate() {
        let which = if n == 1 { format!("the reply ({id})") } else { format!("part {} of {n} ({id})", i + 1) };
        match rec {
            None => return Verdict::Failed(format!("the reply was not delivered: {which} is no longer in the outbox")),
            Some(r) => match r.state {
                OutboxState::Sent => {}
                OutboxState::Failed | OutboxState::Expired => {
                    let why = r.last_error.clone().unwrap_or_else(|| "no reason recorded".into());
                    return Verdict::Failed(format!("the reply was not delivered: {which} {}: {why}", r.state.as_str()));
                }
                OutboxState::Pending | OutboxState::Sending => {
                    waiting.get_or_insert((which, r.state));
                }
            },
        }
    }
    match waiting {
        None => Verdict::Delivered,
        Some((which, state)) if now_ms > deadline_ms.saturating_add(DEADLINE_GRACE_MS) => Verdict::Failed(format!(
            "the reply was not delivered: {which} was still {} after its deadline ({deadline_ms} unix ms); the account was not connected in time",
            state.as_str()
        )),
        Some(_) => Verdict::Waiting,
    }
}

impl App {
    /// Follows a `sending` run's parts until [`judge`] settles them (module doc).
    pub async fn follow_run_delivery(&self, run: &RunRecord) -> Result<(), String> {
        let Some(d) = &run.delivery else { return Ok(()) };
        if run.parts.is_empty() {
            return Ok(());
        }
        let ids: Vec<MessageId> = run.parts.iter().map(|p| MessageId::new(p.as_str())).collect();
        let deadline = run.delivery_deadline_ms.unwrap_or(0);
        let mut pause = Duration::from_millis(10);
        loop {
            let Some(default) = self.cfg.default_account(&d.channel) else {
                return Err(format!("the reply was not delivered: channel {} is no longer configured", d.channel));
            };
            let account = d.account_id.clone().unwrap_or_else(|| default.to_string());
            if self.cfg.account(&d.channel, &account).is_none() {
                return Err(format!("the reply was not delivered: account {}/{account} is no longer configured", d.channel));
            }
            // No handle yet: the channel drivers are still starting (or the account is not
            // running); the parts wait in its outbox.
            let handle = self.registry().get(&d.channel, &account).cloned();
            let mut parts = Vec::with_capacity(ids.len());
            let mut readable = handle.is_some();
            if let Some(h) = &handle {
                for id in &ids {
                    match h.outcome(id).await {
                        Ok(r) => parts.push((id.clone(), r)),
                        Err(e) => {
                            tracing::warn!(runId = %run.run_id, error = %e, "cannot read a reply part's outcome; retrying");
                            readable = false;
                            break;
                        }
                    }
                }
            }
            let now = self.now_ms();
            if readable {
                match judge(&parts, deadline, now) {
                    Verdict::Delivered => return Ok(()),
                    Verdict::Failed(why) => return Err(why),
                    Verdict::Waiting => {}
                }
            } else if now > deadline.saturating_add(DEADLINE_GRACE_MS) {
                return Err(format!(
                    "the reply was not delivered: account {}/{account} did not run before the deadline ({deadline} unix ms)",
                    d.channel
                ));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(MAX_POLL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messaging::{ChatId, OutboundBody, OutboundMessage};

    fn rec(id: &str, state: OutboxState, err: Option<&str>) -> (MessageId, Option<OutboxRecord>) {
        let message = OutboundMessage {
            id: MessageId::new(id),
            channel: "whatsapp".into(),
            account_id: "default".into(),
            chat: ChatId::new("1@s.whatsapp.net"),
            reply_to: None,
            body: OutboundBody::Text { text: "x".into() },
        };
        let r = OutboxRecord {
            message,
            state,
            attempts: 1,
            created_at_ms: 0,
            updated_at_ms: 0,
            not_before_ms: 0,
            deadline_ms: 100,
            finished_at_ms: None,
            last_error: err.map(str::to_string),
        };
        (MessageId::new(id), Some(r))
    }

    #[test]
    fn issue11_delivered_only_when_every_part_is_sent() {
        use OutboxState::*;
        assert_eq!(judge(&[rec("a", Sent, None), rec("b", Sent, None)], 100, 50), Verdict::Delivered);
        assert_eq!(judge(&[rec("a", Sent, None), rec("b", Sending, None)], 100, 50), Verdict::Waiting);
        assert_eq!(judge(&[rec("a", Pending, None)], 100, 50), Verdict::Waiting, "disconnected: still waiting");
    }

    #[test]
    fn issue11_a_failed_or_expired_part_fails_the_run_with_its_reason() {
        use OutboxState::*;
        let v = judge(&[rec("a", Sent, None), rec("b", Failed, Some("server refused: 479")), rec("c", Pending, None)], 100, 50);
        assert_eq!(v, Verdict::Failed("the reply was not delivered: part 2 of 3 (b) failed: server refused: 479".into()));
        let v = judge(&[rec("a", Expired, Some("deadline passed before it could be sent"))], 100, 50);
        assert_eq!(v, Verdict::Failed("the reply was not delivered: the reply (a) expired: deadline passed before it could be sent".into()));
        let v = judge(&[(MessageId::new("gone"), None)], 100, 50);
        assert!(matches!(v, Verdict::Failed(t) if t.contains("no longer in the outbox")));
    }

    #[test]
    fn issue11_parts_unsent_past_the_deadline_fail_the_run() {
        use OutboxState::*;
        assert_eq!(judge(&[rec("a", Pending, None)], 100, 100 + DEADLINE_GRACE_MS), Verdict::Waiting);
        let v = judge(&[rec("a", Sent, None), rec("b", Pending, None)], 100, 101 + DEADLINE_GRACE_MS);
        assert!(matches!(&v, Verdict::Failed(t) if t.contains("part 2 of 2 (b) was still pending after its deadline")), "{v:?}");
    }
}
