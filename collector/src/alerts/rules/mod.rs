//! Alert rules: the model ([`RuleGroup`], [`Rule`], [`RuleKind`]), YAML
//! parsing with line numbers and validation (`parse.rs`), the JSON shape the
//! API returns and persists (`json.rs`), and the set of loaded rules with
//! where each group came from ([`RuleSet`]).
//!
//! Rule files and API bodies go through the same parser, so both are
//! validated the same way. This module evaluates nothing (see `eval/`).

mod json;
mod parse;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub(crate) use parse::check_label_name;
pub use parse::{parse_group_list, parse_rule, RuleError};

use super::labels::Labels;
use super::template::Template;

/// Group interval when a rule is created through the API without one.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);

/// A named group of rules evaluated together every `interval`.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleGroup {
    pub name: String,
    pub interval: Duration,
    pub rules: Vec<Rule>,
}

/// One alerting rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// The `alertname` label.
    pub alert: String,
    pub kind: RuleKind,
    /// The service the rule watches (optional only for `log_match`).
    pub service: Option<String>,
    /// How long the condition must hold before the alert fires.
    pub for_: Duration,
    /// How long a firing alert keeps firing after the condition cleared.
    pub keep_firing_for: Duration,
    pub labels: Labels,
    /// Annotation templates, parsed.
    pub annotations: BTreeMap<String, Template>,
    /// Annotation templates as written (for the API and persistence).
    pub annotation_text: BTreeMap<String, String>,
}

/// What a rule measures; every kind fires when its value is above the
/// threshold (`too_few_instances`: below `min`).
#[derive(Debug, Clone, PartialEq)]
pub enum RuleKind {
    /// Per-service override of the built-in `InstanceStoppedRenewing`.
    InstanceDown,
    /// Fewer than `min` live instances of the service.
    TooFewInstances { min: u64 },
    /// Share of the service's spans with status ERROR over `window`.
    ErrorRate {
        threshold: f64,
        window: Duration,
        operation: Option<String>,
    },
    /// The `quantile` of span durations over `window`, in seconds.
    Latency {
        quantile: f64,
        threshold: Duration,
        window: Duration,
        operation: Option<String>,
    },
    /// Number of log records matching `query` over `window`.
    LogMatch {
        query: String,
        threshold: f64,
        window: Duration,
        min_severity: Option<i32>,
    },
}

impl RuleKind {
    pub fn name(&self) -> &'static str {
        match self {
            RuleKind::InstanceDown => "instance_down",
            RuleKind::TooFewInstances { .. } => "too_few_instances",
            RuleKind::ErrorRate { .. } => "error_rate",
            RuleKind::Latency { .. } => "latency",
            RuleKind::LogMatch { .. } => "log_match",
        }
    }
}

/// Where a group came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A `--rules` file (read-only through the API).
    File(PathBuf),
    /// Created through the API (persisted in the data dir).
    Api,
}

impl Origin {
    pub fn describe(&self) -> String {
        match self {
            Origin::File(p) => format!("file:{}", p.display()),
            Origin::Api => "api".into(),
        }
    }
}

/// Every loaded group with its origin. Group names are unique across origins.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RuleSet {
    pub groups: Vec<(Origin, RuleGroup)>,
}

impl RuleSet {
    /// Load every `--rules` file, then add the API groups; a duplicate group
    /// name is an error naming both places.
    pub fn load(files: &[PathBuf], api_groups: Vec<RuleGroup>) -> Result<RuleSet, RuleError> {
        let mut set = RuleSet::default();
        for path in files {
            for group in load_file(path)? {
                set.add(Origin::File(path.clone()), group)
                    .map_err(|message| RuleError::whole_file(path, "name", message))?;
            }
        }
        for group in api_groups {
            set.add(Origin::Api, group)
                .map_err(|message| RuleError::whole_file(Path::new("api"), "name", message))?;
        }
        Ok(set)
    }

    /// Add a group, refusing a duplicate name.
    pub fn add(&mut self, origin: Origin, group: RuleGroup) -> Result<(), String> {
        if let Some((other, _)) = self.groups.iter().find(|(_, g)| g.name == group.name) {
            return Err(format!(
                "group '{}' is already defined ({})",
                group.name,
                other.describe()
            ));
        }
        self.groups.push((origin, group));
        Ok(())
    }

    pub fn group(&self, name: &str) -> Option<&(Origin, RuleGroup)> {
        self.groups.iter().find(|(_, g)| g.name == name)
    }

    /// The groups created through the API.
    pub fn api_groups(&self) -> Vec<RuleGroup> {
        self.groups
            .iter()
            .filter(|(o, _)| *o == Origin::Api)
            .map(|(_, g)| g.clone())
            .collect()
    }

    /// `instance_down` overrides by service, with their group (the first
    /// one wins).
    pub fn instance_down_overrides(&self) -> BTreeMap<String, (String, Rule)> {
        let mut out = BTreeMap::new();
        for (_, g) in &self.groups {
            for r in &g.rules {
                if let (RuleKind::InstanceDown, Some(s)) = (&r.kind, &r.service) {
                    out.entry(s.clone()).or_insert((g.name.clone(), r.clone()));
                }
            }
        }
        out
    }
}

/// Read and parse one rule file.
pub fn load_file(path: &Path) -> Result<Vec<RuleGroup>, RuleError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| RuleError::whole_file(path, "-", format!("cannot read: {e}")))?;
    parse_group_list(&path.display().to_string(), &text)
}

pub use json::{group_to_json, rule_to_json, set_to_json};

#[cfg(test)]
mod tests;
