//! Collector configuration: command-line flags, `SKEIN_*` environment
//! variables and an optional TOML file, merged (flags > env > file > default)
//! and validated into a typed [`Config`] at start-up.
//!
//! Every error names the key and where it came from, so a bad deployment fails
//! fast with a message that says what to fix. This module owns parsing and
//! validation only; it must not open files other than the config file, bind
//! sockets or start anything.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use serde::Deserialize;

use crate::telemetry::LogFormat;

/// `skein-collector` command line. Every flag also reads `SKEIN_<FLAG>` from
/// the environment and the same key (snake_case) from the `--config` file.
#[derive(Debug, Default, Parser)]
#[command(
    name = "skein-collector",
    version,
    about = "Skein collector: OTLP ingest with durable acks, tantivy storage, Jaeger-compatible query API"
)]
pub struct Args {
    /// Optional TOML file with the same keys as the flags (snake_case).
    #[arg(long, env = "SKEIN_CONFIG")]
    pub config: Option<PathBuf>,
    /// Directory for the write-ahead log and the indexes [default: ./skein-data; with --demo: ./skein-demo-data]
    #[arg(long, env = "SKEIN_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// OTLP/gRPC listen address [default: 0.0.0.0:4317]
    #[arg(long, env = "SKEIN_OTLP_GRPC_ADDR")]
    pub otlp_grpc_addr: Option<String>,
    /// OTLP/HTTP listen address [default: 0.0.0.0:4318]
    #[arg(long, env = "SKEIN_OTLP_HTTP_ADDR")]
    pub otlp_http_addr: Option<String>,
    /// HTTP API, UI and /metrics listen address [default: 0.0.0.0:16686]
    #[arg(long, env = "SKEIN_HTTP_ADDR")]
    pub http_addr: Option<String>,
    /// How long spans and logs are kept, e.g. 7d, 12h [default: 7d]
    #[arg(long, env = "SKEIN_RETENTION")]
    pub retention: Option<String>,
    /// How often the index is committed (data is queryable after a commit) [default: 1s]
    #[arg(long, env = "SKEIN_COMMIT_INTERVAL")]
    pub commit_interval: Option<String>,
    /// Largest accepted request body, also after gzip inflation, e.g. 16MiB [default: 16MiB]
    #[arg(long, env = "SKEIN_MAX_REQUEST_BYTES")]
    pub max_request_bytes: Option<String>,
    /// Un-indexed WAL backlog above which ingest answers 503/UNAVAILABLE [default: 1GiB]
    #[arg(long, env = "SKEIN_MAX_WAL_BACKLOG")]
    pub max_wal_backlog: Option<String>,
    /// Size at which the WAL starts a new segment file [default: 64MiB]
    #[arg(long, env = "SKEIN_WAL_SEGMENT_BYTES")]
    pub wal_segment_bytes: Option<String>,
    /// Largest accepted attribute value; an item with a larger one is rejected [default: 64KiB]
    #[arg(long, env = "SKEIN_MAX_ATTRIBUTE_BYTES")]
    pub max_attribute_bytes: Option<String>,
    /// Memory budget of each tantivy index writer [default: 64MiB]
    #[arg(long, env = "SKEIN_INDEX_MEMORY")]
    pub index_memory: Option<String>,
    /// PEM certificate chain: serve OTLP gRPC, OTLP HTTP and the HTTP API over TLS
    #[arg(long, env = "SKEIN_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert
    #[arg(long, env = "SKEIN_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// File with one bearer token per line; ingest and write endpoints then require one
    #[arg(long, env = "SKEIN_AUTH_TOKEN_FILE")]
    pub auth_token_file: Option<PathBuf>,
    /// Also require a token for queries and the UI (needs --auth-token-file)
    #[arg(long, env = "SKEIN_AUTH_READ", num_args = 0..=1, default_missing_value = "true")]
    pub auth_read: Option<bool>,
    /// Log format: text or json [default: text]
    #[arg(long, env = "SKEIN_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// Log filter in RUST_LOG syntax [default: info]
    #[arg(long, env = "SKEIN_LOG_LEVEL")]
    pub log_level: Option<String>,
    /// Expose test hooks under /debug (pause/resume the indexer). Never in production.
    #[arg(long, env = "SKEIN_DEBUG_ENDPOINTS", num_args = 0..=1, default_missing_value = "true")]
    pub debug_endpoints: Option<bool>,
    /// Correct clock skew between services in trace views (false: show times as sent) [default: true]
    #[arg(long, env = "SKEIN_CLOCK_SKEW_ADJUST", num_args = 0..=1, default_missing_value = "true")]
    pub clock_skew_adjust: Option<bool>,
    /// Compute the dependency graph and span RED metrics from ingested spans [default: true]
    #[arg(long, env = "SKEIN_DERIVE", num_args = 0..=1, default_missing_value = "true")]
    pub derive: Option<bool>,
    /// Most label sets per derived metric family (span metrics, service graph) and edges per minute; beyond it spans are counted in skein_derive_series_overflow_total [default: 10000]
    #[arg(long, env = "SKEIN_MAX_SERIES")]
    pub max_series: Option<u64>,
    /// How long expired or deregistered registry instances stay listed [default: 24h]
    #[arg(long, env = "SKEIN_EXPIRED_RETENTION")]
    pub expired_retention: Option<String>,
    /// Registry events kept for watches; older revisions answer 410 [default: 10000]
    #[arg(long, env = "SKEIN_REGISTRY_WATCH_HISTORY")]
    pub registry_watch_history: Option<usize>,
    /// Most registry instances held (any state); more registrations get 503 [default: 1000000]
    #[arg(long, env = "SKEIN_REGISTRY_MAX_INSTANCES")]
    pub registry_max_instances: Option<usize>,
    /// etcd endpoint to mirror leased service keys from (repeatable; env: comma-separated)
    #[arg(
        long = "etcd-endpoint",
        env = "SKEIN_ETCD_ENDPOINT",
        value_delimiter = ','
    )]
    pub etcd_endpoint: Vec<String>,
    /// Key prefix under which services register in etcd [default: /services/]
    #[arg(long, env = "SKEIN_ETCD_PREFIX")]
    pub etcd_prefix: Option<String>,
    /// Alert rule file (YAML; repeatable; reloaded on SIGHUP and POST /api/v1/rules/reload)
    #[arg(long = "rules", env = "SKEIN_RULES", value_delimiter = ',')]
    pub rules: Vec<PathBuf>,
    /// Send notifications to this URL in Alertmanager's webhook format v4 (repeatable)
    #[arg(long = "webhook", env = "SKEIN_WEBHOOK", value_delimiter = ',')]
    pub webhook: Vec<String>,
    /// Push alerts to this Alertmanager (base URL; POST /api/v2/alerts) (repeatable)
    #[arg(
        long = "alertmanager",
        env = "SKEIN_ALERTMANAGER",
        value_delimiter = ','
    )]
    pub alertmanager: Vec<String>,
    /// Wait this long after a group's first news before notifying [default: 5s]
    #[arg(long, env = "SKEIN_GROUP_WAIT")]
    pub group_wait: Option<String>,
    /// Re-send a group's firing alerts this often [default: 4h]
    #[arg(long, env = "SKEIN_REPEAT_INTERVAL")]
    pub repeat_interval: Option<String>,
    /// Fire the always-on Watchdog alert (a dead-man's switch for the alert pipeline)
    #[arg(long, env = "SKEIN_WATCHDOG", num_args = 0..=1, default_missing_value = "true")]
    pub watchdog: Option<bool>,
    /// Share of live instances expiring within --mass-expiry-window that counts as a mass expiry [default: 0.3]
    #[arg(long, env = "SKEIN_MASS_EXPIRY_RATIO")]
    pub mass_expiry_ratio: Option<f64>,
    /// Window for --mass-expiry-ratio [default: 30s]
    #[arg(long, env = "SKEIN_MASS_EXPIRY_WINDOW")]
    pub mass_expiry_window: Option<String>,
    /// How long individual alerts are held during a mass expiry [default: 5m]
    #[arg(long, env = "SKEIN_MASS_EXPIRY_HOLD")]
    pub mass_expiry_hold: Option<String>,
    /// This collector's public base URL, for links in alerts [default: http://<http-addr>]
    #[arg(long, env = "SKEIN_EXTERNAL_URL")]
    pub external_url: Option<String>,
    /// Also run a small instrumented demo system (4 services, in-process agents, a failure
    /// every 3 minutes) and print the UI URL. Without --data-dir its data goes to ./skein-demo-data
    #[arg(long, env = "SKEIN_DEMO", num_args = 0..=1, default_missing_value = "true")]
    pub demo: Option<bool>,
    /// With --demo: run only the demo, sending to this collector's HTTP API instead of starting a collector here (e.g. http://collector:16686)
    #[arg(long, env = "SKEIN_DEMO_COLLECTOR")]
    pub demo_collector: Option<String>,
    /// With --demo-collector: that collector's OTLP/gRPC URL [default: its host, port 4317]
    #[arg(long, env = "SKEIN_DEMO_COLLECTOR_OTLP")]
    pub demo_collector_otlp: Option<String>,
}

