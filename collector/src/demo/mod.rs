//! `skein-collector --demo`: a small instrumented system running inside the
//! collector process, so a first-time user sees traces, logs, services, a
//! dependency graph and a liveness alert within a minute.
//!
//! ```text
//! load loop ─▶ traffic (plan one request) ─▶ emit (OTel SDK per service)
//!                                              │ OTLP/gRPC
//!                                              ▼
//!   health ◀── probe ── agents (one real skein-agent per instance) ──▶ collector
//!   (schedule: payment down now?)              OTLP + heartbeats (HTTP API)
//! ```
//!
//! - `topology.rs`: the services (`frontend → order → inventory`,
//!   `order → payment`), instance ids, the clock-skewed service.
//! - `traffic.rs`: one request's spans and logs (errors, slow calls), pure.
//! - `emit.rs`: the Rust OpenTelemetry SDK, one `Resource` per service.
//! - `agents.rs`: the in-process `skein-agent`s (lease TTL 6 s).
//! - `schedule.rs` + `health.rs`: the failure cycle; the failing instance's
//!   health URL answers 503, so its agent stops renewing and the built-in
//!   `InstanceStoppedRenewing` alert fires, with its callers annotated.
//!
//! The demo talks to the collector only through its public interfaces
//! (OTLP/gRPC and the HTTP API, via the agents); it must not touch the
//! collector's storage, registry or alert state directly.

pub mod agents;
pub mod emit;
pub mod health;
pub mod metrics;
pub mod schedule;
pub mod topology;
pub mod traffic;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use rand::SeedableRng;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use self::emit::Emitter;
use self::health::Outages;
use self::metrics::DemoMetrics;
use self::schedule::{FailureCycle, LEASE_TTL};
use self::topology::{Service, FAILING};

/// Requests the demo generates per second.
const REQUESTS_PER_SEC: u32 = 4;
/// How long the agents get to deliver and deregister on shutdown.
const AGENT_STOP_TIMEOUT: Duration = Duration::from_secs(6);

/// Why the demo could not start.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("demo OpenTelemetry SDK: {0}")]
    Sdk(String),
    #[error("demo agent {instance}: {message}")]
    Agent {
        instance: &'static str,
        message: String,
    },
    #[error("demo {what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("demo metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

/// What the demo needs to know about the collector it sends to.
#[derive(Debug, Clone)]
pub struct DemoSettings {
    /// The agents' state goes to `<data_dir>/demo/agents`.
    pub data_dir: PathBuf,
    /// The collector's HTTP API base URL (heartbeats).
    pub collector_http: String,
    /// The collector's OTLP/gRPC URL; `None`: the HTTP URL's host, port 4317.
    pub collector_otlp: Option<String>,
    /// The collector's token file when writes need a token.
    pub auth_token_file: Option<PathBuf>,
    pub cycle: FailureCycle,
}

/// The running demo.
pub struct Demo {
    load_stop: CancellationToken,
    load: JoinHandle<Emitter>,
    agents_stop: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

/// An address clients on this host can connect to: a wildcard bind
/// (`0.0.0.0`, `[::]`) becomes the loopback address.
pub fn connectable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), addr.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), addr.port())
        }
        _ => addr,
    }
}

