//! Rule YAML → [`RuleGroup`]/[`Rule`], with every error naming the file,
//! line, column and key (`groups[0].rules[2].threshold`). JSON bodies are
//! YAML too, so the API uses the same functions.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use marked_yaml::types::{MarkedMappingNode, MarkedScalarNode};
use marked_yaml::{Node, Span};

use super::{Rule, RuleGroup, RuleKind, DEFAULT_INTERVAL};
use crate::alerts::labels::Labels;
use crate::alerts::template::Template;

/// A rule that cannot be loaded, and exactly where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{column}: key '{key}': {message}")]
pub struct RuleError {
    pub file: String,
    /// 1-based; 0 when the problem is not tied to a line.
    pub line: usize,
    pub column: usize,
    pub key: String,
    pub message: String,
}

impl RuleError {
    pub fn whole_file(path: &Path, key: &str, message: impl Into<String>) -> Self {
        RuleError {
            file: path.display().to_string(),
            line: 0,
            column: 0,
            key: key.into(),
            message: message.into(),
        }
    }
}

/// Parse a rule file: `groups: [{name, interval, rules: [...]}]`.
pub fn parse_group_list(file: &str, text: &str) -> Result<Vec<RuleGroup>, RuleError> {
    let p = Parser { file };
    let root = p.load(text)?;
    p.only_keys(&root, "", &["groups"])?;
    let Some(groups) = root.get_node("groups") else {
        return Ok(Vec::new());
    };
    let seq = groups
        .as_sequence()
        .ok_or_else(|| p.err(groups.span(), "groups", "must be a list of groups"))?;
    let mut out: Vec<RuleGroup> = Vec::new();
    for (i, node) in seq.iter().enumerate() {
        let path = format!("groups[{i}]");
        let group = p.group(node, &path)?;
        if out.iter().any(|g| g.name == group.name) {
            return Err(p.err(
                node.span(),
                &format!("{path}.name"),
                format!("duplicate group name '{}'", group.name),
            ));
        }
        out.push(group);
    }
    Ok(out)
}

/// Parse one rule (an API body). `alert` may be left out and is then taken
/// from `alert_from_path`; if given it must match.
pub fn parse_rule(file: &str, text: &str, alert_from_path: &str) -> Result<Rule, RuleError> {
    let p = Parser { file };
    let root = p.load(text)?;
    p.rule(&root, "", Some(alert_from_path))
}

struct Parser<'a> {
    file: &'a str,
}

const RULE_KEYS: &[&str] = &[
    "alert",
    "kind",
    "service",
    "for",
    "keep_firing_for",
    "labels",
    "annotations",
];

