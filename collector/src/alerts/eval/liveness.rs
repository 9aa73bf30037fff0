//! The built-in liveness rules over the registry's view:
//! `InstanceStoppedRenewing` (one alert per expired instance, with the
//! evidence only Skein has: callers, last error logs, last trace, last
//! heartbeat; severity `warning` when the instance still serves traffic)
//! and `RegistryMassExpiry` (many instances expiring at once: the individual
//! alerts are held and one alert names the count and what they share, until
//! `--mass-expiry-hold` passes). Instances always expire: holding only
//! affects alerts, never the registry.

use std::collections::{BTreeMap, BTreeSet};

use super::state::Sample;
use crate::alerts::clock::rfc3339;
use crate::alerts::labels::Labels;
use crate::alerts::source::{InstanceState, InstanceView, LivenessSummary};

pub const INSTANCE_ALERT: &str = "InstanceStoppedRenewing";
pub const MASS_ALERT: &str = "RegistryMassExpiry";
/// Metadata labels compared across a mass expiry.
pub const SHARED_KEYS: [&str; 3] = ["agent", "host", "zone"];

/// Mass-expiry thresholds.
#[derive(Debug, Clone, PartialEq)]
pub struct MassExpiryConfig {
    /// More than this share of live instances…
    pub ratio: f64,
    /// …and at least 3, expiring within this window…
    pub window_ms: u64,
    /// …hold individual alerts for this long.
    pub hold_ms: u64,
}

/// Evidence attached to one expired instance (computed once per expiry).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Evidence {
    pub still_serving: bool,
    /// Extra annotations: callers, last_errors, last_trace.
    pub annotations: Labels,
}

/// An ongoing mass expiry.
#[derive(Debug, Clone, PartialEq)]
struct Mass {
    since_ms: u64,
    /// `service/instance` keys whose alerts are held.
    held: BTreeSet<String>,
}

/// What one liveness evaluation yields.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LivenessOutput {
    /// Expired instances to alert on (not held), by key.
    pub expired: Vec<(String, InstanceView)>,
    /// Keys held by a mass expiry (their alerts are withdrawn).
    pub held: BTreeSet<String>,
    /// The `RegistryMassExpiry` sample, while one is ongoing.
    pub mass: Option<Sample>,
}

/// The mass-expiry detector's state.
#[derive(Debug, Default)]
pub struct Liveness {
    mass: Option<Mass>,
}

pub fn key(i: &InstanceView) -> String {
    format!("{}/{}", i.service, i.instance)
}

impl Liveness {
    pub fn evaluate(
        &mut self,
        now_ms: u64,
        cfg: &MassExpiryConfig,
        summary: &LivenessSummary,
    ) -> LivenessOutput {
        let expired: Vec<&InstanceView> = summary
            .not_alive
            .iter()
            .filter(|i| i.state == InstanceState::Expired)
            .collect();
        let alive = summary.alive();
        let since = now_ms.saturating_sub(cfg.window_ms);
        let recent: Vec<&InstanceView> = expired
            .iter()
            .copied()
            .filter(|i| i.expired_at_unix_ms.unwrap_or(0) >= since)
            .collect();
        let live_before = alive + recent.len();
        let triggered = recent.len() >= 3 && recent.len() as f64 > cfg.ratio * live_before as f64;

        if self.mass.is_none() && triggered {
            self.mass = Some(Mass {
                since_ms: now_ms,
                held: BTreeSet::new(),
            });
        }
        let expired_keys: BTreeSet<String> = expired.iter().map(|i| key(i)).collect();
        if let Some(m) = &mut self.mass {
            // Everything that expired from one window before the start on is held.
            let from = m.since_ms.saturating_sub(cfg.window_ms);
            for i in &expired {
                if i.expired_at_unix_ms.unwrap_or(0) >= from {
                    m.held.insert(key(i));
                }
            }
            m.held.retain(|k| expired_keys.contains(k));
            if m.held.is_empty() {
                self.mass = None;
            }
        }

        let mut out = LivenessOutput::default();
        let released = self
            .mass
            .as_ref()
            .is_none_or(|m| now_ms.saturating_sub(m.since_ms) >= cfg.hold_ms);
        if let Some(m) = &self.mass {
            if !released {
                out.held = m.held.clone();
            }
            let held: Vec<&InstanceView> = expired
                .iter()
                .copied()
                .filter(|i| m.held.contains(&key(i)))
                .collect();
            out.mass = Some(mass_sample(m, cfg, &held, alive, released));
        }
        for i in expired {
            let k = key(i);
            if !out.held.contains(&k) {
                out.expired.push((k, i.clone()));
            }
        }
        out
    }
}

