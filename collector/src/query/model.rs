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
pub trait LogStore: Send + Sync + 'static {
    /// Matching records, newest first, at most `query.limit`.
    fn search_logs(&self, query: &LogQuery) -> Result<Vec<LogRow>, QueryError>;
}
