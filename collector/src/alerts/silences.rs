//! Silences in Alertmanager's shape: matchers (`name`, `value`, `isRegex`,
//! `isEqual`; regexes anchored like Alertmanager's), a time window, creator
//! and comment. A silenced alert is still evaluated and listed, but not
//! notified. `DELETE` expires a silence (it stays listed); expired silences
//! are pruned only [`EXPIRED_RETENTION_MS`] after they ended, with a log line.
//! Persisted as JSON in the data dir (written atomically).

use std::path::PathBuf;

use regex::Regex;
use serde::{Deserialize, Serialize};

use super::clock::rfc3339;
use super::labels::Labels;
use super::rules::check_label_name;

/// At most this many silences are kept (active, pending and expired).
pub const MAX_SILENCES: usize = 10_000;
/// Expired silences are kept this long after they ended.
pub const EXPIRED_RETENTION_MS: u64 = 30 * 86_400 * 1000;

#[derive(Debug, thiserror::Error)]
pub enum SilenceError {
    #[error("invalid silence: {0}")]
    Invalid(String),
    #[error("no silence with id '{0}'")]
    NotFound(String),
    #[error("too many silences (at most {MAX_SILENCES}); expire some first")]
    Full,
    #[error("saving silences to {path}: {message}")]
    Io { path: String, message: String },
}

/// One matcher as the API reads and writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Matcher {
    pub name: String,
    pub value: String,
    #[serde(default)]
    pub is_regex: bool,
    #[serde(default = "yes")]
    pub is_equal: bool,
}

fn yes() -> bool {
    true
}

/// A new silence as posted.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SilenceInput {
    /// Present when updating: Alertmanager's clients post the id back.
    #[serde(default)]
    pub id: Option<String>,
    pub matchers: Vec<Matcher>,
    #[serde(default)]
    pub starts_at: Option<String>,
    pub ends_at: String,
    pub created_by: String,
    pub comment: String,
}

/// A stored silence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Silence {
    pub id: String,
    pub matchers: Vec<Matcher>,
    pub starts_at_ms: u64,
    pub ends_at_ms: u64,
    pub created_by: String,
    pub comment: String,
    pub updated_at_ms: u64,
}

impl Silence {
    pub fn state(&self, now_ms: u64) -> &'static str {
        if now_ms >= self.ends_at_ms {
            "expired"
        } else if now_ms < self.starts_at_ms {
            "pending"
        } else {
            "active"
        }
    }

    /// The API shape (Alertmanager's `gettableSilence`).
    pub fn to_json(&self, now_ms: u64) -> serde_json::Value {
        serde_json::json!({
            "id": self.id,
            "matchers": self.matchers,
            "startsAt": rfc3339(self.starts_at_ms),
            "endsAt": rfc3339(self.ends_at_ms),
            "updatedAt": rfc3339(self.updated_at_ms),
            "createdBy": self.created_by,
            "comment": self.comment,
            "status": { "state": self.state(now_ms) },
        })
    }
}

/// A compiled matcher.
#[derive(Debug, Clone)]
struct Compiled {
    name: String,
    value: String,
    regex: Option<Regex>,
    is_equal: bool,
}

impl Compiled {
    fn new(m: &Matcher) -> Result<Compiled, String> {
        check_label_name(&m.name)?;
        let regex = if m.is_regex {
            Some(
                Regex::new(&format!("^(?:{})$", m.value))
                    .map_err(|e| format!("matcher '{}': bad regex: {e}", m.name))?,
            )
        } else {
            None
        };
        Ok(Compiled {
            name: m.name.clone(),
            value: m.value.clone(),
            regex,
            is_equal: m.is_equal,
        })
    }

    /// A missing label matches as the empty string (Alertmanager's rule).
    fn matches(&self, labels: &Labels) -> bool {
        let v = labels.get(&self.name).map(String::as_str).unwrap_or("");
        let hit = match &self.regex {
            Some(r) => r.is_match(v),
            None => v == self.value,
        };
        hit == self.is_equal
    }
}

