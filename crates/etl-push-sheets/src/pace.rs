//! Staying inside Google's quota: a sliding-window limiter for writes. The
//! retry backoff is etl-core's one policy (`etl_core::retry`).
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
}