/// The optional TOML file: the same keys as the flags, unknown keys rejected.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data_dir: Option<PathBuf>,
    otlp_grpc_addr: Option<String>,
    otlp_http_addr: Option<String>,
    http_addr: Option<String>,
    retention: Option<String>,
    commit_interval: Option<String>,
    max_request_bytes: Option<ByteSize>,
    max_wal_backlog: Option<ByteSize>,
    wal_segment_bytes: Option<ByteSize>,
    max_attribute_bytes: Option<ByteSize>,
    index_memory: Option<ByteSize>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    auth_token_file: Option<PathBuf>,
    auth_read: Option<bool>,
    log_format: Option<LogFormat>,
    log_level: Option<String>,
    debug_endpoints: Option<bool>,
    clock_skew_adjust: Option<bool>,
    derive: Option<bool>,
    max_series: Option<u64>,
    expired_retention: Option<String>,
    registry_watch_history: Option<usize>,
    registry_max_instances: Option<usize>,
    etcd_endpoint: Option<Vec<String>>,
    etcd_prefix: Option<String>,
    rules: Option<Vec<PathBuf>>,
    webhook: Option<Vec<String>>,
    alertmanager: Option<Vec<String>>,
    group_wait: Option<String>,
    repeat_interval: Option<String>,
    watchdog: Option<bool>,
    mass_expiry_ratio: Option<f64>,
    mass_expiry_window: Option<String>,
    mass_expiry_hold: Option<String>,
    external_url: Option<String>,
    demo: Option<bool>,
    demo_collector: Option<String>,
    demo_collector_otlp: Option<String>,
}

/// A size in a TOML file: a number of bytes or a string like `"16MiB"`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum ByteSize {
    Bytes(u64),
    Text(String),
}

