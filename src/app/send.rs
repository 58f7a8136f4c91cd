//! Sending a message without any LLM: `message send`, control `send`, `POST <hooks.path>/send`
//! and the delivery of replies all go through [`App::send_text`]. Accepted means stored in the
//! account's persistent outbox; the driver sends it when connected and records the outcome,
//! which [`App::send_outcome`] reads.

use std::time::Duration;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{App, DEFAULT_SEND_DEADLINE_MS};
use crate::channels::registry::{AccountHandle, SendError, TargetError};
use crate::messaging::{ChatId, MessageId, OutboundBody, OutboundMessage, OutboxRecord};

/// How long a target check with a connected account may take.
pub const RESOLVE_TIMEOUT: Duration = Duration::from_secs(10);

/// A send as a front end names it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SendRequest {
    /// Channel id (`whatsapp`).
    pub channel: String,
    /// Account id; `None`: the channel's default account.
    pub account_id: Option<String>,
    /// E.164 number or chat id.
    pub to: String,
    /// The text.
    pub message: String,
    /// Makes a retried request the same message (the message id is derived from it).
    pub idempotency_key: Option<String>,
}

/// A stored send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SendAccepted {
    /// The message id (the idempotency key of the send; use it to read the outcome).
    pub message_id: String,
    /// Channel id.
    pub channel: String,
    /// The sending account.
    pub account_id: String,
    /// The resolved chat.
    pub chat: String,
    /// `pending` until the driver sends it (`sent` on a replay of a delivered message).
    pub state: String,
    /// Unix ms after which an unsent message expires.
    pub deadline_ms: u64,
    /// Whether the account is connected now.
    pub connected: bool,
    /// When not connected: the account's state and next attempt, in words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection: Option<String>,
    /// False when an idempotency key matched an earlier message.
    pub created: bool,
}

/// Why a send was refused (nothing was stored).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendOpError {
    /// A required field is missing or empty.
    #[error("{0} required")]
    Missing(&'static str),
    /// The channel is not configured.
    #[error("channel {0:?} is not configured on this gateway")]
    UnknownChannel(String),
    /// Upstream's text for an unknown account.
    #[error("Unknown account \"{account}\" for channel {channel}.")]
    UnknownAccount {
        /// Channel.
        channel: String,
        /// Account.
        account: String,
    },
    /// The account has no credentials (upstream's text).
    #[error("No active WhatsApp Web listener (account: {account}). Start the gateway, then link WhatsApp with: openclaw channels login --channel {channel} --account {account}.")]
    NotLinked {
        /// Channel.
        channel: String,
        /// Account.
        account: String,
    },
    /// The account is configured but its driver is not running in this gateway.
    #[error("channel {channel} account {account} is not running in this gateway ({detail})")]
    NotRunning {
        /// Channel.
        channel: String,
        /// Account.
        account: String,
        /// Its state.
        detail: String,
    },
    /// Not a number or chat id.
    #[error("invalid target {0:?}: expected an E.164 number such as +15551234567 or a chat id")]
    InvalidTarget(String),
    /// The number has no account on the channel.
    #[error("{0} is not on WhatsApp")]
    NotOnChannel(String),
    /// The outbox could not store it.
    #[error("the message could not be stored, so it was not accepted: {0}")]
    Store(String),
}

impl SendOpError {
    /// The HTTP status for hooks.
    pub fn http_status(&self) -> u16 {
        match self {
            Self::Missing(_) | Self::InvalidTarget(_) | Self::UnknownAccount { .. } | Self::UnknownChannel(_) => 400,
            Self::NotLinked { .. } => 409,
            Self::NotOnChannel(_) => 422,
            Self::NotRunning { .. } | Self::Store(_) => 503,
        }
    }

    /// A stable code for the control protocol's error `details.code` and the CLI.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Missing(_) => "MISSING_FIELD",
            Self::UnknownChannel(_) => "UNKNOWN_CHANNEL",
            Self::UnknownAccount { .. } => "UNKNOWN_ACCOUNT",
            Self::NotLinked { .. } => "NOT_LINKED",
            Self::NotRunning { .. } => "CHANNEL_NOT_RUNNING",
            Self::InvalidTarget(_) => "INVALID_TARGET",
            Self::NotOnChannel(_) => "NOT_ON_CHANNEL",
            Self::Store(_) => "STORE_FAILED",
        }
    }
}

