//! Wiring, back to front, and the shutdown order.
//!
//! buffer (sink of everything) → exporter (drains it) → receivers and tailer
//! (feed it) → heartbeats → admin. On shutdown: receivers stop accepting and
//! finish in-flight requests, the tailer commits, heartbeats deregister, the
//! exporter sends what it can within a deadline (the rest stays buffered for
//! the next start), the buffer's writer thread exits after its last fsync.
//! No business logic here.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use skein_otlp::Limits;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::admin::{self, status::AgentStatus};
use crate::buffer::{Buffer, BufferMetrics, SyncPolicy};
use crate::config::Config;
use crate::export::{client::CollectorClient, ExportMetrics, ExportSettings, Exporter};
use crate::heartbeat::{
    client::RegistryClient, health::Prober, revision::RevisionFile, HeartbeatMetrics, Heartbeater,
};
use crate::receive::{enrich, AgentSink, Enricher, ReceiveMetrics};
use crate::tail::{TailMetrics, TailSettings, Tailer};

/// How long the exporter may keep draining after shutdown starts.
const DRAIN: Duration = Duration::from_secs(5);

/// Why the agent could not start.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("state dir {path}: {source}")]
    StateDir {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Buffer(#[from] crate::buffer::BufferError),
    #[error(transparent)]
    Client(#[from] crate::export::client::ClientError),
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("cannot listen on {name} {addr}: {source}")]
    Bind {
        name: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("HTTP client: {0}")]
    Http(String),
    #[error("starting a pipeline thread: {0}")]
    Thread(std::io::Error),
}

/// The agent's three listening sockets, bound before the pipeline runs.
pub struct Listeners {
    pub otlp_grpc: TcpListener,
    pub otlp_http: TcpListener,
    pub admin: TcpListener,
}

impl Listeners {
    /// Bind the addresses in `config` (port 0 picks a free port; read the
    /// actual one back with `local_addr`).
    pub async fn bind(config: &Config) -> Result<Listeners, PipelineError> {
        Ok(Listeners {
            otlp_grpc: bind("otlp_grpc", config.otlp_grpc_addr).await?,
            otlp_http: bind("otlp_http", config.otlp_http_addr).await?,
            admin: bind("admin", config.admin_addr).await?,
        })
    }
}

/// Run the agent until `shutdown` resolves.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), PipelineError> {
    let listeners = Listeners::bind(&config).await?;
    run_with_listeners(config, listeners, shutdown).await
}