impl Parser<'_> {
    fn err(&self, span: &Span, key: &str, message: impl Into<String>) -> RuleError {
        let (line, column) = span
            .start()
            .map(|m| (m.line(), m.column()))
            .unwrap_or((0, 0));
        RuleError {
            file: self.file.to_string(),
            line,
            column,
            key: key.to_string(),
            message: message.into(),
        }
    }

    fn load(&self, text: &str) -> Result<MarkedMappingNode, RuleError> {
        if text.trim().is_empty() {
            return Ok(MarkedMappingNode::new_empty(Span::new_blank()));
        }
        let options = marked_yaml::LoaderOptions::default().error_on_duplicate_keys(true);
        let node = marked_yaml::parse_yaml_with_options(0, text, options)
            .map_err(|e| load_error(self.file, &e))?;
        match node {
            Node::Mapping(m) => Ok(m),
            other => Err(self.err(other.span(), "-", "the document must be a mapping")),
        }
    }

    fn join(path: &str, key: &str) -> String {
        if path.is_empty() {
            key.to_string()
        } else {
            format!("{path}.{key}")
        }
    }

    fn only_keys(
        &self,
        map: &MarkedMappingNode,
        path: &str,
        allowed: &[&str],
    ) -> Result<(), RuleError> {
        for (k, _) in map.iter() {
            if !allowed.contains(&k.as_str()) {
                return Err(self.err(
                    k.span(),
                    &Self::join(path, k.as_str()),
                    format!("unknown key (allowed here: {})", allowed.join(", ")),
                ));
            }
        }
        Ok(())
    }

    fn scalar<'n>(
        &self,
        map: &'n MarkedMappingNode,
        path: &str,
        key: &str,
    ) -> Result<Option<&'n MarkedScalarNode>, RuleError> {
        match map.get_node(key) {
            None => Ok(None),
            Some(Node::Scalar(s)) => Ok(Some(s)),
            Some(other) => Err(self.err(
                other.span(),
                &Self::join(path, key),
                "must be a single value",
            )),
        }
    }

    fn required<'n>(
        &self,
        map: &'n MarkedMappingNode,
        path: &str,
        key: &str,
    ) -> Result<&'n MarkedScalarNode, RuleError> {
        self.scalar(map, path, key)?
            .ok_or_else(|| self.err(map.span(), &Self::join(path, key), "missing"))
    }

    fn string(
        &self,
        map: &MarkedMappingNode,
        path: &str,
        key: &str,
    ) -> Result<Option<String>, RuleError> {
        match self.scalar(map, path, key)? {
            None => Ok(None),
            Some(s) if s.as_str().trim().is_empty() => {
                Err(self.err(s.span(), &Self::join(path, key), "must not be empty"))
            }
            Some(s) => Ok(Some(s.as_str().to_string())),
        }
    }

    fn duration(
        &self,
        map: &MarkedMappingNode,
        path: &str,
        key: &str,
        default: Option<Duration>,
    ) -> Result<Duration, RuleError> {
        let Some(s) = self.scalar(map, path, key)? else {
            return default.ok_or_else(|| self.err(map.span(), &Self::join(path, key), "missing"));
        };
        humantime::parse_duration(s.as_str().trim()).map_err(|e| {
            self.err(
                s.span(),
                &Self::join(path, key),
                format!("'{}' is not a duration (e.g. 30s, 5m, 1h): {e}", s.as_str()),
            )
        })
    }

    fn number(&self, s: &MarkedScalarNode, path: &str, key: &str) -> Result<f64, RuleError> {
        s.as_str()
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| {
                self.err(
                    s.span(),
                    &Self::join(path, key),
                    format!("'{}' is not a number", s.as_str()),
                )
            })
    }

    fn string_map(
        &self,
        map: &MarkedMappingNode,
        path: &str,
        key: &str,
    ) -> Result<Vec<(MarkedScalarNode, String)>, RuleError> {
        let Some(node) = map.get_node(key) else {
            return Ok(Vec::new());
        };
        let m = node.as_mapping().ok_or_else(|| {
            self.err(
                node.span(),
                &Self::join(path, key),
                "must be a mapping of names to strings",
            )
        })?;
        let mut out = Vec::new();
        for (k, v) in m.iter() {
            let s = v.as_scalar().ok_or_else(|| {
                self.err(
                    v.span(),
                    &format!("{}.{}", Self::join(path, key), k.as_str()),
                    "must be a string",
                )
            })?;
            out.push((k.clone(), s.as_str().to_string()));
        }
        Ok(out)
    }

    fn group(&self, node: &Node, path: &str) -> Result<RuleGroup, RuleError> {
        let map = node.as_mapping().ok_or_else(|| {
            self.err(
                node.span(),
                path,
                "a group must be a mapping with name, interval, rules",
            )
        })?;
        // `source` and `editable` are what GET adds; they are read-only and ignored.
        self.only_keys(
            map,
            path,
            &["name", "interval", "rules", "source", "editable"],
        )?;
        let name_node = self.required(map, path, "name")?;
        let name = name_node.as_str().to_string();
        check_name(&name).map_err(|m| self.err(name_node.span(), &Self::join(path, "name"), m))?;
        let interval = self.duration(map, path, "interval", Some(DEFAULT_INTERVAL))?;
        check_interval(interval).map_err(|m| {
            let span = map
                .get_node("interval")
                .map(|n| *n.span())
                .unwrap_or(*map.span());
            self.err(&span, &Self::join(path, "interval"), m)
        })?;
        let mut rules: Vec<Rule> = Vec::new();
        if let Some(list) = map.get_node("rules") {
            let seq = list.as_sequence().ok_or_else(|| {
                self.err(
                    list.span(),
                    &Self::join(path, "rules"),
                    "must be a list of rules",
                )
            })?;
            for (i, r) in seq.iter().enumerate() {
                let rpath = format!("{path}.rules[{i}]");
                let m = r
                    .as_mapping()
                    .ok_or_else(|| self.err(r.span(), &rpath, "a rule must be a mapping"))?;
                let rule = self.rule(m, &rpath, None)?;
                if rules.iter().any(|x| x.alert == rule.alert) {
                    return Err(self.err(
                        r.span(),
                        &format!("{rpath}.alert"),
                        format!("duplicate alert '{}' in group '{name}'", rule.alert),
                    ));
                }
                rules.push(rule);
            }
        }
        Ok(RuleGroup {
            name,
            interval,
            rules,
        })
    }

    fn rule(
        &self,
        map: &MarkedMappingNode,
        path: &str,
        alert_from_path: Option<&str>,
    ) -> Result<Rule, RuleError> {
        let kind_node = self.required(map, path, "kind")?;
        let kind_key = Self::join(path, "kind");
        let extra: &[&str] = match kind_node.as_str() {
            "instance_down" => &[],
            "too_few_instances" => &["min"],
            "error_rate" => &["threshold", "window", "operation"],
            "latency" => &["quantile", "threshold", "window", "operation"],
            "log_match" => &["query", "threshold", "window", "min_severity"],
            other => {
                return Err(self.err(
                    kind_node.span(),
                    &kind_key,
                    format!("unknown kind '{other}' (instance_down, too_few_instances, error_rate, latency, log_match)"),
                ))
            }
        };
        let allowed: Vec<&str> = RULE_KEYS.iter().chain(extra.iter()).copied().collect();
        self.only_keys(map, path, &allowed)?;

        let alert = match (self.scalar(map, path, "alert")?, alert_from_path) {
            (Some(s), Some(from_path)) if s.as_str() != from_path => {
                return Err(self.err(
                    s.span(),
                    &Self::join(path, "alert"),
                    format!(
                        "'{}' differs from the name in the URL '{from_path}'",
                        s.as_str()
                    ),
                ))
            }
            (Some(s), _) => {
                check_name(s.as_str())
                    .map_err(|m| self.err(s.span(), &Self::join(path, "alert"), m))?;
                s.as_str().to_string()
            }
            (None, Some(from_path)) => from_path.to_string(),
            (None, None) => {
                return Err(self.err(map.span(), &Self::join(path, "alert"), "missing"))
            }
        };
        let service = self.string(map, path, "service")?;
        let kind = self.kind(map, path, kind_node.as_str())?;
        if service.is_none() && !matches!(kind, RuleKind::LogMatch { .. }) {
            return Err(self.err(
                map.span(),
                &Self::join(path, "service"),
                format!("missing (required for kind {})", kind.name()),
            ));
        }
        let for_ = self.duration(map, path, "for", Some(Duration::ZERO))?;
        let keep_firing_for = self.duration(map, path, "keep_firing_for", Some(Duration::ZERO))?;

        let mut labels = Labels::new();
        for (k, v) in self.string_map(map, path, "labels")? {
            let key = format!("{}.{}", Self::join(path, "labels"), k.as_str());
            check_label_name(k.as_str()).map_err(|m| self.err(k.span(), &key, m))?;
            if k.as_str() == "alertname" {
                return Err(self.err(k.span(), &key, "alertname is set from 'alert'"));
            }
            labels.insert(k.as_str().to_string(), v);
        }
        let mut annotations = BTreeMap::new();
        let mut annotation_text = BTreeMap::new();
        for (k, v) in self.string_map(map, path, "annotations")? {
            let key = format!("{}.{}", Self::join(path, "annotations"), k.as_str());
            check_label_name(k.as_str()).map_err(|m| self.err(k.span(), &key, m))?;
            let t = Template::parse(&v).map_err(|m| self.err(k.span(), &key, m))?;
            annotations.insert(k.as_str().to_string(), t);
            annotation_text.insert(k.as_str().to_string(), v);
        }
        Ok(Rule {
            alert,
            kind,
            service,
            for_,
            keep_firing_for,
            labels,
            annotations,
            annotation_text,
        })
    }

    fn kind(&self, map: &MarkedMappingNode, path: &str, kind: &str) -> Result<RuleKind, RuleError> {
        let window = |p: &Self| -> Result<Duration, RuleError> {
            let w = p.duration(map, path, "window", None)?;
            if w < Duration::from_secs(1) || w > Duration::from_secs(7 * 86_400) {
                let span = map
                    .get_node("window")
                    .map(|n| *n.span())
                    .unwrap_or(*map.span());
                return Err(p.err(
                    &span,
                    &Self::join(path, "window"),
                    "must be between 1s and 7d",
                ));
            }
            Ok(w)
        };
        let threshold = |p: &Self, lo: f64, hi: f64| -> Result<f64, RuleError> {
            let s = p.required(map, path, "threshold")?;
            let v = p.number(s, path, "threshold")?;
            if !(lo..=hi).contains(&v) {
                return Err(p.err(
                    s.span(),
                    &Self::join(path, "threshold"),
                    format!("must be between {lo} and {hi}"),
                ));
            }
            Ok(v)
        };
        Ok(match kind {
            "instance_down" => RuleKind::InstanceDown,
            "too_few_instances" => {
                let s = self.required(map, path, "min")?;
                let min = s
                    .as_str()
                    .trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|m| *m >= 1)
                    .ok_or_else(|| {
                        self.err(
                            s.span(),
                            &Self::join(path, "min"),
                            format!("'{}' is not a whole number of at least 1", s.as_str()),
                        )
                    })?;
                RuleKind::TooFewInstances { min }
            }
            "error_rate" => RuleKind::ErrorRate {
                threshold: threshold(self, 0.0, 1.0)?,
                window: window(self)?,
                operation: self.string(map, path, "operation")?,
            },
            "latency" => {
                let q = self.required(map, path, "quantile")?;
                let quantile = self.number(q, path, "quantile")?;
                if !(quantile > 0.0 && quantile <= 1.0) {
                    return Err(self.err(
                        q.span(),
                        &Self::join(path, "quantile"),
                        "must be above 0 and at most 1 (e.g. 0.99)",
                    ));
                }
                let t = self.required(map, path, "threshold")?;
                let text = t.as_str().trim();
                let threshold = match text.parse::<f64>() {
                    Ok(secs) if secs.is_finite() && secs >= 0.0 => Duration::from_secs_f64(secs),
                    _ => humantime::parse_duration(text).map_err(|_| {
                        self.err(
                            t.span(),
                            &Self::join(path, "threshold"),
                            format!(
                                "'{text}' is not a duration (e.g. 300ms) or a number of seconds"
                            ),
                        )
                    })?,
                };
                RuleKind::Latency {
                    quantile,
                    threshold,
                    window: window(self)?,
                    operation: self.string(map, path, "operation")?,
                }
            }
            _ => {
                let query = self
                    .string(map, path, "query")?
                    .ok_or_else(|| self.err(map.span(), &Self::join(path, "query"), "missing"))?;
                let min_severity = match self.scalar(map, path, "min_severity")? {
                    None => None,
                    Some(s) => Some(parse_severity(s.as_str()).ok_or_else(|| {
                        self.err(s.span(), &Self::join(path, "min_severity"), format!("'{}' is not a severity (trace, debug, info, warn, error, fatal or 1-24)", s.as_str()))
                    })?),
                };
                RuleKind::LogMatch {
                    query,
                    threshold: threshold(self, 0.0, f64::MAX)?,
                    window: window(self)?,
                    min_severity,
                }
            }
        })
    }
}