impl ByteSize {
    fn into_text(self) -> String {
        match self {
            ByteSize::Bytes(n) => n.to_string(),
            ByteSize::Text(s) => s,
        }
    }
}

/// TLS material for every listener.
#[derive(Debug, Clone, PartialEq)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Bearer-token authentication.
#[derive(Debug, Clone, PartialEq)]
pub struct AuthConfig {
    pub token_file: PathBuf,
    /// Require the token for reads (queries, UI) too, not only for writes.
    pub read: bool,
}

/// Registry settings (`--expired-retention`, `--registry-*`, `--etcd-*`).
#[derive(Debug, Clone, PartialEq)]
pub struct RegistrySettings {
    pub expired_retention: Duration,
    pub watch_history: usize,
    pub max_instances: usize,
    /// Empty: no etcd source.
    pub etcd_endpoints: Vec<String>,
    pub etcd_prefix: String,
}

/// The validated configuration the collector runs with.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub data_dir: PathBuf,
    pub otlp_grpc_addr: SocketAddr,
    pub otlp_http_addr: SocketAddr,
    pub http_addr: SocketAddr,
    pub retention: Duration,
    pub commit_interval: Duration,
    pub max_request_bytes: usize,
    pub max_wal_backlog: u64,
    pub wal_segment_bytes: u64,
    pub max_attribute_bytes: usize,
    pub index_memory: usize,
    pub tls: Option<TlsConfig>,
    pub auth: Option<AuthConfig>,
    pub log_format: LogFormat,
    pub log_level: String,
    pub debug_endpoints: bool,
    /// Correct clock skew between services when assembling traces.
    pub clock_skew_adjust: bool,
    /// Dependency graph and span metrics on (`--derive`).
    pub derive: bool,
    /// `--max-series`.
    pub max_series: usize,
    pub registry: RegistrySettings,
    pub alerting: AlertingConfig,
    /// Run the demo system (`--demo`).
    pub demo: bool,
    /// `--demo-collector` (+ `--demo-collector-otlp`): run only the demo,
    /// against that collector.
    pub demo_remote: Option<DemoRemote>,
}

/// A remote collector for `--demo-collector`.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoRemote {
    /// HTTP API base URL, without a trailing slash.
    pub http: String,
    /// OTLP/gRPC URL; `None`: the same host, port 4317.
    pub otlp: Option<String>,
}

/// Alerting settings (`--rules`, `--webhook`, `--alertmanager`, …).
#[derive(Debug, Clone, PartialEq)]
pub struct AlertingConfig {
    pub rules: Vec<PathBuf>,
    pub webhooks: Vec<String>,
    pub alertmanagers: Vec<String>,
    pub group_wait: Duration,
    pub repeat_interval: Duration,
    pub watchdog: bool,
    pub mass_expiry_ratio: f64,
    pub mass_expiry_window: Duration,
    pub mass_expiry_hold: Duration,
    /// `None`: derived from the bound HTTP address.
    pub external_url: Option<String>,
}

