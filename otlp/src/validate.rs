//! Per-item validation of OTLP requests.
//!
//! Removes invalid spans and log records from a request in place and reports
//! how many were dropped and why, so one bad item never costs its neighbours.
//! Pure functions over the protobuf structs: no I/O, no metrics.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value::Value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::trace::v1::Span;

/// Why an item was rejected; `as_label` is the metric label value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectReason {
    TraceIdLength,
    SpanIdLength,
    ParentIdLength,
    ZeroId,
    EndBeforeStart,
    AttributeTooLarge,
}

impl RejectReason {
    pub const ALL: [RejectReason; 6] = [
        Self::TraceIdLength,
        Self::SpanIdLength,
        Self::ParentIdLength,
        Self::ZeroId,
        Self::EndBeforeStart,
        Self::AttributeTooLarge,
    ];

    pub fn as_label(self) -> &'static str {
        match self {
            Self::TraceIdLength => "trace_id_length",
            Self::SpanIdLength => "span_id_length",
            Self::ParentIdLength => "parent_id_length",
            Self::ZeroId => "zero_id",
            Self::EndBeforeStart => "end_before_start",
            Self::AttributeTooLarge => "attribute_too_large",
        }
    }
}

/// What validation removed from one request.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Rejections {
    /// Items kept.
    pub accepted: u64,
    /// Count per reason, in the order first seen.
    pub by_reason: Vec<(RejectReason, u64)>,
    /// The first few reasons in words, for `partial_success.error_message`.
    messages: Vec<String>,
}

const MAX_MESSAGES: usize = 5;

impl Rejections {
    /// `accepted` items kept, nothing rejected.
    pub fn none(accepted: u64) -> Self {
        Rejections {
            accepted,
            ..Default::default()
        }
    }

    pub fn rejected(&self) -> u64 {
        self.by_reason.iter().map(|(_, n)| n).sum()
    }

    fn reject(&mut self, reason: RejectReason, what: &str, detail: String) {
        match self.by_reason.iter_mut().find(|(r, _)| *r == reason) {
            Some((_, n)) => *n += 1,
            None => self.by_reason.push((reason, 1)),
        }
        if self.messages.len() < MAX_MESSAGES {
            self.messages.push(format!("{what}: {detail}"));
        }
    }

    /// A sentence for `partial_success.error_message`; empty when nothing was rejected.
    pub fn message(&self, item: &str) -> String {
        let rejected = self.rejected();
        if rejected == 0 {
            return String::new();
        }
        let mut msg = format!(
            "rejected {rejected} invalid {item}(s): {}",
            self.messages.join("; ")
        );
        if rejected as usize > self.messages.len() {
            msg.push_str("; …");
        }
        msg
    }
}

/// Validation limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest string/bytes attribute value (also inside arrays and maps).
    pub max_attribute_bytes: usize,
}

/// Drop invalid spans (and then empty scopes/resources) from `req`.
pub fn validate_traces(req: &mut ExportTraceServiceRequest, limits: Limits) -> Rejections {
    let mut out = Rejections::default();
    for (ri, rs) in req.resource_spans.iter_mut().enumerate() {
        let resource_oversized = rs
            .resource
            .as_ref()
            .and_then(|r| oversized(&r.attributes, limits.max_attribute_bytes));
        for (si, ss) in rs.scope_spans.iter_mut().enumerate() {
            retain_valid(
                &mut ss.spans,
                resource_oversized.as_deref(),
                limits,
                |span| check_span(span, limits),
                |i| format!("resource_spans[{ri}].scope_spans[{si}].spans[{i}]"),
                &mut out,
            );
        }
        rs.scope_spans.retain(|ss| !ss.spans.is_empty());
    }
    req.resource_spans.retain(|rs| !rs.scope_spans.is_empty());
    out
}

/// Drop invalid log records (and then empty scopes/resources) from `req`.
pub fn validate_logs(req: &mut ExportLogsServiceRequest, limits: Limits) -> Rejections {
    let mut out = Rejections::default();
    for (ri, rl) in req.resource_logs.iter_mut().enumerate() {
        let resource_oversized = rl
            .resource
            .as_ref()
            .and_then(|r| oversized(&r.attributes, limits.max_attribute_bytes));
        for (si, sl) in rl.scope_logs.iter_mut().enumerate() {
            retain_valid(
                &mut sl.log_records,
                resource_oversized.as_deref(),
                limits,
                |rec| check_log(rec, limits),
                |i| format!("resource_logs[{ri}].scope_logs[{si}].log_records[{i}]"),
                &mut out,
            );
        }
        rl.scope_logs.retain(|sl| !sl.log_records.is_empty());
    }
    req.resource_logs.retain(|rl| !rl.scope_logs.is_empty());
    out
}

