//! Alerting: rules (built-in liveness rules and user rules from `--rules`
//! files and the API), evaluation with `for`/`keep_firing_for`, history,
//! silences, and notifications to webhooks (Alertmanager payload v4) and to
//! real Alertmanagers (`/api/v2/alerts`).
//!
//! ```text
//! source.rs   traits it reads: LivenessSource (registry view + events), CallersSource (dependency graph)
//! clock.rs    injectable clock (Unix ms), RFC 3339 formatting
//! labels.rs   label sets, Alertmanager-compatible fingerprints
//! template.rs {{ $labels.x }} / {{ $value }} annotation templates
//! rules/      rule model, YAML parsing with line numbers, JSON shape
//! eval/       Engine (schedule, rule kinds), state machine, liveness + mass expiry, store inputs
//! notify/     grouping/repeat (dispatch), payloads, bounded delivery queues with retries
//! silences.rs history.rs persist.rs   state kept in <data-dir>/alerts/
//! handle.rs   Alerts: the shared handle the HTTP API uses (rules CRUD, reload, alerts, silences)
//! task.rs     the evaluation task (its own tokio task, cancelled with the pipeline)
//! metrics.rs  skein_alerts{state,alertname}, skein_notifications_total{receiver,result}, …
//! ```
//!
//! Owns nothing outside `<data-dir>/alerts/`; reads spans and logs only
//! through `query::{TraceStore, LogStore}` and the registry only through
//! [`source::LivenessSource`]. Must not touch the registry, the WAL or the index.

pub mod clock;
pub mod eval;
pub mod handle;
pub mod history;
pub mod labels;
pub mod metrics;
pub mod notify;
pub mod persist;
pub mod rules;
pub mod silences;
pub mod source;
pub mod task;
pub mod template;

use std::path::PathBuf;
use std::time::Duration;

pub use eval::liveness::MassExpiryConfig;
pub use handle::{Alerts, AlertsError};
pub use source::{CallersSource, LivenessSource, NoCallers, NoLiveness};
pub use task::reload_signal;

/// Alerting settings (validated by `config.rs`).
#[derive(Debug, Clone, PartialEq)]
pub struct AlertsConfig {
    /// `--rules` files.
    pub rule_files: Vec<PathBuf>,
    /// `<data-dir>/alerts`: API rules, silences, history.
    pub state_dir: PathBuf,
    pub webhooks: Vec<String>,
    /// Alertmanager base URLs (`/api/v2/alerts` is appended).
    pub alertmanagers: Vec<String>,
    pub group_wait: Duration,
    pub repeat_interval: Duration,
    pub watchdog: bool,
    pub mass: MassExpiryConfig,
    /// How often the built-in liveness rules run (registry events also wake them).
    pub liveness_interval: Duration,
    /// Base URL of this collector's UI/API for links (`generatorURL`, `last_trace`).
    pub external_url: String,
}

impl AlertsConfig {
    /// Defaults (tests and embedding).
    pub fn new(state_dir: PathBuf, external_url: String) -> Self {
        AlertsConfig {
            rule_files: Vec::new(),
            state_dir,
            webhooks: Vec::new(),
            alertmanagers: Vec::new(),
            group_wait: Duration::from_secs(5),
            repeat_interval: Duration::from_secs(4 * 3600),
            watchdog: false,
            mass: MassExpiryConfig {
                ratio: 0.3,
                window_ms: 30_000,
                hold_ms: 300_000,
            },
            liveness_interval: Duration::from_secs(1),
            external_url,
        }
    }

    /// The receivers: `webhook-N` and `alertmanager-N`.
    pub fn receivers(&self) -> Vec<notify::Receiver> {
        let mut out = Vec::new();
        for (i, url) in self.webhooks.iter().enumerate() {
            out.push(notify::Receiver {
                name: format!("webhook-{i}"),
                kind: notify::ReceiverKind::Webhook,
                url: url.clone(),
            });
        }
        for (i, url) in self.alertmanagers.iter().enumerate() {
            out.push(notify::Receiver {
                name: format!("alertmanager-{i}"),
                kind: notify::ReceiverKind::Alertmanager,
                url: format!("{}/api/v2/alerts", url.trim_end_matches('/')),
            });
        }
        out
    }
}

/// The running alerting: its handle (for the API) and its tasks.
pub struct AlertsRunning {
    pub alerts: Alerts,
    pub tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Load the rules (an invalid file is an error naming file, line and key),
/// start the delivery workers and the evaluation task, which reloads the
/// rules on `hup` (from [`reload_signal`]). Everything stops when `cancel`
/// fires.
pub fn start(
    cfg: AlertsConfig,
    deps: eval::EngineDeps,
    registry: &prometheus::Registry,
    hup: Option<tokio::signal::unix::Signal>,
    cancel: tokio_util::sync::CancellationToken,
) -> Result<AlertsRunning, AlertsError> {
    let metrics = metrics::AlertMetrics::register(registry)?;
    let receivers = cfg.receivers();
    let (alerts, rules_rx) = Alerts::open(
        cfg,
        std::sync::Arc::new(clock::SystemClock),
        metrics.clone(),
    )?;
    let (outbox, mut tasks) = notify::Outbox::spawn(receivers, metrics, cancel.clone())?;
    tasks.push(task::spawn(
        alerts.clone(),
        deps,
        rules_rx,
        outbox,
        hup,
        cancel,
    ));
    Ok(AlertsRunning { alerts, tasks })
}
