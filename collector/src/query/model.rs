//! Query and record types shared by the storage engine and the APIs.

use opentelemetry_proto::tonic::common::v1::{InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::Span;

/// A 16-byte trace id.
pub type TraceId = [u8; 16];

/// One stored span with the context it was sent in, exactly as received
/// (lossless: the API layers derive every view from this).
#[derive(Debug, Clone, PartialEq)]
pub struct SpanRecord {
    /// The resource the span was exported under (holds `service.name`).
    pub resource: Resource,
    /// The instrumentation scope, if the exporter sent one.
    pub scope: Option<InstrumentationScope>,
    pub span: Span,
}

impl SpanRecord {
    /// `service.name` from the resource, or `"unknown_service"` as OTel prescribes.
    pub fn service_name(&self) -> &str {
        service_name(&self.resource.attributes)
    }
}

/// One stored log record with its resource and scope.
#[derive(Debug, Clone, PartialEq)]
pub struct LogRow {
    pub resource: Resource,
    pub scope: Option<InstrumentationScope>,
    pub record: LogRecord,
}

impl LogRow {
    pub fn service_name(&self) -> &str {
        service_name(&self.resource.attributes)
    }
}

/// `service.name` from resource attributes, defaulting to `unknown_service`.
pub fn service_name(attributes: &[KeyValue]) -> &str {
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    attributes
        .iter()
        .find(|kv| kv.key == "service.name")
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| match &v.value {
            Some(Value::StringValue(s)) if !s.is_empty() => Some(s.as_str()),
            _ => None,
        })
        .unwrap_or("unknown_service")
}

/// OTLP span kinds as the store indexes them (lower-case, Jaeger's spelling).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SpanKind {
    Unspecified,
    Internal,
    Server,
    Client,
    Producer,
    Consumer,
}

impl SpanKind {
    pub fn from_otlp(kind: i32) -> Self {
        match kind {
            1 => Self::Internal,
            2 => Self::Server,
            3 => Self::Client,
            4 => Self::Producer,
            5 => Self::Consumer,
            _ => Self::Unspecified,
        }
    }

    /// Jaeger's lower-case name (`server`, `client`, …); `""` for unspecified.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unspecified => "",
            Self::Internal => "internal",
            Self::Server => "server",
            Self::Client => "client",
            Self::Producer => "producer",
            Self::Consumer => "consumer",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "" | "unspecified" => Self::Unspecified,
            "internal" => Self::Internal,
            "server" => Self::Server,
            "client" => Self::Client,
            "producer" => Self::Producer,
            "consumer" => Self::Consumer,
            _ => return None,
        })
    }
}

/// An operation (span name) seen for a service, with its kind.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Operation {
    pub name: String,
    pub kind: SpanKind,
}

/// A trace search: every set condition must hold for one and the same span.
///
/// Times are Unix nanoseconds; `start`/`end` bound the span start time.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TraceQuery {
    pub service: Option<String>,
    pub operation: Option<String>,
    /// `key=value` conditions over span attributes, resource attributes and the
    /// synthetic tags `error` (`true` when the status is ERROR), `span.kind`
    /// and `otel.status_code`. Values compare as strings (`500`, `true`, `1.5`).
    pub tags: Vec<(String, String)>,
    pub min_duration_ns: Option<u64>,
    pub max_duration_ns: Option<u64>,
    pub start_unix_nano: Option<u64>,
    pub end_unix_nano: Option<u64>,
    /// Maximum number of traces to return (newest first).
    pub limit: usize,
}

/// A log search. All set conditions must hold.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogQuery {
    /// Full text over the body (tantivy query syntax: words, "phrases", AND/OR/NOT).
    pub text: Option<String>,
    pub service: Option<String>,
    /// Minimum severity number (OTLP: 5 debug, 9 info, 13 warn, 17 error, 21 fatal).
    pub min_severity: Option<i32>,
    pub trace_id: Option<TraceId>,
    pub start_unix_nano: Option<u64>,
    pub end_unix_nano: Option<u64>,
    /// Maximum number of records to return (newest first).
    pub limit: usize,
}

/// Why a query failed.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The query itself is wrong (bad syntax, bad value): the caller's fault.
    #[error("invalid query: {0}")]
    Invalid(String),
    /// The store failed (I/O, corrupt index): our fault.
    #[error("storage error: {0}")]
    Storage(String),
}

/// Read access to stored spans. Implemented by `index::SpanIndex`.
pub trait TraceStore: Send + Sync + 'static {
    /// All service names that have spans, sorted.
    fn services(&self) -> Result<Vec<String>, QueryError>;
    /// Operations of one service, optionally only of one kind, sorted.
    fn operations(
        &self,
        service: &str,
        kind: Option<SpanKind>,
    ) -> Result<Vec<Operation>, QueryError>;
    /// Every span of a trace, across all partitions (no time window).
    /// An unknown trace gives an empty vector.
    fn trace(&self, trace_id: &TraceId) -> Result<Vec<SpanRecord>, QueryError>;
    /// Ids of traces with at least one span matching the query, newest first,
    /// at most `query.limit`.
    fn find_trace_ids(&self, query: &TraceQuery) -> Result<Vec<TraceId>, QueryError>;
    /// One page of traces matching a search-language query, newest first
    /// (see [`crate::query::TraceSearch`]).
    fn search_traces(
        &self,
        search: &crate::query::TraceSearch,
    ) -> Result<crate::query::TracePage, QueryError>;
}

