//! Realistic OTLP data, encoded once and re-stamped cheaply.
//!
//! Generating load must cost the benchmark little CPU, so each batch is built
//! and protobuf-encoded once as a [`Template`]; [`Template::patch`] then
//! stamps fresh ids and timestamps into a copy (see [`patch`]).
//!
//! Spans come in traces of `spans_per_trace` spans across five services, with
//! five attributes each (`http.method`, `http.route`, `http.status_code`,
//! `customer.tier`, `net.peer.name`), about 215 bytes per span on the wire;
//! 5% of traces carry an error and 2% are slow (root ≥ 1 s). Log records have
//! an ~80-character body, a severity, trace/span ids and three attributes.

mod patch;

use anyhow::{ensure, Result};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    span, status, ResourceSpans, ScopeSpans, Span, Status,
};
use prost::Message;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use patch::ItemIds;
pub use patch::{Batch, IdGen, Template};

/// Which OTLP signal a benchmark sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Signal {
    Spans,
    Logs,
}

impl Signal {
    /// Plural noun for reports.
    pub fn noun(self) -> &'static str {
        match self {
            Signal::Spans => "spans",
            Signal::Logs => "logs",
        }
    }
}

/// A service of the simulated system: its name, the peer it talks to, and
/// the `(method, route)` pairs it serves.
pub struct Service {
    pub name: &'static str,
    pub peer: &'static str,
    pub ops: &'static [(&'static str, &'static str)],
}

/// The five services every generated trace runs through; the first is the
/// entry point (every root span is there).
pub const SERVICES: [Service; 5] = [
    Service {
        name: "frontend",
        peer: "checkout.svc",
        ops: &[
            ("GET", "/"),
            ("GET", "/product/{id}"),
            ("POST", "/cart/checkout"),
        ],
    },
    Service {
        name: "checkout",
        peer: "orders.svc",
        ops: &[("POST", "/checkout"), ("GET", "/checkout/{id}")],
    },
    Service {
        name: "orders",
        peer: "orders-db.svc",
        ops: &[("POST", "/orders"), ("GET", "/orders/{id}")],
    },
    Service {
        name: "payments",
        peer: "stripe.example",
        ops: &[("POST", "/charge"), ("POST", "/refund")],
    },
    Service {
        name: "inventory",
        peer: "stock-db.svc",
        ops: &[("GET", "/stock/{sku}"), ("PUT", "/stock/{sku}")],
    },
];

/// Values of the searchable `customer.tier` attribute, with their weights in %.
pub const TIERS: [(&str, u32); 3] = [("gold", 10), ("silver", 30), ("bronze", 60)];

/// Share of traces whose root lasts 1–3 s (the `minDuration` search target).
pub const SLOW_TRACE_SHARE: f64 = 0.02;
/// Share of traces with one failing span.
pub const ERROR_TRACE_SHARE: f64 = 0.05;
/// Log records that share one trace id.
const LOGS_PER_TRACE: usize = 4;

const MS: u64 = 1_000_000;

/// Wall-clock time in Unix nanoseconds.
pub fn now_unix_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------
// Generators

/// Builds templates from a seeded RNG (same seed, same data).
pub struct DataGen {
    rng: StdRng,
    base_time_ns: u64,
}

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn s(v: &str) -> any_value::Value {
    any_value::Value::StringValue(v.to_string())
}

fn resource(service: &Service, instance: u32) -> Resource {
    Resource {
        attributes: vec![
            kv("service.name", s(service.name)),
            kv(
                "host.name",
                s(&format!("{}-7f9c{instance:02}", service.name)),
            ),
        ],
        ..Default::default()
    }
}

fn scope() -> InstrumentationScope {
    InstrumentationScope {
        name: "skein-bench".into(),
        version: "1.0".into(),
        ..Default::default()
    }
}

/// A span before ids are assigned; `parent` indexes the same trace's spans.
struct GenSpan {
    service: usize,
    op: usize,
    parent: Option<usize>,
    start: u64,
    end: u64,
    error: bool,
}

