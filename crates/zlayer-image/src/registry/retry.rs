//! Retries with exponential backoff for transient registry failures.

use std::time::Duration;

/// How often and how patiently to retry a failed registry request.
///
/// A request is retried when it failed in a way that may succeed later
/// (connection refused or reset, timeout, HTTP 5xx, 408 or 429). During a
/// blob download, any attempt that made progress resets the count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total attempts, the first one included (at least 1).
    pub attempts: u32,
    /// Delay before the second attempt; doubled for each further one.
    pub base_delay: Duration,
    /// Upper bound for one delay.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 5,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries.
    pub fn none() -> Self {
        RetryPolicy {
            attempts: 1,
            ..Self::default()
        }
    }

    /// The delay after failed attempt number `failed` (1-based), or `None`
    /// when no attempts are left.
    pub fn delay_after(&self, failed: u32) -> Option<Duration> {
        if failed >= self.attempts.max(1) {
            return None;
        }
        let factor = 1u32 << failed.saturating_sub(1).min(16);
        Some(self.base_delay.saturating_mul(factor).min(self.max_delay))
    }
}

/// Whether an HTTP status is worth retrying.
pub fn status_is_transient(code: u16) -> bool {
    code >= 500 || code == 408 || code == 429
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let p = RetryPolicy {
            attempts: 6,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(500),
        };
        let delays: Vec<_> = (1..=6).map(|n| p.delay_after(n)).collect();
        assert_eq!(
            delays,
            vec![
                Some(Duration::from_millis(100)),
                Some(Duration::from_millis(200)),
                Some(Duration::from_millis(400)),
                Some(Duration::from_millis(500)),
                Some(Duration::from_millis(500)),
                None
            ]
        );
        assert_eq!(RetryPolicy::none().delay_after(1), None);
    }

    #[test]
    fn transient_statuses() {
        assert!(status_is_transient(500) && status_is_transient(503));
        assert!(status_is_transient(429) && status_is_transient(408));
        assert!(!status_is_transient(404) && !status_is_transient(401));
    }
}
