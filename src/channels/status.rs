//! Typed channel status, published by channels and read by the gateway (`/health`,
//! `channels.status`). Channels write through a [`ChannelStatusHandle`]; they never see the gateway.

use std::sync::{Arc, RwLock};

use serde::Serialize;

/// What a channel account's connection is doing, as its supervisor sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum ConnectionState {
    /// `enabled: false` in the config.
    Disabled,
    /// No credentials: link with `openclaw channels login`.
    NotLinked,
    /// Another process (a login, by `pid`) holds the account's session.
    Pairing {
        /// The process linking the account.
        pid: Option<u32>,
    },
    /// A connection attempt is under way.
    Connecting {
        /// Attempts since the last stable connection (1 = first).
        attempt: u32,
    },
    /// Logged in.
    Connected {
        /// Unix ms since when.
        since_ms: u64,
    },
    /// Waiting before reconnecting.
    BackingOff {
        /// Unix ms of the next attempt.
        until_ms: u64,
        /// Why the last connection ended.
        reason: String,
        /// Failed attempts in a row.
        attempt: u32,
    },
    /// The network does not reach the server; probing every few seconds.
    WaitingForNetwork {
        /// Unix ms since when.
        since_ms: u64,
        /// Unix ms of the next probe.
        next_probe_ms: u64,
        /// Probes so far.
        probes: u32,
    },
    /// The server refused the credentials or the link: no attempt until `until_ms`.
    CoolingDown {
        /// Unix ms when attempts may resume.
        until_ms: u64,
        /// Why.
        reason: String,
    },
    /// The phone (or this gateway's operator) logged this device out; link again.
    LoggedOut {
        /// Where the old credentials were kept.
        backup: Option<String>,
        /// Logged out on request here (Control UI, `openclaw channels logout`), not by the phone.
        by_operator: bool,
    },
    /// Another instance uses this session (440); nothing reconnects until restarted.
    Replaced,
    /// The server refuses this client (e.g. 411); nothing reconnects until restarted.
    Unsupported {
        /// Why.
        reason: String,
    },
    /// The account's task crashed; it restarts at `until_ms`.
    Crashed {
        /// Unix ms of the restart.
        until_ms: u64,
        /// The panic or error message.
        message: String,
        /// Crashes in a row.
        restarts: u32,
    },
    /// The gateway is shutting down.
    Stopped,
}

impl ConnectionState {
    /// The state's name (`backingOff`, ...), as in JSON.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Disabled => "disabled",
            Self::NotLinked => "notLinked",
            Self::Pairing { .. } => "pairing",
            Self::Connecting { .. } => "connecting",
            Self::Connected { .. } => "connected",
            Self::BackingOff { .. } => "backingOff",
            Self::WaitingForNetwork { .. } => "waitingForNetwork",
            Self::CoolingDown { .. } => "coolingDown",
            Self::LoggedOut { .. } => "loggedOut",
            Self::Replaced => "replaced",
            Self::Unsupported { .. } => "unsupported",
            Self::Crashed { .. } => "crashed",
            Self::Stopped => "stopped",
        }
    }

    /// One line for people: what is happening and what comes next.
    pub fn describe(&self, fmt_time: impl Fn(u64) -> String) -> String {
        match self {
            Self::Disabled => "disabled in the config".into(),
            Self::NotLinked => "not linked; link it with `openclaw channels login`".into(),
            Self::Pairing { pid: Some(p) } => format!("a login (pid {p}) is linking this account"),
            Self::Pairing { pid: None } => "a login is linking this account".into(),
            Self::Connecting { attempt } => format!("connecting (attempt {attempt})"),
            Self::Connected { since_ms } => format!("connected since {}", fmt_time(*since_ms)),
            Self::BackingOff { until_ms, reason, attempt } => {
                format!("disconnected ({reason}); reconnecting at {} (attempt {})", fmt_time(*until_ms), attempt + 1)
            }
            Self::WaitingForNetwork { since_ms, next_probe_ms, probes } => format!(
                "the network does not reach WhatsApp since {} ({probes} probes); next probe at {}",
                fmt_time(*since_ms),
                fmt_time(*next_probe_ms)
            ),
            Self::CoolingDown { until_ms, reason } => format!(
                "WhatsApp refused the session ({reason}); no attempt until {} so the number is not blocked longer",
                fmt_time(*until_ms)
            ),
            Self::LoggedOut { backup, by_operator } => {
                let who = if *by_operator { "logged out on request (Control UI or `openclaw channels logout`)" } else { "logged out by the phone" };
                let kept = backup.as_ref().map(|b| format!("; old credentials kept in {b}")).unwrap_or_default();
                format!("{who}{kept}; link again with `openclaw channels login` or the Control UI's Link")
            }
            Self::Replaced => {
                "another instance uses this session (440); stopped without reconnecting: stop the other one, then restart the gateway".into()
            }
            Self::Unsupported { reason } => format!("the server refuses this client ({reason}); stopped"),
            Self::Crashed { until_ms, message, restarts } => {
                format!("crashed ({message}); restart {restarts} at {}", fmt_time(*until_ms))
            }
            Self::Stopped => "stopped".into(),
        }
    }
}

