//! The registry's state machine: instances, the global revision, the
//! deadline heap and the event history. Pure and synchronous: every
//! operation takes "now" as an argument and returns the events it produced;
//! the caller (`mod.rs`) persists and publishes them. No I/O, no clock, no
//! locks here.
//!
//! Storage layout (kept small: the target is ≤ 300 bytes per instance beyond
//! metadata): instances live in a chunked slab addressed by `u32`
//! ([`super::slab`]); service names are interned (a thin `Arc`); an instance's
//! name and address share one allocation; what most instances never have
//! (metadata, a deregistration reason, restart times, an end time) is boxed
//! behind one pointer each. Each service has a hash table of slot numbers,
//! hashed by instance name and compared through the slab, so a name is
//! stored once.
//!
//! Expiry uses a min-heap of 8-byte `(deadline, slot)` entries
//! ([`super::deadlines`]) with at most one live entry per instance: the
//! instance keeps its entry's (rounded) deadline in `armed_at`, and an entry
//! whose deadline is not its slot's `armed_at` is stale (superseded by an
//! earlier one, or left by an instance that was removed and whose slot was
//! reused) and is dropped when it comes out. Renewals only move
//! `expires_at`; when an entry comes due for an instance that renewed
//! meanwhile it is pushed again at the new deadline. Detection is O(log n)
//! per due entry, never a scan of all instances.
//!
//! Liveness (the alert engine's view, every second) is kept incrementally:
//! alive counts per service and the set of slots not alive, updated in one
//! place ([`State::counted`]) on every state change, so reading it under the
//! lock never walks the alive instances.

use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::BuildHasher;
use std::sync::Arc;

use hashbrown::HashTable;

use super::deadlines::{Deadlines, MAX_SLOTS};
use super::history::{Compacted, History};
use super::model::*;
use super::slab::Slab;

/// How far back `restarts_last_hour` looks.
const RESTART_WINDOW_MS: u64 = 3_600_000;
/// At most this many restart times are kept per instance.
const MAX_RESTART_TIMES: usize = 64;

/// Why an operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    #[error("stale heartbeat revision")]
    Stale { last_accepted: u64 },
    #[error("no such instance {service}/{instance}")]
    NotFound { service: String, instance: String },
    #[error("the registry holds its maximum of {max} instances")]
    Full { max: usize },
}

/// An interned service name: a thin pointer, 8 bytes in every instance
/// where an `Arc<str>` takes 16.
type ServiceName = Arc<Box<str>>;

#[derive(Debug)]
struct Instance {
    service: ServiceName,
    /// The instance name followed by the address (`name_len` bytes of name).
    text: Box<str>,
    /// `None` when empty (most instances): 8 bytes instead of 24.
    #[allow(clippy::box_collection)]
    metadata: Option<Box<BTreeMap<String, String>>>,
    /// `None` until the instance first ends or restarts.
    cold: Option<Box<Cold>>,
    heartbeat_revision: u64,
    create_revision: u64,
    mod_revision: u64,
    version: u64,
    registered_at: u64,
    last_heartbeat: u64,
    /// 0 = none (not alive, or etcd-governed).
    expires_at: u64,
    /// Rounded deadline of this instance's entry in the heap; 0 = none.
    armed_at: u64,
    ttl_ms: u32,
    restarts_total: u32,
    name_len: u32,
    state: InstanceState,
    health: Health,
    source: Source,
}

/// What an instance carries only once it has ended or restarted.
#[derive(Debug, Default)]
struct Cold {
    /// When it expired or was deregistered; 0 while alive.
    ended_at: u64,
    reason: Option<Box<str>>,
    /// Start times of recent incarnations (restarts), oldest first.
    recent_restarts: Vec<u64>,
}

impl Instance {
    fn text_of(name: &str, address: &str) -> (Box<str>, u32) {
        let mut text = String::with_capacity(name.len() + address.len());
        text.push_str(name);
        text.push_str(address);
        // u32, not u16: etcd keys (instance names) are not bounded like
        // the HTTP API's 253 bytes, and a u32 still fits in the padding.
        (
            text.into_boxed_str(),
            u32::try_from(name.len()).unwrap_or(u32::MAX),
        )
    }

    fn name(&self) -> &str {
        self.text.get(..self.name_len as usize).unwrap_or_default()
    }

    fn address(&self) -> &str {
        self.text.get(self.name_len as usize..).unwrap_or_default()
    }

    fn set_address(&mut self, address: &str) {
        if self.address() != address {
            let (text, len) = Instance::text_of(self.name(), address);
            self.text = text;
            self.name_len = len;
        }
    }

