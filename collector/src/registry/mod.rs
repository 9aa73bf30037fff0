//! The service registry: leases with etcd-like revisions, watch, expiry,
//! durability, the data-plane cross-check and the etcd source (DESIGN §5).
//!
//! ```text
//! model.rs     public types: Heartbeat, InstanceView, Event
//! state.rs     the pure state machine: instances, revisions, expiry
//! deadlines.rs the expiry heap of 8-byte (deadline tick, slot) entries
//! slab.rs      chunked instance storage addressed by u32 slots
//! history.rs   the bounded event ring (watch, list at a revision, 410)
//! persist.rs   fuzzy snapshot in slices + CRC-framed log in <data dir>/registry,
//!              writer thread
//! subscribe.rs in-process event feed with a lag policy (alerts, SSE)
//! traffic.rs   last span/log arrival per service.instance.id
//! etcd.rs      watch an etcd prefix and mirror its leased keys
//! clock.rs     injectable clock
//! metrics.rs   skein_registry_*
//! ```
//!
//! [`Registry`] is the handle everything else uses; it owns one lock around
//! the state and the log queue so that the order of log records, revisions
//! and published events is the same. It must not know HTTP shapes (those are
//! in `api/registry/`) nor alert rules (the alerts module consumes
//! [`Registry::snapshot`] and [`Registry::subscribe`]).

pub mod clock;
mod deadlines;
pub mod etcd;
pub mod history;
pub mod metrics;
pub mod model;
pub mod persist;
mod slab;
pub mod state;
pub mod subscribe;
pub mod traffic;

#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

pub use clock::{Clock, ManualClock, SystemClock};
pub use history::Compacted;
pub use metrics::RegistryMetrics;
pub use model::*;
pub use subscribe::{Subscription, SubscriptionError};

use persist::{LogStats, Msg, RecordRef, Slices, SnapshotHead};
use state::{State, StateError};
use traffic::Traffic;

/// Expiry checks run at least this often (detection within ~this of a deadline).
const TICK: Duration = Duration::from_millis(100);
/// Dead instances past retention are purged this often.
const PURGE_EVERY_MS: u64 = 60_000;
/// At most this many expiries are processed under one lock hold.
const EXPIRE_BATCH: usize = 5_000;

/// Settings from the configuration.
#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// `<data dir>/registry`.
    pub dir: PathBuf,
    /// How long expired/deregistered instances stay listed.
    pub expired_retention: Duration,
    /// Events kept for watches.
    pub history: usize,
    /// Most instances (any state) held; more registrations get 503.
    pub max_instances: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("stale heartbeat revision")]
    Stale { last_accepted: u64 },
    #[error("no such instance {service}/{instance}")]
    NotFound { service: String, instance: String },
    #[error("the registry holds its maximum of {max} instances (--registry-max-instances)")]
    Full { max: usize },
    #[error("required revision has been compacted; the oldest available revision is {oldest}")]
    Compacted { oldest: u64 },
    #[error("{0}")]
    Unavailable(String),
    #[error("registry log: {0}")]
    Persist(String),
    #[error("opening the registry: {0}")]
    Open(#[from] persist::PersistError),
}

impl From<StateError> for RegistryError {
    fn from(e: StateError) -> Self {
        match e {
            StateError::Stale { last_accepted } => RegistryError::Stale { last_accepted },
            StateError::NotFound { service, instance } => {
                RegistryError::NotFound { service, instance }
            }
            StateError::Full { max } => RegistryError::Full { max },
        }
    }
}

impl From<Compacted> for RegistryError {
    fn from(c: Compacted) -> Self {
        RegistryError::Compacted { oldest: c.oldest }
    }
}

struct Locked {
    state: State,
    /// `None` once closed.
    log: Option<mpsc::Sender<Msg>>,
    last_purge: u64,
}

struct Inner {
    locked: Mutex<Locked>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    stats: Arc<LogStats>,
    clock: Arc<dyn Clock>,
    events: broadcast::Sender<SharedEvent>,
    revision_tx: watch::Sender<u64>,
    traffic: Arc<Traffic>,
    metrics: RegistryMetrics,
    retention_ms: u64,
}

/// The registry handle. Cheap to clone.
#[derive(Clone)]
pub struct Registry {
    inner: Arc<Inner>,
}

type Ack = Option<oneshot::Receiver<Result<(), String>>>;

