//! One gateway per state directory: an advisory `flock` on `<state>/gateway.lock`.

use std::fs::{File, TryLockError};
use std::path::PathBuf;

use crate::store::StateLayout;
use crate::store::lockfile::open_lock_file;

/// Why the state directory lock was not taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another gateway holds it.
    #[error("another gateway is already running with state dir {} ({holder})", .state_dir.display())]
    Held {
        /// The state dir.
        state_dir: PathBuf,
        /// `pid N` when known, else `pid unknown`.
        holder: String,
    },
    /// The lock file could not be opened or locked.
    #[error("cannot lock {}: {source}", .path.display())]
    Io {
        /// The lock file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

impl LockError {
    /// Exit code for this refusal.
    pub fn exit_code(&self) -> u8 {
        match self {
            LockError::Held { .. } => 20,
            LockError::Io { .. } => 21,
        }
    }
}

/// The held lock; released when dropped (or when the process dies).
#[derive(Debug)]
pub struct StateLock {
    _file: File,
}

/// Takes the lock without waiting. On contention, names the holder's pid from the runtime file.
pub fn acquire(layout: &StateLayout) -> Result<StateLock, LockError> {
    let path = layout.gateway_lock_file();
    let io = |source| LockError::Io { path: path.clone(), source };
    let file = open_lock_file(&path).map_err(io)?;
    match file.try_lock() {
        Ok(()) => Ok(StateLock { _file: file }),
        Err(TryLockError::WouldBlock) => Err(LockError::Held {
            state_dir: layout.root().to_path_buf(),
            holder: holder_pid(layout).map(|p| format!("pid {p}")).unwrap_or_else(|| "pid unknown".into()),
        }),
        Err(TryLockError::Error(e)) => Err(io(e)),
    }
}

/// The pid recorded by the running gateway in `<state>/gateway.json`, if readable.
pub fn holder_pid(layout: &StateLayout) -> Option<u32> {
    let text = std::fs::read_to_string(layout.gateway_runtime_file()).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v.get("pid")?.as_u64().and_then(|p| u32::try_from(p).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_names_holder() {
        let dir = tempfile::tempdir().unwrap();
        let layout = StateLayout::new(dir.path());
        let _held = acquire(&layout).unwrap();
        std::fs::write(layout.gateway_runtime_file(), r#"{"pid":4242}"#).unwrap();
        let e = acquire(&layout).unwrap_err();
        assert!(e.to_string().contains("pid 4242"), "{e}");
        drop(_held);
        assert!(acquire(&layout).is_ok());
    }
}
