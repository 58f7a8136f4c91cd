//! Auth failure throttling per client address: after `max_attempts` failures within the window,
//! every attempt from that address gets 429 until the window passes — checked *before* the
//! credential is compared, so the right token is refused too while throttled, and a success does
//! not reset the counter (a guesser who also holds one valid credential gains nothing).
//! Time is passed in (`now`), so tests do not sleep.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::gateway::settings::RateLimitSettings;

/// At most this many addresses are tracked: stale entries are purged first, then the entry
/// whose window started earliest is dropped.
pub const MAX_TRACKED: usize = 10_000;

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

    fn retry_after(&self, e: &Entry, now: Instant) -> u64 {
        let left = self.window().saturating_sub(now.duration_since(e.window_start));
        left.as_secs_f64().ceil().max(1.0) as u64
    }

    /// Whether `ip` is throttled at `now` (call before comparing any credential); `Some` holds
    /// the `Retry-After` seconds.
    pub fn throttled(&self, ip: IpAddr, now: Instant) -> Option<u64> {
        let map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let e = map.get(&ip)?;
        (now.duration_since(e.window_start) < self.window() && e.failures >= self.settings.max_attempts)
            .then(|| self.retry_after(e, now))
    }

    /// Records a failed attempt from `ip` at `now` and says how to answer it.
    pub fn failure(&self, ip: IpAddr, now: Instant) -> FailureVerdict {
        let window = self.window();
        let mut map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if !map.contains_key(&ip) && map.len() >= MAX_TRACKED {
            map.retain(|_, e| now.duration_since(e.window_start) < window);
            while map.len() >= MAX_TRACKED {
                let Some(oldest) = map.iter().min_by_key(|(_, e)| e.window_start).map(|(k, _)| *k) else { break };
                map.remove(&oldest);
            }
        }
        let e = map.entry(ip).or_insert(Entry { window_start: now, failures: 0 });
        if now.duration_since(e.window_start) >= window {
            *e = Entry { window_start: now, failures: 0 };
        }
        if e.failures >= self.settings.max_attempts {
            let retry_after_secs = self.retry_after(e, now);
            return FailureVerdict::Throttled { retry_after_secs };
        }
        e.failures += 1;
        FailureVerdict::Unauthorized
    }

    /// Addresses tracked now.
    pub fn tracked(&self) -> usize {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).len()
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
    fn issue14_item6_throttle_holds_for_any_attempt_and_success_does_not_reset() {
        let l = AuthLimiter::new(RateLimitSettings { max_attempts: 2, window_ms: 60_000 });
        let ip: IpAddr = "::1".parse().unwrap();
        let t0 = Instant::now();
        assert_eq!(l.throttled(ip, t0), None);
        l.failure(ip, t0);
        l.failure(ip, t0);
        assert_eq!(l.throttled(ip, t0), Some(60), "checked before any credential is compared");
        assert!(matches!(l.failure(ip, t0), FailureVerdict::Throttled { .. }));
        assert_eq!(l.throttled(ip, t0 + Duration::from_secs(60)), None, "the window passes");
    }

    #[test]
    fn issue14_item16_tracked_addresses_stay_within_the_cap_while_fresh() {
        let l = AuthLimiter::new(RateLimitSettings { max_attempts: 5, window_ms: 600_000 });
        let t0 = Instant::now();
        for i in 0..(MAX_TRACKED as u32 + 2_000) {
            let ip = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            l.failure(ip, t0 + Duration::from_millis(i as u64));
            assert!(l.tracked() <= MAX_TRACKED, "{} tracked after {i}", l.tracked());
        }
        assert_eq!(l.tracked(), MAX_TRACKED);
        // The newest address is tracked; the oldest was dropped.
        let newest = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + MAX_TRACKED as u32 + 1_999));
        for _ in 0..5 {
            l.failure(newest, t0 + Duration::from_secs(20));
        }
        assert!(l.throttled(newest, t0 + Duration::from_secs(20)).is_some());
    }
}