impl Registry {
    /// Load the persisted state, give every alive lease a fresh full TTL and
    /// start the log writer thread.
    pub fn open(
        cfg: RegistryConfig,
        clock: Arc<dyn Clock>,
        metrics: RegistryMetrics,
    ) -> Result<Self, RegistryError> {
        let mut state = State::new(cfg.history, cfg.max_instances);
        let (seq, valid) = persist::load(&cfg.dir, &mut state)?;
        let now = clock.now_ms();
        state.rearm_all(now);
        let stats = Arc::new(LogStats::default());
        let (log, writer) = persist::start_writer(&cfg.dir, seq, valid, stats.clone())?;
        tracing::info!(
            revision = state.revision(),
            instances = state.len(),
            alive = state.count(InstanceState::Alive),
            "registry loaded; every alive lease re-armed with a full TTL"
        );
        let (events, _) = broadcast::channel(subscribe::CAPACITY);
        let (revision_tx, _) = watch::channel(state.revision());
        let traffic = Arc::new(Traffic::new(
            cfg.max_instances,
            clock.clone(),
            metrics.clone(),
        ));
        let registry = Registry {
            inner: Arc::new(Inner {
                locked: Mutex::new(Locked {
                    state,
                    log: Some(log),
                    last_purge: now,
                }),
                writer: Mutex::new(Some(writer)),
                stats,
                clock,
                events,
                revision_tx,
                traffic,
                metrics,
                retention_ms: cfg.expired_retention.as_millis() as u64,
            }),
        };
        registry.update_gauges(&registry.inner.locked.lock().state);
        Ok(registry)
    }

    pub fn metrics(&self) -> &RegistryMetrics {
        &self.inner.metrics
    }

    pub fn now_ms(&self) -> u64 {
        self.inner.clock.now_ms()
    }

    /// The data-plane hook for the ingest side.
    pub fn traffic_observer(&self) -> Arc<dyn crate::ingest::TrafficObserver> {
        self.inner.traffic.clone()
    }

    fn update_gauges(&self, state: &State) {
        let m = &self.inner.metrics;
        for s in InstanceState::ALL {
            m.instances
                .with_label_values(&[s.as_str()])
                .set(state.count(s) as i64);
        }
        m.revision.set(state.revision() as i64);
        m.history_events.set(state.history().len() as i64);
        m.restarts.reset();
        m.restarts.inc_by(state.restarts_total());
    }

    /// Publish an event that was just recorded (called with the lock held).
    fn publish(&self, event: &SharedEvent) {
        let m = &self.inner.metrics;
        m.events.with_label_values(&[event.kind.as_str()]).inc();
        let _ = self.inner.events.send(event.clone());
        self.inner.revision_tx.send_replace(event.revision);
    }

