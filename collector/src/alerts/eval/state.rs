//! The per-rule state machine: inactive → pending → firing → resolved,
//! with `for` (how long the condition must hold before firing) and
//! `keep_firing_for` (how long a firing alert stays firing after the
//! condition cleared, against flapping). Pure: time comes in as `now_ms`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::alerts::labels::{fingerprint, Labels};

/// The state of an active alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertState {
    Pending,
    Firing,
}

impl AlertState {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
        }
    }
}

/// One alert (one label set of one rule). Cheap to clone: its label and
/// annotation maps are shared, so the copies that the published list, the
/// dispatcher, the history and each evaluation hold cost a pointer each
/// (1,000 firing alerts used to take about 3 MB per copy).
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub group: String,
    pub labels: Arc<Labels>,
    pub annotations: Arc<Labels>,
    pub state: AlertState,
    pub value: f64,
    pub active_at_ms: u64,
    pub fired_at_ms: Option<u64>,
    pub resolved_at_ms: Option<u64>,
    /// Last evaluation at which the condition held.
    pub last_true_ms: u64,
    /// Alertmanager's fingerprint of `labels`.
    pub fingerprint: String,
    /// The evaluation interval of the rule's group (for Alertmanager's `endsAt`).
    pub interval_ms: u64,
}

impl Alert {
    pub fn alertname(&self) -> &str {
        self.labels
            .get("alertname")
            .map(String::as_str)
            .unwrap_or("")
    }

    pub fn service(&self) -> &str {
        self.labels.get("service").map(String::as_str).unwrap_or("")
    }
}

/// A series for which the rule's condition holds at this evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Identity of the series within the rule (e.g. `service/instance`).
    pub key: String,
    pub value: f64,
    /// Full labels (used when the series first appears; then kept).
    pub labels: Labels,
    /// Annotations, refreshed at every evaluation.
    pub annotations: Labels,
}

/// What an evaluation changed, for notifications and history.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// Became firing.
    Firing(Alert),
    /// Was firing, the condition cleared (and `keep_firing_for` passed).
    Resolved(Alert),
    /// Taken away without resolving (held by a mass expiry, rule deleted).
    Withdrawn(Alert),
}

/// `for` and `keep_firing_for` of a rule, and its group, in ms.
#[derive(Debug, Clone, PartialEq)]
pub struct Timing {
    pub group: String,
    pub for_ms: u64,
    pub keep_firing_for_ms: u64,
    pub interval_ms: u64,
}

/// Active alerts of one rule, by series key.
#[derive(Debug, Clone, Default)]
pub struct RuleState {
    pub alerts: BTreeMap<String, Alert>,
}

impl RuleState {
    /// Apply one evaluation: `samples` are the series whose condition holds;
    /// `withdraw` names series to drop silently.
    pub fn step(
        &mut self,
        now_ms: u64,
        timing: &Timing,
        samples: Vec<Sample>,
        withdraw: &BTreeSet<String>,
    ) -> Vec<Change> {
        let mut changes = Vec::new();
        let mut seen = BTreeSet::new();
        for s in samples {
            if withdraw.contains(&s.key) {
                continue;
            }
            seen.insert(s.key.clone());
            let alert = self.alerts.entry(s.key).or_insert_with(|| Alert {
                group: timing.group.clone(),
                fingerprint: fingerprint(&s.labels),
                labels: Arc::new(s.labels),
                annotations: Arc::default(),
                state: AlertState::Pending,
                value: s.value,
                active_at_ms: now_ms,
                fired_at_ms: None,
                resolved_at_ms: None,
                last_true_ms: now_ms,
                interval_ms: timing.interval_ms,
            });
            alert.value = s.value;
            if *alert.annotations != s.annotations {
                alert.annotations = Arc::new(s.annotations);
            }
            alert.last_true_ms = now_ms;
            if alert.state == AlertState::Pending
                && now_ms.saturating_sub(alert.active_at_ms) >= timing.for_ms
            {
                alert.state = AlertState::Firing;
                alert.fired_at_ms = Some(now_ms);
                changes.push(Change::Firing(alert.clone()));
            }
        }
        let gone: Vec<String> = self
            .alerts
            .keys()
            .filter(|k| !seen.contains(*k))
            .cloned()
            .collect();
        for key in gone {
            let Some(alert) = self.alerts.get(&key) else {
                continue;
            };
            if withdraw.contains(&key) {
                if let Some(a) = self.alerts.remove(&key) {
                    if a.state == AlertState::Firing {
                        changes.push(Change::Withdrawn(a));
                    }
                }
                continue;
            }
            match alert.state {
                AlertState::Pending => {
                    self.alerts.remove(&key);
                }
                AlertState::Firing => {
                    if now_ms.saturating_sub(alert.last_true_ms) < timing.keep_firing_for_ms {
                        continue;
                    }
                    if let Some(mut a) = self.alerts.remove(&key) {
                        a.resolved_at_ms = Some(now_ms);
                        changes.push(Change::Resolved(a));
                    }
                }
            }
        }
        changes
    }