    fn metadata(&self) -> &BTreeMap<String, String> {
        static EMPTY: BTreeMap<String, String> = BTreeMap::new();
        self.metadata.as_deref().unwrap_or(&EMPTY)
    }

    fn set_metadata(&mut self, metadata: BTreeMap<String, String>) {
        self.metadata = (!metadata.is_empty()).then(|| Box::new(metadata));
    }

    fn ended_at(&self) -> u64 {
        self.cold.as_ref().map_or(0, |c| c.ended_at)
    }

    fn reason(&self) -> Option<&str> {
        self.cold.as_ref().and_then(|c| c.reason.as_deref())
    }

    fn cold(&mut self) -> &mut Cold {
        self.cold.get_or_insert_with(Default::default)
    }
}

/// One service's instances.
#[derive(Debug, Default)]
struct Members {
    /// The interned name the instances point to.
    name: ServiceName,
    /// Slot numbers, hashed by instance name (compared through the slab).
    slots: HashTable<u32>,
    /// How many of them are alive.
    alive: usize,
}

/// Everything the registry knows.
#[derive(Debug)]
pub struct State {
    revision: u64,
    slots: Slab<Instance>,
    /// Per service: the slots of its instances, hashed by instance name,
    /// and how many of them are alive.
    services: BTreeMap<Arc<str>, Members>,
    /// Slots of the instances that are not alive (expired, deregistered),
    /// so that liveness never walks the alive ones.
    not_alive: BTreeSet<u32>,
    hasher: RandomState,
    deadlines: Deadlines,
    history: History,
    counts: [usize; 3],
    max_instances: usize,
    restarts_total: u64,
    /// The etcd revision the etcd source has applied up to (0 = none).
    pub etcd_revision: i64,
}

impl State {
    pub fn new(history_capacity: usize, max_instances: usize) -> Self {
        State {
            revision: 0,
            slots: Slab::default(),
            services: BTreeMap::new(),
            not_alive: BTreeSet::new(),
            hasher: RandomState::new(),
            deadlines: Deadlines::default(),
            history: History::new(history_capacity, 1),
            counts: [0; 3],
            max_instances: max_instances.min(MAX_SLOTS),
            restarts_total: 0,
            etcd_revision: 0,
        }
    }

    pub fn revision(&self) -> u64 {
        self.revision
    }

    pub fn count(&self, state: InstanceState) -> usize {
        self.counts[state.index()]
    }

