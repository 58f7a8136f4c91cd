//! The channel registry: one [`AccountHandle`] per running channel account, so the gateway, the
//! operations layer and the agent send and inspect messages without naming a channel's
//! internals (DESIGN.md: "the gateway no longer names WhatsApp").
//!
//! The contract between a channel driver and everyone else:
//!
//! - **Sending is enqueueing.** [`AccountHandle::send`] stores the message in the account's
//!   persistent [`Outbox`] (accepted means committed) and wakes the driver; the driver claims it,
//!   sends it when connected, and records `sent` only after the server acknowledged it. Callers
//!   that must wait for the outcome use [`AccountHandle::wait_final`].
//! - **Live operations are commands.** Typing state, read receipts and target checks need a live
//!   connection; they travel as [`AccountCommand`]s to the driver, which answers or drops them
//!   (ephemeral by nature: a typing state for a disconnected account is meaningless).
//! - **Inbound messages** go from drivers into one shared [`crate::messaging::InboundSink`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::messaging::{
    ChatId, Enqueued, MessageId, OutboundMessage, Outbox, OutboxError, OutboxRecord,
};

/// Typing state shown to a chat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    /// "typing…".
    Composing,
    /// Stopped typing.
    Paused,
}

/// Why a target could not be resolved to a chat.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// Not a phone number or chat id this channel understands.
    #[error("invalid target {0:?}: expected an E.164 number such as +15551234567 or a chat id")]
    Invalid(String),
    /// The number is valid but has no account on this channel.
    #[error("{0} is not on this channel")]
    NotOnChannel(String),
    /// The check needs a live connection and the account has none.
    #[error("the account is not connected, so the target cannot be checked now")]
    NotConnected,
}

/// A request to a running channel driver that needs a live connection.
#[derive(Debug)]
pub enum AccountCommand {
    /// Show or clear the typing state in a chat.
    Presence {
        /// The chat.
        chat: ChatId,
        /// Composing or paused.
        state: Presence,
    },
    /// Mark messages of a chat read (read receipts).
    MarkRead {
        /// The chat.
        chat: ChatId,
        /// The sender of the messages (in groups, the participant).
        sender: ChatId,
        /// The messages.
        ids: Vec<MessageId>,
    },
    /// Resolve a user-supplied target (E.164 or chat id) to a chat, checking that it exists.
    ResolveTarget {
        /// As typed by the user.
        target: String,
        /// The answer.
        reply: oneshot::Sender<Result<ChatId, TargetError>>,
    },
    /// List the groups the account is in (asks the server).
    ListGroups {
        /// The answer.
        reply: oneshot::Sender<Result<Vec<GroupSummary>, TargetError>>,
    },
}

/// A group the account is in, as `channels groups` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupSummary {
    /// The group's chat id (what `groups` in the config names).
    pub id: ChatId,
    /// The subject.
    pub subject: String,
    /// How many members it has.
    pub participants: usize,
}

/// Why [`AccountHandle::send`] or [`AccountHandle::wait_final`] failed.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The outbox could not store or read the message.
    #[error(transparent)]
    Outbox(#[from] OutboxError),
    /// The message id is unknown.
    #[error("no message with id {0}")]
    Unknown(MessageId),
    /// The message did not reach a final state in time.
    #[error("message {id} is still {state} after {waited:?}")]
    Timeout {
        /// The message.
        id: MessageId,
        /// Its state when the wait ended.
        state: &'static str,
        /// How long the caller waited.
        waited: Duration,
    },
}

/// One channel account as the rest of the program sees it.
#[derive(Debug, Clone)]
pub struct AccountHandle {
    channel: String,
    account: String,
    outbox: Outbox,
    commands: mpsc::Sender<AccountCommand>,
}

impl AccountHandle {
    /// A handle over `outbox` whose driver reads `commands`.
    pub fn new(
        channel: impl Into<String>,
        account: impl Into<String>,
        outbox: Outbox,
        commands: mpsc::Sender<AccountCommand>,
    ) -> Self {
        Self { channel: channel.into(), account: account.into(), outbox, commands }
    }

    /// The channel id (`whatsapp`).
    pub fn channel(&self) -> &str {
        &self.channel
    }

    /// The account id (`default`).
    pub fn account(&self) -> &str {
        &self.account
    }

    /// The account's outbox (status queries, counts).
    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    /// Stores `msg` in the outbox (idempotent by its id) and wakes the driver. `deadline_ms` is
    /// the unix time after which an unsent message expires instead of going out late.
    pub async fn send(&self, msg: OutboundMessage, deadline_ms: u64, now_ms: u64) -> Result<Enqueued, SendError> {
        Ok(self.outbox.enqueue(msg, deadline_ms, now_ms).await?)
    }

    /// Stores the parts of an assistant's reply in the outbox, in order and all or none, and
    /// wakes the driver, without waiting for the disk: the driver's synced commit before the
    /// first part leaves makes them durable (see [`Outbox::enqueue_reply_unsynced`]). For
    /// replies of runs, whose acceptance was promised when the run was stored; a send whose
    /// caller is told "accepted" uses [`AccountHandle::send`].
    pub async fn send_reply(&self, parts: Vec<OutboundMessage>, deadline_ms: u64, now_ms: u64) -> Result<Vec<Enqueued>, SendError> {
        Ok(self.outbox.enqueue_reply_unsynced(parts, deadline_ms, now_ms).await?)
    }

