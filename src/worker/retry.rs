//! Retry policy: exponential back-off with jitter, decided by the writer of the
//! Failed/TimedOut event and stored in its payload, so folds stay deterministic.

use std::time::Duration;

#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Back-off before attempt 2; doubles for each further attempt.
    pub base: Duration,
    /// Upper bound of any back-off.
    pub cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(300),
        }
    }
}

impl RetryPolicy {
    /// Back-off after `attempt` failed, or `None` when no attempt remains or the failure
    /// is not retryable. Jitter draws from [d/2, d] so that scans failing together
    /// (an outage) do not retry together.
    pub fn retry_in(&self, attempt: i32, max_attempts: i32, retryable: bool) -> Option<Duration> {
        if !retryable || attempt >= max_attempts {
            return None;
        }
        let exp = u32::try_from(attempt.saturating_sub(1))
            .unwrap_or(0)
            .min(20);
        let full = self.base.saturating_mul(1 << exp).min(self.cap);
        let half = full / 2;
        let jitter = half.mul_f64(fastrand::f64());
        Some(half + jitter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backs_off_exponentially_within_jitter_bounds_and_stops_at_max() {
        let p = RetryPolicy {
            base: Duration::from_millis(100),
            cap: Duration::from_millis(1000),
        };
        for _ in 0..100 {
            let d1 = p.retry_in(1, 5, true).unwrap();
            assert!(d1 >= Duration::from_millis(50) && d1 <= Duration::from_millis(100));
            let d3 = p.retry_in(3, 5, true).unwrap();
            assert!(d3 >= Duration::from_millis(200) && d3 <= Duration::from_millis(400));
            let d4 = p.retry_in(4, 5, true).unwrap();
            assert!(d4 >= Duration::from_millis(400) && d4 <= Duration::from_millis(800));
        }
        assert!(p.retry_in(10, 20, true).unwrap() <= Duration::from_millis(1000));
        assert_eq!(p.retry_in(5, 5, true), None);
        assert_eq!(p.retry_in(1, 5, false), None);
    }
}