    pub fn len(&self) -> usize {
        self.counts.iter().sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn restarts_total(&self) -> u64 {
        self.restarts_total
    }

    pub fn history(&self) -> &History {
        &self.history
    }

    /// Entries in the deadline heap (for tests and metrics).
    pub fn armed(&self) -> usize {
        self.deadlines.len()
    }

    fn slot_of(&self, service: &str, instance: &str) -> Option<u32> {
        let members = self.services.get(service)?;
        let slots = &self.slots;
        members
            .slots
            .find(self.hasher.hash_one(instance), |&s| {
                slots.get(s).is_some_and(|i| i.name() == instance)
            })
            .copied()
    }

    fn inst(&self, slot: u32) -> Option<&Instance> {
        self.slots.get(slot)
    }

    fn inst_mut(&mut self, slot: u32) -> Option<&mut Instance> {
        self.slots.get_mut(slot)
    }

    /// The view of one instance.
    pub fn get(&self, service: &str, instance: &str, now: u64) -> Option<InstanceView> {
        let slot = self.slot_of(service, instance)?;
        self.inst(slot).map(|i| view(i, now))
    }

    /// Accept or refuse a heartbeat. Returns the reply and, for anything but
    /// a plain renewal, the event (the revision it bumped).
    pub fn heartbeat(
        &mut self,
        hb: Heartbeat,
        now: u64,
    ) -> Result<(HeartbeatReply, Option<SharedEvent>), StateError> {
        let Some(slot) = self.slot_of(&hb.service, &hb.instance) else {
            return self.register(hb, now);
        };
        let rev = self.revision + 1;
        let inst = self.inst(slot).ok_or_else(|| StateError::NotFound {
            service: hb.service.clone(),
            instance: hb.instance.clone(),
        })?;
        if hb.heartbeat_revision <= inst.heartbeat_revision {
            return Err(StateError::Stale {
                last_accepted: inst.heartbeat_revision,
            });
        }
        let prev_state = inst.state;
        let changed = inst.address() != hb.address
            || *inst.metadata() != hb.metadata
            || inst.health != hb.health
            || inst.ttl_ms != hb.ttl_ms
            || inst.source != hb.source;
        let prev = (prev_state != InstanceState::Alive || changed).then(|| view(inst, now));
        let inst = self
            .slots
            .get_mut(slot)
            .ok_or_else(|| StateError::NotFound {
                service: hb.service.clone(),
                instance: hb.instance.clone(),
            })?;
        inst.heartbeat_revision = hb.heartbeat_revision;
        inst.last_heartbeat = now;
        inst.expires_at = match hb.source {
            Source::Http => now + u64::from(hb.ttl_ms),
            Source::Etcd => 0,
        };
        let kind = match prev_state {
            InstanceState::Alive if !changed => None,
            InstanceState::Alive => Some(EventType::Updated),
            InstanceState::Expired => Some(EventType::Revived),
            InstanceState::Deregistered => Some(EventType::Registered),
        };
        if let Some(kind) = kind {
            inst.set_address(&hb.address);
            inst.set_metadata(hb.metadata);
            inst.health = hb.health;
            inst.ttl_ms = hb.ttl_ms;
            inst.source = hb.source;
            inst.mod_revision = rev;
            if kind == EventType::Updated {
                inst.version += 1;
            } else {
                // A new incarnation: a restart.
                inst.create_revision = rev;
                inst.version = 1;
                inst.registered_at = now;
                inst.state = InstanceState::Alive;
                inst.restarts_total = inst.restarts_total.saturating_add(1);
                let cold = inst.cold();
                cold.ended_at = 0;
                cold.reason = None;
                let times = &mut cold.recent_restarts;
                times.retain(|t| t + RESTART_WINDOW_MS > now);
                if times.len() == MAX_RESTART_TIMES {
                    times.remove(0);
                }
                times.push(now);
            }
        }
        let (lease_id, expires_at) = (inst.create_revision, inst.expires_at);
        self.arm(slot);
        if prev_state != InstanceState::Alive {
            let service = self.slots.get(slot).map(|i| i.service.clone());
            let service = service.as_ref().map_or("", |s| &***s);
            self.counted(slot, service, Some(prev_state), Some(InstanceState::Alive));
            self.restarts_total += 1;
        }
        let event = kind.map(|kind| self.record(slot, kind, now, prev));
        let outcome = match kind {
            None => HeartbeatOutcome::Renewed,
            Some(EventType::Updated) => HeartbeatOutcome::Updated,
            Some(_) => HeartbeatOutcome::Revived,
        };
        Ok((
            HeartbeatReply {
                lease_id,
                revision: self.revision,
                heartbeat_revision: hb.heartbeat_revision,
                expires_at_unix_ms: expires_at,
                outcome,
            },
            event,
        ))
    }

    fn register(
        &mut self,
        hb: Heartbeat,
        now: u64,
    ) -> Result<(HeartbeatReply, Option<SharedEvent>), StateError> {
        if self.len() >= self.max_instances {
            return Err(StateError::Full {
                max: self.max_instances,
            });
        }
        let rev = self.revision + 1;
        let expires_at = match hb.source {
            Source::Http => now + u64::from(hb.ttl_ms),
            Source::Etcd => 0,
        };
        let service = self.intern_service(&hb.service);
        let (text, name_len) = Instance::text_of(&hb.instance, &hb.address);
        let mut inst = Instance {
            service,
            text,
            name_len,
            metadata: None,
            cold: None,
            heartbeat_revision: hb.heartbeat_revision,
            create_revision: rev,
            mod_revision: rev,
            version: 1,
            registered_at: now,
            last_heartbeat: now,
            expires_at,
            armed_at: 0,
            ttl_ms: hb.ttl_ms,
            restarts_total: 0,
            state: InstanceState::Alive,
            health: hb.health,
            source: hb.source,
        };
        inst.set_metadata(hb.metadata);
        let slot = self.insert(inst);
        self.arm(slot);
        let event = self.record(slot, EventType::Registered, now, None);
        Ok((
            HeartbeatReply {
                lease_id: rev,
                revision: self.revision,
                heartbeat_revision: hb.heartbeat_revision,
                expires_at_unix_ms: expires_at,
                outcome: HeartbeatOutcome::Registered,
            },
            Some(event),
        ))
    }

    fn intern_service(&mut self, service: &str) -> ServiceName {
        if let Some(m) = self.services.get(service) {
            return m.name.clone();
        }
        let name: ServiceName = Arc::new(Box::from(service));
        let members = Members {
            name: name.clone(),
            ..Members::default()
        };
        self.services.insert(Arc::from(service), members);
        name
    }

    fn insert(&mut self, inst: Instance) -> u32 {
        let service = inst.service.clone();
        let state = inst.state;
        let hash = self.hasher.hash_one(inst.name());
        let slot = self.slots.insert(inst);
        let (slots, hasher) = (&self.slots, &self.hasher);
        if !self.services.contains_key(&**service) {
            // Interned by the caller; this only guards the invariant.
            let members = Members {
                name: service.clone(),
                ..Members::default()
            };
            self.services.insert(Arc::from(&**service), members);
        }
        if let Some(m) = self.services.get_mut(&**service) {
            m.slots.insert_unique(hash, slot, |&s| {
                hasher.hash_one(slots.get(s).map_or("", Instance::name))
            });
        }
        self.counted(slot, &service, None, Some(state));
        slot
    }

    /// Make sure an alive, Skein-timed instance has a heap entry no later
    /// than its deadline.
    fn arm(&mut self, slot: u32) {
        let Some(inst) = self.slots.get_mut(slot) else {
            return;
        };
        if inst.state != InstanceState::Alive || inst.source != Source::Http {
            return;
        }
        if inst.armed_at == 0 || Deadlines::rounded(inst.expires_at) < inst.armed_at {
            inst.armed_at = self.deadlines.push(inst.expires_at, slot);
        }
    }

    /// Bump the revision and append the event for `slot`'s current state.
    fn record(
        &mut self,
        slot: u32,
        kind: EventType,
        now: u64,
        prev: Option<InstanceView>,
    ) -> SharedEvent {
        self.revision += 1;
        let rev = self.revision;
        let value = match self.inst_mut(slot) {
            Some(i) => {
                i.mod_revision = rev;
                view(i, now)
            }
            None => unreachable_view(),
        };
        let event = Arc::new(Event {
            revision: rev,
            kind,
            at_unix_ms: now,
            value,
            prev: prev.map(Box::new),
        });
        self.history.push(event.clone());
        event
    }

    /// Graceful deregistration (also of an expired instance). `Ok(None)` if
    /// it was already deregistered.
    pub fn deregister(
        &mut self,
        service: &str,
        instance: &str,
        reason: Option<&str>,
        now: u64,
    ) -> Result<Option<SharedEvent>, StateError> {
        let not_found = || StateError::NotFound {
            service: service.to_string(),
            instance: instance.to_string(),
        };
        let slot = self.slot_of(service, instance).ok_or_else(not_found)?;
        self.end(slot, InstanceState::Deregistered, reason, now)
            .ok_or_else(not_found)
    }

    /// Move `slot` to a dead state; `Some(None)` if it already was in it.
    fn end(
        &mut self,
        slot: u32,
        to: InstanceState,
        reason: Option<&str>,
        now: u64,
    ) -> Option<Option<SharedEvent>> {
        let inst = self.inst(slot)?;
        let from = inst.state;
        if from == to || (to == InstanceState::Expired && from != InstanceState::Alive) {
            return Some(None);
        }
        let prev = view(inst, now);
        let inst = self.inst_mut(slot)?;
        inst.state = to;
        inst.expires_at = 0;
        let cold = inst.cold();
        cold.ended_at = now;
        cold.reason = reason.map(Box::from);
        let service = inst.service.clone();
        self.counted(slot, &service, Some(from), Some(to));
        let kind = match to {
            InstanceState::Expired => EventType::Expired,
            _ => EventType::Deregistered,
        };
        Some(Some(self.record(slot, kind, now, Some(prev))))
    }

    /// Expire an etcd-governed instance whose lease is gone.
    pub fn expire(
        &mut self,
        service: &str,
        instance: &str,
        reason: Option<&str>,
        now: u64,
    ) -> Option<SharedEvent> {
        let slot = self.slot_of(service, instance)?;
        self.end(slot, InstanceState::Expired, reason, now)
            .flatten()
    }

    /// The earliest deadline in the heap, if any.
    pub fn next_deadline(&self) -> Option<u64> {
        self.deadlines.peek().map(|(at, _)| at)
    }

    /// Expire the next instance whose deadline is at or before `now`.
    /// Returns `None` when nothing (more) is due. Also returns how late the
    /// detection was, in ms.
    pub fn expire_next(&mut self, now: u64) -> Option<(SharedEvent, u64)> {
        loop {
            let (at, slot) = self.deadlines.peek()?;
            if at > now {
                return None;
            }
            self.deadlines.pop();
            let Some(inst) = self.slots.get_mut(slot) else {
                continue;
            };
            if inst.armed_at != at {
                continue; // stale: superseded, or another instance's
            }
            inst.armed_at = 0;
            if inst.state != InstanceState::Alive || inst.source != Source::Http {
                continue;
            }
            if inst.expires_at > now {
                // Renewed meanwhile: due again at the new deadline (which,
                // rounded up, is after `now`).
                inst.armed_at = self.deadlines.push(inst.expires_at, slot);
                continue;
            }
            let late = now - inst.expires_at;
            if let Some(Some(event)) = self.end(slot, InstanceState::Expired, None, now) {
                return Some((event, late));
            }
        }
    }

    /// Drop dead instances whose end lies more than `retention_ms` ago.
    /// Returns their keys (the caller logs the purge). Not a revision.
    pub fn purge(&mut self, now: u64, retention_ms: u64) -> Vec<(String, String)> {
        let mut doomed = Vec::new();
        for (i, inst) in self.slots.iter() {
            if inst.state != InstanceState::Alive && inst.ended_at() + retention_ms <= now {
                doomed.push(i);
            }
        }
        doomed
            .into_iter()
            .filter_map(|slot| self.remove(slot))
            .collect()
    }

    /// Remove one instance by name (replaying a purge record).
    pub fn remove_by_name(&mut self, service: &str, instance: &str) {
        if let Some(slot) = self.slot_of(service, instance) {
            self.remove(slot);
        }
    }

    fn remove(&mut self, slot: u32) -> Option<(String, String)> {
        let inst = self.slots.remove(slot)?;
        self.counted(slot, &inst.service, Some(inst.state), None);
        if let Some(members) = self.services.get_mut(&**inst.service) {
            let hash = self.hasher.hash_one(inst.name());
            if let Ok(entry) = members.slots.find_entry(hash, |&s| s == slot) {
                entry.remove();
            }
            if members.slots.is_empty() {
                self.services.remove(&**inst.service);
            }
        }
        Some((inst.service.to_string(), inst.name().to_string()))
    }

    /// Every instance, sorted by service and name.
    pub fn snapshot(&self, now: u64) -> Vec<InstanceView> {
        let mut out = Vec::with_capacity(self.len());
        for service in self.services.values() {
            let mut members: Vec<&Instance> =
                service.slots.iter().filter_map(|&s| self.inst(s)).collect();
            members.sort_unstable_by(|a, b| a.name().cmp(b.name()));
            out.extend(members.into_iter().map(|i| view(i, now)));
        }
        out
    }

    /// Views of the instances in slots `from..from + max` (in slot order),
    /// and the slot to continue from, `None` once past the last one. A
    /// snapshot is taken this way a slice at a time, the registry lock
    /// released in between (see `persist.rs` for why that is consistent).
    pub fn snapshot_slice(
        &self,
        from: u32,
        max: u32,
        now: u64,
    ) -> (Vec<InstanceView>, Option<u32>) {
        let end = from.saturating_add(max).min(self.slots.len() as u32);
        let views = (from..end)
            .filter_map(|slot| self.inst(slot))
            .map(|i| view(i, now))
            .collect();
        (views, (end < self.slots.len() as u32).then_some(end))
    }

    /// Alive instances counted per service, and views of every other one:
    /// what liveness evaluation needs. Both are kept up to date by
    /// [`State::counted`], so this costs O(services + instances not alive)
    /// under the registry lock, never a pass over the alive ones.
    pub fn liveness_summary(&self, now: u64) -> (Vec<(Arc<str>, usize)>, Vec<InstanceView>) {
        let alive = self
            .services
            .iter()
            .filter(|(_, m)| m.alive > 0)
            .map(|(name, m)| (name.clone(), m.alive))
            .collect();
        let others = self
            .not_alive
            .iter()
            .filter_map(|&slot| self.inst(slot))
            .map(|i| view(i, now))
            .collect();
        (alive, others)
    }

    /// Account for slot `slot` of `service` moving from state `from` to
    /// `to` (`None`: not in the registry). The one place that keeps
    /// `counts`, the per-service alive counts and `not_alive` in step.
    fn counted(
        &mut self,
        slot: u32,
        service: &str,
        from: Option<InstanceState>,
        to: Option<InstanceState>,
    ) {
        let alive = |s: Option<InstanceState>| usize::from(s == Some(InstanceState::Alive));
        if let Some(f) = from {
            self.counts[f.index()] -= 1;
        }
        if let Some(t) = to {
            self.counts[t.index()] += 1;
        }
        if let Some(m) = self.services.get_mut(service) {
            m.alive = (m.alive + alive(to)).saturating_sub(alive(from));
        }
        match to {
            Some(InstanceState::Alive) | None => self.not_alive.remove(&slot),
            Some(_) => self.not_alive.insert(slot),
        };
    }

    /// Instances as they were at `revision` (renewal fields are current:
    /// renewals are not revisions). Purged instances are not reconstructed.
    pub fn list_at(&self, revision: u64, now: u64) -> Result<Vec<InstanceView>, Compacted> {
        if revision >= self.revision {
            return Ok(self.snapshot(now));
        }
        // The first change after `revision` of each key carries its state at
        // `revision` as `prev`.
        let later = self.history.since(revision + 1, usize::MAX)?;
        let mut before: HashMap<(&str, &str), &Option<Box<InstanceView>>> = HashMap::new();
        for e in &later {
            before.entry((e.service(), e.instance())).or_insert(&e.prev);
        }
        let mut out = Vec::new();
        for v in self.snapshot(now) {
            if v.mod_revision <= revision {
                out.push(v);
            } else if let Some(Some(p)) = before.get(&(v.service.as_str(), v.instance.as_str())) {
                out.push(InstanceView::clone(p));
            }
        }
        Ok(out)
    }

    // ---- restore (replay of the snapshot file and the log) ----------------

    /// Put an instance back as persisted (replay). Replaces a same-named one.
    pub fn restore(&mut self, v: &InstanceView) {
        self.remove_by_name(&v.service, &v.instance);
        if self.len() >= self.max_instances {
            tracing::warn!(
                "registry: dropping {}/{} on restore: over the maximum of {} instances",
                v.service,
                v.instance,
                self.max_instances
            );
            return;
        }
        let service = self.intern_service(&v.service);
        let (text, name_len) = Instance::text_of(&v.instance, &v.address);
        let ended_at = match v.state {
            InstanceState::Alive => 0,
            InstanceState::Expired => v.expired_at_unix_ms.unwrap_or(v.last_heartbeat_unix_ms),
            InstanceState::Deregistered => v
                .deregistered_at_unix_ms
                .unwrap_or(v.last_heartbeat_unix_ms),
        };
        let reason = v.deregister_reason.as_deref().map(Box::from);
        let mut inst = Instance {
            service,
            text,
            name_len,
            metadata: None,
            cold: (ended_at != 0 || reason.is_some()).then(|| {
                Box::new(Cold {
                    ended_at,
                    reason,
                    recent_restarts: Vec::new(),
                })
            }),
            heartbeat_revision: v.heartbeat_revision,
            create_revision: v.create_revision,
            mod_revision: v.mod_revision,
            version: v.version,
            registered_at: v.registered_at_unix_ms,
            last_heartbeat: v.last_heartbeat_unix_ms,
            expires_at: v.expires_at_unix_ms.unwrap_or(0),
            armed_at: 0,
            ttl_ms: v.ttl_ms,
            restarts_total: v.restarts_total,
            state: v.state,
            health: v.health,
            source: v.source,
        };
        inst.set_metadata(v.metadata.clone());
        self.insert(inst);
    }

    /// Replay an event record: the instance as it was after it, the revision, the history.
    pub fn restore_event(&mut self, e: SharedEvent) {
        if e.revision <= self.revision {
            return; // already in the snapshot
        }
        self.restore(&e.value);
        if matches!(e.kind, EventType::Revived)
            || (e.kind == EventType::Registered && e.prev.is_some())
        {
            self.restarts_total += 1;
        }
        if e.revision != self.revision + 1 {
            self.history.reset(e.revision);
        }
        self.revision = e.revision;
        self.history.push(e);
    }

    /// Replay a renewal record.
    pub fn restore_renewal(&mut self, service: &str, instance: &str, hb_rev: u64, at: u64) {
        if let Some(slot) = self.slot_of(service, instance) {
            if let Some(i) = self.inst_mut(slot) {
                if hb_rev > i.heartbeat_revision {
                    i.heartbeat_revision = hb_rev;
                    i.last_heartbeat = at;
                }
            }
        }
    }

    /// Set the revision and history after loading a snapshot.
    pub fn restore_revision(&mut self, revision: u64, restarts_total: u64, events: Vec<Event>) {
        self.revision = revision;
        self.restarts_total = restarts_total;
        let first = events.first().map_or(revision + 1, |e| e.revision);
        self.history.reset(first);
        for e in events {
            if e.revision == self.history.oldest() + self.history.len() as u64 {
                self.history.push(Arc::new(e));
            }
        }
        if self.history.is_empty() {
            self.history.reset(revision + 1);
        }
    }

    /// After a restart: every alive Skein-timed lease gets a fresh full TTL
    /// from `now`, so the collector's own downtime never expires anything.
    pub fn rearm_all(&mut self, now: u64) {
        self.deadlines.clear();
        for i in self.slots.items_mut() {
            i.armed_at = 0;
            if i.state == InstanceState::Alive && i.source == Source::Http {
                i.expires_at = now + u64::from(i.ttl_ms);
            }
        }
        for slot in 0..self.slots.len() as u32 {
            self.arm(slot);
        }
    }
}

fn view(i: &Instance, now: u64) -> InstanceView {
    let restarts_last_hour = i.cold.as_ref().map_or(0, |c| {
        c.recent_restarts
            .iter()
            .filter(|&&at| at + RESTART_WINDOW_MS > now)
            .count() as u32
    });
    InstanceView {
        service: i.service.to_string(),
        instance: i.name().to_string(),
        state: i.state,
        source: i.source,
        address: i.address().to_string(),
        metadata: i.metadata().clone(),
        health: i.health,
        ttl_ms: i.ttl_ms,
        heartbeat_revision: i.heartbeat_revision,
        lease_id: i.create_revision,
        create_revision: i.create_revision,
        mod_revision: i.mod_revision,
        version: i.version,
        registered_at_unix_ms: i.registered_at,
        last_heartbeat_unix_ms: i.last_heartbeat,
        expires_at_unix_ms: (i.expires_at != 0).then_some(i.expires_at),
        expired_at_unix_ms: (i.state == InstanceState::Expired).then_some(i.ended_at()),
        deregistered_at_unix_ms: (i.state == InstanceState::Deregistered).then_some(i.ended_at()),
        deregister_reason: i.reason().map(str::to_string),
        restarts_last_hour,
        restarts_total: i.restarts_total,
        last_traffic_unix_ms: None,
    }
}

/// `record` is only called for occupied slots; this keeps it total anyway.
fn unreachable_view() -> InstanceView {
    InstanceView {
        service: String::new(),
        instance: String::new(),
        state: InstanceState::Deregistered,
        source: Source::Http,
        address: String::new(),
        metadata: BTreeMap::new(),
        health: Health::Passing,
        ttl_ms: 0,
        heartbeat_revision: 0,
        lease_id: 0,
        create_revision: 0,
        mod_revision: 0,
        version: 0,
        registered_at_unix_ms: 0,
        last_heartbeat_unix_ms: 0,
        expires_at_unix_ms: None,
        expired_at_unix_ms: None,
        deregistered_at_unix_ms: None,
        deregister_reason: None,
        restarts_last_hour: 0,
        restarts_total: 0,
        last_traffic_unix_ms: None,
    }
}

#[cfg(test)]
mod summary {
    use super::*;

