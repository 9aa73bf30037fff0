//! Engine tests on a fake clock, with in-memory stores, registry and
//! dependency graph (mocks are fine inside one module's unit tests).

use std::collections::BTreeMap;
use std::sync::Arc;

use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{status::StatusCode, Span, Status};
use parking_lot::Mutex;

use super::liveness::{MassExpiryConfig, INSTANCE_ALERT, MASS_ALERT};
use super::state::{AlertState, Change};
use super::*;
use crate::alerts::rules::{parse_group_list, Origin};
use crate::alerts::source::{Caller, InstanceState, InstanceView, RegistryEvent};
use crate::query::{
    LogQuery, LogRow, Operation, QueryError, SpanKind, SpanRecord, TraceId, TraceQuery,
};

#[derive(Default)]
struct MemTraces(Mutex<Vec<SpanRecord>>);

impl TraceStore for MemTraces {
    fn services(&self) -> Result<Vec<String>, QueryError> {
        Ok(vec![])
    }
    fn operations(&self, _: &str, _: Option<SpanKind>) -> Result<Vec<Operation>, QueryError> {
        Ok(vec![])
    }
    fn trace(&self, id: &TraceId) -> Result<Vec<SpanRecord>, QueryError> {
        Ok(self
            .0
            .lock()
            .iter()
            .filter(|r| r.span.trace_id == id)
            .cloned()
            .collect())
    }
    fn find_trace_ids(&self, q: &TraceQuery) -> Result<Vec<TraceId>, QueryError> {
        let mut ids: Vec<TraceId> = Vec::new();
        for r in self.0.lock().iter().rev() {
            let t = r.span.start_time_unix_nano;
            let ok = q.service.as_deref().is_none_or(|s| r.service_name() == s)
                && q.start_unix_nano.is_none_or(|s| t >= s)
                && q.end_unix_nano.is_none_or(|e| t <= e);
            let Ok(id) = TraceId::try_from(r.span.trace_id.as_slice()) else {
                continue;
            };
            if ok && !ids.contains(&id) {
                ids.push(id);
            }
        }
        ids.truncate(q.limit);
        Ok(ids)
    }
    fn search_traces(
        &self,
        _: &crate::query::TraceSearch,
    ) -> Result<crate::query::TracePage, QueryError> {
        Err(QueryError::Invalid(
            "the alert engine never searches traces".into(),
        ))
    }
}

#[derive(Default)]
struct MemLogs(Mutex<Vec<LogRow>>);

impl LogStore for MemLogs {
    fn search_logs(&self, q: &LogQuery) -> Result<Vec<LogRow>, QueryError> {
        Ok(self
            .0
            .lock()
            .iter()
            .filter(|r| q.service.as_deref().is_none_or(|s| r.service_name() == s))
            .filter(|r| q.min_severity.is_none_or(|m| r.record.severity_number >= m))
            .filter(|r| q.start_unix_nano.is_none_or(|s| r.record.time_unix_nano >= s))
            .filter(|r| q.end_unix_nano.is_none_or(|e| r.record.time_unix_nano <= e))
            .filter(|r| {
                q.text.as_deref().is_none_or(|t| {
                    matches!(r.record.body.as_ref().and_then(|b| b.value.as_ref()), Some(Value::StringValue(s)) if s.contains(t))
                })
            })
            .take(q.limit)
            .cloned()
            .collect())
    }
}

#[derive(Default)]
struct MemRegistry(Mutex<Vec<InstanceView>>);

impl LivenessSource for MemRegistry {
    fn summary(&self) -> LivenessSummary {
        LivenessSummary::from_instances(self.0.lock().clone())
    }
    fn subscribe(&self) -> Option<tokio::sync::broadcast::Receiver<RegistryEvent>> {
        None
    }
}

struct Graph;

impl CallersSource for Graph {
    fn callers(&self, service: &str, _: u64, _: u64) -> Option<Vec<Caller>> {
        (service == "inventory").then(|| {
            vec![Caller {
                service: "checkout".into(),
                calls_per_minute: 12.0,
            }]
        })
    }
}

