//! Rule evaluation: the [`Engine`] owns the loaded rules and every rule's
//! alert state, evaluates each group when it is due (span/log rules through
//! the storage seam, liveness rules through [`LivenessSource`]) and returns
//! the [`Change`]s for notifications and history.
//!
//! The engine is driven by `task.rs` (its own task, the pipeline's
//! cancellation token) and is itself synchronous and clock-injected, so the
//! unit tests step it on a [`FakeClock`](super::clock::FakeClock).

pub mod inputs;
pub mod liveness;
pub mod state;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use self::liveness::{
    instance_sample, Evidence, Liveness, MassExpiryConfig, INSTANCE_ALERT, MASS_ALERT,
};
use self::state::{Alert, Change, RuleState, Sample, Timing};
use super::labels::Labels;
use super::rules::{Rule, RuleKind, RuleSet};
use super::source::{CallersSource, InstanceView, LivenessSource, LivenessSummary};
use crate::query::{LogStore, TraceStore};

/// The built-in group of the liveness rules.
pub const BUILTIN_GROUP: &str = "skein-builtin";
pub const WATCHDOG_ALERT: &str = "Watchdog";
/// How far back the blast radius looks for callers.
const CALLERS_WINDOW_MS: u64 = 15 * 60 * 1000;
/// How far back it looks for error logs and traces.
/// Registry events wake the liveness rules at most this often: each
/// evaluation reads every expired instance (about 30 ms at 30,000 of them),
/// and a wave of expiries or registrations must not run them back to back.
const MIN_WAKE_GAP_MS: u64 = 100;
const EVIDENCE_WINDOW_MS: u64 = 60 * 60 * 1000;

/// What the engine reads.
#[derive(Clone)]
pub struct EngineDeps {
    pub traces: Arc<dyn TraceStore>,
    pub logs: Arc<dyn LogStore>,
    pub liveness: Arc<dyn LivenessSource>,
    pub callers: Arc<dyn CallersSource>,
}

/// Engine settings.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineConfig {
    pub liveness_interval_ms: u64,
    pub mass: MassExpiryConfig,
    pub watchdog: bool,
    /// Base URL for links in annotations (`last_trace`).
    pub external_url: String,
}

/// Identifies a rule's state: (group, alert).
type RuleId = (String, String);

/// Rules, their state and the evaluation schedule.
pub struct Engine {
    deps: EngineDeps,
    cfg: EngineConfig,
    rules: RuleSet,
    states: BTreeMap<RuleId, RuleState>,
    liveness: Liveness,
    evidence: HashMap<String, Evidence>,
    /// Next due time per group (the built-in group included).
    next_due: BTreeMap<String, u64>,
    /// When the liveness rules were last evaluated.
    liveness_at_ms: u64,
    /// Groups whose last evaluation failed, with the error.
    pub failures: BTreeMap<String, String>,
}

impl Engine {
    pub fn new(deps: EngineDeps, cfg: EngineConfig, rules: RuleSet) -> Engine {
        let mut e = Engine {
            deps,
            cfg,
            rules: RuleSet::default(),
            states: BTreeMap::new(),
            liveness: Liveness::default(),
            evidence: HashMap::new(),
            next_due: BTreeMap::new(),
            liveness_at_ms: 0,
            failures: BTreeMap::new(),
        };
        e.set_rules(rules);
        e
    }

    pub fn rules(&self) -> &RuleSet {
        &self.rules
    }

    /// Replace the rules. State of rules that still exist is kept; alerts of
    /// removed rules are withdrawn.
    pub fn set_rules(&mut self, rules: RuleSet) -> Vec<Change> {
        let mut keep: BTreeSet<RuleId> = BTreeSet::new();
        keep.insert((BUILTIN_GROUP.into(), INSTANCE_ALERT.into()));
        keep.insert((BUILTIN_GROUP.into(), MASS_ALERT.into()));
        keep.insert((BUILTIN_GROUP.into(), WATCHDOG_ALERT.into()));
        for (_, g) in &rules.groups {
            for r in &g.rules {
                keep.insert((g.name.clone(), r.alert.clone()));
            }
        }
        let mut changes = Vec::new();
        let gone: Vec<RuleId> = self
            .states
            .keys()
            .filter(|k| !keep.contains(*k))
            .cloned()
            .collect();
        for id in gone {
            if let Some(mut s) = self.states.remove(&id) {
                changes.extend(s.clear());
            }
        }
        let mut next_due = BTreeMap::new();
        next_due.insert(
            BUILTIN_GROUP.to_string(),
            self.next_due.get(BUILTIN_GROUP).copied().unwrap_or(0),
        );
        for (_, g) in &rules.groups {
            next_due.insert(
                g.name.clone(),
                self.next_due.get(&g.name).copied().unwrap_or(0),
            );
        }
        self.next_due = next_due;
        self.failures.retain(|g, _| rules.group(g).is_some());
        self.rules = rules;
        changes
    }

