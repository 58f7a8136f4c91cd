//! Linking under the guard: the QR (or pairing-code) link flow of [`client::link`] wrapped in
//! the account's session lock, the persisted cooldown and the link-attempt limits, so that a
//! user retrying `openclaw channels login` cannot get the number rate-limited.

use std::time::Duration;

use tokio::sync::mpsc;

use super::super::client::{self, ClientConfig, ClientError, Event, LinkOutcome};
use super::persist::{AccountFiles, Cooldown, LinkLimits, LinkRefusal, PersistError};
use super::run::WallClock;
use super::session_lock::{SessionLock, SessionLockError};

/// Why a guarded link did not run or failed locally.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The guard refuses an attempt now.
    #[error(transparent)]
    Refused(#[from] LinkRefusal),
    /// Another process (usually the running gateway) uses the account's session.
    #[error(transparent)]
    Busy(#[from] SessionLockError),
    /// The guard's file could not be read or written.
    #[error(transparent)]
    Persist(#[from] PersistError),
    /// The client failed.
    #[error(transparent)]
    Client(#[from] ClientError),
}

/// The guard's settings.
#[derive(Clone)]
pub struct LinkGuard {
    /// The account's persisted state.
    pub files: AccountFiles,
    /// Limits on attempts.
    pub limits: LinkLimits,
    /// Cooldown after WhatsApp refuses the link (401/403).
    pub cooldown: Duration,
    /// Wall clock (unix ms).
    pub wall: WallClock,
}

/// Links (or, with stored credentials, logs in) under the guard. A 401/403 from the server
/// starts the persisted cooldown; every later attempt before it ends is refused without
/// connecting.
pub async fn guarded_link(
    cfg: &ClientConfig,
    guard: &LinkGuard,
    events: &mpsc::UnboundedSender<Event>,
) -> Result<LinkOutcome, LinkError> {
    let _session = SessionLock::try_acquire(cfg.store.dir())?;
    let now = (guard.wall)();
    let linked = cfg.store.load().map_err(ClientError::from)?.is_some_and(|c| c.is_linked());
    let pid = std::process::id();
    if linked {
        if let Some(c) = guard.files.cooldown(now) {
            return Err(LinkRefusal::CoolingDown { until_ms: c.until_ms, reason: c.reason }.into());
        }
    } else {
        guard.files.begin_link(now, pid, &guard.limits)??;
    }
    let result = client::link(cfg, events).await;
    if !linked {
        guard.files.end_link((guard.wall)(), pid)?;
    }
    if let Ok(LinkOutcome::Failed(reason)) = &result
        && reason.is_logged_out()
    {
        let phase = if linked { "login" } else { "pairing" };
        let now = (guard.wall)();
        guard.files.set_cooldown(now, Cooldown {
            until_ms: now + guard.cooldown.as_millis() as u64,
            reason: format!("{reason} during {phase}"),
        })?;
    }
    Ok(result?)
}
