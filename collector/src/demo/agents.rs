//! The demo's in-process `skein-agent`s: one per demo instance, each the
//! real agent pipeline (disk buffer, exporter to the collector's OTLP/gRPC,
//! health-gated heartbeats to `POST /api/v1/registry/heartbeat`), on
//! loopback ports chosen by the OS.
//!
//! Owns the agents' configuration and their listeners; the agents' state
//! (buffer, heartbeat revision) lives in `<data-dir>/demo/agents/<instance>`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use skein_agent::config::{Args, Config};
use skein_agent::pipeline::{run_with_listeners, Listeners};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::schedule::{HEARTBEAT_INTERVAL, LEASE_TTL};
use super::topology::Service;
use super::DemoError;

/// Where the agents send to and how they check their instance's health.
pub struct AgentSettings<'a> {
    /// The collector's HTTP API, e.g. `http://127.0.0.1:16686`.
    pub collector_http: String,
    /// The collector's OTLP/gRPC, e.g. `http://127.0.0.1:4317` (`None`: the
    /// agent derives it from `collector_http`).
    pub collector_otlp: Option<String>,
    /// Base of the demo health endpoints, e.g. `http://127.0.0.1:PORT/healthz`.
    pub health_base: String,
    /// The collector's token file when it requires tokens.
    pub auth_token_file: Option<PathBuf>,
    /// `<data-dir>/demo/agents`.
    pub state_root: &'a Path,
}

/// Running agents: each service's OTLP/gRPC endpoint and the agent tasks.
pub struct Agents {
    pub endpoints: BTreeMap<Service, String>,
    pub tasks: Vec<JoinHandle<()>>,
}

/// The agent configuration of one demo instance.
pub fn config(service: Service, s: &AgentSettings<'_>) -> Result<Config, DemoError> {
    let duration = |d| humantime::format_duration(d).to_string();
    let args = Args {
        state_dir: Some(s.state_root.join(service.instance())),
        otlp_grpc_addr: Some("127.0.0.1:0".into()),
        otlp_http_addr: Some("127.0.0.1:0".into()),
        admin_addr: Some("127.0.0.1:0".into()),
        collector: Some(s.collector_http.clone()),
        collector_otlp: s.collector_otlp.clone(),
        auth_token_file: s.auth_token_file.clone(),
        service: Some(service.name().into()),
        instance: Some(service.instance().into()),
        advertise_address: Some(format!("{}:8080", service.name())),
        ttl: Some(duration(LEASE_TTL)),
        heartbeat_interval: Some(duration(HEARTBEAT_INTERVAL)),
        health_url: Some(format!("{}/{}", s.health_base, service.instance())),
        health_timeout: Some("1s".into()),
        healthy_after: Some(1),
        batch_timeout: Some("200ms".into()),
        buffer_max_bytes: Some("64MiB".into()),
        ..Args::default()
    };
    Config::load(args).map_err(|e| DemoError::Agent {
        instance: service.instance(),
        message: e.to_string(),
    })
}

async fn bind(service: Service, addr: SocketAddr) -> Result<(TcpListener, SocketAddr), DemoError> {
    let err = |e: std::io::Error| DemoError::Agent {
        instance: service.instance(),
        message: format!("binding {addr}: {e}"),
    };
    let listener = TcpListener::bind(addr).await.map_err(err)?;
    let local = listener.local_addr().map_err(err)?;
    Ok((listener, local))
}

/// Start one agent per demo service; they stop (and deregister) on `cancel`.
pub async fn start(s: &AgentSettings<'_>, cancel: &CancellationToken) -> Result<Agents, DemoError> {
    let mut agents = Agents {
        endpoints: BTreeMap::new(),
        tasks: Vec::new(),
    };
    for service in Service::ALL {
        let cfg = config(service, s)?;
        let (otlp_grpc, grpc_addr) = bind(service, cfg.otlp_grpc_addr).await?;
        let (otlp_http, _) = bind(service, cfg.otlp_http_addr).await?;
        let (admin, admin_addr) = bind(service, cfg.admin_addr).await?;
        tracing::info!(
            instance = service.instance(),
            "demo agent: otlp_grpc={grpc_addr} admin=http://{admin_addr}/status"
        );
        agents
            .endpoints
            .insert(service, format!("http://{grpc_addr}"));
        let stop = cancel.clone();
        agents.tasks.push(tokio::spawn(async move {
            let listeners = Listeners {
                otlp_grpc,
                otlp_http,
                admin,
            };
            if let Err(e) = run_with_listeners(cfg, listeners, stop.cancelled_owned()).await {
                tracing::error!(instance = service.instance(), "demo agent failed: {e}");
            }
        }));
    }
    Ok(agents)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_configs_are_valid_and_renew_within_the_ttl() {
        let root = Path::new("/tmp/skein-demo-test");
        let s = AgentSettings {
            collector_http: "http://127.0.0.1:16686".into(),
            collector_otlp: Some("http://127.0.0.1:4317".into()),
            health_base: "http://127.0.0.1:9/healthz".into(),
            auth_token_file: None,
            state_root: root,
        };
        for service in Service::ALL {
            let c = config(service, &s).unwrap();
            let hb = c.heartbeat.unwrap();
            assert_eq!(hb.service, service.name());
            assert_eq!(hb.instance.as_deref(), Some(service.instance()));
            assert_eq!((hb.ttl, hb.interval), (LEASE_TTL, HEARTBEAT_INTERVAL));
            assert_eq!(c.state_dir, root.join(service.instance()));
            assert_eq!(c.otlp_grpc_addr.port(), 0);
        }
    }
}