    /// When the next group is due (Unix ms).
    pub fn next_due_ms(&self) -> u64 {
        self.next_due.values().copied().min().unwrap_or(u64::MAX)
    }

    /// Make the built-in group due now (a registry event arrived), or
    /// [`MIN_WAKE_GAP_MS`] after its last evaluation if that is later.
    pub fn wake_liveness(&mut self, now_ms: u64) {
        let wake = now_ms.max(self.liveness_at_ms + MIN_WAKE_GAP_MS);
        let due = self.next_due.entry(BUILTIN_GROUP.into()).or_insert(wake);
        *due = (*due).min(wake);
    }

    /// Every active alert (pending and firing).
    pub fn active(&self) -> Vec<Alert> {
        self.states
            .values()
            .flat_map(|s| s.alerts.values().cloned())
            .collect()
    }

    /// Evaluate every group due at `now_ms`. Blocks (store queries).
    pub fn evaluate_due(&mut self, now_ms: u64) -> Vec<Change> {
        let due: Vec<String> = self
            .next_due
            .iter()
            .filter(|(_, t)| **t <= now_ms)
            .map(|(g, _)| g.clone())
            .collect();
        let mut changes = Vec::new();
        for group in due {
            let interval = if group == BUILTIN_GROUP {
                self.cfg.liveness_interval_ms
            } else {
                self.rules
                    .group(&group)
                    .map(|(_, g)| g.interval.as_millis() as u64)
                    .unwrap_or(60_000)
            };
            if group == BUILTIN_GROUP {
                changes.extend(self.evaluate_liveness(now_ms));
            } else {
                changes.extend(self.evaluate_group(&group, now_ms));
            }
            self.next_due.insert(group, now_ms + interval.max(1));
        }
        changes
    }

    fn step(
        &mut self,
        id: RuleId,
        timing: Timing,
        samples: Vec<Sample>,
        withdraw: &BTreeSet<String>,
        now_ms: u64,
    ) -> Vec<Change> {
        self.states
            .entry(id)
            .or_default()
            .step(now_ms, &timing, samples, withdraw)
    }

    fn evaluate_liveness(&mut self, now_ms: u64) -> Vec<Change> {
        self.liveness_at_ms = now_ms;
        let interval_ms = self.cfg.liveness_interval_ms;
        let summary = self.deps.liveness.summary();
        let out = self.liveness.evaluate(now_ms, &self.cfg.mass, &summary);
        let overrides = self.rules.instance_down_overrides();

        let expired_keys: BTreeSet<&String> = out.expired.iter().map(|(k, _)| k).collect();
        self.evidence.retain(|k, _| expired_keys.contains(k));
        let mut per_rule: BTreeMap<RuleId, (Timing, Vec<Sample>)> = BTreeMap::new();
        let builtin: RuleId = (BUILTIN_GROUP.into(), INSTANCE_ALERT.into());
        per_rule.insert(
            builtin.clone(),
            (self.timing(BUILTIN_GROUP, None, interval_ms), Vec::new()),
        );
        for (group, rule) in overrides.values() {
            per_rule.insert(
                (group.clone(), rule.alert.clone()),
                (self.timing(group, Some(rule), interval_ms), Vec::new()),
            );
        }
        for (k, inst) in &out.expired {
            if !self.evidence.contains_key(k) {
                let ev = self.evidence_for(inst, now_ms);
                self.evidence.insert(k.clone(), ev);
            }
            let ev = self.evidence.get(k).cloned().unwrap_or_default();
            let (id, sample) = match overrides.get(&inst.service) {
                Some((group, rule)) => {
                    let mut s = instance_sample(&rule.alert, inst, &ev, &rule.labels, now_ms);
                    render_into(rule, &s.labels.clone(), s.value, &mut s.annotations);
                    ((group.clone(), rule.alert.clone()), s)
                }
                None => (
                    builtin.clone(),
                    instance_sample(INSTANCE_ALERT, inst, &ev, &Labels::new(), now_ms),
                ),
            };
            if let Some((_, samples)) = per_rule.get_mut(&id) {
                samples.push(sample);
            }
        }
        let mut changes = Vec::new();
        for (id, (timing, samples)) in per_rule {
            changes.extend(self.step(id, timing, samples, &out.held, now_ms));
        }
        let mass: Vec<Sample> = out.mass.into_iter().collect();
        let t = self.timing(BUILTIN_GROUP, None, interval_ms);
        changes.extend(self.step(
            (BUILTIN_GROUP.into(), MASS_ALERT.into()),
            t.clone(),
            mass,
            &BTreeSet::new(),
            now_ms,
        ));
        let watchdog: Vec<Sample> = if self.cfg.watchdog {
            vec![watchdog_sample()]
        } else {
            Vec::new()
        };
        changes.extend(self.step(
            (BUILTIN_GROUP.into(), WATCHDOG_ALERT.into()),
            t,
            watchdog,
            &BTreeSet::new(),
            now_ms,
        ));
        changes
    }

