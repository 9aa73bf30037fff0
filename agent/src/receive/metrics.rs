//! Receiver metrics (`skein_agent_receiver_*`).

use prometheus::{HistogramVec, IntCounterVec, Registry};

use crate::telemetry::{counter, histogram};

/// Counters of the OTLP receivers.
#[derive(Clone)]
pub struct ReceiveMetrics {
    /// Requests by signal, transport and result (`ok`, `partial`, `unavailable`, …).
    pub requests: IntCounterVec,
    /// Items received from apps, by signal.
    pub received: IntCounterVec,
    /// Items acknowledged to apps (in the disk buffer), by signal.
    pub accepted: IntCounterVec,
    /// Items refused, by signal and reason (validation reasons, `buffer_full`, `buffer_error`).
    pub rejected: IntCounterVec,
    /// Request body bytes as received, by signal and transport.
    pub request_bytes: IntCounterVec,
    /// Time to answer an app, by signal and transport.
    pub duration: HistogramVec,
}

impl ReceiveMetrics {
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        Ok(ReceiveMetrics {
            requests: counter(
                registry,
                "skein_agent_receiver_requests_total",
                "OTLP export requests from apps by signal, transport and result.",
                &["signal", "transport", "result"],
            )?,
            received: counter(
                registry,
                "skein_agent_received_total",
                "Spans or log records received from apps.",
                &["signal"],
            )?,
            accepted: counter(
                registry,
                "skein_agent_accepted_total",
                "Spans or log records written to the disk buffer and acknowledged to apps.",
                &["signal"],
            )?,
            rejected: counter(
                registry,
                "skein_agent_receiver_rejected_total",
                "Spans or log records refused to apps, by reason.",
                &["signal", "reason"],
            )?,
            request_bytes: counter(
                registry,
                "skein_agent_receiver_request_bytes_total",
                "Request body bytes received from apps (before decompression).",
                &["signal", "transport"],
            )?,
            duration: histogram(
                registry,
                "skein_agent_receiver_request_duration_seconds",
                "Time to answer an app's export, including the disk buffer write.",
                &["signal", "transport"],
            )?,
        })
    }
}