/// A WhatsApp-style message id (`3EB0` + 20 upper-case hex digits): from the idempotency key
/// when given (so a retried request is the same message), else random.
pub fn new_message_id(idempotency_key: Option<&str>) -> MessageId {
    let bytes: [u8; 10] = match idempotency_key {
        Some(k) => {
            let d = Sha256::digest(k.as_bytes());
            let mut b = [0u8; 10];
            b.copy_from_slice(&d[..10]);
            b
        }
        None => rand::random(),
    };
    MessageId::new(format!("3EB0{}", bytes.iter().map(|b| format!("{b:02X}")).collect::<String>()))
}

/// The chat of a target without asking the channel: an E.164 number (spaces, dashes and
/// parentheses ignored, an optional `whatsapp:` prefix) becomes `<digits>@s.whatsapp.net`; a
/// chat id (`…@s.whatsapp.net`, `…@lid`, `…@g.us`) is kept.
pub fn local_chat(to: &str) -> Result<ChatId, SendOpError> {
    let t = to.trim();
    let t = t.strip_prefix("whatsapp:").unwrap_or(t).trim();
    if let Some((user, server)) = t.split_once('@') {
        let ok_server = matches!(server, "s.whatsapp.net" | "c.us" | "lid" | "g.us");
        let ok_user = !user.is_empty() && user.bytes().all(|b| b.is_ascii_digit() || b == b'-' || b == b':' || b == b'.');
        if ok_server && ok_user {
            let server = if server == "c.us" { "s.whatsapp.net" } else { server };
            return Ok(ChatId::new(format!("{user}@{server}")));
        }
        return Err(SendOpError::InvalidTarget(to.to_string()));
    }
    let cleaned: String = t.chars().filter(|c| !matches!(c, ' ' | '-' | '(' | ')' | '.')).collect();
    let digits = cleaned.strip_prefix('+').unwrap_or("");
    if (7..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) && !digits.starts_with('0') {
        return Ok(ChatId::new(format!("{digits}@s.whatsapp.net")));
    }
    Err(SendOpError::InvalidTarget(to.to_string()))
}

/// The E.164 number of a personal chat id, if it is one.
pub fn chat_e164(chat: &str) -> Option<String> {
    let user = chat.strip_suffix("@s.whatsapp.net")?;
    let user = user.split(':').next().unwrap_or(user);
    user.bytes().all(|b| b.is_ascii_digit()).then(|| format!("+{user}"))
}

impl App {
    /// The running handle of `channel`/`account` (`None`: the default account), checking that
    /// it is configured, linked and running.
    pub(crate) fn handle_for(&self, channel: &str, account: Option<&str>) -> Result<(AccountHandle, bool, Option<String>), SendOpError> {
        if channel.is_empty() {
            return Err(SendOpError::Missing("channel"));
        }
        let Some(default) = self.cfg.default_account(channel) else {
            return Err(SendOpError::UnknownChannel(channel.to_string()));
        };
        let account = account.filter(|a| !a.is_empty()).unwrap_or(default).to_string();
        if self.cfg.account(channel, &account).is_none() {
            return Err(SendOpError::UnknownAccount { channel: channel.into(), account });
        }
        let status = self.status.get(channel, &account);
        let registry = self.registry();
        let handle = registry.get(channel, &account).cloned();
        let fmt_time = |ms: u64| format!("{ms} (unix ms)");
        match (handle, status) {
            (_, Some(s)) if !s.linked => Err(SendOpError::NotLinked { channel: channel.into(), account }),
            (Some(h), Some(s)) => {
                let detail = (!s.connected).then(|| s.state.describe(fmt_time));
                Ok((h, s.connected, detail))
            }
            (Some(h), None) => Ok((h, false, Some("no status reported yet".into()))),
            (None, s) => Err(SendOpError::NotRunning {
                channel: channel.into(),
                account,
                detail: s.map(|s| s.state.describe(fmt_time)).unwrap_or_else(|| "not started".into()),
            }),
        }
    }

