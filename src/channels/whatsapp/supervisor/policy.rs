//! The reconnect policy: what the supervisor does after a connection ends, and how long it waits.
//!
//! Pure: no I/O, no clock. The schedule is injectable ([`Policy`]) so tests and the soak test can
//! compress time, and the jitter comes from the injected [`Entropy`].
//!
//! Reactions by reason (issue #5; reference `whatsapp-protocol.md` §4, `openclaw.md` §5):
//!
//! | reason | reaction |
//! |---|---|
//! | 515 restart required | reconnect at once (login payload); after 3 in a row without `<success>`, back off |
//! | 408, 428, 500, 503, other codes, handshake errors | jittered exponential backoff, reset only after a stable period |
//! | network unreachable (never reached the server) | probe every few seconds, so recovery is quick |
//! | 401, 403 before `<success>` (pairing, login) | cooldown of 20 minutes, persisted |
//! | 401 after `<success>` | logged out: back up the creds, not linked |
//! | 440 replaced | stop; another instance uses this session |
//! | 411 multi-device mismatch | stop; the client must be updated |
//! | 429 rate limited | long backoff |

use std::time::Duration;

use super::super::crypto::Entropy;
use super::super::disconnect::DisconnectReason;

/// The timing of the supervisor. [`Policy::default`] is the production schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// First transient backoff delay.
    pub backoff_initial: Duration,
    /// Upper bound of the transient backoff.
    pub backoff_max: Duration,
    /// A connection that stayed open this long resets the backoff counters.
    pub stable_after: Duration,
    /// First delay after a 429.
    pub rate_limited_initial: Duration,
    /// Upper bound after repeated 429s.
    pub rate_limited_max: Duration,
    /// Delay between probes while the network is unreachable.
    pub network_probe_max: Duration,
    /// Cooldown after 401/403 during pairing or login (WhatsApp wants 15–20 minutes of silence).
    pub auth_cooldown: Duration,
    /// Immediate reconnects on 515 before falling back to the backoff.
    pub max_immediate_restarts: u32,
    /// Relative jitter on every delay (0.2 = ±20 %).
    pub jitter_percent: u32,
    /// First delay before restarting a crashed account task.
    pub crash_initial: Duration,
    /// Upper bound of the crash restart delay.
    pub crash_max: Duration,
    /// How often a not-linked account looks for new credentials.
    pub link_poll: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(300),
            stable_after: Duration::from_secs(60),
            rate_limited_initial: Duration::from_secs(300),
            rate_limited_max: Duration::from_secs(3600),
            network_probe_max: Duration::from_secs(3),
            auth_cooldown: Duration::from_secs(20 * 60),
            max_immediate_restarts: 3,
            jitter_percent: 20,
            crash_initial: Duration::from_secs(1),
            crash_max: Duration::from_secs(300),
            link_poll: Duration::from_secs(2),
        }
    }
}

impl Policy {
    /// Every duration divided by `factor` (for the soak test: minutes of policy in seconds).
    pub fn compressed(&self, factor: u32) -> Self {
        let f = factor.max(1);
        Self {
            backoff_initial: self.backoff_initial / f,
            backoff_max: self.backoff_max / f,
            stable_after: self.stable_after / f,
            rate_limited_initial: self.rate_limited_initial / f,
            rate_limited_max: self.rate_limited_max / f,
            network_probe_max: self.network_probe_max / f,
            auth_cooldown: self.auth_cooldown / f,
            crash_initial: self.crash_initial / f,
            crash_max: self.crash_max / f,
            link_poll: self.link_poll / f,
            ..self.clone()
        }
    }

    /// The nominal (unjittered) transient delay before attempt `n` (0-based): initial · 2ⁿ, capped.
    pub fn nominal_backoff(&self, n: u32) -> Duration {
        exp(self.backoff_initial, n, self.backoff_max)
    }

    /// The nominal delay after the `n`-th 429 in a row (0-based).
    pub fn nominal_rate_limited(&self, n: u32) -> Duration {
        exp(self.rate_limited_initial, n, self.rate_limited_max)
    }

