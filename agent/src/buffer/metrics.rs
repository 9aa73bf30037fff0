//! Disk buffer metrics (`skein_agent_buffer_*`).

use prometheus::{Histogram, IntCounter, IntGauge, Registry};

use crate::telemetry::{gauge1, histogram};

/// Gauges and counters of the disk buffer.
#[derive(Clone)]
pub struct BufferMetrics {
    /// Bytes appended but not yet acknowledged by the collector.
    pub bytes: IntGauge,
    /// The `--buffer-max-bytes` limit.
    pub max_bytes: IntGauge,
    /// Segment files on disk.
    pub segments: IntGauge,
    /// Appends waiting for the writer thread (bounded queue).
    pub queue_depth: IntGauge,
    /// Appends refused because the buffer was full.
    pub full: IntCounter,
    /// Corrupt frames skipped on read (torn tails are repaired, not counted).
    pub corrupt: IntCounter,
    /// Duration of each `fdatasync` of a segment.
    pub fsync_seconds: Histogram,
    /// Failed `fdatasync`s (segments or the directory).
    pub fsync_errors: IntCounter,
}

impl BufferMetrics {
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let counter = |name: &str, help: &str| -> Result<IntCounter, prometheus::Error> {
            let c = IntCounter::new(name, help)?;
            registry.register(Box::new(c.clone()))?;
            Ok(c)
        };
        Ok(BufferMetrics {
            bytes: gauge1(
                registry,
                "skein_agent_buffer_bytes",
                "Bytes in the disk buffer not yet acknowledged by the collector.",
            )?,
            max_bytes: gauge1(
                registry,
                "skein_agent_buffer_max_bytes",
                "The disk buffer limit (--buffer-max-bytes).",
            )?,
            segments: gauge1(
                registry,
                "skein_agent_buffer_segments",
                "Segment files of the disk buffer.",
            )?,
            queue_depth: gauge1(
                registry,
                "skein_agent_buffer_append_queue_depth",
                "Appends waiting for the buffer's writer thread.",
            )?,
            full: counter(
                "skein_agent_buffer_full_total",
                "Appends refused with 503/UNAVAILABLE because the disk buffer was full.",
            )?,
            corrupt: counter(
                "skein_agent_buffer_corrupt_frames_total",
                "Corrupt buffer frames skipped while reading.",
            )?,
            fsync_seconds: histogram(
                registry,
                "skein_agent_buffer_fsync_seconds",
                "Duration of each fdatasync of a disk buffer segment.",
                &[],
            )?
            .with_label_values(&[] as &[&str]),
            fsync_errors: counter(
                "skein_agent_buffer_fsync_errors_total",
                "Failed fdatasyncs of disk buffer segments or their directory.",
            )?,
        })
    }

    /// Unregistered metrics for unit tests.
    #[cfg(test)]
    pub fn for_tests() -> Self {
        Self::register(&Registry::new()).unwrap_or_else(|e| panic!("metrics: {e}"))
    }
}
