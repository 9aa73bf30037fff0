//! What `GET /status` reports, written by the pipeline's parts.
//!
//! The exporter records collector reachability, the heartbeat loop the
//! registration state, the tailer its files. Small, bounded (one entry per
//! tailed file) and lock-light; no I/O.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use serde::Serialize;

/// Collector reachability as seen by the exporter.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CollectorStatus {
    /// `None` until the first export attempt.
    pub reachable: Option<bool>,
    pub last_success_unix_ms: Option<u64>,
    pub last_error: Option<String>,
}

/// Registration in the collector's registry.
#[derive(Debug, Clone, Serialize)]
pub struct RegistrationStatus {
    /// `disabled` (no --service), `registering`, `registered`,
    /// `unhealthy` (renewals stopped), `recovering`, `failing` (collector
    /// errors), `deregistered`.
    pub state: &'static str,
    pub service: Option<String>,
    pub instance: Option<String>,
    pub heartbeat_revision: u64,
    pub lease_id: Option<String>,
    pub expires_at_unix_ms: Option<u64>,
    pub health: Option<&'static str>,
    pub last_error: Option<String>,
}

/// One tailed file.
#[derive(Debug, Clone, Serialize)]
pub struct TailStatus {
    pub path: String,
    /// Bytes read and made durable in the buffer.
    pub offset: u64,
    pub size: u64,
}

/// Shared status of the running agent.
#[derive(Debug)]
pub struct AgentStatus {
    ready: AtomicBool,
    collector: Mutex<CollectorStatus>,
    registration: Mutex<RegistrationStatus>,
    tail: Mutex<Vec<TailStatus>>,
}

impl Default for AgentStatus {
    fn default() -> Self {
        AgentStatus {
            ready: AtomicBool::new(false),
            collector: Mutex::new(CollectorStatus::default()),
            registration: Mutex::new(RegistrationStatus {
                state: "disabled",
                service: None,
                instance: None,
                heartbeat_revision: 0,
                lease_id: None,
                expires_at_unix_ms: None,
                health: None,
                last_error: None,
            }),
            tail: Mutex::new(Vec::new()),
        }
    }
}

pub fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl AgentStatus {
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Release);
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    pub fn collector_ok(&self) {
        let mut c = self.collector.lock();
        c.reachable = Some(true);
        c.last_success_unix_ms = Some(now_unix_ms());
    }

    pub fn collector_failed(&self, error: &str) {
        let mut c = self.collector.lock();
        c.reachable = Some(false);
        c.last_error = Some(error.to_string());
    }

    pub fn collector(&self) -> CollectorStatus {
        self.collector.lock().clone()
    }

    pub fn update_registration(&self, f: impl FnOnce(&mut RegistrationStatus)) {
        f(&mut self.registration.lock());
    }

    pub fn registration(&self) -> RegistrationStatus {
        self.registration.lock().clone()
    }

    pub fn set_tail(&self, files: Vec<TailStatus>) {
        *self.tail.lock() = files;
    }

    pub fn tail(&self) -> Vec<TailStatus> {
        self.tail.lock().clone()
    }
}
