//! Exporter metrics (`skein_agent_export_*`, `skein_agent_sent_*`, `skein_agent_dropped_total`).

use prometheus::{IntCounterVec, IntGauge, Registry};

use crate::telemetry::{counter, gauge1};

/// Counters of the exporter.
#[derive(Clone)]
pub struct ExportMetrics {
    /// Items the collector acknowledged, by signal.
    pub sent: IntCounterVec,
    /// Payload bytes the collector acknowledged (before gzip), by signal.
    pub sent_bytes: IntCounterVec,
    /// Export calls by signal and result (`ok`, `retry`, `dropped`).
    pub requests: IntCounterVec,
    /// Items whose export is being retried, by signal (counted per attempt).
    pub retried: IntCounterVec,
    /// Items dropped, by signal and reason (`rejected_by_collector`, `permanent_error`).
    pub dropped: IntCounterVec,
    /// 1 when the last export call reached the collector, 0 when it failed.
    pub collector_up: IntGauge,
}

impl ExportMetrics {
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        Ok(ExportMetrics {
            sent: counter(
                registry,
                "skein_agent_sent_total",
                "Spans or log records acknowledged by the collector.",
                &["signal"],
            )?,
            sent_bytes: counter(
                registry,
                "skein_agent_sent_bytes_total",
                "Uncompressed payload bytes acknowledged by the collector.",
                &["signal"],
            )?,
            requests: counter(
                registry,
                "skein_agent_export_requests_total",
                "Export calls to the collector by signal and result.",
                &["signal", "result"],
            )?,
            retried: counter(
                registry,
                "skein_agent_retried_total",
                "Spans or log records in export attempts that will be retried.",
                &["signal"],
            )?,
            dropped: counter(
                registry,
                "skein_agent_dropped_total",
                "Spans or log records dropped, by reason.",
                &["signal", "reason"],
            )?,
            collector_up: gauge1(
                registry,
                "skein_agent_collector_up",
                "1 when the last export call reached the collector.",
            )?,
        })
    }
}
