//! What must survive a restart of the gateway or the CLI, per account: the auth cooldown and the
//! link-attempt guard. One JSON file, `<state>/channels/whatsapp/<account>/supervisor.json`
//! (0600, written atomically), changed under an `flock` on `supervisor.lock` beside it, because
//! the gateway and `openclaw channels login` processes share it.
//!
//! **Fail closed.** The file only ever holds restrictions, so a file that cannot be read or
//! parsed is never read as "no restrictions": an unreadable file means a cooldown of
//! [`ASSUMED_COOLDOWN`] from now on every read (nothing connects while it stays unreadable); a
//! corrupt one is moved aside to `supervisor.json.corrupt-<unix ms>` and replaced by a record
//! holding that assumed cooldown. Both are logged at ERROR and show up as the cooldown's reason
//! in `channels status` and `/health`.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::store::lockfile::{open_lock_file, pid_alive};
use crate::store::{StateLayout, write_atomic};

/// Why the persisted state could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    /// A file operation failed.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The atomic write failed.
    #[error(transparent)]
    Write(#[from] crate::store::AtomicWriteError),
}

/// The cooldown assumed when `supervisor.json` cannot be read or parsed: the longest cooldown
/// the policy ever sets (`Policy::default().auth_cooldown`, 20 minutes), since the lost record
/// may have held one.
pub const ASSUMED_COOLDOWN: Duration = Duration::from_secs(20 * 60);

/// An active cooldown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cooldown {
    /// Unix ms when attempts may resume.
    pub until_ms: u64,
    /// Why (e.g. `loggedOut [401] during login`).
    pub reason: String,
}

/// A login that is showing QR codes (or a pairing code) right now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingLogin {
    /// The process running it.
    pub pid: u32,
    /// Unix ms when it started.
    pub started_ms: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Record {
    cooldown: Option<Cooldown>,
    /// Unix ms of recent link attempts (inside the window).
    link_attempts: Vec<u64>,
    pending_logins: Vec<PendingLogin>,
}

/// The limits of the link guard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkLimits {
    /// At most this many logins showing QR codes at once.
    pub max_pending: usize,
    /// A pending login older than this is considered gone (its QR codes have expired).
    pub pending_ttl: Duration,
    /// At most this many link attempts ...
    pub max_attempts: usize,
    /// ... within this rolling window.
    pub window: Duration,
}

impl Default for LinkLimits {
    fn default() -> Self {
        Self {
            max_pending: 3,
            pending_ttl: Duration::from_secs(180),
            max_attempts: 5,
            window: Duration::from_secs(3600),
        }
    }
}

/// Why a link attempt is not allowed now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkRefusal {
    /// WhatsApp refused an earlier attempt; retrying now would extend the block.
    #[error("WhatsApp refused an earlier attempt ({reason}); the next attempt is allowed at {}", fmt_ms(*.until_ms))]
    CoolingDown {
        /// Unix ms when allowed.
        until_ms: u64,
        /// Why.
        reason: String,
    },
    /// Too many logins are showing QR codes.
    #[error("{count} logins for this account are already showing QR codes; finish or cancel one (the oldest expires at {})", fmt_ms(*.until_ms))]
    TooManyPending {
        /// How many.
        count: usize,
        /// Unix ms when the oldest expires.
        until_ms: u64,
    },
    /// Too many attempts in the window.
    #[error("{count} link attempts in the last {window_min} minutes; to keep the number from being rate-limited the next attempt is allowed at {}", fmt_ms(*.until_ms))]
    TooManyAttempts {
        /// How many.
        count: usize,
        /// The window in minutes.
        window_min: u64,
        /// Unix ms when allowed.
        until_ms: u64,
    },
}

impl LinkRefusal {
    /// Unix ms when the next attempt is allowed.
    pub fn next_allowed_ms(&self) -> u64 {
        match self {
            Self::CoolingDown { until_ms, .. }
            | Self::TooManyPending { until_ms, .. }
            | Self::TooManyAttempts { until_ms, .. } => *until_ms,
        }
    }
}