fn load_error(file: &str, e: &marked_yaml::LoadError) -> RuleError {
    use marked_yaml::LoadError as L;
    let marker = match e {
        L::TopLevelMustBeMapping(m)
        | L::UnexpectedAnchor(m)
        | L::MappingKeyMustBeScalar(m)
        | L::UnexpectedTag(m)
        | L::ScanError(m, _) => Some(*m),
        L::DuplicateKey(d) => d.key.span().start().copied(),
        _ => None,
    };
    let (line, column) = marker.map(|m| (m.line(), m.column())).unwrap_or((0, 0));
    RuleError {
        file: file.to_string(),
        line,
        column,
        key: "-".into(),
        message: format!("not valid YAML: {e}"),
    }
}

/// Group and alert names: non-empty, no `/` (they appear in URL paths).
fn check_name(name: &str) -> Result<(), String> {
    if name.trim().is_empty() {
        return Err("must not be empty".into());
    }
    if name.len() > 200 || name.contains('/') || name.chars().any(char::is_control) {
        return Err(format!(
            "'{name}' is not a valid name (at most 200 characters, no '/')"
        ));
    }
    Ok(())
}

fn check_interval(d: Duration) -> Result<(), String> {
    if d < Duration::from_millis(100) || d > Duration::from_secs(3600) {
        return Err("must be between 100ms and 1h".into());
    }
    Ok(())
}

/// Prometheus label names: `[a-zA-Z_][a-zA-Z0-9_]*`.
pub(crate) fn check_label_name(name: &str) -> Result<(), String> {
    let ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "'{name}' is not a label name ([a-zA-Z_][a-zA-Z0-9_]*)"
        ))
    }
}

/// `error`, `WARN`, `17` → OTLP severity number.
pub(crate) fn parse_severity(s: &str) -> Option<i32> {
    let s = s.trim();
    if let Ok(n) = s.parse::<i32>() {
        return (1..=24).contains(&n).then_some(n);
    }
    Some(match s.to_ascii_lowercase().as_str() {
        "trace" => 1,
        "debug" => 5,
        "info" => 9,
        "warn" | "warning" => 13,
        "error" => 17,
        "fatal" => 21,
        _ => return None,
    })
}
