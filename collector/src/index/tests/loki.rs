//! The index's Loki methods (term/regex matchers, fast-field counts, term
//! dictionary label lookups) agree with the generic in-memory
//! implementations of `LogStore` over the same records.

use std::sync::Arc;

use super::*;
use crate::query::{
    Buckets, CountQuery, Direction, FastLabel, LabelMatcher, LogQuery, LogRow, LogSelect, LogStore,
    MatchOp, QueryError,
};

/// Only `search_logs`: every Loki method uses the trait's generic fallback.
struct Generic(Arc<LogIndex>);

impl LogStore for Generic {
    fn search_logs(&self, q: &LogQuery) -> Result<Vec<LogRow>, QueryError> {
        self.0.search_logs(q)
    }
}

fn fixture() -> Env {
    let mut env = Env::new();
    let mut traced = log("checkout completed", 9, 4);
    traced.trace_id = tid(5).to_vec();
    let mut no_number = log("text only severity", 0, 6);
    no_number.severity_text = "Error".into();
    let mut with_attr = log("payment declined", 17, 2);
    with_attr.attributes = vec![kv("http.status_code", Value::IntValue(402))];
    env.index(&[
        log_input(
            &logs(
                resource("web", vec![kv("k8s.pod.name", s("web-1"))]),
                vec![log("user logged in", 9, 1), with_attr, traced, no_number],
            ),
            1,
        ),
        log_input(
            &logs(
                resource("db", vec![kv("k8s.pod.name", s("db-0"))]),
                vec![log("slow query", 13, 5), log("vacuum", 5, 3)],
            ),
            2,
        ),
    ]);
    env
}

fn m(name: &str, op: MatchOp, value: &str) -> LabelMatcher {
    LabelMatcher::new(name, op, value).unwrap()
}

fn sel(matchers: Vec<LabelMatcher>) -> LogSelect {
    LogSelect {
        matchers,
        start_unix_nano: ns(0),
        end_unix_nano: ns(100),
    }
}

fn bodies(rows: Vec<LogRow>) -> Vec<String> {
    rows.into_iter()
        .map(|r| crate::query::logql::labels::row_line(&r))
        .collect()
}

#[test]
fn index_matches_the_generic_implementation() {
    let env = fixture();
    let generic = Generic(env.logs.clone());
    let selections = [
        vec![],
        vec![m("service_name", MatchOp::Eq, "web")],
        vec![m("service_name", MatchOp::Neq, "web")],
        vec![m("k8s_pod_name", MatchOp::Re, "web-.*")],
        vec![m("k8s_pod_name", MatchOp::Nre, "web-.*")],
        vec![m("level", MatchOp::Eq, "error")],
        vec![m("http_status_code", MatchOp::Eq, "402")],
        vec![m("http_status_code", MatchOp::Re, "")],
        vec![m("http_status_code", MatchOp::Neq, "")],
        vec![m("trace_id", MatchOp::Eq, &hex::encode(tid(5)))],
        vec![m("trace_id", MatchOp::Neq, &hex::encode(tid(5)))],
        vec![
            m("service_name", MatchOp::Re, "web|db"),
            m("level", MatchOp::Re, "info|debug"),
        ],
    ];
    for s in &selections {
        for dir in [Direction::Backward, Direction::Forward] {
            assert_eq!(
                bodies(env.logs.select_logs(&sel(s.clone()), 100, dir).unwrap()),
                bodies(generic.select_logs(&sel(s.clone()), 100, dir).unwrap()),
                "{s:?} {dir:?}"
            );
        }
        let q = CountQuery {
            matchers: s.clone(),
            group_by: vec![FastLabel::ServiceName, FastLabel::Level],
            buckets: Buckets {
                origin: ns(0),
                width: ns(2),
                count: 4,
            },
        };
        assert_eq!(
            env.logs.count_logs(&q).unwrap(),
            generic.count_logs(&q).unwrap(),
            "counts {s:?}"
        );
        let (a, b) = (
            env.logs.log_stats(&sel(s.clone())).unwrap(),
            generic.log_stats(&sel(s.clone())).unwrap(),
        );
        assert_eq!(
            (a.entries, a.bytes, a.streams),
            (b.entries, b.bytes, b.streams),
            "{s:?}"
        );
    }
    let forward = bodies(
        env.logs
            .select_logs(&sel(vec![]), 2, Direction::Forward)
            .unwrap(),
    );
    assert_eq!(forward, ["user logged in", "payment declined"]);
    assert_eq!(
        env.logs.log_label_names(ns(0), ns(100)).unwrap(),
        generic.log_label_names(ns(0), ns(100)).unwrap()
    );
    for (name, s) in [
        ("level", vec![]),
        ("k8s_pod_name", vec![]),
        ("level", vec![m("service_name", MatchOp::Eq, "db")]),
    ] {
        assert_eq!(
            env.logs.log_label_values(name, &sel(s.clone())).unwrap(),
            generic.log_label_values(name, &sel(s.clone())).unwrap(),
            "{name} {s:?}"
        );
    }
    assert_eq!(
        env.logs
            .log_label_values("level", &sel(vec![m("service_name", MatchOp::Eq, "web")]))
            .unwrap(),
        ["error", "info"],
        "severity text 'Error' without a number files as error"
    );
}