/// A unix-ms time as `YYYY-MM-DD HH:MM:SS UTC`.
pub fn fmt_ms(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// One account's persisted supervisor state.
#[derive(Debug, Clone)]
pub struct AccountFiles {
    dir: PathBuf,
}

struct Locked {
    _file: File,
}

impl AccountFiles {
    /// The files of `account` under the state dir `layout`.
    pub fn new(layout: &StateLayout, account: &str) -> Self {
        Self { dir: layout.channel_state_dir("whatsapp", account) }
    }

    /// The directory holding them.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self) -> PathBuf {
        self.dir.join("supervisor.json")
    }

    fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PersistError + '_ {
        move |source| PersistError::Io { path: path.to_path_buf(), source }
    }

    fn lock(&self) -> Result<Locked, PersistError> {
        let path = self.dir.join("supervisor.lock");
        let file = open_lock_file(&path).map_err(Self::io(&path))?;
        file.lock().map_err(Self::io(&path))?;
        Ok(Locked { _file: file })
    }

    /// Reads the record, failing closed: a missing file is an empty record; an unreadable one
    /// is a record with a cooldown of [`ASSUMED_COOLDOWN`] from `now_ms`; a corrupt one is
    /// moved aside and replaced (when `repair`, i.e. under the lock) by such a record.
    fn read(&self, now_ms: u64, repair: bool) -> Record {
        let path = self.path();
        let assumed = |why: String| Record {
            cooldown: Some(Cooldown { until_ms: now_ms + ASSUMED_COOLDOWN.as_millis() as u64, reason: why }),
            ..Record::default()
        };
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Record::default(),
            Err(e) => {
                let why = format!("{} is unreadable ({e}); assuming a cooldown until it can be read", path.display());
                tracing::error!(path = %path.display(), "whatsapp: {why}");
                return assumed(why);
            }
        };
        match serde_json::from_slice::<Record>(&bytes) {
            Ok(r) => r,
            Err(e) => {
                let aside = self.dir.join(format!("supervisor.json.corrupt-{now_ms}"));
                let why = if repair {
                    format!("{} was corrupt ({e}); kept as {}; assuming a cooldown", path.display(), aside.display())
                } else {
                    format!("{} is corrupt ({e}); assuming a cooldown (the next login or gateway start keeps it aside)", path.display())
                };
                tracing::error!(path = %path.display(), "whatsapp: {why}");
                let r = assumed(why);
                if repair {
                    let moved = std::fs::rename(&path, &aside);
                    if let Err(e) = moved.map_err(Self::io(&path)).and_then(|()| self.write(&r)) {
                        tracing::error!(path = %path.display(), "whatsapp: cannot replace the corrupt supervisor state: {e}");
                    }
                }
                r
            }
        }
    }

    fn write(&self, r: &Record) -> Result<(), PersistError> {
        let bytes = serde_json::to_vec_pretty(r).unwrap_or_default();
        write_atomic(&self.path(), &bytes, 0o600)?;
        Ok(())
    }

    fn update<T>(&self, now_ms: u64, f: impl FnOnce(&mut Record) -> T) -> Result<T, PersistError> {
        let _g = self.lock()?;
        // Temp files of writers killed mid-write (a `kill -9` during a save).
        crate::channels::whatsapp::creds::remove_stale_temp_files(&self.dir).map_err(Self::io(&self.dir))?;
        let mut r = self.read(now_ms, true);
        let before = r.clone();
        let out = f(&mut r);
        if r != before {
            self.write(&r)?;
        }
        Ok(out)
    }

    /// Reads the record for a check: takes the lock only when the file is corrupt, to move it
    /// aside and persist the assumed cooldown.
    fn read_checked(&self, now_ms: u64) -> Record {
        // Temp files of writers killed mid-write; only dead writers' files go, so no lock needed.
        if let Err(e) = crate::channels::whatsapp::creds::remove_stale_temp_files(&self.dir) {
            tracing::warn!(dir = %self.dir.display(), "whatsapp: cannot remove stale temp files: {e}");
        }
        let path = self.path();
        let parses = match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice::<Record>(&b).is_ok(),
            Err(_) => true,
        };
        if parses {
            return self.read(now_ms, false);
        }
        match self.lock() {
            Ok(_g) => self.read(now_ms, true),
            Err(_) => self.read(now_ms, false),
        }
    }

    /// The cooldown in force at `now_ms`, if any. An unreadable or corrupt file counts as a
    /// cooldown (fail closed, see the module doc).
    pub fn cooldown(&self, now_ms: u64) -> Option<Cooldown> {
        self.read_checked(now_ms).cooldown.filter(|c| c.until_ms > now_ms)
    }

    /// Like [`Self::cooldown`] but changes nothing on disk (no lock, no temp-file cleanup, a
    /// corrupt file left where it is): for read-only callers such as `doctor`.
    pub fn peek_cooldown(&self, now_ms: u64) -> Option<Cooldown> {
        self.read(now_ms, false).cooldown.filter(|c| c.until_ms > now_ms)
    }

    /// Starts (or extends) a cooldown; `now_ms` is the wall clock, used if the file is corrupt.
    pub fn set_cooldown(&self, now_ms: u64, cooldown: Cooldown) -> Result<(), PersistError> {
        self.update(now_ms, |r| {
            if r.cooldown.as_ref().is_none_or(|c| c.until_ms < cooldown.until_ms) {
                r.cooldown = Some(cooldown);
            }
        })
    }

    /// When the next link attempt is allowed (`None`: now).
    pub fn link_allowed_at(&self, now_ms: u64, limits: &LinkLimits) -> Option<u64> {
        let mut r = self.read_checked(now_ms);
        check(&mut r, now_ms, limits, pid_alive).err().map(|e| e.next_allowed_ms())
    }

    /// Records the start of a link attempt by process `pid`, or says why it is not allowed.
    pub fn begin_link(&self, now_ms: u64, pid: u32, limits: &LinkLimits) -> Result<Result<(), LinkRefusal>, PersistError> {
        self.update(now_ms, |r| {
            check(r, now_ms, limits, pid_alive)?;
            r.link_attempts.push(now_ms);
            r.pending_logins.push(PendingLogin { pid, started_ms: now_ms });
            Ok(())
        })
    }

    /// The link attempt of `pid` has ended (linked, failed or cancelled) at `now_ms`.
    pub fn end_link(&self, now_ms: u64, pid: u32) -> Result<(), PersistError> {
        self.update(now_ms, |r| r.pending_logins.retain(|p| p.pid != pid))
    }
}

