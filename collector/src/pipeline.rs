//! Wiring: builds the collector back to front (storage before the receivers
//! that feed it) and runs it until shut down.
//!
//! Data flow, in the order the code below builds it:
//! `wal` (open, repair, replay position) → `index` (open partitions) →
//! `derive` (dependency graph + span metrics worker) → the indexer thread
//! that reads the WAL, also handing span records to `derive` through
//! `pipeline/derive_tap.rs` → `ingest` (OTLP gRPC + HTTP receivers
//! appending to the WAL) → `api` (queries over the index and the graph,
//! `/metrics`).
//!
//! Shutdown runs front to back: stop accepting, finish in-flight requests,
//! close the WAL (its last group is fsynced and answered), let the indexer
//! commit and checkpoint, let the derive worker drain and save, exit. This module owns no logic of its own beyond
//! that order and the listeners' sockets.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::post;
use axum::Router;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::derive::{self, DeriveConfig, DeriveRunning};
use crate::index::{self, IndexConfig};
use crate::ingest::{self, IngestMetrics, Ingestor, Limits};
use crate::registry::{self as service_registry, RegistryConfig, RegistryMetrics};
use crate::telemetry::Registry;
use crate::wal::{Wal, WalConfig, WalMetrics};
use crate::{api, auth, tls};

mod alert_sources;
mod derive_tap;
mod wal_source;

/// How long in-flight requests get to finish after a shutdown signal.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(7);

