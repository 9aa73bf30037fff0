//! Registry metrics (`skein_registry_*`).

use prometheus::{
    Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};

#[derive(Clone)]
pub struct RegistryMetrics {
    /// Instances by state (`alive`, `expired`, `deregistered`).
    pub instances: IntGaugeVec,
    /// The global registry revision.
    pub revision: IntGauge,
    /// Heartbeats by result (`registered`, `renewed`, `updated`, `revived`,
    /// `stale`, `invalid`, `full`, `unavailable`).
    pub heartbeats: IntCounterVec,
    /// New incarnations of an instance that was expired or deregistered.
    pub restarts: IntCounter,
    /// Membership events by type.
    pub events: IntCounterVec,
    /// How late each expiry was detected after its deadline.
    pub expiry_delay: Histogram,
    /// Messages waiting for the log writer (bounded by `persist::QUEUE_CAPACITY`).
    pub log_queue_depth: IntGauge,
    /// Log write or snapshot failures.
    pub log_errors: IntCounter,
    /// Events in the watch history (bounded by `--registry-watch-history`).
    pub history_events: IntGauge,
    /// Open watch long-polls and SSE streams.
    pub watchers: IntGauge,
    /// Events a slow subscriber or SSE stream missed (it must resync).
    pub subscriber_lagged: IntCounter,
    /// Instance ids whose data-plane traffic is tracked.
    pub traffic_tracked: IntGauge,
    /// Instance ids not tracked because the traffic table was full.
    pub traffic_overflow: IntCounter,
    /// The etcd revision the etcd source has applied.
    pub etcd_revision: IntGauge,
    /// etcd watch events applied, by type (`put`, `expired`, `deleted`).
    pub etcd_events: IntCounterVec,
    /// etcd connection or watch failures (each followed by a reconnect).
    pub etcd_errors: IntCounter,
}

impl RegistryMetrics {
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        macro_rules! reg {
            ($m:expr) => {{
                let m = $m;
                registry.register(Box::new(m.clone()))?;
                m
            }};
        }
        Ok(RegistryMetrics {
            instances: reg!(IntGaugeVec::new(
                Opts::new("skein_registry_instances", "Registered instances by state."),
                &["state"]
            )?),
            revision: reg!(IntGauge::new(
                "skein_registry_revision",
                "The registry's global revision (bumped by every membership change)."
            )?),
            heartbeats: reg!(IntCounterVec::new(
                Opts::new("skein_registry_heartbeats_total", "Heartbeats by result."),
                &["result"]
            )?),
            restarts: reg!(IntCounter::new(
                "skein_registry_restarts_total",
                "Instances that came back (new create_revision) after expiry or deregistration."
            )?),
            events: reg!(IntCounterVec::new(
                Opts::new("skein_registry_events_total", "Membership events by type."),
                &["type"]
            )?),
            expiry_delay: reg!(Histogram::with_opts(
                HistogramOpts::new(
                    "skein_registry_expiry_delay_seconds",
                    "Time from a lease's deadline to its expiry being detected."
                )
                .buckets(vec![0.01, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0])
            )?),
            log_queue_depth: reg!(IntGauge::new(
                "skein_registry_log_queue_depth",
                "Registry log messages waiting for the writer thread."
            )?),
            log_errors: reg!(IntCounter::new(
                "skein_registry_log_errors_total",
                "Registry log write or snapshot failures."
            )?),
            history_events: reg!(IntGauge::new(
                "skein_registry_history_events",
                "Events kept for watches (older ones are compacted)."
            )?),
            watchers: reg!(IntGauge::new(
                "skein_registry_watchers",
                "Open registry watch requests and streams."
            )?),
            subscriber_lagged: reg!(IntCounter::new(
                "skein_registry_subscriber_lagged_total",
                "Events missed by slow registry subscribers (they resynchronise)."
            )?),
            traffic_tracked: reg!(IntGauge::new(
                "skein_registry_traffic_tracked",
                "service.instance.id values whose last span/log arrival is tracked."
            )?),
            traffic_overflow: reg!(IntCounter::new(
                "skein_registry_traffic_overflow_total",
                "Arrivals of new service.instance.id values not tracked (table full)."
            )?),
            etcd_revision: reg!(IntGauge::new(
                "skein_registry_etcd_revision",
                "The etcd revision the etcd source has applied up to."
            )?),
            etcd_events: reg!(IntCounterVec::new(
                Opts::new(
                    "skein_registry_etcd_events_total",
                    "etcd watch events applied, by type."
                ),
                &["type"]
            )?),
            etcd_errors: reg!(IntCounter::new(
                "skein_registry_etcd_errors_total",
                "etcd connection or watch failures."
            )?),
        })
    }
}
