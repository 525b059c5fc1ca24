//! The one retry policy of every command that talks to a service (etl-parse
//! over HTTP, etl-fetch-mail reconnecting to IMAP, etl-push-sheets calling
//! Google): exponential backoff with "full jitter" (AWS Architecture Blog,
//! "Exponential Backoff And Jitter"), never shorter than the server's
//! `Retry-After`.
//!
//! Full jitter rather than a fixed doubling: several cron jobs that lost the
//! same server at the same instant do not come back in lockstep.

use std::time::Duration;

/// Backoff settings: the first delay's ceiling and the largest one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The ceiling of the first retry's delay; it doubles per attempt.
    pub base: Duration,
    /// No delay is longer (unless the server's Retry-After asks for it).
    pub cap: Duration,
}

impl Backoff {
    /// The delay before retry number `attempt` (0 for the first retry): a
    /// uniformly random time up to `base` doubled per attempt, capped at
    /// `cap`, but never shorter than `retry_after`. `unit` is the random
    /// draw in [0, 1] ([`Backoff::delay`] draws it).
    pub fn delay_with(&self, attempt: u32, retry_after: Option<Duration>, unit: f64) -> Duration {
        let ceiling = self
            .base
            .checked_mul(1u32.checked_shl(attempt.min(30)).unwrap_or(u32::MAX))
            .unwrap_or(self.cap)
            .min(self.cap);
        let jitter = ceiling.mul_f64(unit.clamp(0.0, 1.0));
        match retry_after {
            Some(r) => jitter.max(r),
            None => jitter,
        }
    }

    /// [`Backoff::delay_with`] with a random draw.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        self.delay_with(attempt, retry_after, rand::random::<f64>())
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
    fn doubles_to_the_cap_with_full_jitter_and_honours_retry_after() {
        let s = Duration::from_secs;
        let b = Backoff {
            base: s(1),
            cap: s(64),
        };
        assert_eq!(b.delay_with(0, None, 1.0), s(1));
        assert_eq!(b.delay_with(3, None, 1.0), s(8));
        assert_eq!(b.delay_with(10, None, 1.0), s(64));
        assert_eq!(b.delay_with(40, None, 1.0), s(64));
        assert_eq!(b.delay_with(3, None, 0.5), s(4));
        assert_eq!(b.delay_with(3, None, 0.0), s(0));
        assert_eq!(b.delay_with(0, Some(s(5)), 0.5), s(5));
        for attempt in 0..20 {
            assert!(b.delay(attempt, None) <= s(64));
        }
        assert_eq!(parse_retry_after("7"), Some(s(7)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(s(0))
        );
        assert_eq!(parse_retry_after("soon"), None);
    }
}