/// The last disconnect of an account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LastDisconnect {
    /// The status code (Baileys' numbering).
    pub code: u16,
    /// The reason's name and details.
    pub reason: String,
    /// Unix ms.
    pub at_ms: u64,
}

/// The status of one channel account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChannelStatus {
    /// Channel id, e.g. `whatsapp`.
    pub id: String,
    /// Account id, e.g. `default`.
    pub account: String,
    /// The account is defined in the config.
    pub configured: bool,
    /// Credentials exist (e.g. the WhatsApp device is linked).
    pub linked: bool,
    /// The connection is up right now.
    pub connected: bool,
    /// The supervisor's state (`state` and its fields).
    #[serde(flatten)]
    pub state: ConnectionState,
    /// The state for people.
    pub detail: String,
    /// The last error, without secrets.
    pub last_error: Option<String>,
    /// The last disconnect.
    pub last_disconnect: Option<LastDisconnect>,
    /// Unix ms until which the channel refrains from reconnecting, if cooling down.
    pub cooldown_until: Option<u64>,
    /// Unix ms of the next connection attempt, when one is scheduled.
    pub next_attempt_at: Option<u64>,
    /// Unix ms when a new link (QR login) is allowed, when it is not allowed now.
    pub link_allowed_at: Option<u64>,
    /// Connection attempts since the gateway started.
    pub attempts: u64,
    /// Successful logins since the gateway started.
    pub connects: u64,
    /// Crash restarts of the account's task since the gateway started.
    pub crashes: u32,
    /// Messages received (decrypted and handed to the inbound queue) since the gateway started.
    pub messages_received: u64,
    /// Messages sent (acknowledged by the server) since the gateway started.
    pub messages_sent: u64,
    /// The linked number in E.164 (`+15550001234`), once linked.
    pub phone: Option<String>,
    /// Who the account is linked as (upstream's `self{e164, jid, lid}`), once linked.
    #[serde(rename = "self")]
    pub self_id: Option<SelfId>,
}

/// The identity an account is linked as.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SelfId {
    /// The phone number in E.164, e.g. `+15550001234`.
    pub e164: String,
    /// The phone-number JID with device, e.g. `15550001234:7@s.whatsapp.net`.
    pub jid: String,
    /// The LID JID, if the server sent one.
    pub lid: Option<String>,
    /// The push name, if known.
    pub name: Option<String>,
}

