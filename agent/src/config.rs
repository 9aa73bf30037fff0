//! Agent configuration: command-line flags, `SKEIN_*` environment variables
//! and an optional TOML file, merged (flags > env > file > default) and
//! validated into a typed [`Config`] at start-up.
//!
//! Every error names the key and where it came from. This module owns
//! parsing and validation only; it must not open files other than the config
//! file, bind sockets or start anything.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use serde::Deserialize;

pub use crate::export::client::Compression;
use crate::telemetry::LogFormat;

/// `skein-agent` command line. Every flag also reads `SKEIN_<FLAG>` from the
/// environment and the same key (snake_case) from the `--config` file.
#[derive(Debug, Default, Parser)]
#[command(
    name = "skein-agent",
    version,
    about = "Skein agent: receives OTLP from local apps, tails log files, buffers on disk and forwards to the collector; keeps the service's registry lease alive"
)]
pub struct Args {
    /// Optional TOML file with the same keys as the flags (snake_case).
    #[arg(long, env = "SKEIN_CONFIG")]
    pub config: Option<PathBuf>,
    /// Directory for the disk buffer, tail checkpoints and the heartbeat revision [default: ./skein-agent-state]
    #[arg(long, env = "SKEIN_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// OTLP/gRPC listen address for local apps [default: 127.0.0.1:4317]
    #[arg(long, env = "SKEIN_OTLP_GRPC_ADDR")]
    pub otlp_grpc_addr: Option<String>,
    /// OTLP/HTTP listen address for local apps [default: 127.0.0.1:4318]
    #[arg(long, env = "SKEIN_OTLP_HTTP_ADDR")]
    pub otlp_http_addr: Option<String>,
    /// Admin listen address: /healthz, /readyz, /metrics, /status [default: 127.0.0.1:13133]
    #[arg(long, env = "SKEIN_ADMIN_ADDR")]
    pub admin_addr: Option<String>,
    /// The collector's HTTP API URL (registry heartbeats) [default: http://127.0.0.1:16686]
    #[arg(long, env = "SKEIN_COLLECTOR")]
    pub collector: Option<String>,
    /// The collector's OTLP/gRPC URL [default: --collector's scheme and host, port 4317]
    #[arg(long, env = "SKEIN_COLLECTOR_OTLP")]
    pub collector_otlp: Option<String>,
    /// File holding the bearer token sent to the collector (first non-empty line)
    #[arg(long, env = "SKEIN_AUTH_TOKEN_FILE")]
    pub auth_token_file: Option<PathBuf>,
    /// PEM CA certificate(s) to verify an https:// collector with
    #[arg(long, env = "SKEIN_COLLECTOR_CA")]
    pub collector_ca: Option<PathBuf>,
    /// Register this service in the collector's registry and renew its lease
    #[arg(long, env = "SKEIN_SERVICE")]
    pub service: Option<String>,
    /// Instance id in the registry [default: hostname-<id stable in --state-dir>]
    #[arg(long, env = "SKEIN_INSTANCE")]
    pub instance: Option<String>,
    /// Address advertised for the instance in the registry (e.g. 10.0.0.7:8080)
    #[arg(long, env = "SKEIN_ADVERTISE_ADDRESS")]
    pub advertise_address: Option<String>,
    /// Lease time-to-live [default: 30s]
    #[arg(long, env = "SKEIN_TTL")]
    pub ttl: Option<String>,
    /// How often the lease is renewed [default: 10s]
    #[arg(long, env = "SKEIN_HEARTBEAT_INTERVAL")]
    pub heartbeat_interval: Option<String>,
    /// Health check: the service is healthy while this URL answers 2xx within --health-timeout
    #[arg(long, env = "SKEIN_HEALTH_URL")]
    pub health_url: Option<String>,
    /// Health check: the service is healthy while this host:port accepts TCP connections
    #[arg(long, env = "SKEIN_HEALTH_TCP")]
    pub health_tcp: Option<String>,
    /// Health check: the service is healthy while this shell command exits 0
    #[arg(long, env = "SKEIN_HEALTH_CMD")]
    pub health_cmd: Option<String>,
    /// Time limit of one health check [default: 2s]
    #[arg(long, env = "SKEIN_HEALTH_TIMEOUT")]
    pub health_timeout: Option<String>,
    /// Passing checks needed after a failure before renewals resume [default: 2]
    #[arg(long, env = "SKEIN_HEALTHY_AFTER")]
    pub healthy_after: Option<u32>,
    /// Follow log files matching this glob (repeatable; comma-separated in SKEIN_TAIL)
    #[arg(long, env = "SKEIN_TAIL", value_delimiter = ',')]
    pub tail: Vec<String>,
    /// A line matching this regex starts a new record; other lines join the previous one (stack traces)
    #[arg(long, env = "SKEIN_MULTILINE_START")]
    pub multiline_start: Option<String>,
    /// How often tailed files and globs are polled [default: 250ms]
    #[arg(long, env = "SKEIN_TAIL_POLL_INTERVAL")]
    pub tail_poll_interval: Option<String>,
    /// Largest number of spans or log records sent in one export [default: 8192]
    #[arg(long, env = "SKEIN_BATCH_SIZE")]
    pub batch_size: Option<usize>,
    /// How long a batch waits to fill up before it is sent [default: 200ms]
    #[arg(long, env = "SKEIN_BATCH_TIMEOUT")]
    pub batch_timeout: Option<String>,
    /// Disk buffer limit; above it apps get 503/UNAVAILABLE + Retry-After [default: 256MiB]
    #[arg(long, env = "SKEIN_BUFFER_MAX_BYTES")]
    pub buffer_max_bytes: Option<String>,
    /// How often the disk buffer is fsynced in the background; an app's export is acked once written (safe against SIGKILL of the agent). 0s: fsync before every ack (safe against power loss, the app waits for the disk) [default: 1s]
    #[arg(long, env = "SKEIN_BUFFER_FSYNC_INTERVAL")]
    pub buffer_fsync_interval: Option<String>,
    /// Compression of exports to the collector: gzip at its fastest level (every OTLP receiver takes it), zstd (smaller on the wire; Skein collectors and recent OpenTelemetry Collectors take it) or none [default: gzip]
    #[arg(long, env = "SKEIN_COMPRESSION", value_enum)]
    pub compression: Option<Compression>,
    /// Time limit of one export call to the collector [default: 10s]
    #[arg(long, env = "SKEIN_EXPORT_TIMEOUT")]
    pub export_timeout: Option<String>,
    /// Largest accepted request body from apps, also after gzip inflation [default: 16MiB]
    #[arg(long, env = "SKEIN_MAX_REQUEST_BYTES")]
    pub max_request_bytes: Option<String>,
    /// Largest accepted attribute value; an item with a larger one is rejected [default: 64KiB]
    #[arg(long, env = "SKEIN_MAX_ATTRIBUTE_BYTES")]
    pub max_attribute_bytes: Option<String>,
    /// Log format: text or json [default: text]
    #[arg(long, env = "SKEIN_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// Log filter in RUST_LOG syntax [default: info]
    #[arg(long, env = "SKEIN_LOG_LEVEL")]
    pub log_level: Option<String>,
}