/// Every silence, persisted in `path`.
#[derive(Debug)]
pub struct Silences {
    path: PathBuf,
    list: Vec<(Silence, Vec<Compiled>)>,
}

impl Silences {
    /// Load from `path` (missing file: none).
    pub fn open(path: PathBuf) -> Result<Silences, SilenceError> {
        let io = |e: std::io::Error| SilenceError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        };
        let stored: Vec<Silence> = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| SilenceError::Io {
                path: path.display().to_string(),
                message: format!("not a silences file: {e}"),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io(e)),
        };
        let mut list = Vec::new();
        for s in stored {
            let compiled = s
                .matchers
                .iter()
                .map(Compiled::new)
                .collect::<Result<Vec<_>, _>>()
                .map_err(SilenceError::Invalid)?;
            list.push((s, compiled));
        }
        Ok(Silences { path, list })
    }

    pub fn list(&self) -> Vec<Silence> {
        self.list.iter().map(|(s, _)| s.clone()).collect()
    }

    pub fn get(&self, id: &str) -> Option<Silence> {
        self.list
            .iter()
            .find(|(s, _)| s.id == id)
            .map(|(s, _)| s.clone())
    }

    /// Create (or, with a known `id`, replace) a silence; returns its id.
    pub fn upsert(
        &mut self,
        input: SilenceInput,
        now_ms: u64,
        new_id: String,
    ) -> Result<String, SilenceError> {
        if input.matchers.is_empty() {
            return Err(SilenceError::Invalid("'matchers' must not be empty".into()));
        }
        if input.created_by.trim().is_empty() {
            return Err(SilenceError::Invalid(
                "'createdBy' must not be empty".into(),
            ));
        }
        if input.comment.trim().is_empty() {
            return Err(SilenceError::Invalid("'comment' must not be empty".into()));
        }
        let compiled = input
            .matchers
            .iter()
            .map(Compiled::new)
            .collect::<Result<Vec<_>, _>>()
            .map_err(SilenceError::Invalid)?;
        if compiled.iter().all(|c| c.matches(&Labels::new())) {
            return Err(SilenceError::Invalid(
                "the matchers match every alert (each matches an empty label set)".into(),
            ));
        }
        let time = |field: &str, v: &str| -> Result<u64, SilenceError> {
            crate::api::timestamp::parse_rfc3339(v)
                .map(|ns| ns / 1_000_000)
                .map_err(|e| SilenceError::Invalid(format!("'{field}': {e}")))
        };
        let starts_at_ms = match &input.starts_at {
            // A start in the past means now, as in Alertmanager.
            Some(s) => time("startsAt", s)?.max(now_ms),
            None => now_ms,
        };
        let ends_at_ms = time("endsAt", &input.ends_at)?;
        if ends_at_ms <= starts_at_ms {
            return Err(SilenceError::Invalid(
                "'endsAt' must be after 'startsAt'".into(),
            ));
        }
        self.prune(now_ms);
        let id = match &input.id {
            Some(id) if self.get(id).is_some() => id.clone(),
            Some(id) => return Err(SilenceError::NotFound(id.clone())),
            None => {
                if self.list.len() >= MAX_SILENCES {
                    return Err(SilenceError::Full);
                }
                new_id
            }
        };
        let silence = Silence {
            id: id.clone(),
            matchers: input.matchers,
            starts_at_ms,
            ends_at_ms,
            created_by: input.created_by,
            comment: input.comment,
            updated_at_ms: now_ms,
        };
        self.list.retain(|(s, _)| s.id != id);
        self.list.push((silence, compiled));
        self.save()?;
        Ok(id)
    }

    /// Expire a silence now (it stays listed as expired).
    pub fn expire(&mut self, id: &str, now_ms: u64) -> Result<(), SilenceError> {
        let (s, _) = self
            .list
            .iter_mut()
            .find(|(s, _)| s.id == id)
            .ok_or_else(|| SilenceError::NotFound(id.into()))?;
        if s.ends_at_ms > now_ms {
            s.ends_at_ms = now_ms.max(s.starts_at_ms);
            s.updated_at_ms = now_ms;
        }
        self.save()
    }

    /// Ids of the active silences that match `labels`.
    pub fn silenced_by(&self, labels: &Labels, now_ms: u64) -> Vec<String> {
        self.list
            .iter()
            .filter(|(s, _)| s.state(now_ms) == "active")
            .filter(|(_, c)| c.iter().all(|m| m.matches(labels)))
            .map(|(s, _)| s.id.clone())
            .collect()
    }

    fn prune(&mut self, now_ms: u64) {
        let before = self.list.len();
        self.list
            .retain(|(s, _)| s.ends_at_ms + EXPIRED_RETENTION_MS > now_ms);
        if self.list.len() < before {
            tracing::info!(
                "pruned {} silences that expired more than 30 days ago",
                before - self.list.len()
            );
        }
    }

    fn save(&self) -> Result<(), SilenceError> {
        let list: Vec<&Silence> = self.list.iter().map(|(s, _)| s).collect();
        super::persist::write_json(&self.path, &list).map_err(|e| SilenceError::Io {
            path: self.path.display().to_string(),
            message: e.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::labels::labels;

    fn input(matchers: Vec<Matcher>) -> SilenceInput {
        SilenceInput {
            id: None,
            matchers,
            starts_at: None,
            ends_at: "2100-01-01T00:00:00Z".into(),
            created_by: "ops".into(),
            comment: "maintenance".into(),
        }
    }

    fn m(name: &str, value: &str, is_regex: bool, is_equal: bool) -> Matcher {
        Matcher {
            name: name.into(),
            value: value.into(),
            is_regex,
            is_equal,
        }
    }

    #[test]
    fn matchers_follow_alertmanager() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Silences::open(dir.path().join("s.json")).unwrap();
        let id = s
            .upsert(
                input(vec![
                    m("service", "check.*", true, true),
                    m("severity", "page", false, false),
                ]),
                1000,
                "a".into(),
            )
            .unwrap();
        let hit = labels([
            ("alertname", "X"),
            ("service", "checkout"),
            ("severity", "critical"),
        ]);
        assert_eq!(s.silenced_by(&hit, 2000), vec![id.clone()]);
        // Regexes are anchored: "xcheckout" does not match "check.*".
        assert!(s
            .silenced_by(&labels([("service", "xcheckout")]), 2000)
            .is_empty());
        // isEqual=false: severity=page is excluded.
        assert!(s
            .silenced_by(
                &labels([("service", "checkout"), ("severity", "page")]),
                2000
            )
            .is_empty());

        // Expired silences stay listed, survive a reopen, and match nothing.
        s.expire(&id, 3000).unwrap();
        assert!(s.silenced_by(&hit, 4000).is_empty());
        let again = Silences::open(dir.path().join("s.json")).unwrap();
        assert_eq!(again.list().len(), 1);
        assert_eq!(again.list()[0].state(4000), "expired");
        assert!(matches!(
            s.expire("nope", 1),
            Err(SilenceError::NotFound(_))
        ));
    }

    #[test]
    fn bad_silences_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Silences::open(dir.path().join("s.json")).unwrap();
        for (bad, why) in [
            (input(vec![]), "matchers"),
            (input(vec![m("service", "(", true, true)]), "bad regex"),
            (input(vec![m("1x", "a", false, true)]), "label name"),
            (input(vec![m("service", ".*", true, true)]), "every alert"),
        ] {
            let e = s.upsert(bad, 0, "id".into()).unwrap_err().to_string();
            assert!(e.contains(why), "{e}");
        }
        let mut late = input(vec![m("a", "b", false, true)]);
        late.ends_at = "1970-01-01T00:00:00Z".into();
        assert!(s
            .upsert(late, 5000, "id".into())
            .unwrap_err()
            .to_string()
            .contains("endsAt"));
    }
}