impl DataGen {
    pub fn new(seed: u64) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed),
            base_time_ns: now_unix_nanos(),
        }
    }

    fn tier(&mut self) -> &'static str {
        let mut roll = self.rng.random_range(0..100);
        for (tier, weight) in TIERS {
            if roll < weight {
                return tier;
            }
            roll -= weight;
        }
        TIERS[0].0
    }

    /// The spans of one trace ending at most at `base_time_ns`.
    fn trace(&mut self, n: usize) -> Vec<GenSpan> {
        let slow = self.rng.random_bool(SLOW_TRACE_SHARE);
        let root_dur = if slow {
            self.rng.random_range(1_000 * MS..3_000 * MS)
        } else {
            self.rng.random_range(5 * MS..250 * MS)
        };
        let end = self.base_time_ns - self.rng.random_range(0..1_000 * MS);
        let mut spans = vec![GenSpan {
            service: 0,
            op: self.rng.random_range(0..SERVICES[0].ops.len()),
            parent: None,
            start: end - root_dur,
            end,
            error: false,
        }];
        for i in 1..n {
            let parent = self.rng.random_range(0..i);
            let (p_start, p_end, p_service) = (
                spans[parent].start,
                spans[parent].end,
                spans[parent].service,
            );
            let service = if self.rng.random_bool(0.3) {
                p_service
            } else {
                self.rng.random_range(1..SERVICES.len())
            };
            let span_ = p_end - p_start;
            let start = p_start + self.rng.random_range(0..span_ / 2 + 1);
            let dur = self
                .rng
                .random_range(span_ / 20..=(p_end - start).max(span_ / 20));
            spans.push(GenSpan {
                service,
                op: self.rng.random_range(0..SERVICES[service].ops.len()),
                parent: Some(parent),
                start,
                end: (start + dur).min(p_end),
                error: false,
            });
        }
        if self.rng.random_bool(ERROR_TRACE_SHARE) {
            spans[n - 1].error = true;
        }
        spans
    }

    /// A batch of `items` spans in traces of `spans_per_trace` (the last one
    /// may be shorter), grouped by service like an agent would forward them.
    pub fn spans_template(&mut self, items: usize, spans_per_trace: usize) -> Result<Template> {
        ensure!(items > 0 && spans_per_trace > 0, "empty batch");
        let mut by_service: Vec<Vec<(Span, ItemIds)>> =
            (0..SERVICES.len()).map(|_| Vec::new()).collect();
        let mut next_span = 0u32;
        let mut trace_no = 0u32;
        while (next_span as usize) < items {
            let n = spans_per_trace.min(items - next_span as usize);
            let tier = self.tier();
            let first = next_span;
            for g in self.trace(n) {
                let svc = &SERVICES[g.service];
                let (method, route) = svc.ops[g.op];
                let status_code = match (g.error, method) {
                    (true, _) => 500,
                    (false, "POST") => 201,
                    _ => 200,
                };
                let kind = match (g.parent, g.service) {
                    (None, _) => span::SpanKind::Server,
                    (Some(_), 0) => span::SpanKind::Client,
                    _ => span::SpanKind::Server,
                };
                let span = Span {
                    // Placeholders of the right length; `patch` overwrites them.
                    trace_id: vec![1; 16],
                    span_id: vec![2; 8],
                    parent_span_id: if g.parent.is_some() {
                        vec![3; 8]
                    } else {
                        Vec::new()
                    },
                    name: format!("{method} {route}"),
                    kind: kind as i32,
                    start_time_unix_nano: g.start,
                    end_time_unix_nano: g.end,
                    attributes: vec![
                        kv("http.method", s(method)),
                        kv("http.route", s(route)),
                        kv("http.status_code", any_value::Value::IntValue(status_code)),
                        kv("customer.tier", s(tier)),
                        kv("net.peer.name", s(svc.peer)),
                    ],
                    status: Some(Status {
                        code: if g.error {
                            status::StatusCode::Error as i32
                        } else {
                            status::StatusCode::Unset as i32
                        },
                        message: String::new(),
                    }),
                    ..Default::default()
                };
                let ids = ItemIds {
                    trace: trace_no,
                    span: next_span,
                    parent: g.parent.map(|p| first + p as u32),
                };
                by_service[g.service].push((span, ids));
                next_span += 1;
            }
            trace_no += 1;
        }
        let mut ids = Vec::with_capacity(items);
        let mut req = ExportTraceServiceRequest::default();
        for (i, spans) in by_service.into_iter().enumerate() {
            if spans.is_empty() {
                continue;
            }
            let (spans, item_ids): (Vec<Span>, Vec<ItemIds>) = spans.into_iter().unzip();
            ids.extend(item_ids);
            req.resource_spans.push(ResourceSpans {
                resource: Some(resource(&SERVICES[i], self.rng.random_range(0..8))),
                scope_spans: vec![ScopeSpans {
                    scope: Some(scope()),
                    spans,
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            });
        }
        Template::new(Signal::Spans, req.encode_to_vec(), &ids, self.base_time_ns)
    }

    /// An ~80-character log message.
    fn body(&mut self, service: &str, tier: &str) -> String {
        let n = self.rng.random_range(10_000..99_999);
        let ms = self.rng.random_range(1..999);
        match self.rng.random_range(0..4) {
            0 => format!(
                "{service}: order {n} accepted for {tier} customer, {ms} ms, 3 items reserved"
            ),
            1 => format!(
                "{service}: payment authorised for order {n} after {ms} ms, card ending 4242 ok"
            ),
            2 => format!(
                "{service}: upstream call to inventory slow ({ms} ms), retrying request {n}"
            ),
            _ => format!("{service}: cache miss for product {n}, loaded from database in {ms} ms"),
        }
    }

    /// A batch of `items` log records, four per trace, grouped by service.
    pub fn logs_template(&mut self, items: usize) -> Result<Template> {
        ensure!(items > 0, "empty batch");
        let mut by_service: Vec<Vec<(LogRecord, ItemIds)>> =
            (0..SERVICES.len()).map(|_| Vec::new()).collect();
        for i in 0..items {
            let service = self.rng.random_range(0..SERVICES.len());
            let tier = self.tier();
            let (sev, text) = match self.rng.random_range(0..10) {
                0 => (17, "ERROR"),
                1 | 2 => (13, "WARN"),
                _ => (9, "INFO"),
            };
            let time = self.base_time_ns - self.rng.random_range(0..1_000 * MS);
            let svc = &SERVICES[service];
            let record = LogRecord {
                time_unix_nano: time,
                observed_time_unix_nano: time + self.rng.random_range(MS / 10..5 * MS),
                severity_number: sev,
                severity_text: text.into(),
                body: Some(AnyValue {
                    value: Some(s(&self.body(svc.name, tier))),
                }),
                attributes: vec![
                    kv("code.function", s(svc.ops[0].1)),
                    kv("customer.tier", s(tier)),
                    kv(
                        "http.status_code",
                        any_value::Value::IntValue(if sev == 17 { 500 } else { 200 }),
                    ),
                ],
                trace_id: vec![1; 16],
                span_id: vec![2; 8],
                ..Default::default()
            };
            let ids = ItemIds {
                trace: (i / LOGS_PER_TRACE) as u32,
                span: i as u32,
                parent: None,
            };
            by_service[service].push((record, ids));
        }
        let mut ids = Vec::with_capacity(items);
        let mut req = ExportLogsServiceRequest::default();
        for (i, logs) in by_service.into_iter().enumerate() {
            if logs.is_empty() {
                continue;
            }
            let (log_records, item_ids): (Vec<LogRecord>, Vec<ItemIds>) = logs.into_iter().unzip();
            ids.extend(item_ids);
            req.resource_logs.push(ResourceLogs {
                resource: Some(resource(&SERVICES[i], self.rng.random_range(0..8))),
                scope_logs: vec![ScopeLogs {
                    scope: Some(scope()),
                    log_records,
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            });
        }
        Template::new(Signal::Logs, req.encode_to_vec(), &ids, self.base_time_ns)
    }

    /// `count` different templates of `items` items each.
    pub fn templates(
        &mut self,
        signal: Signal,
        count: usize,
        items: usize,
        spans_per_trace: usize,
    ) -> Result<Vec<Template>> {
        (0..count.max(1))
            .map(|_| match signal {
                Signal::Spans => self.spans_template(items, spans_per_trace),
                Signal::Logs => self.logs_template(items),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_sizes_match_the_design_reference() {
        let mut gen = DataGen::new(1);
        let spans = gen.spans_template(512, 10).unwrap();
        let per_span = spans.encoded_len() as f64 / 512.0;
        assert!((200.0..=225.0).contains(&per_span), "{per_span} B/span");
        let req =
            ExportTraceServiceRequest::decode(spans.patch(&mut IdGen::new(0, 0), 0).bytes).unwrap();
        for span in spans_of(&req) {
            assert_eq!(span.attributes.len(), 5);
            assert_eq!((span.trace_id.len(), span.span_id.len()), (16, 8));
        }
        let logs = gen.logs_template(512).unwrap();
        let per_log = logs.encoded_len() as f64 / 512.0;
        assert!((170.0..=240.0).contains(&per_log), "{per_log} B/log");
        let req =
            ExportLogsServiceRequest::decode(logs.patch(&mut IdGen::new(0, 0), 0).bytes).unwrap();
        for log in logs_of(&req) {
            let Some(AnyValue {
                value: Some(any_value::Value::StringValue(body)),
            }) = &log.body
            else {
                panic!("string body expected")
            };
            assert!(
                (65..=95).contains(&body.len()),
                "body {} chars: {body:?}",
                body.len()
            );
            assert_eq!(log.attributes.len(), 3);
        }
    }

    fn spans_of(req: &ExportTraceServiceRequest) -> Vec<Span> {
        req.resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .flat_map(|s| s.spans.clone())
            .collect()
    }

    fn logs_of(req: &ExportLogsServiceRequest) -> Vec<LogRecord> {
        req.resource_logs
            .iter()
            .flat_map(|r| &r.scope_logs)
            .flat_map(|s| s.log_records.clone())
            .collect()
    }
}