/// The optional TOML file: the same keys as the flags, unknown keys rejected.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    state_dir: Option<PathBuf>,
    otlp_grpc_addr: Option<String>,
    otlp_http_addr: Option<String>,
    admin_addr: Option<String>,
    collector: Option<String>,
    collector_otlp: Option<String>,
    auth_token_file: Option<PathBuf>,
    collector_ca: Option<PathBuf>,
    service: Option<String>,
    instance: Option<String>,
    advertise_address: Option<String>,
    ttl: Option<String>,
    heartbeat_interval: Option<String>,
    health_url: Option<String>,
    health_tcp: Option<String>,
    health_cmd: Option<String>,
    health_timeout: Option<String>,
    healthy_after: Option<u32>,
    tail: Option<Vec<String>>,
    multiline_start: Option<String>,
    tail_poll_interval: Option<String>,
    batch_size: Option<usize>,
    batch_timeout: Option<String>,
    buffer_max_bytes: Option<ByteSize>,
    buffer_fsync_interval: Option<String>,
    compression: Option<Compression>,
    export_timeout: Option<String>,
    max_request_bytes: Option<ByteSize>,
    max_attribute_bytes: Option<ByteSize>,
    log_format: Option<LogFormat>,
    log_level: Option<String>,
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

/// How the local service's health is checked before each renewal.
#[derive(Debug, Clone, PartialEq)]
pub enum HealthCheck {
    /// No check: always renew.
    None,
    Url(String),
    Tcp(String),
    Cmd(String),
}

