//! Jittered exponential backoff that honours the server's retry hint.
//!
//! Pure arithmetic with an injectable random source, so tests pin it exactly.

use std::time::Duration;

/// Backoff state between failed attempts.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Self {
        Backoff {
            initial,
            max,
            attempt: 0,
        }
    }

    /// After a success.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// The wait before the next attempt: `initial · 2^attempt` capped at
    /// `max`, scaled by `jitter` ∈ [0.5, 1.5) (full jitter around the mean),
    /// and never shorter than the server's `hint` (Retry-After / RetryInfo).
    pub fn next(&mut self, hint: Option<Duration>, jitter: f64) -> Duration {
        let exp = self
            .initial
            .saturating_mul(1u32 << self.attempt.min(20))
            .min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        let jittered = exp.mul_f64(jitter.clamp(0.5, 1.5)).min(self.max);
        match hint {
            Some(h) => jittered.max(h.min(Duration::from_secs(300))),
            None => jittered,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_caps_jitters_and_honours_the_hint() {
        let ms = Duration::from_millis;
        let mut b = Backoff::new(ms(100), ms(1000));
        assert_eq!(b.next(None, 1.0), ms(100));
        assert_eq!(b.next(None, 1.0), ms(200));
        assert_eq!(b.next(None, 0.5), ms(200));
        assert_eq!(b.next(None, 1.0), ms(800));
        assert_eq!(b.next(None, 1.0), ms(1000));
        assert_eq!(b.next(None, 1.49), ms(1000), "capped after jitter too");
        assert_eq!(
            b.next(Some(ms(3000)), 1.0),
            ms(3000),
            "Retry-After wins when longer"
        );
        b.reset();
        assert_eq!(
            b.next(Some(ms(10)), 1.0),
            ms(100),
            "backoff wins when longer"
        );
    }
}