impl Config {
    /// Defaults with every listener on `127.0.0.1:0`, for tests and embedding.
    pub fn ephemeral(data_dir: impl Into<PathBuf>) -> Self {
        let any: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 0));
        let mut cfg = Self::from_sources(Args::default(), FileConfig::default(), "defaults")
            .unwrap_or_else(|_| unreachable!("the built-in defaults are valid"));
        cfg.data_dir = data_dir.into();
        cfg.otlp_grpc_addr = any;
        cfg.otlp_http_addr = any;
        cfg.http_addr = any;
        cfg
    }

    /// Merge parsed flags/env with the optional config file and validate.
    pub fn load(args: Args) -> Result<Self, ConfigError> {
        let (file, origin) = match &args.config {
            Some(path) => (read_file(path)?, path.display().to_string()),
            None => (FileConfig::default(), "flags/env".to_string()),
        };
        Self::from_sources(args, file, &origin)
    }

    fn from_sources(a: Args, f: FileConfig, origin: &str) -> Result<Self, ConfigError> {
        let err = |key: &str, msg: String| ConfigError::Invalid {
            key: key.to_string(),
            origin: origin.to_string(),
            message: msg,
        };
        let addr =
            |key: &str, v: Option<String>, default: &str| -> Result<SocketAddr, ConfigError> {
                let text = v.unwrap_or_else(|| default.to_string());
                text.parse::<SocketAddr>().map_err(|e| {
                    err(
                        key,
                        format!("'{text}' is not a socket address (host:port): {e}"),
                    )
                })
            };
        let duration =
            |key: &str, v: Option<String>, default: &str| -> Result<Duration, ConfigError> {
                let text = v.unwrap_or_else(|| default.to_string());
                humantime::parse_duration(&text).map_err(|e| {
                    err(
                        key,
                        format!("'{text}' is not a duration (e.g. 30s, 7d): {e}"),
                    )
                })
            };
        let size = |key: &str, v: Option<String>, default: &str| -> Result<u64, ConfigError> {
            let text = v.unwrap_or_else(|| default.to_string());
            parse_byte_size(&text).map_err(|e| err(key, e))
        };
        let text = |b: Option<ByteSize>| b.map(ByteSize::into_text);

        let commit_interval = duration(
            "commit_interval",
            a.commit_interval.or(f.commit_interval),
            "1s",
        )?;
        if commit_interval < Duration::from_millis(10) || commit_interval > Duration::from_secs(60)
        {
            return Err(err(
                "commit_interval",
                "must be between 10ms and 60s".into(),
            ));
        }
        let retention = duration("retention", a.retention.or(f.retention), "7d")?;
        if retention < Duration::from_secs(3600) {
            return Err(err(
                "retention",
                "must be at least 1h (partitions are hourly)".into(),
            ));
        }
        let max_request_bytes = size(
            "max_request_bytes",
            a.max_request_bytes.or(text(f.max_request_bytes)),
            "16MiB",
        )?;
        if !(1024..=(1 << 30)).contains(&max_request_bytes) {
            return Err(err(
                "max_request_bytes",
                "must be between 1KiB and 1GiB".into(),
            ));
        }
        let max_wal_backlog = size(
            "max_wal_backlog",
            a.max_wal_backlog.or(text(f.max_wal_backlog)),
            "1GiB",
        )?;
        if max_wal_backlog < 1024 {
            return Err(err("max_wal_backlog", "must be at least 1KiB".into()));
        }
        let wal_segment_bytes = size(
            "wal_segment_bytes",
            a.wal_segment_bytes.or(text(f.wal_segment_bytes)),
            "64MiB",
        )?;
        if wal_segment_bytes < 4096 {
            return Err(err("wal_segment_bytes", "must be at least 4KiB".into()));
        }
        let max_attribute_bytes = size(
            "max_attribute_bytes",
            a.max_attribute_bytes.or(text(f.max_attribute_bytes)),
            "64KiB",
        )?;
        if max_attribute_bytes == 0 {
            return Err(err("max_attribute_bytes", "must be above 0".into()));
        }
        let index_memory = size(
            "index_memory",
            a.index_memory.or(text(f.index_memory)),
            "64MiB",
        )?;
        if !((16 << 20)..=(4 << 30)).contains(&index_memory) {
            return Err(err("index_memory", "must be between 16MiB and 4GiB".into()));
        }

        let max_series = a.max_series.or(f.max_series).unwrap_or(10_000);
        if !(1..=10_000_000).contains(&max_series) {
            return Err(err("max_series", "must be between 1 and 10000000".into()));
        }

        let tls = match (a.tls_cert.or(f.tls_cert), a.tls_key.or(f.tls_key)) {
            (Some(cert), Some(key)) => Some(TlsConfig { cert, key }),
            (None, None) => None,
            (Some(_), None) => return Err(err("tls_key", "--tls-cert needs --tls-key".into())),
            (None, Some(_)) => return Err(err("tls_cert", "--tls-key needs --tls-cert".into())),
        };
        let auth_read = a.auth_read.or(f.auth_read).unwrap_or(false);
        let auth = match a.auth_token_file.or(f.auth_token_file) {
            Some(token_file) => Some(AuthConfig {
                token_file,
                read: auth_read,
            }),
            None if auth_read => {
                return Err(err(
                    "auth_read",
                    "--auth-read needs --auth-token-file".into(),
                ))
            }
            None => None,
        };

        let registry = registry_settings(
            RegistryArgs {
                expired_retention: a.expired_retention.or(f.expired_retention),
                watch_history: a.registry_watch_history.or(f.registry_watch_history),
                max_instances: a.registry_max_instances.or(f.registry_max_instances),
                etcd_endpoints: if a.etcd_endpoint.is_empty() {
                    f.etcd_endpoint.unwrap_or_default()
                } else {
                    a.etcd_endpoint
                },
                etcd_prefix: a.etcd_prefix.or(f.etcd_prefix),
            },
            &err,
        )?;

        let alerting = alerting_config(
            &err,
            &duration,
            AlertingSources {
                rules: if a.rules.is_empty() {
                    f.rules.unwrap_or_default()
                } else {
                    a.rules
                },
                webhooks: if a.webhook.is_empty() {
                    f.webhook.unwrap_or_default()
                } else {
                    a.webhook
                },
                alertmanagers: if a.alertmanager.is_empty() {
                    f.alertmanager.unwrap_or_default()
                } else {
                    a.alertmanager
                },
                group_wait: a.group_wait.or(f.group_wait),
                repeat_interval: a.repeat_interval.or(f.repeat_interval),
                watchdog: a.watchdog.or(f.watchdog).unwrap_or(false),
                mass_expiry_ratio: a.mass_expiry_ratio.or(f.mass_expiry_ratio),
                mass_expiry_window: a.mass_expiry_window.or(f.mass_expiry_window),
                mass_expiry_hold: a.mass_expiry_hold.or(f.mass_expiry_hold),
                external_url: a.external_url.or(f.external_url),
            },
        )?;

        let demo = a.demo.or(f.demo).unwrap_or(false);
        if demo && tls.is_some() {
            return Err(err(
                "demo",
                "--demo runs its agents over plain HTTP to this collector; run the demo without --tls-cert/--tls-key".into(),
            ));
        }
        let demo_url = |key: &str, v: Option<String>| -> Result<Option<String>, ConfigError> {
            let Some(u) = v else { return Ok(None) };
            let host = u.strip_prefix("http://").unwrap_or("");
            if host.is_empty() || host.starts_with('/') || host.contains(char::is_whitespace) {
                return Err(err(key, format!("'{u}' is not an http:// URL with a host")));
            }
            Ok(Some(u.trim_end_matches('/').to_string()))
        };
        let demo_remote = match (
            demo_url("demo_collector", a.demo_collector.or(f.demo_collector))?,
            demo_url(
                "demo_collector_otlp",
                a.demo_collector_otlp.or(f.demo_collector_otlp),
            )?,
        ) {
            (Some(_), _) | (_, Some(_)) if !demo => {
                return Err(err("demo_collector", "needs --demo".into()))
            }
            (Some(http), otlp) => Some(DemoRemote { http, otlp }),
            (None, Some(_)) => {
                return Err(err("demo_collector_otlp", "needs --demo-collector".into()))
            }
            (None, None) => None,
        };
        Ok(Config {
            alerting,
            registry,
            demo,
            demo_remote,
            data_dir: a.data_dir.or(f.data_dir).unwrap_or_else(|| {
                // Demo data never mixes with real data by default.
                PathBuf::from(if demo {
                    "./skein-demo-data"
                } else {
                    "./skein-data"
                })
            }),
            otlp_grpc_addr: addr(
                "otlp_grpc_addr",
                a.otlp_grpc_addr.or(f.otlp_grpc_addr),
                "0.0.0.0:4317",
            )?,
            otlp_http_addr: addr(
                "otlp_http_addr",
                a.otlp_http_addr.or(f.otlp_http_addr),
                "0.0.0.0:4318",
            )?,
            http_addr: addr("http_addr", a.http_addr.or(f.http_addr), "0.0.0.0:16686")?,
            retention,
            commit_interval,
            max_request_bytes: usize::try_from(max_request_bytes)
                .map_err(|_| err("max_request_bytes", "too large for this platform".into()))?,
            max_wal_backlog,
            wal_segment_bytes,
            max_attribute_bytes: usize::try_from(max_attribute_bytes)
                .map_err(|_| err("max_attribute_bytes", "too large for this platform".into()))?,
            index_memory: usize::try_from(index_memory)
                .map_err(|_| err("index_memory", "too large for this platform".into()))?,
            tls,
            auth,
            log_format: a.log_format.or(f.log_format).unwrap_or(LogFormat::Text),
            log_level: a
                .log_level
                .or(f.log_level)
                .unwrap_or_else(|| "info".to_string()),
            debug_endpoints: a.debug_endpoints.or(f.debug_endpoints).unwrap_or(false),
            clock_skew_adjust: a.clock_skew_adjust.or(f.clock_skew_adjust).unwrap_or(true),
            derive: a.derive.or(f.derive).unwrap_or(true),
            max_series: max_series as usize,
        })
    }
}

