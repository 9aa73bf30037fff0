//! Heartbeats: keep the local service's lease alive in the collector's
//! registry while its health check passes.
//!
//! Every `--heartbeat-interval` the [`Heartbeater`] probes the service
//! ([`health`]), asks the [`gate`] what that means, and sends a heartbeat
//! ([`client`]) carrying the next `heartbeat_revision` ([`revision`],
//! persisted before sending so it only grows across restarts). A 409 (stale
//! revision) jumps the revision past the collector's last accepted one and
//! retries once. On shutdown it deregisters with a reason. Owns the revision
//! file; must not touch the data path.

pub mod client;
pub mod gate;
pub mod health;
pub mod metrics;
pub mod revision;

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::admin::status::AgentStatus;
use crate::config::HeartbeatConfig;
use client::{HeartbeatReply, HeartbeatRequest, RegistryClient, RegistryError};
use gate::{Action, Gate, GateState};
use health::Prober;
pub use metrics::HeartbeatMetrics;
use revision::RevisionFile;

/// What one tick did (for tests and logs).
#[derive(Debug, Clone, PartialEq)]
pub enum Tick {
    Renewed { revision: u64 },
    ReportedCritical { revision: u64 },
    Skipped,
    Failed(String),
}

/// One instance's registration.
pub struct Heartbeater {
    cfg: HeartbeatConfig,
    instance: String,
    client: RegistryClient,
    prober: Prober,
    gate: Gate,
    revision: RevisionFile,
    metrics: HeartbeatMetrics,
    status: Arc<AgentStatus>,
    registered: bool,
}

impl Heartbeater {
    pub fn new(
        cfg: HeartbeatConfig,
        instance: String,
        client: RegistryClient,
        prober: Prober,
        revision: RevisionFile,
        metrics: HeartbeatMetrics,
        status: Arc<AgentStatus>,
    ) -> Self {
        status.update_registration(|r| {
            r.state = "registering";
            r.service = Some(cfg.service.clone());
            r.instance = Some(instance.clone());
            r.heartbeat_revision = revision.last();
        });
        metrics.revision.set(revision.last() as i64);
        Heartbeater {
            gate: Gate::new(cfg.healthy_after),
            cfg,
            instance,
            client,
            prober,
            revision,
            metrics,
            status,
            registered: false,
        }
    }

    /// Probe, gate, maybe send. Never fails: errors are logged and reported.
    pub async fn tick(&mut self) -> Tick {
        let probe = self.prober.probe().await;
        let passed = probe.is_ok();
        self.metrics
            .checks
            .with_label_values(&[if passed { "pass" } else { "fail" }])
            .inc();
        let before = self.gate.state();
        let action = self.gate.on_check(passed);
        if let Err(why) = &probe {
            if before == GateState::Healthy {
                tracing::warn!(service = %self.cfg.service, "health check failed, renewals stop: {why}");
            }
        }
        match action {
            Action::Skip => {
                self.metrics
                    .heartbeats
                    .with_label_values(&["skipped_unhealthy"])
                    .inc();
                let state = match self.gate.state() {
                    GateState::Recovering(_) => "recovering",
                    _ => "unhealthy",
                };
                self.status.update_registration(|r| r.state = state);
                Tick::Skipped
            }
            Action::Renew | Action::ReportCritical => {
                let health = if action == Action::Renew {
                    "passing"
                } else {
                    "critical"
                };
                match self.send(health).await {
                    Ok((revision, reply)) => {
                        self.registered = true;
                        let result = if action == Action::Renew {
                            "ok"
                        } else {
                            "critical_reported"
                        };
                        self.metrics.heartbeats.with_label_values(&[result]).inc();
                        self.status.update_registration(|r| {
                            r.state = if action == Action::Renew {
                                "registered"
                            } else {
                                "unhealthy"
                            };
                            r.lease_id = Some(match &reply.lease_id {
                                serde_json::Value::String(s) => s.clone(),
                                other => other.to_string(),
                            });
                            r.expires_at_unix_ms = Some(reply.expires_at_unix_ms);
                            r.health = Some(health);
                            r.last_error = None;
                        });
                        if action == Action::Renew {
                            if before != GateState::Healthy {
                                tracing::info!(service = %self.cfg.service, "health check passes again, renewals resume");
                            }
                            Tick::Renewed { revision }
                        } else {
                            Tick::ReportedCritical { revision }
                        }
                    }
                    Err(e) => {
                        self.metrics.heartbeats.with_label_values(&["error"]).inc();
                        tracing::warn!(service = %self.cfg.service, "heartbeat failed: {e}");
                        let msg = e.to_string();
                        self.status.update_registration(|r| {
                            r.state = "failing";
                            r.last_error = Some(msg.clone());
                        });
                        Tick::Failed(msg)
                    }
                }
            }
        }
    }

    /// Send one heartbeat; on 409 jump the revision past the collector's and retry once.
    async fn send(&mut self, health: &'static str) -> Result<(u64, HeartbeatReply), RegistryError> {
        let mut min = 0;
        for attempt in 0..2 {
            let revision = self.revision.next(min).map_err(|e| {
                RegistryError::Transport(format!("persisting the heartbeat revision: {e}"))
            })?;
            self.metrics.revision.set(revision as i64);
            self.status
                .update_registration(|r| r.heartbeat_revision = revision);
            let req = HeartbeatRequest {
                service: self.cfg.service.clone(),
                instance: self.instance.clone(),
                ttl: humantime::format_duration(self.cfg.ttl).to_string(),
                heartbeat_revision: revision,
                address: self.cfg.address.clone(),
                metadata: BTreeMap::new(),
                health,
            };
            match self.client.heartbeat(&req).await {
                Ok(reply) => return Ok((revision, reply)),
                Err(RegistryError::Stale { last_accepted }) if attempt == 0 => {
                    self.metrics.heartbeats.with_label_values(&["stale"]).inc();
                    tracing::warn!(
                        sent = revision,
                        last_accepted,
                        "the collector has a newer heartbeat revision; jumping to {}",
                        last_accepted + 1
                    );
                    min = last_accepted + 1;
                }
                Err(e) => return Err(e),
            }
        }
        Err(RegistryError::Transport(
            "stale heartbeat revision twice in a row".into(),
        ))
    }

    /// Deregister (graceful shutdown); only if this run registered.
    pub async fn deregister(&mut self, reason: &str) {
        if !self.registered {
            return;
        }
        match self
            .client
            .deregister(&self.cfg.service, &self.instance, reason)
            .await
        {
            Ok(()) => {
                self.metrics
                    .heartbeats
                    .with_label_values(&["deregistered"])
                    .inc();
                self.status
                    .update_registration(|r| r.state = "deregistered");
                tracing::info!(service = %self.cfg.service, instance = %self.instance, "deregistered: {reason}");
            }
            Err(e) => tracing::warn!("deregistration failed: {e}"),
        }
    }

    /// Tick every interval until `cancel`, then deregister.
    pub async fn run(mut self, cancel: CancellationToken) {
        let mut every = tokio::time::interval(self.cfg.interval);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = every.tick() => {}
                _ = cancel.cancelled() => break,
            }
            tokio::select! {
                _ = self.tick() => {}
                _ = cancel.cancelled() => break,
            }
        }
        self.deregister("agent shut down (SIGTERM)").await;
    }
}

#[cfg(test)]
mod tests;
