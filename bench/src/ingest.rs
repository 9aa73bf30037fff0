//! `skein-bench ingest`: sustained OTLP/gRPC load from pre-encoded batches.
//!
//! `connections` HTTP/2 connections each carry `inflight` workers; a worker
//! keeps one request in flight: it patches fresh ids into the next template
//! (cheap), sends it, waits for the ack and records the latency. With a
//! `--rate` the workers draw send slots from a shared token bucket, so ack
//! latency can be measured below saturation. Only requests that complete
//! inside the measurement window (after the warm-up) are counted.
//!
//! The same engine ([`run_load`]) loads the data set for `skein-bench query`,
//! stopping after a number of acknowledged items instead of a duration.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{ensure, Result};
use hdrhistogram::Histogram;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use tokio::time::Instant;
use tonic::Code;

use crate::gen::{now_unix_nanos, DataGen, IdGen, Signal, Template};
use crate::grpc::{code_name, OtlpClient};
use crate::report::{self, thousands, Latency, Machine, Report};

/// Pause after a failed request, so a refusing collector is not hammered.
const ERROR_BACKOFF: Duration = Duration::from_millis(10);

#[derive(clap::Args, Debug)]
pub struct Args {
    /// OTLP/gRPC address of the collector.
    #[arg(long, default_value = "127.0.0.1:4317")]
    pub otlp_grpc: String,
    #[arg(long, value_enum, default_value_t = Signal::Spans)]
    pub signal: Signal,
    /// Measured time, after the warm-up.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "60s")]
    pub duration: Duration,
    /// Load sent but not measured before the window starts.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "5s")]
    pub warmup: Duration,
    /// Concurrent HTTP/2 connections.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// Requests in flight per connection.
    #[arg(long, default_value_t = 1)]
    pub inflight: usize,
    /// Items (spans or log records) per request.
    #[arg(long, default_value_t = 512)]
    pub batch: usize,
    /// Target items/s across all connections; 0 = as fast as acks come back.
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
    /// With --rate: how much unused send time the token bucket saves up, so
    /// that the target rate is kept after a stall (by catching up).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "1s")]
    pub burst: Duration,
    /// Spans per trace in generated span batches.
    #[arg(long, default_value_t = 10)]
    pub spans_per_trace: usize,
    /// Distinct pre-encoded batches to rotate through.
    #[arg(long, default_value_t = 16)]
    pub templates: usize,
    /// Per-request deadline.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "30s")]
    pub timeout: Duration,
    /// Seed for data and ids (random when omitted).
    #[arg(long)]
    pub seed: Option<u64>,
    /// The collector's HTTP address (`http://HOST:PORT`): follow its
    /// `skein_index_documents_total` to report the indexed rate over the same
    /// window and how long indexing needs to catch up after the load.
    #[arg(long)]
    pub http: Option<String>,
    /// The collector's pid, to report its peak resident memory (VmHWM).
    #[arg(long)]
    pub pid: Option<u32>,
}

/// When a load run ends.
#[derive(Debug, Clone, Copy)]
pub enum Stop {
    /// After the warm-up plus this long.
    After(Duration),
    /// Once this many items have been acknowledged (and not rejected).
    Items(u64),
}

/// Everything [`run_load`] needs.
pub struct LoadPlan {
    pub addr: String,
    pub templates: Arc<Vec<Template>>,
    pub connections: usize,
    pub inflight: usize,
    /// Items/s; 0 = unlimited.
    pub rate: f64,
    /// Token bucket depth, as time (see `Args::burst`).
    pub burst: Duration,
    pub warmup: Duration,
    pub stop: Stop,
    pub timeout: Duration,
    pub seed: u64,
    /// Keep up to this many acknowledged trace ids (one per request).
    pub sample_ids: usize,
    /// Print progress to stderr every few seconds.
    pub progress: bool,
    /// With `Stop::Items`: a worker whose requests have all failed for this
    /// long gives up (otherwise it retries until the budget is sent).
    pub give_up_after: Duration,
}