/// Keep the items of one scope that pass `check` (all fail when their
/// resource has an oversized attribute), counting each verdict in `out`.
/// `path(i)` names item `i` in a rejection message; it is built only for
/// rejected items, so accepted ones cost no allocation.
fn retain_valid<T>(
    items: &mut Vec<T>,
    resource_oversized: Option<&str>,
    limits: Limits,
    check: impl Fn(&T) -> Verdict,
    path: impl Fn(usize) -> String,
    out: &mut Rejections,
) {
    let mut index = 0usize;
    items.retain(|item| {
        let i = index;
        index += 1;
        let verdict = match resource_oversized {
            Some(key) => Err((
                RejectReason::AttributeTooLarge,
                format!(
                    "resource attribute '{key}' is larger than {} bytes",
                    limits.max_attribute_bytes
                ),
            )),
            None => check(item),
        };
        match verdict {
            Ok(()) => {
                out.accepted += 1;
                true
            }
            Err((reason, detail)) => {
                out.reject(reason, &path(i), detail);
                false
            }
        }
    });
}

type Verdict = Result<(), (RejectReason, String)>;

fn check_span(span: &Span, limits: Limits) -> Verdict {
    if span.trace_id.len() != 16 {
        return Err((
            RejectReason::TraceIdLength,
            format!("trace_id must be 16 bytes, got {}", span.trace_id.len()),
        ));
    }
    if span.span_id.len() != 8 {
        return Err((
            RejectReason::SpanIdLength,
            format!("span_id must be 8 bytes, got {}", span.span_id.len()),
        ));
    }
    if !span.parent_span_id.is_empty() && span.parent_span_id.len() != 8 {
        return Err((
            RejectReason::ParentIdLength,
            format!(
                "parent_span_id must be empty or 8 bytes, got {}",
                span.parent_span_id.len()
            ),
        ));
    }
    if is_zero(&span.trace_id) || is_zero(&span.span_id) {
        return Err((
            RejectReason::ZeroId,
            "trace_id and span_id must not be all zeroes".into(),
        ));
    }
    if span.end_time_unix_nano < span.start_time_unix_nano {
        return Err((
            RejectReason::EndBeforeStart,
            format!(
                "end_time_unix_nano {} is before start_time_unix_nano {}",
                span.end_time_unix_nano, span.start_time_unix_nano
            ),
        ));
    }
    let max = limits.max_attribute_bytes;
    let too_large = |key: String| {
        Err((
            RejectReason::AttributeTooLarge,
            format!("attribute '{key}' is larger than {max} bytes"),
        ))
    };
    if let Some(key) = oversized(&span.attributes, max) {
        return too_large(key);
    }
    for event in &span.events {
        if let Some(key) = oversized(&event.attributes, max) {
            return too_large(format!("{}.{key}", event.name));
        }
    }
    for link in &span.links {
        if let Some(key) = oversized(&link.attributes, max) {
            return too_large(format!("link.{key}"));
        }
    }
    Ok(())
}

fn check_log(rec: &LogRecord, limits: Limits) -> Verdict {
    if !rec.trace_id.is_empty() && rec.trace_id.len() != 16 {
        return Err((
            RejectReason::TraceIdLength,
            format!(
                "trace_id must be empty or 16 bytes, got {}",
                rec.trace_id.len()
            ),
        ));
    }
    if !rec.span_id.is_empty() && rec.span_id.len() != 8 {
        return Err((
            RejectReason::SpanIdLength,
            format!(
                "span_id must be empty or 8 bytes, got {}",
                rec.span_id.len()
            ),
        ));
    }
    if let Some(key) = oversized(&rec.attributes, limits.max_attribute_bytes) {
        return Err((
            RejectReason::AttributeTooLarge,
            format!(
                "attribute '{key}' is larger than {} bytes",
                limits.max_attribute_bytes
            ),
        ));
    }
    Ok(())
}

fn is_zero(id: &[u8]) -> bool {
    id.iter().all(|b| *b == 0)
}

/// The key of the first attribute whose value (recursively) exceeds `max` bytes.
fn oversized(attrs: &[KeyValue], max: usize) -> Option<String> {
    attrs
        .iter()
        .find(|kv| {
            kv.value
                .as_ref()
                .is_some_and(|v| value_too_large(v, max, 0))
        })
        .map(|kv| kv.key.clone())
}