    fn hb(service: &str, instance: &str, rev: u64) -> Heartbeat {
        Heartbeat {
            service: service.into(),
            instance: instance.into(),
            ttl_ms: 1_000,
            heartbeat_revision: rev,
            address: String::new(),
            metadata: BTreeMap::new(),
            health: Health::Passing,
            source: Source::Http,
        }
    }

    /// Alive counts per service, and (service, instance, state) of the rest.
    type Summary = (Vec<(String, usize)>, Vec<(String, String, InstanceState)>);

    /// The summary computed the slow way, from a full snapshot.
    fn counted_from_snapshot(st: &State, now: u64) -> Summary {
        let mut alive: BTreeMap<String, usize> = BTreeMap::new();
        let mut others = Vec::new();
        for v in st.snapshot(now) {
            if v.state == InstanceState::Alive {
                *alive.entry(v.service).or_default() += 1;
            } else {
                others.push((v.service, v.instance, v.state));
            }
        }
        others.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        (alive.into_iter().collect(), others)
    }

    fn summary(st: &State, now: u64) -> Summary {
        let (alive, others) = st.liveness_summary(now);
        let mut alive: Vec<(String, usize)> =
            alive.into_iter().map(|(s, n)| (s.to_string(), n)).collect();
        alive.sort();
        let mut others: Vec<_> = others
            .into_iter()
            .map(|v| (v.service, v.instance, v.state))
            .collect();
        others.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        (alive, others)
    }

