//! Retries of one model on 429 and 5xx, as upstream measures them (reference `agent.md` §2):
//! 429 → up to 10 attempts with jittered exponential backoff capped at 30 s; 5xx → up to 8
//! retries within 90 s. A `Retry-After` from the provider replaces the computed delay, bounded
//! by the cap. Other failures (401, other 4xx, unreachable, timeouts) are not retried here: the
//! turn moves on to the next fallback model.
//!
//! Sleeping goes through the [`Sleeper`] trait so tests record the delays instead of waiting.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use super::{ChatRequest, Completion, FailureKind, HttpClient, ProviderError, ProviderSpec};

/// Waits. The gateway uses [`TokioSleeper`]; tests record and return at once.
pub trait Sleeper: Send + Sync {
    /// Sleeps for `d`.
    fn sleep(&self, d: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
}

/// Sleeps on tokio's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioSleeper;

impl Sleeper for TokioSleeper {
    fn sleep(&self, d: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(tokio::time::sleep(d))
    }
}

/// The retry limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all for a model that answers 429.
    pub rate_limit_attempts: u32,
    /// Attempts in all for a model that answers 5xx.
    pub server_error_attempts: u32,
    /// Total time spent waiting between 5xx retries.
    pub server_error_budget: Duration,
    /// First backoff delay; it doubles per attempt.
    pub base_delay: Duration,
    /// Largest single delay (also bounds `Retry-After`).
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            rate_limit_attempts: 10,
            server_error_attempts: 9,
            server_error_budget: Duration::from_secs(90),
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// No retries at all.
    pub fn none() -> Self {
        Self { rate_limit_attempts: 1, server_error_attempts: 1, ..Self::default() }
    }

    /// The delay before attempt `failed + 1`, after `failed` failed attempts (≥ 1), or `None`
    /// when no attempt is left. `waited` is the time already spent waiting for this model;
    /// `jitter` is uniform in `[0, 1)`.
    pub fn delay(&self, failure: &FailureKind, failed: u32, waited: Duration, jitter: f64) -> Option<Duration> {
        let (limit, budget) = match failure {
            FailureKind::RateLimited { .. } => (self.rate_limit_attempts, None),
            FailureKind::Server { .. } => (self.server_error_attempts, Some(self.server_error_budget)),
            _ => return None,
        };
        if failed >= limit {
            return None;
        }
        let delay = match failure {
            FailureKind::RateLimited { retry_after: Some(after), .. } => (*after).min(self.max_delay),
            _ => {
                let exp = self.base_delay.saturating_mul(1u32 << (failed - 1).min(20));
                exp.mul_f64(0.8 + 0.4 * jitter.clamp(0.0, 1.0)).min(self.max_delay)
            }
        };
        if budget.is_some_and(|b| waited + delay > b) {
            return None;
        }
        Some(delay)
    }
}

/// A uniform value in `[0, 1)` from the OS, 0.5 if it has none.
fn jitter() -> f64 {
    getrandom::u32().map(|r| f64::from(r) / (f64::from(u32::MAX) + 1.0)).unwrap_or(0.5)
}

/// Calls `model` of `spec`, retrying on 429/5xx per `policy`. Text is streamed to `on_delta`;
/// a failure after text was streamed is not retried (the text is out).
pub async fn complete_with_retries(
    client: &HttpClient,
    spec: &ProviderSpec,
    model: &str,
    req: &ChatRequest,
    policy: &RetryPolicy,
    sleeper: &dyn Sleeper,
    on_delta: &mut (dyn FnMut(&str) + Send),
) -> Result<Completion, ProviderError> {
    let mut attempts = 0u32;
    let mut waited = Duration::ZERO;
    loop {
        attempts += 1;
        let mut streamed = false;
        let result = {
            let mut sink = |d: &str| {
                streamed = true;
                on_delta(d);
            };
            spec.complete(client, model, req, &mut sink).await
        };
        let kind = match result {
            Ok(c) => return Ok(c),
            Err(k) => k,
        };
        let next = if streamed { None } else { policy.delay(&kind, attempts, waited, jitter()) };
        match next {
            Some(d) => {
                tracing::debug!(provider = %spec.id, model, attempt = attempts, delay_ms = d.as_millis() as u64, error = %kind, "retrying model");
                sleeper.sleep(d).await;
                waited += d;
            }
            None => return Err(ProviderError { provider: spec.id.clone(), model: model.to_string(), kind, attempts }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rl(after: Option<u64>) -> FailureKind {
        FailureKind::RateLimited { retry_after: after.map(Duration::from_secs), detail: String::new() }
    }
    fn server() -> FailureKind {
        FailureKind::Server { status: 500, detail: String::new() }
    }

    #[test]
    fn rate_limits_back_off_exponentially_capped_and_stop_after_ten_attempts() {
        let p = RetryPolicy::default();
        let delays: Vec<Option<Duration>> = (1..=10).map(|n| p.delay(&rl(None), n, Duration::ZERO, 0.5)).collect();
        assert_eq!(delays[0], Some(Duration::from_secs(1)));
        assert_eq!(delays[1], Some(Duration::from_secs(2)));
        assert_eq!(delays[5], Some(Duration::from_secs(30)), "capped at 30 s");
        assert_eq!(delays[8], Some(Duration::from_secs(30)));
        assert_eq!(delays[9], None, "10 attempts in all");
        let total: Duration = delays.iter().flatten().sum();
        assert!(total > Duration::from_secs(150) && total < Duration::from_secs(170), "{total:?}");
    }

    #[test]
    fn retry_after_is_honoured_within_the_cap() {
        let p = RetryPolicy::default();
        assert_eq!(p.delay(&rl(Some(7)), 1, Duration::ZERO, 0.9), Some(Duration::from_secs(7)));
        assert_eq!(p.delay(&rl(Some(3600)), 1, Duration::ZERO, 0.0), Some(Duration::from_secs(30)));
    }

    #[test]
    fn server_errors_stop_at_eight_retries_or_the_budget() {
        let p = RetryPolicy::default();
        assert!(p.delay(&server(), 8, Duration::ZERO, 0.0).is_some());
        assert_eq!(p.delay(&server(), 9, Duration::ZERO, 0.0), None, "8 retries");
        assert_eq!(p.delay(&server(), 3, Duration::from_secs(89), 0.5), None, "90 s budget");
    }

    #[test]
    fn other_failures_are_not_retried() {
        let p = RetryPolicy::default();
        for k in [
            FailureKind::Unauthorized { status: 401, detail: String::new() },
            FailureKind::Unreachable(String::new()),
            FailureKind::Timeout(String::new()),
            FailureKind::Rejected { status: 400, detail: String::new() },
        ] {
            assert_eq!(p.delay(&k, 1, Duration::ZERO, 0.5), None, "{k:?}");
        }
        assert_eq!(RetryPolicy::none().delay(&rl(None), 1, Duration::ZERO, 0.5), None);
    }

    #[test]
    fn jitter_is_in_range() {
        for _ in 0..100 {
            let j = jitter();
            assert!((0.0..1.0).contains(&j));
        }
    }
}
