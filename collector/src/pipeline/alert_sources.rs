//! Adapters that plug the service registry and the dependency graph into the
//! alert engine's source traits (`alerts::source`). The alert engine must not
//! depend on `registry/` or `derive/`, and they must not know about alerts;
//! this file is the only place that sees both sides.

use std::time::Duration;

use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::alerts::source::{
    Caller, CallersSource, InstanceState, InstanceView, LivenessSource, LivenessSummary,
    RegistryEvent, RegistryEventKind,
};
use crate::derive::Derived;
use crate::registry::{self, Registry};

/// Registry events buffered per alert-engine subscriber. A lagging engine
/// loses events, not correctness: it re-reads the whole liveness view on
/// every evaluation and only uses events to evaluate sooner.
const EVENT_BUFFER: usize = 1024;

/// The registry as a [`LivenessSource`].
pub struct RegistryLiveness {
    registry: Registry,
    events: broadcast::Sender<RegistryEvent>,
}

impl RegistryLiveness {
    /// The adapter and the task that forwards registry events to it (it ends
    /// when `cancel` fires or the registry closes).
    pub fn start(registry: Registry, cancel: CancellationToken) -> (Self, JoinHandle<()>) {
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        let mut sub = registry.subscribe();
        let tx = events.clone();
        let task = tokio::spawn(async move {
            loop {
                let next = tokio::select! {
                    _ = cancel.cancelled() => return,
                    next = sub.recv() => next,
                };
                match next {
                    // No receiver yet (the engine subscribes once it runs):
                    // nothing to deliver, nothing lost that matters.
                    Ok(e) => {
                        let _ = tx.send(RegistryEvent {
                            revision: e.revision,
                            kind: event_kind(e.kind),
                            service: e.service().to_owned(),
                            instance: e.instance().to_owned(),
                        });
                    }
                    Err(registry::SubscriptionError::Lagged { .. }) => continue,
                    Err(_) => return,
                }
            }
        });
        (RegistryLiveness { registry, events }, task)
    }
}

fn event_kind(kind: registry::EventType) -> RegistryEventKind {
    match kind {
        registry::EventType::Registered => RegistryEventKind::Registered,
        registry::EventType::Updated => RegistryEventKind::Updated,
        registry::EventType::Deregistered => RegistryEventKind::Deregistered,
        registry::EventType::Expired => RegistryEventKind::Expired,
        registry::EventType::Revived => RegistryEventKind::Revived,
    }
}

fn view(v: registry::InstanceView) -> InstanceView {
    InstanceView {
        state: match v.state {
            registry::InstanceState::Alive => InstanceState::Alive,
            registry::InstanceState::Expired => InstanceState::Expired,
            registry::InstanceState::Deregistered => InstanceState::Deregistered,
        },
        health: v.health.as_str().to_string(),
        last_heartbeat_unix_ms: v.last_heartbeat_unix_ms,
        heartbeat_revision: v.heartbeat_revision,
        ttl_ms: u64::from(v.ttl_ms),
        expired_at_unix_ms: v.expired_at_unix_ms,
        last_traffic_unix_ms: v.last_traffic_unix_ms,
        metadata: v.metadata,
        service: v.service,
        instance: v.instance,
    }
}

impl LivenessSource for RegistryLiveness {
    fn summary(&self) -> LivenessSummary {
        let (alive, others) = self.registry.liveness_summary();
        let mut alive_per_service = std::collections::BTreeMap::new();
        for (service, n) in alive {
            *alive_per_service.entry(service.to_string()).or_insert(0) += n;
        }
        LivenessSummary {
            alive_per_service,
            not_alive: others.into_iter().map(view).collect(),
        }
    }

    fn subscribe(&self) -> Option<broadcast::Receiver<RegistryEvent>> {
        Some(self.events.subscribe())
    }
}

/// The dependency graph as a [`CallersSource`].
pub struct GraphCallers(pub Derived);

impl CallersSource for GraphCallers {
    fn callers(&self, service: &str, _now_unix_ms: u64, window_ms: u64) -> Option<Vec<Caller>> {
        let callers = self.0.callers(service, Duration::from_millis(window_ms));
        Some(
            callers
                .into_iter()
                .map(|c| Caller {
                    service: c.service,
                    calls_per_minute: c.calls_per_minute,
                })
                .collect(),
        )
    }
}
