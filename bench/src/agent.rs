//! `skein-bench agent`: the agent's targets (DESIGN §9, issue 6).
//!
//! - `forward`: start `skein-agent` (tailing a file this tool writes),
//!   send `--span-rate` spans/s over OTLP/gRPC and write `--line-rate`
//!   lines/s for `--duration`; report the agent's peak RSS, its CPU share
//!   of one core, and the app's export-call latency through the agent
//!   compared with the same load sent straight to the upstream.
//! - `replay`: with the upstream down, fill the agent's disk buffer with
//!   `--backlog` bytes, bring the upstream up and time the drain.
//!
//! The upstream is `--collector-otlp` (a real collector) or, when omitted,
//! an in-process sink that acknowledges at once, which isolates the agent.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use serde::Serialize;
use tonic::codec::CompressionEncoding;

use crate::gen::{DataGen, Signal};
use crate::ingest::{run_load, LoadPlan, Stop};
use crate::report::{self, Latency, Machine, Report};

#[derive(clap::Subcommand, Debug)]
pub enum Cmd {
    /// RSS, CPU and added latency while forwarding spans and tailing lines.
    Forward(ForwardArgs),
    /// Drain rate of a disk-buffer backlog after an upstream outage.
    Replay(ReplayArgs),
}

#[derive(clap::Args, Debug)]
pub struct Common {
    /// The skein-agent binary.
    #[arg(long, default_value = "target/release/skein-agent")]
    pub agent_bin: PathBuf,
    /// A real collector's OTLP/gRPC address; default: an in-process sink.
    #[arg(long)]
    pub collector_otlp: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct ForwardArgs {
    #[command(flatten)]
    pub common: Common,
    #[arg(long, default_value_t = 5000.0)]
    pub span_rate: f64,
    #[arg(long, default_value_t = 2000.0)]
    pub line_rate: f64,
    /// Spans per export call (the SDK's batch size).
    #[arg(long, default_value_t = 512)]
    pub batch: usize,
    #[arg(long, value_parser = humantime::parse_duration, default_value = "30s")]
    pub duration: Duration,
    #[arg(long, value_parser = humantime::parse_duration, default_value = "5s")]
    pub warmup: Duration,
}

#[derive(clap::Args, Debug)]
pub struct ReplayArgs {
    #[command(flatten)]
    pub common: Common,
    /// Backlog to build up, e.g. 1GiB.
    #[arg(long, default_value = "1GiB", value_parser = parse_size)]
    pub backlog: u64,
}

fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim().to_ascii_lowercase();
    let (num, mult) = if let Some(n) = t.strip_suffix("gib") {
        (n, 1u64 << 30)
    } else if let Some(n) = t.strip_suffix("mib") {
        (n, 1 << 20)
    } else {
        (t.as_str(), 1)
    };
    num.trim()
        .parse::<f64>()
        .map(|v| (v * mult as f64) as u64)
        .map_err(|e| format!("'{s}': {e}"))
}

/// An OTLP sink that acknowledges at once and counts what it got.
#[derive(Clone, Default)]
struct Sink {
    items: Arc<AtomicU64>,
}