    fn reserve(log: &Option<mpsc::Sender<Msg>>) -> Result<mpsc::Permit<'_, Msg>, RegistryError> {
        let log = log
            .as_ref()
            .ok_or_else(|| RegistryError::Unavailable("the registry is shutting down".into()))?;
        log.try_reserve().map_err(|_| {
            RegistryError::Unavailable(
                "the registry log is behind (its queue is full); retry shortly".into(),
            )
        })
    }

    fn send_event(permit: mpsc::Permit<'_, Msg>, event: &Event) -> Ack {
        let (tx, rx) = oneshot::channel();
        permit.send(Msg::Append {
            bytes: RecordRef::Event { e: event }.frame(),
            sync: true,
            done: Some(tx),
        });
        Some(rx)
    }

    /// Start a snapshot once the log is large (called with the lock held).
    fn maybe_rotate(&self, g: &mut Locked) {
        let stats = &self.inner.stats;
        if stats.log_bytes.load(Ordering::Relaxed) < persist::ROTATE_BYTES
            || stats.rotating.load(Ordering::Relaxed)
        {
            return;
        }
        if let Ok(permit) = Self::reserve(&g.log) {
            stats.rotating.store(true, Ordering::Relaxed);
            permit.send(self.rotation(&g.state, None));
        }
    }

    /// A rotation message: the snapshot's head now, its instances later, a
    /// slice at a time under the lock (see `persist.rs`). The slices hold
    /// the registry weakly, so the writer never keeps it alive.
    fn rotation(&self, state: &State, done: Option<persist::Ack>) -> Msg {
        let weak = Arc::downgrade(&self.inner);
        let slices: Slices = Box::new(move |from| {
            let inner = weak.upgrade()?;
            let now = inner.clock.now_ms();
            let g = inner.locked.lock();
            Some(g.state.snapshot_slice(from, persist::SLICE, now))
        });
        Msg::Rotate {
            head: Box::new(SnapshotHead::of(state)),
            slices,
            done,
        }
    }

    async fn durable(&self, ack: Ack) -> Result<(), RegistryError> {
        let Some(rx) = ack else { return Ok(()) };
        match rx.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                self.inner.metrics.log_errors.inc();
                Err(RegistryError::Persist(e))
            }
            Err(_) => Err(RegistryError::Persist("the log writer stopped".into())),
        }
    }

    /// Accept a heartbeat: register, renew, update or revive. Membership
    /// changes are fsynced before this returns.
    pub async fn heartbeat(&self, hb: Heartbeat) -> Result<HeartbeatReply, RegistryError> {
        let m = &self.inner.metrics;
        let (reply, ack) = {
            let mut guard = self.inner.locked.lock();
            let g = &mut *guard;
            let now = self.inner.clock.now_ms();
            let permit = match Self::reserve(&g.log) {
                Ok(p) => p,
                Err(e) => {
                    m.heartbeats.with_label_values(&["unavailable"]).inc();
                    return Err(e);
                }
            };
            let (service, instance, hb_rev) = (
                hb.service.clone(),
                hb.instance.clone(),
                hb.heartbeat_revision,
            );
            let (reply, event) = match g.state.heartbeat(hb, now) {
                Ok(r) => r,
                Err(e) => {
                    let label = match e {
                        StateError::Stale { .. } => "stale",
                        StateError::Full { .. } => "full",
                        StateError::NotFound { .. } => "invalid",
                    };
                    m.heartbeats.with_label_values(&[label]).inc();
                    return Err(e.into());
                }
            };
            let ack = match &event {
                None => {
                    permit.send(Msg::Append {
                        bytes: RecordRef::Renew {
                            s: &service,
                            i: &instance,
                            h: hb_rev,
                            at: now,
                        }
                        .frame(),
                        sync: false,
                        done: None,
                    });
                    None
                }
                Some(ev) => {
                    let ack = Self::send_event(permit, ev);
                    self.publish(ev);
                    self.update_gauges(&g.state);
                    ack
                }
            };
            self.maybe_rotate(g);
            (reply, ack)
        };
        m.heartbeats
            .with_label_values(&[reply.outcome.as_label()])
            .inc();
        self.durable(ack).await?;
        Ok(reply)
    }

    /// Graceful deregistration: no alert. Returns the revision after it.
    pub async fn deregister(
        &self,
        service: &str,
        instance: &str,
        reason: Option<&str>,
    ) -> Result<u64, RegistryError> {
        let (rev, ack) = {
            let mut guard = self.inner.locked.lock();
            let g = &mut *guard;
            let now = self.inner.clock.now_ms();
            let permit = Self::reserve(&g.log)?;
            let event = g.state.deregister(service, instance, reason, now)?;
            let ack = match &event {
                Some(ev) => {
                    let ack = Self::send_event(permit, ev);
                    self.publish(ev);
                    self.update_gauges(&g.state);
                    ack
                }
                None => None,
            };
            (g.state.revision(), ack)
        };
        self.durable(ack).await?;
        Ok(rev)
    }

    /// Expire every lease whose deadline has passed (up to a batch) and, once
    /// a minute, purge dead instances past retention. Returns the number
    /// expired. The expiry driver calls this; tests call it with a
    /// [`ManualClock`].
    pub fn tick(&self) -> usize {
        let mut guard = self.inner.locked.lock();
        let g = &mut *guard;
        let now = self.inner.clock.now_ms();
        let mut n = 0;
        while n < EXPIRE_BATCH {
            // A full log queue leaves the rest for the next tick.
            let Ok(permit) = Self::reserve(&g.log) else {
                break;
            };
            let Some((event, late_ms)) = g.state.expire_next(now) else {
                break;
            };
            permit.send(Msg::Append {
                bytes: RecordRef::Event { e: &event }.frame(),
                sync: true,
                done: None,
            });
            self.publish(&event);
            self.inner
                .metrics
                .expiry_delay
                .observe(late_ms as f64 / 1000.0);
            tracing::info!(
                service = %event.service(),
                instance = %event.instance(),
                revision = event.revision,
                late_ms,
                "registry: lease expired"
            );
            n += 1;
        }
        if let Some(log) = &g.log {
            let depth = log.max_capacity() - log.capacity();
            self.inner.metrics.log_queue_depth.set(depth as i64);
        }
        let errors = self.inner.stats.errors.swap(0, Ordering::Relaxed);
        self.inner.metrics.log_errors.inc_by(errors);
        if now >= g.last_purge + PURGE_EVERY_MS {
            g.last_purge = now;
            self.purge(g, now);
        }
        if n > 0 {
            self.update_gauges(&g.state);
            self.maybe_rotate(g);
        }
        n
    }

    fn purge(&self, g: &mut Locked, now: u64) {
        let cutoff = now.saturating_sub(self.inner.retention_ms);
        self.inner.traffic.prune(cutoff);
        let purged = g.state.purge(now, self.inner.retention_ms);
        for (s, i) in &purged {
            if let Ok(permit) = Self::reserve(&g.log) {
                permit.send(Msg::Append {
                    bytes: RecordRef::Purge { s, i }.frame(),
                    sync: false,
                    done: None,
                });
            }
        }
        if !purged.is_empty() {
            tracing::info!(
                count = purged.len(),
                "registry: purged instances past --expired-retention"
            );
            self.update_gauges(&g.state);
        }
    }

    /// How long the driver may sleep before the next deadline.
    fn next_wakeup(&self) -> Duration {
        let g = self.inner.locked.lock();
        let now = self.inner.clock.now_ms();
        match g.state.next_deadline() {
            Some(at) if at <= now => Duration::from_millis(1),
            Some(at) => TICK.min(Duration::from_millis(at - now)),
            None => TICK,
        }
    }

    /// The expiry driver: runs until `cancel`.
    pub async fn run_expiry(self, cancel: CancellationToken) {
        loop {
            let n = self.tick();
            let wait = if n >= EXPIRE_BATCH {
                Duration::from_millis(1)
            } else {
                self.next_wakeup()
            };
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Every instance (alive, expired, deregistered) with its last data-plane
    /// arrival, sorted by service and instance.
    pub fn snapshot(&self) -> Vec<InstanceView> {
        let mut views = {
            let g = self.inner.locked.lock();
            g.state.snapshot(self.inner.clock.now_ms())
        };
        self.join_traffic(&mut views);
        views
    }

    /// Alive instances counted per service, and every other instance in
    /// full (see [`State::liveness_summary`]); for the alert engine, which
    /// evaluates this every second and on every membership change.
    pub fn liveness_summary(&self) -> (Vec<(Arc<str>, usize)>, Vec<InstanceView>) {
        let (alive, mut others) = {
            let g = self.inner.locked.lock();
            g.state.liveness_summary(self.inner.clock.now_ms())
        };
        self.join_traffic(&mut others);
        (alive, others)
    }

    fn join_traffic(&self, views: &mut [InstanceView]) {
        self.inner.traffic.with(|seen| {
            for v in views.iter_mut() {
                v.last_traffic_unix_ms = seen.get(v.instance.as_str()).copied();
            }
        });
    }

    /// One instance, if known.
    pub fn get(&self, service: &str, instance: &str) -> Option<InstanceView> {
        let mut v = {
            let g = self.inner.locked.lock();
            g.state.get(service, instance, self.inner.clock.now_ms())?
        };
        v.last_traffic_unix_ms = self.inner.traffic.last_seen(&v.instance);
        Some(v)
    }

    /// Instances at `revision` (current when `None`), with the revision the
    /// answer is for.
    pub fn list_at(
        &self,
        revision: Option<u64>,
    ) -> Result<(u64, Vec<InstanceView>), RegistryError> {
        let (rev, mut views) = {
            let g = self.inner.locked.lock();
            let current = g.state.revision();
            let rev = revision.map_or(current, |r| r.min(current));
            (rev, g.state.list_at(rev, self.inner.clock.now_ms())?)
        };
        self.join_traffic(&mut views);
        Ok((rev, views))
    }

    pub fn revision(&self) -> u64 {
        self.inner.locked.lock().state.revision()
    }

    /// Events from `from` (inclusive), at most `limit`, and the current revision.
    pub fn events_since(
        &self,
        from: u64,
        limit: usize,
    ) -> Result<(u64, Vec<SharedEvent>), RegistryError> {
        let g = self.inner.locked.lock();
        Ok((g.state.revision(), g.state.history().since(from, limit)?))
    }

    /// The oldest revision a watch can start at.
    pub fn oldest_revision(&self) -> u64 {
        self.inner.locked.lock().state.history().oldest()
    }

    /// A live event feed starting after the current revision.
    pub fn subscribe(&self) -> Subscription {
        let g = self.inner.locked.lock();
        Subscription::new(
            self.inner.events.subscribe(),
            self.inner.metrics.subscriber_lagged.clone(),
            g.state.revision(),
        )
    }

    /// A feed from `from` (inclusive): the history backlog, then live events,
    /// without gaps or duplicates.
    pub fn subscribe_from(
        &self,
        from: u64,
    ) -> Result<(Vec<SharedEvent>, Subscription), RegistryError> {
        let g = self.inner.locked.lock();
        let backlog = g.state.history().since(from, usize::MAX)?;
        let sub = Subscription::new(
            self.inner.events.subscribe(),
            self.inner.metrics.subscriber_lagged.clone(),
            g.state.revision().max(from.saturating_sub(1)),
        );
        Ok((backlog, sub))
    }

    /// Changes to the global revision (for long-polls).
    pub fn revision_watch(&self) -> watch::Receiver<u64> {
        self.inner.revision_tx.subscribe()
    }

    // ---- etcd source --------------------------------------------------------

    /// The etcd revision applied so far (0 = never synced).
    pub fn etcd_revision(&self) -> i64 {
        self.inner.locked.lock().state.etcd_revision
    }

    /// Record (durably) that etcd events up to `rev` are applied.
    pub async fn set_etcd_revision(&self, rev: i64) -> Result<(), RegistryError> {
        let ack = {
            let mut guard = self.inner.locked.lock();
            let g = &mut *guard;
            if rev <= g.state.etcd_revision {
                return Ok(());
            }
            let permit = Self::reserve(&g.log)?;
            g.state.etcd_revision = rev;
            let (tx, rx) = oneshot::channel();
            permit.send(Msg::Append {
                bytes: RecordRef::Etcd { rev }.frame(),
                sync: true,
                done: Some(tx),
            });
            Some(rx)
        };
        self.inner.metrics.etcd_revision.set(rev);
        self.durable(ack).await
    }

    /// An etcd key went away: its lease expired (`expired`) or it was deleted.
    pub async fn etcd_removed(
        &self,
        service: &str,
        instance: &str,
        expired: bool,
        reason: &str,
    ) -> Result<(), RegistryError> {
        let ack = {
            let mut guard = self.inner.locked.lock();
            let g = &mut *guard;
            let now = self.inner.clock.now_ms();
            let permit = Self::reserve(&g.log)?;
            let event = if expired {
                g.state.expire(service, instance, Some(reason), now)
            } else {
                match g.state.deregister(service, instance, Some(reason), now) {
                    Ok(e) => e,
                    Err(StateError::NotFound { .. }) => None,
                    Err(e) => return Err(e.into()),
                }
            };
            match &event {
                Some(ev) => {
                    let ack = Self::send_event(permit, ev);
                    self.publish(ev);
                    self.update_gauges(&g.state);
                    ack
                }
                None => None,
            }
        };
        self.durable(ack).await
    }

    /// Alive instances that came from etcd (for a full resync).
    pub fn etcd_alive(&self) -> Vec<(String, String, i64)> {
        self.snapshot()
            .into_iter()
            .filter(|v| v.source == Source::Etcd && v.state == InstanceState::Alive)
            .map(|v| {
                let lease = v
                    .metadata
                    .get(etcd::LEASE_KEY)
                    .and_then(|l| l.parse().ok())
                    .unwrap_or(0);
                (v.service, v.instance, lease)
            })
            .collect()
    }

    /// Write a snapshot now (after everything queued before it) and start a
    /// new log; waits until it is on disk.
    pub async fn write_snapshot(&self) -> Result<(), RegistryError> {
        let ack = {
            let mut guard = self.inner.locked.lock();
            let g = &mut *guard;
            let permit = Self::reserve(&g.log)?;
            self.inner.stats.rotating.store(true, Ordering::Relaxed);
            let (tx, rx) = oneshot::channel();
            permit.send(self.rotation(&g.state, Some(tx)));
            Some(rx)
        };
        self.durable(ack).await
    }

    // ---- shutdown -------------------------------------------------------------

    /// Stop accepting changes, write out the log and stop its thread.
    pub async fn close(&self) {
        let sender = self.inner.locked.lock().log.take();
        drop(sender);
        let writer = self.inner.writer.lock().take();
        if let Some(w) = writer {
            let _ = tokio::task::spawn_blocking(move || w.join()).await;
        }
    }
}