/// Counters of one worker, merged at the end.
pub struct Tally {
    pub requests_ok: u64,
    pub items_ok: u64,
    pub partial_requests: u64,
    pub rejected_items: u64,
    pub first_rejection: Option<String>,
    pub errors: BTreeMap<&'static str, u64>,
    pub first_error: Option<String>,
    pub latency: Histogram<u64>,
    pub trace_ids: Vec<[u8; 16]>,
    pub last_done: Option<Instant>,
}

impl Tally {
    fn new() -> Self {
        Self {
            requests_ok: 0,
            items_ok: 0,
            partial_requests: 0,
            rejected_items: 0,
            first_rejection: None,
            errors: BTreeMap::new(),
            first_error: None,
            latency: report::latency_histogram(),
            trace_ids: Vec::new(),
            last_done: None,
        }
    }

    fn merge(&mut self, o: Tally) {
        self.requests_ok += o.requests_ok;
        self.items_ok += o.items_ok;
        self.partial_requests += o.partial_requests;
        self.rejected_items += o.rejected_items;
        self.first_rejection = self.first_rejection.take().or(o.first_rejection);
        for (k, v) in o.errors {
            *self.errors.entry(k).or_default() += v;
        }
        self.first_error = self.first_error.take().or(o.first_error);
        self.latency
            .add(&o.latency)
            .expect("histograms share bounds");
        self.trace_ids.extend(o.trace_ids);
        self.last_done = self.last_done.max(o.last_done);
    }

    /// Failed requests, all codes.
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }
}

/// The merged outcome of a load run.
pub struct LoadResult {
    pub tally: Tally,
    /// Items acknowledged over the whole run, warm-up included.
    pub acked_total: u64,
    /// When the measurement window started and ended.
    pub window_start: Instant,
    pub window_end: Instant,
    /// Length of the measurement window.
    pub window: Duration,
    /// CPU cores this process used on average over the whole run.
    pub cpu_cores: f64,
}

/// A token bucket handing out send slots, one per batch.
struct Pacer {
    interval: Duration,
    burst: Duration,
    next: Mutex<Instant>,
}

impl Pacer {
    /// One batch of `batch` items per slot at `items_per_s`; at most `burst`
    /// worth of unused slots are saved up (but always one).
    fn new(items_per_s: f64, batch: usize, burst: Duration, start: Instant) -> Self {
        let interval = Duration::from_secs_f64(batch as f64 / items_per_s);
        Self {
            interval,
            burst: interval.max(burst),
            next: Mutex::new(start),
        }
    }

    fn next_slot(&self) -> Instant {
        self.next_slot_at(Instant::now())
    }

    fn next_slot_at(&self, now: Instant) -> Instant {
        let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
        let earliest = now.checked_sub(self.burst).unwrap_or(now);
        if *next < earliest {
            *next = earliest;
        }
        let slot = *next;
        *next += self.interval;
        slot
    }
}

struct Shared {
    signal: Signal,
    templates: Arc<Vec<Template>>,
    timeout: Duration,
    seed: u64,
    measure_from: Instant,
    deadline: Option<Instant>,
    /// Items still to send (`Stop::Items`).
    budget: Option<AtomicI64>,
    pacer: Option<Pacer>,
    give_up_after: Duration,
    sample_ids_per_worker: usize,
    /// Acknowledged items so far, for progress.
    acked: AtomicU64,
}

