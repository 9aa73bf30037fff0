//! [`Alerts`]: the shared handle over the alerting state, used by the HTTP
//! API and the evaluation task. Rule changes (API edits, reloads) are
//! validated here, persisted, and handed to the task through a watch channel
//! (the newest rule set wins); active alerts are a snapshot the task
//! publishes after each evaluation.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::watch;

use super::clock::Clock;
use super::eval::state::Alert;
use super::history::{History, HistoryEntry};
use super::metrics::AlertMetrics;
use super::rules::{self, Origin, Rule, RuleError, RuleGroup, RuleSet, DEFAULT_INTERVAL};
use super::silences::{Silence, SilenceError, SilenceInput, Silences};
use super::AlertsConfig;

/// What can go wrong, mapped to HTTP statuses by the API.
#[derive(Debug, thiserror::Error)]
pub enum AlertsError {
    #[error("rules: {0}")]
    Rules(#[from] RuleError),
    #[error("{0}")]
    Silence(#[from] SilenceError),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{path}: {message}")]
    Io { path: String, message: String },
    #[error("registering alert metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("building the notification HTTP client: {0}")]
    Http(#[from] reqwest::Error),
}

/// The outcome of the last rule load.
#[derive(Debug, Clone, PartialEq)]
pub struct ReloadStatus {
    pub ok: bool,
    pub error: Option<String>,
    pub at_ms: u64,
}

struct Shared {
    rules: RuleSet,
    active: Vec<Alert>,
    history: History,
    silences: Silences,
    reload: ReloadStatus,
    failures: BTreeMap<String, String>,
}

struct Inner {
    cfg: AlertsConfig,
    clock: Arc<dyn Clock>,
    metrics: AlertMetrics,
    shared: Mutex<Shared>,
    /// Serialises rule edits and reloads (read, validate, persist, publish).
    edit: Mutex<()>,
    rules_tx: watch::Sender<RuleSet>,
    seq: AtomicU64,
}

/// Cheap to clone; all clones share the state.
#[derive(Clone)]
pub struct Alerts {
    inner: Arc<Inner>,
}

impl Alerts {
    /// Load rule files, API rules, silences and history. Any invalid rule
    /// file is an error naming the file, line and key.
    pub fn open(
        cfg: AlertsConfig,
        clock: Arc<dyn Clock>,
        metrics: AlertMetrics,
    ) -> Result<(Alerts, watch::Receiver<RuleSet>), AlertsError> {
        let io = |path: &PathBuf, e: std::io::Error| AlertsError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        };
        std::fs::create_dir_all(&cfg.state_dir).map_err(|e| io(&cfg.state_dir, e))?;
        let api_groups = load_api_rules(&api_rules_path(&cfg))?;
        let rules = RuleSet::load(&cfg.rule_files, api_groups)?;
        let silences = Silences::open(cfg.state_dir.join("silences.json"))?;
        let history_path = cfg.state_dir.join("history.jsonl");
        let history = History::open(history_path.clone()).map_err(|e| io(&history_path, e))?;
        let now = clock.now_ms();
        let (rules_tx, rules_rx) = watch::channel(rules.clone());
        let shared = Shared {
            rules,
            active: Vec::new(),
            history,
            silences,
            reload: ReloadStatus {
                ok: true,
                error: None,
                at_ms: now,
            },
            failures: BTreeMap::new(),
        };
        let inner = Inner {
            cfg,
            clock,
            metrics,
            shared: Mutex::new(shared),
            edit: Mutex::new(()),
            rules_tx,
            seq: AtomicU64::new(0),
        };
        Ok((
            Alerts {
                inner: Arc::new(inner),
            },
            rules_rx,
        ))
    }

    pub fn config(&self) -> &AlertsConfig {
        &self.inner.cfg
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    pub fn metrics(&self) -> &AlertMetrics {
        &self.inner.metrics
    }

    pub fn now_ms(&self) -> u64 {
        self.inner.clock.now_ms()
    }

    // ---- rules ---------------------------------------------------------

    pub fn rules(&self) -> RuleSet {
        self.inner.shared.lock().rules.clone()
    }

    pub fn reload_status(&self) -> ReloadStatus {
        self.inner.shared.lock().reload.clone()
    }

    /// Re-read the rule files and the API rules. On error the old rules stay
    /// in force and the error is kept for the API and the metric.
    pub fn reload(&self) -> Result<(), RuleError> {
        let _edit = self.inner.edit.lock();
        let now = self.now_ms();
        let result = load_api_rules(&api_rules_path(&self.inner.cfg))
            .map_err(|e| match e {
                AlertsError::Rules(r) => r,
                other => {
                    RuleError::whole_file(&api_rules_path(&self.inner.cfg), "-", other.to_string())
                }
            })
            .and_then(|api| RuleSet::load(&self.inner.cfg.rule_files, api));
        let m = &self.inner.metrics;
        match result {
            Ok(set) => {
                m.reloads.with_label_values(&["success"]).inc();
                m.rules_valid.set(1);
                let mut s = self.inner.shared.lock();
                s.reload = ReloadStatus {
                    ok: true,
                    error: None,
                    at_ms: now,
                };
                s.rules = set.clone();
                drop(s);
                self.inner.rules_tx.send_replace(set);
                tracing::info!("alert rules reloaded");
                Ok(())
            }
            Err(e) => {
                m.reloads.with_label_values(&["failure"]).inc();
                m.rules_valid.set(0);
                tracing::error!("alert rule reload failed, keeping the previous rules: {e}");
                self.inner.shared.lock().reload = ReloadStatus {
                    ok: false,
                    error: Some(e.to_string()),
                    at_ms: now,
                };
                Err(e)
            }
        }
    }

    /// Replace every API-managed group with the groups in `text`.
    pub fn put_api_groups(&self, text: &str) -> Result<(), AlertsError> {
        let groups = rules::parse_group_list("request body", text)?;
        self.edit_api(|_| Ok(groups))
    }

    /// Create or replace one rule of an API-managed group (created with
    /// `interval`, default 1m, if missing).
    pub fn put_rule(
        &self,
        group: &str,
        alert: &str,
        text: &str,
        interval: Option<std::time::Duration>,
    ) -> Result<(), AlertsError> {
        let rule = rules::parse_rule("request body", text, alert)?;
        let group_name = group.to_string();
        self.edit_api(move |mut groups| {
            match groups.iter_mut().find(|g| g.name == group_name) {
                Some(g) => {
                    if let Some(i) = interval {
                        g.interval = i;
                    }
                    match g.rules.iter_mut().find(|r| r.alert == rule.alert) {
                        Some(r) => *r = rule,
                        None => g.rules.push(rule),
                    }
                }
                None => groups.push(RuleGroup {
                    name: group_name,
                    interval: interval.unwrap_or(DEFAULT_INTERVAL),
                    rules: vec![rule],
                }),
            }
            Ok(groups)
        })
    }

    /// Delete one rule (and its group when it was the last one).
    pub fn delete_rule(&self, group: &str, alert: &str) -> Result<(), AlertsError> {
        self.edit_api(|mut groups| {
            let g = groups
                .iter_mut()
                .find(|g| g.name == group)
                .ok_or_else(|| AlertsError::NotFound(format!("no rule group '{group}'")))?;
            let before = g.rules.len();
            g.rules.retain(|r| r.alert != alert);
            if g.rules.len() == before {
                return Err(AlertsError::NotFound(format!(
                    "no rule '{alert}' in group '{group}'"
                )));
            }
            groups.retain(|g| !g.rules.is_empty());
            Ok(groups)
        })
    }

    /// Delete every API-managed group.
    pub fn delete_api_groups(&self) -> Result<(), AlertsError> {
        self.edit_api(|_| Ok(Vec::new()))
    }

    /// One rule, with its group and origin.
    pub fn rule(&self, group: &str, alert: &str) -> Result<(Origin, RuleGroup, Rule), AlertsError> {
        let set = self.rules();
        let (origin, g) = set
            .group(group)
            .cloned()
            .ok_or_else(|| AlertsError::NotFound(format!("no rule group '{group}'")))?;
        let r = g
            .rules
            .iter()
            .find(|r| r.alert == alert)
            .cloned()
            .ok_or_else(|| {
                AlertsError::NotFound(format!("no rule '{alert}' in group '{group}'"))
            })?;
        Ok((origin, g, r))
    }

    /// Apply `f` to the API groups, check the result against the file
    /// groups, persist it and publish the new rule set.
    fn edit_api(
        &self,
        f: impl FnOnce(Vec<RuleGroup>) -> Result<Vec<RuleGroup>, AlertsError>,
    ) -> Result<(), AlertsError> {
        let _edit = self.inner.edit.lock();
        let current = self.rules();
        let groups = f(current.api_groups())?;
        let mut set = RuleSet::default();
        for (origin, g) in current.groups.iter().filter(|(o, _)| *o != Origin::Api) {
            set.groups.push((origin.clone(), g.clone()));
        }
        for g in groups {
            if let Some((Origin::File(p), _)) = set.group(&g.name) {
                return Err(AlertsError::Conflict(format!(
                    "group '{}' is defined in the rule file {}; edit the file and reload",
                    g.name,
                    p.display()
                )));
            }
            set.add(Origin::Api, g).map_err(AlertsError::Conflict)?;
        }
        let path = api_rules_path(&self.inner.cfg);
        let api: Vec<serde_json::Value> =
            set.api_groups().iter().map(rules::group_to_json).collect();
        super::persist::write_json(&path, &serde_json::json!({ "groups": api })).map_err(|e| {
            AlertsError::Io {
                path: path.display().to_string(),
                message: e.to_string(),
            }
        })?;
        self.inner.shared.lock().rules = set.clone();
        self.inner.rules_tx.send_replace(set);
        Ok(())
    }

    // ---- alerts and history ---------------------------------------------

    /// Active alerts with the ids of the silences that mute each.
    pub fn alerts(&self) -> Vec<(Alert, Vec<String>)> {
        let now = self.now_ms();
        let s = self.inner.shared.lock();
        s.active
            .iter()
            .map(|a| (a.clone(), s.silences.silenced_by(&a.labels, now)))
            .collect()
    }

    pub fn history(&self, start_ms: u64, end_ms: u64) -> Vec<HistoryEntry> {
        self.inner.shared.lock().history.between(start_ms, end_ms)
    }

    /// Groups whose last evaluation failed.
    pub fn eval_failures(&self) -> BTreeMap<String, String> {
        self.inner.shared.lock().failures.clone()
    }

    /// Publish an evaluation's results (the task calls this).
    pub(crate) fn publish(
        &self,
        active: Vec<Alert>,
        finished: Vec<HistoryEntry>,
        failures: BTreeMap<String, String>,
    ) {
        self.inner.metrics.set_active(&active);
        let mut s = self.inner.shared.lock();
        s.active = active;
        for e in finished {
            s.history.push(e);
        }
        s.failures = failures;
    }

    /// Firing/pending alerts paired with "is silenced" (the task's view).
    pub(crate) fn with_silences(&self, alerts: &[Alert], now_ms: u64) -> Vec<(Alert, bool)> {
        let s = self.inner.shared.lock();
        alerts
            .iter()
            .map(|a| {
                (
                    a.clone(),
                    !s.silences.silenced_by(&a.labels, now_ms).is_empty(),
                )
            })
            .collect()
    }

    // ---- silences ---------------------------------------------------------

    pub fn silences(&self) -> Vec<Silence> {
        self.inner.shared.lock().silences.list()
    }

    pub fn silence(&self, id: &str) -> Option<Silence> {
        self.inner.shared.lock().silences.get(id)
    }

    pub fn post_silence(&self, input: SilenceInput) -> Result<String, AlertsError> {
        let now = self.now_ms();
        let id = format!(
            "{now:012x}-{:06x}",
            self.inner.seq.fetch_add(1, Ordering::Relaxed)
        );
        Ok(self.inner.shared.lock().silences.upsert(input, now, id)?)
    }

    pub fn expire_silence(&self, id: &str) -> Result<(), AlertsError> {
        let now = self.now_ms();
        self.inner
            .shared
            .lock()
            .silences
            .expire(id, now)
            .map_err(|e| match e {
                SilenceError::NotFound(m) => {
                    AlertsError::NotFound(format!("no silence with id '{m}'"))
                }
                other => other.into(),
            })
    }
}

fn api_rules_path(cfg: &AlertsConfig) -> PathBuf {
    cfg.state_dir.join("rules.json")
}

fn load_api_rules(path: &std::path::Path) -> Result<Vec<RuleGroup>, AlertsError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(rules::parse_group_list(&path.display().to_string(), &text)?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(AlertsError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        }),
    }
}
