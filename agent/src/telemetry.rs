//! Process-wide telemetry plumbing: the Prometheus registry every module
//! registers its metrics on, and the `tracing` subscriber set-up.
//!
//! Modules declare their own metrics in their `metrics.rs`; this module owns
//! only the registry and the text encoder, never individual metric names.

pub use prometheus::Registry;

/// Encode every metric in `registry` in the Prometheus text format 0.0.4.
pub fn encode_text(registry: &Registry) -> Result<String, prometheus::Error> {
    use prometheus::Encoder;
    let mut buf = Vec::with_capacity(16 * 1024);
    prometheus::TextEncoder::new().encode(&registry.gather(), &mut buf)?;
    String::from_utf8(buf).map_err(|e| prometheus::Error::Msg(e.to_string()))
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// Install the global `tracing` subscriber. `filter` uses `RUST_LOG` syntax.
pub fn init_tracing(format: LogFormat, filter: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Register a counter vector on `registry`.
pub fn counter(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> Result<prometheus::IntCounterVec, prometheus::Error> {
    let c = prometheus::IntCounterVec::new(prometheus::Opts::new(name, help), labels)?;
    registry.register(Box::new(c.clone()))?;
    Ok(c)
}

/// Register a gauge vector on `registry`.
pub fn gauge(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> Result<prometheus::IntGaugeVec, prometheus::Error> {
    let g = prometheus::IntGaugeVec::new(prometheus::Opts::new(name, help), labels)?;
    registry.register(Box::new(g.clone()))?;
    Ok(g)
}

/// Register a plain gauge on `registry`.
pub fn gauge1(
    registry: &Registry,
    name: &str,
    help: &str,
) -> Result<prometheus::IntGauge, prometheus::Error> {
    let g = prometheus::IntGauge::new(name, help)?;
    registry.register(Box::new(g.clone()))?;
    Ok(g)
}

/// Latency buckets (seconds) of the agent's histograms: 0.2 ms to 1 s.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];

/// Register a histogram vector with [`LATENCY_BUCKETS`] on `registry`.
pub fn histogram(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> Result<prometheus::HistogramVec, prometheus::Error> {
    let h = prometheus::HistogramVec::new(
        prometheus::HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec()),
        labels,
    )?;
    registry.register(Box::new(h.clone()))?;
    Ok(h)
}
