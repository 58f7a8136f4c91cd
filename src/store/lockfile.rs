//! Lock files in the state dir: opening one (creating its directory with mode 0700 and the file
//! with mode 0600) for an advisory `flock`, and telling whether a recorded holder still lives.

use std::fs::{DirBuilder, File, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

/// Opens `path` read-write for locking, creating it (0600) and its directory (0700) if needed.
/// The file is not truncated: a holder may have written its pid there.
pub fn open_lock_file(path: &Path) -> std::io::Result<File> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    }
    OpenOptions::new().create(true).truncate(false).read(true).write(true).mode(0o600).open(path)
}

/// Whether a process with this pid exists (Linux: `/proc/<pid>`).
pub fn pid_alive(pid: u32) -> bool {
    Path::new("/proc").join(pid.to_string()).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_private_dir_and_file_and_sees_this_process() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().expect("tempdir");
        let path = d.path().join("a/b.lock");
        open_lock_file(&path).expect("open");
        let mode = |p: &Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&d.path().join("a")), 0o700);
        assert!(pid_alive(std::process::id()));
    }
}
