//! The derive worker: one thread that takes WAL span records from the
//! [`Queue`], scans each span once ([`super::wire`]) and feeds the span
//! metrics, the pair store and, with the edges found, the service-graph
//! metrics and the dependency graph; it expires the pair store on a timer
//! and saves the graph every `save_every`, then reports the WAL position the
//! saved graph covers (`on_saved`), which lets the WAL be trimmed past it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, UNIX_EPOCH};

use parking_lot::Mutex;

use super::dependencies::pairing::{PairStats, Pairer, Side};
use super::dependencies::{DependencyGraph, Edge};
use super::metrics::DeriveMetrics;
use super::queue::{Pop, Queue, Record};
use super::servicegraph::ServiceGraph;
use super::spanmetrics::SpanMetrics;
use super::wire::{self, kind, STATUS_ERROR};
use crate::index::{Clock, Lsn};

/// Longest wait for a record before running the timers.
const TICK: Duration = Duration::from_millis(200);

/// Service and peer names → small ids for the pair store, capped.
pub struct Interner {
    ids: HashMap<Box<str>, u32>,
    names: Vec<Arc<str>>,
    cap: usize,
}

impl Interner {
    pub fn new(cap: usize) -> Self {
        Interner {
            ids: HashMap::new(),
            names: Vec::new(),
            cap,
        }
    }

    /// The id of `name`; `None` when it is new and the interner is full.
    pub fn id(&mut self, name: &str) -> Option<u32> {
        if let Some(&id) = self.ids.get(name) {
            return Some(id);
        }
        if self.names.len() >= self.cap {
            return None;
        }
        let id = self.names.len() as u32;
        self.names.push(Arc::from(name));
        self.ids.insert(name.into(), id);
        Some(id)
    }

    pub fn name(&self, id: u32) -> Arc<str> {
        self.names
            .get(id as usize)
            .cloned()
            .unwrap_or_else(|| Arc::from("unknown_service"))
    }
}

/// Called with the WAL position the saved graph covers.
pub type OnSaved = Box<dyn Fn(Lsn) + Send>;

pub struct Worker {
    pub queue: Arc<Queue>,
    pub span_metrics: Arc<Mutex<SpanMetrics>>,
    pub service_graph: Arc<Mutex<ServiceGraph>>,
    pub graph: DependencyGraph,
    pub pairer: Pairer,
    pub names: Interner,
    pub clock: Arc<dyn Clock>,
    pub metrics: DeriveMetrics,
    pub save_every: Duration,
    pub on_saved: OnSaved,
    /// Every record at or below this has been processed.
    pub processed: Lsn,
    edges: Vec<Edge>,
    reported: PairStats,
}