    /// Registrations, renewals, expiries, deregistrations, restarts,
    /// purges and restores, in a fixed pseudo-random mix: after every step
    /// the incremental summary equals the one counted from a snapshot.
    #[test]
    fn the_kept_counts_match_a_full_count_after_every_kind_of_change() {
        let mut st = State::new(1_000, 10_000);
        let mut now = 1_000_000u64;
        let mut rev = 1u64;
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut seen_expired = false;
        for step in 0..3_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let service = format!("svc-{}", x % 4);
            let instance = format!("i-{}", (x >> 8) % 40);
            rev += 1;
            match (x >> 20) % 10 {
                0..=4 => {
                    let _ = st.heartbeat(hb(&service, &instance, rev), now);
                }
                5 => {
                    let _ = st.deregister(&service, &instance, Some("test"), now);
                }
                6 => {
                    seen_expired |= st.expire(&service, &instance, None, now).is_some();
                }
                7 => {
                    now += 700;
                    while st.expire_next(now).is_some() {
                        seen_expired = true;
                    }
                }
                8 => {
                    st.purge(now, 5_000);
                }
                _ => {
                    if let Some(v) = st.get(&service, &instance, now) {
                        st.restore(&v);
                    }
                }
            }
            assert_eq!(
                summary(&st, now),
                counted_from_snapshot(&st, now),
                "after step {step}"
            );
            let alive: usize = summary(&st, now).0.iter().map(|(_, n)| n).sum();
            assert_eq!(alive, st.count(InstanceState::Alive), "after step {step}");
        }
        assert!(seen_expired, "the mix expired something");
        assert!(st.count(InstanceState::Deregistered) + st.count(InstanceState::Expired) > 0);
    }

