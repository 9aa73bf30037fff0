//! `skein-bench query`: Jaeger query API latency, optionally after loading a
//! data set through the OTLP ingest path.
//!
//! Loading sends traces of ten spans across five services (see
//! [`crate::gen`]) and remembers one trace id per request. Then one marker
//! batch is sent and its trace is polled with `GET /api/traces/{id}` until it
//! is queryable: the indexer works through the WAL in order, so everything
//! before it is queryable too. The time this takes is the indexing lag.
//!
//! Query kinds, each run sequentially from one client:
//! `trace_by_id` (`/api/traces/{id}` for random known ids),
//! `search_service` (`?service=…&limit=20`),
//! `search_tags` (`?tags={"customer.tier":"gold"}&limit=20`, no service) and
//! `search_min_duration` (`?service=frontend&minDuration=…&limit=20`),
//! and the native search language (`/api/v1/traces?q=…&limit=20`, no
//! service): `search_lang_numeric` (`http.status_code>=500 AND
//! customer.tier=gold`) and `search_lang_regex_not`
//! (`customer.tier=~"gold|silver" AND NOT http.method=GET`).
//! Searches carry `start`/`end` (µs) like Grafana sends them.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use serde_json::Value;
use tokio::time::Instant;

use crate::disk::{self, DiskReport};
use crate::gen::{now_unix_nanos, DataGen, IdGen, Signal, SERVICES};
use crate::grpc::{code_name, OtlpClient};
use crate::ingest::{run_load, LoadPlan, Stop};
use crate::report::{self, thousands, Latency, Machine, Report};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The collector's HTTP API address.
    #[arg(long, default_value = "127.0.0.1:16686")]
    pub http: String,
    /// Load a data set through this OTLP/gRPC address first.
    #[arg(long)]
    pub otlp_grpc: Option<String>,
    /// Spans to load (with --otlp-grpc).
    #[arg(long, default_value_t = 10_000_000)]
    pub spans: u64,
    /// Connections used for loading.
    #[arg(long, default_value_t = 2)]
    pub connections: usize,
    /// Requests in flight per loading connection.
    #[arg(long, default_value_t = 2)]
    pub inflight: usize,
    /// Spans per loading request.
    #[arg(long, default_value_t = 512)]
    pub batch: usize,
    /// `GET /api/traces/{id}` requests.
    #[arg(long, default_value_t = 1000)]
    pub queries: usize,
    /// Requests per search kind.
    #[arg(long, default_value_t = 200)]
    pub searches: usize,
    /// `minDuration` of the duration search (slow traces last 1–3 s).
    #[arg(long, default_value = "1s")]
    pub min_duration: String,
    /// Search window: `start` = now − lookback.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "2h")]
    pub lookback: Duration,
    /// How long to wait for the loaded data to become queryable.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "15m")]
    pub wait: Duration,
    /// The collector's data dir: also print bytes per span on disk.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Seed for data, ids and query choice (random when omitted).
    #[arg(long)]
    pub seed: Option<u64>,
}

/// How the data set was loaded.
#[derive(Debug, Serialize)]
pub struct LoadSummary {
    pub target: String,
    pub spans: u64,
    pub seconds: f64,
    pub spans_per_s: f64,
    pub failed_requests: u64,
    pub first_error: Option<String>,
    pub rejected_spans: u64,
    /// CPU the load generator used while loading, in cores.
    pub bench_cpu_cores: f64,
    /// From the marker batch's ack until its trace was returned by id.
    pub indexing_lag_s: f64,
}

/// Latency of one kind of query.
#[derive(Debug, Serialize)]
pub struct KindReport {
    pub kind: &'static str,
    /// One example request path.
    pub example: String,
    pub latency: Latency,
    /// Non-2xx answers and transport failures.
    pub errors: u64,
    pub first_error: Option<String>,
    /// Answers with no trace (a miss for `trace_by_id`).
    pub empty: u64,
    /// Mean traces per answer.
    pub mean_traces: f64,
}