/// Prunes expired entries of `r` and checks the limits.
fn check(r: &mut Record, now_ms: u64, limits: &LinkLimits, alive: impl Fn(u32) -> bool) -> Result<(), LinkRefusal> {
    let window = limits.window.as_millis() as u64;
    let ttl = limits.pending_ttl.as_millis() as u64;
    r.link_attempts.retain(|t| t + window > now_ms);
    r.pending_logins.retain(|p| p.started_ms + ttl > now_ms && alive(p.pid));
    if let Some(c) = r.cooldown.as_ref().filter(|c| c.until_ms > now_ms) {
        return Err(LinkRefusal::CoolingDown { until_ms: c.until_ms, reason: c.reason.clone() });
    }
    if r.pending_logins.len() >= limits.max_pending {
        let oldest = r.pending_logins.iter().map(|p| p.started_ms).min().unwrap_or(now_ms);
        return Err(LinkRefusal::TooManyPending { count: r.pending_logins.len(), until_ms: oldest + ttl });
    }
    if r.link_attempts.len() >= limits.max_attempts {
        let oldest = r.link_attempts.iter().copied().min().unwrap_or(now_ms);
        return Err(LinkRefusal::TooManyAttempts {
            count: r.link_attempts.len(),
            window_min: limits.window.as_secs() / 60,
            until_ms: oldest + window,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files() -> (tempfile::TempDir, AccountFiles) {
        let d = tempfile::tempdir().expect("tempdir");
        let f = AccountFiles::new(&StateLayout::new(d.path()), "default");
        (d, f)
    }

    #[test]
    fn cooldown_persists_and_expires() {
        let (_d, f) = files();
        assert_eq!(f.cooldown(1000), None);
        f.set_cooldown(1000, Cooldown { until_ms: 5000, reason: "loggedOut [401]".into() }).expect("write");
        let again = AccountFiles::new(&StateLayout::new(f.dir().parent().and_then(Path::parent).and_then(Path::parent).expect("root")), "default");
        assert_eq!(again.cooldown(4999).map(|c| c.until_ms), Some(5000));
        assert_eq!(again.cooldown(5000), None);
        let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(f.path()).expect("stat").permissions());
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn link_guard_caps_pending_and_attempts() {
        let (_d, f) = files();
        let limits = LinkLimits::default();
        let me = std::process::id();
        for i in 0..3 {
            f.begin_link(1000 + i, me, &limits).expect("io").expect("allowed");
        }
        let e = f.begin_link(2000, me, &limits).expect("io").expect_err("fourth pending refused");
        assert!(matches!(e, LinkRefusal::TooManyPending { count: 3, until_ms: 181_000 }), "{e:?}");
        f.end_link(0, me).expect("io");
        f.begin_link(3000, me, &limits).expect("io").expect("allowed");
        f.begin_link(4000, me, &limits).expect("io").expect("allowed");
        f.end_link(0, me).expect("io");
        let e = f.begin_link(5000, me, &limits).expect("io").expect_err("sixth attempt in the hour");
        assert_eq!(e.next_allowed_ms(), 1000 + 3_600_000);
        assert!(e.to_string().contains("next attempt is allowed at 1970-01-01 01:00:01 UTC"), "{e}");
        assert_eq!(f.link_allowed_at(5000, &limits), Some(3_601_000));
        assert_eq!(f.link_allowed_at(3_601_000, &limits), None);
    }

    #[test]
    fn dead_processes_do_not_hold_pending_slots() {
        let mut r = Record {
            pending_logins: vec![PendingLogin { pid: 1, started_ms: 0 }; 3],
            ..Default::default()
        };
        assert!(check(&mut r, 10, &LinkLimits::default(), |_| false).is_ok());
        assert!(r.pending_logins.is_empty());
    }

    #[test]
    fn issue14_item9_corrupt_supervisor_json_keeps_cooldown() {
        let (_d, f) = files();
        let now = 1_800_000_000_000;
        f.set_cooldown(now, Cooldown { until_ms: now + 60_000, reason: "loggedOut [401]".into() }).expect("write");
        // A torn or garbled file: today it reads as empty and the account connects at once.
        std::fs::write(f.path(), b"{\"cooldown\": {\"untilMs\": 18").expect("corrupt");
        let c = f.cooldown(now + 1).expect("a corrupt file is a cooldown, not an empty record");
        assert_eq!(c.until_ms, now + 1 + ASSUMED_COOLDOWN.as_millis() as u64);
        assert!(c.reason.contains("was corrupt") && c.reason.contains("assuming a cooldown"), "{}", c.reason);
        // The evidence is kept and the assumed cooldown is persisted for every later process.
        let aside = f.dir().join(format!("supervisor.json.corrupt-{}", now + 1));
        assert!(aside.exists(), "corrupt file kept aside");
        let persisted: Record = serde_json::from_slice(&std::fs::read(f.path()).expect("read")).expect("valid JSON again");
        assert_eq!(persisted.cooldown.map(|c| c.until_ms), Some(c.until_ms));
        assert_eq!(f.link_allowed_at(now + 2, &LinkLimits::default()), Some(c.until_ms));
        let e = f.begin_link(now + 2, 1, &LinkLimits::default()).expect("io").expect_err("no link during it");
        assert!(matches!(e, LinkRefusal::CoolingDown { .. }), "{e:?}");
        assert_eq!(f.cooldown(c.until_ms), None, "the assumed cooldown ends like any other");
    }

    #[test]
    fn issue14_item9_unreadable_supervisor_json_keeps_cooldown() {
        let (_d, f) = files();
        std::fs::create_dir_all(f.path()).expect("a directory where the file should be: EISDIR even for root");
        for now in [1000, 10_000_000] {
            let c = f.cooldown(now).expect("unreadable means cooling down");
            assert_eq!(c.until_ms, now + ASSUMED_COOLDOWN.as_millis() as u64);
            assert!(c.reason.contains("unreadable"), "{}", c.reason);
        }
        assert!(f.begin_link(1000, 1, &LinkLimits::default()).expect("io").is_err());
        assert!(f.path().is_dir(), "an unreadable file is not touched");
    }

    #[test]
    fn assumed_cooldown_is_the_policy_auth_cooldown() {
        assert_eq!(ASSUMED_COOLDOWN, super::super::policy::Policy::default().auth_cooldown);
    }

    #[test]
    fn dates_format() {
        assert_eq!(fmt_ms(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(fmt_ms(1_795_000_000_000), "2026-11-18 11:06:40 UTC");
    }
}