    /// Drop every alert (the rule was removed): firing ones are withdrawn.
    pub fn clear(&mut self) -> Vec<Change> {
        std::mem::take(&mut self.alerts)
            .into_values()
            .filter(|a| a.state == AlertState::Firing)
            .map(Change::Withdrawn)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::labels::labels;

    fn timing(for_ms: u64, keep_ms: u64) -> Timing {
        Timing {
            group: "g".into(),
            for_ms,
            keep_firing_for_ms: keep_ms,
            interval_ms: 1000,
        }
    }

    fn sample(v: f64) -> Vec<Sample> {
        vec![Sample {
            key: "checkout".into(),
            value: v,
            labels: labels([("alertname", "E"), ("service", "checkout")]),
            annotations: labels([("summary", "x")]),
        }]
    }

    fn kinds(c: &[Change]) -> Vec<&'static str> {
        c.iter()
            .map(|c| match c {
                Change::Firing(_) => "firing",
                Change::Resolved(_) => "resolved",
                Change::Withdrawn(_) => "withdrawn",
            })
            .collect()
    }

    #[test]
    fn for_delays_firing_and_a_gap_resets_pending() {
        let t = timing(3000, 0);
        let none = BTreeSet::new();
        let mut s = RuleState::default();
        assert!(s.step(0, &t, sample(0.2), &none).is_empty());
        assert_eq!(s.alerts["checkout"].state, AlertState::Pending);
        assert!(s.step(2000, &t, sample(0.2), &none).is_empty());
        // The condition clears while pending: back to inactive, no notification.
        assert!(s.step(2500, &t, vec![], &none).is_empty());
        assert!(s.alerts.is_empty());
        assert!(s.step(3000, &t, sample(0.2), &none).is_empty());
        assert!(s.step(5999, &t, sample(0.2), &none).is_empty());
        let c = s.step(6000, &t, sample(0.3), &none);
        assert_eq!(kinds(&c), ["firing"]);
        let Change::Firing(a) = &c[0] else {
            unreachable!()
        };
        assert_eq!(
            (a.active_at_ms, a.fired_at_ms, a.value),
            (3000, Some(6000), 0.3)
        );
        assert_eq!(a.fingerprint, fingerprint(&a.labels));
        // Still true: no new change.
        assert!(s.step(7000, &t, sample(0.3), &none).is_empty());
        let c = s.step(8000, &t, vec![], &none);
        assert_eq!(kinds(&c), ["resolved"]);
        let Change::Resolved(a) = &c[0] else {
            unreachable!()
        };
        assert_eq!(a.resolved_at_ms, Some(8000));
    }

    #[test]
    fn zero_for_fires_at_once() {
        let mut s = RuleState::default();
        let c = s.step(10, &timing(0, 0), sample(1.0), &BTreeSet::new());
        assert_eq!(kinds(&c), ["firing"]);
    }

    #[test]
    fn keep_firing_for_bridges_a_flap() {
        let t = timing(0, 5000);
        let none = BTreeSet::new();
        let mut s = RuleState::default();
        assert_eq!(kinds(&s.step(0, &t, sample(1.0), &none)), ["firing"]);
        assert!(s.step(1000, &t, vec![], &none).is_empty(), "kept firing");
        assert!(s.step(4999, &t, vec![], &none).is_empty());
        // Back before keep_firing_for ran out: the same alert, no new notification.
        assert!(s.step(5000, &t, sample(1.0), &none).is_empty());
        assert_eq!(s.alerts["checkout"].fired_at_ms, Some(0));
        assert!(s.step(9999, &t, vec![], &none).is_empty());
        assert_eq!(kinds(&s.step(10_000, &t, vec![], &none)), ["resolved"]);
    }

    #[test]
    fn withdrawn_series_leave_without_resolving() {
        let t = timing(0, 60_000);
        let mut s = RuleState::default();
        s.step(0, &t, sample(1.0), &BTreeSet::new());
        let w: BTreeSet<String> = ["checkout".to_string()].into();
        assert_eq!(kinds(&s.step(1000, &t, sample(1.0), &w)), ["withdrawn"]);
        assert!(s.alerts.is_empty());
    }
}
