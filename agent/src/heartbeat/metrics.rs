//! Heartbeat metrics (`skein_agent_heartbeat*`, `skein_agent_health_checks_total`).

use prometheus::{IntCounterVec, IntGauge, Registry};

use crate::telemetry::{counter, gauge1};

#[derive(Clone)]
pub struct HeartbeatMetrics {
    /// Heartbeats by result: `ok`, `stale` (409), `error`, `critical_reported`, `skipped_unhealthy`.
    pub heartbeats: IntCounterVec,
    /// Health checks by result: `pass`, `fail`.
    pub checks: IntCounterVec,
    /// The last heartbeat revision sent.
    pub revision: IntGauge,
}

impl HeartbeatMetrics {
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        Ok(HeartbeatMetrics {
            heartbeats: counter(
                registry,
                "skein_agent_heartbeats_total",
                "Registry heartbeats by result.",
                &["result"],
            )?,
            checks: counter(
                registry,
                "skein_agent_health_checks_total",
                "Health checks of the local service by result.",
                &["result"],
            )?,
            revision: gauge1(
                registry,
                "skein_agent_heartbeat_revision",
                "The last heartbeat revision sent to the collector.",
            )?,
        })
    }
}
