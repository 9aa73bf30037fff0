//! Grouping, de-duplication and timing of notifications (Alertmanager's
//! model, inside Skein): alerts are grouped by `alertname` + `service`; a
//! group with news (an alert firing or resolving) is sent `group_wait` after
//! the first news, and re-sent every `repeat_interval` while it has firing
//! alerts. Silenced alerts are left out. Separately, every firing alert is
//! pushed to Alertmanager receivers at each evaluation interval with
//! `endsAt = now + 4 × interval`, and resolved ones once with their end time.
//! Pure and clock-free: the caller passes `now_ms`.

use std::collections::{BTreeMap, HashMap};

use crate::alerts::eval::state::{Alert, AlertState, Change};
use crate::alerts::labels::Labels;

/// Timings of webhook notifications.
#[derive(Debug, Clone, PartialEq)]
pub struct DispatchConfig {
    pub group_wait_ms: u64,
    pub repeat_interval_ms: u64,
}

#[derive(Debug, Clone)]
struct Entry {
    alert: Alert,
    resolved: bool,
    /// Was a firing notification sent for it?
    notified_firing: bool,
    silenced: bool,
}

#[derive(Debug, Clone, Default)]
struct Group {
    alerts: BTreeMap<String, Entry>,
    flush_at: Option<u64>,
    last_flush_ms: Option<u64>,
}

/// One webhook notification to send.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupNotification {
    pub group_labels: Labels,
    /// Alerts with whether each is resolved.
    pub alerts: Vec<(Alert, bool)>,
}

/// The dispatcher's state.
#[derive(Debug, Default)]
pub struct Dispatcher {
    cfg: Option<DispatchConfig>,
    groups: BTreeMap<(String, String), Group>,
    /// Alertmanager pushes: fingerprint → last push time.
    am_pushed: HashMap<String, u64>,
}

fn group_of(a: &Alert) -> (String, String) {
    (a.alertname().to_string(), a.service().to_string())
}

impl Dispatcher {
    pub fn new(cfg: DispatchConfig) -> Self {
        Dispatcher {
            cfg: Some(cfg),
            ..Dispatcher::default()
        }
    }

    fn cfg(&self) -> DispatchConfig {
        self.cfg.clone().unwrap_or(DispatchConfig {
            group_wait_ms: 5000,
            repeat_interval_ms: 4 * 3600 * 1000,
        })
    }

    /// Take in an evaluation's changes and the current firing alerts with
    /// their silence state.
    pub fn apply(&mut self, changes: &[Change], firing: &[(Alert, bool)], now_ms: u64) {
        let wait = self.cfg().group_wait_ms;
        for c in changes {
            match c {
                Change::Firing(a) => {
                    let g = self.groups.entry(group_of(a)).or_default();
                    g.alerts.insert(
                        a.fingerprint.clone(),
                        Entry {
                            alert: a.clone(),
                            resolved: false,
                            notified_firing: false,
                            silenced: false,
                        },
                    );
                    g.flush_at.get_or_insert(now_ms + wait);
                }
                Change::Resolved(a) | Change::Withdrawn(a) => {
                    let Some(g) = self.groups.get_mut(&group_of(a)) else {
                        continue;
                    };
                    let Some(e) = g.alerts.get_mut(&a.fingerprint) else {
                        continue;
                    };
                    if e.notified_firing && !e.silenced {
                        e.alert = a.clone();
                        if e.alert.resolved_at_ms.is_none() {
                            e.alert.resolved_at_ms = Some(now_ms);
                        }
                        e.resolved = true;
                        g.flush_at.get_or_insert(now_ms + wait);
                    } else {
                        g.alerts.remove(&a.fingerprint);
                    }
                }
            }
        }
        for (a, silenced) in firing {
            let Some(g) = self.groups.get_mut(&group_of(a)) else {
                continue;
            };
            let Some(e) = g.alerts.get_mut(&a.fingerprint) else {
                continue;
            };
            if e.resolved {
                continue;
            }
            e.alert.annotations = a.annotations.clone();
            e.alert.value = a.value;
            if e.silenced && !silenced && !e.notified_firing {
                g.flush_at.get_or_insert(now_ms + wait);
            }
            e.silenced = *silenced;
        }
        self.groups.retain(|_, g| !g.alerts.is_empty());
    }