/// Start the health endpoints, the agents, the SDKs and the load loop.
pub async fn start(s: DemoSettings, registry: &prometheus::Registry) -> Result<Demo, DemoError> {
    let metrics = DemoMetrics::register(registry)?;
    let outages = Outages {
        cycle: s.cycle,
        started: Instant::now(),
    };
    let agents_stop = CancellationToken::new();
    let io = |what: &str| {
        let what = what.to_string();
        move |source| DemoError::Io { what, source }
    };

    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .map_err(io("health endpoint"))?;
    let health_addr = listener.local_addr().map_err(io("health endpoint"))?;
    let mut tasks = vec![tokio::spawn(health::serve(
        listener,
        health::router(outages),
        agents_stop.clone(),
    ))];

    let state_root = s.data_dir.join("demo").join("agents");
    std::fs::create_dir_all(&state_root).map_err(io("agent state dir"))?;
    let agents = agents::start(
        &agents::AgentSettings {
            collector_http: s.collector_http.clone(),
            collector_otlp: s.collector_otlp.clone(),
            health_base: format!("http://{health_addr}/healthz"),
            auth_token_file: s.auth_token_file.clone(),
            state_root: &state_root,
        },
        &agents_stop,
    )
    .await;
    let agents = match agents {
        Ok(a) => a,
        Err(e) => {
            agents_stop.cancel();
            return Err(e);
        }
    };
    tasks.extend(agents.tasks);
    let emitter = match Emitter::new(&agents.endpoints) {
        Ok(e) => e,
        Err(e) => {
            agents_stop.cancel();
            return Err(e);
        }
    };

    let load_stop = CancellationToken::new();
    let load = tokio::spawn(run_load(emitter, outages, metrics, load_stop.clone()));
    tracing::info!(
        "demo running: {REQUESTS_PER_SEC} requests/s through frontend → order → inventory, order → payment; \
         {} stops renewing its lease {}s after start for {}s, then every {}s",
        FAILING.instance(),
        s.cycle.first.as_secs(),
        s.cycle.outage.as_secs(),
        s.cycle.period.as_secs()
    );
    Ok(Demo {
        load_stop,
        load,
        agents_stop,
        tasks,
    })
}

async fn run_load(
    emitter: Emitter,
    outages: Outages,
    metrics: DemoMetrics,
    stop: CancellationToken,
) -> Emitter {
    let mut rng = rand::rngs::StdRng::from_os_rng();
    let mut every =
        tokio::time::interval(Duration::from_millis(1000 / u64::from(REQUESTS_PER_SEC)));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut was_down = false;
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = stop.cancelled() => break,
        }
        let down = outages.is_down(FAILING);
        if down != was_down {
            was_down = down;
            metrics
                .down
                .with_label_values(&[FAILING.name()])
                .set(i64::from(down));
            let next = outages.cycle.next_change(outages.started.elapsed());
            if down {
                tracing::warn!(
                    "demo: {} goes down for {}s: its health check fails, its agent stops renewing, \
                     the lease (ttl {}s) expires and InstanceStoppedRenewing fires; {}'s calls to it fail",
                    FAILING.instance(),
                    outages.cycle.outage.as_secs(),
                    LEASE_TTL.as_secs(),
                    topology::callers(FAILING)
                        .iter()
                        .map(|s| s.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            } else {
                tracing::info!(
                    "demo: {} is back and renews again; next outage in {}s",
                    FAILING.instance(),
                    next.as_secs()
                );
            }
        }
        let plan = traffic::plan(&mut rng, &|s: Service| outages.is_down(s));
        emitter.emit(&plan, SystemTime::now());
        let outcome = match plan.spans.first().and_then(|s| s.error.as_ref()) {
            None => "ok",
            Some(_) => "error",
        };
        metrics.requests.with_label_values(&[outcome]).inc();
    }
    emitter
}

impl Demo {
    /// Stop generating, flush the SDKs into the agents, stop the agents
    /// (they deliver what they hold and deregister: no alert).
    pub async fn shutdown(self) {
        self.load_stop.cancel();
        if let Ok(emitter) = self.load.await {
            let _ = tokio::task::spawn_blocking(move || emitter.shutdown()).await;
        }
        self.agents_stop.cancel();
        let all = futures::future::join_all(self.tasks);
        if tokio::time::timeout(AGENT_STOP_TIMEOUT, all).await.is_err() {
            tracing::warn!("demo agents did not stop within {AGENT_STOP_TIMEOUT:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_binds_become_loopback() {
        let a: SocketAddr = "0.0.0.0:16686".parse().unwrap();
        assert_eq!(connectable(a).to_string(), "127.0.0.1:16686");
        let a: SocketAddr = "[::]:4317".parse().unwrap();
        assert_eq!(connectable(a).to_string(), "[::1]:4317");
        let a: SocketAddr = "10.1.2.3:4317".parse().unwrap();
        assert_eq!(connectable(a), a);
    }
}
