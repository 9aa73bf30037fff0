//! Receiver metrics (`skein_agent_receiver_*`).

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Registry};

use crate::telemetry::counter;

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
            duration: {
                let h = HistogramVec::new(
                    HistogramOpts::new(
                        "skein_agent_receiver_request_duration_seconds",
                        "Time to answer an app's export, including the disk buffer fsync.",
                    )
                    .buckets(vec![
                        0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
                    ]),
                    &["signal", "transport"],
                )?;
                registry.register(Box::new(h.clone()))?;
                h
            },
        })
    }
}