/// Runs load against `plan.addr` until `plan.stop`.
pub async fn run_load(plan: LoadPlan) -> Result<LoadResult> {
    ensure!(!plan.templates.is_empty(), "no templates");
    ensure!(
        plan.connections > 0 && plan.inflight > 0,
        "need at least one connection and one request in flight"
    );
    ensure!(plan.rate >= 0.0, "--rate must not be negative");
    let signal = plan.templates[0].signal();
    let mut clients = Vec::with_capacity(plan.connections);
    for _ in 0..plan.connections {
        clients.push(OtlpClient::connect(&plan.addr).await?);
    }
    let workers = plan.connections * plan.inflight;
    let start = Instant::now();
    let cpu_start = report::process_cpu_time();
    let measure_from = start + plan.warmup;
    let shared = Arc::new(Shared {
        signal,
        templates: plan.templates.clone(),
        timeout: plan.timeout,
        seed: plan.seed,
        measure_from,
        deadline: match plan.stop {
            Stop::After(d) => Some(measure_from + d),
            Stop::Items(_) => None,
        },
        budget: match plan.stop {
            Stop::After(_) => None,
            Stop::Items(n) => Some(AtomicI64::new(n as i64)),
        },
        pacer: (plan.rate > 0.0)
            .then(|| Pacer::new(plan.rate, plan.templates[0].items(), plan.burst, start)),
        give_up_after: plan.give_up_after,
        sample_ids_per_worker: plan.sample_ids.div_ceil(workers),
        acked: AtomicU64::new(0),
    });
    let mut handles = Vec::with_capacity(workers);
    for (c, client) in clients.iter().enumerate() {
        for j in 0..plan.inflight {
            let stream = (c * plan.inflight + j) as u32;
            handles.push(tokio::spawn(worker(shared.clone(), client.clone(), stream)));
        }
    }
    let progress = plan
        .progress
        .then(|| tokio::spawn(progress(shared.clone(), plan.stop)));
    let mut tally = Tally::new();
    for h in handles {
        tally.merge(h.await?);
    }
    if let Some(p) = progress {
        p.abort();
    }
    let end = Instant::now();
    let window = match plan.stop {
        Stop::After(d) => d,
        Stop::Items(_) => tally
            .last_done
            .unwrap_or(end)
            .saturating_duration_since(measure_from),
    };
    let cpu = report::process_cpu_time().saturating_sub(cpu_start);
    Ok(LoadResult {
        tally,
        acked_total: shared.acked.load(Ordering::Relaxed),
        window_start: measure_from,
        window_end: measure_from + window,
        window,
        cpu_cores: cpu.as_secs_f64() / end.duration_since(start).as_secs_f64().max(1e-9),
    })
}

async fn progress(shared: Arc<Shared>, stop: Stop) {
    let start = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    tick.tick().await;
    loop {
        tick.tick().await;
        let acked = shared.acked.load(Ordering::Relaxed);
        let rate = acked as f64 / start.elapsed().as_secs_f64();
        match stop {
            Stop::Items(n) => eprintln!(
                "  … {} / {} {} acknowledged ({}/s)",
                thousands(acked as f64),
                thousands(n as f64),
                shared.signal.noun(),
                thousands(rate)
            ),
            Stop::After(_) => eprintln!(
                "  … {} {} acknowledged ({}/s)",
                thousands(acked as f64),
                shared.signal.noun(),
                thousands(rate)
            ),
        }
    }
}