/// Run the agent on already bound listeners (for embedding, e.g. the
/// collector's `--demo`, which needs the ports before its apps start).
pub async fn run_with_listeners(
    config: Config,
    listeners: Listeners,
    shutdown: impl Future<Output = ()>,
) -> Result<(), PipelineError> {
    let Listeners {
        otlp_grpc: grpc_listener,
        otlp_http: http_listener,
        admin: admin_listener,
    } = listeners;
    let state_err = |source| PipelineError::StateDir {
        path: config.state_dir.clone(),
        source,
    };
    std::fs::create_dir_all(&config.state_dir).map_err(state_err)?;
    let registry = prometheus::Registry::new();
    let status = Arc::new(AgentStatus::default());
    let host = enrich::host_name();
    let instance = match config.heartbeat.as_ref().and_then(|h| h.instance.clone()) {
        Some(i) => i,
        None => format!(
            "{host}-{}",
            stable_id(&config.state_dir).map_err(state_err)?
        ),
    };

    // 1. The disk buffer: everything acknowledged lands here.
    let (buffer, writer) = Buffer::open(
        &config.state_dir.join("buffer"),
        config.buffer_max_bytes,
        if config.buffer_fsync_interval.is_zero() {
            SyncPolicy::Always
        } else {
            SyncPolicy::Interval(config.buffer_fsync_interval)
        },
        BufferMetrics::register(&registry)?,
    )?;

    // 2. The exporter draining it to the collector, on its own thread: its
    // CPU bursts (gzip of a whole batch) and blocking buffer reads never
    // delay an app's export answer on the receivers' runtime.
    let export_stop = CancellationToken::new();
    let export_metrics = ExportMetrics::register(&registry)?;
    let export_task = spawn_dedicated("agent-export", || {
        let client = CollectorClient::new(
            &config.collector_otlp,
            config.collector_ca.as_deref(),
            config.auth_token_file.as_deref(),
            config.export_timeout,
            config.compression,
        )?;
        let exporter = Exporter::new(
            buffer.clone(),
            client,
            ExportSettings {
                batch_size: config.batch_size as u64,
                batch_timeout: config.batch_timeout,
                initial_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(5),
            },
            export_metrics,
            status.clone(),
        );
        Ok::<_, PipelineError>(exporter.run(export_stop.clone()))
    })?;
    // Any early return below stops the export thread too.
    let _stop_export_on_return = export_stop.clone().drop_guard();

    // 3. Feeders: OTLP receivers and the tailer.
    let enricher = Arc::new(Enricher::new(&host, &instance, |k| std::env::var(k).ok()));
    let sink = AgentSink::new(
        buffer.clone(),
        Limits {
            max_attribute_bytes: config.max_attribute_bytes,
        },
        enricher.clone(),
        ReceiveMetrics::register(&registry)?,
    );
    let stop = CancellationToken::new();
    let mut servers = Vec::new();
    servers.push(tokio::spawn(serve_grpc(
        grpc_listener,
        sink.clone(),
        config.max_request_bytes,
        stop.clone(),
    )));
    let otlp_http = skein_otlp::http::router(sink, config.max_request_bytes);
    servers.push(tokio::spawn(serve_http(
        http_listener,
        otlp_http,
        stop.clone(),
    )));

    let mut tasks = Vec::new();
    if !config.tail.is_empty() {
        let service = config
            .heartbeat
            .as_ref()
            .map_or_else(|| "unknown_service".to_string(), |h| h.service.clone());
        let tailer = Tailer::new(
            TailSettings {
                globs: config.tail.clone(),
                multiline: config.multiline_start.clone(),
                poll: config.tail_poll_interval,
                service,
            },
            &config.state_dir,
            buffer.clone(),
            enricher.clone(),
            TailMetrics::register(&registry)?,
            status.clone(),
        )
        .map_err(state_err)?;
        // Its own thread too: a poll reads and parses a burst of lines with
        // blocking file I/O.
        let done = spawn_dedicated("agent-tail", || {
            Ok::<_, PipelineError>(tailer.run(stop.clone()))
        })?;
        tasks.push(tokio::spawn(async move {
            let _ = done.await;
        }));
    }

    // 4. Heartbeats.
    let http = http_client(config.collector_ca.as_deref())?;
    let hb_metrics = HeartbeatMetrics::register(&registry)?;
    if let Some(hb) = config.heartbeat.clone() {
        let token = match &config.auth_token_file {
            Some(p) => Some(crate::export::client::read_token(p)?),
            None => None,
        };
        let client = RegistryClient::new(
            http.clone(),
            &config.collector,
            token,
            Duration::from_secs(5),
        );
        let prober = Prober::new(hb.check.clone(), hb.health_timeout, http.clone());
        let revision = RevisionFile::open(&config.state_dir).map_err(state_err)?;
        tracing::info!(service = %hb.service, %instance, "registering in the collector's registry");
        let hb = Heartbeater::new(
            hb,
            instance.clone(),
            client,
            prober,
            revision,
            hb_metrics,
            status.clone(),
        );
        tasks.push(tokio::spawn(hb.run(stop.clone())));
    }

    // 5. Admin.
    let admin_stop = CancellationToken::new();
    let admin = admin::router(status.clone(), buffer.clone(), registry.clone());
    let admin_task = tokio::spawn(serve_http(admin_listener, admin, admin_stop.clone()));
    status.set_ready(true);
    tracing::info!(
        collector = %config.collector,
        collector_otlp = %config.collector_otlp,
        "skein-agent running"
    );

    shutdown.await;
    status.set_ready(false);
    stop.cancel();
    for s in servers {
        let _ = s.await;
    }
    for t in tasks {
        let _ = t.await;
    }
    // Let the exporter catch up for a moment; what is left stays buffered.
    let drained = tokio::time::timeout(DRAIN, async {
        loop {
            if buffer.usage().0 == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    if drained.is_err() {
        tracing::info!(
            bytes = buffer.usage().0,
            "not everything reached the collector; it stays buffered for the next start"
        );
    }
    export_stop.cancel();
    let _ = export_task.await;
    admin_stop.cancel();
    let _ = admin_task.await;
    drop(buffer);
    let _ = tokio::task::spawn_blocking(move || writer.join()).await;
    Ok(())
}

/// Run the future `make` returns on a thread of its own with a
/// single-threaded runtime. `make` runs inside that runtime's context, so
/// clients it builds spawn their connection tasks there. The receiver
/// resolves when the future has finished.
fn spawn_dedicated<F>(
    name: &str,
    make: impl FnOnce() -> Result<F, PipelineError>,
) -> Result<tokio::sync::oneshot::Receiver<()>, PipelineError>
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(PipelineError::Thread)?;
    let work = {
        let _inside = runtime.enter();
        make()?
    };
    let (done, finished) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            runtime.block_on(work);
            let _ = done.send(());
        })
        .map_err(PipelineError::Thread)?;
    Ok(finished)
}