#[tonic::async_trait]
impl TraceService for Sink {
    async fn export(
        &self,
        req: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let n: usize = req
            .get_ref()
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .map(|s| s.spans.len())
            .sum();
        self.items.fetch_add(n as u64, Ordering::Relaxed);
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl LogsService for Sink {
    async fn export(
        &self,
        req: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        let n: usize = req
            .get_ref()
            .resource_logs
            .iter()
            .flat_map(|r| &r.scope_logs)
            .map(|s| s.log_records.len())
            .sum();
        self.items.fetch_add(n as u64, Ordering::Relaxed);
        Ok(tonic::Response::new(ExportLogsServiceResponse::default()))
    }
}

/// Serve the sink on a thread and runtime of its own, as the separate
/// process it stands for: on the load generator's runtime, decoding the
/// agent's multi-megabyte export batches delayed the answers of the very
/// calls being timed, and that delay was counted against the agent.
fn start_sink(listener: std::net::TcpListener, sink: Sink) -> Result<()> {
    listener.set_nonblocking(true)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("bench-sink".into())
        .spawn(move || {
            runtime.block_on(async move {
                let listener = match tokio::net::TcpListener::from_std(listener) {
                    Ok(l) => l,
                    Err(e) => {
                        eprintln!("sink: {e}");
                        return;
                    }
                };
                let server = tonic::transport::Server::builder()
                    .add_service(
                        TraceServiceServer::new(sink.clone())
                            .accept_compressed(CompressionEncoding::Gzip)
                            .accept_compressed(CompressionEncoding::Zstd)
                            .max_decoding_message_size(64 << 20),
                    )
                    .add_service(
                        LogsServiceServer::new(sink)
                            .accept_compressed(CompressionEncoding::Gzip)
                            .accept_compressed(CompressionEncoding::Zstd)
                            .max_decoding_message_size(64 << 20),
                    );
                let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
                if let Err(e) = server.serve_with_incoming(incoming).await {
                    eprintln!("sink: {e}");
                }
            })
        })?;
    Ok(())
}

/// A running agent process.
struct AgentProc {
    child: Child,
    grpc: String,
    admin: String,
    _dir: tempfile::TempDir,
}

impl Drop for AgentProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_agent(bin: &PathBuf, upstream: &str, extra: &[String]) -> Result<AgentProc> {
    let dir = tempfile::tempdir()?;
    let mut child = Command::new(bin)
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .args([
            "--otlp-grpc-addr",
            "127.0.0.1:0",
            "--otlp-http-addr",
            "127.0.0.1:0",
        ])
        .args(["--admin-addr", "127.0.0.1:0", "--collector-otlp", upstream])
        .args(extra)
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let stderr = child.stderr.take().context("stderr")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("listening ").nth(1) {
                let _ = tx.send(rest.to_string());
            } else if line.contains("WARN") || line.contains("ERROR") {
                eprintln!("agent: {line}");
            }
        }
    });
    let (mut grpc, mut admin) = (String::new(), String::new());
    let deadline = Instant::now() + Duration::from_secs(20);
    while grpc.is_empty() || admin.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        let l = rx
            .recv_timeout(left)
            .context("the agent did not log its listeners")?;
        let (name, addr) = l.split_once('=').unwrap_or(("", ""));
        match name {
            "otlp_grpc" => grpc = addr.trim().to_string(),
            "admin" => admin = addr.trim().to_string(),
            _ => {}
        }
    }
    Ok(AgentProc {
        child,
        grpc,
        admin,
        _dir: dir,
    })
}

/// (user+system CPU seconds, RSS bytes, peak RSS bytes) of `pid` from /proc.
fn proc_usage(pid: u32) -> Result<(f64, u64, u64)> {
    let cpu = crate::report::pid_cpu_time(pid)
        .with_context(|| format!("reading /proc/{pid}/stat"))?
        .as_secs_f64();
    let bytes = |key: &str| crate::report::pid_status_kb(pid, key).unwrap_or(0) * 1024;
    Ok((cpu, bytes("VmRSS:"), bytes("VmHWM:")))
}

fn buffer_used(
    client: &reqwest::Client,
    admin: &str,
) -> impl std::future::Future<Output = Result<u64>> {
    let req = client.get(format!("http://{admin}/status")).send();
    async move {
        let v: serde_json::Value = req.await?.json().await?;
        Ok(v["buffer"]["used_bytes"].as_u64().unwrap_or(0))
    }
}

#[derive(Debug, Serialize)]
pub struct ForwardReport {
    pub upstream: String,
    pub span_rate: f64,
    pub line_rate: f64,
    pub spans_acked_per_s: f64,
    pub agent_rss_mb: f64,
    pub agent_peak_rss_mb: f64,
    pub agent_cpu_percent_of_one_core: f64,
    pub latency_through_agent: Latency,
    pub latency_direct: Latency,
    pub added_p99_ms: f64,
    pub machine: Machine,
}

impl Report for ForwardReport {
    fn human(&self) -> String {
        format!(
            "agent forward → {} ({})\n  load          {} spans/s + {} lines/s; acked {:.0} spans/s\n  agent RSS     {:.1} MB now, {:.1} MB peak\n  agent CPU     {:.2}% of one core\n  via agent     {}\n  direct        {}\n  added p99     {:.2} ms\n",
            self.upstream,
            self.machine.human(),
            self.span_rate,
            self.line_rate,
            self.spans_acked_per_s,
            self.agent_rss_mb,
            self.agent_peak_rss_mb,
            self.agent_cpu_percent_of_one_core,
            self.latency_through_agent.human(),
            self.latency_direct.human(),
            self.added_p99_ms,
        )
    }
}

