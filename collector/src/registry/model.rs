//! The registry's public data types: what a heartbeat asks for, what an
//! instance looks like from outside ([`InstanceView`]) and what changed
//! ([`Event`]). Plain data with serde; no logic beyond small conversions.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// Lifecycle state of an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InstanceState {
    Alive,
    Expired,
    Deregistered,
}

impl InstanceState {
    pub const ALL: [InstanceState; 3] = [
        InstanceState::Alive,
        InstanceState::Expired,
        InstanceState::Deregistered,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            InstanceState::Alive => "alive",
            InstanceState::Expired => "expired",
            InstanceState::Deregistered => "deregistered",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// Health an instance reports about itself (Consul-style check status).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    #[default]
    Passing,
    Warning,
    Critical,
}

impl Health {
    pub fn parse(text: &str) -> Option<Health> {
        match text {
            "passing" => Some(Health::Passing),
            "warning" => Some(Health::Warning),
            "critical" => Some(Health::Critical),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Health::Passing => "passing",
            Health::Warning => "warning",
            Health::Critical => "critical",
        }
    }
}

/// Where an instance's liveness comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// Heartbeats over the HTTP API; Skein's own TTL decides expiry.
    #[default]
    Http,
    /// A key under `--etcd-prefix`; etcd's lease decides expiry.
    Etcd,
}

/// A validated heartbeat (or an etcd put turned into one).
#[derive(Debug, Clone, PartialEq)]
pub struct Heartbeat {
    pub service: String,
    pub instance: String,
    pub ttl_ms: u32,
    pub heartbeat_revision: u64,
    pub address: String,
    pub metadata: BTreeMap<String, String>,
    pub health: Health,
    pub source: Source,
}

/// What a heartbeat did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeartbeatOutcome {
    /// First heartbeat of a new instance.
    Registered,
    /// A dead (expired or deregistered) instance came back: a restart.
    Revived,
    /// Address, metadata, health or TTL changed.
    Updated,
    /// A plain renewal: no revision bump.
    Renewed,
}

impl HeartbeatOutcome {
    pub fn as_label(self) -> &'static str {
        match self {
            HeartbeatOutcome::Registered => "registered",
            HeartbeatOutcome::Revived => "revived",
            HeartbeatOutcome::Updated => "updated",
            HeartbeatOutcome::Renewed => "renewed",
        }
    }
}

/// The answer to an accepted heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HeartbeatReply {
    pub lease_id: u64,
    /// The registry's global revision after this heartbeat.
    pub revision: u64,
    pub heartbeat_revision: u64,
    pub expires_at_unix_ms: u64,
    #[serde(skip)]
    pub outcome: HeartbeatOutcome,
}

/// One instance as the API, the snapshot file and the alerts module see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceView {
    pub service: String,
    pub instance: String,
    pub state: InstanceState,
    #[serde(default)]
    pub source: Source,
    pub address: String,
    pub metadata: BTreeMap<String, String>,
    pub health: Health,
    pub ttl_ms: u32,
    pub heartbeat_revision: u64,
    /// Identifies this incarnation (equal to its `create_revision`).
    pub lease_id: u64,
    pub create_revision: u64,
    pub mod_revision: u64,
    pub version: u64,
    pub registered_at_unix_ms: u64,
    pub last_heartbeat_unix_ms: u64,
    /// When the lease runs out (alive instances with a Skein TTL only).
    pub expires_at_unix_ms: Option<u64>,
    /// When Skein declared it expired.
    pub expired_at_unix_ms: Option<u64>,
    /// When it was deregistered, and why.
    pub deregistered_at_unix_ms: Option<u64>,
    pub deregister_reason: Option<String>,
    /// Restarts (new `create_revision` after expiry or deregistration) in the last hour.
    pub restarts_last_hour: u32,
    pub restarts_total: u32,
    /// Last time spans or logs with this `service.instance.id` arrived (not persisted).
    #[serde(default)]
    pub last_traffic_unix_ms: Option<u64>,
}

/// Kind of membership change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventType {
    Registered,
    Updated,
    Deregistered,
    Expired,
    Revived,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Registered => "registered",
            EventType::Updated => "updated",
            EventType::Deregistered => "deregistered",
            EventType::Expired => "expired",
            EventType::Revived => "revived",
        }
    }
}

/// One membership change: exactly one per global revision.
///
/// The service and instance names are those of `value`; they are written
/// at the top level too (the watch API's shape) but stored once: the
/// history holds thousands of events.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(from = "EventWire")]
pub struct Event {
    pub revision: u64,
    pub kind: EventType,
    pub at_unix_ms: u64,
    /// The instance after the change.
    pub value: InstanceView,
    /// The instance before the change (`None` when it did not exist).
    /// Boxed: the history keeps thousands of events, most without one.
    pub prev: Option<Box<InstanceView>>,
}

impl Event {
    pub fn service(&self) -> &str {
        &self.value.service
    }

    pub fn instance(&self) -> &str {
        &self.value.instance
    }
}

/// An event as written: `{"revision","type","service","instance",
/// "at_unix_ms","value","prev"}`.
#[derive(Serialize)]
struct EventOut<'a> {
    revision: u64,
    #[serde(rename = "type")]
    kind: EventType,
    service: &'a str,
    instance: &'a str,
    at_unix_ms: u64,
    value: &'a InstanceView,
    prev: Option<&'a InstanceView>,
}

impl Serialize for Event {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        EventOut {
            revision: self.revision,
            kind: self.kind,
            service: self.service(),
            instance: self.instance(),
            at_unix_ms: self.at_unix_ms,
            value: &self.value,
            prev: self.prev.as_deref(),
        }
        .serialize(s)
    }
}

/// An event as read; the top-level names repeat `value`'s and are not kept.
#[derive(Deserialize)]
struct EventWire {
    revision: u64,
    #[serde(rename = "type")]
    kind: EventType,
    at_unix_ms: u64,
    value: InstanceView,
    prev: Option<Box<InstanceView>>,
}

impl From<EventWire> for Event {
    fn from(w: EventWire) -> Self {
        Event {
            revision: w.revision,
            kind: w.kind,
            at_unix_ms: w.at_unix_ms,
            value: w.value,
            prev: w.prev,
        }
    }
}

/// Events are shared between the history, watchers and subscribers.
pub type SharedEvent = Arc<Event>;
