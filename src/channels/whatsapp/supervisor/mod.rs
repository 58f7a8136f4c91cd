//! The WhatsApp connection supervisor: one task per account that never hammers WhatsApp,
//! recovers within seconds and isolates failures.
//!
//! - [`policy`]: the reaction to each disconnect reason and the (injectable) schedules;
//! - [`persist`]: the auth cooldown and the link guard, persisted in the state dir so they
//!   survive restarts and are shared with `openclaw channels login`;
//! - [`link`]: the link flow under the session lock, cooldown and attempt limits (CLI login);
//! - [`session_lock`]: one process per account's credentials (no 440 fights on one machine);
//! - [`run`]: the state machine, status publishing and crash isolation.
//!
//! States are published as [`crate::channels::status::ConnectionState`] through the
//! [`crate::channels::status::ChannelStatusHandle`] the gateway reads for `/health`,
//! `channels.status` and `openclaw channels status`.

pub mod link;
pub mod persist;
pub mod policy;
pub mod run;
pub mod session_lock;

use std::path::Path;
use std::sync::{Arc, RwLock};

pub use run::{
    AccountHandle, AccountSpec, ClientConnector, Command, Connector, SupervisorEnv, WallClock,
    spawn, system_wall_clock,
};

use super::creds::CredsStore;
use crate::store::StateLayout;

/// The credentials of `account`: `authDir` when the config sets one (relative to the state
/// dir), else `<state>/credentials/whatsapp/<account>/`.
pub fn creds_store(layout: &StateLayout, account: &str, auth_dir: Option<&str>) -> CredsStore {
    match auth_dir {
        Some(d) if Path::new(d).is_absolute() => CredsStore::in_dir(d),
        Some(d) => CredsStore::in_dir(layout.root().join(d)),
        None => CredsStore::new(layout, account),
    }
}

/// One configured WhatsApp account, as the gateway runs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountConfig {
    /// The account id.
    pub id: String,
    /// `enabled` (default true).
    pub enabled: bool,
    /// `authDir` override.
    pub auth_dir: Option<String>,
}

/// Starts one supervisor per account with the production client, policy and clocks. With the
/// `wa-mock` feature the client honours `OPENCLAW_WA_TEST_SERVER`/`_ROOT_KEY` (VM tests).
pub fn start_accounts(
    layout: &StateLayout,
    accounts: &[AccountConfig],
    status: &crate::channels::status::ChannelStatusHandle,
    shutdown: &tokio::sync::watch::Receiver<bool>,
) -> Result<Supervisors, String> {
    let sups = Supervisors::new();
    let env = SupervisorEnv {
        policy: policy::Policy::default(),
        link_limits: persist::LinkLimits::default(),
        wall: system_wall_clock(),
        rng: super::crypto::os_entropy(),
        status: status.clone(),
    };
    for a in accounts {
        let creds = creds_store(layout, &a.id, a.auth_dir.as_deref());
        let client = super::client::ClientConfig::from_environment(creds.clone())?;
        let spec = AccountSpec {
            account: a.id.clone(),
            enabled: a.enabled,
            creds,
            files: persist::AccountFiles::new(layout, &a.id),
            connector: Arc::new(ClientConnector(client)),
        };
        sups.push(spawn(spec, env.clone(), shutdown.clone()));
    }
    Ok(sups)
}

/// The supervisors of a running gateway, by account.
/// Capacity of each account's live-command queue (typing, read receipts, target checks).
pub const COMMAND_QUEUE: usize = 64;

/// How long the driver waits for the server's ack of a sent message before retrying it.
pub const ACK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

/// Opens `account`'s message path: its protocol-state store
/// (`<state>/channels/whatsapp/<account>/store.db`, outbox recovered after a crash) on its own
/// thread, the command queue, and the [`crate::channels::registry::AccountHandle`] the rest of
/// the program sends through. Inbound messages go to `sink`.
///
/// Opening the database is blocking I/O: call it at startup, not on a busy async worker.
pub fn open_messaging(
    layout: &StateLayout,
    account: &str,
    sink: crate::messaging::InboundSink,
) -> Result<(Arc<super::messages::Messaging>, crate::channels::registry::AccountHandle), String> {
    let store = super::account::store::AccountStore::open(layout, account)
        .map_err(|e| format!("account {account}: {e}"))?;
    open_messaging_with(store, account, sink)
}

