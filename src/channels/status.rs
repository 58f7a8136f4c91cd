//! Typed channel status, published by channels and read by the gateway (`/health`,
//! `channels.status`). Channels write through a [`ChannelStatusHandle`]; they never see the gateway.

use std::sync::{Arc, RwLock};

use serde::Serialize;

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
    /// The last error, without secrets.
    pub last_error: Option<String>,
    /// Unix ms until which the channel refrains from reconnecting, if cooling down.
    pub cooldown_until: Option<u64>,
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
        let mut s = ChannelStatus {
            id: "whatsapp".into(),
            account: "default".into(),
            configured: true,
            linked: false,
            connected: false,
            last_error: None,
            cooldown_until: None,
        };
        h.upsert(s.clone());
        s.connected = true;
        h.upsert(s.clone());
        assert_eq!(h.snapshot(), vec![s]);
    }
}
