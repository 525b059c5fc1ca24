//! Staying inside Google's quota: a sliding-window limiter for writes and
//! exponential backoff with full jitter for retries.
//!
//! Why a sliding window rather than a refilling bucket: Google counts write
//! requests per user per minute. A bucket holding N tokens and refilling N per
//! minute can send 2N requests inside one minute (a full bucket, then the
//! refill), which Google answers with 429. The window never lets more than N
//! requests start within any 60 seconds.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// At most `limit` events in any `window`.
#[derive(Debug)]
pub struct Window {
    limit: usize,
    window: Duration,
    log: VecDeque<Instant>,
}

impl Window {
    /// `limit` 0 means unlimited.
    pub fn new(limit: u32, window: Duration) -> Self {
        Window {
            limit: limit as usize,
            window,
            log: VecDeque::new(),
        }
    }

    /// How long an event at `at` must wait to stay within the limit.
    pub fn wait_at(&mut self, at: Instant) -> Duration {
        if self.limit == 0 {
            return Duration::ZERO;
        }
        while self
            .log
            .front()
            .is_some_and(|t| at.saturating_duration_since(*t) >= self.window)
        {
            self.log.pop_front();
        }
        if self.log.len() < self.limit {
            return Duration::ZERO;
        }
        // The oldest of the last `limit` events must leave the window.
        let oldest = self.log[self.log.len() - self.limit];
        (oldest + self.window).saturating_duration_since(at)
    }

    /// Records an event at `at`.
    pub fn record(&mut self, at: Instant) {
        if self.limit > 0 {
            self.log.push_back(at);
        }
    }

    /// The last event ended at `at`: it counts from then. A request is
    /// recorded when it is sent, but Google counts it when it arrives, a
    /// moment later; counting it from its reply keeps the next window's
    /// start after Google's (a request sent exactly 60 s after the first was
    /// once counted inside Google's minute and drew a 429).
    pub fn settle_last(&mut self, at: Instant) {
        if let Some(last) = self.log.back_mut() {
            *last = (*last).max(at);
        }
    }
}

/// The delay before retry number `attempt` (0 for the first retry): a
/// uniformly random time up to `base` doubled per attempt, capped at `cap`
/// ("full jitter"), but never shorter than the server's `Retry-After`.
pub fn backoff(
    attempt: u32,
    base: Duration,
    cap: Duration,
    retry_after: Option<Duration>,
    unit: f64,
) -> Duration {
    let ceiling = base
        .checked_mul(1u32.checked_shl(attempt.min(30)).unwrap_or(u32::MAX))
        .unwrap_or(cap)
        .min(cap);
    let jitter = ceiling.mul_f64(unit.clamp(0.0, 1.0));
    match retry_after {
        Some(r) => jitter.max(r),
        None => jitter,
    }
}

/// Parses a `Retry-After` value: delay seconds or an HTTP date.
pub fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(s) = v.parse::<u64>() {
        return Some(Duration::from_secs(s));
    }
    let when = jiff::fmt::rfc2822::parse(v).ok()?.timestamp();
    let now = jiff::Timestamp::now();
    let secs = (when.as_second() - now.as_second()).max(0);
    Some(Duration::from_secs(u64::try_from(secs).unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_more_than_limit_in_any_window() {
        let t0 = Instant::now();
        let mut w = Window::new(3, Duration::from_secs(60));
        let mut starts = Vec::new();
        let mut now = t0;
        for _ in 0..10 {
            now += w.wait_at(now);
            w.record(now);
            starts.push(now);
        }
        // Three at once, then one per 60 s as the oldest leaves the window.
        assert_eq!(starts[2], t0);
        assert_eq!(starts[3], t0 + Duration::from_secs(60));
        for i in 3..10 {
            assert!(starts[i] - starts[i - 3] >= Duration::from_secs(60), "{i}");
        }
        assert_eq!(
            Window::new(0, Duration::from_secs(60)).wait_at(t0),
            Duration::ZERO
        );
    }

    #[test]
    fn a_request_counts_from_its_reply() {
        let t0 = Instant::now();
        let mut w = Window::new(1, Duration::from_secs(60));
        w.record(t0);
        // Google received it 300 ms later; its reply came at 500 ms.
        w.settle_last(t0 + Duration::from_millis(500));
        assert_eq!(
            w.wait_at(t0 + Duration::from_secs(60)),
            Duration::from_millis(500)
        );
        w.settle_last(t0);
        assert_eq!(
            w.wait_at(t0 + Duration::from_secs(60)),
            Duration::from_millis(500),
            "never earlier than recorded"
        );
    }

    #[test]
    fn backoff_doubles_to_the_cap_and_honours_retry_after() {
        let s = Duration::from_secs;
        assert_eq!(backoff(0, s(1), s(64), None, 1.0), s(1));
        assert_eq!(backoff(3, s(1), s(64), None, 1.0), s(8));
        assert_eq!(backoff(10, s(1), s(64), None, 1.0), s(64));
        assert_eq!(backoff(40, s(1), s(64), None, 1.0), s(64));
        assert_eq!(backoff(3, s(1), s(64), None, 0.5), s(4));
        assert_eq!(backoff(0, s(1), s(64), Some(s(5)), 0.5), s(5));
        assert_eq!(parse_retry_after("7"), Some(s(7)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(s(0))
        );
        assert_eq!(parse_retry_after("soon"), None);
    }
}
