//! Index metrics (`skein_index_*`). Query latency is measured by the API layer.

use super::mapped::MappedMetrics;
use prometheus::{
    Gauge, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry,
};

/// Counters and gauges of the indexer and the partitions.
#[derive(Clone)]
pub struct IndexMetrics {
    /// Documents (spans, log records) added, by signal (`spans`, `logs`).
    pub documents: IntCounterVec,
    /// WAL records whose payload could not be decoded (skipped), by signal.
    pub decode_failures: IntCounterVec,
    /// WAL records skipped because they were already committed (replay after a crash).
    pub replay_skipped: IntCounterVec,
    /// Commits, by signal.
    pub commits: IntCounterVec,
    /// Commit duration (includes waiting for queued documents), by signal.
    pub commit_duration: HistogramVec,
    /// Now minus the ingest time of the last committed record.
    pub lag_seconds: Gauge,
    /// WAL bytes appended but not yet read by the indexer (when the source knows).
    pub lag_bytes: IntGauge,
    /// Last LSN committed to both indexes.
    pub committed_lsn: IntGauge,
    /// Errors reading or checkpointing the record source.
    pub source_errors: IntCounter,
    /// 1 while the indexer is paused (test hook).
    pub paused: IntGauge,
    /// Open partitions, by signal.
    pub partitions: IntGaugeVec,
    /// Committed documents per partition, by signal and partition (`YYYYMMDDHH`).
    pub partition_documents: IntGaugeVec,
    /// Partitions deleted by retention, by signal.
    pub partitions_dropped: IntCounterVec,
    /// Partitions moved to quarantine because they could not be opened, by signal.
    pub partitions_quarantined: IntCounterVec,
    /// Service/operation pairs not remembered because the set is full.
    pub operations_overflow: IntCounter,
    /// Mapped index files and the releases of their pages (`mapped.rs`).
    pub(crate) mapped: MappedMetrics,
}

impl IndexMetrics {
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        fn reg<T: prometheus::core::Collector + Clone + 'static>(
            registry: &Registry,
            c: T,
        ) -> Result<T, prometheus::Error> {
            registry.register(Box::new(c.clone()))?;
            Ok(c)
        }
        let counter_vec = |name: &str, help: &str, labels: &[&str]| {
            reg(registry, IntCounterVec::new(Opts::new(name, help), labels)?)
        };
        let signal = &["signal"];
        Ok(IndexMetrics {
            documents: counter_vec(
                "skein_index_documents_total",
                "Documents (spans, log records) added to the index.",
                signal,
            )?,
            decode_failures: counter_vec(
                "skein_index_decode_failures_total",
                "WAL records that could not be decoded and were skipped.",
                signal,
            )?,
            replay_skipped: counter_vec(
                "skein_index_replay_skipped_total",
                "WAL records skipped because the index had already committed them.",
                signal,
            )?,
            commits: counter_vec("skein_index_commits_total", "Index commits.", signal)?,
            commit_duration: reg(
                registry,
                HistogramVec::new(
                    HistogramOpts::new(
                        "skein_index_commit_duration_seconds",
                        "Time to commit an index, including queued documents.",
                    )
                    .buckets(vec![
                        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                    ]),
                    signal,
                )?,
            )?,
            lag_seconds: reg(
                registry,
                Gauge::new(
                    "skein_index_lag_seconds",
                    "Seconds between ingest of the last committed record and its commit.",
                )?,
            )?,
            lag_bytes: reg(
                registry,
                IntGauge::new(
                    "skein_index_lag_bytes",
                    "WAL bytes not yet read by the indexer.",
                )?,
            )?,
            committed_lsn: reg(
                registry,
                IntGauge::new(
                    "skein_index_committed_lsn",
                    "Last WAL LSN committed to the indexes.",
                )?,
            )?,
            source_errors: reg(
                registry,
                IntCounter::new(
                    "skein_index_source_errors_total",
                    "Errors reading or checkpointing the WAL.",
                )?,
            )?,
            paused: reg(
                registry,
                IntGauge::new("skein_index_paused", "1 while the indexer is paused.")?,
            )?,
            partitions: reg(
                registry,
                IntGaugeVec::new(
                    Opts::new("skein_index_partitions", "Open time partitions."),
                    signal,
                )?,
            )?,
            partition_documents: reg(
                registry,
                IntGaugeVec::new(
                    Opts::new(
                        "skein_index_partition_documents",
                        "Committed documents per time partition.",
                    ),
                    &["signal", "partition"],
                )?,
            )?,
            partitions_dropped: counter_vec(
                "skein_index_partitions_dropped_total",
                "Partitions deleted by retention.",
                signal,
            )?,
            partitions_quarantined: counter_vec(
                "skein_index_partitions_quarantined_total",
                "Partitions that could not be opened and were moved aside.",
                signal,
            )?,
            operations_overflow: reg(
                registry,
                IntCounter::new(
                    "skein_index_operations_overflow_total",
                    "Service/operation pairs not remembered because the set is full.",
                )?,
            )?,
            mapped: MappedMetrics {
                bytes: reg(
                    registry,
                    IntGauge::new(
                        "skein_index_mapped_bytes",
                        "Bytes of index files memory-mapped for reading (whole files, resident or not).",
                    )?,
                )?,
                files: reg(
                    registry,
                    IntGauge::new("skein_index_mapped_files", "Index files memory-mapped for reading.")?,
                )?,
                releases: reg(
                    registry,
                    IntCounter::new(
                        "skein_index_mapped_releases_total",
                        "Passes that released the pages of mapped index files from the process (MADV_DONTNEED).",
                    )?,
                )?,
            },
        })
    }
}