async fn worker(sh: Arc<Shared>, mut client: OtlpClient, stream: u32) -> Tally {
    let mut tally = Tally::new();
    let mut ids = IdGen::new(stream, sh.seed);
    let mut rng = StdRng::seed_from_u64(sh.seed ^ u64::from(stream));
    let mut next = stream as usize % sh.templates.len();
    let past_deadline = |t: Instant| sh.deadline.is_some_and(|d| t >= d);
    let mut failing_since: Option<Instant> = None;
    loop {
        if past_deadline(Instant::now()) {
            break;
        }
        let template = &sh.templates[next];
        next = (next + 1) % sh.templates.len();
        let items = template.items() as i64;
        if let Some(budget) = &sh.budget {
            if budget.fetch_sub(items, Ordering::SeqCst) <= 0 {
                budget.fetch_add(items, Ordering::SeqCst);
                break;
            }
        }
        if let Some(pacer) = &sh.pacer {
            let slot = pacer.next_slot();
            tokio::time::sleep_until(slot).await;
            if past_deadline(slot) {
                break;
            }
        }
        let batch = template.patch(&mut ids, now_unix_nanos());
        let sent = Instant::now();
        let result = client.export(sh.signal, batch.bytes, sh.timeout).await;
        let done = Instant::now();
        let counted = done >= sh.measure_from && !past_deadline(done);
        match result {
            Ok(ack) => {
                failing_since = None;
                let accepted = batch.items.saturating_sub(ack.rejected as usize) as u64;
                sh.acked.fetch_add(accepted, Ordering::Relaxed);
                if let (Some(budget), true) = (&sh.budget, ack.rejected > 0) {
                    budget.fetch_add(ack.rejected as i64, Ordering::SeqCst);
                }
                if tally.trace_ids.len() < sh.sample_ids_per_worker && !batch.trace_ids.is_empty() {
                    // Skip the last trace: it may be cut short by the batch end.
                    let usable = (batch.trace_ids.len() - 1).max(1);
                    tally
                        .trace_ids
                        .push(batch.trace_ids[rng.random_range(0..usable)]);
                }
                if counted {
                    tally.requests_ok += 1;
                    tally.items_ok += accepted;
                    tally.last_done = Some(done);
                    report::record(&mut tally.latency, done - sent);
                    if ack.rejected > 0 {
                        tally.partial_requests += 1;
                        tally.rejected_items += ack.rejected;
                        tally.first_rejection.get_or_insert(ack.message);
                    }
                }
            }
            Err(status) => {
                if let Some(budget) = &sh.budget {
                    budget.fetch_add(items, Ordering::SeqCst);
                }
                if counted {
                    *tally.errors.entry(code_name(status.code())).or_default() += 1;
                    tally.first_error.get_or_insert_with(|| {
                        format!("{}: {}", code_name(status.code()), status.message())
                    });
                }
                let since = *failing_since.get_or_insert(sent);
                if sh.budget.is_some() && done.duration_since(since) >= sh.give_up_after {
                    break;
                }
                tokio::time::sleep(ERROR_BACKOFF).await;
            }
        }
    }
    tally
}

/// The `ingest` report.
#[derive(Debug, Serialize)]
pub struct IngestReport {
    pub bench: &'static str,
    pub signal: Signal,
    pub target: String,
    pub connections: usize,
    pub inflight: usize,
    pub batch: usize,
    /// Average encoded bytes per item.
    pub item_bytes: f64,
    /// Target items/s; 0 = unlimited.
    pub rate_target: f64,
    pub warmup_s: f64,
    pub duration_s: f64,
    pub items_per_s: f64,
    pub requests_per_s: f64,
    pub items_ok: u64,
    pub requests_ok: u64,
    /// Ack latency of successful requests.
    pub latency: Latency,
    /// Failed requests by gRPC code, UNAVAILABLE excluded.
    pub errors: BTreeMap<&'static str, u64>,
    /// Requests refused with UNAVAILABLE (backpressure).
    pub unavailable: u64,
    pub first_error: Option<String>,
    /// Requests whose ack carried a `partial_success` rejection.
    pub partial_success_requests: u64,
    pub rejected_items: u64,
    pub first_rejection: Option<String>,
    /// With `--http`: what the collector indexed.
    pub indexing: Option<Indexing>,
    /// With `--pid`: the collector's peak resident memory (VmHWM), and the
    /// peak of its anonymous part sampled every 250 ms (the rest is file
    /// pages: tantivy's memory-mapped segments, reclaimable page cache).
    pub collector_peak_rss_mb: Option<f64>,
    pub collector_peak_anon_mb: Option<f64>,
    /// With `--pid`: the collector's CPU from the start of the load until
    /// everything was indexed (with `--http`) or the load ended, in cores,
    /// and per acknowledged item.
    pub collector_cpu_cores: Option<f64>,
    pub collector_cpu_us_per_item: Option<f64>,
    /// Collector CPU seconds by thread name over the same span
    /// (`exited threads`: the part no live thread accounts for, e.g.
    /// tantivy's indexing threads, which end at every commit).
    pub collector_cpu_by_thread: BTreeMap<String, f64>,
    /// CPU the load generator itself used, in cores.
    pub bench_cpu_cores: f64,
    pub machine: Machine,
}

