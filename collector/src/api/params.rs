//! Raw query-string access shared by the Jaeger and native handlers.
//!
//! [`Params`] keeps every `name=value` pair in order (Jaeger repeats `tag`,
//! `tags` and `traceID`), treats empty values as absent (clients omit empty
//! parameters, but some send `service=`), and parses integers with errors that
//! name the parameter. Unknown parameters are ignored, as Jaeger does.

use axum::extract::rejection::QueryRejection;
use axum::extract::Query;

use super::error::Problem;

/// The decoded query string, in order.
#[derive(Debug, Clone, Default)]
pub struct Params(Vec<(String, String)>);

impl Params {
    /// From axum's query extractor; a rejection (not produced for this target
    /// type today, but possible) becomes a 400 naming the query string.
    pub fn from_extractor(
        query: Result<Query<Vec<(String, String)>>, QueryRejection>,
    ) -> Result<Self, Problem> {
        match query {
            Ok(Query(pairs)) => Ok(Params(pairs)),
            Err(e) => Err(Problem::invalid_param("query string", e.body_text())),
        }
    }

    #[cfg(test)]
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Self {
        Params(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    /// The first non-empty value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// Every non-empty value of `name`, in order.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// `name` as a non-negative integer, if present.
    pub fn u64(&self, name: &str) -> Result<Option<u64>, Problem> {
        self.get(name)
            .map(|v| {
                v.trim().parse::<u64>().map_err(|_| {
                    Problem::invalid_param(name, format!("\"{v}\" is not a non-negative integer"))
                })
            })
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_values_are_absent_and_repeats_kept() {
        let p = Params::from_pairs(&[
            ("service", ""),
            ("tag", "a:1"),
            ("service", "api"),
            ("tag", "b:2"),
        ]);
        assert_eq!(p.get("service"), Some("api"));
        assert_eq!(p.all("tag").collect::<Vec<_>>(), ["a:1", "b:2"]);
        assert_eq!(p.get("nothing"), None);
    }

    #[test]
    fn integers_name_the_parameter() {
        let p = Params::from_pairs(&[("limit", "12"), ("start", "-1"), ("end", "x")]);
        assert_eq!(p.u64("limit"), Ok(Some(12)));
        assert_eq!(p.u64("other"), Ok(None));
        assert!(p.u64("start").unwrap_err().message.contains("'start'"));
        assert!(p.u64("end").unwrap_err().message.contains("'end'"));
    }
}

/// Every parameter parser of the module answers `Ok` or `Err` on arbitrary
/// input, never panics (the "never crash on bad input" rule).
#[cfg(test)]
mod fuzz {
    use proptest::prelude::*;

    use super::Params;
    use crate::api::duration::parse_go_duration;
    use crate::api::jaeger::params::{parse_search, parse_span_kind, parse_tags, parse_trace_id};
    use crate::api::logs::{parse_log_query, parse_severity};
    use crate::api::timestamp::parse_time_ns;

    fn check(s: &str) {
        let _ = parse_go_duration(s);
        let _ = parse_time_ns(s);
        let _ = parse_tags(s);
        let _ = parse_trace_id(s);
        let _ = parse_span_kind(s);
        let _ = parse_severity(s);
        for name in [
            "tags",
            "tag",
            "traceID",
            "minDuration",
            "maxDuration",
            "limit",
            "start",
            "end",
        ] {
            let _ = parse_search(&Params::from_pairs(&[(name, s)]));
        }
        for name in ["severity", "trace_id", "start", "end", "limit"] {
            let _ = parse_log_query(&Params::from_pairs(&[(name, s)]));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        #[test]
        fn parsers_never_panic(s in "\\PC{0,40}") {
            check(&s);
        }

        #[test]
        fn parsers_never_panic_on_near_misses(
            s in "[-+0-9.:TZz µμsmhun\"={}, a-f]{0,36}"
        ) {
            check(&s);
        }
    }
}