fn mass_sample(
    m: &Mass,
    cfg: &MassExpiryConfig,
    held: &[&InstanceView],
    alive: usize,
    released: bool,
) -> Sample {
    let mut shared = Vec::new();
    for k in SHARED_KEYS {
        let values: BTreeSet<Option<&String>> = held.iter().map(|i| i.metadata.get(k)).collect();
        if let [Some(v)] = values.into_iter().collect::<Vec<_>>()[..] {
            shared.push(format!("{k}={v}"));
        }
    }
    let mut per_service: BTreeMap<&str, usize> = BTreeMap::new();
    for i in held {
        *per_service.entry(i.service.as_str()).or_default() += 1;
    }
    let services: Vec<String> = per_service
        .iter()
        .map(|(s, n)| format!("{s} ({n})"))
        .collect();
    let shared_text = if shared.is_empty() {
        "no common agent, host or zone".to_string()
    } else {
        shared.join(", ")
    };
    let hold_until = rfc3339(m.since_ms + cfg.hold_ms);
    let held_text = if released {
        "individual alerts released".to_string()
    } else {
        format!("individual alerts held until {hold_until}")
    };
    let mut annotations = Labels::new();
    annotations.insert(
        "summary".into(),
        format!(
            "{} instances expired at once ({} still alive); shared: {shared_text}; {held_text}",
            held.len(),
            alive
        ),
    );
    annotations.insert("count".into(), held.len().to_string());
    annotations.insert("shared".into(), shared_text);
    annotations.insert("services".into(), services.join(", "));
    annotations.insert("held_until".into(), hold_until);
    let mut labels = Labels::new();
    labels.insert("alertname".into(), MASS_ALERT.into());
    labels.insert("severity".into(), "critical".into());
    Sample {
        key: MASS_ALERT.into(),
        value: held.len() as f64,
        labels,
        annotations,
    }
}

/// The `InstanceStoppedRenewing` (or override) sample of one expired instance.
pub fn instance_sample(
    alertname: &str,
    i: &InstanceView,
    evidence: &Evidence,
    extra_labels: &Labels,
    now_ms: u64,
) -> Sample {
    let mut labels = Labels::new();
    labels.insert("severity".into(), "critical".into());
    labels.extend(extra_labels.iter().map(|(k, v)| (k.clone(), v.clone())));
    labels.insert("alertname".into(), alertname.into());
    labels.insert("service".into(), i.service.clone());
    labels.insert("instance".into(), i.instance.clone());
    if evidence.still_serving {
        labels.insert("severity".into(), "warning".into());
    }
    let mut a = evidence.annotations.clone();
    let who = format!("{}/{}", i.service, i.instance);
    let summary = if evidence.still_serving {
        format!("{who}: heartbeats lost, still serving traffic")
    } else {
        format!(
            "{who} stopped renewing its lease (ttl {}s)",
            i.ttl_ms as f64 / 1000.0
        )
    };
    a.insert("summary".into(), summary);
    a.insert(
        "last_heartbeat".into(),
        format!(
            "revision {} at {}",
            i.heartbeat_revision,
            rfc3339(i.last_heartbeat_unix_ms)
        ),
    );
    if !i.metadata.is_empty() {
        let md: Vec<String> = i.metadata.iter().map(|(k, v)| format!("{k}={v}")).collect();
        a.insert("metadata".into(), md.join(", "));
    }
    Sample {
        key: key(i),
        value: now_ms.saturating_sub(i.last_heartbeat_unix_ms) as f64 / 1000.0,
        labels,
        annotations: a,
    }
}

#[cfg(test)]
mod tests {
    fn sum(v: &[InstanceView]) -> LivenessSummary {
        LivenessSummary::from_instances(v.to_vec())
    }