/// The collector's indexing, followed through its `/metrics`.
#[derive(Debug, Serialize)]
pub struct Indexing {
    /// Documents indexed per second during the measurement window.
    pub window_items_per_s: f64,
    /// Every acknowledged item indexed this long after the load stopped.
    pub caught_up_after_s: f64,
    /// All acknowledged items / (load start → all indexed).
    pub end_to_end_items_per_s: f64,
}

/// `(when, documents indexed)` samples taken every 250 ms during the load.
type Samples = Arc<Mutex<Vec<(Instant, f64)>>>;

async fn sample_documents(client: reqwest::Client, base: String, label: String, into: Samples) {
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tick.tick().await;
        if let Ok(v) = crate::scrape::fetch(&client, &base, DOCUMENTS, &label).await {
            into.lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((Instant::now(), v));
        }
    }
}

const DOCUMENTS: &str = "skein_index_documents_total";

/// The sampled document count at `t`, linearly interpolated.
fn documents_at(samples: &[(Instant, f64)], t: Instant) -> Option<f64> {
    let after = samples.iter().position(|(at, _)| *at >= t)?;
    let (t1, v1) = samples[after];
    let Some(&(t0, v0)) = after.checked_sub(1).and_then(|i| samples.get(i)) else {
        return Some(v1);
    };
    let span = t1.duration_since(t0).as_secs_f64().max(1e-9);
    Some(v0 + (v1 - v0) * t.duration_since(t0).as_secs_f64() / span)
}

