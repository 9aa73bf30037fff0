//! Ingest metrics (`skein_ingest_*`).

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

/// Counters and histograms of the OTLP receivers.
#[derive(Clone)]
pub struct IngestMetrics {
    /// Requests by signal, transport and result (`ok`, `partial`, `bad_request`, …).
    pub requests: IntCounterVec,
    /// Items (spans, log records) received, by signal.
    pub received: IntCounterVec,
    /// Items made durable, by signal.
    pub accepted: IntCounterVec,
    /// Items rejected, by signal and reason (validation reasons, `backpressure`, `disk_full`, …).
    pub rejected: IntCounterVec,
    /// Request body bytes as received (before gzip inflation), by signal and transport.
    pub request_bytes: IntCounterVec,
    /// Time from request start to answer, by signal and transport.
    pub duration: HistogramVec,
}

impl IngestMetrics {
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let counter =
            |name: &str, help: &str, labels: &[&str]| -> Result<IntCounterVec, prometheus::Error> {
                let c = IntCounterVec::new(Opts::new(name, help), labels)?;
                registry.register(Box::new(c.clone()))?;
                Ok(c)
            };
        let m = IngestMetrics {
            requests: counter(
                "skein_ingest_requests_total",
                "OTLP export requests by signal, transport and result.",
                &["signal", "transport", "result"],
            )?,
            received: counter(
                "skein_ingest_received_total",
                "Spans or log records received.",
                &["signal"],
            )?,
            accepted: counter(
                "skein_ingest_accepted_total",
                "Spans or log records made durable in the WAL and acknowledged.",
                &["signal"],
            )?,
            rejected: counter(
                "skein_ingest_rejected_total",
                "Spans or log records rejected, by reason.",
                &["signal", "reason"],
            )?,
            request_bytes: counter(
                "skein_ingest_request_bytes_total",
                "Request body bytes received (before decompression).",
                &["signal", "transport"],
            )?,
            duration: {
                let h = HistogramVec::new(
                    HistogramOpts::new(
                        "skein_ingest_request_duration_seconds",
                        "Time to answer an export request, including the WAL fsync.",
                    )
                    .buckets(vec![
                        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                    ]),
                    &["signal", "transport"],
                )?;
                registry.register(Box::new(h.clone()))?;
                h
            },
        };
        Ok(m)
    }
}