async fn bind(name: &'static str, addr: SocketAddr) -> Result<TcpListener, PipelineError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| PipelineError::Bind { name, addr, source })?;
    let local = listener
        .local_addr()
        .map_err(|source| PipelineError::Bind { name, addr, source })?;
    tracing::info!("listening {name}={local}");
    Ok(listener)
}

async fn serve_http(listener: TcpListener, router: axum::Router, stop: CancellationToken) {
    if let Err(e) = axum::serve(skein_otlp::net::http_listener(listener), router)
        .with_graceful_shutdown(stop.cancelled_owned())
        .await
    {
        tracing::error!("HTTP server failed: {e}");
    }
}

async fn serve_grpc(listener: TcpListener, sink: AgentSink, max: usize, stop: CancellationToken) {
    let grpc = skein_otlp::grpc::OtlpGrpc::new(sink);
    let incoming = skein_otlp::net::grpc_incoming(listener);
    let result = tonic::transport::Server::builder()
        .layer(tower::util::MapResponseLayer::new(
            skein_otlp::grpc::normalize_status,
        ))
        .add_service(grpc.trace_server(max))
        .add_service(grpc.logs_server(max))
        .serve_with_incoming_shutdown(incoming, stop.cancelled_owned())
        .await;
    if let Err(e) = result {
        tracing::error!("OTLP/gRPC server failed: {e}");
    }
}

/// The reqwest client for heartbeats and `--health-url`.
fn http_client(ca: Option<&Path>) -> Result<reqwest::Client, PipelineError> {
    let mut builder = crate::tls::http_client_builder()
        .user_agent(concat!("skein-agent/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(3));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    if let Some(path) = ca {
        use rustls_pki_types::pem::PemObject;
        let certs = rustls_pki_types::CertificateDer::pem_file_iter(path)
            .map_err(|e| PipelineError::Http(format!("{}: {e}", path.display())))?;
        for cert in certs {
            let cert = cert.map_err(|e| PipelineError::Http(format!("{}: {e}", path.display())))?;
            roots
                .add(cert)
                .map_err(|e| PipelineError::Http(format!("{}: {e}", path.display())))?;
        }
    }
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| PipelineError::Http(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    builder = builder.tls_backend_preconfigured(tls);
    builder
        .build()
        .map_err(|e| PipelineError::Http(e.to_string()))
}

/// A random id kept in `<state-dir>/instance-id`, so restarts keep the instance.
fn stable_id(state_dir: &Path) -> std::io::Result<String> {
    let path = state_dir.join("instance-id");
    match std::fs::read_to_string(&path) {
        Ok(s) if !s.trim().is_empty() => return Ok(s.trim().to_string()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let id = format!("{:08x}", rand::rng().random::<u32>());
    std::fs::write(&path, &id)?;
    Ok(id)
}
