//! One session per WhatsApp account on this machine: an `flock` on `session.lock` in the
//! account's credentials directory, held by whoever runs a connection with those credentials
//! (the gateway's supervisor or `openclaw channels login/logout`). Two processes using the same
//! credentials would replace each other (440) over and over.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::store::lockfile::open_lock_file;

/// Why the lock was not taken.
#[derive(Debug, thiserror::Error)]
pub enum SessionLockError {
    /// Another process runs a session with these credentials.
    #[error("another process ({}) is using this WhatsApp account's session", holder_text(*.pid))]
    Held {
        /// Its pid, when it wrote one.
        pid: Option<u32>,
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

fn holder_text(pid: Option<u32>) -> String {
    match pid {
        Some(p) => format!("pid {p}"),
        None => "pid unknown".into(),
    }
}

/// The held lock; released when dropped or when the process dies.
#[derive(Debug)]
pub struct SessionLock {
    _file: File,
}

impl SessionLock {
    /// The lock file of the credentials directory `creds_dir`.
    pub fn path(creds_dir: &Path) -> PathBuf {
        creds_dir.join("session.lock")
    }

    /// Takes the lock without waiting (creating the directory with mode 0700).
    pub fn try_acquire(creds_dir: &Path) -> Result<Self, SessionLockError> {
        let path = Self::path(creds_dir);
        let io = |source| SessionLockError::Io { path: path.clone(), source };
        let mut file = open_lock_file(&path).map_err(io)?;
        match file.try_lock() {
            Ok(()) => {
                file.set_len(0).map_err(io)?;
                write!(file, "{}", std::process::id()).map_err(io)?;
                Ok(Self { _file: file })
            }
            Err(TryLockError::WouldBlock) => Err(SessionLockError::Held { pid: Self::holder(creds_dir) }),
            Err(TryLockError::Error(e)) => Err(io(e)),
        }
    }

    /// The pid written by the current holder, if readable.
    pub fn holder(creds_dir: &Path) -> Option<u32> {
        std::fs::read_to_string(Self::path(creds_dir)).ok().and_then(|s| s.trim().parse().ok())
    }

    /// Whether some process holds the lock right now.
    pub fn is_held(creds_dir: &Path) -> bool {
        let Ok(file) = OpenOptions::new().read(true).open(Self::path(creds_dir)) else { return false };
        matches!(file.try_lock_shared(), Err(TryLockError::WouldBlock))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_is_refused_with_the_pid() {
        let d = tempfile::tempdir().expect("tempdir");
        let dir = d.path().join("creds");
        let held = SessionLock::try_acquire(&dir).expect("first");
        assert!(SessionLock::is_held(&dir));
        match SessionLock::try_acquire(&dir) {
            Err(SessionLockError::Held { pid }) => assert_eq!(pid, Some(std::process::id())),
            other => panic!("expected Held, got {other:?}"),
        }
        drop(held);
        assert!(!SessionLock::is_held(&dir));
        SessionLock::try_acquire(&dir).expect("free again");
    }
}