    use super::*;

    fn inst(n: usize, state: InstanceState, expired_at: Option<u64>, host: &str) -> InstanceView {
        InstanceView {
            service: "svc".into(),
            instance: format!("i{n}"),
            state,
            health: "passing".into(),
            last_heartbeat_unix_ms: 1000,
            heartbeat_revision: 7,
            ttl_ms: 2000,
            expired_at_unix_ms: expired_at,
            last_traffic_unix_ms: None,
            metadata: [
                ("host".to_string(), host.to_string()),
                ("zone".to_string(), format!("z{}", n % 2)),
            ]
            .into(),
        }
    }

    fn cfg() -> MassExpiryConfig {
        MassExpiryConfig {
            ratio: 0.3,
            window_ms: 30_000,
            hold_ms: 300_000,
        }
    }

    /// 30 instances; `dead` of them expired at `at`.
    fn fleet(dead: usize, at: u64) -> Vec<InstanceView> {
        (0..30)
            .map(|n| {
                if n < dead {
                    inst(n, InstanceState::Expired, Some(at), "h1")
                } else {
                    inst(n, InstanceState::Alive, None, "h2")
                }
            })
            .collect()
    }

    #[test]
    fn a_few_expiries_alert_individually() {
        let mut l = Liveness::default();
        let out = l.evaluate(10_000, &cfg(), &sum(&fleet(2, 9_000)));
        assert_eq!(out.expired.len(), 2);
        assert!(out.mass.is_none() && out.held.is_empty());
    }

    #[test]
    fn mass_expiry_holds_then_releases() {
        let mut l = Liveness::default();
        let out = l.evaluate(10_000, &cfg(), &sum(&fleet(20, 9_500)));
        assert!(out.expired.is_empty(), "all 20 held");
        assert_eq!(out.held.len(), 20);
        let mass = out.mass.expect("mass alert");
        assert_eq!(mass.value, 20.0);
        assert_eq!(
            mass.annotations["shared"], "host=h1",
            "zone differs, host is shared"
        );
        assert!(mass.annotations["summary"].starts_with("20 instances expired at once"));

        // One more expires later, during the hold: held too.
        let mut f = fleet(20, 9_500);
        f[25] = inst(25, InstanceState::Expired, Some(100_000), "h2");
        let out = l.evaluate(100_000, &cfg(), &sum(&f));
        assert_eq!(out.held.len(), 21);
        assert_eq!(out.mass.as_ref().map(|m| m.value), Some(21.0));
        assert_eq!(
            out.mass.as_ref().map(|m| m.annotations["shared"].as_str()),
            Some("no common agent, host or zone")
        );

        // Past the hold, the condition persists: individual alerts are released.
        let out = l.evaluate(310_000, &cfg(), &sum(&f));
        assert!(out.held.is_empty());
        assert_eq!(out.expired.len(), 21);
        assert!(
            out.mass.is_some(),
            "the mass alert stays while they are expired"
        );

        // Everyone back: the episode ends.
        let out = l.evaluate(320_000, &cfg(), &sum(&fleet(0, 0)));
        assert!(out.mass.is_none() && out.expired.is_empty());
    }

    #[test]
    fn instances_still_serving_are_warnings() {
        let i = inst(1, InstanceState::Expired, Some(3000), "h");
        let ev = Evidence {
            still_serving: true,
            annotations: Labels::new(),
        };
        let s = instance_sample(INSTANCE_ALERT, &i, &ev, &Labels::new(), 4000);
        assert_eq!(s.labels["severity"], "warning");
        assert!(s.annotations["summary"].contains("heartbeats lost, still serving traffic"));
        assert_eq!(
            s.annotations["last_heartbeat"],
            "revision 7 at 1970-01-01T00:00:01.000Z"
        );
        assert_eq!(s.value, 3.0);
        let s = instance_sample(
            INSTANCE_ALERT,
            &i,
            &Evidence::default(),
            &Labels::new(),
            4000,
        );
        assert_eq!(s.labels["severity"], "critical");
        assert_eq!(s.labels["alertname"], INSTANCE_ALERT);
    }
}