/// The `query` report.
#[derive(Debug, Serialize)]
pub struct QueryReport {
    pub bench: &'static str,
    pub target: String,
    pub load: Option<LoadSummary>,
    /// Trace ids the by-id queries draw from.
    pub known_trace_ids: usize,
    pub kinds: Vec<KindReport>,
    pub disk: Option<DiskReport>,
    pub machine: Machine,
}

/// A Jaeger API client.
struct Jaeger {
    http: reqwest::Client,
    base: String,
}

impl Jaeger {
    fn new(addr: &str) -> Result<Self> {
        let base = if addr.contains("://") {
            addr.trim_end_matches('/').to_string()
        } else {
            format!("http://{addr}")
        };
        let http = crate::http::client_builder()
            .timeout(Duration::from_secs(30))
            .build()
            .context("building the HTTP client")?;
        Ok(Self { http, base })
    }

    /// Fails unless the Jaeger API answers, so a long load is not wasted.
    async fn preflight(&self) -> Result<()> {
        let url = format!("{}/api/services", self.base);
        let resp = self
            .http
            .get(&url)
            .send()
            .await
            .with_context(|| format!("GET {url}"))?;
        ensure!(
            resp.status().is_success(),
            "the Jaeger API is not served at {}: GET /api/services answered {}",
            self.base,
            resp.status()
        );
        Ok(())
    }

    /// GETs `path` with `query` and returns the number of traces in `data`.
    async fn traces(&self, path: &str, query: &[(&str, String)]) -> Result<usize> {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .query(query)
            .send()
            .await?;
        let status = resp.status();
        if status == reqwest::StatusCode::NOT_FOUND && path.starts_with("/api/traces/") {
            return Ok(0);
        }
        ensure!(status.is_success(), "HTTP {status}");
        let body: Value = resp.json().await.context("response is not JSON")?;
        // Jaeger answers `data`, the native search `traces`.
        Ok(body
            .get("data")
            .or_else(|| body.get("traces"))
            .and_then(Value::as_array)
            .map_or(0, Vec::len))
    }

    /// Trace ids found by `GET /api/traces?service=…` for every service.
    async fn discover_ids(&self, window: &[(&str, String)]) -> Result<Vec<String>> {
        let resp = self
            .http
            .get(format!("{}/api/services", self.base))
            .send()
            .await?;
        ensure!(
            resp.status().is_success(),
            "/api/services: HTTP {}",
            resp.status()
        );
        let services: Value = resp.json().await?;
        let mut ids = Vec::new();
        for service in services
            .get("data")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(service) = service.as_str() else {
                continue;
            };
            let mut q = window.to_vec();
            q.extend([("service", service.to_string()), ("limit", "200".into())]);
            let resp = self
                .http
                .get(format!("{}/api/traces", self.base))
                .query(&q)
                .send()
                .await?;
            ensure!(
                resp.status().is_success(),
                "search {service}: HTTP {}",
                resp.status()
            );
            let body: Value = resp.json().await?;
            for trace in body
                .get("data")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(id) = trace.get("traceID").and_then(Value::as_str) {
                    ids.push(id.to_string());
                }
            }
        }
        ids.sort_unstable();
        ids.dedup();
        Ok(ids)
    }
}