    fn expire_all(st: &mut State, now: u64) -> Vec<String> {
        let mut out = Vec::new();
        while let Some((e, _)) = st.expire_next(now) {
            out.push(e.instance().to_string());
        }
        out
    }

    /// Heap entries carry no generation: an entry left by a removed
    /// instance must not expire the instance that reuses its slot, whether
    /// their deadlines differ or fall in the same tick.
    #[test]
    fn an_entry_left_in_a_reused_slot_expires_only_its_new_instance_on_time() {
        let mut st = State::new(100, 100);
        let t0 = 1_000_000;
        st.heartbeat(hb("s", "old", 1), t0).unwrap(); // due at t0 + 1000
        st.deregister("s", "old", None, t0).unwrap();
        st.remove_by_name("s", "old");
        let mut long = hb("s", "new", 1);
        long.ttl_ms = 5_000;
        st.heartbeat(long, t0).unwrap(); // the same slot, due at t0 + 5000
        assert_eq!(st.armed(), 2, "the old entry is still in the heap");
        assert!(expire_all(&mut st, t0 + 4_999).is_empty());
        assert_eq!(st.armed(), 1, "the old one came out and was dropped");
        assert_eq!(expire_all(&mut st, t0 + 5_000), ["new"]);
        assert_eq!(st.armed(), 0);

        // Same tick: the left entry stands in for the new one's, once.
        st.remove_by_name("s", "new");
        st.heartbeat(hb("s", "a", 1), t0 + 6_000).unwrap();
        st.deregister("s", "a", None, t0 + 6_000).unwrap();
        st.remove_by_name("s", "a");
        st.heartbeat(hb("s", "b", 1), t0 + 6_003).unwrap();
        assert_eq!(st.armed(), 2);
        assert!(expire_all(&mut st, t0 + 7_002).is_empty(), "not early");
        assert_eq!(expire_all(&mut st, t0 + 7_010), ["b"]);
        assert_eq!(st.armed(), 0, "both entries are gone");
        assert_eq!(st.count(InstanceState::Expired), 1);
    }