fn value_too_large(v: &AnyValue, max: usize, depth: usize) -> bool {
    // Depth is bounded by the protobuf decoder's recursion limit already; this
    // guard only keeps the walk cheap on pathological JSON.
    if depth > 32 {
        return true;
    }
    match &v.value {
        Some(Value::StringValue(s)) => s.len() > max,
        Some(Value::BytesValue(b)) => b.len() > max,
        Some(Value::ArrayValue(a)) => a.values.iter().any(|x| value_too_large(x, max, depth + 1)),
        Some(Value::KvlistValue(kv)) => kv.values.iter().any(|x| {
            x.value
                .as_ref()
                .is_some_and(|v| value_too_large(v, max, depth + 1))
        }),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::logs::v1::{ResourceLogs, ScopeLogs};
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans};

    const LIMITS: Limits = Limits {
        max_attribute_bytes: 16,
    };

    fn span(tid: Vec<u8>, sid: Vec<u8>, start: u64, end: u64) -> Span {
        Span {
            trace_id: tid,
            span_id: sid,
            start_time_unix_nano: start,
            end_time_unix_nano: end,
            ..Default::default()
        }
    }

    fn str_attr(k: &str, v: &str) -> KeyValue {
        KeyValue {
            key: k.into(),
            value: Some(AnyValue {
                value: Some(Value::StringValue(v.into())),
            }),
            ..Default::default()
        }
    }

    fn traces(spans: Vec<Span>) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    #[test]
    fn each_bad_span_is_dropped_and_neighbours_kept() {
        let good = || span(vec![1; 16], vec![2; 8], 10, 20);
        let mut big = good();
        big.attributes.push(str_attr("big", &"x".repeat(17)));
        let mut bad_parent = good();
        bad_parent.parent_span_id = vec![1; 3];
        let mut req = traces(vec![
            good(),
            span(vec![1; 15], vec![2; 8], 10, 20),
            span(vec![1; 16], vec![2; 7], 10, 20),
            span(vec![1; 16], vec![2; 8], 20, 10),
            span(vec![0; 16], vec![2; 8], 10, 20),
            big,
            bad_parent,
            good(),
        ]);
        let r = validate_traces(&mut req, LIMITS);
        assert_eq!(r.accepted, 2);
        assert_eq!(r.rejected(), 6);
        assert_eq!(req.resource_spans[0].scope_spans[0].spans.len(), 2);
        let msg = r.message("span");
        assert!(msg.starts_with("rejected 6 invalid span(s)"), "{msg}");
        assert!(msg.contains("trace_id must be 16 bytes, got 15"), "{msg}");
        assert!(msg.contains("spans[1]"), "{msg}");
        let reasons: Vec<_> = r.by_reason.iter().map(|(r, _)| *r).collect();
        assert_eq!(reasons.len(), 6, "{reasons:?}");
    }

    #[test]
    fn empty_containers_are_pruned() {
        let mut req = traces(vec![span(vec![1; 3], vec![2; 8], 1, 2)]);
        let r = validate_traces(&mut req, LIMITS);
        assert_eq!((r.accepted, r.rejected()), (0, 1));
        assert!(req.resource_spans.is_empty());
    }

    #[test]
    fn nested_and_event_attributes_are_checked() {
        use opentelemetry_proto::tonic::common::v1::ArrayValue;
        use opentelemetry_proto::tonic::trace::v1::span::Event;
        let mut s = span(vec![1; 16], vec![2; 8], 1, 2);
        s.attributes.push(KeyValue {
            key: "arr".into(),
            value: Some(AnyValue {
                value: Some(Value::ArrayValue(ArrayValue {
                    values: vec![AnyValue {
                        value: Some(Value::StringValue("y".repeat(40))),
                    }],
                })),
            }),
            ..Default::default()
        });
        let mut e = span(vec![1; 16], vec![2; 8], 1, 2);
        e.events.push(Event {
            name: "ev".into(),
            attributes: vec![str_attr("k", &"z".repeat(20))],
            ..Default::default()
        });
        let mut req = traces(vec![s, e]);
        let r = validate_traces(&mut req, LIMITS);
        assert_eq!(r.rejected(), 2);
        assert!(r.message("span").contains("'arr'"));
        assert!(r.message("span").contains("'ev.k'"));
    }

    #[test]
    fn logs_ids_are_optional_but_sized() {
        let rec = |t: Vec<u8>, s: Vec<u8>| LogRecord {
            trace_id: t,
            span_id: s,
            ..Default::default()
        };
        let mut req = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                scope_logs: vec![ScopeLogs {
                    log_records: vec![
                        rec(vec![], vec![]),
                        rec(vec![1; 16], vec![1; 8]),
                        rec(vec![1; 5], vec![]),
                        rec(vec![], vec![1; 2]),
                    ],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let r = validate_logs(&mut req, LIMITS);
        assert_eq!((r.accepted, r.rejected()), (2, 2));
        assert!(r.message("log record").contains("log_records[2]"));
    }

    #[test]
    fn nothing_rejected_means_empty_message() {
        let mut req = traces(vec![span(vec![1; 16], vec![2; 8], 1, 1)]);
        let r = validate_traces(&mut req, LIMITS);
        assert_eq!(r.message("span"), "");
    }
}