struct RegistryArgs {
    expired_retention: Option<String>,
    watch_history: Option<usize>,
    max_instances: Option<usize>,
    etcd_endpoints: Vec<String>,
    etcd_prefix: Option<String>,
}

fn registry_settings(
    a: RegistryArgs,
    err: &dyn Fn(&str, String) -> ConfigError,
) -> Result<RegistrySettings, ConfigError> {
    let text = a.expired_retention.unwrap_or_else(|| "24h".to_string());
    let expired_retention = humantime::parse_duration(&text).map_err(|e| {
        err(
            "expired_retention",
            format!("'{text}' is not a duration (e.g. 24h, 7d): {e}"),
        )
    })?;
    if expired_retention < Duration::from_secs(60)
        || expired_retention > Duration::from_secs(366 * 86400)
    {
        return Err(err(
            "expired_retention",
            "must be between 1m and 366d".into(),
        ));
    }
    let watch_history = a.watch_history.unwrap_or(10_000);
    if !(1..=10_000_000).contains(&watch_history) {
        return Err(err(
            "registry_watch_history",
            "must be between 1 and 10000000".into(),
        ));
    }
    let max_instances = a.max_instances.unwrap_or(1_000_000);
    if !(1..=10_000_000).contains(&max_instances) {
        return Err(err(
            "registry_max_instances",
            "must be between 1 and 10000000".into(),
        ));
    }
    let etcd_endpoints: Vec<String> = a
        .etcd_endpoints
        .into_iter()
        .map(|e| e.trim().to_string())
        .filter(|e| !e.is_empty())
        .collect();
    for e in &etcd_endpoints {
        let hostport = e
            .strip_prefix("http://")
            .or_else(|| e.strip_prefix("https://"))
            .unwrap_or(e);
        if hostport.contains(char::is_whitespace) || !hostport.contains(':') {
            return Err(err(
                "etcd_endpoint",
                format!("'{e}' is not an etcd endpoint (host:port or http://host:port)"),
            ));
        }
    }
    let etcd_prefix = a.etcd_prefix.unwrap_or_else(|| "/services/".to_string());
    if etcd_prefix.is_empty() {
        return Err(err("etcd_prefix", "must not be empty".into()));
    }
    Ok(RegistrySettings {
        expired_retention,
        watch_history,
        max_instances,
        etcd_endpoints,
        etcd_prefix,
    })
}

/// The alerting settings before validation (flags merged with the file).
struct AlertingSources {
    rules: Vec<PathBuf>,
    webhooks: Vec<String>,
    alertmanagers: Vec<String>,
    group_wait: Option<String>,
    repeat_interval: Option<String>,
    watchdog: bool,
    mass_expiry_ratio: Option<f64>,
    mass_expiry_window: Option<String>,
    mass_expiry_hold: Option<String>,
    external_url: Option<String>,
}

/// Parses one duration setting: (key, value, default).
type DurationParser<'a> = &'a dyn Fn(&str, Option<String>, &str) -> Result<Duration, ConfigError>;

