//! Tailer metrics (`skein_agent_tail_*`).

use prometheus::{IntCounterVec, IntGauge, IntGaugeVec, Registry};

use crate::telemetry::{counter, gauge, gauge1};

#[derive(Clone)]
pub struct TailMetrics {
    /// Records (lines or joined multi-line records) buffered, by file.
    pub lines: IntCounterVec,
    /// Bytes not yet read, by file (removed when the file is dropped).
    pub lag_bytes: IntGaugeVec,
    /// Files followed.
    pub files: IntGauge,
    /// Rotations seen, by kind (`rename`, `truncate`).
    pub rotations: IntCounterVec,
    /// Polls that could not buffer their lines, by reason (`buffer_full`, `error`); retried.
    pub stalled: IntCounterVec,
}

impl TailMetrics {
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        Ok(TailMetrics {
            lines: counter(
                registry,
                "skein_agent_tail_lines_total",
                "Log records read from tailed files and buffered.",
                &["file"],
            )?,
            lag_bytes: gauge(
                registry,
                "skein_agent_tail_lag_bytes",
                "Bytes of a tailed file not yet read.",
                &["file"],
            )?,
            files: gauge1(registry, "skein_agent_tail_files", "Files being tailed.")?,
            rotations: counter(
                registry,
                "skein_agent_tail_rotations_total",
                "Log rotations seen, by kind.",
                &["kind"],
            )?,
            stalled: counter(
                registry,
                "skein_agent_tail_stalled_total",
                "Tail polls whose lines could not be buffered (retried later), by reason.",
                &["reason"],
            )?,
        })
    }
}
