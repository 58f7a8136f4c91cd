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

use std::sync::{Arc, RwLock};

pub use run::{
    AccountHandle, AccountSpec, ClientConnector, Command, Connector, SupervisorEnv, WallClock,
    spawn, system_wall_clock,
};

use super::creds::CredsStore;
use crate::config::model::whatsapp::{check_account_id, resolve_auth_dir};
use crate::store::StateLayout;

/// The credentials of `account`: `authDir` when the config sets one (relative to the state
/// dir), else `<state>/credentials/whatsapp/<account>/`. The account id and the `authDir` are
/// checked first by the shared rules ([`check_account_id`], [`resolve_auth_dir`]): login,
/// logout and the gateway never honour a directory they refuse.
pub fn creds_store(layout: &StateLayout, account: &str, auth_dir: Option<&str>) -> Result<CredsStore, String> {
    check_account_id(account)?;
    Ok(match auth_dir {
        Some(d) => CredsStore::in_dir(resolve_auth_dir(layout.root(), d)?),
        None => CredsStore::new(layout, account),
    })
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
    start(layout, accounts, status, shutdown, None).map(|(sups, _)| sups)
}

/// The account's credentials store, or `None` after marking this account (only) unsupported
/// when its id or `authDir` is refused: the other accounts run.
fn account_creds(
    layout: &StateLayout,
    a: &AccountConfig,
    status: &crate::channels::status::ChannelStatusHandle,
) -> Option<CredsStore> {
    match creds_store(layout, &a.id, a.auth_dir.as_deref()) {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::error!(channel = run::CHANNEL, account = %a.id, "whatsapp: account not started: {e}");
            status.update(run::CHANNEL, &a.id, |s| {
                s.detail = format!("not started: {e}");
                s.last_error = Some(e.clone());
                s.state = crate::channels::status::ConnectionState::Unsupported { reason: e };
            });
            None
        }
    }
}

/// Capacity of each account's live-command queue (typing, read receipts, target checks).
pub const COMMAND_QUEUE: usize = 64;

/// How long the driver waits for the server's ack of a sent message before retrying it.
pub const ACK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

/// Opens `account`'s message path: its protocol-state store
/// (`<state>/channels/whatsapp/<account>/store.db`; messages a crash left `sending` are held by
/// the first connection, see [`crate::messaging::outbox::recovery`]) on its own
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
    // Messages a restart left `sending` stay `sending`: the connection's consumer holds them
    // until its offline backlog shows whether they arrived (`messaging::outbox::recovery`).
    let db = store.into_async().map_err(|e| format!("account {account}: {e}"))?;
    let outbox = db.outbox(crate::messaging::OutboxPolicy::default());
    let inbound = db.inbound_log();
    let (tx, rx) = tokio::sync::mpsc::channel(COMMAND_QUEUE);
    let handle = crate::channels::registry::AccountHandle::new("whatsapp", account, outbox.clone(), tx);
    let m = super::messages::Messaging {
        account_id: account.to_owned(),
        db,
        outbox,
        sink,
        inbound,
        commands: tokio::sync::Mutex::new(rx),
        stats: Arc::new(super::messages::MessageStats::default()),
        ack_timeout: ACK_TIMEOUT,
        status: None,
        ratchets: tokio::sync::Mutex::new(()),
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
    let (sups, handles) = start(layout, accounts, status, shutdown, Some(&sink))?;
    Ok((sups, crate::channels::registry::ChannelRegistry::new(handles)))
}

/// One supervisor per account; with `sink`, each enabled account also gets its message path and
/// its handle is returned.
fn start(
    layout: &StateLayout,
    accounts: &[AccountConfig],
    status: &crate::channels::status::ChannelStatusHandle,
    shutdown: &tokio::sync::watch::Receiver<bool>,
    sink: Option<&crate::messaging::InboundSink>,
) -> Result<(Supervisors, Vec<crate::channels::registry::AccountHandle>), String> {
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
        let Some(creds) = account_creds(layout, a, status) else { continue };
        let mut client = super::client::ClientConfig::from_environment(creds.clone())?;
        if let Some(sink) = sink.filter(|_| a.enabled) {
            match open_messaging(layout, &a.id, sink.clone()) {
                Ok((mut m, h)) => {
                    if let Some(mm) = Arc::get_mut(&mut m) {
                        mm.status = Some(status.clone());
                    }
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
    Ok((sups, handles))
}

/// The supervisors of a running gateway, by account.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue14_item22_the_gateway_refuses_a_bad_auth_dir_or_account_id() {
        let d = tempfile::tempdir().expect("tempdir");
        let layout = StateLayout::new(d.path().join("state"));
        assert!(creds_store(&layout, "work", None).is_ok());
        assert_eq!(creds_store(&layout, "work", Some("wa/work")).expect("ok").dir(), layout.root().join("wa/work"));
        for bad in ["/", ".", "..", "credentials", d.path().to_str().expect("utf-8")] {
            assert!(creds_store(&layout, "work", Some(bad)).is_err(), "{bad}");
        }
        for id in ["../x", "a/b", ""] {
            assert!(creds_store(&layout, id, None).is_err(), "{id:?}");
        }
        // One bad account does not stop the others: it is reported, the rest start.
        let status = crate::channels::status::ChannelStatusHandle::new();
        let (_tx, rx) = tokio::sync::watch::channel(false);
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt");
        let accounts = [AccountConfig { id: "bad".into(), enabled: true, auth_dir: Some("/".into()) }];
        let sups = rt.block_on(async { start_accounts(&layout, &accounts, &status, &rx) }).expect("started");
        assert!(sups.all().is_empty());
        let s = status.get(run::CHANNEL, "bad").expect("reported");
        assert_eq!(s.state.name(), "unsupported");
        assert!(s.detail.contains("authDir"), "{}", s.detail);
    }
}