/// Runs `skein-bench query`.
pub async fn run(args: Args) -> Result<QueryReport> {
    let seed = args.seed.unwrap_or_else(rand::random);
    let jaeger = Jaeger::new(&args.http)?;
    jaeger.preflight().await?;
    let (load, mut ids) = match &args.otlp_grpc {
        Some(addr) => {
            let (summary, ids) = load(&args, addr, seed, &jaeger).await?;
            (Some(summary), ids)
        }
        None => (None, Vec::new()),
    };
    let now_us = now_unix_nanos() / 1000;
    let window = [
        (
            "start",
            (now_us - args.lookback.as_micros() as u64).to_string(),
        ),
        ("end", (now_us + 60_000_000).to_string()),
    ];
    if ids.is_empty() {
        ids = jaeger.discover_ids(&window).await?;
        ensure!(
            !ids.is_empty(),
            "no traces found at {}: load some with --otlp-grpc",
            args.http
        );
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let mut kinds = Vec::new();
    kinds.push(
        measure(
            &jaeger,
            "trace_by_id",
            args.queries,
            |rng| {
                (
                    format!("/api/traces/{}", ids[rng.random_range(0..ids.len())]),
                    Vec::new(),
                )
            },
            &mut rng,
        )
        .await,
    );
    let limit = ("limit", "20".to_string());
    kinds.push(
        measure(
            &jaeger,
            "search_service",
            args.searches,
            |rng| {
                let service = SERVICES[rng.random_range(0..SERVICES.len())].name;
                let mut q = window.to_vec();
                q.extend([("service", service.to_string()), limit.clone()]);
                ("/api/traces".to_string(), q)
            },
            &mut rng,
        )
        .await,
    );
    kinds.push(
        measure(
            &jaeger,
            "search_tags",
            args.searches,
            |_| {
                let mut q = window.to_vec();
                q.extend([
                    ("tags", r#"{"customer.tier":"gold"}"#.to_string()),
                    limit.clone(),
                ]);
                ("/api/traces".to_string(), q)
            },
            &mut rng,
        )
        .await,
    );
    kinds.push(
        measure(
            &jaeger,
            "search_min_duration",
            args.searches,
            |_| {
                let mut q = window.to_vec();
                q.extend([
                    ("service", SERVICES[0].name.to_string()),
                    ("minDuration", args.min_duration.clone()),
                    limit.clone(),
                ]);
                ("/api/traces".to_string(), q)
            },
            &mut rng,
        )
        .await,
    );
    // The search language (native API), attribute conditions without a
    // service: a numeric comparison, and a regex with a negation.
    let window_ns = [
        (
            "start",
            (now_us - args.lookback.as_micros() as u64)
                .saturating_mul(1000)
                .to_string(),
        ),
        (
            "end",
            (now_us + 60_000_000).saturating_mul(1000).to_string(),
        ),
    ];
    for (kind, text) in [
        (
            "search_lang_numeric",
            "http.status_code>=500 AND customer.tier=gold",
        ),
        (
            "search_lang_regex_not",
            "customer.tier=~\"gold|silver\" AND NOT http.method=GET",
        ),
    ] {
        kinds.push(
            measure(
                &jaeger,
                kind,
                args.searches,
                |_| {
                    let mut q = window_ns.to_vec();
                    q.extend([("q", text.to_string()), limit.clone()]);
                    ("/api/v1/traces".to_string(), q)
                },
                &mut rng,
            )
            .await,
        );
    }
    let disk = match (&args.data_dir, &load) {
        (Some(dir), Some(l)) => Some(disk::measure(dir, l.spans)?),
        (Some(_), None) => {
            bail!("--data-dir needs --otlp-grpc (the span count comes from the load)")
        }
        _ => None,
    };
    Ok(QueryReport {
        bench: "query",
        target: args.http,
        load,
        known_trace_ids: ids.len(),
        kinds,
        disk,
        machine: Machine::now(),
    })
}

/// Loads `args.spans` spans, then waits until a marker trace is queryable.
async fn load(
    args: &Args,
    addr: &str,
    seed: u64,
    jaeger: &Jaeger,
) -> Result<(LoadSummary, Vec<String>)> {
    let templates = Arc::new(DataGen::new(seed).templates(Signal::Spans, 16, args.batch, 10)?);
    eprintln!(
        "loading {} spans into {addr} …",
        thousands(args.spans as f64)
    );
    let result = run_load(LoadPlan {
        addr: addr.to_string(),
        templates: templates.clone(),
        connections: args.connections,
        inflight: args.inflight,
        rate: 0.0,
        burst: Duration::ZERO,
        warmup: Duration::ZERO,
        stop: Stop::Items(args.spans),
        timeout: Duration::from_secs(60),
        seed,
        sample_ids: 100_000,
        progress: true,
        give_up_after: Duration::from_secs(60),
    })
    .await?;
    let t = &result.tally;
    let failure = || t.first_error.as_deref().unwrap_or("no error reported");
    ensure!(t.items_ok > 0, "no span was accepted: {}", failure());
    if t.items_ok < args.spans {
        eprintln!(
            "  loading stopped early after {} spans: {}",
            thousands(t.items_ok as f64),
            failure()
        );
    }

    // The marker: one more batch, then poll its first (complete) trace.
    let mut client = OtlpClient::connect(addr).await?;
    let marker = templates[0].patch(&mut IdGen::new(1 << 23, seed), now_unix_nanos());
    let marker_id = hex::encode(marker.trace_ids[0]);
    let give_up = Instant::now() + args.wait;
    loop {
        match client
            .export(Signal::Spans, marker.bytes.clone(), Duration::from_secs(60))
            .await
        {
            Ok(_) => break,
            Err(s) if Instant::now() < give_up => {
                eprintln!("  marker batch refused ({}), retrying", code_name(s.code()));
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(s) => bail!("marker batch refused: {s}"),
        }
    }
    let acked = Instant::now();
    eprintln!("waiting for trace {marker_id} to become queryable …");
    loop {
        match jaeger
            .traces(&format!("/api/traces/{marker_id}"), &[])
            .await
        {
            Ok(n) if n > 0 => break,
            Ok(_) | Err(_) if Instant::now() < give_up => {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            Ok(_) => bail!("trace {marker_id} still not found after {:?}", args.wait),
            Err(e) => {
                return Err(e.context(format!(
                    "trace {marker_id} not queryable after {:?}",
                    args.wait
                )))
            }
        }
    }
    let summary = LoadSummary {
        target: addr.to_string(),
        spans: t.items_ok + marker.items as u64,
        seconds: result.window.as_secs_f64(),
        spans_per_s: t.items_ok as f64 / result.window.as_secs_f64().max(1e-9),
        failed_requests: t.error_count(),
        first_error: t.first_error.clone(),
        rejected_spans: t.rejected_items,
        bench_cpu_cores: result.cpu_cores,
        indexing_lag_s: acked.elapsed().as_secs_f64(),
    };
    let mut ids: Vec<String> = t.trace_ids.iter().map(hex::encode).collect();
    ids.push(marker_id);
    Ok((summary, ids))
}

/// Runs `n` requests built by `next` one after another.
async fn measure(
    jaeger: &Jaeger,
    kind: &'static str,
    n: usize,
    mut next: impl FnMut(&mut StdRng) -> (String, Vec<(&'static str, String)>),
    rng: &mut StdRng,
) -> KindReport {
    let mut hist = report::latency_histogram();
    let (mut errors, mut empty, mut traces) = (0u64, 0u64, 0u64);
    let mut first_error = None;
    let mut example = String::new();
    for i in 0..n {
        let (path, query) = next(rng);
        if i == 0 {
            let q: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
            example = if q.is_empty() {
                path.clone()
            } else {
                format!("{path}?{}", q.join("&"))
            };
        }
        let start = Instant::now();
        let result = jaeger.traces(&path, &query).await;
        let elapsed = start.elapsed();
        match result {
            Ok(found) => {
                report::record(&mut hist, elapsed);
                traces += found as u64;
                if found == 0 {
                    empty += 1;
                }
            }
            Err(e) => {
                errors += 1;
                first_error.get_or_insert_with(|| format!("{e:#}"));
            }
        }
    }
    let ok = n as u64 - errors;
    KindReport {
        kind,
        example,
        latency: Latency::from_histogram(&hist),
        errors,
        first_error,
        empty,
        mean_traces: if ok > 0 {
            traces as f64 / ok as f64
        } else {
            0.0
        },
    }
}

impl Report for QueryReport {
    fn human(&self) -> String {
        let mut out = format!(
            "query {}: {} known trace ids\n",
            self.target,
            thousands(self.known_trace_ids as f64)
        );
        if let Some(l) = &self.load {
            out += &format!(
                "  load          {} spans in {:.1} s ({} spans/s), {} failed requests, {} rejected, load gen {:.2} cores; queryable {:.1} s after the last ack\n",
                thousands(l.spans as f64),
                l.seconds,
                thousands(l.spans_per_s),
                l.failed_requests,
                l.rejected_spans,
                l.bench_cpu_cores,
                l.indexing_lag_s
            );
            if let Some(e) = &l.first_error {
                out += &format!("  load error    {e}\n");
            }
        }
        for k in &self.kinds {
            out += &format!(
                "  {:<20} {}; {} errors, {} empty, {:.1} traces/answer\n",
                k.kind,
                k.latency.human(),
                k.errors,
                k.empty,
                k.mean_traces
            );
            if let Some(e) = &k.first_error {
                out += &format!("  {:<20} first error: {e}\n", "");
            }
        }
        if let Some(d) = &self.disk {
            out += &format!("  {}", d.human());
        }
        out += &format!("  machine       {}\n", self.machine.human());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mock::{self, Mock};

    fn args(http: &str, grpc: Option<&str>) -> Args {
        Args {
            http: http.to_string(),
            otlp_grpc: grpc.map(str::to_string),
            spans: 5_000,
            connections: 2,
            inflight: 2,
            batch: 512,
            queries: 40,
            searches: 5,
            min_duration: "1s".into(),
            lookback: Duration::from_secs(7200),
            wait: Duration::from_secs(10),
            data_dir: None,
            seed: Some(3),
        }
    }

    #[tokio::test]
    async fn loads_waits_for_the_marker_and_measures_every_kind() {
        let m = mock::start(Mock::default()).await;
        let r = run(args(&m.http, Some(&m.grpc))).await.unwrap();
        let load = r.load.as_ref().unwrap();
        assert!(load.spans >= 5_000 + 512, "{load:?}");
        assert_eq!(load.failed_requests, 0);
        let received: usize = m.mock.traces.lock().unwrap().values().sum();
        assert_eq!(received as u64, load.spans);
        let kinds: Vec<_> = r.kinds.iter().map(|k| k.kind).collect();
        assert_eq!(
            kinds,
            [
                "trace_by_id",
                "search_service",
                "search_tags",
                "search_min_duration",
                "search_lang_numeric",
                "search_lang_regex_not"
            ]
        );
        for k in &r.kinds {
            assert_eq!((k.errors, k.empty), (0, 0), "{k:?}");
        }
        assert_eq!(r.kinds[0].latency.count, 40);
        assert_eq!(r.kinds[2].latency.count, 5);
        assert!(
            r.kinds[2].example.contains("customer.tier"),
            "{}",
            r.kinds[2].example
        );
        assert!(r.human().contains("search_min_duration"));
        assert!(
            r.kinds[4].example.contains("/api/v1/traces?") && r.kinds[4].example.contains("q="),
            "{}",
            r.kinds[4].example
        );
    }

    #[tokio::test]
    async fn discovers_ids_without_loading() {
        let m = mock::start(Mock::default()).await;
        m.mock.traces.lock().unwrap().insert("ab".repeat(16), 3);
        let r = run(args(&m.http, None)).await.unwrap();
        assert!(r.load.is_none());
        assert_eq!(r.known_trace_ids, 1); // found once per service, deduplicated
        assert_eq!(r.kinds[0].empty, 0);
    }

    #[tokio::test]
    async fn refuses_to_load_without_a_query_api() {
        let m = mock::start(Mock {
            no_api: true,
            ..Mock::default()
        })
        .await;
        let err = run(args(&m.http, Some(&m.grpc))).await.unwrap_err();
        assert!(format!("{err:#}").contains("not served"), "{err:#}");
        assert!(m.mock.traces.lock().unwrap().is_empty(), "loaded anyway");
    }
}