fn alerting_config(
    err: &dyn Fn(&str, String) -> ConfigError,
    duration: DurationParser<'_>,
    s: AlertingSources,
) -> Result<AlertingConfig, ConfigError> {
    let url = |key: &str, u: &str| -> Result<(), ConfigError> {
        let ok = (u.starts_with("http://") || u.starts_with("https://"))
            && u.split("://")
                .nth(1)
                .is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'));
        if ok {
            Ok(())
        } else {
            Err(err(key, format!("'{u}' is not an http:// or https:// URL")))
        }
    };
    // Notifications go out over plain HTTP (no TLS client is linked yet).
    let http_only = |key: &str, u: &str| -> Result<(), ConfigError> {
        url(key, u)?;
        if u.starts_with("https://") {
            return Err(err(
                key,
                format!("'{u}': https:// receivers are not supported yet; use http:// (e.g. through a local TLS proxy)"),
            ));
        }
        Ok(())
    };
    for u in &s.webhooks {
        http_only("webhook", u)?;
    }
    for u in &s.alertmanagers {
        http_only("alertmanager", u)?;
    }
    if let Some(u) = &s.external_url {
        url("external_url", u)?;
    }
    let group_wait = duration("group_wait", s.group_wait, "5s")?;
    if group_wait > Duration::from_secs(3600) {
        return Err(err("group_wait", "must be at most 1h".into()));
    }
    let repeat_interval = duration("repeat_interval", s.repeat_interval, "4h")?;
    if repeat_interval < Duration::from_secs(1) {
        return Err(err("repeat_interval", "must be at least 1s".into()));
    }
    let ratio = s.mass_expiry_ratio.unwrap_or(0.3);
    if !(ratio > 0.0 && ratio <= 1.0) {
        return Err(err(
            "mass_expiry_ratio",
            format!("{ratio} must be above 0 and at most 1"),
        ));
    }
    let window = duration("mass_expiry_window", s.mass_expiry_window, "30s")?;
    if window < Duration::from_secs(1) {
        return Err(err("mass_expiry_window", "must be at least 1s".into()));
    }
    Ok(AlertingConfig {
        rules: s.rules,
        webhooks: s.webhooks,
        alertmanagers: s.alertmanagers,
        group_wait,
        repeat_interval,
        watchdog: s.watchdog,
        mass_expiry_ratio: ratio,
        mass_expiry_window: window,
        mass_expiry_hold: duration("mass_expiry_hold", s.mass_expiry_hold, "5m")?,
        external_url: s.external_url.map(|u| u.trim_end_matches('/').to_string()),
    })
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    toml::from_str(&text).map_err(|e| ConfigError::File {
        path: path.to_path_buf(),
        // toml's message names the unknown or mistyped key and its line.
        message: e.to_string(),
    })
}

/// Parse `123`, `64KiB`, `16MiB`, `1GiB`, `10MB`, `1.5GiB` (case-insensitive).
pub fn parse_byte_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("'{text}' is not a size (e.g. 65536, 64KiB, 16MiB, 1GiB)"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        "t" | "tb" => 1_000_000_000_000,
        "tib" => 1 << 40,
        other => return Err(format!("'{text}' has an unknown size unit '{other}'")),
    };
    let bytes = value * mult as f64;
    if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 {
        return Err(format!("'{text}' is out of range"));
    }
    Ok(bytes as u64)
}

