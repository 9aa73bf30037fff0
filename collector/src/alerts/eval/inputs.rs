//! The span- and log-based inputs of the rules, read through the storage
//! seam (`query::{TraceStore, LogStore}`): error rate and latency quantile
//! of a service's spans over a window, log match counts, and the evidence
//! attached to liveness alerts (last error logs, last trace, traffic seen
//! after the heartbeats stopped). All functions block (they run on the
//! blocking pool).
//!
//! Spans are sampled through the seam: the newest `MAX_TRACES` traces with a
//! matching span in the window are read and their matching spans counted.
//! Above that the value is computed from the newest traces only (reported as
//! `truncated`), which keeps one evaluation bounded.

use crate::query::{LogQuery, LogStore, QueryError, SpanRecord, TraceQuery, TraceStore};

/// Traces read per span-rule evaluation at most.
pub const MAX_TRACES: usize = 2000;
/// Log records counted per `log_match` evaluation at most.
pub const MAX_LOGS: usize = 10_000;

/// Spans of one service (and operation) in a window.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SpanSample {
    pub total: u64,
    pub errors: u64,
    pub durations_ns: Vec<u64>,
    /// More traces matched than were read.
    pub truncated: bool,
}

impl SpanSample {
    /// Share of spans with status ERROR; `None` without spans.
    pub fn error_rate(&self) -> Option<f64> {
        (self.total > 0).then(|| self.errors as f64 / self.total as f64)
    }

    /// Nearest-rank quantile of the durations, in seconds.
    pub fn quantile_seconds(&self, q: f64) -> Option<f64> {
        if self.durations_ns.is_empty() {
            return None;
        }
        let mut d = self.durations_ns.clone();
        d.sort_unstable();
        let rank = ((q * d.len() as f64).ceil() as usize).clamp(1, d.len());
        Some(d[rank - 1] as f64 / 1e9)
    }
}

/// Read the spans of `service` (and `operation`) that started in
/// `[start_ns, end_ns]`.
pub fn sample_spans(
    store: &dyn TraceStore,
    service: &str,
    operation: Option<&str>,
    start_ns: u64,
    end_ns: u64,
) -> Result<SpanSample, QueryError> {
    let ids = store.find_trace_ids(&TraceQuery {
        service: Some(service.to_string()),
        operation: operation.map(str::to_string),
        start_unix_nano: Some(start_ns),
        end_unix_nano: Some(end_ns),
        limit: MAX_TRACES,
        ..TraceQuery::default()
    })?;
    let mut out = SpanSample {
        truncated: ids.len() >= MAX_TRACES,
        ..SpanSample::default()
    };
    for id in ids {
        for rec in store.trace(&id)? {
            if matches(&rec, service, operation, start_ns, end_ns) {
                out.total += 1;
                if is_error(&rec) {
                    out.errors += 1;
                }
                let s = &rec.span;
                out.durations_ns
                    .push(s.end_time_unix_nano.saturating_sub(s.start_time_unix_nano));
            }
        }
    }
    Ok(out)
}

fn matches(rec: &SpanRecord, service: &str, operation: Option<&str>, start: u64, end: u64) -> bool {
    let t = rec.span.start_time_unix_nano;
    rec.service_name() == service
        && operation.is_none_or(|op| rec.span.name == op)
        && (start..=end).contains(&t)
}

/// OTLP status code 2 = ERROR.
fn is_error(rec: &SpanRecord) -> bool {
    rec.span.status.as_ref().is_some_and(|s| s.code == 2)
}

/// How many log records match (capped at [`MAX_LOGS`]).
pub fn count_logs(
    store: &dyn LogStore,
    text: &str,
    service: Option<&str>,
    min_severity: Option<i32>,
    start_ns: u64,
    end_ns: u64,
) -> Result<u64, QueryError> {
    let rows = store.search_logs(&LogQuery {
        text: Some(text.to_string()),
        service: service.map(str::to_string),
        min_severity,
        start_unix_nano: Some(start_ns),
        end_unix_nano: Some(end_ns),
        limit: MAX_LOGS,
        ..LogQuery::default()
    })?;
    Ok(rows.len() as u64)
}

/// Bodies of the newest error logs (severity ≥ ERROR) of a service.
pub fn last_error_logs(
    store: &dyn LogStore,
    service: &str,
    since_ns: u64,
    n: usize,
) -> Result<Vec<String>, QueryError> {
    let mut rows = store.search_logs(&LogQuery {
        service: Some(service.to_string()),
        min_severity: Some(17),
        start_unix_nano: Some(since_ns),
        limit: n,
        ..LogQuery::default()
    })?;
    rows.sort_by_key(|r| {
        std::cmp::Reverse(
            r.record
                .time_unix_nano
                .max(r.record.observed_time_unix_nano),
        )
    });
    Ok(rows
        .iter()
        .take(n)
        .map(|r| crate::api::anyvalue::to_text(r.record.body.as_ref()))
        .collect())
}

/// Hex id of the newest trace with a span of `service`.
pub fn last_trace(
    store: &dyn TraceStore,
    service: &str,
    since_ns: u64,
) -> Result<Option<String>, QueryError> {
    let ids = store.find_trace_ids(&TraceQuery {
        service: Some(service.to_string()),
        start_unix_nano: Some(since_ns),
        limit: 1,
        ..TraceQuery::default()
    })?;
    Ok(ids.first().map(hex::encode))
}

/// Did spans from this `service.instance.id` start after `since_ns`?
pub fn traffic_since(
    store: &dyn TraceStore,
    service: &str,
    instance: &str,
    since_ns: u64,
) -> Result<bool, QueryError> {
    let ids = store.find_trace_ids(&TraceQuery {
        service: Some(service.to_string()),
        tags: vec![("service.instance.id".into(), instance.to_string())],
        start_unix_nano: Some(since_ns),
        limit: 1,
        ..TraceQuery::default()
    })?;
    Ok(!ids.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantile_is_nearest_rank() {
        let s = SpanSample {
            durations_ns: (1..=100).map(|ms| ms * 1_000_000).collect(),
            total: 100,
            ..SpanSample::default()
        };
        assert_eq!(s.quantile_seconds(0.99), Some(0.099));
        assert_eq!(s.quantile_seconds(0.5), Some(0.05));
        assert_eq!(s.quantile_seconds(1.0), Some(0.1));
        assert_eq!(SpanSample::default().quantile_seconds(0.5), None);
    }

    #[test]
    fn error_rate_needs_spans() {
        assert_eq!(SpanSample::default().error_rate(), None);
        let s = SpanSample {
            total: 4,
            errors: 1,
            ..SpanSample::default()
        };
        assert_eq!(s.error_rate(), Some(0.25));
    }
}