fn plan(addr: String, args: &ForwardArgs, seed: u64) -> Result<LoadPlan> {
    let templates = DataGen::new(seed).templates(Signal::Spans, 8, args.batch, 10)?;
    Ok(LoadPlan {
        addr,
        templates: Arc::new(templates),
        connections: 1,
        inflight: 1,
        rate: args.span_rate,
        burst: Duration::from_secs(1),
        warmup: args.warmup,
        stop: Stop::After(args.duration),
        timeout: Duration::from_secs(10),
        seed,
        sample_ids: 0,
        progress: false,
        give_up_after: Duration::from_secs(10),
    })
}

pub async fn forward(args: ForwardArgs) -> Result<ForwardReport> {
    let (upstream, _sink) = upstream(&args.common)?;
    let dir = tempfile::tempdir()?;
    let log = dir.path().join("app.log");
    std::fs::File::create(&log)?;
    let agent = spawn_agent(
        &args.common.agent_bin,
        &upstream,
        &[
            "--tail".into(),
            log.display().to_string(),
            "--log-level".into(),
            "warn,skein_agent::pipeline=info".into(),
        ],
    )?;
    let pid = agent.child.id();

    // Lines at --line-rate, in 20 writes per second.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (stop, rate) = (stop.clone(), args.line_rate);
        std::thread::spawn(move || -> Result<()> {
            let mut f = std::fs::OpenOptions::new().append(true).open(&log)?;
            let per_tick = (rate / 20.0).round() as usize;
            let mut n = 0u64;
            let mut next = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                let mut chunk = String::with_capacity(per_tick * 120);
                for _ in 0..per_tick {
                    n += 1;
                    if n.is_multiple_of(2) {
                        chunk.push_str(&format!("2024-05-01T12:00:00Z INFO request {n} served in 12ms path=/api/orders status=200\n"));
                    } else {
                        chunk.push_str(&format!("{{\"level\":\"info\",\"msg\":\"request {n}\",\"path\":\"/api/orders\",\"ms\":12}}\n"));
                    }
                }
                f.write_all(chunk.as_bytes())?;
                next += Duration::from_millis(50);
                std::thread::sleep(next.saturating_duration_since(Instant::now()));
            }
            Ok(())
        })
    };

    // RSS samples during the measured window.
    let samples = Arc::new(Mutex::new((0u64, 0u64)));
    let sampler = {
        let (stop, samples) = (stop.clone(), samples.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if let Ok((_, rss, hwm)) = proc_usage(pid) {
                    let mut s = samples.lock().unwrap_or_else(|e| e.into_inner());
                    s.0 = rss;
                    s.1 = s.1.max(hwm);
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        })
    };
    let warm = args.warmup;
    let cpu_probe = tokio::spawn(async move {
        tokio::time::sleep(warm).await;
        let (c0, _, _) = proc_usage(pid).unwrap_or((0.0, 0, 0));
        let t0 = Instant::now();
        (c0, t0)
    });
    let via = run_load(plan(format!("http://{}", agent.grpc), &args, 1)?).await?;
    let (c1, _, _) = proc_usage(pid)?;
    let (c0, t0) = cpu_probe.await?;
    let cpu_pct = (c1 - c0) / t0.elapsed().as_secs_f64() * 100.0;
    stop.store(true, Ordering::Relaxed);
    let _ = writer.join();
    let _ = sampler.join();
    let (rss, peak) = *samples.lock().unwrap_or_else(|e| e.into_inner());
    drop(agent);

    let direct = run_load(plan(upstream.clone(), &args, 2)?).await?;
    let lat_via = Latency::from_histogram(&via.tally.latency);
    let lat_direct = Latency::from_histogram(&direct.tally.latency);
    Ok(ForwardReport {
        upstream: if args.common.collector_otlp.is_some() {
            upstream
        } else {
            "in-process sink".into()
        },
        span_rate: args.span_rate,
        line_rate: args.line_rate,
        spans_acked_per_s: via.tally.items_ok as f64 / via.window.as_secs_f64().max(1e-9),
        agent_rss_mb: rss as f64 / 1e6,
        agent_peak_rss_mb: peak as f64 / 1e6,
        agent_cpu_percent_of_one_core: cpu_pct,
        added_p99_ms: lat_via.p99_ms - lat_direct.p99_ms,
        latency_through_agent: lat_via,
        latency_direct: lat_direct,
        machine: Machine::now(),
    })
}