    fn timing(&self, group: &str, rule: Option<&Rule>, interval_ms: u64) -> Timing {
        Timing {
            group: group.into(),
            for_ms: rule.map(|r| r.for_.as_millis() as u64).unwrap_or(0),
            keep_firing_for_ms: rule
                .map(|r| r.keep_firing_for.as_millis() as u64)
                .unwrap_or(0),
            interval_ms,
        }
    }

    /// Blast radius and the data-plane check for one newly expired instance.
    fn evidence_for(&self, inst: &InstanceView, now_ms: u64) -> Evidence {
        let mut ev = Evidence::default();
        let quiet_after = inst.last_heartbeat_unix_ms + inst.ttl_ms / 2;
        ev.still_serving = match inst.last_traffic_unix_ms {
            Some(t) => t > quiet_after,
            None => inputs::traffic_since(
                &*self.deps.traces,
                &inst.service,
                &inst.instance,
                quiet_after * 1_000_000,
            )
            .unwrap_or_else(|e| {
                tracing::warn!(service = %inst.service, "data-plane check failed: {e}");
                false
            }),
        };
        if let Some(callers) = self
            .deps
            .callers
            .callers(&inst.service, now_ms, CALLERS_WINDOW_MS)
        {
            let text = if callers.is_empty() {
                "none in the last 15m".to_string()
            } else {
                callers
                    .iter()
                    .map(|c| format!("{} ({:.1}/min)", c.service, c.calls_per_minute))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            ev.annotations.insert("callers".into(), text);
        }
        let since_ns = now_ms.saturating_sub(EVIDENCE_WINDOW_MS) * 1_000_000;
        match inputs::last_error_logs(&*self.deps.logs, &inst.service, since_ns, 3) {
            Ok(bodies) if !bodies.is_empty() => {
                ev.annotations
                    .insert("last_errors".into(), bodies.join("\n"));
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(service = %inst.service, "reading last error logs failed: {e}")
            }
        }
        match inputs::last_trace(&*self.deps.traces, &inst.service, since_ns) {
            Ok(Some(id)) => {
                ev.annotations.insert(
                    "last_trace".into(),
                    format!("{}/trace/{id}", self.cfg.external_url.trim_end_matches('/')),
                );
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(service = %inst.service, "finding the last trace failed: {e}"),
        }
        ev
    }

    fn evaluate_group(&mut self, group: &str, now_ms: u64) -> Vec<Change> {
        let Some((_, g)) = self.rules.group(group).cloned() else {
            return Vec::new();
        };
        let interval_ms = g.interval.as_millis() as u64;
        let mut liveness: Option<LivenessSummary> = None;
        let mut changes = Vec::new();
        let mut failure = None;
        for rule in &g.rules {
            if matches!(rule.kind, RuleKind::InstanceDown) {
                continue; // evaluated with the built-in liveness rules
            }
            let samples = match self.samples(rule, now_ms, &mut liveness) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(group, alert = %rule.alert, "rule evaluation failed: {e}");
                    failure = Some(format!("{}: {e}", rule.alert));
                    continue; // keep the state as it is: no false resolve
                }
            };
            let timing = self.timing(group, Some(rule), interval_ms);
            changes.extend(self.step(
                (group.into(), rule.alert.clone()),
                timing,
                samples,
                &BTreeSet::new(),
                now_ms,
            ));
        }
        match failure {
            Some(e) => self.failures.insert(group.into(), e),
            None => self.failures.remove(group),
        };
        changes
    }

