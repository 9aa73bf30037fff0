use opentelemetry_proto::tonic::common::v1::any_value::Value;

use super::*;
use crate::query::{LogQuery, LogRow, LogStore, QueryError};

fn bodies(env: &Env, q: LogQuery) -> Vec<String> {
    env.logs
        .search_logs(&q)
        .unwrap()
        .into_iter()
        .map(|r| match r.record.body.and_then(|b| b.value) {
            Some(Value::StringValue(s)) => s,
            other => format!("{other:?}"),
        })
        .collect()
}

fn q() -> LogQuery {
    LogQuery {
        limit: 100,
        ..Default::default()
    }
}

fn text(t: &str) -> LogQuery {
    LogQuery {
        text: Some(t.into()),
        ..q()
    }
}

#[test]
fn log_round_trips_losslessly() {
    let mut env = Env::new();
    let mut rec = log("payment failed for order 42", 17, 5);
    rec.trace_id = tid(1).to_vec();
    rec.span_id = sid(3);
    rec.flags = 1;
    rec.event_name = "payment.failed".into();
    rec.attributes = vec![
        kv("order.id", Value::IntValue(42)),
        kv("retry", Value::BoolValue(true)),
    ];
    rec.dropped_attributes_count = 1;
    let req = logs(resource("pay", vec![kv("host.name", s("h1"))]), vec![rec]);
    env.index(&[log_input(&req, 7)]);
    let got = env.logs.search_logs(&q()).unwrap();
    let rl = &req.resource_logs[0];
    let want = LogRow {
        resource: rl.resource.clone().unwrap(),
        scope: rl.scope_logs[0].scope.clone(),
        record: rl.scope_logs[0].log_records[0].clone(),
    };
    assert_eq!(got, [want]);
}

fn fixture() -> Env {
    let mut env = Env::new();
    let mut traced = log("checkout completed in 20ms", 9, 4);
    traced.trace_id = tid(5).to_vec();
    let mut observed_only = log("cache warmed", 5, 0);
    observed_only.time_unix_nano = 0;
    observed_only.observed_time_unix_nano = ns(6);
    env.index(&[
        log_input(
            &logs(
                resource("web", vec![]),
                vec![
                    log("user alice logged in", 9, 1),
                    log("connection refused by upstream", 17, 2),
                    log("upstream connection reset", 13, 3),
                    traced,
                ],
            ),
            1,
        ),
        log_input(
            &logs(
                resource("db", vec![]),
                vec![log("slow query took 3s", 13, 5)],
            ),
            2,
        ),
    ]);
    env.clock.advance(HOUR);
    env.index(&[log_input(
        &logs(
            resource("web", vec![]),
            vec![observed_only, log("fatal: disk full", 21, 7)],
        ),
        3,
    )]);
    env
}

#[test]
fn logs_are_newest_first_across_partitions_with_limit() {
    let env = fixture();
    assert_eq!(
        bodies(&env, q()),
        [
            "fatal: disk full",
            "cache warmed",
            "slow query took 3s",
            "checkout completed in 20ms",
            "upstream connection reset",
            "connection refused by upstream",
            "user alice logged in",
        ]
    );
    assert_eq!(
        bodies(&env, LogQuery { limit: 2, ..q() }),
        ["fatal: disk full", "cache warmed"]
    );
    assert!(bodies(&env, LogQuery { limit: 0, ..q() }).is_empty());
}

#[test]
fn full_text_words_phrases_and_booleans() {
    let env = fixture();
    assert_eq!(
        bodies(&env, text("upstream")),
        [
            "upstream connection reset",
            "connection refused by upstream"
        ]
    );
    // Words are ANDed by default.
    assert_eq!(
        bodies(&env, text("connection refused")),
        ["connection refused by upstream"]
    );
    assert_eq!(
        bodies(&env, text("\"connection reset\"")),
        ["upstream connection reset"]
    );
    assert!(bodies(&env, text("\"reset connection\"")).is_empty());
    assert_eq!(
        bodies(&env, text("alice OR disk")),
        ["fatal: disk full", "user alice logged in"]
    );
    assert_eq!(
        bodies(&env, text("upstream AND NOT reset")),
        ["connection refused by upstream"]
    );
    assert_eq!(
        bodies(&env, text("UPSTREAM -refused")),
        ["upstream connection reset"]
    );
    assert_eq!(
        bodies(&env, text("(alice OR upstream) AND NOT (reset OR refused)")),
        ["user alice logged in"]
    );
    assert_eq!(
        bodies(
            &env,
            LogQuery {
                limit: 2,
                ..text("NOT upstream")
            }
        ),
        ["fatal: disk full", "cache warmed"]
    );
    match env.logs.search_logs(&text("body:(unclosed")) {
        Err(QueryError::Invalid(msg)) => assert!(!msg.is_empty()),
        other => panic!("expected Invalid, got {other:?}"),
    }
    match env.logs.search_logs(&text("nosuchfield:x")) {
        Err(QueryError::Invalid(_)) => {}
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn filters_by_service_severity_trace_and_time() {
    let env = fixture();
    let by_service = LogQuery {
        service: Some("db".into()),
        ..q()
    };
    assert_eq!(bodies(&env, by_service), ["slow query took 3s"]);
    let warn_up = LogQuery {
        min_severity: Some(13),
        ..q()
    };
    assert_eq!(
        bodies(&env, warn_up),
        [
            "fatal: disk full",
            "slow query took 3s",
            "upstream connection reset",
            "connection refused by upstream"
        ]
    );
    let traced = LogQuery {
        trace_id: Some(tid(5)),
        ..q()
    };
    assert_eq!(bodies(&env, traced), ["checkout completed in 20ms"]);
    let window = LogQuery {
        start_unix_nano: Some(ns(2)),
        end_unix_nano: Some(ns(3)),
        ..q()
    };
    assert_eq!(
        bodies(&env, window),
        [
            "upstream connection reset",
            "connection refused by upstream"
        ]
    );
    // Observed time stands in for a missing timestamp.
    let observed = LogQuery {
        start_unix_nano: Some(ns(6)),
        end_unix_nano: Some(ns(6)),
        ..q()
    };
    assert_eq!(bodies(&env, observed), ["cache warmed"]);
    let combined = LogQuery {
        text: Some("upstream".into()),
        service: Some("web".into()),
        min_severity: Some(17),
        ..q()
    };
    assert_eq!(bodies(&env, combined), ["connection refused by upstream"]);
}