    /// A renewal moves the deadline; the entry that comes due first is put
    /// back at the new deadline, rounded up by less than one 10 ms tick.
    #[test]
    fn renewed_instances_expire_within_a_tick_of_their_new_deadline() {
        let mut st = State::new(100, 100);
        let t0 = 2_000_001;
        st.heartbeat(hb("s", "i", 1), t0).unwrap();
        st.heartbeat(hb("s", "i", 2), t0 + 800).unwrap(); // due at t0 + 1800
        assert_eq!(st.next_deadline(), Some(t0 + 1_009), "the first entry");
        assert!(expire_all(&mut st, t0 + 1_009).is_empty());
        assert_eq!(st.next_deadline(), Some(t0 + 1_809), "put back");
        assert!(expire_all(&mut st, t0 + 1_808).is_empty());
        let (e, late) = st.expire_next(t0 + 1_809).unwrap();
        assert_eq!((e.instance(), late), ("i", 9));
    }
}

#[cfg(test)]
mod layout {
    /// A slab chunk holds 1,024 of these (see `slab.rs`): every byte here
    /// is 100 KB at 100k instances. A field more would cost 8 bytes.
    #[test]
    fn a_slot_of_the_slab_is_120_bytes() {
        assert_eq!(std::mem::size_of::<Option<super::Instance>>(), 120);
    }
}