impl Worker {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        queue: Arc<Queue>,
        span_metrics: Arc<Mutex<SpanMetrics>>,
        service_graph: Arc<Mutex<ServiceGraph>>,
        graph: DependencyGraph,
        pairer: Pairer,
        names: Interner,
        clock: Arc<dyn Clock>,
        metrics: DeriveMetrics,
        save_every: Duration,
        on_saved: OnSaved,
    ) -> Self {
        Worker {
            queue,
            span_metrics,
            service_graph,
            graph,
            pairer,
            names,
            clock,
            metrics,
            save_every,
            on_saved,
            processed: 0,
            edges: Vec::new(),
            reported: PairStats::default(),
        }
    }

    /// Run until the queue is closed and drained, then save once more.
    pub fn run(mut self) {
        let mut next_save = Instant::now() + self.save_every;
        loop {
            match self.queue.pop(TICK) {
                Pop::Record(r) => self.process(&r),
                Pop::Empty => {}
                Pop::Closed => break,
            }
            self.expire();
            if Instant::now() >= next_save {
                self.save();
                next_save = Instant::now() + self.save_every;
            }
        }
        self.save();
    }

    fn now_ms(&self) -> u64 {
        self.clock
            .now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }

    /// Count the spans of one record and pair them.
    pub fn process(&mut self, record: &Record) {
        let now_ms = self.now_ms();
        let lsn = record.end_lsn;
        let mut spans = 0u64;
        let mut overflow = 0u64;
        let mut name_overflow = 0u64;
        {
            let mut metrics = self.span_metrics.lock();
            let (pairer, names, edges) = (&mut self.pairer, &mut self.names, &mut self.edges);
            let mut last: Option<(*const u8, usize, Option<u32>)> = None;
            let parsed = wire::for_each_span(&record.payload, |service, span| {
                spans += 1;
                if !metrics.observe(
                    service,
                    span.name,
                    span.kind,
                    span.status,
                    span.duration_ns(),
                ) {
                    overflow += 1;
                }
                if !matches!(
                    span.kind,
                    kind::CLIENT | kind::SERVER | kind::PRODUCER | kind::CONSUMER
                ) {
                    return;
                }
                // Spans of one resource share the same service slice.
                let key = (service.as_ptr(), service.len());
                let service_id = match last {
                    Some((p, l, id)) if (p, l) == key => id,
                    _ => {
                        let id = names.id(service);
                        last = Some((key.0, key.1, id));
                        id
                    }
                };
                let Some(service_id) = service_id else {
                    name_overflow += 1;
                    return;
                };
                let peer = match (span.kind, span.peer) {
                    (kind::CLIENT | kind::PRODUCER, Some(p)) => names.id(p),
                    _ => None,
                };
                let side = Side {
                    service: service_id,
                    kind: span.kind,
                    start_ns: span.start_ns,
                    duration_ns: span.duration_ns(),
                    error: span.status == STATUS_ERROR,
                    peer,
                    database: span.database,
                    lsn,
                };
                pairer.add(
                    now_ms,
                    span.trace_id,
                    span.span_id,
                    span.parent_span_id,
                    side,
                    edges,
                );
            });
            if parsed.is_none() {
                self.metrics.undecodable.inc();
            }
            self.metrics
                .series
                .with_label_values(&["span_metrics"])
                .set(metrics.series() as i64);
        }
        self.metrics.spans.inc_by(spans);
        self.overflow("span_metrics", overflow);
        self.overflow("dependencies", name_overflow);
        self.processed = self.processed.max(lsn);
        self.flush_edges();
    }

    /// Expire the pair store (virtual-node edges) and publish its counters.
    pub fn expire(&mut self) {
        let now_ms = self.now_ms();
        self.pairer.expire(now_ms, &mut self.edges);
        self.flush_edges();
        let s = self.pairer.stats;
        self.metrics
            .pending_dropped
            .inc_by(s.dropped - self.reported.dropped);
        self.metrics
            .unpaired
            .with_label_values(&["client"])
            .inc_by(s.unpaired_client - self.reported.unpaired_client);
        self.metrics
            .unpaired
            .with_label_values(&["server"])
            .inc_by(s.unpaired_server - self.reported.unpaired_server);
        self.reported = s;
        self.metrics.pending.set(self.pairer.pending() as i64);
    }

    fn flush_edges(&mut self) {
        if self.edges.is_empty() {
            return;
        }
        let names = &self.names;
        let name = |id: u32| names.name(id);
        let mut refused = 0;
        {
            let mut sg = self.service_graph.lock();
            for e in &self.edges {
                if !sg.observe(e, name) {
                    refused += 1;
                }
            }
            self.metrics
                .series
                .with_label_values(&["service_graph"])
                .set(sg.len() as i64);
        }
        let graph_refused = self.graph.record(&self.edges, name);
        self.metrics.edges.inc_by(self.edges.len() as u64);
        self.overflow("service_graph", refused);
        self.overflow("dependencies", graph_refused);
        self.edges.clear();
    }

    fn overflow(&self, processor: &str, n: u64) {
        if n > 0 {
            self.metrics
                .overflow
                .with_label_values(&[processor])
                .inc_by(n);
        }
    }

    /// Save the graph and report the WAL position it covers. A failed save
    /// is logged and counted, and the position is reported anyway: the graph
    /// is derived data and must not hold the WAL (and so ingest) hostage to
    /// a disk problem; at worst a crash then loses a few seconds of it.
    pub fn save(&mut self) {
        if let Err(e) = self.graph.save(self.processed) {
            tracing::warn!(error = %e, "saving the dependency graph failed");
            self.metrics.save_errors.inc();
        }
        (self.on_saved)(self.processed);
    }
}