/// Read access to stored logs. Implemented by `index::LogIndex`.
///
/// The label methods (used by the Loki API) have generic implementations
/// over [`LogStore::search_logs`] that read at most
/// [`super::GENERIC_SCAN_CAP`] records; `index::LogIndex` answers them
/// from its index instead.
pub trait LogStore: Send + Sync + 'static {
    /// Matching records, newest first, at most `query.limit`.
    fn search_logs(&self, query: &LogQuery) -> Result<Vec<LogRow>, QueryError>;

    /// Records in `sel`'s window whose labels may satisfy its matchers (a
    /// store may return a superset: callers re-check), ordered by time in
    /// `direction`, at most `limit`. Fewer than `limit` means no more exist.
    fn select_logs(
        &self,
        sel: &super::LogSelect,
        limit: usize,
        direction: super::Direction,
    ) -> Result<Vec<LogRow>, QueryError> {
        let mut rows: Vec<(u64, LogRow)> = generic_rows(self, sel)?
            .into_iter()
            .map(|(row, _)| (super::logql::labels::row_time(&row), row))
            .collect();
        match direction {
            super::Direction::Backward => rows.sort_by_key(|r| std::cmp::Reverse(r.0)),
            super::Direction::Forward => rows.sort_by_key(|r| r.0),
        }
        rows.truncate(limit);
        Ok(rows.into_iter().map(|(_, r)| r).collect())
    }

    /// Records per group and time bucket, for matchers that are all
    /// [`super::LabelMatcher::pushable`].
    fn count_logs(&self, q: &super::CountQuery) -> Result<Vec<super::CountSeries>, QueryError> {
        let (start, end) = q.buckets.bounds();
        let sel = super::LogSelect {
            matchers: q.matchers.clone(),
            start_unix_nano: start,
            end_unix_nano: end,
        };
        let mut groups: std::collections::BTreeMap<Vec<String>, Vec<u64>> = Default::default();
        for (row, labels) in generic_rows(self, &sel)? {
            let Some(b) = q.buckets.index(super::logql::labels::row_time(&row)) else {
                continue;
            };
            let key = q
                .group_by
                .iter()
                .map(|l| {
                    let name = match l {
                        super::FastLabel::ServiceName => "service_name",
                        super::FastLabel::Level => "level",
                    };
                    labels.get(name).unwrap_or_default().to_string()
                })
                .collect();
            groups
                .entry(key)
                .or_insert_with(|| vec![0; q.buckets.count])[b] += 1;
        }
        Ok(groups
            .into_iter()
            .map(|(group, counts)| super::CountSeries { group, counts })
            .collect())
    }

    /// Label names of the records in `[start, end]`, sorted (never
    /// `trace_id`/`span_id`/`severity_number`: no use for browsing).
    fn log_label_names(&self, start: u64, end: u64) -> Result<Vec<String>, QueryError> {
        let sel = super::LogSelect {
            matchers: Vec::new(),
            start_unix_nano: start,
            end_unix_nano: end,
        };
        let mut names = std::collections::BTreeSet::new();
        for (_, labels) in generic_rows(self, &sel)? {
            for (n, _, _) in labels.iter() {
                if !super::ID_LABELS.contains(&n) && n != "severity_number" {
                    names.insert(n.to_string());
                }
            }
        }
        Ok(names.into_iter().collect())
    }

    /// Values of label `name` among the records `sel` selects, sorted.
    fn log_label_values(
        &self,
        name: &str,
        sel: &super::LogSelect,
    ) -> Result<Vec<String>, QueryError> {
        let mut values = std::collections::BTreeSet::new();
        for (_, labels) in generic_rows(self, sel)? {
            if let Some(v) = labels.get(name) {
                values.insert(v.to_string());
            }
        }
        Ok(values.into_iter().collect())
    }

    /// Size statistics of the records `sel` selects.
    fn log_stats(&self, sel: &super::LogSelect) -> Result<super::LogStats, QueryError> {
        let mut stats = super::LogStats::default();
        let mut streams = std::collections::BTreeSet::new();
        for (row, labels) in generic_rows(self, sel)? {
            stats.entries += 1;
            stats.bytes += super::logql::labels::row_line(&row).len() as u64;
            streams.insert((
                labels.get("service_name").unwrap_or_default().to_string(),
                labels.get("level").unwrap_or_default().to_string(),
            ));
        }
        stats.streams = streams.len() as u64;
        stats.chunks = u64::from(stats.entries > 0);
        Ok(stats)
    }
}

/// The generic implementations' scan: every record in the window (at most
/// [`super::GENERIC_SCAN_CAP`], more is an error), checked in memory.
fn generic_rows<S: LogStore + ?Sized>(
    store: &S,
    sel: &super::LogSelect,
) -> Result<Vec<(LogRow, super::logql::labels::LabelSet)>, QueryError> {
    let rows = store.search_logs(&LogQuery {
        start_unix_nano: Some(sel.start_unix_nano),
        end_unix_nano: Some(sel.end_unix_nano),
        limit: super::GENERIC_SCAN_CAP + 1,
        ..LogQuery::default()
    })?;
    if rows.len() > super::GENERIC_SCAN_CAP {
        return Err(QueryError::Invalid(format!(
            "more than {} records in the time range; narrow it",
            super::GENERIC_SCAN_CAP
        )));
    }
    Ok(super::select::generic_select(rows, sel))
}
