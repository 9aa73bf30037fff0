//! Test support for the API module: in-memory `TraceStore`/`LogStore` fakes
//! over real OTLP structs, builders for spans and log records, and a
//! `oneshot` request helper (no sockets).

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use axum::Router;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::Span;
use parking_lot::Mutex;
use tower::ServiceExt;

use super::{router, ApiState};
use crate::query::{
    LogQuery, LogRow, LogStore, Operation, QueryError, SpanKind, SpanRecord, TraceId, TracePage,
    TraceQuery, TraceSearch, TraceStore,
};
use crate::telemetry::Registry;

pub fn kv(key: &str, value: Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

pub fn s(v: &str) -> Value {
    Value::StringValue(v.into())
}

pub fn resource(service: &str, attrs: Vec<KeyValue>) -> Resource {
    let mut attributes = vec![kv("service.name", s(service))];
    attributes.extend(attrs);
    Resource {
        attributes,
        ..Default::default()
    }
}

pub fn tid(n: u8) -> TraceId {
    let mut id = [0u8; 16];
    id[0] = 0xab;
    id[15] = n;
    id
}

pub fn sid(n: u8) -> Vec<u8> {
    vec![0x10, 0, 0, 0, 0, 0, 0, n]
}

/// A span of trace `tid(trace)`, id `sid(span)`, times in ns.
pub fn span(trace: u8, span: u8, parent: Option<u8>, name: &str, start: u64, end: u64) -> Span {
    Span {
        trace_id: tid(trace).to_vec(),
        span_id: sid(span),
        parent_span_id: parent.map(sid).unwrap_or_default(),
        name: name.into(),
        kind: 2,
        start_time_unix_nano: start,
        end_time_unix_nano: end,
        ..Default::default()
    }
}

pub fn record(resource: Resource, span: Span) -> SpanRecord {
    SpanRecord {
        resource,
        scope: None,
        span,
    }
}

pub fn scoped(resource: Resource, scope: &str, version: &str, span: Span) -> SpanRecord {
    SpanRecord {
        resource,
        scope: Some(InstrumentationScope {
            name: scope.into(),
            version: version.into(),
            ..Default::default()
        }),
        span,
    }
}

/// In-memory trace store. `phantom_ids` are returned by every search but
/// have no spans (as after retention removed them between the two phases).
#[derive(Default)]
pub struct FakeTraces {
    pub spans: Vec<SpanRecord>,
    pub phantom_ids: Vec<TraceId>,
    pub fail: Option<fn() -> QueryError>,
    pub last_query: Mutex<Option<TraceQuery>>,
    /// What `search_traces` answers (the search itself is tested on a real index).
    pub search_page: TracePage,
    pub last_search: Mutex<Option<TraceSearch>>,
}

impl FakeTraces {
    fn check(&self) -> Result<(), QueryError> {
        match self.fail {
            Some(f) => Err(f()),
            None => Ok(()),
        }
    }
}

impl TraceStore for FakeTraces {
    fn services(&self) -> Result<Vec<String>, QueryError> {
        self.check()?;
        let mut out: Vec<String> = self
            .spans
            .iter()
            .map(|r| r.service_name().to_owned())
            .collect();
        out.sort();
        out.dedup();
        Ok(out)
    }

    fn operations(
        &self,
        service: &str,
        kind: Option<SpanKind>,
    ) -> Result<Vec<Operation>, QueryError> {
        self.check()?;
        let mut out: Vec<Operation> = self
            .spans
            .iter()
            .filter(|r| r.service_name() == service)
            .map(|r| Operation {
                name: r.span.name.clone(),
                kind: SpanKind::from_otlp(r.span.kind),
            })
            .filter(|op| kind.is_none_or(|k| k == op.kind))
            .collect();
        out.sort();
        out.dedup();
        Ok(out)
    }

    fn trace(&self, trace_id: &TraceId) -> Result<Vec<SpanRecord>, QueryError> {
        self.check()?;
        Ok(self
            .spans
            .iter()
            .filter(|r| r.span.trace_id == trace_id)
            .cloned()
            .collect())
    }

    fn find_trace_ids(&self, query: &TraceQuery) -> Result<Vec<TraceId>, QueryError> {
        self.check()?;
        *self.last_query.lock() = Some(query.clone());
        let mut hits: Vec<(u64, TraceId)> = Vec::new();
        for r in &self.spans {
            let matches = query
                .service
                .as_deref()
                .is_none_or(|svc| r.service_name() == svc)
                && query
                    .operation
                    .as_deref()
                    .is_none_or(|op| r.span.name == op);
            let Ok(id) = TraceId::try_from(r.span.trace_id.as_slice()) else {
                continue;
            };
            if matches && !hits.iter().any(|(_, h)| *h == id) {
                hits.push((r.span.start_time_unix_nano, id));
            }
        }
        hits.sort_by_key(|(start, _)| std::cmp::Reverse(*start));
        let mut ids: Vec<TraceId> = self.phantom_ids.clone();
        ids.extend(hits.into_iter().map(|(_, id)| id));
        ids.truncate(query.limit);
        Ok(ids)
    }

    fn search_traces(&self, search: &TraceSearch) -> Result<TracePage, QueryError> {
        self.check()?;
        *self.last_search.lock() = Some(search.clone());
        Ok(self.search_page.clone())
    }
}

/// In-memory log store: returns its rows (in stored order) up to the limit.
#[derive(Default)]
pub struct FakeLogs {
    pub rows: Vec<LogRow>,
    pub fail: Option<fn() -> QueryError>,
    pub last_query: Mutex<Option<LogQuery>>,
}

impl LogStore for FakeLogs {
    fn search_logs(&self, query: &LogQuery) -> Result<Vec<LogRow>, QueryError> {
        *self.last_query.lock() = Some(query.clone());
        if let Some(f) = self.fail {
            return Err(f());
        }
        Ok(self.rows.iter().take(query.limit).cloned().collect())
    }
}

pub fn log_row(
    service: &str,
    time: u64,
    severity: i32,
    body: Value,
    attrs: Vec<KeyValue>,
) -> LogRow {
    LogRow {
        resource: resource(service, vec![]),
        scope: None,
        record: LogRecord {
            time_unix_nano: time,
            severity_number: severity,
            body: Some(AnyValue { value: Some(body) }),
            attributes: attrs,
            ..Default::default()
        },
    }
}

/// A test app over the fakes, with its state (for the registry).
pub struct TestApp {
    pub router: Router,
    pub state: ApiState,
    pub traces: Arc<FakeTraces>,
    pub logs: Arc<FakeLogs>,
}

pub fn app(traces: FakeTraces, logs: FakeLogs) -> TestApp {
    let traces = Arc::new(traces);
    let logs = Arc::new(logs);
    let state =
        ApiState::new(traces.clone(), logs.clone(), Registry::new()).expect("fresh registry");
    TestApp {
        router: router(state.clone()),
        state,
        traces,
        logs,
    }
}

pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl TestApp {
    pub async fn get(&self, uri: &str) -> Answer {
        let request = Request::builder()
            .uri(uri)
            .body(Body::empty())
            .expect("request");
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), 64 << 20)
            .await
            .expect("body")
            .to_vec();
        Answer {
            status,
            headers,
            body,
        }
    }
}

/// Assert a Jaeger error answer with `status` whose message names `param`.
pub fn assert_jaeger_error(answer: &Answer, status: u16, needle: &str) {
    assert_eq!(answer.status.as_u16(), status, "body: {}", answer.text());
    let v = answer.json();
    assert_eq!(v["data"], serde_json::Value::Null);
    assert_eq!(v["total"], 0);
    assert_eq!(v["limit"], 0);
    assert_eq!(v["offset"], 0);
    assert_eq!(v["errors"][0]["code"], status);
    let msg = v["errors"][0]["msg"].as_str().unwrap_or_default();
    assert!(
        msg.contains(needle),
        "message {msg:?} should contain {needle:?}"
    );
}

/// Assert a native error answer with `status` whose message contains `needle`.
pub fn assert_native_error(answer: &Answer, status: u16, needle: &str) {
    assert_eq!(answer.status.as_u16(), status, "body: {}", answer.text());
    let v = answer.json();
    let msg = v["error"].as_str().unwrap_or_default();
    assert!(
        msg.contains(needle),
        "message {msg:?} should contain {needle:?}"
    );
}
