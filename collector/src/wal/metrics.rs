//! WAL metrics (`skein_wal_*`).

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry};

/// Reasons an append is refused (`skein_wal_rejected_total{reason}`).
pub const REJECT_REASONS: [&str; 5] = ["backlog", "disk_full", "closed", "io_error", "too_large"];

#[derive(Clone)]
pub struct WalMetrics {
    pub appended_records: IntCounter,
    pub appended_bytes: IntCounter,
    pub fsync_seconds: Histogram,
    pub group_records: Histogram,
    pub segments: IntGauge,
    pub disk_bytes: IntGauge,
    pub backlog_bytes: IntGauge,
    pub queue_depth: IntGauge,
    pub queue_limit: IntGauge,
    pub rejected: IntCounterVec,
    pub torn_tail_repairs: IntCounter,
    pub dropped_segments: IntCounter,
}

fn reg<C: prometheus::core::Collector + Clone + 'static>(
    r: &Registry,
    c: C,
) -> Result<C, prometheus::Error> {
    r.register(Box::new(c.clone()))?;
    Ok(c)
}

fn counter(r: &Registry, name: &str, help: &str) -> Result<IntCounter, prometheus::Error> {
    reg(r, IntCounter::new(name, help)?)
}

fn gauge(r: &Registry, name: &str, help: &str) -> Result<IntGauge, prometheus::Error> {
    reg(r, IntGauge::new(name, help)?)
}

fn histogram(
    r: &Registry,
    name: &str,
    help: &str,
    buckets: Vec<f64>,
) -> Result<Histogram, prometheus::Error> {
    reg(
        r,
        Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets))?,
    )
}

impl WalMetrics {
    pub fn register(r: &Registry) -> Result<Self, prometheus::Error> {
        let rejected = reg(
            r,
            IntCounterVec::new(
                Opts::new("skein_wal_rejected_total", "Appends refused, by reason."),
                &["reason"],
            )?,
        )?;
        for reason in REJECT_REASONS {
            rejected.with_label_values(&[reason]);
        }
        Ok(WalMetrics {
            appended_records: counter(r, "skein_wal_appended_records_total", "Records appended and fsynced.")?,
            appended_bytes: counter(r, "skein_wal_appended_bytes_total", "Framed bytes appended and fsynced.")?,
            fsync_seconds: histogram(
                r,
                "skein_wal_fsync_duration_seconds",
                "Duration of one group write + fdatasync.",
                vec![0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0],
            )?,
            group_records: histogram(
                r,
                "skein_wal_group_commit_records",
                "Records made durable by one fsync (group commit size).",
                vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0],
            )?,
            segments: gauge(r, "skein_wal_segments", "Segment files on disk.")?,
            disk_bytes: gauge(r, "skein_wal_disk_bytes", "Bytes in WAL segment files.")?,
            backlog_bytes: gauge(r, "skein_wal_backlog_bytes", "Durable bytes not yet checkpointed by the indexer.")?,
            queue_depth: gauge(r, "skein_wal_append_queue_depth", "Appends waiting for the writer thread.")?,
            queue_limit: gauge(r, "skein_wal_append_queue_limit", "Capacity of the append queue.")?,
            rejected,
            torn_tail_repairs: counter(
                r,
                "skein_wal_torn_tail_repairs_total",
                "Torn or corrupt records cut from the log at open.",
            )?,
            dropped_segments: counter(
                r,
                "skein_wal_dropped_segments_total",
                "Segments deleted at open because they followed a corrupt record or had a bad header.",
            )?,
        })
    }
}