    /// Webhook notifications due at `now_ms`.
    pub fn due(&mut self, now_ms: u64) -> Vec<GroupNotification> {
        let repeat = self.cfg().repeat_interval_ms;
        let mut out = Vec::new();
        for ((alertname, service), g) in &mut self.groups {
            let repeat_due = g.last_flush_ms.is_some_and(|t| now_ms >= t + repeat)
                && g.alerts.values().any(|e| !e.resolved && !e.silenced);
            let news_due = g.flush_at.is_some_and(|t| now_ms >= t);
            if !news_due && !repeat_due {
                continue;
            }
            g.flush_at = None;
            let alerts: Vec<(Alert, bool)> = g
                .alerts
                .values()
                .filter(|e| {
                    if e.resolved {
                        e.notified_firing
                    } else {
                        !e.silenced
                    }
                })
                .map(|e| (e.alert.clone(), e.resolved))
                .collect();
            g.alerts.retain(|_, e| !e.resolved);
            for e in g.alerts.values_mut() {
                if !e.silenced {
                    e.notified_firing = true;
                }
            }
            if alerts.is_empty() {
                continue;
            }
            g.last_flush_ms = Some(now_ms);
            let mut group_labels = Labels::new();
            group_labels.insert("alertname".into(), alertname.clone());
            if !service.is_empty() {
                group_labels.insert("service".into(), service.clone());
            }
            out.push(GroupNotification {
                group_labels,
                alerts,
            });
        }
        self.groups.retain(|_, g| !g.alerts.is_empty());
        out
    }

    /// When the next webhook notification may be due.
    pub fn next_due_ms(&self) -> u64 {
        let repeat = self.cfg().repeat_interval_ms;
        self.groups
            .values()
            .filter_map(|g| match (g.flush_at, g.last_flush_ms) {
                (Some(t), _) => Some(t),
                (None, Some(t)) => Some(t + repeat),
                (None, None) => None,
            })
            .min()
            .unwrap_or(u64::MAX)
    }