    /// The series of one rule whose condition holds now.
    fn samples(
        &self,
        rule: &Rule,
        now_ms: u64,
        liveness: &mut Option<LivenessSummary>,
    ) -> Result<Vec<Sample>, crate::query::QueryError> {
        let window_ns = |w: std::time::Duration| {
            let end = now_ms * 1_000_000;
            (end.saturating_sub(w.as_nanos() as u64), end)
        };
        let service = rule.service.as_deref().unwrap_or("");
        let (value, extra): (Option<f64>, Vec<(&str, String)>) = match &rule.kind {
            RuleKind::InstanceDown => (None, vec![]),
            RuleKind::TooFewInstances { min } => {
                let summary = liveness.get_or_insert_with(|| self.deps.liveness.summary());
                let alive = summary.alive_per_service.get(service).copied().unwrap_or(0) as f64;
                ((alive < *min as f64).then_some(alive), vec![])
            }
            RuleKind::ErrorRate {
                threshold,
                window,
                operation,
            } => {
                let (start, end) = window_ns(*window);
                let s = inputs::sample_spans(
                    &*self.deps.traces,
                    service,
                    operation.as_deref(),
                    start,
                    end,
                )?;
                let v = s.error_rate().filter(|r| r > threshold);
                (
                    v,
                    operation.iter().map(|o| ("operation", o.clone())).collect(),
                )
            }
            RuleKind::Latency {
                quantile,
                threshold,
                window,
                operation,
            } => {
                let (start, end) = window_ns(*window);
                let s = inputs::sample_spans(
                    &*self.deps.traces,
                    service,
                    operation.as_deref(),
                    start,
                    end,
                )?;
                let v = s
                    .quantile_seconds(*quantile)
                    .filter(|q| *q > threshold.as_secs_f64());
                (
                    v,
                    operation.iter().map(|o| ("operation", o.clone())).collect(),
                )
            }
            RuleKind::LogMatch {
                query,
                threshold,
                window,
                min_severity,
            } => {
                let (start, end) = window_ns(*window);
                let n = inputs::count_logs(
                    &*self.deps.logs,
                    query,
                    rule.service.as_deref(),
                    *min_severity,
                    start,
                    end,
                )? as f64;
                ((n > *threshold).then_some(n), vec![])
            }
        };
        let Some(value) = value else {
            return Ok(Vec::new());
        };
        let mut labels = rule.labels.clone();
        labels.insert("alertname".into(), rule.alert.clone());
        if let Some(s) = &rule.service {
            labels.insert("service".into(), s.clone());
        }
        for (k, v) in extra {
            labels.insert(k.into(), v);
        }
        let mut annotations = Labels::new();
        render_into(rule, &labels, value, &mut annotations);
        Ok(vec![Sample {
            key: rule.service.clone().unwrap_or_default(),
            value,
            labels,
            annotations,
        }])
    }
}

/// Render the rule's annotation templates over `annotations` (rule wins).
fn render_into(rule: &Rule, labels: &Labels, value: f64, annotations: &mut Labels) {
    for (k, t) in &rule.annotations {
        annotations.insert(k.clone(), t.render(labels, value));
    }
}

fn watchdog_sample() -> Sample {
    let mut labels = Labels::new();
    labels.insert("alertname".into(), WATCHDOG_ALERT.into());
    labels.insert("severity".into(), "none".into());
    let mut annotations = Labels::new();
    annotations.insert(
        "summary".into(),
        "Always firing while Skein's alert pipeline works; alert when it stops arriving.".into(),
    );
    Sample {
        key: WATCHDOG_ALERT.into(),
        value: 1.0,
        labels,
        annotations,
    }
}

#[cfg(test)]
mod tests;