impl SelfId {
    /// From a WhatsApp `me` record (creds.json); `None` when its id is not a phone JID.
    pub fn from_whatsapp_me(me: &crate::channels::whatsapp::creds::Me) -> Option<Self> {
        let (phone, _) = me.user_and_device()?;
        Some(Self { e164: format!("+{phone}"), jid: me.id.clone(), lid: me.lid.clone(), name: me.name.clone() })
    }
}

impl ChannelStatus {
    /// Records who the account is linked as (`None`: not linked).
    pub fn set_self(&mut self, id: Option<SelfId>) {
        self.phone = id.as_ref().map(|i| i.e164.clone());
        self.self_id = id;
    }

    /// A fresh entry in state `state`.
    pub fn new(id: &str, account: &str, state: ConnectionState) -> Self {
        Self {
            id: id.into(),
            account: account.into(),
            configured: true,
            linked: false,
            connected: false,
            detail: String::new(),
            state,
            last_error: None,
            last_disconnect: None,
            cooldown_until: None,
            next_attempt_at: None,
            link_allowed_at: None,
            attempts: 0,
            connects: 0,
            crashes: 0,
            phone: None,
            self_id: None,
            messages_received: 0,
            messages_sent: 0,
        }
    }
}

/// A shared, cheaply clonable list of channel statuses. Channels `upsert` their own entry.
#[derive(Debug, Clone, Default)]
pub struct ChannelStatusHandle {
    inner: Arc<RwLock<Vec<ChannelStatus>>>,
}

impl ChannelStatusHandle {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Inserts or replaces the entry with the same `(id, account)`.
    pub fn upsert(&self, status: ChannelStatus) {
        let mut list = self.inner.write().unwrap_or_else(|p| p.into_inner());
        match list.iter_mut().find(|s| s.id == status.id && s.account == status.account) {
            Some(slot) => *slot = status,
            None => list.push(status),
        }
    }

    /// Changes the entry `(id, account)` in place (inserting `ChannelStatus::new` first if
    /// absent) and returns the changed copy.
    pub fn update(&self, id: &str, account: &str, f: impl FnOnce(&mut ChannelStatus)) -> ChannelStatus {
        let mut list = self.inner.write().unwrap_or_else(|p| p.into_inner());
        let i = match list.iter().position(|s| s.id == id && s.account == account) {
            Some(i) => i,
            None => {
                list.push(ChannelStatus::new(id, account, ConnectionState::NotLinked));
                list.len() - 1
            }
        };
        f(&mut list[i]);
        list[i].clone()
    }

    /// The entry `(id, account)`, if any.
    pub fn get(&self, id: &str, account: &str) -> Option<ChannelStatus> {
        self.inner.read().unwrap_or_else(|p| p.into_inner()).iter().find(|s| s.id == id && s.account == account).cloned()
    }

    /// A copy of every entry, in insertion order.
    pub fn snapshot(&self) -> Vec<ChannelStatus> {
        self.inner.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upsert_replaces_same_account() {
        let h = ChannelStatusHandle::new();
        let mut s = ChannelStatus::new("whatsapp", "default", ConnectionState::NotLinked);
        h.upsert(s.clone());
        s.connected = true;
        h.upsert(s.clone());
        assert_eq!(h.snapshot(), vec![s.clone()]);
        let changed = h.update("whatsapp", "default", |x| x.state = ConnectionState::Replaced);
        assert_eq!(changed.state, ConnectionState::Replaced);
        assert_eq!(h.get("whatsapp", "default"), Some(changed));
    }

    #[test]
    fn state_serializes_flat_with_its_fields() {
        let mut s = ChannelStatus::new("whatsapp", "default", ConnectionState::NotLinked);
        s.state = ConnectionState::BackingOff { until_ms: 5, reason: "connectionClosed [428]".into(), attempt: 2 };
        let v = serde_json::to_value(&s).expect("json");
        assert_eq!(v["state"], "backingOff");
        assert_eq!(v["untilMs"], 5);
        assert_eq!(v["attempt"], 2);
        assert_eq!(v["connected"], false);
    }
}