/// Runs `skein-bench ingest`.
pub async fn run(args: Args) -> Result<IngestReport> {
    ensure!(args.batch > 0, "--batch must be positive");
    let seed = args.seed.unwrap_or_else(rand::random);
    let templates = DataGen::new(seed).templates(
        args.signal,
        args.templates,
        args.batch,
        args.spans_per_trace,
    )?;
    let item_bytes = templates.iter().map(|t| t.encoded_len()).sum::<usize>() as f64
        / templates.iter().map(|t| t.items()).sum::<usize>() as f64;
    let follow = match &args.http {
        Some(base) => {
            let client = crate::http::client_builder().build()?;
            let label = format!("signal=\"{}\"", args.signal.noun());
            let before = crate::scrape::fetch(&client, base, DOCUMENTS, &label).await?;
            let samples: Samples = Arc::default();
            let task = tokio::spawn(sample_documents(
                client.clone(),
                base.clone(),
                label.clone(),
                samples.clone(),
            ));
            Some((client, base.clone(), label, before, samples, task))
        }
        None => None,
    };
    let anon_peak = Arc::new(Mutex::new(0.0f64));
    let anon_task = args.pid.map(|pid| {
        let peak = anon_peak.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(250));
            loop {
                tick.tick().await;
                if let Some(mb) = status_mb(pid, "RssAnon:") {
                    let mut p = peak.lock().unwrap_or_else(|e| e.into_inner());
                    *p = p.max(mb);
                }
            }
        })
    });
    let cpu_before = args.pid.and_then(report::pid_cpu_time);
    let threads_before = args.pid.and_then(report::pid_thread_cpu);
    let load_start = Instant::now();
    let result = run_load(LoadPlan {
        addr: args.otlp_grpc.clone(),
        templates: Arc::new(templates),
        connections: args.connections,
        inflight: args.inflight,
        rate: args.rate,
        burst: args.burst,
        warmup: args.warmup,
        stop: Stop::After(args.duration),
        timeout: args.timeout,
        seed,
        sample_ids: 0,
        progress: false,
        give_up_after: Duration::MAX,
    })
    .await?;
    let load_end = Instant::now();
    let indexing = match follow {
        None => None,
        Some((client, base, label, before, samples, task)) => {
            // Wait until every acknowledged item is indexed (bounded).
            let want = before + result.acked_total as f64;
            let limit = load_end + Duration::from_secs(600);
            let caught_up = loop {
                let now = crate::scrape::fetch(&client, &base, DOCUMENTS, &label).await?;
                if now >= want {
                    break Instant::now();
                }
                ensure!(
                    Instant::now() < limit,
                    "indexing did not catch up within 10 minutes ({now} of {want} documents)"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            };
            task.abort();
            let samples = samples.lock().unwrap_or_else(|e| e.into_inner()).clone();
            let window_items = match (
                documents_at(&samples, result.window_start),
                documents_at(&samples, result.window_end),
            ) {
                (Some(a), Some(b)) => b - a,
                _ => 0.0,
            };
            Some(Indexing {
                window_items_per_s: window_items / result.window.as_secs_f64().max(1e-9),
                caught_up_after_s: caught_up.duration_since(load_end).as_secs_f64(),
                end_to_end_items_per_s: result.acked_total as f64
                    / caught_up.duration_since(load_start).as_secs_f64().max(1e-9),
            })
        }
    };
    let threads_after = args.pid.and_then(report::pid_thread_cpu);
    let cpu_used = match (cpu_before, args.pid.and_then(report::pid_cpu_time)) {
        (Some(a), Some(b)) => Some((b.saturating_sub(a), load_start.elapsed())),
        _ => None,
    };
    let collector_cpu_by_thread = match (&threads_before, &threads_after, cpu_used) {
        (Some(a), Some(b), Some((total, _))) => report::thread_cpu_split(a, b, total),
        _ => BTreeMap::new(),
    };
    let collector_cpu_cores =
        cpu_used.map(|(cpu, wall)| cpu.as_secs_f64() / wall.as_secs_f64().max(1e-9));
    let collector_cpu_us_per_item =
        cpu_used.map(|(cpu, _)| cpu.as_secs_f64() * 1e6 / (result.acked_total.max(1)) as f64);
    let collector_peak_rss_mb = args.pid.and_then(|pid| status_mb(pid, "VmHWM:"));
    let collector_peak_anon_mb = anon_task.map(|t| {
        t.abort();
        *anon_peak.lock().unwrap_or_else(|e| e.into_inner())
    });
    let t = result.tally;
    let secs = result.window.as_secs_f64().max(1e-9);
    let mut errors = t.errors;
    let unavailable = errors.remove(code_name(Code::Unavailable)).unwrap_or(0);
    Ok(IngestReport {
        bench: "ingest",
        signal: args.signal,
        target: args.otlp_grpc,
        connections: args.connections,
        inflight: args.inflight,
        batch: args.batch,
        item_bytes,
        rate_target: args.rate,
        warmup_s: args.warmup.as_secs_f64(),
        duration_s: secs,
        items_per_s: t.items_ok as f64 / secs,
        requests_per_s: t.requests_ok as f64 / secs,
        items_ok: t.items_ok,
        requests_ok: t.requests_ok,
        latency: Latency::from_histogram(&t.latency),
        errors,
        unavailable,
        first_error: t.first_error,
        partial_success_requests: t.partial_requests,
        rejected_items: t.rejected_items,
        first_rejection: t.first_rejection,
        indexing,
        collector_peak_rss_mb,
        collector_peak_anon_mb,
        collector_cpu_cores,
        collector_cpu_us_per_item,
        collector_cpu_by_thread,
        bench_cpu_cores: result.cpu_cores,
        machine: Machine::now(),
    })
}