/// The upstream URL: the given collector or a fresh in-process sink.
fn upstream(c: &Common) -> Result<(String, Option<Sink>)> {
    match &c.collector_otlp {
        Some(a) if a.contains("://") => Ok((a.clone(), None)),
        Some(a) => Ok((format!("http://{a}"), None)),
        None => {
            let l = std::net::TcpListener::bind("127.0.0.1:0")?;
            let url = format!("http://{}", l.local_addr()?);
            let sink = Sink::default();
            start_sink(l, sink.clone())?;
            Ok((url, Some(sink)))
        }
    }
}

#[derive(Debug, Serialize)]
pub struct ReplayReport {
    pub upstream: String,
    pub backlog_bytes: u64,
    pub fill_seconds: f64,
    pub drain_seconds: f64,
    pub drain_mb_per_s: f64,
    pub agent_peak_rss_mb: f64,
    pub machine: Machine,
}

impl Report for ReplayReport {
    fn human(&self) -> String {
        format!(
            "agent replay → {} ({})\n  backlog       {} built in {:.1} s\n  drained in    {:.1} s = {:.1} MB/s\n  agent peak RSS {:.1} MB\n",
            self.upstream,
            self.machine.human(),
            report::bytes(self.backlog_bytes),
            self.fill_seconds,
            self.drain_seconds,
            self.drain_mb_per_s,
            self.agent_peak_rss_mb,
        )
    }
}

pub async fn replay(args: ReplayArgs) -> Result<ReplayReport> {
    if args.common.collector_otlp.is_some() {
        bail!("replay uses the in-process sink (it must control when the upstream comes back)");
    }
    // Reserve a port for the sink, which starts only after the backlog is built.
    let reserved = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = reserved.local_addr()?;
    drop(reserved);
    let upstream = format!("http://{addr}");
    let max = (args.backlog as f64 * 1.25) as u64;
    let agent = spawn_agent(
        &args.common.agent_bin,
        &upstream,
        &[
            "--buffer-max-bytes".into(),
            max.to_string(),
            "--log-level".into(),
            "error,skein_agent::pipeline=info".into(),
        ],
    )?;
    let http = crate::http::client_builder().build()?;
    let started = Instant::now();
    // Fill: as fast as the agent acknowledges, until the buffer holds the backlog.
    let templates = DataGen::new(3).templates(Signal::Spans, 8, 2048, 10)?;
    let per_item = templates[0].encoded_len() as f64 / 2048.0;
    let items = (args.backlog as f64 / per_item) as u64;
    let fill = LoadPlan {
        addr: format!("http://{}", agent.grpc),
        templates: Arc::new(templates),
        connections: 2,
        inflight: 2,
        rate: 0.0,
        burst: Duration::from_secs(1),
        warmup: Duration::ZERO,
        stop: Stop::Items(items),
        timeout: Duration::from_secs(30),
        seed: 3,
        sample_ids: 0,
        progress: true,
        give_up_after: Duration::from_secs(30),
    };
    run_load(fill).await?;
    let backlog = buffer_used(&http, &agent.admin).await?;
    let fill_seconds = started.elapsed().as_secs_f64();

    let listener = std::net::TcpListener::bind(addr)?;
    let sink = Sink::default();
    start_sink(listener, sink.clone())?;
    // Time from the first item received to an empty buffer (the agent's
    // retry backoff before it notices the upstream is back is excluded).
    let wait_start = Instant::now();
    while sink.items.load(Ordering::Relaxed) == 0 {
        if wait_start.elapsed() > Duration::from_secs(30) {
            bail!("the agent did not reconnect within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let t0 = Instant::now();
    loop {
        if buffer_used(&http, &agent.admin).await? == 0 {
            break;
        }
        if t0.elapsed() > Duration::from_secs(600) {
            bail!("the backlog did not drain within 10 minutes");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let drain = t0.elapsed().as_secs_f64();
    let (_, _, peak) = proc_usage(agent.child.id()).unwrap_or((0.0, 0, 0));
    Ok(ReplayReport {
        upstream: "in-process sink".into(),
        backlog_bytes: backlog,
        fill_seconds,
        drain_seconds: drain,
        drain_mb_per_s: backlog as f64 / 1e6 / drain,
        agent_peak_rss_mb: peak as f64 / 1e6,
        machine: Machine::now(),
    })
}
