//! Crash-safe file replacement.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Why an atomic write failed. The target file is untouched in every case.
#[derive(Debug, thiserror::Error)]
pub enum AtomicWriteError {
    /// The target path has no parent directory or no file name.
    #[error("cannot write {path}: not a file path")]
    NotAFilePath {
        /// The path that was asked for.
        path: PathBuf,
    },
    /// An I/O step failed.
    #[error("cannot write {path}: {step}: {source}")]
    Io {
        /// The target path.
        path: PathBuf,
        /// Which step failed (create temp file, write, fsync, rename, ...).
        step: &'static str,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes `bytes` to `path` atomically with the given unix `mode` (e.g. `0o600` for credentials).
///
/// The data goes to a temp file in the same directory (created with `mode`, exclusive), which is
/// fsynced, renamed over `path`, and then the directory is fsynced. A crash at any point leaves
/// either the old file or the new one, never a mix. Missing parent directories are created with
/// mode 0700.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), AtomicWriteError> {
    let (dir, name) = match (path.parent(), path.file_name()) {
        (Some(d), Some(n)) => (if d.as_os_str().is_empty() { Path::new(".") } else { d }, n),
        _ => return Err(AtomicWriteError::NotAFilePath { path: path.to_path_buf() }),
    };
    let io = |step: &'static str| {
        let path = path.to_path_buf();
        move |source| AtomicWriteError::Io { path, step, source }
    };
    if !dir.exists() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io("create parent directory"))?;
    }
    let tmp = dir.join(format!(
        ".{}.tmp.{}.{}",
        name.to_string_lossy(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)
            .map_err(io("create temp file"))?;
        // The umask may have trimmed the mode; set it exactly.
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(fs::Permissions::from_mode(mode)).map_err(io("chmod temp file"))?;
        f.write_all(bytes).map_err(io("write temp file"))?;
        f.sync_all().map_err(io("fsync temp file"))?;
        drop(f);
        fs::rename(&tmp, path).map_err(io("rename temp file"))?;
        File::open(dir).and_then(|d| d.sync_all()).map_err(io("fsync directory"))?;
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn writes_with_exact_mode_and_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/creds.json");
        write_atomic(&p, b"one", 0o600).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"one");
        assert_eq!(fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        write_atomic(&p, b"two", 0o644).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o644);
        // No temp files left behind.
        let names: Vec<_> = fs::read_dir(p.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[test]
    fn failure_leaves_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x");
        write_atomic(&p, b"old", 0o600).unwrap();
        // Renaming onto a directory fails: the old content must survive.
        let d = dir.path().join("d");
        fs::create_dir(&d).unwrap();
        fs::write(d.join("f"), b"").unwrap();
        assert!(write_atomic(&d, b"new", 0o600).is_err());
        assert_eq!(fs::read(&p).unwrap(), b"old");
    }
}