impl Report for IngestReport {
    fn human(&self) -> String {
        let noun = self.signal.noun();
        let rate = if self.rate_target > 0.0 {
            format!("rate {} {noun}/s", thousands(self.rate_target))
        } else {
            "rate unlimited".into()
        };
        let errors = if self.errors.is_empty() {
            "none".to_string()
        } else {
            self.errors
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut out = format!(
            "ingest {noun} → {}: {} connections × {} in flight, batches of {} ({:.0} B/item), {rate}, {:.0} s after {:.0} s warm-up\n",
            self.target, self.connections, self.inflight, self.batch, self.item_bytes, self.duration_s, self.warmup_s
        );
        out += &format!(
            "  throughput    {} {noun}/s   {:.1} requests/s   ({} {noun} acknowledged)\n",
            thousands(self.items_per_s),
            self.requests_per_s,
            thousands(self.items_ok as f64)
        );
        out += &format!("  ack latency   {}\n", self.latency.human());
        out += &format!("  backpressure  {} UNAVAILABLE\n", self.unavailable);
        out += &format!("  errors        {errors}\n");
        if let Some(e) = &self.first_error {
            out += &format!("  first error   {e}\n");
        }
        out += &format!(
            "  partial       {} requests, {} {noun} rejected{}\n",
            self.partial_success_requests,
            self.rejected_items,
            self.first_rejection
                .as_deref()
                .map(|m| format!(" ({m})"))
                .unwrap_or_default()
        );
        if let Some(ix) = &self.indexing {
            out += &format!(
                "  indexed       {} {noun}/s in the window; all acknowledged indexed {:.1} s after the load; end to end {} {noun}/s\n",
                thousands(ix.window_items_per_s),
                ix.caught_up_after_s,
                thousands(ix.end_to_end_items_per_s)
            );
        }
        if let (Some(mb), Some(anon)) = (self.collector_peak_rss_mb, self.collector_peak_anon_mb) {
            out += &format!(
                "  collector     peak RSS {mb:.0} MB, of it anonymous at most {anon:.0} MB (the rest: mapped index files)\n"
            );
        }
        if let (Some(cores), Some(us)) = (self.collector_cpu_cores, self.collector_cpu_us_per_item)
        {
            out += &format!(
                "  collector cpu {cores:.2} cores until indexed = {us:.2} µs per {}\n",
                noun.trim_end_matches('s')
            );
        }
        let total: f64 = self.collector_cpu_by_thread.values().sum();
        let mut threads: Vec<(&String, &f64)> = self
            .collector_cpu_by_thread
            .iter()
            .filter(|(_, s)| **s >= total * 0.01)
            .collect();
        threads.sort_by(|a, b| b.1.total_cmp(a.1));
        if !threads.is_empty() {
            out += &format!(
                "  cpu by thread {} (CPU seconds until indexed)\n",
                threads
                    .iter()
                    .map(|(n, s)| format!("{n} {s:.1} s"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        out += &format!(
            "  load gen cpu  {:.2} cores; machine: {}\n",
            self.bench_cpu_cores,
            self.machine.human()
        );
        out
    }
}

/// A `/proc/<pid>/status` memory line (`VmHWM:`, `RssAnon:`…), in MB.
fn status_mb(pid: u32, key: &str) -> Option<f64> {
    Some(report::pid_status_kb(pid, key)? as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::mock::{self, Mock};

    fn args(addr: &str, signal: Signal) -> Args {
        Args {
            otlp_grpc: addr.to_string(),
            signal,
            duration: Duration::from_millis(800),
            warmup: Duration::from_millis(200),
            connections: 2,
            inflight: 2,
            batch: 512,
            rate: 0.0,
            burst: Duration::from_secs(1),
            spans_per_trace: 10,
            templates: 2,
            timeout: Duration::from_secs(5),
            seed: Some(1),
            http: None,
            pid: None,
        }
    }

    #[test]
    fn documents_are_interpolated_between_samples() {
        let t0 = Instant::now();
        let s = |ms: u64, v: f64| (t0 + Duration::from_millis(ms), v);
        let samples = [s(0, 100.0), s(1000, 200.0), s(2000, 400.0)];
        let at = |ms: u64| documents_at(&samples, t0 + Duration::from_millis(ms));
        assert_eq!(at(0), Some(100.0));
        assert_eq!(at(500), Some(150.0));
        assert_eq!(at(1500), Some(300.0));
        assert_eq!(at(2500), None, "after the last sample: unknown");
    }

    #[tokio::test]
    async fn counts_acks_and_partial_success() {
        let m = mock::start(Mock {
            reject: 2,
            ..Mock::default()
        })
        .await;
        for signal in [Signal::Spans, Signal::Logs] {
            let r = run(args(&m.grpc, signal)).await.unwrap();
            assert!(r.requests_ok > 0, "{r:?}");
            assert_eq!(r.items_ok, r.requests_ok * 510, "{r:?}");
            assert_eq!(r.rejected_items, r.requests_ok * 2);
            assert_eq!(r.partial_success_requests, r.requests_ok);
            assert_eq!(r.first_rejection.as_deref(), Some("mock rejection"));
            assert_eq!(r.latency.count, r.requests_ok);
            assert!(r.errors.is_empty() && r.unavailable == 0, "{r:?}");
            assert!(r.human().contains("ack latency"));
        }
        // Ids are fresh in every request: no trace grows past ten spans.
        let traces = m.mock.traces.lock().unwrap();
        assert!(traces.len() > 52, "{}", traces.len());
        assert!(traces.values().all(|&n| n <= 10));
        assert!(*m.mock.logs.lock().unwrap() > 0);
    }

    #[tokio::test]
    async fn counts_unavailable_as_backpressure() {
        let m = mock::start(Mock {
            refuse: true,
            ..Mock::default()
        })
        .await;
        let r = run(args(&m.grpc, Signal::Spans)).await.unwrap();
        assert_eq!(r.items_ok, 0);
        assert!(r.unavailable > 0, "{r:?}");
        assert!(r.errors.is_empty(), "{r:?}");
        assert!(
            r.first_error
                .as_deref()
                .unwrap_or("")
                .starts_with("UNAVAILABLE"),
            "{r:?}"
        );
    }

    #[tokio::test]
    async fn paces_to_the_target_rate() {
        let m = mock::start(Mock::default()).await;
        let mut a = args(&m.grpc, Signal::Spans);
        a.rate = 10_240.0; // 20 requests/s
        a.duration = Duration::from_secs(1);
        let r = run(a).await.unwrap();
        assert!((15..=25).contains(&r.requests_ok), "{r:?}");
    }

    #[tokio::test]
    async fn fails_fast_without_a_collector() {
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = free.local_addr().unwrap().to_string();
        drop(free);
        assert!(run(args(&addr, Signal::Spans)).await.is_err());
    }

    #[test]
    fn pacer_spaces_slots_and_caps_bursts() {
        let start = Instant::now();
        // One batch per 100 ms, 50 ms of burst: rounded up to one slot.
        let p = Pacer::new(1000.0, 100, Duration::from_millis(50), start);
        assert_eq!(p.next_slot_at(start), start);
        assert_eq!(p.next_slot_at(start), start + Duration::from_millis(100));
        // Idle for 10 s: only one slot is saved up.
        let later = start + Duration::from_secs(10);
        assert_eq!(p.next_slot_at(later), later - Duration::from_millis(100));
        assert_eq!(p.next_slot_at(later), later);
        assert_eq!(p.next_slot_at(later), later + Duration::from_millis(100));
    }

    #[test]
    fn pacer_catches_up_within_its_burst() {
        let start = Instant::now();
        let p = Pacer::new(1000.0, 100, Duration::from_secs(1), start);
        let later = start + Duration::from_secs(10);
        // Ten saved-up slots are handed out at once, then pacing resumes.
        for i in 0..10 {
            assert!(p.next_slot_at(later) < later, "slot {i}");
        }
        assert_eq!(p.next_slot_at(later), later);
    }
}
