//! The demo's failure cycle (pure, time passed in): when the failing
//! instance is "down" — its health check fails, so its agent stops renewing
//! the lease, and it stops answering calls.
//!
//! Outages start at `first`, `first + period`, `first + 2·period`, … and
//! last `outage` each. With the demo's lease (TTL [`LEASE_TTL`], renewed
//! every [`HEARTBEAT_INTERVAL`]) the first `InstanceStoppedRenewing` alert
//! fires about `first + HEARTBEAT_INTERVAL + LEASE_TTL` after start.

use std::time::Duration;

/// The demo instances' lease TTL.
pub const LEASE_TTL: Duration = Duration::from_secs(6);
/// How often the demo agents renew (and probe health).
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(2);

/// When the failing instance is down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureCycle {
    /// Start of the first outage, counted from the demo's start.
    pub first: Duration,
    /// Time between the starts of two outages.
    pub period: Duration,
    /// Length of one outage (shorter than `period`).
    pub outage: Duration,
}

impl FailureCycle {
    /// The demo's cycle: first outage 20 s after start (the alert fires
    /// within about 30 s), 45 s long (long enough to look at it, short enough
    /// to see it resolve), every 3 minutes.
    pub const DEMO: FailureCycle = FailureCycle {
        first: Duration::from_secs(20),
        period: Duration::from_secs(180),
        outage: Duration::from_secs(45),
    };

    /// Whether the instance is down `elapsed` after the demo started.
    pub fn is_down(&self, elapsed: Duration) -> bool {
        match elapsed.checked_sub(self.first) {
            None => false,
            Some(since_first) => {
                let period = self.period.as_millis().max(1);
                since_first.as_millis() % period < self.outage.as_millis()
            }
        }
    }

    /// How long after `elapsed` the state next changes (for log lines).
    pub fn next_change(&self, elapsed: Duration) -> Duration {
        let Some(since_first) = elapsed.checked_sub(self.first) else {
            return self.first - elapsed;
        };
        let period = self.period.as_millis().max(1);
        let into = since_first.as_millis() % period;
        let outage = self.outage.as_millis();
        let left = if into < outage {
            outage - into
        } else {
            period - into
        };
        Duration::from_millis(u64::try_from(left).unwrap_or(u64::MAX))
    }

    /// When the first alert can be expected at the latest: the outage
    /// starts, the next probe sees it, the lease then runs out.
    pub fn first_alert_by(&self) -> Duration {
        self.first + HEARTBEAT_INTERVAL + LEASE_TTL
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn outages_repeat_every_period() {
        let c = FailureCycle {
            first: s(20),
            period: s(100),
            outage: s(30),
        };
        assert!(!c.is_down(s(0)));
        assert!(!c.is_down(Duration::from_millis(19_999)));
        assert!(c.is_down(s(20)));
        assert!(c.is_down(Duration::from_millis(49_999)));
        assert!(!c.is_down(s(50)));
        assert!(!c.is_down(s(119)));
        assert!(c.is_down(s(120)));
        assert!(c.is_down(s(1020)));
        assert!(!c.is_down(s(1050)));
    }

    #[test]
    fn next_change_points_at_the_next_edge() {
        let c = FailureCycle {
            first: s(20),
            period: s(100),
            outage: s(30),
        };
        assert_eq!(c.next_change(s(5)), s(15));
        assert_eq!(c.next_change(s(20)), s(30));
        assert_eq!(c.next_change(s(45)), s(5));
        assert_eq!(c.next_change(s(50)), s(70));
        for t in [0, 19, 20, 49, 50, 119, 120, 555] {
            let before = c.is_down(s(t));
            let edge = s(t) + c.next_change(s(t));
            assert_ne!(c.is_down(edge), before, "t={t}");
            assert_eq!(c.is_down(edge - Duration::from_millis(1)), before, "t={t}");
        }
    }

    #[test]
    fn the_demo_cycle_alerts_within_the_first_minute_and_recovers() {
        let c = FailureCycle::DEMO;
        assert!(c.outage < c.period);
        assert!(c.first_alert_by() <= s(35), "{:?}", c.first_alert_by());
        // The outage outlasts the lease, so the lease really expires.
        assert!(c.outage > HEARTBEAT_INTERVAL + LEASE_TTL + s(10));
        assert!(HEARTBEAT_INTERVAL < LEASE_TTL);
    }
}