    /// The nominal delay between network probes (0-based): 1 s, 2 s, then the cap.
    pub fn nominal_network_probe(&self, n: u32) -> Duration {
        exp(self.backoff_initial, n, self.network_probe_max)
    }

    /// The nominal crash-restart delay (0-based).
    pub fn nominal_crash(&self, n: u32) -> Duration {
        exp(self.crash_initial, n, self.crash_max)
    }

    /// The bounds a jittered delay of nominal `d` with cap `cap` stays within.
    pub fn jitter_bounds(&self, d: Duration, cap: Duration) -> (Duration, Duration) {
        let p = u64::from(self.jitter_percent.min(100));
        let lo = d.saturating_sub(d * p as u32 / 100);
        let hi = (d + d * p as u32 / 100).min(cap.max(d));
        (lo, hi)
    }

    /// `d` with ±jitter applied, never above `cap` (unless `d` itself is).
    pub fn jitter(&self, d: Duration, cap: Duration, rng: &dyn Entropy) -> Duration {
        let (lo, hi) = self.jitter_bounds(d, cap);
        let span = hi.saturating_sub(lo).as_millis() as u64;
        if span == 0 {
            return lo;
        }
        let mut b = [0u8; 8];
        rng.fill(&mut b);
        lo + Duration::from_millis(u64::from_le_bytes(b) % (span + 1))
    }
}

fn exp(initial: Duration, n: u32, cap: Duration) -> Duration {
    let factor = 1u32.checked_shl(n.min(30)).unwrap_or(u32::MAX);
    initial.checked_mul(factor).unwrap_or(cap).min(cap)
}

/// How a reason is handled, before any timing is applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reaction {
    /// Reconnect at once (515).
    ReconnectNow,
    /// Back off with the transient schedule.
    Backoff,
    /// The network did not reach the server: probe quickly.
    NetworkProbe,
    /// Back off with the long 429 schedule.
    RateLimited,
    /// Stop all attempts for the auth cooldown (401/403 during pairing or login).
    Cooldown,
    /// The device was logged out: back up the creds, not linked.
    LoggedOut,
    /// Another instance took the session: stop.
    Replaced,
    /// The server refuses this client version (411): stop.
    Unsupported,
}

/// Classifies how a connection ended. `opened` is whether `<success>` was reached.
pub fn react(reason: &DisconnectReason, opened: bool) -> Reaction {
    match reason {
        DisconnectReason::RestartRequired => Reaction::ReconnectNow,
        DisconnectReason::LoggedOut if opened => Reaction::LoggedOut,
        DisconnectReason::LoggedOut | DisconnectReason::Forbidden => Reaction::Cooldown,
        DisconnectReason::ConnectionReplaced => Reaction::Replaced,
        DisconnectReason::MultideviceMismatch => Reaction::Unsupported,
        DisconnectReason::Other(429) => Reaction::RateLimited,
        DisconnectReason::NetworkUnreachable(_) => Reaction::NetworkProbe,
        DisconnectReason::ConnectionLost
        | DisconnectReason::TimedOut(_)
        | DisconnectReason::ConnectionClosed
        | DisconnectReason::BadSession
        | DisconnectReason::UnavailableService
        | DisconnectReason::Other(_) => Reaction::Backoff,
    }
}

/// The counters behind the schedules. Reset only by [`Backoff::connection_was_stable`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Backoff {
    /// Transient failures in a row.
    pub transient: u32,
    /// 429s in a row.
    pub rate_limited: u32,
    /// Network probes in a row.
    pub network: u32,
    /// 515 restarts in a row without `<success>`.
    pub immediate: u32,
}

impl Backoff {
    /// A connection stayed open for the stable period: start the schedules over.
    pub fn connection_was_stable(&mut self) {
        *self = Self::default();
    }