/// A configuration problem, naming the key and its source.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid config key '{key}' (from {origin}): {message}")]
    Invalid {
        key: String,
        origin: String,
        message: String,
    },
    #[error("config file {}: {message}", path.display())]
    File { path: PathBuf, message: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Config, ConfigError> {
        let mut argv = vec!["skein-collector"];
        argv.extend_from_slice(args);
        Config::load(
            Args::try_parse_from(argv).map_err(|e| ConfigError::Invalid {
                key: "argv".into(),
                origin: "test".into(),
                message: e.to_string(),
            })?,
        )
    }

    #[test]
    fn defaults_match_the_design() {
        let c = parse(&[]).unwrap();
        assert_eq!(c.otlp_grpc_addr.to_string(), "0.0.0.0:4317");
        assert_eq!(c.otlp_http_addr.to_string(), "0.0.0.0:4318");
        assert_eq!(c.http_addr.to_string(), "0.0.0.0:16686");
        assert_eq!(c.data_dir, PathBuf::from("./skein-data"));
        assert_eq!(c.retention, Duration::from_secs(7 * 86400));
        assert_eq!(c.commit_interval, Duration::from_secs(1));
        assert_eq!(c.max_request_bytes, 16 << 20);
        assert_eq!(c.max_wal_backlog, 1 << 30);
        assert!(c.tls.is_none() && c.auth.is_none() && !c.debug_endpoints);
    }

    #[test]
    fn each_flag_is_parsed() {
        let c = parse(&[
            "--data-dir=/d",
            "--otlp-grpc-addr=127.0.0.1:0",
            "--otlp-http-addr=127.0.0.1:1",
            "--http-addr=[::1]:2",
            "--retention=2d",
            "--commit-interval=200ms",
            "--max-request-bytes=1MiB",
            "--max-wal-backlog=64KiB",
            "--wal-segment-bytes=1MB",
            "--max-attribute-bytes=100",
            "--index-memory=32MiB",
            "--tls-cert=c.pem",
            "--tls-key=k.pem",
            "--auth-token-file=t",
            "--auth-read",
            "--log-format=json",
            "--log-level=debug",
            "--debug-endpoints",
        ])
        .unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/d"));
        assert_eq!(c.otlp_http_addr.port(), 1);
        assert_eq!(c.http_addr.to_string(), "[::1]:2");
        assert_eq!(c.retention, Duration::from_secs(2 * 86400));
        assert_eq!(c.commit_interval, Duration::from_millis(200));
        assert_eq!(c.max_request_bytes, 1 << 20);
        assert_eq!(c.max_wal_backlog, 64 << 10);
        assert_eq!(c.wal_segment_bytes, 1_000_000);
        assert_eq!(c.max_attribute_bytes, 100);
        assert_eq!(c.index_memory, 32 << 20);
        assert_eq!(
            c.tls,
            Some(TlsConfig {
                cert: "c.pem".into(),
                key: "k.pem".into()
            })
        );
        assert_eq!(
            c.auth,
            Some(AuthConfig {
                token_file: "t".into(),
                read: true
            })
        );
        assert_eq!(c.log_format, LogFormat::Json);
        assert_eq!(c.log_level, "debug");
        assert!(c.debug_endpoints);
    }

    #[test]
    fn bad_values_name_their_key() {
        for (flag, key) in [
            ("--otlp-grpc-addr=nope", "otlp_grpc_addr"),
            ("--http-addr=1.2.3.4", "http_addr"),
            ("--retention=forever", "retention"),
            ("--retention=5m", "retention"),
            ("--commit-interval=1ms", "commit_interval"),
            ("--max-request-bytes=12XB", "max_request_bytes"),
            ("--max-wal-backlog=1", "max_wal_backlog"),
            ("--tls-cert=x", "tls_key"),
            ("--auth-read", "auth_read"),
        ] {
            let e = parse(&[flag]).unwrap_err().to_string();
            assert!(e.contains(&format!("'{key}'")), "{flag}: {e}");
        }
    }

    #[test]
    fn file_values_apply_and_flags_win() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("skein.toml");
        std::fs::write(
            &path,
            "retention = \"3d\"\nmax_request_bytes = 2048\nhttp_addr = \"127.0.0.1:9\"\n",
        )
        .unwrap();
        let c = parse(&[
            "--config",
            path.to_str().unwrap(),
            "--http-addr=127.0.0.1:10",
        ])
        .unwrap();
        assert_eq!(c.retention, Duration::from_secs(3 * 86400));
        assert_eq!(c.max_request_bytes, 2048);
        assert_eq!(c.http_addr.port(), 10, "flag beats file");
    }

    #[test]
    fn unknown_file_key_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("skein.toml");
        std::fs::write(&path, "retention = \"3d\"\nretension = \"4d\"\n").unwrap();
        let e = parse(&["--config", path.to_str().unwrap()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("retension") && e.contains("skein.toml"), "{e}");
    }

    #[test]
    fn byte_sizes() {
        assert_eq!(parse_byte_size("65536"), Ok(65536));
        assert_eq!(parse_byte_size("64KiB"), Ok(65536));
        assert_eq!(parse_byte_size("1.5GiB"), Ok(3 << 29));
        assert_eq!(parse_byte_size("10mb"), Ok(10_000_000));
        assert!(parse_byte_size("ten").is_err());
        assert!(parse_byte_size("5 parsecs").is_err());
        assert!(parse_byte_size("").is_err());
    }

    #[test]
    fn clock_skew_adjust_defaults_on_and_reads_flag_and_file() {
        assert!(parse(&[]).unwrap().clock_skew_adjust);
        assert!(parse(&["--clock-skew-adjust"]).unwrap().clock_skew_adjust);
        assert!(
            !parse(&["--clock-skew-adjust=false"])
                .unwrap()
                .clock_skew_adjust
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("skein.toml");
        std::fs::write(&path, "clock_skew_adjust = false\n").unwrap();
        let c = parse(&["--config", path.to_str().unwrap()]).unwrap();
        assert!(!c.clock_skew_adjust);
        assert!(parse(&["--clock-skew-adjust=maybe"]).is_err());
    }

    #[test]
    fn derive_and_max_series() {
        let c = parse(&[]).unwrap();
        assert!(c.derive);
        assert_eq!(c.max_series, 10_000);
        let c = parse(&["--derive=false", "--max-series=50"]).unwrap();
        assert!(!c.derive);
        assert_eq!(c.max_series, 50);
        for bad in ["--max-series=0", "--max-series=-1", "--max-series=lots"] {
            let e = parse(&[bad]).unwrap_err().to_string();
            assert!(
                e.contains("max_series") || e.contains("max-series"),
                "{bad}: {e}"
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("skein.toml");
        std::fs::write(&path, "max_series = 7\nderive = false\n").unwrap();
        let c = parse(&["--config", path.to_str().unwrap()]).unwrap();
        assert_eq!((c.max_series, c.derive), (7, false));
        std::env::set_var("SKEIN_MAX_SERIES", "9");
        let env = parse(&[]);
        std::env::remove_var("SKEIN_MAX_SERIES");
        assert_eq!(env.unwrap().max_series, 9);
    }

    #[test]
    fn registry_flags() {
        let c = parse(&[]).unwrap();
        assert_eq!(c.registry.expired_retention, Duration::from_secs(86400));
        assert_eq!(c.registry.etcd_prefix, "/services/");
        assert!(c.registry.etcd_endpoints.is_empty());
        let c = parse(&[
            "--expired-retention=2h",
            "--etcd-endpoint=127.0.0.1:2379",
            "--etcd-endpoint=http://10.0.0.1:2379",
            "--etcd-prefix=/reg/",
            "--registry-watch-history=50",
            "--registry-max-instances=10",
        ])
        .unwrap();
        assert_eq!(c.registry.expired_retention, Duration::from_secs(7200));
        assert_eq!(c.registry.etcd_endpoints.len(), 2);
        assert_eq!(c.registry.etcd_prefix, "/reg/");
        assert_eq!(
            (c.registry.watch_history, c.registry.max_instances),
            (50, 10)
        );
        for (flag, key) in [
            ("--expired-retention=soon", "expired_retention"),
            ("--expired-retention=1s", "expired_retention"),
            ("--etcd-endpoint=nohost", "etcd_endpoint"),
            ("--registry-watch-history=0", "registry_watch_history"),
        ] {
            let e = parse(&[flag]).unwrap_err().to_string();
            assert!(e.contains(&format!("'{key}'")), "{flag}: {e}");
        }
    }

    #[test]
    fn alerting_flags() {
        let c = parse(&[]).unwrap().alerting;
        assert_eq!(c.group_wait, Duration::from_secs(5));
        assert_eq!(c.repeat_interval, Duration::from_secs(4 * 3600));
        assert_eq!(
            (
                c.mass_expiry_ratio,
                c.mass_expiry_window,
                c.mass_expiry_hold
            ),
            (0.3, Duration::from_secs(30), Duration::from_secs(300))
        );
        assert!(!c.watchdog && c.rules.is_empty());
        let c = parse(&[
            "--rules=a.yaml",
            "--rules=b.yaml",
            "--webhook=http://hook:1/x",
            "--alertmanager=http://am:9093",
            "--group-wait=1s",
            "--repeat-interval=1m",
            "--watchdog",
            "--mass-expiry-ratio=0.5",
            "--mass-expiry-window=10s",
            "--mass-expiry-hold=1m",
            "--external-url=https://skein.example/",
        ])
        .unwrap()
        .alerting;
        assert_eq!(
            c.rules,
            vec![PathBuf::from("a.yaml"), PathBuf::from("b.yaml")]
        );
        assert_eq!(c.webhooks, ["http://hook:1/x"]);
        assert_eq!(c.alertmanagers, ["http://am:9093"]);
        assert_eq!(
            (c.group_wait, c.repeat_interval),
            (Duration::from_secs(1), Duration::from_secs(60))
        );
        assert!(c.watchdog);
        assert_eq!(c.mass_expiry_ratio, 0.5);
        assert_eq!(c.external_url.as_deref(), Some("https://skein.example"));
        for (flag, key) in [
            ("--webhook=ftp://x", "webhook"),
            ("--webhook=https://hooks.example/x", "webhook"),
            ("--alertmanager=localhost:9093", "alertmanager"),
            ("--group-wait=soon", "group_wait"),
            ("--repeat-interval=0s", "repeat_interval"),
            ("--mass-expiry-ratio=1.5", "mass_expiry_ratio"),
            ("--mass-expiry-window=0s", "mass_expiry_window"),
        ] {
            let e = parse(&[flag]).unwrap_err().to_string();
            assert!(e.contains(&format!("'{key}'")), "{flag}: {e}");
        }
    }

    #[test]
    fn demo_flag_env_file_and_its_data_dir() {
        let c = parse(&[]).unwrap();
        assert!(!c.demo);
        let c = parse(&["--demo"]).unwrap();
        assert!(c.demo);
        assert_eq!(c.data_dir, PathBuf::from("./skein-demo-data"));
        let c = parse(&["--demo", "--data-dir=/d"]).unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/d"), "an explicit data dir wins");
        assert!(!parse(&["--demo=false"]).unwrap().demo);
        let e = parse(&["--demo", "--tls-cert=c", "--tls-key=k"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("'demo'"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("skein.toml");
        std::fs::write(&path, "demo = true\n").unwrap();
        assert!(parse(&["--config", path.to_str().unwrap()]).unwrap().demo);
        assert!(parse(&["--demo=perhaps"]).is_err());
    }

    #[test]
    fn demo_collector_needs_demo_and_an_http_url() {
        assert_eq!(parse(&["--demo"]).unwrap().demo_remote, None);
        let c = parse(&["--demo", "--demo-collector=http://collector:16686/"]).unwrap();
        assert_eq!(
            c.demo_remote,
            Some(DemoRemote {
                http: "http://collector:16686".into(),
                otlp: None
            })
        );
        let c = parse(&[
            "--demo",
            "--demo-collector=http://c:1",
            "--demo-collector-otlp=http://c:2",
        ])
        .unwrap();
        assert_eq!(c.demo_remote.unwrap().otlp.as_deref(), Some("http://c:2"));
        for (args, key) in [
            (&["--demo-collector=http://c:1"][..], "demo_collector"),
            (&["--demo", "--demo-collector=c:1"][..], "demo_collector"),
            (
                &["--demo", "--demo-collector=https://c:1"][..],
                "demo_collector",
            ),
            (
                &["--demo", "--demo-collector-otlp=http://c:2"][..],
                "demo_collector_otlp",
            ),
        ] {
            let e = parse(args).unwrap_err().to_string();
            assert!(e.contains(&format!("'{key}'")), "{args:?}: {e}");
        }
    }

    #[test]
    fn ephemeral_binds_loopback_port_zero() {
        let c = Config::ephemeral("/tmp/x");
        assert_eq!(c.http_addr.port(), 0);
        assert!(c.http_addr.ip().is_loopback());
    }
}
