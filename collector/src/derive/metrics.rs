//! Self-metrics of the derive subsystem (`skein_derive_*`): the hand-off
//! queue, the pending pair store, series caps and saving. The span metrics
//! and service-graph series themselves are rendered by
//! [`super::exposition::DerivedCollector`].

use prometheus::{IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

#[derive(Clone)]
pub struct DeriveMetrics {
    pub queue_bytes: IntGauge,
    pub queue_records: IntGauge,
    pub queue_dropped: IntCounter,
    pub spans: IntCounter,
    pub undecodable: IntCounter,
    pub pending: IntGauge,
    pub pending_dropped: IntCounter,
    pub unpaired: IntCounterVec,
    pub edges: IntCounter,
    pub series: IntGaugeVec,
    pub overflow: IntCounterVec,
    pub save_errors: IntCounter,
}

impl DeriveMetrics {
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        fn reg<C: prometheus::core::Collector + Clone + 'static>(
            r: &Registry,
            c: C,
        ) -> Result<C, prometheus::Error> {
            r.register(Box::new(c.clone()))?;
            Ok(c)
        }
        Ok(DeriveMetrics {
            queue_bytes: reg(registry, IntGauge::new(
                "skein_derive_queue_bytes",
                "Bytes of WAL span records waiting for the derive worker.",
            )?)?,
            queue_records: reg(registry, IntGauge::new(
                "skein_derive_queue_records",
                "WAL span records waiting for the derive worker.",
            )?)?,
            queue_dropped: reg(registry, IntCounter::new(
                "skein_derive_queue_dropped_total",
                "WAL span records not handed to the derive worker because its queue was full.",
            )?)?,
            spans: reg(registry, IntCounter::new(
                "skein_derive_spans_total",
                "Spans processed for the dependency graph and span metrics.",
            )?)?,
            undecodable: reg(registry, IntCounter::new(
                "skein_derive_undecodable_records_total",
                "WAL span records the derive worker could not parse.",
            )?)?,
            pending: reg(registry, IntGauge::new(
                "skein_derive_pending_spans",
                "Spans waiting in the pair store for their caller or callee.",
            )?)?,
            pending_dropped: reg(registry, IntCounter::new(
                "skein_derive_pending_dropped_total",
                "Spans not kept for pairing because the pair store was full.",
            )?)?,
            unpaired: reg(registry, IntCounterVec::new(
                Opts::new(
                    "skein_derive_unpaired_spans_total",
                    "Spans that expired without a partner (side=client: no callee and no peer attribute; side=server: the caller never arrived).",
                ),
                &["side"],
            )?)?,
            edges: reg(registry, IntCounter::new(
                "skein_derive_edges_total",
                "Calls (caller → callee edges) found.",
            )?)?,
            series: reg(registry, IntGaugeVec::new(
                Opts::new(
                    "skein_derive_series",
                    "Label sets in use, by processor (span_metrics, service_graph).",
                ),
                &["processor"],
            )?)?,
            overflow: reg(registry, IntCounterVec::new(
                Opts::new(
                    "skein_derive_series_overflow_total",
                    "Spans or calls not counted because --max-series was reached, by processor (span_metrics, service_graph, dependencies).",
                ),
                &["processor"],
            )?)?,
            save_errors: reg(registry, IntCounter::new(
                "skein_derive_save_errors_total",
                "Failed saves of the dependency graph to the data dir.",
            )?)?,
        })
    }
}