    /// Alerts to push to Alertmanager now, each with its `endsAt`: firing,
    /// unsilenced alerts not pushed within their interval (`now + 4 ×
    /// interval`), and alerts that resolved, were withdrawn or got silenced
    /// (`endsAt` = when that happened, so Alertmanager resolves them).
    pub fn alertmanager_batch(
        &mut self,
        changes: &[Change],
        active: &[(Alert, bool)],
        now_ms: u64,
    ) -> Vec<(Alert, u64)> {
        let mut out = Vec::new();
        for c in changes {
            if let Change::Resolved(a) | Change::Withdrawn(a) = c {
                if self.am_pushed.remove(&a.fingerprint).is_some() {
                    out.push((a.clone(), a.resolved_at_ms.unwrap_or(now_ms)));
                }
            }
        }
        for (a, silenced) in active {
            if a.state != AlertState::Firing {
                continue;
            }
            if *silenced {
                if self.am_pushed.remove(&a.fingerprint).is_some() {
                    out.push((a.clone(), now_ms));
                }
                continue;
            }
            let interval = a.interval_ms.max(1);
            let stale = self
                .am_pushed
                .get(&a.fingerprint)
                .is_none_or(|t| now_ms >= t + interval);
            if stale {
                self.am_pushed.insert(a.fingerprint.clone(), now_ms);
                out.push((a.clone(), now_ms + 4 * interval));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::labels::{fingerprint, labels};

    fn alert(service: &str, instance: &str) -> Alert {
        let l = labels([
            ("alertname", "Down"),
            ("service", service),
            ("instance", instance),
        ]);
        Alert {
            group: "g".into(),
            fingerprint: fingerprint(&l),
            labels: l.into(),
            annotations: Default::default(),
            state: AlertState::Firing,
            value: 1.0,
            active_at_ms: 0,
            fired_at_ms: Some(0),
            resolved_at_ms: None,
            last_true_ms: 0,
            interval_ms: 1000,
        }
    }

    fn resolved(mut a: Alert, at: u64) -> Alert {
        a.resolved_at_ms = Some(at);
        a
    }

    fn d() -> Dispatcher {
        Dispatcher::new(DispatchConfig {
            group_wait_ms: 5000,
            repeat_interval_ms: 60_000,
        })
    }

    #[test]
    fn groups_wait_then_send_once_and_repeat() {
        let mut d = d();
        let (a, b, c) = (
            alert("checkout", "1"),
            alert("checkout", "2"),
            alert("cart", "1"),
        );
        d.apply(&[Change::Firing(a.clone())], &[], 0);
        d.apply(
            &[Change::Firing(b.clone()), Change::Firing(c.clone())],
            &[],
            2000,
        );
        assert!(d.due(4999).is_empty(), "group_wait not over");
        let sent = d.due(5000);
        assert_eq!(sent.len(), 1, "checkout's group; cart's waits until 7000");
        assert_eq!(sent[0].alerts.len(), 2);
        assert_eq!(
            sent[0].group_labels,
            labels([("alertname", "Down"), ("service", "checkout")])
        );
        assert_eq!(d.due(7000).len(), 1);
        // Nothing new: no duplicate until the repeat interval.
        assert!(d.due(30_000).is_empty());
        assert_eq!(d.next_due_ms(), 65_000);
        let again = d.due(65_000);
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].alerts.len(), 2);
    }

    #[test]
    fn resolves_are_sent_once_and_unnotified_ones_not_at_all() {
        let mut d = d();
        let (a, b) = (alert("checkout", "1"), alert("checkout", "2"));
        d.apply(&[Change::Firing(a.clone())], &[], 0);
        assert_eq!(d.due(5000).len(), 1);
        d.apply(&[Change::Firing(b.clone())], &[], 6000);
        // b resolves before it was ever sent: it vanishes silently.
        d.apply(
            &[
                Change::Resolved(resolved(b, 7000)),
                Change::Resolved(resolved(a.clone(), 7000)),
            ],
            &[],
            7000,
        );
        let sent = d.due(12_000);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].alerts.len(), 1);
        assert_eq!(sent[0].alerts[0], (resolved(a, 7000), true));
        assert!(d.due(100_000).is_empty(), "resolved is sent once");
        assert_eq!(d.next_due_ms(), u64::MAX);
    }

    #[test]
    fn silenced_alerts_are_not_sent() {
        let mut d = d();
        let a = alert("checkout", "1");
        d.apply(&[Change::Firing(a.clone())], &[(a.clone(), true)], 0);
        assert!(d.due(5000).is_empty());
        assert!(d.due(500_000).is_empty(), "no repeat for silenced alerts");
        // The silence ends: it is sent after group_wait.
        d.apply(&[], &[(a.clone(), false)], 600_000);
        assert_eq!(d.due(605_000).len(), 1);
    }

    #[test]
    fn alertmanager_pushes_refresh_and_resolve() {
        let mut d = d();
        let a = alert("checkout", "1");
        let first = d.alertmanager_batch(&[], &[(a.clone(), false)], 10_000);
        assert_eq!(
            first,
            vec![(a.clone(), 14_000)],
            "endsAt = now + 4 × interval"
        );
        assert!(d
            .alertmanager_batch(&[], &[(a.clone(), false)], 10_500)
            .is_empty());
        assert_eq!(
            d.alertmanager_batch(&[], &[(a.clone(), false)], 11_000)
                .len(),
            1
        );
        let gone = d.alertmanager_batch(
            &[Change::Resolved(resolved(a.clone(), 12_000))],
            &[],
            12_000,
        );
        assert_eq!(gone, vec![(resolved(a, 12_000), 12_000)]);
    }
}