    /// Resolves `to` for an account: through the driver when connected (which checks the
    /// number is on WhatsApp), else locally (the message then waits in the outbox).
    pub(crate) async fn resolve_chat(&self, handle: &AccountHandle, connected: bool, to: &str) -> Result<ChatId, SendOpError> {
        let local = local_chat(to)?;
        if !connected {
            return Ok(local);
        }
        match handle.resolve_target(to, RESOLVE_TIMEOUT).await {
            Ok(chat) => Ok(chat),
            Err(TargetError::NotConnected) => Ok(local),
            Err(TargetError::Invalid(t)) => Err(SendOpError::InvalidTarget(t)),
            Err(TargetError::NotOnChannel(t)) => Err(SendOpError::NotOnChannel(t)),
        }
    }

    /// Stores `body` for `chat` in `handle`'s outbox.
    pub(crate) async fn enqueue(
        &self,
        handle: &AccountHandle,
        id: MessageId,
        chat: ChatId,
        reply_to: Option<MessageId>,
        body: OutboundBody,
    ) -> Result<(crate::messaging::Enqueued, u64), SendOpError> {
        let now = self.now_ms();
        let deadline = now.saturating_add(DEFAULT_SEND_DEADLINE_MS);
        let msg = OutboundMessage {
            id,
            channel: handle.channel().to_string(),
            account_id: handle.account().to_string(),
            chat,
            reply_to,
            body,
        };
        let e = handle.send(msg, deadline, now).await.map_err(|e: SendError| SendOpError::Store(e.to_string()))?;
        Ok((e, deadline))
    }

    /// Sends a text: resolve, store in the outbox, return the message id. A linked account that
    /// is not connected is not a refusal: the message waits until its deadline.
    pub async fn send_text(&self, req: &SendRequest) -> Result<SendAccepted, SendOpError> {
        if req.to.trim().is_empty() {
            return Err(SendOpError::Missing("to"));
        }
        if req.message.trim().is_empty() {
            return Err(SendOpError::Missing("message"));
        }
        let (handle, connected, connection) = self.handle_for(&req.channel, req.account_id.as_deref())?;
        let chat = self.resolve_chat(&handle, connected, &req.to).await?;
        let id = new_message_id(req.idempotency_key.as_deref());
        let (e, deadline) =
            self.enqueue(&handle, id.clone(), chat.clone(), None, OutboundBody::Text { text: req.message.clone() }).await?;
        tracing::info!(channel = %req.channel, account = %handle.account(), messageId = %id, created = e.created, connected, "message accepted into the outbox");
        Ok(SendAccepted {
            message_id: id.to_string(),
            channel: handle.channel().to_string(),
            account_id: handle.account().to_string(),
            chat: chat.to_string(),
            state: e.record.state.as_str().to_string(),
            deadline_ms: deadline,
            connected,
            connection,
            created: e.created,
        })
    }

    /// The stored outcome of a message, searching every running account's outbox.
    pub async fn send_outcome(&self, id: &str) -> Result<Option<OutboxRecord>, SendOpError> {
        let id = MessageId::new(id);
        for h in self.registry().all() {
            if let Some(r) = h.outcome(&id).await.map_err(|e| SendOpError::Store(e.to_string()))? {
                return Ok(Some(r));
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_resolve_locally_or_are_refused() {
        assert_eq!(local_chat("+1 555-000 1111").unwrap().as_str(), "15550001111@s.whatsapp.net");
        assert_eq!(local_chat("whatsapp:+15550001111").unwrap().as_str(), "15550001111@s.whatsapp.net");
        assert_eq!(local_chat("15550001111@s.whatsapp.net").unwrap().as_str(), "15550001111@s.whatsapp.net");
        assert_eq!(local_chat("123@lid").unwrap().as_str(), "123@lid");
        for bad in ["15550001111", "+12", "+0123456789", "hello", "+1555abc0000", "x@example.com", "@s.whatsapp.net"] {
            assert!(matches!(local_chat(bad), Err(SendOpError::InvalidTarget(_))), "{bad}");
        }
        assert_eq!(chat_e164("15550001111@s.whatsapp.net").as_deref(), Some("+15550001111"));
        assert_eq!(chat_e164("1@lid"), None);
    }

    #[test]
    fn message_ids_are_stable_per_idempotency_key() {
        let a = new_message_id(Some("k"));
        assert_eq!(a, new_message_id(Some("k")));
        assert_ne!(a, new_message_id(Some("j")));
        assert!(a.as_str().starts_with("3EB0") && a.as_str().len() == 24);
        assert_ne!(new_message_id(None), new_message_id(None));
    }
}