/// Why the collector could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("creating data dir {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("locking the data dir: {0}")]
    Lock(crate::wal::WalError),
    #[error("opening the write-ahead log: {0}")]
    Wal(#[from] crate::wal::WalError),
    #[error("opening the indexes: {0}")]
    Index(#[from] index::IndexError),
    #[error("registering metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("binding {name} on {addr}: {source}")]
    Bind {
        name: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{0}")]
    Tls(#[from] tls::TlsError),
    #[error("{0}")]
    Auth(#[from] auth::AuthError),
    #[error("starting the dependency graph and span metrics: {0}")]
    Derive(#[from] derive::DeriveError),
    #[error("{0}")]
    Registry(#[from] service_registry::RegistryError),
    #[error("alerting: {0}")]
    Alerts(#[from] crate::alerts::AlertsError),
}

/// A running collector: its bound addresses and the handles to stop it.
pub struct Running {
    pub otlp_grpc_addr: SocketAddr,
    pub otlp_http_addr: SocketAddr,
    pub http_addr: SocketAddr,
    pub registry: Registry,
    /// The service registry (for the alerts adapter and tests).
    pub service_registry: service_registry::Registry,
    registry_cancel: CancellationToken,
    registry_tasks: Vec<JoinHandle<()>>,
    cancel: CancellationToken,
    servers: Vec<JoinHandle<()>>,
    wal: Wal,
    indexer_stop: CancellationToken,
    indexer: std::thread::JoinHandle<Result<(), index::IndexError>>,
    /// `flock` on `<data-dir>/LOCK`, held for the life of the process.
    _data_dir_lock: std::fs::File,
    derive: Option<DeriveRunning>,
    alert_tasks: Vec<JoinHandle<()>>,
}

/// Open storage, start the indexer and every listener. Each listener logs
/// `listening <name>=<addr>` with the address it actually bound.
pub async fn start(config: Config) -> Result<Running, StartError> {
    let registry = Registry::new();
    // Fail fast on a bad rule file, before any storage or listener is opened.
    crate::alerts::rules::RuleSet::load(&config.alerting.rules, Vec::new())
        .map_err(crate::alerts::AlertsError::from)?;
    std::fs::create_dir_all(&config.data_dir).map_err(|source| StartError::DataDir {
        path: config.data_dir.display().to_string(),
        source,
    })?;

    // One process per data directory: taken before anything is opened (the
    // index applies retention at open, so a second process must stop here).
    let data_dir_lock = crate::wal::lock_dir(&config.data_dir).map_err(StartError::Lock)?;
    // Before any listener logs its address: a SIGHUP sent right after the
    // listening lines must reach the rules, not kill the process.
    let reload = crate::alerts::reload_signal();

    // 1. Indexes first: their commit payloads say which WAL positions are
    //    already applied, and the WAL must never hand those out again.
    let mut index_cfg = IndexConfig::new(config.data_dir.join("index"));
    index_cfg.retention = config.retention;
    index_cfg.commit_interval = config.commit_interval;
    index_cfg.writer_memory_bytes = config.index_memory;
    let storage = index::open(index_cfg, &registry)?;
    // 2. Write-ahead log: repaired and positioned at the last checkpoint;
    //    then the indexer thread that drains it into the indexes.
    let (wal, reader) = Wal::open(
        WalConfig {
            dir: config.data_dir.join("wal"),
            segment_bytes: config.wal_segment_bytes,
            max_backlog_bytes: config.max_wal_backlog,
            max_pending_appends: 8192,
            min_lsn: {
                let (spans, logs) = storage.indexer.checkpoints();
                spans.max(logs)
            },
        },
        WalMetrics::register(&registry)?,
    )?;

    // 2b. Derived data (dependency graph, span RED metrics): a worker fed by
    // the indexer's reads of the WAL, so it sees durable records in order and
    // again after a crash; the WAL is trimmed only past what the saved graph
    // covers (see pipeline/derive_tap.rs and derive/mod.rs).
    let source = wal_source::WalSource::new(reader, wal.clone());
    let indexer_stop = CancellationToken::new();
    let (derived, derive_running, (indexer_control, indexer)) = if config.derive {
        let gate = derive_tap::CheckpointGate::new(wal.clone());
        let (saved, stopped) = (gate.clone(), gate.clone());
        let (derived, feed, running) = derive::start(
            DeriveConfig::new(
                config.data_dir.join("derived"),
                config.retention,
                config.max_series,
            ),
            &registry,
            Arc::new(index::SystemClock),
            Box::new(move |lsn| saved.derived_saved(lsn)),
            Box::new(move || stopped.derived_stopped()),
        )?;
        let tap = derive_tap::DeriveTap::new(source, feed, gate);
        let spawned = storage.indexer.spawn(tap, indexer_stop.clone())?;
        (Some(derived), Some(running), spawned)
    } else {
        let spawned = storage.indexer.spawn(source, indexer_stop.clone())?;
        (None, None, spawned)
    };

    // 2c. Service registry: replayed from its log, every lease re-armed;
    // the expiry driver and the optional etcd source.
    let svc_registry = service_registry::Registry::open(
        RegistryConfig {
            dir: config.data_dir.join("registry"),
            expired_retention: config.registry.expired_retention,
            history: config.registry.watch_history,
            max_instances: config.registry.max_instances,
        },
        Arc::new(service_registry::SystemClock),
        RegistryMetrics::register(&registry)?,
    )?;
    let registry_cancel = CancellationToken::new();
    let mut registry_tasks = vec![tokio::spawn(
        svc_registry.clone().run_expiry(registry_cancel.clone()),
    )];
    if !config.registry.etcd_endpoints.is_empty() {
        registry_tasks.push(tokio::spawn(service_registry::etcd::run(
            service_registry::etcd::EtcdConfig {
                endpoints: config.registry.etcd_endpoints.clone(),
                prefix: config.registry.etcd_prefix.clone(),
            },
            svc_registry.clone(),
            registry_cancel.clone(),
        )));
    }

    // 3. Ingest: OTLP receivers appending to the WAL.
    let ingestor = Ingestor::new(
        wal.clone(),
        Limits {
            max_attribute_bytes: config.max_attribute_bytes,
        },
        IngestMetrics::register(&registry)?,
    )
    .with_traffic_observer(svc_registry.traffic_observer());
    let tokens = match &config.auth {
        Some(a) => Some(Arc::new(auth::Tokens::load(&a.token_file)?)),
        None => None,
    };
    let tls = match &config.tls {
        Some(t) => Some(tls::TlsMaterial::load(&t.cert, &t.key)?),
        None => None,
    };

    let cancel = CancellationToken::new();
    let mut servers = Vec::new();

    let grpc = ingest::grpc::OtlpGrpc::new(ingestor.clone());
    let listener = bind("otlp_grpc", config.otlp_grpc_addr).await?;
    let otlp_grpc_addr = local_addr("otlp_grpc", &listener, config.otlp_grpc_addr)?;
    servers.push(tokio::spawn(serve_grpc(
        listener,
        grpc,
        config.max_request_bytes,
        tokens.clone(),
        tls.clone(),
        cancel.clone(),
    )));

    let otlp_http = auth::require_write(
        ingest::http::router(ingestor.clone(), config.max_request_bytes),
        tokens.clone(),
    );
    let listener = bind("otlp_http", config.otlp_http_addr).await?;
    let otlp_http_addr = local_addr("otlp_http", &listener, config.otlp_http_addr)?;
    servers.push(tokio::spawn(tls::serve_http(
        listener,
        otlp_http,
        tls.clone(),
        cancel.clone(),
    )));

    // 4. Query side: Jaeger + native APIs and /metrics over the indexes.
    let api_state = api::ApiState::new(
        storage.spans.clone(),
        storage.logs.clone(),
        registry.clone(),
    )?
    .with_extra(api::ApiExtra {
        traces: crate::traces::TraceSettings {
            clock_skew_adjust: config.clock_skew_adjust,
        },
        derived: derived.clone(),
        ..Default::default()
    });
    let derived_for_alerts = derived;
    let read_tokens = match &config.auth {
        Some(a) if a.read => tokens.clone(),
        _ => None,
    };
    let registry_api = api::registry::RegistryApi {
        registry: svc_registry.clone(),
        shutdown: cancel.clone(),
    };
    let listener = bind("http", config.http_addr).await?;
    let http_addr = local_addr("http", &listener, config.http_addr)?;

    // 5. Alerts: rules, the evaluation task and notification delivery. The
    // registry (liveness) and the dependency graph (callers) plug in through
    // `alerts::source`.
    let alerting = alerts_config(&config, http_addr);
    let (liveness, liveness_task) =
        alert_sources::RegistryLiveness::start(svc_registry.clone(), registry_cancel.clone());
    registry_tasks.push(liveness_task);
    let callers: Arc<dyn crate::alerts::source::CallersSource> = match &derived_for_alerts {
        Some(d) => Arc::new(alert_sources::GraphCallers(d.clone())),
        None => Arc::new(crate::alerts::NoCallers),
    };
    let alerting = crate::alerts::start(
        alerting,
        crate::alerts::eval::EngineDeps {
            traces: storage.spans.clone(),
            logs: storage.logs.clone(),
            liveness: Arc::new(liveness),
            callers,
        },
        &registry,
        reload,
        cancel.child_token(),
    )?;
    let alert_tasks = alerting.tasks;

    let read_auth = axum::middleware::from_fn_with_state(read_tokens, auth::check_bearer);
    let mut http = api::read_routes()
        .layer(read_auth.clone())
        .merge(api::ops_routes())
        .with_state(api_state)
        .merge(api::registry::read_routes(registry_api.clone()).layer(read_auth.clone()))
        .merge(api::alerts::read_routes(alerting.alerts.clone()).layer(read_auth))
        .merge(auth::require_write(
            api::registry::write_routes(registry_api),
            tokens.clone(),
        ))
        .merge(auth::require_write(
            api::alerts::write_routes(alerting.alerts),
            tokens.clone(),
        ));
    if config.debug_endpoints {
        tracing::warn!("--debug-endpoints is on: /debug/indexer/pause and /resume are exposed");
        http = http.merge(auth::require_write(
            debug_routes(indexer_control),
            tokens.clone(),
        ));
    }
    servers.push(tokio::spawn(tls::serve_http(
        listener,
        http,
        tls,
        cancel.clone(),
    )));

    Ok(Running {
        otlp_grpc_addr,
        otlp_http_addr,
        http_addr,
        registry,
        service_registry: svc_registry,
        registry_cancel,
        registry_tasks,
        cancel,
        servers,
        wal,
        indexer_stop,
        indexer,
        _data_dir_lock: data_dir_lock,
        derive: derive_running,
        alert_tasks,
    })
}

/// The alerting settings from the collector's configuration.
fn alerts_config(config: &Config, http_addr: SocketAddr) -> crate::alerts::AlertsConfig {
    let a = &config.alerting;
    let external = a
        .external_url
        .clone()
        .unwrap_or_else(|| format!("http://{http_addr}"));
    let mut cfg = crate::alerts::AlertsConfig::new(config.data_dir.join("alerts"), external);
    cfg.rule_files = a.rules.clone();
    cfg.webhooks = a.webhooks.clone();
    cfg.alertmanagers = a.alertmanagers.clone();
    cfg.group_wait = a.group_wait;
    cfg.repeat_interval = a.repeat_interval;
    cfg.watchdog = a.watchdog;
    cfg.mass = crate::alerts::MassExpiryConfig {
        ratio: a.mass_expiry_ratio,
        window_ms: a.mass_expiry_window.as_millis() as u64,
        hold_ms: a.mass_expiry_hold.as_millis() as u64,
    };
    cfg
}

impl Running {
    /// Graceful shutdown: stop accepting, drain, fsync, commit the index.
    pub async fn shutdown(self) -> Result<(), index::IndexError> {
        self.cancel.cancel();
        let drain = futures::future::join_all(self.servers);
        if tokio::time::timeout(DRAIN_TIMEOUT, drain).await.is_err() {
            tracing::warn!(
                "in-flight requests did not finish within {DRAIN_TIMEOUT:?}; closing anyway"
            );
        }
        let _ = tokio::time::timeout(
            Duration::from_secs(2),
            futures::future::join_all(self.alert_tasks),
        )
        .await;
        self.registry_cancel.cancel();
        let _ = futures::future::join_all(self.registry_tasks).await;
        self.service_registry.close().await;
        self.wal.close();
        self.indexer_stop.cancel();
        let indexer = self.indexer;
        let joined = tokio::task::spawn_blocking(move || indexer.join())
            .await
            .map_err(|e| index::IndexError::Thread(e.to_string()))?;
        match joined {
            Ok(result) => result?,
            Err(_) => {
                return Err(index::IndexError::Thread(
                    "the indexer thread panicked".into(),
                ))
            }
        }
        if let Some(derive) = self.derive {
            // The indexer (the only feeder) is gone: drain, save, stop.
            let _ = tokio::task::spawn_blocking(move || derive.stop()).await;
        }
        tracing::info!("shutdown complete");
        Ok(())
    }
}

async fn bind(name: &'static str, addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { name, addr, source })
}

fn local_addr(
    name: &'static str,
    listener: &TcpListener,
    asked: SocketAddr,
) -> Result<SocketAddr, StartError> {
    let addr = listener.local_addr().map_err(|source| StartError::Bind {
        name,
        addr: asked,
        source,
    })?;
    tracing::info!("listening {name}={addr}");
    Ok(addr)
}

async fn serve_grpc(
    listener: TcpListener,
    grpc: ingest::grpc::OtlpGrpc,
    max_request_bytes: usize,
    tokens: Option<Arc<auth::Tokens>>,
    tls: Option<tls::TlsMaterial>,
    cancel: CancellationToken,
) {
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = &tls {
        builder = match builder.tls_config(tls.tonic_config()) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!("OTLP/gRPC TLS set-up failed: {e}");
                return;
            }
        };
    }
    let interceptor = auth::GrpcAuth::new(tokens);
    let router = builder
        .layer(tower::util::MapResponseLayer::new(
            ingest::grpc::normalize_status,
        ))
        .add_service(tonic::service::interceptor::InterceptedService::new(
            grpc.trace_server(max_request_bytes),
            interceptor.clone(),
        ))
        .add_service(tonic::service::interceptor::InterceptedService::new(
            grpc.logs_server(max_request_bytes),
            interceptor,
        ));
    let incoming = skein_otlp::net::grpc_incoming(listener);
    if let Err(e) = router
        .serve_with_incoming_shutdown(incoming, cancel.cancelled_owned())
        .await
    {
        tracing::error!("OTLP/gRPC server failed: {e}");
    }
}

/// Test hooks, only with `--debug-endpoints`.
fn debug_routes(control: index::IndexerControl) -> Router {
    let pause = control.clone();
    Router::new()
        .route(
            "/debug/indexer/pause",
            post(move || {
                pause.pause();
                async { "paused\n" }
            }),
        )
        .route(
            "/debug/indexer/resume",
            post(move || {
                control.resume();
                async { "resumed\n" }
            }),
        )
}
