//! Where an agent run's reply goes, resolved **before** the run is accepted (issue 11 item 4):
//! `channel` + `to`; else the account's `defaultTo`; else the session's last route (`channel:
//! "last"`, or no channel at all). When nothing resolves, or the channel cannot deliver (not
//! configured, not linked, not running), the request is refused with the reason and a hint and no
//! run is created. A linked account that is momentarily disconnected is not a refusal: the reply
//! waits in the outbox.

use crate::agent::runs::Delivery;
use crate::routing::session_key::{DEFAULT_AGENT_ID, DEFAULT_MAIN_KEY};

use super::send::SendOpError;
use super::App;

/// The hint every refusal carries.
pub const HINT: &str = "set channel and to, or deliver: false";

/// What a request says about delivery.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryRequest {
    /// `deliver` (anything but `false` means true, as upstream).
    pub deliver: bool,
    /// `channel` (`"last"`: the session's last route).
    pub channel: Option<String>,
    /// `to`.
    pub to: Option<String>,
    /// `accountId`.
    pub account_id: Option<String>,
    /// The run's session key, whose last route `"last"` uses (default: the main session).
    pub session_key: Option<String>,
}

/// Why a delivery target was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// The request is malformed (upstream's 400s).
    #[error("{0}")]
    Invalid(String),
    /// Nothing deliverable resolved (422): the reason, then [`HINT`].
    #[error("{reason} ({HINT})")]
    Unresolved {
        /// Why.
        reason: String,
    },
}

impl DeliveryError {
    /// The HTTP status for hooks.
    pub fn http_status(&self) -> u16 {
        match self {
            Self::Invalid(_) => 400,
            Self::Unresolved { .. } => 422,
        }
    }

    fn from_send(e: SendOpError) -> Self {
        match e {
            e @ (SendOpError::UnknownAccount { .. } | SendOpError::InvalidTarget(_) | SendOpError::Missing(_)) => {
                Self::Invalid(e.to_string())
            }
            e => Self::Unresolved { reason: e.to_string() },
        }
    }
}

/// The main session's key (`agent:main:main`), whose last route hooks use by default.
pub fn main_session_key() -> String {
    format!("agent:{DEFAULT_AGENT_ID}:{DEFAULT_MAIN_KEY}")
}

impl App {
    /// Resolves and checks the delivery target of an agent run; `None` when not delivering.
    pub async fn resolve_delivery(&self, req: &DeliveryRequest) -> Result<Option<Delivery>, DeliveryError> {
        if !req.deliver {
            return Ok(None);
        }
        let channel = req.channel.as_deref().map(str::trim).filter(|c| !c.is_empty());
        let to = req.to.as_deref().map(str::trim).filter(|t| !t.is_empty());
        let account = req.account_id.as_deref();
        match (channel, to) {
            (Some("last"), Some(_)) => Err(DeliveryError::Invalid("channel must name a concrete channel for hook delivery".into())),
            (Some("last"), None) => self.last_route(req).await,
            (Some(c), Some(t)) => self.checked(c, account, t).await.map(Some),
            (Some(c), None) => {
                let (_, default) = self.default_to(c, account)?;
                match default {
                    Some(t) => self.checked(c, account, &t).await.map(Some),
                    None => Err(DeliveryError::Invalid(format!(
                        "channel and to must be set together for hook delivery (channel {c} has no defaultTo)"
                    ))),
                }
            }
            (None, Some(_)) => Err(DeliveryError::Invalid("channel and to must be set together for hook delivery".into())),
            (None, None) => {
                let channels = self.cfg.channels();
                if let [only] = channels.as_slice()
                    && let (_, Some(t)) = self.default_to(only, account)?
                {
                    return self.checked(only, account, &t).await.map(Some);
                }
                self.last_route(req).await
            }
        }
    }

    /// The `defaultTo` of a channel's account (`account` or the default one).
    fn default_to(&self, channel: &str, account: Option<&str>) -> Result<(String, Option<String>), DeliveryError> {
        let Some(default) = self.cfg.default_account(channel) else {
            return Err(DeliveryError::Unresolved { reason: format!("channel {channel:?} is not configured on this gateway") });
        };
        let id = account.unwrap_or(default).to_string();
        let t = self.cfg.account(channel, &id).and_then(|a| a.default_to.clone());
        Ok((id, t))
    }

    async fn last_route(&self, req: &DeliveryRequest) -> Result<Option<Delivery>, DeliveryError> {
        let key = req.session_key.clone().unwrap_or_else(main_session_key);
        let route = self
            .sessions
            .last_route(&key)
            .await
            .map_err(|e| DeliveryError::Unresolved { reason: e.to_string() })?;
        let Some(r) = route else {
            return Err(DeliveryError::Unresolved {
                reason: format!(
                    "no delivery target: no channel and to given, no defaultTo configured, and session {key} has no last route (no message has reached it yet)"
                ),
            });
        };
        self.checked(&r.channel, Some(&r.account_id), &r.chat).await.map(Some)
    }

    async fn checked(&self, channel: &str, account: Option<&str>, to: &str) -> Result<Delivery, DeliveryError> {
        let (handle, connected, _) = self.handle_for(channel, account).map_err(DeliveryError::from_send)?;
        let chat = self.resolve_chat(&handle, connected, to).await.map_err(DeliveryError::from_send)?;
        Ok(Delivery { channel: channel.to_string(), to: chat.to_string(), account_id: Some(handle.account().to_string()) })
    }
}
