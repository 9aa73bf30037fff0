//! What the alert engine reads from the rest of the collector, as small
//! traits and plain data (dependency inversion): the registry's liveness view
//! and its event stream ([`LivenessSource`]), and the dependency graph's
//! callers of a service ([`CallersSource`]).
//!
//! The registry and the dependency graph live elsewhere (`registry/`,
//! the trace graph); adapters from them implement these traits in the
//! pipeline. This module must not depend on either.

use std::collections::BTreeMap;

/// Liveness of one registered instance, as the registry sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstanceState {
    Alive,
    Expired,
    Deregistered,
}

/// One instance in the liveness view.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceView {
    pub service: String,
    pub instance: String,
    pub state: InstanceState,
    /// `passing`, `warning` or `critical` as last reported.
    pub health: String,
    /// Unix ms of the last accepted heartbeat.
    pub last_heartbeat_unix_ms: u64,
    /// The instance's own revision of that heartbeat.
    pub heartbeat_revision: u64,
    /// The lease TTL in ms.
    pub ttl_ms: u64,
    /// When the lease ran out (only for `Expired`).
    pub expired_at_unix_ms: Option<u64>,
    /// Last time spans or logs carrying this `service.instance.id` arrived,
    /// if the source tracks it (`None`: unknown, the engine asks the trace store).
    pub last_traffic_unix_ms: Option<u64>,
    /// Metadata labels (e.g. `agent`, `host`, `zone`).
    pub metadata: BTreeMap<String, String>,
}

/// What happened to an instance, in registry revision order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistryEventKind {
    Registered,
    Updated,
    Deregistered,
    Expired,
    Revived,
}

/// One registry event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryEvent {
    pub revision: u64,
    pub kind: RegistryEventKind,
    pub service: String,
    pub instance: String,
}

/// The registry as the alert engine needs it.
pub trait LivenessSource: Send + Sync + 'static {
    /// Every known instance (alive, expired within retention, deregistered)
    /// as each liveness evaluation reads it: the alive ones only counted, so
    /// a large registry is not copied every second.
    fn summary(&self) -> LivenessSummary;
    /// A stream of membership events; the engine re-evaluates the liveness
    /// rules as soon as one arrives instead of waiting for its next tick.
    /// `None` when the source has no event stream (polling only).
    fn subscribe(&self) -> Option<tokio::sync::broadcast::Receiver<RegistryEvent>>;
}

/// The liveness rules' input: alive instances counted per service, every
/// other known instance (expired, deregistered) in full.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LivenessSummary {
    pub alive_per_service: BTreeMap<String, usize>,
    pub not_alive: Vec<InstanceView>,
}

impl LivenessSummary {
    /// Summarise a full list (sources that hold one anyway, tests).
    pub fn from_instances(all: Vec<InstanceView>) -> Self {
        let mut s = LivenessSummary::default();
        for i in all {
            if i.state == InstanceState::Alive {
                *s.alive_per_service.entry(i.service).or_default() += 1;
            } else {
                s.not_alive.push(i);
            }
        }
        s
    }

    /// Alive instances over all services.
    pub fn alive(&self) -> usize {
        self.alive_per_service.values().sum()
    }
}

/// One caller of a service in the dependency graph.
#[derive(Debug, Clone, PartialEq)]
pub struct Caller {
    pub service: String,
    pub calls_per_minute: f64,
}

/// The trace dependency graph as the alert engine needs it.
pub trait CallersSource: Send + Sync + 'static {
    /// Services that called `service` in the last `window_ms` milliseconds
    /// before `now_unix_ms`, busiest first. `None`: no graph available.
    fn callers(&self, service: &str, now_unix_ms: u64, window_ms: u64) -> Option<Vec<Caller>>;
}

/// No registry plugged in: no instances, no events.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoLiveness;

impl LivenessSource for NoLiveness {
    fn summary(&self) -> LivenessSummary {
        LivenessSummary::default()
    }
    fn subscribe(&self) -> Option<tokio::sync::broadcast::Receiver<RegistryEvent>> {
        None
    }
}

/// No dependency graph plugged in.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoCallers;

impl CallersSource for NoCallers {
    fn callers(&self, _: &str, _: u64, _: u64) -> Option<Vec<Caller>> {
        None
    }
}