/// [`open_messaging`] over an already opened store (tests use a store at a chosen path).
pub fn open_messaging_with(
    store: super::account::store::AccountStore,
    account: &str,
    sink: crate::messaging::InboundSink,
) -> Result<(Arc<super::messages::Messaging>, crate::channels::registry::AccountHandle), String> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let recovered = store.recover_outbox(now).map_err(|e| format!("account {account}: {e}"))?;
    if recovered > 0 {
        tracing::info!(account, recovered, "outbound messages interrupted by a restart will be re-sent with their ids");
    }
    let db = store.into_async().map_err(|e| format!("account {account}: {e}"))?;
    let outbox = db.outbox(crate::messaging::OutboxPolicy::default());
    let (tx, rx) = tokio::sync::mpsc::channel(COMMAND_QUEUE);
    let handle = crate::channels::registry::AccountHandle::new("whatsapp", account, outbox.clone(), tx);
    let m = super::messages::Messaging {
        account_id: account.to_owned(),
        db,
        outbox,
        sink,
        commands: tokio::sync::Mutex::new(rx),
        stats: Arc::new(super::messages::MessageStats::default()),
        ack_timeout: ACK_TIMEOUT,
    };
    Ok((Arc::new(m), handle))
}

/// Starts the supervisors like [`start_accounts`], each account with its message path
/// ([`open_messaging`]) feeding `sink`, and returns the [`crate::channels::registry::ChannelRegistry`]
/// of their handles (the gateway's way to send). An account whose store cannot be opened is
/// started without a message path and left out of the registry (logged).
pub fn start_accounts_with_messages(
    layout: &StateLayout,
    accounts: &[AccountConfig],
    status: &crate::channels::status::ChannelStatusHandle,
    shutdown: &tokio::sync::watch::Receiver<bool>,
    sink: crate::messaging::InboundSink,
) -> Result<(Supervisors, crate::channels::registry::ChannelRegistry), String> {
    let sups = Supervisors::new();
    let env = SupervisorEnv {
        policy: policy::Policy::default(),
        link_limits: persist::LinkLimits::default(),
        wall: system_wall_clock(),
        rng: super::crypto::os_entropy(),
        status: status.clone(),
    };
    let mut handles = Vec::new();
    for a in accounts {
        let creds = creds_store(layout, &a.id, a.auth_dir.as_deref());
        let mut client = super::client::ClientConfig::from_environment(creds.clone())?;
        if a.enabled {
            match open_messaging(layout, &a.id, sink.clone()) {
                Ok((m, h)) => {
                    client.messaging = Some(m);
                    handles.push(h);
                }
                Err(e) => tracing::error!("whatsapp messages disabled for this account: {e}"),
            }
        }
        let spec = AccountSpec {
            account: a.id.clone(),
            enabled: a.enabled,
            creds,
            files: persist::AccountFiles::new(layout, &a.id),
            connector: Arc::new(ClientConnector(client)),
        };
        sups.push(spawn(spec, env.clone(), shutdown.clone()));
    }
    Ok((sups, crate::channels::registry::ChannelRegistry::new(handles)))
}

#[derive(Clone, Default)]
pub struct Supervisors {
    handles: Arc<RwLock<Vec<AccountHandle>>>,
}

impl Supervisors {
    /// No supervisors yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a started supervisor.
    pub fn push(&self, h: AccountHandle) {
        self.handles.write().unwrap_or_else(|p| p.into_inner()).push(h);
    }

    /// The supervisor of `account`.
    pub fn get(&self, account: &str) -> Option<AccountHandle> {
        self.handles.read().unwrap_or_else(|p| p.into_inner()).iter().find(|h| h.account() == account).cloned()
    }

    /// Every supervisor.
    pub fn all(&self) -> Vec<AccountHandle> {
        self.handles.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Waits for all of them to stop (after shutdown).
    pub async fn join_all(&self) {
        for h in self.all() {
            h.join().await;
        }
    }
}