/// Registration in the collector's registry (`--service`).
#[derive(Debug, Clone, PartialEq)]
pub struct HeartbeatConfig {
    pub service: String,
    /// `None`: derived from the hostname and an id kept in the state dir.
    pub instance: Option<String>,
    pub address: String,
    pub ttl: Duration,
    pub interval: Duration,
    pub check: HealthCheck,
    pub health_timeout: Duration,
    pub healthy_after: u32,
}

/// The validated configuration the agent runs with.
#[derive(Debug, Clone)]
pub struct Config {
    pub state_dir: PathBuf,
    pub otlp_grpc_addr: SocketAddr,
    pub otlp_http_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    /// The collector's HTTP base URL, without a trailing slash.
    pub collector: String,
    /// The collector's OTLP/gRPC URL.
    pub collector_otlp: String,
    pub auth_token_file: Option<PathBuf>,
    pub collector_ca: Option<PathBuf>,
    pub heartbeat: Option<HeartbeatConfig>,
    pub tail: Vec<String>,
    pub multiline_start: Option<regex::Regex>,
    pub tail_poll_interval: Duration,
    pub batch_size: usize,
    pub batch_timeout: Duration,
    pub buffer_max_bytes: u64,
    /// Zero: fsync before every ack.
    pub buffer_fsync_interval: Duration,
    pub compression: Compression,
    pub export_timeout: Duration,
    pub max_request_bytes: usize,
    pub max_attribute_bytes: usize,
    pub log_format: LogFormat,
    pub log_level: String,
}

impl Config {
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
        // A duration flag: parsed (or its default) and within [lo, hi].
        let duration = |key: &str,
                        v: Option<String>,
                        default: &str,
                        lo: Duration,
                        hi: Duration|
         -> Result<Duration, ConfigError> {
            let text = v.unwrap_or_else(|| default.to_string());
            let d = humantime::parse_duration(&text).map_err(|e| {
                err(
                    key,
                    format!("'{text}' is not a duration (e.g. 200ms, 30s): {e}"),
                )
            })?;
            if d < lo || d > hi {
                return Err(err(key, format!("must be between {lo:?} and {hi:?}")));
            }
            Ok(d)
        };
        let size = |key: &str, v: Option<String>, default: &str| -> Result<u64, ConfigError> {
            let text = v.unwrap_or_else(|| default.to_string());
            parse_byte_size(&text).map_err(|e| err(key, e))
        };
        let text = |b: Option<ByteSize>| b.map(ByteSize::into_text);

        let collector = url("collector", a.collector.or(f.collector), origin)?
            .unwrap_or_else(|| "http://127.0.0.1:16686".to_string());
        let collector_otlp = match url(
            "collector_otlp",
            a.collector_otlp.or(f.collector_otlp),
            origin,
        )? {
            Some(u) => u,
            None => derive_otlp(&collector),
        };

