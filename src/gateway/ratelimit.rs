//! Auth failure throttling per client address: after `max_attempts` failures within the window,
//! further failures get 429 until the window passes. A success resets the client's counter.
//! Time is passed in (`now`), so tests do not sleep.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::gateway::settings::RateLimitSettings;

/// At most this many addresses are tracked; beyond it, stale entries are purged.
const MAX_TRACKED: usize = 10_000;

/// The verdict for a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureVerdict {
    /// Answer 401.
    Unauthorized,
    /// Answer 429 with `Retry-After` seconds.
    Throttled {
        /// Seconds until the window ends.
        retry_after_secs: u64,
    },
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    window_start: Instant,
    failures: u32,
}

/// The limiter. Shared behind `&self`.
#[derive(Debug)]
pub struct AuthLimiter {
    settings: RateLimitSettings,
    entries: Mutex<HashMap<IpAddr, Entry>>,
}

impl AuthLimiter {
    /// A limiter with these settings.
    pub fn new(settings: RateLimitSettings) -> Self {
        Self { settings, entries: Mutex::new(HashMap::new()) }
    }

    fn window(&self) -> Duration {
        Duration::from_millis(self.settings.window_ms)
    }

    /// Records a failed attempt from `ip` at `now` and says how to answer it.
    pub fn failure(&self, ip: IpAddr, now: Instant) -> FailureVerdict {
        let window = self.window();
        let mut map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_TRACKED {
            map.retain(|_, e| now.duration_since(e.window_start) < window);
        }
        let e = map.entry(ip).or_insert(Entry { window_start: now, failures: 0 });
        if now.duration_since(e.window_start) >= window {
            *e = Entry { window_start: now, failures: 0 };
        }
        if e.failures >= self.settings.max_attempts {
            let left = window.saturating_sub(now.duration_since(e.window_start));
            return FailureVerdict::Throttled { retry_after_secs: left.as_secs_f64().ceil().max(1.0) as u64 };
        }
        e.failures += 1;
        FailureVerdict::Unauthorized
    }

    /// Records a success: the client's counter is reset.
    pub fn success(&self, ip: IpAddr) {
        let mut map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if !map.is_empty() {
            map.remove(&ip);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twenty_first_failure_is_throttled_until_window_passes() {
        let l = AuthLimiter::new(RateLimitSettings::default());
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let t0 = Instant::now();
        for _ in 0..20 {
            assert_eq!(l.failure(ip, t0), FailureVerdict::Unauthorized);
        }
        assert_eq!(l.failure(ip, t0), FailureVerdict::Throttled { retry_after_secs: 60 });
        assert_eq!(l.failure(ip, t0 + Duration::from_secs(30)), FailureVerdict::Throttled { retry_after_secs: 30 });
        assert_eq!(l.failure(ip, t0 + Duration::from_secs(60)), FailureVerdict::Unauthorized);
        let other: IpAddr = "127.0.0.2".parse().unwrap();
        assert_eq!(l.failure(other, t0), FailureVerdict::Unauthorized);
    }

    #[test]
    fn success_resets() {
        let l = AuthLimiter::new(RateLimitSettings { max_attempts: 2, window_ms: 60_000 });
        let ip: IpAddr = "::1".parse().unwrap();
        let t0 = Instant::now();
        l.failure(ip, t0);
        l.failure(ip, t0);
        assert!(matches!(l.failure(ip, t0), FailureVerdict::Throttled { .. }));
        l.success(ip);
        assert_eq!(l.failure(ip, t0), FailureVerdict::Unauthorized);
    }
}
