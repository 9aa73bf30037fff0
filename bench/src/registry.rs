//! `skein-bench registry`: many instances renewing leases on one collector
//! (ISSUE 5 target: 100,000 instances renewing every 10 s, expiry detected
//! within 1 s of the deadline, heartbeat p99 ≤ 10 ms, ≤ 300 bytes per
//! instance beyond metadata).
//!
//! 1. Registers `--instances` instances (`--concurrency` requests in flight)
//!    and, with `--pid`, reads the collector's RSS before and after: the
//!    difference per instance is the memory figure.
//! 2. Renews every instance once per `--interval`, spread evenly, for
//!    `--duration`, measuring each heartbeat's latency. `--expire` of them
//!    stop renewing at the start, so their leases run out during the window.
//! 3. Reads the `expired` events from the watch API: detection delay is the
//!    event time minus the lease's deadline (`prev.expires_at_unix_ms`), both
//!    taken by the collector. An expiry of an instance that kept renewing is
//!    a false expiry.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use hdrhistogram::Histogram;
use serde::Serialize;
use serde_json::{json, Value};
use tokio::time::Instant;

use crate::report::{self, thousands, Latency, Machine, Report};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The collector's HTTP API base URL.
    #[arg(long, default_value = "http://127.0.0.1:16686")]
    pub http: String,
    /// Instances to register and keep renewing.
    #[arg(long, default_value_t = 100_000)]
    pub instances: u64,
    /// How often each instance renews.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10s")]
    pub interval: Duration,
    /// Lease TTL of every instance.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "30s")]
    pub ttl: Duration,
    /// Measured renewal time.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "60s")]
    pub duration: Duration,
    /// Instances that stop renewing when the window starts (expiry timing).
    #[arg(long, default_value_t = 1000)]
    pub expire: u64,
    /// Requests in flight.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// The collector's pid, to measure its resident memory per instance.
    #[arg(long)]
    pub pid: Option<u32>,
    /// Service name prefix (instances spread over 100 services).
    #[arg(long, default_value = "bench")]
    pub service: String,
}

#[derive(Debug, Serialize)]
pub struct RegistryReport {
    pub instances: u64,
    pub register_per_s: f64,
    pub register: Latency,
    pub renew_target_per_s: f64,
    pub renew_per_s: f64,
    pub heartbeat: Latency,
    pub errors: u64,
    pub expected_expiries: u64,
    pub expired: u64,
    pub false_expiries: u64,
    pub expiry_delay: Latency,
    pub rss_bytes_per_instance: Option<f64>,
    pub machine: Machine,
}

impl Report for RegistryReport {
    fn human(&self) -> String {
        let rss = self
            .rss_bytes_per_instance
            .map_or("not measured (no --pid)".to_string(), |b| {
                format!("{b:.0} B")
            });
        format!(
            "registry: {} instances\n  register   {}/s  {}\n  renew      {}/s of {}/s target  {}\n  errors     {}\n  expiry     {}/{} expired, {} false  delay {}\n  memory     {} per instance (RSS delta)\n  machine    {}\n",
            thousands(self.instances as f64),
            thousands(self.register_per_s),
            self.register.human(),
            thousands(self.renew_per_s),
            thousands(self.renew_target_per_s),
            self.heartbeat.human(),
            self.errors,
            self.expired,
            self.expected_expiries,
            self.false_expiries,
            self.expiry_delay.human(),
            rss,
            self.machine.human(),
        )
    }
}

fn rss_bytes(pid: u32) -> Option<u64> {
    Some(crate::report::pid_status_kb(pid, "VmRSS:")? * 1024)
}

struct Shared {
    client: reqwest::Client,
    url: String,
    service: String,
    ttl: String,
    errors: AtomicU64,
}

impl Shared {
    fn body(&self, i: u64, rev: u64) -> Value {
        json!({
            "service": format!("{}-{}", self.service, i % 100),
            "instance": format!("i-{i}"),
            "ttl": self.ttl,
            "heartbeat_revision": rev,
            "address": "10.0.0.1:8080",
        })
    }

    async fn beat(&self, i: u64, rev: u64) -> Option<Duration> {
        let start = Instant::now();
        let ok = match self
            .client
            .post(&self.url)
            .json(&self.body(i, rev))
            .send()
            .await
        {
            Ok(r) => r.status().is_success(),
            Err(_) => false,
        };
        if ok {
            Some(start.elapsed())
        } else {
            self.errors.fetch_add(1, Ordering::Relaxed);
            None
        }
    }
}