        let collector_ca = a.collector_ca.or(f.collector_ca);
        if collector_ca.is_none()
            && (collector.starts_with("https://") || collector_otlp.starts_with("https://"))
        {
            return Err(err(
                "collector_ca",
                "an https:// collector needs --collector-ca (the PEM CA that signed its certificate)".into(),
            ));
        }
        let ms = Duration::from_millis;
        let secs = Duration::from_secs;
        let batch_timeout = duration(
            "batch_timeout",
            a.batch_timeout.or(f.batch_timeout),
            "200ms",
            ms(1),
            secs(60),
        )?;
        let tail_poll_interval = duration(
            "tail_poll_interval",
            a.tail_poll_interval.or(f.tail_poll_interval),
            "250ms",
            ms(10),
            secs(60),
        )?;
        let export_timeout = duration(
            "export_timeout",
            a.export_timeout.or(f.export_timeout),
            "10s",
            ms(100),
            secs(300),
        )?;
        let buffer_fsync_interval = duration(
            "buffer_fsync_interval",
            a.buffer_fsync_interval.or(f.buffer_fsync_interval),
            "1s",
            Duration::ZERO,
            secs(60),
        )?;
        let batch_size = a.batch_size.or(f.batch_size).unwrap_or(8192);
        if !(1..=1_000_000).contains(&batch_size) {
            return Err(err("batch_size", "must be between 1 and 1000000".into()));
        }
        let buffer_max_bytes = size(
            "buffer_max_bytes",
            a.buffer_max_bytes.or(text(f.buffer_max_bytes)),
            "256MiB",
        )?;
        if buffer_max_bytes < 4096 {
            return Err(err("buffer_max_bytes", "must be at least 4KiB".into()));
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
        let max_attribute_bytes = size(
            "max_attribute_bytes",
            a.max_attribute_bytes.or(text(f.max_attribute_bytes)),
            "64KiB",
        )?;
        if max_attribute_bytes == 0 {
            return Err(err("max_attribute_bytes", "must be above 0".into()));
        }
        let multiline_start = match a.multiline_start.or(f.multiline_start) {
            Some(re) => Some(
                regex::Regex::new(&re)
                    .map_err(|e| err("multiline_start", format!("'{re}' is not a regex: {e}")))?,
            ),
            None => None,
        };
        let mut tail = a.tail;
        if tail.is_empty() {
            tail = f.tail.unwrap_or_default();
        }
        for g in &tail {
            glob::Pattern::new(g).map_err(|e| err("tail", format!("'{g}' is not a glob: {e}")))?;
        }

        let heartbeat = {
            let checks = [
                a.health_url.or(f.health_url).map(HealthCheck::Url),
                a.health_tcp.or(f.health_tcp).map(HealthCheck::Tcp),
                a.health_cmd.or(f.health_cmd).map(HealthCheck::Cmd),
            ];
            let mut given: Vec<HealthCheck> = checks.into_iter().flatten().collect();
            if given.len() > 1 {
                return Err(err(
                    "health_url",
                    "give at most one of --health-url, --health-tcp, --health-cmd".into(),
                ));
            }
            let check = given.pop().unwrap_or(HealthCheck::None);
            if let HealthCheck::Url(u) = &check {
                if !(u.starts_with("http://") || u.starts_with("https://")) {
                    return Err(err("health_url", format!("'{u}' is not an http(s) URL")));
                }
            }
            let ttl = duration("ttl", a.ttl.or(f.ttl), "30s", secs(1), secs(86_400))?;
            let interval = duration(
                "heartbeat_interval",
                a.heartbeat_interval.or(f.heartbeat_interval),
                "10s",
                ms(100),
                secs(3600),
            )?;
            if interval >= ttl {
                return Err(err(
                    "heartbeat_interval",
                    format!("must be shorter than --ttl ({ttl:?}), or the lease expires between renewals"),
                ));
            }
            let health_timeout = duration(
                "health_timeout",
                a.health_timeout.or(f.health_timeout),
                "2s",
                ms(10),
                secs(60),
            )?;
            let healthy_after = a.healthy_after.or(f.healthy_after).unwrap_or(2);
            if !(1..=100).contains(&healthy_after) {
                return Err(err("healthy_after", "must be between 1 and 100".into()));
            }
            let instance = a.instance.or(f.instance);
            match a.service.or(f.service) {
                Some(service) => {
                    if service.trim().is_empty() {
                        return Err(err("service", "must not be empty".into()));
                    }
                    if instance.as_deref().is_some_and(|i| i.trim().is_empty()) {
                        return Err(err("instance", "must not be empty".into()));
                    }
                    Some(HeartbeatConfig {
                        service,
                        instance,
                        address: a
                            .advertise_address
                            .or(f.advertise_address)
                            .unwrap_or_default(),
                        ttl,
                        interval,
                        check,
                        health_timeout,
                        healthy_after,
                    })
                }
                None if check != HealthCheck::None => {
                    return Err(err("service", "a health check needs --service".into()))
                }
                None => None,
            }
        };

        Ok(Config {
            state_dir: a
                .state_dir
                .or(f.state_dir)
                .unwrap_or_else(|| PathBuf::from("./skein-agent-state")),
            otlp_grpc_addr: addr(
                "otlp_grpc_addr",
                a.otlp_grpc_addr.or(f.otlp_grpc_addr),
                "127.0.0.1:4317",
            )?,
            otlp_http_addr: addr(
                "otlp_http_addr",
                a.otlp_http_addr.or(f.otlp_http_addr),
                "127.0.0.1:4318",
            )?,
            admin_addr: addr(
                "admin_addr",
                a.admin_addr.or(f.admin_addr),
                "127.0.0.1:13133",
            )?,
            collector,
            collector_otlp,
            auth_token_file: a.auth_token_file.or(f.auth_token_file),
            collector_ca,
            heartbeat,
            tail,
            multiline_start,
            tail_poll_interval,
            batch_size,
            batch_timeout,
            buffer_max_bytes,
            buffer_fsync_interval,
            compression: a.compression.or(f.compression).unwrap_or(Compression::Gzip),
            export_timeout,
            max_request_bytes: usize::try_from(max_request_bytes)
                .map_err(|_| err("max_request_bytes", "too large for this platform".into()))?,
            max_attribute_bytes: usize::try_from(max_attribute_bytes)
                .map_err(|_| err("max_attribute_bytes", "too large for this platform".into()))?,
            log_format: a.log_format.or(f.log_format).unwrap_or(LogFormat::Text),
            log_level: a
                .log_level
                .or(f.log_level)
                .unwrap_or_else(|| "info".to_string()),
        })
    }
}

/// Validate an http(s) URL and drop a trailing slash.
fn url(key: &str, v: Option<String>, origin: &str) -> Result<Option<String>, ConfigError> {
    let Some(v) = v else { return Ok(None) };
    let parsed: Result<http::Uri, _> = v.parse();
    match parsed {
        Ok(u) if matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some() => {
            Ok(Some(v.trim_end_matches('/').to_string()))
        }
        _ => Err(ConfigError::Invalid {
            key: key.to_string(),
            origin: origin.to_string(),
            message: format!("'{v}' is not an http:// or https:// URL with a host"),
        }),
    }
}

/// `http://host:16686` → `http://host:4317` (same scheme and host).
fn derive_otlp(collector: &str) -> String {
    match collector.parse::<http::Uri>() {
        Ok(u) => {
            let scheme = u.scheme_str().unwrap_or("http");
            let host = u.host().unwrap_or("127.0.0.1");
            if host.contains(':') {
                format!("{scheme}://[{host}]:4317")
            } else {
                format!("{scheme}://{host}:4317")
            }
        }
        Err(_) => "http://127.0.0.1:4317".to_string(),
    }
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
mod tests;