fn resource(service: &str) -> Resource {
    Resource {
        attributes: vec![KeyValue {
            key: "service.name".into(),
            value: Some(AnyValue {
                value: Some(Value::StringValue(service.into())),
            }),
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn span(service: &str, n: u32, start_ms: u64, dur_ms: u64, error: bool) -> SpanRecord {
    let mut trace_id = vec![0u8; 16];
    trace_id[12..].copy_from_slice(&n.to_be_bytes());
    SpanRecord {
        resource: resource(service),
        scope: None,
        span: Span {
            trace_id,
            span_id: vec![1; 8],
            name: "GET /cart".into(),
            start_time_unix_nano: start_ms * 1_000_000,
            end_time_unix_nano: (start_ms + dur_ms) * 1_000_000,
            status: error.then(|| Status {
                code: StatusCode::Error as i32,
                message: String::new(),
            }),
            ..Default::default()
        },
    }
}

fn log(service: &str, at_ms: u64, severity: i32, body: &str) -> LogRow {
    LogRow {
        resource: resource(service),
        scope: None,
        record: LogRecord {
            time_unix_nano: at_ms * 1_000_000,
            severity_number: severity,
            body: Some(AnyValue {
                value: Some(Value::StringValue(body.into())),
            }),
            ..Default::default()
        },
    }
}

fn inst(service: &str, n: usize, state: InstanceState, expired_at: Option<u64>) -> InstanceView {
    InstanceView {
        service: service.into(),
        instance: format!("{service}-{n}"),
        state,
        health: "passing".into(),
        last_heartbeat_unix_ms: 1_000,
        heartbeat_revision: 41,
        ttl_ms: 2_000,
        expired_at_unix_ms: expired_at,
        last_traffic_unix_ms: Some(0),
        metadata: BTreeMap::new(),
    }
}

struct World {
    traces: Arc<MemTraces>,
    logs: Arc<MemLogs>,
    registry: Arc<MemRegistry>,
    engine: Engine,
}

const T0: u64 = 1_000_000;

fn world(rules_yaml: &str, watchdog: bool) -> World {
    let traces = Arc::new(MemTraces::default());
    let logs = Arc::new(MemLogs::default());
    let registry = Arc::new(MemRegistry::default());
    let deps = EngineDeps {
        traces: traces.clone(),
        logs: logs.clone(),
        liveness: registry.clone(),
        callers: Arc::new(Graph),
    };
    let mut set = RuleSet::default();
    for g in parse_group_list("test.yaml", rules_yaml).unwrap() {
        set.add(Origin::Api, g).unwrap();
    }
    let cfg = EngineConfig {
        liveness_interval_ms: 1000,
        mass: MassExpiryConfig {
            ratio: 0.3,
            window_ms: 30_000,
            hold_ms: 60_000,
        },
        watchdog,
        external_url: "http://skein:16686".into(),
    };
    World {
        traces,
        logs,
        registry,
        engine: Engine::new(deps, cfg, set),
    }
}

fn firing_names(changes: &[Change]) -> Vec<String> {
    changes
        .iter()
        .filter_map(|c| match c {
            Change::Firing(a) => Some(a.alertname().to_string()),
            _ => None,
        })
        .collect()
}

fn resolved_names(changes: &[Change]) -> Vec<String> {
    changes
        .iter()
        .filter_map(|c| match c {
            Change::Resolved(a) => Some(a.alertname().to_string()),
            _ => None,
        })
        .collect()
}

const ERROR_RULES: &str = "
groups:
  - name: checkout
    interval: 1s
    rules:
      - alert: CheckoutErrors
        kind: error_rate
        service: checkout
        threshold: 0.2
        window: 10s
        for: 3s
        labels: {severity: page}
        annotations:
          summary: '{{ $labels.service }} error rate is {{ $value }}'
";

#[test]
fn error_rate_fires_after_for_and_resolves() {
    let mut w = world(ERROR_RULES, false);
    // 1 error in 4 spans: 0.25 > 0.2.
    for (n, err) in [(1, true), (2, false), (3, false), (4, false)] {
        w.traces
            .0
            .lock()
            .push(span("checkout", n, T0 - 1000, 5, err));
    }
    assert!(w.engine.evaluate_due(T0).is_empty());
    let pending = w.engine.active();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].state, AlertState::Pending);
    assert!(
        w.engine.evaluate_due(T0 + 2000).is_empty(),
        "for: 3s not over"
    );
    let c = w.engine.evaluate_due(T0 + 3000);
    assert_eq!(firing_names(&c), ["CheckoutErrors"]);
    let a = &w.engine.active()[0];
    assert_eq!(a.labels["severity"], "page");
    assert_eq!(a.labels["service"], "checkout");
    assert_eq!(a.annotations["summary"], "checkout error rate is 0.25");
    // The errors age out of the 10 s window: resolved.
    let c = w.engine.evaluate_due(T0 + 9500);
    assert_eq!(resolved_names(&c), ["CheckoutErrors"]);
    assert!(w.engine.active().is_empty());
}

#[test]
fn latency_and_log_match_rules() {
    let mut w = world(
        "
groups:
  - name: g
    interval: 1s
    rules:
      - {alert: Slow, kind: latency, service: cart, quantile: 0.9, threshold: 100ms, window: 1m}
      - {alert: Panics, kind: log_match, query: panic, threshold: 1, window: 1m, for: 1s}
",
        false,
    );
    for n in 0..10 {
        w.traces.0.lock().push(span(
            "cart",
            n,
            T0 - 5000,
            if n < 8 { 10 } else { 500 },
            false,
        ));
    }
    // p90 of [10 ×8, 500 ×2] is 500 ms > 100 ms.
    let c = w.engine.evaluate_due(T0);
    assert_eq!(firing_names(&c), ["Slow"]);
    assert_eq!(w.engine.active()[0].value, 0.5);
    w.logs
        .0
        .lock()
        .push(log("cart", T0 - 100, 17, "panic: nil map"));
    assert!(
        w.engine.evaluate_due(T0 + 1000).is_empty(),
        "one match is not above 1"
    );
    w.logs
        .0
        .lock()
        .push(log("cart", T0 + 500, 17, "panic: again"));
    assert!(
        w.engine.evaluate_due(T0 + 2000).is_empty(),
        "pending for 1s"
    );
    let c = w.engine.evaluate_due(T0 + 3000);
    assert_eq!(firing_names(&c), ["Panics"]);
}

#[test]
fn stopped_instance_fires_with_blast_radius_and_resolves_on_renewal() {
    let mut w = world("", false);
    w.logs
        .0
        .lock()
        .push(log("inventory", T0 - 10_000, 17, "db timeout"));
    w.logs
        .0
        .lock()
        .push(log("inventory", T0 - 9_000, 9, "just info"));
    w.traces
        .0
        .lock()
        .push(span("inventory", 7, T0 - 20_000, 3, false));
    *w.registry.0.lock() = vec![
        inst("inventory", 1, InstanceState::Expired, Some(T0 - 200)),
        inst("inventory", 2, InstanceState::Alive, None),
        inst("cart", 1, InstanceState::Deregistered, None),
    ];
    let c = w.engine.evaluate_due(T0);
    assert_eq!(
        firing_names(&c),
        [INSTANCE_ALERT],
        "deregistered instances never alert"
    );
    let a = w
        .engine
        .active()
        .into_iter()
        .find(|a| a.alertname() == INSTANCE_ALERT)
        .unwrap();
    assert_eq!(a.labels["severity"], "critical");
    assert_eq!(a.labels["instance"], "inventory-1");
    assert_eq!(a.annotations["callers"], "checkout (12.0/min)");
    assert_eq!(a.annotations["last_errors"], "db timeout");
    assert_eq!(
        a.annotations["last_trace"],
        "http://skein:16686/trace/00000000000000000000000000000007"
    );
    assert!(a.annotations["last_heartbeat"].starts_with("revision 41 at "));

    // It renews: resolved.
    w.registry.0.lock()[0] = inst("inventory", 1, InstanceState::Alive, None);
    let c = w.engine.evaluate_due(T0 + 1000);
    assert_eq!(resolved_names(&c), [INSTANCE_ALERT]);
}

#[test]
fn traffic_after_heartbeats_stop_makes_a_warning() {
    let mut w = world("", false);
    let mut i = inst("inventory", 1, InstanceState::Expired, Some(T0 - 200));
    i.last_traffic_unix_ms = Some(T0 - 100);
    *w.registry.0.lock() = vec![i];
    let c = w.engine.evaluate_due(T0);
    let Some(Change::Firing(a)) = c.first() else {
        panic!("{c:?}")
    };
    assert_eq!(a.labels["severity"], "warning");
    assert!(a.annotations["summary"].contains("heartbeats lost, still serving traffic"));
}

#[test]
fn mass_expiry_holds_individual_alerts_until_the_hold_passes() {
    let mut w = world("", false);
    let fleet: Vec<InstanceView> = (0..30)
        .map(|n| {
            if n < 20 {
                inst("api", n, InstanceState::Expired, Some(T0 - 500))
            } else {
                inst("api", n, InstanceState::Alive, None)
            }
        })
        .collect();
    *w.registry.0.lock() = fleet;
    let c = w.engine.evaluate_due(T0);
    assert_eq!(firing_names(&c), [MASS_ALERT], "one alert, not 20");
    let mass = w
        .engine
        .active()
        .into_iter()
        .find(|a| a.alertname() == MASS_ALERT)
        .unwrap();
    assert_eq!(mass.value, 20.0);
    assert_eq!(mass.annotations["count"], "20");
    for t in 1..60 {
        let c = w.engine.evaluate_due(T0 + t * 1000);
        assert!(firing_names(&c).is_empty(), "held at +{t}s");
    }
    // Past --mass-expiry-hold and still expired: released.
    let c = w.engine.evaluate_due(T0 + 60_000);
    assert_eq!(firing_names(&c).len(), 20);
}

#[test]
fn instance_down_overrides_the_builtin_per_service() {
    let mut w = world(
        "
groups:
  - name: liveness
    rules:
      - alert: PaymentsDown
        kind: instance_down
        service: payments
        for: 2s
        labels: {severity: page}
        annotations: {runbook: 'https://runbooks/{{ $labels.service }}'}
",
        false,
    );
    *w.registry.0.lock() = vec![
        inst("payments", 1, InstanceState::Expired, Some(T0 - 100)),
        inst("cart", 1, InstanceState::Expired, Some(T0 - 100)),
    ];
    let c = w.engine.evaluate_due(T0);
    assert_eq!(
        firing_names(&c),
        [INSTANCE_ALERT],
        "cart uses the built-in at once"
    );
    assert!(w.engine.evaluate_due(T0 + 1000).is_empty());
    let c = w.engine.evaluate_due(T0 + 2000);
    assert_eq!(firing_names(&c), ["PaymentsDown"]);
    let a = w
        .engine
        .active()
        .into_iter()
        .find(|a| a.alertname() == "PaymentsDown")
        .unwrap();
    assert_eq!(a.labels["severity"], "page");
    assert_eq!(a.annotations["runbook"], "https://runbooks/payments");
    assert!(
        a.annotations.contains_key("last_heartbeat"),
        "built-in evidence kept"
    );
}

#[test]
fn too_few_instances_and_watchdog() {
    let mut w = world("groups: [{name: g, interval: 1s, rules: [{alert: FewCarts, kind: too_few_instances, service: cart, min: 2}]}]", true);
    *w.registry.0.lock() = vec![
        inst("cart", 1, InstanceState::Alive, None),
        inst("cart", 2, InstanceState::Expired, Some(T0)),
    ];
    let mut names = firing_names(&w.engine.evaluate_due(T0));
    names.sort();
    assert_eq!(names, ["FewCarts", INSTANCE_ALERT, WATCHDOG_ALERT]);
}

#[test]
fn removing_a_rule_withdraws_its_alerts() {
    let mut w = world("groups: [{name: g, interval: 1s, rules: [{alert: FewCarts, kind: too_few_instances, service: cart, min: 1}]}]", false);
    assert_eq!(firing_names(&w.engine.evaluate_due(T0)), ["FewCarts"]);
    let c = w.engine.set_rules(RuleSet::default());
    assert!(matches!(&c[..], [Change::Withdrawn(a)] if a.alertname() == "FewCarts"));
    assert!(w.engine.active().is_empty());
}

/// Registry events make the liveness rules due at once, but never sooner
/// than 100 ms after their last evaluation: a wave of expiries must not run
/// one evaluation per event.
#[test]
fn registry_events_wake_liveness_at_most_every_100_ms() {
    let mut w = world("groups: []", false);
    w.engine.evaluate_due(T0);
    assert_eq!(w.engine.next_due_ms(), T0 + 1000, "the regular interval");
    w.engine.wake_liveness(T0 + 10);
    assert_eq!(w.engine.next_due_ms(), T0 + 100, "held to the gap");
    w.engine.wake_liveness(T0 + 50);
    assert_eq!(w.engine.next_due_ms(), T0 + 100, "events coalesce");
    w.engine.evaluate_due(T0 + 100);
    w.engine.wake_liveness(T0 + 400);
    assert_eq!(w.engine.next_due_ms(), T0 + 400, "after the gap: at once");
}