pub async fn run(args: Args) -> Result<RegistryReport> {
    ensure!(
        args.instances > 0 && args.expire <= args.instances,
        "--expire must be at most --instances"
    );
    let client = crate::http::client_builder()
        .pool_max_idle_per_host(args.concurrency)
        .timeout(Duration::from_secs(30))
        .build()?;
    let base = args.http.trim_end_matches('/').to_string();
    let shared = Arc::new(Shared {
        client: client.clone(),
        url: format!("{base}/api/v1/registry/heartbeat"),
        service: args.service.clone(),
        ttl: format!("{}ms", args.ttl.as_millis()),
        errors: AtomicU64::new(0),
    });
    let rss_before = args.pid.and_then(rss_bytes);

    // 1. Register.
    let next = Arc::new(AtomicU64::new(0));
    let hist = Arc::new(Mutex::new(report::latency_histogram()));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..args.concurrency {
        let (shared, next, hist, n) = (shared.clone(), next.clone(), hist.clone(), args.instances);
        workers.push(tokio::spawn(async move {
            let mut local = report::latency_histogram();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                if let Some(d) = shared.beat(i, 1).await {
                    report::record(&mut local, d);
                }
            }
            merge(&hist, &local);
        }));
    }
    for w in workers {
        w.await?;
    }
    let register_secs = started.elapsed().as_secs_f64();
    let register = Latency::from_histogram(&lock(&hist));
    // Let the allocator settle before reading RSS.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_after = args.pid.and_then(rss_bytes);
    let rss_bytes_per_instance = match (rss_before, rss_after) {
        (Some(b), Some(a)) => Some(a.saturating_sub(b) as f64 / args.instances as f64),
        _ => None,
    };
    let window_start_rev = revision(&client, &base).await? + 1;

    // 2. Renew, evenly spread; instances below `expire` stay silent.
    let per_beat = args.interval.as_secs_f64() / args.instances as f64;
    let total = (args.duration.as_secs_f64() / per_beat) as u64;
    let slot = Arc::new(AtomicU64::new(0));
    let hist = Arc::new(Mutex::new(report::latency_histogram()));
    let t0 = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..args.concurrency {
        let (shared, slot, hist) = (shared.clone(), slot.clone(), hist.clone());
        let (n, expire) = (args.instances, args.expire);
        workers.push(tokio::spawn(async move {
            let mut local = report::latency_histogram();
            loop {
                let s = slot.fetch_add(1, Ordering::Relaxed);
                if s >= total {
                    break;
                }
                let i = s % n;
                if i < expire {
                    continue;
                }
                tokio::time::sleep_until(t0 + Duration::from_secs_f64(s as f64 * per_beat)).await;
                if let Some(d) = shared.beat(i, 2 + s / n).await {
                    report::record(&mut local, d);
                }
            }
            merge(&hist, &local);
        }));
    }
    for w in workers {
        w.await?;
    }
    let renew_secs = t0.elapsed().as_secs_f64();
    let heartbeat = Latency::from_histogram(&lock(&hist));

    // 3. Expiries during the window, as the collector timed them.
    let mut delays = report::latency_histogram();
    let (mut expired, mut false_expiries) = (0, 0);
    let mut from = window_start_rev;
    loop {
        let url =
            format!("{base}/api/v1/registry/watch?from_revision={from}&timeout=1ms&limit=10000");
        let v: Value = client
            .get(&url)
            .send()
            .await?
            .json()
            .await
            .context("watch answer")?;
        let events = v["events"].as_array().cloned().unwrap_or_default();
        if events.is_empty() {
            break;
        }
        for e in &events {
            from = e["revision"].as_u64().unwrap_or(from) + 1;
            if e["type"] != "expired" {
                continue;
            }
            let idx: u64 = e["instance"]
                .as_str()
                .and_then(|s| s.strip_prefix("i-"))
                .and_then(|s| s.parse().ok())
                .unwrap_or(u64::MAX);
            if idx < args.expire {
                expired += 1;
            } else {
                false_expiries += 1;
            }
            let at = e["at_unix_ms"].as_u64().unwrap_or(0);
            if let Some(deadline) = e["prev"]["expires_at_unix_ms"].as_u64() {
                report::record(
                    &mut delays,
                    Duration::from_millis(at.saturating_sub(deadline)),
                );
            }
        }
    }
    Ok(RegistryReport {
        instances: args.instances,
        register_per_s: args.instances as f64 / register_secs,
        register,
        renew_target_per_s: 1.0 / per_beat * (args.instances - args.expire) as f64
            / args.instances as f64,
        renew_per_s: heartbeat.count as f64 / renew_secs,
        heartbeat,
        errors: shared.errors.load(Ordering::Relaxed),
        expected_expiries: args.expire,
        expired,
        false_expiries,
        expiry_delay: Latency::from_histogram(&delays),
        rss_bytes_per_instance,
        machine: Machine::now(),
    })
}

async fn revision(client: &reqwest::Client, base: &str) -> Result<u64> {
    let v: Value = client
        .get(format!("{base}/api/v1/registry/watch?timeout=1ms"))
        .send()
        .await?
        .json()
        .await?;
    v["revision"]
        .as_u64()
        .context("watch answer without a revision")
}

fn lock(h: &Mutex<Histogram<u64>>) -> std::sync::MutexGuard<'_, Histogram<u64>> {
    h.lock().unwrap_or_else(|p| p.into_inner())
}

fn merge(into: &Mutex<Histogram<u64>>, from: &Histogram<u64>) {
    let _ = lock(into).add(from);
}