    /// The delay before the next attempt for `reaction` (and advances its counter). `None` for
    /// reactions that do not reconnect by themselves.
    pub fn next_delay(
        &mut self,
        reaction: &Reaction,
        policy: &Policy,
        rng: &dyn Entropy,
    ) -> Option<Duration> {
        match reaction {
            Reaction::ReconnectNow if self.immediate < policy.max_immediate_restarts => {
                self.immediate += 1;
                Some(Duration::ZERO)
            }
            Reaction::ReconnectNow | Reaction::Backoff => {
                let d = policy.nominal_backoff(self.transient);
                self.transient = self.transient.saturating_add(1);
                self.network = 0;
                Some(policy.jitter(d, policy.backoff_max, rng))
            }
            Reaction::NetworkProbe => {
                let d = policy.nominal_network_probe(self.network);
                self.network = self.network.saturating_add(1);
                Some(policy.jitter(d, policy.network_probe_max, rng))
            }
            Reaction::RateLimited => {
                let d = policy.nominal_rate_limited(self.rate_limited);
                self.rate_limited = self.rate_limited.saturating_add(1);
                Some(policy.jitter(d, policy.rate_limited_max, rng))
            }
            Reaction::Cooldown => Some(policy.auth_cooldown),
            Reaction::LoggedOut | Reaction::Replaced | Reaction::Unsupported => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::crypto::SeededEntropy;
    use super::*;

    #[test]
    fn reactions_follow_the_table() {
        use DisconnectReason as R;
        assert_eq!(react(&R::RestartRequired, false), Reaction::ReconnectNow);
        assert_eq!(react(&R::LoggedOut, false), Reaction::Cooldown);
        assert_eq!(react(&R::Forbidden, true), Reaction::Cooldown);
        assert_eq!(react(&R::LoggedOut, true), Reaction::LoggedOut);
        assert_eq!(react(&R::ConnectionReplaced, true), Reaction::Replaced);
        assert_eq!(react(&R::Other(429), true), Reaction::RateLimited);
        assert_eq!(react(&R::NetworkUnreachable("dns".into()), false), Reaction::NetworkProbe);
        for r in [R::ConnectionLost, R::ConnectionClosed, R::BadSession, R::UnavailableService] {
            assert_eq!(react(&r, true), Reaction::Backoff);
        }
    }

    #[test]
    fn backoff_doubles_within_jitter_and_caps() {
        let p = Policy::default();
        let rng = SeededEntropy::new(7);
        let mut b = Backoff::default();
        for n in 0..20 {
            let d = b.next_delay(&Reaction::Backoff, &p, &rng).expect("reconnects");
            let nominal = p.nominal_backoff(n);
            let (lo, hi) = p.jitter_bounds(nominal, p.backoff_max);
            assert!(d >= lo && d <= hi, "attempt {n}: {d:?} not in {lo:?}..={hi:?}");
            assert!(d <= p.backoff_max);
        }
        assert_eq!(p.nominal_backoff(0), Duration::from_secs(1));
        assert_eq!(p.nominal_backoff(3), Duration::from_secs(8));
        assert_eq!(p.nominal_backoff(40), p.backoff_max);
    }

    #[test]
    fn restart_required_is_immediate_only_a_few_times() {
        let p = Policy::default();
        let rng = SeededEntropy::new(1);
        let mut b = Backoff::default();
        for _ in 0..p.max_immediate_restarts {
            assert_eq!(b.next_delay(&Reaction::ReconnectNow, &p, &rng), Some(Duration::ZERO));
        }
        assert!(b.next_delay(&Reaction::ReconnectNow, &p, &rng).is_some_and(|d| d > Duration::ZERO));
    }

    #[test]
    fn stop_reactions_never_reconnect() {
        let p = Policy::default();
        let rng = SeededEntropy::new(1);
        let mut b = Backoff::default();
        for r in [Reaction::LoggedOut, Reaction::Replaced, Reaction::Unsupported] {
            assert_eq!(b.next_delay(&r, &p, &rng), None);
        }
        assert_eq!(b.next_delay(&Reaction::Cooldown, &p, &rng), Some(Duration::from_secs(1200)));
    }
}