    /// The stored outcome of a message, if the id is known.
    pub async fn outcome(&self, id: &MessageId) -> Result<Option<OutboxRecord>, SendError> {
        Ok(self.outbox.get(id).await?)
    }

    /// Waits until the message is `sent`, `failed` or `expired`, polling the outbox, at most
    /// `timeout`.
    pub async fn wait_final(&self, id: &MessageId, timeout: Duration) -> Result<OutboxRecord, SendError> {
        let start = tokio::time::Instant::now();
        let mut pause = Duration::from_millis(5);
        loop {
            let rec = self.outbox.get(id).await?.ok_or_else(|| SendError::Unknown(id.clone()))?;
            if rec.state.is_final() {
                return Ok(rec);
            }
            let waited = start.elapsed();
            if waited >= timeout {
                return Err(SendError::Timeout { id: id.clone(), state: rec.state.as_str(), waited });
            }
            tokio::time::sleep(pause.min(timeout - waited)).await;
            pause = (pause * 2).min(Duration::from_millis(100));
        }
    }

    /// Hands a live operation to the driver; false when the driver is gone or its queue is full
    /// (live operations are dropped rather than queued without bound).
    pub fn command(&self, cmd: AccountCommand) -> bool {
        self.commands.try_send(cmd).is_ok()
    }

    /// Asks the driver for the groups the account is in.
    pub async fn list_groups(&self, timeout: Duration) -> Result<Vec<GroupSummary>, TargetError> {
        let (reply, rx) = oneshot::channel();
        if !self.command(AccountCommand::ListGroups { reply }) {
            return Err(TargetError::NotConnected);
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(r)) => r,
            _ => Err(TargetError::NotConnected),
        }
    }

    /// Asks the driver to resolve and check a target.
    pub async fn resolve_target(&self, target: &str, timeout: Duration) -> Result<ChatId, TargetError> {
        let (reply, rx) = oneshot::channel();
        if !self.command(AccountCommand::ResolveTarget { target: target.to_owned(), reply }) {
            return Err(TargetError::NotConnected);
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(r)) => r,
            _ => Err(TargetError::NotConnected),
        }
    }
}

/// Every running channel account, keyed by channel and account id.
#[derive(Debug, Clone, Default)]
pub struct ChannelRegistry {
    accounts: Arc<BTreeMap<(String, String), AccountHandle>>,
}

impl ChannelRegistry {
    /// A registry of `handles`.
    pub fn new(handles: impl IntoIterator<Item = AccountHandle>) -> Self {
        let accounts = handles
            .into_iter()
            .map(|h| ((h.channel.clone(), h.account.clone()), h))
            .collect();
        Self { accounts: Arc::new(accounts) }
    }

    /// The handle of one account.
    pub fn get(&self, channel: &str, account: &str) -> Option<&AccountHandle> {
        self.accounts.get(&(channel.to_owned(), account.to_owned()))
    }

    /// The accounts of a channel, in account-id order.
    pub fn accounts_of<'a>(&'a self, channel: &'a str) -> impl Iterator<Item = &'a AccountHandle> + 'a {
        self.accounts.values().filter(move |h| h.channel == channel)
    }

    /// Every handle.
    pub fn all(&self) -> impl Iterator<Item = &AccountHandle> {
        self.accounts.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messaging::{OutboundBody, OutboxPolicy};

    fn msg(id: &str) -> OutboundMessage {
        OutboundMessage {
            id: MessageId::new(id),
            channel: "whatsapp".into(),
            account_id: "default".into(),
            chat: ChatId::new("15550001111@s.whatsapp.net"),
            reply_to: None,
            body: OutboundBody::Text { text: "hi".into() },
        }
    }

    #[tokio::test]
    async fn send_stores_and_wait_final_sees_the_driver_outcome() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::open(&dir.path().join("o.db"), OutboxPolicy::default()).unwrap();
        let (tx, mut rx) = mpsc::channel(4);
        let h = AccountHandle::new("whatsapp", "default", outbox.clone(), tx);
        let reg = ChannelRegistry::new([h.clone()]);
        let h = reg.get("whatsapp", "default").unwrap();
        let e = h.send(msg("A1"), u64::MAX, 1).await.unwrap();
        assert!(e.created);
        // Not final yet: the wait times out with the state named.
        let err = h.wait_final(&MessageId::new("A1"), Duration::from_millis(20)).await.unwrap_err();
        assert!(err.to_string().contains("pending"), "{err}");
        // A driver claims and acknowledges it.
        let driver = tokio::spawn(async move {
            let rec = outbox.claim_next("whatsapp", "default", 2).await.unwrap().unwrap();
            outbox.mark_sent(&rec.message.id, 3).await.unwrap();
        });
        let rec = h.wait_final(&MessageId::new("A1"), Duration::from_secs(5)).await.unwrap();
        driver.await.unwrap();
        assert_eq!(rec.state.as_str(), "sent");
        // A target check without a driver answering is "not connected", and commands reach the driver.
        drop(rx.try_recv());
        let (reply, _r) = oneshot::channel();
        assert!(h.command(AccountCommand::ResolveTarget { target: "+1".into(), reply }));
        assert!(matches!(rx.recv().await, Some(AccountCommand::ResolveTarget { .. })));
        assert!(reg.get("whatsapp", "other").is_none());
        assert_eq!(reg.accounts_of("whatsapp").count(), 1);
    }
}
